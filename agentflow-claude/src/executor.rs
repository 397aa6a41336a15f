//! [`ClaudeExecutor`]: the [`Executor`] that runs the Claude Code CLI on a task.

mod outcome;
mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentflow_core::{
    CancellationToken, Error, Executor, Feedback, JobKind, LogLevel, ProgressSender, Result,
    RunOutcome, RunRequest, async_trait,
};
use tracing::Instrument;

use crate::config::ClaudeConfig;
use crate::error::ClaudeError;
use crate::process::mcp_tool_names;
use crate::prompt::{PromptContext, Prompts};
use crate::workspace::{Workspaces, transcript_path};

use session::{SessionEnd, SessionRun};

/// Runs the Claude Code CLI headless on a task: one process per run, in the task's workspace,
/// in streaming input mode (see the crate docs).
///
/// ```
/// use agentflow_claude::{ClaudeConfig, ClaudeExecutor};
/// let exec = ClaudeExecutor::new(ClaudeConfig::default()).unwrap();
/// assert!(exec.workspaces().path_for("ENG-1").ends_with("ENG-1"));
/// ```
#[derive(Debug, Clone)]
pub struct ClaudeExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ClaudeConfig,
    prompts: Prompts,
    workspaces: Workspaces,
}

impl ClaudeExecutor {
    /// An executor with `cfg`. Fails when a prompt template does not compile (the error names
    /// the file and line).
    ///
    /// The CLI dies with the daemon; whatever it started and a daemon killed outright left
    /// running under the workspace root is killed here, so a restarted daemon does not work
    /// beside its predecessor's agents (see [`sweep_orphans`](crate::sweep_orphans)).
    pub fn new(cfg: ClaudeConfig) -> Result<ClaudeExecutor> {
        let prompts = Prompts::load(&cfg.prompts)?;
        let workspaces = Workspaces::new(cfg.workspace.clone());
        let executor = ClaudeExecutor { inner: Arc::new(Inner { cfg, prompts, workspaces }) };
        executor.sweep_orphans();
        Ok(executor)
    }

    /// Kills the processes a dead daemon left running under the workspace root (see
    /// [`sweep_orphans`](crate::sweep_orphans)); returns how many. Runs at [`new`](Self::new)
    /// and before every session.
    pub fn sweep_orphans(&self) -> usize {
        let root = std::path::absolute(&self.inner.cfg.workspace.root).unwrap_or_default();
        crate::process::sweep_orphans(&root)
    }

    /// The configuration.
    pub fn config(&self) -> &ClaudeConfig {
        &self.inner.cfg
    }

    /// The task workspaces (paths, pruning).
    pub fn workspaces(&self) -> &Workspaces {
        &self.inner.workspaces
    }

    /// The session transcript file (JSON lines) of `session` run in `workspace`, for the
    /// dashboard's "session file" view: under `config_dir`, else `$HOME/.claude`.
    pub fn transcript_path(&self, workspace: &Path, session: &str) -> Option<PathBuf> {
        let dir = match &self.inner.cfg.config_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".claude"),
        };
        Some(transcript_path(&dir, workspace, session))
    }

    async fn workspace_for(&self, request: &RunRequest) -> Result<PathBuf, ClaudeError> {
        match &request.workspace {
            Some(path) => self.inner.workspaces.prepare_at(path, &request.task.key).await,
            None => self.inner.workspaces.prepare(&request.task.key).await,
        }
    }

    fn render(
        &self,
        kind: JobKind,
        request: &RunRequest,
        feedback: &[Feedback],
        workspace: &Path,
    ) -> Result<String, ClaudeError> {
        let ctx = PromptContext {
            task: (&request.task).into(),
            attempt: request.attempt,
            previous_error: request.previous_error.as_deref(),
            feedback: feedback.iter().map(Into::into).collect(),
            tools: mcp_tool_names(&request.tool_servers),
            workspace: workspace.display().to_string(),
        };
        self.inner.prompts.render(kind, &ctx)
    }

    async fn run_inner(
        &self,
        mut request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let workspace = self.workspace_for(&request).await?;
        let mut prompt = self.render(request.kind, &request, &request.feedback, &workspace)?;
        let mut resume = request.resume_session.clone();
        let mut inbox = request.inbox.take();
        let deadline = tokio::time::Instant::now() + request.timeout;
        self.sweep_orphans();
        // At most two sessions: the requested one and, when it cannot be resumed, a fresh one.
        for _ in 0..2 {
            let run = SessionRun {
                cfg: &self.inner.cfg,
                request: &request,
                workspace: &workspace,
                resume: resume.as_deref(),
                progress: &progress,
                cancel: &cancel,
                deadline,
                sweep: workspace.starts_with(
                    std::path::absolute(&self.inner.cfg.workspace.root).unwrap_or_default(),
                ),
                deliver: &|comment: &Feedback| {
                    self.render(
                        JobKind::Feedback,
                        &request,
                        std::slice::from_ref(comment),
                        &workspace,
                    )
                },
            };
            match run.run(&prompt, &mut inbox).await {
                Ok(outcome) => return Ok(outcome),
                Err(SessionEnd::Failed(e)) => return Err(e),
                Err(SessionEnd::StartFresh(reason)) => {
                    progress.log(LogLevel::Warn, format!("{reason}; starting a fresh session"));
                    tracing::warn!(reason = %reason, "starting a fresh session");
                    resume = None;
                    // A fresh session has no memory of the task: lead with the task itself.
                    prompt = match request.kind {
                        JobKind::Feedback => format!(
                            "{}\n\n{}",
                            self.render(JobKind::Execute, &request, &[], &workspace)?,
                            prompt
                        ),
                        _ => prompt,
                    };
                    request.resume_session = None;
                }
            }
        }
        Err(Error::executor(
            "the session could not be resumed, and a fresh one could not start either",
            true,
        ))
    }
}

#[async_trait]
impl Executor for ClaudeExecutor {
    async fn run(
        &self,
        request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let span = tracing::info_span!(
            "claude_run",
            task = %request.task.key,
            job = %request.job,
            run = %request.run,
            attempt = request.attempt,
            kind = request.kind.as_str(),
        );
        self.run_inner(request, progress, cancel).instrument(span).await
    }

    /// Comments are written into the CLI's stdin as user messages until its first result.
    fn accepts_comments(&self) -> bool {
        true
    }
}
