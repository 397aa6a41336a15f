//! [`RedisQueue`]: the [`JobQueue`] on Redis.

mod batch;
mod codec;
mod read;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agentflow_core::{
    Enqueued, Job, JobFilter, JobId, JobQueue, JobSpec, JobState, Lease, Page, QueueStats,
    WorkerId, async_trait,
};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, ScriptInvocation, Value};
use tracing::instrument;

use crate::config::RedisQueueConfig;
use crate::error::Error;
use crate::keys::Keys;
use crate::scripts::SCRIPTS;
use crate::wakeup::Wakeups;

use batch::EnqueueBatcher;
use codec::{array, int, leases, ms_to_time, spec_args, text};

/// Most jobs one reserve call leases; larger requests are capped (the call returns fewer).
pub const MAX_RESERVE: usize = 1000;
/// Most jobs one enqueue script call adds; [`RedisQueue::enqueue_many`] splits larger batches.
pub(crate) const ENQUEUE_CHUNK: usize = 256;
/// Most leases one complete script call finishes; larger batches are split.
const COMPLETE_CHUNK: usize = 1000;
/// Most expired leases one recover script call handles; `recover_expired` loops (bounded).
const RECOVER_CHUNK: usize = 500;
const RECOVER_ROUNDS: usize = 200;

/// A [`JobQueue`] on Redis: every state change is one Lua script, all keys of a queue share one
/// hash tag, and time comes from Redis `TIME`. See the crate docs for guarantees and key layout.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisQueueConfig,
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    wakeups: Mutex<Option<Wakeups>>,
    batcher: OnceLock<EnqueueBatcher>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("hash_tag", &self.inner.config.hash_tag()).finish()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisQueue {
    /// Connects (the connection then reconnects by itself after errors).
    ///
    /// Fails with a retryable error when Redis cannot be reached, and with
    /// [`Error::InvalidConfig`](agentflow_core::Error::InvalidConfig) for a bad URL or name.
    pub async fn connect(config: RedisQueueConfig) -> agentflow_core::Result<Self> {
        config.validate()?;
        let client = redis::Client::open(config.url())
            .map_err(|e| agentflow_core::Error::config("redis.url", e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connect_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| Error::command("connect", e))?;
        let keys = Keys::new(&config.hash_tag());
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                config,
                client,
                conn,
                keys,
                wakeups: Mutex::new(None),
                batcher: OnceLock::new(),
            }),
        })
    }

    /// The configuration this queue was opened with.
    pub fn config(&self) -> &RedisQueueConfig {
        &self.inner.config
    }

    fn invocation<'a>(&'a self, script: &'a Script) -> ScriptInvocation<'a> {
        invocation(&self.inner.keys, script)
    }

    async fn invoke(&self, op: &'static str, inv: &ScriptInvocation<'_>) -> Result<Value, Error> {
        invoke(&self.inner.conn, op, inv).await
    }

    fn retention_ms(&self) -> u64 {
        u64::try_from(self.inner.config.retention.as_millis()).unwrap_or(u64::MAX)
    }

    /// Enqueues many jobs with one script call per 256 (dedup applies within the batch too).
    /// Returns one [`Enqueued`] per spec, in order.
    pub async fn enqueue_many(&self, specs: &[JobSpec]) -> agentflow_core::Result<Vec<Enqueued>> {
        enqueue_chunked(&self.inner.conn, &self.inner.keys, specs).await
    }

    fn reserve_args(
        &self,
        inv: &mut ScriptInvocation<'_>,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) {
        let max = max.min(MAX_RESERVE);
        inv.arg(worker.as_str()).arg(ms(lease_for)).arg(max).arg(self.inner.config.promote_batch);
        // Lease tokens only need to be unique, not secret (anyone who can read Redis sees
        // them), so a fast PRNG avoids one getrandom syscall per token.
        for _ in 0..max {
            let token = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes());
            inv.arg(token.into_uuid().hyphenated().to_string());
        }
    }

    fn complete_args(&self, inv: &mut ScriptInvocation<'_>, leases: &[Lease]) {
        inv.arg(self.retention_ms()).arg(self.inner.config.prune_batch).arg(leases.len());
        for l in leases {
            inv.arg(l.job.id.to_string()).arg(l.token.to_string());
        }
    }

    /// Completes `done` and reserves up to `max` next jobs for `worker` in one atomic script
    /// call: one round trip per batch for a busy worker. Returns one result per completed
    /// lease (in order; a stale one is [`LeaseLost`](agentflow_core::Error::LeaseLost)) and the
    /// new leases.
    #[instrument(level = "debug", skip_all, fields(worker = %worker, done = done.len(), max))]
    pub async fn complete_and_reserve(
        &self,
        done: &[Lease],
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> agentflow_core::Result<(Vec<agentflow_core::Result<()>>, Vec<Lease>)> {
        if done.len() > COMPLETE_CHUNK {
            let (head, tail) = done.split_at(done.len() - COMPLETE_CHUNK);
            let mut results = self.complete_many(head).await?;
            let (rest, leases) =
                Box::pin(self.complete_and_reserve(tail, worker, lease_for, max)).await?;
            results.extend(rest);
            return Ok((results, leases));
        }
        let op = "complete_and_reserve";
        let mut inv = self.invocation(&SCRIPTS.complete_reserve);
        self.complete_args(&mut inv, done);
        self.reserve_args(&mut inv, worker, lease_for, max);
        let items = array(op, self.invoke(op, &inv).await?)?;
        if items.len() < 2 + done.len() {
            return Err(Error::reply(op, "reply too short").into());
        }
        let now = int(op, &items[0])?;
        let results = completions(op, &items[1..=done.len()], done)?;
        let leases = leases(op, &items[1 + done.len()..], now, worker)?;
        Ok((results, leases))
    }

    /// Deletes every key of this queue (jobs, indexes, history). Bounded `SCAN` + `UNLINK`; for
    /// tests and for retiring a queue.
    pub async fn destroy(&self) -> agentflow_core::Result<u64> {
        read::destroy(&self.inner.conn, &self.inner.keys).await
    }
}

fn invocation<'a>(keys: &'a Keys, script: &'a Script) -> ScriptInvocation<'a> {
    let mut inv = script.prepare_invoke();
    for k in &keys.fixed {
        inv.key(k);
    }
    inv.arg(&keys.prefix);
    inv
}

async fn invoke(
    conn: &ConnectionManager,
    op: &'static str,
    inv: &ScriptInvocation<'_>,
) -> Result<Value, Error> {
    inv.invoke_async(&mut conn.clone()).await.map_err(|e| Error::command(op, e))
}

/// Enqueues `specs` with one script call per [`ENQUEUE_CHUNK`].
pub(crate) async fn enqueue_chunked(
    conn: &ConnectionManager,
    keys: &Keys,
    specs: &[JobSpec],
) -> agentflow_core::Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(ENQUEUE_CHUNK) {
        let mut inv = invocation(keys, &SCRIPTS.enqueue);
        inv.arg(chunk.len());
        for spec in chunk {
            for a in spec_args(JobId::new(), spec)? {
                inv.arg(a);
            }
        }
        let items = array("enqueue", invoke(conn, "enqueue", &inv).await?)?;
        for pair in items.chunks_exact(2) {
            let id = text("enqueue", &pair[1])?
                .parse::<JobId>()
                .map_err(|e| Error::reply("enqueue", e.to_string()))?;
            out.push(if int("enqueue", &pair[0])? == 1 {
                Enqueued::New(id)
            } else {
                Enqueued::Existing(id)
            });
        }
    }
    if out.len() != specs.len() {
        return Err(Error::reply("enqueue", "one result per spec expected").into());
    }
    Ok(out)
}

fn completions(
    op: &'static str,
    items: &[Value],
    leases: &[Lease],
) -> Result<Vec<agentflow_core::Result<()>>, Error> {
    items
        .iter()
        .zip(leases)
        .map(|(v, l)| {
            Ok(if int(op, v)? == 1 {
                Ok(())
            } else {
                Err(agentflow_core::Error::LeaseLost { job: l.job.id })
            })
        })
        .collect()
}

#[async_trait]
impl JobQueue for RedisQueue {
    #[instrument(level = "debug", skip_all, fields(task = %spec.task, kind = spec.kind.as_str()))]
    async fn enqueue(&self, spec: JobSpec) -> agentflow_core::Result<Enqueued> {
        // Concurrent single enqueues are coalesced into one script call (group commit).
        let batcher = self.inner.batcher.get_or_init(|| {
            EnqueueBatcher::start(self.inner.conn.clone(), self.inner.keys.clone())
        });
        batcher.enqueue(spec).await
    }

    #[instrument(level = "debug", skip_all, fields(worker = %worker, max))]
    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> agentflow_core::Result<Vec<Lease>> {
        let op = "reserve";
        let mut inv = self.invocation(&SCRIPTS.reserve);
        self.reserve_args(&mut inv, worker, lease_for, max);
        let items = array(op, self.invoke(op, &inv).await?)?;
        let (now, rest) = items.split_first().ok_or_else(|| Error::reply(op, "empty reply"))?;
        Ok(leases(op, rest, int(op, now)?, worker)?)
    }

    #[instrument(level = "debug", skip_all, fields(job = %lease.job.id, task = %lease.job.task, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn heartbeat(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> agentflow_core::Result<DateTime<Utc>> {
        let op = "heartbeat";
        let mut inv = self.invocation(&SCRIPTS.heartbeat);
        inv.arg(lease.job.id.to_string()).arg(lease.token.to_string()).arg(ms(lease_for));
        let exp = int(op, &self.invoke(op, &inv).await?)?;
        if exp < 0 {
            return Err(agentflow_core::Error::LeaseLost { job: lease.job.id });
        }
        Ok(ms_to_time(op, exp)?)
    }

    #[instrument(level = "debug", skip_all, fields(job = %lease.job.id, task = %lease.job.task, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn complete(&self, lease: &Lease) -> agentflow_core::Result<()> {
        self.complete_many(std::slice::from_ref(lease))
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::reply("complete", "empty reply").into()))
    }

    #[instrument(level = "debug", skip_all, fields(job = %lease.job.id, task = %lease.job.task, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> agentflow_core::Result<JobState> {
        let op = "fail";
        let mut inv = self.invocation(&SCRIPTS.fail);
        inv.arg(lease.job.id.to_string())
            .arg(lease.token.to_string())
            .arg(error)
            .arg(retry_at.map(|t| t.timestamp_millis().max(0).to_string()).unwrap_or_default())
            .arg(self.retention_ms())
            .arg(self.inner.config.prune_batch);
        match text(op, &self.invoke(op, &inv).await?)? {
            "retryable" => Ok(JobState::Retryable),
            "failed" => Ok(JobState::Failed),
            "lost" => Err(agentflow_core::Error::LeaseLost { job: lease.job.id }),
            other => Err(Error::reply(op, format!("unknown outcome `{other}`")).into()),
        }
    }

    #[instrument(level = "debug", skip_all, fields(job = %lease.job.id, task = %lease.job.task, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn release(&self, lease: &Lease) -> agentflow_core::Result<()> {
        let op = "release";
        let mut inv = self.invocation(&SCRIPTS.release);
        inv.arg(lease.job.id.to_string()).arg(lease.token.to_string());
        match int(op, &self.invoke(op, &inv).await?)? {
            1 => Ok(()),
            _ => Err(agentflow_core::Error::LeaseLost { job: lease.job.id }),
        }
    }

    #[instrument(level = "debug", skip_all, fields(job = %id))]
    async fn cancel(&self, id: JobId) -> agentflow_core::Result<bool> {
        let op = "cancel";
        let mut inv = self.invocation(&SCRIPTS.cancel);
        inv.arg(id.to_string()).arg(self.retention_ms()).arg(self.inner.config.prune_batch);
        match int(op, &self.invoke(op, &inv).await?)? {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(agentflow_core::Error::not_found("job", id)),
        }
    }

    #[instrument(level = "debug", skip_all)]
    async fn recover_expired(&self) -> agentflow_core::Result<u64> {
        let op = "recover";
        let mut total = 0;
        for _ in 0..RECOVER_ROUNDS {
            let mut inv = self.invocation(&SCRIPTS.recover);
            inv.arg(RECOVER_CHUNK).arg(self.retention_ms()).arg(self.inner.config.prune_batch);
            let items = array(op, self.invoke(op, &inv).await?)?;
            let [n, more] = items.as_slice() else {
                return Err(Error::reply(op, "expected two integers").into());
            };
            total += u64::try_from(int(op, n)?).unwrap_or(0);
            if int(op, more)? == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn get(&self, id: JobId) -> agentflow_core::Result<Option<Job>> {
        read::get(&self.inner.conn, &self.inner.keys, id).await
    }

    async fn list(&self, filter: &JobFilter, page: Page) -> agentflow_core::Result<Vec<Job>> {
        read::list(&self.inner.conn, &self.inner.keys, filter, page).await
    }

    async fn stats(&self) -> agentflow_core::Result<QueueStats> {
        read::stats(&self.inner.conn, &self.inner.keys).await
    }

    #[instrument(level = "debug", skip_all, fields(leases = leases.len()))]
    async fn complete_many(
        &self,
        leases: &[Lease],
    ) -> agentflow_core::Result<Vec<agentflow_core::Result<()>>> {
        let op = "complete";
        let mut out = Vec::with_capacity(leases.len());
        for chunk in leases.chunks(COMPLETE_CHUNK) {
            let mut inv = self.invocation(&SCRIPTS.complete);
            self.complete_args(&mut inv, chunk);
            let items = array(op, self.invoke(op, &inv).await?)?;
            if items.len() != chunk.len() {
                return Err(Error::reply(op, "one result per lease expected").into());
            }
            out.extend(completions(op, &items, chunk)?);
        }
        Ok(out)
    }

    fn wakeups(&self) -> Option<BoxStream<'static, ()>> {
        let mut slot = self.inner.wakeups.lock().unwrap_or_else(|p| p.into_inner());
        let wakeups = slot.get_or_insert_with(|| {
            Wakeups::start(self.inner.client.clone(), self.inner.keys.clone())
        });
        Some(wakeups.subscribe())
    }
}
