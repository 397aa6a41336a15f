//! Settings, result rows and fresh names shared by the systems.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The backend a system runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Redis,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) system: String,
    pub(crate) backend: Backend,
    pub(crate) jobs: usize,
    pub(crate) workers: Vec<usize>,
    pub(crate) redis_url: String,
    pub(crate) postgres_url: String,
    /// Bound on one drain.
    pub(crate) drain_timeout: Duration,
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn parse_workers(list: &str) -> Result<Vec<usize>, String> {
    let workers: Vec<usize> = list
        .split(',')
        .map(|w| w.trim().parse::<usize>().map_err(|e| format!("worker count `{w}`: {e}")))
        .collect::<Result<_, _>>()?;
    if workers.is_empty() || workers.contains(&0) {
        return Err(format!("worker counts must be positive: `{list}`"));
    }
    Ok(workers)
}

/// The host of a `scheme://[user@]host[:port]/...` URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host_port.split(':').next().unwrap_or_default()
}

fn loopback(url: &str) -> Result<String, String> {
    match host_of(url) {
        "127.0.0.1" | "localhost" | "::1" => Ok(url.to_owned()),
        other => Err(format!("loopback servers only, not `{other}`")),
    }
}

impl Settings {
    pub(crate) fn parse(args: &[String]) -> Result<Settings, String> {
        let mut positional = Vec::new();
        let mut jobs = env_or("PEERS_JOBS", "10000");
        let mut workers = env_or("PEERS_WORKERS", "1,4,16");
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--jobs" => jobs = it.next().ok_or("--jobs needs a value")?.clone(),
                "--workers" => workers = it.next().ok_or("--workers needs a value")?.clone(),
                other if other.starts_with('-') => return Err(format!("unknown option `{other}`")),
                other => positional.push(other.to_owned()),
            }
        }
        let [system, backend] = positional.as_slice() else {
            return Err("expected a system and a backend".to_owned());
        };
        let backend = match backend.as_str() {
            "sqlite" => Backend::Sqlite,
            "redis" => Backend::Redis,
            "postgres" => Backend::Postgres,
            other => return Err(format!("unknown backend `{other}`")),
        };
        let jobs: usize = jobs.parse().map_err(|e| format!("--jobs `{jobs}`: {e}"))?;
        if jobs == 0 {
            return Err("--jobs must be positive".to_owned());
        }
        let timeout: u64 = env_or("PEERS_DRAIN_TIMEOUT_S", "60")
            .parse()
            .map_err(|e| format!("PEERS_DRAIN_TIMEOUT_S: {e}"))?;
        Ok(Settings {
            system: system.clone(),
            backend,
            jobs,
            workers: parse_workers(&workers)?,
            redis_url: loopback(&env_or("PEERS_REDIS_URL", "redis://127.0.0.1:6379"))?,
            postgres_url: loopback(&env_or(
                "PEERS_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ))?,
            drain_timeout: Duration::from_secs(timeout),
        })
    }

    /// The share of `jobs` producer or worker `p` of `n` takes.
    pub(crate) fn share(&self, p: usize, n: usize) -> usize {
        self.jobs / n + usize::from(p < self.jobs % n)
    }
}

/// One measurement.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) system: &'static str,
    pub(crate) backend: Backend,
    pub(crate) workers: usize,
    pub(crate) jobs: usize,
    pub(crate) enqueue: Duration,
    pub(crate) drain: Duration,
    /// Jobs the backend reports completed after the drain (must equal `jobs`).
    pub(crate) completed: u64,
}

impl Row {
    pub(crate) fn print(&self) {
        println!(
            "RESULT\t{}\t{}\t{}\t{}\t{:.6}\t{:.6}\t{}",
            self.system,
            self.backend.name(),
            self.workers,
            self.jobs,
            self.enqueue.as_secs_f64(),
            self.drain.as_secs_f64(),
            self.completed
        );
    }

    /// Fails unless exactly `jobs` jobs completed.
    pub(crate) fn verified(self) -> Result<Row, String> {
        if self.completed == self.jobs as u64 {
            Ok(self)
        } else {
            Err(format!("{} jobs completed, expected exactly {}", self.completed, self.jobs))
        }
    }
}

/// A name no other measurement uses (key prefix, schema, database, queue).
pub(crate) fn fresh_name(kind: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "afpeers_{kind}_{}_{nanos:08x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes every Redis key starting with `prefix` (SCAN + DEL, bounded).
pub(crate) async fn delete_redis_keys(url: &str, prefix: &str) -> Result<u64, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    for _ in 0..100_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            deleted += n;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(deleted)
}
