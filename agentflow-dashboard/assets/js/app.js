// Entry point: the page chrome, the live connection and a small path router.

import * as board from "./board.js";
import * as chrome from "./chrome.js";
import * as historyPage from "./history.js";
import * as live from "./live.js";
import * as settings from "./settings.js";
import * as task from "./task.js";
import { relative } from "./format.js";

const main = document.getElementById("main");
let unmount = null;

function route() {
  const path = location.pathname;
  if (path === "/history") return [historyPage, {}, "History"];
  if (path === "/settings") return [settings, {}, "Settings"];
  const m = path.match(/^\/task\/([^/]+)$/);
  if (m) return [task, { id: decodeURIComponent(m[1]) }, "Task"];
  return [board, {}, "Board"];
}

function render() {
  if (unmount) unmount();
  const [page, params, title] = route();
  document.title = `${title} · agentflow`;
  for (const a of document.querySelectorAll("nav.main-nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  unmount = page.mount(main, params) || null;
  chrome.refreshNeedsConfig();
}

// Relative times ("3 min ago") stay true while the page is open.
setInterval(() => {
  for (const el of document.querySelectorAll("time[data-rel]")) el.textContent = relative(el.getAttribute("datetime"));
}, 15000);

export function navigate(href) {
  history.pushState(null, "", href);
  render();
  main.focus({ preventScroll: true });
  if (!location.hash) window.scrollTo(0, 0);
}

// Links marked data-link (and the main nav) navigate without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link], nav.main-nav a");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener("popstate", render);

chrome.start();
live.connect();
render();
