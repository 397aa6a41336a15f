//! The [`TaskSource`] trait: where tasks come from and where their status is shown.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::task::{FeedbackBatch, Report, SourceEvent, Task, TaskId, TaskStatus};

/// An issue tracker (Linear, the in-memory [`LocalSource`](crate::memory::LocalSource), …).
///
/// # Contract
/// - [`ready`](TaskSource::ready) returns tasks in [`TaskStatus::Todo`] that match the source's
///   filters, at most `limit`, in any order (the engine sorts them).
/// - [`claim`](TaskSource::claim) moves a Todo task to In Progress and returns `true`; it returns
///   `Ok(false)` and changes nothing when the task is no longer Todo. Trackers have no
///   compare-and-set, so the queue's unique key is the real lock against double work.
/// - [`feedback`](TaskSource::feedback) returns human comments on In Review tasks newer than the
///   cursor, oldest first, never the source's own comments.
/// - [`report`](TaskSource::report) with [`ReportKind::Progress`](crate::ReportKind::Progress)
///   creates the run's progress comment the first time and edits that same comment after.
#[async_trait]
pub trait TaskSource: Send + Sync + 'static {
    /// Tasks waiting to start.
    async fn ready(&self, limit: usize) -> Result<Vec<Task>>;

    /// Moves a Todo task to In Progress; `Ok(false)` when it is no longer Todo.
    async fn claim(&self, id: &TaskId) -> Result<bool>;

    /// Sets a task's status.
    async fn set_status(&self, id: &TaskId, status: TaskStatus) -> Result<()>;

    /// Human comments on In Review and In Progress tasks newer than `cursor` (`None`: from now
    /// on, or from the source's notion of the start). The engine turns those on In Review tasks
    /// into feedback runs and hands those on In Progress tasks to the live run.
    async fn feedback(&self, cursor: Option<&str>) -> Result<FeedbackBatch>;

    /// Writes a progress report or a final summary for a task.
    ///
    /// The engine may deliver a run's summary more than once: after a crash it finishes the
    /// recorded end of an attempt, and cannot know whether the summary was posted just before.
    /// A source that can should post one summary per `(task, report.run)` (Linear does, with
    /// a comment id derived from both).
    async fn report(&self, id: &TaskId, report: &Report) -> Result<()>;

    /// One task, `None` when it does not exist (any more).
    async fn get(&self, id: &TaskId) -> Result<Option<Task>>;

    /// Every task in `status`, for reconciliation.
    async fn list(&self, status: TaskStatus) -> Result<Vec<Task>>;

    /// The statuses of several tasks in one look-up; tasks that no longer exist are missing from
    /// the map. The default calls [`get`](TaskSource::get) for each; sources override it with
    /// one batched request.
    async fn statuses(&self, ids: &[TaskId]) -> Result<HashMap<TaskId, TaskStatus>> {
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(task) = self.get(id).await? {
                out.insert(id.clone(), task.status);
            }
        }
        Ok(out)
    }

    /// Changes pushed by the tracker (webhooks), so the engine can act before its next poll.
    /// `None` (the default): the engine relies on polling alone.
    fn watch(&self) -> Option<BoxStream<'static, SourceEvent>> {
        None
    }
}
