//! Calling the router without a network.

#![allow(dead_code, unreachable_pub)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call_with(router, method, uri, body, &[]).await
}

pub async fn call_with(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri).header(header::HOST, "127.0.0.1:8080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
    Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}

pub async fn call_bytes(
    router: &Router,
    uri: &str,
    body: &'static str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method("POST").uri(uri).header(header::HOST, "127.0.0.1:8080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}
