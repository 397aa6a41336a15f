//! Retries: the 5 s → 10 s → 20 s backoff, exhaustion, permanent errors, timeouts.

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::engine::{EngineConfig, RetryConfig};
use agentflow_core::{
    CancellationToken, Error, Executor, JobFilter, JobQueue, JobState, Page, ProgressSender,
    ReportKind, Result, RunFilter, RunOutcome, RunRequest, RunStatus, StateStore, TaskStatus,
    async_trait,
};

use super::support::*;

fn failing_until(success_at: u32) -> Arc<Scripted> {
    Scripted::new(move |req, _, _| async move {
        if req.attempt < success_at {
            Err(Error::executor(format!("boom on attempt {}", req.attempt), true))
        } else {
            Ok(RunOutcome { summary: "finally".into(), ..Default::default() })
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_failing_attempt_is_retried_after_5s_then_10s() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let queue = Intercept::new(fx.queue.clone());
    let exec = failing_until(3);
    let (shutdown, join, _) =
        spawn(fx.engine_with_queue(exec.clone(), queue.clone(), paused_config()));
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;

    assert_eq!(queue.delays_secs(), vec![Some(5), Some(10)]);
    let calls = exec.calls();
    assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(calls[0].previous_error, None);
    assert!(calls[2].previous_error.as_deref().unwrap().contains("boom on attempt 2"));
    let runs = fx.store.list_runs(&RunFilter::default(), Page::first(10)).await.unwrap();
    let mut statuses: Vec<_> = runs.runs.iter().map(|r| (r.attempt, r.status)).collect();
    statuses.sort_by_key(|(a, _)| *a);
    assert_eq!(
        statuses,
        [(1, RunStatus::Failed), (2, RunStatus::Failed), (3, RunStatus::Succeeded)]
    );
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_to_20s_with_four_attempts() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let queue = Intercept::new(fx.queue.clone());
    let exec = failing_until(99);
    let config = EngineConfig { max_attempts: 4, ..paused_config() };
    let (shutdown, join, _) = spawn(fx.engine_with_queue(exec.clone(), queue.clone(), config));
    fx.wait_status(&task.id, TaskStatus::Failed).await;
    stop(shutdown, join).await;
    assert_eq!(queue.delays_secs(), vec![Some(5), Some(10), Some(20), None]);
    assert_eq!(exec.calls().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn after_the_last_attempt_the_task_fails_with_a_report_saying_why() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let queue = Intercept::new(fx.queue.clone());
    let exec = failing_until(99);
    let config = EngineConfig {
        retry: RetryConfig { jitter: true, ..RetryConfig::default() },
        ..paused_config()
    };
    let (shutdown, join, handle) = spawn(fx.engine_with_queue(exec.clone(), queue.clone(), config));
    fx.wait_status(&task.id, TaskStatus::Failed).await;
    stop(shutdown, join).await;

    assert_eq!(exec.calls().len(), 3, "default max_attempts is 3");
    let delays = queue.delays.lock().unwrap().clone();
    assert!(
        delays[0].unwrap() >= Duration::from_millis(2400)
            && delays[0].unwrap() <= Duration::from_secs(5)
    );
    assert!(
        delays[1].unwrap() >= Duration::from_millis(4900)
            && delays[1].unwrap() <= Duration::from_secs(10)
    );
    assert_eq!(delays[2], None, "the last failure is final");
    let summaries: Vec<_> =
        fx.source.reports(&task.id).into_iter().filter(|r| r.kind == ReportKind::Summary).collect();
    assert_eq!(summaries.len(), 1);
    assert!(summaries[0].body.contains("Failed"), "{}", summaries[0].body);
    assert!(summaries[0].body.contains("3 attempts"), "{}", summaries[0].body);
    assert!(summaries[0].body.contains("boom on attempt 3"), "{}", summaries[0].body);
    let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(5)).await.unwrap();
    assert_eq!(jobs[0].state, JobState::Failed);
    let board = handle.task(&task.id).unwrap();
    assert_eq!(board.status, TaskStatus::Failed);
    assert!(board.error.unwrap().contains("boom"));
}

mockall::mock! {
    Exec {}
    #[async_trait]
    impl Executor for Exec {
        async fn run(&self, request: RunRequest, progress: ProgressSender, cancel: CancellationToken) -> Result<RunOutcome>;
    }
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_fails_the_task_after_one_attempt() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let mut exec = MockExec::new();
    exec.expect_run()
        .times(1)
        .returning(|_, _, _| Err(Error::executor("the agent refused: invalid task", false)));
    let queue = Intercept::new(fx.queue.clone());
    let (shutdown, join, _) =
        spawn(fx.engine_with_queue(Arc::new(exec), queue.clone(), paused_config()));
    fx.wait_status(&task.id, TaskStatus::Failed).await;
    stop(shutdown, join).await;
    assert_eq!(queue.delays_secs(), vec![None]);
    let summary = fx.source.reports(&task.id).pop().unwrap();
    assert!(summary.body.contains("1 attempt (not retryable)"), "{}", summary.body);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_cancelled_and_retried_then_fails() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let queue = Intercept::new(fx.queue.clone());
    let exec = Scripted::new(|_, _, cancel| until_cancelled(cancel));
    let config =
        EngineConfig { timeout: Duration::from_secs(600), max_attempts: 2, ..paused_config() };
    let (shutdown, join, _) = spawn(fx.engine_with_queue(exec.clone(), queue.clone(), config));
    fx.wait_status(&task.id, TaskStatus::Failed).await;
    stop(shutdown, join).await;

    assert_eq!(exec.calls().len(), 2);
    assert_eq!(queue.delays_secs(), vec![Some(5), None]);
    let runs = fx.store.list_runs(&RunFilter::default(), Page::first(10)).await.unwrap();
    assert!(runs.runs.iter().all(|r| r.status == RunStatus::TimedOut), "{:?}", runs.runs);
    assert!(runs.runs[0].error.as_deref().unwrap().contains("timed out after 10m"));
    let summary = fx.source.reports(&task.id).pop().unwrap();
    assert!(summary.body.contains("timed out"), "{}", summary.body);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_attempt_waits_for_retry_after_when_it_is_longer_than_the_backoff() {
    trace();
    let fx = Fixture::new();
    let slow = fx.source.add("Summarise slowly", "");
    let quick = fx.source.add("Summarise quickly", "");
    let queue = Intercept::new(fx.queue.clone());
    let exec = Scripted::new(move |req, _, _| async move {
        if req.attempt > 1 {
            return Ok(RunOutcome { summary: "after the wait".into(), ..Default::default() });
        }
        let wait = if req.task.title.contains("slowly") { 42 } else { 1 };
        Err(Error::RateLimited {
            service: "anthropic",
            retry_after: Some(Duration::from_secs(wait)),
            message: "rate limited".into(),
        })
    });
    let config = EngineConfig { workers: 1, ..paused_config() };
    let (shutdown, join, _) = spawn(fx.engine_with_queue(exec.clone(), queue.clone(), config));
    fx.wait_status(&slow.id, TaskStatus::Done).await;
    fx.wait_status(&quick.id, TaskStatus::Done).await;
    stop(shutdown, join).await;
    let mut delays = queue.delays_secs();
    delays.sort();
    // retry-after 42 s beats the 5 s backoff; retry-after 1 s does not shorten it.
    assert_eq!(delays, vec![Some(5), Some(42)]);
}

/// A source whose status writes and summary reports fail with a rate limit a few times.
struct Hiccups {
    inner: agentflow_core::memory::LocalSource,
    status_failures: std::sync::atomic::AtomicU32,
    report_failures: std::sync::atomic::AtomicU32,
}

fn limited() -> Error {
    Error::RateLimited {
        service: "linear",
        retry_after: Some(Duration::from_secs(3)),
        message: "Rate limit exceeded".into(),
    }
}

fn take(n: &std::sync::atomic::AtomicU32) -> bool {
    n.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |v| {
        v.checked_sub(1)
    })
    .is_ok()
}

#[async_trait]
impl agentflow_core::TaskSource for Hiccups {
    async fn ready(&self, limit: usize) -> Result<Vec<agentflow_core::Task>> {
        self.inner.ready(limit).await
    }
    async fn claim(&self, id: &agentflow_core::TaskId) -> Result<bool> {
        self.inner.claim(id).await
    }
    async fn set_status(&self, id: &agentflow_core::TaskId, status: TaskStatus) -> Result<()> {
        if status != TaskStatus::InProgress && take(&self.status_failures) {
            return Err(limited());
        }
        self.inner.set_status(id, status).await
    }
    async fn feedback(&self, cursor: Option<&str>) -> Result<agentflow_core::FeedbackBatch> {
        self.inner.feedback(cursor).await
    }
    async fn report(
        &self,
        id: &agentflow_core::TaskId,
        report: &agentflow_core::Report,
    ) -> Result<()> {
        if report.kind == ReportKind::Summary && take(&self.report_failures) {
            return Err(limited());
        }
        self.inner.report(id, report).await
    }
    async fn get(&self, id: &agentflow_core::TaskId) -> Result<Option<agentflow_core::Task>> {
        self.inner.get(id).await
    }
    async fn list(&self, status: TaskStatus) -> Result<Vec<agentflow_core::Task>> {
        self.inner.list(status).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_tracker_after_success_neither_reruns_the_agent_nor_loses_the_summary() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let source = Arc::new(Hiccups {
        inner: fx.source.clone(),
        status_failures: 2.into(),
        report_failures: 1.into(),
    });
    let queue = Intercept::new(fx.queue.clone());
    let exec = Scripted::ok("all done");
    let engine = fx
        .builder(exec.clone(), queue.clone(), paused_config())
        .source(source.clone() as Arc<dyn agentflow_core::TaskSource>)
        .build()
        .unwrap();
    let (shutdown, join, _) = spawn(engine);
    fx.wait_status(&task.id, TaskStatus::Done).await;
    wait_for("the summary", || {
        fx.source.reports(&task.id).iter().any(|r| r.kind == ReportKind::Summary)
    })
    .await;
    stop(shutdown, join).await;
    assert_eq!(exec.calls().len(), 1, "the agent ran once");
    assert_eq!(queue.delays_secs(), Vec::<Option<u64>>::new(), "no attempt failed");
    let summaries: Vec<_> =
        fx.source.reports(&task.id).into_iter().filter(|r| r.kind == ReportKind::Summary).collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(summaries[0].body.contains("all done"));
}
