// TRD Navigator: the only script of the pages besides htmx (CSP: script-src 'self').
// - sends the session's CSRF token with every htmx request, and marks polls as background;
// - warns a minute before the idle sign-out (polls do not count as activity), then reloads.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.getAttribute("data-csrf");
  // a request no user action triggered (polling) is marked, so it does not count as activity
  var background = function (detail) { return !detail.triggeringEvent; };
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf; }
    if (background(event.detail)) { event.detail.headers["X-TRD-Background"] = "poll"; }
  });
  var idle = parseInt(body.getAttribute("data-idle-minutes") || "0", 10);
  if (idle > 0) {
    var warnAt = Math.max(idle - 1, 0.5) * 60 * 1000;
    var timer = null;
    var reset = function () {
      if (timer) { clearTimeout(timer); }
      var banner = document.getElementById("idle-warning");
      if (banner) { banner.remove(); }
      timer = setTimeout(function () {
        var note = document.createElement("div");
        note.id = "idle-warning";
        note.className = "idle-warning";
        note.setAttribute("role", "alert");
        note.textContent = "You will be signed out in about a minute without activity. Unsaved entries will be lost.";
        body.appendChild(note);
        setTimeout(function () { window.location.reload(); }, 60 * 1000);
      }, warnAt);
    };
    document.addEventListener("htmx:afterRequest", function (event) {
      var config = event.detail.requestConfig;
      if (!config || !background(config)) { reset(); }
    });
    reset();
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.matches("[data-copy]")) {
      var field = document.getElementById(target.getAttribute("data-copy"));
      if (field && navigator.clipboard) {
        navigator.clipboard.writeText(field.value).then(function () { target.textContent = "Copied"; });
      }
    }
    if (target instanceof Element && target.matches("[data-print]")) { window.print(); }
  });
})();
