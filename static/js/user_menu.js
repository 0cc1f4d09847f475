// The account menu at the top right (base.html): a <details> disclosure that already opens
// and closes with Enter/Space and a click. Here: Escape closes it and puts focus back on its
// toggle, and a click or focus outside closes it, as people expect of a dropdown.
(function () {
  "use strict";

  var menu = document.querySelector("[data-user-menu]");
  if (!menu) {
    return;
  }
  var toggle = menu.querySelector("summary");

  function close(returnFocus) {
    if (!menu.open) {
      return;
    }
    menu.open = false;
    if (returnFocus) {
      toggle.focus();
    }
  }

  menu.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      close(true);
    }
  });
  document.addEventListener("click", function (event) {
    if (!menu.contains(event.target)) {
      close(false);
    }
  });
  document.addEventListener("focusin", function (event) {
    if (!menu.contains(event.target)) {
      close(false);
    }
  });
})();
