//! Where tests find the pinned Claude Code CLI.

use std::path::PathBuf;

/// The pinned Claude Code CLI `version`: `AGENTFLOW_CLAUDE_BIN`, else the cache that
/// `scripts/install-test-deps.sh` fills (`$AGENTFLOW_CACHE_DIR`, default
/// `$HOME/.cache/agentflow`, then `claude-code/<version>/node_modules/.bin/claude`).
///
/// Under `CI` a missing CLI panics, so the test fails; elsewhere it returns `None` after
/// printing why, and the caller skips.
pub fn claude_cli(version: &str) -> Option<PathBuf> {
    let path = match std::env::var_os("AGENTFLOW_CLAUDE_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("AGENTFLOW_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/agentflow")))
            .unwrap_or_default()
            .join(format!("claude-code/{version}/node_modules/.bin/claude")),
    };
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "Claude Code CLI not found at {} (run scripts/install-test-deps.sh or set \
         AGENTFLOW_CLAUDE_BIN)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("skipping: {msg}");
    None
}
