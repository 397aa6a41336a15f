//! The agentflow daemon: configuration → backends → engine → dashboard.
//!
//! ```text
//! cargo run --example daemon                  # run (default): dashboard on http://127.0.0.1:8080
//! cargo run --example daemon -- check         # validate the config and reach every component
//! cargo run --example daemon -- task add "Write a haiku" --body "about Rust"
//! ```
//!
//! Configuration: `agentflow.toml` (`--config`, `AGENTFLOW_CONFIG`), `AGENTFLOW_*` and the seed's
//! environment names, and settings saved from the dashboard — see docs/configuration.md.

mod app;
mod check;
mod config;
mod local;
mod router;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// agentflow: turn Linear issues into Claude Code runs.
#[derive(Debug, Parser)]
#[command(name = "agentflow", version)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, env = "AGENTFLOW_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the configuration and reach each component; non-zero exit on a problem.
    Check,
    /// Tasks of the local source (on a running daemon).
    #[command(subcommand)]
    Task(TaskCommand),
    /// Print the configuration reference (Markdown).
    ConfigDocs,
}

#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// Add a task to the running daemon's local source.
    Add {
        /// Title.
        title: String,
        /// Description.
        #[arg(long, default_value = "")]
        body: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("AGENTFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => run(cli.config.as_deref()).await,
            Command::Check => check::check(cli.config.as_deref()).await,
            Command::Task(TaskCommand::Add { title, body }) => {
                check::add_task(cli.config.as_deref(), &title, &body).await
            }
            Command::ConfigDocs => {
                print!("{}", config::markdown_table());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// File and environment layers only (the database is not open yet).
pub(crate) fn load_base(file: Option<&std::path::Path>) -> app::anyhow_lite::Result<Config> {
    let file = file.map(PathBuf::from).or_else(|| {
        let default = PathBuf::from("agentflow.toml");
        default.is_file().then_some(default)
    });
    Ok(Config::load(file.as_deref(), &|k| std::env::var(k).ok(), &[])?)
}

/// All four layers: database settings over environment, file and defaults.
pub(crate) async fn load_full(
    base: &Config,
    store: &dyn agentflow::StateStore,
) -> app::anyhow_lite::Result<Config> {
    let mut db = Vec::new();
    for k in config::KEYS {
        if let Some(s) = store.get_setting(k.key).await? {
            db.push(s);
        }
    }
    Ok(Config::load(base.file.as_deref(), &|k| std::env::var(k).ok(), &db)?)
}

async fn run(file: Option<&std::path::Path>) -> app::anyhow_lite::Result<()> {
    let base = load_base(file)?;
    let database_url =
        base.get("storage.database_url").unwrap_or("sqlite://agentflow.db").to_owned();
    let backends = agentflow::backend::open(&database_url, base.get("storage.queue_url")).await?;
    let config = load_full(&base, backends.store.as_ref()).await?;

    let addr: std::net::SocketAddr =
        config.get("dashboard.addr").unwrap_or("127.0.0.1:8080").parse()?;
    let listener =
        agentflow::dashboard::bind(addr, config.get("dashboard.token").is_some()).await?;
    let local = listener.local_addr()?;
    let base_url = format!("http://{local}");

    let shutdown = agentflow::CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let router = router::SwapRouter::default();
    let mut listener = Some(listener);
    let mut server = None;

    let (reload, mut reloads) = watch::channel(0u64);
    let local = local::restore(backends.store.as_ref()).await?;
    let keeper_stop = agentflow::CancellationToken::new();
    let keeper = local::keep(local.clone(), backends.store.clone(), keeper_stop.clone());
    let mut config = config;
    loop {
        let generation = app::start(&config, &backends, &base_url, &local, reload.clone()).await?;
        router.set(generation.router.clone());
        // Serve (and announce the URL) only once there is a router, so no early request
        // meets an empty one.
        if let Some(listener) = listener.take() {
            let (router, stop) = (router.clone(), shutdown.clone());
            server = Some(tokio::spawn(async move {
                agentflow::dashboard::serve_on(
                    listener,
                    router.into_router(),
                    stop.cancelled_owned(),
                )
                .await
            }));
            println!("agentflow dashboard: {base_url}/");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                generation.shutdown.cancel();
                let _ = generation.done.await;
                break;
            }
            _ = reloads.changed() => {
                // One save of several keys asks once per key: rebuild once for all of them.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                reloads.borrow_and_update();
                generation.shutdown.cancel();
                let _ = generation.done.await;
                config = load_full(&base, backends.store.as_ref()).await?;
                tracing::info!("configuration reloaded");
            }
        }
    }
    if let Some(server) = server {
        server.await??;
    }
    // The engine has stopped: the last changes of the local tasks are written before the end.
    keeper_stop.cancel();
    let _ = keeper.await;
    Ok(())
}

async fn signals(shutdown: agentflow::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
