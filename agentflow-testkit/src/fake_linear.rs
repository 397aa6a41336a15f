//! A fake Linear GraphQL API on 127.0.0.1, held to Linear's real schema.
//!
//! Every request's operation is parsed and validated against Linear's public schema (vendored in
//! `fake_linear/schema.graphql`, MIT, licence beside it) before it is answered from an in-memory
//! store of teams, workflow states, issues, comments and users; an invalid operation gets a
//! GraphQL validation error, as from Linear. Switches reproduce auth failures, `RATELIMITED`
//! answers, 429s with `retry-after`, 5xx bursts, slow responses and late ones (carried out, then
//! answered after the client gave up); requests are counted per operation; signed webhooks can
//! be sent. Like Linear, `commentCreate` takes a client-chosen id (a UUID v4) and refuses one
//! that is taken.
//!
//! ```no_run
//! # async fn demo() {
//! use agentflow_testkit::fake_linear::{FakeLinear, NewIssue};
//! let fake = FakeLinear::start().await;
//! let issue = fake.create_issue(NewIssue::new("ENG", "Write a haiku"));
//! assert_eq!(fake.issue_state_name(&issue.id).as_deref(), Some("Todo"));
//! println!("POST GraphQL to {} with `Authorization: {}`", fake.url(), FakeLinear::API_KEY);
//! # }
//! ```

mod admin;
mod control;
mod db;
mod exec;
mod faults;
mod filter;
mod server;
mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use apollo_compiler::Schema;
use apollo_compiler::validation::Valid;

pub use db::{FakeComment, FakeIssue, FakeState, FakeTeam, FakeTransition, FakeUser};
pub use webhook::{post_webhook, sign};

use db::{DEFAULT_STATES, Db};
use faults::Faults;

/// Linear's public GraphQL schema, as vendored for the fake.
pub const SCHEMA_SDL: &str = include_str!("fake_linear/schema.graphql");

/// The parsed and validated schema (parsed once per process).
pub fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_and_validate(SCHEMA_SDL, "schema.graphql").expect("vendored schema is valid")
    })
}

pub(crate) struct Shared {
    pub(crate) db: Mutex<Db>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) counters: Mutex<BTreeMap<String, u64>>,
    /// Every answered request, oldest first.
    pub(crate) log: Mutex<Vec<FakeRequest>>,
    /// Where (URL, secret) to deliver webhooks for changes made through [`FakeData`].
    pub(crate) webhook: Mutex<Option<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One request the fake answered: when it arrived, its operation and the HTTP status sent.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    /// When the request arrived (before any delay the fake added).
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// When the answer was sent.
    pub answered_at: chrono::DateTime<chrono::Utc>,
    /// `operationName`, or `<anonymous>`.
    pub operation: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// `extensions.code` of the first GraphQL error, if any (`RATELIMITED`, …).
    pub code: Option<String>,
}

/// Who writes a comment added by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentAuthor {
    /// The authenticated user (the API key's owner, `viewer`).
    Viewer,
    /// Another user, by id.
    User(String),
    /// An app actor with this name (`user` is null, `botActor` set).
    Bot(String),
}

/// An issue to create.
#[derive(Debug, Clone)]
pub struct NewIssue {
    team: String,
    title: String,
    description: Option<String>,
    state: String,
    labels: Vec<String>,
    priority: f64,
}

impl NewIssue {
    /// An issue in `team` (by key) titled `title`, in "Todo", no labels, no priority.
    pub fn new(team: &str, title: &str) -> Self {
        NewIssue {
            team: team.to_owned(),
            title: title.to_owned(),
            description: None,
            state: "Todo".to_owned(),
            labels: Vec::new(),
            priority: 0.0,
        }
    }

    /// Sets the description.
    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.to_owned());
        self
    }

    /// Sets the workflow state by name.
    pub fn state(mut self, s: &str) -> Self {
        self.state = s.to_owned();
        self
    }

    /// Adds a label.
    pub fn label(mut self, l: &str) -> Self {
        self.labels.push(l.to_owned());
        self
    }

    /// Sets the priority (0 none, 1 urgent … 4 low).
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = f64::from(p);
        self
    }
}

/// A running fake Linear. Dropping it stops the server.
///
/// Its data, counters, fault switches and webhooks are [`FakeData`] methods, reachable through
/// `Deref` (`fake.create_issue(…)`).
pub struct FakeLinear {
    addr: SocketAddr,
    data: FakeData,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A handle on a fake's store, counters and switches (cheap to clone; what [`FakeLinear`]
/// derefs to, and what the fake's `/admin` routes act through).
#[derive(Clone)]
pub struct FakeData {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeData").finish_non_exhaustive()
    }
}

impl std::ops::Deref for FakeLinear {
    type Target = FakeData;

    fn deref(&self) -> &FakeData {
        &self.data
    }
}

impl std::fmt::Debug for FakeLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLinear").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakeLinear {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeLinear {
    /// The personal API key the fake accepts (`Authorization: <key>`).
    pub const API_KEY: &'static str = "lin_api_fake_0123456789";
    /// The OAuth access token the fake accepts (`Authorization: Bearer <token>`).
    pub const OAUTH_TOKEN: &'static str = "lin_oauth_fake_0123456789";
    /// The id of the authenticated user (the API key's owner).
    pub const VIEWER_ID: &'static str = "user-agentflow";
    /// The id of a human teammate who comments in tests.
    pub const HUMAN_ID: &'static str = "user-ada";

    /// Starts a fake on `127.0.0.1:0` with team `ENG` (states Triage, Backlog, Todo,
    /// In Progress, In Review, Done, Failed, Canceled), the viewer and one human user.
    pub async fn start() -> FakeLinear {
        Self::start_on("127.0.0.1:0".parse().expect("valid address")).await
    }

    /// Starts a fake on `addr` (use a loopback address).
    pub async fn start_on(addr: SocketAddr) -> FakeLinear {
        let _ = schema();
        let mut db = Db { viewer_id: Self::VIEWER_ID.to_owned(), ..Db::default() };
        db.users.push(FakeUser {
            id: Self::VIEWER_ID.to_owned(),
            name: "agentflow".to_owned(),
            display_name: "agentflow".to_owned(),
        });
        db.users.push(FakeUser {
            id: Self::HUMAN_ID.to_owned(),
            name: "Ada Lovelace".to_owned(),
            display_name: "ada".to_owned(),
        });
        db.add_team("ENG", &DEFAULT_STATES);
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            faults: Mutex::new(Faults::default()),
            counters: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            webhook: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind fake Linear");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let data = FakeData { shared };
        let app = server::router(data.shared.clone()).merge(admin::router(data.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeLinear { addr, data, stop: Some(stop) }
    }

    /// The GraphQL endpoint, `http://127.0.0.1:<port>/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl FakeData {
    // ---- data ----

    /// Adds a team with the default states; returns its id.
    pub fn add_team(&self, key: &str) -> String {
        lock(&self.shared.db).add_team(key, &DEFAULT_STATES)
    }

    /// Adds a team with these `(name, type)` states; returns its id.
    pub fn add_team_with_states(&self, key: &str, states: &[(&str, &str)]) -> String {
        lock(&self.shared.db).add_team(key, states)
    }

    /// Adds a user; returns its id.
    pub fn add_user(&self, name: &str) -> String {
        let mut db = lock(&self.shared.db);
        let id = db.new_id("user");
        db.users.push(FakeUser {
            id: id.clone(),
            name: name.to_owned(),
            display_name: name.to_lowercase(),
        });
        id
    }

    /// The id of the state named `name` in team `team_key`.
    pub fn state_id(&self, team_key: &str, name: &str) -> Option<String> {
        let db = lock(&self.shared.db);
        let team = db.team_by_key(team_key)?;
        db.state_by_name(&team.id, name).map(|s| s.id.clone())
    }

    /// Creates an issue. Panics when the team or state does not exist (a test bug).
    pub fn create_issue(&self, new: NewIssue) -> FakeIssue {
        self.try_create_issue(new).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates an issue, or says which team or state does not exist.
    pub fn try_create_issue(&self, new: NewIssue) -> Result<FakeIssue, String> {
        let mut db = lock(&self.shared.db);
        let team = db.team_by_key(&new.team).ok_or(format!("no team {}", new.team))?.clone();
        let state = db
            .state_by_name(&team.id, &new.state)
            .ok_or(format!("no state {} in {}", new.state, new.team))?
            .id
            .clone();
        let number = db.issues.iter().filter(|i| i.team_id == team.id).count() as u64 + 1;
        let id = db.new_id("issue");
        let now = db.stamp();
        let issue = FakeIssue {
            id,
            team_id: team.id.clone(),
            number,
            identifier: format!("{}-{number}", team.key),
            title: new.title,
            description: new.description,
            state_id: state,
            priority: new.priority,
            labels: new.labels,
            created_at: now,
            updated_at: now,
        };
        db.issues.push(issue.clone());
        let payload = webhook::issue_payload(&db, &issue.id, "create", None);
        drop(db);
        self.notify(payload);
        Ok(issue)
    }

    /// Creates `n` issues titled `<prefix> 1` … in `team`'s `state`.
    pub fn create_issues(&self, team: &str, state: &str, prefix: &str, n: usize) -> Vec<FakeIssue> {
        (1..=n)
            .map(|k| self.create_issue(NewIssue::new(team, &format!("{prefix} {k}")).state(state)))
            .collect()
    }

    /// An issue by id or identifier.
    pub fn issue(&self, id: &str) -> Option<FakeIssue> {
        lock(&self.shared.db).issue(id).cloned()
    }

    /// The name of an issue's current state.
    pub fn issue_state_name(&self, id: &str) -> Option<String> {
        let db = lock(&self.shared.db);
        let issue = db.issue(id)?;
        db.state(&issue.state_id).map(|s| s.name.clone())
    }

    /// Moves an issue to the state named `state` of its team, as a human would; returns the
    /// previous state id. Panics when either does not exist.
    pub fn move_issue(&self, id: &str, state: &str) -> String {
        self.try_move_issue(id, state).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Moves an issue, or says which issue or state does not exist.
    pub fn try_move_issue(&self, id: &str, state: &str) -> Result<String, String> {
        let mut db = lock(&self.shared.db);
        let team = db.issue(id).ok_or(format!("no issue {id}"))?.team_id.clone();
        let sid = db.state_by_name(&team, state).ok_or(format!("no state {state}"))?.id.clone();
        let now = db.stamp();
        let issue = db.issue_mut(id).expect("checked above");
        let previous = std::mem::replace(&mut issue.state_id, sid);
        issue.updated_at = now;
        let issue_id = issue.id.clone();
        let payload = webhook::issue_payload(&db, &issue_id, "update", Some(&previous));
        drop(db);
        self.notify(payload);
        Ok(previous)
    }

    /// Gives the state `name` of team `team_key` a new id, as when an admin recreates a
    /// workflow state: issues in it follow, and the old id is unknown from now on. Returns the
    /// new id.
    pub fn replace_state(&self, team_key: &str, name: &str) -> String {
        let mut db = lock(&self.shared.db);
        let team =
            db.team_by_key(team_key).unwrap_or_else(|| panic!("no team {team_key}")).id.clone();
        let old =
            db.state_by_name(&team, name).unwrap_or_else(|| panic!("no state {name}")).id.clone();
        let new = db.new_id("state");
        for s in db.states.iter_mut().filter(|s| s.id == old) {
            s.id = new.clone();
        }
        for i in db.issues.iter_mut().filter(|i| i.state_id == old) {
            i.state_id = new.clone();
        }
        new
    }

    /// Adds a comment to an issue. Panics when the issue does not exist.
    pub fn add_comment(&self, issue_id: &str, author: CommentAuthor, body: &str) -> FakeComment {
        self.try_add_comment(issue_id, author, body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds a comment to an issue, or says that the issue does not exist.
    pub fn try_add_comment(
        &self,
        issue_id: &str,
        author: CommentAuthor,
        body: &str,
    ) -> Result<FakeComment, String> {
        self.insert_comment(issue_id, author, body, None)
    }

    /// Adds a comment stamped `created_at` (in the past): one that Linear's queries surface
    /// only after newer comments were already seen, as happens under replication lag. Panics
    /// when the issue does not exist.
    pub fn add_late_comment(
        &self,
        issue_id: &str,
        author: CommentAuthor,
        body: &str,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> FakeComment {
        self.insert_comment(issue_id, author, body, Some(created_at))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn insert_comment(
        &self,
        issue_id: &str,
        author: CommentAuthor,
        body: &str,
        created_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<FakeComment, String> {
        let mut db = lock(&self.shared.db);
        let issue = db.issue(issue_id).ok_or(format!("no issue {issue_id}"))?.id.clone();
        let id = db.new_id("comment");
        let now = created_at.unwrap_or_else(|| db.stamp());
        let (user_id, bot_actor) = match author {
            CommentAuthor::Viewer => (Some(db.viewer_id.clone()), None),
            CommentAuthor::User(u) => (Some(u), None),
            CommentAuthor::Bot(name) => (None, Some(name)),
        };
        let c = FakeComment {
            id,
            issue_id: issue,
            body: body.to_owned(),
            user_id,
            bot_actor,
            created_at: now,
            updated_at: now,
            edits: 0,
        };
        db.comments.push(c.clone());
        let payload = webhook::comment_payload(&db, &c.id);
        drop(db);
        self.notify(payload);
        Ok(c)
    }

    /// Every issue, oldest first.
    pub fn issues(&self) -> Vec<FakeIssue> {
        lock(&self.shared.db).issues.clone()
    }

    /// The state changes of an issue made through the GraphQL API, oldest first.
    pub fn transitions(&self, issue_id: &str) -> Vec<FakeTransition> {
        let db = lock(&self.shared.db);
        let Some(issue) = db.issue(issue_id) else { return Vec::new() };
        db.transitions.iter().filter(|t| t.issue_id == issue.id).cloned().collect()
    }

    /// An issue's comments, oldest first.
    pub fn comments(&self, issue_id: &str) -> Vec<FakeComment> {
        let db = lock(&self.shared.db);
        let Some(issue) = db.issue(issue_id) else { return Vec::new() };
        let mut out: Vec<_> =
            db.comments.iter().filter(|c| c.issue_id == issue.id).cloned().collect();
        out.sort_by_key(|c| c.created_at);
        out
    }
}
