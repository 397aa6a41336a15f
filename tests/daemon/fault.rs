//! Shared by the fault and soak tests (`fault_*`, `soak`): the storage a test's daemons run on
//! (SQLite, Redis, Postgres — one test per backend per scenario, see [`on_backends!`]), the
//! daemon's command line against the fake Linear, and the counts every scenario checks:
//! executions recorded by the command, summary comments, jobs in the queue.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentflow::{Job, JobFilter, JobKind, JobQueue, Page};
use agentflow_testkit::fake_linear::{FakeIssue, FakeLinear};

use crate::support::{DaemonCmd, Lines};

pub(crate) use crate::support::{Backend, Storage, on_backends};

/// Timing settings shortened through the daemon's configuration, and the fake Linear.
pub(crate) fn linear_daemon(dir: &Path, linear: &FakeLinear, storage: &Storage) -> DaemonCmd {
    storage
        .apply(DaemonCmd::new(dir), dir)
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", linear.url())
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "300ms")
        .env("AGENTFLOW_ENGINE_PROGRESS_INTERVAL", "1s")
        .env("AGENTFLOW_ENGINE_LEASE", "3s")
        .env("AGENTFLOW_ENGINE_RETRY_BACKOFF", "300ms")
        .env("AGENTFLOW_ENGINE_SHUTDOWN_GRACE", "2s")
}

/// The command executor running `sh -c <script>`; the script may use `$AGENTFLOW_TASK_KEY`
/// and must not contain commas (the setting is a comma-separated list).
pub(crate) fn command(cmd: DaemonCmd, script: &str) -> DaemonCmd {
    assert!(!script.contains(','), "executor.command is comma-separated: {script}");
    cmd.env("AGENTFLOW_EXECUTOR_KIND", "command")
        .env("AGENTFLOW_EXECUTOR_COMMAND", format!("sh,-c,echo ::review::false; {script}"))
}

/// A script that waits `sleep` seconds and then records the execution: one line with the task
/// key appended to `log`. A run killed before the end records nothing.
pub(crate) fn recording(log: &Path, sleep: &str) -> String {
    format!("sleep {sleep}; echo \"$AGENTFLOW_TASK_KEY\" >> {}; echo done", log.display())
}

/// A command that waits (at most 60 s) until the file `gate` exists, then records itself in
/// `log` (see [`recording`]).
pub(crate) fn gated_recording(log: &Path, gate: &Path) -> String {
    format!(
        "for i in $(seq 600); do [ -e {gate} ] && break; sleep 0.1; done; {}",
        recording(log, "0"),
        gate = gate.display()
    )
}

/// Lines of an executions log, counted.
pub(crate) fn executions(log: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        *out.entry(line.trim().to_owned()).or_insert(0) += 1;
    }
    out
}

/// Keys executed more than once.
pub(crate) fn duplicates(counts: &BTreeMap<String, usize>) -> Vec<(String, usize)> {
    counts.iter().filter(|(_, n)| **n > 1).map(|(k, n)| (k.clone(), *n)).collect()
}

pub(crate) use crate::support::summaries;

/// How many of `issues` are in state `state` ([`settled`](crate::support::settled) there: with
/// their summary, for a state that ends a run).
pub(crate) fn count_in(linear: &FakeLinear, issues: &[FakeIssue], state: &str) -> usize {
    issues.iter().filter(|i| crate::support::settled(linear, &i.id, state)).count()
}

/// Issues of `issues` not in `state`, with the state they are in.
pub(crate) fn not_in(linear: &FakeLinear, issues: &[FakeIssue], state: &str) -> Vec<String> {
    issues
        .iter()
        .filter_map(|i| {
            let now = linear.issue_state_name(&i.id);
            (now.as_deref() != Some(state)).then(|| format!("{}: {now:?}", i.identifier))
        })
        .collect()
}

/// Every job of `task`.
pub(crate) async fn jobs_of(queue: &dyn JobQueue, task: &str) -> Vec<Job> {
    queue.list(&JobFilter::task(task), Page::first(100)).await.expect("list jobs")
}

/// Checks what every scenario promises for `issues` once they are all Done: each has exactly one
/// summary comment; with `log`, each was executed exactly once; with `queue`, each has exactly
/// one Execute job. Panics with every violation found.
pub(crate) async fn assert_exactly_once(
    linear: &FakeLinear,
    issues: &[FakeIssue],
    log: Option<&Path>,
    queue: Option<&dyn JobQueue>,
) {
    let mut problems = Vec::new();
    let counts = log.map(executions);
    for issue in issues {
        let s = summaries(linear, &issue.id);
        if s.len() != 1 {
            problems.push(format!("{}: {} summary comments", issue.identifier, s.len()));
        }
        if let Some(counts) = &counts {
            let n = counts.get(&issue.identifier).copied().unwrap_or(0);
            if n != 1 {
                problems.push(format!("{}: executed {n} times", issue.identifier));
            }
        }
        if let Some(queue) = queue {
            let jobs = jobs_of(queue, &issue.id).await;
            let execute = jobs.iter().filter(|j| j.kind == JobKind::Execute).count();
            if execute != 1 {
                problems.push(format!("{}: {execute} execute jobs: {jobs:?}", issue.identifier));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// A file under `dir` (created on first use) for a test's records.
pub(crate) fn record_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "").expect("create the record file");
    path
}

/// Whether `pid` is running (a zombie waiting for its reaper counts as gone).
pub(crate) fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// The parent of `pid` (field 4 of `/proc/<pid>/stat`).
pub(crate) fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The command line of `pid`, arguments joined by spaces.
pub(crate) fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_owned())
        .unwrap_or_default()
}

/// Processes (other than this test) whose working directory is under `dir`, with their
/// command lines.
pub(crate) fn processes_under(dir: &Path) -> Vec<(i32, String)> {
    agentflow::claude::processes_in(dir, std::process::id())
        .into_iter()
        .filter(|p| running(*p))
        .map(|p| (p, cmdline(p)))
        .collect()
}

/// Keeps the output of a test's daemons: when the test fails, every daemon's lines are written
/// to `$TMPDIR/agentflow-<name>-<n>.log` (the paths are printed) for the post-mortem.
pub(crate) struct Postmortem {
    name: String,
    lines: Vec<Lines>,
    notes: Vec<(String, PathBuf)>,
}

impl Postmortem {
    pub(crate) fn new(name: impl Into<String>) -> Postmortem {
        Postmortem { name: name.into(), lines: Vec::new(), notes: Vec::new() }
    }

    /// Adds a daemon's output.
    pub(crate) fn watch(&mut self, lines: &Lines) {
        self.lines.push(lines.clone());
    }

    /// Adds a file (copied on failure).
    pub(crate) fn file(&mut self, label: &str, path: &Path) {
        self.notes.push((label.to_owned(), path.to_owned()));
    }
}

impl Drop for Postmortem {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = std::env::temp_dir();
        for (i, lines) in self.lines.iter().enumerate() {
            let path = dir.join(format!("agentflow-{}-{i}.log", self.name));
            if std::fs::write(&path, lines.all().join("\n")).is_ok() {
                eprintln!("daemon {i}'s output: {}", path.display());
            }
        }
        for (label, from) in &self.notes {
            let path = dir.join(format!("agentflow-{}-{label}", self.name));
            if std::fs::copy(from, &path).is_ok() {
                eprintln!("{label}: {}", path.display());
            }
        }
    }
}
