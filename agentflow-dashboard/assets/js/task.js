// The task page: header, actions, run selector and the run's log as a live terminal-like stream.

import { ApiError, api, post } from "./api.js";
import { clear, fill, h, safeUrl } from "./dom.js";
import { toast } from "./chrome.js";
import { duration, exact, money, number, phaseLabel, relative, runLabel, runTone, statusLabel } from "./format.js";
import * as live from "./live.js";

const LIVE_PHASES = ["claimed", "queued", "running", "retry_wait", "feedback_queued"];
const MAX_PAGES = 50;

export function mount(main, { id }) {
  const wanted = new URLSearchParams(location.search).get("run");
  const s = { id, task: null, runs: [], run: wanted, follow: !wanted, lastSeq: 0, loading: false, tools: [] };

  const head = h("header", { class: "task-head" });
  const runSelect = h("select", { id: "run-select" });
  const runInfo = h("div", { class: "run-info" });
  const log = h("div", { class: "log", role: "log", "aria-label": "Run log", "aria-live": "polite", tabindex: "0" });
  fill(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/", "data-link": "" }, "Board"), " › ", h("span", { id: "crumb-key" }, id)),
    head,
    h("section", { class: "runs", "aria-label": "Runs" }, h("label", { for: "run-select" }, "Run"), " ", runSelect, runInfo),
    log,
  );

  runSelect.addEventListener("change", () => {
    s.run = runSelect.value;
    s.follow = s.runs.length > 0 && s.runs[0].id === s.run;
    history.replaceState(null, "", `/task/${encodeURIComponent(id)}?run=${encodeURIComponent(s.run)}`);
    loadLog(true);
  });

  async function loadDetail() {
    try {
      const d = await api(`/api/tasks/${encodeURIComponent(id)}`);
      s.runs = d.runs;
      s.transcripts = d.transcripts;
      if (d.task) s.task = d.task;
      else if (!s.task && d.runs.length) s.task = fromRun(d.runs[0]);
      renderHead();
      renderRuns();
      const latest = s.runs[0] && s.runs[0].id;
      const target = s.follow ? latest || (s.task && s.task.run) : s.run;
      if (target && target !== s.shown) {
        s.run = target;
        runSelect.value = target;
        await loadLog(true);
      } else if (!target) {
        renderRunInfo();
        fill(log, h("p", { class: "empty" }, "No run yet: the log appears here as soon as the agent starts."));
      } else {
        renderRunInfo();
      }
    } catch (e) {
      fill(main, h("h1", {}, "Task not found"), h("p", { class: "empty" }, e.message), h("p", {}, h("a", { href: "/", "data-link": "" }, "Back to the board")));
    }
  }

  async function loadLog(reset) {
    if (reset) {
      s.lastSeq = 0;
      s.tools = [];
      s.shown = s.run;
      clear(log);
      renderRunInfo();
    }
    if (s.loading) return;
    s.loading = true;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const q = `run=${encodeURIComponent(s.run)}&after=${s.lastSeq}&limit=1000`;
        const d = await api(`/api/tasks/${encodeURIComponent(id)}/logs?${q}`);
        if (d.run !== s.run) break;
        for (const line of d.lines) addLine(line);
        if (!d.more) break;
      }
      if (s.lastSeq === 0 && !log.firstChild) {
        log.append(h("p", { class: "empty" }, "This run has no log lines yet."));
      }
    } catch (e) {
      toast(e.message, "error");
    } finally {
      s.loading = false;
    }
  }

  function addLine(line) {
    if (line.seq <= s.lastSeq) return;
    const empty = log.querySelector(".empty");
    if (empty) empty.remove();
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    s.lastSeq = line.seq;
    const el = renderLine(line, s.tools);
    if (el) log.append(el);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function renderHead() {
    const t = s.task;
    if (!t) return;
    document.getElementById("crumb-key").textContent = t.key;
    document.title = `${t.key} · agentflow`;
    const url = safeUrl(t.url);
    const phase = t.state ? t.state.phase : null;
    const canCancel = phase && LIVE_PHASES.includes(phase);
    const canRetry = t.status === "failed" || phase === "failed" || phase === "cancelled";
    const session = s.runs.find((r) => r.session_id);
    fill(
      head,
      h("h1", {}, h("span", { class: "key" }, t.key), " ", t.title),
      h(
        "p",
        { class: "task-meta" },
        h("span", { class: `badge status-${t.status}` }, statusLabel(t.status)),
        phase && (t.status === "in_progress" || t.status === "in_review") ? [" ", phaseLabel(phase)] : null,
        t.max_attempts ? [" · attempt ", `${t.attempt}/${t.max_attempts}`] : null,
        " · cost ",
        money(t.cost_usd),
        t.at ? [" · updated ", h("time", { datetime: t.at, title: exact(t.at), "data-rel": "" }, relative(t.at))] : null,
      ),
      t.error ? h("p", { class: "task-error", role: "note" }, t.error) : null,
      h(
        "p",
        { class: "task-links" },
        url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, "Open in the tracker ↗") : null,
        session ? [url ? " · " : null, "Session ", h("code", { title: "Agent session id (resume with claude --resume)" }, session.session_id)] : null,
        session && s.transcripts
          ? [" · ", h("a", { href: `/api/sessions/${encodeURIComponent(session.session_id)}/transcript`, download: "" }, "Session transcript")]
          : null,
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", disabled: !canRetry, title: canRetry ? "Run this task again" : "Only failed or cancelled tasks can be retried", onclick: () => act("retry") }, "Retry"),
        h("button", { type: "button", class: "danger", disabled: !canCancel, title: canCancel ? "Stop the running or queued job" : "Nothing is running or queued", onclick: () => act("cancel") }, "Cancel"),
      ),
    );
  }

  function renderRuns() {
    const current = runSelect.value || s.run;
    fill(
      runSelect,
      s.runs.length
        ? s.runs.map((r, i) =>
            h("option", { value: r.id }, `#${s.runs.length - i} · ${r.kind} · attempt ${r.attempt} · ${runLabel(r.status)} · ${relative(r.started_at)}`),
          )
        : h("option", { value: "" }, "No runs yet"),
    );
    if (current && s.runs.some((r) => r.id === current)) runSelect.value = current;
    runSelect.disabled = s.runs.length === 0;
  }

  function renderRunInfo() {
    const r = s.runs.find((x) => x.id === s.run);
    if (!r) return clear(runInfo);
    const secs = r.finished_at ? (new Date(r.finished_at) - new Date(r.started_at)) / 1000 : null;
    fill(
      runInfo,
      h("span", { class: `badge status-${runTone(r.status)}` }, runLabel(r.status)),
      " started ",
      h("time", { datetime: r.started_at, title: exact(r.started_at), "data-rel": "" }, relative(r.started_at)),
      secs !== null ? [" · took ", duration(secs)] : null,
      ` · ${number(r.usage.turns)} turns · ${number(r.usage.input_tokens + r.usage.output_tokens)} tokens · ${money(r.usage.cost_usd)}`,
      r.error ? h("p", { class: "task-error" }, r.error) : null,
    );
  }

  async function act(what) {
    const t = s.task;
    const ok = await confirmDialog(
      what === "retry" ? `Retry ${t.key}?` : `Cancel ${t.key}?`,
      what === "retry" ? "A new attempt is queued and resumes the agent's session." : "The running agent is stopped and the task is marked Failed.",
      what === "retry" ? "Retry" : "Cancel task",
    );
    if (!ok) return;
    try {
      const res = await post(`/api/tasks/${encodeURIComponent(id)}/${what}`);
      toast(what === "retry" ? `Retry queued for ${t.key}.` : res.message, "info");
      s.follow = true;
      loadDetail();
    } catch (e) {
      toast(e instanceof ApiError ? e.message : String(e), "error");
    }
  }

  const offs = [
    live.on("log:new", (l) => {
      if (l.task !== id) return;
      if (l.run === s.run && s.shown === s.run) {
        if (l.seq === s.lastSeq + 1 && !s.loading) addLine(l);
        else if (l.seq > s.lastSeq) loadLog(false);
      } else if (s.follow && !s.runs.some((r) => r.id === l.run)) {
        loadDetail();
      }
    }),
    live.on("task:update", (t) => {
      if (t.task !== id) return;
      const runChanged = !s.task || s.task.run !== t.run;
      s.task = t;
      renderHead();
      if (runChanged || t.state.phase !== "running") loadDetail();
    }),
    live.on("snapshot", () => loadDetail()),
  ];
  live.subscribe(id);
  loadDetail();
  return () => {
    offs.forEach((off) => off());
    live.unsubscribe(id);
  };
}

function fromRun(r) {
  return { task: r.task, key: r.task_key, title: r.title, status: r.status === "failed" ? "failed" : "done", attempt: r.attempt, max_attempts: 0, cost_usd: r.usage.cost_usd, at: r.finished_at || r.started_at, run: r.id };
}

function pretty(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

/** One log line as an element; a tool result fills in its tool call's line instead. */
function renderLine(line, tools) {
  const d = line.detail && typeof line.detail === "object" ? line.detail : {};
  const time = h("time", { class: "log-time", datetime: line.at, title: exact(line.at) }, new Date(line.at).toLocaleTimeString());
  switch (line.kind) {
    case "text":
      return h("div", { class: "log-entry log-text" }, time, h("p", {}, typeof d.text === "string" ? d.text : line.line));
    case "tool_use": {
      const mark = h("span", { class: "tool-mark pending", "aria-label": "running" }, "…");
      const out = h("pre", { class: "tool-output" });
      const el = h(
        "details",
        { class: "log-entry tool" },
        h("summary", {}, time, h("span", { class: "tool-line" }, line.line), " ", mark),
        h("div", { class: "tool-body" }, h("h3", {}, "Input"), h("pre", { class: "tool-input" }, pretty(d.input !== undefined ? d.input : line.detail)), h("h3", {}, "Output"), out),
      );
      tools.push({ name: d.name, mark, out, el });
      if (tools.length > 200) tools.shift();
      return el;
    }
    case "tool_result": {
      const isError = d.is_error === true || line.level === "error" || line.line.startsWith("✗");
      const output = typeof d.output === "string" ? d.output : line.line;
      const idx = tools.findIndex((t) => t.mark.classList.contains("pending") && (!d.name || !t.name || t.name === d.name));
      if (idx >= 0) {
        const t = tools[idx];
        t.mark.classList.remove("pending");
        t.mark.textContent = isError ? "✗" : "✓";
        t.mark.setAttribute("aria-label", isError ? "failed" : "succeeded");
        t.mark.classList.add(isError ? "bad" : "good");
        if (isError) t.el.classList.add("tool-failed");
        t.out.textContent = output;
        return null;
      }
      return h("div", { class: `log-entry log-line ${isError ? "level-error" : ""}` }, time, h("span", {}, (isError ? "✗ " : "✓ ") + output));
    }
    default: {
      const cls = `log-entry log-line level-${line.level} kind-${line.kind}`;
      return h("div", { class: cls }, time, h("span", {}, line.line));
    }
  }
}

function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "no", type: "submit" }, "Keep as is"),
        h("button", { value: "yes", type: "submit", class: "danger" }, confirmLabel),
      ),
    );
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "yes");
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}
