// Wide tables (.table-wrap): when a table is wider than its box, say so above it ("Scroll
// sideways for more columns") and make the box a keyboard-scrollable, named region. The
// edge shadows in app.css work without this script; this adds words and keyboard access.
(function () {
  "use strict";

  var wraps = document.querySelectorAll(".table-wrap");
  if (!wraps.length) {
    return;
  }

  function label(wrap) {
    var heading = wrap.previousElementSibling;
    while (heading && !/^H[1-6]$/.test(heading.tagName)) {
      heading = heading.previousElementSibling;
    }
    var h1 = document.querySelector("h1");
    return (heading || h1 || { textContent: "Table" }).textContent.trim() + " (scrolls sideways)";
  }

  function setUp(wrap) {
    var cue = document.createElement("p");
    cue.className = "scroll-cue";
    cue.hidden = true;
    cue.setAttribute("aria-hidden", "true");
    cue.textContent = "Scroll sideways for more columns →";
    wrap.parentNode.insertBefore(cue, wrap);

    function update() {
      var overflows = wrap.scrollWidth > wrap.clientWidth + 1;
      var atEnd = wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1;
      wrap.classList.toggle("scrolls", overflows);
      cue.hidden = !overflows;
      cue.textContent = atEnd && wrap.scrollLeft > 0
        ? "← Scroll back for the first columns"
        : "Scroll sideways for more columns →";
      if (overflows) {
        wrap.tabIndex = 0;
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", label(wrap));
      } else if (wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    }

    wrap.addEventListener("scroll", update, { passive: true });
    if (window.ResizeObserver) {
      new ResizeObserver(update).observe(wrap);
    } else {
      window.addEventListener("resize", update);
    }
    update();
  }

  Array.prototype.forEach.call(wraps, setUp);
})();
