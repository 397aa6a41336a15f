//! [`LinearSource`]: the [`TaskSource`] on Linear's GraphQL API.

mod comments;
mod feedback;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use agentflow_core::{
    Error, FeedbackBatch, Priority, Report, Result, SourceEvent, Task, TaskId, TaskSource,
    TaskStatus, async_trait,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::client::{Client, RateLimit, RequestStats};
use crate::config::LinearConfig;
use crate::error::LinearError;
use crate::model;
use crate::ops;
use crate::states::StateMap;
use crate::{filters, model::Connection};

/// Pages a list query may walk before it stops (a bound, not an expected size).
const MAX_PAGES: usize = 100;

/// A [`TaskSource`] backed by Linear.
///
/// Cheap to clone: clones share the HTTP client, the resolved workflow states, the rate-limit
/// state and the progress-comment bookkeeping.
#[derive(Clone)]
pub struct LinearSource {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for LinearSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearSource")
            .field("api_url", &self.inner.config.api_url)
            .field("teams", &self.inner.config.teams)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: LinearConfig,
    pub(crate) client: Client,
    states: tokio::sync::RwLock<Option<Arc<StateMap>>>,
    refreshing: tokio::sync::Mutex<()>,
    /// (task, run) → the run's progress comment.
    pub(crate) progress: Mutex<HashMap<(String, String), String>>,
    /// Ids of comments we wrote (never feedback).
    pub(crate) own: Mutex<HashSet<String>>,
    /// Issues known to be In Review or In Progress, whose comments are feedback (from our
    /// writes, reads and webhooks).
    pub(crate) open_issues: Mutex<HashSet<String>>,
    /// Comments the feedback poll returned lately (id → created at), so the overlap it reads
    /// again is not returned twice.
    pub(crate) feedback_seen: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// Issue id → team id, from every read, so `set_status` needs no extra request.
    issue_team: Mutex<HashMap<String, String>>,
    pub(crate) events: broadcast::Sender<SourceEvent>,
    pub(crate) webhooks_enabled: std::sync::atomic::AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LinearSource {
    /// A source for `config`, without any request yet (states are resolved on first use).
    pub fn new(config: LinearConfig) -> Result<Self> {
        let auth = config.validate()?;
        let client = Client::new(&config, auth)?;
        let (events, _) = broadcast::channel(256);
        Ok(LinearSource {
            inner: Arc::new(Inner {
                config,
                client,
                states: tokio::sync::RwLock::new(None),
                refreshing: tokio::sync::Mutex::new(()),
                progress: Mutex::new(HashMap::new()),
                own: Mutex::new(HashSet::new()),
                open_issues: Mutex::new(HashSet::new()),
                feedback_seen: Mutex::new(HashMap::new()),
                issue_team: Mutex::new(HashMap::new()),
                events,
                webhooks_enabled: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// A source for `config` whose teams and workflow states are resolved now: a wrong
    /// credential, team or state name fails here, with the team's real states listed.
    pub async fn connect(config: LinearConfig) -> Result<Self> {
        let source = Self::new(config)?;
        source.refresh_states().await?;
        Ok(source)
    }

    /// The configuration.
    pub fn config(&self) -> &LinearConfig {
        &self.inner.config
    }

    /// The request budget Linear last reported, and whether requests are paused.
    pub fn rate_limit(&self) -> RateLimit {
        self.inner.client.rate_limit()
    }

    /// Counters of the requests sent so far.
    pub fn request_stats(&self) -> RequestStats {
        self.inner.client.stats()
    }

    /// Re-reads the viewer, teams and workflow states (one request).
    pub async fn refresh_states(&self) -> Result<()> {
        self.load_states(true).await.map(|_| ())
    }

    pub(crate) async fn states(&self) -> Result<Arc<StateMap>> {
        self.load_states(false).await
    }

    async fn load_states(&self, force: bool) -> Result<Arc<StateMap>> {
        if !force && let Some(map) = self.inner.states.read().await.clone() {
            return Ok(map);
        }
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if !force && let Some(map) = self.inner.states.read().await.clone() {
            return Ok(map);
        }
        let boot: model::Bootstrap = self
            .inner
            .client
            .request(
                "AgentflowBootstrap",
                ops::BOOTSTRAP,
                json!({ "teamKeys": self.inner.config.teams }),
            )
            .await?;
        let map = Arc::new(StateMap::resolve(boot, &self.inner.config)?);
        tracing::debug!(viewer = %map.viewer_name, teams = ?map.team_keys(), "resolved Linear workflow states");
        *self.inner.states.write().await = Some(map.clone());
        Ok(map)
    }

    fn to_task(&self, issue: model::Issue, map: &StateMap) -> Task {
        lock(&self.inner.issue_team).insert(issue.id.clone(), issue.team.id.clone());
        let status = map.status_of(&issue.state.id);
        self.note_status(&issue.id, status);
        Task {
            id: TaskId(issue.id),
            key: issue.identifier.clone(),
            title: issue.title,
            body: issue.description.unwrap_or_default(),
            url: Some(issue.url),
            labels: issue.labels.nodes.into_iter().map(|l| l.name).collect(),
            priority: Priority(issue.priority.clamp(0.0, 4.0) as u8),
            status,
            updated_at: issue.updated_at,
            source_meta: json!({
                "identifier": issue.identifier,
                "team": issue.team.key,
                "state": issue.state.name,
                "state_type": issue.state.kind,
                "created_at": issue.created_at,
            }),
        }
    }

    pub(crate) fn note_status(&self, issue: &str, status: TaskStatus) {
        let mut set = lock(&self.inner.open_issues);
        if matches!(status, TaskStatus::InReview | TaskStatus::InProgress) {
            set.insert(issue.to_owned());
        } else {
            set.remove(issue);
        }
    }

    /// Issues matching `filter`, one page per request, up to `limit`.
    async fn issues(&self, filter: Value, limit: usize) -> Result<Vec<Task>> {
        let map = self.states().await?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let first = (limit - out.len()).min(self.inner.config.page_size as usize);
            let page: model::Issues = self
                .inner
                .client
                .request(
                    "AgentflowIssues",
                    ops::ISSUES,
                    json!({ "filter": filter, "first": first, "after": after }),
                )
                .await?;
            let Connection { nodes, page_info } = page.issues;
            out.extend(nodes.into_iter().map(|i| self.to_task(i, &map)));
            if !page_info.has_next_page || out.len() >= limit || page_info.end_cursor.is_none() {
                break;
            }
            after = page_info.end_cursor;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Current states of `ids`, in as few requests as pages allow (250 per page).
    async fn issue_states(&self, ids: &[&str]) -> Result<Vec<model::IssueState>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(250) {
            let page: model::IssueStates = self
                .inner
                .client
                .request(
                    "AgentflowIssueStates",
                    ops::ISSUE_STATES,
                    json!({ "filter": filters::by_ids(chunk), "first": chunk.len() }),
                )
                .await?;
            for node in &page.issues.nodes {
                lock(&self.inner.issue_team).insert(node.id.clone(), node.team.id.clone());
            }
            out.extend(page.issues.nodes);
        }
        Ok(out)
    }

    /// Moves an issue of team `team` to the state of `status`; refreshes the cached states once
    /// when Linear no longer knows the state id.
    async fn move_issue(&self, id: &str, team: &str, status: TaskStatus) -> Result<()> {
        for attempt in 0..2 {
            let map = self.states().await?;
            let state = map.id_in(team, status).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "issue {id} belongs to team {team}, which is not configured"
                ))
            })?;
            let sent: std::result::Result<model::IssueUpdate, LinearError> = self
                .inner
                .client
                .request(
                    "AgentflowIssueUpdateState",
                    ops::ISSUE_UPDATE_STATE,
                    json!({ "id": id, "stateId": state }),
                )
                .await;
            match sent {
                Ok(r) if r.issue_update.success => {
                    self.note_status(id, status);
                    return Ok(());
                }
                Ok(_) => {
                    return Err(Error::backend(
                        "linear",
                        format!("issueUpdate of {id} reported failure"),
                        true,
                        "success: false",
                    ));
                }
                Err(e) if attempt == 0 && e.is_state_not_found() => {
                    tracing::info!(
                        issue = id,
                        "workflow state unknown to Linear; re-reading states"
                    );
                    self.refresh_states().await?;
                }
                Err(e) if e.is_not_found() => return Err(Error::not_found("task", id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::config(
            "linear.states",
            "workflow states changed while moving an issue; try again",
        ))
    }

    async fn team_of(&self, id: &str) -> Result<String> {
        if let Some(team) = lock(&self.inner.issue_team).get(id).cloned() {
            return Ok(team);
        }
        let map = self.states().await?;
        if map.teams.len() == 1 {
            return Ok(map.teams[0].id.clone());
        }
        let states = self.issue_states(&[id]).await?;
        states.into_iter().next().map(|s| s.team.id).ok_or_else(|| Error::not_found("task", id))
    }
}

#[async_trait]
impl TaskSource for LinearSource {
    async fn ready(&self, limit: usize) -> Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let map = self.states().await?;
        let c = &self.inner.config;
        let filter = filters::ready(&map.team_keys(), &map.ids(TaskStatus::Todo), &c.labels);
        self.issues(filter, limit).await
    }

    async fn claim(&self, id: &TaskId) -> Result<bool> {
        let span = tracing::info_span!("linear.claim", task = %id);
        async move {
            let map = self.states().await?;
            let Some(current) = self.issue_states(&[id.as_str()]).await?.into_iter().next() else {
                return Err(Error::not_found("task", id));
            };
            if map.status_of(&current.state.id) != TaskStatus::Todo {
                tracing::info!(state = %current.state.name, "not claimed: no longer Todo");
                return Ok(false);
            }
            self.move_issue(id.as_str(), &current.team.id, TaskStatus::InProgress).await?;
            Ok(true)
        }
        .instrument(span)
        .await
    }

    async fn set_status(&self, id: &TaskId, status: TaskStatus) -> Result<()> {
        if status == TaskStatus::Other {
            return Err(Error::InvalidInput(
                "cannot move a Linear issue to an unmapped status".into(),
            ));
        }
        let span = tracing::info_span!("linear.set_status", task = %id, %status);
        async move {
            let team = self.team_of(id.as_str()).await?;
            self.move_issue(id.as_str(), &team, status).await
        }
        .instrument(span)
        .await
    }

    async fn feedback(&self, cursor: Option<&str>) -> Result<FeedbackBatch> {
        feedback::poll(self, cursor).await
    }

    async fn report(&self, id: &TaskId, report: &Report) -> Result<()> {
        comments::report(self, id, report).await
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.issues(filters::by_ids(&[id.as_str()]), 1).await?.into_iter().next())
    }

    async fn list(&self, status: TaskStatus) -> Result<Vec<Task>> {
        if status == TaskStatus::Other {
            return Err(Error::InvalidInput(
                "cannot list Linear issues in an unmapped status".into(),
            ));
        }
        let map = self.states().await?;
        self.issues(filters::by_states(&map.team_keys(), &map.ids(status)), usize::MAX).await
    }

    async fn statuses(&self, ids: &[TaskId]) -> Result<HashMap<TaskId, TaskStatus>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let map = self.states().await?;
        let ids: Vec<&str> = ids.iter().map(TaskId::as_str).collect();
        let mut out = HashMap::with_capacity(ids.len());
        for s in self.issue_states(&ids).await? {
            let status = map.status_of(&s.state.id);
            self.note_status(&s.id, status);
            out.insert(TaskId(s.id), status);
        }
        Ok(out)
    }

    fn watch(&self) -> Option<BoxStream<'static, SourceEvent>> {
        if !self.inner.webhooks_enabled.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let rx = self.inner.events.subscribe();
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|e| async move { e.ok() });
        Some(stream.boxed())
    }
}
