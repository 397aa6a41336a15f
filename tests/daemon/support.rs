//! Running the built daemon example (`examples/daemon`) as a child process, for the `daemon_*`
//! tests: a clean environment, every output line captured, the dashboard URL read from stdout,
//! bounded waits, and the process stopped when the guard drops.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long any single wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The daemon binary, built from this checkout next to this test: `…/<profile>/deps/<test>-<hash>`
/// → `…/<profile>/examples/daemon`.
///
/// `cargo test` does not build the example's binary (with `test = true` it builds the example's
/// unit-test harness instead), and a binary left from an earlier build would test old code. So
/// the first call in each test binary runs `cargo build --example daemon` with this test's
/// features, profile and target directory; it is quick when nothing changed. (Cargo holds its
/// build lock only while compiling, not while tests run.)
pub(crate) fn daemon_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_daemon).clone()
}

fn build_daemon() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe.parent().and_then(Path::parent).expect("…/<profile>/deps/<test>");
    let target_dir = profile.parent().expect("…/<target>/<profile>");
    let profile_name = profile.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let features: Vec<&str> = [
        ("sqlite", cfg!(feature = "sqlite")),
        ("linear", cfg!(feature = "linear")),
        ("claude", cfg!(feature = "claude")),
        ("dashboard", cfg!(feature = "dashboard")),
        ("redis", cfg!(feature = "redis")),
        ("postgres", cfg!(feature = "postgres")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "daemon", "--no-default-features"])
        .args(["--features", &features.join(",")])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if profile_name != "debug" {
        build.args(["--profile", profile_name]);
    }
    let status = build.status().expect("run cargo to build the daemon example");
    assert!(status.success(), "building the daemon example failed: {status}");
    let bin = profile.join("examples").join("daemon");
    assert!(bin.is_file(), "the daemon example is not at {} after building it", bin.display());
    bin
}

/// The pinned Claude Code CLI: `AGENTFLOW_CLAUDE_BIN`, else the cache that
/// `scripts/install-test-deps.sh` fills. Under `CI` a missing CLI fails the test; elsewhere the
/// test is skipped with a note.
pub(crate) fn claude_bin() -> Option<PathBuf> {
    agentflow_testkit::claude_cli(agentflow::claude::CLAUDE_CODE_VERSION)
}

/// Output lines of a child, tagged `stdout| ` or `stderr| `, in arrival order per stream.
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    /// Every line so far.
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last `n` lines, joined, for failure messages.
    pub(crate) fn tail(&self, n: usize) -> String {
        let all = self.all();
        all[all.len().saturating_sub(n)..].join("\n")
    }

    fn capture(&self, tag: &'static str, stream: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        lines.push(format!("{tag}| {}", line.trim_end_matches(['\n', '\r'])));
                    }
                }
            }
        });
    }
}

/// A daemon command line: the built binary, run in `dir` with a clean environment (PATH, LANG,
/// HOME inside `dir`) plus what the test sets.
pub(crate) struct DaemonCmd {
    cmd: Command,
    token: Option<String>,
}

impl DaemonCmd {
    /// `daemon` in `dir`, listening on a free loopback port, logging at `info`.
    pub(crate) fn new(dir: &Path) -> DaemonCmd {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("create HOME");
        let mut cmd = Command::new(daemon_bin());
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("HOME", &home)
            .env("AGENTFLOW_LOG", "info")
            .env("AGENTFLOW_DASHBOARD_ADDR", "127.0.0.1:0")
            .env(
                "AGENTFLOW_STORAGE_DATABASE_URL",
                format!("sqlite://{}", dir.join("agentflow.db").display()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        DaemonCmd { cmd, token: None }
    }

    /// Sets an environment variable.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        if key == "AGENTFLOW_DASHBOARD_TOKEN" {
            self.token = Some(value.as_ref().to_string_lossy().into_owned());
        }
        self.cmd.env(key, value);
        self
    }

    /// Removes a variable this helper sets by default.
    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Adds command-line arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    fn spawn(&mut self) -> (Child, Lines) {
        let mut child = self.cmd.spawn().expect("spawn the daemon");
        let lines = Lines::default();
        lines.capture("stdout", child.stdout.take().expect("stdout"));
        lines.capture("stderr", child.stderr.take().expect("stderr"));
        (child, lines)
    }

    /// Starts `run` and waits for the dashboard line on stdout.
    pub(crate) fn start(mut self) -> Daemon {
        let (child, lines) = self.spawn();
        let mut daemon = Daemon {
            child: Mutex::new(Some(child)),
            url: String::new(),
            lines,
            token: self.token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
        };
        let started = Instant::now();
        loop {
            let found = daemon.lines.all().iter().find_map(|l| {
                l.strip_prefix("stdout| agentflow dashboard: ")
                    .map(|u| u.trim().trim_end_matches('/').to_owned())
            });
            if let Some(url) = found {
                daemon.url = url;
                return daemon;
            }
            if let Some(status) = daemon.exited() {
                std::thread::sleep(Duration::from_millis(200)); // let the readers drain
                panic!(
                    "the daemon exited with {status} before listening:\n{}",
                    daemon.lines.tail(40)
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "the daemon did not print its dashboard URL within {WAIT:?}:\n{}",
                daemon.lines.tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs to the end (bounded by [`WAIT`]) and returns the exit status and output.
    pub(crate) fn finish(mut self) -> Finished {
        let (mut child, lines) = self.spawn();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > WAIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not exit within {WAIT:?}:\n{}", lines.tail(40));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers end at EOF, which follows the exit closely.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut previous = usize::MAX;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let n = lines.all().len();
            if n == previous {
                break;
            }
            previous = n;
        }
        let pick = |tag: &str| {
            lines
                .all()
                .iter()
                .filter_map(|l| l.strip_prefix(tag).map(str::to_owned))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Finished { status, stdout: pick("stdout| "), stderr: pick("stderr| ") }
    }
}

/// A command that ran to its end.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Exit status.
    pub(crate) status: ExitStatus,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

/// A running daemon; SIGTERM then SIGKILL when dropped.
pub(crate) struct Daemon {
    child: Mutex<Option<Child>>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// Everything it printed.
    pub(crate) lines: Lines,
    token: Option<String>,
    http: reqwest::Client,
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// Body text.
    pub(crate) body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.body))
    }
}

impl Daemon {
    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.unwrap_or_else(|e| {
            panic!("request to the daemon failed: {e}\n{}", self.lines.tail(40))
        });
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Answer { status, body }
    }

    /// `GET path` (with the token when one is set).
    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url))).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub(crate) async fn get_json(&self, path: &str) -> Value {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.json()
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(self.http.put(format!("{}{path}", self.url)).json(body)).await
    }

    /// Polls `check` every 100 ms until it gives a value; panics after [`WAIT`] with `what` and
    /// the daemon's last lines.
    pub(crate) async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.eventually_within(WAIT, what, check).await
    }

    /// [`eventually`](Self::eventually) with a limit of `limit` instead of [`WAIT`] (for waits
    /// whose length scales with the work, like a soak run).
    pub(crate) async fn eventually_within<T, F, Fut>(
        &self,
        limit: Duration,
        what: &str,
        mut check: F,
    ) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "the daemon exited with {status} while waiting for {what}:\n{}",
                    self.lines.tail(60)
                );
            }
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; the daemon's last lines:\n{}",
                self.lines.tail(60)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The exit status, once the daemon has exited.
    pub(crate) fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_mut()?.try_wait().ok().flatten()
    }

    /// The daemon's process id (while it runs).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(Child::id)
    }

    /// SIGKILL — no shutdown of any kind — and waits for the exit.
    pub(crate) fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// The daemon's resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGTERM, then waits (bounded by [`WAIT`]) for the exit; SIGKILL if it does not come.
    pub(crate) fn terminate(self) -> ExitStatus {
        self.stop(WAIT).expect("the daemon exits after SIGTERM")
    }

    fn stop(&self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the daemon ignored SIGTERM for {grace:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Fault suite, part B (tests/fault_*.rs): one test per storage backend.
// ---------------------------------------------------------------------------------------------

/// Where a daemon keeps its state and queue in a fault test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// State and queue in one SQLite file in the test's directory.
    Sqlite,
    /// State in SQLite, the job queue on Redis (127.0.0.1:6379).
    Redis,
    /// State and queue in a fresh Postgres database (127.0.0.1:5432), dropped afterwards.
    Postgres,
}

/// Tests of one binary that use Redis take turns: they share one database index.
static REDIS_TURN: Mutex<()> = Mutex::new(());

/// A backend prepared for one test; dropping it (after the daemon) cleans up.
pub(crate) struct Storage {
    /// The backend.
    pub(crate) backend: Backend,
    env: Vec<(&'static str, String)>,
    postgres_db: Option<String>,
    _redis_turn: Option<std::sync::MutexGuard<'static, ()>>,
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether `addr` answers; under `CI` a service that does not is a failure, elsewhere the test
/// is skipped with a note.
fn service_answers(addr: &str, what: &str) -> bool {
    let sock: std::net::SocketAddr = addr.parse().expect("loopback address");
    if std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is not answering on {addr}");
    eprintln!("skipping: {what} is not answering on {addr}");
    false
}

impl Backend {
    /// Prepares the backend for a test in `dir`. Redis uses database index `redis_db` (one per
    /// test binary), whose unfinished jobs from earlier runs are cancelled first. `None`: the
    /// service is not answering and this is not CI (skip).
    pub(crate) async fn storage(self, dir: &Path, redis_db: u8) -> Option<Storage> {
        let sqlite = format!("sqlite://{}", dir.join("agentflow.db").display());
        let mut storage =
            Storage { backend: self, env: Vec::new(), postgres_db: None, _redis_turn: None };
        match self {
            Backend::Sqlite => storage.env.push(("AGENTFLOW_STORAGE_DATABASE_URL", sqlite)),
            Backend::Redis => {
                if !service_answers("127.0.0.1:6379", "Redis") {
                    return None;
                }
                storage._redis_turn = Some(REDIS_TURN.lock().unwrap_or_else(|e| e.into_inner()));
                let url = format!("redis://127.0.0.1:6379/{redis_db}");
                cancel_live_redis_jobs(&url).await;
                storage.env.push(("AGENTFLOW_STORAGE_DATABASE_URL", sqlite));
                storage.env.push(("AGENTFLOW_STORAGE_QUEUE_URL", url));
            }
            Backend::Postgres => {
                if !service_answers("127.0.0.1:5432", "Postgres") {
                    return None;
                }
                let name =
                    format!("agentflow_fault_{}_{:08x}", std::process::id(), fastrand_u32(dir));
                postgres_admin(&format!("CREATE DATABASE \"{name}\"")).await;
                storage.env.push((
                    "AGENTFLOW_STORAGE_DATABASE_URL",
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                ));
                storage.postgres_db = Some(name);
            }
        }
        Some(storage)
    }
}

/// A number that differs between tests of one process (from the test's temporary directory).
fn fastrand_u32(dir: &Path) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    h.finish() as u32
}

async fn postgres_admin(sql: &str) {
    use sqlx::Connection;
    let mut conn =
        sqlx::PgConnection::connect(POSTGRES_ADMIN).await.expect("connect to Postgres as admin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// Cancels the live jobs on the Redis queue at `url`: jobs an interrupted earlier run left
/// would otherwise be picked up by the next daemon.
#[cfg(feature = "redis")]
pub(crate) async fn cancel_live_redis_jobs(url: &str) {
    use agentflow::{JobFilter, JobQueue, JobState, Page};
    let queue = agentflow::redis::RedisQueue::connect(agentflow::redis::RedisQueueConfig::new(url))
        .await
        .expect("connect to Redis");
    let live = JobFilter {
        states: vec![
            JobState::Scheduled,
            JobState::Available,
            JobState::Retryable,
            JobState::Running,
        ],
        ..Default::default()
    };
    for job in queue.list(&live, Page::first(1000)).await.expect("list Redis jobs") {
        let _ = queue.cancel(job.id).await;
    }
}

#[cfg(not(feature = "redis"))]
pub(crate) async fn cancel_live_redis_jobs(_url: &str) {
    panic!("the Redis fault tests need the `redis` feature (cargo test --all-features)");
}

impl Drop for Storage {
    fn drop(&mut self) {
        let Some(name) = self.postgres_db.take() else { return };
        // Drop is synchronous and may run inside a runtime: a thread of its own does the work.
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(20), postgres_admin(&sql)).await;
                });
            }
        });
        let _ = done.join();
    }
}

impl DaemonCmd {
    /// Points the daemon at `storage`.
    pub(crate) fn storage(mut self, storage: &Storage) -> Self {
        for (k, v) in &storage.env {
            self = self.env(k, v);
        }
        self
    }
}

/// One `#[tokio::test]` per backend for `async fn $body(backend: Backend)`: `$name_sqlite`,
/// `$name_redis` and `$name_postgres`. Redis and Postgres tests need the `redis` and `postgres`
/// features (`cargo test --all-features`).
#[macro_export]
macro_rules! per_backend {
    ($name:ident => $body:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body(support::Backend::Sqlite).await;
            }

            #[cfg(feature = "redis")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                $body(support::Backend::Redis).await;
            }

            #[cfg(feature = "postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body(support::Backend::Postgres).await;
            }
        }
    };
}

/// Pids of live processes whose command line contains `marker` (zombies excluded).
pub(crate) fn processes_with(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state is the field after the parenthesised command name.
            let zombie =
                stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmdline).contains(marker)
        })
        .collect()
}

/// A daemon on the fake Linear (team ENG) with `storage`, polling every 300 ms, one worker per
/// task, short backoff: the fault tests' starting point.
pub(crate) fn linear_daemon(
    dir: &Path,
    linear_url: &str,
    linear_key: &str,
    storage: &Storage,
) -> DaemonCmd {
    DaemonCmd::new(dir)
        .storage(storage)
        .env("AGENTFLOW_LINEAR_API_KEY", linear_key)
        .env("AGENTFLOW_LINEAR_API_URL", linear_url)
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "300ms")
        .env("AGENTFLOW_ENGINE_PROGRESS_INTERVAL", "200ms")
        .env("AGENTFLOW_ENGINE_RETRY_BACKOFF", "500ms")
        .env("AGENTFLOW_ENGINE_LEASE", "10s")
        .env("AGENTFLOW_ENGINE_SHUTDOWN_GRACE", "2s")
}

/// Writes an executable shell script `name` into `dir` and returns its path.
pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The runs of task `id` from `/api/runs`, oldest first.
pub(crate) async fn runs_of(daemon: &Daemon, id: &str) -> Vec<Value> {
    let runs = daemon.get_json("/api/runs?per_page=200&order=asc").await;
    runs["runs"]
        .as_array()
        .map(|r| r.iter().filter(|r| r["task"] == id).cloned().collect())
        .unwrap_or_default()
}

/// An RFC 3339 field of a JSON object as a time.
pub(crate) fn time_of(v: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    v[field]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("no time {field} in {v}"))
        .with_timezone(&chrono::Utc)
}

/// The daemon's final reports on an issue (done, ready for review, failed).
pub(crate) fn summaries(
    linear: &agentflow_testkit::fake_linear::FakeLinear,
    issue: &str,
) -> Vec<agentflow_testkit::fake_linear::FakeComment> {
    use agentflow_testkit::fake_linear::FakeLinear;
    linear
        .comments(issue)
        .into_iter()
        .filter(|c| {
            c.user_id.as_deref() == Some(FakeLinear::VIEWER_ID)
                && ["✅ **Done**", "👀 **Ready for review**", "❌ **Failed**"]
                    .iter()
                    .any(|p| c.body.starts_with(p))
        })
        .collect()
}

/// Whether `issue` is in `state` and, for a state that ends a run (Done, In Review, Failed), its
/// summary is posted too: the daemon writes the status first and the summary right after, so a
/// test that checks comments must wait for both.
pub(crate) fn settled(
    linear: &agentflow_testkit::fake_linear::FakeLinear,
    issue: &str,
    state: &str,
) -> bool {
    linear.issue_state_name(issue).as_deref() == Some(state)
        && (!matches!(state, "Done" | "In Review" | "Failed")
            || !summaries(linear, issue).is_empty())
}
