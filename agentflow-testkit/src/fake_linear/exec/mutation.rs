//! The mutations the fake supports: `issueUpdate`, `commentCreate`, `commentUpdate`.

use apollo_compiler::resolvers::{FieldError, ResolveInfo, ResolvedValue};
use serde_json::{Map, Value};

use super::{Kind, Obj, err};
use crate::fake_linear::db::{FakeComment, FakeTransition};

impl<'a> Obj<'a> {
    pub(super) fn mutation(
        &self,
        field: &str,
        args: &Map<String, Value>,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let mut db = self.lock();
        let input = args.get("input").and_then(Value::as_object).cloned().unwrap_or_default();
        let id = args.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        match field {
            "issueUpdate" => {
                let team_id =
                    db.issue(&id).ok_or_else(|| err("Entity not found: Issue"))?.team_id.clone();
                if let Some(state_id) = input.get("stateId").and_then(Value::as_str) {
                    match db.state(state_id) {
                        Some(s) if s.team_id == team_id => {}
                        _ => {
                            return Err(err(
                                "Entity not found: WorkflowState - Could not find referenced WorkflowState.",
                            ));
                        }
                    }
                }
                let now = db.stamp();
                let transition = match input.get("stateId").and_then(Value::as_str) {
                    Some(to) => {
                        let issue = db.issue(&id).ok_or_else(|| err("Entity not found: Issue"))?;
                        let name =
                            |sid: &str| db.state(sid).map(|s| s.name.clone()).unwrap_or_default();
                        Some(FakeTransition {
                            issue_id: issue.id.clone(),
                            from: name(&issue.state_id),
                            to: name(to),
                            at: now,
                        })
                    }
                    None => None,
                };
                if let Some(t) = transition {
                    db.transitions.push(t);
                }
                let issue = db.issue_mut(&id).ok_or_else(|| err("Entity not found: Issue"))?;
                if let Some(s) = input.get("stateId").and_then(Value::as_str) {
                    issue.state_id = s.to_owned();
                }
                if let Some(t) = input.get("title").and_then(Value::as_str) {
                    issue.title = t.to_owned();
                }
                if let Some(d) = input.get("description").and_then(Value::as_str) {
                    issue.description = Some(d.to_owned());
                }
                if let Some(p) = input.get("priority").and_then(Value::as_f64) {
                    issue.priority = p;
                }
                issue.updated_at = now;
                let id = issue.id.clone();
                Ok(self.child(Kind::IssuePayload(id)))
            }
            "commentCreate" => {
                let issue_id = input.get("issueId").and_then(Value::as_str).unwrap_or_default();
                let issue_id =
                    db.issue(issue_id).ok_or_else(|| err("Entity not found: Issue"))?.id.clone();
                let body = input.get("body").and_then(Value::as_str).unwrap_or_default().to_owned();
                if body.trim().is_empty() {
                    return Err(err("Argument Validation Error - body should not be empty"));
                }
                // Linear takes a client-chosen id ("in UUID v4 format") and keeps ids unique.
                let cid = match input.get("id").and_then(Value::as_str) {
                    None => db.new_id("comment"),
                    Some(given) => {
                        if uuid::Uuid::parse_str(given).map(|u| u.get_version_num()) != Ok(4) {
                            return Err(err(format!(
                                "Argument Validation Error - id must be a UUID v4, got {given:?}"
                            )));
                        }
                        if db.comment(given).is_some() {
                            return Err(err(format!("Entity already exists: Comment {given}")));
                        }
                        given.to_owned()
                    }
                };
                let now = db.stamp();
                let user = Some(db.viewer_id.clone());
                db.comments.push(FakeComment {
                    id: cid.clone(),
                    issue_id,
                    body,
                    user_id: user,
                    bot_actor: None,
                    created_at: now,
                    updated_at: now,
                    edits: 0,
                });
                Ok(self.child(Kind::CommentPayload(cid)))
            }
            "commentUpdate" => {
                let viewer = db.viewer_id.clone();
                let now = db.stamp();
                let c = db
                    .comments
                    .iter_mut()
                    .find(|c| c.id == id)
                    .ok_or_else(|| err("Entity not found: Comment"))?;
                if c.user_id.as_deref() != Some(viewer.as_str()) {
                    return Err(err("Forbidden - You can only edit your own comments"));
                }
                if let Some(b) = input.get("body").and_then(Value::as_str) {
                    c.body = b.to_owned();
                }
                c.updated_at = now;
                c.edits += 1;
                Ok(self.child(Kind::CommentPayload(id)))
            }
            _ => Err(err(format!("fake-linear does not support Mutation.{}", info.field_name()))),
        }
    }
}
