// Taskdeck page helpers (plain DOM, no framework): keyboard submit, the log's auto-scroll and a
// running task's clock.
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
  //
  // A running task's log (data-live="true") turns pages instead of moving up by each new
  // entry: its scroll height is held at a "floor" (the min-height of #event-log) and new
  // entries fill the room above it; when they pass it, the log moves up at once, keeping the
  // last quarter of the view in sight, as a pager does. The text being read stands still, and a
  // new entry changes only its own pixels on screen, not the whole box (a scroll repaints and
  // composites all of it), and costs no script: #event-log keeps its size, so the
  // ResizeObserver is called only when the entries pass the floor (after layout, before paint:
  // the same frame shows the turned page). An IntersectionObserver on the end of the log
  // catches the rarer shrink (a tool call folded up) that leaves the view short of entries.
  // A finished task's log simply keeps its end in sight. The reader opening or folding a tool
  // call never moves the log: a call that now goes on below the view is being read, so the
  // following stops there ("jump to latest" comes back to it); a fold that leaves the view
  // empty fills it again with the latest entries. (While following, the browser's scroll
  // anchoring is off, assets/taskdeck.css: it moved the view on a fold, which looked like the
  // reader scrolling up.)
  var NEAR = 48, KEEP = 0.25;
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR; }
  function setFloor(el, log, floor) {
    el.__floor = floor;
    log.style.minHeight = floor ? floor + "px" : "";
  }
  // fresh: the reader arrives at the end (page open, "jump to latest"): fill the view with the
  // latest entries rather than turn a page.
  function follow(el, fresh) {
    if (el.dataset.following !== "true") return;
    var log = document.getElementById("event-log"), end = document.getElementById("log-end");
    if (!log) return;
    var live = el.dataset.live === "true" && end;
    var view = el.clientHeight, bottom = end ? end.offsetTop : el.scrollHeight;
    if (el.__toggled && !fresh) {
      var top = el.scrollTop;
      if (bottom > top + view) {
        if (live) setFloor(el, log, bottom);
        el.dataset.following = "false";
        return;
      }
      if (live && bottom >= top) return;
      fresh = true;
    }
    if (!live) {
      if (el.__floor) setFloor(el, log, 0);
      el.scrollTop = el.scrollHeight;
      return;
    }
    var floor = el.__floor || 0;
    if (fresh || !floor) setFloor(el, log, Math.max(bottom, view));
    else if (bottom > floor || bottom < floor - view) {
      setFloor(el, log, Math.max(bottom + Math.round(view * (1 - KEEP)), view));
    }
    el.scrollTop = el.__floor - view;
  }
  // Arriving at the end, then again two frames later: a part of the log laid out before the
  // browser decided it is in sight counts its placeholder size (contain-intrinsic-size, 600px)
  // and takes its real size a frame later, inside the floor, where no observer sees it. Placed
  // by the placeholder, the log started up to a part's height above the top of the view.
  function arrive(el) {
    follow(el, true);
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { follow(el, true); });
    });
  }
  function attach(el) {
    if (el.__taskdeckScroll) return;
    var log = document.getElementById("event-log"), end = document.getElementById("log-end");
    if (!log || !end) return;
    el.__taskdeckScroll = true;
    el.dataset.following = "true";
    arrive(el);
    // Only a move up stops the following: by the time the scroll event of our own move to the
    // end arrives, newer entries may have grown the log again (not at the bottom, yet following).
    // A move up while the log's height changed is the layout settling, not the reader: a part
    // of the log that was never shown (entries that came while the reader was up the page)
    // takes its real size only once shown after a jump to the end, and the browser moves the
    // scroll position with it; the ResizeObserver then takes the log back to its end. (No
    // scrolling from this handler: a scroll here costs another layout and frame.)
    var lastTop = el.scrollTop, lastHeight = el.scrollHeight;
    el.addEventListener("scroll", function () {
      var top = el.scrollTop, height = el.scrollHeight, following = el.dataset.following;
      if (top < lastTop - 1 && height === lastHeight) following = "false";
      else if (atBottom(el)) following = "true";
      lastTop = top;
      lastHeight = height;
      if (el.dataset.following !== following) el.dataset.following = following;
    }, { passive: true });
    // A page turn sets a new floor, which resizes the log inside this very callback: observed
    // still, that resize could only be reported in the next frame, and the browser raises "loop
    // completed with undelivered notifications" (an error event, which Reflex sends to the
    // backend's log). So the log is watched again from the next frame on, when it has its size.
    var resized = new ResizeObserver(function () {
      var floor = el.__floor;
      follow(el);
      if (el.__floor === floor) return;
      resized.unobserve(log);
      requestAnimationFrame(function () { resized.observe(log); });
    });
    resized.observe(log);
    new IntersectionObserver(function (seen) {
      if (!seen[seen.length - 1].isIntersecting) follow(el);
    }, { root: el }).observe(end);
    // The task starting or ending (data-live) changes how the log follows.
    new MutationObserver(function () { arrive(el); })
      .observe(el, { attributes: true, attributeFilter: ["data-live"] });
  }
  // A click on a tool call's summary in the log: its toggle lays out in the next frame, where
  // the observers call follow(); the mark lasts until the frame after.
  document.addEventListener("click", function (event) {
    var summary = event.target && event.target.closest && event.target.closest("#log-scroll summary");
    var el = summary && document.getElementById("log-scroll");
    if (!el) return;
    el.__toggled = true;
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { el.__toggled = false; });
    });
  });
  // A tool call the reader opened stays open when its result comes: the server sends the entry
  // anew, and the page replaces its HTML (app/log_html.py), folded. The log is watched for
  // that only while a call is open, so a new entry costs no script.
  var openCalls = new Set(), calls = null;
  function reopen() {
    openCalls.forEach(function (id) {
      var call = calls.log.querySelector('details[data-id="' + CSS.escape(id) + '"]');
      if (call && !call.open) call.open = true;
    });
  }
  document.addEventListener("toggle", function (event) {
    var call = event.target, log = document.getElementById("event-log");
    if (!log || !call.matches || !call.matches("#event-log details[data-id]")) return;
    if (call.open) openCalls.add(call.dataset.id);
    else openCalls.delete(call.dataset.id);
    if (calls && (calls.log !== log || !openCalls.size)) {
      calls.disconnect();
      calls = null;
    }
    if (openCalls.size && !calls) {
      calls = new MutationObserver(reopen);
      calls.log = log;
      calls.observe(log, { childList: true, subtree: true });
    }
  }, true);
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest && event.target.closest("#jump-latest");
    var el = document.getElementById("log-scroll");
    if (!button || !el) return;
    el.dataset.following = "true";
    follow(el, true);
  });
  setInterval(function () {
    var el = document.getElementById("log-scroll");
    if (el) attach(el);
  }, 300);

  // A running task's clock: an element of class elapsed-clock with data-elapsed (the seconds
  // the task had run when the server read it) shows the time since, counted on by the
  // browser's own clock, so a difference between the two machines' clocks does not show. The
  // server's duration replaces it when the task ends. Text is only set when it changes (once a
  // second).
  function elapsed(seconds) {
    return seconds < 120 ? seconds + " s" : (seconds / 60).toFixed(1) + " min";
  }
  var clocks = document.getElementsByClassName("elapsed-clock");  // live, kept by the browser
  setInterval(function () {
    Array.prototype.forEach.call(clocks, function (clock) {
      if (clock.__from !== clock.dataset.elapsed) {
        clock.__from = clock.dataset.elapsed;
        clock.__start = Date.now() - 1000 * Number(clock.dataset.elapsed);
      }
      var text = elapsed(Math.floor((Date.now() - clock.__start) / 1000));
      if (clock.textContent !== text) clock.textContent = text;
    });
  }, 250);
})();
