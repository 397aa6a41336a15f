//! Records the [`StateStore`](crate::StateStore) keeps: sessions, runs, log lines, settings.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{JobId, JobKind};
use crate::run::{LogLevel, Usage};
use crate::task::TaskId;

/// A run's id: a UUID v7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub Uuid);

impl RunId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        RunId(Uuid::now_v7())
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The agent session of a task: what feedback and retries resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The task.
    pub task: TaskId,
    /// The agent's session id.
    pub session_id: String,
    /// The workspace the agent works in.
    pub workspace: Option<PathBuf>,
    /// Usage summed over every run of the task.
    pub usage: Usage,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (or the process died and nobody finished the record yet).
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Hit its timeout.
    TimedOut,
    /// Cancelled (by a person, by shutdown, or because the task left In Progress).
    Cancelled,
}

impl RunStatus {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses [`RunStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "timed_out" => RunStatus::TimedOut,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

/// One attempt (or feedback round) of a task: a row of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Id.
    pub id: RunId,
    /// The task.
    pub task: TaskId,
    /// The task's human key.
    pub task_key: String,
    /// The task's title when the run started.
    pub title: String,
    /// The job.
    pub job: JobId,
    /// Execute, feedback or retry.
    pub kind: JobKind,
    /// The job's attempt number.
    pub attempt: u32,
    /// The worker that ran it.
    pub worker: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End, once finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome.
    pub status: RunStatus,
    /// The error, for failed runs.
    pub error: Option<String>,
    /// The agent's final text.
    pub summary: Option<String>,
    /// The agent session used.
    pub session_id: Option<String>,
    /// Tokens, cost, turns.
    pub usage: Usage,
}

/// How a run ended, written by [`StateStore::finish_run`](crate::StateStore::finish_run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinish {
    /// Outcome (not [`RunStatus::Running`]).
    pub status: RunStatus,
    /// End time.
    pub finished_at: DateTime<Utc>,
    /// Error, if any.
    pub error: Option<String>,
    /// Summary, if any.
    pub summary: Option<String>,
    /// Session id, if known.
    pub session_id: Option<String>,
    /// Usage.
    pub usage: Usage,
}

/// Which runs [`StateStore::list_runs`](crate::StateStore::list_runs) returns. Empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFilter {
    /// This task.
    #[serde(default)]
    pub task: Option<TaskId>,
    /// Any of these outcomes.
    #[serde(default)]
    pub statuses: Vec<RunStatus>,
    /// Started at or after.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the task key, title, summary or error.
    #[serde(default)]
    pub text: Option<String>,
}

impl RunFilter {
    /// Whether `run` matches.
    pub fn matches(&self, run: &Run) -> bool {
        self.task.as_ref().is_none_or(|t| *t == run.task)
            && (self.statuses.is_empty() || self.statuses.contains(&run.status))
            && self.since.is_none_or(|s| run.started_at >= s)
            && self.until.is_none_or(|u| run.started_at < u)
            && self.text.as_ref().is_none_or(|needle| {
                let needle = needle.to_lowercase();
                [Some(&run.task_key), Some(&run.title), run.summary.as_ref(), run.error.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|h| h.to_lowercase().contains(&needle))
            })
    }
}

/// A page of runs plus the total that matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs, newest first.
    pub runs: Vec<Run>,
    /// How many matched in all.
    pub total: u64,
}

/// Usage and outcome counts over a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTotals {
    /// Usage summed.
    pub usage: Usage,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed or timed out.
    pub failed: u64,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the run's log, from 1; assigned by the store.
    pub seq: u64,
    /// When it was produced.
    pub at: DateTime<Utc>,
    /// Level.
    pub level: LogLevel,
    /// What produced it: `text`, `tool_use`, `tool_result`, `log`, `session`, `marker`.
    pub kind: String,
    /// The line (one-line rendering).
    pub line: String,
    /// Structured detail (tool input/output), when any.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingSource {
    /// Saved in the state store (from the dashboard).
    Database,
    /// From the process environment.
    Environment,
    /// From the configuration file.
    File,
    /// The built-in default.
    Default,
}

/// A setting saved in the store.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// Key, e.g. `linear.api_key`.
    pub key: String,
    /// Value (masked in listings when `secret`).
    pub value: String,
    /// Whether the value is a secret.
    pub secret: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field(
                "value",
                &if self.secret { mask_secret(&self.value) } else { self.value.clone() },
            )
            .field("secret", &self.secret)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Setting {
    /// This setting with its value masked when it is a secret.
    pub fn masked(mut self) -> Self {
        if self.secret {
            self.value = mask_secret(&self.value);
        }
        self
    }
}

/// Masks a secret for display: a recognisable prefix and the last four characters of a long
/// value (`lin_api_…abcd`), nothing of a short one.
///
/// ```
/// use agentflow_core::mask_secret;
/// assert_eq!(mask_secret("lin_api_0123456789abcdef0123456789abcd"), "lin_api_…abcd");
/// assert_eq!(mask_secret("hunter2"), "…");
/// ```
pub fn mask_secret(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 16 {
        return "…".to_owned();
    }
    let prefix: String = match value.rfind('_').or_else(|| value.rfind('-')) {
        Some(i) if i < 12 => value[..=i].to_owned(),
        _ => String::new(),
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

/// Paging for log lines: lines with `seq > after`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// Return lines after this sequence number (0 = from the start).
    pub after: u64,
    /// At most this many.
    pub limit: u32,
}

impl Default for LogPage {
    fn default() -> Self {
        LogPage { after: 0, limit: 1000 }
    }
}
