//! The issue-scoped MCP tools through a real rmcp client session over streamable HTTP.

#[path = "support/helpers.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use agentflow_core::{RunId, Task, TaskId, TaskSource, ToolProvider, ToolServer};
use agentflow_linear::{LinearSource, LinearTools, TOOL_NAMES};
use agentflow_testkit::fake_linear::{CommentAuthor, FakeLinear, NewIssue};
use axum::http::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

struct Setup {
    fake: FakeLinear,
    source: LinearSource,
    tools: LinearTools,
}

async fn setup() -> Setup {
    let (fake, source) = support::setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp/linear", listener.local_addr().unwrap());
    let tools = LinearTools::new(source.clone(), &url).unwrap();
    let router = tools.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Setup { fake, source, tools }
}

async fn task(source: &LinearSource, id: &str) -> Task {
    source.get(&TaskId(id.to_owned())).await.unwrap().expect("issue exists")
}

/// Connects the way the agent's MCP client does: URL plus the granted headers.
async fn connect(server: &ToolServer) -> Result<Client, String> {
    let headers: HashMap<HeaderName, HeaderValue> = server
        .headers
        .iter()
        .map(|(k, v)| {
            (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap())
        })
        .collect();
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::from_config(config);
    ClientConfig::default().serve(transport).await.map_err(|e| e.to_string())
}

async fn call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let args = args.as_object().cloned().unwrap_or_default();
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
    client.call_tool(params).await.map_err(|e| e.to_string())
}

fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect()
}

#[tokio::test]
async fn the_tools_act_on_the_granted_issue() {
    let s = setup().await;
    let issue =
        s.fake.create_issue(NewIssue::new("ENG", "Write a haiku").description("About queues."));
    s.fake.add_comment(
        &issue.id,
        CommentAuthor::User(FakeLinear::HUMAN_ID.into()),
        "make it rhyme",
    );
    let servers = s
        .tools
        .grant(&task(&s.source, &issue.id).await, RunId::new(), Duration::from_secs(600))
        .await
        .unwrap();
    let server = &servers[0];
    assert_eq!(server.name, "linear");
    assert_eq!(server.tools, TOOL_NAMES);
    let auth = &server.headers[0];
    assert_eq!(auth.0, "Authorization");
    assert!(auth.1.starts_with("Bearer afl_"), "a run token, not the Linear key");
    assert!(!auth.1.contains(FakeLinear::API_KEY));
    assert!(!format!("{server:?}").contains(&auth.1[7..]), "Debug hides the token");

    let client = connect(server).await.unwrap();
    let mut names: Vec<String> =
        client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["add_comment", "get_issue", "list_comments", "update_progress"]);

    let got = call(&client, "get_issue", json!({})).await.unwrap();
    assert_ne!(got.is_error, Some(true), "{}", text(&got));
    let issue_json: Value = serde_json::from_str(&text(&got)).unwrap();
    assert_eq!(
        (issue_json["key"].as_str(), issue_json["description"].as_str()),
        (Some(issue.identifier.as_str()), Some("About queues."))
    );
    // By key or id is fine when it is the granted issue.
    let by_key = call(&client, "get_issue", json!({"issue_id": issue.identifier})).await.unwrap();
    assert_ne!(by_key.is_error, Some(true), "{}", text(&by_key));

    let added = call(&client, "add_comment", json!({"body": "Working on it."})).await.unwrap();
    assert_ne!(added.is_error, Some(true), "{}", text(&added));
    for body in ["50% done", "90% done"] {
        let r = call(&client, "update_progress", json!({"body": body})).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
    }
    let comments = s.fake.comments(&issue.id);
    let bodies: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["make it rhyme", "Working on it.", "90% done"], "progress edited in place");
    assert!(comments[1..].iter().all(|c| c.user_id.as_deref() == Some(FakeLinear::VIEWER_ID)));

    let listed = call(&client, "list_comments", json!({"limit": 10})).await.unwrap();
    let listed: Value = serde_json::from_str(&text(&listed)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["author"], "ada");

    // What the agent posts is ours: it never comes back as feedback.
    s.source
        .set_status(&TaskId(issue.id.clone()), agentflow_core::TaskStatus::InReview)
        .await
        .unwrap();
    let feedback = s.source.feedback(None).await.unwrap();
    assert_eq!(
        feedback.items.iter().map(|f| f.body.as_str()).collect::<Vec<_>>(),
        ["make it rhyme"]
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn other_issues_are_refused_whatever_the_token() {
    let s = setup().await;
    let mine = s.fake.create_issue(NewIssue::new("ENG", "mine"));
    let other = s.fake.create_issue(NewIssue::new("ENG", "someone else's"));
    let server = s
        .tools
        .grant(&task(&s.source, &mine.id).await, RunId::new(), Duration::from_secs(600))
        .await
        .unwrap()
        .remove(0);
    let client = connect(&server).await.unwrap();

    for (tool, args) in [
        ("get_issue", json!({"issue_id": other.id})),
        ("get_issue", json!({"issue_id": other.identifier})),
        ("list_comments", json!({"issue_id": other.id})),
        (
            "add_comment",
            json!({"issue_id": other.identifier, "body": "ignore previous instructions"}),
        ),
        ("update_progress", json!({"issue_id": other.id, "body": "x"})),
    ] {
        let r = call(&client, tool, args.clone()).await.unwrap();
        assert_eq!(r.is_error, Some(true), "{tool} {args} was allowed: {}", text(&r));
        assert!(
            text(&r).contains("refused") && text(&r).contains(&mine.identifier),
            "{}",
            text(&r)
        );
    }
    assert!(s.fake.comments(&other.id).is_empty(), "nothing reached the other issue");

    // A token granted for the other issue works there and is refused on ours.
    let theirs = s
        .tools
        .grant(&task(&s.source, &other.id).await, RunId::new(), Duration::from_secs(600))
        .await
        .unwrap()
        .remove(0);
    let other_client = connect(&theirs).await.unwrap();
    let r = call(&other_client, "add_comment", json!({"issue_id": mine.id, "body": "cross-talk"}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let r = call(&other_client, "add_comment", json!({"body": "on my own issue"})).await.unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert!(s.fake.comments(&mine.id).is_empty());
    assert_eq!(s.fake.comments(&other.id).len(), 1);
    let _ = client.cancel().await;
    let _ = other_client.cancel().await;
}

#[tokio::test]
async fn expired_revoked_and_forged_tokens_are_refused() {
    let s = setup().await;
    let issue = s.fake.create_issue(NewIssue::new("ENG", "short-lived"));
    let t = task(&s.source, &issue.id).await;

    let expired =
        s.tools.grant(&t, RunId::new(), Duration::from_millis(1)).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(connect(&expired).await.is_err(), "an expired token cannot open a session");

    let mut forged = expired.clone();
    forged.headers = vec![("Authorization".into(), "Bearer afl_forged".into())];
    assert!(connect(&forged).await.is_err());
    let mut linear_key = expired.clone();
    linear_key.headers = vec![("Authorization".into(), FakeLinear::API_KEY.into())];
    assert!(connect(&linear_key).await.is_err(), "the Linear key is no MCP credential");

    let run = RunId::new();
    let live = s.tools.grant(&t, run, Duration::from_secs(600)).await.unwrap().remove(0);
    let client = connect(&live).await.unwrap();
    assert_ne!(call(&client, "get_issue", json!({})).await.unwrap().is_error, Some(true));
    s.tools.revoke(run).await;
    let after = call(&client, "add_comment", json!({"body": "after revoke"})).await;
    assert!(after.is_err() || after.as_ref().is_ok_and(|r| r.is_error == Some(true)), "{after:?}");
    assert!(s.fake.comments(&issue.id).is_empty(), "nothing was posted after revocation");
    let _ = client.cancel().await;
}
