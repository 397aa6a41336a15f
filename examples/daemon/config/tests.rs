//! The configuration layers, errors and documentation.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn defaults_resolve() {
    let c = Config::load(None, &no_env, &[]).unwrap();
    assert_eq!(c.get("storage.database_url"), Some("sqlite://agentflow.db"));
    assert_eq!(c.count("engine.workers"), Some(3));
    assert_eq!(c.duration("engine.timeout"), Some(Duration::from_secs(3 * 3600)));
    assert_eq!(c.entry("engine.workers").unwrap().origin, Origin::Default);
}

#[test]
fn precedence_is_database_env_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentflow.toml");
    std::fs::write(&path, "[engine]\nworkers = 5\npoll_interval = \"10s\"\n").unwrap();
    let env = |k: &str| match k {
        "MAX_CONCURRENT_TASKS" => Some("7".to_owned()),
        "AGENTFLOW_ENGINE_POLL_INTERVAL" => Some("20s".to_owned()),
        _ => None,
    };
    let db = [Setting {
        key: "engine.workers".into(),
        value: "9".into(),
        secret: false,
        updated_at: chrono::Utc::now(),
    }];
    let c = Config::load(Some(&path), &env, &db).unwrap();
    assert_eq!(c.count("engine.workers"), Some(9));
    assert_eq!(c.entry("engine.workers").unwrap().origin, Origin::Database);
    assert_eq!(c.duration("engine.poll_interval"), Some(Duration::from_secs(20)));
    let c = Config::load(Some(&path), &env, &[]).unwrap();
    assert_eq!(c.count("engine.workers"), Some(7));
    assert_eq!(
        c.entry("engine.workers").unwrap().origin,
        Origin::Env("MAX_CONCURRENT_TASKS".into())
    );
    let c = Config::load(Some(&path), &no_env, &[]).unwrap();
    assert_eq!(c.entry("engine.workers").unwrap().origin, Origin::File(path.clone(), 2));
}

#[test]
fn errors_name_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentflow.toml");
    std::fs::write(&path, "[engine]\nworkers = 3\nwrokers = 4\n").unwrap();
    let e = Config::load(Some(&path), &no_env, &[]).unwrap_err().to_string();
    assert!(e.contains("agentflow.toml:3") && e.contains("engine.wrokers"), "{e}");
    assert!(e.contains("did you mean `engine.workers`"), "{e}");
    assert_eq!(suggest("nothing.like_this_at_all"), " (see docs/configuration.md)");
    assert_eq!(edit_distance("database_uri", "database_url"), 1);

    std::fs::write(&path, "[engine]\n\npoll_interval = \"soon\"\n").unwrap();
    let e = Config::load(Some(&path), &no_env, &[]).unwrap_err().to_string();
    assert!(e.contains("agentflow.toml:3") && e.contains("engine.poll_interval"), "{e}");

    std::fs::write(&path, "[engine\nworkers = 3\n").unwrap();
    let e = Config::load(Some(&path), &no_env, &[]).unwrap_err().to_string();
    assert!(e.contains("agentflow.toml:1") && e.contains("invalid TOML"), "{e}");

    let env = |k: &str| (k == "AGENTFLOW_DASHBOARD_ADDR").then(|| "localhost".to_owned());
    let e = Config::load(None, &env, &[]).unwrap_err().to_string();
    assert!(e.contains("AGENTFLOW_DASHBOARD_ADDR") && e.contains("dashboard.addr"), "{e}");
}

#[test]
fn seed_duration_names_take_milliseconds() {
    let env = |k: &str| (k == "TASK_TIMEOUT").then(|| "60000".to_owned());
    let c = Config::load(None, &env, &[]).unwrap();
    assert_eq!(c.duration("engine.timeout"), Some(Duration::from_secs(60)));
}

#[test]
fn every_key_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md"))
            .unwrap();
    for k in KEYS {
        assert!(doc.contains(&format!("`{}`", k.key)), "docs/configuration.md lacks {}", k.key);
        assert!(doc.contains(&k.env_name()), "docs/configuration.md lacks {}", k.env_name());
    }
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agentflow.example.toml"))
            .unwrap();
    let parsed =
        read_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/agentflow.example.toml")))
            .unwrap();
    assert!(!parsed.is_empty() && example.contains("[engine]"));
    for (key, _, _) in parsed {
        assert!(spec(&key).is_some(), "agentflow.example.toml has unknown key {key}");
    }
}
