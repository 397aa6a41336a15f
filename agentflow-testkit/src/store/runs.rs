//! Run history cases.

use std::sync::Arc;

use agentflow_core::{
    JobId, JobKind, Page, Run, RunFilter, RunFinish, RunId, RunStatus, StateStore, Usage,
};
use chrono::{DateTime, Duration, Utc};

use super::now_ms;

fn run(task: &str, key: &str, title: &str, started_at: DateTime<Utc>) -> Run {
    Run {
        id: RunId::new(),
        task: task.into(),
        task_key: key.into(),
        title: title.into(),
        job: JobId::new(),
        kind: JobKind::Execute,
        attempt: 1,
        worker: "host:1:abcd".into(),
        started_at,
        finished_at: None,
        status: RunStatus::Running,
        error: None,
        summary: None,
        session_id: None,
        usage: Usage::default(),
    }
}

fn finish(status: RunStatus, at: DateTime<Utc>, cost: f64) -> RunFinish {
    RunFinish {
        status,
        finished_at: at,
        error: (status != RunStatus::Succeeded).then(|| format!("ended {}", status.as_str())),
        summary: (status == RunStatus::Succeeded).then(|| "all good".to_owned()),
        session_id: Some("sess-1".into()),
        usage: Usage { input_tokens: 100, output_tokens: 50, cost_usd: cost, turns: 2 },
    }
}

async fn ids(s: &dyn StateStore, filter: &RunFilter, page: Page) -> (Vec<RunId>, u64) {
    let got = s.list_runs(filter, page).await.expect("list_runs");
    (got.runs.into_iter().map(|r| r.id).collect(), got.total)
}

/// A run is stored as started, read back, and finished with its outcome, usage and session.
pub async fn runs_start_finish_get(s: Arc<dyn StateStore>) {
    let s = &*s;
    let started = now_ms();
    let mut r = run("task-1", "ENG-1", "Write a haiku", started);
    r.kind = JobKind::Feedback;
    r.attempt = 2;
    s.start_run(&r).await.expect("start_run");
    assert_eq!(s.get_run(r.id).await.expect("get_run"), Some(r.clone()), "read back as started");

    let end = started + Duration::seconds(90);
    let f = RunFinish {
        status: RunStatus::Failed,
        finished_at: end,
        error: Some("executor failed: exit 1".into()),
        summary: Some("partial".into()),
        session_id: Some("sess-9".into()),
        usage: Usage { input_tokens: 1200, output_tokens: 340, cost_usd: 0.75, turns: 4 },
    };
    s.finish_run(r.id, &f).await.expect("finish_run");
    let got = s.get_run(r.id).await.expect("get_run").expect("run");
    let expected = Run {
        finished_at: Some(end),
        status: RunStatus::Failed,
        error: f.error.clone(),
        summary: f.summary.clone(),
        session_id: f.session_id.clone(),
        usage: f.usage,
        ..r
    };
    assert_eq!(got, expected, "finish_run records the outcome");
    assert_eq!(s.get_run(RunId::new()).await.expect("get_run"), None, "unknown run");
}

/// `list_runs` is newest first, filters by task, status and time, pages, and counts the total.
pub async fn runs_list_newest_first_with_filters_and_paging(s: Arc<dyn StateStore>) {
    let s = &*s;
    let base = now_ms() - Duration::hours(1);
    let statuses = [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Running,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
        RunStatus::Succeeded,
    ];
    // Run i started i minutes after base. Ids are made newest run first, so id order is the
    // reverse of start order, and the runs are stored in a shuffled order: only `started_at`
    // gives the right listing.
    let mut runs: Vec<(Run, RunStatus)> = statuses
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, status)| {
            let task = if i % 2 == 0 { "task-a" } else { "task-b" };
            let started = base + Duration::minutes(i as i64);
            (run(task, &format!("ENG-{i}"), &format!("task number {i}"), started), status)
        })
        .collect();
    runs.reverse();
    for &i in &[3usize, 0, 5, 1, 4, 2] {
        let (r, status) = &runs[i];
        s.start_run(r).await.expect("start_run");
        if *status != RunStatus::Running {
            s.finish_run(r.id, &finish(*status, r.started_at + Duration::seconds(30), 0.5))
                .await
                .expect("finish_run");
        }
    }
    let newest_first: Vec<RunId> = runs.iter().rev().map(|(r, _)| r.id).collect();

    let (all, total) = ids(s, &RunFilter::default(), Page::first(100)).await;
    assert_eq!((all.as_slice(), total), (newest_first.as_slice(), 6), "all runs, newest first");

    let (page, total) = ids(s, &RunFilter::default(), Page { offset: 1, limit: 2 }).await;
    assert_eq!((page.as_slice(), total), (&newest_first[1..3], 6), "a page keeps the total");

    let by_task = RunFilter { task: Some("task-b".into()), ..Default::default() };
    let (got, total) = ids(s, &by_task, Page::first(100)).await;
    assert_eq!((got, total), (vec![runs[5].0.id, runs[3].0.id, runs[1].0.id], 3), "filter by task");

    let failed =
        RunFilter { statuses: vec![RunStatus::Failed, RunStatus::TimedOut], ..Default::default() };
    let (got, total) = ids(s, &failed, Page::first(1)).await;
    assert_eq!((got, total), (vec![runs[3].0.id], 2), "filter by status, limit 1, total 2");

    let window = RunFilter {
        since: Some(base + Duration::minutes(2)),
        until: Some(base + Duration::minutes(4)),
        ..Default::default()
    };
    let (got, total) = ids(s, &window, Page::first(100)).await;
    assert_eq!(
        (got, total),
        (vec![runs[3].0.id, runs[2].0.id], 2),
        "since is inclusive, until exclusive"
    );
}

/// The text filter matches task key, title, summary or error, case-insensitively.
pub async fn runs_text_search(s: Arc<dyn StateStore>) {
    let s = &*s;
    let t = now_ms();
    let haiku = run("t1", "ENG-1", "Write a Haiku", t);
    let key = run("t2", "OPS-77", "Rotate keys", t + Duration::seconds(1));
    let summary = run("t3", "ENG-3", "Fix login", t + Duration::seconds(2));
    let error = run("t4", "ENG-4", "Deploy", t + Duration::seconds(3));
    for r in [&haiku, &key, &summary, &error] {
        s.start_run(r).await.expect("start_run");
    }
    let mut f = finish(RunStatus::Succeeded, t + Duration::seconds(5), 0.1);
    f.summary = Some("Fixed the LOGIN redirect bug".into());
    s.finish_run(summary.id, &f).await.expect("finish_run");
    let mut f = finish(RunStatus::Failed, t + Duration::seconds(6), 0.1);
    f.error = Some("Rate limit exceeded by Linear".into());
    s.finish_run(error.id, &f).await.expect("finish_run");

    for (needle, expected) in [
        ("HAIKU", vec![haiku.id]),
        ("ops-77", vec![key.id]),
        ("redirect", vec![summary.id]),
        ("rate LIMIT", vec![error.id]),
        ("login", vec![summary.id]),
        ("no such words", vec![]),
    ] {
        let filter = RunFilter { text: Some(needle.into()), ..Default::default() };
        let (got, total) = ids(s, &filter, Page::first(100)).await;
        assert_eq!(total, expected.len() as u64, "total for text {needle:?}");
        assert_eq!(got, expected, "runs matching text {needle:?}");
    }
}

/// `totals_since` sums usage over runs started at or after `since` and counts successes and
/// failures (failed or timed out); earlier runs are left out.
pub async fn totals_since(s: Arc<dyn StateStore>) {
    let s = &*s;
    let since = now_ms() - Duration::hours(2);
    let cases = [
        (since - Duration::minutes(1), Some(RunStatus::Succeeded), 8.0),
        (since, Some(RunStatus::Succeeded), 0.25),
        (since + Duration::minutes(5), Some(RunStatus::Succeeded), 0.5),
        (since + Duration::minutes(10), Some(RunStatus::Failed), 1.0),
        (since + Duration::minutes(15), Some(RunStatus::TimedOut), 0.125),
        (since + Duration::minutes(20), Some(RunStatus::Cancelled), 2.0),
        (since + Duration::minutes(25), None, 0.0),
    ];
    for (i, (started, status, cost)) in cases.into_iter().enumerate() {
        let r = run(&format!("t{i}"), &format!("ENG-{i}"), "x", started);
        s.start_run(&r).await.expect("start_run");
        if let Some(status) = status {
            s.finish_run(r.id, &finish(status, started + Duration::seconds(1), cost))
                .await
                .expect("finish_run");
        }
    }
    let totals = s.totals_since(since).await.expect("totals_since");
    assert_eq!(
        (totals.succeeded, totals.failed),
        (2, 2),
        "succeeded 2, failed + timed out 2: {totals:?}"
    );
    assert!(
        (totals.usage.cost_usd - 3.875).abs() < 1e-9,
        "cost of runs since: 0.25 + 0.5 + 1 + 0.125 + 2 = 3.875, got {}",
        totals.usage.cost_usd
    );
    assert_eq!(totals.usage.input_tokens, 500, "5 finished runs since × 100 input tokens");
    assert_eq!(totals.usage.output_tokens, 250);
    assert_eq!(totals.usage.turns, 10);
    let none = s.totals_since(Utc::now() + Duration::hours(1)).await.expect("totals_since");
    assert_eq!((none.succeeded, none.failed, none.usage.input_tokens), (0, 0, 0));
}
