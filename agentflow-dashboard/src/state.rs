//! What every handler shares.

use std::sync::Arc;

use agentflow_core::memory::LocalSource;
use std::time::Duration;

use agentflow_core::{JobQueue, StateStore, TaskSource};
use futures::future::BoxFuture;

use crate::auth::Auth;
use crate::control::EngineControl;
use crate::health::ReadinessFn;
use crate::metrics::{RunCollector, Sources};
use crate::settings::{MissingItem, SettingsSchema};
use crate::todo::TodoWatch;
use crate::transcript::TranscriptFn;
use crate::ws::WsHub;

/// Lists what the service still needs (beyond required settings without a value).
pub type NeedsConfigFn = Arc<dyn Fn() -> BoxFuture<'static, Vec<MissingItem>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<dyn EngineControl>,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) queue: Arc<dyn JobQueue>,
    pub(crate) local: Option<LocalSource>,
    pub(crate) readiness: Arc<Vec<(String, ReadinessFn)>>,
    pub(crate) metric_sources: Arc<Sources>,
    pub(crate) auth: Option<Auth>,
    pub(crate) settings: Arc<SettingsSchema>,
    pub(crate) needs_config: Option<NeedsConfigFn>,
    pub(crate) collector: RunCollector,
    pub(crate) collector_started: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) ws: WsHub,
    pub(crate) todo: TodoWatch,
    pub(crate) transcripts: Option<TranscriptFn>,
    pub(crate) todo_source: Option<(Arc<dyn TaskSource>, Duration)>,
}
