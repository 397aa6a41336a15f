//! The GraphQL filter inputs ([`IssueFilter`], `CommentFilter`) sent as variables.
//!
//! [`IssueFilter`]: https://studio.apollographql.com/public/Linear-API/variant/current/schema/reference/inputs/IssueFilter

use serde_json::{Value, json};

/// Todo issues of `teams`, optionally carrying one of `labels`: the discovery filter.
pub(crate) fn ready(teams: &[String], state_ids: &[String], labels: &[String]) -> Value {
    let mut filter = by_states(teams, state_ids);
    if !labels.is_empty() {
        filter["labels"] = json!({ "some": { "name": { "in": labels } } });
    }
    filter
}

/// Issues of `teams` in one of `state_ids`.
pub(crate) fn by_states(teams: &[String], state_ids: &[String]) -> Value {
    json!({
        "team": { "key": { "in": teams } },
        "state": { "id": { "in": state_ids } },
    })
}

/// Issues with one of `ids`.
pub(crate) fn by_ids<S: AsRef<str>>(ids: &[S]) -> Value {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    json!({ "id": { "in": ids } })
}

/// Comments by someone other than us, created after `after` (an ISO-8601 time or a negative
/// duration such as `-PT1H`), on issues of `teams` in one of `state_ids`: the feedback filter.
pub(crate) fn feedback(teams: &[String], state_ids: &[String], after: &str) -> Value {
    json!({
        "issue": {
            "team": { "key": { "in": teams } },
            "state": { "id": { "in": state_ids } },
        },
        "createdAt": { "gt": after },
        "user": { "isMe": { "eq": false } },
    })
}

/// Every comment on one issue.
pub(crate) fn issue_comments(issue_id: &str) -> Value {
    json!({ "issue": { "id": { "eq": issue_id } } })
}
