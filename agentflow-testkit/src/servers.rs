//! Database servers of a test's own, on free loopback ports in temporary directories, for fault
//! tests that stop, restart or wipe them without touching the shared services.
//!
//! - [`PrivateRedis`]: a `redis-server` (optionally with an fsync-always append-only file, so
//!   a restart keeps every acknowledged write).
//! - [`PrivatePostgres`]: `initdb` + `pg_ctl` from `/usr/lib/postgresql/*/bin`, run as the
//!   `postgres` user through `runuser` when the test runs as root (initdb refuses root).
//!
//! Both are stopped when dropped.
//!
//! ```no_run
//! use agentflow_testkit::servers::PrivateRedis;
//! let mut redis = PrivateRedis::start(true);
//! assert_eq!(redis.command(&["SET", "k", "v"]), "+OK");
//! redis.restart();
//! assert_eq!(redis.command(&["GET", "k"]), "$1\r\nv");
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A `redis-server` of our own on a free loopback port; SIGKILLed when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    persistent: bool,
}

impl PrivateRedis {
    /// Starts one and waits until it answers `PING`. `persistent` turns on the append-only file
    /// with fsync on every write, so [`restart`](Self::restart) loses nothing acknowledged.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not come up within 15 s.
    pub fn start(persistent: bool) -> PrivateRedis {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let mut server = PrivateRedis { port: free_port(), dir, child: None, persistent };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--protected-mode")
            .arg("no")
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services.sh installs it in CI)");
        self.child = Some(child);
        self.wait_up();
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.try_command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("private redis-server on port {} did not come up", self.port);
    }

    /// Sends one command and returns the raw reply without its final CRLF (`+OK`, `:3`,
    /// `$1\r\nv`, `-ERR …`).
    ///
    /// # Panics
    /// When the server does not answer within 5 s.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis on port {}: {e}: {args:?}", self.port))
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut conn = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(500),
        )?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        conn.write_all(req.as_bytes())?;
        // One reply: enough for the simple commands tests send (status, integer, bulk string).
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        loop {
            let n = conn.read(&mut buf[got..])?;
            got += n;
            let text = String::from_utf8_lossy(&buf[..got]);
            let complete = match text.as_bytes().first() {
                Some(b'$') => text
                    .split_once("\r\n")
                    .and_then(|(len, rest)| {
                        let len: i64 = len[1..].parse().ok()?;
                        Some(len < 0 || rest.len() >= len as usize + 2)
                    })
                    .unwrap_or(false),
                Some(_) => text.ends_with("\r\n"),
                None => false,
            };
            if complete || n == 0 {
                return Ok(text.trim_end_matches("\r\n").to_owned());
            }
        }
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Postgres server of our own (`initdb` + `pg_ctl`, trust auth, user `postgres`) on a free
/// loopback port; stopped (`immediate`) when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates a cluster in a temporary directory and starts it.
    ///
    /// # Panics
    /// When the server binaries (`/usr/lib/postgresql/*/bin`) or, as root, the `postgres` user
    /// are missing, or initdb/pg_ctl fail.
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("/usr/lib/postgresql (the Postgres server binaries) is required")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new().prefix("agentflow-pg-").tempdir().expect("temp dir");
        if nix::unistd::Uid::effective().is_root() {
            let pg = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("a `postgres` user (initdb refuses to run as root)");
            nix::unistd::chown(dir.path(), Some(pg.uid), Some(pg.gid)).expect("chown the data dir");
        }
        let data = dir.path().join("data");
        let out = run_tool(
            &bin,
            "initdb",
            &["-D", &data.to_string_lossy(), "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let server = PrivatePostgres { port: free_port(), dir, bin };
        server.resume();
        server
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the stopped server again (`pg_ctl start`, waiting until it accepts connections).
    pub fn resume(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let out = run_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server with `pg_ctl stop -m <mode>` (`smart`, `fast` or `immediate`).
    pub fn stop(&self, mode: &str) {
        let data = self.dir.path().join("data");
        let out = run_tool(
            &self.bin,
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", mode, "-w", "-t", "30", "stop"],
        );
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops (`fast`: connections are terminated) and starts it again.
    pub fn restart(&self) {
        self.stop("fast");
        self.resume();
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run_tool(
            &self.bin,
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"],
        );
    }
}

/// Runs a server tool, as the `postgres` user when we are root.
fn run_tool(bin: &Path, tool: &str, args: &[&str]) -> Output {
    let mut cmd = if nix::unistd::Uid::effective().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    cmd.args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {tool}: {e}"))
}
