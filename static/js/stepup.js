// After "confirm it's you": re-submit the action the user started (no JavaScript: they
// press Continue). The form carries the original fields and a fresh CSRF token.
(function () {
  "use strict";
  var form = document.getElementById("step-up-continue");
  if (form && form.dataset.autosubmit === "true") {
    form.submit();
  }
})();
