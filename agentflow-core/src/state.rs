//! The [`StateStore`] trait: what the engine remembers beside the queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::job::Page;
use crate::store::{
    LogLine, LogPage, Run, RunFilter, RunFinish, RunId, RunPage, RunTotals, Session, Setting,
};
use crate::task::TaskId;

/// Sessions, processed comments, runs and their logs, settings and cursors.
///
/// # Contract
/// - [`mark_processed`](StateStore::mark_processed) returns `true` the first time a comment id
///   is seen and `false` after, atomically: two engines never both get `true`.
/// - Runs are listed newest first. [`append_logs`](StateStore::append_logs) assigns sequence
///   numbers from 1 per run; a store keeps at most its configured number of lines per run,
///   dropping the oldest and leaving one `marker` line that says how many were dropped.
/// - [`list_settings`](StateStore::list_settings) masks secrets; only
///   [`get_setting`](StateStore::get_setting) returns a secret's value.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The stored session of a task.
    async fn get_session(&self, task: &TaskId) -> Result<Option<Session>>;

    /// Creates or replaces a task's session.
    async fn put_session(&self, session: &Session) -> Result<()>;

    /// Records a comment as processed; `false` when it already was.
    async fn mark_processed(&self, comment_id: &str) -> Result<bool>;

    /// Records the start of a run (`run.status` is `Running`).
    async fn start_run(&self, run: &Run) -> Result<()>;

    /// Records how a run ended.
    async fn finish_run(&self, id: RunId, finish: &RunFinish) -> Result<()>;

    /// One run.
    async fn get_run(&self, id: RunId) -> Result<Option<Run>>;

    /// Runs matching `filter`, newest first, with the total count.
    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<RunPage>;

    /// Usage and outcome counts over runs started at or after `since` (the stats strip's "today").
    async fn totals_since(&self, since: DateTime<Utc>) -> Result<RunTotals>;

    /// Appends lines to a run's log, assigning their sequence numbers (the `seq` passed in is
    /// ignored). Returns the lines as stored.
    async fn append_logs(&self, run: RunId, lines: Vec<LogLine>) -> Result<Vec<LogLine>>;

    /// A run's log lines after `page.after`.
    async fn logs(&self, run: RunId, page: LogPage) -> Result<Vec<LogLine>>;

    /// A setting, unmasked.
    async fn get_setting(&self, key: &str) -> Result<Option<Setting>>;

    /// Creates or replaces a setting.
    async fn put_setting(&self, key: &str, value: &str, secret: bool) -> Result<()>;

    /// Deletes a setting; `false` when there was none.
    async fn delete_setting(&self, key: &str) -> Result<bool>;

    /// All settings, secrets masked.
    async fn list_settings(&self) -> Result<Vec<Setting>>;

    /// A named cursor (e.g. the feedback cursor).
    async fn get_cursor(&self, name: &str) -> Result<Option<String>>;

    /// Sets a named cursor.
    async fn put_cursor(&self, name: &str, value: &str) -> Result<()>;
}
