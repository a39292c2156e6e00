// The dashboard's shell: routes `#/page?state` to a page module, keeps the navigation
// current, and owns the global keys (`/` focuses the search, `j`/`k` move through rows).
// Each page module exports mount(root, params) → { unmount, focusSearch?, move? }.

import { route, href } from "./dom.js";
import * as search from "./search.js";

const pages = {
  search,
  timeline: () => import("./timeline.js"),
  overview: () => import("./overview.js"),
  alerts: () => import("./alerts.js"),
  rules: () => import("./rules.js"),
};

const root = document.getElementById("main");
let current = null;
let mountGen = 0;

async function show(event) {
  const moved = Boolean(event);
  const { page, params } = route();
  const name = pages[page] ? page : "search";
  const gen = ++mountGen;
  const mod = typeof pages[name] === "function" ? await pages[name]() : pages[name];
  if (gen !== mountGen) return;
  if (current && current.unmount) current.unmount();
  root.dataset.page = name;
  root.dataset.state = "";
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · mcp-audit`;
  current = mod.mount(root, params);
  // After a link (not the first load), start reading and tabbing at the new page.
  if (moved) root.focus({ preventScroll: true });
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || document.querySelector("dialog[open]")) return;
  if (e.key === "/") {
    e.preventDefault();
    if (current && current.focusSearch) current.focusSearch();
    else location.hash = href("search", {});
  } else if ((e.key === "j" || e.key === "k") && current && current.move) {
    e.preventDefault();
    current.move(e.key === "j" ? 1 : -1);
  }
});

window.addEventListener("hashchange", show);
show();
