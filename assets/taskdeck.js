// Taskdeck page helpers (plain DOM, no framework): keyboard submit and the log's auto-scroll.
(function () {
  if (window.__taskdeck) return;
  window.__taskdeck = true;

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
    var el = document.getElementById("log-scroll");
    if (el) attach(el);
  }, 300);
})();
