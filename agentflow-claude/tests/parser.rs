//! The stream-json model against every recorded transcript of the real CLI, and against
//! arbitrary input.

use std::path::PathBuf;

use agentflow_claude::event::{ContentBlock, StreamEvent, SystemEvent};
use agentflow_claude::progress::ProgressMapper;
use agentflow_core::Progress;
use proptest::prelude::*;

fn fixtures() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn parse_all(text: &str) -> Vec<StreamEvent> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| StreamEvent::parse(l).expect("valid line"))
        .collect()
}

#[test]
fn every_sample_line_parses_into_a_known_type() {
    let files = fixtures();
    assert_eq!(files.len(), 13, "all recorded transcripts are fixtures");
    for (name, text) in &files {
        let events = parse_all(text);
        assert!(!events.is_empty(), "{name}");
        for e in &events {
            assert!(!matches!(e, StreamEvent::Unknown(_)), "{name}: unknown event {e:?}");
        }
        // Every transcript starts with init (the session is known before any answer)…
        assert!(
            matches!(&events[0], StreamEvent::System(SystemEvent::Init(i)) if !i.session_id.is_empty()),
            "{name}"
        );
        // …and all lines carry the same session.
        let session = events[0].session_id().unwrap();
        assert!(events.iter().filter_map(StreamEvent::session_id).all(|s| s == session), "{name}");
        // Only the killed run has no result.
        let results = events.iter().filter(|e| matches!(e, StreamEvent::Result(_))).count();
        let expected = usize::from(name != "sigterm-during-bash.jsonl");
        assert_eq!(results, expected, "{name}");
    }
}

fn result_of(name: &str) -> agentflow_claude::event::ResultEvent {
    let (_, text) = fixtures().into_iter().find(|(n, _)| n == name).unwrap();
    parse_all(&text)
        .into_iter()
        .find_map(|e| match e {
            StreamEvent::Result(r) => Some(*r),
            _ => None,
        })
        .unwrap()
}

#[test]
fn results_carry_outcome_fields() {
    let ok = result_of("text-success.jsonl");
    assert_eq!((ok.subtype.as_str(), ok.is_error, ok.num_turns), ("success", false, 1));
    assert_eq!(ok.result.as_deref(), Some("Hello from fake API."));
    assert_eq!(ok.usage.input_tokens, 12314);
    assert_eq!(ok.usage.output_tokens, 12);
    assert!((ok.run_cost_usd() - 0.049496).abs() < 1e-9);
    assert_eq!(ok.terminal_reason.as_deref(), Some("completed"));

    let max = result_of("error-max-turns.jsonl");
    assert_eq!(max.subtype, "error_max_turns");
    assert_eq!(max.text(), "Reached maximum number of turns (2)");

    let api = result_of("api-error-500-retries.jsonl");
    assert!(api.is_error);
    assert_eq!(
        (api.api_error_status, api.terminal_reason.as_deref()),
        (Some(500), Some("api_error"))
    );

    // On a resumed session `total_cost_usd` is cumulative; the run's own cost is smaller.
    let resumed = result_of("resume-second-run.jsonl");
    assert!(resumed.run_cost_usd() < resumed.total_cost_usd);
    assert!((resumed.run_cost_usd() - 0.049732).abs() < 1e-9);

    let interrupted = result_of("interrupt-control-request.jsonl");
    assert_eq!(interrupted.terminal_reason.as_deref(), Some("aborted_streaming"));
}

#[test]
fn progress_mapping_over_samples() {
    let map = |name: &str| {
        let (_, text) = fixtures().into_iter().find(|(n, _)| n == name).unwrap();
        let mut m = ProgressMapper::default();
        parse_all(&text).iter().flat_map(|e| m.map(e)).collect::<Vec<_>>()
    };
    let bash = map("bash-tool-bypass.jsonl");
    assert!(matches!(&bash[0], Progress::Session { .. }));
    assert!(bash.iter().any(|p| matches!(p, Progress::ToolUse { name, summary, .. } if name == "Bash" && summary.starts_with("echo hello-from-bash"))));
    assert!(bash.iter().any(|p| matches!(p, Progress::ToolResult { name: Some(n), is_error: false, output } if n == "Bash" && output == "printed")));

    let denied = map("bash-permission-denied.jsonl");
    assert!(denied.iter().any(|p| matches!(p, Progress::Log { line, .. } if line.starts_with("permission denied for Bash"))));
    assert!(denied.iter().any(|p| matches!(p, Progress::ToolResult { is_error: true, .. })));

    let retries = map("api-error-500-retries.jsonl");
    let retry_logs = retries
        .iter()
        .filter(|p| matches!(p, Progress::Log { line, .. } if line.contains("retry")))
        .count();
    assert_eq!(retry_logs, 2);

    let mcp = map("mcp-tool-allowed.jsonl");
    assert!(mcp.iter().any(|p| matches!(p, Progress::ToolResult { name: Some(n), output, .. } if n == "mcp__linear__comment" && output.contains("comment posted"))));
    assert!(mcp.iter().any(
        |p| matches!(p, Progress::Log { line, .. } if line.contains("mcp: linear connected"))
    ));

    let fallback = map("overloaded-model-fallback.jsonl");
    assert!(
        fallback
            .iter()
            .any(|p| matches!(p, Progress::Log { line, .. } if line.contains("model fallback")))
    );
}

#[test]
fn partial_messages_and_control_responses_are_typed() {
    let (_, text) =
        fixtures().into_iter().find(|(n, _)| n == "include-partial-messages.jsonl").unwrap();
    assert!(parse_all(&text).iter().filter(|e| matches!(e, StreamEvent::Partial(_))).count() >= 5);
    let (_, text) =
        fixtures().into_iter().find(|(n, _)| n == "interrupt-control-request.jsonl").unwrap();
    assert!(parse_all(&text).iter().any(|e| matches!(e, StreamEvent::ControlResponse(_))));
    let (_, text) =
        fixtures().into_iter().find(|(n, _)| n == "input-stream-json-two-turns.jsonl").unwrap();
    let blocks: Vec<_> = parse_all(&text)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Assistant(a) => Some(a.message.content.blocks()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(matches!(&blocks[1], ContentBlock::ToolUse { name, .. } if name == "Bash"));
}

#[test]
fn the_request_sample_has_a_system_role_message() {
    // The contract the fake API keeps: `messages` may contain `role: "system"`.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/request-after-two-tool-calls.json");
    let req: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let roles: Vec<&str> = req["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"system"));
    assert_eq!(req["body"]["stream"], true);
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("subtype".to_owned()),
                    Just("message".to_owned()),
                    Just("content".to_owned()),
                    Just("result".to_owned()),
                    Just("usage".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_lines_never_panic(line in ".{0,200}") {
        let mut m = ProgressMapper::default();
        if let Ok(e) = StreamEvent::parse(&line) {
            let _ = m.map(&e);
        }
    }

    #[test]
    fn arbitrary_json_objects_never_panic(
        kind in prop_oneof![Just("system"), Just("assistant"), Just("user"), Just("result"), Just("stream_event"), Just("x")],
        subtype in prop_oneof![Just("init"), Just("api_retry"), Just("permission_denied"), Just("model_fallback"), Just("status")],
        body in json_value(),
    ) {
        let mut obj = match body {
            serde_json::Value::Object(o) => o,
            other => [("payload".to_owned(), other)].into_iter().collect(),
        };
        obj.insert("type".into(), kind.into());
        obj.insert("subtype".into(), subtype.into());
        let line = serde_json::Value::Object(obj).to_string();
        let event = StreamEvent::parse(&line).expect("an object always parses");
        let _ = ProgressMapper::default().map(&event);
    }

    #[test]
    fn truncated_sample_lines_never_panic(cut in 0usize..8000, which in 0usize..13) {
        let files = fixtures();
        let (_, text) = &files[which % files.len()];
        let line = text.lines().max_by_key(|l| l.len()).unwrap();
        let cut = line.char_indices().map(|(i, _)| i).take_while(|i| *i <= cut).last().unwrap_or(0);
        let _ = StreamEvent::parse(&line[..cut]);
    }
}

/// A content block of any known or unknown type, with fields of any shape.
fn content_block() -> impl Strategy<Value = serde_json::Value> {
    let kind = prop_oneof![
        Just("text"),
        Just("tool_use"),
        Just("tool_result"),
        Just("thinking"),
        Just("image"),
        Just("server_tool_use"),
        Just("x"),
    ];
    let fields = prop::collection::btree_map(
        prop_oneof![
            Just("text"),
            Just("name"),
            Just("input"),
            Just("content"),
            Just("is_error"),
            Just("id"),
            Just("tool_use_id"),
            Just("thinking"),
        ],
        json_value(),
        0..6,
    );
    (kind, fields).prop_map(|(kind, fields)| {
        let mut obj: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        obj.insert("type".into(), kind.into());
        serde_json::Value::Object(obj)
    })
}

/// A model message whose content is text, blocks or anything else.
fn message() -> impl Strategy<Value = serde_json::Value> {
    let content = prop_oneof![
        ".{0,40}".prop_map(serde_json::Value::from),
        prop::collection::vec(content_block(), 0..4).prop_map(serde_json::Value::from),
        json_value(),
    ];
    (content, json_value(), prop::option::of(json_value())).prop_map(|(content, usage, stop)| {
        serde_json::json!({ "role": "assistant", "content": content, "usage": usage, "stop_reason": stop })
    })
}

/// Any of `names`, or a short random string.
fn name_or_any(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(names).prop_map(str::to_owned), ".{0,8}"]
}

/// Lines of the known event types with their typed fields present but of any shape: the
/// parser must keep them (typed, or `Unknown` when a field does not fit) and never panic.
fn known_event() -> impl Strategy<Value = serde_json::Value> {
    let assistant = (message(), json_value()).prop_map(|(m, parent)| {
        serde_json::json!({ "type": "assistant", "message": m, "parent_tool_use_id": parent, "session_id": "s" })
    });
    let user = message().prop_map(|m| serde_json::json!({ "type": "user", "message": m }));
    let result = (
        name_or_any(&["success", "error_max_turns", "error_during_execution"]),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(subtype, is_error, result, errors, usage, cost, status)| {
            serde_json::json!({
                "type": "result", "subtype": subtype, "is_error": is_error, "result": result,
                "errors": errors, "usage": usage, "total_cost_usd": cost,
                "api_error_status": status, "num_turns": 1, "session_id": "s",
            })
        });
    let system = (
        name_or_any(&["init", "api_retry", "permission_denied", "model_fallback", "status"]),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(subtype, a, b, c)| {
            serde_json::json!({
                "type": "system", "subtype": subtype, "session_id": a, "mcp_servers": b,
                "retry_delay_ms": c, "attempt": 1, "error_status": 429, "tool_name": "Bash",
            })
        });
    prop_oneof![assistant, user, result, system]
}

proptest! {
    #[test]
    fn arbitrary_bytes_read_as_lines_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        // As the executor reads stdout: split at newlines, decoded lossily, one mapper for all.
        let mut m = ProgressMapper::default();
        for chunk in bytes.split(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(chunk);
            if line.trim().is_empty() {
                continue;
            }
            if let Ok(e) = StreamEvent::parse(&line) {
                let _ = e.session_id();
                let _ = m.map(&e);
            }
        }
    }

    #[test]
    fn known_events_with_fields_of_any_shape_never_panic(events in prop::collection::vec(known_event(), 1..6)) {
        let mut m = ProgressMapper::default();
        for event in events {
            let line = event.to_string();
            let parsed = StreamEvent::parse(&line).expect("a JSON object always parses");
            let _ = parsed.session_id();
            let _ = m.map(&parsed);
            if let StreamEvent::Result(r) = &parsed {
                let _ = (r.text(), r.run_cost_usd(), r.core_usage(), r.denied_tools());
            }
            if let StreamEvent::Assistant(a) = &parsed {
                let _ = a.message.content.blocks();
            }
        }
    }

    #[test]
    fn json_with_invalid_escapes_or_nul_bytes_never_panics(
        prefix in ".{0,20}",
        escape in prop_oneof![
            Just("\\ud800"), Just("\\udfff"), Just("\\ud800\\u0041"), Just("\\u0000"),
            Just("\\x00"), Just("\\u12"), Just("\\"), Just("\u{0}"),
        ],
        kind in prop_oneof![Just("assistant"), Just("result"), Just("system"), Just("user")],
    ) {
        let line = format!(
            r#"{{"type":"{kind}","subtype":"success","result":"{prefix}{escape}","message":{{"content":"{escape}"}}}}"#
        );
        let mut m = ProgressMapper::default();
        match StreamEvent::parse(&line) {
            Ok(e) => {
                let _ = m.map(&e);
            }
            Err(e) => prop_assert!(e.excerpt.chars().count() <= 200, "{e}"),
        }
    }
}
