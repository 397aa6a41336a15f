//! [`MemoryStore`]: the [`StateStore`] contract in process memory.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::job::Page;
use crate::run::LogLevel;
use crate::state::StateStore;
use crate::store::{
    LogLine, LogPage, Run, RunFilter, RunFinish, RunId, RunPage, RunStatus, RunTotals, Session,
    Setting,
};
use crate::task::TaskId;

/// How many log lines per run a [`MemoryStore`] keeps by default.
pub const DEFAULT_MAX_LOG_LINES: usize = 10_000;

/// A [`StateStore`] in process memory: for tests, examples and embedding in one process.
///
/// Each run keeps at most [`DEFAULT_MAX_LOG_LINES`] log lines (see
/// [`MemoryStore::with_max_log_lines`]): past the bound the oldest are dropped and the log starts
/// with one `marker` line saying how many (the marker counts toward the bound).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use agentflow_core::{memory::MemoryStore, StateStore};
///
/// let store = MemoryStore::new();
/// assert!(store.mark_processed("comment-1").await?);
/// assert!(!store.mark_processed("comment-1").await?);
///
/// store.put_setting("linear.api_key", "lin_api_0123456789abcdef0123456789abcd", true).await?;
/// assert_eq!(store.list_settings().await?[0].value, "lin_api_…abcd");
/// # Ok::<(), agentflow_core::Error>(())
/// # }).unwrap();
/// ```
pub struct MemoryStore {
    state: Mutex<State>,
    max_log_lines: usize,
}

#[derive(Default)]
struct State {
    sessions: HashMap<TaskId, Session>,
    processed: HashSet<String>,
    runs: BTreeMap<RunId, Run>,
    logs: HashMap<RunId, RunLog>,
    settings: BTreeMap<String, Setting>,
    cursors: HashMap<String, String>,
}

#[derive(Default)]
struct RunLog {
    /// The lines kept (without the marker), oldest first.
    lines: VecDeque<LogLine>,
    /// The last sequence number handed out.
    last_seq: u64,
    /// How many lines were dropped so far, and when the last drop happened.
    dropped: u64,
    dropped_at: Option<DateTime<Utc>>,
}

impl RunLog {
    /// The marker line that stands in for the dropped ones, numbered just before the first kept
    /// line so that paging by `seq` stays in order.
    fn marker(&self) -> Option<LogLine> {
        if self.dropped == 0 {
            return None;
        }
        let first_kept = self.lines.front().map_or(self.last_seq + 1, |l| l.seq);
        Some(LogLine {
            seq: first_kept - 1,
            at: self.dropped_at.unwrap_or_else(Utc::now),
            level: LogLevel::Warn,
            kind: "marker".to_owned(),
            line: format!("{} earlier log lines dropped (limit per run reached)", self.dropped),
            detail: Some(serde_json::json!({ "dropped": self.dropped })),
        })
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("MemoryStore")
            .field("runs", &st.runs.len())
            .field("sessions", &st.sessions.len())
            .field("max_log_lines", &self.max_log_lines)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store keeping up to [`DEFAULT_MAX_LOG_LINES`] lines per run.
    pub fn new() -> Self {
        Self::with_max_log_lines(DEFAULT_MAX_LOG_LINES)
    }

    /// An empty store keeping up to `max` lines per run, the marker included (at least 2).
    pub fn with_max_log_lines(max: usize) -> Self {
        MemoryStore { state: Mutex::new(State::default()), max_log_lines: max.max(2) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get_session(&self, task: &TaskId) -> Result<Option<Session>> {
        Ok(self.lock().sessions.get(task).cloned())
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        self.lock().sessions.insert(session.task.clone(), session.clone());
        Ok(())
    }

    async fn mark_processed(&self, comment_id: &str) -> Result<bool> {
        Ok(self.lock().processed.insert(comment_id.to_owned()))
    }

    async fn start_run(&self, run: &Run) -> Result<()> {
        let mut st = self.lock();
        if st.runs.contains_key(&run.id) {
            return Err(Error::Conflict(format!("run {} already exists", run.id)));
        }
        st.runs.insert(run.id, run.clone());
        Ok(())
    }

    async fn finish_run(&self, id: RunId, finish: &RunFinish) -> Result<()> {
        let mut st = self.lock();
        let run = st.runs.get_mut(&id).ok_or_else(|| Error::not_found("run", id))?;
        run.status = finish.status;
        run.finished_at = Some(finish.finished_at);
        run.error.clone_from(&finish.error);
        run.summary.clone_from(&finish.summary);
        if finish.session_id.is_some() {
            run.session_id.clone_from(&finish.session_id);
        }
        run.usage = finish.usage;
        Ok(())
    }

    async fn get_run(&self, id: RunId) -> Result<Option<Run>> {
        Ok(self.lock().runs.get(&id).cloned())
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<RunPage> {
        let st = self.lock();
        let mut matched: Vec<&Run> = st.runs.values().filter(|r| filter.matches(r)).collect();
        matched.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        let total = matched.len() as u64;
        let runs = matched
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(page.limit as usize)
            .cloned()
            .collect();
        Ok(RunPage { runs, total })
    }

    async fn totals_since(&self, since: DateTime<Utc>) -> Result<RunTotals> {
        let st = self.lock();
        let mut totals = RunTotals::default();
        for run in st.runs.values().filter(|r| r.started_at >= since) {
            totals.usage += run.usage;
            match run.status {
                RunStatus::Succeeded => totals.succeeded += 1,
                RunStatus::Failed | RunStatus::TimedOut => totals.failed += 1,
                RunStatus::Running | RunStatus::Cancelled => {}
            }
        }
        Ok(totals)
    }

    async fn append_logs(&self, run: RunId, lines: Vec<LogLine>) -> Result<Vec<LogLine>> {
        let max = self.max_log_lines;
        let mut st = self.lock();
        let log = st.logs.entry(run).or_default();
        let mut stored = Vec::with_capacity(lines.len());
        for mut line in lines {
            log.last_seq += 1;
            line.seq = log.last_seq;
            stored.push(line.clone());
            log.lines.push_back(line);
        }
        if log.lines.len() > max || (log.dropped > 0 && log.lines.len() > max - 1) {
            // One slot goes to the marker.
            let excess = log.lines.len() - (max - 1);
            log.lines.drain(..excess);
            log.dropped += excess as u64;
            log.dropped_at = Some(Utc::now());
        }
        Ok(stored)
    }

    async fn logs(&self, run: RunId, page: LogPage) -> Result<Vec<LogLine>> {
        let st = self.lock();
        let Some(log) = st.logs.get(&run) else { return Ok(Vec::new()) };
        let limit = page.limit as usize;
        let marker = log.marker().filter(|m| m.seq > page.after);
        let start = log.lines.partition_point(|l| l.seq <= page.after);
        Ok(marker.into_iter().chain(log.lines.range(start..).cloned()).take(limit).collect())
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Setting>> {
        Ok(self.lock().settings.get(key).cloned())
    }

    async fn put_setting(&self, key: &str, value: &str, secret: bool) -> Result<()> {
        let setting = Setting {
            key: key.to_owned(),
            value: value.to_owned(),
            secret,
            updated_at: Utc::now(),
        };
        self.lock().settings.insert(key.to_owned(), setting);
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        Ok(self.lock().settings.remove(key).is_some())
    }

    async fn list_settings(&self) -> Result<Vec<Setting>> {
        Ok(self.lock().settings.values().cloned().map(Setting::masked).collect())
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>> {
        Ok(self.lock().cursors.get(name).cloned())
    }

    async fn put_cursor(&self, name: &str, value: &str) -> Result<()> {
        self.lock().cursors.insert(name.to_owned(), value.to_owned());
        Ok(())
    }
}
