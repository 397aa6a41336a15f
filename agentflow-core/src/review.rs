//! The review gate: whether a finished run goes to In Review (a human looks) or straight to Done.
//!
//! ```
//! use agentflow_core::review::{KeywordPolicy, ReviewPolicy};
//! use agentflow_core::{RunOutcome, Task};
//!
//! let policy = KeywordPolicy::default();
//! let outcome = RunOutcome::default();
//! assert!(policy.needs_review(&Task::new("t1", "LOC-1", "Write a haiku"), &outcome));
//! assert!(!policy.needs_review(&Task::new("t2", "LOC-2", "Summarise the logs"), &outcome));
//! ```

use serde::{Deserialize, Serialize};

use crate::run::RunOutcome;
use crate::task::Task;

/// Decides whether a successful run needs a human review.
pub trait ReviewPolicy: Send + Sync + 'static {
    /// `true`: the task goes to In Review; `false`: to Done.
    fn needs_review(&self, task: &Task, outcome: &RunOutcome) -> bool;
}

impl<F> ReviewPolicy for F
where
    F: Fn(&Task, &RunOutcome) -> bool + Send + Sync + 'static,
{
    fn needs_review(&self, task: &Task, outcome: &RunOutcome) -> bool {
        self(task, outcome)
    }
}

/// The seed's keywords: a task whose title or description contains one of these words produces
/// something a person should look at.
pub const DEFAULT_KEYWORDS: [&str; 12] = [
    "write", "generate", "create", "send", "email", "article", "report", "delete", "modify",
    "update", "code", "script",
];

/// The default [`ReviewPolicy`].
///
/// In order of precedence:
/// 1. a label in [`force_labels`](KeywordPolicy::force_labels) (default `needs-review`) → review,
///    a label in [`skip_labels`](KeywordPolicy::skip_labels) (default `auto-done`) → no review
///    (force wins when a task carries both);
/// 2. the agent's own [`RunOutcome::needs_review`], when it said;
/// 3. a keyword matched as a whole word, case-insensitive, in the title or description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordPolicy {
    /// Words that make a task need review.
    pub keywords: Vec<String>,
    /// Labels that always send a task to review.
    pub force_labels: Vec<String>,
    /// Labels that always send a task to Done.
    pub skip_labels: Vec<String>,
}

impl Default for KeywordPolicy {
    fn default() -> Self {
        KeywordPolicy {
            keywords: DEFAULT_KEYWORDS.iter().map(|s| (*s).to_owned()).collect(),
            force_labels: vec!["needs-review".to_owned()],
            skip_labels: vec!["auto-done".to_owned()],
        }
    }
}

impl KeywordPolicy {
    /// A policy with `keywords` and the default labels.
    pub fn with_keywords<I, S>(keywords: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        KeywordPolicy {
            keywords: keywords.into_iter().map(Into::into).collect(),
            ..KeywordPolicy::default()
        }
    }

    /// Whether `text` contains one of the keywords as a whole word (case-insensitive).
    pub fn matches(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        self.keywords.iter().any(|k| {
            let k = k.to_lowercase();
            let parts: Vec<&str> = k.split_whitespace().collect();
            match parts.len() {
                0 => false,
                n => words.windows(n).any(|w| w == parts.as_slice()),
            }
        })
    }
}

impl ReviewPolicy for KeywordPolicy {
    fn needs_review(&self, task: &Task, outcome: &RunOutcome) -> bool {
        if self.force_labels.iter().any(|l| task.has_label(l)) {
            return true;
        }
        if self.skip_labels.iter().any(|l| task.has_label(l)) {
            return false;
        }
        if let Some(agent_says) = outcome.needs_review {
            return agent_says;
        }
        self.matches(&task.title) || self.matches(&task.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(title: &str, body: &str, labels: &[&str]) -> Task {
        let mut t = Task::new("t", "T-1", title);
        t.body = body.to_owned();
        t.labels = labels.iter().map(|s| (*s).to_owned()).collect();
        t
    }

    fn outcome(needs_review: Option<bool>) -> RunOutcome {
        RunOutcome { needs_review, ..RunOutcome::default() }
    }

    #[test]
    fn every_default_keyword_matches_in_title_and_body() {
        let p = KeywordPolicy::default();
        for k in DEFAULT_KEYWORDS {
            assert!(
                p.needs_review(&task(&format!("Please {k} it"), "", &[]), &outcome(None)),
                "{k}"
            );
            assert!(
                p.needs_review(&task("Look", &format!("then {k}."), &[]), &outcome(None)),
                "{k}"
            );
        }
    }

    #[test]
    fn matching_is_case_insensitive() {
        let p = KeywordPolicy::default();
        assert!(p.needs_review(&task("WRITE the docs", "", &[]), &outcome(None)));
        assert!(p.needs_review(&task("Email Bob", "", &[]), &outcome(None)));
    }

    #[test]
    fn only_whole_words_match() {
        let p = KeywordPolicy::default();
        for title in
            ["Rewrite nothing", "Codex check", "Recreated index", "Reports-only", "scripted"]
        {
            let t = task(title, "", &[]);
            // "Reports-only" splits into "reports" and "only": "reports" is not "report".
            assert!(!p.needs_review(&t, &outcome(None)), "{title}");
        }
        assert!(p.needs_review(&task("fix (code) now", "", &[]), &outcome(None)));
        assert!(p.needs_review(&task("a-report-b", "", &[]), &outcome(None)));
    }

    #[test]
    fn no_keyword_means_done() {
        let p = KeywordPolicy::default();
        assert!(!p.needs_review(&task("Summarise the logs", "Look at them", &[]), &outcome(None)));
    }

    #[test]
    fn agent_decision_beats_keywords() {
        let p = KeywordPolicy::default();
        assert!(!p.needs_review(&task("Write a poem", "", &[]), &outcome(Some(false))));
        assert!(p.needs_review(&task("Summarise", "", &[]), &outcome(Some(true))));
    }

    #[test]
    fn labels_beat_everything() {
        let p = KeywordPolicy::default();
        assert!(p.needs_review(&task("Summarise", "", &["Needs-Review"]), &outcome(Some(false))));
        assert!(!p.needs_review(&task("Write code", "", &["auto-done"]), &outcome(Some(true))));
        assert!(p.needs_review(&task("x", "", &["auto-done", "needs-review"]), &outcome(None)));
    }

    #[test]
    fn keywords_and_labels_are_configurable() {
        let mut p = KeywordPolicy::with_keywords(["deploy", "pull request"]);
        assert!(p.needs_review(&task("Deploy prod", "", &[]), &outcome(None)));
        assert!(p.needs_review(&task("x", "open a Pull  Request", &[]), &outcome(None)));
        assert!(!p.needs_review(&task("Write code", "", &[]), &outcome(None)));
        p.force_labels = vec!["check".into()];
        p.skip_labels = vec!["trusted".into()];
        assert!(p.needs_review(&task("x", "", &["check"]), &outcome(None)));
        assert!(!p.needs_review(&task("deploy", "", &["trusted"]), &outcome(None)));
        assert!(!p.needs_review(&task("x", "", &["needs-review"]), &outcome(None)));
    }

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        let p: KeywordPolicy = serde_json::from_str(r#"{"keywords":["ship"]}"#).unwrap();
        assert_eq!(p.keywords, vec!["ship"]);
        assert_eq!(p.force_labels, vec!["needs-review"]);
        assert!(serde_json::from_str::<KeywordPolicy>(r#"{"kewords":[]}"#).is_err());
    }

    #[test]
    fn closures_are_policies() {
        let p = |t: &Task, _: &RunOutcome| t.title.len() > 3;
        assert!(p.needs_review(&task("long", "", &[]), &outcome(None)));
    }
}
