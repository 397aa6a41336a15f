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

#[test]
fn a_file_that_is_not_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentflow.toml");
    std::fs::write(&path, b"[engine]\nworkers = 3\nlabel = \"\xff\xfe\"\n").unwrap();
    let e = Config::load(Some(&path), &no_env, &[]).unwrap_err().to_string();
    assert!(e.contains("agentflow.toml:3") && e.contains("not UTF-8"), "{e}");
}

mod props {
    //! The file and environment parsers under arbitrary input: no panic, and every error names
    //! where the bad value is (a line inside the file, the variable, the key).

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::no_env;
    use crate::config::{Config, ConfigError, KEYS, Origin, parse_duration};

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agentflow.toml");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// A file error must name the file and a line that exists (or the line after the last).
    fn check_file_error(e: &ConfigError, path: &Path, lines: usize) -> Result<(), TestCaseError> {
        let text = e.to_string();
        prop_assert!(text.contains(&path.display().to_string()), "{text}");
        let line = match e {
            ConfigError::Syntax { line, .. } => Some(*line),
            ConfigError::UnknownKey { origin: Origin::File(_, line), key } => {
                prop_assert!(text.contains(key.as_str()), "{text}");
                Some(*line)
            }
            ConfigError::Invalid { origin: Origin::File(_, line), key, .. } => {
                prop_assert!(text.contains(key.as_str()), "{text}");
                Some(*line)
            }
            other => return Err(TestCaseError::fail(format!("unexpected error {other:?}"))),
        };
        if let Some(line) = line {
            prop_assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}: {text}");
        }
        Ok(())
    }

    fn toml_value() -> impl Strategy<Value = String> {
        let known =
            KEYS.iter().filter_map(|k| k.default).map(|d| format!("{d:?}")).collect::<Vec<_>>();
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            ".{0,20}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(known),
            prop::sample::select(vec![
                "\"30s\"",
                "\"1h 30m\"",
                "\"0\"",
                "\"-5\"",
                "\"soon\"",
                "\"127.0.0.1:0\"",
                "\"sqlite://x.db\"",
                "\"mysql://x\"",
                "[\"a\", 1, true]",
                "[]",
                "{ a = 1 }",
                "1979-05-27T07:32:00Z",
                "\"\"\"multi\nline\"\"\"",
                "'literal'",
                "nan",
                "inf",
                "\"\\u0000\"",
                "\"caf\u{e9}\"",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn toml_key() -> impl Strategy<Value = (String, String)> {
        let known: Vec<(String, String)> = KEYS
            .iter()
            .map(|k| {
                let (s, n) = k.key.split_once('.').unwrap();
                (s.to_owned(), n.to_owned())
            })
            .collect();
        prop_oneof![
            3 => prop::sample::select(known),
            1 => ("[a-z]{1,8}", "[a-z_]{1,10}"),
        ]
    }

    /// A TOML-ish document: sections with known and unknown keys, values of every type, and
    /// now and then a line of noise.
    fn document() -> impl Strategy<Value = String> {
        let entry = (toml_key(), toml_value(), prop::option::weighted(0.1, ".{0,12}"));
        prop::collection::vec(entry, 0..10).prop_map(|entries| {
            let mut by_section: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for ((section, name), value, noise) in entries {
                let lines = by_section.entry(section).or_default();
                lines.push(format!("{name} = {value}"));
                if let Some(n) = noise {
                    lines.push(n);
                }
            }
            by_section
                .into_iter()
                .map(|(s, lines)| format!("[{s}]\n{}\n", lines.join("\n")))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_file_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let (_dir, path) = file_with(&bytes);
            if let Err(e) = Config::load(Some(&path), &no_env, &[]) {
                let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
                check_file_error(&e, &path, lines)?;
            }
        }

        #[test]
        fn arbitrary_text_files_never_panic(text in "(.|\n){0,300}") {
            let (_dir, path) = file_with(text.as_bytes());
            if let Err(e) = Config::load(Some(&path), &no_env, &[]) {
                check_file_error(&e, &path, text.lines().count().max(1))?;
            }
        }

        #[test]
        fn toml_documents_of_any_shape_load_or_name_key_and_line(doc in document()) {
            let (_dir, path) = file_with(doc.as_bytes());
            match Config::load(Some(&path), &no_env, &[]) {
                Ok(c) => {
                    // Whatever loaded reads back through every typed accessor.
                    for k in KEYS {
                        let _ = (c.get(k.key), c.duration(k.key), c.count(k.key), c.number(k.key), c.list(k.key));
                    }
                }
                Err(e) => check_file_error(&e, &path, doc.lines().count().max(1))?,
            }
        }

        #[test]
        fn environment_values_of_any_shape_load_or_name_the_variable(
            key in prop::sample::select(KEYS.iter().collect::<Vec<_>>()),
            value in prop_oneof![".{0,30}", toml_value()],
        ) {
            let name = key.env_name();
            let env = |k: &str| (k == name).then(|| value.clone());
            match Config::load(None, &env, &[]) {
                Ok(c) => prop_assert!(value.trim().is_empty() || c.get(key.key).is_some() || value.is_empty()),
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains(&name) && text.contains(key.key), "{text}");
                }
            }
        }

        #[test]
        fn durations_never_panic(v in ".{0,30}") {
            let _ = parse_duration(&v);
        }
    }
}
