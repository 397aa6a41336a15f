//! Property tests of the lifecycle state machine over arbitrary event sequences.

use agentflow_core::TaskStatus;
use agentflow_core::lifecycle::{LifecycleEvent as E, Phase, State, next};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = E> {
    prop_oneof![
        Just(E::Claim),
        Just(E::Enqueue),
        Just(E::Start),
        any::<bool>().prop_map(|review| E::Succeed { review }),
        any::<bool>().prop_map(|retryable| E::Fail { retryable }),
        Just(E::Due),
        Just(E::Feedback),
        Just(E::Approve),
        Just(E::Cancel),
        Just(E::ManualRetry),
    ]
}

/// Applies `events`, skipping the ones that do not apply; returns every state visited.
fn walk(max_attempts: u32, events: &[E]) -> Vec<State> {
    let mut s = State::new(max_attempts);
    let mut seen = vec![s];
    for e in events {
        if let Ok(n) = next(s, *e) {
            s = n;
            seen.push(s);
        }
    }
    seen
}

fn expected_status(phase: Phase) -> TaskStatus {
    match phase {
        Phase::Discovered => TaskStatus::Todo,
        Phase::Claimed | Phase::Queued | Phase::Running | Phase::RetryWait => {
            TaskStatus::InProgress
        }
        Phase::InReview | Phase::FeedbackQueued => TaskStatus::InReview,
        Phase::Done => TaskStatus::Done,
        Phase::Failed | Phase::Cancelled => TaskStatus::Failed,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No sequence panics or leaves the defined phases, and every state maps to exactly one
    /// managed status (never `Other`), the one its phase names.
    #[test]
    fn every_reachable_state_is_defined_and_maps_to_one_status(
        max in 0u32..6,
        events in prop::collection::vec(event(), 0..80),
    ) {
        for s in walk(max, &events) {
            prop_assert!(Phase::ALL.contains(&s.phase));
            let st = s.status();
            prop_assert_eq!(st, expected_status(s.phase));
            prop_assert_eq!(TaskStatus::MANAGED.iter().filter(|m| **m == st).count(), 1);
            prop_assert_eq!(s.status(), st, "status is a function of the state");
        }
    }

    /// Attempts never exceed max_attempts (at least 1), whatever happens.
    #[test]
    fn attempts_never_exceed_max_attempts(
        max in 0u32..6,
        events in prop::collection::vec(event(), 0..120),
    ) {
        for s in walk(max, &events) {
            prop_assert!(s.max_attempts == max.max(1));
            prop_assert!(s.attempts <= s.max_attempts, "{:?}", s);
        }
    }

    /// Done absorbs every event; Failed and Cancelled absorb every event but a manual retry.
    #[test]
    fn terminal_phases_absorb(
        max in 1u32..5,
        attempts in 0u32..5,
        phase in prop::sample::select(vec![Phase::Done, Phase::Failed, Phase::Cancelled]),
        events in prop::collection::vec(event(), 1..40),
    ) {
        let start = State::at(phase, attempts, max);
        for e in events {
            let n = next(start, e);
            if e == E::ManualRetry && phase != Phase::Done {
                let n = n.expect("manual retry applies to failed and cancelled tasks");
                prop_assert_eq!(n.phase, Phase::Queued);
                prop_assert_eq!(n.attempts, 0);
            } else {
                prop_assert_eq!(n, Ok(start));
            }
        }
    }

    /// Applying the event that led to a state again changes nothing (redelivery is harmless).
    #[test]
    fn re_applying_an_event_is_idempotent(
        max in 0u32..5,
        events in prop::collection::vec(event(), 0..60),
    ) {
        let mut s = State::new(max);
        for e in events {
            if let Ok(n) = next(s, e) {
                prop_assert_eq!(next(n, e), Ok(n), "{:?} then {:?} again from {:?}", e, e, s);
                s = n;
            }
        }
    }

    /// An event that does not apply names the phase and the event, and the state stays usable.
    #[test]
    fn invalid_transitions_are_errors_not_panics(
        max in 0u32..5,
        events in prop::collection::vec(event(), 0..60),
    ) {
        let mut s = State::new(max);
        for e in events {
            match next(s, e) {
                Ok(n) => s = n,
                Err(err) => {
                    prop_assert_eq!(err.from, s.phase);
                    prop_assert_eq!(err.event, e);
                    prop_assert!(!err.to_string().is_empty());
                }
            }
        }
    }

    /// A task with attempts left always gets another one after a retryable failure; the last
    /// one fails for good.
    #[test]
    fn retries_stop_exactly_at_max_attempts(max in 1u32..6) {
        let mut s = next(next(State::new(max), E::Claim).unwrap(), E::Enqueue).unwrap();
        for attempt in 1..=max {
            s = next(s, E::Start).unwrap();
            prop_assert_eq!(s.phase, Phase::Running);
            prop_assert_eq!(s.attempts, attempt);
            s = next(s, E::Fail { retryable: true }).unwrap();
            if attempt < max {
                prop_assert_eq!(s.phase, Phase::RetryWait);
                s = next(s, E::Due).unwrap();
            } else {
                prop_assert_eq!(s.phase, Phase::Failed);
            }
        }
        prop_assert_eq!(s.status(), TaskStatus::Failed);
    }
}

#[test]
fn a_permanent_failure_fails_at_once() {
    let s = [E::Claim, E::Enqueue, E::Start, E::Fail { retryable: false }]
        .into_iter()
        .try_fold(State::new(3), next)
        .unwrap();
    assert_eq!(s.phase, Phase::Failed);
    assert_eq!(s.attempts, 1);
}

#[test]
fn feedback_resets_attempts_and_returns_through_running() {
    let s = [E::Claim, E::Enqueue, E::Start, E::Succeed { review: true }, E::Feedback]
        .into_iter()
        .try_fold(State::new(2), next)
        .unwrap();
    assert_eq!((s.phase, s.attempts, s.status()), (Phase::FeedbackQueued, 0, TaskStatus::InReview));
    let s = next(s, E::Start).unwrap();
    assert_eq!((s.phase, s.status()), (Phase::Running, TaskStatus::InProgress));
    assert_eq!(next(s, E::Succeed { review: false }).unwrap().phase, Phase::Done);
}
