"use strict";
// The live view: load the scoped table once, then apply each SSE event to its row.
const rows = new Map();
const state = { day: null, dead: null };
const tbody = document.querySelector("#units tbody");
const fmt = new Intl.NumberFormat("id-ID");
const STATE_LABEL = { missing: "Belum kirim", partial: "Sebagian", complete: "Lengkap" };

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render(row) {
  let tr = rows.get(row.upt_id)?.tr;
  const fresh = !tr;
  if (fresh) {
    tr = document.createElement("tr");
    tr.dataset.upt = row.upt_id;
  }
  const last = row.last_submission_at
    ? new Date(row.last_submission_at).toLocaleTimeString("id-ID", { timeZone: "Asia/Jakarta" }) + " WIB" : "–";
  tr.replaceChildren(
    cell(row.kanwil_name.replace("Kanwil Ditjenpas ", "")),
    cell(row.name),
    cell(STATE_LABEL[row.state] || row.state, "state " + row.state),
    cell(row.parts ? `${row.parts_received}/${row.parts}` : "–", "num parts"),
    cell(fmt.format(row.accepted), "num accepted"),
    cell(fmt.format(row.rejected), "num rejected" + (row.rejected ? " bad" : "")),
    cell(fmt.format(row.warnings), "num warnings"),
    cell(fmt.format(row.refused_messages), "num refused" + (row.refused_messages ? " bad" : "")),
    cell(fmt.format(row.central_total), "num central"),
    cell(fmt.format(row.flagged_total), "num flagged" + (row.flagged_total ? " bad" : "")),
    cell(last, "time"),
  );
  rows.set(row.upt_id, { tr, row });
  if (fresh) tbody.appendChild(tr);
  else {
    tr.classList.remove("flash");
    void tr.offsetWidth; // restart the highlight animation
    tr.classList.add("flash");
  }
}

function summarise() {
  let reported = 0, accepted = 0, rejected = 0, central = 0, flagged = 0;
  for (const { row } of rows.values()) {
    if (row.state !== "missing") reported++;
    accepted += row.accepted; rejected += row.rejected; central += row.central_total; flagged += row.flagged_total;
  }
  document.getElementById("sum-reported").textContent = `${fmt.format(reported)} / ${fmt.format(rows.size)}`;
  document.getElementById("sum-accepted").textContent = fmt.format(accepted);
  document.getElementById("sum-rejected").textContent = fmt.format(rejected);
  document.getElementById("sum-central").textContent = fmt.format(central);
  document.getElementById("sum-flagged").textContent = fmt.format(flagged);
  document.getElementById("sum-dead").textContent = state.dead === null ? "–" : fmt.format(state.dead);
  applyFilter();
}

function applyFilter() {
  const q = document.getElementById("filter").value.trim().toLowerCase();
  let shown = 0;
  for (const { tr, row } of rows.values()) {
    const match = !q || row.name.toLowerCase().includes(q) || row.kanwil_name.toLowerCase().includes(q)
      || row.upt_id.includes(q);
    tr.hidden = !match;
    if (match) shown++;
  }
  document.getElementById("shown").textContent = `${fmt.format(shown)} UPT`;
}

async function load() {
  const response = await fetch("/api/units", { credentials: "same-origin" });
  if (response.status === 401) { location.href = "/login"; return; }
  const data = await response.json();
  state.day = data.day;
  state.dead = data.dead_letters_today;
  document.getElementById("day").textContent = data.day;
  document.getElementById("scope").textContent = data.scope.label;
  document.getElementById("dead-box").hidden = data.dead_letters_today === null;
  for (const row of data.units) render(row);
  summarise();
  document.body.dataset.loaded = "true";
}

function connect() {
  const source = new EventSource("/events");
  const live = document.getElementById("live");
  source.onopen = () => { live.className = "live online"; };
  source.onerror = () => { live.className = "live offline"; };
  source.addEventListener("unit", (e) => {
    const event = JSON.parse(e.data);
    if (event.day !== state.day) return;
    render(event.row);
    summarise();
  });
  source.addEventListener("dead_letters", (e) => {
    state.dead = JSON.parse(e.data).today;
    summarise();
  });
}

document.getElementById("filter").addEventListener("input", applyFilter);
load().then(connect);
