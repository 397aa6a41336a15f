#![doc = include_str!("../README.md")]

mod api;
mod assets;
mod auth;
mod control;
mod dashboard;
mod error;
mod health;
mod metrics;
mod serve;
mod settings;
mod state;
mod todo;
mod transcript;
mod ws;

pub use control::EngineControl;
pub use dashboard::{Dashboard, DashboardBuilder};
pub use error::{ApiError, DashboardError};
pub use metrics::{MetricKind, MetricSource, Sample};
pub use serve::{bind, bind_check, serve, serve_on};
pub use settings::{
    ApplyFn, EnvFn, FieldKind, MissingItem, SettingChange, SettingField, SettingsSchema, Validator,
    env_name,
};
pub use state::NeedsConfigFn;
pub use transcript::TranscriptFn;

/// Size in bytes of the embedded web UI (HTML, CSS and scripts).
pub fn ui_bytes() -> usize {
    assets::total_bytes()
}
