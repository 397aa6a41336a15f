//! The local task source (used when no Linear key is set) kept across restarts: its tasks,
//! statuses, comments and numbering are stored as one JSON snapshot in the state store, written
//! shortly after every change and once more at shutdown, and read back at start. Without it a
//! restarted daemon would forget its tasks (an In Progress one could never be reconciled) and
//! hand out `LOC-1` again, whose sessions and runs are still stored under that id.

use std::sync::Arc;
use std::time::Duration;

use agentflow::memory::{LocalSnapshot, LocalSource};
use agentflow::{CancellationToken, StateStore};

use crate::app::anyhow_lite;

/// The state-store cursor holding the snapshot.
pub(crate) const CURSOR: &str = "local_source.snapshot";

/// How long changes are gathered before one write.
const SETTLE: Duration = Duration::from_millis(50);

/// The local source as last stored, or an empty one on a fresh database. A stored snapshot that
/// cannot be read stops the start (with the reason) rather than being overwritten.
pub(crate) async fn restore(store: &dyn StateStore) -> anyhow_lite::Result<LocalSource> {
    let Some(json) = store.get_cursor(CURSOR).await? else {
        return Ok(LocalSource::new());
    };
    let snapshot: LocalSnapshot = serde_json::from_str(&json).map_err(|e| {
        format!(
            "the local tasks stored in the state store (cursor `{CURSOR}`) cannot be read: {e}; \
             nothing was changed"
        )
    })?;
    tracing::info!(tasks = snapshot.task_count(), "local tasks restored");
    Ok(LocalSource::from_snapshot(snapshot))
}

/// Writes a snapshot of `local` after every burst of changes, and a last one when `stop` is
/// cancelled. A failed write is logged and tried again on the next change or at the latest a
/// second later.
pub(crate) fn keep(
    local: LocalSource,
    store: Arc<dyn StateStore>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = local.changes();
        let mut dirty = false;
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                changed = changes.changed() => changed.is_err(),
                _ = tokio::time::sleep(Duration::from_secs(1)), if dirty => false,
            };
            if !stopping {
                tokio::time::sleep(SETTLE).await;
            }
            changes.borrow_and_update();
            dirty = match serde_json::to_string(&local.snapshot()) {
                Ok(json) => match store.put_cursor(CURSOR, &json).await {
                    Ok(()) => false,
                    Err(error) => {
                        tracing::warn!(%error, "cannot store the local tasks; retrying");
                        true
                    }
                },
                Err(error) => {
                    tracing::error!(%error, "cannot serialise the local tasks");
                    false
                }
            };
            if stopping {
                return;
            }
        }
    })
}
