//! [`LocalSource`]: a [`TaskSource`] whose tasks live in process memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::error::{Error, Result};
use crate::source::TaskSource;
use crate::task::{
    Feedback, FeedbackBatch, Report, ReportKind, SourceEvent, Task, TaskId, TaskStatus,
};

/// The author name of the comments a [`LocalSource`] writes for the engine.
pub const LOCAL_AUTHOR: &str = "agentflow";

/// A comment on a [`LocalSource`] task: a person's, or one of our own reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Stable id (`c-1`, `c-2`, … in creation order).
    pub id: String,
    /// The task commented on.
    pub task: TaskId,
    /// Who wrote it ([`LOCAL_AUTHOR`] for reports).
    pub author: String,
    /// Markdown body (the latest edit).
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was last edited, if ever.
    pub edited_at: Option<DateTime<Utc>>,
    /// For our own reports: the run and the kind of report. `None` for human comments.
    pub report: Option<(String, ReportKind)>,
}

/// A [`TaskSource`] kept in memory: tasks are added through its API and people act on them
/// through [`move_to`](LocalSource::move_to) and [`comment`](LocalSource::comment) (tests, the
/// dashboard, examples).
///
/// Tasks added with [`add`](LocalSource::add) get ids and keys `LOC-1`, `LOC-2`, …. The feedback
/// cursor is the id number of the last comment seen; `None` reads from the first comment.
/// [`watch`](TaskSource::watch) pushes [`SourceEvent`]s for what people do (tasks added in Todo,
/// human moves, human comments); changes made through the [`TaskSource`] methods (the engine's
/// own) are not echoed.
///
/// Cloning gives another handle to the same tasks.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use agentflow_core::{memory::LocalSource, TaskSource, TaskStatus};
///
/// let source = LocalSource::new();
/// let task = source.add("Write a haiku", "About Rust.");
/// assert_eq!(task.key, "LOC-1");
/// assert!(source.claim(&task.id).await?);
/// assert!(!source.claim(&task.id).await?); // no longer Todo
/// assert_eq!(source.task(&task.id).unwrap().status, TaskStatus::InProgress);
/// # Ok::<(), agentflow_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct LocalSource {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<SourceEvent>,
    /// Bumped after every change, for [`LocalSource::changes`].
    version: watch::Sender<u64>,
}

/// Everything a [`LocalSource`] holds, to keep it across restarts: serialise it (serde) where
/// the application keeps its state, and rebuild the source with
/// [`LocalSource::from_snapshot`]. Taken with [`LocalSource::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalSnapshot {
    /// Tasks in creation order.
    tasks: Vec<Task>,
    /// Comments in creation order, with their numbers.
    comments: Vec<(u64, Comment)>,
    next_task: u64,
    next_comment: u64,
}

impl LocalSnapshot {
    /// How many tasks it holds.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }
}

#[derive(Default)]
struct State {
    /// Tasks by insertion number, so listings keep creation order.
    tasks: BTreeMap<u64, Task>,
    by_id: HashMap<TaskId, u64>,
    next_task: u64,
    /// Comments by number (the feedback cursor).
    comments: BTreeMap<u64, Comment>,
    next_comment: u64,
}

impl State {
    fn task_mut(&mut self, id: &TaskId) -> Result<&mut Task> {
        let n = *self.by_id.get(id).ok_or_else(|| Error::not_found("task", id))?;
        self.tasks.get_mut(&n).ok_or_else(|| Error::not_found("task", id))
    }

    fn task(&self, id: &TaskId) -> Option<&Task> {
        self.by_id.get(id).and_then(|n| self.tasks.get(n))
    }

    fn insert(&mut self, task: Task) {
        self.next_task += 1;
        let n = self.next_task;
        self.by_id.insert(task.id.clone(), n);
        self.tasks.insert(n, task);
    }

    fn add_comment(&mut self, mut comment: Comment) -> String {
        self.next_comment += 1;
        comment.id = format!("c-{}", self.next_comment);
        let id = comment.id.clone();
        self.comments.insert(self.next_comment, comment);
        id
    }
}

impl Default for LocalSource {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LocalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("LocalSource")
            .field("tasks", &st.tasks.len())
            .field("comments", &st.comments.len())
            .finish()
    }
}

impl LocalSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::with_state(State::default())
    }

    fn with_state(state: State) -> Self {
        let (events, _) = broadcast::channel(1024);
        let (version, _) = watch::channel(0);
        LocalSource { inner: Arc::new(Inner { state: Mutex::new(state), events, version }) }
    }

    /// A source holding what `snapshot` holds: the same tasks, statuses and comments, and the
    /// same numbering, so tasks added later never reuse an id of the snapshot's (whose
    /// sessions, runs and jobs may still be stored elsewhere).
    pub fn from_snapshot(snapshot: LocalSnapshot) -> Self {
        let mut state = State::default();
        for task in snapshot.tasks {
            state.insert(task);
        }
        state.next_task = state.next_task.max(snapshot.next_task);
        for (n, comment) in snapshot.comments {
            state.next_comment = state.next_comment.max(n);
            state.comments.insert(n, comment);
        }
        state.next_comment = state.next_comment.max(snapshot.next_comment);
        Self::with_state(state)
    }

    /// Everything this source holds now (see [`LocalSnapshot`]).
    pub fn snapshot(&self) -> LocalSnapshot {
        let st = self.lock();
        LocalSnapshot {
            tasks: st.tasks.values().cloned().collect(),
            comments: st.comments.iter().map(|(n, c)| (*n, c.clone())).collect(),
            next_task: st.next_task,
            next_comment: st.next_comment,
        }
    }

    /// A counter that moves on after every change (a task added, moved, edited, claimed or
    /// commented on, a report written): wait on it to persist [`snapshot`](Self::snapshot)s.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    fn changed(&self) {
        self.inner.version.send_modify(|v| *v += 1);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: SourceEvent) {
        // No receiver is fine: nobody watches.
        let _ = self.inner.events.send(event);
    }

    /// Adds a Todo task with the next free `LOC-n` id and key.
    pub fn add(&self, title: impl Into<String>, body: impl Into<String>) -> Task {
        let task = {
            let mut st = self.lock();
            let mut n = st.next_task + 1;
            while st.by_id.contains_key(&TaskId(format!("LOC-{n}"))) {
                n += 1;
            }
            let key = format!("LOC-{n}");
            let mut task = Task::new(key.clone(), key, title);
            task.body = body.into();
            st.insert(task.clone());
            task
        };
        self.changed();
        self.push(SourceEvent::TaskReady(task.id.clone()));
        task
    }

    /// Adds a task as given (any status). Fails with [`Error::Conflict`] when its id is taken.
    pub fn add_task(&self, task: Task) -> Result<Task> {
        {
            let mut st = self.lock();
            if st.by_id.contains_key(&task.id) {
                return Err(Error::Conflict(format!("task {} already exists", task.id)));
            }
            st.insert(task.clone());
        }
        self.changed();
        if task.status == TaskStatus::Todo {
            self.push(SourceEvent::TaskReady(task.id.clone()));
        }
        Ok(task)
    }

    /// Moves a task as a person would (dragging the card), and tells watchers.
    pub fn move_to(&self, id: &TaskId, status: TaskStatus) -> Result<()> {
        {
            let mut st = self.lock();
            let task = st.task_mut(id)?;
            task.status = status;
            task.updated_at = Utc::now();
        }
        self.changed();
        self.push(SourceEvent::StatusChanged(id.clone(), status));
        if status == TaskStatus::Todo {
            self.push(SourceEvent::TaskReady(id.clone()));
        }
        Ok(())
    }

    /// Edits a task as a person would (title, body, labels, priority, …) and returns it as
    /// edited. Its id and status stay: use [`move_to`](LocalSource::move_to) to move it.
    pub fn edit(&self, id: &TaskId, change: impl FnOnce(&mut Task)) -> Result<Task> {
        let edited = {
            let mut st = self.lock();
            let task = st.task_mut(id)?;
            let (id, status) = (task.id.clone(), task.status);
            change(task);
            task.id = id;
            task.status = status;
            task.updated_at = Utc::now();
            task.clone()
        };
        self.changed();
        Ok(edited)
    }

    /// Adds a person's comment to a task and returns its id.
    pub fn comment(
        &self,
        id: &TaskId,
        author: impl Into<String>,
        body: impl Into<String>,
    ) -> Result<String> {
        let comment_id = {
            let mut st = self.lock();
            st.task_mut(id)?;
            st.add_comment(Comment {
                id: String::new(),
                task: id.clone(),
                author: author.into(),
                body: body.into(),
                created_at: Utc::now(),
                edited_at: None,
                report: None,
            })
        };
        self.changed();
        self.push(SourceEvent::Comment(id.clone()));
        Ok(comment_id)
    }

    /// A task as it is now.
    pub fn task(&self, id: &TaskId) -> Option<Task> {
        self.lock().task(id).cloned()
    }

    /// Every task, in creation order.
    pub fn tasks(&self) -> Vec<Task> {
        self.lock().tasks.values().cloned().collect()
    }

    /// A task's comments (people's and ours), oldest first.
    pub fn comments(&self, id: &TaskId) -> Vec<Comment> {
        self.lock().comments.values().filter(|c| c.task == *id).cloned().collect()
    }

    /// Our reports on a task, oldest first: one progress report per run (its latest edit) and
    /// the summaries.
    pub fn reports(&self, id: &TaskId) -> Vec<Report> {
        self.lock()
            .comments
            .values()
            .filter(|c| c.task == *id)
            .filter_map(|c| {
                let (run, kind) = c.report.clone()?;
                Some(Report { run, kind, body: c.body.clone() })
            })
            .collect()
    }
}

#[async_trait]
impl TaskSource for LocalSource {
    async fn ready(&self, limit: usize) -> Result<Vec<Task>> {
        let st = self.lock();
        let mut todo: Vec<&Task> =
            st.tasks.values().filter(|t| t.status == TaskStatus::Todo).collect();
        // Stable: ties keep creation order.
        todo.sort_by_key(|t| t.priority.rank());
        Ok(todo.into_iter().take(limit).cloned().collect())
    }

    async fn claim(&self, id: &TaskId) -> Result<bool> {
        {
            let mut st = self.lock();
            let task = st.task_mut(id)?;
            if task.status != TaskStatus::Todo {
                return Ok(false);
            }
            task.status = TaskStatus::InProgress;
            task.updated_at = Utc::now();
        }
        self.changed();
        Ok(true)
    }

    async fn set_status(&self, id: &TaskId, status: TaskStatus) -> Result<()> {
        {
            let mut st = self.lock();
            let task = st.task_mut(id)?;
            task.status = status;
            task.updated_at = Utc::now();
        }
        self.changed();
        Ok(())
    }

    async fn feedback(&self, cursor: Option<&str>) -> Result<FeedbackBatch> {
        let after = match cursor {
            None => 0,
            Some(c) => c.parse::<u64>().map_err(|_| {
                Error::InvalidInput(format!("local feedback cursor `{c}` is not a number"))
            })?,
        };
        let st = self.lock();
        let mut items = Vec::new();
        let mut last = after;
        for (&n, c) in st.comments.range(after + 1..) {
            last = n;
            let open = st
                .task(&c.task)
                .is_some_and(|t| matches!(t.status, TaskStatus::InReview | TaskStatus::InProgress));
            if c.report.is_none() && open {
                items.push(Feedback {
                    id: c.id.clone(),
                    task: c.task.clone(),
                    author: c.author.clone(),
                    body: c.body.clone(),
                    created_at: c.created_at,
                });
            }
        }
        Ok(FeedbackBatch { items, cursor: Some(last.to_string()) })
    }

    async fn report(&self, id: &TaskId, report: &Report) -> Result<()> {
        {
            let mut st = self.lock();
            st.task_mut(id)?;
            let now = Utc::now();
            // One comment per run and kind: progress is edited in place, and a summary
            // delivered again (a restarted engine finishing a run's end) is posted once.
            let existing = st.comments.values_mut().find(|c| {
                c.task == *id
                    && c.report
                        .as_ref()
                        .is_some_and(|(run, kind)| *run == report.run && *kind == report.kind)
            });
            match existing {
                Some(comment) if report.kind == ReportKind::Progress => {
                    comment.body.clone_from(&report.body);
                    comment.edited_at = Some(now);
                }
                Some(_) => return Ok(()),
                None => {
                    st.add_comment(Comment {
                        id: String::new(),
                        task: id.clone(),
                        author: LOCAL_AUTHOR.to_owned(),
                        body: report.body.clone(),
                        created_at: now,
                        edited_at: None,
                        report: Some((report.run.clone(), report.kind)),
                    });
                }
            }
        }
        self.changed();
        Ok(())
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.task(id))
    }

    async fn list(&self, status: TaskStatus) -> Result<Vec<Task>> {
        Ok(self.lock().tasks.values().filter(|t| t.status == status).cloned().collect())
    }

    async fn statuses(&self, ids: &[TaskId]) -> Result<HashMap<TaskId, TaskStatus>> {
        let st = self.lock();
        Ok(ids.iter().filter_map(|id| Some((id.clone(), st.task(id)?.status))).collect())
    }

    fn watch(&self) -> Option<BoxStream<'static, SourceEvent>> {
        let rx = self.inner.events.subscribe();
        Some(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    // A slow watcher misses events; the engine's polling covers them.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })))
    }
}
