//! Watches the engine's events for runs that end and records their durations in a histogram.
//!
//! The store has every run but no cheap way to bucket durations over 100k of them at each
//! scrape, so the histogram counts the runs that ended since this process started, like any
//! in-process Prometheus histogram.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::lifecycle::Phase;
use agentflow_core::{Event, RunId, RunStatus, StateStore, TaskId};
use tokio::sync::broadcast::error::RecvError;

use super::Sample;
use crate::control::EngineControl;

/// Upper bounds of the run duration buckets, in seconds: agent runs take seconds to hours.
const BUCKETS: [f64; 13] =
    [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0];
/// How many ended runs are remembered to avoid counting one twice.
const SEEN_CAP: usize = 10_000;
/// How often a run that was seen ending but not yet recorded as finished is looked up again.
const RECHECK: Duration = Duration::from_secs(2);
/// How many look-ups before giving up on such a run.
const MAX_TRIES: u32 = 30;

#[derive(Default)]
struct Histogram {
    /// Counts per outcome, one per bucket (not cumulative) plus the overflow.
    counts: HashMap<RunStatus, ([u64; BUCKETS.len() + 1], f64)>,
}

#[derive(Default)]
struct Inner {
    hist: Histogram,
    current: HashMap<TaskId, RunId>,
    pending: HashMap<RunId, u32>,
    seen: HashSet<RunId>,
    seen_order: VecDeque<RunId>,
}

/// Records ended runs' durations by outcome.
#[derive(Clone, Default)]
pub(crate) struct RunCollector {
    inner: Arc<Mutex<Inner>>,
}

impl RunCollector {
    /// Follows `engine`'s events until the engine's channel closes.
    pub(crate) fn spawn(&self, engine: &Arc<dyn EngineControl>, store: Arc<dyn StateStore>) {
        let mut rx = engine.subscribe();
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RECHECK);
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(Event::TaskUpdate(u)) => this.on_update(&u.task, u.run, u.state.phase),
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {}
                }
                this.check_pending(store.as_ref()).await;
            }
        });
    }

    fn on_update(&self, task: &TaskId, run: Option<RunId>, phase: Phase) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let running = if phase == Phase::Running { run } else { None };
        let previous = inner.current.remove(task);
        if let Some(r) = running {
            inner.current.insert(task.clone(), r);
        }
        let ended_previous = previous.filter(|p| Some(*p) != running);
        let ended_now = run.filter(|_| running.is_none());
        for ended in ended_previous.into_iter().chain(ended_now) {
            if !inner.seen.contains(&ended) {
                inner.pending.entry(ended).or_insert(0);
            }
        }
    }

    async fn check_pending(&self, store: &dyn StateStore) {
        let ids: Vec<RunId> = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.pending.keys().copied().collect()
        };
        for id in ids {
            let run = store.get_run(id).await.ok().flatten();
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match run {
                Some(run) if run.status != RunStatus::Running => {
                    inner.pending.remove(&id);
                    if inner.seen.insert(id) {
                        inner.seen_order.push_back(id);
                        if inner.seen_order.len() > SEEN_CAP
                            && let Some(old) = inner.seen_order.pop_front()
                        {
                            inner.seen.remove(&old);
                        }
                        let secs = run
                            .finished_at
                            .map(|f| (f - run.started_at).num_milliseconds().max(0) as f64 / 1e3)
                            .unwrap_or(0.0);
                        inner.hist.observe(run.status, secs);
                    }
                }
                _ => {
                    let tries = inner.pending.entry(id).or_insert(0);
                    *tries += 1;
                    if *tries > MAX_TRIES {
                        inner.pending.remove(&id);
                    }
                }
            }
        }
    }

    /// Appends the histogram's series.
    pub(crate) fn samples(&self, out: &mut Vec<Sample>) {
        const NAME: &str = "agentflow_run_duration_seconds";
        const HELP: &str = "Duration of runs that ended since the process started, by outcome.";
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut outcomes: Vec<_> = inner.hist.counts.iter().collect();
        outcomes.sort_by_key(|(s, _)| s.as_str());
        if outcomes.is_empty() {
            // An empty family still tells a scraper the metric exists.
            out.push(
                Sample::histogram_series(NAME, HELP, "_count", 0.0).label("outcome", "succeeded"),
            );
            out.push(
                Sample::histogram_series(NAME, HELP, "_sum", 0.0).label("outcome", "succeeded"),
            );
            return;
        }
        for (status, (counts, sum)) in outcomes {
            let mut cumulative = 0;
            for (i, le) in
                BUCKETS.iter().map(|b| format!("{b}")).chain(["+Inf".to_owned()]).enumerate()
            {
                cumulative += counts[i];
                out.push(
                    Sample::histogram_series(NAME, HELP, "_bucket", cumulative as f64)
                        .label("outcome", status.as_str())
                        .label("le", le),
                );
            }
            out.push(
                Sample::histogram_series(NAME, HELP, "_sum", *sum)
                    .label("outcome", status.as_str()),
            );
            out.push(
                Sample::histogram_series(NAME, HELP, "_count", cumulative as f64)
                    .label("outcome", status.as_str()),
            );
        }
    }
}

impl Histogram {
    fn observe(&mut self, status: RunStatus, secs: f64) {
        let (counts, sum) = self.counts.entry(status).or_insert(([0; BUCKETS.len() + 1], 0.0));
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        counts[i] += 1;
        *sum += secs;
    }
}
