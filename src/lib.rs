//! # agentflow
//!
//! Turn issue-tracker tasks into autonomous coding-agent runs. This is the facade crate: it
//! re-exports [`agentflow_core`] and, behind feature flags, the adapter crates.
//!
//! | feature | crate | default |
//! |---|---|---|
//! | `sqlite` | [`agentflow-sqlite`](https://docs.rs/agentflow-sqlite) | yes |
//! | `linear` | [`agentflow-linear`](https://docs.rs/agentflow-linear) | yes |
//! | `claude` | [`agentflow-claude`](https://docs.rs/agentflow-claude) | yes |
//! | `dashboard` | [`agentflow-dashboard`](https://docs.rs/agentflow-dashboard) | yes |
//! | `redis` | [`agentflow-redis`](https://docs.rs/agentflow-redis) | no |
//! | `postgres` | [`agentflow-postgres`](https://docs.rs/agentflow-postgres) | no |
//!
//! `full` enables all of them.

pub use agentflow_core::*;

pub mod backend;

#[cfg(feature = "claude")]
pub use agentflow_claude as claude;
#[cfg(feature = "dashboard")]
pub use agentflow_dashboard as dashboard;
#[cfg(feature = "linear")]
pub use agentflow_linear as linear;
#[cfg(feature = "postgres")]
pub use agentflow_postgres as postgres;
#[cfg(feature = "redis")]
pub use agentflow_redis as redis;
#[cfg(feature = "sqlite")]
pub use agentflow_sqlite as sqlite;
