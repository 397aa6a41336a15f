// BullMQ on the peers workload: enqueue N no-op jobs with c concurrent producers, then drain
// them with one Worker at `concurrency: c` (BullMQ's way to run c jobs at once), every job
// acknowledged (moved to completed). Checks that exactly N jobs completed.
//
//   node bench.mjs --jobs 10000 --workers 1,4,16 [--redis redis://127.0.0.1:6379]
//
// Prints one line per measurement, tab-separated, for ../run.sh:
//   RESULT  bullmq  redis  <workers>  <jobs>  <enqueue seconds>  <drain seconds>  <completed>
// Every run uses its own key prefix and deletes its keys afterwards. Each drain is bounded
// (PEERS_DRAIN_TIMEOUT_S, default 60 s).

import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const jobs = Number.parseInt(arg('jobs', process.env.PEERS_JOBS ?? '10000'), 10);
const workerCounts = arg('workers', process.env.PEERS_WORKERS ?? '1,4,16')
  .split(',')
  .map((w) => Number.parseInt(w, 10))
  .filter((w) => w > 0);
const redisUrl = arg('redis', process.env.PEERS_REDIS_URL ?? 'redis://127.0.0.1:6379');
const drainTimeoutMs = 1000 * Number.parseInt(process.env.PEERS_DRAIN_TIMEOUT_S ?? '60', 10);

const url = new URL(redisUrl);
if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname)) {
  throw new Error(`loopback only: ${url.hostname}`);
}

function connection() {
  // Workers need maxRetriesPerRequest: null (blocking commands).
  return new IORedis(redisUrl, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

async function measure(workers) {
  const prefix = `afpeers_bull_${process.pid}_${workers}_${Date.now().toString(36)}`;
  const name = 'noop';
  const queueConn = connection();
  const queue = new Queue(name, { connection: queueConn, prefix });
  try {
    // Enqueue: `workers` producers, one job at a time each.
    let started = process.hrtime.bigint();
    const producers = [];
    for (let p = 0; p < workers; p += 1) {
      const share = Math.floor(jobs / workers) + (p < jobs % workers ? 1 : 0);
      producers.push(
        (async () => {
          for (let i = 0; i < share; i += 1) {
            await queue.add(name, { p, i });
          }
        })(),
      );
    }
    await Promise.all(producers);
    const enqueue = Number(process.hrtime.bigint() - started) / 1e9;

    // Drain: one Worker with concurrency = workers; done when N `completed` events arrived
    // (BullMQ emits it after the job was moved to completed in Redis).
    const workerConn = connection();
    let completed = 0;
    let failed = 0;
    let resolveDone;
    let rejectDone;
    const done = new Promise((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    const worker = new Worker(name, async () => {}, {
      connection: workerConn,
      prefix,
      concurrency: workers,
      autorun: false,
      removeOnComplete: { count: jobs + 1 },
    });
    worker.on('completed', () => {
      completed += 1;
      if (completed === jobs) resolveDone();
    });
    worker.on('failed', (_job, err) => {
      failed += 1;
      rejectDone(new Error(`job failed: ${err}`));
    });
    worker.on('error', (err) => rejectDone(err));
    const timer = setTimeout(
      () => rejectDone(new Error(`${jobs} jobs not drained within ${drainTimeoutMs} ms`)),
      drainTimeoutMs,
    );
    started = process.hrtime.bigint();
    const running = worker.run();
    await done;
    const drain = Number(process.hrtime.bigint() - started) / 1e9;
    clearTimeout(timer);
    await worker.close();
    await running;
    await workerConn.quit();

    const counts = await queue.getJobCounts('completed', 'waiting', 'active', 'failed', 'delayed');
    if (counts.completed !== jobs || failed !== 0) {
      throw new Error(`bullmq: ${JSON.stringify(counts)} after draining ${jobs} jobs`);
    }
    if (counts.waiting + counts.active + counts.delayed !== 0) {
      throw new Error(`bullmq: jobs left after the drain: ${JSON.stringify(counts)}`);
    }
    console.log(
      ['RESULT', 'bullmq', 'redis', workers, jobs, enqueue.toFixed(6), drain.toFixed(6), counts.completed].join('\t'),
    );
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    // obliterate leaves the queue's meta keys; delete whatever carries the prefix.
    let cursor = '0';
    for (let rounds = 0; rounds < 10000; rounds += 1) {
      const [next, keys] = await queueConn.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await queueConn.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    await queueConn.quit();
  }
}

for (const workers of workerCounts) {
  await measure(workers);
}
