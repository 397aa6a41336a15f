//! Scenario 8 of docs/reliability.md, the soak: many issues through one daemon with the command
//! executor, on SQLite, Redis and Postgres. Every issue ends Done, none is executed twice, and
//! the daemon's resident memory (VmRSS, sampled from /proc every 250 ms) stays flat: the
//! memory after the run is within 32 MiB of the memory after the first tenth of it.
//!
//! `AGENTFLOW_SOAK_TASKS` sets the number of issues (default 200, so CI stays quick); the
//! figures in docs/reliability.md come from
//! `AGENTFLOW_SOAK_TASKS=1000 cargo test --all-features --test soak -- --nocapture --test-threads 1`.

#[path = "daemon/fault.rs"]
mod fault;
#[path = "daemon/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentflow_testkit::fake_linear::FakeLinear;
use fault::{Backend, Storage, on_backends};

on_backends!(soak: sqlite, redis, postgres);

fn tasks() -> usize {
    std::env::var("AGENTFLOW_SOAK_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

async fn soak(backend: Backend) {
    let Some(storage) = Storage::shared(backend) else { return };
    let n = tasks();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let linear = FakeLinear::start().await;
    // Linear's real budget (which the fake enforces) is 1,500 requests an hour per API key, and
    // a task costs about 6.5 requests: one daemon finishes at most ~230 issues an hour. The soak
    // measures the daemon, not that budget, so the fake's is lifted.
    linear.rate_limit_after(u64::MAX / 2, Duration::from_secs(3600));
    let log = fault::record_file(dir, "executions.log");
    let daemon =
        fault::command(fault::linear_daemon(dir, &linear, &storage), &fault::recording(&log, "0"))
            .env("AGENTFLOW_ENGINE_WORKERS", "8")
            .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "100ms")
            .env("AGENTFLOW_LOG", "warn")
            .start();
    let mut postmortem = fault::Postmortem::new(format!("soak-{backend:?}"));
    postmortem.watch(&daemon.lines);
    let daemon = Arc::new(daemon);
    let rss_start = daemon.rss_kib().expect("the daemon's VmRSS");

    // Sample the daemon's memory while it works.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (daemon, sampling) = (daemon.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::SeqCst) && samples.len() < 100_000 {
                if let Some(kib) = daemon.rss_kib() {
                    samples.push((Instant::now(), kib));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };

    let started = Instant::now();
    let issues = linear.create_issues("ENG", "Todo", "Tidy the notes", n);
    let warm = daemon
        .eventually_within(limit(n), "a tenth of the issues to be executed", || async {
            (fault::executions(&log).len() >= n / 10).then(|| daemon.rss_kib()).flatten()
        })
        .await;
    let mut last_note = Instant::now();
    daemon
        .eventually_within(limit(n), "every issue to be Done", || {
            let done = fault::count_in(&linear, &issues, "Done");
            if last_note.elapsed() > Duration::from_secs(10) {
                last_note = Instant::now();
                eprintln!(
                    "soak {backend:?}: {done}/{n} Done after {:?}, VmRSS {:?} KiB, {} Linear requests",
                    started.elapsed(),
                    daemon.rss_kib(),
                    linear.total_requests()
                );
            }
            async move { (done == n).then_some(()) }
        })
        .await;
    let elapsed = started.elapsed();
    let requests = linear.total_requests();
    sampling.store(false, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let rss_end = daemon.rss_kib().expect("VmRSS at the end");
    let rss_max = samples.iter().map(|(_, k)| *k).chain([rss_start, rss_end]).max().unwrap_or(0);

    let counts = fault::executions(&log);
    assert_eq!(fault::duplicates(&counts), Vec::new(), "no issue executed twice");
    assert_eq!(counts.len(), n, "every issue executed");
    let queue = storage.queue(dir).await;
    fault::assert_exactly_once(&linear, &issues, Some(&log), Some(&*queue)).await;
    assert!(
        rss_end <= warm + 32 * 1024,
        "memory grew from {warm} KiB (a tenth in) to {rss_end} KiB at the end"
    );
    let daemon = Arc::into_inner(daemon).expect("the sampler is done");
    assert!(daemon.terminate().success());
    eprintln!(
        "soak {backend:?}: {n} issues Done in {elapsed:?} ({:.0}/s); VmRSS start {rss_start} KiB, \
         after a tenth {warm} KiB, end {rss_end} KiB, max {rss_max} KiB ({} samples); {requests} \
         Linear requests ({:.1} per issue)",
        n as f64 / elapsed.as_secs_f64(),
        samples.len(),
        requests as f64 / n as f64
    );
}

/// How long `n` issues may take (generous: this bounds a hung run, it measures nothing).
fn limit(n: usize) -> Duration {
    Duration::from_secs(60 + n as u64 / 2)
}
