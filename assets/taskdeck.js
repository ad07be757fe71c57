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
  var NEAR = 48;
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR; }
  function attach(el) {
    if (el.__taskdeckScroll) return;
    el.__taskdeckScroll = true;
    el.dataset.following = "true";
    el.scrollTop = el.scrollHeight;
    el.addEventListener("scroll", function () {
      el.dataset.following = atBottom(el) ? "true" : "false";
    }, { passive: true });
    new MutationObserver(function () {
      if (el.dataset.following === "true") el.scrollTop = el.scrollHeight;
    }).observe(el, { childList: true, subtree: true, characterData: true });
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
