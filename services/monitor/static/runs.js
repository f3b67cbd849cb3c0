"use strict";
// The centre's consolidation runs of the day: a running one's progress (live), and a finished one's report,
// the consolidator's own figures, for the UPTs this login sees, with the same lines as CSV.
(() => {
  const { fmt, cell } = simpul;
  const STATE = { started: t("Dimulai", "Started"), progress: t("Berjalan", "Running"),
    finished: t("Selesai", "Finished"), failed: t("Gagal", "Failed") };
  const APPLIED = { applied: t("Diterapkan", "Applied"), held: t("Ditahan (menyusut)", "Held (shrunken)"),
    unchanged: t("Tidak berubah", "Unchanged"), incomplete: t("Belum lengkap", "Incomplete"),
    not_sent: t("Tidak kirim", "Not sent") };
  const LATENESS = { on_time: t("Tepat waktu", "On time"), after_10: t("Lewat 10:00", "After 10:00"),
    after_14: t("Lewat 14:00", "After 14:00") };
  const REASON = { no_nik: t("Tanpa NIK", "No NIK"),
    nik_not_in_population: t("NIK tidak ada di data kependudukan", "NIK not in the population record"),
    no_print_ready_capture: t("Perekaman belum siap cetak", "No capture ready to print") };
  const TOP = 15; // the largest kab/kota rows; the CSV has them all
  const runs = new Map();
  let shown = null;

  function rows(list, label) {
    return list.map((r) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(cell(label(r)), cell(fmt.format(r.count), "num"));
      return tr;
    });
  }

  function empty(columns) {
    const tr = document.createElement("tr");
    const td = cell("–", "muted");
    td.colSpan = columns;
    tr.append(td);
    return [tr];
  }

  function renderBreakdowns(b) {
    const body = (id) => document.querySelector(`#bd-${id} tbody`);
    const fill = (id, list, label) => body(id).replaceChildren(...(list.length ? rows(list, label) : empty(2)));
    fill("overstaying_by_register", b.overstaying_by_register, (r) => r.label);
    fill("without_ektp_by_reason", b.without_ektp_by_reason, (r) => REASON[r.key] || r.key);
    fill("without_ektp_by_upt_kabkota", b.without_ektp_by_upt_kabkota.slice(0, TOP), (r) => `${r.label} (${r.key})`);
    fill("without_ektp_by_nik_kabkota", b.without_ektp_by_nik_kabkota.slice(0, TOP),
      (r) => (r.key === "-" ? t("Tanpa NIK", "No NIK") : `${r.label} (${r.key})`));
    const registers = new Map();
    for (const [n, list] of [[0, b.notice_10_by_register], [1, b.notice_3_by_register]]) {
      for (const r of list) {
        const counts = registers.get(r.key) || [0, 0];
        counts[n] = r.count;
        registers.set(r.key, counts);
      }
    }
    const notices = [...registers.entries()].sort((x, y) => x[0].localeCompare(y[0])).map(([register, [ten, three]]) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(cell(register), cell(fmt.format(ten), "num"), cell(fmt.format(three), "num"));
      return tr;
    });
    body("notices_by_register").replaceChildren(...(notices.length ? notices : empty(3)));
  }

  async function trend() {
    const response = await fetch("/api/runs/trend?days=30", { credentials: "same-origin" });
    if (response.status !== 200) return;
    const days = (await response.json()).days;
    const labels = days.map((d) => d.day.slice(5));
    const series = (key, label, color) => ({ label, data: days.map((d) => d[key]), borderColor: color,
      backgroundColor: color, tension: 0.2 });
    simpul.chart("chart-run-trend", "line", labels, [
      series("overstaying", t("Melebihi masa tahanan", "Overstaying"), "#b42318"),
      series("notices", t("Pemberitahuan", "Notices"), "#b54708"),
      series("without_ektp", t("Tanpa e-KTP", "Without e-KTP"), "#175cd3"),
    ], { plugins: { legend: { display: true } } });
    simpul.chart("chart-run-moves", "bar", labels, [
      series("admissions", t("Masuk", "Admissions"), "#12b76a"),
      series("releases", t("Bebas", "Releases"), "#667085"),
      series("transfers_out", t("Pindah", "Transfers"), "#7a5af8"),
    ], { plugins: { legend: { display: true } } });
    document.getElementById("view-runs").dataset.trend = String(days.length);
  }

  function renderList() {
    const items = [...runs.values()].sort((a, b) => b.started_at.localeCompare(a.started_at)).map((run) => {
      const div = document.createElement("div");
      div.className = `run ${run.state}`;
      div.dataset.run = run.run_id;
      const title = document.createElement("span");
      title.textContent = `${run.day} – ${STATE[run.state] || run.state} – ${run.requested_by || run.trigger}`;
      const bar = document.createElement("progress");
      bar.max = run.steps_total || 1;
      bar.value = run.state === "finished" ? bar.max : run.steps_done;
      const step = document.createElement("span");
      step.className = "step";
      step.textContent = run.state === "failed" ? (run.reason || run.code || "") : (run.step || "");
      div.replaceChildren(title, bar, step);
      div.addEventListener("click", () => report(run.run_id));
      return div;
    });
    document.getElementById("run-list").replaceChildren(...items);
  }

  async function report(runId) {
    const response = await fetch(`/api/runs/${encodeURIComponent(runId)}`, { credentials: "same-origin" });
    if (response.status !== 200) return;
    const r = await response.json();
    shown = runId;
    const t = r.totals;
    document.getElementById("run-sent").textContent = `${fmt.format(t.upts_sent)} / ${fmt.format(t.upts)}`;
    document.getElementById("run-inmates").textContent = fmt.format(t.inmates);
    document.getElementById("run-admissions").textContent = fmt.format(t.admissions);
    document.getElementById("run-releases").textContent = fmt.format(t.releases);
    document.getElementById("run-transfers").textContent = fmt.format(t.transfers_out);
    document.getElementById("run-overstaying").textContent = fmt.format(t.overstaying);
    document.getElementById("run-without-ektp").textContent = fmt.format(t.without_ektp);
    document.getElementById("run-csv").href = `/runs/${encodeURIComponent(runId)}.csv`;
    document.getElementById("run-breakdowns-csv").href = `/runs/${encodeURIComponent(runId)}/breakdowns.csv`;
    document.getElementById("run-print").href = `/runs/${encodeURIComponent(runId)}/print`;
    renderBreakdowns(r.breakdowns);
    const rows = r.lines.map((l) => {
      const tr = document.createElement("tr");
      tr.dataset.runUnit = l.upt_id;
      tr.replaceChildren(
        cell(l.kanwil_name.replace("Kanwil Ditjenpas ", "")), cell(l.name),
        cell(APPLIED[l.applied] || l.applied, "applied " + l.applied),
        cell(l.lateness ? LATENESS[l.lateness] : "–", "lateness " + (l.lateness || "")),
        ...["accepted", "refused", "inmates", "admissions", "releases", "transfers_in", "transfers_out",
          "in_transit", "dual_custody", "overstaying", "notices", "without_ektp"].map((k) =>
          cell(fmt.format(l[k]), `num ${k}` + (["overstaying", "dual_custody"].includes(k) && l[k] ? " bad" : ""))),
      );
      return tr;
    });
    document.querySelector("#run-lines tbody").replaceChildren(...rows);
    document.getElementById("run-report").hidden = false;
    document.getElementById("view-runs").dataset.loaded = "true";
  }

  async function load() {
    const response = await fetch("/api/runs", { credentials: "same-origin" });
    if (response.status !== 200) return;
    for (const run of (await response.json()).runs) runs.set(run.run_id, run);
    renderList();
    const finished = [...runs.values()].filter((r) => r.state === "finished")
      .sort((a, b) => b.started_at.localeCompare(a.started_at));
    if (finished.length) await report(finished[0].run_id);
    document.getElementById("view-runs").dataset.listed = "true";
  }

  window.addEventListener("simpul:run", (e) => {
    const run = e.detail;
    runs.set(run.run_id, run);
    renderList();
    if (run.state === "finished" && (shown === null || shown === run.run_id || runs.get(shown)?.day === run.day)) {
      report(run.run_id);
    }
    if (run.state === "finished") trend();
  });
  load();
  trend();
})();
