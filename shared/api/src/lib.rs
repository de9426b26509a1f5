//! pushpool's HTTP API: the subset of the Prefect 3 REST API that pushpool owns (work pools,
//! blocks, flows, deployments, flow runs and their states, the task runs of subflows, and the
//! meta endpoints the Prefect client and engine call), as one axum [`Router`] served under `/api` by the embedded host
//! and, on AWS, by the API Lambda.
//!
//! Behaviour follows the recorded exchanges of the real Prefect 3.9.1 client (the team's
//! `reference/prefect/exchanges/`): collection creates at trailing-slash paths, `201` on
//! create, `204` on PATCH and DELETE, `404` and `409` with `{"detail": "..."}` bodies that the
//! client turns into its create and overwrite paths, secrets of block documents obfuscated
//! unless `include_secrets=true`.
//!
//! Errors are mapped to responses in one place ([`error::ApiError`]): a client mistake is a
//! 4xx whose `detail` names the field, never a 500; a 500 body is generic and its cause is
//! logged once. A handler that panics anyway is answered a logged, generic 500 (never a
//! dropped connection): see [`panic_response`].
//!
//! Before any handler, [`guard`] refuses what a web page in the user's browser could send to
//! an open server on loopback (a foreign `Host`, a body that is not JSON); resource names are
//! checked by [`names`].
//!
//! This crate must not depend on provider SDKs or Lambda crates.
//!
//! ```no_run
//! # async fn demo(service: pushpool_service::Service) {
//! let app = pushpool_api::router(pushpool_api::AppState::new(service));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4200").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

pub mod auth;
pub mod cors;
pub mod error;
mod extract;
pub mod guard;
pub mod names;
mod routes;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use pushpool_service::Service;
use pushpool_store::Store;

pub use error::ApiError;
pub use routes::logs::{MAX_LOG_BATCH_BYTES, MAX_LOG_MESSAGE_CHARS, MAX_LOG_NAME_CHARS};

/// The Prefect server version pushpool reports at `GET /api/admin/version`: the client's
/// major version must match (the engine refuses another major).
pub const PREFECT_API_VERSION: &str = "3.9.1";

/// Largest request body accepted, in bytes (2 MiB: a base job template is about 28 KB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Longest retry delay accepted in a flow run's `empirical_policy`, in seconds (the rule
/// lives with the use cases: [`pushpool_service::MAX_RETRY_DELAY_SECONDS`]).
pub use pushpool_service::MAX_RETRY_DELAY_SECONDS;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    service: Service,
    auth: auth::AuthMode,
    /// Hosts answered in open mode besides [`guard::LOOPBACK_HOSTS`], lowercased, no port.
    allowed_hosts: Arc<Vec<String>>,
    /// Prefect's web UI, when served ([`ui`]).
    ui: Option<ui::Ui>,
    /// Origins allowed to call the API from a browser ([`cors`]); empty: CORS off.
    cors_origins: Arc<Vec<String>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a service (its store is the API's store).
    pub fn new(service: Service) -> Self {
        Self {
            service,
            auth: auth::AuthMode::Open,
            allowed_hosts: Arc::new(Vec::new()),
            ui: None,
            cors_origins: Arc::new(Vec::new()),
        }
    }

    /// Serves Prefect's web UI outside `/api` ([`ui::Ui`]).
    pub fn with_ui(mut self, ui: ui::Ui) -> Self {
        self.ui = Some(ui);
        self
    }

    /// Answers `host` (a `Host` header's host part: a name, an IPv4 address or a bracketed
    /// IPv6 address; any port) in open mode, besides loopback ([`guard`]). Anything that is
    /// not a valid host is ignored.
    pub fn allow_host(mut self, host: &str) -> Self {
        if let Some(host) = guard::host_of(host) {
            Arc::make_mut(&mut self.allowed_hosts).push(host);
        }
        self
    }

    /// Answers the host of `url` (the server's public URL, `https://pp.example.com/api`) in
    /// open mode; see [`AppState::allow_host`]. A URL without a host is ignored.
    pub fn allow_url_host(mut self, url: &str) -> Self {
        if let Some(host) = guard::url_host(url) {
            Arc::make_mut(&mut self.allowed_hosts).push(host);
        }
        self
    }

    /// Lets pages of `origins` (checked by [`cors::parse_allowed_origins`]) call the API
    /// from a browser ([`cors`]); an empty list keeps CORS off.
    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = Arc::new(origins);
        self
    }

    /// Sets whether requests need an API key.
    pub fn with_auth(mut self, auth: auth::AuthMode) -> Self {
        self.auth = auth;
        self
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.service.store()
    }
}

/// The whole API, with routes under `/api`.
pub fn router(state: AppState) -> Router {
    wrap(routes::routes(), state)
}

/// `api` under `/api` with every layer the API runs behind, outermost first: tracing, CORS
/// when origins are allowed ([`cors`]: a preflight is answered before the key check, which
/// it carries no key for), the panic guard, the request [`guard`], the body limit, API keys.
fn wrap(api: Router<AppState>, state: AppState) -> Router {
    let cors = tower::util::option_layer(cors::layer(&state.cors_origins));
    Router::new()
        .nest("/api", api)
        .fallback(ui_or_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_request,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response as fn(Box<dyn std::any::Any + Send + 'static>) -> Response,
        ))
        .layer(cors)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// A path outside `/api`: Prefect's UI when it is served, else `404 {"detail": "Not Found"}`.
async fn ui_or_not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> Response {
    let path = req.uri().path();
    let served = (!path.starts_with("/api/") && path != "/api")
        .then_some(())
        .and(state.ui.as_ref())
        .and_then(|ui| ui.respond(req.method(), path, req.headers()));
    match served {
        Some(response) => response,
        None => routes::not_found().await,
    }
}

/// The answer to a request whose handler panicked: a 500 with Prefect's generic
/// `{"detail": "Internal server error"}` body (the same as any other internal error), and the
/// panic's message logged once at error level. Without it the connection would be dropped
/// and the client would see an empty reply.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)");
    tracing::error!(panic = message, "a request handler panicked");
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"detail": "Internal server error"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_is_a_generic_500_with_a_json_body() {
        let store = pushpool_store_sqlite::SqliteStore::in_memory().unwrap();
        let service = Service::new(
            Arc::new(store),
            pushpool_providers::Providers::new(),
            pushpool_service::ServiceConfig::default(),
        );
        async fn boom() -> &'static str {
            panic!("deliberate panic in a test handler")
        }
        let api = routes::routes().route("/boom", axum::routing::get(boom));
        let app = wrap(api, AppState::new(service));
        let response = app
            .clone()
            .oneshot(Request::get("/api/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"detail":"Internal server error"}"#);
        // The server goes on answering.
        let health = app
            .oneshot(Request::get("/api/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
}
