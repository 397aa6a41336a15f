//! [`EventSink`] conformance cases. Run them all with [`sink_conformance!`](crate::sink_conformance).

use std::sync::Arc;

use agentflow_core::lifecycle::State;
use agentflow_core::{Event, EventSink, LogEvent, LogLevel, RunId, Stats, TaskStatus, TaskUpdate};
use chrono::Utc;

/// One event of each kind, as the engine emits them.
pub fn sample_events() -> Vec<Event> {
    let run = RunId::new();
    vec![
        Event::TaskUpdate(TaskUpdate {
            task: "task-1".into(),
            key: "ENG-1".into(),
            title: "Write a haiku".into(),
            url: Some("https://linear.app/acme/issue/ENG-1".into()),
            status: TaskStatus::InProgress,
            state: State::new(3),
            job: Some(agentflow_core::JobId::new()),
            kind: Some(agentflow_core::JobKind::Execute),
            run: Some(run),
            attempt: 1,
            max_attempts: 3,
            started_at: Some(Utc::now()),
            last_line: Some("Bash: cargo test".into()),
            cost_usd: 0.125,
            error: None,
            at: Utc::now(),
        }),
        Event::Stats(Stats {
            running: 1,
            queued: 2,
            done_today: 3,
            cost_today: 1.5,
            ..Stats::default()
        }),
        Event::Log(LogEvent {
            task: "task-1".into(),
            run,
            seq: 7,
            at: Utc::now(),
            level: LogLevel::Info,
            kind: "tool_use".into(),
            line: "Bash: cargo test".into(),
            detail: Some(serde_json::json!({ "command": "cargo test" })),
        }),
    ]
}

/// Emitting 10 000 events with nobody reading returns (a sink drops, it never blocks).
pub async fn emit_never_blocks_without_reader(sink: Arc<dyn EventSink>) {
    let events = sample_events();
    let done = tokio::task::spawn_blocking(move || {
        for i in 0..10_000 {
            sink.emit(&events[i % events.len()]);
        }
    });
    match tokio::time::timeout(std::time::Duration::from_secs(60), done).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("emit panicked: {e}"),
        Err(_) => panic!(
            "emitting 10 000 events without a reader did not return within 60 s: emit blocks"
        ),
    }
}

/// Eight threads emitting at once all return.
pub async fn emit_from_many_threads(sink: Arc<dyn EventSink>) {
    let mut handles = Vec::new();
    for _ in 0..8 {
        let sink = sink.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let events = sample_events();
            for i in 0..500 {
                sink.emit(&events[i % events.len()]);
            }
        }));
    }
    let all = futures::future::join_all(handles);
    match tokio::time::timeout(std::time::Duration::from_secs(60), all).await {
        Ok(results) => {
            for r in results {
                r.unwrap_or_else(|e| panic!("emit panicked: {e}"));
            }
        }
        Err(_) => panic!("concurrent emits did not return within 60 s"),
    }
}

/// Events go on the wire as `{"event": "task:update" | "stats:update" | "log:new", "data": …}`
/// and read back unchanged; the sink accepts each of them.
pub async fn events_serialize_with_wire_names(sink: Arc<dyn EventSink>) {
    for event in sample_events() {
        sink.emit(&event);
        let json = serde_json::to_value(&event).expect("serialize");
        let obj = json.as_object().expect("an event is a JSON object");
        assert_eq!(obj.len(), 2, "only `event` and `data`: {json}");
        assert_eq!(obj["event"], event.name(), "wire name of {json}");
        assert!(obj["data"].is_object(), "data is an object: {json}");
        let back: Event = serde_json::from_value(json.clone()).expect("deserialize");
        assert_eq!(back, event, "round trip of {json}");
    }
    let names: Vec<&str> = sample_events().iter().map(Event::name).collect();
    assert_eq!(names, ["task:update", "stats:update", "log:new"]);
}
