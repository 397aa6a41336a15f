//! The state store's own behaviour beyond the conformance suite.

use std::sync::Arc;

use agentflow_core::{
    JobId, JobKind, LogLevel, LogLine, LogPage, Page, Run, RunFilter, RunFinish, RunId, RunStatus,
    Session, StateStore, TaskId, Usage,
};
use agentflow_sqlite::{Database, SqliteOptions};
use chrono::{Duration, Utc};

fn line(text: &str) -> LogLine {
    LogLine {
        seq: 0,
        at: Utc::now(),
        level: LogLevel::Info,
        kind: "text".into(),
        line: text.into(),
        detail: Some(serde_json::json!({ "n": text })),
    }
}

fn run(task: &str, title: &str, started: chrono::DateTime<Utc>) -> Run {
    Run {
        id: RunId::new(),
        task: TaskId::from(task),
        task_key: format!("ENG-{task}"),
        title: title.into(),
        job: JobId::new(),
        kind: JobKind::Execute,
        attempt: 1,
        worker: "w".into(),
        started_at: started,
        finished_at: None,
        status: RunStatus::Running,
        error: None,
        summary: None,
        session_id: None,
        usage: Usage::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_are_bounded_with_one_marker() {
    let opts = SqliteOptions { max_log_lines_per_run: 5, ..Default::default() };
    let store = Database::open_temporary(opts).await.unwrap().store();
    let r = RunId::new();
    let first =
        store.append_logs(r, (1..=3).map(|i| line(&i.to_string())).collect()).await.unwrap();
    assert_eq!(first.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
    store.append_logs(r, (4..=12).map(|i| line(&i.to_string())).collect()).await.unwrap();
    let all = store.logs(r, LogPage::default()).await.unwrap();
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_eq!(all[0].kind, "marker");
    assert!(all[0].line.contains("8 earlier"), "{}", all[0].line);
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), [8, 9, 10, 11, 12]);
    assert_eq!(all[4].detail, Some(serde_json::json!({ "n": "12" })));
    // One more: still one marker, still 5 lines.
    store.append_logs(r, vec![line("13")]).await.unwrap();
    let all = store.logs(r, LogPage::default()).await.unwrap();
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), [9, 10, 11, 12, 13]);
    assert_eq!(all.iter().filter(|l| l.kind == "marker").count(), 1);
    let tail = store.logs(r, LogPage { after: 11, limit: 1 }).await.unwrap();
    assert_eq!(tail[0].seq, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_filter_page_and_total() {
    let store = Database::open_temporary(SqliteOptions::default()).await.unwrap().store();
    let t0 = Utc::now() - Duration::hours(3);
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = run(&(i % 2).to_string(), &format!("Ünïcode title {i}"), t0 + Duration::minutes(i));
        store.start_run(&r).await.unwrap();
        ids.push(r.id);
    }
    let usage = Usage { input_tokens: 10, output_tokens: 5, cost_usd: 0.25, turns: 2 };
    for (i, id) in ids.iter().enumerate().take(3) {
        let status = if i == 0 { RunStatus::Failed } else { RunStatus::Succeeded };
        let finish = RunFinish {
            status,
            finished_at: Utc::now(),
            error: (i == 0).then(|| "Exploded".to_owned()),
            summary: Some("done".into()),
            session_id: Some("s".into()),
            usage,
        };
        store.finish_run(*id, &finish).await.unwrap();
    }
    assert!(
        store
            .finish_run(
                RunId::new(),
                &RunFinish {
                    status: RunStatus::Failed,
                    finished_at: Utc::now(),
                    error: None,
                    summary: None,
                    session_id: None,
                    usage,
                }
            )
            .await
            .is_err()
    );
    let page = store.list_runs(&RunFilter::default(), Page { offset: 1, limit: 2 }).await.unwrap();
    assert_eq!(page.total, 6);
    assert_eq!(page.runs.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[4], ids[3]]);
    let f = RunFilter { task: Some("1".into()), ..Default::default() };
    assert_eq!(store.list_runs(&f, Page::default()).await.unwrap().total, 3);
    let f = RunFilter { text: Some("ÜNÏCODE TITLE 5".into()), ..Default::default() };
    let found = store.list_runs(&f, Page::default()).await.unwrap();
    assert_eq!((found.total, found.runs[0].id), (1, ids[5]));
    let f = RunFilter {
        text: Some("explod".into()),
        statuses: vec![RunStatus::Failed],
        ..Default::default()
    };
    assert_eq!(store.list_runs(&f, Page::default()).await.unwrap().total, 1);
    let totals = store.totals_since(t0).await.unwrap();
    assert_eq!((totals.succeeded, totals.failed, totals.usage.turns), (2, 1, 6));
    assert!((totals.usage.cost_usd - 0.75).abs() < 1e-9);
    let got = store.get_run(ids[0]).await.unwrap().unwrap();
    assert_eq!((got.status, got.error.as_deref()), (RunStatus::Failed, Some("Exploded")));
    assert!(store.start_run(&got).await.is_err(), "a run starts once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_sessions_cursors_and_processed_comments() {
    let store = Arc::new(Database::open_temporary(SqliteOptions::default()).await.unwrap().store());
    let key = "lin_api_0123456789abcdef0123456789abcd";
    store.put_setting("linear.api_key", key, true).await.unwrap();
    store.put_setting("engine.workers", "3", false).await.unwrap();
    let listed = store.list_settings().await.unwrap();
    assert_eq!(listed.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(), ["3", "lin_api_…abcd"]);
    assert_eq!(store.get_setting("linear.api_key").await.unwrap().unwrap().value, key);
    assert!(store.delete_setting("engine.workers").await.unwrap());
    assert!(!store.delete_setting("engine.workers").await.unwrap());

    let s = Session {
        task: "t".into(),
        session_id: "abc".into(),
        workspace: Some("/tmp/ws".into()),
        usage: Usage { input_tokens: 1, output_tokens: 2, cost_usd: 0.5, turns: 3 },
        updated_at: Utc::now(),
    };
    store.put_session(&s).await.unwrap();
    assert_eq!(store.get_session(&"t".into()).await.unwrap(), Some(s.clone()));
    store.put_session(&Session { session_id: "def".into(), ..s }).await.unwrap();
    assert_eq!(store.get_session(&"t".into()).await.unwrap().unwrap().session_id, "def");

    assert_eq!(store.get_cursor("feedback").await.unwrap(), None);
    store.put_cursor("feedback", "a").await.unwrap();
    store.put_cursor("feedback", "b").await.unwrap();
    assert_eq!(store.get_cursor("feedback").await.unwrap().as_deref(), Some("b"));

    // Many concurrent markers of one comment: exactly one wins.
    let tries = (0..32).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.mark_processed("c1").await.unwrap() })
    });
    let wins =
        futures::future::join_all(tries).await.into_iter().filter(|w| *w.as_ref().unwrap()).count();
    assert_eq!(wins, 1);
}
