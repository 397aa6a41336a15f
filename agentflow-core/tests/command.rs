//! CommandExecutor against real `sh -c` programs.

use std::time::Duration;

use agentflow_core::command::CommandExecutor;
use agentflow_core::{
    CancellationToken, Error, Executor, Feedback, JobKind, Progress, ProgressSender, RunRequest,
    Task,
};
use chrono::Utc;

fn sh(script: &str) -> CommandExecutor {
    CommandExecutor::new("sh").arg("-c").arg(script).kill_grace(Duration::from_millis(500))
}

fn request() -> RunRequest {
    let mut task = Task::new("task-1", "LOC-7", "Write a haiku");
    task.body = "About `rust`; $(rm -rf /) stays data.".into();
    RunRequest::new(task)
}

async fn run(
    exec: &CommandExecutor,
    req: RunRequest,
) -> (agentflow_core::Result<agentflow_core::RunOutcome>, Vec<Progress>) {
    let (tx, mut rx) = ProgressSender::channel();
    let result =
        tokio::time::timeout(Duration::from_secs(30), exec.run(req, tx, CancellationToken::new()))
            .await
            .expect("the run ends within 30 s");
    let mut seen = Vec::new();
    while let Ok((_, p)) = rx.try_recv() {
        seen.push(p);
    }
    (result, seen)
}

#[tokio::test]
async fn success_streams_lines_and_summarises_the_last_ones() {
    let exec = sh("echo one; echo warn >&2; echo two; echo three").summary_lines(2);
    let (result, seen) = run(&exec, request()).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.summary, "two\nthree");
    assert_eq!(outcome.needs_review, None);
    let texts: Vec<_> = seen
        .iter()
        .filter_map(|p| match p {
            Progress::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert!(seen.iter().any(|p| matches!(p, Progress::Log { line, .. } if line == "warn")));
}

#[tokio::test]
async fn task_fields_are_in_the_environment_and_the_prompt_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let exec = sh(
        "echo \"$AGENTFLOW_TASK_ID|$AGENTFLOW_TASK_KEY|$AGENTFLOW_TASK_TITLE|$AGENTFLOW_ATTEMPT|$AGENTFLOW_KIND|$AGENTFLOW_SESSION\"; pwd; cat",
    );
    let mut req = request();
    req.kind = JobKind::Feedback;
    req.attempt = 2;
    req.resume_session = Some("sess-9".into());
    req.workspace = Some(dir.path().join("LOC-7"));
    req.feedback.push(Feedback {
        id: "c-1".into(),
        task: req.task.id.clone(),
        author: "Ada".into(),
        body: "Shorter please".into(),
        created_at: Utc::now(),
    });
    let (result, _) = run(&exec.summary_lines(50), req).await;
    let summary = result.unwrap().summary;
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[0], "task-1|LOC-7|Write a haiku|2|feedback|sess-9");
    assert!(lines[1].ends_with("/LOC-7"), "cwd is the workspace: {}", lines[1]);
    assert!(dir.path().join("LOC-7").is_dir(), "workspace created");
    assert!(summary.contains("Task LOC-7: Write a haiku"));
    assert!(summary.contains("$(rm -rf /) stays data."));
    assert!(summary.contains("comment by Ada"));
    assert!(summary.contains("Shorter please"));
}

/// No environment holds a NUL; a title with one (trackers accept it) still runs.
#[tokio::test]
async fn a_task_title_with_nul_runs_with_a_replacement_character() {
    let exec = sh("echo \"$AGENTFLOW_TASK_TITLE|$AGENTFLOW_SESSION\"");
    let mut req = request();
    req.task.title = "bad\0title".into();
    req.resume_session = Some("s\0ss".into());
    let (result, _) = run(&exec, req).await;
    assert_eq!(result.unwrap().summary, "bad\u{FFFD}title|s\u{FFFD}ss");
}

#[tokio::test]
async fn session_and_review_instructions_are_understood() {
    let exec = sh("echo '::session::abc-123'; echo done; echo '::review::true'");
    let (result, seen) = run(&exec, request()).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.session_id.as_deref(), Some("abc-123"));
    assert_eq!(outcome.needs_review, Some(true));
    assert_eq!(outcome.summary, "done");
    assert!(seen.contains(&Progress::Session { id: "abc-123".into() }));
}

#[tokio::test]
async fn non_zero_exit_is_a_retryable_executor_error_unless_listed_permanent() {
    let (result, _) = run(&sh("echo broken >&2; exit 3"), request()).await;
    match result.unwrap_err() {
        e @ Error::Executor { .. } => {
            assert!(e.is_retryable());
            let msg = e.to_string();
            assert!(msg.contains("status 3") && msg.contains("broken"), "{msg}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let (result, _) = run(&sh("exit 3").permanent_exit_codes([3]), request()).await;
    assert!(!result.unwrap_err().is_retryable());
    let (result, _) = run(&sh("exit 127"), request()).await;
    assert!(!result.unwrap_err().is_retryable(), "127 is permanent by default");
}

#[tokio::test]
async fn a_missing_program_is_a_clear_permanent_error() {
    let exec = CommandExecutor::new("/nonexistent/agentflow-agent");
    let (result, _) = run(&exec, request()).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("cannot start `/nonexistent/agentflow-agent`"), "{err}");
}

#[tokio::test]
async fn a_program_that_never_reads_stdin_still_finishes() {
    let mut req = request();
    req.task.body = "x".repeat(1 << 20);
    let (result, _) = run(&sh("echo ignored input"), req).await;
    assert_eq!(result.unwrap().summary, "ignored input");
}

/// Processes whose process group is `pgid`, read from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name: state, ppid, pgrp, …
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group_including_grandchildren() {
    // The shell starts a grandchild that ignores SIGTERM, reports both pids, then waits.
    let exec = sh("trap '' TERM; (trap '' TERM; sleep 300) & echo \"pids $$ $!\"; wait");
    let (tx, mut rx) = ProgressSender::channel();
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { exec.run(request(), tx, cancel).await }
    });
    let (leader, grandchild) = loop {
        let (_, p) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the program reports its pids")
            .expect("channel open");
        if let Progress::Text { text } = p
            && let Some(rest) = text.strip_prefix("pids ")
        {
            let v: Vec<i32> = rest.split(' ').map(|s| s.parse().unwrap()).collect();
            break (v[0], v[1]);
        }
    };
    assert!(alive(leader) && alive(grandchild));
    assert!(group_members(leader).len() >= 2, "leader and grandchild share the group");

    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap();
    assert!(matches!(result, Err(Error::Cancelled { .. })), "{result:?}");
    for _ in 0..200 {
        if group_members(leader).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive(leader), "leader {leader} is gone");
    assert!(!alive(grandchild), "grandchild {grandchild} is gone");
    assert_eq!(group_members(leader), Vec::<i32>::new());
}

#[tokio::test]
async fn a_normal_exit_leaves_no_background_process_behind() {
    let exec = sh("sleep 300 & echo \"bg $!\"");
    let (result, _) = run(&exec, request()).await;
    let summary = result.unwrap().summary;
    let pid: i32 = summary.strip_prefix("bg ").unwrap().trim().parse().unwrap();
    for _ in 0..200 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive(pid), "background process {pid} was killed with its group");
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let exec = sh("echo \"pid $$\"; sleep 300");
    let (tx, mut rx) = ProgressSender::channel();
    let fut = tokio::spawn(async move { exec.run(request(), tx, CancellationToken::new()).await });
    let pid = loop {
        let (_, p) =
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        if let Progress::Text { text } = p
            && let Some(pid) = text.strip_prefix("pid ")
        {
            break pid.parse::<i32>().unwrap();
        }
    };
    fut.abort();
    let _ = fut.await;
    for _ in 0..200 {
        if group_members(pid).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(group_members(pid), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_timeout_kills_the_command_s_process_group() {
    use std::sync::Arc;

    use agentflow_core::engine::{Engine, EngineConfig};
    use agentflow_core::memory::{LocalSource, MemoryQueue, MemoryStore};
    use agentflow_core::{Event, TaskStatus};

    let source = LocalSource::new();
    let task = source.add("Summarise", "");
    let exec = sh("echo \"pid $$\"; (sleep 300) & sleep 300");
    let config = EngineConfig {
        timeout: Duration::from_millis(500),
        max_attempts: 1,
        poll_interval: Duration::from_millis(50),
        queue_poll_interval: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let engine = Engine::builder()
        .source(Arc::new(source.clone()))
        .queue(Arc::new(MemoryQueue::new()))
        .executor(Arc::new(exec))
        .store(Arc::new(MemoryStore::new()))
        .config(config)
        .build()
        .unwrap();
    let mut events = engine.handle().subscribe();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { engine.run(shutdown).await }
    });
    let pid = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Log(l)) = events.recv().await
                && let Some(pid) = l.line.strip_prefix("pid ")
            {
                return pid.parse::<i32>().unwrap();
            }
        }
    })
    .await
    .expect("the command reports its pid");
    for _ in 0..1000 {
        if source.task(&task.id).unwrap().status == TaskStatus::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(source.task(&task.id).unwrap().status, TaskStatus::Failed);
    let report = source.reports(&task.id).pop().unwrap();
    assert!(report.body.contains("timed out"), "{}", report.body);
    assert_eq!(group_members(pid), Vec::<i32>::new(), "the whole group is gone");
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn invalid_utf8_output_is_kept_lossily_and_does_not_stall_the_program() {
    // A non-UTF-8 line, then enough output to fill a pipe if nobody were reading.
    let exec = sh("printf 'caf\\351\\n'; i=0; while [ $i -lt 2000 ]; do echo \"line $i padded to fill the pipe buffer quickly\"; i=$((i+1)); done; echo end")
        .summary_lines(1);
    let (result, seen) = run(&exec, request()).await;
    assert_eq!(result.unwrap().summary, "end");
    assert!(seen.contains(&Progress::Text { text: "caf\u{fffd}".into() }), "{:?}", &seen[..2]);
    assert_eq!(seen.len(), 2002);
}
