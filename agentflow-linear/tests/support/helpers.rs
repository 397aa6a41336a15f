//! Shared by the integration tests: a LinearSource pointed at a fresh fake Linear.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use agentflow_linear::{LinearConfig, LinearSource};
use agentflow_testkit::fake_linear::FakeLinear;

/// A config for `fake` with an API key, team ENG, fast retries and short timeouts.
pub fn config(fake: &FakeLinear) -> LinearConfig {
    let mut c = LinearConfig::with_api_key(FakeLinear::API_KEY, &["ENG"]);
    c.api_url = fake.url();
    c.retry_backoff = Duration::from_millis(5);
    c.request_timeout = Duration::from_secs(5);
    c.page_size = 50;
    c
}

/// A fake and a connected source.
pub async fn setup() -> (FakeLinear, LinearSource) {
    let fake = FakeLinear::start().await;
    let source = LinearSource::connect(config(&fake)).await.expect("connect to the fake");
    fake.reset_requests();
    (fake, source)
}
