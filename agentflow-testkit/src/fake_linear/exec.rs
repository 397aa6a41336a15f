//! Resolvers: the fake's entities as GraphQL objects for apollo-compiler's executor.
//!
//! Each object is a kind plus ids; fields are read from the [`Db`] under its lock when they are
//! resolved, so queries and mutations see one consistent store.

use std::sync::Mutex;

use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonValue;
use serde_json::{Map, Value, json};

mod mutation;

use super::db::{Db, FakeComment};
use super::filter::{matches, paginate};

/// What a resolved object is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Query,
    Mutation,
    Issue(String),
    Comment(String),
    Team(String),
    State(String),
    User(String),
    Bot(String),
    Label(String),
    Conn { ty: &'static str, nodes: Vec<Kind>, has_next: bool, end_cursor: Option<String> },
    PageInfo { has_next: bool, end_cursor: Option<String> },
    IssuePayload(String),
    CommentPayload(String),
}

/// A GraphQL object backed by the fake's store.
pub(crate) struct Obj<'a> {
    pub(crate) db: &'a Mutex<Db>,
    pub(crate) kind: Kind,
}

fn err(message: impl Into<String>) -> FieldError {
    FieldError { message: message.into() }
}

fn leaf<'r>(v: Value) -> ResolvedValue<'r> {
    ResolvedValue::Leaf(serde_json::from_value::<JsonValue>(v).unwrap_or(JsonValue::Null))
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn args_of(info: &ResolveInfo<'_>) -> Map<String, Value> {
    match serde_json::to_value(info.arguments()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn filter_arg(args: &Map<String, Value>) -> Map<String, Value> {
    args.get("filter").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn page_args(args: &Map<String, Value>) -> (Option<i64>, Option<String>) {
    let first = args.get("first").and_then(Value::as_i64);
    let after = args.get("after").and_then(Value::as_str).map(str::to_owned);
    (first, after)
}

impl<'a> Obj<'a> {
    pub(crate) fn child(&self, kind: Kind) -> ResolvedValue<'a> {
        ResolvedValue::object(Obj { db: self.db, kind })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'a, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unknown(&self, info: &ResolveInfo<'_>) -> Result<ResolvedValue<'a>, FieldError> {
        if info.field_definition().ty.is_non_null() {
            Err(err(format!(
                "fake-linear does not implement {}.{}",
                self.type_name(),
                info.field_name()
            )))
        } else {
            Ok(ResolvedValue::null())
        }
    }
}

/// Issues passing `filter` (plus an optional fixed scope), ordered, one page.
fn issue_conn(db: &Db, args: &Map<String, Value>, scope: Option<&Value>) -> Result<Kind, String> {
    let mut filter = filter_arg(args);
    if let Some(Value::Object(s)) = scope {
        filter.extend(s.clone());
    }
    let mut hits = Vec::new();
    for issue in &db.issues {
        if matches(&db.issue_view(issue), &filter)? {
            hits.push(issue);
        }
    }
    if args.get("orderBy").and_then(Value::as_str) == Some("updatedAt") {
        hits.sort_by_key(|i| (i.updated_at, i.id.clone()));
    } else {
        hits.sort_by_key(|i| (i.created_at, i.id.clone()));
    }
    let (first, after) = page_args(args);
    let page = paginate(hits, |i| i.id.as_str(), first, after.as_deref())?;
    Ok(Kind::Conn {
        ty: "IssueConnection",
        nodes: page.items.iter().map(|i| Kind::Issue(i.id.clone())).collect(),
        has_next: page.has_next,
        end_cursor: page.end_cursor,
    })
}

/// Comments passing `filter` (plus an optional scope), oldest first, one page.
fn comment_conn(db: &Db, args: &Map<String, Value>, scope: Option<&Value>) -> Result<Kind, String> {
    let mut filter = filter_arg(args);
    if let Some(Value::Object(s)) = scope {
        filter.extend(s.clone());
    }
    let mut hits: Vec<&FakeComment> = Vec::new();
    for c in &db.comments {
        if matches(&db.comment_view(c), &filter)? {
            hits.push(c);
        }
    }
    hits.sort_by_key(|c| (c.created_at, c.id.clone()));
    let (first, after) = page_args(args);
    let page = paginate(hits, |c| c.id.as_str(), first, after.as_deref())?;
    Ok(Kind::Conn {
        ty: "CommentConnection",
        nodes: page.items.iter().map(|c| Kind::Comment(c.id.clone())).collect(),
        has_next: page.has_next,
        end_cursor: page.end_cursor,
    })
}

fn simple_conn(
    ty: &'static str,
    nodes: Vec<Kind>,
    args: &Map<String, Value>,
) -> Result<Kind, String> {
    let (first, after) = page_args(args);
    let ids: Vec<(String, Kind)> = nodes
        .into_iter()
        .map(|k| {
            let id = match &k {
                Kind::Team(i) | Kind::State(i) | Kind::Label(i) | Kind::User(i) => i.clone(),
                _ => String::new(),
            };
            (id, k)
        })
        .collect();
    let page = paginate(ids, |(id, _)| id.as_str(), first, after.as_deref())?;
    Ok(Kind::Conn {
        ty,
        nodes: page.items.into_iter().map(|(_, k)| k).collect(),
        has_next: page.has_next,
        end_cursor: page.end_cursor,
    })
}

fn team_conn(db: &Db, args: &Map<String, Value>) -> Result<Kind, String> {
    let filter = filter_arg(args);
    let mut nodes = Vec::new();
    for t in &db.teams {
        let view = json!({"id": t.id, "key": t.key, "name": t.name});
        if matches(&view, &filter)? {
            nodes.push(Kind::Team(t.id.clone()));
        }
    }
    simple_conn("TeamConnection", nodes, args)
}

fn state_conn(db: &Db, args: &Map<String, Value>, team: Option<&str>) -> Result<Kind, String> {
    let filter = filter_arg(args);
    let mut states: Vec<_> =
        db.states.iter().filter(|s| team.is_none_or(|t| s.team_id == t)).collect();
    states.sort_by(|a, b| a.position.total_cmp(&b.position));
    let mut nodes = Vec::new();
    for s in states {
        let view = json!({
            "id": s.id, "name": s.name, "type": s.kind, "position": s.position,
            "team": db.team(&s.team_id).map(|t| json!({"id": t.id, "key": t.key, "name": t.name})),
        });
        if matches(&view, &filter)? {
            nodes.push(Kind::State(s.id.clone()));
        }
    }
    simple_conn("WorkflowStateConnection", nodes, args)
}

impl ObjectValue for Obj<'_> {
    fn type_name(&self) -> &str {
        match &self.kind {
            Kind::Query => "Query",
            Kind::Mutation => "Mutation",
            Kind::Issue(_) => "Issue",
            Kind::Comment(_) => "Comment",
            Kind::Team(_) => "Team",
            Kind::State(_) => "WorkflowState",
            Kind::User(_) => "User",
            Kind::Bot(_) => "ActorBot",
            Kind::Label(_) => "IssueLabel",
            Kind::Conn { ty, .. } => ty,
            Kind::PageInfo { .. } => "PageInfo",
            Kind::IssuePayload(_) => "IssuePayload",
            Kind::CommentPayload(_) => "CommentPayload",
        }
    }

    fn resolve_field<'b>(
        &'b self,
        info: &'b ResolveInfo<'b>,
    ) -> Result<ResolvedValue<'b>, FieldError> {
        let field = info.field_name();
        let args = args_of(info);
        match &self.kind {
            Kind::Query => self.query(field, &args, info),
            Kind::Mutation => self.mutation(field, &args, info),
            Kind::Issue(id) => self.issue(id, field, &args, info),
            Kind::Comment(id) => self.comment(id, field, info),
            Kind::Team(id) => {
                let db = self.lock();
                let team = db.team(id).ok_or_else(|| err("Entity not found: Team"))?;
                match field {
                    "id" => Ok(leaf(json!(team.id))),
                    "key" => Ok(leaf(json!(team.key))),
                    "name" => Ok(leaf(json!(team.name))),
                    "states" => Ok(self.child(state_conn(&db, &args, Some(id)).map_err(err)?)),
                    "issues" => {
                        let scope = json!({"team": {"id": {"eq": id}}});
                        Ok(self.child(issue_conn(&db, &args, Some(&scope)).map_err(err)?))
                    }
                    _ => self.unknown(info),
                }
            }
            Kind::State(id) => {
                let db = self.lock();
                let s = db.state(id).ok_or_else(|| err("Entity not found: WorkflowState"))?;
                match field {
                    "id" => Ok(leaf(json!(s.id))),
                    "name" => Ok(leaf(json!(s.name))),
                    "type" => Ok(leaf(json!(s.kind))),
                    "position" => Ok(leaf(json!(s.position))),
                    "color" => Ok(leaf(json!("#bec2c8"))),
                    "team" => Ok(self.child(Kind::Team(s.team_id.clone()))),
                    _ => self.unknown(info),
                }
            }
            Kind::User(id) => {
                let db = self.lock();
                let u = db.user(id).ok_or_else(|| err("Entity not found: User"))?;
                match field {
                    "id" => Ok(leaf(json!(u.id))),
                    "name" => Ok(leaf(json!(u.name))),
                    "displayName" => Ok(leaf(json!(u.display_name))),
                    "email" => Ok(leaf(json!(format!("{}@example.com", u.display_name)))),
                    "isMe" => Ok(leaf(json!(u.id == db.viewer_id))),
                    "active" => Ok(leaf(json!(true))),
                    "admin" | "app" | "guest" => Ok(leaf(json!(false))),
                    _ => self.unknown(info),
                }
            }
            Kind::Bot(name) => match field {
                "id" => Ok(leaf(json!(format!("bot-{name}")))),
                "name" | "userDisplayName" => Ok(leaf(json!(name))),
                "type" => Ok(leaf(json!("app"))),
                _ => self.unknown(info),
            },
            Kind::Label(name) => match field {
                "id" | "name" => Ok(leaf(json!(name))),
                "color" => Ok(leaf(json!("#5e6ad2"))),
                _ => self.unknown(info),
            },
            Kind::Conn { nodes, has_next, end_cursor, .. } => match field {
                "nodes" => Ok(ResolvedValue::list(nodes.iter().map(|k| self.child(k.clone())))),
                "pageInfo" => Ok(self
                    .child(Kind::PageInfo { has_next: *has_next, end_cursor: end_cursor.clone() })),
                _ => self.unknown(info),
            },
            Kind::PageInfo { has_next, end_cursor } => match field {
                "hasNextPage" => Ok(leaf(json!(has_next))),
                "hasPreviousPage" => Ok(leaf(json!(false))),
                "endCursor" => Ok(leaf(json!(end_cursor))),
                "startCursor" => Ok(ResolvedValue::null()),
                _ => self.unknown(info),
            },
            Kind::IssuePayload(id) => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(1.0))),
                "issue" => Ok(self.child(Kind::Issue(id.clone()))),
                _ => self.unknown(info),
            },
            Kind::CommentPayload(id) => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(1.0))),
                "comment" => Ok(self.child(Kind::Comment(id.clone()))),
                _ => self.unknown(info),
            },
        }
    }
}

impl<'a> Obj<'a> {
    fn query(
        &self,
        field: &str,
        args: &Map<String, Value>,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let db = self.lock();
        let arg_str = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        match field {
            "viewer" => Ok(self.child(Kind::User(db.viewer_id.clone()))),
            "issues" => Ok(self.child(issue_conn(&db, args, None).map_err(err)?)),
            "comments" => Ok(self.child(comment_conn(&db, args, None).map_err(err)?)),
            "teams" => Ok(self.child(team_conn(&db, args).map_err(err)?)),
            "workflowStates" => Ok(self.child(state_conn(&db, args, None).map_err(err)?)),
            "issue" => {
                let issue =
                    db.issue(&arg_str("id")).ok_or_else(|| err("Entity not found: Issue"))?;
                Ok(self.child(Kind::Issue(issue.id.clone())))
            }
            "comment" => {
                let c =
                    db.comment(&arg_str("id")).ok_or_else(|| err("Entity not found: Comment"))?;
                Ok(self.child(Kind::Comment(c.id.clone())))
            }
            "team" => {
                let id = arg_str("id");
                let t = db
                    .team(&id)
                    .or_else(|| db.team_by_key(&id))
                    .ok_or_else(|| err("Entity not found: Team"))?;
                Ok(self.child(Kind::Team(t.id.clone())))
            }
            "workflowState" => {
                let s = db
                    .state(&arg_str("id"))
                    .ok_or_else(|| err("Entity not found: WorkflowState"))?;
                Ok(self.child(Kind::State(s.id.clone())))
            }
            _ => Err(err(format!("fake-linear does not support Query.{}", info.field_name()))),
        }
    }

    fn issue(
        &self,
        id: &str,
        field: &str,
        args: &Map<String, Value>,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let db = self.lock();
        let i = db.issue(id).ok_or_else(|| err("Entity not found: Issue"))?;
        let team_key = db.team(&i.team_id).map(|t| t.key.clone()).unwrap_or_default();
        match field {
            "id" => Ok(leaf(json!(i.id))),
            "identifier" => Ok(leaf(json!(i.identifier))),
            "number" => Ok(leaf(json!(i.number as f64))),
            "title" => Ok(leaf(json!(i.title))),
            "description" => Ok(leaf(json!(i.description))),
            "priority" => Ok(leaf(json!(i.priority))),
            "priorityLabel" => Ok(leaf(json!(
                ["No priority", "Urgent", "High", "Medium", "Low"]
                    .get(i.priority as usize)
                    .copied()
                    .unwrap_or("No priority")
            ))),
            "url" => Ok(leaf(json!(format!("https://linear.app/fake/issue/{}", i.identifier)))),
            "branchName" => Ok(leaf(json!(format!("{}-{}", team_key.to_lowercase(), i.number)))),
            "createdAt" => Ok(leaf(ts(i.created_at))),
            "updatedAt" => Ok(leaf(ts(i.updated_at))),
            "labelIds" => Ok(leaf(json!(i.labels))),
            "state" => Ok(self.child(Kind::State(i.state_id.clone()))),
            "team" => Ok(self.child(Kind::Team(i.team_id.clone()))),
            "labels" => {
                let nodes = i.labels.iter().map(|l| Kind::Label(l.clone())).collect();
                Ok(self.child(simple_conn("IssueLabelConnection", nodes, args).map_err(err)?))
            }
            "comments" => {
                let scope = json!({"issue": {"id": {"eq": i.id}}});
                Ok(self.child(comment_conn(&db, args, Some(&scope)).map_err(err)?))
            }
            _ => self.unknown(info),
        }
    }

    fn comment(
        &self,
        id: &str,
        field: &str,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let db = self.lock();
        let c = db.comment(id).ok_or_else(|| err("Entity not found: Comment"))?;
        match field {
            "id" => Ok(leaf(json!(c.id))),
            "body" => Ok(leaf(json!(c.body))),
            "createdAt" => Ok(leaf(ts(c.created_at))),
            "updatedAt" => Ok(leaf(ts(c.updated_at))),
            "editedAt" => Ok(leaf(if c.edits > 0 { ts(c.updated_at) } else { Value::Null })),
            "issueId" => Ok(leaf(json!(c.issue_id))),
            "url" => Ok(leaf(json!(format!("https://linear.app/fake/comment/{}", c.id)))),
            "user" => Ok(match &c.user_id {
                Some(u) => self.child(Kind::User(u.clone())),
                None => ResolvedValue::null(),
            }),
            "botActor" => Ok(match &c.bot_actor {
                Some(b) => self.child(Kind::Bot(b.clone())),
                None => ResolvedValue::null(),
            }),
            "issue" => Ok(self.child(Kind::Issue(c.issue_id.clone()))),
            _ => self.unknown(info),
        }
    }
}
