//! `pushpool`: the embedded host and admin CLI.
//!
//! `pushpool serve` runs the whole control plane in one process over a SQLite file: the
//! Prefect-compatible API, the submitter (driven by the store's outbox) and the reconciler
//! (a timer). It is the default a new user starts; the AWS shape runs the same code as
//! Lambda functions.
//!
//! Environment variables (each also a flag of `serve`): `PUSHPOOL_BIND` (`127.0.0.1:4200`),
//! `PUSHPOOL_DATA_DIR` (`~/.pushpool`), `PUSHPOOL_PUBLIC_URL` (the `PREFECT_API_URL` jobs
//! get; defaults to the bound address), `PUSHPOOL_RECONCILE_INTERVAL` (seconds, 5),
//! `RUST_LOG` (log filter). ECS pools use the standard AWS variables (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials) unless a pool's `aws_credentials` block says otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pushpool_providers::Providers;
use pushpool_providers::ecs::EcsProvider;
use pushpool_providers::process::ProcessProvider;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::sqlite::SqliteStore;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "pushpool",
    version,
    about = "Serverless push work pools for Prefect flow runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and submit flow runs, in one process over a SQLite file.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PUSHPOOL_BIND", default_value = "127.0.0.1:4200")]
    bind: SocketAddr,
    /// Directory of the SQLite database (created with mode 0700 if missing).
    #[arg(long, env = "PUSHPOOL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Public base URL of this server, handed to jobs as `PREFECT_API_URL` (with `/api`
    /// appended when missing). Defaults to `http://<bind>/api`.
    #[arg(long, env = "PUSHPOOL_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds between reconciler ticks.
    #[arg(long, env = "PUSHPOOL_RECONCILE_INTERVAL", default_value_t = 5)]
    reconcile_interval: u64,
}

/// The `PREFECT_API_URL` for jobs: `public_url` with `/api` appended when missing.
fn api_url(public_url: Option<&str>, bind: SocketAddr) -> String {
    let base = public_url.map_or_else(
        || format!("http://{bind}"),
        |u| u.trim_end_matches('/').to_owned(),
    );
    if base.ends_with("/api") {
        base
    } else {
        format!("{base}/api")
    }
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".pushpool")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,aws_config=error".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    create_private_dir(&data_dir)?;
    let db = data_dir.join("pushpool.db");
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let api_url = api_url(args.public_url.as_deref(), args.bind);

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let providers = Providers::new()
        .with("process", Arc::new(ProcessProvider::new()))
        .with("ecs:push", Arc::new(EcsProvider::new(sdk)));
    let service = Service::new(
        Arc::new(store),
        providers,
        ServiceConfig {
            api_url: api_url.clone(),
            ..ServiceConfig::default()
        },
    );

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let local = listener.local_addr()?;
    let app = pushpool_api::router(pushpool_api::AppState::new(service.clone()));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let submitter = {
        let service = service.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { service.run_submitter(8, stopped(rx)).await })
    };
    let reconciler = {
        let service = service.clone();
        let rx = stop_rx.clone();
        let every = Duration::from_secs(args.reconcile_interval.max(1));
        tokio::spawn(async move { service.run_reconciler(every, stopped(rx)).await })
    };

    tracing::info!(
        "pushpool serving the Prefect API at http://{local}/api (data: {}; jobs get PREFECT_API_URL={api_url})",
        db.display()
    );
    if local.ip().is_loopback() {
        tracing::info!("open mode: no API key is required on loopback");
    } else {
        tracing::warn!(
            "listening on a non-loopback address without API keys: anyone who can reach {local} can use this API"
        );
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop_tx.send(true);
        })
        .await?;
    let _ = submitter.await;
    let _ = reconciler.await;
    tracing::info!("pushpool stopped");
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_appends_api_once() {
        let bind: SocketAddr = "127.0.0.1:4200".parse().unwrap();
        assert_eq!(api_url(None, bind), "http://127.0.0.1:4200/api");
        assert_eq!(
            api_url(Some("https://pp.example.com/"), bind),
            "https://pp.example.com/api"
        );
        assert_eq!(api_url(Some("http://h:1/api"), bind), "http://h:1/api");
    }
}
