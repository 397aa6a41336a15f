// History: every run, filtered, sorted and paged on the server (it holds at 100k runs).

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { duration, exact, money, number, relative, runLabel, runTone } from "./format.js";

const COLUMNS = [
  ["task", "Task", null],
  ["started", "Started", "started"],
  ["duration", "Duration", "duration"],
  ["turns", "Turns", "turns"],
  ["tokens", "Tokens", "tokens"],
  ["cost", "Cost", "cost"],
  ["outcome", "Outcome", "outcome"],
];

export function mount(main) {
  const params = new URLSearchParams(location.search);
  const q = {
    status: params.get("status") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
    q: params.get("q") || "",
    sort: params.get("sort") || "started",
    order: params.get("order") || "desc",
    page: Number(params.get("page")) || 1,
  };

  const status = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any outcome"),
    ["succeeded", "failed", "timed_out", "cancelled", "running"].map((s) => h("option", { value: s }, runLabel(s))),
  );
  const since = h("input", { id: "f-since", name: "since", type: "date" });
  const until = h("input", { id: "f-until", name: "until", type: "date" });
  const text = h("input", { id: "f-q", name: "q", type: "search", placeholder: "Key, title, summary or error" });
  status.value = q.status;
  since.value = q.since;
  until.value = q.until;
  text.value = q.q;
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    h("div", {}, h("label", { for: "f-status" }, "Outcome"), status),
    h("div", {}, h("label", { for: "f-since" }, "From"), since),
    h("div", {}, h("label", { for: "f-until" }, "To"), until),
    h("div", { class: "grow" }, h("label", { for: "f-q" }, "Search"), text),
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Apply")),
  );
  const summary = h("p", { class: "summary", role: "status" });
  const table = h("table", { class: "runs-table" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  fill(main, h("h1", {}, "History"), form, summary, h("div", { class: "table-wrap" }, table), pager);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    Object.assign(q, { status: status.value, since: since.value, until: until.value, q: text.value.trim(), page: 1 });
    load();
  });

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const sp = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== "" && v !== null) sp.set(k, String(v));
    history.replaceState(null, "", `/history?${sp}`);
    summary.textContent = "Loading…";
    try {
      const d = await api(`/api/runs?${sp}&per_page=50`);
      if (mine !== seq) return;
      render(d);
    } catch (e) {
      if (mine !== seq) return;
      summary.textContent = e.message;
      summary.classList.add("field-error");
    }
  }

  function render(d) {
    summary.classList.remove("field-error");
    summary.textContent = d.total === 0 ? "" : `${number(d.total)} run${d.total === 1 ? "" : "s"}`;
    const head = h(
      "tr",
      {},
      COLUMNS.map(([, label, key]) => {
        if (!key) return h("th", { scope: "col" }, label);
        const active = q.sort === key;
        const sortAttr = active ? (q.order === "asc" ? "ascending" : "descending") : "none";
        return h(
          "th",
          { scope: "col", "aria-sort": sortAttr, class: ["duration", "turns", "tokens", "cost"].includes(key) ? "num" : null },
          h(
            "button",
            {
              type: "button",
              class: "sort",
              onclick: () => {
                q.order = active && q.order === "desc" ? "asc" : "desc";
                q.sort = key;
                q.page = 1;
                load();
              },
            },
            label,
            h("span", { "aria-hidden": "true" }, active ? (q.order === "asc" ? " ▲" : " ▼") : ""),
          ),
        );
      }),
    );
    const rows = d.runs.map((r) =>
      h(
        "tr",
        {},
        h(
          "td",
          {},
          h("a", { href: `/task/${encodeURIComponent(r.task)}?run=${encodeURIComponent(r.id)}`, "data-link": "" }, h("span", { class: "key" }, r.task_key), " ", r.title),
          r.error ? h("div", { class: "row-error" }, r.error) : null,
        ),
        h("td", {}, h("time", { datetime: r.started_at, title: exact(r.started_at), "data-rel": "" }, relative(r.started_at))),
        h("td", { class: "num" }, r.duration_secs === null ? "—" : duration(r.duration_secs)),
        h("td", { class: "num" }, number(r.usage.turns)),
        h("td", { class: "num" }, number(r.tokens)),
        h("td", { class: "num" }, money(r.usage.cost_usd)),
        h("td", {}, h("span", { class: `badge status-${runTone(r.status)}` }, runLabel(r.status))),
      ),
    );
    fill(
      table,
      h("caption", { class: "visually-hidden" }, "Runs, newest first unless sorted otherwise"),
      h("thead", {}, head),
      h(
        "tbody",
        {},
        rows.length
          ? rows
          : h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty" }, q.status || q.q || q.since || q.until ? "No run matches these filters." : "No runs yet: every attempt of every task is listed here once it starts.")),
      ),
    );
    const go = (p) => () => {
      q.page = p;
      load();
    };
    fill(
      pager,
      h("button", { type: "button", disabled: d.page <= 1, onclick: go(d.page - 1) }, "← Previous"),
      h("span", {}, ` Page ${number(d.page)} of ${number(d.pages)} `),
      h("button", { type: "button", disabled: d.page >= d.pages, onclick: go(d.page + 1) }, "Next →"),
    );
  }

  load();
  return () => {
    seq++;
  };
}
