//! Child processes that die with the daemon.
//!
//! Executors start their program in a process group of its own, so that a cancel can signal
//! everything the program started. The price is that a daemon killed outright (SIGKILL, the OOM
//! killer, a crash) leaves that group running: the agent keeps working on a task that the next
//! daemon — this one restarted, or another instance — runs again, and its late writes land in
//! the workspace and the tracker twice.
//!
//! [`spawn_tied`] closes that gap on Linux: the child gets `PR_SET_PDEATHSIG = SIGKILL`, so the
//! kernel kills it the moment its parent goes away. The kernel counts the *thread* that forked
//! as the parent, and tokio's blocking threads (and any `block_in_place` worker) exit when idle,
//! which would kill healthy children. So every tied child is forked by one dedicated thread that
//! lives as long as the process. Processes the child starts itself are not covered (the death
//! signal is not inherited); the executors kill the child's group when it ends, and
//! [`sweep_orphans`] kills what a dead daemon's children left behind: they carry
//! [`OWNER_ENV`], naming a daemon that no longer runs. `CommandExecutor` sweeps before every
//! run, the Claude executor its workspace root at start and before every session.
//!
//! On other systems [`spawn_tied`] is a plain spawn.

use std::io;
use std::path::Path;
use std::sync::{Mutex, OnceLock, mpsc};

use tokio::process::{Child, Command};

/// The environment variable, set on every tied child, naming the daemon that started it:
/// `<pid>:<start time in clock ticks since boot>` (the start time tells a reused pid apart).
/// Whatever the child starts inherits it, so leftovers of a dead daemon can be found.
pub const OWNER_ENV: &str = "AGENTFLOW_OWNER";

type SpawnJob = Box<dyn FnOnce() + Send>;

/// The long-lived thread that forks tied children.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        // The sender lives in this static, so `rx` never disconnects and the thread never ends.
        let spawned =
            std::thread::Builder::new().name("agentflow-spawner".into()).spawn(move || {
                for job in rx {
                    job();
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the process spawner thread");
        }
        Mutex::new(tx)
    })
}

/// This process's owner tag for [`OWNER_ENV`]: `<pid>:<start time>`.
pub fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", start_time(pid).unwrap_or(0))
}

/// The start time of `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the owner named by an [`OWNER_ENV`] value is still running (a pid that exists with
/// the same start time). Unparsable tags count as alive, so nothing is killed on a guess.
pub fn owner_alive(tag: &str) -> bool {
    let Some((pid, started)) = tag.split_once(':') else { return true };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return true;
    };
    match start_time(pid) {
        Some(now) => started == 0 || now == started,
        None => false,
    }
}

/// SIGKILLs what dead daemons left running: every process of this user (other than this one)
/// whose [`OWNER_ENV`] names a daemon that no longer runs — what a tied child had started
/// before its daemon was killed outright (the kernel kills only the child itself). With
/// `within`, only processes whose working directory is that directory or below it. Processes
/// of live daemons, processes with an unreadable or unparsable tag, and processes agentflow did
/// not start are left alone. One pass over `/proc`; returns how many were killed.
pub fn sweep_orphans(within: Option<&Path>) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let me = std::process::id();
    let mut killed = 0;
    for pid in entries.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse().ok()) {
        if pid == me || within.is_some_and(|dir| !cwd_within(pid, dir)) {
            continue;
        }
        let Some(owner) = owner_of(pid) else { continue };
        if owner_alive(&owner) {
            continue;
        }
        let Ok(target) = i32::try_from(pid) else { continue };
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), nix::sys::signal::SIGKILL)
            .is_ok()
        {
            tracing::warn!(pid, owner = %owner, "killed a process left running by a dead daemon");
            killed += 1;
        }
    }
    killed
}

/// Whether `pid`'s working directory is `dir` or below it.
pub fn cwd_within(pid: u32, dir: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| {
        let cwd = cwd.to_string_lossy();
        Path::new(cwd.strip_suffix(" (deleted)").unwrap_or(&cwd)).starts_with(dir)
    })
}

/// The [`OWNER_ENV`] value in `pid`'s environment.
fn owner_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{OWNER_ENV}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Spawns `cmd` so that the child is killed when this process dies (see the module docs), with
/// [`OWNER_ENV`] set. Must be called within a tokio runtime (like [`Command::spawn`]).
///
/// # Errors
/// What [`Command::spawn`] returns.
pub async fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    cmd.env(OWNER_ENV, owner_tag());
    #[cfg(target_os = "linux")]
    tie_to_parent(&mut cmd);
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: SpawnJob = Box::new(move || {
        let _runtime = handle.enter();
        let _ = tx.send(cmd.spawn());
    });
    spawner()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(job)
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    rx.await.map_err(|_| io::Error::other("the process spawner thread dropped the request"))?
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tie_to_parent(cmd: &mut Command) {
    use nix::sys::prctl::set_pdeathsig;
    use nix::sys::signal::Signal;
    let parent = nix::unistd::Pid::this();
    // SAFETY: the closure runs in the forked child before exec and only makes two system calls
    // (prctl, getppid), both async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other("the parent exited before the child started"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags() {
        let me = owner_tag();
        assert!(owner_alive(&me), "{me}");
        assert!(!owner_alive(&format!("{}:1", u32::MAX - 7)), "no such pid");
        let (pid, _) = me.split_once(':').unwrap();
        assert!(!owner_alive(&format!("{pid}:1")), "same pid, other start time: pid reused");
        assert!(owner_alive("garbage"), "unparsable: do not guess");
    }

    #[tokio::test]
    async fn a_tied_child_runs_normally() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo \"$AGENTFLOW_OWNER\""]).stdout(std::process::Stdio::piped());
        let out = spawn_tied(cmd).await.unwrap().wait_with_output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), owner_tag());
    }
}
