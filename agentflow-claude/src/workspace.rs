//! Task workspaces: one directory (or git worktree) per task, reused across runs.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::process::Command;

use crate::config::WorkspaceConfig;
use crate::error::ClaudeError;

/// Creates, finds and prunes the per-task workspaces under the configured root.
///
/// ```
/// use agentflow_claude::Workspaces;
/// assert_eq!(Workspaces::dir_name("ENG-123"), "ENG-123");
/// assert_eq!(Workspaces::dir_name("../../etc/passwd"), "etc_passwd");
/// assert_eq!(Workspaces::dir_name("/abs/path"), "abs_path");
/// ```
#[derive(Debug, Clone)]
pub struct Workspaces {
    cfg: WorkspaceConfig,
}

impl Workspaces {
    /// Workspaces as configured.
    pub fn new(cfg: WorkspaceConfig) -> Workspaces {
        Workspaces { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &WorkspaceConfig {
        &self.cfg
    }

    /// A safe directory name for a task key: ASCII letters, digits, `-` and `_` only (anything
    /// else becomes `_`, runs of `_` collapse, leading/trailing `_` are trimmed), at most 100
    /// characters, never empty. No separator, no `..`, no absolute path can survive it.
    pub fn dir_name(key: &str) -> String {
        let mut out = String::with_capacity(key.len());
        for c in key.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' };
            if !(c == '_' && out.ends_with('_')) {
                out.push(c);
            }
        }
        let trimmed: String = out.trim_matches('_').chars().take(100).collect();
        if trimmed.is_empty() { "task".to_owned() } else { trimmed }
    }

    /// The workspace of `key`: `<root>/<dir_name(key)>`.
    pub fn path_for(&self, key: &str) -> PathBuf {
        self.cfg.root.join(Self::dir_name(key))
    }

    /// The git branch of `key`'s worktree: `agentflow/<dir_name(key)>`.
    pub fn branch_for(key: &str) -> String {
        format!("agentflow/{}", Self::dir_name(key))
    }

    /// Makes sure the workspace of `key` exists (a worktree on `agentflow/<key>` when a
    /// repository is configured) and returns its absolute path. An existing workspace is reused
    /// as it is, so a resumed session finds its files.
    pub async fn prepare(&self, key: &str) -> Result<PathBuf, ClaudeError> {
        self.prepare_at(&self.path_for(key), key).await
    }

    /// Like [`prepare`](Workspaces::prepare), at `path` (e.g. the workspace the engine chose or
    /// stored with the session): created, or checked out as the worktree of `key` when a
    /// repository is configured, unless it exists already.
    pub async fn prepare_at(&self, path: &Path, key: &str) -> Result<PathBuf, ClaudeError> {
        let path = absolute(path);
        if path.is_dir() {
            return Ok(path);
        }
        let ws_err = |message: String| ClaudeError::Workspace { path: path.clone(), message };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| ws_err(format!("cannot create the parent directory: {e}")))?;
        }
        match &self.cfg.repo {
            None => tokio::fs::create_dir_all(&path)
                .await
                .map_err(|e| ws_err(format!("cannot create: {e}")))?,
            Some(repo) => {
                let branch = Self::branch_for(key);
                git(repo, &["worktree", "prune"]).await.map_err(ws_err)?;
                let exists = git(
                    repo,
                    &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")],
                )
                .await
                .is_ok();
                let target = path.to_string_lossy().into_owned();
                let args: Vec<&str> = if exists {
                    vec!["worktree", "add", &target, &branch]
                } else {
                    vec!["worktree", "add", "-b", &branch, &target]
                };
                git(repo, &args).await.map_err(ws_err)?;
            }
        }
        Ok(path)
    }

    /// Removes workspaces of finished tasks (`finished` keys): first those not modified for
    /// longer than `max_age`, then the oldest beyond `max_count`. Worktrees are removed through
    /// git (their branches are kept). Returns the removed directories.
    pub async fn prune(&self, finished: &[String]) -> Result<Vec<PathBuf>, ClaudeError> {
        let mut candidates = Vec::new();
        for key in finished {
            let path = absolute(&self.path_for(key));
            if let Ok(meta) = tokio::fs::metadata(&path).await {
                candidates.push((meta.modified().unwrap_or_else(|_| SystemTime::now()), path));
            }
        }
        self.prune_candidates(candidates).await
    }

    /// Like [`prune`](Workspaces::prune), for callers that know the tasks still in play rather
    /// than the finished ones (a tracker lists In Progress and In Review issues cheaply, not
    /// every Done one): every directory under the root that is not the workspace of an `active`
    /// key is a candidate, by the same age and count rules. A missing root prunes nothing.
    pub async fn prune_inactive(&self, active: &[String]) -> Result<Vec<PathBuf>, ClaudeError> {
        let keep: std::collections::HashSet<String> =
            active.iter().map(|k| Self::dir_name(k)).collect();
        let root = absolute(&self.cfg.root);
        let mut entries = match tokio::fs::read_dir(&root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ClaudeError::Workspace {
                    path: root,
                    message: format!("cannot list workspaces: {e}"),
                });
            }
        };
        let mut candidates = Vec::new();
        // Bounded by the directory's size; a read error ends the listing.
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(meta) = entry.metadata().await else { continue };
            let name = entry.file_name();
            if !meta.is_dir() || name.to_str().is_none_or(|n| keep.contains(n)) {
                continue;
            }
            candidates.push((meta.modified().unwrap_or_else(|_| SystemTime::now()), entry.path()));
        }
        self.prune_candidates(candidates).await
    }

    /// Removes the candidates older than `max_age`, then the oldest beyond `max_count`.
    async fn prune_candidates(
        &self,
        mut candidates: Vec<(SystemTime, PathBuf)>,
    ) -> Result<Vec<PathBuf>, ClaudeError> {
        let now = SystemTime::now();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        let mut removed = Vec::new();
        for (i, (modified, path)) in candidates.into_iter().enumerate() {
            let too_old = self
                .cfg
                .max_age
                .is_some_and(|max| now.duration_since(modified).is_ok_and(|age| age > max));
            let too_many = self.cfg.max_count.is_some_and(|max| i >= max);
            if too_old || too_many {
                self.remove(&path).await?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    async fn remove(&self, path: &Path) -> Result<(), ClaudeError> {
        if let Some(repo) = &self.cfg.repo {
            let target = path.to_string_lossy().into_owned();
            if git(repo, &["worktree", "remove", "--force", &target]).await.is_ok() {
                return Ok(());
            }
        }
        tokio::fs::remove_dir_all(path).await.map_err(|e| ClaudeError::Workspace {
            path: path.to_owned(),
            message: format!("cannot remove: {e}"),
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

async fn git(repo: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Where the CLI keeps the transcript of `session` run in `cwd`:
/// `<config_dir>/projects/<cwd with every non-alphanumeric character as '-'>/<session>.jsonl`.
///
/// ```
/// use std::path::Path;
/// let p = agentflow_claude::transcript_path(Path::new("/data/claude"), Path::new("/srv/ws/ENG-1"), "abc");
/// assert_eq!(p, Path::new("/data/claude/projects/-srv-ws-ENG-1/abc.jsonl"));
/// ```
pub fn transcript_path(config_dir: &Path, cwd: &Path, session: &str) -> PathBuf {
    let project: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    config_dir
        .join("projects")
        .join(project)
        .join(format!("{}.jsonl", Workspaces::dir_name(session)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn prepare_reuses_and_prune_respects_count() {
        let root = tempfile::tempdir().unwrap();
        let ws = Workspaces::new(WorkspaceConfig {
            root: root.path().to_owned(),
            repo: None,
            max_age: None,
            max_count: Some(1),
        });
        let a = ws.prepare("ENG-1").await.unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        assert_eq!(ws.prepare("ENG-1").await.unwrap(), a);
        assert!(a.join("f").exists());
        let b = ws.prepare("../ENG-2").await.unwrap();
        assert!(b.starts_with(root.path()));
        let removed = ws.prune(&["ENG-1".into(), "../ENG-2".into(), "ENG-3".into()]).await.unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(usize::from(a.exists()) + usize::from(b.exists()), 1);
    }

    #[tokio::test]
    async fn prune_inactive_keeps_active_tasks_and_other_files() {
        let root = tempfile::tempdir().unwrap();
        let cfg = |max_age, max_count| WorkspaceConfig {
            root: root.path().join("ws"),
            repo: None,
            max_age,
            max_count,
        };
        // No root yet: nothing to prune, no error.
        let ws = Workspaces::new(cfg(None, Some(0)));
        assert!(ws.prune_inactive(&[]).await.unwrap().is_empty());

        let paths: Vec<PathBuf> = {
            let mut v = Vec::new();
            for key in ["ENG-1", "ENG/2", "ENG-3"] {
                v.push(ws.prepare(key).await.unwrap());
            }
            v
        };
        std::fs::write(root.path().join("ws").join("notes.txt"), "not a workspace").unwrap();

        // Young and within the count: everything stays.
        let lenient = Workspaces::new(cfg(Some(Duration::from_secs(3600)), Some(10)));
        assert!(lenient.prune_inactive(&["ENG-1".into()]).await.unwrap().is_empty());

        // Count 0: every inactive workspace goes; the active one (by its key, sanitised the
        // same way as its directory) and the plain file stay.
        let mut removed = ws.prune_inactive(&["ENG/2".into()]).await.unwrap();
        removed.sort();
        let mut expected = vec![absolute(&paths[0]), absolute(&paths[2])];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(!paths[0].exists() && paths[1].exists() && !paths[2].exists());
        assert!(root.path().join("ws").join("notes.txt").exists());

        // Age 0: the last one goes once it is no longer active.
        let strict = Workspaces::new(cfg(Some(Duration::ZERO), None));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(strict.prune_inactive(&[]).await.unwrap().len(), 1);
        assert!(!paths[1].exists());
    }

    #[tokio::test]
    async fn worktree_on_task_branch() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        for args in [
            vec!["init", "-q", "-b", "main"],
            vec![
                "-c",
                "user.email=a@b",
                "-c",
                "user.name=a",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "init",
            ],
        ] {
            assert!(
                std::process::Command::new("git")
                    .arg("-C")
                    .arg(&repo)
                    .args(args)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let ws = Workspaces::new(WorkspaceConfig {
            root: root.path().join("ws"),
            repo: Some(repo.clone()),
            max_age: None,
            max_count: Some(0),
        });
        let path = ws.prepare("ENG-7").await.unwrap();
        let head = std::fs::read_to_string(path.join(".git")).unwrap();
        assert!(head.contains("worktrees"), "{head}");
        let branch = std::process::Command::new("git")
            .arg("-C")
            .arg(&path)
            .args(["branch", "--show-current"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&branch.stdout).trim(), "agentflow/ENG-7");
        assert_eq!(ws.prune(&["ENG-7".into()]).await.unwrap(), vec![path.clone()]);
        assert!(!path.exists());
        // The branch survives; a new workspace checks it out again, wherever it is asked for.
        let elsewhere = ws.prepare_at(&root.path().join("engine-ws/ENG-7"), "ENG-7").await.unwrap();
        let head = std::fs::read_to_string(elsewhere.join(".git")).unwrap();
        assert!(head.contains("worktrees"), "{head}");
    }
}
