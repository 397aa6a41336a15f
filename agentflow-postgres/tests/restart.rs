//! A Postgres server of our own (initdb + pg_ctl on a free port in a temp dir) is stopped and
//! started while workers run: every job still completes exactly once, and the workers carry on
//! through retryable errors without restarting.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentflow_core::{Error, JobKind, JobQueue, JobSpec, Lease, WorkerId};
use agentflow_postgres::{PgConfig, PgQueue};

const JOBS: usize = 2000;

/// A throwaway server owned by the `postgres` user (initdb refuses to run as root).
struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool} as postgres: {e}"))
}

impl Server {
    fn start() -> Server {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("/usr/lib/postgresql (the Postgres server binaries) is required")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new().prefix("agentflow-pg-").tempdir().unwrap();
        let pg = nix::unistd::User::from_name("postgres").unwrap().expect("a `postgres` user");
        nix::unistd::chown(dir.path(), Some(pg.uid), Some(pg.gid)).unwrap();
        let data = dir.path().join("data");
        let out = as_postgres(
            &bin,
            "initdb",
            &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Server { dir, bin, port };
        server.pg_ctl_start();
        server
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let data = self.dir.path().join("data");
        let out = as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", mode, "-w", "-t", "30", "stop"],
        );
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

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
    let server = Server::start();
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
    server.pg_ctl_stop("fast");
    // Down until the workers have noticed (an in-flight statement cut off, or a connection
    // refused until the pool's acquire timeout): the restart must be seen, not slept through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while *errors.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "no worker noticed the server going down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.pg_ctl_start();
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
