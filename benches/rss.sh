#!/usr/bin/env bash
# Daemon memory: builds the daemon example (release), starts it on SQLite with the local task
# source and the command executor running `sleep`, and reads VmRSS / VmHWM from
# /proc/<pid>/status: idle, then with 3 running tasks (engine.workers = 3), then idle again
# after they finished. The `sleep` children are separate processes and not counted.
#
#   benches/rss.sh                     # prints a Markdown table
#   RSS_SLEEP=20 RSS_SAMPLES=10 benches/rss.sh
#   RSS_BIN=target/debug/examples/daemon benches/rss.sh   # skip the build, measure that binary
#
# Loopback only; every wait is bounded; the daemon is stopped (by its pid) and its temporary
# directory removed on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sleep_s="${RSS_SLEEP:-20}"        # how long each task's command runs
samples="${RSS_SAMPLES:-10}"      # samples per phase, 200 ms apart (the table shows the max)
target="${CARGO_TARGET_DIR:-$root/target}"

if [[ -n "${RSS_BIN:-}" ]]; then
  bin="$RSS_BIN"   # an already built daemon (e.g. a debug build, for an upper bound)
else
  echo "building the daemon (release)..." >&2
  cargo build --release --example daemon --manifest-path "$root/Cargo.toml" >&2
  bin="$target/release/examples/daemon"
fi

work="$(mktemp -d -t afrss.XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/agentflow.toml" <<EOF
[storage]
database_url = "sqlite://$work/agentflow.db"

[engine]
workers = 3

[executor]
kind = "command"
command = ["sleep", "$sleep_s"]

[dashboard]
addr = "127.0.0.1:$port"
EOF

# No Linear key: the daemon runs the local task source; tasks come in through the API.
(cd "$work" && env -u LINEAR_API_KEY AGENTFLOW_LOG=warn "$bin" --config "$work/agentflow.toml" run \
  >"$work/daemon.log" 2>&1) &
pid=$!
# `pid` is the subshell; find the daemon itself.
for _ in $(seq 1 100); do
  child="$(pgrep -P "$pid" -x daemon || true)"
  [[ -n "$child" ]] && break
  sleep 0.1
done
[[ -n "${child:-}" ]] || { cat "$work/daemon.log" >&2; echo "daemon did not start" >&2; exit 1; }
pid="$child"

for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/daemon.log" >&2; exit 1; }

# Max VmRSS over `samples` samples, and the VmHWM at the end (kB).
sample() {
  local max=0 v
  for _ in $(seq 1 "$samples"); do
    v="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
    (( v > max )) && max=$v
    sleep 0.2
  done
  echo "$max $(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
}
sleeps() { pgrep -P "$pid" -x sleep 2>/dev/null | wc -l; }

sleep 2
read -r idle_rss idle_hwm < <(sample)

for i in 1 2 3; do
  curl -fsS -X POST "http://127.0.0.1:$port/api/tasks" -H 'content-type: application/json' \
    -d "{\"title\": \"Sleep $i\", \"body\": \"rss bench\"}" >/dev/null
done
for _ in $(seq 1 100); do
  [[ "$(sleeps)" -ge 3 ]] && break
  sleep 0.1
done
n="$(sleeps)"
[[ "$n" -ge 3 ]] || { cat "$work/daemon.log" >&2; echo "only $n of 3 tasks running" >&2; exit 1; }
read -r busy_rss busy_hwm < <(sample)

# After the runs finished.
for _ in $(seq 1 $(( (sleep_s + 30) * 10 ))); do
  [[ "$(sleeps)" -eq 0 ]] && break
  sleep 0.1
done
sleep 1
read -r after_rss after_hwm < <(sample)

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
echo
echo "| daemon state | VmRSS (max of $samples samples) | VmHWM |"
echo "|---|---:|---:|"
echo "| idle (SQLite, local source, dashboard) | $(mb "$idle_rss") | $(mb "$idle_hwm") |"
echo "| 3 tasks running (\`sleep $sleep_s\`) | $(mb "$busy_rss") | $(mb "$busy_hwm") |"
echo "| idle again after the 3 runs | $(mb "$after_rss") | $(mb "$after_hwm") |"
