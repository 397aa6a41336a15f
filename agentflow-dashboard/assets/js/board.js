// The board: one column per status, newest activity first, cards moving live on task:update.

import { api, post } from "./api.js";
import { toast } from "./chrome.js";
import { fill, h, safeUrl } from "./dom.js";
import { STATUSES, duration, exact, money, phaseLabel, relative, secondsSince, statusLabel } from "./format.js";
import * as live from "./live.js";

const EMPTY = {
  todo: "Issues in the tracker's Todo state appear here before they are picked up.",
  in_progress: "Tasks being worked on appear here, with the agent's latest step.",
  in_review: "Tasks waiting for a person's review appear here; a comment on the issue resumes the agent.",
  done: "Finished tasks appear here.",
  failed: "Tasks that failed their last attempt appear here, with a Retry button on their page.",
};

export function mount(main) {
  const tasks = new Map();
  const columns = {};
  const board = h("div", { class: "board" });
  for (const [status, label] of STATUSES) {
    const list = h("div", { class: "column-cards", role: "list" });
    const count = h("span", { class: "count" }, "0");
    const col = h(
      "section",
      { class: `column status-${status}`, "aria-label": label, dataset: { status } },
      h("h2", {}, h("span", { class: "dot", "aria-hidden": "true" }), label, " ", count),
      list,
    );
    columns[status] = { col, list, count };
    board.append(col);
  }
  const addForm = h("div", { class: "new-task-slot" });
  fill(main, h("h1", { class: "visually-hidden" }, "Board"), addForm, board);

  const render = () => {
    const byStatus = Object.fromEntries(STATUSES.map(([s]) => [s, []]));
    for (const t of tasks.values()) (byStatus[t.status] || (byStatus[t.status] = [])).push(t);
    for (const [status] of STATUSES) {
      const { list, count } = columns[status];
      const items = byStatus[status].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
      count.textContent = String(items.length);
      if (items.length === 0) {
        fill(list, h("p", { class: "empty" }, EMPTY[status]));
      } else {
        fill(list, items.map(card));
      }
    }
  };

  const offs = [
    live.on("snapshot", (d) => {
      tasks.clear();
      for (const t of d.tasks) tasks.set(t.task, t);
      render();
    }),
    live.on("task:update", (t) => {
      if (t.status === "other") tasks.delete(t.task);
      else tasks.set(t.task, t);
      render();
    }),
  ];
  api("/api/tasks")
    .then((d) => {
      for (const t of d.tasks) if (!tasks.has(t.task)) tasks.set(t.task, t);
      if (d.can_create) fill(addForm, newTaskForm());
      render();
    })
    .catch(() => render());
  const tick = setInterval(() => {
    for (const el of main.querySelectorAll("[data-since]")) {
      el.textContent = duration(secondsSince(el.dataset.since));
    }
  }, 1000);
  return () => {
    offs.forEach((off) => off());
    clearInterval(tick);
  };
}

function card(t) {
  const url = safeUrl(t.url);
  const running = t.state && t.state.phase === "running";
  const key = url
    ? h("a", { class: "key", href: url, target: "_blank", rel: "noopener noreferrer", title: "Open in the tracker" }, t.key)
    : h("span", { class: "key" }, t.key);
  const meta = [];
  if (t.attempt > 0) meta.push(h("span", { title: "Attempt" }, `attempt ${t.attempt}/${t.max_attempts}`));
  if (running && t.started_at) {
    meta.push(h("span", { title: `Started ${exact(t.started_at)}`, dataset: { since: t.started_at } }, duration(secondsSince(t.started_at))));
  } else if (t.state && !["running"].includes(t.state.phase) && t.status === "in_progress") {
    meta.push(h("span", {}, phaseLabel(t.state.phase)));
  }
  if (t.cost_usd > 0) meta.push(h("span", { title: "Cost so far" }, money(t.cost_usd)));
  meta.push(h("time", { datetime: t.at, title: exact(t.at), "data-rel": "" }, relative(t.at)));
  return h(
    "article",
    { class: `card status-${t.status}`, role: "listitem", "aria-label": `${t.key}: ${t.title}`, dataset: { task: t.task } },
    h("div", { class: "card-top" }, key, h("span", { class: `badge status-${t.status}` }, statusLabel(t.status))),
    h("a", { class: "card-title", href: `/task/${encodeURIComponent(t.task)}`, "data-link": "" }, t.title),
    h("div", { class: "card-meta" }, meta.flatMap((m, i) => (i ? [" · ", m] : [m]))),
    running && t.last_line ? h("p", { class: "last-line", title: t.last_line }, t.last_line) : null,
    t.status === "failed" && t.error ? h("p", { class: "card-error" }, t.error) : null,
  );
}

function newTaskForm() {
  const title = h("input", { id: "new-task-title", name: "title", required: true, autocomplete: "off", placeholder: "What should the agent do?" });
  const body = h("textarea", { id: "new-task-body", name: "body", rows: "1", placeholder: "Details (optional)" });
  const error = h("p", { class: "field-error", id: "new-task-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "new-task", "aria-label": "Add a task" },
    h("div", { class: "grow" }, h("label", { for: "new-task-title" }, "New task"), title),
    h("div", { class: "grow" }, h("label", { for: "new-task-body" }, "Details"), body),
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Add task")),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      const t = await post("/api/tasks", { title: title.value, body: body.value });
      title.value = "";
      body.value = "";
      toast(`Added ${t.key}. It is picked up at the next poll.`, "info");
    } catch (err) {
      error.textContent = (err.fields && err.fields.title) || err.message;
      error.hidden = false;
    }
  });
  return form;
}
