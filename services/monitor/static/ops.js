"use strict";
// The centre's operations view: each service (consuming? work waiting? last heard from), each queue's depth and
// consumers as the monitor last sampled them, and the latest dead letters with their reasons.
(() => {
  const { fmt, cell, time } = simpul;
  const STATE = { ok: t("Baik", "OK"), backlog: t("Menumpuk", "Backlog"), no_consumer: t("Tanpa konsumen", "No consumer"),
    growing_without_consumer: t("Bertambah tanpa konsumen", "Growing without a consumer"),
    missing: t("Tidak ada", "Missing") };

  function rows(selector, items, make) {
    document.querySelector(`${selector} tbody`).replaceChildren(...items.map((item) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(...make(item, tr));
      return tr;
    }));
  }

  async function refresh() {
    if (document.getElementById("tab-ops").hidden) return;
    const response = await fetch("/api/operations", { credentials: "same-origin" });
    if (response.status !== 200) return;
    const ops = await response.json();
    const amqpOnly = ops.queue_source === "amqp"
      ? `; ${t("tanpa API manajemen: pesan yang sedang diproses tidak terhitung", "no management API: messages in delivery not counted")}` : "";
    document.getElementById("sampled").textContent = ops.sampled_at ? `(${time(ops.sampled_at)}${amqpOnly})` : "";
    rows("#services", ops.services, (s, tr) => {
      tr.dataset.service = s.name;
      return [cell(s.name), cell(s.consuming ? t("ya", "yes") : t("tidak", "no"), s.consuming ? "" : "bad"),
        cell(fmt.format(s.waiting), "num"), cell(time(s.last_message_at), "time"),
        cell(s.quiet ? t("Diam", "Quiet") : t("Baik", "OK"), s.quiet ? "state bad" : "state ok")];
    });
    rows("#queues", ops.queues, (q, tr) => {
      tr.dataset.queue = q.name;
      return [cell(q.name), cell(q.service), cell(fmt.format(q.messages), "num"),
        cell(q.unacked === null ? "–" : fmt.format(q.unacked), "num"), cell(fmt.format(q.consumers), "num"),
        cell((q.growth > 0 ? "+" : "") + fmt.format(q.growth), "num"),
        cell(STATE[q.state] || q.state, "state " + (q.state === "ok" ? "ok" : "bad"))];
    });
    document.getElementById("metrics-at").textContent = ops.metrics_at ? `(${time(ops.metrics_at)})` : "";
    const seconds = (s) => (s === null ? "–" : s < 1 ? `≤ ${fmt.format(s * 1000)} ms` : `≤ ${fmt.format(s)} s`);
    rows("#metrics", ops.metrics, (m, tr) => {
      tr.dataset.service = m.service;
      if (!m.up) {
        const td = cell(`${t("tidak menjawab", "not answering")}: ${m.error || ""}`, "bad");
        td.colSpan = 10;
        return [cell(m.service), td];
      }
      const ready = m.ready === null ? "–" : m.ready ? t("siap", "ready") : t("belum siap", "not ready");
      return [cell(m.service), cell(ready, "state " + (m.ready === false ? "bad" : "ok")), cell(fmt.format(m.consumed), "num"), cell(fmt.format(m.refused), "num"),
        cell(fmt.format(m.retried), "num"), cell(fmt.format(m.dead_lettered), "num" + (m.dead_lettered ? " bad" : "")),
        cell(fmt.format(m.published), "num"), cell(seconds(m.processing_p50_s), "num"),
        cell(seconds(m.processing_p95_s), "num"), cell(seconds(m.lag_p95_s), "num"),
        cell(m.gallery_size === null ? "–" : fmt.format(m.gallery_size), "num")];
    });
    const reasons = Object.entries(ops.dead_letter_reasons_today).map(([r, n]) => `${r} ${fmt.format(n)}`);
    document.getElementById("reasons").textContent = reasons.length ? `(${t("hari ini", "today")}: ${reasons.join(", ")})` : "";
    rows("#dead-letters", ops.dead_letters, (d) => [cell(time(d.dead_at), "time"), cell(d.reason),
      cell(d.routing_key || "–"), cell(d.sender || "–"), cell(d.service || "–"), cell(d.queue || "–"),
      cell(d.detail || "")]);
    document.getElementById("view-ops").dataset.loaded = "true";
  }

  window.addEventListener("simpul:dead_letters", refresh);
  document.getElementById("tab-ops").addEventListener("click", refresh);
  setInterval(refresh, 15000);
})();
