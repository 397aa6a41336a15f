//! Tasks as the tracker shows them, human feedback on them, and reports we write back.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The task source's stable id for a task (Linear's issue UUID, the local source's id).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId(s.to_owned())
    }
}

impl From<String> for TaskId {
    fn from(s: String) -> Self {
        TaskId(s)
    }
}

/// The status of a task as the tracker shows it.
///
/// Sources map these to their own state names through configuration (Linear's defaults are
/// "Todo", "In Progress", "In Review", "Done" and "Failed"). A tracker state that none of these
/// names (Backlog, Canceled, …) reads as [`TaskStatus::Other`]: the engine never starts such a
/// task and cancels a run whose task was moved there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting to be picked up.
    Todo,
    /// Claimed by agentflow; an agent is queued or running.
    InProgress,
    /// The agent finished and a human should review; comments resume the session.
    InReview,
    /// Finished.
    Done,
    /// Failed after the last attempt.
    Failed,
    /// A state agentflow does not manage (Backlog, Canceled, Triage, …).
    Other,
}

impl TaskStatus {
    /// All statuses agentflow manages, in board order.
    pub const MANAGED: [TaskStatus; 5] = [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::InReview,
        TaskStatus::Done,
        TaskStatus::Failed,
    ];

    /// A stable lowercase name (`todo`, `in_progress`, …), as used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Todo => "todo",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::InReview => "in_review",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Other => "other",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task priority, with Linear's scale: 0 none, 1 urgent, 2 high, 3 medium, 4 low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub u8);

impl Priority {
    /// No priority set.
    pub const NONE: Priority = Priority(0);
    /// Urgent.
    pub const URGENT: Priority = Priority(1);
    /// High.
    pub const HIGH: Priority = Priority(2);
    /// Medium.
    pub const MEDIUM: Priority = Priority(3);
    /// Low.
    pub const LOW: Priority = Priority(4);

    /// Sort rank: smaller runs first (urgent = 1 … low = 4, none = 5).
    pub fn rank(self) -> u8 {
        if self.0 == 0 { 5 } else { self.0.min(5) }
    }
}

/// A unit of work from a [`TaskSource`](crate::TaskSource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The source's stable id.
    pub id: TaskId,
    /// The human key, e.g. `ENG-123`.
    pub key: String,
    /// Title.
    pub title: String,
    /// Description (Markdown). Untrusted: it is data for the agent, never instructions to us.
    #[serde(default)]
    pub body: String,
    /// Link to the task in the tracker.
    #[serde(default)]
    pub url: Option<String>,
    /// Label names.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Priority,
    /// Status as the tracker shows it.
    pub status: TaskStatus,
    /// Last change in the tracker.
    pub updated_at: DateTime<Utc>,
    /// Anything else the source wants to keep (opaque to the engine).
    #[serde(default)]
    pub source_meta: serde_json::Value,
}

impl Task {
    /// A minimal task in [`TaskStatus::Todo`], for tests and the local source.
    ///
    /// ```
    /// let t = agentflow_core::Task::new("t1", "LOC-1", "Write a haiku");
    /// assert_eq!(t.status, agentflow_core::TaskStatus::Todo);
    /// ```
    pub fn new(id: impl Into<TaskId>, key: impl Into<String>, title: impl Into<String>) -> Self {
        Task {
            id: id.into(),
            key: key.into(),
            title: title.into(),
            body: String::new(),
            url: None,
            labels: Vec::new(),
            priority: Priority::NONE,
            status: TaskStatus::Todo,
            updated_at: Utc::now(),
            source_meta: serde_json::Value::Null,
        }
    }

    /// Whether the task carries `label` (case-insensitive).
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.eq_ignore_ascii_case(label))
    }
}

/// A human comment on a task in review: it resumes the agent's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// The comment's stable id (deduplicated through [`StateStore::mark_processed`](crate::StateStore::mark_processed)).
    pub id: String,
    /// The task commented on.
    pub task: TaskId,
    /// Who wrote it (display name).
    pub author: String,
    /// The comment text. Untrusted.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A page of feedback and the cursor to pass next time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackBatch {
    /// New comments, oldest first.
    pub items: Vec<Feedback>,
    /// The cursor for the next call; `None` keeps the one passed in.
    pub cursor: Option<String>,
}

/// What a report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The run's single live progress comment: created by the first report, edited in place after.
    Progress,
    /// The final summary of a run: posted once, as its own comment.
    Summary,
}

/// Something we write back to the tracker for a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The run this report belongs to; a source keeps one progress comment per run.
    pub run: String,
    /// Progress (edited in place) or summary (posted once).
    pub kind: ReportKind,
    /// Markdown body.
    pub body: String,
}

/// A change a source pushes (e.g. from a webhook) so the engine can act before its next poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SourceEvent {
    /// A task became ready (moved to Todo or created there).
    TaskReady(TaskId),
    /// A task's status changed.
    StatusChanged(TaskId, TaskStatus),
    /// A human commented on a task.
    Comment(TaskId),
}
