// Optional: pages are correct without this file. It ticks the "You can try
// again in N minutes" countdowns ([data-countdown], seconds when rendered) down
// to "You can try again now", in the page's language: the server renders the
// sentence's singular and plural forms with "{n}" in place of the number, and
// Intl.PluralRules picks the form. Rounded up, like the server: never earlier
// than the server allows.
(function () {
  "use strict";
  var lang = document.documentElement.getAttribute("lang") || "en";
  var rules = null;
  try { rules = new Intl.PluralRules(lang); } catch (e) { rules = null; }
  function sentence(el, unit, n) {
    var one = rules ? rules.select(n) === "one" : n === 1;
    var text = el.getAttribute("data-" + unit + "-" + (one ? "one" : "other")) || "";
    return text.replace("{n}", n.toLocaleString(lang));
  }
  function start(el) {
    var seconds = parseInt(el.getAttribute("data-countdown"), 10);
    if (!(seconds > 0)) { return; }
    var end = Date.now() + seconds * 1000;
    function tick() {
      var left = Math.ceil((end - Date.now()) / 1000);
      if (left <= 0) {
        el.textContent = el.getAttribute("data-done") || "";
        el.setAttribute("data-countdown", "0");
        return;
      }
      el.textContent = left >= 60 ? sentence(el, "minute", Math.ceil(left / 60)) : sentence(el, "second", left);
      window.setTimeout(tick, 500);
    }
    tick();
  }
  function all() {
    var found = document.querySelectorAll("[data-countdown]");
    for (var i = 0; i < found.length; i += 1) { start(found[i]); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", all);
  } else {
    all();
  }
})();
