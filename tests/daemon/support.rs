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
// The fault suite (tests/fault_*.rs, tests/soak.rs): one test per storage backend.
// ---------------------------------------------------------------------------------------------

/// Gates a test on the feature its backend needs: `sqlite` always, `redis` and `postgres` only
/// with their features (`cargo test --all-features` runs them all).
#[allow(unused_macros)]
macro_rules! backend_cfg {
    (sqlite, $item:item) => {
        $item
    };
    (redis, $item:item) => {
        #[cfg(feature = "redis")]
        $item
    };
    (postgres, $item:item) => {
        #[cfg(feature = "postgres")]
        $item
    };
}
#[allow(unused_imports)]
pub(crate) use backend_cfg;

/// One test per backend. `on_backends!(scenario: sqlite, redis, postgres);` makes a module
/// `scenario` with a test `sqlite` calling `scenario(Backend::Sqlite)`, and so on;
/// `on_backends!(name => scenario: …)` names the module `name` instead.
#[allow(unused_macros)]
macro_rules! on_backends {
    ($scenario:ident: $($backend:ident),+ $(,)?) => {
        mod $scenario {
            $(
                crate::support::backend_cfg!($backend,
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $backend() {
                        super::$scenario(crate::support::Backend::from_name(stringify!($backend)))
                            .await;
                    }
                );
            )+
        }
    };
    ($name:ident => $scenario:ident: $($backend:ident),+ $(,)?) => {
        mod $name {
            $(
                crate::support::backend_cfg!($backend,
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $backend() {
                        super::$scenario(crate::support::Backend::from_name(stringify!($backend)))
                            .await;
                    }
                );
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_backends;

/// The shared services (`scripts/services.sh`).
pub(crate) const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The shared Redis.
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Where the job queue (and for Postgres the state) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Queue and state in one SQLite file per daemon.
    Sqlite,
    /// Queue on Redis; state in a SQLite file per daemon.
    Redis,
    /// Queue and state on Postgres.
    Postgres,
}

impl Backend {
    pub(crate) fn from_name(name: &str) -> Backend {
        match name {
            "sqlite" => Backend::Sqlite,
            "redis" => Backend::Redis,
            "postgres" => Backend::Postgres,
            other => panic!("no backend {other}"),
        }
    }
}

/// Whether a service answers on 127.0.0.1:`port`. Under `CI` a dead service fails the test;
/// elsewhere the test is skipped with a note.
pub(crate) fn service_up(name: &str, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let up = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not answering on {addr} and CI is set"
        );
        eprintln!("skipping: {name} is not answering on {addr}");
    }
    up
}

/// A name no other test uses: `aft_<unix secs>_<random>` (the Postgres tests drop such schemas
/// once they are an hour old, so the leftovers of a killed test run go away).
pub(crate) fn fresh_name() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let salt = now.subsec_nanos() ^ std::process::id().rotate_left(16) ^ seq.rotate_left(24);
    format!("aft_{}_{salt:08x}", now.as_secs())
}

/// Where a test's daemons keep their queue and state: SQLite files in each daemon's directory,
/// or a key prefix (`?prefix=`) or schema (`?schema=`) of its own on a shared or test-owned
/// server, so tests never see each other's jobs. The schema is dropped with the value.
#[derive(Debug)]
pub(crate) struct Storage {
    pub(crate) backend: Backend,
    /// The Postgres URL (with `?schema=`) for [`Backend::Postgres`].
    postgres: Option<String>,
    /// The Redis URL (with `?prefix=`) for [`Backend::Redis`].
    redis: Option<String>,
    /// The server and schema to drop at the end.
    schema: Option<(String, String)>,
}

impl Storage {
    /// Fresh storage on the shared services. `None` when the service is down outside CI (the
    /// test is skipped).
    pub(crate) fn shared(backend: Backend) -> Option<Storage> {
        match backend {
            Backend::Sqlite => Some(Storage::sqlite()),
            Backend::Redis => service_up("Redis", 6379).then(|| Storage::redis(REDIS_URL)),
            Backend::Postgres => {
                service_up("Postgres", 5432).then(|| Storage::postgres(POSTGRES_URL))
            }
        }
    }

    /// SQLite files in each daemon's directory.
    pub(crate) fn sqlite() -> Storage {
        Storage { backend: Backend::Sqlite, postgres: None, redis: None, schema: None }
    }

    /// The queue on the Redis at `url`, under a fresh key prefix.
    pub(crate) fn redis(url: &str) -> Storage {
        Storage {
            backend: Backend::Redis,
            postgres: None,
            redis: Some(format!("{url}?prefix={}", fresh_name())),
            schema: None,
        }
    }

    /// Queue and state on the Postgres at `url`, in a fresh schema.
    pub(crate) fn postgres(url: &str) -> Storage {
        let schema = fresh_name();
        Storage {
            backend: Backend::Postgres,
            postgres: Some(format!("{url}?schema={schema}")),
            redis: None,
            schema: Some((url.to_owned(), schema)),
        }
    }

    /// `storage.database_url` for a daemon working in `dir`.
    pub(crate) fn database_url(&self, dir: &Path) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.join("agentflow.db").display()),
        }
    }

    /// `storage.queue_url`, when it is not the database.
    pub(crate) fn queue_url(&self) -> Option<String> {
        self.redis.clone()
    }

    /// Points `cmd` (a daemon working in `dir`) at this storage.
    pub(crate) fn apply(&self, cmd: DaemonCmd, dir: &Path) -> DaemonCmd {
        let cmd = cmd.env("AGENTFLOW_STORAGE_DATABASE_URL", self.database_url(dir));
        match self.queue_url() {
            Some(q) => cmd.env("AGENTFLOW_STORAGE_QUEUE_URL", q),
            None => cmd,
        }
    }

    /// The queue as the daemon working in `dir` sees it (opened by this test, to count jobs).
    pub(crate) async fn queue(&self, dir: &Path) -> Arc<dyn agentflow::JobQueue> {
        let url = self.database_url(dir);
        let queue = self.queue_url();
        agentflow::backend::open(&url, queue.as_deref()).await.expect("open the backends").queue
    }

    /// Removes the Postgres schema (the test's state and queue): `DROP SCHEMA … CASCADE`.
    pub(crate) fn drop_schema(&self) {
        if let Some((url, schema)) = &self.schema {
            psql(url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if self.schema.is_some() && !std::thread::panicking() {
            self.drop_schema();
        }
    }
}

/// Runs one SQL statement with `psql` (installed with the server).
pub(crate) fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("psql (installed with Postgres)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
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
    storage
        .apply(DaemonCmd::new(dir), dir)
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
