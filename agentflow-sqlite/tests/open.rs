//! Opening: pragmas verified, and bad input (corrupt file, read-only directory, newer schema,
//! bad URL) fails with an error that names the path and what to do.

use std::path::Path;
use std::process::Command;

use agentflow_core::{JobKind, JobQueue, JobSpec};
use agentflow_sqlite::{Database, SCHEMA_VERSION, SqliteOptions, Synchronous};

/// Set in a child process (re-exec of this test binary) to the test that should act.
const CHILD: &str = "AGENTFLOW_SQLITE_OPEN_CHILD";
const CHILD_DIR: &str = "AGENTFLOW_SQLITE_OPEN_DIR";

async fn open_err(path: &Path) -> String {
    match Database::open(path.to_str().unwrap(), SqliteOptions::default()).await {
        Ok(_) => panic!("opening {} should fail", path.display()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn pragmas_are_set_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let opts = SqliteOptions {
        synchronous: Synchronous::Full,
        busy_timeout: std::time::Duration::from_millis(1234),
        ..Default::default()
    };
    let db = Database::open(&format!("sqlite://{}", path.display()), opts).await.unwrap();
    let p = db.pragmas().await.unwrap();
    assert_eq!(p.journal_mode, "wal");
    assert_eq!(p.synchronous, Synchronous::Full);
    assert_eq!(p.busy_timeout.as_millis(), 1234);
    assert!(p.foreign_keys);
    assert_eq!(p.schema_version, SCHEMA_VERSION);
    // WAL is persistent: another connection sees it.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let normal = Database::open(path.to_str().unwrap(), SqliteOptions::default()).await.unwrap();
    assert_eq!(normal.pragmas().await.unwrap().synchronous, Synchronous::Normal);
}

#[tokio::test]
async fn queue_and_store_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (queue, store) = agentflow_sqlite::open(&url, SqliteOptions::default()).await.unwrap();
    assert_eq!(queue.database().path(), store.database().path());
    queue.enqueue(JobSpec::new(JobKind::Execute, "t")).await.unwrap();
    // A second handle on the same file (as another process would) sees the job.
    let other = agentflow_sqlite::SqliteQueue::open(&url, SqliteOptions::default()).await.unwrap();
    assert_eq!(other.stats().await.unwrap().available, 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "the db, -wal and -shm");
}

#[tokio::test]
async fn garbage_file_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = open_err(&path).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not an SQLite database"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192], "left untouched");
}

#[tokio::test]
async fn damaged_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    drop(Database::open(path.to_str().unwrap(), SqliteOptions::default()).await.unwrap());
    // Checkpoint into the main file, then wipe the schema page past the 100-byte header.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE").unwrap();
    drop(raw);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100..4096].fill(0xff);
    std::fs::write(&path, bytes).unwrap();
    let err = open_err(&path).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("corrupt"), "{err}");
}

#[tokio::test]
async fn newer_schema_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Database::open(path.to_str().unwrap(), SqliteOptions::default()).await.unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)", []).unwrap();
    drop(raw);
    let err = open_err(&path).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("schema version 999"), "{err}");
    assert!(err.contains("upgrade agentflow"), "{err}");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let max: i64 =
        raw.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(max, 999);
}

#[tokio::test]
async fn bad_urls_name_the_url() {
    for url in ["postgres://localhost/x", "sqlite://:memory:", "sqlite://"] {
        let err = Database::open(url, SqliteOptions::default()).await.unwrap_err();
        assert!(matches!(err, agentflow_core::Error::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains(url), "{err}");
    }
}

#[test]
fn read_only_directory_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    // An existing database, and a path for a new one, in a directory nobody may write to.
    let existing = dir.path().join("existing.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    drop(
        rt.block_on(Database::open(existing.to_str().unwrap(), SqliteOptions::default())).unwrap(),
    );
    for f in ["existing.db-wal", "existing.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    set_mode(dir.path(), 0o555);

    let out = if nix::unistd::geteuid().is_root() {
        // Root writes anywhere: check as an unprivileged user in a child process.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_open_in_read_only_dir", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env(CHILD_DIR, dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        rt.block_on(errors_in(dir.path()))
    };
    set_mode(dir.path(), 0o755);
    for name in ["new.db", "existing.db"] {
        let path = dir.path().join(name).display().to_string();
        let line = out
            .lines()
            .find(|l| l.contains(&path))
            .unwrap_or_else(|| panic!("no error for {path}: {out}"));
        assert!(line.contains("cannot write the database"), "{line}");
        assert!(line.contains("make the file and its directory writable"), "{line}");
    }
}

/// Runs as nobody when the parent is root (see above).
#[test]
fn child_open_in_read_only_dir() {
    let Some(dir) = std::env::var_os(CHILD_DIR).filter(|_| std::env::var_os(CHILD).is_some())
    else {
        return;
    };
    nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).unwrap();
    nix::unistd::setuid(nix::unistd::Uid::from_raw(65534)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("{}", rt.block_on(errors_in(Path::new(&dir))));
}

async fn errors_in(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["new.db", "existing.db"] {
        out.push_str(&open_err(&dir.join(name)).await);
        out.push('\n');
    }
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
