"use strict";
// Bahasa Indonesia by default, English on request (remembered in this browser). The pages are written with
// both ("Indonesia · English"); each pair is split into two spans and only the chosen language is shown.
(() => {
  const lang = localStorage.getItem("simpul.lang") === "en" ? "en" : "id";
  window.simpulLang = lang;
  window.t = (id, en) => (lang === "en" ? en : id);
  document.documentElement.lang = lang;
  document.documentElement.classList.toggle("en", lang === "en");

  function split(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const pairs = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const skip = node.parentElement.closest("script, style, .l-id, .l-en, tbody");
      if (node.nodeValue.includes(" · ") && !skip) pairs.push(node);
    }
    for (const node of pairs) {
      const [id, ...rest] = node.nodeValue.split(" · ");
      const a = document.createElement("span");
      a.className = "l-id";
      a.textContent = id;
      const b = document.createElement("span");
      b.className = "l-en";
      b.textContent = rest.join(" · ");
      node.replaceWith(a, b);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    split(document.body);
    const button = document.getElementById("lang");
    if (button) {
      button.textContent = lang === "en" ? "Bahasa Indonesia" : "English";
      button.addEventListener("click", () => {
        localStorage.setItem("simpul.lang", lang === "en" ? "id" : "en");
        location.reload();
      });
    }
  });
})();
