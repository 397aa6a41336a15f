//! Turning stream events into core [`Progress`].

use std::collections::HashMap;

use agentflow_core::run::truncate;
use agentflow_core::{LogLevel, Progress};
use serde_json::Value;

use crate::event::{ContentBlock, StreamEvent, SystemEvent};

/// Longest tool output kept in a [`Progress::ToolResult`].
const OUTPUT_MAX: usize = 2000;
/// Longest tool input summary.
const SUMMARY_MAX: usize = 120;

/// Maps events to progress, remembering tool names by call id so that results can name their
/// tool.
///
/// ```
/// use agentflow_claude::{event::StreamEvent, progress::ProgressMapper};
/// use agentflow_core::Progress;
/// let mut m = ProgressMapper::default();
/// let line = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"cargo test"}}]}}"#;
/// let p = m.map(&StreamEvent::parse(line).unwrap());
/// assert!(matches!(&p[0], Progress::ToolUse { name, summary, .. } if name == "Bash" && summary == "cargo test"));
/// ```
#[derive(Debug, Default)]
pub struct ProgressMapper {
    tools: HashMap<String, String>,
}

impl ProgressMapper {
    /// The progress items one event gives (often none).
    pub fn map(&mut self, event: &StreamEvent) -> Vec<Progress> {
        match event {
            StreamEvent::System(system) => self.system(system),
            StreamEvent::Assistant(a) => {
                if a.is_api_error_message {
                    let text = a.message.content.blocks().into_iter().find_map(|b| match b {
                        ContentBlock::Text { text } => Some(text),
                        _ => None,
                    });
                    return vec![log(LogLevel::Error, text.unwrap_or_else(|| "API error".into()))];
                }
                a.message.content.blocks().into_iter().filter_map(|b| self.block(b)).collect()
            }
            StreamEvent::User(u) => {
                u.message.content.blocks().into_iter().filter_map(|b| self.block(b)).collect()
            }
            StreamEvent::Result(_)
            | StreamEvent::Partial(_)
            | StreamEvent::ControlResponse(_)
            | StreamEvent::Unknown(_) => Vec::new(),
        }
    }

    fn system(&mut self, system: &SystemEvent) -> Vec<Progress> {
        match system {
            SystemEvent::Init(init) => {
                let mcp: Vec<String> =
                    init.mcp_servers.iter().map(|s| format!("{} {}", s.name, s.status)).collect();
                vec![
                    Progress::Session { id: init.session_id.clone() },
                    log(
                        LogLevel::Info,
                        format!(
                            "claude {} started: session {}, model {}, permission mode {}{}",
                            init.claude_code_version.as_deref().unwrap_or("?"),
                            init.session_id,
                            init.model.as_deref().unwrap_or("?"),
                            init.permission_mode.as_deref().unwrap_or("?"),
                            if mcp.is_empty() {
                                String::new()
                            } else {
                                format!(", mcp: {}", mcp.join(", "))
                            }
                        ),
                    ),
                ]
            }
            SystemEvent::ApiRetry(r) => vec![log(
                LogLevel::Warn,
                format!(
                    "API call failed ({}{}); retry {}/{} in {} ms",
                    r.error_status.map(|s| format!("HTTP {s} ")).unwrap_or_default(),
                    r.error.as_deref().unwrap_or("error"),
                    r.attempt,
                    r.max_retries,
                    r.retry_delay_ms
                ),
            )],
            SystemEvent::PermissionDenied(d) => vec![log(
                LogLevel::Warn,
                format!(
                    "permission denied for {}: {}",
                    d.tool_name,
                    d.message.as_deref().unwrap_or("")
                ),
            )],
            SystemEvent::ModelFallback(f) => vec![log(
                LogLevel::Warn,
                format!(
                    "model fallback from {} to {} ({})",
                    f.original_model.as_deref().unwrap_or("?"),
                    f.fallback_model.as_deref().unwrap_or("?"),
                    f.trigger.as_deref().unwrap_or("?")
                ),
            )],
            SystemEvent::Other { .. } => Vec::new(),
        }
    }

    fn block(&mut self, block: ContentBlock) -> Option<Progress> {
        match block {
            ContentBlock::Text { text } if !text.trim().is_empty() => Some(Progress::Text { text }),
            ContentBlock::ToolUse { id, name, input } => {
                self.tools.insert(id, name.clone());
                Some(Progress::ToolUse {
                    summary: tool_summary(&name, &input),
                    name,
                    input: Some(input),
                })
            }
            ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                Some(Progress::ToolResult {
                    name: self.tools.get(&tool_use_id).cloned(),
                    is_error: is_error.unwrap_or(false),
                    output: truncate(&ContentBlock::result_text(&content), OUTPUT_MAX),
                })
            }
            _ => None,
        }
    }
}

fn log(level: LogLevel, line: impl Into<String>) -> Progress {
    Progress::Log { level, line: line.into() }
}

/// A one-line summary of a tool call's input: the command, path, pattern or URL it acts on.
///
/// ```
/// use agentflow_claude::progress::tool_summary;
/// use serde_json::json;
/// assert_eq!(tool_summary("Read", &json!({"file_path": "src/lib.rs"})), "src/lib.rs");
/// assert_eq!(tool_summary("mcp__linear__add_comment", &json!({"body": "Done\nDetails"})), "Done");
/// ```
pub fn tool_summary(name: &str, input: &Value) -> String {
    const KEYS: [&str; 7] =
        ["command", "file_path", "notebook_path", "pattern", "url", "query", "description"];
    let preferred = match name {
        "Bash" => Some("command"),
        "Read" | "Write" | "Edit" | "MultiEdit" => Some("file_path"),
        "Glob" | "Grep" => Some("pattern"),
        _ => None,
    };
    let text = preferred
        .and_then(|k| input.get(k))
        .or_else(|| KEYS.iter().find_map(|k| input.get(*k)))
        .or_else(|| input.as_object().and_then(|o| o.values().find(|v| v.is_string())))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| if input.is_null() { String::new() } else { input.to_string() });
    truncate(text.lines().next().unwrap_or_default(), SUMMARY_MAX)
}
