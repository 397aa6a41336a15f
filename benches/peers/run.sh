#!/usr/bin/env bash
# agentflow side by side with apalis and BullMQ on one workload: enqueue N no-op jobs, then drain
# them with 1, 4 and 16 concurrent workers, every job acknowledged, on SQLite, Redis and
# Postgres. Builds everything (release), runs every system, checks each processed exactly N
# jobs, and prints one table: drain jobs/s per backend x concurrency x system, and agentflow's
# ratio to the best peer of the row.
#
#   benches/peers/run.sh
#   PEERS_JOBS=5000 PEERS_WORKERS=1,16 PEERS_BACKENDS=sqlite,redis benches/peers/run.sh
#
# Needs Redis on PEERS_REDIS_URL (default redis://127.0.0.1:6379) and Postgres on
# PEERS_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; the role may create
# databases), node and npm. Loopback only. Each system's step is bounded by
# PEERS_STEP_TIMEOUT_S (default 300 s). Raw lines go to $PEERS_OUT (default a temp file).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PEERS_JOBS="${PEERS_JOBS:-10000}"
export PEERS_WORKERS="${PEERS_WORKERS:-1,4,16}"
export PEERS_REDIS_URL="${PEERS_REDIS_URL:-redis://127.0.0.1:6379}"
export PEERS_POSTGRES_URL="${PEERS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
backends="${PEERS_BACKENDS:-sqlite,redis,postgres}"
step_timeout="${PEERS_STEP_TIMEOUT_S:-300}"
target="${CARGO_TARGET_DIR:-$here/target}"
out="${PEERS_OUT:-$(mktemp -t afpeers.XXXXXX.tsv)}"
: >"$out"

started=$(date +%s)
echo "== building (release)" >&2
cargo build --release --locked --manifest-path "$here/Cargo.toml" >&2
bin="$target/release/agentflow-peers"
if [[ ! -d "$here/bullmq/node_modules" || "$here/bullmq/package-lock.json" -nt "$here/bullmq/node_modules/.package-lock.json" ]]; then
  (cd "$here/bullmq" && npm ci --no-audit --no-fund >&2)
fi

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)" >&2

step() {
  local label="$1"; shift
  echo "== $label" >&2
  local t0=$(date +%s)
  if ! timeout --kill-after=10 "$step_timeout" "$@" | tee -a "$out" >&2; then
    echo "error: $label failed (or took more than ${step_timeout}s)" >&2
    exit 1
  fi
  echo "   ($(( $(date +%s) - t0 )) s)" >&2
}

# A peer that cannot finish the workload is recorded (FAILED line, shown in the table) and the
# run goes on; agentflow failing stops the run.
peer_step() {
  local system="$1" backend="$2"; shift 2
  echo "== $system on $backend" >&2
  local t0=$(date +%s) log
  log="$(mktemp)"
  if ! timeout --kill-after=10 "$step_timeout" "$@" 2>"$log" | tee -a "$out" >&2; then
    local reason
    reason="$(grep -m1 -i 'error' "$log" | tr '\t' ' ' | cut -c1-200)"
    echo "   $system on $backend FAILED: ${reason:-timed out}" >&2
    printf 'FAILED\t%s\t%s\t%s\n' "$system" "$backend" "${reason:-timed out}" >>"$out"
  fi
  cat "$log" >&2
  rm -f "$log"
  echo "   ($(( $(date +%s) - t0 )) s)" >&2
}

IFS=',' read -r -a backend_list <<<"$backends"
for backend in "${backend_list[@]}"; do
  step "agentflow on $backend" "$bin" agentflow "$backend"
  peer_step apalis "$backend" "$bin" apalis "$backend"
  if [[ "$backend" == "redis" ]]; then
    peer_step bullmq redis node "$here/bullmq/bench.mjs"
  fi
done

python3 - "$out" "$PEERS_JOBS" "$PEERS_WORKERS" "$backends" <<'EOF'
import sys
from collections import defaultdict

path, jobs, workers, backends = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
workers = [int(w) for w in workers.split(",")]
backends = backends.split(",")
rows = {}
failed = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if f and f[0] == "FAILED":
        failed[(f[2], f[1])] = f[3]
        continue
    if not f or f[0] != "RESULT":
        continue
    system, backend, w, n, enq, drain, done = f[1], f[2], int(f[3]), int(f[4]), float(f[5]), float(f[6]), int(f[7])
    if n != jobs or done != jobs:
        sys.exit(f"error: {system} on {backend} with {w} workers completed {done} of {n} jobs (expected {jobs})")
    rows[(backend, w, system)] = (jobs / enq, jobs / drain)

systems = {"sqlite": ["agentflow", "apalis"], "redis": ["agentflow", "apalis", "bullmq"], "postgres": ["agentflow", "apalis"]}
missing = [(b, w, s) for b in backends for w in workers for s in systems[b]
           if (b, w, s) not in rows and (b, s) not in failed]
if missing:
    sys.exit(f"error: no result for {missing}")

def fmt(x):
    return "—" if x is None else ("failed" if x == "failed" else f"{x:,.0f}")

def get(b, w, s, i):
    if (b, w, s) in rows:
        return rows[(b, w, s)][i]
    return "failed" if (b, s) in failed else None

def ratio(af, peers):
    peers = [p for p in peers if isinstance(p, float)]
    return f"{af / max(peers):.2f}×" if peers else "—"

print(f"\nDrain: {jobs:,} no-op jobs, each reserved and acknowledged (jobs/s, higher is better)\n")
print("| backend | workers | agentflow | apalis | BullMQ | agentflow / best peer |")
print("|---|---:|---:|---:|---:|---:|")
for b in backends:
    for w in workers:
        af = rows[(b, w, "agentflow")][1]
        ap, bq = get(b, w, "apalis", 1), get(b, w, "bullmq", 1)
        print(f"| {b} | {w} | {fmt(af)} | {fmt(ap)} | {fmt(bq)} | {ratio(af, (ap, bq))} |")

for (b, s), why in sorted(failed.items()):
    print(f"\n{s} on {b} failed: {why}")

print(f"\nEnqueue: {jobs:,} jobs, one at a time from as many producers as workers (jobs/s)\n")
print("| backend | producers | agentflow | apalis | BullMQ | agentflow / best peer |")
print("|---|---:|---:|---:|---:|---:|")
for b in backends:
    for w in workers:
        af = rows[(b, w, "agentflow")][0]
        ap, bq = get(b, w, "apalis", 0), get(b, w, "bullmq", 0)
        print(f"| {b} | {w} | {fmt(af)} | {fmt(ap)} | {fmt(bq)} | {ratio(af, (ap, bq))} |")
EOF
echo
echo "all systems processed exactly $PEERS_JOBS jobs per row; $(( $(date +%s) - started )) s in all; load $(cut -d' ' -f1-3 /proc/loadavg); raw: $out"
