//! Jobs, leases and the types a [`JobQueue`](crate::JobQueue) speaks.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::task::TaskId;

/// A job's id: a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for JobId {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(JobId)
            .map_err(|e| crate::Error::InvalidInput(format!("job id `{s}`: {e}")))
    }
}

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Run the agent on a task for the first time.
    Execute,
    /// Resume the agent's session with human comments.
    Feedback,
    /// Run a failed task again (manual retry or reconciliation).
    Retry,
}

impl JobKind {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Execute => "execute",
            JobKind::Feedback => "feedback",
            JobKind::Retry => "retry",
        }
    }

    /// Parses [`JobKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "execute" => JobKind::Execute,
            "feedback" => JobKind::Feedback,
            "retry" => JobKind::Retry,
            _ => return None,
        })
    }
}

/// A job's state in the queue (River's set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`.
    Scheduled,
    /// Ready to be reserved.
    Available,
    /// Reserved by a worker under a lease.
    Running,
    /// Failed an attempt; will be available again at `run_at`.
    Retryable,
    /// Finished successfully.
    Completed,
    /// Failed its last attempt (or failed permanently).
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    /// All states.
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Whether the job is still live (not finished): live jobs hold their unique key.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            JobState::Scheduled | JobState::Available | JobState::Running | JobState::Retryable
        )
    }

    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses [`JobState::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to enqueue.
///
/// ```
/// use agentflow_core::{JobKind, JobSpec};
/// let spec = JobSpec::new(JobKind::Execute, "task-1").unique_key("execute:task-1");
/// assert_eq!(spec.max_attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Why.
    pub kind: JobKind,
    /// The task it works on.
    pub task: TaskId,
    /// Free-form data for the worker (e.g. feedback comment ids).
    #[serde(default)]
    pub payload: serde_json::Value,
    /// At most one live job holds a given unique key; enqueueing another returns the live one.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// Smaller runs first (use [`Priority::rank`](crate::Priority::rank)).
    #[serde(default)]
    pub priority: i16,
    /// Attempts before the job fails for good.
    pub max_attempts: u32,
    /// Not before this time; `None` = now.
    #[serde(default)]
    pub run_at: Option<DateTime<Utc>>,
    /// How long one attempt may run.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl JobSpec {
    /// A job of `kind` for `task` with defaults: 3 attempts, 3 h timeout, run now.
    pub fn new(kind: JobKind, task: impl Into<TaskId>) -> Self {
        JobSpec {
            kind,
            task: task.into(),
            payload: serde_json::Value::Null,
            unique_key: None,
            priority: 0,
            max_attempts: 3,
            run_at: None,
            timeout: Duration::from_secs(3 * 3600),
        }
    }

    /// Sets the unique key.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the priority (smaller first).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the number of attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Delays the job until `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A job as stored in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Why.
    pub kind: JobKind,
    /// The task it works on.
    pub task: TaskId,
    /// Free-form data.
    pub payload: serde_json::Value,
    /// Unique key, if any.
    pub unique_key: Option<String>,
    /// Smaller runs first.
    pub priority: i16,
    /// Attempts started so far (reserve increments it; release gives it back).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it may run (next).
    pub run_at: DateTime<Utc>,
    /// Per-attempt timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Current state.
    pub state: JobState,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
}

/// Identifies one process start of a worker pool: host + pid + random, never reused.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl WorkerId {
    /// A fresh id for this process: `host:pid:random`.
    pub fn generate() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        WorkerId(format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for WorkerId {
    fn from(s: &str) -> Self {
        WorkerId(s.to_owned())
    }
}

/// A reserved job: the job, who holds it, the token to present, and when the lease expires.
///
/// Every `heartbeat`/`complete`/`fail`/`release` presents the token; a stale token gets
/// [`Error::LeaseLost`](crate::Error::LeaseLost) and changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The job as it was reserved (state `Running`, attempt already counted).
    pub job: Job,
    /// The lease token.
    pub token: Uuid,
    /// The holder.
    pub worker: WorkerId,
    /// When the lease runs out unless extended by a heartbeat.
    pub expires_at: DateTime<Utc>,
}

/// What [`JobQueue::enqueue`](crate::JobQueue::enqueue) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Enqueued {
    /// A new job was created.
    New(JobId),
    /// A live job with the same unique key exists; nothing was created.
    Existing(JobId),
}

impl Enqueued {
    /// The job's id either way.
    pub fn id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id) => id,
        }
    }

    /// Whether a new job was created.
    pub fn is_new(self) -> bool {
        matches!(self, Enqueued::New(_))
    }
}

/// Which jobs [`JobQueue::list`](crate::JobQueue::list) returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Any of these states.
    #[serde(default)]
    pub states: Vec<JobState>,
    /// This kind.
    #[serde(default)]
    pub kind: Option<JobKind>,
    /// This task.
    #[serde(default)]
    pub task: Option<TaskId>,
}

impl JobFilter {
    /// Jobs of one task.
    pub fn task(task: impl Into<TaskId>) -> Self {
        JobFilter { task: Some(task.into()), ..Default::default() }
    }

    /// Jobs in any of `states`.
    pub fn states(states: impl IntoIterator<Item = JobState>) -> Self {
        JobFilter { states: states.into_iter().collect(), ..Default::default() }
    }

    /// Whether `job` matches.
    pub fn matches(&self, job: &Job) -> bool {
        (self.states.is_empty() || self.states.contains(&job.state))
            && self.kind.is_none_or(|k| k == job.kind)
            && self.task.as_ref().is_none_or(|t| *t == job.task)
    }
}

/// Offset paging. Listings are ordered newest first (by id, which is time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Items to skip.
    pub offset: u64,
    /// Items to return at most.
    pub limit: u32,
}

impl Page {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Self {
        Page { offset: 0, limit }
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::first(100)
    }
}

/// Jobs per state. The fields add up to every job the queue still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Waiting for `run_at`.
    pub scheduled: u64,
    /// Ready.
    pub available: u64,
    /// Leased.
    pub running: u64,
    /// Waiting for a retry.
    pub retryable: u64,
    /// Done.
    pub completed: u64,
    /// Failed for good.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl QueueStats {
    /// The count for `state`.
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Scheduled => self.scheduled,
            JobState::Available => self.available,
            JobState::Running => self.running,
            JobState::Retryable => self.retryable,
            JobState::Completed => self.completed,
            JobState::Failed => self.failed,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// Mutable count for `state`.
    pub fn get_mut(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Scheduled => &mut self.scheduled,
            JobState::Available => &mut self.available,
            JobState::Running => &mut self.running,
            JobState::Retryable => &mut self.retryable,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
        }
    }

    /// Sum over all states.
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Jobs waiting to run (scheduled + available + retryable).
    pub fn queued(&self) -> u64 {
        self.scheduled + self.available + self.retryable
    }
}
