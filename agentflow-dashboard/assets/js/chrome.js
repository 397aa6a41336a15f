// What every page shows: the stats strip with the Pause switch, the connection indicator and
// the "Needs configuration" panel.

import { api, post } from "./api.js";
import { fill, h } from "./dom.js";
import { money, number } from "./format.js";
import * as live from "./live.js";

const $ = (id) => document.getElementById(id);
let paused = false;

function renderStats(s) {
  if (!s) return;
  $("budget-banner").hidden = !s.budget_exhausted;
  $("stat-running").textContent = number(s.running);
  $("stat-queued").textContent = number(s.queued);
  $("stat-done").textContent = number(s.done_today);
  $("stat-failed").textContent = number(s.failed_today);
  $("stat-cost").textContent = money(s.cost_today);
  setPaused(!!s.paused);
}

function setPaused(p) {
  paused = p;
  const toggle = $("pause-toggle");
  toggle.setAttribute("aria-checked", String(p));
  $("pause-label").textContent = p ? "Paused" : "Picking up tasks";
  toggle.title = p ? "Resume picking up new tasks" : "Stop picking up new tasks (running ones go on)";
  document.body.classList.toggle("is-paused", p);
  $("paused-banner").hidden = !p;
}

async function togglePause() {
  const toggle = $("pause-toggle");
  toggle.disabled = true;
  try {
    const res = await post(paused ? "/api/resume" : "/api/pause");
    setPaused(res.paused);
  } catch (e) {
    toast(e.message, "error");
  } finally {
    toggle.disabled = false;
  }
}

const CONNECTION = {
  connecting: ["Connecting…", "warn"],
  live: ["Live", "ok"],
  reconnecting: ["Reconnecting…", "warn"],
};

function renderConnection(s) {
  const [text, tone] = CONNECTION[s] || [s, "warn"];
  const el = $("conn");
  el.dataset.tone = tone;
  $("conn-text").textContent = text;
  el.title = s === "live" ? "Receiving live updates" : "Live updates are interrupted; retrying by itself";
}

export async function refreshNeedsConfig() {
  const panel = $("needs-config");
  try {
    const { missing } = await api("/api/needs-configuration");
    const list = $("needs-config-list");
    fill(
      list,
      missing.map((m) =>
        h(
          "li",
          {},
          m.message,
          m.key
            ? [" ", h("a", { href: `/settings#field-${encodeURIComponent(m.key)}`, "data-link": "" }, "Set it")]
            : null,
        ),
      ),
    );
    panel.hidden = missing.length === 0;
  } catch {
    // The panel stays as it was; the connection indicator tells about outages.
  }
}

/** A short message in the corner. */
export function toast(message, tone = "info") {
  const box = $("toasts");
  const el = h("div", { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), tone === "error" ? 8000 : 4000);
}

export function start() {
  $("pause-toggle").addEventListener("click", togglePause);
  live.on("connection", renderConnection);
  live.on("snapshot", (d) => {
    renderStats(d.stats);
    refreshNeedsConfig();
  });
  live.on("stats:update", renderStats);
  renderConnection(live.connection());
  api("/api/stats").then(renderStats).catch(() => {});
  api("/api/session").then((s) => ($("signout").hidden = !s.auth)).catch(() => {});
}
