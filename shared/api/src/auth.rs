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
pub(crate) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.auth == AuthMode::Open || req.uri().path() == "/api/health" {
        return next.run(req).await;
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            "Missing API key: send 'Authorization: Bearer <key>' (PREFECT_API_KEY).",
        );
    };
    let Some(key) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return unauthorized("Malformed Authorization header: expected 'Bearer <key>'.");
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
