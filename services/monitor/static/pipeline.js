"use strict";
// The e-KTP pipeline for the centre and the Dukcapil offices: backlogs, the two critical times as histograms
// (Chart.js, installed by `make assets` and served by the monitor), and the captures stuck past their time.
(() => {
  const charts = {};
  const fmt = new Intl.NumberFormat("id-ID");
  let pending = null;

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function bars(id, labels, datasets, horizontal) {
    if (typeof Chart === "undefined") return; // without the library the tables still say everything
    const data = { labels, datasets };
    if (charts[id]) {
      charts[id].data = data;
      charts[id].update("none");
      return;
    }
    charts[id] = new Chart(document.getElementById(id), {
      type: "bar",
      data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: datasets.length > 1 } },
        scales: { x: { ticks: { precision: 0 } }, y: { ticks: { precision: 0 } } },
      },
    });
  }

  function render(p) {
    document.getElementById("adj-backlog").textContent = fmt.format(p.adjudication_backlog);
    document.getElementById("print-backlog").textContent = fmt.format(p.print_backlog);
    document.getElementById("stuck-total").textContent = fmt.format(p.stuck_total);
    const order = Object.keys(p.statuses).sort((a, b) => p.statuses[b] - p.statuses[a]);
    bars("chart-status", order, [{ label: t("Perekaman", "Captures"), data: order.map((s) => p.statuses[s]),
      backgroundColor: "#2f6f9f" }], true);
    bars("chart-i", p.buckets, [
      { label: t("Menunggu", "Waiting"), data: p.waiting_i, backgroundColor: "#d97706" },
      { label: t("Selesai 24 jam", "Done in 24 h"), data: p.took_i, backgroundColor: "#2f6f9f" },
    ]);
    bars("chart-ii", p.buckets, [
      { label: t("Menunggu", "Waiting"), data: p.waiting_ii, backgroundColor: "#d97706" },
      { label: t("Selesai 24 jam", "Done in 24 h"), data: p.took_ii, backgroundColor: "#2f6f9f" },
    ]);
    const rows = p.stuck.map((s) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(
        cell(s.kabkota), cell(s.packet_id), cell(s.status), cell(s.phase),
        cell(new Date(s.since).toLocaleString("id-ID", { timeZone: "Asia/Jakarta" }) + " WIB", "time"),
        cell(fmt.format(s.hours), "num"), cell(s.reason),
      );
      return tr;
    });
    document.querySelector("#stuck tbody").replaceChildren(...rows);
    document.getElementById("pipeline").dataset.loaded = "true";
  }

  async function refresh() {
    pending = null;
    const response = await fetch("/api/pipeline", { credentials: "same-origin" });
    if (response.status !== 200) return; // not this login's to see
    document.getElementById("pipeline").hidden = false;
    render(await response.json());
  }

  // A capture's move arrives as an "ektp" live event (app.js): refreshed at most every five seconds.
  window.addEventListener("simpul:ektp", () => { if (!pending) pending = setTimeout(refresh, 5000); });
  refresh();
})();
