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
  // New entries: a MutationObserver scrolls right after React's commit, before the frame, so
  // the scroll event is dispatched in the same frame that shows the entry. (Scrolling from a
  // ResizeObserver, after the frame's layout, cost a second frame per event only to dispatch
  // the scroll event: ~0.5 ms of main thread.) The ResizeObserver stays for growth without a
  // DOM change (an opened tool call, a late font); by then the log is at the bottom already
  // and setting the same scrollTop again is free.
  var NEAR = 48;
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR; }
  function follow(el) {
    if (el.dataset.following === "true") el.scrollTop = el.scrollHeight;
  }
  function attach(el) {
    if (el.__taskdeckScroll) return;
    var log = document.getElementById("event-log");
    if (!log) return;
    el.__taskdeckScroll = true;
    el.dataset.following = "true";
    el.scrollTop = el.scrollHeight;
    // Only a move up stops the following: by the time the scroll event of our own jump to the
    // end arrives, newer entries may have grown the log again (not at the bottom, yet following).
    // A move up while the log's height changed is the layout settling, not the reader: a part
    // of the log that was never shown (entries that came while the reader was up the page)
    // takes its real size only once shown after a jump to the end, and the browser moves the
    // scroll position with it; the ResizeObserver then takes the log back to its end. (No
    // scrolling from this handler: a scroll here costs another layout and frame per event.)
    var lastTop = el.scrollTop, lastHeight = el.scrollHeight;
    el.addEventListener("scroll", function () {
      var top = el.scrollTop, height = el.scrollHeight, following = el.dataset.following;
      if (top < lastTop - 1 && height === lastHeight) following = "false";
      else if (atBottom(el)) following = "true";
      lastTop = top;
      lastHeight = height;
      if (el.dataset.following !== following) el.dataset.following = following;
    }, { passive: true });
    // queueMicrotask: the scroll (and the layout it forces) comes after every observer of the
    // mutation has run, still before the frame.
    new MutationObserver(function () { queueMicrotask(function () { follow(el); }); })
      .observe(log, { childList: true, subtree: true, characterData: true });
    new ResizeObserver(function () { follow(el); }).observe(log);
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
