//! One generation of the daemon: source, executor, tools, engine and dashboard built from a
//! resolved [`Config`]. Saving a setting that the engine cannot take live ends the generation
//! (running jobs are released, not lost) and the supervisor in `main.rs` builds the next one on
//! the same listener, so "saved — applied live" holds for Linear and Claude keys too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentflow::backend::Backends;
use agentflow::claude::{Auth, ClaudeConfig, ClaudeExecutor, PermissionMode, Workspaces};
use agentflow::command::{CommandConfig, CommandExecutor};
use agentflow::dashboard::{Dashboard, MissingItem, Sample, SettingField, SettingsSchema};
use agentflow::engine::{Engine, EngineConfig};
use agentflow::linear::{LinearConfig, LinearSource, LinearTools};
use agentflow::memory::LocalSource;
use agentflow::{CancellationToken, Executor, TaskSource, TaskStatus};
use axum::Router;
use secrecy::SecretString;
use tokio::sync::watch;

use crate::config::{Config, KEYS, Kind};

/// What the daemon is missing, one line each (logged at start, shown on the dashboard).
pub(crate) fn missing(config: &Config) -> Vec<MissingItem> {
    let mut out = Vec::new();
    if config.get("linear.api_key").is_none() && config.get("linear.oauth_token").is_none() {
        out.push(MissingItem::field(
            "linear.api_key",
            "No Linear API key: tasks come from the local source (add them on the board). \
             Save a Linear API key to work on Linear issues.",
        ));
    }
    if config.get("executor.kind") == Some("claude") {
        let has_auth = config.get("claude.api_key").is_some()
            || (config.get("claude.base_url").is_some()
                && config.get("claude.auth_token").is_some());
        if !has_auth {
            out.push(MissingItem::field(
                "claude.api_key",
                "No Anthropic credentials: the agent cannot run, so new runs are paused. Save an \
                 API key (or a base URL and auth token for a proxy).",
            ));
        }
        let binary = config.get("claude.binary").unwrap_or("claude");
        if find_program(binary).is_none() {
            out.push(MissingItem::field(
                "claude.binary",
                format!(
                    "Claude Code CLI `{binary}` not found: install it with \
                     `npm install -g @anthropic-ai/claude-code` or set its path."
                ),
            ));
        }
    }
    if config.get("executor.kind") == Some("command") && config.list("executor.command").is_empty()
    {
        out.push(MissingItem::field(
            "executor.command",
            "executor.kind is `command` but executor.command is empty: set the program to run.",
        ));
    }
    out
}

/// `program` if it is a path that exists, else its location on PATH.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|p| p.is_file())
}

/// The engine's configuration from the resolved keys.
pub(crate) fn engine_config(config: &Config) -> EngineConfig {
    let mut e = EngineConfig::default();
    let d = |k: &str, default: Duration| config.duration(k).unwrap_or(default);
    e.workers = config.count("engine.workers").unwrap_or(3) as usize;
    e.poll_interval = d("engine.poll_interval", e.poll_interval);
    e.feedback_interval = e.poll_interval;
    e.timeout = d("engine.timeout", e.timeout);
    e.max_attempts = config.count("engine.max_attempts").unwrap_or(3) as u32;
    e.retry.base = d("engine.retry_backoff", e.retry.base);
    e.lease = d("engine.lease", e.lease);
    e.reaper_interval = e.reaper_interval.min(e.lease);
    e.reconcile_interval = d("engine.reconcile_interval", e.reconcile_interval);
    e.progress_interval = d("engine.progress_interval", e.progress_interval);
    e.shutdown_grace = d("engine.shutdown_grace", e.shutdown_grace);
    e.daily_budget_usd = config.number("engine.daily_budget_usd");
    e.workspace_root = config.get("claude.workspace_root").map(PathBuf::from);
    e
}

fn claude_config(config: &Config) -> ClaudeConfig {
    let mut c = ClaudeConfig::default();
    if let Some(b) = config.get("claude.binary") {
        c.binary = find_program(b).unwrap_or_else(|| PathBuf::from(b));
    }
    c.model = config.get("claude.model").map(str::to_owned);
    c.permission_mode = match config.get("claude.permission_mode") {
        Some("default") => PermissionMode::Default,
        Some("plan") => PermissionMode::Plan,
        Some("bypassPermissions") => PermissionMode::BypassPermissions,
        _ => PermissionMode::AcceptEdits,
    };
    let tools = config.list("claude.allowed_tools");
    if !tools.is_empty() {
        c.allowed_tools = tools;
    }
    c.max_turns = config.count("claude.max_turns").map(|n| n as u32);
    c.env_passthrough = config.list("claude.env");
    let secret = |k: &str| config.get(k).map(|v| SecretString::from(v.to_owned()));
    c.auth = match (
        secret("claude.api_key"),
        config.get("claude.base_url"),
        secret("claude.auth_token"),
    ) {
        (Some(api_key), base_url, _) => {
            Auth::ApiKey { api_key, base_url: base_url.map(str::to_owned) }
        }
        (None, Some(base_url), Some(auth_token)) => {
            Auth::Proxy { base_url: base_url.to_owned(), auth_token }
        }
        _ => Auth::Cli,
    };
    c.config_dir = config.get("claude.config_dir").map(absolute);
    if let Some(root) = config.get("claude.workspace_root") {
        c.workspace.root = absolute(root);
    }
    c.workspace.max_age = config.duration("claude.workspace_max_age").or(c.workspace.max_age);
    c.workspace.max_count =
        config.count("claude.workspace_max_count").map(|n| n as usize).or(c.workspace.max_count);
    c
}

/// How often workspaces of tasks no longer in play are pruned (and once at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Removes the workspaces of tasks that are neither In Progress nor In Review, by the
/// `claude.workspace_max_age` / `claude.workspace_max_count` limits: at start, then every
/// [`PRUNE_EVERY`], until `stop`. A failed listing skips the round (nothing is removed
/// without knowing which tasks are still in play).
fn spawn_workspace_pruner(
    workspaces: Workspaces,
    source: Arc<dyn TaskSource>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = PRUNE_EVERY;
            let mut active = Vec::new();
            let mut listed = true;
            for status in [TaskStatus::InProgress, TaskStatus::InReview] {
                match source.list(status).await {
                    Ok(tasks) => active.extend(tasks.into_iter().map(|t| t.key)),
                    Err(error) => {
                        tracing::warn!(%error, "workspace pruning skipped: cannot list {status:?} tasks");
                        listed = false;
                        break;
                    }
                }
            }
            if !listed {
                continue;
            }
            match workspaces.prune_inactive(&active).await {
                Ok(removed) if removed.is_empty() => {}
                Ok(removed) => tracing::info!(removed = removed.len(), "pruned old workspaces"),
                Err(error) => tracing::warn!(%error, "workspace pruning failed"),
            }
        }
    });
}

fn absolute(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() { p } else { std::env::current_dir().unwrap_or_default().join(p) }
}

fn linear_config(config: &Config) -> Option<LinearConfig> {
    let teams = config.list("linear.teams");
    let teams: Vec<&str> = teams.iter().map(String::as_str).collect();
    let mut c = if let Some(key) = config.get("linear.api_key") {
        LinearConfig::with_api_key(key, &teams)
    } else {
        LinearConfig::with_oauth_token(config.get("linear.oauth_token")?, &teams)
    };
    if let Some(url) = config.get("linear.api_url") {
        c.api_url = url.to_owned();
    }
    if let Some(label) = config.get("linear.label") {
        c.labels = vec![label.to_owned()];
    }
    Some(c)
}

/// The settings page: every key with its kind, group, environment names and file value.
fn settings_schema(
    config: &Config,
    reload: watch::Sender<u64>,
    engine: agentflow::engine::EngineHandle,
) -> SettingsSchema {
    let mut schema = SettingsSchema::new();
    for k in KEYS {
        let mut f = SettingField::new(k.key, k.group()).help(k.help);
        f = match k.kind {
            Kind::Secret => f.secret(),
            Kind::Duration => f.duration(),
            Kind::Count => f.integer(1, 1_000_000),
            Kind::Choice(options) => f.choice(options.iter().copied()),
            Kind::Url if k.key.starts_with("storage.") => {
                f.url(["sqlite", "postgres", "postgresql", "redis", "rediss", "memory"])
            }
            Kind::Url => f.url(["http", "https"]),
            Kind::Text | Kind::List | Kind::Number | Kind::Addr => f,
        };
        let spec = k;
        f = f.validate(move |v| crate::config::validate(spec, v).map(|_| ()));
        if let Some(d) = k.default {
            f = f.default_value(d);
        }
        for seed in k.seed_env {
            f = f.env(*seed);
        }
        if k.live {
            f = f.live();
        }
        schema = schema.field(f);
        if let Some(v) = config.entry(k.key)
            && matches!(v.origin, crate::config::Origin::File(..))
        {
            schema = schema.file_value(k.key, v.value.clone());
        }
    }
    schema.on_apply(move |change| {
        let reload = reload.clone();
        let engine = engine.clone();
        async move {
            match change.key.as_str() {
                "engine.workers" => {
                    engine.set_workers(change.expose().and_then(|v| v.parse().ok()).unwrap_or(3));
                }
                "engine.poll_interval" => {
                    let d = change.expose().and_then(|v| crate::config::parse_duration(v).ok());
                    engine.set_poll_interval(d.unwrap_or(Duration::from_secs(30)));
                }
                key => {
                    tracing::info!(key, "setting saved; rebuilding the engine to apply it");
                    reload.send_modify(|n| *n += 1);
                }
            }
            Ok(())
        }
    })
}

/// A running generation.
pub(crate) struct Generation {
    /// The router to serve (dashboard + MCP + webhooks).
    pub(crate) router: Router,
    /// Ends the engine; the dashboard's clients are closed too.
    pub(crate) shutdown: CancellationToken,
    /// Completes when the engine has stopped.
    pub(crate) done: tokio::task::JoinHandle<()>,
}

/// Builds and starts one generation. `local` is the daemon's local source, shared by every
/// generation so a settings change does not lose the tasks added to it.
pub(crate) async fn start(
    config: &Config,
    backends: &Backends,
    base_url: &str,
    local: &LocalSource,
    reload: watch::Sender<u64>,
) -> anyhow_lite::Result<Generation> {
    let mut missing_now = missing(config);
    for item in &missing_now {
        tracing::warn!(setting = item.key.as_deref().unwrap_or(""), "{}", item.message);
    }
    let shutdown = CancellationToken::new();
    let (source, local, linear): (Arc<dyn TaskSource>, Option<LocalSource>, Option<LinearSource>) =
        match linear_config(config) {
            Some(lc) => match LinearSource::connect(lc.clone()).await {
                Ok(linear) => (Arc::new(linear.clone()), None, Some(linear)),
                Err(error) => {
                    // Serve the dashboard anyway so the key can be fixed there; a daemon that
                    // exits here would crash-loop on a bad key saved from the settings page.
                    let every = engine_config(config)
                        .poll_interval
                        .clamp(Duration::from_secs(1), Duration::from_secs(60));
                    tracing::error!(
                        %error,
                        retry_in = ?every,
                        "cannot connect to Linear; runs are paused until it answers"
                    );
                    missing_now.push(MissingItem::field(
                        "linear.api_key",
                        format!(
                            "Cannot connect to Linear: {error}. Check linear.api_key and linear.api_url; retrying \
                             every {}.",
                            humantime::format_duration(every)
                        ),
                    ));
                    tokio::spawn(reconnect(lc, every, reload.clone(), shutdown.clone()));
                    // An empty source that nobody can add to: nothing runs until Linear answers.
                    (Arc::new(LocalSource::new()), None, None)
                }
            },
            None => (Arc::new(local.clone()), Some(local.clone()), None),
        };
    let linear_down = linear.is_none() && linear_config(config).is_some();
    let tools = match &linear {
        Some(l) => Some(LinearTools::new(l.clone(), &format!("{base_url}/mcp/linear"))?),
        None => None,
    };
    let webhooks = match (config.get("linear.webhook_secret"), &linear) {
        (Some(secret), Some(l)) => {
            Some(l.webhooks(SecretString::from(secret.to_owned())).router("/webhooks/linear"))
        }
        _ => None,
    };
    let executor: Arc<dyn Executor> = match config.get("executor.kind") {
        Some("command") => {
            let mut argv = config.list("executor.command").into_iter();
            let mut cc = CommandConfig::new(argv.next().unwrap_or_else(|| "true".to_owned()));
            cc.args = argv.collect();
            Arc::new(CommandExecutor::from_config(cc))
        }
        _ => {
            let claude = claude_config(config);
            let workspaces = Workspaces::new(claude.workspace.clone());
            let executor = ClaudeExecutor::new(claude)?;
            spawn_workspace_pruner(workspaces, source.clone(), shutdown.clone());
            Arc::new(executor)
        }
    };

    let mut builder = Engine::builder()
        .source(source.clone())
        .queue(backends.queue.clone())
        .store(backends.store.clone())
        .executor(executor)
        .config(engine_config(config));
    if let Some(t) = &tools {
        builder = builder.tools(Arc::new(t.clone()));
    }
    let engine = builder.build()?;
    let handle = engine.handle();
    let needs_agent = missing_now.iter().any(|m| {
        matches!(m.key.as_deref(), Some("claude.api_key" | "claude.binary" | "executor.command"))
    });
    if needs_agent || linear_down {
        handle.pause();
    }

    let mut dashboard =
        Dashboard::builder(handle.clone(), backends.store.clone(), backends.queue.clone())
            .settings(settings_schema(config, reload, handle.clone()))
            .needs_configuration({
                let linear = linear.clone();
                move || {
                    let mut m = missing_now.clone();
                    if let Some(item) = linear.as_ref().and_then(linear_degraded) {
                        m.push(item);
                    }
                    async move { m }
                }
            })
            .token_opt(config.get("dashboard.token").map(|t| SecretString::from(t.to_owned())));
    if let Some(l) = &linear {
        dashboard = dashboard.metric_source(linear_metrics(l.clone()));
        let l = l.clone();
        dashboard = dashboard.readiness("linear", move || {
            let l = l.clone();
            async move {
                match l.rate_limit().paused_until {
                    Some(until) if until > chrono::Utc::now() => {
                        Err(agentflow::Error::RateLimited {
                            service: "linear",
                            retry_after: (until - chrono::Utc::now()).to_std().ok(),
                            message: format!("requests paused until {until}"),
                        })
                    }
                    _ => match l.request_stats().degraded() {
                        Some((at, error)) => Err(agentflow::Error::unavailable(
                            "linear",
                            format!("failing since {at}: {error}"),
                        )),
                        None => Ok(()),
                    },
                }
            }
        });
    }
    dashboard = match local {
        Some(local) => dashboard.local_source(local),
        None => dashboard.todo_source(source.clone(), Duration::from_secs(30)),
    };
    if let Some(dir) = config.get("claude.config_dir") {
        let projects = absolute(dir).join("projects");
        dashboard = dashboard.transcripts(move |session| find_transcript(&projects, session));
    }
    let dashboard = dashboard.build();

    let mut router = dashboard.router();
    if let Some(t) = &tools {
        router = router.merge(t.router());
    }
    if let Some(w) = webhooks {
        router = router.merge(w);
    }

    let stop = shutdown.clone();
    let done = tokio::spawn(async move {
        if let Err(e) = engine.run(stop).await {
            tracing::error!(error = %e, "engine stopped with an error");
        }
        dashboard.close_clients();
    });
    Ok(Generation { router, shutdown, done })
}

/// A live "Needs attention" item while Linear rate limits or fails (agentflow keeps retrying by
/// itself; the item goes away once Linear answers again).
fn linear_degraded(linear: &LinearSource) -> Option<MissingItem> {
    let now = chrono::Utc::now();
    if let Some(until) = linear.rate_limit().paused_until.filter(|u| *u > now) {
        return Some(MissingItem {
            key: None,
            message: format!(
                "Linear is rate limiting agentflow: requests are paused until {} UTC (then \
                 they resume by themselves).",
                until.format("%H:%M:%S")
            ),
        });
    }
    let stats = linear.request_stats();
    let (at, error) = stats.degraded()?;
    Some(MissingItem {
        key: None,
        message: format!(
            "Linear is degraded since {} UTC: {error}. agentflow keeps retrying.",
            at.format("%H:%M:%S")
        ),
    })
}

/// Tries Linear every `every` until it answers, then asks for a new generation (which connects
/// for real); ends with the generation.
async fn reconnect(
    config: LinearConfig,
    every: Duration,
    reload: watch::Sender<u64>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match LinearSource::connect(config.clone()).await {
            Ok(_) => {
                tracing::info!("Linear answers again; restarting the engine with it");
                reload.send_modify(|n| *n += 1);
                return;
            }
            Err(error) => tracing::debug!(%error, "Linear still unreachable"),
        }
    }
}

/// Linear's request counters and rate-limit budget for `/metrics`.
fn linear_metrics(linear: LinearSource) -> impl Fn() -> Vec<Sample> + Send + Sync + 'static {
    move || {
        let stats = linear.request_stats();
        let budget = linear.rate_limit();
        let mut out = vec![
            Sample::counter(
                "agentflow_linear_requests_total",
                "Requests sent to Linear.",
                stats.requests as f64,
            ),
            Sample::counter(
                "agentflow_linear_retries_total",
                "Requests to Linear retried.",
                stats.retries as f64,
            ),
            Sample::counter(
                "agentflow_linear_rate_limited_total",
                "Answers from Linear that said to slow down.",
                stats.rate_limited as f64,
            ),
            Sample::counter(
                "agentflow_linear_failures_total",
                "Requests to Linear that failed.",
                stats.failures as f64,
            ),
        ];
        for (op, n) in &stats.by_operation {
            out.push(
                Sample::counter(
                    "agentflow_linear_operation_requests_total",
                    "Requests to Linear by operation.",
                    *n as f64,
                )
                .label("operation", *op),
            );
        }
        if let Some(left) = budget.requests_remaining {
            out.push(Sample::gauge(
                "agentflow_linear_ratelimit_requests_remaining",
                "Requests left in Linear's current rate-limit window.",
                left as f64,
            ));
        }
        if let Some(left) = budget.complexity_remaining {
            out.push(Sample::gauge(
                "agentflow_linear_ratelimit_complexity_remaining",
                "Complexity points left in Linear's current rate-limit window.",
                left as f64,
            ));
        }
        out
    }
}

/// The CLI keeps a session's transcript at `<config>/projects/<cwd slug>/<session>.jsonl`.
fn find_transcript(projects: &std::path::Path, session: &str) -> Option<PathBuf> {
    let safe = !session.is_empty()
        && session.len() <= 64
        && session.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !safe {
        return None;
    }
    std::fs::read_dir(projects)
        .ok()?
        .flatten()
        .map(|dir| dir.path().join(format!("{session}.jsonl")))
        .find(|p| p.is_file())
}

/// A tiny boxed-error result for the daemon's own plumbing.
pub(crate) mod anyhow_lite {
    /// Any error, boxed.
    pub(crate) type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
    /// `Result` with a boxed error.
    pub(crate) type Result<T> = std::result::Result<T, Error>;
}
