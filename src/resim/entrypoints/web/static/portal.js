// Optional: the portal works without this file. It refreshes the status block
// in place (polling a JSON endpoint) and adds copy buttons to the eSIM fields.
(function () {
  "use strict";
  function wireCopy(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        navigator.clipboard.writeText(field.value).then(function () {
          var note = root.querySelector("[data-copied]");
          if (note) { note.hidden = false; }
        });
      });
    });
  }
  var box = document.getElementById("status");
  if (!box) { return; }
  wireCopy(box);
  var url = box.getAttribute("data-poll");
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 3;
  var version = box.getAttribute("data-version");
  var finished = ["completed", "cancelled", "rejected", "expired", "failed"];
  var done = false;
  function poll() {
    // Sends the version shown: an unchanged block is not sent again (nor its
    // activation code read and audited on every tick).
    var asked = url + (url.indexOf("?") < 0 ? "?" : "&") + "v=" + encodeURIComponent(version || "");
    fetch(asked, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.found && data.html && data.version !== version) {
          version = data.version;
          box.setAttribute("data-version", version);
          box.innerHTML = data.html;
          wireCopy(box);
        }
        done = Boolean(data && finished.indexOf(data.state) >= 0);
      })
      .catch(function () { /* try again at the next tick */ })
      .then(function () { if (!done) { window.setTimeout(poll, seconds * 1000); } });
  }
  window.setTimeout(poll, seconds * 1000);
})();
