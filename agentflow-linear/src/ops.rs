//! The GraphQL operations this crate sends, as named constants.
//!
//! Every constant is validated against the vendored Linear schema (operation and variables) in
//! this module's tests, so a typo or a schema change fails `cargo test`, not production.
//! Ids in arguments are `String` (not `ID`) in Linear's schema, and filters are passed whole as
//! typed variables (`IssueFilter!`, `CommentFilter!`) so that one operation serves every caller.

/// The selection of an issue used everywhere a full [`Task`](agentflow_core::Task) is built.
macro_rules! issue_fragment {
    () => {
        "fragment AgentflowIssue on Issue {
  id
  identifier
  title
  description
  url
  priority
  createdAt
  updatedAt
  state { id name type }
  team { id key }
  labels(first: 20) { nodes { name } }
}
"
    };
}

/// The viewer (our own user, for own-comment detection) and the configured teams with their
/// workflow states. Sent once at start and again when a state id is no longer known.
pub const BOOTSTRAP: &str = "query AgentflowBootstrap($teamKeys: [String!]!) {
  viewer { id name }
  teams(filter: { key: { in: $teamKeys } }, first: 50) {
    nodes {
      id
      key
      name
      states(first: 100) { nodes { id name type position } }
    }
  }
}
";

/// One page of issues with everything a task needs: discovery, reconciliation and `get`.
pub const ISSUES: &str = concat!(
    "query AgentflowIssues($filter: IssueFilter!, $first: Int!, $after: String) {
  issues(filter: $filter, first: $first, after: $after, orderBy: createdAt) {
    nodes { ...AgentflowIssue }
    pageInfo { hasNextPage endCursor }
  }
}
",
    issue_fragment!()
);

/// One page of issue states only: `claim`'s re-read and the batched `statuses` look-up.
pub const ISSUE_STATES: &str =
    "query AgentflowIssueStates($filter: IssueFilter!, $first: Int!, $after: String) {
  issues(filter: $filter, first: $first, after: $after) {
    nodes { id identifier state { id name type } team { id key } }
    pageInfo { hasNextPage endCursor }
  }
}
";

/// One page of comments: feedback across all In Review issues, and one issue's thread.
pub const COMMENTS: &str =
    "query AgentflowComments($filter: CommentFilter!, $first: Int!, $after: String) {
  comments(filter: $filter, first: $first, after: $after, orderBy: createdAt) {
    nodes {
      id
      body
      createdAt
      user { id name displayName isMe }
      botActor { id name }
      issue { id identifier }
    }
    pageInfo { hasNextPage endCursor }
  }
}
";

/// Moves an issue to a workflow state.
pub const ISSUE_UPDATE_STATE: &str =
    "mutation AgentflowIssueUpdateState($id: String!, $stateId: String!) {
  issueUpdate(id: $id, input: { stateId: $stateId }) {
    success
    issue { id state { id name type } }
  }
}
";

/// Creates a comment on an issue, with an id chosen by us (a UUID v4), so that a create whose
/// answer was lost can be looked up ([`COMMENT`]) instead of being sent twice.
pub const COMMENT_CREATE: &str =
    "mutation AgentflowCommentCreate($id: String!, $issueId: String!, $body: String!) {
  commentCreate(input: { id: $id, issueId: $issueId, body: $body }) {
    success
    comment { id createdAt }
  }
}
";

/// Looks one comment up by id: the issue it is on.
pub const COMMENT: &str = "query AgentflowComment($id: String!) {
  comment(id: $id) { issue { id } }
}
";

/// Edits a comment's body in place.
pub const COMMENT_UPDATE: &str = "mutation AgentflowCommentUpdate($id: String!, $body: String!) {
  commentUpdate(id: $id, input: { body: $body }) {
    success
    comment { id }
  }
}
";

/// Every operation with its name, for tests and metrics.
pub const ALL: [(&str, &str); 8] = [
    ("AgentflowBootstrap", BOOTSTRAP),
    ("AgentflowIssues", ISSUES),
    ("AgentflowIssueStates", ISSUE_STATES),
    ("AgentflowComments", COMMENTS),
    ("AgentflowIssueUpdateState", ISSUE_UPDATE_STATE),
    ("AgentflowCommentCreate", COMMENT_CREATE),
    ("AgentflowCommentUpdate", COMMENT_UPDATE),
    ("AgentflowComment", COMMENT),
];

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};
    use serde_json::json;

    use super::*;

    fn schema() -> &'static Valid<Schema> {
        static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            Schema::parse_and_validate(crate::SCHEMA, "schema.graphql")
                .expect("the vendored Linear schema is valid")
        })
    }

    /// Parses and validates `op` against the schema and coerces `variables` to its types.
    fn check(name: &str, op: &str, variables: serde_json::Value) {
        let doc = ExecutableDocument::parse_and_validate(schema(), op, format!("{name}.graphql"))
            .unwrap_or_else(|e| panic!("{name} is not valid against the schema:\n{e}"));
        let operation = doc.operations.get(Some(name)).expect("operation named as its constant");
        let vars: apollo_compiler::response::JsonMap =
            serde::Deserialize::deserialize(variables).expect("variables are a JSON object");
        apollo_compiler::request::coerce_variable_values(schema(), operation, &vars)
            .unwrap_or_else(|e| panic!("{name}: variables rejected: {}", e.message()));
    }

    #[test]
    fn bootstrap_is_valid() {
        check("AgentflowBootstrap", BOOTSTRAP, json!({"teamKeys": ["ENG", "OPS"]}));
    }

    #[test]
    fn issues_is_valid_with_the_discovery_filter() {
        let filter = crate::filters::ready(&["ENG".into()], &["st-todo".into()], &["agent".into()]);
        check(
            "AgentflowIssues",
            ISSUES,
            json!({"filter": filter, "first": 50, "after": "cursor-1"}),
        );
        check(
            "AgentflowIssues",
            ISSUES,
            json!({"filter": crate::filters::by_ids(&["a"]), "first": 1}),
        );
    }

    #[test]
    fn issue_states_is_valid() {
        let filter = crate::filters::by_ids(&["a", "b"]);
        check("AgentflowIssueStates", ISSUE_STATES, json!({"filter": filter, "first": 2}));
    }

    #[test]
    fn comments_is_valid_with_the_feedback_filter() {
        let filter = crate::filters::feedback(
            &["ENG".into()],
            &["st-review".into()],
            "2026-01-01T00:00:00.000Z",
        );
        check("AgentflowComments", COMMENTS, json!({"filter": filter, "first": 100}));
        let filter = crate::filters::feedback(&["ENG".into()], &["st-review".into()], "-PT1H");
        check(
            "AgentflowComments",
            COMMENTS,
            json!({"filter": filter, "first": 100, "after": null}),
        );
        check(
            "AgentflowComments",
            COMMENTS,
            json!({"filter": crate::filters::issue_comments("issue-1"), "first": 20}),
        );
    }

    #[test]
    fn comment_lookup_is_valid() {
        check("AgentflowComment", COMMENT, json!({"id": "7f8e0c52-3d5b-4b8e-9b1a-0c2d3e4f5a6b"}));
    }

    #[test]
    fn mutations_are_valid() {
        check("AgentflowIssueUpdateState", ISSUE_UPDATE_STATE, json!({"id": "i", "stateId": "s"}));
        check(
            "AgentflowCommentCreate",
            COMMENT_CREATE,
            json!({"id": "7f8e0c52-3d5b-4b8e-9b1a-0c2d3e4f5a6b", "issueId": "i", "body": "hi"}),
        );
        check("AgentflowCommentUpdate", COMMENT_UPDATE, json!({"id": "c", "body": "hi"}));
    }

    #[test]
    fn validation_catches_mistakes() {
        // The check itself must be able to fail: an `ID!` variable where Linear takes `String!`.
        let bad = "mutation AgentflowCommentUpdate($id: ID!, $body: String!) {
          commentUpdate(id: $id, input: { body: $body }) { success }
        }";
        assert!(ExecutableDocument::parse_and_validate(schema(), bad, "bad.graphql").is_err());
        let unknown = "query Q { issues { nodes { nonexistentField } } }";
        assert!(ExecutableDocument::parse_and_validate(schema(), unknown, "bad.graphql").is_err());
    }

    #[test]
    fn every_operation_is_listed_and_named() {
        for (name, op) in ALL {
            let doc = ExecutableDocument::parse(schema(), op, "op.graphql").expect("parses");
            assert!(doc.operations.get(Some(name)).is_ok(), "{name} missing in its constant");
        }
    }
}
