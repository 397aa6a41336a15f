//! What the dashboard needs from a running engine.

use agentflow_core::{Event, JobId, Result, Stats, TaskId, TaskUpdate};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// The engine as the dashboard sees it: live task state, stats, events and the controls behind
/// the buttons.
///
/// `agentflow_core::engine::EngineHandle` implements it; another implementation can put the
/// dashboard in front of something else (a remote engine, a replay).
#[async_trait]
pub trait EngineControl: Send + Sync + 'static {
    /// Stops new pickups; running jobs go on.
    fn pause(&self);
    /// Starts picking up jobs again.
    fn resume(&self);
    /// Whether pickups are paused.
    fn is_paused(&self) -> bool;
    /// Runs a failed or cancelled task again; returns the new job.
    async fn retry(&self, task: &TaskId) -> Result<JobId>;
    /// Cancels a task's live job; `false` when nothing was live.
    async fn cancel(&self, task: &TaskId) -> Result<bool>;
    /// Engine-wide numbers.
    async fn stats(&self) -> Result<Stats>;
    /// Every event from now on. A receiver that falls behind gets `Lagged`.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// The live state of every task the engine knows.
    fn tasks(&self) -> Vec<TaskUpdate>;
    /// The live state of one task.
    fn task(&self, id: &TaskId) -> Option<TaskUpdate>;
}

#[async_trait]
impl EngineControl for agentflow_core::engine::EngineHandle {
    fn pause(&self) {
        agentflow_core::engine::EngineHandle::pause(self)
    }
    fn resume(&self) {
        agentflow_core::engine::EngineHandle::resume(self)
    }
    fn is_paused(&self) -> bool {
        agentflow_core::engine::EngineHandle::is_paused(self)
    }
    async fn retry(&self, task: &TaskId) -> Result<JobId> {
        agentflow_core::engine::EngineHandle::retry(self, task).await
    }
    async fn cancel(&self, task: &TaskId) -> Result<bool> {
        agentflow_core::engine::EngineHandle::cancel(self, task).await
    }
    async fn stats(&self) -> Result<Stats> {
        agentflow_core::engine::EngineHandle::stats(self).await
    }
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        agentflow_core::engine::EngineHandle::subscribe(self)
    }
    fn tasks(&self) -> Vec<TaskUpdate> {
        agentflow_core::engine::EngineHandle::tasks(self)
    }
    fn task(&self, id: &TaskId) -> Option<TaskUpdate> {
        agentflow_core::engine::EngineHandle::task(self, id)
    }
}
