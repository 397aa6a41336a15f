//! [`StateStore`] conformance cases. Run them all with [`store_conformance!`](crate::store_conformance).
//!
//! Each case takes a fresh, empty store keeping the default 10 000 log lines per run, and panics
//! with a message naming the broken rule. Timestamps in the data are whole milliseconds, so
//! stores that keep microseconds round-trip them exactly.

mod logs;
mod runs;

use std::collections::HashMap;
use std::sync::Arc;

use agentflow_core::{StateStore, TaskId, Usage};
use chrono::{DateTime, SubsecRound, Utc};

pub use logs::{logs_bounded_with_marker, logs_seq_from_one_and_paging};
pub use runs::{
    runs_list_newest_first_with_filters_and_paging, runs_start_finish_get, runs_text_search,
    totals_since,
};

/// Now, truncated to whole milliseconds.
fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A session can be stored, read back as stored, and replaced.
pub async fn sessions_put_get_replace(s: Arc<dyn StateStore>) {
    let task = TaskId::from("task-1");
    assert_eq!(s.get_session(&task).await.expect("get_session"), None, "no session yet");
    let mut session = agentflow_core::Session {
        task: task.clone(),
        session_id: "sess-1".into(),
        workspace: Some("/tmp/agentflow/task-1".into()),
        usage: Usage { input_tokens: 10, output_tokens: 20, cost_usd: 0.25, turns: 3 },
        updated_at: now_ms(),
    };
    s.put_session(&session).await.expect("put_session");
    assert_eq!(s.get_session(&task).await.expect("get_session"), Some(session.clone()));

    session.session_id = "sess-2".into();
    session.workspace = None;
    session.usage.cost_usd = 0.5;
    s.put_session(&session).await.expect("put_session (replace)");
    assert_eq!(
        s.get_session(&task).await.expect("get_session"),
        Some(session),
        "put_session replaces the stored session"
    );
    assert_eq!(s.get_session(&"task-2".into()).await.expect("get_session"), None);
}

/// `mark_processed` returns true the first time an id is seen and false after.
pub async fn mark_processed_once(s: Arc<dyn StateStore>) {
    assert!(s.mark_processed("comment-1").await.expect("mark_processed"), "first time: true");
    assert!(!s.mark_processed("comment-1").await.expect("mark_processed"), "second time: false");
    assert!(s.mark_processed("comment-2").await.expect("mark_processed"), "another id: true");
    assert!(!s.mark_processed("comment-2").await.expect("mark_processed"));
}

/// 8 tasks marking the same 50 ids at once: exactly one `true` per id.
pub async fn mark_processed_concurrently_once(s: Arc<dyn StateStore>) {
    let mut handles = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for i in 0..50 {
                // Each task walks the ids in a different order.
                let id = format!("comment-{}", (i * 7 + t * 13) % 50);
                if s.mark_processed(&id).await.expect("mark_processed") {
                    won.push(id);
                }
            }
            won
        }));
    }
    let mut winners: HashMap<String, usize> = HashMap::new();
    for h in handles {
        for id in h.await.expect("marking task") {
            *winners.entry(id).or_default() += 1;
        }
    }
    assert_eq!(winners.len(), 50, "every id got one true");
    for (id, n) in winners {
        assert_eq!(n, 1, "{id} was reported new {n} times");
    }
}

/// Settings: `get_setting` returns the value as stored, `list_settings` masks secrets (and only
/// secrets), `put_setting` replaces.
pub async fn settings_masked_in_list(s: Arc<dyn StateStore>) {
    let secret = "lin_api_0123456789abcdef0123456789abcd";
    s.put_setting("linear.api_key", secret, true).await.expect("put_setting");
    s.put_setting("engine.workers", "3", false).await.expect("put_setting");
    s.put_setting("short.secret", "hunter2", true).await.expect("put_setting");

    let got = s.get_setting("linear.api_key").await.expect("get_setting").expect("setting");
    assert_eq!((got.value.as_str(), got.secret), (secret, true), "get_setting is unmasked");

    let listed = s.list_settings().await.expect("list_settings");
    let by_key: HashMap<&str, &agentflow_core::Setting> =
        listed.iter().map(|st| (st.key.as_str(), st)).collect();
    assert_eq!(by_key.len(), 3, "every setting is listed: {listed:?}");
    assert_eq!(by_key["linear.api_key"].value, agentflow_core::mask_secret(secret));
    assert!(!by_key["linear.api_key"].value.contains("0123456789"), "secret leaked by list");
    assert_eq!(by_key["short.secret"].value, "…", "a short secret shows nothing");
    assert_eq!(by_key["engine.workers"].value, "3", "plain settings are not masked");
    assert!(by_key["linear.api_key"].secret && !by_key["engine.workers"].secret);

    s.put_setting("engine.workers", "5", false).await.expect("put_setting (replace)");
    let got = s.get_setting("engine.workers").await.expect("get_setting").expect("setting");
    assert_eq!(got.value, "5", "put_setting replaces");
    assert_eq!(s.get_setting("missing").await.expect("get_setting"), None);
}

/// `delete_setting` removes a setting and says whether there was one.
pub async fn settings_delete(s: Arc<dyn StateStore>) {
    s.put_setting("a", "1", false).await.expect("put_setting");
    s.put_setting("b", "2", true).await.expect("put_setting");
    assert!(s.delete_setting("a").await.expect("delete_setting"), "deleting a setting: true");
    assert!(!s.delete_setting("a").await.expect("delete_setting"), "deleting it again: false");
    assert_eq!(s.get_setting("a").await.expect("get_setting"), None);
    let keys: Vec<String> =
        s.list_settings().await.expect("list_settings").into_iter().map(|st| st.key).collect();
    assert_eq!(keys, ["b"]);
}

/// Named cursors read back what was put, and are independent.
pub async fn cursors_get_put(s: Arc<dyn StateStore>) {
    assert_eq!(s.get_cursor("feedback").await.expect("get_cursor"), None);
    s.put_cursor("feedback", "2026-01-01T00:00:00Z").await.expect("put_cursor");
    s.put_cursor("other", "x").await.expect("put_cursor");
    s.put_cursor("feedback", "c-42").await.expect("put_cursor (replace)");
    assert_eq!(s.get_cursor("feedback").await.expect("get_cursor").as_deref(), Some("c-42"));
    assert_eq!(s.get_cursor("other").await.expect("get_cursor").as_deref(), Some("x"));
}
