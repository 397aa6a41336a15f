//! Run tokens: random bearer tokens, each bound to one issue and one run, expiring.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentflow_core::RunId;

/// What a token lets its holder touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The id.
    pub(crate) task: String,
    /// The key (`ENG-12`).
    pub(crate) key: String,
    /// The run it was minted for.
    pub(crate) run: RunId,
    expires: Instant,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Never minted, or revoked.
    Unknown,
    /// Past its time to live.
    Expired,
}

impl Refusal {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown or revoked run token",
            Refusal::Expired => "run token expired",
        }
    }
}

/// The live tokens.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    tokens: Mutex<HashMap<String, Grant>>,
}

/// A token with 256 bits from the OS random generator (two v4 UUIDs carry 244 of them).
fn new_token() -> String {
    format!("afl_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mints a token for `run` on issue `task` (`key`), valid for `ttl`.
    pub(crate) fn mint(&self, task: &str, key: &str, run: RunId, ttl: Duration) -> String {
        let token = new_token();
        let now = Instant::now();
        let grant = Grant {
            task: task.to_owned(),
            key: key.to_owned(),
            run,
            expires: now.checked_add(ttl).unwrap_or(now + Duration::from_secs(86_400 * 365)),
        };
        let mut tokens = self.lock();
        tokens.retain(|_, g| g.expires > now);
        tokens.insert(token.clone(), grant);
        token
    }

    /// The grant behind `token`, if it is live.
    pub(crate) fn check(&self, token: &str) -> Result<Grant, Refusal> {
        let tokens = self.lock();
        let grant = tokens.get(token).ok_or(Refusal::Unknown)?;
        if grant.expires <= Instant::now() {
            return Err(Refusal::Expired);
        }
        Ok(grant.clone())
    }

    /// Revokes every token of `run`.
    pub(crate) fn revoke(&self, run: RunId) -> usize {
        let mut tokens = self.lock();
        let before = tokens.len();
        tokens.retain(|_, g| g.run != run);
        before - tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_expire_and_revoke() {
        let grants = Grants::default();
        let run = RunId::new();
        let a = grants.mint("issue-1", "ENG-1", run, Duration::from_secs(60));
        let b = grants.mint("issue-2", "ENG-2", RunId::new(), Duration::ZERO);
        assert_ne!(a, b);
        assert_eq!(grants.check(&a).unwrap().task, "issue-1");
        assert_eq!(grants.check(&b), Err(Refusal::Expired));
        assert_eq!(grants.check("afl_forged"), Err(Refusal::Unknown));
        assert_eq!(grants.revoke(run), 1);
        assert_eq!(grants.check(&a), Err(Refusal::Unknown));
    }
}
