//! `type: "assistant"` and `type: "user"` lines.

use serde::Deserialize;
use serde_json::Value;

/// `assistant`: one content block of a model message (several lines may share `message.id`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AssistantEvent {
    /// The message.
    pub message: Message,
    /// The session.
    pub session_id: Option<String>,
    /// Set when a sub-agent produced the message.
    pub parent_tool_use_id: Option<String>,
    /// The CLI synthesized this message from an API error.
    #[serde(deserialize_with = "super::nullable")]
    pub is_api_error_message: bool,
    /// The HTTP status of that API error.
    pub api_error_status: Option<u16>,
}

/// A message of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Message {
    /// The API's message id.
    pub id: Option<String>,
    /// The model that wrote it.
    pub model: Option<String>,
    /// `assistant` or `user`.
    pub role: Option<String>,
    /// The content.
    pub content: MessageContent,
}

/// Message content: a plain string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// A plain string.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

impl Default for MessageContent {
    fn default() -> Self {
        MessageContent::Blocks(Vec::new())
    }
}

impl MessageContent {
    /// The content as blocks (a plain string is one text block).
    pub fn blocks(&self) -> Vec<ContentBlock> {
        match self {
            MessageContent::Text(text) => vec![ContentBlock::Text { text: text.clone() }],
            MessageContent::Blocks(blocks) => blocks.clone(),
        }
    }
}

/// A content block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        #[serde(default)]
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// The call's id.
        #[serde(default)]
        id: String,
        /// The tool.
        #[serde(default)]
        name: String,
        /// Its input.
        #[serde(default)]
        input: Value,
    },
    /// A tool's result.
    ToolResult {
        /// The call it answers.
        #[serde(default)]
        tool_use_id: String,
        /// A string or a list of blocks.
        #[serde(default)]
        content: Value,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
    },
    /// Model thinking.
    Thinking {
        /// The thinking text.
        #[serde(default)]
        thinking: String,
    },
    /// Any other block type.
    #[serde(other)]
    Other,
}

impl ContentBlock {
    /// The text of a tool result's `content` (strings and text blocks joined by newlines).
    pub fn result_text(content: &Value) -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// `user`: tool results, or notices such as `[Request interrupted by user]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct UserEvent {
    /// The message.
    pub message: Message,
    /// The session.
    pub session_id: Option<String>,
    /// Set when the message belongs to a sub-agent.
    pub parent_tool_use_id: Option<String>,
    /// The tool's structured result (Bash: `stdout`, `stderr`, `interrupted`).
    pub tool_use_result: Option<Value>,
}
