//! Binding and serving, with the rule that a non-loopback address needs a token.

use std::net::SocketAddr;

use agentflow_core::Result;
use axum::Router;
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::error::DashboardError;

/// Refuses a non-loopback `addr` when no token is set: without one, anyone who can reach the
/// address could read task logs and change settings.
///
/// ```
/// use agentflow_dashboard::bind_check;
/// assert!(bind_check("127.0.0.1:8080".parse().unwrap(), false).is_ok());
/// assert!(bind_check("[::1]:8080".parse().unwrap(), false).is_ok());
/// assert!(bind_check("0.0.0.0:8080".parse().unwrap(), false).is_err());
/// assert!(bind_check("0.0.0.0:8080".parse().unwrap(), true).is_ok());
/// ```
pub fn bind_check(addr: SocketAddr, token_set: bool) -> Result<(), DashboardError> {
    if addr.ip().is_loopback() || token_set {
        Ok(())
    } else {
        Err(DashboardError::TokenRequired { addr })
    }
}

/// Checks `addr` with [`bind_check`] and binds it.
pub async fn bind(addr: SocketAddr, token_set: bool) -> Result<TcpListener> {
    bind_check(addr, token_set)?;
    let listener =
        TcpListener::bind(addr).await.map_err(|source| DashboardError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, url = %format!("http://{local}/"), "dashboard listening");
    Ok(listener)
}

/// Serves `router` (the dashboard's, possibly merged with others) on `addr` until `shutdown`
/// completes. A non-loopback `addr` without `token` is refused before binding.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    token: Option<&SecretString>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = bind(addr, token.is_some()).await?;
    serve_on(listener, router, shutdown).await
}

/// Serves `router` on a bound listener until `shutdown` completes.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| DashboardError::Serve(e).into())
}
