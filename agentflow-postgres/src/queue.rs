//! [`PgQueue`]: the [`JobQueue`] on Postgres.

mod notify;
mod ops;
mod row;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{CancellationToken, Enqueued, JobId, JobSpec, Lease, Result, WorkerId};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use crate::batch::Batcher;
use crate::config::PgConfig;
use crate::error::db;
use crate::migrate::migrate_pool;
use notify::Wakeups;
pub(crate) use row::uuid_v7_floor;
use sql::QueueSql;

/// A durable job queue in Postgres, safe to share between any number of processes.
///
/// Reserve is one statement (`FOR UPDATE SKIP LOCKED` in a CTE over a partial index), leases
/// carry a random token and an expiry from the database clock, finished jobs move to
/// `jobs_done` so the hot table holds live jobs only. Concurrent `enqueue`, `reserve` and
/// `complete` calls in one process are folded into one statement each (group commit); see the
/// crate docs.
///
/// Cloning is cheap and clones share the pool and the background tasks, which stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgQueue").field("schema", &self.inner.schema).finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pool: PgPool,
    schema: String,
    sql: Arc<QueueSql>,
    wakeups: Arc<Wakeups>,
    enqueuer: Batcher<JobSpec, Enqueued>,
    reserver: Batcher<ReserveReq, Vec<Lease>>,
    completer: Batcher<Vec<(JobId, Uuid)>, Vec<Result<()>>>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One caller's reserve request.
pub(crate) struct ReserveReq {
    worker: WorkerId,
    lease_for: Duration,
    max: usize,
}

impl PgQueue {
    /// Connects with `config`, running the migrations unless `config.run_migrations` is off.
    ///
    /// ```no_run
    /// # async fn f() -> agentflow_core::Result<()> {
    /// use agentflow_postgres::{PgConfig, PgQueue};
    /// let queue = PgQueue::connect(&PgConfig::new("postgres://postgres@127.0.0.1/agentflow")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        let pool = config.pool().await?;
        Self::with_pool(pool, config).await
    }

    /// Uses an existing pool (e.g. shared with a [`PgStore`](crate::PgStore)).
    pub async fn with_pool(pool: PgPool, config: &PgConfig) -> Result<Self> {
        config.validate()?;
        if config.run_migrations {
            migrate_pool(&pool, &config.schema).await?;
        }
        let sql = Arc::new(QueueSql::new(&config.schema));
        let stop = CancellationToken::new();
        let wakeups = Wakeups::new(sql.channel.clone(), config.poll_interval);
        wakeups.spawn_notifier(
            pool.clone(),
            sql.notify.clone(),
            config.notify_debounce,
            stop.clone(),
        );
        // Batches in flight per kind: each is one statement on its own connection. Concurrent
        // commits also share WAL flushes inside Postgres, so a few slots beat one big batch.
        let slots = (config.max_connections as usize / 2).max(2);
        let max_batch = config.max_batch;
        let enqueuer = {
            let (pool, sql) = (pool.clone(), sql.clone());
            Batcher::spawn("enqueue", max_batch, slots, move |specs| {
                ops::enqueue_batch(pool.clone(), sql.clone(), specs)
            })
        };
        let reserver = {
            let (pool, sql) = (pool.clone(), sql.clone());
            Batcher::spawn("reserve", max_batch, slots, move |reqs| {
                ops::reserve_batch(pool.clone(), sql.clone(), reqs)
            })
        };
        let completer = {
            let (pool, sql) = (pool.clone(), sql.clone());
            Batcher::spawn("complete", max_batch, slots, move |reqs| {
                ops::complete_batch(pool.clone(), sql.clone(), reqs)
            })
        };
        if let Some(retention) = config.retention {
            spawn_pruner(pool.clone(), sql.clone(), retention, stop.clone());
        }
        Ok(PgQueue {
            inner: Arc::new(Inner {
                pool,
                schema: config.schema.clone(),
                sql,
                wakeups,
                enqueuer,
                reserver,
                completer,
                stop,
            }),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Deletes finished jobs that finished more than `older_than` ago; returns how many.
    pub async fn prune_finished(&self, older_than: Duration) -> Result<u64> {
        prune(&self.inner.pool, &self.inner.sql, older_than).await
    }

    /// The plan Postgres chooses for the reserve statement (`EXPLAIN` output, one line per
    /// row), to check that it walks the partial index `jobs_ready_idx` and reads no table
    /// sequentially. Nothing is reserved.
    pub async fn explain_reserve(&self, max: usize) -> Result<String> {
        let mut tx = self.inner.pool.begin().await.map_err(db("explain reserve"))?;
        // A prepared statement's generic plan is what the queue runs after five executions.
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .map_err(db("explain reserve"))?;
        let lines: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {}", self.inner.sql.reserve)))
                .bind(i64::try_from(max).unwrap_or(i64::MAX))
                .bind("explain")
                .bind(Duration::from_secs(1))
                .fetch_all(&mut *tx)
                .await
                .map_err(db("explain reserve"))?;
        tx.rollback().await.map_err(db("explain reserve"))?;
        Ok(lines.join("\n"))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

async fn prune(pool: &PgPool, sql: &QueueSql, older_than: Duration) -> Result<u64> {
    let bound = chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .unwrap_or_default();
    let floor = uuid_v7_floor(bound);
    let mut total = 0;
    // Bounded: 1,000 chunks of 10,000 rows per call.
    for _ in 0..1000 {
        let n = sqlx::query(AssertSqlSafe(sql.prune.clone()))
            .bind(floor)
            .bind(older_than)
            .bind(10_000i64)
            .execute(pool)
            .await
            .map_err(db("prune finished jobs"))?
            .rows_affected();
        total += n;
        if n < 10_000 {
            break;
        }
    }
    Ok(total)
}

fn spawn_pruner(pool: PgPool, sql: Arc<QueueSql>, retention: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match prune(&pool, &sql, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned finished jobs"),
                Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed"),
            }
        }
    });
}

/// Groups reserve requests by (worker, lease) so that one statement serves each group.
fn group_reserves(reqs: &[ReserveReq]) -> HashMap<(&WorkerId, Duration), Vec<usize>> {
    let mut groups: HashMap<(&WorkerId, Duration), Vec<usize>> = HashMap::new();
    for (i, r) in reqs.iter().enumerate() {
        groups.entry((&r.worker, r.lease_for)).or_default().push(i);
    }
    groups
}
