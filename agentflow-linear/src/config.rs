//! [`LinearConfig`]: how to reach Linear and which issues are ours.

use std::time::Duration;

use agentflow_core::{Error, TaskStatus};
use secrecy::SecretString;
use serde::Deserialize;

/// The default API endpoint.
pub const DEFAULT_API_URL: &str = "https://api.linear.app/graphql";

/// Configuration of a [`LinearSource`](crate::LinearSource).
///
/// Exactly one of `api_key` (a personal API key, sent as `Authorization: <key>`) and
/// `oauth_token` (an OAuth access token, sent as `Authorization: Bearer <token>`) must be set.
///
/// ```
/// let config: agentflow_linear::LinearConfig = toml::from_str(r#"
///     api_key = "lin_api_xxx"
///     teams = ["ENG"]
///     labels = ["agent"]
///     request_timeout = "20s"
///     [states]
///     in_review = "Review"
/// "#).unwrap();
/// assert_eq!(config.states.in_review, "Review");
/// assert_eq!(config.states.todo, "Todo");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearConfig {
    /// GraphQL endpoint (overridable for proxies and tests).
    pub api_url: String,
    /// Personal API key.
    pub api_key: Option<SecretString>,
    /// OAuth access token.
    pub oauth_token: Option<SecretString>,
    /// Team keys (`ENG`) whose issues agentflow works on.
    pub teams: Vec<String>,
    /// When not empty, only issues carrying one of these labels are picked up.
    pub labels: Vec<String>,
    /// Workflow state names for agentflow's statuses.
    pub states: StateNames,
    /// Page size of list queries (1–250).
    pub page_size: u32,
    /// Timeout of one HTTP request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Retries of a request that failed with a 5xx or a timeout.
    pub max_retries: u32,
    /// First retry delay (doubled each retry, with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// How far back the first feedback poll (no cursor yet) looks.
    #[serde(with = "humantime_serde")]
    pub feedback_lookback: Duration,
    /// Progress and summary comments are cut to this many characters (Linear's own limit is
    /// far higher; long agent output is not useful in a comment).
    pub max_comment_chars: usize,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            api_url: DEFAULT_API_URL.to_owned(),
            api_key: None,
            oauth_token: None,
            teams: Vec::new(),
            labels: Vec::new(),
            states: StateNames::default(),
            page_size: 100,
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_backoff: Duration::from_millis(500),
            feedback_lookback: Duration::from_secs(3600),
            max_comment_chars: 60_000,
        }
    }
}

/// Linear workflow state names for each [`TaskStatus`] agentflow manages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateNames {
    /// Waiting to start.
    pub todo: String,
    /// Claimed, an agent is queued or running.
    pub in_progress: String,
    /// Waiting for human review.
    pub in_review: String,
    /// Finished.
    pub done: String,
    /// Failed after the last attempt.
    pub failed: String,
}

impl Default for StateNames {
    fn default() -> Self {
        StateNames {
            todo: "Todo".into(),
            in_progress: "In Progress".into(),
            in_review: "In Review".into(),
            done: "Done".into(),
            failed: "Failed".into(),
        }
    }
}

impl StateNames {
    /// The configured name of `status` and its config key; `None` for [`TaskStatus::Other`].
    pub fn name(&self, status: TaskStatus) -> Option<(&str, &'static str)> {
        Some(match status {
            TaskStatus::Todo => (&self.todo, "linear.states.todo"),
            TaskStatus::InProgress => (&self.in_progress, "linear.states.in_progress"),
            TaskStatus::InReview => (&self.in_review, "linear.states.in_review"),
            TaskStatus::Done => (&self.done, "linear.states.done"),
            TaskStatus::Failed => (&self.failed, "linear.states.failed"),
            TaskStatus::Other => return None,
        })
    }
}

/// How we authenticate.
#[derive(Clone)]
pub(crate) enum Auth {
    ApiKey(SecretString),
    OAuth(SecretString),
}

impl Auth {
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Auth::ApiKey(_) => "API key",
            Auth::OAuth(_) => "OAuth token",
        }
    }
}

impl LinearConfig {
    /// A configuration with a personal API key for `teams`, defaults elsewhere.
    pub fn with_api_key(key: impl Into<String>, teams: &[impl AsRef<str>]) -> Self {
        LinearConfig {
            api_key: Some(SecretString::from(key.into())),
            teams: teams.iter().map(|t| t.as_ref().to_owned()).collect(),
            ..LinearConfig::default()
        }
    }

    /// A configuration with an OAuth access token for `teams`, defaults elsewhere.
    pub fn with_oauth_token(token: impl Into<String>, teams: &[impl AsRef<str>]) -> Self {
        LinearConfig {
            oauth_token: Some(SecretString::from(token.into())),
            teams: teams.iter().map(|t| t.as_ref().to_owned()).collect(),
            ..LinearConfig::default()
        }
    }

    /// Checks the configuration and picks the auth mode.
    pub(crate) fn validate(&self) -> Result<Auth, Error> {
        let auth = match (&self.api_key, &self.oauth_token) {
            (Some(k), None) => Auth::ApiKey(k.clone()),
            (None, Some(t)) => Auth::OAuth(t.clone()),
            (None, None) => {
                return Err(Error::config("linear.api_key", "set `api_key` or `oauth_token`"));
            }
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "linear.oauth_token",
                    "set only one of `api_key` and `oauth_token`",
                ));
            }
        };
        if self.teams.is_empty() {
            return Err(Error::config(
                "linear.teams",
                "list at least one team key, e.g. [\"ENG\"]",
            ));
        }
        if reqwest::Url::parse(&self.api_url).is_err() {
            return Err(Error::config(
                "linear.api_url",
                format!("`{}` is not a URL", self.api_url),
            ));
        }
        if !(1..=250).contains(&self.page_size) {
            return Err(Error::config("linear.page_size", "must be between 1 and 250"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config("linear.request_timeout", "must be more than zero"));
        }
        Ok(auth)
    }
}
