//! The run history at 100k runs: filters, sorting and paging through the router.

#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use agentflow_core::{JobId, JobKind, Run, RunFinish, RunId, RunStatus, TaskId, Usage};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use harness::Harness;
use serde_json::Value;
use tower::ServiceExt;

const RUNS: u64 = 100_000;

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Value, Duration) {
    let start = Instant::now();
    let resp =
        router.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_sorting_and_paging_hold_at_100k_runs() {
    let h = Harness::start(false).await;
    h.handle.pause();
    // One run a minute from 2026-01-01; every 10th failed, every 7th mentions "migration".
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for i in 0..RUNS {
        let started_at = t0 + chrono::Duration::minutes(i as i64);
        let id = RunId::new();
        let status = if i % 10 == 0 { RunStatus::Failed } else { RunStatus::Succeeded };
        let title = if i % 7 == 0 { format!("Run migration {i}") } else { format!("Task {i}") };
        let run = Run {
            id,
            task: TaskId(format!("t{i}")),
            task_key: format!("ENG-{i}"),
            title,
            job: JobId::new(),
            kind: JobKind::Execute,
            attempt: 1,
            worker: "w".into(),
            started_at,
            finished_at: None,
            status: RunStatus::Running,
            error: None,
            summary: None,
            session_id: None,
            usage: Usage::default(),
        };
        h.store.start_run(&run).await.unwrap();
        let finish = RunFinish {
            status,
            finished_at: started_at + chrono::Duration::seconds((i % 600) as i64),
            error: (status == RunStatus::Failed).then(|| "tests failed".to_owned()),
            summary: None,
            session_id: None,
            usage: Usage {
                input_tokens: i,
                output_tokens: 1,
                cost_usd: (i % 1000) as f64 / 100.0,
                turns: (i % 50) as u32,
            },
        };
        h.store.finish_run(id, &finish).await.unwrap();
    }
    let router = h.dashboard().build().router();

    let (status, first, took_first) = get(&router, "/api/runs?per_page=50").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["total"], RUNS);
    assert_eq!(first["pages"], RUNS / 50);
    assert_eq!(first["runs"][0]["task_key"], format!("ENG-{}", RUNS - 1));

    let (_, last, took_last) = get(&router, "/api/runs?per_page=50&page=2000").await;
    assert_eq!(last["runs"].as_array().unwrap().len(), 50);
    assert_eq!(last["runs"][49]["task_key"], "ENG-0");

    // Oldest first, any depth.
    let (_, asc, took_asc) =
        get(&router, "/api/runs?sort=started&order=asc&per_page=50&page=1").await;
    assert_eq!(asc["runs"][0]["task_key"], "ENG-0");
    assert_eq!(asc["runs"][1]["task_key"], "ENG-1");
    let (_, asc_deep, _) =
        get(&router, "/api/runs?sort=started&order=asc&per_page=50&page=2000").await;
    assert_eq!(asc_deep["runs"][49]["task_key"], format!("ENG-{}", RUNS - 1));
    let (_, past_end, _) = get(&router, "/api/runs?per_page=50&page=2001").await;
    assert_eq!(past_end["runs"], serde_json::json!([]));

    // Filters: outcome, date range (a day is 1440 runs, every 10th failed), text.
    let (_, failed_day, took_filter) =
        get(&router, "/api/runs?status=failed&since=2026-01-02&until=2026-01-02").await;
    assert_eq!(failed_day["total"], 144);
    assert!(
        failed_day["runs"].as_array().unwrap().iter().all(|r| r["status"] == "failed"
            && r["started_at"].as_str().unwrap().starts_with("2026-01-02"))
    );
    let (_, text, took_text) = get(&router, "/api/runs?q=MIGRATION&per_page=10").await;
    assert_eq!(text["total"], RUNS.div_ceil(7));

    // Other columns sort a narrowed set; the whole 100k asks to narrow it.
    let (status, too_many, _) = get(&router, "/api/runs?sort=cost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(too_many["error"]["message"].as_str().unwrap().contains("narrow the filter"));
    let (_, by_cost, took_sort) =
        get(&router, "/api/runs?since=2026-01-02&until=2026-01-03&sort=cost&order=desc&per_page=5")
            .await;
    assert_eq!(by_cost["total"], 2880);
    let costs: Vec<f64> = by_cost["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["usage"]["cost_usd"].as_f64().unwrap())
        .collect();
    assert_eq!(costs[0], 9.99);
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    let (_, by_duration, _) = get(&router, "/api/runs?status=failed&since=2026-01-05&until=2026-01-05&sort=duration&order=asc&per_page=3").await;
    let durations: Vec<f64> = by_duration["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["duration_secs"].as_f64().unwrap())
        .collect();
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");

    let (status, bad, _) = get(&router, "/api/runs?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"]["message"].as_str().unwrap().contains("2026-01-31"));
    let (status, _, _) = get(&router, "/api/runs?status=exploded").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    println!(
        "100k runs (MemoryStore, debug build): first page {took_first:?}, last page {took_last:?}, \
         oldest first {took_asc:?}, failed on one day {took_filter:?}, text search {took_text:?}, \
         sort 2880 by cost {took_sort:?}"
    );
}
