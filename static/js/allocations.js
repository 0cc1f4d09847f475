// Inline editing of allocations on /org/users/.
// Mouse: double-click a Max Inference Tokens or Max Embedding Tokens cell. Keyboard: Tab to
// the cell, then Enter or F2. In the editor Enter (or leaving the field) confirms, Escape
// cancels. Pending edits are marked; a value that is not a whole, non-negative number is
// marked invalid in place and keeps its column's Save Changes disabled. "Save Changes" posts
// one column's edits as JSON with each row's value as loaded, so the server can refuse stale
// rows. The server decides everything; a refusal changes nothing and is shown at its rows.
// Everything that happens is also said in a polite live region (#alloc-status).
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
  var announcer = document.getElementById("alloc-status");
  // A success message goes away by itself; a refusal stays until the next action.
  var CLEAR_AFTER_MS = 5000;
  var FADE_MS = 600;
  var clearTimer = null;
  // column -> Map(userId -> {cell, text, value, problem}); value is null when the text is invalid.
  var pending = { inference: new Map(), embedding: new Map() };
  var saving = { inference: false, embedding: false };

  function format(n) {
    return n.toLocaleString("en-US");
  }

  // Thousands separators, spaces and underscores are fine; anything else is a mistake.
  function check(text) {
    var digits = text.replace(/[\s,_]/g, "");
    if (/^-\s*\d/.test(text.trim())) {
      return { value: null, problem: "Cannot be negative." };
    }
    if (!/^\d+$/.test(digits)) {
      return { value: null, problem: "Enter a whole number." };
    }
    if (digits.replace(/^0+(?=\d)/, "").length > 15) {
      return { value: null, problem: "Too large." };
    }
    return { value: Number(digits), problem: "" };
  }

  function loaded(cell) {
    return Number(cell.dataset.value);
  }

  function columnName(cell) {
    var header = root.querySelector("thead tr");
    var th = header && header.cells[cell.cellIndex];
    return th ? th.textContent.trim() : cell.dataset.column;
  }

  function emailOf(cell) {
    var emailCell = cell.closest("tr").querySelector("td.email");
    return emailCell ? emailCell.textContent.trim() : "user " + cell.dataset.userId;
  }

  function describe(cell) {
    return columnName(cell) + " for " + emailOf(cell);
  }

  function announce(text) {
    // Cleared first so that the same sentence twice is read twice.
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = text;
    }, 50);
  }

  function clearError(cell) {
    cell.classList.remove("has-error");
    var note = cell.querySelector(".cell-error");
    if (note) {
      note.remove();
    }
  }

  function addNote(cell, text) {
    var note = document.createElement("span");
    note.className = "cell-error";
    note.textContent = text;
    cell.appendChild(note);
  }

  function showCell(cell) {
    var edit = pending[cell.dataset.column].get(cell.dataset.userId);
    var invalid = Boolean(edit) && edit.value === null;
    cell.classList.toggle("edited", Boolean(edit) && !invalid);
    cell.classList.toggle("invalid", invalid);
    if (!edit) {
      cell.textContent = format(loaded(cell));
    } else {
      cell.textContent = invalid ? edit.text : format(edit.value);
    }
    cell.title = edit ? "Was " + format(loaded(cell)) + " — not saved yet" : "";
    if (invalid) {
      addNote(cell, edit.problem);
    }
  }

  function setStatus(text, kind) {
    window.clearTimeout(clearTimer);
    statusLine.classList.remove("fading");
    statusLine.textContent = text;
    statusLine.className = "savebar-status" + (kind ? " " + kind : "");
    if (kind === "ok") {
      clearTimer = window.setTimeout(function () {
        statusLine.classList.add("fading");
        clearTimer = window.setTimeout(function () {
          statusLine.textContent = "";
          statusLine.className = "savebar-status";
          refresh();
        }, FADE_MS);
      }, CLEAR_AFTER_MS);
    }
  }

  function invalidCount(column) {
    var count = 0;
    pending[column].forEach(function (edit) {
      if (edit.value === null) {
        count += 1;
      }
    });
    return count;
  }

  function pendingSummary() {
    var parts = [];
    Object.keys(pending).forEach(function (column) {
      var n = pending[column].size;
      if (n) {
        var bad = invalidCount(column);
        var label = bar.querySelector('.savebar-group[data-column="' + column + '"] .savebar-label');
        var name = label ? label.textContent.split(":")[0] : column;
        parts.push(name + ": " + n + " pending" + (bad ? ", " + bad + " invalid" : ""));
      }
    });
    return parts.length ? parts.join("; ") + "." : "No changes pending.";
  }

  function refresh() {
    var anyPending = false;
    Object.keys(pending).forEach(function (column) {
      var edits = pending[column];
      var bad = invalidCount(column);
      var group = bar.querySelector('.savebar-group[data-column="' + column + '"]');
      group.hidden = edits.size === 0;
      group.querySelector("[data-count]").textContent = String(edits.size);
      group.querySelector("[data-invalid]").textContent = bad
        ? " · " + bad + " invalid: fix or discard " + (bad === 1 ? "it" : "them") + " to save"
        : "";
      group.classList.toggle("has-invalid", bad > 0);
      // Saving is impossible while a value is not a number: the button says so by being off.
      group.querySelector('[data-action="save"]').disabled = bad > 0;
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

  // The save bar sticks to the bottom of the window: a cell just edited must not sit under it.
  function keepClear(cell) {
    if (bar.hidden) {
      return;
    }
    var cellBox = cell.getBoundingClientRect();
    var barBox = bar.getBoundingClientRect();
    var overlap = cellBox.bottom - barBox.top;
    if (overlap > 0 && cellBox.top < barBox.top + barBox.height) {
      window.scrollBy(0, overlap + 12);
    }
  }

  function confirmEdit(cell, text) {
    var edits = pending[cell.dataset.column];
    var id = cell.dataset.userId;
    var checked = check(text);
    if (text === "" || checked.value === loaded(cell)) {
      edits.delete(id);
      return describe(cell) + ": unchanged, " + format(loaded(cell)) + ".";
    }
    edits.set(id, { cell: cell, text: text, value: checked.value, problem: checked.problem });
    if (checked.value === null) {
      return describe(cell) + ": “" + text + "” is not valid. " + checked.problem +
        " Save Changes is off until you fix or discard it.";
    }
    return describe(cell) + ": " + format(checked.value) + ", was " + format(loaded(cell)) +
      ". Not saved yet.";
  }

  function startEdit(cell) {
    if (saving[cell.dataset.column]) {
      return;
    }
    var edit = pending[cell.dataset.column].get(cell.dataset.userId);
    var input = document.createElement("input");
    input.type = "text";
    input.inputMode = "numeric";
    input.autocomplete = "off";
    input.className = "alloc-input";
    input.value = edit ? edit.text : String(loaded(cell));
    input.setAttribute("aria-label", describe(cell));
    if (edit && edit.value === null) {
      input.setAttribute("aria-invalid", "true");
    }
    clearError(cell);
    cell.classList.remove("edited", "invalid");
    cell.textContent = "";
    cell.appendChild(input);
    input.focus();
    input.select();

    var finished = false;
    function finish(keep, refocus) {
      if (finished) {
        return;
      }
      finished = true;
      var said = keep ? confirmEdit(cell, input.value.trim()) : describe(cell) + ": edit cancelled.";
      window.clearTimeout(clearTimer);
      statusLine.textContent = "";
      statusLine.className = "savebar-status";
      showCell(cell);
      refresh();
      announce(said + " " + pendingSummary());
      if (refocus) {
        cell.focus();
      }
      keepClear(cell);
    }
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true, true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false, true);
      }
      // Enter/F2 on the input must not reach the cell's handler and reopen the editor.
      event.stopPropagation();
    });
    input.addEventListener("input", function () {
      var text = input.value.trim();
      var bad = text !== "" && check(text).value === null;
      if (bad) {
        input.setAttribute("aria-invalid", "true");
      } else {
        input.removeAttribute("aria-invalid");
      }
    });
    input.addEventListener("blur", function () {
      finish(true, false);
    });
  }

  function cellFor(column, id) {
    return root.querySelector('td.alloc[data-column="' + column + '"][data-user-id="' + id + '"]');
  }

  function markRefused(column, rows) {
    var first = null;
    Object.keys(rows).forEach(function (id) {
      var cell = cellFor(column, id);
      if (!cell) {
        return;
      }
      clearError(cell);
      cell.classList.add("has-error");
      addNote(cell, rows[id]);
      first = first || cell;
    });
    return first;
  }

  function applySaved(column, data) {
    pending[column].forEach(function (edit) {
      edit.cell.classList.add("saved");
    });
    data.saved.forEach(function (row) {
      var cell = cellFor(row.column, row.id);
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
    return cells;
  }

  // When the group holding focus disappears, focus goes back to a cell of that column
  // (the last one edited) instead of falling to the top of the page.
  function returnFocus(hadFocus, cells) {
    if (hadFocus && cells.length) {
      cells[cells.length - 1].focus();
    }
  }

  function save(column, button) {
    if (saving[column] || invalidCount(column) > 0) {
      return;
    }
    var changes = [];
    var cells = [];
    pending[column].forEach(function (edit, id) {
      clearError(edit.cell);
      changes.push({ id: Number(id), value: edit.text, original: loaded(edit.cell) });
      cells.push(edit.cell);
    });
    if (changes.length === 0) {
      return;
    }
    var group = button.closest(".savebar-group");
    // Not `disabled`: a disabled button drops keyboard focus to the top of the page.
    saving[column] = true;
    button.setAttribute("aria-disabled", "true");
    group.setAttribute("aria-busy", "true");
    setStatus("Saving…", "");
    announce("Saving " + changes.length + " change" + (changes.length === 1 ? "" : "s") + "…");
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
        saving[column] = false;
        if (data.error && data.error.code === "step_up_required" && data.error.url) {
          stepUp(data.error.url);
          return;
        }
        if (data.ok) {
          var hadFocus = group.contains(document.activeElement);
          var saved = applySaved(column, data);
          setStatus(data.message, "ok");
          refresh();
          returnFocus(hadFocus, saved.length ? saved : cells);
          announce(data.message + " " + pendingSummary());
        } else {
          var error = data.error || {};
          var rows = error.rows || {};
          var message = error.message || "Nothing was saved.";
          var first = markRefused(column, rows);
          setStatus(message, "error");
          refresh();
          var detail = "";
          if (first) {
            first.scrollIntoView({ block: "center" });
            detail = " " + describe(first) + ": " + rows[first.dataset.userId];
          }
          announce("Not saved. " + message + detail);
        }
      })
      .catch(function () {
        saving[column] = false;
        setStatus("Could not reach the server; nothing was saved. Try again.", "error");
        refresh();
        announce("Not saved: could not reach the server. Try again.");
      })
      .then(function () {
        button.removeAttribute("aria-disabled");
        group.removeAttribute("aria-busy");
      });
  }

  function discard(column, group) {
    var cells = [];
    pending[column].forEach(function (edit) {
      cells.push(edit.cell);
    });
    pending[column].clear();
    cells.forEach(function (cell) {
      clearError(cell);
      showCell(cell);
    });
    var hadFocus = group.contains(document.activeElement);
    setStatus("", "");
    refresh();
    returnFocus(hadFocus, cells);
    announce("Discarded " + cells.length + " change" + (cells.length === 1 ? "" : "s") + ". " +
      pendingSummary());
  }

  // Keyboard access: every allocation cell is a Tab stop; Enter or F2 opens its editor.
  root.querySelectorAll("td.alloc").forEach(function (cell) {
    cell.tabIndex = 0;
    cell.setAttribute("aria-describedby", "alloc-keys");
  });
  document.querySelectorAll("[data-inline-hint]").forEach(function (hint) {
    hint.hidden = false;
  });

  root.addEventListener("keydown", function (event) {
    var cell = event.target;
    if (!cell.matches || !cell.matches("td.alloc") || cell.querySelector("input")) {
      return;
    }
    if (event.key === "Enter" || event.key === "F2") {
      event.preventDefault();
      startEdit(cell);
    }
  });

  root.addEventListener("dblclick", function (event) {
    var cell = event.target.closest("td.alloc");
    if (cell && !cell.querySelector("input")) {
      startEdit(cell);
    }
  });

  bar.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button || button.getAttribute("aria-disabled") === "true") {
      return;
    }
    var group = button.closest(".savebar-group");
    var column = group.dataset.column;
    if (button.dataset.action === "save") {
      save(column, button);
    } else {
      discard(column, group);
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
