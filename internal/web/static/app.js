// Sunpath UI: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // A print button (data-print) prints the page with the print stylesheet.
  document.addEventListener("click", function (e) {
    var b = e.target && e.target.closest ? e.target.closest("[data-print]") : null;
    if (b) { window.print(); }
  });

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
  // Live alerts: the header badge (#alerts) is polled by htmx. Its count
  // goes into the document title, so a background tab shows it too, and,
  // when the person has switched the sound on, a new alert beeps.
  var baseTitle = document.title;
  var lastCount = -1;
  var audio = null;
  function soundOn() {
    try { return window.localStorage.getItem("sunpath.alertSound") === "on"; } catch (e) { return false; }
  }
  function beep() {
    if (!audio) { return; }
    var o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.15;
    o.connect(g);
    g.connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.35);
  }
  function showAlerts() {
    var box = document.getElementById("alerts");
    if (!box) { return; }
    var b = box.querySelector("[data-count]");
    var n = b ? parseInt(b.dataset.count, 10) || 0 : 0;
    document.title = n > 0 && b.dataset.title ? b.dataset.title + " " + baseTitle : baseTitle;
    if (lastCount >= 0 && n > lastCount && soundOn()) { beep(); }
    lastCount = n;
  }
  document.addEventListener("DOMContentLoaded", function () {
    showAlerts();
    var t = document.getElementById("alert-sound");
    if (!t) { return; }
    t.hidden = false;
    t.setAttribute("aria-pressed", soundOn() ? "true" : "false");
    t.addEventListener("click", function () {
      var on = !soundOn();
      try { window.localStorage.setItem("sunpath.alertSound", on ? "on" : "off"); } catch (e) { /* private mode */ }
      t.setAttribute("aria-pressed", on ? "true" : "false");
      if (on && !audio && window.AudioContext) { audio = new window.AudioContext(); }
    });
    if (soundOn() && window.AudioContext) { audio = new window.AudioContext(); }
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && e.target.id === "alerts") { showAlerts(); }
  });
})();
