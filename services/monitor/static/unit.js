"use strict";
// One UPT's page: its day (every part of every snapshot, as the registry answered it), its last days and what the
// consolidation runs found for it; it follows the live updates of this UPT.
(() => {
  const { fmt, cell, time, chart } = simpul;
  const uptId = decodeURIComponent(location.pathname.split("/").pop());
  const pct = new Intl.NumberFormat("id-ID", { style: "percent", maximumFractionDigits: 1 });
  const STATE = { missing: t("Belum kirim", "Not sent"), partial: t("Sebagian", "Partial"),
    complete: t("Lengkap", "Complete") };
  const LATENESS = { on_time: t("Tepat waktu", "On time"), after_10: t("Lewat 10:00", "After 10:00"),
    after_14: t("Lewat 14:00", "After 14:00") };
  const RECEIPT = { accepted: t("Diterima", "Accepted"), partially_accepted: t("Sebagian diterima", "Partly accepted"),
    rejected: t("Ditolak", "Rejected") };
  const APPLIED = { applied: t("Diterapkan", "Applied"), held: t("Ditahan (menyusut)", "Held (shrunken)"),
    unchanged: t("Tidak berubah", "Unchanged"), incomplete: t("Belum lengkap", "Incomplete"),
    not_sent: t("Tidak kirim", "Not sent") };
  const RUN_FIGURES = ["inmates", "admissions", "releases", "transfers_in", "transfers_out", "overstaying", "notices",
    "without_ektp"];
  const state = { day: null, pending: null };

  function put(id, text, cls) {
    const el = document.getElementById(id);
    el.textContent = text;
    if (cls !== undefined) el.className = "value " + cls;
  }

  function fill(id, rows) { document.querySelector(`#${id} tbody`).replaceChildren(...rows); }

  function note(text, columns) {
    const td = cell(text, "muted");
    td.colSpan = columns;
    return tr([td]);
  }

  function tr(cells, cls) {
    const row = document.createElement("tr");
    row.replaceChildren(...cells);
    if (cls) row.className = cls;
    return row;
  }

  function render(data) {
    const u = data.unit;
    state.day = data.day;
    document.title = `${u.name} · Simpul Monitor`;
    document.getElementById("unit-name").textContent = u.name;
    document.getElementById("unit-id").textContent = u.upt_id;
    document.getElementById("unit-kanwil").textContent = u.kanwil_name;
    document.getElementById("day-pick").value = data.day;
    put("u-state", STATE[u.state] || u.state, u.state === "complete" ? "ok" : u.state === "missing" ? "" : "bad");
    put("u-parts", u.parts ? `${u.parts_received}/${u.parts}` : "–");
    put("u-lateness", u.lateness ? LATENESS[u.lateness] : "–", u.lateness === "on_time" ? "ok" : u.lateness ? "bad" : "");
    put("u-accepted", fmt.format(u.accepted));
    put("u-rejected", `${fmt.format(u.rejected)} (${pct.format(u.refusal_rate)})`, u.rejected ? "bad" : "");
    put("u-warnings", fmt.format(u.warnings));
    put("u-refused", fmt.format(u.refused_messages), u.refused_messages ? "bad" : "");
    put("u-central", fmt.format(u.central_total));
    put("u-flagged", fmt.format(u.flagged_total), u.flagged_total ? "bad" : "");
    document.getElementById("u-csv").href = `/units.csv?upt=${encodeURIComponent(u.upt_id)}&day=${data.day}`;

    fill("parts", data.parts.map((p) => tr([
      cell(String(p.snapshot), "num"),
      cell(`${p.part}/${p.parts}`, "num"),
      cell(RECEIPT[p.status] || p.status, p.status === "accepted" ? "state ok" : "state bad"),
      cell(fmt.format(p.received), "num"),
      cell(fmt.format(p.accepted), "num"),
      cell(fmt.format(p.rejected), "num" + (p.rejected ? " bad" : "")),
      cell(fmt.format(p.warnings), "num"),
      cell(time(p.received_at), "time"),
      cell(p.lateness ? LATENESS[p.lateness] : "–", "lateness " + (p.lateness || "")),
      cell(p.superseded ? t("Digantikan snapshot baru", "Superseded by a newer snapshot") : "", "muted"),
    ], p.superseded ? "superseded" : "")));
    if (!data.parts.length) {
      fill("parts", [note(t("Belum ada kiriman hari itu.", "Nothing received that day."), 10)]);
    }

    const days = [{ day: data.day, ...u }, ...data.history];
    fill("history", days.map((h) => tr([
      cell(h.day, "time"),
      cell(STATE[h.state] || h.state, "state " + h.state),
      cell(h.parts ? `${h.parts_received}/${h.parts}` : "–", "num"),
      cell(h.lateness ? LATENESS[h.lateness] : "–", "lateness " + (h.lateness || "")),
      cell(fmt.format(h.accepted), "num"),
      cell(fmt.format(h.rejected), "num" + (h.rejected ? " bad" : "")),
      cell(pct.format(h.refusal_rate), "num" + (h.refusal_rate >= 0.05 ? " bad" : "")),
    ])));
    const oldest = [...days].reverse();
    chart("chart-days", "bar", oldest.map((h) => h.day.slice(5)), [
      { label: t("Diterima", "Accepted"), data: oldest.map((h) => h.accepted), backgroundColor: "#2f6f9f" },
      { label: t("Ditolak", "Rejected"), data: oldest.map((h) => h.rejected), backgroundColor: "#b3261e" },
    ], { scales: { x: { stacked: true }, y: { stacked: true, ticks: { precision: 0 } } } });

    fill("unit-runs", data.runs.map((r) => {
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(r.run_id)}/print`;
      link.textContent = r.run_id.slice(-8);
      const run = cell("");
      run.append(link);
      return tr([
        cell(r.day, "time"), run, cell(APPLIED[r.applied] || r.applied, "applied " + r.applied),
        ...RUN_FIGURES.map((k) => cell(fmt.format(r[k]), "num" + (k === "overstaying" && r[k] ? " bad" : ""))),
      ]);
    }));
    if (!data.runs.length) {
      fill("unit-runs", [note(t("Belum ada konsolidasi.", "No consolidation yet."), 11)]);
    }
    document.body.dataset.loaded = "true";
  }

  async function load(day) {
    const query = day ? `?day=${encodeURIComponent(day)}` : "";
    const response = await fetch(`/api/units/${encodeURIComponent(uptId)}/detail${query}`, { credentials: "same-origin" });
    if (response.status === 401) { location.href = "/login"; return undefined; }
    if (response.status === 403) { location.reload(); return undefined; } // the page itself says why
    if (!response.ok) return undefined; // a failed read: the figures shown stay until the next update
    const data = await response.json();
    render(data);
    return data.live_id;
  }

  // This UPT's updates of the shown day reload the page's figures (at most once a second).
  function connect(after) {
    const source = simpul.live(after);
    const soon = () => { if (!state.pending) state.pending = setTimeout(() => { state.pending = null; load(state.day); }, 1000); };
    source.addEventListener("unit", (e) => {
      const event = JSON.parse(e.data);
      if (event.row.upt_id === uptId && event.day === state.day) soon();
    });
    source.addEventListener("run", soon);
    source.addEventListener("reload", soon);
  }

  const asked = new URLSearchParams(location.search).get("day");
  document.getElementById("day-pick").addEventListener("change", (e) => {
    if (!e.target.value) return;
    history.replaceState(null, "", `?day=${e.target.value}`);
    load(e.target.value);
  });
  load(asked).then((after) => { if (after !== undefined) connect(after); });
})();
