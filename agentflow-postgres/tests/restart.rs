//! A Postgres server of our own (initdb + pg_ctl on a free port in a temp dir) is stopped and
//! started while workers run: every job still completes exactly once, and the workers carry on
//! through retryable errors without restarting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentflow_core::{Error, JobKind, JobQueue, JobSpec, Lease, WorkerId};
use agentflow_postgres::{PgConfig, PgQueue};
use agentflow_testkit::servers::PrivatePostgres;

const JOBS: usize = 2000;

/// Retries an operation on retryable errors, like an engine worker does (bounded).
async fn retrying<T, F, Fut>(what: &str, errors: &Mutex<u64>, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    for _ in 0..600 {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_retryable() => {
                *errors.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: non-retryable error {e}"),
        }
    }
    panic!("{what}: still failing after 60 s of retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_restart_mid_run_loses_and_duplicates_nothing() {
    let server = PrivatePostgres::start();
    let cfg = PgConfig::new(server.url()).schema("agentflow").max_connections(8);
    let q = Arc::new(PgQueue::connect(&cfg).await.expect("connect to the test-owned server"));
    for i in 0..JOBS {
        q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap();
    }
    let confirmed: Arc<Mutex<HashSet<agentflow_core::JobId>>> = Arc::default();
    let errors: Arc<Mutex<u64>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (q, confirmed, errors) = (q.clone(), confirmed.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let me = WorkerId::generate();
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                let leases: Vec<Lease> =
                    retrying("reserve", &errors, || q.reserve(&me, Duration::from_secs(60), 10))
                        .await;
                if leases.is_empty() {
                    let s = retrying("stats", &errors, || q.stats()).await;
                    if s.completed as usize == JOBS {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                let results = retrying("complete", &errors, || q.complete_many(&leases)).await;
                for (l, r) in leases.iter().zip(results) {
                    match r {
                        Ok(()) => assert!(
                            confirmed.lock().unwrap().insert(l.job.id),
                            "job {} confirmed complete twice",
                            l.job.id
                        ),
                        // A complete whose commit landed just before the connection died is
                        // retried and finds the job already done: that is not a second completion.
                        Err(Error::LeaseLost { .. }) => {}
                        Err(e) => panic!("complete: {e}"),
                    }
                }
            }
        }));
    }
    // Restart once a third of the jobs are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    while confirmed.lock().unwrap().len() < JOBS / 3 {
        assert!(Instant::now() < deadline, "workers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_stop = confirmed.lock().unwrap().len();
    server.stop("fast");
    // Down until the workers have noticed (an in-flight statement cut off, or a connection
    // refused until the pool's acquire timeout): the restart must be seen, not slept through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while *errors.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "no worker noticed the server going down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.resume();
    for w in workers {
        w.await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.completed as usize, JOBS, "{stats:?}");
    assert_eq!(stats.total() as usize, JOBS, "{stats:?}");
    assert!(at_stop < JOBS, "the restart happened mid-run");
    assert!(*errors.lock().unwrap() > 0, "the restart was noticed as retryable errors");
    // Confirmed completions never exceed the jobs, and only a batch or so can be unconfirmed.
    assert!(confirmed.lock().unwrap().len() + 40 >= JOBS);
}
