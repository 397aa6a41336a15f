//! MCP tools scoped to one issue: a streamable-HTTP MCP server (rmcp) the agent reaches with a
//! per-run bearer token, so the Linear credential never leaves the daemon.

mod grants;

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{
    Error, Result, RunId, Task, TaskId, TaskSource, ToolProvider, ToolServer, async_trait,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::json;

use crate::LinearSource;
use grants::{Grant, Grants};

/// The tools the agent gets, unprefixed.
pub const TOOL_NAMES: [&str; 4] = ["get_issue", "list_comments", "add_comment", "update_progress"];

/// Issue-scoped Linear tools for agents, served over MCP streamable HTTP.
///
/// [`grant`](ToolProvider::grant) mints a random bearer token bound to one issue and one run;
/// the tools act on that issue only and refuse any other id, and an expired or revoked token is
/// refused before the request reaches them. Mount [`router`](LinearTools::router) on the
/// daemon's loopback listener at the URL given to [`new`](LinearTools::new).
#[derive(Clone)]
pub struct LinearTools {
    inner: Arc<ToolsInner>,
}

struct ToolsInner {
    source: LinearSource,
    url: reqwest::Url,
    grants: Grants,
}

impl std::fmt::Debug for LinearTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearTools").field("url", &self.inner.url.as_str()).finish_non_exhaustive()
    }
}

impl LinearTools {
    /// Tools acting through `source`, served at `url` (e.g.
    /// `http://127.0.0.1:7700/mcp/linear`: the daemon's listener plus the mount path).
    pub fn new(source: LinearSource, url: &str) -> Result<Self> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| Error::config("linear.mcp_url", format!("`{url}` is not a URL: {e}")))?;
        if url.host_str().is_none() {
            return Err(Error::config("linear.mcp_url", "the URL needs a host"));
        }
        Ok(LinearTools { inner: Arc::new(ToolsInner { source, url, grants: Grants::default() }) })
    }

    /// The endpoint URL handed to agents.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// An axum router serving the MCP endpoint at the path of the configured URL.
    pub fn router(&self) -> Router {
        let mut config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
        if let Some(host) = self.inner.url.host_str() {
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            if !config.allowed_hosts.contains(&host) {
                config.allowed_hosts.push(host);
            }
        }
        let inner = self.inner.clone();
        let service: StreamableHttpService<IssueTools, LocalSessionManager> =
            StreamableHttpService::new(
                move || Ok(IssueTools::new(inner.clone())),
                Default::default(),
                config,
            );
        let path = match self.inner.url.path() {
            "" | "/" => "/mcp".to_owned(),
            p => p.trim_end_matches('/').to_owned(),
        };
        Router::new()
            .route_service(&path, service)
            .layer(axum::middleware::from_fn_with_state(self.clone(), require_token))
    }

    fn grant_of(&self, parts: &Parts) -> std::result::Result<Grant, &'static str> {
        let token = bearer(parts.headers.get("authorization")).ok_or("missing bearer token")?;
        self.inner.grants.check(token).map_err(|r| r.message())
    }
}

fn bearer(value: Option<&axum::http::HeaderValue>) -> Option<&str> {
    value?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
}

async fn require_token(State(tools): State<LinearTools>, request: Request, next: Next) -> Response {
    let token = bearer(request.headers().get("authorization"));
    match token.map(|t| tools.inner.grants.check(t)) {
        Some(Ok(_)) => next.run(request).await,
        Some(Err(refusal)) => (StatusCode::UNAUTHORIZED, refusal.message()).into_response(),
        None => (StatusCode::UNAUTHORIZED, "missing bearer token").into_response(),
    }
}

#[async_trait]
impl ToolProvider for LinearTools {
    async fn grant(&self, task: &Task, run: RunId, ttl: Duration) -> Result<Vec<ToolServer>> {
        let token = self.inner.grants.mint(task.id.as_str(), &task.key, run, ttl);
        tracing::debug!(task = %task.id, run = %run, "granted issue-scoped Linear tools");
        Ok(vec![ToolServer {
            name: "linear".to_owned(),
            url: self.url().to_owned(),
            headers: vec![("Authorization".to_owned(), format!("Bearer {token}"))],
            tools: TOOL_NAMES.iter().map(|t| (*t).to_owned()).collect(),
        }])
    }

    async fn revoke(&self, run: RunId) {
        let n = self.inner.grants.revoke(run);
        self.inner.source.forget_progress(&agent_progress_key(run));
        tracing::debug!(run = %run, tokens = n, "revoked Linear tools");
    }
}

/// The agent's own progress note is kept apart from the engine's progress comment.
fn agent_progress_key(run: RunId) -> String {
    format!("{run}:agent")
}

/// Optional issue id on every tool: when given, it must be the token's issue.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct IssueArg {
    /// The issue id or key; defaults to the issue this run works on.
    #[serde(default)]
    pub issue_id: Option<String>,
}

/// Arguments of `list_comments`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListCommentsArgs {
    /// The issue id or key; defaults to the issue this run works on.
    #[serde(default)]
    pub issue_id: Option<String>,
    /// At most this many comments (default 50, at most 250).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `add_comment` and `update_progress`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct BodyArgs {
    /// The issue id or key; defaults to the issue this run works on.
    #[serde(default)]
    pub issue_id: Option<String>,
    /// Markdown body.
    pub body: String,
}

/// The MCP server of one session; every call re-checks the caller's token.
#[derive(Clone)]
struct IssueTools {
    inner: Arc<ToolsInner>,
    tool_router: ToolRouter<Self>,
}

fn text(s: impl Into<String>) -> Vec<ContentBlock> {
    vec![ContentBlock::text(s)]
}

fn failed(e: &Error) -> CallToolResult {
    CallToolResult::error(text(format!("Linear request failed: {e}")))
}

impl IssueTools {
    fn new(inner: Arc<ToolsInner>) -> Self {
        IssueTools { inner, tool_router: Self::tool_router() }
    }

    /// The caller's grant, refusing a token that is gone or an issue that is not its own.
    fn authorize(
        &self,
        parts: &Parts,
        asked: Option<&str>,
    ) -> std::result::Result<Grant, CallToolResult> {
        let tools = LinearTools { inner: self.inner.clone() };
        let grant = tools.grant_of(parts).map_err(|m| CallToolResult::error(text(m)))?;
        if let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty())
            && asked != grant.task
            && !asked.eq_ignore_ascii_case(&grant.key)
        {
            tracing::warn!(run = %grant.run, asked, allowed = %grant.key, "refused a Linear tool call on another issue");
            return Err(CallToolResult::error(text(format!(
                "refused: this run may only act on issue {} (asked for {asked})",
                grant.key
            ))));
        }
        Ok(grant)
    }
}

#[tool_router]
impl IssueTools {
    #[tool(
        description = "Read the issue this run works on: key, title, status, description, labels, priority and URL."
    )]
    async fn get_issue(
        &self,
        Parameters(args): Parameters<IssueArg>,
        Extension(parts): Extension<Parts>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let grant = match self.authorize(&parts, args.issue_id.as_deref()) {
            Ok(g) => g,
            Err(refused) => return Ok(refused),
        };
        Ok(match self.inner.source.get(&TaskId(grant.task.clone())).await {
            Ok(Some(t)) => CallToolResult::success(text(
                json!({
                    "id": t.id, "key": t.key, "title": t.title, "status": t.status,
                    "state": t.source_meta.get("state"), "description": t.body,
                    "labels": t.labels, "priority": t.priority, "url": t.url,
                })
                .to_string(),
            )),
            Ok(None) => {
                CallToolResult::error(text(format!("issue {} no longer exists", grant.key)))
            }
            Err(e) => failed(&e),
        })
    }

    #[tool(description = "List the comments on the issue this run works on, oldest first.")]
    async fn list_comments(
        &self,
        Parameters(args): Parameters<ListCommentsArgs>,
        Extension(parts): Extension<Parts>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let grant = match self.authorize(&parts, args.issue_id.as_deref()) {
            Ok(g) => g,
            Err(refused) => return Ok(refused),
        };
        let limit = args.limit.unwrap_or(50).clamp(1, 250) as usize;
        Ok(match self.inner.source.issue_comments(&grant.task, limit).await {
            Ok(comments) => {
                let list: Vec<_> = comments
                    .into_iter()
                    .map(|c| {
                        let author = c.user.as_ref().map(|u| u.display_name.clone())
                            .or_else(|| c.bot_actor.as_ref().and_then(|b| b.name.clone()))
                            .unwrap_or_default();
                        json!({"id": c.id, "author": author, "body": c.body, "created_at": c.created_at})
                    })
                    .collect();
                CallToolResult::success(text(serde_json::Value::from(list).to_string()))
            }
            Err(e) => failed(&e),
        })
    }

    #[tool(description = "Post a new Markdown comment on the issue this run works on.")]
    async fn add_comment(
        &self,
        Parameters(args): Parameters<BodyArgs>,
        Extension(parts): Extension<Parts>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let grant = match self.authorize(&parts, args.issue_id.as_deref()) {
            Ok(g) => g,
            Err(refused) => return Ok(refused),
        };
        if args.body.trim().is_empty() {
            return Ok(CallToolResult::error(text("body must not be empty")));
        }
        Ok(match self.inner.source.create_comment(&grant.task, &args.body).await {
            Ok(id) => CallToolResult::success(text(json!({"id": id}).to_string())),
            Err(e) => failed(&e),
        })
    }

    #[tool(
        description = "Create or update this run's single progress note on its issue (edited in place on later calls)."
    )]
    async fn update_progress(
        &self,
        Parameters(args): Parameters<BodyArgs>,
        Extension(parts): Extension<Parts>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let grant = match self.authorize(&parts, args.issue_id.as_deref()) {
            Ok(g) => g,
            Err(refused) => return Ok(refused),
        };
        if args.body.trim().is_empty() {
            return Ok(CallToolResult::error(text("body must not be empty")));
        }
        let key = agent_progress_key(grant.run);
        Ok(match self.inner.source.upsert_progress(&grant.task, key, &args.body).await {
            Ok(id) => CallToolResult::success(text(json!({"id": id}).to_string())),
            Err(e) => failed(&e),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for IssueTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Tools for the one Linear issue this run works on. Other issues are out of reach.",
        )
    }
}
