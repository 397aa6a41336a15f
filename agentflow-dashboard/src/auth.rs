//! The optional access token: `Authorization: Bearer <token>` or a session cookie set by the
//! login form; plus a same-origin check on every state-changing request and WebSocket upgrade.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

const COOKIE: &str = "agentflow_session";

/// The token, kept only as digests: the bearer digest to compare against and the cookie value
/// (a digest too, so the cookie is not the token).
#[derive(Clone)]
pub(crate) struct Auth {
    digest: Arc<[u8; 32]>,
    cookie: Arc<str>,
}

impl Auth {
    pub(crate) fn new(token: &SecretString) -> Self {
        let digest: [u8; 32] = Sha256::digest(token.expose_secret().as_bytes()).into();
        let mut h = Sha256::new();
        h.update(b"agentflow-dashboard-session\0");
        h.update(token.expose_secret().as_bytes());
        Auth { digest: Arc::new(digest), cookie: hex::encode(h.finalize()).into() }
    }

    fn token_ok(&self, candidate: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(d.ct_eq(&*self.digest))
    }

    fn allowed(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.token_ok(t.trim()));
        bearer
            || cookie(headers, COOKIE)
                .is_some_and(|c| bool::from(c.as_bytes().ct_eq(self.cookie.as_bytes())))
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a browser request comes from another site: its `Origin` names a different host.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    !origin_host.eq_ignore_ascii_case(host)
}

fn is_public(path: &str) -> bool {
    path == "/login" || path == "/healthz" || path.starts_with("/assets/")
}

fn is_machine(path: &str) -> bool {
    path.starts_with("/api") || path == "/ws" || path == "/metrics"
}

pub(crate) async fn middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // A router built outside a runtime starts its background tasks with the first request.
    state.start_background();
    let path = request.uri().path().to_owned();
    let changes_state = request.method() != Method::GET && request.method() != Method::HEAD;
    // Signing in or out from another site gains an attacker nothing (the token is needed), and
    // a browser may send `Origin: null` for those form posts.
    let login_form = path == "/login" || path == "/logout";
    if (changes_state || path == "/ws") && !login_form && cross_origin(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: open the dashboard from its own address",
        )
        .into_response();
    }
    let Some(auth) = &state.auth else { return next.run(request).await };
    if is_public(&path) || auth.allowed(request.headers()) {
        return next.run(request).await;
    }
    if is_machine(&path) {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this dashboard needs its token: send `Authorization: Bearer <token>` or sign in at /login",
        )
        .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return resp;
    }
    Redirect::to("/login").into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

pub(crate) async fn login_page(State(state): State<AppState>) -> Response {
    if state.auth.is_none() {
        return Redirect::to("/").into_response();
    }
    Html(login_html(None)).into_response()
}

pub(crate) async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let Some(auth) = &state.auth else { return Redirect::to("/").into_response() };
    if !auth.token_ok(form.token.trim()) {
        tracing::warn!("dashboard sign-in with a wrong token");
        return (StatusCode::UNAUTHORIZED, Html(login_html(Some("That token is not right."))))
            .into_response();
    }
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", auth.cookie);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

pub(crate) async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

fn login_html(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="field-error" role="alert">{e}</p>"#))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · agentflow</title><link rel="stylesheet" href="/assets/app.css"></head>
<body class="login"><main class="login-box">
<h1>agentflow</h1>
<form method="post" action="/login">
<label for="token">Dashboard token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
{error}
<p class="help">The token is <code>dashboard.token</code> in the daemon's configuration.</p>
<button type="submit" class="primary">Sign in</button>
</form></main></body></html>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_cookie() {
        let auth = Auth::new(&SecretString::from("s3cret-token"));
        let mut h = HeaderMap::new();
        assert!(!auth.allowed(&h));
        h.insert(header::AUTHORIZATION, "Bearer s3cret-token".parse().unwrap());
        assert!(auth.allowed(&h));
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!auth.allowed(&h));
        let mut c = HeaderMap::new();
        c.insert(header::COOKIE, format!("a=b; {COOKIE}={}", auth.cookie).parse().unwrap());
        assert!(auth.allowed(&c));
        assert!(!auth.cookie.contains("s3cret"));
        c.insert(header::COOKIE, format!("{COOKIE}=s3cret-token").parse().unwrap());
        assert!(!auth.allowed(&c));
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(!cross_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(!cross_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_origin(&h));
    }
}
