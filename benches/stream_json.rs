//! Claude stream-json parsing throughput on recorded transcripts of the real CLI, and the
//! executor's own overhead per run (spawn, stdin, parsing, reaping, workspace sweep) measured
//! with a stub CLI that replays a transcript.
//!
//! `cargo bench --bench stream_json`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentflow::claude::event::StreamEvent;
use agentflow::claude::progress::ProgressMapper;
use agentflow::claude::{Auth, ClaudeConfig, ClaudeExecutor, WorkspaceConfig};
use agentflow::{CancellationToken, Executor, ProgressSender, RunRequest, Task};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("agentflow-claude/tests/fixtures")
}

/// Every recorded transcript, concatenated.
fn transcripts() -> String {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).expect("read")).collect::<Vec<_>>().join("")
}

fn parsing(c: &mut Criterion) {
    let text = transcripts();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut group = c.benchmark_group("claude_stream_json");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in &lines {
                if StreamEvent::parse(line).is_ok() {
                    n += 1;
                }
            }
            assert_eq!(n, lines.len());
        })
    });
    group.bench_function("parse_and_map_progress", |b| {
        b.iter(|| {
            let mut mapper = ProgressMapper::default();
            let mut n = 0usize;
            for line in &lines {
                if let Ok(event) = StreamEvent::parse(line) {
                    n += mapper.map(&event).len();
                }
            }
            assert!(n > 0);
        })
    });
    group.finish();
}

fn executor_overhead(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("agentflow-bench-claude-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    // A stub CLI: reads the prompt line, replays a real transcript, exits.
    let stub = dir.join("claude-stub");
    let transcript = fixtures_dir().join("text-success.jsonl");
    std::fs::write(&stub, format!("#!/bin/sh\nread -r _prompt\ncat '{}'\n", transcript.display()))
        .expect("stub");
    std::process::Command::new("chmod").arg("+x").arg(&stub).status().expect("chmod");
    let exec = ClaudeExecutor::new(ClaudeConfig {
        binary: stub,
        auth: Auth::Cli,
        workspace: WorkspaceConfig { root: dir.join("ws"), ..Default::default() },
        ..ClaudeConfig::default()
    })
    .expect("executor");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("claude_executor");
    group.sample_size(30).measurement_time(Duration::from_secs(10));
    group.bench_function("run_with_stub_cli", |b| {
        b.to_async(&rt).iter(|| async {
            let req = RunRequest::new(Task::new("t1", "BENCH-1", "bench"));
            let outcome = exec
                .run(req, ProgressSender::discard(), CancellationToken::new())
                .await
                .expect("run");
            assert_eq!(outcome.summary, "Hello from fake API.");
        })
    });
    // The two halves of the overhead: from `run` to the first event (workspace, prompt,
    // spawn, the stub's start) and from the last event to the outcome (reaping, sweeping).
    for (name, from_start) in [("spawn_to_first_event", true), ("last_event_to_outcome", false)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let exec = exec.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (first, last, start, end) = timed_run(&exec).await;
                        total += if from_start { first - start } else { end - last };
                    }
                    total
                }
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs once; returns when the first and last progress items arrived, and when `run` started
/// and returned.
async fn timed_run(exec: &ClaudeExecutor) -> (Instant, Instant, Instant, Instant) {
    let (tx, mut rx) = ProgressSender::channel();
    let reader = tokio::spawn(async move {
        let (mut first, mut last) = (None, None);
        while rx.recv().await.is_some() {
            let now = Instant::now();
            first.get_or_insert(now);
            last = Some(now);
        }
        (first, last)
    });
    let req = RunRequest::new(Task::new("t1", "BENCH-1", "bench"));
    let start = Instant::now();
    exec.run(req, tx, CancellationToken::new()).await.expect("run");
    let end = Instant::now();
    let (first, last) = reader.await.expect("reader");
    (first.expect("an event"), last.expect("an event"), start, end)
}

criterion_group!(benches, parsing, executor_overhead);
criterion_main!(benches);
