//! What can go wrong driving the CLI, and the retry decision for each.

use std::path::PathBuf;

use agentflow_core::Error;

/// The pinned CLI version agentflow is tested with.
pub const CLAUDE_CODE_VERSION: &str = "2.1.331";

/// Failures of the Claude executor; each converts into an [`agentflow_core::Error`] whose
/// `is_retryable()` says whether another attempt may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaudeError {
    /// The CLI binary was not found.
    #[error(
        "Claude Code CLI not found at `{}`: install it with `npm install -g @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}` \
         (or run scripts/install-test-deps.sh) and put `claude` on PATH, or set `claude.binary` to its path",
        binary.display()
    )]
    BinaryMissing {
        /// The configured binary.
        binary: PathBuf,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// The CLI could not be started, or talking to it failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Preparing the task's workspace failed.
    #[error("workspace `{}`: {message}", path.display())]
    Workspace {
        /// The workspace directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A prompt template is invalid or failed to render.
    #[error("prompt template `{name}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// Template name (the file path when loaded from a file).
        name: String,
        /// The line of the error, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// An MCP server given to the run failed to connect (seen in `init`).
    #[error("MCP server(s) {} failed to connect; the agent would run without their tools", servers.join(", "))]
    McpFailed {
        /// The failed servers.
        servers: Vec<String>,
    },
    /// The CLI has no credentials.
    #[error(
        "Claude Code is not logged in ({message}): configure `claude.auth` (API key, or base URL + token)"
    )]
    NotLoggedIn {
        /// The CLI's message.
        message: String,
    },
    /// The Anthropic API (or the proxy) answered with an error the CLI gave up on.
    #[error("Anthropic API error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: Option<u16>,
        /// The CLI's message.
        message: String,
        /// How long the API asked to wait: the delay the CLI chose from `retry-after` before
        /// its last retry of a 429 (`system/api_retry`), when it reported one.
        retry_after: Option<std::time::Duration>,
    },
    /// The agent used all its turns.
    #[error("the agent reached its maximum number of turns: {message}")]
    MaxTurns {
        /// The CLI's message.
        message: String,
    },
    /// The conversation no longer fits the model's context.
    #[error("prompt is too long for the model: {message}")]
    PromptTooLong {
        /// The CLI's message.
        message: String,
    },
    /// The turn ended with an error (`error_during_execution`, aborted tools, …).
    #[error("the agent run failed ({subtype}, {terminal_reason}): {message}")]
    Failed {
        /// The result's subtype.
        subtype: String,
        /// The result's terminal reason.
        terminal_reason: String,
        /// The CLI's message.
        message: String,
    },
    /// The CLI ended without a `result` line.
    #[error("Claude Code exited ({status}) without a result; stderr tail: {stderr_tail}")]
    NoResult {
        /// The exit status.
        status: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
}

impl ClaudeError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClaudeError::BinaryMissing { .. }
            | ClaudeError::Template { .. }
            | ClaudeError::NotLoggedIn { .. }
            | ClaudeError::MaxTurns { .. }
            | ClaudeError::PromptTooLong { .. } => false,
            ClaudeError::Api { status, .. } => {
                !matches!(status, Some(400 | 401 | 403 | 404 | 413 | 422))
            }
            ClaudeError::Io { .. }
            | ClaudeError::Workspace { .. }
            | ClaudeError::McpFailed { .. }
            | ClaudeError::Failed { .. }
            | ClaudeError::NoResult { .. } => true,
        }
    }
}

impl From<ClaudeError> for Error {
    fn from(err: ClaudeError) -> Error {
        match err {
            ClaudeError::Template { ref name, .. } => {
                Error::config(format!("claude.prompts ({name})"), err.to_string())
            }
            ClaudeError::Api { status: Some(429), ref message, retry_after } => {
                Error::RateLimited { service: "anthropic", retry_after, message: message.clone() }
            }
            other => Error::Executor {
                message: other.to_string(),
                retryable: other.is_retryable(),
                source: Some(Box::new(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        let api = |status| {
            Error::from(ClaudeError::Api { status, message: "x".into(), retry_after: None })
        };
        assert!(!api(Some(401)).is_retryable());
        assert!(!api(Some(400)).is_retryable());
        assert!(api(Some(429)).is_retryable());
        assert!(api(Some(500)).is_retryable());
        assert!(api(Some(529)).is_retryable());
        assert!(api(None).is_retryable());
        // A 429 keeps the wait the API asked for, so the engine retries no earlier.
        let limited = Error::from(ClaudeError::Api {
            status: Some(429),
            message: "rate limited".into(),
            retry_after: Some(std::time::Duration::from_secs(7)),
        });
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert!(!Error::from(ClaudeError::NotLoggedIn { message: "x".into() }).is_retryable());
        assert!(!Error::from(ClaudeError::MaxTurns { message: "x".into() }).is_retryable());
        let missing = ClaudeError::BinaryMissing {
            binary: "claude".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(missing.to_string().contains("npm install"));
        assert!(!Error::from(missing).is_retryable());
    }
}
