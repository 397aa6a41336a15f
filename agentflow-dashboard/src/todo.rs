//! The board's Todo column.
//!
//! The engine's board holds the tasks it has touched; a task waiting in the tracker's Todo state
//! (while the engine is paused, busy, or between polls) is not among them. The dashboard asks
//! the source for its ready tasks now and then (cheaply for the local source, every 15 s by
//! default for a remote tracker) and shows them as Todo, telling WebSocket clients as they come
//! and go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::lifecycle::{Phase, State};
use agentflow_core::{Event, TaskId, TaskSource, TaskStatus, TaskUpdate};
use chrono::Utc;
use tokio::sync::broadcast;

use crate::control::EngineControl;

/// Most Todo tasks shown.
const LIMIT: usize = 100;

/// The Todo tasks last seen, and a channel of the dashboard's own `task:update` events.
#[derive(Clone)]
pub(crate) struct TodoWatch {
    tasks: Arc<Mutex<HashMap<TaskId, TaskUpdate>>>,
    events: broadcast::Sender<Event>,
}

impl Default for TodoWatch {
    fn default() -> Self {
        TodoWatch { tasks: Arc::default(), events: broadcast::channel(256).0 }
    }
}

impl TodoWatch {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The engine's board plus the Todo tasks it does not show (or shows older than the
    /// source's Todo), newest activity first.
    pub(crate) fn merge(&self, mut board: Vec<TaskUpdate>) -> Vec<TaskUpdate> {
        let todo = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for t in todo.values() {
            match board.iter_mut().find(|b| b.task == t.task) {
                Some(b) if b.at < t.at && !is_live(b) => *b = t.clone(),
                Some(_) => {}
                None => board.push(t.clone()),
            }
        }
        board.sort_by_key(|t| std::cmp::Reverse(t.at));
        board
    }

    pub(crate) fn spawn(
        &self,
        source: Arc<dyn TaskSource>,
        every: Duration,
        engine: Arc<dyn EngineControl>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match source.ready(LIMIT).await {
                    Ok(ready) => this.update(ready, engine.as_ref()),
                    Err(error) => tracing::debug!(%error, "dashboard cannot list Todo tasks"),
                }
                if Arc::strong_count(&this.tasks) == 1 {
                    // The dashboard is gone.
                    return;
                }
            }
        });
    }

    fn update(&self, ready: Vec<agentflow_core::Task>, engine: &dyn EngineControl) {
        let mut todo = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::with_capacity(ready.len());
        for task in ready.into_iter().filter(|t| t.status == TaskStatus::Todo) {
            let id = task.id.clone();
            let on_board = engine.task(&id);
            if on_board.as_ref().is_some_and(|b| is_live(b) || b.at >= task.updated_at) {
                continue;
            }
            let update = match todo.get(&id) {
                Some(prev) if prev.title == task.title && prev.key == task.key => prev.clone(),
                _ => {
                    let u = TaskUpdate {
                        task: id.clone(),
                        key: task.key.clone(),
                        title: task.title.clone(),
                        url: task.url.clone(),
                        status: TaskStatus::Todo,
                        state: State::at(Phase::Discovered, 0, 1),
                        job: None,
                        kind: None,
                        run: None,
                        attempt: 0,
                        max_attempts: 0,
                        started_at: None,
                        last_line: None,
                        cost_usd: on_board.map(|b| b.cost_usd).unwrap_or(0.0),
                        error: None,
                        at: task.updated_at.max(Utc::now()),
                    };
                    let _ = self.events.send(Event::TaskUpdate(u.clone()));
                    u
                }
            };
            seen.insert(id, update);
        }
        for (id, gone) in todo.iter() {
            if !seen.contains_key(id) && engine.task(id).is_none() {
                // Left Todo without the engine taking it (moved elsewhere by a person): tell
                // clients to drop the card.
                let mut u = gone.clone();
                u.status = TaskStatus::Other;
                u.at = Utc::now();
                let _ = self.events.send(Event::TaskUpdate(u));
            }
        }
        *todo = seen;
    }
}

fn is_live(u: &TaskUpdate) -> bool {
    !u.state.phase.is_terminal() && u.status != TaskStatus::Todo
}
