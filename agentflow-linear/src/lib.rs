#![doc = include_str!("../README.md")]

mod client;
mod config;
mod error;
mod filters;
mod mcp;
mod model;
pub mod ops;
mod source;
mod states;
mod webhook;

pub use client::{RateLimit, RequestStats};
pub use config::{DEFAULT_API_URL, LinearConfig, StateNames};
pub use error::LinearError;
pub use mcp::{BodyArgs, IssueArg, LinearTools, ListCommentsArgs, TOOL_NAMES};
pub use source::LinearSource;
pub use webhook::{LinearWebhooks, MAX_CLOCK_SKEW, WebhookRejection};

/// Linear's public GraphQL schema (SDL), vendored with its MIT licence (`schema/LICENSE`).
pub const SCHEMA: &str = include_str!("../schema/schema.graphql");
