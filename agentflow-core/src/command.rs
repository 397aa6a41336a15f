//! [`CommandExecutor`]: runs any program per task, the simplest real [`Executor`].
//!
//! The program starts in the task's workspace (created when missing) in its own process group,
//! with the task in its environment and the prompt on stdin:
//!
//! | variable | value |
//! |---|---|
//! | `AGENTFLOW_TASK_ID`, `AGENTFLOW_TASK_KEY`, `AGENTFLOW_TASK_TITLE` | the task |
//! | `AGENTFLOW_ATTEMPT`, `AGENTFLOW_KIND` | attempt number (1-based), `execute`/`feedback`/`retry` |
//! | `AGENTFLOW_SESSION` | the session to resume, when there is one |
//! | `AGENTFLOW_RUN_ID`, `AGENTFLOW_JOB_ID`, `AGENTFLOW_WORKSPACE` | bookkeeping |
//!
//! Every stdout line is reported as [`Progress::Text`], every stderr line as [`Progress::Log`].
//! Two stdout lines are instructions rather than text: `::session::<id>` reports the agent's
//! session id (stored at once and passed back as `AGENTFLOW_SESSION` on the next run) and
//! `::review::true` / `::review::false` asks for (or waives) human review.
//!
//! Exit status 0 is success; the summary is the last stdout lines. Any other status is an
//! [`Error::Executor`], retryable unless the code is listed in
//! [`CommandConfig::permanent_exit_codes`]. On cancel (timeout, shutdown, a person) the whole
//! process group gets SIGTERM, then SIGKILL after [`CommandConfig::kill_grace`]; when the
//! program exits on its own, whatever it left running in its group is killed too. The program
//! dies with the daemon ([`spawn_tied`](crate::process::spawn_tied)): a daemon killed outright
//! leaves no run going on behind the back of the one that takes the task over.
//!
//! ```no_run
//! # async fn demo() -> agentflow_core::Result<()> {
//! use agentflow_core::command::CommandExecutor;
//! use agentflow_core::{CancellationToken, Executor, ProgressSender, RunRequest, Task};
//!
//! let exec = CommandExecutor::new("sh").arg("-c").arg("echo working on $AGENTFLOW_TASK_KEY");
//! let request = RunRequest::new(Task::new("t1", "LOC-1", "Say hello"));
//! let outcome = exec.run(request, ProgressSender::discard(), CancellationToken::new()).await?;
//! assert_eq!(outcome.summary, "working on LOC-1");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::run::{LogLevel, Progress, ProgressSender, RunOutcome, RunRequest};

/// What [`CommandExecutor`] runs and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program (looked up in `PATH` when it has no `/`).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Exit codes that mean "do not try again" (default: 126 and 127, the shell's "cannot
    /// execute" and "not found").
    #[serde(default = "default_permanent")]
    pub permanent_exit_codes: Vec<i32>,
    /// After SIGTERM, how long the group may take to exit before SIGKILL.
    #[serde(default = "default_kill_grace", with = "humantime_serde")]
    pub kill_grace: Duration,
    /// How many trailing stdout lines make the summary.
    #[serde(default = "default_summary_lines")]
    pub summary_lines: usize,
}

fn default_permanent() -> Vec<i32> {
    vec![126, 127]
}

fn default_kill_grace() -> Duration {
    Duration::from_secs(5)
}

fn default_summary_lines() -> usize {
    20
}

impl CommandConfig {
    /// A config running `program` with the defaults.
    pub fn new(program: impl Into<String>) -> Self {
        CommandConfig {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            permanent_exit_codes: default_permanent(),
            kill_grace: default_kill_grace(),
            summary_lines: default_summary_lines(),
        }
    }
}

/// Runs a configured program per task. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    config: CommandConfig,
}

impl CommandExecutor {
    /// Runs `program`.
    pub fn new(program: impl Into<String>) -> Self {
        CommandExecutor { config: CommandConfig::new(program) }
    }

    /// From a config.
    pub fn from_config(config: CommandConfig) -> Self {
        CommandExecutor { config }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.config.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.env.insert(key.into(), value.into());
        self
    }

    /// Exit codes that are permanent failures (replaces the default 126, 127).
    pub fn permanent_exit_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.config.permanent_exit_codes = codes.into_iter().collect();
        self
    }

    /// Time between SIGTERM and SIGKILL on cancel.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.config.kill_grace = grace;
        self
    }

    /// Trailing stdout lines kept as the summary.
    pub fn summary_lines(mut self, n: usize) -> Self {
        self.config.summary_lines = n.max(1);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &CommandConfig {
        &self.config
    }
}

/// Renders the prompt the program reads on stdin. The task's text is data, quoted as such.
pub fn render_prompt(request: &RunRequest) -> String {
    let task = &request.task;
    let mut out = format!("Task {}: {}\n", task.key, task.title);
    if let Some(url) = &task.url {
        out.push_str(&format!("Link: {url}\n"));
    }
    if !task.body.trim().is_empty() {
        out.push_str("\n--- description ---\n");
        out.push_str(task.body.trim_end());
        out.push('\n');
    }
    if let Some(error) = &request.previous_error {
        out.push_str("\n--- previous attempt failed ---\n");
        out.push_str(error.trim_end());
        out.push('\n');
    }
    for f in &request.feedback {
        out.push_str(&format!(
            "\n--- comment by {} at {} ---\n",
            f.author,
            f.created_at.to_rfc3339()
        ));
        out.push_str(f.body.trim_end());
        out.push('\n');
    }
    out
}

/// Kills the process group when dropped, so a dropped run leaves nothing behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.0 {
            // ESRCH (the group is gone) is the expected outcome, nothing to report.
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// What the stdout reader collected.
#[derive(Default)]
struct Collected {
    tail: VecDeque<String>,
    session: Option<String>,
    review: Option<bool>,
}

/// Reads lines until EOF; bytes that are not UTF-8 are replaced rather than ending the read
/// (a reader that stopped would leave the program blocked on a full pipe).
struct Lines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(r: R) -> Self {
        Lines { reader: BufReader::new(r), buf: Vec::new() }
    }

    async fn next(&mut self) -> Option<String> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = String::from_utf8_lossy(&self.buf);
                Some(line.trim_end_matches(['\n', '\r']).to_owned())
            }
        }
    }
}

async fn read_stdout(
    out: impl AsyncRead + Unpin,
    progress: ProgressSender,
    keep: usize,
) -> Collected {
    let mut c = Collected::default();
    let mut lines = Lines::new(out);
    while let Some(line) = lines.next().await {
        if let Some(id) = line.strip_prefix("::session::") {
            let id = id.trim().to_owned();
            progress.send(Progress::Session { id: id.clone() });
            c.session = Some(id);
            continue;
        }
        if let Some(flag) = line.strip_prefix("::review::") {
            c.review = match flag.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => c.review,
            };
            continue;
        }
        progress.send(Progress::Text { text: line.clone() });
        c.tail.push_back(line);
        if c.tail.len() > keep {
            c.tail.pop_front();
        }
    }
    c
}

async fn read_stderr(err: impl AsyncRead + Unpin, progress: ProgressSender) -> Option<String> {
    let mut last = None;
    let mut lines = Lines::new(err);
    while let Some(line) = lines.next().await {
        if !line.trim().is_empty() {
            last = Some(line.clone());
        }
        progress.log(LogLevel::Info, line);
    }
    last
}

/// How long the readers may take to drain once the group is dead.
const DRAIN: Duration = Duration::from_secs(5);

/// `value` as an environment value: a NUL (which no environment can hold, and which would make
/// the spawn fail) becomes U+FFFD, as the stores do.
fn env_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        std::borrow::Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

#[async_trait]
impl Executor for CommandExecutor {
    async fn run(
        &self,
        request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let cfg = &self.config;
        let program = &cfg.program;
        if cancel.is_cancelled() {
            return Err(Error::Cancelled { reason: "cancelled before start".into() });
        }
        // What a killed daemon's run left behind must not work on beside this one.
        let _ = tokio::task::spawn_blocking(|| crate::process::sweep_orphans(None)).await;
        let mut cmd = Command::new(program);
        cmd.args(&cfg.args)
            .envs(&cfg.env)
            .env("AGENTFLOW_TASK_ID", env_value(request.task.id.as_str()).as_ref())
            .env("AGENTFLOW_TASK_KEY", env_value(&request.task.key).as_ref())
            .env("AGENTFLOW_TASK_TITLE", env_value(&request.task.title).as_ref())
            .env("AGENTFLOW_ATTEMPT", request.attempt.to_string())
            .env("AGENTFLOW_KIND", request.kind.as_str())
            .env("AGENTFLOW_RUN_ID", request.run.to_string())
            .env("AGENTFLOW_JOB_ID", request.job.to_string())
            .env_remove("AGENTFLOW_SESSION")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(session) = &request.resume_session {
            cmd.env("AGENTFLOW_SESSION", env_value(session).as_ref());
        }
        if let Some(dir) = &request.workspace {
            tokio::fs::create_dir_all(dir).await.map_err(|e| Error::Executor {
                message: format!("cannot create the workspace {}: {e}", dir.display()),
                retryable: false,
                source: Some(Box::new(e)),
            })?;
            cmd.current_dir(dir).env("AGENTFLOW_WORKSPACE", dir);
        }
        let mut child = crate::process::spawn_tied(cmd).await.map_err(|e| Error::Executor {
            message: format!("cannot start `{program}`: {e}"),
            retryable: false,
            source: Some(Box::new(e)),
        })?;
        let guard = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw));
        tracing::debug!(program = %program, pid = ?child.id(), "command started");

        if let Some(mut stdin) = child.stdin.take() {
            let prompt = render_prompt(&request);
            // The program may never read its stdin; a full pipe must not stall the run.
            tokio::spawn(async move {
                let _ = stdin.write_all(prompt.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let stdout = child
            .stdout
            .take()
            .map(|o| tokio::spawn(read_stdout(o, progress.clone(), cfg.summary_lines.max(1))));
        let stderr = child.stderr.take().map(|e| tokio::spawn(read_stderr(e, progress.clone())));

        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = cancel.cancelled() => None,
        };
        let Some(status) = status else {
            guard.signal(Signal::SIGTERM);
            if tokio::time::timeout(cfg.kill_grace, child.wait()).await.is_err() {
                tracing::debug!(program = %program, "still running after SIGTERM; sending SIGKILL");
            }
            guard.signal(Signal::SIGKILL);
            let _ = child.wait().await;
            drop(guard);
            for reader in [stdout.map(|h| h.abort_handle()), stderr.map(|h| h.abort_handle())]
                .into_iter()
                .flatten()
            {
                reader.abort();
            }
            return Err(Error::Cancelled {
                reason: format!("`{program}` was stopped (process group killed)"),
            });
        };
        // The program is done: nothing it started may outlive it or hold its pipes open.
        guard.signal(Signal::SIGKILL);
        let status = status.map_err(|e| Error::Executor {
            message: format!("cannot wait for `{program}`: {e}"),
            retryable: true,
            source: Some(Box::new(e)),
        })?;
        let collected = match stdout {
            Some(h) => {
                tokio::time::timeout(DRAIN, h).await.ok().and_then(|r| r.ok()).unwrap_or_default()
            }
            None => Collected::default(),
        };
        let last_err = match stderr {
            Some(h) => tokio::time::timeout(DRAIN, h).await.ok().and_then(|r| r.ok()).flatten(),
            None => None,
        };
        if status.success() {
            return Ok(RunOutcome {
                session_id: collected.session,
                summary: Vec::from(collected.tail).join("\n"),
                usage: Default::default(),
                needs_review: collected.review,
            });
        }
        let hint =
            last_err.map(|l| format!(": {}", crate::run::truncate(&l, 300))).unwrap_or_default();
        match status.code() {
            Some(code) => Err(Error::executor(
                format!("`{program}` exited with status {code}{hint}"),
                !cfg.permanent_exit_codes.contains(&code),
            )),
            None => Err(Error::executor(
                format!("`{program}` was killed by a signal ({status}){hint}"),
                true,
            )),
        }
    }
}
