//! The end of an attempt, written down before it is carried out.
//!
//! Ending an attempt takes three writes nobody can make atomic: the task's status in the
//! tracker, the summary comment, and the job in the queue. A daemon killed between them used to
//! leave either a task moved to Done with no summary (the job, still running in the queue, was
//! taken over, found the task Done and ended quietly) or, before the status write, a finished
//! run that the next worker ran again. So the worker first stores the whole ending — status,
//! summary, how the job settles — keyed by task in the state store, carries it out, and clears
//! it once the summary is posted. A worker that takes the job over after the lease expired finds
//! the ending and finishes it instead of running the agent again; when the queue failed the job
//! for good instead (its last attempt's lease expired), reconciliation finds the task In Progress
//! with no live job and finishes the ending before it would enqueue the task again.
//!
//! A crash in the instant between posting the summary and clearing the record delivers the
//! summary twice; [`TaskSource::report`](crate::TaskSource::report) asks sources to post one
//! summary per run (Linear's does), so the tracker shows it once.

use serde::{Deserialize, Serialize};

use super::super::Shared;
use crate::error::Result;
use crate::job::JobId;
use crate::lifecycle::State;
use crate::task::{TaskId, TaskStatus};

/// How the job settles in the queue once the tracker is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "settle", rename_all = "snake_case")]
pub(crate) enum Settle {
    /// Completed: the run succeeded.
    Complete,
    /// Failed for good with this message.
    Fail {
        /// Recorded as the job's last error.
        message: String,
    },
}

/// An attempt's ending, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ending {
    /// The job the ending belongs to; only a later attempt of this job may finish it.
    pub(crate) job: JobId,
    /// The tracker status the task ends in.
    pub(crate) status: TaskStatus,
    /// The lifecycle state shown on the board afterwards.
    pub(crate) state: State,
    /// The run label of the summary report.
    pub(crate) run: String,
    /// The summary comment.
    pub(crate) body: String,
    /// What happens to the job.
    #[serde(flatten)]
    pub(crate) settle: Settle,
}

fn key(task: &TaskId) -> String {
    format!("ending:{task}")
}

/// Stores `ending` for `task`, replacing any earlier one.
pub(crate) async fn write(shared: &Shared, task: &TaskId, ending: &Ending) -> Result<()> {
    let value = serde_json::to_string(ending).map_err(|e| crate::error::Error::Backend {
        service: "engine",
        message: format!("cannot encode the end of the attempt: {e}"),
        retryable: false,
        source: Some(Box::new(e)),
    })?;
    shared.store.put_cursor(&key(task), &value).await
}

/// The ending stored for `task`, if any; it may belong to an earlier job (see the callers).
pub(crate) async fn load(shared: &Shared, task: &TaskId) -> Result<Option<Ending>> {
    let raw = shared.store.get_cursor(&key(task)).await?;
    Ok(raw.filter(|r| !r.is_empty()).and_then(|r| serde_json::from_str::<Ending>(&r).ok()))
}

/// Forgets the stored ending of `task`; a failure is logged (a stale ending is ignored later,
/// since it names a job that has ended).
pub(crate) async fn clear(shared: &Shared, task: &TaskId) {
    if let Err(error) = shared.store.put_cursor(&key(task), "").await {
        tracing::warn!(%error, "cannot clear the recorded end of the attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Phase;

    #[test]
    fn endings_round_trip_through_json() {
        for settle in [Settle::Complete, Settle::Fail { message: "boom \"x\"\n".into() }] {
            let ending = Ending {
                job: JobId::new(),
                status: TaskStatus::InReview,
                state: State::at(Phase::InReview, 1, 3),
                run: "run-1".into(),
                body: "✅ **Done**".into(),
                settle,
            };
            let json = serde_json::to_string(&ending).unwrap();
            assert_eq!(serde_json::from_str::<Ending>(&json).unwrap(), ending, "{json}");
        }
    }
}
