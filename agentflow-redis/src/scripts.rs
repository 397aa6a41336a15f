//! The Lua scripts: every state change of a job is one of them, so it is atomic.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("scripts/prelude.lua");

/// The compiled scripts (prelude + body), hashed once per process.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) reserve: Script,
    pub(crate) complete: Script,
    pub(crate) complete_reserve: Script,
    pub(crate) heartbeat: Script,
    pub(crate) fail: Script,
    pub(crate) release: Script,
    pub(crate) cancel: Script,
    pub(crate) recover: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: script(include_str!("scripts/enqueue.lua")),
    reserve: script(include_str!("scripts/reserve.lua")),
    complete: script(include_str!("scripts/complete.lua")),
    complete_reserve: script(include_str!("scripts/complete_reserve.lua")),
    heartbeat: script(include_str!("scripts/heartbeat.lua")),
    fail: script(include_str!("scripts/fail.lua")),
    release: script(include_str!("scripts/release.lua")),
    cancel: script(include_str!("scripts/cancel.lua")),
    recover: script(include_str!("scripts/recover.lua")),
});
