//! The live board: the last [`TaskUpdate`] of every task the engine touched.

use std::collections::HashMap;

use chrono::Utc;

use super::{Shared, lock};
use crate::event::{Event, TaskUpdate};
use crate::lifecycle::{Phase, State};
use crate::task::{Task, TaskId};

/// Task snapshots, bounded: when full, the oldest finished tasks are dropped first.
#[derive(Debug, Default)]
pub(crate) struct Board {
    tasks: HashMap<TaskId, TaskUpdate>,
}

impl Board {
    pub(crate) fn all(&self) -> Vec<TaskUpdate> {
        let mut v: Vec<TaskUpdate> = self.tasks.values().cloned().collect();
        v.sort_by_key(|u| std::cmp::Reverse(u.at));
        v
    }

    pub(crate) fn get(&self, id: &TaskId) -> Option<TaskUpdate> {
        self.tasks.get(id).cloned()
    }

    fn prune(&mut self, capacity: usize) {
        if self.tasks.len() <= capacity {
            return;
        }
        let mut finished: Vec<(chrono::DateTime<Utc>, TaskId)> = self
            .tasks
            .values()
            .filter(|u| u.state.phase.is_terminal() || u.state.phase == Phase::InReview)
            .map(|u| (u.at, u.task.clone()))
            .collect();
        finished.sort();
        let excess = self.tasks.len() - capacity;
        for (_, id) in finished.into_iter().take(excess) {
            self.tasks.remove(&id);
        }
    }
}

/// A fresh snapshot of `task`.
fn snapshot(task: &Task, max_attempts: u32) -> TaskUpdate {
    TaskUpdate {
        task: task.id.clone(),
        key: task.key.clone(),
        title: task.title.clone(),
        url: task.url.clone(),
        status: task.status,
        state: State::new(max_attempts),
        job: None,
        kind: None,
        run: None,
        attempt: 0,
        max_attempts,
        started_at: None,
        last_line: None,
        cost_usd: 0.0,
        error: None,
        at: Utc::now(),
    }
}

impl Shared {
    /// Updates `task`'s snapshot (creating it from `task` when new) and emits `task:update`.
    pub(crate) fn touch(&self, task: &Task, f: impl FnOnce(&mut TaskUpdate)) {
        let config = self.config();
        let update = {
            let mut board = lock(&self.board);
            let entry = board
                .tasks
                .entry(task.id.clone())
                .or_insert_with(|| snapshot(task, config.max_attempts));
            entry.key.clone_from(&task.key);
            entry.title.clone_from(&task.title);
            entry.url.clone_from(&task.url);
            f(entry);
            entry.at = Utc::now();
            let update = entry.clone();
            board.prune(config.board_capacity);
            update
        };
        self.emit(Event::TaskUpdate(update));
    }

    /// Updates the snapshot of a task already on the board; does nothing for an unknown task.
    pub(crate) fn touch_id(&self, id: &TaskId, f: impl FnOnce(&mut TaskUpdate)) {
        let update = {
            let mut board = lock(&self.board);
            let Some(entry) = board.tasks.get_mut(id) else { return };
            f(entry);
            entry.at = Utc::now();
            entry.clone()
        };
        self.emit(Event::TaskUpdate(update));
    }
}
