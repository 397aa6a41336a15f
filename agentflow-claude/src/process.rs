//! The CLI's process: command line, environment allow-list, process group, and stopping it
//! without leaving anything behind.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agentflow_core::ToolServer;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tokio::process::{Child, Command};

use crate::config::{Auth, ClaudeConfig, PermissionMode};
use crate::error::ClaudeError;

/// Prefixes of the daemon's environment variables that pass to the CLI.
const PASS_PREFIXES: [&str; 2] = ["ANTHROPIC_", "CLAUDE_CODE_"];
/// Variables of the daemon's environment that always pass.
const PASS_ALWAYS: [&str; 3] = ["PATH", "HOME", "LANG"];

/// The CLI's environment: nothing of the daemon's but PATH, HOME, LANG, its `ANTHROPIC_*` and
/// `CLAUDE_CODE_*` variables and the configured passthrough names; then the configured `env`,
/// auth, config dir, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, and `IS_SANDBOX=1` only in
/// bypass mode.
pub fn agent_env(
    cfg: &ClaudeConfig,
    daemon_env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = daemon_env
        .into_iter()
        .filter(|(k, _)| {
            PASS_ALWAYS.contains(&k.as_str())
                || PASS_PREFIXES.iter().any(|p| k.starts_with(p))
                || cfg.env_passthrough.iter().any(|n| n == k)
        })
        .collect();
    env.extend(cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    match &cfg.auth {
        Auth::ApiKey { api_key, base_url } => {
            env.insert("ANTHROPIC_API_KEY".into(), api_key.expose_secret().to_owned());
            env.remove("ANTHROPIC_AUTH_TOKEN");
            if let Some(url) = base_url {
                env.insert("ANTHROPIC_BASE_URL".into(), url.clone());
            }
        }
        Auth::Proxy { base_url, auth_token } => {
            env.insert("ANTHROPIC_BASE_URL".into(), base_url.clone());
            env.insert("ANTHROPIC_AUTH_TOKEN".into(), auth_token.expose_secret().to_owned());
            env.remove("ANTHROPIC_API_KEY");
        }
        Auth::Cli => {}
    }
    if let Some(dir) = &cfg.config_dir {
        env.insert("CLAUDE_CONFIG_DIR".into(), dir.to_string_lossy().into_owned());
    }
    env.insert("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into());
    if cfg.permission_mode == PermissionMode::BypassPermissions {
        env.insert("IS_SANDBOX".into(), "1".into());
    } else {
        env.remove("IS_SANDBOX");
    }
    env.into_iter().collect()
}

/// The `--mcp-config` JSON for the run's tool servers (streamable HTTP).
///
/// ```
/// use agentflow_core::ToolServer;
/// let s = ToolServer { name: "linear".into(), url: "http://127.0.0.1:1/mcp".into(),
///     headers: vec![("Authorization".into(), "Bearer t".into())], tools: vec![] };
/// let v = agentflow_claude::mcp_config(&[s]);
/// assert_eq!(v["mcpServers"]["linear"]["type"], "http");
/// assert_eq!(v["mcpServers"]["linear"]["headers"]["Authorization"], "Bearer t");
/// ```
pub fn mcp_config(servers: &[ToolServer]) -> Value {
    let mut map = Map::new();
    for s in servers {
        let headers: Map<String, Value> =
            s.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        map.insert(s.name.clone(), json!({ "type": "http", "url": s.url, "headers": headers }));
    }
    json!({ "mcpServers": map })
}

/// The tool names to allow for the run's tool servers: `mcp__<server>__<tool>` for each listed
/// tool, or `mcp__<server>` (all its tools) when none is listed.
pub fn mcp_tool_names(servers: &[ToolServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| {
            if s.tools.is_empty() {
                vec![format!("mcp__{}", s.name)]
            } else {
                s.tools.iter().map(|t| format!("mcp__{}__{t}", s.name)).collect()
            }
        })
        .collect()
}

/// The command line (without the binary).
pub(crate) fn args(
    cfg: &ClaudeConfig,
    resume: Option<&str>,
    servers: &[ToolServer],
) -> Vec<String> {
    let mut args: Vec<String> =
        ["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]
            .map(String::from)
            .to_vec();
    args.extend(["--permission-mode".into(), cfg.permission_mode.as_str().into()]);
    let mut allowed = cfg.allowed_tools.clone();
    allowed.extend(mcp_tool_names(servers));
    if !allowed.is_empty() {
        args.extend(["--allowedTools".into(), allowed.join(",")]);
    }
    if !cfg.disallowed_tools.is_empty() {
        args.extend(["--disallowedTools".into(), cfg.disallowed_tools.join(",")]);
    }
    if let Some(model) = &cfg.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if let Some(model) = &cfg.fallback_model {
        args.extend(["--fallback-model".into(), model.clone()]);
    }
    if let Some(n) = cfg.max_turns {
        args.extend(["--max-turns".into(), n.to_string()]);
    }
    if let Some(session) = resume {
        args.extend(["--resume".into(), session.to_owned()]);
    }
    // Always strict: the agent gets this run's servers and never the user's own MCP config.
    args.extend([
        "--mcp-config".into(),
        mcp_config(servers).to_string(),
        "--strict-mcp-config".into(),
    ]);
    args.extend(cfg.extra_args.iter().cloned());
    args
}

/// Starts the CLI in `cwd`, in its own process group, with exactly `env` (plus
/// [`OWNER_ENV`](agentflow_core::process::OWNER_ENV)), tied to the daemon: it is killed when the
/// daemon dies ([`spawn_tied`](agentflow_core::process::spawn_tied)).
pub(crate) async fn spawn(
    binary: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<Child, ClaudeError> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    agentflow_core::process::spawn_tied(cmd).await.map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            ClaudeError::BinaryMissing { binary: binary.to_owned(), source }
        }
        _ => ClaudeError::Io { context: format!("cannot start `{}`", binary.display()), source },
    })
}

/// Sends `signal` to the process group `pgid` (errors ignored: the group may be gone).
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// SIGKILLs every process whose working directory is inside `dir` (the CLI's Bash tool starts
/// commands in their own process groups, so killing the CLI's group misses them). Repeats until
/// none is found (at most 20 rounds). Returns how many were killed.
pub(crate) async fn sweep(dir: &Path) -> usize {
    let Ok(dir) = std::fs::canonicalize(dir) else { return 0 };
    let me = std::process::id();
    let mut killed = 0;
    for _ in 0..20 {
        let found = processes_in(&dir, me);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            if kill(Pid::from_raw(*pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    killed
}

/// Pids (other than `me`) whose cwd is `dir` or below it.
pub fn processes_in(dir: &Path, me: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && agentflow_core::process::cwd_within(*pid, dir))
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// SIGKILLs what a dead daemon left running under `root`: every process whose working
/// directory is `root` or below it and whose [`OWNER_ENV`](agentflow_core::process::OWNER_ENV)
/// names a daemon that is no longer running (an agent's helpers orphaned when a daemon was
/// killed outright). Processes of live daemons and processes agentflow did not start are left
/// alone. One pass; returns how many were killed. See
/// [`agentflow_core::process::sweep_orphans`].
pub fn sweep_orphans(root: &Path) -> usize {
    let Ok(root) = std::fs::canonicalize(root) else { return 0 };
    agentflow_core::process::sweep_orphans(Some(&root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn environment_is_an_allow_list() {
        let cfg = ClaudeConfig {
            auth: Auth::Proxy {
                base_url: "http://127.0.0.1:1".into(),
                auth_token: SecretString::from("tok"),
            },
            env_passthrough: vec!["EXTRA".into()],
            ..ClaudeConfig::default()
        };
        let daemon = [
            ("PATH", "/bin"),
            ("LINEAR_API_KEY", "lin_secret"),
            ("DATABASE_URL", "postgres://x"),
            ("ANTHROPIC_API_KEY", "sk-old"),
            ("CLAUDE_CODE_MAX_RETRIES", "1"),
            ("EXTRA", "yes"),
            ("IS_SANDBOX", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env: std::collections::HashMap<_, _> = agent_env(&cfg, daemon).into_iter().collect();
        assert!(!env.contains_key("LINEAR_API_KEY") && !env.contains_key("DATABASE_URL"));
        assert!(!env.contains_key("ANTHROPIC_API_KEY") && !env.contains_key("IS_SANDBOX"));
        assert_eq!(env["ANTHROPIC_AUTH_TOKEN"], "tok");
        assert_eq!(env["CLAUDE_CODE_MAX_RETRIES"], "1");
        assert_eq!(env["EXTRA"], "yes");
        assert_eq!(env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1");
        let bypass = ClaudeConfig {
            permission_mode: PermissionMode::BypassPermissions,
            ..ClaudeConfig::default()
        };
        assert_eq!(
            agent_env(&bypass, [])
                .into_iter()
                .find(|(k, _)| k == "IS_SANDBOX")
                .map(|(_, v)| v)
                .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn args_allow_the_run_mcp_tools() {
        let server = ToolServer {
            name: "linear".into(),
            url: "http://127.0.0.1:1/mcp".into(),
            headers: vec![],
            tools: vec!["add_comment".into(), "get_issue".into()],
        };
        let a = args(&ClaudeConfig::default(), Some("s1"), &[server]);
        let allowed = &a[a.iter().position(|x| x == "--allowedTools").unwrap() + 1];
        assert_eq!(
            allowed,
            "Read,Edit,Write,Glob,Grep,Bash,mcp__linear__add_comment,mcp__linear__get_issue"
        );
        assert!(a.windows(2).any(|w| w == ["--resume", "s1"]));
        assert!(a.windows(2).any(|w| w == ["--permission-mode", "acceptEdits"]));
        assert_eq!(a.last().unwrap(), "--strict-mcp-config");
    }
}
