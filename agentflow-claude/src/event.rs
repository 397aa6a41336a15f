//! A typed, tolerant model of the CLI's `--output-format stream-json` lines.
//!
//! Every line is one JSON object with a `type`. Known types become typed variants with the fields
//! agentflow uses (missing fields take defaults, extra fields are ignored); unknown types, and
//! known types whose fields have surprising shapes, are kept as [`StreamEvent::Unknown`] with the
//! raw JSON, so a newer CLI never ends a run. Only a line that is not a JSON object is an error
//! ([`MalformedLine`]), reported by the caller without ending the run.
//!
//! ```
//! use agentflow_claude::event::{StreamEvent, SystemEvent};
//! let line = r#"{"type":"system","subtype":"init","session_id":"s1","mcp_servers":[{"name":"linear","status":"failed"}]}"#;
//! let StreamEvent::System(SystemEvent::Init(init)) = StreamEvent::parse(line).unwrap() else { panic!() };
//! assert_eq!(init.session_id, "s1");
//! assert_eq!(init.failed_mcp_servers().collect::<Vec<_>>(), ["linear"]);
//! ```

mod message;
mod result;
mod system;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use message::{AssistantEvent, ContentBlock, Message, MessageContent, UserEvent};
pub use result::{ModelUsage, ResultEvent, ResultUsage};
pub use system::{ApiRetry, Init, McpServerStatus, ModelFallback, PermissionDenied, SystemEvent};

/// One stdout line of the CLI.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// `type: "system"` (init, api_retry, permission_denied, …).
    System(SystemEvent),
    /// `type: "assistant"`: one content block of a model message.
    Assistant(AssistantEvent),
    /// `type: "user"`: tool results and interruption notices.
    User(UserEvent),
    /// `type: "result"`: the end of one turn (one per user message sent).
    Result(Box<ResultEvent>),
    /// `type: "stream_event"`: a raw API stream event (`--include-partial-messages`).
    Partial(Value),
    /// `type: "control_response"`: the answer to a control request (e.g. interrupt).
    ControlResponse(Value),
    /// Anything else, kept whole.
    Unknown(Value),
}

/// A stdout line that is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream-json line ({reason}): {excerpt}")]
pub struct MalformedLine {
    /// Why it was rejected.
    pub reason: String,
    /// The start of the line (at most 200 characters).
    pub excerpt: String,
}

impl StreamEvent {
    /// Parses one line (surrounding whitespace ignored).
    ///
    /// Known types are deserialized straight from the text (fields agentflow does not use are
    /// skipped without being built); everything else goes through a [`Value`].
    pub fn parse(line: &str) -> Result<StreamEvent, MalformedLine> {
        let line = line.trim();
        let Ok(peek) = serde_json::from_str::<Peek<'_>>(line) else {
            return Self::parse_value(line);
        };
        let typed = match (peek.kind.as_deref(), peek.subtype.as_deref()) {
            (Some("assistant"), _) => serde_json::from_str(line).ok().map(StreamEvent::Assistant),
            (Some("user"), _) => serde_json::from_str(line).ok().map(StreamEvent::User),
            (Some("result"), _) => {
                serde_json::from_str(line).ok().map(|r| StreamEvent::Result(Box::new(r)))
            }
            (Some("system"), Some("init")) => {
                serde_json::from_str(line).ok().map(|i| StreamEvent::System(SystemEvent::Init(i)))
            }
            (Some("system"), Some("api_retry")) => serde_json::from_str(line)
                .ok()
                .map(|r| StreamEvent::System(SystemEvent::ApiRetry(r))),
            _ => None,
        };
        match typed {
            Some(event) => Ok(event),
            None => Self::parse_value(line),
        }
    }

    fn parse_value(line: &str) -> Result<StreamEvent, MalformedLine> {
        let malformed = |reason: String| MalformedLine {
            reason,
            excerpt: agentflow_core::run::truncate(line, 200),
        };
        let value: Value = serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
        if !value.is_object() {
            return Err(malformed("not a JSON object".into()));
        }
        Ok(StreamEvent::from_value(value))
    }

    /// Classifies an already parsed JSON object.
    pub fn from_value(value: Value) -> StreamEvent {
        match value.get("type").and_then(Value::as_str) {
            Some("system") => SystemEvent::from_value(value)
                .map_or_else(StreamEvent::Unknown, StreamEvent::System),
            Some("assistant") => typed(value, StreamEvent::Assistant),
            Some("user") => typed(value, StreamEvent::User),
            Some("result") => typed(value, |r| StreamEvent::Result(Box::new(r))),
            Some("stream_event") => StreamEvent::Partial(value),
            Some("control_response") => StreamEvent::ControlResponse(value),
            _ => StreamEvent::Unknown(value),
        }
    }

    /// The session id the line carries, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            StreamEvent::System(SystemEvent::Init(i)) => Some(&i.session_id),
            StreamEvent::Assistant(a) => a.session_id.as_deref(),
            StreamEvent::User(u) => u.session_id.as_deref(),
            StreamEvent::Result(r) => r.session_id.as_deref(),
            _ => None,
        }
    }
}

/// The two fields that decide how to parse a line.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    subtype: Option<std::borrow::Cow<'a, str>>,
}

/// Reads `null` as the default value: the CLI writes `null` for empty lists and unknown numbers.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes `value` into `T`, or keeps it raw when its shape is unexpected.
fn typed<T: DeserializeOwned>(value: Value, wrap: impl FnOnce(T) -> StreamEvent) -> StreamEvent {
    match T::deserialize(&value) {
        Ok(t) => wrap(t),
        Err(_) => StreamEvent::Unknown(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_non_object_lines_are_errors() {
        assert!(StreamEvent::parse("{not json").is_err());
        assert!(StreamEvent::parse("[1,2]").is_err());
        assert!(StreamEvent::parse("").is_err());
    }

    #[test]
    fn unknown_types_and_bad_shapes_are_kept_raw() {
        let e = StreamEvent::parse(r#"{"type":"brand_new","x":1}"#).unwrap();
        assert!(matches!(e, StreamEvent::Unknown(v) if v["x"] == 1));
        let e = StreamEvent::parse(r#"{"type":"result","num_turns":"many"}"#).unwrap();
        assert!(matches!(e, StreamEvent::Unknown(_)));
    }
}
