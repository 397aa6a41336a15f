//! [`SqliteStore`]: the [`StateStore`] on SQLite.

use agentflow_core::{
    LogLine, LogPage, Page, Result, Run, RunFilter, RunFinish, RunId, RunPage, RunTotals, Session,
    Setting, StateStore, TaskId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::SqliteOptions;
use crate::db::Database;

mod sql;

/// Sessions, processed comments, runs and their logs, settings and cursors in an SQLite file.
///
/// Shares the writer thread and reader pool of its [`Database`] with the [`SqliteQueue`](crate::SqliteQueue).
/// Each run keeps at most [`SqliteOptions::max_log_lines_per_run`] log lines.
///
/// ```
/// # #[tokio::main] async fn main() -> agentflow_core::Result<()> {
/// use agentflow_core::StateStore;
/// use agentflow_sqlite::{SqliteOptions, SqliteStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("s.db").to_str().unwrap(), SqliteOptions::default()).await?;
/// assert!(store.mark_processed("comment-1").await?);
/// assert!(!store.mark_processed("comment-1").await?);
/// store.put_setting("linear.api_key", "lin_api_0123456789abcdef0123456789abcd", true).await?;
/// assert_eq!(store.list_settings().await?[0].value, "lin_api_…abcd");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) db: Database,
}

impl SqliteStore {
    /// Opens the database at `target` (see [`Database::open`]) and returns its state store.
    pub async fn open(target: &str, options: SqliteOptions) -> Result<SqliteStore> {
        Ok(Database::open(target, options).await?.store())
    }

    /// The database this store lives in.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn get_session(&self, task: &TaskId) -> Result<Option<Session>> {
        let task = task.clone();
        self.db.read(move |c| sql::get_session(c, &task)).await
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.db.write(move |c| sql::put_session(c, &session)).await
    }

    async fn mark_processed(&self, comment_id: &str) -> Result<bool> {
        let id = comment_id.to_owned();
        self.db.write(move |c| sql::mark_processed(c, &id, Utc::now())).await
    }

    async fn start_run(&self, run: &Run) -> Result<()> {
        let run = run.clone();
        self.db.write(move |c| sql::start_run(c, &run)).await
    }

    async fn finish_run(&self, id: RunId, finish: &RunFinish) -> Result<()> {
        let finish = finish.clone();
        self.db.write(move |c| sql::finish_run(c, id, &finish)).await
    }

    async fn get_run(&self, id: RunId) -> Result<Option<Run>> {
        self.db.read(move |c| sql::get_run(c, id)).await
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<RunPage> {
        let filter = filter.clone();
        self.db.read(move |c| sql::list_runs(c, &filter, page)).await
    }

    async fn totals_since(&self, since: DateTime<Utc>) -> Result<RunTotals> {
        self.db.read(move |c| sql::totals_since(c, since)).await
    }

    async fn append_logs(&self, run: RunId, lines: Vec<LogLine>) -> Result<Vec<LogLine>> {
        let max = self.db.inner.options.max_log_lines_per_run;
        self.db.write(move |c| sql::append_logs(c, run, lines, max, Utc::now())).await
    }

    async fn logs(&self, run: RunId, page: LogPage) -> Result<Vec<LogLine>> {
        self.db.read(move |c| sql::logs(c, run, page)).await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Setting>> {
        let key = key.to_owned();
        self.db.read(move |c| sql::get_setting(c, &key)).await
    }

    async fn put_setting(&self, key: &str, value: &str, secret: bool) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.db.write(move |c| sql::put_setting(c, &key, &value, secret, Utc::now())).await
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.db.write(move |c| sql::delete_setting(c, &key)).await
    }

    async fn list_settings(&self) -> Result<Vec<Setting>> {
        self.db.read(sql::list_settings).await
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.db.read(move |c| sql::get_cursor(c, &name)).await
    }

    async fn put_cursor(&self, name: &str, value: &str) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db.write(move |c| sql::put_cursor(c, &name, &value, Utc::now())).await
    }
}
