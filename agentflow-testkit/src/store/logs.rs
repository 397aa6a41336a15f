//! Run log cases.

use std::sync::Arc;

use agentflow_core::{
    JobId, JobKind, LogLevel, LogLine, LogPage, Run, RunId, RunStatus, StateStore, Usage,
};

use super::now_ms;

/// The default bound on lines per run the suite assumes.
const DEFAULT_BOUND: u64 = 10_000;

async fn started_run(s: &dyn StateStore) -> RunId {
    let run = Run {
        id: RunId::new(),
        task: "task-1".into(),
        task_key: "ENG-1".into(),
        title: "t".into(),
        job: JobId::new(),
        kind: JobKind::Execute,
        attempt: 1,
        worker: "w".into(),
        started_at: now_ms(),
        finished_at: None,
        status: RunStatus::Running,
        error: None,
        summary: None,
        session_id: None,
        usage: Usage::default(),
    };
    s.start_run(&run).await.expect("start_run");
    run.id
}

fn line(text: &str, level: LogLevel, detail: Option<serde_json::Value>) -> LogLine {
    LogLine { seq: 999, at: now_ms(), level, kind: "text".into(), line: text.into(), detail }
}

/// Appended lines are numbered from 1 per run (the `seq` passed in is ignored), read back as
/// stored, and paged by `after`/`limit`.
pub async fn logs_seq_from_one_and_paging(s: Arc<dyn StateStore>) {
    let s = &*s;
    let run = started_run(s).await;
    let other = started_run(s).await;
    let first = vec![
        line("one", LogLevel::Info, None),
        line(
            "two",
            LogLevel::Warn,
            Some(serde_json::json!({ "tool": "Bash", "input": { "command": "ls" } })),
        ),
        line("three", LogLevel::Error, None),
    ];
    let stored = s.append_logs(run, first.clone()).await.expect("append_logs");
    let seqs: Vec<u64> = stored.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "sequence numbers start at 1");
    let more = s
        .append_logs(
            run,
            vec![line("four", LogLevel::Info, None), line("five", LogLevel::Info, None)],
        )
        .await
        .expect("append_logs");
    assert_eq!(more.iter().map(|l| l.seq).collect::<Vec<_>>(), [4, 5], "and continue");
    let elsewhere =
        s.append_logs(other, vec![line("other", LogLevel::Info, None)]).await.expect("append_logs");
    assert_eq!(elsewhere[0].seq, 1, "each run counts from 1");

    let all = s.logs(run, LogPage { after: 0, limit: 100 }).await.expect("logs");
    assert_eq!(all.len(), 5);
    for (i, (got, sent)) in all.iter().zip(first.iter()).enumerate() {
        let expected = LogLine { seq: i as u64 + 1, ..sent.clone() };
        assert_eq!(*got, expected, "line {} reads back as stored", i + 1);
    }
    assert_eq!(all[..3], stored[..], "append_logs returns the lines as stored");

    let page = s.logs(run, LogPage { after: 2, limit: 2 }).await.expect("logs");
    let texts: Vec<&str> = page.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(texts, ["three", "four"], "after 2, limit 2");
    assert!(
        s.logs(run, LogPage { after: 5, limit: 10 }).await.expect("logs").is_empty(),
        "nothing after the last line"
    );
    assert!(
        s.logs(RunId::new(), LogPage::default()).await.expect("logs").is_empty(),
        "a run without lines"
    );
}

/// A run's log keeps at most 10 000 lines (the default bound): past it the oldest are dropped
/// and one `marker` line, first, says how many. Appends 10 050 lines in batches.
pub async fn logs_bounded_with_marker(s: Arc<dyn StateStore>) {
    let s = &*s;
    const TOTAL: u64 = DEFAULT_BOUND + 50;
    let run = started_run(s).await;
    let mut sent = 0;
    while sent < TOTAL {
        let n = (TOTAL - sent).min(500);
        let batch = (sent..sent + n)
            .map(|i| line(&format!("line {}", i + 1), LogLevel::Info, None))
            .collect();
        let stored = s.append_logs(run, batch).await.expect("append_logs");
        assert_eq!(stored.last().map(|l| l.seq), Some(sent + n), "seq keeps counting across drops");
        sent += n;
    }

    let mut lines = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let page = s.logs(run, LogPage { after, limit: 1000 }).await.expect("logs");
        let Some(last) = page.last() else { break };
        after = last.seq;
        lines.extend(page);
    }
    assert!(
        lines.len() as u64 <= DEFAULT_BOUND,
        "{} lines kept, bound {DEFAULT_BOUND}",
        lines.len()
    );
    let markers: Vec<&LogLine> = lines.iter().filter(|l| l.kind == "marker").collect();
    assert_eq!(markers.len(), 1, "exactly one marker line, got {}", markers.len());
    assert_eq!(lines[0].kind, "marker", "the marker comes first");
    let dropped: u64 = lines[0]
        .line
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!("the marker {:?} does not say how many lines were dropped", lines[0].line)
        });
    let kept = lines.len() as u64 - 1;
    assert_eq!(
        kept + dropped,
        TOTAL,
        "kept {kept} + dropped {dropped} (from the marker) must be {TOTAL}"
    );
    assert!(dropped >= 50, "at least 50 lines over the bound were dropped, marker says {dropped}");
    let last = lines.last().expect("lines");
    assert_eq!((last.seq, last.line.as_str()), (TOTAL, "line 10050"), "the newest line is kept");
    assert!(lines.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases through the log");
    let first_kept = &lines[1];
    assert_eq!(
        first_kept.line,
        format!("line {}", first_kept.seq),
        "kept lines are the newest ones, intact"
    );
    assert_eq!(first_kept.seq, dropped + 1, "the oldest lines were the ones dropped");
}
