//! Deciding a run's outcome from its last `result` line.

use agentflow_core::{RunOutcome, Usage};

use crate::error::ClaudeError;
use crate::event::ResultEvent;

/// What a `result` means for the run.
#[derive(Debug)]
pub(super) enum Verdict {
    /// The run succeeded.
    Done(RunOutcome),
    /// The resumed session cannot continue (unknown, or too long); a fresh one may.
    StartFresh(String),
    /// The run failed.
    Failed(ClaudeError),
}

/// Classifies the last `result` of a run. `resumed` says whether a session was resumed (then an
/// unknown or overlong session can start afresh); `saw_init` whether `init` came first (an
/// unknown session fails before it).
/// `rate_limit_wait` is the delay the CLI chose before its last retry of a 429, if any.
pub(super) fn verdict(
    result: &ResultEvent,
    usage: Usage,
    session_id: Option<String>,
    resumed: bool,
    saw_init: bool,
    rate_limit_wait: Option<std::time::Duration>,
) -> Verdict {
    let text = result.text();
    let lower = text.to_ascii_lowercase();
    let reason = result.terminal_reason.as_deref().unwrap_or("");
    if !result.is_error && result.subtype == "success" {
        return Verdict::Done(RunOutcome { session_id, summary: text, usage, needs_review: None });
    }
    if resumed && !saw_init && lower.contains("no conversation found") {
        return Verdict::StartFresh(format!("session to resume not found ({text})"));
    }
    if reason == "max_turns" || result.subtype == "error_max_turns" {
        return Verdict::Failed(ClaudeError::MaxTurns { message: text });
    }
    if reason == "prompt_too_long" || lower.contains("prompt is too long") {
        if resumed {
            return Verdict::StartFresh(format!(
                "the resumed session no longer fits the model's context ({text})"
            ));
        }
        return Verdict::Failed(ClaudeError::PromptTooLong { message: text });
    }
    if lower.contains("not logged in") {
        return Verdict::Failed(ClaudeError::NotLoggedIn { message: text });
    }
    if reason == "api_error" || result.api_error_status.is_some() {
        let retry_after = rate_limit_wait.filter(|_| result.api_error_status == Some(429));
        return Verdict::Failed(ClaudeError::Api {
            status: result.api_error_status,
            message: text,
            retry_after,
        });
    }
    Verdict::Failed(ClaudeError::Failed {
        subtype: result.subtype.clone(),
        terminal_reason: if reason.is_empty() { "unknown".into() } else { reason.into() },
        message: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StreamEvent;

    fn result(line: &str) -> ResultEvent {
        match StreamEvent::parse(line).unwrap() {
            StreamEvent::Result(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verdicts() {
        let ok = result(
            r#"{"type":"result","subtype":"success","is_error":false,"result":"hi","num_turns":1}"#,
        );
        assert!(
            matches!(verdict(&ok, Usage::default(), None, false, true, None), Verdict::Done(o) if o.summary == "hi")
        );
        let unknown = result(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["No conversation found with session ID: x"]}"#,
        );
        assert!(matches!(
            verdict(&unknown, Usage::default(), None, true, false, None),
            Verdict::StartFresh(_)
        ));
        let login = result(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login","terminal_reason":"api_error","errors":null}"#,
        );
        assert!(matches!(
            verdict(&login, Usage::default(), None, false, true, None),
            Verdict::Failed(ClaudeError::NotLoggedIn { .. })
        ));
        let long = result(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Prompt is too long","api_error_status":400}"#,
        );
        assert!(matches!(
            verdict(&long, Usage::default(), None, false, true, None),
            Verdict::Failed(ClaudeError::PromptTooLong { .. })
        ));
        assert!(matches!(
            verdict(&long, Usage::default(), None, true, true, None),
            Verdict::StartFresh(_)
        ));
        // A 429 the CLI gave up on carries the wait it last chose from `retry-after`.
        let limited = result(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 429 rate limited","api_error_status":429}"#,
        );
        let wait = Some(std::time::Duration::from_secs(3));
        assert!(matches!(
            verdict(&limited, Usage::default(), None, false, true, wait),
            Verdict::Failed(ClaudeError::Api { status: Some(429), retry_after, .. }) if retry_after == wait
        ));
        let server = result(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 500","api_error_status":500}"#,
        );
        assert!(matches!(
            verdict(&server, Usage::default(), None, false, true, wait),
            Verdict::Failed(ClaudeError::Api { status: Some(500), retry_after: None, .. })
        ));
    }
}
