#![doc = include_str!("../README.md")]

pub mod bench;
mod claude_cli;
mod macros;
pub mod queue;
pub mod sink;
pub mod source;
pub mod store;

/// The tokio the conformance tests run on, re-exported for the macros' users.
pub use claude_cli::claude_cli;
pub use tokio;

#[doc(hidden)]
pub mod __private {
    pub use crate::macros::{never_skip, run_case};
}

pub use macros::CASE_TIMEOUT;

#[cfg(feature = "fake-anthropic")]
pub mod fake_anthropic;

#[cfg(feature = "fake-linear")]
pub mod fake_linear;

#[cfg(feature = "servers")]
pub mod servers;
