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
//! `PUSHPOOL_PROVIDER_RETRY_BUDGET` (seconds a provider call is retried on transient errors,
//! 75; the claim deadline is 60 s more), `PUSHPOOL_LOG_RETENTION_DAYS` (days flow run log
//! lines are kept, 30), `RUST_LOG` (log filter). ECS pools use the standard AWS variables (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials) unless a pool's `aws_credentials` block says otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pushpool::{ServeConfig, Server};

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
    /// Manage API keys (stored hashed: in the data directory's database, or with `--table`
    /// in the DynamoDB table of a pushpool deployed to AWS).
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Prefect's web UI as static files (for hosting behind a CDN, as `infra/deploy.sh` does).
    #[command(subcommand)]
    Ui(UiCommand),
}

#[derive(Debug, Subcommand)]
enum UiCommand {
    /// Write both of Prefect's UI bundles, prepared as `pushpool serve` serves them, and the
    /// `/ui-settings` body to a directory, each file at its URL path (see
    /// `pushpool_api::ui::Ui::export`). The settings say `auth: BASIC` (keys required).
    /// Exits with status 3 when `--ui auto` finds no `prefect` installation.
    Export {
        /// The directory to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The `PREFECT_API_URL` the UI calls (for AWS: the stack's `ApiUrl` output, the
        /// CloudFront one).
        #[arg(long)]
        api_url: String,
        /// Where the UI comes from: `auto` (the `prefect` package of the `python` on PATH, as
        /// `serve --ui auto`) or a `prefect/server`, `prefect` or `site-packages` directory.
        #[arg(long, env = "PUSHPOOL_UI", default_value = "auto")]
        ui: pushpool::UiSource,
        /// Also write the list of files with their Content-Type and Cache-Control, as JSON
        /// (`[{"key", "content_type", "cache_control", "size"}]`), to this file.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it once (it is stored hashed and cannot be shown again).
    Create {
        /// A name to recognise the key by.
        name: String,
        /// Register the key read from standard input instead of generating one (the jobs'
        /// key `infra/deploy.sh` generated for a stack); at least 20 characters.
        #[arg(long)]
        key_stdin: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List keys (names, ids, creation time, revoked or not; never the keys).
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Revoke a key by id: requests with it get 401 from then on.
    Revoke {
        /// The key's id (from `list`).
        id: uuid::Uuid,
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// Directory of the SQLite database [default: ~/.pushpool].
    #[arg(long, env = "PUSHPOOL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The DynamoDB table of a pushpool deployed to AWS (the stack's `TableName` output):
    /// keys are written there instead, with the AWS SDK's default credentials and region
    /// (`AWS_PROFILE`, `AWS_REGION`, ...).
    #[arg(long, env = "PUSHPOOL_TABLE", conflicts_with = "data_dir")]
    table: Option<String>,
}

impl DataDirArg {
    /// The store the keys live in.
    async fn open(self) -> anyhow::Result<std::sync::Arc<dyn pushpool_store::Store>> {
        if let Some(table) = self.table {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            return Ok(std::sync::Arc::new(
                pushpool_store_dynamodb::DynamoStore::new(client, &table),
            ));
        }
        let dir = self.data_dir.unwrap_or_else(default_data_dir);
        Ok(std::sync::Arc::new(pushpool::open_store(&dir)?))
    }
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PUSHPOOL_BIND", default_value = "127.0.0.1:4200")]
    bind: SocketAddr,
    /// Directory of the SQLite database (created with mode 0700 if missing) [default: ~/.pushpool].
    #[arg(long, env = "PUSHPOOL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Public base URL of this server, handed to jobs as `PREFECT_API_URL` (with `/api`
    /// appended when missing) [default: http://<bind>/api].
    #[arg(long, env = "PUSHPOOL_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds between reconciler ticks.
    #[arg(long, env = "PUSHPOOL_RECONCILE_INTERVAL", default_value_t = 5)]
    reconcile_interval: u64,
    /// Require an API key (`Authorization: Bearer`, `PREFECT_API_KEY`) on every route but
    /// /api/health.
    #[arg(long, env = "PUSHPOOL_REQUIRE_API_KEY")]
    require_api_key: bool,
    /// The key jobs get as PREFECT_API_KEY to report back (required with --require-api-key).
    #[arg(long, env = "PUSHPOOL_JOB_API_KEY", hide_env_values = true)]
    job_api_key: Option<String>,
    /// Seconds a provider call (ECS, Cloud Run, ACI) is retried on transient errors
    /// (throttling, 5xx, timeouts) before the flow run ends CRASHED. A run claimed but
    /// without an infrastructure pid is resubmitted 60 s after this.
    #[arg(long, env = "PUSHPOOL_PROVIDER_RETRY_BUDGET", default_value_t = 75,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    provider_retry_budget: u64,
    /// Prefect's web UI: `auto` (from the `prefect` package of the `python` on PATH),
    /// `off`, or a path (a `prefect/server`, `prefect` or `site-packages` directory).
    #[arg(long, env = "PUSHPOOL_UI", default_value = "auto")]
    ui: pushpool::UiSource,
    /// Days flow run log lines (`POST /api/logs/`, pushpool's own lines) are kept; older
    /// ones are deleted hourly.
    #[arg(long, env = "PUSHPOOL_LOG_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    log_retention_days: u64,
    /// Days events (`/api/events/in`, the flow run state change events) are kept after they
    /// were received; older ones are deleted hourly (Prefect's default: 7).
    #[arg(long, env = "PUSHPOOL_EVENT_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    event_retention_days: u64,
    /// Origins (comma-separated `https://host[:port]`) whose pages may call the API from a
    /// browser (CORS); off by default, as the UI served here needs none. `*` is refused.
    #[arg(long, env = "PUSHPOOL_CORS_ALLOWED_ORIGINS", default_value = "",
          value_parser = pushpool_api::cors::parse_allowed_origins)]
    cors_allowed_origins: Origins,
}

/// The parsed `--cors-allowed-origins` list (an alias, so that clap takes the setting as one
/// value rather than one value per occurrence).
type Origins = Vec<String>;

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".pushpool")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG chooses the level; the targets that log secrets stay capped whatever it says.
    pushpool_telemetry::init(pushpool_telemetry::Options {
        filter: pushpool_telemetry::cli_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
            "info,tower_http=warn,aws_config=error,aws_smithy_runtime=error,aws_runtime=error",
        ),
        json: false,
        ansi: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        time: true,
        writer: pushpool_telemetry::Writer::Stderr,
    })?;
    match Cli::parse().command {
        Command::Serve(args) => {
            let mut config = ServeConfig::new(args.data_dir.unwrap_or_else(default_data_dir));
            config.bind = args.bind;
            config.public_url = args.public_url;
            config.reconcile_interval = Duration::from_secs(args.reconcile_interval.max(1));
            if args.require_api_key {
                config.auth = pushpool_api::auth::AuthMode::Required;
            }
            config.job_api_key = args.job_api_key;
            config.ui = args.ui;
            config.cors_allowed_origins = args.cors_allowed_origins;
            config.service = config
                .service
                .with_retry_budget(Duration::from_secs(args.provider_retry_budget));
            config.service.log_retention = Duration::from_secs(args.log_retention_days * 86_400);
            config.service.event_retention =
                Duration::from_secs(args.event_retention_days * 86_400);
            let server = Server::bind(config).await?;
            server.run(shutdown_signal()).await
        }
        Command::ApiKey(cmd) => api_key(cmd).await,
        Command::Ui(UiCommand::Export {
            out,
            api_url,
            ui,
            manifest,
        }) => ui_export(&out, &api_url, &ui, manifest.as_deref()),
    }
}

/// `pushpool ui export`.
fn ui_export(
    out: &std::path::Path,
    api_url: &str,
    source: &pushpool::UiSource,
    manifest: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        anyhow::bail!("--api-url: {api_url:?} is not an http(s) URL");
    }
    let dir = match source {
        pushpool::UiSource::Off => anyhow::bail!("--ui off: nothing to export"),
        pushpool::UiSource::Auto => match pushpool_api::ui::find_prefect_server_dir() {
            Some(dir) => dir,
            None => {
                eprintln!(
                    "pushpool ui export: no prefect installation found (the `python` on PATH \
                     cannot import prefect); install prefect (pip install prefect==3.9.1) or \
                     pass --ui <site-packages directory>"
                );
                std::process::exit(3);
            }
        },
        pushpool::UiSource::Dir(path) => pushpool_api::ui::server_dir_under(path),
    };
    let ui = pushpool_api::ui::Ui::load(&dir, api_url, true)?;
    let files = ui.export(out)?;
    if let Some(path) = manifest {
        std::fs::write(path, serde_json::to_vec_pretty(&files)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    eprintln!(
        "pushpool ui export: {} files ({:.1} MiB) from {} to {}",
        files.len(),
        bytes as f64 / 1_048_576.0,
        dir.display(),
        out.display()
    );
    Ok(())
}

async fn api_key(cmd: ApiKeyCommand) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCommand::Create {
            name,
            key_stdin,
            data,
        } => {
            let key = if key_stdin {
                let mut key = String::new();
                std::io::stdin().read_line(&mut key)?;
                let key = key.trim().to_owned();
                if key.len() < 20 || key.chars().any(char::is_whitespace) {
                    anyhow::bail!(
                        "--key-stdin: the key read from standard input must be at least 20 characters without spaces"
                    );
                }
                key
            } else {
                pushpool_api::auth::generate_key()
            };
            let store = data.open().await?;
            let record = pushpool_core::model::ApiKey {
                id: uuid::Uuid::new_v4(),
                name,
                hash: pushpool_api::auth::hash_key(&key),
                created: chrono::Utc::now(),
                revoked: false,
            };
            store.create_api_key(&record).await?;
            if key_stdin {
                eprintln!("registered API key '{}' ({})", record.name, record.id);
            } else {
                eprintln!(
                    "created API key '{}' ({}); it is shown once:",
                    record.name, record.id
                );
                println!("{key}");
            }
        }
        ApiKeyCommand::List { data } => {
            let store = data.open().await?;
            for k in store.list_api_keys().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    k.created.to_rfc3339(),
                    if k.revoked { "revoked" } else { "active" }
                );
            }
        }
        ApiKeyCommand::Revoke { id, data } => {
            let store = data.open().await?;
            store.revoke_api_key(id).await?;
            eprintln!("revoked API key {id}");
        }
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
