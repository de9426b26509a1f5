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
//! logged once.
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
pub mod error;
mod extract;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use pushpool_service::Service;
use pushpool_store::Store;

pub use error::ApiError;

/// The Prefect server version pushpool reports at `GET /api/admin/version`: the client's
/// major version must match (the engine refuses another major).
pub const PREFECT_API_VERSION: &str = "3.9.1";

/// Largest request body accepted, in bytes (2 MiB: a base job template is about 28 KB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    service: Service,
    auth: auth::AuthMode,
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
        }
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
    Router::new()
        .nest("/api", routes::routes())
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
