//! Webhook verification and the events it feeds into `TaskSource::watch`.

#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use agentflow_core::{SourceEvent, TaskId, TaskSource, TaskStatus};
use agentflow_linear::LinearSource;
use agentflow_testkit::fake_linear::{self, CommentAuthor, FakeLinear, NewIssue};
use futures::StreamExt;
use futures::stream::BoxStream;

const SECRET: &str = "lin_wh_test_secret";

struct Hooked {
    fake: FakeLinear,
    source: LinearSource,
    url: String,
    events: BoxStream<'static, SourceEvent>,
}

async fn setup() -> Hooked {
    let (fake, source) = support::setup().await;
    assert!(source.watch().is_none(), "no stream until webhooks are enabled");
    let router = source.webhooks(SECRET.to_owned().into()).router("/webhooks/linear");
    let events = source.watch().expect("webhooks enabled");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/linear", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Hooked { fake, source, url, events }
}

async fn next_event(events: &mut BoxStream<'static, SourceEvent>) -> SourceEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("stream open")
}

#[tokio::test]
async fn a_verified_move_to_todo_wakes_the_engine() {
    let mut h = setup().await;
    let issue = h.fake.create_issue(NewIssue::new("ENG", "from backlog").state("Backlog"));
    let previous = h.fake.move_issue(&issue.id, "Todo");
    let payload = h.fake.issue_webhook(&issue.id, "update", Some(&previous));
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &payload).await.unwrap(), 200);
    assert_eq!(next_event(&mut h.events).await, SourceEvent::TaskReady(TaskId(issue.id.clone())));

    // A human moving it on is a status change.
    let previous = h.fake.move_issue(&issue.id, "Canceled");
    let payload = h.fake.issue_webhook(&issue.id, "update", Some(&previous));
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &payload).await.unwrap(), 200);
    assert_eq!(
        next_event(&mut h.events).await,
        SourceEvent::StatusChanged(TaskId(issue.id), TaskStatus::Other)
    );
}

#[tokio::test]
async fn forged_stale_and_tampered_deliveries_are_refused() {
    let mut h = setup().await;
    let issue = h.fake.create_issue(NewIssue::new("ENG", "target").state("Backlog"));
    let previous = h.fake.move_issue(&issue.id, "Todo");
    let payload = h.fake.issue_webhook(&issue.id, "update", Some(&previous));

    // Wrong secret.
    assert_eq!(h.fake.send_webhook(&h.url, "not-the-secret", &payload).await.unwrap(), 401);
    // No signature at all.
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(fake_linear::post_webhook(&h.url, body.clone(), None).await.unwrap(), 401);
    // Tampered body: signed, then changed.
    let sig = fake_linear::sign(SECRET, &body);
    let tampered = String::from_utf8(body.clone()).unwrap().replace("target", "TARGET");
    assert_ne!(tampered.as_bytes(), &body[..]);
    assert_eq!(
        fake_linear::post_webhook(&h.url, tampered.into_bytes(), Some(&sig)).await.unwrap(),
        401
    );
    // Stale timestamp, correctly signed (a replay).
    let mut stale = payload.clone();
    stale["webhookTimestamp"] = (chrono::Utc::now().timestamp_millis() - 120_000).into();
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &stale).await.unwrap(), 400);
    let mut future = payload.clone();
    future["webhookTimestamp"] = (chrono::Utc::now().timestamp_millis() + 120_000).into();
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &future).await.unwrap(), 400);

    // None of them produced an event: the first one out is the valid delivery's.
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &payload).await.unwrap(), 200);
    assert_eq!(next_event(&mut h.events).await, SourceEvent::TaskReady(TaskId(issue.id)));
}

#[tokio::test]
async fn human_comments_on_in_review_issues_are_events_and_ours_are_not() {
    let mut h = setup().await;
    let review = h.fake.create_issue(NewIssue::new("ENG", "review me"));
    let working = h.fake.create_issue(NewIssue::new("ENG", "still working").state("In Progress"));
    h.source.set_status(&TaskId(review.id.clone()), TaskStatus::InReview).await.unwrap();

    let human = CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned());
    let ours = h.fake.add_comment(&review.id, CommentAuthor::Viewer, "agentflow: done");
    let bot = h.fake.add_comment(&review.id, CommentAuthor::Bot("agentflow".into()), "bot");
    let elsewhere = h.fake.add_comment(&working.id, human.clone(), "not in review");
    for c in [&ours, &bot, &elsewhere] {
        let payload = h.fake.comment_webhook(&c.id);
        assert_eq!(h.fake.send_webhook(&h.url, SECRET, &payload).await.unwrap(), 200);
    }
    let theirs = h.fake.add_comment(&review.id, human, "please also handle errors");
    let payload = h.fake.comment_webhook(&theirs.id);
    assert_eq!(h.fake.send_webhook(&h.url, SECRET, &payload).await.unwrap(), 200);
    assert_eq!(next_event(&mut h.events).await, SourceEvent::Comment(TaskId(review.id)));
}

#[tokio::test]
async fn issues_of_other_teams_and_unlabelled_issues_are_ignored() {
    let fake = FakeLinear::start().await;
    fake.add_team("OPS");
    let mut config = support::config(&fake);
    config.labels = vec!["agent".into()];
    let source = LinearSource::connect(config).await.unwrap();
    let hooks = source.webhooks(SECRET.to_owned().into());

    let other = fake.create_issue(NewIssue::new("OPS", "not ours").label("agent"));
    let unlabelled = fake.create_issue(NewIssue::new("ENG", "no label"));
    let labelled = fake.create_issue(NewIssue::new("ENG", "labelled").label("agent"));
    assert!(hooks.events(&fake.issue_webhook(&other.id, "create", None)).await.is_empty());
    assert!(hooks.events(&fake.issue_webhook(&unlabelled.id, "create", None)).await.is_empty());
    assert_eq!(
        hooks.events(&fake.issue_webhook(&labelled.id, "create", None)).await,
        [SourceEvent::TaskReady(TaskId(labelled.id.clone()))]
    );
    // An update that did not move the issue is not an event.
    assert!(hooks.events(&fake.issue_webhook(&labelled.id, "update", None)).await.is_empty());
}

#[tokio::test]
async fn the_fake_delivers_signed_webhooks_for_changes_made_through_its_admin_api() {
    let mut h = setup().await;
    h.fake.deliver_webhooks(Some((&h.url, SECRET)));
    let admin = format!("http://{}/admin", h.fake.addr());
    let http = reqwest::Client::new();

    let created: serde_json::Value = http
        .post(format!("{admin}/issues"))
        .json(&serde_json::json!({"title": "by hand", "state": "Backlog", "labels": ["agent"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["state"], "Backlog");
    // Created in Backlog: a status change, not a ready task.
    assert_eq!(
        next_event(&mut h.events).await,
        SourceEvent::StatusChanged(TaskId(id.clone()), TaskStatus::Other)
    );

    let key = created["identifier"].as_str().unwrap();
    let moved = http
        .post(format!("{admin}/issues/{key}/state"))
        .json(&serde_json::json!({"state": "Todo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(next_event(&mut h.events).await, SourceEvent::TaskReady(TaskId(id.clone())));
    assert_eq!(h.source.ready(10).await.unwrap()[0].id, TaskId(id.clone()));

    let refused = http
        .post(format!("{admin}/issues/{key}/state"))
        .json(&serde_json::json!({"state": "Nowhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let listed: serde_json::Value =
        http.get(format!("{admin}/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["AgentflowIssues"], 1);
}
