//! The Messages API's server-sent events, shaped like the real API's (and the recorded samples).

use serde_json::{Value, json};

use super::script::Block;

/// One SSE frame: `event: <name>\ndata: <json>\n\n`.
pub(super) fn frame(data: &Value) -> String {
    let name = data.get("type").and_then(Value::as_str).unwrap_or("message");
    format!("event: {name}\ndata: {data}\n\n")
}

/// The `message_start` event.
pub(super) fn message_start(id: &str, model: &str, input_tokens: u64) -> Value {
    json!({
        "type": "message_start",
        "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0
            }
        }
    })
}

/// Every event of a complete message after `message_start`, with `tool_id(i)` naming the
/// `i`-th tool call.
pub(super) fn message_body(blocks: &[Block], tool_id: impl Fn(usize) -> String) -> Vec<Value> {
    let mut events = vec![json!({ "type": "ping" })];
    let mut output_tokens = 1u64;
    let mut calls = 0;
    for (index, block) in blocks.iter().enumerate() {
        match block {
            Block::Text(text) => {
                output_tokens += (text.len() as u64).div_ceil(4);
                events.push(json!({
                    "type": "content_block_start",
                    "index": index,
                    "content_block": { "type": "text", "text": "" }
                }));
                // Two deltas, split on a character boundary, as a real stream would.
                let mid = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
                for part in [&text[..mid], &text[mid..]] {
                    if !part.is_empty() {
                        events.push(json!({
                            "type": "content_block_delta",
                            "index": index,
                            "delta": { "type": "text_delta", "text": part }
                        }));
                    }
                }
            }
            Block::ToolUse { name, input } => {
                let partial = input.to_string();
                output_tokens += (partial.len() as u64).div_ceil(4) + 10;
                events.push(json!({
                    "type": "content_block_start",
                    "index": index,
                    "content_block": { "type": "tool_use", "id": tool_id(calls), "name": name, "input": {} }
                }));
                events.push(json!({
                    "type": "content_block_delta",
                    "index": index,
                    "delta": { "type": "input_json_delta", "partial_json": partial }
                }));
                calls += 1;
            }
        }
        events.push(json!({ "type": "content_block_stop", "index": index }));
    }
    let stop_reason = if calls > 0 { "tool_use" } else { "end_turn" };
    events.push(json!({
        "type": "message_delta",
        "delta": { "stop_reason": stop_reason, "stop_sequence": null },
        "usage": { "output_tokens": output_tokens }
    }));
    events.push(json!({ "type": "message_stop" }));
    events
}

/// Anthropic's error body.
pub(super) fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}
