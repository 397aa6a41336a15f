//! agentflow's queues: producers `enqueue` one job at a time (each with a unique key, as the
//! engine does), workers `reserve` up to [`RESERVE_BATCH`] jobs and acknowledge them with
//! `complete_many` (one result per lease), the same loop as `agentflow_testkit::bench`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentflow_core::{JobKind, JobQueue, JobSpec, WorkerId};

use crate::common::{Backend, Row, Settings, delete_redis_keys, fresh_name};

/// Jobs a worker reserves at once (as in `agentflow_testkit::bench::RESERVE_BATCH`).
const RESERVE_BATCH: usize = 32;

/// What to remove once a measurement is over.
enum Cleanup {
    /// The temporary directory holding the SQLite file goes when dropped.
    Dir(#[allow(dead_code)] tempfile::TempDir),
    RedisPrefix(String),
    PgSchema(sqlx::PgPool, String),
}

async fn open(
    settings: &Settings,
    backend: Backend,
) -> Result<(Arc<dyn JobQueue>, Cleanup), String> {
    match backend {
        Backend::Sqlite => {
            let dir =
                tempfile::Builder::new().prefix("afpeers").tempdir().map_err(|e| e.to_string())?;
            let path = dir.path().join("agentflow.db");
            let db = agentflow_sqlite::Database::open(
                &path.display().to_string(),
                agentflow_sqlite::SqliteOptions::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok((Arc::new(db.queue()), Cleanup::Dir(dir)))
        }
        Backend::Redis => {
            let prefix = fresh_name("af");
            let config = agentflow_redis::RedisQueueConfig::new(settings.redis_url.clone())
                .prefix(prefix.clone());
            let queue =
                agentflow_redis::RedisQueue::connect(config).await.map_err(|e| e.to_string())?;
            // Keys are `{<prefix>:<queue>}:…`.
            Ok((Arc::new(queue), Cleanup::RedisPrefix(format!("{{{prefix}:"))))
        }
        Backend::Postgres => {
            let schema = fresh_name("af");
            let config = agentflow_postgres::PgConfig::new(settings.postgres_url.clone())
                .schema(schema.clone())
                .max_connections(16);
            let queue =
                agentflow_postgres::PgQueue::connect(&config).await.map_err(|e| e.to_string())?;
            let admin =
                sqlx::PgPool::connect(&settings.postgres_url).await.map_err(|e| e.to_string())?;
            Ok((Arc::new(queue), Cleanup::PgSchema(admin, schema)))
        }
    }
}

async fn cleanup(settings: &Settings, cleanup: Cleanup) -> Result<(), String> {
    match cleanup {
        Cleanup::Dir(dir) => dir.close().map_err(|e| e.to_string()),
        Cleanup::RedisPrefix(prefix) => {
            delete_redis_keys(&settings.redis_url, &prefix).await.map(drop)
        }
        Cleanup::PgSchema(admin, schema) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                .execute(&admin)
                .await
                .map_err(|e| e.to_string())?;
            admin.close().await;
            Ok(())
        }
    }
}

pub(crate) async fn measure(
    settings: &Settings,
    backend: Backend,
    workers: usize,
) -> Result<Row, String> {
    let (queue, to_clean) = open(settings, backend).await?;
    let result = run(settings, backend, workers, queue.clone()).await;
    drop(queue);
    // Let the queue's background tasks (wakeups, batchers) see it dropped before cleaning up.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cleaned = cleanup(settings, to_clean).await;
    let row = result?;
    cleaned?;
    row.verified()
}

async fn run(
    settings: &Settings,
    backend: Backend,
    workers: usize,
    queue: Arc<dyn JobQueue>,
) -> Result<Row, String> {
    let jobs = settings.jobs;

    let started = Instant::now();
    let mut producers = Vec::with_capacity(workers);
    for p in 0..workers {
        let queue = queue.clone();
        let share = settings.share(p, workers);
        producers.push(tokio::spawn(async move {
            for i in 0..share {
                let spec = JobSpec::new(JobKind::Execute, format!("peers-{p}-{i}"))
                    .unique_key(format!("peers:{p}:{i}"));
                let enqueued = queue.enqueue(spec).await.map_err(|e| format!("enqueue: {e}"))?;
                if !enqueued.is_new() {
                    return Err(format!("job {p}/{i} was deduplicated"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for p in producers {
        p.await.map_err(|e| e.to_string())??;
    }
    let enqueue = started.elapsed();

    let started = Instant::now();
    let deadline = started + settings.drain_timeout;
    let completed = Arc::new(AtomicUsize::new(0));
    let mut drainers = Vec::with_capacity(workers);
    for w in 0..workers {
        let (queue, completed) = (queue.clone(), completed.clone());
        drainers.push(tokio::spawn(async move {
            let worker = WorkerId(format!("peers-{w}"));
            let mut mine = Vec::new();
            while completed.load(Ordering::Relaxed) < jobs {
                if Instant::now() > deadline {
                    return Err(format!("{jobs} jobs not drained in time"));
                }
                let leases = queue
                    .reserve(&worker, Duration::from_secs(300), RESERVE_BATCH)
                    .await
                    .map_err(|e| format!("reserve: {e}"))?;
                if leases.is_empty() {
                    tokio::task::yield_now().await;
                    continue;
                }
                // The no-op job runs here; then every lease is acknowledged.
                for r in queue.complete_many(&leases).await.map_err(|e| format!("complete: {e}"))? {
                    r.map_err(|e| format!("complete of an own lease: {e}"))?;
                }
                completed.fetch_add(leases.len(), Ordering::Relaxed);
                mine.extend(leases.into_iter().map(|l| l.job.id));
            }
            Ok::<_, String>(mine)
        }));
    }
    let mut seen = HashSet::with_capacity(jobs);
    for d in drainers {
        for id in d.await.map_err(|e| e.to_string())?? {
            if !seen.insert(id) {
                return Err(format!("job {id} completed twice"));
            }
        }
    }
    let drain = started.elapsed();
    let stats = queue.stats().await.map_err(|e| format!("stats: {e}"))?;
    if stats.queued() + stats.running != 0 || seen.len() != jobs {
        return Err(format!("{} distinct jobs completed, left: {stats:?}", seen.len()));
    }
    Ok(Row {
        system: "agentflow",
        backend,
        workers,
        jobs,
        enqueue,
        drain,
        completed: stats.completed,
    })
}
