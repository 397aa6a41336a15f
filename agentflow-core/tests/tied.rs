//! A program the [`CommandExecutor`] runs dies with the process that started it, even when that
//! process is SIGKILLed (no drop, no cancel): the test runs a helper copy of this test binary
//! that starts a run and then gets killed, and checks that the program is gone too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentflow_core::command::CommandExecutor;
use agentflow_core::{CancellationToken, Executor, ProgressSender, RunRequest, Task};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const HELPER_ENV: &str = "AGENTFLOW_TIED_HELPER_PIDFILE";

/// Whether `pid` is running (a zombie waiting for a reaper counts as gone).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

fn wait_for_file(path: &Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_command_dies_when_its_daemon_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_runs_a_command_until_killed", "--ignored", "--nocapture"])
        .env(HELPER_ENV, &pidfile)
        .spawn()
        .unwrap();
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    assert!(running(pid), "the command runs while its daemon lives");
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(pid), "and keeps running");

    kill(Pid::from_raw(helper.id() as i32), Signal::SIGKILL).unwrap();
    helper.wait().unwrap();
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("the command (pid {pid}) outlived its SIGKILLed daemon");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The "daemon": runs a command that records its pid and sleeps; only run by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the \"daemon\" process of a_running_command_dies_when_its_daemon_is_killed, which runs it in CI (`<this binary> --ignored --exact helper_runs_a_command_until_killed`) and SIGKILLs it"]
async fn helper_runs_a_command_until_killed() {
    let pidfile = std::env::var(HELPER_ENV).expect("started by the test");
    let exec = CommandExecutor::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile} && exec sleep 60"));
    let run = tokio::spawn(async move {
        exec.run(
            RunRequest::new(Task::new("t1", "LOC-1", "Sleep")),
            ProgressSender::discard(),
            CancellationToken::new(),
        )
        .await
    });
    let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
}
