"use strict";
const params = new URLSearchParams(location.search);
if (params.has("failed")) {
  document.getElementById("failed").hidden = false;
}
if (params.has("locked")) {
  const minutes = String(Math.max(1, Math.ceil(Number(params.get("locked")) / 60)));
  document.getElementById("wait").textContent = minutes;
  document.getElementById("wait-en").textContent = minutes;
  document.getElementById("locked").hidden = false;
}
