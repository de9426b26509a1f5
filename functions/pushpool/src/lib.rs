//! The embedded host: everything `pushpool serve` runs, as a library so that tests and the
//! benchmark start the very same server in-process.
//!
//! [`Server::bind`] opens the SQLite store in the data directory, wires the providers
//! (`process` and `ecs:push`), binds the listener; [`Server::run`] serves the API and drives
//! the submitter (the store's outbox) and the reconciler (a timer) until shutdown.

pub mod collection_blocks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pushpool_provider_process::ProcessProvider;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Settings of `pushpool serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:4200`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// Directory of `pushpool.db` (created 0700 when missing).
    pub data_dir: PathBuf,
    /// Public base URL handed to jobs as `PREFECT_API_URL` (`/api` appended when missing);
    /// `None`: the bound address. In open mode its host is answered besides loopback
    /// ([`pushpool_api::guard`]).
    pub public_url: Option<String>,
    /// Time between reconciler ticks.
    pub reconcile_interval: Duration,
    /// Time between runs of the log retention task, which deletes log lines older than
    /// `service.log_retention` (1 hour; it also runs at start).
    pub log_retention_interval: Duration,
    /// The AWS configuration for `ecs:push` pools; `None` loads the default chain
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials).
    pub aws: Option<aws_config::SdkConfig>,
    /// Whether API requests need a key (`Authorization: Bearer`).
    pub auth: pushpool_api::auth::AuthMode,
    /// The key handed to jobs as `PREFECT_API_KEY` so the engine can report back; required
    /// when `auth` is `Required`.
    pub job_api_key: Option<String>,
    /// Overrides of the submission service's settings (deadlines, the provider retry
    /// budget); `api_url` is always derived from `public_url`. Checked by [`Server::bind`]
    /// ([`ServiceConfig::validate`]).
    pub service: ServiceConfig,
    /// Providers registered after the defaults, replacing a default of the same pool type
    /// (tests point them at local fakes).
    pub providers: Providers,
    /// Where Prefect's web UI comes from ([`UiSource`]); `Off` by default here, `Auto` for
    /// `pushpool serve`.
    pub ui: UiSource,
    /// Origins whose pages may call the API from a browser (`--cors-allowed-origins`,
    /// checked by [`pushpool_api::cors::parse_allowed_origins`]); empty: CORS off, the
    /// default (the UI served here is same-origin).
    pub cors_allowed_origins: Vec<String>,
}

/// Where `pushpool serve` finds Prefect's web UI ([`pushpool_api::ui`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiSource {
    /// No UI: paths outside `/api` are 404.
    Off,
    /// The `prefect` package of the `python` on `PATH`; none found: no UI, and the server
    /// says at start how to enable it.
    Auto,
    /// A `prefect/server` directory, a `prefect` package directory or a `site-packages`
    /// directory holding one; a directory without a bundle fails the start.
    Dir(PathBuf),
}

impl std::str::FromStr for UiSource {
    type Err = std::convert::Infallible;

    /// `off`, `auto`, or a path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "off" | "false" | "none" => UiSource::Off,
            "auto" | "" => UiSource::Auto,
            path => UiSource::Dir(PathBuf::from(path)),
        })
    }
}

impl ServeConfig {
    /// Defaults: `127.0.0.1:4200`, `~/.pushpool`, reconcile every 5 s.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 4200)),
            data_dir,
            public_url: None,
            reconcile_interval: Duration::from_secs(5),
            log_retention_interval: Duration::from_secs(3600),
            aws: None,
            auth: pushpool_api::auth::AuthMode::Open,
            job_api_key: None,
            service: ServiceConfig::default(),
            providers: Providers::new(),
            ui: UiSource::Off,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// The `PREFECT_API_URL` for jobs: `public_url` with `/api` appended when missing, else the
/// bound address.
pub fn api_url(public_url: Option<&str>, bound: SocketAddr) -> String {
    let base = public_url.map_or_else(
        || format!("http://{bound}"),
        |u| u.trim_end_matches('/').to_owned(),
    );
    if base.ends_with("/api") {
        base
    } else {
        format!("{base}/api")
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    service: Service,
    auth: pushpool_api::auth::AuthMode,
    reconcile_interval: Duration,
    log_retention_interval: Duration,
    db: PathBuf,
    public_url: Option<String>,
    ui: Option<pushpool_api::ui::Ui>,
    cors_allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store and binds the listener.
    ///
    /// # Errors
    /// When the data directory or database cannot be created, or the address cannot be bound.
    pub async fn bind(config: ServeConfig) -> anyhow::Result<Self> {
        if config.auth == pushpool_api::auth::AuthMode::Required && config.job_api_key.is_none() {
            anyhow::bail!(
                "PUSHPOOL_JOB_API_KEY is required when API keys are required: jobs need a key to \
                 report their states (create one with `pushpool api-key create jobs`)"
            );
        }
        config.service.validate()?;
        create_private_dir(&config.data_dir)?;
        let db = config.data_dir.join("pushpool.db");
        let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let bound = listener.local_addr()?;
        let sdk = match config.aws {
            Some(sdk) => sdk,
            None => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await
            }
        };
        // Process jobs are recorded in the data dir, so that a restart neither starts one
        // twice nor loses track of a live one.
        let process_dir = config.data_dir.join("process-jobs");
        let process = ProcessProvider::new()
            .with_state_dir(&process_dir)
            .with_context(|| format!("creating {}", process_dir.display()))?;
        let providers = Providers::new()
            .with("process", Arc::new(process))
            .with_all(pushpool_push_providers::push_providers(sdk)?)
            .with_all(config.providers);
        tracing::info!(
            "pool types: {}{}",
            providers.usable_pool_types().join(", "),
            if cfg!(all(feature = "ecs", feature = "cloud-run", feature = "aci")) {
                ""
            } else {
                " (this build leaves out the others: cargo build -p pushpool adds them)"
            }
        );
        let service = Service::new(
            Arc::new(store),
            providers,
            ServiceConfig {
                api_url: api_url(config.public_url.as_deref(), bound),
                api_key: config.job_api_key.clone(),
                ..config.service
            },
        )
        // Runs due before the reconciler's next tick are submitted at their time.
        .with_local_timers(config.reconcile_interval.max(Duration::from_millis(100)));
        let prefect_dir = prefect_server_dir(&config.ui);
        let ui = load_ui(
            &config.ui,
            prefect_dir.as_deref(),
            &api_url(config.public_url.as_deref(), bound),
            config.auth == pushpool_api::auth::AuthMode::Required,
        )?;
        if let (Some(dir), Some(_)) = (&prefect_dir, &ui) {
            match collection_blocks::register(service.store().as_ref(), dir).await {
                Ok(Some(done)) => tracing::debug!(?done, "collection block types registered"),
                Ok(None) => {}
                Err(e) => tracing::warn!("collection block types not registered: {e:#}"),
            }
        }
        Ok(Self {
            listener,
            service,
            auth: config.auth,
            reconcile_interval: config.reconcile_interval,
            log_retention_interval: config.log_retention_interval,
            db,
            public_url: config.public_url,
            ui,
            cors_allowed_origins: config.cors_allowed_origins,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The service (tests drive its steps directly).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until `shutdown` resolves, then stops the submitter and reconciler.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let local = self.listener.local_addr()?;
        let mut state = app_state(
            self.service.clone(),
            self.auth,
            local,
            self.public_url.as_deref(),
        )
        .with_cors_origins(self.cors_allowed_origins.clone());
        if let Some(ui) = self.ui.clone() {
            state = state.with_ui(ui);
        }
        let app = pushpool_api::router(state);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let submitter = {
            let service = self.service.clone();
            let rx = stop_rx.clone();
            tokio::spawn(async move { service.run_submitter(8, stopped(rx)).await })
        };
        let reconciler = {
            let service = self.service.clone();
            let every = self.reconcile_interval.max(Duration::from_millis(100));
            let rx = stop_rx.clone();
            tokio::spawn(async move { service.run_reconciler(every, stopped(rx)).await })
        };
        let retention = {
            let service = self.service.clone();
            let every = self.log_retention_interval;
            tokio::spawn(async move { service.run_log_retention(every, stopped(stop_rx)).await })
        };
        tracing::info!(
            "pushpool serving the Prefect API at http://{local}/api (data: {})",
            self.db.display()
        );
        match &self.ui {
            Some(ui) => tracing::info!(
                "Prefect's web UI at {} ({} files; /v2 for the new UI)",
                self.public_url
                    .as_deref()
                    .map(|u| u.trim_end_matches('/').trim_end_matches("/api").to_owned())
                    .unwrap_or_else(|| format!("http://{local}")),
                ui.file_count()
            ),
            None => tracing::info!(
                "no web UI: the `python` on PATH has no `prefect` package; install prefect \
                 (pip install prefect==3.9.1) or pass --ui <its prefect/server directory>"
            ),
        }
        if self.auth == pushpool_api::auth::AuthMode::Required {
            tracing::info!("API keys required (Authorization: Bearer); /api/health is open");
        } else if local.ip().is_loopback() {
            tracing::info!(
                "open mode: no API key is required on loopback; only the hosts 127.0.0.1, \
                 localhost, [::1]{} are answered",
                open_mode_hosts(local, self.public_url.as_deref())
                    .iter()
                    .map(|h| format!(" and {h}"))
                    .collect::<String>()
            );
        } else {
            tracing::warn!(
                "listening on {local} without API keys: anyone who can reach it can use this API"
            );
        }
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await?;
        let _ = submitter.await;
        let _ = reconciler.await;
        let _ = retention.await;
        tracing::info!("pushpool stopped");
        Ok(())
    }
}

/// Loads Prefect's UI as `source` says; `Ok(None)` when it is off or (`Auto`) not found.
/// The `prefect/server` directory `source` names, if any.
fn prefect_server_dir(source: &UiSource) -> Option<PathBuf> {
    match source {
        UiSource::Off => None,
        UiSource::Auto => pushpool_api::ui::find_prefect_server_dir(),
        UiSource::Dir(path) => Some(pushpool_api::ui::server_dir_under(path)),
    }
}

/// Prefect's UI from `dir` ([`prefect_server_dir`] of `source`).
fn load_ui(
    source: &UiSource,
    dir: Option<&std::path::Path>,
    api_url: &str,
    basic_auth: bool,
) -> anyhow::Result<Option<pushpool_api::ui::Ui>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    match pushpool_api::ui::Ui::load(dir, api_url, basic_auth) {
        Ok(ui) => Ok(Some(ui)),
        Err(e) if *source == UiSource::Auto => {
            tracing::warn!("no web UI: {e}");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("--ui: {e}")),
    }
}

/// The API's state: `auth`, and in open mode the hosts answered besides loopback
/// ([`open_mode_hosts`]).
fn app_state(
    service: Service,
    auth: pushpool_api::auth::AuthMode,
    bound: SocketAddr,
    public_url: Option<&str>,
) -> pushpool_api::AppState {
    let mut state = pushpool_api::AppState::new(service).with_auth(auth);
    for host in open_mode_hosts(bound, public_url) {
        state = state.allow_host(&host);
    }
    state
}

/// The hosts open mode answers besides loopback (`127.0.0.1`, `localhost`, `[::1]`): the host
/// of `public_url`, and the bound address when it is not loopback. The bound address is what
/// jobs dial when there is no public URL (`http://0.0.0.0:4200/api` after
/// `--bind 0.0.0.0:4200`), and what a client that dials the address itself sends; a page that
/// rebinds its own name to this machine sends its own name, which stays refused.
pub fn open_mode_hosts(bound: SocketAddr, public_url: Option<&str>) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(host) = public_url
        .and_then(|u| u.parse::<axum::http::Uri>().ok())
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
    {
        hosts.push(host);
    }
    if !bound.ip().is_loopback() {
        let host = match bound.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        hosts.push(host);
    }
    hosts
}

/// Opens the store in `data_dir` (for the admin commands).
///
/// # Errors
/// When the directory or database cannot be created.
pub fn open_store(data_dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    create_private_dir(data_dir)?;
    let db = data_dir.join("pushpool.db");
    SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))
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
    fn open_mode_answers_the_public_url_host_and_a_non_loopback_bound_address() {
        let loopback: SocketAddr = "127.0.0.1:4200".parse().unwrap();
        assert_eq!(open_mode_hosts(loopback, None), Vec::<String>::new());
        assert_eq!(
            open_mode_hosts(loopback, Some("https://PP.example.com:8443/api")),
            ["pp.example.com"]
        );
        assert_eq!(
            open_mode_hosts("0.0.0.0:4200".parse().unwrap(), None),
            ["0.0.0.0"]
        );
        assert_eq!(
            open_mode_hosts("192.0.2.7:4200".parse().unwrap(), Some("http://h:1")),
            ["h", "192.0.2.7"]
        );
        assert_eq!(
            open_mode_hosts("[::]:4200".parse().unwrap(), None),
            ["[::]"]
        );
    }

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
