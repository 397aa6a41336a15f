//! Quickstart: two local tasks run by a shell script through the full engine, in memory.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! "Summarise the release notes" has no review keyword, so it goes Todo → In Progress → Done;
//! "Write a haiku about Rust" contains "write", so the review gate holds it in In Review. The
//! program prints every lifecycle change and log line, then the reports written back to the
//! tasks, and exits once both reached their end states.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentflow::command::CommandExecutor;
use agentflow::engine::{Engine, EngineConfig};
use agentflow::memory::{LocalSource, MemoryQueue, MemoryStore};
use agentflow::{CancellationToken, Event, TaskStatus};
use tokio::sync::broadcast::error::RecvError;

/// The "agent": reads the prompt on stdin, reports a session id, works a little, answers.
const SCRIPT: &str = r#"
echo "working on $AGENTFLOW_TASK_KEY (attempt $AGENTFLOW_ATTEMPT, in $(basename "$PWD"))"
echo "::session::demo-$AGENTFLOW_TASK_KEY"
read -r first_line
echo "prompt starts with: $first_line"
sleep 1
echo "finished: $AGENTFLOW_TASK_TITLE"
"#;

#[tokio::main]
async fn main() -> agentflow::Result<()> {
    let source = LocalSource::new();
    let summary = source.add("Summarise the release notes", "Three bullet points, please.");
    let haiku = source.add("Write a haiku about Rust", "Five, seven, five.");
    let ends = [(summary.id.clone(), TaskStatus::Done), (haiku.id.clone(), TaskStatus::InReview)];

    let workspace =
        std::env::temp_dir().join(format!("agentflow-quickstart-{}", std::process::id()));
    let config = EngineConfig {
        poll_interval: Duration::from_secs(1),
        feedback_interval: Duration::from_secs(1),
        progress_interval: Duration::from_secs(1),
        workspace_root: Some(workspace.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::builder()
        .source(Arc::new(source.clone()))
        .queue(Arc::new(MemoryQueue::new()))
        .executor(Arc::new(CommandExecutor::new("sh").arg("-c").arg(SCRIPT)))
        .store(Arc::new(MemoryStore::new()))
        .config(config)
        .build()?;
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { engine.run(shutdown).await }
    });

    let reached = || ends.iter().all(|(id, end)| source.task(id).is_some_and(|t| t.status == *end));
    let mut last = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !reached() {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::time::sleep_until(deadline) => {
                eprintln!("giving up after 60 s");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        match event {
            Ok(Event::TaskUpdate(u)) => {
                let now = (u.status, u.state.phase);
                if last.insert(u.task.clone(), now) != Some(now) {
                    println!(
                        "{:<6} {:<12} phase {:?} (attempt {})",
                        u.key,
                        u.status.to_string(),
                        u.state.phase,
                        u.attempt
                    );
                }
            }
            Ok(Event::Log(line)) => println!("{:<6}   | {}", line.task, line.line),
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => println!("(missed {n} events)"),
            Err(RecvError::Closed) => break,
        }
    }

    // What happened while the last check ran.
    while let Ok(event) = events.try_recv() {
        if let Event::TaskUpdate(u) = event {
            let now = (u.status, u.state.phase);
            if last.insert(u.task.clone(), now) != Some(now) {
                println!(
                    "{:<6} {:<12} phase {:?} (attempt {})",
                    u.key,
                    u.status.to_string(),
                    u.state.phase,
                    u.attempt
                );
            }
        }
    }
    shutdown.cancel();
    running.await.expect("the engine task does not panic")?;
    for (id, _) in &ends {
        let task = source.task(id).expect("task exists");
        println!("\n{} \"{}\" ended {}", task.key, task.title, task.status);
        for report in source.reports(id) {
            println!("  [{:?}] {}", report.kind, report.body.replace('\n', "\n      "));
        }
    }
    let stats = handle.stats().await?;
    println!(
        "\nstats: {} done today, {} failed, {} queued",
        stats.done_today, stats.failed_today, stats.queued
    );
    let _ = std::fs::remove_dir_all(&workspace);
    if reached() {
        Ok(())
    } else {
        Err(agentflow::Error::Conflict("tasks did not reach their end states".into()))
    }
}
