"use strict";
// Open alerts within this login's scope, on every page: loaded once, then opened and closed by live events.
(() => {
  const open = new Map();

  function render() {
    const items = [...open.values()].map((a) => {
      const div = document.createElement("div");
      div.className = `alert ${a.severity}`;
      div.dataset.alert = a.key;
      div.dataset.kind = a.kind;
      div.title = t(a.text_en, a.text_id);
      div.textContent = t(a.text_id, a.text_en);
      return div;
    });
    document.getElementById("alerts").replaceChildren(...items);
  }

  async function load() {
    const response = await fetch("/api/alerts", { credentials: "same-origin" });
    if (response.status !== 200) return;
    open.clear();
    for (const a of (await response.json()).alerts) open.set(a.key, a);
    render();
  }

  window.addEventListener("simpul:alert", (e) => {
    const a = e.detail;
    if (a.state === "closed") open.delete(a.key);
    else open.set(a.key, a);
    render();
  });
  window.addEventListener("simpul:reload", load);
  load();
})();
