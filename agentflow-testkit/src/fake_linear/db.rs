//! The fake's in-memory data: users, teams, workflow states, issues and comments.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A user of the fake workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeUser {
    /// Stable id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Display name.
    pub display_name: String,
}

/// A team with its key (`ENG`).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTeam {
    /// Stable id.
    pub id: String,
    /// Key used in identifiers.
    pub key: String,
    /// Name.
    pub name: String,
}

/// A workflow state of a team.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeState {
    /// Stable id.
    pub id: String,
    /// The team it belongs to.
    pub team_id: String,
    /// Name ("Todo").
    pub name: String,
    /// Linear's state type ("unstarted", "started", "completed", …).
    pub kind: String,
    /// Board position.
    pub position: f64,
}

/// An issue.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeIssue {
    /// Stable id (a UUID-like string).
    pub id: String,
    /// The team.
    pub team_id: String,
    /// Number within the team (`ENG-<number>`).
    pub number: u64,
    /// `ENG-12`.
    pub identifier: String,
    /// Title.
    pub title: String,
    /// Description (Markdown).
    pub description: Option<String>,
    /// Current workflow state.
    pub state_id: String,
    /// Linear priority (0 none … 4 low).
    pub priority: f64,
    /// Label names.
    pub labels: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A comment on an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeComment {
    /// Stable id.
    pub id: String,
    /// The issue commented on.
    pub issue_id: String,
    /// Markdown body.
    pub body: String,
    /// The author, `None` for comments made by an app actor.
    pub user_id: Option<String>,
    /// The app (bot) that wrote it, if any.
    pub bot_actor: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub updated_at: DateTime<Utc>,
    /// How many times it was edited (`commentUpdate`).
    pub edits: u32,
}

/// A state change of an issue made through the GraphQL API (by the client under test).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTransition {
    /// The issue.
    pub issue_id: String,
    /// Name of the state it left.
    pub from: String,
    /// Name of the state it entered (the same as `from` when the client re-set the state).
    pub to: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Everything the fake knows.
#[derive(Debug, Default)]
pub(crate) struct Db {
    pub(crate) viewer_id: String,
    pub(crate) users: Vec<FakeUser>,
    pub(crate) teams: Vec<FakeTeam>,
    pub(crate) states: Vec<FakeState>,
    pub(crate) issues: Vec<FakeIssue>,
    pub(crate) comments: Vec<FakeComment>,
    /// Every state change made through the GraphQL API (`issueUpdate`), oldest first.
    pub(crate) transitions: Vec<FakeTransition>,
    /// The last time handed out, so stamps are strictly increasing (cursors compare with `gt`).
    pub(crate) last_stamp: Option<DateTime<Utc>>,
    pub(crate) next_id: u64,
}

/// The default workflow of a team: Linear's usual states plus "In Review" and "Failed".
pub(crate) const DEFAULT_STATES: [(&str, &str); 8] = [
    ("Triage", "triage"),
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
    ("Failed", "canceled"),
    ("Canceled", "canceled"),
];

impl Db {
    /// A fresh id with a readable prefix, shaped like Linear's UUIDs.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:08x}-{:04x}", self.next_id, fastrand::u16(..))
    }

    /// Now, strictly after every stamp handed out before.
    pub(crate) fn stamp(&mut self) -> DateTime<Utc> {
        let mut now = Utc::now();
        if let Some(last) = self.last_stamp
            && now <= last
        {
            now = last + chrono::Duration::milliseconds(1);
        }
        self.last_stamp = Some(now);
        now
    }

    pub(crate) fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(crate) fn team(&self, id: &str) -> Option<&FakeTeam> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub(crate) fn team_by_key(&self, key: &str) -> Option<&FakeTeam> {
        self.teams.iter().find(|t| t.key.eq_ignore_ascii_case(key))
    }

    pub(crate) fn state(&self, id: &str) -> Option<&FakeState> {
        self.states.iter().find(|s| s.id == id)
    }

    pub(crate) fn state_by_name(&self, team_id: &str, name: &str) -> Option<&FakeState> {
        self.states.iter().find(|s| s.team_id == team_id && s.name.eq_ignore_ascii_case(name))
    }

    /// An issue by id or identifier (`ENG-12`), as Linear's `issue(id:)` accepts both.
    pub(crate) fn issue(&self, id: &str) -> Option<&FakeIssue> {
        self.issues.iter().find(|i| i.id == id || i.identifier.eq_ignore_ascii_case(id))
    }

    pub(crate) fn issue_mut(&mut self, id: &str) -> Option<&mut FakeIssue> {
        self.issues.iter_mut().find(|i| i.id == id || i.identifier.eq_ignore_ascii_case(id))
    }

    pub(crate) fn comment(&self, id: &str) -> Option<&FakeComment> {
        self.comments.iter().find(|c| c.id == id)
    }

    pub(crate) fn add_team(&mut self, key: &str, states: &[(&str, &str)]) -> String {
        let id = self.new_id("team");
        self.teams.push(FakeTeam {
            id: id.clone(),
            key: key.to_owned(),
            name: format!("Team {key}"),
        });
        for (pos, (name, kind)) in states.iter().enumerate() {
            let sid = self.new_id("state");
            self.states.push(FakeState {
                id: sid,
                team_id: id.clone(),
                name: (*name).to_owned(),
                kind: (*kind).to_owned(),
                position: pos as f64,
            });
        }
        id
    }

    /// The JSON view of a user that filters run against.
    pub(crate) fn user_view(&self, id: &str) -> Value {
        match self.user(id) {
            Some(u) => json!({
                "id": u.id, "name": u.name, "displayName": u.display_name,
                "isMe": u.id == self.viewer_id, "active": true, "admin": false, "app": false,
            }),
            None => Value::Null,
        }
    }

    /// The JSON view of an issue that filters run against.
    pub(crate) fn issue_view(&self, issue: &FakeIssue) -> Value {
        let team = self.team(&issue.team_id);
        let state = self.state(&issue.state_id);
        json!({
            "id": issue.id,
            "identifier": issue.identifier,
            "number": issue.number,
            "title": issue.title,
            "description": issue.description,
            "priority": issue.priority,
            "createdAt": issue.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "updatedAt": issue.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "team": team.map(|t| json!({"id": t.id, "key": t.key, "name": t.name})),
            "state": state.map(|s| json!({
                "id": s.id, "name": s.name, "type": s.kind, "position": s.position,
            })),
            "labels": issue.labels.iter().map(|l| json!({"id": l, "name": l})).collect::<Vec<_>>(),
        })
    }

    /// The JSON view of a comment that filters run against.
    pub(crate) fn comment_view(&self, c: &FakeComment) -> Value {
        json!({
            "id": c.id,
            "body": c.body,
            "createdAt": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "updatedAt": c.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "user": c.user_id.as_deref().map(|u| self.user_view(u)).unwrap_or(Value::Null),
            "issue": self.issue(&c.issue_id).map(|i| self.issue_view(i)).unwrap_or(Value::Null),
        })
    }
}
