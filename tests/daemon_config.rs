//! The built daemon's configuration errors and `check`, as a user meets them: exit codes and
//! messages that name the file and line, the key, or the environment variable to fix.

#[path = "daemon/support.rs"]
mod support;

use std::path::Path;

use agentflow_testkit::fake_linear::FakeLinear;
use support::{DaemonCmd, Finished};

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("agentflow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `daemon <args>` and expects a failure whose stderr contains every needle.
fn fails_saying(cmd: DaemonCmd, needles: &[&str]) -> Finished {
    let out = cmd.finish();
    assert!(!out.status.success(), "expected a non-zero exit: {out:?}");
    for needle in needles {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}: {out:?}");
    }
    out
}

#[test]
fn malformed_config_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[engine]\nworkers = 2\npoll_interval = \n");
    let out = fails_saying(
        DaemonCmd::new(dir.path()).args(["--config".as_ref(), path.as_os_str()]),
        &[&format!("{}:3", path.display()), "invalid TOML"],
    );
    assert!(!out.stdout.contains("agentflow dashboard"), "it never starts: {out:?}");
    // `AGENTFLOW_CONFIG` names the file just as well.
    fails_saying(
        DaemonCmd::new(dir.path()).env("AGENTFLOW_CONFIG", &path),
        &[&format!("{}:3", path.display())],
    );
}

#[test]
fn bad_value_in_the_file_names_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[engine]\nworkers = 2\n\npoll_interval = \"soon\"\n");
    fails_saying(
        DaemonCmd::new(dir.path()).args(["--config".as_ref(), path.as_os_str()]),
        &[&format!("{}:4", path.display()), "`engine.poll_interval`", "30s"],
    );
}

#[test]
fn unknown_key_names_it_and_suggests_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    // `agentflow.toml` in the working directory is read without `--config`.
    write_config(dir.path(), "[dashboard]\naddr = \"127.0.0.1:0\"\n\n[engine]\nwrokers = 4\n");
    fails_saying(
        DaemonCmd::new(dir.path()),
        &["agentflow.toml:5", "unknown configuration key `engine.wrokers`", "`engine.workers`"],
    );
    write_config(dir.path(), "[storage]\ndatabase_uri = \"sqlite://x.db\"\n");
    fails_saying(
        DaemonCmd::new(dir.path()),
        &["agentflow.toml:2", "`storage.database_uri`", "did you mean"],
    );
}

#[test]
fn bad_environment_value_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    fails_saying(
        DaemonCmd::new(dir.path()).env("AGENTFLOW_ENGINE_WORKERS", "0"),
        &["environment variable AGENTFLOW_ENGINE_WORKERS", "`engine.workers`", "at least 1"],
    );
    // The seed's names are checked as strictly, and named as they were written.
    fails_saying(
        DaemonCmd::new(dir.path()).env("TASK_TIMEOUT", "forever"),
        &["environment variable TASK_TIMEOUT", "`engine.timeout`"],
    );
    fails_saying(
        DaemonCmd::new(dir.path()).env("AGENTFLOW_EXECUTOR_KIND", "shell"),
        &["AGENTFLOW_EXECUTOR_KIND", "claude, command"],
    );
}

#[test]
fn non_loopback_address_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = fails_saying(
        DaemonCmd::new(dir.path()).env("AGENTFLOW_DASHBOARD_ADDR", "0.0.0.0:0"),
        &["0.0.0.0:0", "token"],
    );
    assert!(!out.stdout.contains("agentflow dashboard"), "it never listens: {out:?}");
}

#[test]
fn config_docs_match_docs_configuration_md() {
    let dir = tempfile::tempdir().unwrap();
    let out = DaemonCmd::new(dir.path()).args(["config-docs"]).finish();
    assert!(out.status.success(), "{out:?}");
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md"))
            .unwrap();
    assert!(out.stdout.lines().count() > 10, "{out:?}");
    for line in out.stdout.lines() {
        assert!(docs.contains(line), "docs/configuration.md is out of date; it lacks:\n{line}");
    }
}

fn check_cmd(dir: &Path, linear: &FakeLinear) -> DaemonCmd {
    DaemonCmd::new(dir)
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", linear.url())
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .env("AGENTFLOW_EXECUTOR_KIND", "command")
        .env("AGENTFLOW_EXECUTOR_COMMAND", "true")
        .args(["check"])
}

/// The table's row for `component`: `(ok, detail)`.
fn row<'a>(stdout: &'a str, component: &str) -> Option<(bool, &'a str)> {
    stdout.lines().find_map(|l| {
        let rest = l.strip_prefix(component)?.trim_start();
        if let Some(d) = rest.strip_prefix("OK") {
            Some((true, d.trim()))
        } else {
            rest.strip_prefix("PROBLEM").map(|d| (false, d.trim()))
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_a_table_and_fails_when_linear_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let linear = FakeLinear::start().await;

    let ok = check_cmd(dir.path(), &linear).finish();
    assert!(ok.status.success(), "{ok:?}");
    for component in ["config", "database", "queue", "linear"] {
        assert_eq!(row(&ok.stdout, component).map(|r| r.0), Some(true), "{component}: {ok:?}");
    }
    assert!(row(&ok.stdout, "database").unwrap().1.contains("agentflow.db"), "{ok:?}");

    linear.set_auth_failure(Some(401));
    let bad = check_cmd(dir.path(), &linear).finish();
    assert!(!bad.status.success(), "{bad:?}");
    let (linear_ok, detail) = row(&bad.stdout, "linear").expect("a linear row");
    assert!(!linear_ok, "{bad:?}");
    assert!(detail.contains("401") || detail.to_lowercase().contains("auth"), "{detail}");
    assert_eq!(row(&bad.stdout, "database").map(|r| r.0), Some(true), "{bad:?}");

    // Nothing listens there: a connection error is a problem too, not a hang.
    drop(linear);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = DaemonCmd::new(dir.path())
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", format!("http://127.0.0.1:{port}/graphql"))
        .env("AGENTFLOW_EXECUTOR_KIND", "command")
        .env("AGENTFLOW_EXECUTOR_COMMAND", "true")
        .args(["check"])
        .finish();
    assert!(!gone.status.success(), "{gone:?}");
    assert_eq!(row(&gone.stdout, "linear").map(|r| r.0), Some(false), "{gone:?}");
}

#[test]
fn check_reports_an_invalid_config_and_a_missing_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[engine]\nworkers = \"many\"\n");
    let out = DaemonCmd::new(dir.path())
        .args(["--config".as_ref(), path.as_os_str(), "check".as_ref()])
        .finish();
    assert!(!out.status.success(), "{out:?}");
    let (ok, detail) = row(&out.stdout, "config").expect("config row");
    assert!(!ok && detail.contains(":2") && detail.contains("engine.workers"), "{out:?}");

    std::fs::remove_file(&path).unwrap();
    let out = DaemonCmd::new(dir.path())
        .env("AGENTFLOW_CLAUDE_BINARY", "agentflow-no-such-claude")
        .env("AGENTFLOW_CLAUDE_API_KEY", "sk-ant-check-0000000000")
        .args(["check"])
        .finish();
    assert!(!out.status.success(), "{out:?}");
    let (ok, detail) = row(&out.stdout, "claude").expect("claude row");
    assert!(!ok && detail.contains("agentflow-no-such-claude"), "{out:?}");
    // No Linear key is a valid way to run (the local source): reported, not a problem.
    assert_eq!(row(&out.stdout, "linear").map(|r| r.0), Some(true), "{out:?}");
}

/// Every `AGENTFLOW_*` name in `text`.
fn agentflow_vars(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("AGENTFLOW_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('_');
        // `AGENTFLOW_<SECTION>_<KEY>` is the pattern, not a variable.
        if name != "AGENTFLOW" {
            out.push(name.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

const DEPLOY_FILES: [&str; 5] = [
    "docs/deploy.md",
    "deploy/agentflow.service",
    "deploy/Dockerfile",
    "deploy/compose.yaml",
    "deploy/agentflow.env.example",
];

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn deploy_files_name_only_variables_the_daemon_knows() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DaemonCmd::new(dir.path()).args(["config-docs"]).finish();
    assert!(docs.status.success(), "{docs:?}");
    let mut known = agentflow_vars(&docs.stdout);
    // Read by the daemon outside the key table: the config file path and the log filter.
    known.extend(["AGENTFLOW_CONFIG".to_owned(), "AGENTFLOW_LOG".to_owned()]);
    let mut seen = 0;
    for file in DEPLOY_FILES {
        for var in agentflow_vars(&repo_file(file)) {
            assert!(known.contains(&var), "{file} names {var}, which the daemon does not read");
            seen += 1;
        }
    }
    assert!(seen > 10, "the deploy files set the daemon's variables");
}

#[test]
fn the_deploy_guide_shows_the_files_as_they_are() {
    let guide = repo_file("docs/deploy.md");
    let mut blocks = 0;
    for (lang, file) in [
        ("ini", "deploy/agentflow.service"),
        ("dockerfile", "deploy/Dockerfile"),
        ("yaml", "deploy/compose.yaml"),
    ] {
        let real = repo_file(file);
        let real_lines: Vec<&str> = real.lines().map(str::trim_end).collect();
        let fence = format!("```{lang}\n");
        let start = guide.find(&fence).unwrap_or_else(|| panic!("docs/deploy.md shows {file}"));
        let body = &guide[start + fence.len()..];
        let body = &body[..body.find("```").expect("closing fence")];
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                real_lines.contains(&line.trim_end()),
                "docs/deploy.md shows a line that {file} does not have:\n{line}"
            );
        }
        blocks += 1;
    }
    assert_eq!(blocks, 3);
}
