//! What the fake answers: scripted replies, one per request.

use std::time::Duration;

use serde_json::Value;

/// One content block of a scripted assistant message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A text block.
    Text(String),
    /// A `tool_use` block: the model calls `name` with `input`.
    ToolUse {
        /// Tool name as the CLI lists it (`Bash`, `Write`, `mcp__linear__add_comment`, …).
        name: String,
        /// The tool's input.
        input: Value,
    },
}

/// The answer to one `POST /v1/messages` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A streamed assistant message made of these blocks. The stop reason is `tool_use` when a
    /// block calls a tool, else `end_turn`.
    Message(Vec<Block>),
    /// The text `Reply [last user: <text of the last user message>]`, as in the recorded samples.
    Echo,
    /// An HTTP error with Anthropic's error body (`{"type":"error","error":{…}}`).
    Error {
        /// HTTP status (401, 429, 500, 529, 400, …).
        status: u16,
        /// Anthropic error type (`authentication_error`, `rate_limit_error`, …).
        kind: String,
        /// Error message.
        message: String,
        /// Seconds for a `retry-after` header.
        retry_after: Option<u64>,
    },
    /// Accept the request and never send a byte (until the server stops or `max` passes).
    HangBeforeFirstByte {
        /// Upper bound of the hang, so no test can hang forever.
        max: Duration,
    },
    /// Send `message_start` and then nothing more (until the server stops or `max` passes).
    StallAfterMessageStart {
        /// Upper bound of the stall.
        max: Duration,
    },
}

impl Reply {
    /// A message with one text block.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Message(vec![Block::Text(text.into())])
    }

    /// A message with one `tool_use` block.
    pub fn tool(name: impl Into<String>, input: Value) -> Reply {
        Reply::Message(vec![Block::ToolUse { name: name.into(), input }])
    }

    /// A message calling the Bash tool with `command`.
    pub fn bash(command: impl Into<String>) -> Reply {
        Reply::tool("Bash", serde_json::json!({ "command": command.into() }))
    }

    /// 401 `authentication_error`.
    pub fn unauthorized() -> Reply {
        Reply::error(401, "authentication_error", "invalid x-api-key", None)
    }

    /// 429 `rate_limit_error` with a `retry-after` header.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::error(429, "rate_limit_error", "fake rate limit", Some(retry_after_secs))
    }

    /// 500 `api_error`.
    pub fn server_error() -> Reply {
        Reply::error(500, "api_error", "fake error 500", None)
    }

    /// 529 `overloaded_error`.
    pub fn overloaded() -> Reply {
        Reply::error(529, "overloaded_error", "Overloaded", None)
    }

    /// 400 `invalid_request_error`: prompt is too long.
    pub fn prompt_too_long() -> Reply {
        Reply::error(
            400,
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
            None,
        )
    }

    /// An error reply.
    pub fn error(
        status: u16,
        kind: impl Into<String>,
        message: impl Into<String>,
        retry_after: Option<u64>,
    ) -> Reply {
        Reply::Error { status, kind: kind.into(), message: message.into(), retry_after }
    }

    /// Never answer (bounded by 10 minutes).
    pub fn hang() -> Reply {
        Reply::HangBeforeFirstByte { max: Duration::from_secs(600) }
    }

    /// Stall after `message_start` (bounded by 10 minutes).
    pub fn stall() -> Reply {
        Reply::StallAfterMessageStart { max: Duration::from_secs(600) }
    }
}
