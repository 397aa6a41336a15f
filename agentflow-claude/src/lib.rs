#![doc = include_str!("../README.md")]

pub mod event;
pub mod progress;

mod config;
mod error;
mod executor;
mod process;
mod prompt;
mod workspace;

pub use config::{Auth, ClaudeConfig, PermissionMode, PromptFiles, WorkspaceConfig};
pub use error::{CLAUDE_CODE_VERSION, ClaudeError};
pub use executor::ClaudeExecutor;
pub use process::{agent_env, mcp_config, mcp_tool_names, processes_in, sweep_orphans};
pub use prompt::{PromptContext, Prompts};
pub use workspace::{Workspaces, transcript_path};
