//! Extractors whose rejections are [`ApiError`]s, so a malformed body gets a 4xx whose
//! detail names the field (serde's message carries the path, e.g. "missing field `name`").

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Whether a body rejection is the size limit: axum reports it as 413, or as a 400
/// "Failed to buffer the request body: length limit exceeded" depending on where the
/// limit tripped.
pub(crate) fn too_large(status: axum::http::StatusCode, text: &str) -> bool {
    status == axum::http::StatusCode::PAYLOAD_TOO_LARGE || text.contains("length limit exceeded")
}

/// `axum::Json` with [`ApiError`] rejections (400 for non-JSON, 422 for a wrong shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                use std::error::Error;
                let detail = e.source().map_or_else(|| e.body_text(), |s| s.to_string());
                Err(ApiError::Invalid(format!("Invalid request body: {detail}")))
            }
            Err(e) if too_large(e.status(), &e.body_text()) => Err(ApiError::PayloadTooLarge),
            Err(e) => Err(ApiError::BadRequest(format!(
                "Invalid request body: {}",
                e.body_text()
            ))),
        }
    }
}

/// An optional JSON body: empty bodies (the filter endpoints are sometimes called without one)
/// give `T::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if too_large(e.status(), &e.body_text()) {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::Invalid(format!("Invalid request body: {e}")))
    }
}

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e: QueryRejection| ApiError::Invalid(e.body_text()))
    }
}
