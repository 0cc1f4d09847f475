// Inline editing of allocations on /org/users/.
// Double-click a Max Inference Tokens or Max Embedding Tokens cell, type, Enter (or click
// outside) confirms, Escape cancels. Pending edits are marked; "Save Changes" posts one
// column's edits as JSON with each row's value as loaded, so the server can refuse stale
// rows. The server decides everything; a refusal changes nothing and is shown at its rows.
(function () {
  "use strict";

  var root = document.getElementById("allocations");
  var bar = document.getElementById("savebar");
  if (!root || !bar || root.dataset.editable !== "true") {
    return;
  }
  var saveUrl = root.dataset.saveUrl;
  var csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  var statusLine = bar.querySelector(".savebar-status");
  // column -> Map(userId -> {cell, text, value}); value is null when the text is not a number.
  var pending = { inference: new Map(), embedding: new Map() };

  function format(n) {
    return n.toLocaleString("en-US");
  }

  function parse(text) {
    var digits = text.replace(/[\s,_]/g, "");
    return /^\d+$/.test(digits) ? Number(digits) : null;
  }

  function loaded(cell) {
    return Number(cell.dataset.value);
  }

  function clearError(cell) {
    cell.classList.remove("has-error");
    var note = cell.querySelector(".cell-error");
    if (note) {
      note.remove();
    }
  }

  function showCell(cell) {
    var edit = pending[cell.dataset.column].get(cell.dataset.userId);
    cell.classList.toggle("edited", Boolean(edit));
    cell.classList.toggle("invalid", Boolean(edit) && edit.value === null);
    if (!edit) {
      cell.textContent = format(loaded(cell));
    } else {
      cell.textContent = edit.value === null ? edit.text : format(edit.value);
    }
    cell.title = edit ? "Was " + format(loaded(cell)) + " — not saved yet" : "";
    if (edit && edit.value === null) {
      addNote(cell, "Enter a whole number of tokens.");
    }
  }

  function addNote(cell, text) {
    var note = document.createElement("span");
    note.className = "cell-error";
    note.textContent = text;
    cell.appendChild(note);
  }

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "savebar-status" + (kind ? " " + kind : "");
  }

  function refresh() {
    var anyPending = false;
    Object.keys(pending).forEach(function (column) {
      var edits = pending[column];
      var group = bar.querySelector('.savebar-group[data-column="' + column + '"]');
      group.hidden = edits.size === 0;
      group.querySelector("[data-count]").textContent = String(edits.size);
      anyPending = anyPending || edits.size > 0;

      var footer = root.querySelector('td.pool-cell[data-column="' + column + '"] .pool-left');
      if (footer) {
        var delta = 0;
        edits.forEach(function (edit) {
          if (edit.value !== null) {
            delta += edit.value - loaded(edit.cell);
          }
        });
        var left = Number(footer.dataset.unassigned) - delta;
        footer.textContent = format(left);
        footer.classList.toggle("changed", delta !== 0);
        footer.classList.toggle("over", left < 0);
        footer.title = left < 0 ? "Over the purchased pool by " + format(-left) : "";
      }
    });
    bar.hidden = !anyPending && statusLine.textContent === "";
  }

  function confirmEdit(cell, text) {
    var edits = pending[cell.dataset.column];
    var id = cell.dataset.userId;
    var value = parse(text);
    if (text === "" || value === loaded(cell)) {
      edits.delete(id);
    } else {
      edits.set(id, { cell: cell, text: text, value: value });
    }
    setStatus("", "");
  }

  function startEdit(cell) {
    var edit = pending[cell.dataset.column].get(cell.dataset.userId);
    var input = document.createElement("input");
    input.type = "text";
    input.inputMode = "numeric";
    input.className = "alloc-input";
    input.value = edit ? edit.text : String(loaded(cell));
    input.setAttribute("aria-label", "New value");
    clearError(cell);
    cell.classList.remove("edited", "invalid");
    cell.textContent = "";
    cell.appendChild(input);
    input.focus();
    input.select();

    var finished = false;
    function finish(keep) {
      if (finished) {
        return;
      }
      finished = true;
      if (keep) {
        confirmEdit(cell, input.value.trim());
      }
      showCell(cell);
      refresh();
    }
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", function () {
      finish(true);
    });
  }

  function markRefused(column, rows) {
    Object.keys(rows).forEach(function (id) {
      var cell = root.querySelector(
        'td.alloc[data-column="' + column + '"][data-user-id="' + id + '"]'
      );
      if (!cell) {
        return;
      }
      clearError(cell);
      cell.classList.add("has-error");
      addNote(cell, rows[id]);
    });
  }

  function applySaved(column, data) {
    pending[column].forEach(function (edit) {
      edit.cell.classList.add("saved");
    });
    data.saved.forEach(function (row) {
      var cell = root.querySelector(
        'td.alloc[data-column="' + row.column + '"][data-user-id="' + row.id + '"]'
      );
      if (cell) {
        cell.dataset.value = String(row["new"]);
      }
    });
    var cells = [];
    pending[column].forEach(function (edit) {
      cells.push(edit.cell);
    });
    pending[column].clear();
    cells.forEach(showCell);
    var pools = { inference: data.pools.inference, embedding: data.pools.training };
    Object.keys(pools).forEach(function (name) {
      var footer = root.querySelector('td.pool-cell[data-column="' + name + '"] .pool-left');
      if (footer) {
        footer.dataset.unassigned = String(pools[name].unassigned);
      }
    });
  }

  function save(column, button) {
    var changes = [];
    pending[column].forEach(function (edit, id) {
      clearError(edit.cell);
      changes.push({ id: Number(id), value: edit.text, original: loaded(edit.cell) });
    });
    if (changes.length === 0) {
      return;
    }
    button.disabled = true;
    setStatus("Saving…", "");
    fetch(saveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken,
      },
      body: JSON.stringify({ column: column, changes: changes }),
    })
      .then(function (response) {
        return response.json().then(
          function (data) {
            return data;
          },
          function () {
            var reason = response.status === 403
              ? "You are not allowed to change allocations."
              : "The server answered " + response.status + "; nothing was saved.";
            return { error: { message: reason, rows: {} } };
          }
        );
      })
      .then(function (data) {
        if (data.error && data.error.code === "step_up_required" && data.error.url) {
          stepUp(data.error.url);
          return;
        }
        if (data.ok) {
          applySaved(column, data);
          setStatus(data.message, "ok");
        } else {
          var error = data.error || {};
          markRefused(column, error.rows || {});
          setStatus(error.message || "Nothing was saved.", "error");
        }
      })
      .catch(function () {
        setStatus("Could not reach the server; nothing was saved. Try again.", "error");
      })
      .then(function () {
        button.disabled = false;
        refresh();
      });
  }

  function discard(column) {
    var cells = [];
    pending[column].forEach(function (edit) {
      cells.push(edit.cell);
    });
    pending[column].clear();
    cells.forEach(function (cell) {
      clearError(cell);
      showCell(cell);
    });
    setStatus("", "");
    refresh();
  }

  root.addEventListener("dblclick", function (event) {
    var cell = event.target.closest("td.alloc");
    if (cell && !cell.querySelector("input")) {
      startEdit(cell);
    }
  });

  bar.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) {
      return;
    }
    var column = button.closest(".savebar-group").dataset.column;
    if (button.dataset.action === "save") {
      save(column, button);
    } else {
      discard(column);
    }
  });

  // Step-up: the server wants a fresh MFA code first. Keep the pending edits (values as
  // typed and as loaded) in this tab's sessionStorage, verify, and put them back on return.
  var STASH = "allocations.pending";
  var leavingForStepUp = false;

  function stepUp(url) {
    var rows = [];
    Object.keys(pending).forEach(function (column) {
      pending[column].forEach(function (edit, id) {
        rows.push({ column: column, id: id, text: edit.text, original: loaded(edit.cell) });
      });
    });
    try {
      window.sessionStorage.setItem(STASH, JSON.stringify(rows));
    } catch (e) {
      // Storage unavailable: the edits are lost, but the verification still happens.
    }
    leavingForStepUp = true;
    window.location.assign(url);
  }

  function restoreStash() {
    var rows;
    try {
      rows = JSON.parse(window.sessionStorage.getItem(STASH) || "[]");
      window.sessionStorage.removeItem(STASH);
    } catch (e) {
      return;
    }
    var restored = 0;
    rows.forEach(function (row) {
      var cell = root.querySelector(
        'td.alloc[data-column="' + row.column + '"][data-user-id="' + row.id + '"]'
      );
      // Only onto the value it was made against: a row changed meanwhile is left alone.
      if (cell && loaded(cell) === row.original) {
        confirmEdit(cell, row.text);
        showCell(cell);
        restored += 1;
      }
    });
    if (restored > 0) {
      setStatus("Verified. Your edits are back: click Save Changes to save them.", "");
    }
    refresh();
  }

  restoreStash();

  // Leaving the page with unsaved edits asks first.
  window.addEventListener("beforeunload", function (event) {
    if (!leavingForStepUp && pending.inference.size + pending.embedding.size > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
