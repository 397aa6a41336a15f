#![doc = include_str!("../README.md")]

mod batch;
mod config;
mod error;
mod migrate;
mod queue;
mod store;
mod text;

pub use config::PgConfig;
pub use error::PgError;
pub use migrate::{LATEST_MIGRATION, migrate, migrate_pool};
pub use queue::PgQueue;
pub use store::PgStore;
