// The kiosk link is /kiosk#<token>: the fragment never reaches the server
// or any log. Post it once to /kiosk/start, which sets an HttpOnly cookie
// scoped to /kiosk, and take it out of the address bar and history.
(function () {
  "use strict";
  var token = window.location.hash.slice(1);
  var form = document.getElementById("kiosk-start");
  if (!token || !form) {
    return;
  }
  window.history.replaceState(null, "", "/kiosk");
  document.getElementById("kiosk-token").value = token;
  document.getElementById("kiosk-nolink").hidden = true;
  document.getElementById("kiosk-wait").hidden = false;
  form.submit();
})();
