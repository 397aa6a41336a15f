#![doc = include_str!("../README.md")]

mod config;
mod error;
mod events;
mod keys;
mod queue;
mod scripts;
mod wakeup;

pub use config::RedisQueueConfig;
pub use error::Error;
pub use events::{EventSubscription, RedisEventSink, RedisEventsConfig, subscribe};
pub use queue::{MAX_RESERVE, RedisQueue};
