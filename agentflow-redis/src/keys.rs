//! The key layout of one queue. Every key starts with the queue's hash tag.

/// The fixed keys, in the order every script receives them as `KEYS`.
pub(crate) const FIXED: [&str; 9] = [
    "available",
    "scheduled",
    "retryable",
    "running",
    "completed",
    "failed",
    "cancelled",
    "unique",
    "notify",
];

/// Key names of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{prefix:queue}:`; dynamic keys (`job:<id>`, `task:<task>`) are built from it.
    pub(crate) prefix: String,
    /// [`FIXED`] with the prefix.
    pub(crate) fixed: Vec<String>,
}

impl Keys {
    pub(crate) fn new(hash_tag: &str) -> Self {
        let prefix = format!("{hash_tag}:");
        let fixed = FIXED.iter().map(|k| format!("{prefix}{k}")).collect();
        Keys { prefix, fixed }
    }

    pub(crate) fn available(&self) -> &str {
        &self.fixed[0]
    }
    pub(crate) fn scheduled(&self) -> &str {
        &self.fixed[1]
    }
    pub(crate) fn retryable(&self) -> &str {
        &self.fixed[2]
    }
    pub(crate) fn running(&self) -> &str {
        &self.fixed[3]
    }
    pub(crate) fn completed(&self) -> &str {
        &self.fixed[4]
    }
    pub(crate) fn failed(&self) -> &str {
        &self.fixed[5]
    }
    pub(crate) fn cancelled(&self) -> &str {
        &self.fixed[6]
    }
    pub(crate) fn notify(&self) -> &str {
        &self.fixed[8]
    }
    pub(crate) fn job(&self, id: &str) -> String {
        format!("{}job:{id}", self.prefix)
    }
    pub(crate) fn task(&self, task: &str) -> String {
        format!("{}task:{task}", self.prefix)
    }
    /// A `SCAN MATCH` pattern for every key of this queue.
    pub(crate) fn pattern(&self) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 1);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('*');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_hash_tag() {
        let keys = Keys::new("{agentflow:q}");
        for k in keys.fixed.iter().cloned().chain([keys.job("j"), keys.task("t")]) {
            assert!(k.starts_with("{agentflow:q}:"), "{k}");
        }
        assert_eq!(keys.available(), "{agentflow:q}:available");
        assert_eq!(keys.notify(), "{agentflow:q}:notify");
        assert_eq!(Keys::new("{a*b:q}").pattern(), "{a\\*b:q}:*");
    }
}
