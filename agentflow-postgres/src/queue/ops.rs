//! The statements behind [`JobQueue`] for [`PgQueue`]: batch executors and the trait impl.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{
    Enqueued, Error, Job, JobFilter, JobId, JobQueue, JobSpec, JobState, Lease, Page, QueueStats,
    Result, WorkerId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::row::{job, lease, millis};
use super::sql::QueueSql;
use super::{PgQueue, ReserveReq, group_reserves};
use crate::batch::fan_out;
use crate::error::db;
use crate::text::{json_text, text};

fn check_spec(spec: &JobSpec) -> Result<()> {
    if spec.max_attempts == 0 {
        return Err(Error::InvalidInput("max_attempts must be at least 1".into()));
    }
    if spec.max_attempts > i32::MAX as u32 {
        return Err(Error::InvalidInput("max_attempts is too large".into()));
    }
    Ok(())
}

/// Inserts a batch of specs in one statement; looks up the live holder of each unique key that
/// was taken.
pub(super) async fn enqueue_batch(
    pool: PgPool,
    sql: Arc<QueueSql>,
    specs: Vec<JobSpec>,
) -> Vec<Result<Enqueued>> {
    let n = specs.len();
    let ids: Vec<Uuid> = specs.iter().map(|_| JobId::new().0).collect();
    match insert(&pool, &sql, &ids, &specs).await {
        Ok(results) => results,
        Err(e) => fan_out(e, n),
    }
}

async fn insert(
    pool: &PgPool,
    sql: &QueueSql,
    ids: &[Uuid],
    specs: &[JobSpec],
) -> Result<Vec<Result<Enqueued>>> {
    let inserted: HashSet<Uuid> = sqlx::query_scalar(AssertSqlSafe(sql.enqueue.clone()))
        .bind(ids)
        .bind(specs.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| s.task.as_str()).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| json_text(&s.payload)).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| s.unique_key.as_deref()).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| s.priority).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| s.max_attempts as i32).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| s.run_at).collect::<Vec<_>>())
        .bind(specs.iter().map(|s| millis(s.timeout)).collect::<Vec<_>>())
        .fetch_all(pool)
        .await
        .map_err(db("enqueue"))?
        .into_iter()
        .collect();
    let mut out: Vec<Option<Result<Enqueued>>> = ids
        .iter()
        .map(|id| inserted.contains(id).then_some(Ok(Enqueued::New(JobId(*id)))))
        .collect();
    // Every spec left out lost its unique key to a live job; find it. The holder may finish
    // between the insert and this lookup, freeing the key: then insert that spec again.
    for _round in 0..5 {
        let missing: Vec<usize> = (0..out.len()).filter(|i| out[*i].is_none()).collect();
        if missing.is_empty() {
            break;
        }
        let keys: Vec<&str> =
            missing.iter().filter_map(|i| specs[*i].unique_key.as_deref()).collect();
        let holders: HashMap<String, Uuid> = sqlx::query(AssertSqlSafe(sql.existing.clone()))
            .bind(&keys)
            .fetch_all(pool)
            .await
            .map_err(db("enqueue: look up unique key"))?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<Uuid, _>(1)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("enqueue: look up unique key"))?;
        let mut retry = Vec::new();
        for i in missing {
            match specs[i].unique_key.as_ref().and_then(|k| holders.get(k)) {
                Some(id) => out[i] = Some(Ok(Enqueued::Existing(JobId(*id)))),
                None => retry.push(i),
            }
        }
        for i in retry {
            let again = sqlx::query_scalar::<_, Uuid>(AssertSqlSafe(sql.enqueue.clone()))
                .bind([ids[i]])
                .bind([specs[i].kind.as_str()])
                .bind([specs[i].task.as_str()])
                .bind([json_text(&specs[i].payload)])
                .bind([specs[i].unique_key.as_deref()])
                .bind([specs[i].priority])
                .bind([specs[i].max_attempts as i32])
                .bind([specs[i].run_at])
                .bind([millis(specs[i].timeout)])
                .fetch_optional(pool)
                .await
                .map_err(db("enqueue"))?;
            if again.is_some() {
                out[i] = Some(Ok(Enqueued::New(JobId(ids[i]))));
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::Conflict("unique key kept changing hands; enqueue again".into()))
            })
        })
        .collect())
}

/// Serves a batch of reserve requests with one statement per (worker, lease) group, handing
/// the jobs out in queue order.
pub(super) async fn reserve_batch(
    pool: PgPool,
    sql: Arc<QueueSql>,
    reqs: Vec<ReserveReq>,
) -> Vec<Result<Vec<Lease>>> {
    let mut out: Vec<Option<Result<Vec<Lease>>>> = reqs.iter().map(|_| None).collect();
    for ((worker, lease_for), members) in group_reserves(&reqs) {
        let total: usize = members.iter().map(|i| reqs[*i].max).sum();
        match reserve_rows(&pool, &sql, worker, lease_for, total).await {
            Ok(leases) => {
                let mut leases = leases.into_iter();
                for i in members {
                    out[i] = Some(Ok(leases.by_ref().take(reqs[i].max).collect()));
                }
            }
            Err(e) => {
                let errs = fan_out::<Vec<Lease>>(e, members.len());
                for (i, e) in members.into_iter().zip(errs) {
                    out[i] = Some(e);
                }
            }
        }
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Ok(Vec::new()))).collect()
}

async fn reserve_rows(
    pool: &PgPool,
    sql: &QueueSql,
    worker: &WorkerId,
    lease_for: Duration,
    max: usize,
) -> Result<Vec<Lease>> {
    let rows = sqlx::query(AssertSqlSafe(sql.reserve.clone()))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(worker.as_str())
        .bind(lease_for)
        .fetch_all(pool)
        .await
        .map_err(db("reserve"))?;
    let mut leases = rows.iter().map(lease).collect::<Result<Vec<_>>>()?;
    leases.sort_by(|a, b| {
        (a.job.priority, a.job.run_at, a.job.id).cmp(&(b.job.priority, b.job.run_at, b.job.id))
    });
    Ok(leases)
}

/// Completes every `(id, token)` that is still current in one statement; returns the pairs
/// done.
pub(super) async fn complete_all(
    pool: &PgPool,
    sql: &QueueSql,
    leases: &[(JobId, Uuid)],
) -> Result<HashSet<(Uuid, Uuid)>> {
    let ids: Vec<Uuid> = leases.iter().map(|(id, _)| id.0).collect();
    let tokens: Vec<Uuid> = leases.iter().map(|(_, t)| *t).collect();
    let rows = sqlx::query(AssertSqlSafe(sql.complete.clone()))
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(pool)
        .await
        .map_err(db("complete"))?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(db("complete"))
}

/// Completes the leases of several callers in one statement; one result list per caller.
pub(super) async fn complete_batch(
    pool: PgPool,
    sql: Arc<QueueSql>,
    reqs: Vec<Vec<(JobId, Uuid)>>,
) -> Vec<Result<Vec<Result<()>>>> {
    let all: Vec<(JobId, Uuid)> = reqs.iter().flatten().copied().collect();
    match complete_all(&pool, &sql, &all).await {
        Ok(done) => reqs
            .iter()
            .map(|pairs| {
                Ok(pairs
                    .iter()
                    .map(|(id, token)| {
                        if done.contains(&(id.0, *token)) {
                            Ok(())
                        } else {
                            Err(Error::LeaseLost { job: *id })
                        }
                    })
                    .collect())
            })
            .collect(),
        Err(e) => fan_out(e, reqs.len()),
    }
}

#[async_trait]
impl JobQueue for PgQueue {
    #[tracing::instrument(level = "debug", skip_all, fields(task = %spec.task, kind = spec.kind.as_str()))]
    async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued> {
        check_spec(&spec)?;
        let r = self.inner().enqueuer.call(spec).await?;
        if r.is_new() {
            self.inner().wakeups.signal();
        }
        Ok(r)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(worker = %worker, max))]
    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.inner().reserver.call(ReserveReq { worker: worker.clone(), lease_for, max }).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<DateTime<Utc>> {
        sqlx::query_scalar(AssertSqlSafe(self.inner().sql.heartbeat.clone()))
            .bind(lease.job.id.0)
            .bind(lease.token)
            .bind(lease_for)
            .fetch_optional(&self.inner().pool)
            .await
            .map_err(db("heartbeat"))?
            .ok_or(Error::LeaseLost { job: lease.job.id })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn complete(&self, lease: &Lease) -> Result<()> {
        let mut r = self.inner().completer.call(vec![(lease.job.id, lease.token)]).await?;
        r.pop().unwrap_or(Err(Error::LeaseLost { job: lease.job.id }))
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(JobId, Uuid)> = leases.iter().map(|l| (l.job.id, l.token)).collect();
        self.inner().completer.call(pairs).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState> {
        let state: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(self.inner().sql.fail.clone()))
                .bind(lease.job.id.0)
                .bind(lease.token)
                .bind(text(error).as_ref())
                .bind(retry_at)
                .fetch_optional(&self.inner().pool)
                .await
                .map_err(db("fail"))?;
        match state.as_deref() {
            Some("retryable") => {
                if retry_at.is_some_and(|at| at <= Utc::now()) {
                    self.inner().wakeups.signal();
                }
                Ok(JobState::Retryable)
            }
            Some(_) => Ok(JobState::Failed),
            None => Err(Error::LeaseLost { job: lease.job.id }),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn release(&self, lease: &Lease) -> Result<()> {
        let n = sqlx::query(AssertSqlSafe(self.inner().sql.release.clone()))
            .bind(lease.job.id.0)
            .bind(lease.token)
            .execute(&self.inner().pool)
            .await
            .map_err(db("release"))?
            .rows_affected();
        if n == 0 {
            return Err(Error::LeaseLost { job: lease.job.id });
        }
        self.inner().wakeups.signal();
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %id))]
    async fn cancel(&self, id: JobId) -> Result<bool> {
        let pool = &self.inner().pool;
        let moved: Option<Uuid> =
            sqlx::query_scalar(AssertSqlSafe(self.inner().sql.cancel.clone()))
                .bind(id.0)
                .fetch_optional(pool)
                .await
                .map_err(db("cancel"))?;
        if moved.is_some() {
            return Ok(true);
        }
        let finished: bool =
            sqlx::query_scalar(AssertSqlSafe(self.inner().sql.finished_exists.clone()))
                .bind(id.0)
                .fetch_one(pool)
                .await
                .map_err(db("cancel"))?;
        if finished { Ok(false) } else { Err(Error::not_found("job", id)) }
    }

    async fn recover_expired(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(self.inner().sql.recover.clone()))
            .fetch_one(&self.inner().pool)
            .await
            .map_err(db("recover expired leases"))?;
        if n > 0 {
            tracing::info!(recovered = n, "recovered jobs with expired leases");
            self.inner().wakeups.signal();
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        sqlx::query(AssertSqlSafe(self.inner().sql.get.clone()))
            .bind(id.0)
            .fetch_optional(&self.inner().pool)
            .await
            .map_err(db("get job"))?
            .map(|r| job(&r))
            .transpose()
    }

    async fn list(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let sql = &self.inner().sql;
        let text = if filter.states.is_empty() {
            &sql.list
        } else if filter.states.iter().all(|s| s.is_live()) {
            &sql.list_live
        } else if filter.states.iter().all(|s| !s.is_live()) {
            &sql.list_finished
        } else {
            &sql.list
        };
        sqlx::query(AssertSqlSafe(text.clone()))
            .bind(&states)
            .bind(filter.kind.map(|k| k.as_str()))
            .bind(filter.task.as_ref().map(|t| t.as_str()))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
            .bind(i64::from(page.limit))
            .fetch_all(&self.inner().pool)
            .await
            .map_err(db("list jobs"))?
            .iter()
            .map(job)
            .collect()
    }

    async fn stats(&self) -> Result<QueueStats> {
        let rows = sqlx::query(AssertSqlSafe(self.inner().sql.stats.clone()))
            .fetch_all(&self.inner().pool)
            .await
            .map_err(db("queue stats"))?;
        let mut stats = QueueStats::default();
        for r in rows {
            let state: String = r.try_get(0).map_err(db("queue stats"))?;
            let n: i64 = r.try_get(1).map_err(db("queue stats"))?;
            if let Some(s) = JobState::parse(&state) {
                *stats.get_mut(s) += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(stats)
    }

    fn wakeups(&self) -> Option<BoxStream<'static, ()>> {
        Some(self.inner().wakeups.stream(&self.inner().pool, &self.inner().stop))
    }
}
