//! A program the [`CommandExecutor`] runs dies with the process that started it, even when that
//! process is SIGKILLed (no drop, no cancel): the test runs a helper copy of this test binary
//! that starts a run and then gets killed, and checks that the program is gone too — and that
//! what the program had started, which the kernel does not kill, is swept by the next run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentflow_core::command::CommandExecutor;
use agentflow_core::{CancellationToken, Executor, ProgressSender, RunRequest, Task};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const HELPER_ENV: &str = "AGENTFLOW_TIED_HELPER_PIDFILE";
const SCRIPT_ENV: &str = "AGENTFLOW_TIED_HELPER_SCRIPT";

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

/// Starts the helper "daemon" running `script` (`{pidfile}` is replaced by the file to write
/// pids to), waits for the pids it writes, SIGKILLs it; returns the pids.
fn run_and_kill_a_daemon(script: &str) -> Vec<i32> {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = script.replace("{pidfile}", &pidfile.display().to_string());
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_runs_a_command_until_killed", "--ignored", "--nocapture"])
        .env(HELPER_ENV, &pidfile)
        .env(SCRIPT_ENV, script)
        .spawn()
        .unwrap();
    let pids: Vec<i32> =
        wait_for_file(&pidfile).split_whitespace().map(|p| p.parse().unwrap()).collect();
    for pid in &pids {
        assert!(running(*pid), "the command runs while its daemon lives");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(pids[0]), "and keeps running");
    kill(Pid::from_raw(helper.id() as i32), Signal::SIGKILL).unwrap();
    helper.wait().unwrap();
    pids
}

/// Waits (at most 10 s) until `pid` is gone; kills it and fails otherwise.
fn wait_gone(pid: i32, what: &str) {
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{what} (pid {pid}) outlived its SIGKILLed daemon");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_command_dies_when_its_daemon_is_killed() {
    let pids = run_and_kill_a_daemon(
        "echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile} && exec sleep 60",
    );
    wait_gone(pids[0], "the command");
}

/// The kernel kills the command itself; a background process it started lives on, an orphan.
/// The next run of any `CommandExecutor` (the restarted daemon's) finds it by its owner tag,
/// whose daemon is dead, and kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_daemon_s_command_started_is_swept_by_the_next_run() {
    let pids = tokio::task::spawn_blocking(|| {
        run_and_kill_a_daemon(
            "sleep 61 & echo \"$$ $!\" > {pidfile}.tmp && mv {pidfile}.tmp {pidfile} && wait",
        )
    })
    .await
    .unwrap();
    let (command, orphan) = (pids[0], pids[1]);
    tokio::task::spawn_blocking(move || wait_gone(command, "the command")).await.unwrap();
    std::thread::sleep(Duration::from_millis(200));
    if !running(orphan) {
        panic!("the orphan (pid {orphan}) should still run before the sweep; the test is moot");
    }
    let exec = CommandExecutor::new("true");
    let request = RunRequest::new(Task::new("t2", "LOC-2", "Next"));
    exec.run(request, ProgressSender::discard(), CancellationToken::new()).await.unwrap();
    tokio::task::spawn_blocking(move || wait_gone(orphan, "the command's background process"))
        .await
        .unwrap();
}

/// The "daemon": runs the script it is given (it records pids in the pid file) until it is
/// killed; only run by the tests above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the \"daemon\" process of the tests above, which run it in CI (`<this binary> --ignored --exact helper_runs_a_command_until_killed`) and SIGKILL it"]
async fn helper_runs_a_command_until_killed() {
    let script = std::env::var(SCRIPT_ENV).expect("started by a test");
    let exec = CommandExecutor::new("sh").arg("-c").arg(script);
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
