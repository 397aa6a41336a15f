//! The daemon's configuration: one table of keys, four layers.
//!
//! Every key has a section and a name (`engine.workers`), one environment form
//! (`AGENTFLOW_ENGINE_WORKERS`), sometimes a name the seed used (`MAX_CONCURRENT_TASKS`), a kind
//! that parses and validates it, and a default. A value resolves as
//! **database > environment > file > default** (the seed's precedence, with the file added).
//! Errors name the key and where the bad value came from (file and line, variable, database).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentflow::Setting;
use serde_spanned::Spanned;

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text.
    Text,
    /// A secret: masked everywhere it is shown.
    Secret,
    /// `30s`, `3h`, `1h 30m`; a bare number is milliseconds (the seed's unit).
    Duration,
    /// A whole number ≥ 1.
    Count,
    /// A number ≥ 0.
    Number,
    /// A comma-separated list.
    List,
    /// `host:port`.
    Addr,
    /// A URL.
    Url,
    /// One of a fixed set.
    Choice(&'static [&'static str]),
}

/// One configuration key.
#[derive(Debug)]
pub(crate) struct KeySpec {
    /// `section.name`.
    pub(crate) key: &'static str,
    /// How it parses.
    pub(crate) kind: Kind,
    /// The built-in default, if any.
    pub(crate) default: Option<&'static str>,
    /// Environment names the seed used, accepted as well as `AGENTFLOW_<SECTION>_<NAME>`.
    pub(crate) seed_env: &'static [&'static str],
    /// Whether a change takes effect without a restart.
    pub(crate) live: bool,
    /// One line for people.
    pub(crate) help: &'static str,
}

impl KeySpec {
    /// The settings group the dashboard shows it in (the section, capitalised).
    pub(crate) fn group(&self) -> &'static str {
        match self.section() {
            "linear" => "Linear",
            "claude" => "Claude",
            "executor" => "Executor",
            "engine" => "Engine",
            "storage" => "Storage",
            "dashboard" => "Dashboard",
            _ => "Other",
        }
    }

    /// The section (`engine`).
    pub(crate) fn section(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(s, _)| s)
    }

    /// `AGENTFLOW_ENGINE_WORKERS` for `engine.workers`.
    pub(crate) fn env_name(&self) -> String {
        format!("AGENTFLOW_{}", self.key.replace('.', "_").to_ascii_uppercase())
    }
}

macro_rules! keys {
    ($( $key:literal : $kind:expr, $default:expr, [$($seed:literal),*], $live:literal, $help:literal; )*) => {
        /// Every key the daemon knows, in documentation order.
        pub(crate) static KEYS: &[KeySpec] = &[
            $( KeySpec { key: $key, kind: $kind, default: $default, seed_env: &[$($seed),*], live: $live, help: $help }, )*
        ];
    };
}

const PERMISSION_MODES: &[&str] = &["default", "acceptEdits", "plan", "bypassPermissions"];

keys! {
    "storage.database_url": Kind::Url, Some("sqlite://agentflow.db"), [], false,
        "State store (and queue unless storage.queue_url is set): sqlite://PATH, postgres://…, memory://";
    "storage.queue_url": Kind::Url, None, [], false,
        "Job queue when it differs from the database: redis://…, postgres://…, sqlite://…";
    "engine.workers": Kind::Count, Some("3"), ["MAX_CONCURRENT_TASKS"], true,
        "Agent runs at the same time";
    "engine.poll_interval": Kind::Duration, Some("30s"), ["POLLING_INTERVAL"], true,
        "How often Linear is polled for Todo issues and feedback";
    "engine.timeout": Kind::Duration, Some("3h"), ["TASK_TIMEOUT"], true,
        "How long one run may take";
    "engine.max_attempts": Kind::Count, Some("3"), [], true,
        "Attempts before a task fails";
    "engine.retry_backoff": Kind::Duration, Some("5s"), [], true,
        "First retry delay; doubles each attempt (5s, 10s, 20s)";
    "engine.lease": Kind::Duration, Some("60s"), [], true,
        "Job lease; heartbeats renew it every third of it";
    "engine.progress_interval": Kind::Duration, Some("10s"), [], true,
        "At most one progress-comment edit per task per interval";
    "engine.shutdown_grace": Kind::Duration, Some("30s"), [], true,
        "How long running jobs may finish on shutdown before they are released";
    "engine.reconcile_interval": Kind::Duration, Some("5m"), [], true,
        "How often In Progress issues are checked for a queued job; one missing twice in a row is queued again";
    "engine.daily_budget_usd": Kind::Number, None, [], true,
        "Pause new runs once today's cost reaches this (US dollars)";
    "linear.api_key": Kind::Secret, None, ["LINEAR_API_KEY"], true,
        "Linear personal API key (lin_api_…)";
    "linear.oauth_token": Kind::Secret, None, [], true,
        "Linear OAuth access token (instead of an API key)";
    "linear.api_url": Kind::Url, Some("https://api.linear.app/graphql"), [], true,
        "Linear GraphQL endpoint";
    "linear.teams": Kind::List, None, [], true,
        "Team keys to take issues from (e.g. ENG); required with a Linear key";
    "linear.label": Kind::Text, None, [], true,
        "Only issues with this label";
    "linear.webhook_secret": Kind::Secret, None, [], true,
        "Signing secret of the Linear webhook (enables /webhooks/linear)";
    "claude.binary": Kind::Text, Some("claude"), [], true,
        "Claude Code CLI executable";
    "claude.model": Kind::Text, None, [], true,
        "Model name passed to --model";
    "claude.permission_mode": Kind::Choice(PERMISSION_MODES), Some("acceptEdits"), [], true,
        "Claude Code permission mode";
    "claude.allowed_tools": Kind::List, Some("Read,Edit,Write,Glob,Grep,Bash"), [], true,
        "Tools the agent may use (the Linear tools are added per run)";
    "claude.max_turns": Kind::Count, None, [], true,
        "Maximum agent turns per run";
    "claude.api_key": Kind::Secret, None, ["ANTHROPIC_API_KEY"], true,
        "Anthropic API key";
    "claude.base_url": Kind::Url, None, ["ANTHROPIC_BASE_URL"], true,
        "Anthropic API base URL (a proxy)";
    "claude.auth_token": Kind::Secret, None, ["ANTHROPIC_AUTH_TOKEN"], true,
        "Bearer token for the proxy at claude.base_url";
    "claude.workspace_root": Kind::Text, Some("workspaces"), ["CLAUDE_WORKSPACE_PATH"], true,
        "Directory holding one workspace per task";
    "claude.workspace_max_age": Kind::Duration, Some("7days"), [], true,
        "Workspaces of tasks no longer In Progress or In Review are removed once untouched this long";
    "claude.workspace_max_count": Kind::Count, Some("50"), [], true,
        "At most this many workspaces of tasks no longer in play are kept (newest first)";
    "claude.config_dir": Kind::Text, Some("claude-config"), [], true,
        "CLAUDE_CONFIG_DIR for the agent's sessions and transcripts";
    "claude.env": Kind::List, None, [], true,
        "Extra environment variables passed through to the agent";
    "executor.kind": Kind::Choice(&["claude", "command"]), Some("claude"), [], true,
        "claude, or command to run any program per task";
    "executor.command": Kind::List, None, [], true,
        "Program and arguments for executor.kind = command";
    "dashboard.addr": Kind::Addr, Some("127.0.0.1:8080"), [], false,
        "Listen address of the dashboard, API and MCP endpoint";
    "dashboard.token": Kind::Secret, None, [], false,
        "Access token; required to listen on a non-loopback address";
}

/// Looks up a key.
pub(crate) fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// Where a value came from, precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Saved from the dashboard.
    Database,
    /// An environment variable.
    Env(String),
    /// The config file, at a line.
    File(PathBuf, usize),
    /// The default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Database => f.write_str("the settings database"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::File(path, line) => write!(f, "{}:{line}", path.display()),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// A configuration error: what, which key, from where.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: invalid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key nobody knows.
    #[error("{origin}: unknown configuration key `{key}`{}", suggest(key))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where.
        origin: Origin,
    },
    /// A value that does not parse.
    #[error("{origin}: invalid value for `{key}`: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Where.
        origin: Origin,
        /// What is wrong.
        message: String,
    },
}

fn suggest(key: &str) -> String {
    let name = key.rsplit('.').next().unwrap_or(key);
    // The same name in another section, else a key a typo or two away (`wrokers`).
    let same_name = KEYS.iter().find(|k| k.key.ends_with(&format!(".{name}")));
    let near = || {
        KEYS.iter()
            .map(|k| (edit_distance(key, k.key), k))
            .filter(|(d, _)| *d <= 3)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    };
    match same_name.or_else(near) {
        Some(k) => format!(" (did you mean `{}`?)", k.key),
        None => " (see docs/configuration.md)".to_owned(),
    }
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Checks `value` against `spec`'s kind; returns the normalised value or what is wrong.
pub(crate) fn validate(spec: &KeySpec, value: &str) -> Result<String, String> {
    let v = value.trim();
    match spec.kind {
        Kind::Text | Kind::Secret | Kind::List => Ok(v.to_owned()),
        Kind::Duration => parse_duration(v).map(|_| v.to_owned()),
        Kind::Count => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.to_string()),
            _ => Err(format!("expected a whole number of at least 1, got `{v}`")),
        },
        Kind::Number => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Ok(v.to_owned()),
            _ => Err(format!("expected a number of at least 0, got `{v}`")),
        },
        Kind::Addr => v
            .parse::<std::net::SocketAddr>()
            .map(|_| v.to_owned())
            .map_err(|_| format!("expected host:port such as 127.0.0.1:8080, got `{v}`")),
        Kind::Url => match v.split_once("://") {
            Some((scheme, rest))
                if !scheme.is_empty() && (!rest.is_empty() || scheme == "memory") =>
            {
                Ok(v.to_owned())
            }
            _ => Err(format!("expected a URL such as sqlite://agentflow.db, got `{v}`")),
        },
        Kind::Choice(options) => {
            if options.contains(&v) {
                Ok(v.to_owned())
            } else {
                Err(format!("expected one of {}, got `{v}`", options.join(", ")))
            }
        }
    }
}

/// Parses `30s`, `1h 30m`; a bare number is milliseconds.
pub(crate) fn parse_duration(v: &str) -> Result<Duration, String> {
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(v)
        .map_err(|e| format!("expected a duration such as 30s or 3h, got `{v}` ({e})"))
}

/// A resolved value.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    /// The text.
    pub(crate) value: String,
    /// Where it came from.
    pub(crate) origin: Origin,
}

/// The resolved configuration: every key that has a value, with its origin.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    values: BTreeMap<&'static str, Value>,
    /// The file that was read, if any.
    pub(crate) file: Option<PathBuf>,
}

impl Config {
    /// Resolves every key from the database settings, the environment, the file and defaults.
    pub(crate) fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        db: &[Setting],
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
        for k in KEYS {
            if let Some(d) = k.default {
                values.insert(k.key, Value { value: d.to_owned(), origin: Origin::Default });
            }
        }
        if let Some(path) = file {
            for (key, value, line) in read_file(path)? {
                let spec = spec(&key).ok_or_else(|| ConfigError::UnknownKey {
                    key: key.clone(),
                    origin: Origin::File(path.to_owned(), line),
                })?;
                set(&mut values, spec, &value, Origin::File(path.to_owned(), line))?;
            }
        }
        for k in KEYS {
            let names =
                std::iter::once(k.env_name()).chain(k.seed_env.iter().map(|s| s.to_string()));
            for name in names {
                if let Some(v) = env(&name).filter(|v| !v.is_empty()) {
                    set(&mut values, k, &v, Origin::Env(name))?;
                    break;
                }
            }
        }
        for s in db {
            // Unknown keys in the database (from a newer version) are ignored, not fatal.
            if let Some(k) = spec(&s.key) {
                set(&mut values, k, &s.value, Origin::Database)?;
            }
        }
        Ok(Config { values, file: file.map(Path::to_owned) })
    }

    /// The value of `key`, if set.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| v.value.as_str()).filter(|v| !v.is_empty())
    }

    /// The value and origin of `key`.
    pub(crate) fn entry(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A duration key (validated at load).
    pub(crate) fn duration(&self, key: &str) -> Option<Duration> {
        self.get(key).and_then(|v| parse_duration(v).ok())
    }

    /// A count key (validated at load).
    pub(crate) fn count(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// A number key (validated at load).
    pub(crate) fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// A list key, split on commas, trimmed, empties dropped.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            })
            .unwrap_or_default()
    }
}

fn set(
    values: &mut BTreeMap<&'static str, Value>,
    spec: &'static KeySpec,
    raw: &str,
    origin: Origin,
) -> Result<(), ConfigError> {
    let value = validate(spec, raw).map_err(|message| ConfigError::Invalid {
        key: spec.key.to_owned(),
        origin: origin.clone(),
        message,
    })?;
    values.insert(spec.key, Value { value, origin });
    Ok(())
}

type File = BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<toml::Value>>>;

/// Reads `[section] key = value` pairs with their line numbers.
fn read_file(path: &Path) -> Result<Vec<(String, String, usize)>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigError::Syntax {
            path: path.to_owned(),
            line: valid.iter().filter(|b| **b == b'\n').count() + 1,
            message: "the file is not UTF-8 text".to_owned(),
        }
    })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let doc: File = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.span().map_or(1, |s| line_of(s.start)),
        message: e.message().to_owned(),
    })?;
    let mut out = Vec::new();
    for (section, table) in doc {
        for (key, value) in table {
            let full = format!("{}.{}", section.get_ref(), key.get_ref());
            let line = line_of(key.span().start);
            let value = match value.into_inner() {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    return Err(ConfigError::Invalid {
                        key: full,
                        origin: Origin::File(path.to_owned(), line),
                        message: format!(
                            "expected a string, number, boolean or list, got {}",
                            other.type_str()
                        ),
                    });
                }
            };
            out.push((full, value, line));
        }
    }
    Ok(out)
}

/// Markdown documentation of every key (docs/configuration.md is generated from this).
pub(crate) fn markdown_table() -> String {
    let mut s = String::from(
        "| key | environment | default | live | description |\n|---|---|---|---|---|\n",
    );
    for k in KEYS {
        let mut env = format!("`{}`", k.env_name());
        for seed in k.seed_env {
            env.push_str(&format!(", `{seed}`"));
        }
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.key,
            env,
            k.default.map(|d| format!("`{d}`")).unwrap_or_else(|| "—".into()),
            if k.live { "yes" } else { "restart" },
            k.help
        ));
    }
    s
}

#[cfg(test)]
mod tests;
