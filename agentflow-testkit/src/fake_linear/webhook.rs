//! Signed Linear data-change webhooks (`EntityWebhookPayload`), as Linear sends them.

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::db::Db;

/// Hex HMAC-SHA256 of `body` with `secret`: the `Linear-Signature` header.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Posts `body` to `url` with `Linear-Signature: signature` (when given), like Linear does;
/// returns the HTTP status.
pub async fn post_webhook(
    url: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> Result<u16, String> {
    let client = reqwest::Client::new();
    let mut req = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("linear-delivery", format!("delivery-{:x}", fastrand::u64(..)))
        .header("user-agent", "Linear-Webhook");
    if let Some(sig) = signature {
        req = req.header("linear-signature", sig);
    }
    let resp = req.body(body).send().await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

fn envelope(
    action: &str,
    ty: &str,
    data: Value,
    updated_from: Option<Value>,
    url: String,
) -> Value {
    let now = Utc::now();
    let mut v = json!({
        "action": action,
        "type": ty,
        "createdAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
        "url": url,
        "organizationId": "org-fake",
        "webhookId": "webhook-fake",
        "webhookTimestamp": now.timestamp_millis(),
    });
    if let Some(from) = updated_from {
        v["updatedFrom"] = from;
    }
    v
}

/// An `Issue` `update` (or `create`) payload for the issue as it is now.
pub(crate) fn issue_payload(
    db: &Db,
    issue_id: &str,
    action: &str,
    previous_state: Option<&str>,
) -> Option<Value> {
    let i = db.issue(issue_id)?;
    let state = db.state(&i.state_id)?;
    let team = db.team(&i.team_id)?;
    let data = json!({
        "id": i.id,
        "identifier": i.identifier,
        "number": i.number,
        "title": i.title,
        "description": i.description,
        "priority": i.priority,
        "createdAt": i.created_at.to_rfc3339(),
        "updatedAt": i.updated_at.to_rfc3339(),
        "stateId": state.id,
        "state": {"id": state.id, "name": state.name, "type": state.kind, "color": "#bec2c8"},
        "teamId": team.id,
        "team": {"id": team.id, "key": team.key, "name": team.name},
        "labelIds": i.labels,
        "labels": i.labels.iter().map(|l| json!({"id": l, "name": l, "color": "#5e6ad2"})).collect::<Vec<_>>(),
        "url": format!("https://linear.app/fake/issue/{}", i.identifier),
    });
    let from =
        previous_state.map(|s| json!({"stateId": s, "updatedAt": i.updated_at.to_rfc3339()}));
    Some(envelope(
        action,
        "Issue",
        data,
        from,
        format!("https://linear.app/fake/issue/{}", i.identifier),
    ))
}

/// A `Comment` `create` payload.
pub(crate) fn comment_payload(db: &Db, comment_id: &str) -> Option<Value> {
    let c = db.comment(comment_id)?;
    let i = db.issue(&c.issue_id)?;
    let team = db.team(&i.team_id)?;
    let data = json!({
        "id": c.id,
        "body": c.body,
        "createdAt": c.created_at.to_rfc3339(),
        "updatedAt": c.updated_at.to_rfc3339(),
        "issueId": i.id,
        "issue": {
            "id": i.id, "identifier": i.identifier, "title": i.title, "teamId": team.id,
            "team": {"id": team.id, "key": team.key, "name": team.name},
            "url": format!("https://linear.app/fake/issue/{}", i.identifier),
        },
        "userId": c.user_id,
        "user": c.user_id.as_deref().and_then(|u| db.user(u)).map(|u| json!({"id": u.id, "name": u.name})),
        "botActor": c.bot_actor,
        "reactionData": {},
    });
    Some(envelope(
        "create",
        "Comment",
        data,
        None,
        format!("https://linear.app/fake/comment/{}", c.id),
    ))
}
