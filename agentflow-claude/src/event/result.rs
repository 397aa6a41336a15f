//! The `type: "result"` line that ends a turn.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `result`: how a turn ended.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ResultEvent {
    /// `success`, `error_max_turns`, `error_during_execution`, …
    #[serde(deserialize_with = "super::nullable")]
    pub subtype: String,
    /// Whether the turn failed (an API error can come with subtype `success`).
    #[serde(deserialize_with = "super::nullable")]
    pub is_error: bool,
    /// The final text (absent on some errors).
    pub result: Option<String>,
    /// Error messages (instead of `result` on max turns and execution errors).
    #[serde(deserialize_with = "super::nullable")]
    pub errors: Vec<String>,
    /// The session.
    pub session_id: Option<String>,
    /// Model turns.
    #[serde(deserialize_with = "super::nullable")]
    pub num_turns: u32,
    /// Cost in USD, cumulative over the whole session (a resumed session includes earlier
    /// runs); see [`ResultEvent::run_cost_usd`].
    #[serde(deserialize_with = "super::nullable")]
    pub total_cost_usd: f64,
    /// Tokens of this run.
    #[serde(deserialize_with = "super::nullable")]
    pub usage: ResultUsage,
    /// Tool calls the permission rules denied.
    #[serde(deserialize_with = "super::nullable")]
    pub permission_denials: Vec<Value>,
    /// `completed`, `max_turns`, `api_error`, `prompt_too_long`, `aborted_tools`,
    /// `aborted_streaming`, …
    pub terminal_reason: Option<String>,
    /// The HTTP status of the API error that ended the turn.
    pub api_error_status: Option<u16>,
    /// Wall time of the turn.
    pub duration_ms: Option<u64>,
    /// Per-model usage since the previous `result` of this process.
    pub model_usage_since_last_result: Option<BTreeMap<String, ModelUsage>>,
}

/// Token counts of a result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ResultUsage {
    /// Uncached input tokens.
    #[serde(deserialize_with = "super::nullable")]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(deserialize_with = "super::nullable")]
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    #[serde(deserialize_with = "super::nullable")]
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the prompt cache.
    #[serde(deserialize_with = "super::nullable")]
    pub cache_read_input_tokens: u64,
}

/// One model's usage in `modelUsage` / `model_usage_since_last_result`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ModelUsage {
    /// Cost in USD.
    #[serde(rename = "costUSD")]
    #[serde(deserialize_with = "super::nullable")]
    pub cost_usd: f64,
}

impl ResultEvent {
    /// The cost of this turn alone: the sum of `model_usage_since_last_result`, else
    /// `total_cost_usd` (which, on a resumed session, also counts the earlier runs).
    pub fn run_cost_usd(&self) -> f64 {
        match &self.model_usage_since_last_result {
            Some(models) => models.values().map(|m| m.cost_usd).sum(),
            None => self.total_cost_usd,
        }
    }

    /// The turn's usage in core terms (input counts cache reads and writes).
    pub fn core_usage(&self) -> agentflow_core::Usage {
        agentflow_core::Usage {
            input_tokens: self.usage.input_tokens
                + self.usage.cache_creation_input_tokens
                + self.usage.cache_read_input_tokens,
            output_tokens: self.usage.output_tokens,
            cost_usd: self.run_cost_usd(),
            turns: self.num_turns,
        }
    }

    /// The text to show: `result`, else the joined `errors`.
    pub fn text(&self) -> String {
        match &self.result {
            Some(r) => r.clone(),
            None => self.errors.join("; "),
        }
    }

    /// Names of denied tools (one per denial).
    pub fn denied_tools(&self) -> Vec<String> {
        self.permission_denials
            .iter()
            .map(|d| d.get("tool_name").and_then(Value::as_str).unwrap_or("?").to_owned())
            .collect()
    }
}
