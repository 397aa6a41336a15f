//! The [`Executor`] trait: runs an agent (or any program) on a task.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::run::{ProgressSender, RunOutcome, RunRequest, ToolServer};
use crate::store::RunId;
use crate::task::Task;

/// Runs one attempt of a task.
///
/// # Contract
/// - Reports what happens through `progress` as it happens (the session id as soon as it is
///   known, so a crash can still resume).
/// - Returns when the work is done: `Ok(outcome)` on success, or an
///   [`Error::Executor`](crate::Error::Executor) whose `retryable` flag says whether another
///   attempt may succeed.
/// - When `cancel` fires, stops promptly, leaves no process behind, and returns
///   [`Error::Cancelled`](crate::Error::Cancelled). The engine fires it on timeout, shutdown,
///   manual cancel, and when the task leaves In Progress.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs the request to completion or cancellation.
    async fn run(
        &self,
        request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>;

    /// Whether [`run`](Executor::run) reads [`RunRequest::inbox`]: delivers comments that arrive
    /// during the run into the live session, and closes the inbox once it can take no more.
    /// The engine only hands an inbox to executors that say so; for the others, such comments
    /// wait and become feedback when the run ends in review. Default: `false`.
    fn accepts_comments(&self) -> bool {
        false
    }
}

/// Grants an agent tools for one run (e.g. the issue-scoped Linear MCP server) and takes them
/// back when the run ends.
///
/// The engine calls [`grant`](ToolProvider::grant) before each run and
/// [`revoke`](ToolProvider::revoke) after it, whatever the outcome; the servers are passed to the
/// executor in [`RunRequest::tool_servers`](crate::RunRequest::tool_servers).
#[async_trait]
pub trait ToolProvider: Send + Sync + 'static {
    /// Tool servers for `run` on `task`, valid until revoked or until `ttl` passes.
    async fn grant(
        &self,
        task: &Task,
        run: RunId,
        ttl: std::time::Duration,
    ) -> Result<Vec<ToolServer>>;

    /// Revokes every credential granted for `run`.
    async fn revoke(&self, run: RunId);
}
