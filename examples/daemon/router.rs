//! A router whose routes can be replaced while the listener keeps serving, so the daemon can
//! rebuild its engine and dashboard (after a settings change) without dropping connections.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Service, ServiceExt};

/// The current router, swapped by [`SwapRouter::set`].
#[derive(Clone, Default)]
pub(crate) struct SwapRouter {
    current: Arc<RwLock<Router>>,
}

impl SwapRouter {
    /// Serves `router` from the next request on.
    pub(crate) fn set(&self, router: Router) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = router;
    }

    /// An axum router that forwards every request to the current one.
    pub(crate) fn into_router(self) -> Router {
        Router::new().fallback_service(self)
    }
}

impl Service<Request<Body>> for SwapRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let router = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        Box::pin(async move { router.oneshot(req).await })
    }
}
