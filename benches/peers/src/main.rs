//! agentflow's queues and apalis on the peers workload: enqueue N no-op jobs with c concurrent
//! producers, then drain them with c concurrent workers, every job acknowledged, and check that
//! exactly N jobs completed. Driven by `../run.sh`, which also runs BullMQ and prints the table.
//!
//! ```text
//! agentflow-peers <agentflow|apalis> <sqlite|redis|postgres> [--jobs N] [--workers 1,4,16]
//! ```
//!
//! Prints one tab-separated line per measurement:
//! `RESULT <system> <backend> <workers> <jobs> <enqueue s> <drain s> <completed>`.
//! Servers: `PEERS_REDIS_URL` (default `redis://127.0.0.1:6379`) and `PEERS_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), loopback only. Every measurement gets
//! its own SQLite file, Redis key prefix or Postgres schema/database, removed afterwards.

mod af;
mod apalis_run;
mod common;

use std::process::ExitCode;

use common::{Backend, Settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::parse(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "usage: agentflow-peers <agentflow|apalis> <sqlite|redis|postgres> \
                 [--jobs N] [--workers 1,4,16]"
            );
            return ExitCode::from(2);
        }
    };
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        for &workers in &settings.workers {
            let row = match (settings.system.as_str(), settings.backend) {
                ("agentflow", backend) => af::measure(&settings, backend, workers).await,
                ("apalis", Backend::Sqlite) => apalis_run::sqlite(&settings, workers).await,
                ("apalis", Backend::Redis) => apalis_run::redis(&settings, workers).await,
                ("apalis", Backend::Postgres) => apalis_run::postgres(&settings, workers).await,
                (other, _) => Err(format!("unknown system `{other}` (agentflow, apalis)")),
            }?;
            row.print();
        }
        Ok::<(), String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {} on {}: {e}", settings.system, settings.backend.name());
            ExitCode::FAILURE
        }
    }
}
