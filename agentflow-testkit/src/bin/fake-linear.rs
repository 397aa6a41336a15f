//! `fake-linear`: a fake Linear GraphQL API for trying the agentflow daemon by hand.
//!
//! ```text
//! cargo run -p agentflow-testkit --features fake-linear --bin fake-linear -- [ADDR] [ISSUES]
//! ```
//! Listens on ADDR (default 127.0.0.1:4010) with team ENG and ISSUES Todo issues (default 3),
//! and prints the URL and credentials to configure agentflow with. Play the humans through the
//! JSON API under `/admin` (`curl ADDR/admin` lists it). With `FAKE_LINEAR_WEBHOOK_URL` and
//! `FAKE_LINEAR_WEBHOOK_SECRET` set, changes made there are delivered as signed webhooks.

use agentflow_testkit::fake_linear::{FakeLinear, NewIssue};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4010".to_owned());
    let Ok(addr) = addr.parse() else {
        eprintln!("fake-linear: `{addr}` is not a socket address (e.g. 127.0.0.1:4010)");
        std::process::exit(2);
    };
    let issues: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let fake = FakeLinear::start_on(addr).await;
    let webhook = std::env::var("FAKE_LINEAR_WEBHOOK_URL").ok();
    let secret = std::env::var("FAKE_LINEAR_WEBHOOK_SECRET").ok();
    if let (Some(url), Some(secret)) = (&webhook, &secret) {
        fake.deliver_webhooks(Some((url, secret)));
    }
    for k in 1..=issues {
        fake.create_issue(
            NewIssue::new("ENG", &format!("Sample task {k}"))
                .description("Write a short haiku about queues into HAIKU.md."),
        );
    }
    println!("fake Linear listening on {}", fake.url());
    println!("  api_key     = \"{}\"   (Authorization: <key>)", FakeLinear::API_KEY);
    println!("  oauth_token = \"{}\"   (Authorization: Bearer <token>)", FakeLinear::OAUTH_TOKEN);
    println!("  teams       = [\"ENG\"], {issues} issue(s) in Todo");
    println!("  admin API   = http://{}/admin", fake.addr());
    if let Some(url) = webhook.filter(|_| secret.is_some()) {
        println!("  webhooks    → {url}");
    }
    let _ = tokio::signal::ctrl_c().await;
}
