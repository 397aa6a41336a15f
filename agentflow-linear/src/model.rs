//! Typed answers of the operations in [`ops`](crate::ops).

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub(crate) has_next_page: bool,
    pub(crate) end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection<T> {
    pub(crate) nodes: Vec<T>,
    #[serde(default = "no_more")]
    pub(crate) page_info: PageInfo,
}

fn no_more() -> PageInfo {
    PageInfo { has_next_page: false, end_cursor: None }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StateRef {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TeamRef {
    pub(crate) id: String,
    pub(crate) key: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Viewer {
    pub(crate) id: String,
    pub(crate) name: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WorkflowState {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) position: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Team {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) states: Connection<WorkflowState>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Bootstrap {
    pub(crate) viewer: Viewer,
    pub(crate) teams: Connection<Team>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LabelName {
    pub(crate) name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Issue {
    pub(crate) id: String,
    pub(crate) identifier: String,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) url: String,
    pub(crate) priority: f64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) state: StateRef,
    pub(crate) team: TeamRef,
    pub(crate) labels: Connection<LabelName>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Issues {
    pub(crate) issues: Connection<Issue>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IssueState {
    pub(crate) id: String,
    pub(crate) state: StateRef,
    pub(crate) team: TeamRef,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IssueStates {
    pub(crate) issues: Connection<IssueState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentUser {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) is_me: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BotActor {
    pub(crate) name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IssueRef {
    pub(crate) id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Comment {
    pub(crate) id: String,
    pub(crate) body: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) user: Option<CommentUser>,
    pub(crate) bot_actor: Option<BotActor>,
    pub(crate) issue: Option<IssueRef>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Comments {
    pub(crate) comments: Connection<Comment>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IssuePayload {
    pub(crate) success: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IssueUpdate {
    pub(crate) issue_update: IssuePayload,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentId {
    pub(crate) id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentPayload {
    pub(crate) success: bool,
    pub(crate) comment: CommentId,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentCreate {
    pub(crate) comment_create: CommentPayload,
}

/// `comment(id:)`: the comment and the issue it is on.
#[derive(Debug, Deserialize)]
pub(crate) struct CommentLookup {
    pub(crate) comment: CommentOnIssue,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentOnIssue {
    pub(crate) issue: Option<CommentId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentUpdate {
    pub(crate) comment_update: CommentPayload,
}
