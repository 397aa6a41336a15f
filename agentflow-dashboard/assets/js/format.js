// Formatting: statuses, times, durations, money.

export const STATUSES = [
  ["todo", "Todo"],
  ["in_progress", "In Progress"],
  ["in_review", "In Review"],
  ["done", "Done"],
  ["failed", "Failed"],
];

const STATUS_LABELS = Object.fromEntries([...STATUSES, ["other", "Other"]]);
export const statusLabel = (s) => STATUS_LABELS[s] || s;

const RUN_LABELS = {
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  timed_out: "Timed out",
  cancelled: "Cancelled",
};
export const runLabel = (s) => RUN_LABELS[s] || s;
/** The board colour class of a run outcome. */
export const runTone = (s) =>
  ({ running: "in_progress", succeeded: "done", failed: "failed", timed_out: "failed", cancelled: "todo" })[s] || "todo";

const PHASE_LABELS = {
  discovered: "discovered",
  claimed: "claimed",
  queued: "queued",
  running: "running",
  retry_wait: "waiting to retry",
  in_review: "waiting for review",
  feedback_queued: "feedback queued",
  done: "done",
  failed: "failed",
  cancelled: "cancelled",
};
export const phaseLabel = (p) => PHASE_LABELS[p] || p;

export function money(usd) {
  const n = Number(usd) || 0;
  if (n > 0 && n < 0.01) return "<$0.01";
  return "$" + n.toFixed(2);
}

/** 75 → "1m 15s", 3720 → "1h 02m". */
export function duration(secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return "—";
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

/** "3 min. ago", with the exact time for the title attribute. */
export function relative(iso) {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  const diff = (t - Date.now()) / 1000;
  const abs = Math.abs(diff);
  // Within 45 s either way (clocks of server and browser differ a little) is "just now".
  if (abs < 45) return "just now";
  if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}

export function exact(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function number(n) {
  return (Number(n) || 0).toLocaleString();
}

export function secondsSince(iso) {
  return iso ? (Date.now() - new Date(iso).getTime()) / 1000 : null;
}
