// ephemera's dashboard: keeps a page's live part current. The server sends
// the part again (server-sent events) whenever it changes; this puts it in
// place. Without JavaScript the page still works; it just does not move.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) {
    return;
  }
  var source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("live", function (event) {
    // Keep the log where the reader left it, unless they were at its end.
    var log = document.getElementById("log");
    var atEnd = !log || log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    var scrolled = log ? log.scrollTop : 0;
    live.innerHTML = event.data;
    log = document.getElementById("log");
    if (log) {
      log.scrollTop = atEnd ? log.scrollHeight : scrolled;
    }
    document.documentElement.setAttribute("data-live-updates",
      String(Number(document.documentElement.getAttribute("data-live-updates") || 0) + 1));
  });
})();
