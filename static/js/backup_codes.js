// Backup codes (/mfa/backup-codes/): Copy, Download .txt and Print for the codes shown once.
// The buttons stay hidden without JavaScript; the codes are plain text on the page either way.
(function () {
  "use strict";

  var list = document.getElementById("backup-codes");
  var actions = document.querySelector("[data-code-actions]");
  var status = document.querySelector("[data-code-status]");
  if (!list || !actions || !status) {
    return;
  }

  function codes() {
    return Array.prototype.map.call(list.querySelectorAll("li"), function (li) {
      return li.textContent.trim();
    });
  }

  function asText() {
    var lines = [
      "AskSage Enterprise Admin: backup codes for " + list.dataset.account,
      "Issued " + new Date().toISOString().slice(0, 10) + ". Each code works once; issuing new codes cancels these.",
      "",
    ];
    return lines.concat(codes()).join("\n") + "\n";
  }

  function say(text) {
    status.textContent = text;
  }

  // The Clipboard API needs a secure context (https or localhost); elsewhere select the
  // codes and let the browser copy the selection.
  function copy() {
    var text = codes().join("\n");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say("Copied " + codes().length + " codes to the clipboard."); },
        function () { copyBySelection(); }
      );
    } else {
      copyBySelection();
    }
  }

  function copyBySelection() {
    var range = document.createRange();
    range.selectNodeContents(list);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    say(copied ? "Copied " + codes().length + " codes to the clipboard."
               : "The codes are selected: press Ctrl+C (⌘C on a Mac) to copy them.");
  }

  function download() {
    var blob = new Blob([asText()], { type: "text/plain;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "asksage-backup-codes.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    say("Downloaded asksage-backup-codes.txt.");
  }

  actions.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) {
      return;
    }
    var action = button.dataset.action;
    if (action === "copy") {
      copy();
    } else if (action === "download") {
      download();
    } else if (action === "print") {
      window.print();
    }
  });
  actions.hidden = false;
})();
