// Taskdeck page helpers (plain DOM, no framework): keyboard submit, the log's auto-scroll, and
// Radix Themes' root colour-scheme rule without :has().
(function () {
  if (window.__taskdeck) return;
  window.__taskdeck = true;

  // Radix Themes gives the root its colour scheme with `:root:where(:has(.radix-themes[data-is-
  // root-theme=true]:where(.light,...)))`. A :has() on the root makes Chromium check the root's
  // style again on every DOM insertion anywhere in the page: 0.7 ms of style work per new log
  // entry in the task page's traces. Reflex puts the resolved theme on <html> as a class (light
  // or dark) with the same colour scheme, so the rule keyed on that class does the same job.
  var ROOT_HAS = /:root:where\(:has\(\.radix-themes\[data-is-root-theme="?true"?\]:where\(([^()]*)\)\)\)/g;
  function unhasRules(rules) {
    for (var i = 0; i < rules.length; i++) {
      var rule = rules[i];
      if (rule.cssRules) unhasRules(rule.cssRules);
      if (rule.selectorText && rule.selectorText.indexOf(":has(.radix-themes") !== -1) {
        rule.selectorText = rule.selectorText.replace(ROOT_HAS, ":root:where($1)");
      }
    }
  }
  function unhasSheets() {
    for (var i = 0; i < document.styleSheets.length; i++) {
      var sheet = document.styleSheets[i];
      if (sheet.__taskdeckUnhas) continue;
      try { unhasRules(sheet.cssRules); sheet.__taskdeckUnhas = true; } catch (e) { /* not ours */ }
    }
  }
  unhasSheets();
  window.addEventListener("load", unhasSheets);

  // Ctrl+Enter / Cmd+Enter submits the form the focus is in (forms marked data-keyboard-submit).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var form = event.target && event.target.closest && event.target.closest("form[data-keyboard-submit]");
    if (!form) return;
    event.preventDefault();
    form.requestSubmit();
  });

  // Auto-scroll of #log-scroll: follow new entries while the reader is at the bottom; stop as
  // soon as they scroll up (data-following="false" shows the "jump to latest" button).
  // A ResizeObserver on the log, not a MutationObserver: it runs once a frame after the
  // browser's own layout, where a MutationObserver ran right after every React commit and its
  // read of scrollHeight forced a layout of its own (1.4 ms of main thread per event).
  var NEAR = 48;
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR; }
  function attach(el) {
    if (el.__taskdeckScroll) return;
    var log = document.getElementById("event-log");
    if (!log) return;
    el.__taskdeckScroll = true;
    el.dataset.following = "true";
    el.scrollTop = el.scrollHeight;
    // Only a move up stops the following: by the time the scroll event of our own jump to the
    // end arrives, newer entries may have grown the log again (not at the bottom, yet following).
    var lastTop = el.scrollTop;
    el.addEventListener("scroll", function () {
      var top = el.scrollTop, following = el.dataset.following;
      if (top < lastTop - 1) following = "false";
      else if (atBottom(el)) following = "true";
      lastTop = top;
      if (el.dataset.following !== following) el.dataset.following = following;
    }, { passive: true });
    new ResizeObserver(function () {
      if (el.dataset.following === "true") el.scrollTop = el.scrollHeight;
    }).observe(log);
  }
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest && event.target.closest("#jump-latest");
    var el = document.getElementById("log-scroll");
    if (!button || !el) return;
    el.scrollTop = el.scrollHeight;
    el.dataset.following = "true";
  });
  setInterval(function () {
    unhasSheets();  // a stylesheet a later page brought
    var el = document.getElementById("log-scroll");
    if (el) attach(el);
  }, 300);
})();
