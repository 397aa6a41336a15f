//! What an [`Executor`](crate::Executor) is asked to do, what it reports while it works, and what
//! it returns.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::job::{JobId, JobKind};
use crate::store::RunId;
use crate::task::{Feedback, Task};

/// Tokens, cost and turns of one run (or a sum of runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens (including cache reads and writes).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Agent turns.
    pub turns: u32,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.input_tokens += rhs.input_tokens;
        self.output_tokens += rhs.output_tokens;
        self.cost_usd += rhs.cost_usd;
        self.turns += rhs.turns;
    }
}

/// Everything an executor needs to run one attempt.
#[derive(Debug)]
pub struct RunRequest {
    /// The task, as last read from the source.
    pub task: Task,
    /// The job this attempt belongs to.
    pub job: JobId,
    /// This run's id (one per attempt or feedback round).
    pub run: RunId,
    /// Execute, feedback or retry.
    pub kind: JobKind,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// Human comments to answer (feedback runs).
    pub feedback: Vec<Feedback>,
    /// The agent session to resume, when one is stored.
    pub resume_session: Option<String>,
    /// The error of the previous attempt (retries).
    pub previous_error: Option<String>,
    /// Where the agent may work; the executor decides when `None`.
    pub workspace: Option<PathBuf>,
    /// How long the attempt may take; the engine enforces it too.
    pub timeout: Duration,
    /// Tool servers (MCP) the agent may use during this run, e.g. the issue-scoped Linear tools.
    pub tool_servers: Vec<ToolServer>,
    /// Comments that arrive while the run is live. An executor that can deliver them into the
    /// running session drains this; otherwise they are handled as feedback afterwards.
    pub inbox: Option<mpsc::UnboundedReceiver<Feedback>>,
}

impl RunRequest {
    /// A request for a first `Execute` attempt of `task`, with a 3 h timeout.
    pub fn new(task: Task) -> Self {
        RunRequest {
            task,
            job: JobId::new(),
            run: RunId::new(),
            kind: JobKind::Execute,
            attempt: 1,
            feedback: Vec::new(),
            resume_session: None,
            previous_error: None,
            workspace: None,
            timeout: Duration::from_secs(3 * 3600),
            tool_servers: Vec::new(),
            inbox: None,
        }
    }
}

/// An MCP server the agent may call during one run (streamable HTTP).
///
/// The headers carry a credential scoped to the run (a bearer token bound to one task); they are
/// secret, so `Debug` leaves their values out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolServer {
    /// Server name as the agent sees it (`linear` → tools `mcp__linear__*`).
    pub name: String,
    /// Endpoint URL (loopback in the daemon).
    pub url: String,
    /// HTTP headers to send, e.g. `Authorization: Bearer <run token>`.
    pub headers: Vec<(String, String)>,
    /// Tool names the agent is allowed to call on it (unprefixed, e.g. `add_comment`).
    pub tools: Vec<String>,
}

impl std::fmt::Debug for ToolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolServer")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("tools", &self.tools)
            .finish()
    }
}

/// A successful run's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The agent's session id, to resume later.
    pub session_id: Option<String>,
    /// The agent's final text (posted as the summary).
    pub summary: String,
    /// Tokens, cost, turns.
    pub usage: Usage,
    /// `Some(true)` when the agent asked for human review, `Some(false)` when it said none is
    /// needed, `None` to let the [`ReviewPolicy`](crate::ReviewPolicy) decide.
    pub needs_review: Option<bool>,
}

/// Level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Informational.
    Info,
    /// Something odd but not fatal.
    Warn,
    /// An error.
    Error,
}

/// Something an executor reports while it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// The agent's session id is known: stored at once, so a crash can still resume.
    Session {
        /// The session id.
        id: String,
    },
    /// Text from the agent.
    Text {
        /// The text.
        text: String,
    },
    /// The agent called a tool.
    ToolUse {
        /// Tool name (`Bash`, `mcp__linear__add_comment`, …).
        name: String,
        /// A one-line summary of the input (`cargo test`).
        summary: String,
        /// The full input, when the executor has it.
        #[serde(default)]
        input: Option<serde_json::Value>,
    },
    /// A tool returned.
    ToolResult {
        /// Tool name, when known.
        #[serde(default)]
        name: Option<String>,
        /// Whether it failed.
        is_error: bool,
        /// The output, possibly truncated.
        output: String,
    },
    /// A line of the executor's own log (stderr, process output, retries, notices).
    Log {
        /// Level.
        level: LogLevel,
        /// The line.
        line: String,
    },
}

impl Progress {
    /// A one-line rendering for the progress comment and the board card.
    pub fn one_line(&self) -> String {
        let s = match self {
            Progress::Session { id } => format!("session {id}"),
            Progress::Text { text } => text.clone(),
            Progress::ToolUse { name, summary, .. } => format!("{name}: {summary}"),
            Progress::ToolResult { name, is_error, output } => format!(
                "{} {}{}",
                if *is_error { "✗" } else { "✓" },
                name.as_deref().map(|n| format!("{n}: ")).unwrap_or_default(),
                output
            ),
            Progress::Log { line, .. } => line.clone(),
        };
        let first = s.lines().next().unwrap_or_default();
        truncate(first, 200)
    }
}

/// Truncates `s` to at most `max` characters, adding `…` when cut. Never splits a character.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Where an executor sends [`Progress`]. Sending never blocks and never fails: when the engine
/// is gone, progress is dropped.
#[derive(Debug, Clone)]
pub struct ProgressSender {
    tx: mpsc::UnboundedSender<(DateTime<Utc>, Progress)>,
}

impl ProgressSender {
    /// A sender and the receiver the engine reads (each item stamped with its time).
    pub fn channel() -> (ProgressSender, mpsc::UnboundedReceiver<(DateTime<Utc>, Progress)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ProgressSender { tx }, rx)
    }

    /// A sender that drops everything.
    pub fn discard() -> ProgressSender {
        let (tx, _) = mpsc::unbounded_channel();
        ProgressSender { tx }
    }

    /// Reports progress.
    pub fn send(&self, progress: Progress) {
        let _ = self.tx.send((Utc::now(), progress));
    }

    /// Reports a log line.
    pub fn log(&self, level: LogLevel, line: impl Into<String>) {
        self.send(Progress::Log { level, line: line.into() });
    }
}
