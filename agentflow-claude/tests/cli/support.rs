//! Shared set-up for the tests that run the real Claude Code CLI against the fake API.

use std::path::PathBuf;
use std::time::Duration;

use agentflow_claude::{Auth, ClaudeConfig, ClaudeExecutor, WorkspaceConfig};
use agentflow_core::{
    CancellationToken, Executor, Progress, ProgressSender, Result, RunOutcome, RunRequest, Task,
};
use agentflow_testkit::fake_anthropic::FakeAnthropic;
use secrecy::SecretString;
use tempfile::TempDir;

/// The pinned CLI: `AGENTFLOW_CLAUDE_BIN`, else the cache `scripts/install-test-deps.sh` fills.
/// Under `CI` a missing CLI fails the test; elsewhere the test is skipped with a note.
pub(crate) fn claude_bin() -> Option<PathBuf> {
    agentflow_testkit::claude_cli(agentflow_claude::CLAUDE_CODE_VERSION)
}

/// A fake API, a temp dir for workspaces and sessions, and the executor's config.
pub(crate) struct Harness {
    pub(crate) fake: FakeAnthropic,
    _dir: TempDir,
    pub(crate) cfg: ClaudeConfig,
}

impl Harness {
    /// `None` when the CLI is missing outside CI.
    pub(crate) async fn new() -> Option<Harness> {
        let binary = claude_bin()?;
        let fake = FakeAnthropic::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ClaudeConfig {
            binary,
            auth: Auth::ApiKey {
                api_key: SecretString::from("test-key"),
                base_url: Some(fake.url()),
            },
            config_dir: Some(dir.path().join("claude-config")),
            workspace: WorkspaceConfig {
                root: dir.path().join("ws"),
                repo: None,
                max_age: None,
                max_count: None,
            },
            env: [("CLAUDE_CODE_MAX_RETRIES", "1"), ("API_TIMEOUT_MS", "60000")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            cancel_grace: Duration::from_secs(2),
            kill_grace: Duration::from_secs(2),
            ..ClaudeConfig::default()
        };
        Some(Harness { fake, _dir: dir, cfg })
    }

    pub(crate) fn executor(&self) -> ClaudeExecutor {
        ClaudeExecutor::new(self.cfg.clone()).expect("executor")
    }

    pub(crate) fn workspace(&self, key: &str) -> PathBuf {
        self.cfg.workspace.root.join(key)
    }
}

/// A request for task `key` titled `title`, with a 2-minute timeout.
pub(crate) fn request(key: &str, title: &str) -> RunRequest {
    let mut req = RunRequest::new(Task::new(format!("id-{key}"), key, title));
    req.timeout = Duration::from_secs(120);
    req
}

/// Runs `req` and returns the result with every progress item reported.
pub(crate) async fn run(
    exec: &ClaudeExecutor,
    req: RunRequest,
) -> (Result<RunOutcome>, Vec<Progress>) {
    run_with(exec, req, CancellationToken::new()).await
}

/// Like [`run`], with a cancel token.
pub(crate) async fn run_with(
    exec: &ClaudeExecutor,
    req: RunRequest,
    cancel: CancellationToken,
) -> (Result<RunOutcome>, Vec<Progress>) {
    let (tx, mut rx) = ProgressSender::channel();
    let res = tokio::time::timeout(Duration::from_secs(240), exec.run(req, tx, cancel))
        .await
        .expect("the run ends within 4 minutes");
    let mut items = Vec::new();
    while let Ok((_, p)) = rx.try_recv() {
        items.push(p);
    }
    (res, items)
}

/// Log lines among `progress`.
pub(crate) fn logs(progress: &[Progress]) -> Vec<String> {
    progress
        .iter()
        .filter_map(|p| match p {
            Progress::Log { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// Pids of live processes whose command line contains `marker`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != me)
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                        String::from_utf8_lossy(&c).replace('\0', " ").contains(marker)
                    })
                })
                .filter(|pid| {
                    // Zombies are gone already, only not yet reaped.
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                        s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z'))
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (at most 5 s) until no process contains `marker`, then returns the ones left.
pub(crate) async fn leftovers(marker: &str) -> Vec<u32> {
    for _ in 0..50 {
        if processes_with(marker).is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processes_with(marker)
}
