//! Configuration of the Claude executor.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How the CLI asks before using tools (`--permission-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    /// Read-only tools run; writes, writing Bash and MCP tools need an allow rule.
    Default,
    /// File edits inside the workspace are allowed, plus whatever `allowed_tools` lists.
    #[default]
    AcceptEdits,
    /// Everything is allowed without asking. The agent can run any command as the daemon's
    /// user: use it only in a disposable sandbox (container or VM). As root the CLI refuses it
    /// unless `IS_SANDBOX=1`, which agentflow sets only in this mode.
    BypassPermissions,
    /// Plan only, no changes.
    Plan,
}

impl PermissionMode {
    /// The CLI's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::BypassPermissions => "bypassPermissions",
            PermissionMode::Plan => "plan",
        }
    }
}

/// How the CLI authenticates to the model API (passed by environment only).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// An Anthropic API key (`ANTHROPIC_API_KEY`, sent as `x-api-key`), optionally to another
    /// base URL.
    ApiKey {
        /// The key.
        api_key: SecretString,
        /// `ANTHROPIC_BASE_URL`, when not api.anthropic.com.
        #[serde(default)]
        base_url: Option<String>,
    },
    /// A proxy or gateway: `ANTHROPIC_BASE_URL` plus a bearer token (`ANTHROPIC_AUTH_TOKEN`).
    Proxy {
        /// The gateway's URL.
        base_url: String,
        /// The bearer token.
        auth_token: SecretString,
    },
    /// No credentials from agentflow: the CLI uses its own login stored in the config dir.
    #[default]
    Cli,
}

/// Where tasks' workspaces live and how long they are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// The directory holding one workspace per task (`<root>/<TASK-KEY>`).
    pub root: PathBuf,
    /// A git repository: each workspace is then a worktree of it on branch `agentflow/<key>`.
    pub repo: Option<PathBuf>,
    /// Workspaces of finished tasks older than this are removed by
    /// [`Workspaces::prune`](crate::Workspaces::prune).
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// At most this many workspaces of finished tasks are kept (newest first).
    pub max_count: Option<usize>,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            root: std::env::temp_dir().join("agentflow-workspaces"),
            repo: None,
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_count: Some(50),
        }
    }
}

/// Prompt template files overriding the shipped defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptFiles {
    /// First run of a task.
    pub execute: Option<PathBuf>,
    /// Human comments on a task in review (also used for comments delivered into a live run).
    pub feedback: Option<PathBuf>,
    /// A new attempt after a failure.
    pub retry: Option<PathBuf>,
}

/// Everything the executor needs; every field has a default.
///
/// ```
/// let cfg: agentflow_claude::ClaudeConfig = serde_json::from_value(serde_json::json!({
///     "model": "sonnet",
///     "max_turns": 40,
///     "auth": { "mode": "proxy", "base_url": "http://127.0.0.1:8080", "auth_token": "t" },
///     "workspace": { "root": "/srv/agentflow/workspaces", "max_age": "3days" },
///     "cancel_grace": "5s"
/// })).unwrap();
/// assert_eq!(cfg.permission_mode, agentflow_claude::PermissionMode::AcceptEdits);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeConfig {
    /// The CLI (`claude` on PATH by default).
    pub binary: PathBuf,
    /// `--model` (e.g. `sonnet`, `opus` or a full model name).
    pub model: Option<String>,
    /// `--fallback-model`, used when the model is overloaded.
    pub fallback_model: Option<String>,
    /// `--permission-mode`.
    pub permission_mode: PermissionMode,
    /// `--allowedTools`; the MCP tools of each run's tool servers are added.
    pub allowed_tools: Vec<String>,
    /// `--disallowedTools`.
    pub disallowed_tools: Vec<String>,
    /// `--max-turns`.
    pub max_turns: Option<u32>,
    /// Extra arguments, appended last.
    pub extra_args: Vec<String>,
    /// Names of variables of the daemon's environment to pass to the CLI (besides PATH, HOME,
    /// LANG, which always pass).
    pub env_passthrough: Vec<String>,
    /// Variables set for the CLI, e.g. `CLAUDE_CODE_MAX_RETRIES`, `API_TIMEOUT_MS`.
    pub env: BTreeMap<String, String>,
    /// Credentials.
    pub auth: Auth,
    /// `CLAUDE_CONFIG_DIR`: where the CLI keeps sessions (transcripts) and settings. Keep it
    /// with the daemon's data; `None` uses the CLI's default (`~/.claude`).
    pub config_dir: Option<PathBuf>,
    /// Workspaces.
    pub workspace: WorkspaceConfig,
    /// Prompt templates.
    pub prompts: PromptFiles,
    /// How long to wait after the interrupt request before SIGTERM.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// How long to wait after SIGTERM before SIGKILL.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
}

impl Default for ClaudeConfig {
    fn default() -> Self {
        ClaudeConfig {
            binary: PathBuf::from("claude"),
            model: None,
            fallback_model: None,
            permission_mode: PermissionMode::default(),
            allowed_tools: ["Read", "Edit", "Write", "Glob", "Grep", "Bash"]
                .map(String::from)
                .to_vec(),
            disallowed_tools: Vec::new(),
            max_turns: None,
            extra_args: Vec::new(),
            env_passthrough: Vec::new(),
            env: BTreeMap::new(),
            auth: Auth::default(),
            config_dir: None,
            workspace: WorkspaceConfig::default(),
            prompts: PromptFiles::default(),
            cancel_grace: Duration::from_secs(5),
            kill_grace: Duration::from_secs(3),
        }
    }
}
