"use strict";
// The SDP day at a glance: parts received per WIB hour (by lateness) and records accepted per Kanwil, redrawn
// at most every five seconds while live updates arrive.
(() => {
  const draw = simpul.chart;
  let pending = null;

  async function refresh() {
    pending = null;
    if (document.getElementById("tab-sdp").hidden) return;
    const day = document.getElementById("day").textContent;
    const response = await fetch(`/api/timeline?day=${encodeURIComponent(day)}`, { credentials: "same-origin" });
    if (response.status !== 200) return;
    const hours = await response.json();
    const labels = [...Array(24).keys()].map((h) => String(h).padStart(2, "0"));
    draw("chart-hours", "bar", labels, [
      { label: t("Tepat waktu", "On time"), data: hours.on_time, backgroundColor: "#2f6f9f" },
      { label: t("Lewat 10:00", "After 10:00"), data: hours.after_10, backgroundColor: "#d97706" },
      { label: t("Lewat 14:00", "After 14:00"), data: hours.after_14, backgroundColor: "#b3261e" },
    ], { scales: { x: { stacked: true }, y: { stacked: true, ticks: { precision: 0 } } } });
    const perKanwil = new Map();
    for (const tr of document.querySelectorAll("#units tbody tr")) {
      const kanwil = tr.cells[0].textContent;
      const accepted = Number(tr.querySelector("td.accepted").textContent.replace(/\./g, "")) || 0;
      perKanwil.set(kanwil, (perKanwil.get(kanwil) || 0) + accepted);
    }
    const order = [...perKanwil.keys()].sort((a, b) => perKanwil.get(b) - perKanwil.get(a));
    draw("chart-kanwil", "bar", order, [{ label: t("Diterima", "Accepted"), data: order.map((k) => perKanwil.get(k)),
      backgroundColor: "#2f6f9f" }], { indexAxis: "y", scales: { x: { ticks: { precision: 0 } } } });
    document.getElementById("sdp-charts").dataset.loaded = "true";
  }

  function soon() { if (!pending) pending = setTimeout(refresh, 5000); }
  window.addEventListener("simpul:unit", soon);
  const ready = setInterval(() => {
    if (document.body.dataset.loaded === "true") { clearInterval(ready); refresh(); }
  }, 200);
})();
