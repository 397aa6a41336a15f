//! The task lifecycle: a pure state machine, the only place that decides a task's next status.
//!
//! ```text
//! Discovered ─claim→ Claimed ─enqueue→ Queued ─start→ Running ─succeed(review)→ InReview ─feedback→ FeedbackQueued ─start→ Running
//!                                                      │  └─succeed(no review)→ Done        └─approve→ Done
//!                                                      ├─fail, attempts left→ RetryWait ─due→ Queued
//!                                                      ├─fail, none left→ Failed ─manual retry→ Queued
//!                                                      └─cancel→ Cancelled ─manual retry→ Queued
//! ```
//!
//! Transitions are idempotent: applying the event that led to the current phase again returns
//! the same state (a redelivered event changes nothing). Terminal phases (`Done`, `Failed`,
//! `Cancelled`) absorb every event except an explicit [`LifecycleEvent::ManualRetry`] of a failed
//! or cancelled task.
//!
//! ```
//! use agentflow_core::lifecycle::{next, LifecycleEvent as E, Phase, State};
//! let s = State::new(3);
//! let s = next(s, E::Claim).unwrap();
//! let s = next(s, E::Enqueue).unwrap();
//! let s = next(s, E::Start).unwrap();
//! let s = next(s, E::Succeed { review: false }).unwrap();
//! assert_eq!(s.phase, Phase::Done);
//! assert_eq!(s.status(), agentflow_core::TaskStatus::Done);
//! ```

use serde::{Deserialize, Serialize};

use crate::task::TaskStatus;

/// Where a task is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Seen in Todo.
    Discovered,
    /// Moved to In Progress by us.
    Claimed,
    /// A job is queued.
    Queued,
    /// An attempt is running.
    Running,
    /// An attempt failed; the next one waits for its backoff.
    RetryWait,
    /// Waiting for a human.
    InReview,
    /// A human commented; a feedback job is queued.
    FeedbackQueued,
    /// Finished.
    Done,
    /// Failed after the last attempt.
    Failed,
    /// Cancelled (by a person, or because the task left In Progress).
    Cancelled,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 10] = [
        Phase::Discovered,
        Phase::Claimed,
        Phase::Queued,
        Phase::Running,
        Phase::RetryWait,
        Phase::InReview,
        Phase::FeedbackQueued,
        Phase::Done,
        Phase::Failed,
        Phase::Cancelled,
    ];

    /// Whether the phase is terminal.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }

    /// The tracker status this phase shows. Cancelled shows as Failed: the engine writes it only
    /// for cancels a person asked for in agentflow, never for a task a person moved elsewhere.
    pub fn status(self) -> TaskStatus {
        match self {
            Phase::Discovered => TaskStatus::Todo,
            Phase::Claimed | Phase::Queued | Phase::Running | Phase::RetryWait => {
                TaskStatus::InProgress
            }
            Phase::InReview | Phase::FeedbackQueued => TaskStatus::InReview,
            Phase::Done => TaskStatus::Done,
            Phase::Failed | Phase::Cancelled => TaskStatus::Failed,
        }
    }
}

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LifecycleEvent {
    /// We moved it from Todo to In Progress.
    Claim,
    /// A job was enqueued for it.
    Enqueue,
    /// A worker started an attempt.
    Start,
    /// The attempt succeeded; `review` says whether a human must review.
    Succeed {
        /// Whether the review gate holds it in review.
        review: bool,
    },
    /// The attempt failed (error or timeout); `retryable` is false for a permanent failure.
    Fail {
        /// Whether the error may go away on another attempt.
        retryable: bool,
    },
    /// The backoff of a retry wait is over.
    Due,
    /// A human commented on the task in review.
    Feedback,
    /// A human approved (moved the reviewed task to Done).
    Approve,
    /// The run was cancelled.
    Cancel,
    /// A person asked to run a failed or cancelled task again.
    ManualRetry,
}

/// A task's lifecycle state: its phase and attempt accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    /// The phase.
    pub phase: Phase,
    /// Attempts started in the current round (reset by feedback and manual retry).
    pub attempts: u32,
    /// Attempts allowed per round.
    pub max_attempts: u32,
}

impl State {
    /// A freshly discovered task allowed `max_attempts` attempts (at least 1).
    pub fn new(max_attempts: u32) -> Self {
        State { phase: Phase::Discovered, attempts: 0, max_attempts: max_attempts.max(1) }
    }

    /// A state in `phase` with `attempts` used, e.g. rebuilt from the queue after a restart.
    pub fn at(phase: Phase, attempts: u32, max_attempts: u32) -> Self {
        let max_attempts = max_attempts.max(1);
        State { phase, attempts: attempts.min(max_attempts), max_attempts }
    }

    /// The tracker status this state shows.
    pub fn status(&self) -> TaskStatus {
        self.phase.status()
    }

    /// Whether another attempt is allowed.
    pub fn attempts_left(&self) -> bool {
        self.attempts < self.max_attempts
    }
}

/// An event that does not apply to the state it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid lifecycle transition: {event:?} in phase {from:?}")]
pub struct InvalidTransition {
    /// The phase the task was in.
    pub from: Phase,
    /// The event that does not apply.
    pub event: LifecycleEvent,
}

/// The next state after `event`, or why `event` does not apply.
pub fn next(state: State, event: LifecycleEvent) -> Result<State, InvalidTransition> {
    use LifecycleEvent as E;
    use Phase as P;

    let to = |phase| Ok(State { phase, ..state });
    let invalid = Err(InvalidTransition { from: state.phase, event });

    match (state.phase, event) {
        // Terminal phases absorb everything but a manual retry of a failed or cancelled task.
        (P::Failed | P::Cancelled, E::ManualRetry) => {
            Ok(State { phase: P::Queued, attempts: 0, ..state })
        }
        (p, _) if p.is_terminal() => Ok(state),

        (P::Discovered, E::Claim) => to(P::Claimed),
        (P::Claimed, E::Claim) => Ok(state),
        // A task can be queued straight from Discovered when it was claimed elsewhere
        // (reconciliation of an In Progress task with no live job).
        (P::Discovered | P::Claimed, E::Enqueue) => to(P::Queued),
        (P::Queued, E::Enqueue) => Ok(state),

        (P::Queued | P::FeedbackQueued, E::Start) => {
            if state.attempts_left() {
                Ok(State { phase: P::Running, attempts: state.attempts + 1, ..state })
            } else {
                to(P::Failed)
            }
        }
        (P::Running, E::Start) => Ok(state),

        (P::Running, E::Succeed { review: true }) => to(P::InReview),
        (P::InReview, E::Succeed { review: true }) => Ok(state),
        (P::Running, E::Succeed { review: false }) => to(P::Done),
        (P::Running, E::Fail { retryable }) => {
            if retryable && state.attempts_left() {
                to(P::RetryWait)
            } else {
                to(P::Failed)
            }
        }
        (P::RetryWait, E::Due) => to(P::Queued),
        (P::Queued, E::Due | E::ManualRetry) => Ok(state),
        (P::RetryWait, E::Fail { .. }) => Ok(state),

        (P::InReview, E::Feedback) => Ok(State { phase: P::FeedbackQueued, attempts: 0, ..state }),
        (P::FeedbackQueued, E::Feedback) => Ok(state),
        (P::InReview | P::FeedbackQueued, E::Approve) => to(P::Done),

        (
            P::Discovered | P::Claimed | P::Queued | P::Running | P::RetryWait | P::FeedbackQueued,
            E::Cancel,
        ) => to(P::Cancelled),

        _ => invalid,
    }
}
