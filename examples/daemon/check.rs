//! `agentflow check` and `agentflow task add`.

use std::path::Path;
use std::time::Duration;

use crate::app::{self, anyhow_lite::Result};

/// One line of the check table.
struct Line {
    component: &'static str,
    ok: bool,
    detail: String,
}

/// Validates the configuration and reaches each component; errors when any is not OK.
pub(crate) async fn check(file: Option<&Path>) -> Result<()> {
    let mut lines = Vec::new();
    let base = match crate::load_base(file) {
        Ok(c) => {
            let from = c
                .file
                .as_ref()
                .map_or("defaults and environment".to_owned(), |f| f.display().to_string());
            lines.push(Line {
                component: "config",
                ok: true,
                detail: format!("loaded from {from}"),
            });
            c
        }
        Err(e) => {
            lines.push(Line { component: "config", ok: false, detail: e.to_string() });
            print_table(&lines);
            return Err("configuration is invalid".into());
        }
    };
    let db_url = base.get("storage.database_url").unwrap_or("sqlite://agentflow.db").to_owned();
    let backends = match agentflow::backend::open(&db_url, base.get("storage.queue_url")).await {
        Ok(b) => {
            lines.push(Line { component: "database", ok: true, detail: redact_url(&db_url) });
            b
        }
        Err(e) => {
            lines.push(Line { component: "database", ok: false, detail: e.to_string() });
            print_table(&lines);
            return Err("a component is not reachable".into());
        }
    };
    match backends.queue.stats().await {
        Ok(s) => lines.push(Line {
            component: "queue",
            ok: true,
            detail: format!(
                "{} ({} queued, {} running)",
                redact_url(base.get("storage.queue_url").unwrap_or(&db_url)),
                s.queued(),
                s.running
            ),
        }),
        Err(e) => lines.push(Line { component: "queue", ok: false, detail: e.to_string() }),
    }
    let config = crate::load_full(&base, backends.store.as_ref()).await?;
    for item in app::missing(&config) {
        let component = match item.key.as_deref() {
            Some(k) if k.starts_with("linear") => "linear",
            Some(k) if k.starts_with("claude") => "claude",
            _ => "executor",
        };
        // Local source instead of Linear is a valid way to run: report it, do not fail on it.
        let ok = component == "linear";
        lines.push(Line { component, ok, detail: item.message });
    }
    if let Some(key) = config.get("linear.api_key").or(config.get("linear.oauth_token")) {
        let teams = config.list("linear.teams");
        let teams: Vec<&str> = teams.iter().map(String::as_str).collect();
        let mut lc = if config.get("linear.api_key").is_some() {
            agentflow::linear::LinearConfig::with_api_key(key, &teams)
        } else {
            agentflow::linear::LinearConfig::with_oauth_token(key, &teams)
        };
        if let Some(url) = config.get("linear.api_url") {
            lc.api_url = url.to_owned();
        }
        match tokio::time::timeout(
            Duration::from_secs(20),
            agentflow::linear::LinearSource::connect(lc),
        )
        .await
        {
            Ok(Ok(_)) => lines.push(Line {
                component: "linear",
                ok: true,
                detail: "connected; team states found".into(),
            }),
            Ok(Err(e)) => {
                lines.push(Line { component: "linear", ok: false, detail: e.to_string() })
            }
            Err(_) => lines.push(Line {
                component: "linear",
                ok: false,
                detail: "no answer within 20s".into(),
            }),
        }
    }
    if config.get("executor.kind") != Some("command") {
        let bin = config.get("claude.binary").unwrap_or("claude");
        if let Some(path) = app::find_program(bin) {
            let out = tokio::process::Command::new(&path).arg("--version").output().await;
            match out {
                Ok(o) if o.status.success() => lines.push(Line {
                    component: "claude",
                    ok: true,
                    detail: format!(
                        "{} ({})",
                        String::from_utf8_lossy(&o.stdout).trim(),
                        path.display()
                    ),
                }),
                Ok(o) => lines.push(Line {
                    component: "claude",
                    ok: false,
                    detail: format!("{} --version exited with {}", path.display(), o.status),
                }),
                Err(e) => lines.push(Line {
                    component: "claude",
                    ok: false,
                    detail: format!("{}: {e}", path.display()),
                }),
            }
        }
    }
    print_table(&lines);
    if lines.iter().all(|l| l.ok) {
        Ok(())
    } else {
        Err("some components have problems (see above)".into())
    }
}

fn print_table(lines: &[Line]) {
    for l in lines {
        println!("{:<9} {:<7} {}", l.component, if l.ok { "OK" } else { "PROBLEM" }, l.detail);
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:…@host/db`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:…{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Adds a task through the running daemon's API (the local source lives in its memory).
pub(crate) async fn add_task(file: Option<&Path>, title: &str, body: &str) -> Result<()> {
    let config = crate::load_base(file)?;
    let addr = config.get("dashboard.addr").unwrap_or("127.0.0.1:8080");
    let url = format!("http://{addr}/api/tasks");
    let mut req =
        reqwest::Client::new().post(&url).json(&serde_json::json!({"title": title, "body": body}));
    if let Some(token) = config.get("dashboard.token") {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| {
        format!("cannot reach the daemon at {url}: {e} (is `agentflow run` running?)")
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {status}: {text}").into());
    }
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:…@db:5432/x"
        );
        assert_eq!(super::redact_url("sqlite://agentflow.db"), "sqlite://agentflow.db");
    }
}
