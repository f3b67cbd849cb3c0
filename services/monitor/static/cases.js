"use strict";
// The centre's adjudication desk: grey-zone captures, the oldest first; one opened beside its candidates (masked
// NIKs, scores per modality, never a template); a decision with its reason, sent in the operator's own name.
(() => {
  const { fmt, cell, time } = simpul;
  let current = null;

  function decisionLabel(d) {
    return d === "duplicate" ? t("Ganda", "Duplicate") : d === "unique" ? t("Unik", "Unique") : "–";
  }

  async function list() {
    if (document.getElementById("tab-cases").hidden) return;
    const response = await fetch("/api/adjudications", { credentials: "same-origin" });
    if (response.status !== 200) return;
    const rows = (await response.json()).cases.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.case = `${c.kabkota}/${c.packet_id}`;
      tr.className = c.decision ? "decided" : "open";
      tr.replaceChildren(cell(c.kabkota), cell(c.packet_id), cell(time(c.opened_at), "time"),
        cell(c.requested ? `${decisionLabel(c.requested)} (${c.requested_by})` : "–"),
        cell(decisionLabel(c.decision), "decision"), cell(c.operator || "–"));
      tr.addEventListener("click", () => open(c.kabkota, c.packet_id));
      return tr;
    });
    document.querySelector("#cases tbody").replaceChildren(...rows);
    document.getElementById("view-cases").dataset.loaded = "true";
  }

  async function open(kabkota, packet) {
    const response = await fetch(`/api/adjudications/${encodeURIComponent(kabkota)}/${encodeURIComponent(packet)}`,
      { credentials: "same-origin" });
    if (response.status !== 200) return;
    const c = await response.json();
    current = c;
    const d = c.detail;
    document.getElementById("case-title").textContent = `${kabkota}/${packet} · ${d.nik_masked}`;
    document.getElementById("case-person").textContent =
      [d.full_name, d.sex, d.birth_place, d.birth_date].filter(Boolean).join(", ");
    const fixed = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));
    // each finger compared, by its position (1-5 right thumb to little finger, 6-10 left), with its score
    const fingers = (scores) => scores.map((x, i) => (x === null ? null : `${i + 1}: ${fixed(x)}`))
      .filter(Boolean).join(" · ") || "–";
    document.querySelector("#candidates tbody").replaceChildren(...d.candidates.map((k) => {
      const tr = document.createElement("tr");
      const known = [k.full_name, k.sex, k.birth_place, k.birth_date].filter(Boolean).join(", ");
      tr.replaceChildren(cell(`#${k.person_id}`), cell(k.nik_masked, "nik"),
        cell(known || t("tidak tercatat", "not recorded"), known ? "person" : "person muted"),
        cell(k.llr.toFixed(2), "num"), cell(fmt.format(k.modalities), "num"), cell(fixed(k.face_cosine), "num"),
        cell(k.iris_hd.map(fixed).join(", "), "num"), cell(fingers(k.finger_cosines), "fingers"));
      return tr;
    }));
    const STEP = { opened: t("dibuka", "opened"), read: t("dibaca", "opened at the desk"),
      requested: t("keputusan dikirim", "decision sent"), decided: t("diputuskan", "decided") };
    document.getElementById("case-history").replaceChildren(...(c.history || []).map((h) => {
      const li = document.createElement("li");
      const when = new Date(h.at).toLocaleString("id-ID", { timeZone: "Asia/Jakarta" });
      const what = [STEP[h.step] || h.step, h.decision ? decisionLabel(h.decision) : "", h.reason || ""];
      li.textContent = `${when} WIB · ${what.filter(Boolean).join(" · ")} · ${h.who || "–"}`;
      return li;
    }));
    const form = document.getElementById("decide");
    form.hidden = Boolean(c.decision || c.requested);
    document.getElementById("decide-result").textContent = c.decision
      ? `${t("Diputuskan", "Decided")}: ${decisionLabel(c.decision)} (${c.operator})`
      : c.requested ? `${t("Dikirim", "Sent")}: ${decisionLabel(c.requested)} (${c.requested_by})` : "";
    document.getElementById("case").hidden = false;
    document.getElementById("case").dataset.case = `${kabkota}/${packet}`;
  }

  document.getElementById("decide").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current) return;
    const data = new FormData(e.target);
    const response = await fetch(
      `/api/adjudications/${encodeURIComponent(current.kabkota)}/${encodeURIComponent(current.packet_id)}/decision`,
      { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision: data.get("decision"), reason: data.get("reason") }) });
    const answer = await response.json();
    document.getElementById("decide-result").textContent = response.status === 202
      ? `${t("Dikirim", "Sent")}: ${decisionLabel(answer.requested)}` : `${t("Ditolak", "Refused")}: ${answer.error}`;
    if (response.status === 202) e.target.hidden = true;
    list();
  });

  window.addEventListener("simpul:case", (e) => {
    list();
    const c = e.detail;
    if (current && current.kabkota === c.kabkota && current.packet_id === c.packet_id) open(c.kabkota, c.packet_id);
  });
  document.getElementById("tab-cases").addEventListener("click", list);
})();
