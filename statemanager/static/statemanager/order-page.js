/* A page that marks itself live (the `data-refresh-seconds` of its live note): the page of an
   order the engine may move any moment (pending, running, waiting) and the dashboard reload
   themselves every few seconds, so support sees the work as it happens. A page waits while
   someone is typing in it (a reason to resolve a callback) or reading a section they
   opened: a reload would throw that away. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelector("[data-refresh-seconds]");
    if (!live) return;
    var seconds = Number(live.dataset.refreshSeconds) || 5;
    var paused = live.querySelector(".sm-live-paused");
    var folds = Array.prototype.slice.call(document.querySelectorAll("details"));
    var openAtLoad = folds.map(function (fold) {
      return fold.open;
    });
    var fields = Array.prototype.slice.call(
      document.querySelectorAll("input[type=text], textarea")
    );

    function busy() {
      var focused = document.activeElement;
      if (focused && fields.indexOf(focused) !== -1) return true;
      var typed = fields.some(function (field) {
        return field.value !== field.defaultValue;
      });
      var opened = folds.some(function (fold, index) {
        return fold.open && !openAtLoad[index];
      });
      return typed || opened;
    }

    function showState() {
      var waiting = busy();
      if (paused) paused.hidden = !waiting;
      return waiting;
    }

    function tick() {
      if (showState()) {
        window.setTimeout(tick, 1000);
        return;
      }
      window.location.reload();
    }

    ["input", "focusin", "focusout"].forEach(function (name) {
      document.addEventListener(name, showState);
    });
    document.addEventListener("toggle", showState, true); // does not bubble
    window.setTimeout(tick, seconds * 1000);
  });
})();
