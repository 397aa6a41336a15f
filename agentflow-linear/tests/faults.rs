//! Every fault switch of the fake Linear, and how LinearSource answers it.

#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use agentflow_core::{Error, Report, ReportKind, TaskId, TaskSource};
use agentflow_linear::{LinearConfig, LinearSource};
use agentflow_testkit::fake_linear::{FakeLinear, NewIssue};
use serde_json::{Value, json};

#[tokio::test]
async fn auth_failures_are_clear_and_not_retried() {
    let (fake, source) = support::setup().await;
    fake.set_auth_failure(Some(401));
    let err = source.ready(5).await.unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidConfig { ref key, .. } if key == "linear.api_key"),
        "{text}"
    );
    assert!(text.contains("API key") && text.contains("401"), "{text}");
    assert_eq!(fake.total_requests(), 1, "an auth failure is not retried");

    let mut config = LinearConfig::with_oauth_token(FakeLinear::OAUTH_TOKEN, &["ENG"]);
    config.api_url = fake.url();
    fake.set_auth_failure(Some(403));
    let err = LinearSource::connect(config).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { ref key, .. } if key == "linear.oauth_token"),
        "{err}"
    );
    assert!(err.to_string().contains("OAuth token") && err.to_string().contains("403"), "{err}");

    fake.set_auth_failure(None);
    source.ready(5).await.expect("healed");
}

#[tokio::test]
async fn ratelimited_answers_pause_requests_until_the_window_resets() {
    let (fake, source) = support::setup().await;
    source.ready(1).await.unwrap();
    let budget = source.rate_limit();
    assert_eq!(budget.requests_limit, Some(1500));
    assert!(budget.requests_remaining.is_some() && budget.requests_reset.is_some(), "{budget:?}");
    assert!(budget.complexity_remaining.is_some(), "{budget:?}");

    fake.rate_limit_after(2, Duration::from_secs(3));
    source.ready(1).await.unwrap();
    source.ready(1).await.unwrap();
    let err = source.ready(1).await.unwrap_err();
    let Error::RateLimited { retry_after: Some(wait), ref message, .. } = err else {
        panic!("expected RateLimited with a retry_after, got {err}");
    };
    assert!(wait <= Duration::from_secs(3), "{wait:?}");
    assert!(message.contains("Rate limit exceeded"), "Linear's message is kept: {message}");
    assert!(err.is_retryable());
    assert_eq!(source.rate_limit().requests_remaining, Some(0));
    assert!(source.rate_limit().paused_until.is_some());

    // While paused, nothing reaches Linear.
    let sent = fake.total_requests();
    let err = source.ready(1).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(_), .. }), "{err}");
    assert_eq!(fake.total_requests(), sent, "no request while paused");

    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    source.ready(1).await.expect("the window has reset");
    assert!(source.request_stats().rate_limited >= 2);
}

#[tokio::test]
async fn http_429_honours_retry_after() {
    let (fake, source) = support::setup().await;
    fake.too_many_requests(1, Duration::from_secs(2));
    let err = source.ready(1).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)), "{err}");
    assert_eq!(fake.total_requests(), 1, "a 429 is not retried blindly");
    assert!(source.ready(1).await.is_err(), "still paused");
    assert_eq!(fake.total_requests(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    source.ready(1).await.expect("after retry-after");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let (fake, source) = support::setup().await;
    fake.create_issue(NewIssue::new("ENG", "x"));
    fake.server_errors(2, 503);
    assert_eq!(source.ready(5).await.expect("third attempt succeeds").len(), 1);
    assert_eq!(fake.requests("AgentflowIssues"), 3);
    assert_eq!(source.request_stats().retries, 2);

    fake.reset_requests();
    fake.server_errors(100, 500);
    let err = source.ready(5).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { service: "linear", .. }), "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(fake.total_requests(), 4, "1 attempt + max_retries (3)");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let fake = FakeLinear::start().await;
    let mut config = support::config(&fake);
    config.request_timeout = Duration::from_secs(1);
    config.max_retries = 1;
    let source = LinearSource::connect(config).await.unwrap();
    fake.reset_requests();

    fake.slow_responses(1, Duration::from_secs(3));
    source.ready(1).await.expect("the retry is fast");
    assert_eq!(fake.total_requests(), 2);

    fake.slow_responses(2, Duration::from_secs(3));
    let err = source.ready(1).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn graphql_errors_keep_linear_s_message() {
    let (fake, source) = support::setup().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "x"));
    let empty = Report { run: "r".into(), kind: ReportKind::Summary, body: "   ".into() };
    let err = source.report(&TaskId(issue.id), &empty).await.unwrap_err();
    assert!(matches!(err, Error::Backend { retryable: false, .. }), "{err}");
    assert!(err.to_string().contains("body should not be empty"), "{err}");

    let summary = Report { run: "r".into(), kind: ReportKind::Summary, body: "hi".into() };
    let err = source.report(&TaskId("no-such-issue".into()), &summary).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

async fn post(fake: &FakeLinear, auth: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(fake.url())
        .header("authorization", auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_fake_validates_every_operation_against_the_schema() {
    let fake = FakeLinear::start().await;
    let bad_field = json!({"query": "query Q { viewer { id nonexistent } }", "operationName": "Q"});
    let (status, body) = post(&fake, FakeLinear::API_KEY, bad_field).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nonexistent"), "{body}");

    // Linear takes ids as `String!`: an `ID!` variable is a validation error.
    let id_var = json!({
        "query": "query Q($id: ID!) { issue(id: $id) { id } }",
        "variables": {"id": "x"}, "operationName": "Q",
    });
    let (status, body) = post(&fake, FakeLinear::API_KEY, id_var).await;
    assert_eq!(status, 400, "{body}");

    let wrong_var_type = json!({
        "query": "query Q($first: Int!) { issues(first: $first) { nodes { id } } }",
        "variables": {"first": "ten"}, "operationName": "Q",
    });
    let (status, _) = post(&fake, FakeLinear::API_KEY, wrong_var_type).await;
    assert_eq!(status, 400);

    let ok = json!({"query": "query Q { viewer { id isMe } }", "operationName": "Q"});
    let (status, body) =
        post(&fake, &format!("Bearer {}", FakeLinear::OAUTH_TOKEN), ok.clone()).await;
    assert_eq!((status, &body["data"]["viewer"]["isMe"]), (200, &json!(true)), "{body}");
    let (status, body) = post(&fake, "wrong-key", ok).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(fake.requests("Q"), 5);
}

/// Linear made the comment but its answer came after the client gave up, so the client sent the
/// create again: the summary still appears once (the second create finds the id taken, and the
/// lookup finds the comment on the issue).
#[tokio::test]
async fn a_summary_whose_answer_came_too_late_is_posted_once() {
    let fake = FakeLinear::start().await;
    let mut config = support::config(&fake);
    config.request_timeout = Duration::from_millis(300);
    let source = LinearSource::connect(config).await.unwrap();
    let issue = fake.create_issue(NewIssue::new("ENG", "x"));
    fake.reset_requests();

    fake.late_responses(1, Duration::from_secs(1));
    let summary = Report { run: "run-1".into(), kind: ReportKind::Summary, body: "done".into() };
    source.report(&TaskId(issue.id.clone()), &summary).await.expect("reported");
    let comments = fake.comments(&issue.id);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0].body, "done");
    assert_eq!(fake.requests("AgentflowCommentCreate"), 2, "{:?}", fake.request_counts());
    assert_eq!(fake.requests("AgentflowComment"), 1, "{:?}", fake.request_counts());
}

/// A restarted daemon finishing a run's recorded end reports the same summary again: it is
/// posted once per run, and another run's summary is a comment of its own.
#[tokio::test]
async fn the_same_run_s_summary_reported_twice_is_posted_once() {
    let (fake, source) = support::setup().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "x"));
    let task = TaskId(issue.id.clone());
    let first = Report { run: "run-1".into(), kind: ReportKind::Summary, body: "done".into() };
    source.report(&task, &first).await.unwrap();
    source.report(&task, &first).await.expect("the second report finds the first");
    assert_eq!(fake.comments(&issue.id).len(), 1);
    let second = Report { run: "run-2".into(), kind: ReportKind::Summary, body: "again".into() };
    source.report(&task, &second).await.unwrap();
    assert_eq!(fake.comments(&issue.id).len(), 2);
}

/// The fake holds us to Linear's contract for client-chosen comment ids: a UUID v4, unique.
#[tokio::test]
async fn the_fake_takes_only_fresh_v4_comment_ids() {
    let fake = FakeLinear::start().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "x"));
    let create = |id: &str| {
        json!({
            "query": agentflow_linear::ops::COMMENT_CREATE,
            "operationName": "AgentflowCommentCreate",
            "variables": { "id": id, "issueId": issue.id, "body": "hi" },
        })
    };
    let id = "7f8e0c52-3d5b-4b8e-9b1a-0c2d3e4f5a6b";
    let (_, first) = post(&fake, FakeLinear::API_KEY, create(id)).await;
    assert_eq!(first["data"]["commentCreate"]["comment"]["id"], id, "{first}");
    let (_, again) = post(&fake, FakeLinear::API_KEY, create(id)).await;
    assert!(again["errors"][0]["message"].as_str().unwrap().contains("already exists"), "{again}");
    let (_, v7) = post(&fake, FakeLinear::API_KEY, create(&uuid::Uuid::now_v7().to_string())).await;
    assert!(v7["errors"][0]["message"].as_str().unwrap().contains("UUID v4"), "{v7}");
    assert_eq!(fake.comments(&issue.id).len(), 1);
}
