//! Progress: every line to the store and `log:new`, the tracker report throttled, the session
//! stored as soon as it is known.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentflow_core::engine::{Engine, EngineConfig};
use agentflow_core::{
    Event, LogPage, Page, Progress, ReportKind, RunFilter, RunOutcome, StateStore, TaskSource,
    TaskStatus,
};

use super::support::*;

#[tokio::test(start_paused = true)]
async fn every_line_is_logged_but_reports_are_throttled_per_interval() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let source = Counting::new(fx.source.clone());
    // 35 lines, one per second: with a 10 s interval at most one report per 10 s.
    let exec = Scripted::new(|_, progress, _| async move {
        for i in 1..=35 {
            progress.send(Progress::Text { text: format!("line {i}") });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(RunOutcome { summary: "done".into(), ..Default::default() })
    });
    let engine = Engine::builder()
        .source(source.clone() as Arc<dyn TaskSource>)
        .queue(fx.queue.clone())
        .executor(exec)
        .store(fx.store.clone())
        .config(EngineConfig { progress_interval: Duration::from_secs(10), ..paused_config() })
        .build()
        .unwrap();
    let mut events = engine.handle().subscribe();
    let (shutdown, join, handle) = spawn(engine);
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;

    let reports = source.progress_reports.load(Ordering::SeqCst);
    assert!((3..=4).contains(&reports), "35 s of output at one report per 10 s: {reports}");
    let run =
        fx.store.list_runs(&RunFilter::default(), Page::first(1)).await.unwrap().runs.remove(0);
    let lines = fx.store.logs(run.id, LogPage::default()).await.unwrap();
    assert_eq!(lines.len(), 35);
    assert_eq!(lines[34].line, "line 35");
    assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), (1..=35).collect::<Vec<u64>>());
    let mut log_events = 0;
    let mut last_line = None;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Log(l) => {
                assert_eq!(l.run, run.id);
                log_events += 1;
            }
            Event::TaskUpdate(u) if u.last_line.is_some() => last_line = u.last_line,
            _ => {}
        }
    }
    assert_eq!(log_events, 35);
    assert_eq!(last_line.as_deref(), Some("done"));
    // The progress comment holds the latest lines, edited in place (one per run).
    let progress: Vec<_> = fx
        .source
        .reports(&task.id)
        .into_iter()
        .filter(|r| r.kind == ReportKind::Progress)
        .collect();
    assert_eq!(progress.len(), 1);
    assert!(progress[0].body.contains("line 3"), "{}", progress[0].body);
    assert_eq!(handle.task(&task.id).unwrap().status, TaskStatus::Done);
}

#[tokio::test(start_paused = true)]
async fn the_session_is_stored_as_soon_as_it_is_reported() {
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let store = fx.store.clone();
    let id = task.id.clone();
    let seen_mid_run = Arc::new(AtomicUsize::new(0));
    let seen = seen_mid_run.clone();
    let exec = Scripted::new(move |_, progress, _| {
        let store = store.clone();
        let id = id.clone();
        let seen = seen.clone();
        async move {
            progress.send(Progress::Session { id: "sess-42".into() });
            for _ in 0..100 {
                if store.get_session(&id).await.unwrap().is_some_and(|s| s.session_id == "sess-42")
                {
                    seen.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(RunOutcome { summary: "ok".into(), ..Default::default() })
        }
    });
    let (shutdown, join, _) = spawn(fx.engine(exec, paused_config()));
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;
    assert_eq!(seen_mid_run.load(Ordering::SeqCst), 1, "stored while the run was still going");
    let session = fx.store.get_session(&task.id).await.unwrap().unwrap();
    assert_eq!(session.session_id, "sess-42");
    let run =
        fx.store.list_runs(&RunFilter::default(), Page::first(1)).await.unwrap().runs.remove(0);
    assert_eq!(run.session_id.as_deref(), Some("sess-42"));
}

#[tokio::test(start_paused = true)]
async fn a_paragraph_keeps_its_full_text_in_the_log_detail() {
    let fx = Fixture::new();
    let task = fx.source.add("Explain", "");
    let paragraph = "First line of the answer.\nSecond line with the rest.".to_owned();
    let text = paragraph.clone();
    let exec = Scripted::new(move |_, progress, _| {
        let text = text.clone();
        async move {
            progress.send(Progress::Text { text });
            progress.send(Progress::Text { text: "short".into() });
            Ok(RunOutcome { summary: "done".into(), ..Default::default() })
        }
    });
    let engine = Engine::builder()
        .source(Arc::new(fx.source.clone()))
        .queue(fx.queue.clone())
        .executor(exec)
        .store(fx.store.clone())
        .config(paused_config())
        .build()
        .unwrap();
    let (shutdown, join, _handle) = spawn(engine);
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;

    let run =
        fx.store.list_runs(&RunFilter::default(), Page::first(1)).await.unwrap().runs.remove(0);
    let lines = fx.store.logs(run.id, LogPage::default()).await.unwrap();
    assert_eq!(lines[0].line, "First line of the answer.");
    assert_eq!(lines[0].detail, Some(serde_json::json!({ "text": paragraph })));
    assert_eq!(lines[1].detail, None, "a one-line text needs no detail");
}
