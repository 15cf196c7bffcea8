// ephemera's dashboard: keeps a page's live part current, and filters a
// deployment log. The server sends the live part again (server-sent events)
// whenever it changes; this puts it in place. Without JavaScript the page
// still works; it just does not move.
(function () {
  "use strict";
  var search = document.getElementById("log-search");

  // Shows only the log lines that contain the search text (any case).
  function filterLog() {
    var log = document.getElementById("log");
    if (!log || !search) {
      return;
    }
    if (log.getAttribute("data-full") === null) {
      log.setAttribute("data-full", log.textContent);
    }
    var full = log.getAttribute("data-full");
    var wanted = search.value.toLowerCase();
    log.textContent = wanted === "" ? full : full.split("\n").filter(function (line) {
      return line.toLowerCase().indexOf(wanted) !== -1;
    }).join("\n");
  }
  if (search) {
    search.hidden = false;
    search.addEventListener("input", filterLog);
  }

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
    filterLog();
    log = document.getElementById("log");
    if (log) {
      log.scrollTop = atEnd ? log.scrollHeight : scrolled;
    }
    document.documentElement.setAttribute("data-live-updates",
      String(Number(document.documentElement.getAttribute("data-live-updates") || 0) + 1));
  });
})();
