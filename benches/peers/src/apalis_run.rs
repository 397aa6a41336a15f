//! apalis 1.0 with its own storages (apalis-sqlite, apalis-redis, apalis-postgres), used the
//! way its READMEs show: producers `push` one job at a time; `workers` apalis workers (each
//! with its own fetch loop, `batch_size` = 32 like agentflow's reserve batch) run a no-op
//! handler; apalis acknowledges each job (status `Done`) through its batched event sink. The
//! drain ends when all workers have stopped after the N-th job, i.e. after their final acks were
//! flushed; the storage is then asked how many jobs are `Done`.
//!
//! `PEERS_APALIS_MODE=concurrency` runs one worker with `.concurrency(workers)` instead of
//! `workers` workers; `PEERS_APALIS_BATCH` sets `batch_size`.

use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use apalis::prelude::*;
use tokio::sync::watch;

use crate::common::{Backend, Row, Settings, delete_redis_keys, fresh_name};

type Job = u64;

/// Jobs the handler ran in the current measurement.
static PROCESSED: AtomicUsize = AtomicUsize::new(0);
/// Jobs of the current measurement.
static TARGET: AtomicUsize = AtomicUsize::new(0);
/// Set when the handler ran the last job.
static DONE: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// The no-op job.
async fn noop(_job: Job) -> Result<(), BoxDynError> {
    let n = PROCESSED.fetch_add(1, Ordering::SeqCst) + 1;
    if n == TARGET.load(Ordering::SeqCst) {
        DONE.send_replace(true);
    }
    Ok(())
}

fn batch_size() -> usize {
    std::env::var("PEERS_APALIS_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

/// (worker instances, concurrency of each).
fn layout(workers: usize) -> (usize, usize) {
    match std::env::var("PEERS_APALIS_MODE").as_deref() {
        Ok("concurrency") => (1, workers),
        _ => (workers, 1),
    }
}

/// Enqueues `settings.jobs` jobs with `workers` producers, each pushing through its own clone
/// of `storage`. Returns the time taken.
macro_rules! enqueue {
    ($settings:expr, $workers:expr, $storage:expr) => {{
        let started = Instant::now();
        let mut producers = Vec::new();
        for p in 0..$workers {
            let mut storage = $storage.clone();
            let share = $settings.share(p, $workers);
            producers.push(tokio::spawn(async move {
                for i in 0..share {
                    storage.push(i as Job).await.map_err(|e| format!("push: {e}"))?;
                }
                Ok::<(), String>(())
            }));
        }
        for p in producers {
            p.await.map_err(|e| e.to_string())??;
        }
        started.elapsed()
    }};
}

/// Drains with fresh workers built on clones of `storage`; returns the time until every worker
/// stopped after the last job.
macro_rules! drain {
    ($settings:expr, $workers:expr, $storage:expr) => {{
        PROCESSED.store(0, Ordering::SeqCst);
        TARGET.store($settings.jobs, Ordering::SeqCst);
        DONE.send_replace(false);
        let mut done = DONE.subscribe();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (instances, concurrency) = layout($workers);
        let started = Instant::now();
        let mut running = Vec::new();
        for w in 0..instances {
            let mut stop = stop_rx.clone();
            let worker = WorkerBuilder::new(format!("peers-{w}-{}", fresh_name("w")))
                // An idle apalis worker sleeps until its poll strategy wakes it; without one a
                // worker whose fetch came back empty (jobs still in the scheduled set) can wait
                // for its 30 s heartbeat. 5 ms, as agentflow's idle workers retry at once.
                .backend($storage.clone().poll_with_interval(std::time::Duration::from_millis(5)))
                .concurrency(concurrency)
                .build(noop);
            running.push(tokio::spawn(worker.run_until(async move {
                let _ = stop.wait_for(|s| *s).await;
                Ok::<(), WorkerError>(())
            })));
        }
        let finished = tokio::time::timeout($settings.drain_timeout, done.wait_for(|d| *d)).await;
        stop_tx.send_replace(true);
        for r in running {
            tokio::time::timeout(std::time::Duration::from_secs(10), r)
                .await
                .map_err(|_| "a worker did not stop within 10 s".to_owned())?
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("worker: {e}"))?;
        }
        let drain = started.elapsed();
        if finished.is_err() {
            return Err(format!(
                "{} of {} jobs ran within {:?}",
                PROCESSED.load(Ordering::SeqCst),
                $settings.jobs,
                $settings.drain_timeout
            ));
        }
        let ran = PROCESSED.load(Ordering::SeqCst);
        if ran != $settings.jobs {
            return Err(format!("the handler ran {ran} times for {} jobs", $settings.jobs));
        }
        drain
    }};
}

pub(crate) async fn sqlite(settings: &Settings, workers: usize) -> Result<Row, String> {
    use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqliteStorage};
    let dir = tempfile::Builder::new().prefix("afpeers").tempdir().map_err(|e| e.to_string())?;
    // sqlx's default busy timeout (5 s) is too short for several workers on a loaded machine
    // ("database is locked"); give apalis a minute, as long as it may need.
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("apalis.db"))
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::from_secs(60));
    let pool = SqlitePool::connect_with(options).await.map_err(|e| e.to_string())?;
    SqliteStorage::setup(&pool).await.map_err(|e| e.to_string())?;
    let queue = fresh_name("apalis");
    let config = Config::default().queue(&queue).batch_size(batch_size());
    let storage = SqliteStorage::<Job>::new(&pool).with_config(config);

    let enqueue = enqueue!(settings, workers, storage);
    let drain = drain!(settings, workers, storage);

    let (completed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done'")
            .bind(&queue)
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
    pool.close().await;
    dir.close().map_err(|e| e.to_string())?;
    Row {
        system: "apalis",
        backend: Backend::Sqlite,
        workers,
        jobs: settings.jobs,
        enqueue,
        drain,
        completed: completed as u64,
    }
    .verified()
}

pub(crate) async fn redis(settings: &Settings, workers: usize) -> Result<Row, String> {
    use apalis_redis::{Config, RedisStorage};
    let conn =
        apalis_redis::connect(settings.redis_url.as_str()).await.map_err(|e| e.to_string())?;
    let queue = fresh_name("apalis");
    let config = Config::default().queue(&queue).batch_size(batch_size());
    let done_set = config.done_jobs_set();
    let storage = RedisStorage::<Job, _>::new(conn.clone()).with_config(config);

    let result = async {
        let enqueue = enqueue!(settings, workers, storage);
        let drain = drain!(settings, workers, storage);
        let completed: u64 = redis::cmd("SCARD")
            .arg(&done_set)
            .query_async(&mut conn.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(Row {
            system: "apalis",
            backend: Backend::Redis,
            workers,
            jobs: settings.jobs,
            enqueue,
            drain,
            completed,
        })
    }
    .await;
    drop(storage);
    let cleaned = delete_redis_keys(&settings.redis_url, &queue).await;
    let row = result?;
    cleaned?;
    row.verified()
}

pub(crate) async fn postgres(settings: &Settings, workers: usize) -> Result<Row, String> {
    use apalis_postgres::{Config, PgConnectOptions, PostgresStorage};
    use sqlx::postgres::PgPoolOptions;
    // apalis keeps its tables in a fixed `apalis` schema: each measurement gets a database.
    let admin = sqlx::PgPool::connect(&settings.postgres_url).await.map_err(|e| e.to_string())?;
    let database = fresh_name("apalis");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{database}\"")))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let options = PgConnectOptions::from_str(&settings.postgres_url)
            .map_err(|e| e.to_string())?
            .database(&database);
        // The same pool size as agentflow's PgQueue.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .map_err(|e| e.to_string())?;
        PostgresStorage::setup(&pool).await.map_err(|e| e.to_string())?;
        let queue = fresh_name("q");
        let config = Config::default().queue(&queue).batch_size(batch_size());
        let storage = PostgresStorage::<Job>::new(&pool).with_config(config);

        let enqueue = enqueue!(settings, workers, storage);
        let drain = drain!(settings, workers, storage);

        let (completed,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(&queue)
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
        pool.close().await;
        Ok::<_, String>(Row {
            system: "apalis",
            backend: Backend::Postgres,
            workers,
            jobs: settings.jobs,
            enqueue,
            drain,
            completed: completed as u64,
        })
    }
    .await;
    let dropped =
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{database}\" WITH (FORCE)")))
            .execute(&admin)
            .await
            .map_err(|e| e.to_string());
    admin.close().await;
    let row = result?;
    dropped?;
    row.verified()
}
