//! The real Claude Code CLI, driven by `ClaudeExecutor`, calls the issue-scoped Linear MCP tools
//! (agentflow-linear) granted for its run, and the comment lands on the fake Linear issue.
//!
//! The model is the fake Anthropic API scripted to call `mcp__linear__add_comment`; everything
//! between it and the fake Linear GraphQL API is real: the CLI's MCP client over streamable
//! HTTP, the per-run bearer token, the rmcp server, the Linear source.

use std::path::PathBuf;
use std::time::Duration;

use agentflow::claude::{ClaudeConfig, ClaudeExecutor, WorkspaceConfig};
use agentflow::linear::{LinearConfig, LinearSource, LinearTools};
use agentflow::{
    CancellationToken, Executor, Progress, ProgressSender, RunId, RunRequest, TaskId, TaskSource,
    ToolProvider,
};
use agentflow_testkit::fake_anthropic::{FakeAnthropic, Reply};
use agentflow_testkit::fake_linear::{FakeLinear, NewIssue};
use serde_json::json;

fn claude_bin() -> Option<PathBuf> {
    agentflow_testkit::claude_cli(agentflow::claude::CLAUDE_CODE_VERSION)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_comments_on_its_issue_through_the_linear_mcp_tools() {
    let Some(binary) = claude_bin() else { return };

    // Fake Linear, the real source, and the MCP tools on a loopback listener.
    let linear = FakeLinear::start().await;
    let mut config = LinearConfig::with_api_key(FakeLinear::API_KEY, &["ENG"]);
    config.api_url = linear.url();
    let source = LinearSource::connect(config).await.expect("connect to the fake Linear");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp/linear", listener.local_addr().unwrap());
    let tools = LinearTools::new(source.clone(), &url).unwrap();
    let router = tools.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let issue = linear.create_issue(NewIssue::new("ENG", "Say hello on the issue"));
    let task = source.get(&TaskId(issue.id.clone())).await.unwrap().expect("issue");
    let run = RunId::new();
    let servers = tools.grant(&task, run, Duration::from_secs(600)).await.unwrap();

    // The model: call the tool, then finish.
    let anthropic = FakeAnthropic::start().await;
    anthropic
        .push(Reply::tool("mcp__linear__add_comment", json!({ "body": "hello from the agent" })));
    anthropic.push(Reply::text("Commented."));

    let dir = std::env::temp_dir().join(format!("agentflow-claude-linear-{}", std::process::id()));
    let mut cfg = ClaudeConfig {
        binary,
        config_dir: Some(dir.join("claude-config")),
        workspace: WorkspaceConfig {
            root: dir.join("ws"),
            repo: None,
            max_age: None,
            max_count: None,
        },
        ..ClaudeConfig::default()
    };
    cfg.env.insert("ANTHROPIC_API_KEY".into(), "test-key".into());
    cfg.env.insert("ANTHROPIC_BASE_URL".into(), anthropic.url());
    cfg.env.insert("CLAUDE_CODE_MAX_RETRIES".into(), "1".into());
    let exec = ClaudeExecutor::new(cfg).unwrap();

    let mut request = RunRequest::new(task);
    request.run = run;
    request.timeout = Duration::from_secs(120);
    request.tool_servers = servers;
    let (tx, mut rx) = ProgressSender::channel();
    let outcome = tokio::time::timeout(
        Duration::from_secs(180),
        exec.run(request, tx, CancellationToken::new()),
    )
    .await
    .expect("the run ends")
    .expect("the run succeeds");
    tools.revoke(run).await;
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(outcome.summary, "Commented.");
    let bodies: Vec<String> = linear.comments(&issue.id).into_iter().map(|c| c.body).collect();
    assert_eq!(bodies, ["hello from the agent"], "the comment reached Linear");
    let mut progress = Vec::new();
    while let Ok((_, p)) = rx.try_recv() {
        progress.push(p);
    }
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::ToolResult { name: Some(n), is_error: false, .. }
        if n == "mcp__linear__add_comment")),
        "{progress:?}"
    );
    // The model saw the tool's answer.
    let last = anthropic.message_requests().pop().expect("requests");
    assert!(last.messages().iter().any(|m| m.to_string().contains("tool_result")));
    // The run's token never carried the Linear key to the agent.
    assert!(!last.body.to_string().contains(FakeLinear::API_KEY));
}
