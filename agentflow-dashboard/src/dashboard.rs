//! [`Dashboard`] and its builder: everything the router needs, gathered once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::memory::LocalSource;
use agentflow_core::{JobQueue, Result, StateStore, TaskSource};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use secrecy::SecretString;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{self, Auth};
use crate::control::EngineControl;
use crate::health::{self, ReadinessFn};
use crate::metrics::{self, MetricSource, RunCollector};
use crate::settings::{MissingItem, SettingsSchema};
use crate::state::{AppState, NeedsConfigFn};
use crate::todo::TodoWatch;
use crate::transcript::TranscriptFn;
use crate::ws::{self, WsHub};
use crate::{api, assets, serve};

/// Largest request body accepted (settings, new tasks).
const BODY_LIMIT: usize = 256 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard: REST API, WebSocket, health, metrics and the embedded web UI, as one
/// [`axum::Router`] to serve alone or merge into another.
#[derive(Clone)]
pub struct Dashboard {
    state: AppState,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("token", &self.state.auth.is_some())
            .field("settings", &self.state.settings.fields.len())
            .field("local_source", &self.state.local.is_some())
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Starts a dashboard over a running engine, its state store and its queue.
    pub fn builder(
        engine: impl EngineControl,
        store: Arc<dyn StateStore>,
        queue: Arc<dyn JobQueue>,
    ) -> DashboardBuilder {
        DashboardBuilder {
            engine: Arc::new(engine),
            store,
            queue,
            local: None,
            readiness: Vec::new(),
            metric_sources: Vec::new(),
            token: None,
            settings: SettingsSchema::default(),
            needs_config: None,
            todo_source: None,
            transcripts: None,
        }
    }

    /// Whether an access token protects it.
    pub fn has_token(&self) -> bool {
        self.state.auth.is_some()
    }

    /// The router: `/` (board), `/task/{id}`, `/history`, `/settings`, `/assets/…`, `/api/…`,
    /// `/ws`, `/healthz`, `/metrics`, `/login`, `/logout`.
    ///
    /// Starts the run-duration collector behind `/metrics` on first use; call it inside a Tokio
    /// runtime.
    pub fn router(&self) -> Router {
        self.state.start_background();
        let state = self.state.clone();
        Router::new()
            .route("/", get(assets::index))
            .route("/history", get(assets::index))
            .route("/settings", get(assets::index))
            .route("/task/{id}", get(assets::index))
            .route("/assets/{*path}", get(assets::asset))
            .route("/login", get(auth::login_page).post(auth::login))
            .route("/logout", post(auth::logout))
            .route("/healthz", get(health::healthz))
            .route("/metrics", get(metrics::metrics))
            .route("/ws", get(ws::upgrade))
            .nest("/api", api::routes())
            .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
            .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ))
            .with_state(state)
    }

    /// Closes every connected WebSocket with code 1001 (going away). Browsers show
    /// "Reconnecting…" and come back by themselves. Call it when shutting down: an upgraded
    /// connection is not part of the HTTP server's graceful shutdown.
    pub fn close_clients(&self) {
        self.state.ws.close_all();
    }

    /// Serves the router on `addr` until `shutdown` completes, then closes the WebSocket
    /// clients; refuses a non-loopback address without a token (see
    /// [`bind_check`](crate::bind_check)).
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let listener = serve::bind(addr, self.has_token()).await?;
        let this = self.clone();
        serve::serve_on(listener, self.router(), async move {
            shutdown.await;
            this.close_clients();
        })
        .await
    }
}

impl AppState {
    /// Starts the run-duration collector and the Todo watch, once, when a runtime is there.
    pub(crate) fn start_background(&self) {
        if self.collector_started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            self.collector.spawn(&self.engine, self.store.clone());
            if let Some((source, every)) = &self.todo_source {
                self.todo.spawn(source.clone(), *every, self.engine.clone());
            }
        } else {
            // No runtime: allow a later call inside one to start it.
            self.collector_started.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Builds a [`Dashboard`]. Only the engine, store and queue are required.
pub struct DashboardBuilder {
    engine: Arc<dyn EngineControl>,
    store: Arc<dyn StateStore>,
    queue: Arc<dyn JobQueue>,
    local: Option<LocalSource>,
    readiness: Vec<(String, ReadinessFn)>,
    metric_sources: Vec<Arc<dyn MetricSource>>,
    token: Option<SecretString>,
    settings: SettingsSchema,
    needs_config: Option<NeedsConfigFn>,
    todo_source: Option<(Arc<dyn TaskSource>, Duration)>,
    transcripts: Option<TranscriptFn>,
}

impl fmt::Debug for DashboardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("token", &self.token.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DashboardBuilder {
    /// The local task source behind `POST /api/tasks` (without it that endpoint explains that
    /// tasks come from the tracker).
    /// It also fills the board's Todo column (see [`todo_source`](Self::todo_source)), checked
    /// every half second, unless another Todo source is set.
    pub fn local_source(mut self, source: LocalSource) -> Self {
        if self.todo_source.is_none() {
            self.todo_source = Some((Arc::new(source.clone()), Duration::from_millis(500)));
        }
        self.local = Some(source);
        self
    }

    /// Where the board's Todo column comes from: the engine shows tasks once it claims them, so
    /// the dashboard asks `source` for its ready tasks every `every` (mind a remote tracker's
    /// rate limit: 15 s or more).
    pub fn todo_source(mut self, source: Arc<dyn TaskSource>, every: Duration) -> Self {
        self.todo_source = Some((source, every.max(Duration::from_millis(100))));
        self
    }

    /// Adds a component to `/healthz` (the store, queue and engine are always checked).
    pub fn readiness<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.readiness.push((name.into(), Arc::new(move || Box::pin(check()))));
        self
    }

    /// Adds samples to `/metrics` (e.g. Linear requests and rate-limit budget).
    pub fn metric_source(mut self, source: impl MetricSource) -> Self {
        self.metric_sources.push(Arc::new(source));
        self
    }

    /// Requires this token on every API, WebSocket and metrics call (bearer header or the
    /// login form's cookie).
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets [`token`](Self::token) when `token` is `Some`.
    pub fn token_opt(self, token: Option<SecretString>) -> Self {
        match token {
            Some(t) => self.token(t),
            None => self,
        }
    }

    /// The settings page's fields, their layers and the live apply callback.
    pub fn settings(mut self, schema: SettingsSchema) -> Self {
        self.settings = schema;
        self
    }

    /// Lists what the service still needs, beyond required settings without a value (which the
    /// dashboard finds itself).
    pub fn needs_configuration<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<MissingItem>> + Send + 'static,
    {
        self.needs_config = Some(Arc::new(move || Box::pin(provider())));
        self
    }

    /// Where the agent's session transcripts are: the task page then links each run's session
    /// to `GET /api/sessions/{id}/transcript`. `find` gets a session id (letters, digits, `-`,
    /// `_` only) and returns its file, e.g. the Claude Code CLI's
    /// `~/.claude/projects/<workspace>/<session>.jsonl`.
    pub fn transcripts(
        mut self,
        find: impl Fn(&str) -> Option<PathBuf> + Send + Sync + 'static,
    ) -> Self {
        self.transcripts = Some(Arc::new(find));
        self
    }

    /// The dashboard.
    pub fn build(self) -> Dashboard {
        Dashboard {
            state: AppState {
                engine: self.engine,
                store: self.store,
                queue: self.queue,
                local: self.local,
                readiness: Arc::new(self.readiness),
                metric_sources: Arc::new(self.metric_sources),
                auth: self.token.as_ref().map(Auth::new),
                settings: Arc::new(self.settings),
                needs_config: self.needs_config,
                collector: RunCollector::default(),
                collector_started: Default::default(),
                ws: WsHub::default(),
                todo: TodoWatch::default(),
                todo_source: self.todo_source,
                transcripts: self.transcripts,
            },
        }
    }
}
