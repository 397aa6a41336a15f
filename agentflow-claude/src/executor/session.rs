//! One CLI process: send the prompt, stream its events, deliver live comments, stop it.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentflow_core::{
    CancellationToken, Error, Feedback, LogLevel, ProgressSender, RunOutcome, RunRequest, Usage,
};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::outcome::{Verdict, verdict};
use crate::config::ClaudeConfig;
use crate::error::ClaudeError;
use crate::event::{ResultEvent, StreamEvent, SystemEvent};
use crate::process::{agent_env, args, signal_group, spawn, sweep};
use crate::progress::ProgressMapper;

/// Lines of stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// Why a session ended without an outcome.
#[derive(Debug)]
pub(super) enum SessionEnd {
    /// Give up with this error.
    Failed(Error),
    /// The resumed session cannot continue: start a fresh one (the reason goes to the run log).
    StartFresh(String),
}

impl From<ClaudeError> for SessionEnd {
    fn from(e: ClaudeError) -> Self {
        SessionEnd::Failed(e.into())
    }
}

/// Why we are stopping the process early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
    McpFailed,
}

/// Everything one CLI process needs.
pub(super) struct SessionRun<'a> {
    pub(super) cfg: &'a ClaudeConfig,
    pub(super) request: &'a RunRequest,
    pub(super) workspace: &'a Path,
    pub(super) resume: Option<&'a str>,
    pub(super) progress: &'a ProgressSender,
    pub(super) cancel: &'a CancellationToken,
    pub(super) deadline: Instant,
    /// Whether to kill leftover processes in the workspace (only for workspaces under the
    /// configured root: a directory chosen elsewhere may be shared with other programs).
    pub(super) sweep: bool,
    /// Renders a comment that arrived during the run as a message for the live session.
    pub(super) deliver: &'a (dyn Fn(&Feedback) -> Result<String, ClaudeError> + Sync),
}

fn user_message(text: &str) -> String {
    let mut line =
        serde_json::json!({ "type": "user", "message": { "role": "user", "content": text } })
            .to_string();
    line.push('\n');
    line
}

fn interrupt_request() -> String {
    let mut line = serde_json::json!({
        "type": "control_request",
        "request_id": "agentflow-interrupt",
        "request": { "subtype": "interrupt" }
    })
    .to_string();
    line.push('\n');
    line
}

async fn write_line(stdin: &mut Option<ChildStdin>, line: &str) -> Result<(), ClaudeError> {
    let Some(pipe) = stdin.as_mut() else { return Ok(()) };
    let res = async {
        pipe.write_all(line.as_bytes()).await?;
        pipe.flush().await
    }
    .await;
    res.map_err(|source| ClaudeError::Io {
        context: "cannot write to the CLI's stdin".into(),
        source,
    })
}

/// Reads one line (lossy UTF-8); `None` at end of stream.
async fn next_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Option<String> {
    buf.clear();
    match reader.read_until(b'\n', buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(String::from_utf8_lossy(buf).into_owned()),
    }
}

async fn recv_inbox(
    inbox: &mut Option<UnboundedReceiver<Feedback>>,
    open: bool,
) -> Option<Feedback> {
    match inbox.as_mut() {
        Some(rx) if open => rx.recv().await,
        _ => std::future::pending().await,
    }
}

impl SessionRun<'_> {
    pub(super) async fn run(
        &self,
        prompt: &str,
        inbox: &mut Option<UnboundedReceiver<Feedback>>,
    ) -> Result<RunOutcome, SessionEnd> {
        let env = agent_env(self.cfg, std::env::vars());
        let argv = args(self.cfg, self.resume, &self.request.tool_servers);
        let mut child = spawn(&self.cfg.binary, &argv, &env, self.workspace).await?;
        let pgid = child.id().unwrap_or_default();
        tracing::info!(pid = pgid, resume = self.resume, "claude started");
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = child.stderr.take().map(|err| {
            let (tail, progress) = (stderr_tail.clone(), self.progress.clone());
            tokio::spawn(async move {
                let (mut reader, mut buf) = (BufReader::new(err), Vec::new());
                for _ in 0..1_000_000 {
                    let Some(line) = next_line(&mut reader, &mut buf).await else { break };
                    let line = line.trim_end().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    progress.log(LogLevel::Warn, format!("claude stderr: {line}"));
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
        });

        if let Err(e) = write_line(&mut stdin, &user_message(prompt)).await {
            // The CLI is already gone: its exit status and stderr say why (no `result`).
            self.progress.log(LogLevel::Error, e.to_string());
            stdin = None;
        }
        let mut state = StreamState { resumed: self.resume.is_some(), ..StreamState::default() };
        let mut stop: Option<Stop> = None;
        let mut mcp_failed = Vec::new();
        let stop_timer = tokio::time::sleep_until(self.deadline);
        tokio::pin!(stop_timer);
        let mut kill_phase = 0u8;

        if let Some(stdout) = stdout {
            let (mut reader, mut buf) = (BufReader::new(stdout), Vec::new());
            loop {
                tokio::select! {
                    line = next_line(&mut reader, &mut buf) => {
                        let Some(line) = line else { break };
                        if line.trim().is_empty() {
                            continue;
                        }
                        match state.handle(&line, self.progress) {
                            Handled::Result => {
                                // Close stdin at the first result. Comments written before it
                                // were either merged into the running turn (the CLI injects
                                // them mid-turn, without a result of their own) or are still
                                // in the pipe and run as turns of their own before the CLI
                                // exits; later ones go back to the engine as feedback (the
                                // closed inbox refuses them).
                                stdin = None;
                                if let Some(rx) = inbox.as_mut() {
                                    rx.close();
                                }
                            }
                            Handled::McpFailed(servers) if stop.is_none() => {
                                mcp_failed = servers;
                                stop = Some(Stop::McpFailed);
                                stdin = None;
                                signal_group(pgid, Signal::SIGTERM);
                                kill_phase = 1;
                                stop_timer.as_mut().reset(Instant::now() + self.cfg.kill_grace);
                            }
                            Handled::Other | Handled::McpFailed(_) => {}
                        }
                    }
                    comment = recv_inbox(inbox, stdin.is_some() && stop.is_none()) => match comment {
                        Some(comment) => {
                            let delivered = match (self.deliver)(&comment) {
                                Ok(text) => write_line(&mut stdin, &user_message(&text)).await,
                                Err(e) => Err(e),
                            };
                            match delivered {
                                Ok(()) => self.progress.log(
                                    LogLevel::Info,
                                    format!("delivered a comment by {} into the live session", comment.author),
                                ),
                                Err(e) => self.progress.log(
                                    LogLevel::Error,
                                    format!("could not deliver a comment by {}: {e}", comment.author),
                                ),
                            }
                        }
                        None => *inbox = None,
                    },
                    () = self.cancel.cancelled(), if stop.is_none() => {
                        stop = Some(Stop::Cancelled);
                        self.begin_stop(&mut stdin, stop_timer.as_mut()).await;
                    }
                    () = &mut stop_timer, if kill_phase < 2 => {
                        if stop.is_none() {
                            stop = Some(Stop::TimedOut);
                            self.begin_stop(&mut stdin, stop_timer.as_mut()).await;
                        } else if kill_phase == 0 {
                            tracing::info!(pgid, "SIGTERM to the CLI's process group");
                            signal_group(pgid, Signal::SIGTERM);
                            kill_phase = 1;
                            stop_timer.as_mut().reset(Instant::now() + self.cfg.kill_grace);
                        } else {
                            tracing::warn!(pgid, "SIGKILL to the CLI's process group");
                            signal_group(pgid, Signal::SIGKILL);
                            break;
                        }
                    }
                }
            }
        }
        drop(stdin);
        let status = self.reap(&mut child, pgid).await;
        let swept = if self.sweep { sweep(self.workspace).await } else { 0 };
        if swept > 0 {
            self.progress.log(
                LogLevel::Warn,
                format!("killed {swept} leftover process(es) in the workspace"),
            );
        }
        if let Some(task) = stderr_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        tracing::info!(status = %status, "claude exited");
        match stop {
            Some(Stop::Cancelled) => {
                return Err(SessionEnd::Failed(Error::Cancelled {
                    reason: "the run was cancelled".into(),
                }));
            }
            Some(Stop::TimedOut) => {
                return Err(SessionEnd::Failed(Error::Timeout { after: self.request.timeout }));
            }
            Some(Stop::McpFailed) => {
                return Err(ClaudeError::McpFailed { servers: mcp_failed }.into());
            }
            None => {}
        }
        let Some(result) = state.last_result.take() else {
            let tail = stderr_tail.lock().unwrap_or_else(PoisonError::into_inner);
            let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
            return Err(ClaudeError::NoResult { status, stderr_tail: tail.join(" | ") }.into());
        };
        if let Some(denied) = Some(result.denied_tools()).filter(|d| !d.is_empty()) {
            self.progress
                .log(LogLevel::Warn, format!("permission denied for: {}", denied.join(", ")));
        }
        let session = state.session_id.clone().or_else(|| result.session_id.clone());
        match verdict(
            &result,
            state.usage,
            session,
            state.resumed,
            state.saw_init,
            state.rate_limit_wait,
        ) {
            Verdict::Done(outcome) => Ok(outcome),
            Verdict::StartFresh(reason) => Err(SessionEnd::StartFresh(reason)),
            Verdict::Failed(e) => Err(e.into()),
        }
    }

    /// Asks the CLI to stop the turn, closes stdin, and arms the SIGTERM timer.
    async fn begin_stop(
        &self,
        stdin: &mut Option<ChildStdin>,
        timer: std::pin::Pin<&mut tokio::time::Sleep>,
    ) {
        tracing::info!("interrupting the CLI");
        let _ = write_line(stdin, &interrupt_request()).await;
        *stdin = None;
        timer.reset(Instant::now() + self.cfg.cancel_grace);
    }

    /// Waits for the process to exit (SIGKILL after `kill_grace`); returns its status.
    async fn reap(&self, child: &mut Child, pgid: u32) -> String {
        let status = match tokio::time::timeout(self.cfg.kill_grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                signal_group(pgid, Signal::SIGKILL);
                child.wait().await
            }
        };
        match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown: {e}"),
        }
    }
}

/// What one stdout line meant for the loop.
enum Handled {
    Result,
    McpFailed(Vec<String>),
    Other,
}

/// What the stream told us so far.
#[derive(Default)]
struct StreamState {
    mapper: ProgressMapper,
    session_id: Option<String>,
    saw_init: bool,
    resumed: bool,
    usage: Usage,
    last_result: Option<ResultEvent>,
    /// The delay the CLI chose before its last retry of a 429 (from `retry-after`).
    rate_limit_wait: Option<Duration>,
}

impl StreamState {
    fn handle(&mut self, line: &str, progress: &ProgressSender) -> Handled {
        let event = match StreamEvent::parse(line) {
            Ok(event) => event,
            Err(e) => {
                progress.log(LogLevel::Warn, e.to_string());
                return Handled::Other;
            }
        };
        for p in self.mapper.map(&event) {
            progress.send(p);
        }
        match event {
            StreamEvent::System(SystemEvent::Init(init)) => {
                self.saw_init = true;
                self.session_id = Some(init.session_id.clone());
                let failed: Vec<String> = init.failed_mcp_servers().map(str::to_owned).collect();
                if !failed.is_empty() {
                    return Handled::McpFailed(failed);
                }
                Handled::Other
            }
            StreamEvent::Result(result) => {
                self.usage += result.core_usage();
                progress.log(
                    LogLevel::Info,
                    format!(
                        "turn finished: {} ({}), {} turns, ${:.4}",
                        result.subtype,
                        result.terminal_reason.as_deref().unwrap_or("?"),
                        result.num_turns,
                        result.run_cost_usd()
                    ),
                );
                self.last_result = Some(*result);
                Handled::Result
            }
            StreamEvent::System(SystemEvent::ApiRetry(retry)) => {
                if retry.error_status == Some(429) {
                    self.rate_limit_wait = Some(Duration::from_millis(retry.retry_delay_ms));
                }
                Handled::Other
            }
            StreamEvent::Unknown(raw) => {
                tracing::debug!(event = %raw, "unknown stream-json event");
                Handled::Other
            }
            _ => Handled::Other,
        }
    }
}
