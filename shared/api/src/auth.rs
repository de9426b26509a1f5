//! API keys: `Authorization: Bearer <key>`, what the Prefect client sends from
//! `PREFECT_API_KEY`. Keys are stored as the hex SHA-256 of the key, never in clear; a
//! request with no key, an unknown key or a revoked key is answered 401 (every route but
//! `/api/health`, which load balancers and `prefect profile use` call without one).
//!
//! The embedded server on loopback may run open ([`AuthMode::Open`]); the AWS shape always
//! requires keys.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::AppState;

/// Whether requests need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No key needed (embedded server on loopback).
    #[default]
    Open,
    /// A valid, unrevoked key on every route but `/api/health`.
    Required,
}

/// The stored form of a key: hex SHA-256 (64 characters).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: `pp_` and 40 letters and digits (about 238 bits).
pub fn generate_key() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!("pp_{}", Alphanumeric.sample_string(&mut rand::rng(), 40))
}

fn unauthorized(detail: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({ "detail": detail })),
    )
        .into_response()
}

/// The middleware: checks the bearer key when the state's mode is [`AuthMode::Required`].
/// The key in an `Authorization` header value: `Bearer <key>` (what the Prefect client sends
/// from `PREFECT_API_KEY`), or `Basic <base64>` (what Prefect's UI sends when
/// `/ui-settings` says `auth: "BASIC"`) whose decoded text is the key or `user:key`: Prefect's
/// UI sends the text typed into its login form (`key`, `user:key`, `key:`), Prefect's server compares it with
/// `PREFECT_SERVER_API_AUTH_STRING` (`user:password`).
pub fn key_of(value: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(key) = value.strip_prefix("Bearer ") {
        return Some(key.to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(match text.split_once(':') {
        // `key:` (a client that always adds the colon) is the key.
        Some((key, "")) => key.to_owned(),
        Some((_, key)) => key.to_owned(),
        None => text,
    })
}

/// Whether `key` is a stored, unrevoked API key (the check of every request, and of the auth
/// message of the event sockets: `pushpool_service::event_sockets`).
///
/// # Errors
/// The store's, but not found (which is `false`).
pub async fn key_is_valid(
    store: &dyn pushpool_store::Store,
    key: &str,
) -> Result<bool, pushpool_store::StoreError> {
    match store.read_api_key_by_hash(&hash_key(key.trim())).await {
        Ok(k) => Ok(!k.revoked),
        Err(pushpool_store::StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A WebSocket upgrade of `/api/events/out` or `/api/logs/out` without an `Authorization`
/// header: Prefect's subscribers (`PrefectEventSubscriber`, `PrefectLogsSubscriber`) never
/// send one and authenticates with its first message
/// (`{"type":"auth","token":…}`), which the route checks (`routes/events.rs`, `routes/logs.rs`).
///
/// `/api/events/in` is not one: Prefect 3.9.1's events client sends `Authorization: Basic`
/// there whenever it has `PREFECT_API_AUTH_STRING` (its only credential for the socket), and
/// it tolerates a 401 on the upgrade (it logs and goes on without events), whereas an auth
/// message refused after the upgrade is fatal to `flow.serve()`'s runner.
fn is_event_socket_upgrade(req: &Request) -> bool {
    let path = req.uri().path();
    (path == "/api/events/out" || path == "/api/logs/out")
        && !req.headers().contains_key(header::AUTHORIZATION)
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub(crate) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/");
    // The UI's files and settings are public, as on Prefect's server: the data is behind
    // the API, which the UI calls with the credentials it asks for.
    if state.auth == AuthMode::Open
        || path == "/api/health"
        || (!is_api && state.ui.is_some())
        || is_event_socket_upgrade(&req)
    {
        return next.run(req).await;
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            "Missing API key: send 'Authorization: Bearer <key>' (PREFECT_API_KEY).",
        );
    };
    let Some(key) = value.to_str().ok().and_then(key_of) else {
        return unauthorized(
            "Malformed Authorization header: expected 'Bearer <key>' or 'Basic <base64 of [user:]key>'.",
        );
    };
    match state
        .store()
        .read_api_key_by_hash(&hash_key(key.trim()))
        .await
    {
        Ok(k) if !k.revoked => next.run(req).await,
        Ok(_) | Err(pushpool_store::StoreError::NotFound(_)) => unauthorized("Invalid API key."),
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}
