//! Shared by this crate's integration tests: the shared Redis on 127.0.0.1:6379 (fail under CI
//! when it is down, skip with a note otherwise), fresh key prefixes, and private `redis-server`
//! processes on free ports for fault tests.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentflow_redis::{RedisQueue, RedisQueueConfig};

pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// Whether the shared Redis answers. Under `CI` a dead Redis fails the test; elsewhere the test
/// prints a note and returns early.
pub async fn shared_redis() -> bool {
    let up = async {
        let client = redis::Client::open(SHARED_URL).ok()?;
        let mut conn =
            tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
                .await
                .ok()?
                .ok()?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
    }
    .await
    .is_some();
    if !up {
        if std::env::var_os("CI").is_some() {
            panic!(
                "Redis at {SHARED_URL} is unreachable and CI is set: start it (scripts/services.sh)"
            );
        }
        eprintln!("note: Redis at {SHARED_URL} is unreachable; skipping (set CI to fail instead)");
    }
    up
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("agentflow-test-{:016x}", fastrand::u64(..))
}

pub fn config(url: &str) -> RedisQueueConfig {
    RedisQueueConfig::new(url).prefix(fresh_prefix()).queue("q")
}

pub async fn queue(config: RedisQueueConfig) -> RedisQueue {
    RedisQueue::connect(config).await.expect("connect to redis")
}

/// A `redis-server` of our own on a free loopback port, killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    persistent: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PrivateRedis {
    /// Starts one; `persistent` turns on AOF with fsync on every write (for restart tests).
    pub fn start(persistent: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = PrivateRedis { port: free_port(), dir, child: None, persistent };
        server.spawn();
        server
    }

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
            .arg(self.log_path());
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

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let client = redis::Client::open(self.url()).unwrap();
        while Instant::now() < deadline {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("private redis-server on port {} did not come up", self.port);
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts it again on the same port and directory.
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
