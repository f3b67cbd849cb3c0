"use strict";
// The live view: load the scoped tables once, then apply each SSE event to its row.
const units = new Map();
const offices = new Map();
const state = { day: null, dead: null, view: "sdp" };
const { fmt, cell } = simpul;
const pct = new Intl.NumberFormat("id-ID", { style: "percent", maximumFractionDigits: 1 });

// Worst first, as the monitor orders them (domain/views.py worst_first): severity, refusal rate, name.
function worse(a, b) {
  return a.severity - b.severity || b.refusal_rate - a.refusal_rate || a.name.localeCompare(b.name);
}

function order() {
  const tbody = document.querySelector("#units tbody");
  const rows = [...units.values()].sort((a, b) => worse(a.row, b.row));
  rows.forEach(({ tr }, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
}
const STATE_LABEL = { missing: t("Belum kirim", "Not sent"), partial: t("Sebagian", "Partial"),
  complete: t("Lengkap", "Complete") };
const LATENESS_LABEL = { on_time: t("Tepat waktu", "On time"), after_10: t("Lewat 10:00", "After 10:00"),
  after_14: t("Lewat 14:00", "After 14:00") };

function place(map, tbody, key, row, cells) {
  let tr = map.get(key)?.tr;
  const fresh = !tr;
  if (fresh) {
    tr = document.createElement("tr");
    tr.dataset.unit = key;
  }
  tr.replaceChildren(...cells);
  map.set(key, { tr, row });
  if (fresh) tbody.appendChild(tr);
  else {
    tr.classList.remove("flash");
    void tr.offsetWidth; // restart the highlight animation
    tr.classList.add("flash");
  }
}

// A UPT's name leads to its own page, for the day shown.
function unitLink(row) {
  const td = cell("");
  const a = document.createElement("a");
  a.href = `/units/${encodeURIComponent(row.upt_id)}?day=${encodeURIComponent(state.day || "")}`;
  a.textContent = row.name;
  td.append(a);
  return td;
}

function renderUnit(row) {
  const last = row.last_submission_at
    ? new Date(row.last_submission_at).toLocaleTimeString("id-ID", { timeZone: "Asia/Jakarta" }) + " WIB" : "–";
  place(units, document.querySelector("#units tbody"), row.upt_id, row, [
    cell(row.kanwil_name.replace("Kanwil Ditjenpas ", "")),
    unitLink(row),
    cell(STATE_LABEL[row.state] || row.state, "state " + row.state),
    cell(row.parts ? `${row.parts_received}/${row.parts}` : "–", "num parts"),
    cell(row.lateness ? LATENESS_LABEL[row.lateness] : "–", "lateness " + (row.lateness || "")),
    cell(fmt.format(row.accepted), "num accepted"),
    cell(fmt.format(row.rejected), "num rejected" + (row.rejected ? " bad" : "")),
    cell(pct.format(row.refusal_rate), "num rate" + (row.refusal_rate >= 0.05 ? " bad" : "")),
    cell(fmt.format(row.warnings), "num warnings"),
    cell(fmt.format(row.refused_messages), "num refused" + (row.refused_messages ? " bad" : "")),
    cell(fmt.format(row.central_total), "num central"),
    cell(fmt.format(row.flagged_total), "num flagged" + (row.flagged_total ? " bad" : "")),
    cell(last, "time"),
  ]);
}

function renderOffice(row) {
  place(offices, document.querySelector("#offices tbody"), row.unit_id, row, [
    cell(row.name.replace("Disdukcapil ", "")),
    cell(fmt.format(row.regional), "num regional"),
    cell(fmt.format(row.central), "num central"),
    cell(fmt.format(row.failed), "num failed" + (row.failed ? " bad" : "")),
    cell(fmt.format(row.to_resolve), "num to-resolve" + (row.to_resolve ? " bad" : "")),
    cell(fmt.format(row.printing), "num printing"),
    cell(fmt.format(row.issued), "num issued"),
    cell(fmt.format(row.refused_messages), "num refused" + (row.refused_messages ? " bad" : "")),
  ]);
}

function summarise() {
  let reported = 0, accepted = 0, rejected = 0, central = 0, flagged = 0;
  for (const { row } of units.values()) {
    if (row.state !== "missing") reported++;
    accepted += row.accepted; rejected += row.rejected; central += row.central_total; flagged += row.flagged_total;
  }
  document.getElementById("sum-reported").textContent = `${fmt.format(reported)} / ${fmt.format(units.size)}`;
  document.getElementById("sum-accepted").textContent = fmt.format(accepted);
  document.getElementById("sum-rejected").textContent = fmt.format(rejected);
  document.getElementById("sum-central").textContent = fmt.format(central);
  document.getElementById("sum-flagged").textContent = fmt.format(flagged);
  document.getElementById("sum-dead").textContent = state.dead === null ? "–" : fmt.format(state.dead);
  applyFilter();
}

function applyFilter() {
  const q = document.getElementById("filter").value.trim().toLowerCase();
  if (!["sdp", "ektp"].includes(state.view)) return;
  const map = state.view === "sdp" ? units : offices;
  let shown = 0;
  for (const { tr, row } of map.values()) {
    const text = `${row.name} ${row.kanwil_name || ""} ${row.upt_id || row.unit_id}`.toLowerCase();
    tr.hidden = Boolean(q) && !text.includes(q);
    if (!tr.hidden) shown++;
  }
  document.getElementById("shown").textContent = `${fmt.format(shown)} ${state.view === "sdp" ? "UPT" : "kab/kota"}`;
}

function show(view) {
  state.view = view;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  for (const name of ["sdp", "ektp", "runs", "ops", "cases"]) {
    document.getElementById(`view-${name}`).hidden = view !== name;
  }
  document.querySelector(".controls").hidden = !["sdp", "ektp"].includes(view); // the filter is the tables
  applyFilter();
}

async function load(day) {
  const query = day ? `?day=${encodeURIComponent(day)}` : "";
  const response = await fetch(`/api/units${query}`, { credentials: "same-origin" });
  if (response.status === 401) { location.href = "/login"; return; }
  const data = await response.json();
  if (data.day !== state.day) { // another day: its rows replace the ones shown
    for (const map of [units, offices]) { for (const { tr } of map.values()) tr.remove(); map.clear(); }
  }
  state.day = data.day;
  state.dead = data.dead_letters_today;
  document.getElementById("day").textContent = data.day;
  document.getElementById("day-pick").value = data.day;
  document.getElementById("scope").textContent = data.scope.label;
  document.getElementById("dead-box").hidden = data.dead_letters_today === null;
  for (const row of data.units) renderUnit(row);
  order();
  for (const row of data.offices) renderOffice(row);
  document.getElementById("tab-sdp").hidden = data.units.length === 0;
  // a Dukcapil office sees no prison: the SDP figures are not shown to it at all
  document.querySelectorAll(".sdp-only").forEach((el) => { el.hidden = data.units.length === 0; });
  document.getElementById("tab-ektp").hidden = data.offices.length === 0;
  document.getElementById("tab-runs").hidden = data.units.length === 0; // the prisons' runs, not Dukcapil's
  document.getElementById("tab-ops").hidden = data.dead_letters_today === null; // the centre's alone
  document.getElementById("tab-cases").hidden = data.dead_letters_today === null;
  show(data.units.length === 0 && data.offices.length > 0 ? "ektp" : "sdp");
  summarise();
  document.body.dataset.loaded = "true";
  return data.live_id;
}

// Events follow the id the view was read at; on a reconnect the browser sends the last id it got
// (Last-Event-ID) and the monitor replays what followed, or says "reload" when it no longer can.
function connect(after) {
  const source = simpul.live(after);
  source.addEventListener("unit", (e) => {
    const event = JSON.parse(e.data);
    if (event.day !== state.day) return;
    renderUnit(event.row);
    order();
    summarise();
    window.dispatchEvent(new Event("simpul:unit"));
  });
  source.addEventListener("ektp", (e) => {
    renderOffice(JSON.parse(e.data).row);
    applyFilter();
    window.dispatchEvent(new Event("simpul:ektp"));
  });
  source.addEventListener("dead_letters", (e) => {
    state.dead = JSON.parse(e.data).today;
    summarise();
    window.dispatchEvent(new Event("simpul:dead_letters"));
  });
  source.addEventListener("run", (e) => {
    window.dispatchEvent(new CustomEvent("simpul:run", { detail: JSON.parse(e.data) }));
  });
  source.addEventListener("case", (e) => {
    window.dispatchEvent(new CustomEvent("simpul:case", { detail: JSON.parse(e.data) }));
  });
  source.addEventListener("alert", (e) => {
    window.dispatchEvent(new CustomEvent("simpul:alert", { detail: JSON.parse(e.data) }));
  });
  source.addEventListener("reload", () => { load(state.day); window.dispatchEvent(new Event("simpul:reload")); });
}

document.getElementById("filter").addEventListener("input", applyFilter);
// Another day's figures: the live events of that day keep arriving (each carries its day).
document.getElementById("day-pick").addEventListener("change", (e) => { if (e.target.value) load(e.target.value); });
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
load().then((after) => { if (after !== undefined) connect(after); });
