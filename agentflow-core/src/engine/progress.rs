//! The progress pump: turns an executor's [`Progress`] into stored log lines, `log:new` events,
//! `task:update` events and a throttled progress report on the tracker.

use std::collections::VecDeque;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::event::{Event, LogEvent};
use crate::run::Usage;
use crate::run::{LogLevel, Progress};
use crate::store::{LogLine, RunId, Session};
use crate::task::{Report, ReportKind, Task};

/// Lines shown in the progress report.
const REPORT_LINES: usize = 12;

/// What the pump learned during a run.
#[derive(Debug, Default)]
pub(crate) struct PumpResult {
    /// The session id the executor reported, if any.
    pub(crate) session: Option<String>,
    /// The last line.
    pub(crate) last_line: Option<String>,
}

/// The run a pump reports for.
pub(crate) struct RunContext<'a> {
    pub(crate) task: &'a Task,
    pub(crate) run: RunId,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) workspace: Option<PathBuf>,
}

struct Pump<'a> {
    shared: &'a Shared,
    ctx: RunContext<'a>,
    recent: VecDeque<String>,
    last_report: Option<Instant>,
    dirty: bool,
    result: PumpResult,
}

/// Reads progress until the executor drops its sender or `done` fires (then drains what is left).
pub(crate) async fn pump(
    shared: &Shared,
    ctx: RunContext<'_>,
    mut rx: mpsc::UnboundedReceiver<(DateTime<Utc>, Progress)>,
    done: CancellationToken,
) -> PumpResult {
    let mut p = Pump {
        shared,
        ctx,
        recent: VecDeque::new(),
        last_report: None,
        dirty: false,
        result: PumpResult::default(),
    };
    let interval = shared.config().progress_interval;
    loop {
        let flush_at = p.last_report.map_or_else(Instant::now, |t| t + interval);
        tokio::select! {
            biased;
            _ = done.cancelled() => {
                let mut batch = Vec::new();
                while let Ok(item) = rx.try_recv() {
                    batch.push(item);
                }
                p.handle(batch, interval, false).await;
                break;
            }
            item = rx.recv() => match item {
                Some(item) => {
                    let mut batch = vec![item];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    p.handle(batch, interval, true).await;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(flush_at), if p.dirty => p.report().await,
        }
    }
    p.result
}

fn kind_of(progress: &Progress) -> (&'static str, LogLevel, Option<serde_json::Value>) {
    match progress {
        Progress::Session { .. } => ("session", LogLevel::Info, None),
        // The line is the first line only; the detail keeps the whole paragraph for the task page.
        Progress::Text { text } => {
            let detail = (text.lines().nth(1).is_some() || text.chars().count() > 200)
                .then(|| serde_json::json!({ "text": text }));
            ("text", LogLevel::Info, detail)
        }
        Progress::ToolUse { input, .. } => ("tool_use", LogLevel::Info, input.clone()),
        Progress::ToolResult { is_error, output, .. } => (
            "tool_result",
            if *is_error { LogLevel::Error } else { LogLevel::Info },
            Some(serde_json::json!({ "output": output })),
        ),
        Progress::Log { level, .. } => ("log", *level, None),
    }
}

impl Pump<'_> {
    async fn handle(
        &mut self,
        batch: Vec<(DateTime<Utc>, Progress)>,
        interval: std::time::Duration,
        may_report: bool,
    ) {
        if batch.is_empty() {
            return;
        }
        let shared = self.shared;
        let task = &self.ctx.task.id;
        let mut lines = Vec::with_capacity(batch.len());
        for (at, progress) in &batch {
            if let Progress::Session { id } = progress {
                self.store_session(id).await;
            }
            let (kind, level, detail) = kind_of(progress);
            lines.push(LogLine {
                seq: 0,
                at: *at,
                level,
                kind: kind.to_owned(),
                line: progress.one_line(),
                detail,
            });
        }
        let stored = match shared.store.append_logs(self.ctx.run, lines.clone()).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "cannot store log lines");
                lines
            }
        };
        for line in stored {
            if line.kind != "session" {
                self.recent.push_back(line.line.clone());
                if self.recent.len() > REPORT_LINES {
                    self.recent.pop_front();
                }
                self.result.last_line = Some(line.line.clone());
            }
            shared.emit(Event::Log(LogEvent {
                task: task.clone(),
                run: self.ctx.run,
                seq: line.seq,
                at: line.at,
                level: line.level,
                kind: line.kind,
                line: line.line,
                detail: line.detail,
            }));
        }
        if let Some(last) = self.result.last_line.clone() {
            shared.touch_id(task, |u| u.last_line = Some(last));
        }
        self.dirty = true;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= interval);
        if may_report && due {
            self.report().await;
        }
    }

    async fn store_session(&mut self, id: &str) {
        let shared = self.shared;
        let task = &self.ctx.task.id;
        self.result.session = Some(id.to_owned());
        let previous = shared.store.get_session(task).await.ok().flatten();
        let session = Session {
            task: task.clone(),
            session_id: id.to_owned(),
            workspace: self
                .ctx
                .workspace
                .clone()
                .or(previous.as_ref().and_then(|p| p.workspace.clone())),
            usage: previous.map(|p| p.usage).unwrap_or_else(Usage::default),
            updated_at: Utc::now(),
        };
        if let Err(error) = shared.store.put_session(&session).await {
            tracing::warn!(%error, "cannot store the session id");
        }
    }

    async fn report(&mut self) {
        self.dirty = false;
        self.last_report = Some(Instant::now());
        let body = render_progress(self.ctx.attempt, self.ctx.max_attempts, &self.recent);
        let report = Report { run: self.ctx.run.to_string(), kind: ReportKind::Progress, body };
        if let Err(error) = self.shared.source.report(&self.ctx.task.id, &report).await {
            tracing::warn!(%error, "cannot write the progress report");
        }
    }
}

/// Neutralises code fences so untrusted lines cannot break out of the report's code block.
pub(crate) fn defence(line: &str) -> String {
    line.replace("```", "ʼʼʼ")
}

fn render_progress(attempt: u32, max_attempts: u32, recent: &VecDeque<String>) -> String {
    let mut body =
        format!("⏳ **Working on it** (attempt {attempt} of {max_attempts})\n\n```text\n");
    for line in recent {
        body.push_str(&defence(line));
        body.push('\n');
    }
    body.push_str("```\n");
    body
}
