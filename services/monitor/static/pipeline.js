"use strict";
// The e-KTP pipeline for the centre and the Dukcapil offices: backlogs, the two critical times as histograms
// (Chart.js, installed by `make assets` and served by the monitor), and the captures stuck past their time.
(() => {
  const { fmt, cell, chart } = simpul;
  let pending = null;

  function render(p) {
    document.getElementById("adj-backlog").textContent = fmt.format(p.adjudication_backlog);
    document.getElementById("print-backlog").textContent = fmt.format(p.print_backlog);
    document.getElementById("stuck-total").textContent = fmt.format(p.stuck_total);
    const order = Object.keys(p.statuses); // the funnel: in the order a capture passes the statuses
    chart("chart-status", "bar", order, [{ label: t("Perekaman", "Captures"), data: order.map((s) => p.statuses[s]),
      backgroundColor: "#2f6f9f" }], { indexAxis: "y", scales: { x: { ticks: { precision: 0 } } } });
    const counts = { scales: { y: { ticks: { precision: 0 } } } };
    chart("chart-i", "bar", p.buckets, [
      { label: t("Menunggu", "Waiting"), data: p.waiting_i, backgroundColor: "#d97706" },
      { label: t("Selesai 24 jam", "Done in 24 h"), data: p.took_i, backgroundColor: "#2f6f9f" },
    ], counts);
    chart("chart-ii", "bar", p.buckets, [
      { label: t("Menunggu", "Waiting"), data: p.waiting_ii, backgroundColor: "#d97706" },
      { label: t("Selesai 24 jam", "Done in 24 h"), data: p.took_ii, backgroundColor: "#2f6f9f" },
    ], counts);
    const rows = p.stuck.map((s) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(
        cell(s.kabkota), cell(s.packet_id), cell(s.nik_masked || "–", "nik"), cell(s.status), cell(s.phase),
        cell(simpul.time(s.since), "time"),
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

  // A capture's move arrives as an "ektp" live event (app.js): refreshed at most every two seconds.
  window.addEventListener("simpul:ektp", () => { if (!pending) pending = setTimeout(refresh, 2000); });
  refresh();
})();
