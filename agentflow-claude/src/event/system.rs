//! `type: "system"` lines.

use serde::Deserialize;
use serde_json::Value;

/// A `system` line, by `subtype`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SystemEvent {
    /// The first line: session, tools, MCP servers, model.
    Init(Init),
    /// The CLI is retrying an API call.
    ApiRetry(ApiRetry),
    /// A tool call was denied by the permission rules.
    PermissionDenied(PermissionDenied),
    /// The CLI switched to the fallback model.
    ModelFallback(ModelFallback),
    /// Another subtype (`status`, `task_started`, `task_notification`, …), kept whole.
    Other {
        /// The subtype.
        subtype: String,
        /// The whole line.
        raw: Value,
    },
}

impl SystemEvent {
    /// Classifies a `system` object; `Err` gives the value back when a known subtype has an
    /// unexpected shape.
    pub(crate) fn from_value(value: Value) -> Result<SystemEvent, Value> {
        fn typed<T: serde::de::DeserializeOwned>(
            value: Value,
            wrap: fn(T) -> SystemEvent,
        ) -> Result<SystemEvent, Value> {
            T::deserialize(&value).map(wrap).map_err(|_| value)
        }
        let subtype = value.get("subtype").and_then(Value::as_str).unwrap_or_default().to_owned();
        match subtype.as_str() {
            "init" => typed(value, SystemEvent::Init),
            "api_retry" => typed(value, SystemEvent::ApiRetry),
            "permission_denied" => typed(value, SystemEvent::PermissionDenied),
            "model_fallback" => typed(value, SystemEvent::ModelFallback),
            _ => Ok(SystemEvent::Other { subtype, raw: value }),
        }
    }
}

/// `system`/`init`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Init {
    /// The session id (resume with `--resume <id>`).
    #[serde(deserialize_with = "super::nullable")]
    pub session_id: String,
    /// The CLI's working directory.
    pub cwd: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// Tools available to the model.
    #[serde(deserialize_with = "super::nullable")]
    pub tools: Vec<String>,
    /// MCP servers and whether they connected.
    #[serde(deserialize_with = "super::nullable")]
    pub mcp_servers: Vec<McpServerStatus>,
    /// `default`, `acceptEdits`, `bypassPermissions`, `plan`.
    #[serde(rename = "permissionMode")]
    pub permission_mode: Option<String>,
    /// Where the API key came from (`ANTHROPIC_API_KEY`, `none`, …).
    #[serde(rename = "apiKeySource")]
    pub api_key_source: Option<String>,
    /// The CLI's version.
    pub claude_code_version: Option<String>,
}

impl Init {
    /// Names of MCP servers whose status is `failed`.
    pub fn failed_mcp_servers(&self) -> impl Iterator<Item = &str> {
        self.mcp_servers.iter().filter(|s| s.status == "failed").map(|s| s.name.as_str())
    }
}

/// One entry of `init.mcp_servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct McpServerStatus {
    /// Server name.
    #[serde(deserialize_with = "super::nullable")]
    pub name: String,
    /// `connected`, `failed`, `pending`, `needs-auth`, …
    #[serde(deserialize_with = "super::nullable")]
    pub status: String,
}

/// `system`/`api_retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ApiRetry {
    /// This retry's number (1-based).
    #[serde(deserialize_with = "super::nullable")]
    pub attempt: u32,
    /// The CLI's retry limit.
    #[serde(deserialize_with = "super::nullable")]
    pub max_retries: u32,
    /// The delay before this retry.
    #[serde(deserialize_with = "super::nullable")]
    pub retry_delay_ms: u64,
    /// The HTTP status of the failure, when there was one.
    pub error_status: Option<u16>,
    /// The error kind (`server_error`, `overloaded`, `rate_limit`, …).
    pub error: Option<String>,
}

/// `system`/`permission_denied`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PermissionDenied {
    /// The tool that was denied.
    #[serde(deserialize_with = "super::nullable")]
    pub tool_name: String,
    /// The call's id.
    pub tool_use_id: Option<String>,
    /// Why.
    pub message: Option<String>,
}

/// `system`/`model_fallback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ModelFallback {
    /// What triggered it (`overloaded`).
    pub trigger: Option<String>,
    /// The model asked for.
    pub original_model: Option<String>,
    /// The model used instead.
    pub fallback_model: Option<String>,
}
