//! PgStore across instances: log sequence numbers and processed comments stay exact when two
//! processes (two pools) write at once.

#[path = "support.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;

use agentflow_core::{LogLevel, LogLine, LogPage, RunId, StateStore};
use agentflow_postgres::PgStore;

fn line(text: String) -> LogLine {
    LogLine {
        seq: 0,
        at: chrono::Utc::now(),
        level: LogLevel::Info,
        kind: "text".into(),
        line: text,
        detail: Some(serde_json::json!({"n": 1})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_append_to_one_run_without_gaps_or_repeats() {
    let cfg = support::config().await.max_log_lines(300);
    let a = Arc::new(PgStore::connect(&cfg).await.unwrap());
    let b = Arc::new(PgStore::connect(&cfg).await.unwrap());
    let run = RunId::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let lines = (0..20).map(|j| line(format!("{i}-{j}"))).collect();
            s.append_logs(run, lines).await.unwrap()
        }));
    }
    let mut seqs = HashSet::new();
    for t in tasks {
        let stored = t.await.unwrap();
        // One call's lines are numbered consecutively.
        for w in stored.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        for l in stored {
            assert!(seqs.insert(l.seq), "seq {} handed out twice", l.seq);
        }
    }
    assert_eq!(seqs, (1..=400).collect::<HashSet<u64>>());
    // 400 appended, 300 kept: a marker standing for 101 lines, then 102..=400.
    let page = LogPage { after: 0, limit: 1000 };
    let kept = a.logs(run, page).await.unwrap();
    assert_eq!(kept.len(), 300);
    assert_eq!(kept[0].kind, "marker");
    assert_eq!(kept[0].seq, 101);
    assert!(kept[0].line.starts_with("101 "), "{}", kept[0].line);
    assert_eq!(kept[1].seq, 102);
    assert_eq!(kept.last().unwrap().seq, 400);
    assert_eq!(b.logs(run, page).await.unwrap(), kept, "both instances read the same log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_comment_is_processed_by_exactly_one_instance() {
    let cfg = support::config().await;
    let a = Arc::new(PgStore::connect(&cfg).await.unwrap());
    let b = Arc::new(PgStore::connect(&cfg).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.mark_processed(&format!("c{}", i / 2)).await }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(firsts, 20, "each of 20 comments is new exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_retryable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = agentflow_postgres::PgConfig::new(format!(
        "postgres://postgres:hunter2@127.0.0.1:{port}/test"
    ));
    cfg.acquire_timeout = std::time::Duration::from_secs(2);
    let e = PgStore::connect(&cfg).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn nul_characters_are_stored_as_replacement_characters() {
    // Postgres `text` and `jsonb` cannot hold U+0000, yet agent output and task titles may:
    // such runs and log lines must be stored (with U+FFFD), not lost with an error.
    use agentflow_core::{JobId, JobKind, Run, RunFinish, RunStatus, TaskId};
    let cfg = support::config().await;
    let store = PgStore::connect(&cfg).await.unwrap();
    let run = RunId::new();
    store
        .start_run(&Run {
            id: run,
            task: TaskId("t1".into()),
            task_key: "ENG-1".into(),
            title: "a \u{0} title".into(),
            job: JobId::new(),
            kind: JobKind::Execute,
            attempt: 1,
            worker: "w".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            status: RunStatus::Running,
            error: None,
            summary: None,
            session_id: None,
            usage: Default::default(),
        })
        .await
        .expect("a title with NUL is stored");
    store
        .finish_run(
            run,
            &RunFinish {
                status: RunStatus::Succeeded,
                finished_at: chrono::Utc::now(),
                error: Some("err \u{0}".into()),
                summary: Some("output \u{0} here".into()),
                session_id: None,
                usage: Default::default(),
            },
        )
        .await
        .expect("a summary with NUL is stored");
    let stored = store.get_run(run).await.unwrap().expect("the run");
    assert_eq!(stored.title, "a \u{fffd} title");
    assert_eq!(stored.summary.as_deref(), Some("output \u{fffd} here"));
    assert_eq!(stored.status, RunStatus::Succeeded);
    let mut l = line("agent output \u{0} with NUL".into());
    l.detail = Some(serde_json::json!({ "text": "in \u{0} detail", "n": [1, "\u{0}"] }));
    store.append_logs(run, vec![l]).await.expect("a log line with NUL is stored");
    let logs = store.logs(run, LogPage { after: 0, limit: 10 }).await.unwrap();
    assert_eq!(logs[0].line, "agent output \u{fffd} with NUL");
    assert_eq!(
        logs[0].detail,
        Some(serde_json::json!({ "text": "in \u{fffd} detail", "n": [1, "\u{fffd}"] }))
    );
    store.put_cursor("c", "x\u{0}y").await.expect("a cursor with NUL is stored");
    assert_eq!(store.get_cursor("c").await.unwrap().as_deref(), Some("x\u{fffd}y"));
}
