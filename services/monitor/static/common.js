"use strict";
// What every view of the monitor shares: the number format, table cells, times in WIB, Chart.js charts.
const simpul = (() => {
  const fmt = new Intl.NumberFormat("id-ID");
  const charts = {};

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleString("id-ID", { timeZone: "Asia/Jakarta" }) + " WIB" : "–";
  }

  // A chart drawn once and then updated in place; nothing when the library is missing (tables say it all).
  function chart(id, type, labels, datasets, options = {}) {
    if (typeof Chart === "undefined") return;
    const data = { labels, datasets };
    if (charts[id]) {
      charts[id].data = data;
      charts[id].update("none");
      return;
    }
    charts[id] = new Chart(document.getElementById(id), {
      type, data,
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: datasets.length > 1 } },
        ...options },
    });
  }

  // The live events that follow the id a view was read at (on a reconnect the browser sends the last id it got,
  // Last-Event-ID); the page's dot says whether they flow, and an ended session goes back to the login page.
  function live(after) {
    const source = new EventSource(`/events?after=${encodeURIComponent(after)}`);
    const dot = document.getElementById("live");
    source.onopen = () => { dot.className = "live online"; };
    source.onerror = () => { dot.className = "live offline"; };
    source.addEventListener("logout", () => { source.close(); window.location.assign("/login"); });
    return source;
  }

  return { fmt, cell, time, chart, live };
})();
