// Sunpath UI: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // Ask before destructive admin actions (buttons with data-confirm).
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b && b.dataset && b.dataset.confirm && !window.confirm(b.dataset.confirm)) {
      e.preventDefault();
    }
  });

  // On a question page, move focus to the question so that a screen reader
  // reads it and the next Tab reaches the first option.
  document.addEventListener("DOMContentLoaded", function () {
    var q = document.getElementById("question-text");
    if (q && !window.location.hash) {
      q.focus({ preventScroll: true });
    }
  });

  // Each option button submits once: a double tap on a tablet must not
  // answer the next question too.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (!f.classList || !f.classList.contains("question") || e.defaultPrevented) {
      return;
    }
    if (f.dataset.sent) {
      e.preventDefault();
      return;
    }
    f.dataset.sent = "1";
  });
})();
