//! A daemon killed outright (SIGKILL) while an agent runs leaves nothing running: the CLI dies
//! with it, and what the CLI started in a session of its own is killed by the next executor
//! that starts on the same workspace root. The "daemon" is a helper copy of this test binary
//! running a `ClaudeExecutor` whose CLI is a script that records its pid, starts a detached
//! helper process and sleeps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentflow_claude::{ClaudeConfig, ClaudeExecutor, WorkspaceConfig};
use agentflow_core::{CancellationToken, Executor, ProgressSender, RunRequest, Task};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const HELPER_ENV: &str = "AGENTFLOW_ORPHAN_HELPER_DIR";

/// Whether `pid` is running (a zombie waiting for a reaper counts as gone).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn read_pid(path: &Path) -> i32 {
    let started = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
            && s.ends_with('\n')
        {
            return pid;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_gone(pid: i32, what: &str) {
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{what} (pid {pid}) is still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(dir: &Path) -> ClaudeConfig {
    ClaudeConfig {
        binary: dir.join("fake-claude"),
        workspace: WorkspaceConfig { root: dir.join("workspaces"), ..WorkspaceConfig::default() },
        ..ClaudeConfig::default()
    }
}

#[test]
fn a_killed_daemon_leaves_no_agent_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    // The fake CLI: records its pid, starts a helper in a session of its own (as the real
    // CLI's Bash tool does) that records its pid too, then waits like a CLI waiting on the API.
    let script = dir.join("fake-claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             setsid sh -c 'echo $$ > {d}/helper.tmp && mv {d}/helper.tmp {d}/helper.pid && exec sleep 3051' &\n\
             echo $$ > {d}/cli.tmp && mv {d}/cli.tmp {d}/cli.pid\n\
             exec sleep 3050\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut daemon = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_daemon_runs_an_agent", "--ignored", "--nocapture"])
        .env(HELPER_ENV, &dir)
        .spawn()
        .unwrap();
    let cli = read_pid(&dir.join("cli.pid"));
    let helper = read_pid(&dir.join("helper.pid"));
    assert!(running(cli) && running(helper), "the agent runs");
    let workspace: PathBuf = dir.join("workspaces");
    assert!(agentflow_claude::processes_in(&workspace, std::process::id()).contains(&helper));

    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGKILL).unwrap();
    daemon.wait().unwrap();
    wait_gone(cli, "the CLI of the SIGKILLed daemon");
    // The helper escaped the CLI's group and session: it is an orphan until an executor on
    // the same workspace root starts.
    std::thread::sleep(Duration::from_millis(200));
    assert!(running(helper), "the detached helper outlives the CLI");
    let _next = ClaudeExecutor::new(config(&dir)).unwrap();
    wait_gone(helper, "the orphaned helper after the next executor started");

    // Processes a live daemon owns are left alone.
    let mut mine = Command::new("sleep")
        .arg("3052")
        .current_dir(&workspace)
        .env(agentflow_core::process::OWNER_ENV, agentflow_core::process::owner_tag())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(agentflow_claude::sweep_orphans(&workspace), 0);
    assert!(running(mine.id() as i32), "a live owner's process is not touched");
    mine.kill().unwrap();
    mine.wait().unwrap();
}

/// The "daemon": runs the fake CLI on a task until killed; only run by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the \"daemon\" process of a_killed_daemon_leaves_no_agent_process_behind, which runs it in CI (`<this binary> --ignored --exact helper_daemon_runs_an_agent`) and SIGKILLs it"]
async fn helper_daemon_runs_an_agent() {
    let dir = PathBuf::from(std::env::var_os(HELPER_ENV).expect("started by the test"));
    let exec = ClaudeExecutor::new(config(&dir)).unwrap();
    let run = tokio::spawn(async move {
        let mut request = RunRequest::new(Task::new("t1", "ENG-1", "Wait"));
        request.timeout = Duration::from_secs(60);
        exec.run(request, ProgressSender::discard(), CancellationToken::new()).await
    });
    let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
}
