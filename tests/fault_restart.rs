//! Fault scenario 3 of docs/reliability.md: the database restarts under a working daemon.
//!
//! A Postgres (state and queue) or Redis (queue; append-only file with fsync always) of the
//! test's own, on a free port, is restarted while the daemon works through 20 issues with the
//! command executor. The daemon logs the outage, backs off, reconnects by itself, and finishes
//! everything: all Done, each executed exactly once, one summary each, one job each. (SQLite is
//! embedded in the daemon: there is no server to restart.)

#[path = "daemon/fault.rs"]
mod fault;
#[path = "daemon/support.rs"]
mod support;

use std::time::{Duration, Instant};

use agentflow_testkit::fake_linear::FakeLinear;
use agentflow_testkit::servers::{PrivatePostgres, PrivateRedis};
use fault::{Backend, Storage, on_backends};

on_backends!(database_restart: redis, postgres);

const ISSUES: usize = 20;
/// How long the server stays down: long enough that the daemon's workers, which finish a run
/// every 0.3 s, certainly meet it.
const OUTAGE: Duration = Duration::from_secs(3);

/// The server under test, restarted mid-run.
enum Server {
    Redis(PrivateRedis),
    Postgres(PrivatePostgres),
}

async fn database_restart(backend: Backend) {
    let mut server = match backend {
        Backend::Redis => Server::Redis(PrivateRedis::start(true)),
        Backend::Postgres => Server::Postgres(PrivatePostgres::start()),
        Backend::Sqlite => unreachable!("SQLite has no server"),
    };
    let storage = match &server {
        Server::Redis(r) => Storage::redis(&r.url()),
        Server::Postgres(p) => Storage::postgres(&p.url()),
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let linear = FakeLinear::start().await;
    let issues = linear.create_issues("ENG", "Todo", "Tidy the notes", ISSUES);
    let log = fault::record_file(dir, "executions.log");
    let daemon = fault::command(
        fault::linear_daemon(dir, &linear, &storage),
        &fault::recording(&log, "0.3"),
    )
    .env("AGENTFLOW_ENGINE_WORKERS", "3")
    // Longer than the outage: a run is not taken over while its heartbeats cannot land.
    .env("AGENTFLOW_ENGINE_LEASE", "20s")
    .start();

    daemon
        .eventually("a quarter of the issues to be executed", || async {
            (fault::executions(&log).len() >= ISSUES / 4).then_some(())
        })
        .await;
    let before = fault::executions(&log).len();
    let logged_before = daemon.lines.all().len();
    let restarted = Instant::now();
    match &mut server {
        Server::Redis(redis) => {
            // SIGKILL, down for OUTAGE, start again on the same port and append-only file.
            redis.kill();
            tokio::time::sleep(OUTAGE).await;
            redis.restart();
        }
        Server::Postgres(p) => {
            p.stop("fast");
            tokio::time::sleep(OUTAGE).await;
            p.resume();
        }
    }
    assert!(before < ISSUES, "the restart came mid-run");
    daemon
        .eventually("every issue to be Done after the restart", || async {
            (fault::count_in(&linear, &issues, "Done") == ISSUES).then_some(())
        })
        .await;
    let recovered = restarted.elapsed();
    let during: Vec<String> = daemon.lines.all()[logged_before..]
        .iter()
        .filter(|l| l.contains(" WARN") || l.contains(" ERROR"))
        .cloned()
        .collect();
    assert!(
        !during.is_empty(),
        "the daemon logged the outage ({before} executed at the restart, {} lines before, {} \
         after):\n{}",
        logged_before,
        daemon.lines.all().len(),
        daemon.lines.tail(30)
    );
    let queue = storage.queue(dir).await;
    fault::assert_exactly_once(&linear, &issues, Some(&log), Some(&*queue)).await;
    assert!(daemon.terminate().success());
    eprintln!(
        "database_restart {backend:?}: {before}/{ISSUES} done at the restart; all Done \
         {recovered:?} after it; {} warnings logged meanwhile, e.g. {:?}",
        during.len(),
        during.first()
    );
}
