//! Linear requests per engine poll cycle as the number of issues grows, counted by the fake
//! Linear (`agentflow_testkit::fake_linear`, which validates every operation against Linear's
//! real schema). One cycle is what the engine does on each poll: Todo discovery
//! (`ready(todo_batch)`), the feedback poll across In Review issues (`feedback(cursor)`) and the
//! batched status look-up of running tasks (`statuses(running)`).
//!
//! ```text
//! cargo bench --bench linear_requests
//! ```
//!
//! Prints a Markdown table (issues in Todo and in In Review, requests per operation, wall time
//! of the cycle on loopback) and fails if the requests per cycle change with the issue count.

use std::time::{Duration, Instant};

use agentflow::linear::{LinearConfig, LinearSource};
use agentflow::{TaskId, TaskSource};
use agentflow_testkit::fake_linear::{CommentAuthor, FakeLinear};

/// Issues per size: this many in Todo and as many in In Review.
const SIZES: [usize; 3] = [1, 50, 500];
/// The engine's defaults: Todo tasks claimed per cycle, workers (running tasks looked up).
const TODO_BATCH: usize = 20;
const RUNNING: usize = 3;
/// Cycles measured per size.
const CYCLES: u32 = 20;

struct Line {
    size: usize,
    discovery: u64,
    feedback: u64,
    statuses: u64,
    total: u64,
    cycle: Duration,
}

async fn measure(size: usize) -> Line {
    let fake = FakeLinear::start().await;
    let todo = fake.create_issues("ENG", "Todo", "todo", size);
    let in_review = fake.create_issues("ENG", "In Review", "review", size);
    // A few new human comments per cycle, as in a busy team; feedback pages by comments.
    for issue in in_review.iter().rev().take(3) {
        fake.add_comment(
            &issue.id,
            CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned()),
            "please change this",
        );
    }
    let mut config = LinearConfig::with_api_key(FakeLinear::API_KEY, &["ENG"]);
    config.api_url = fake.url();
    let source = LinearSource::connect(config).await.expect("connect to the fake Linear");
    let running: Vec<TaskId> = todo.iter().take(RUNNING).map(|i| TaskId(i.id.clone())).collect();

    // One counted cycle.
    fake.reset_requests();
    let ready = source.ready(TODO_BATCH).await.expect("ready");
    assert_eq!(ready.len(), size.min(TODO_BATCH));
    let discovery = fake.total_requests();
    let batch = source.feedback(None).await.expect("feedback");
    assert_eq!(batch.items.len(), size.min(3));
    let feedback = fake.total_requests() - discovery;
    let statuses = source.statuses(&running).await.expect("statuses");
    assert_eq!(statuses.len(), running.len());
    let total = fake.total_requests();

    // Timed cycles (after the counted one, so connections are warm).
    let started = Instant::now();
    for _ in 0..CYCLES {
        source.ready(TODO_BATCH).await.expect("ready");
        source.feedback(None).await.expect("feedback");
        source.statuses(&running).await.expect("statuses");
    }
    let cycle = started.elapsed() / CYCLES;
    Line { size, discovery, feedback, statuses: total - discovery - feedback, total, cycle }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let lines: Vec<Line> = SIZES.iter().map(|&size| rt.block_on(measure(size))).collect();
    println!(
        "\nLinear requests per poll cycle (todo_batch {TODO_BATCH}, {RUNNING} running tasks):\n"
    );
    println!(
        "| issues (Todo + In Review) | discovery | feedback | status look-up | total | cycle time |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        println!(
            "| {} + {} | {} | {} | {} | {} | {:.2} ms |",
            l.size,
            l.size,
            l.discovery,
            l.feedback,
            l.statuses,
            l.total,
            l.cycle.as_secs_f64() * 1e3
        );
    }
    let first = lines[0].total;
    assert!(
        lines.iter().all(|l| l.total == first),
        "requests per cycle change with the issue count"
    );
}
