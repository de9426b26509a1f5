//! The API's error type and its single mapping to HTTP responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushpool_core::CoreError;
use pushpool_core::template::TemplateError;
use pushpool_store::StoreError;
use serde_json::json;

/// An API failure. Each variant is one status code; see [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404, with Prefect's message (`Work pool "x" not found.`).
    #[error("{0}")]
    NotFound(String),
    /// 409 (`A work pool with this name already exists.`).
    #[error("{0}")]
    Conflict(String),
    /// 422: the request is well-formed JSON but a field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// 400: the body is not the JSON expected.
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is larger than [`crate::MAX_BODY_BYTES`].
    #[error("request body larger than {} bytes", crate::MAX_BODY_BYTES)]
    PayloadTooLarge,
    /// 413: what the request would store is larger than the store keeps
    /// ([`StoreError::TooLarge`]: a flow run or task run over
    /// [`pushpool_store::MAX_RUN_DOCUMENT_BYTES`]); the detail names the size, the limit and
    /// the largest field. 413 rather than 422: nothing in the content is invalid, only its
    /// size is refused (RFC 9110 §15.5.14), as for a request body over
    /// [`crate::MAX_BODY_BYTES`].
    #[error("{0}")]
    ContentTooLarge(String),
    /// 403: the request is refused whatever its body (a `Host` that open mode does not
    /// answer); the message says why and how to allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 415: a state-changing request carries a body that is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: the store is busy ([`StoreError::Transient`], [`StoreError::VersionConflict`]:
    /// generic detail and `Retry-After: 1`, the Prefect client retries it), or cannot serve
    /// until an operator acts ([`StoreError::Unavailable`]: the detail says what is wrong).
    #[error("service temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// 503 with `Retry-After: 1`: the resource kept changing under the write
    /// ([`pushpool_service::KeptChanging`]); the detail says so (`flow run <id> kept changing
    /// while it was being written (8 attempts); retry`). The Prefect client retries a 503.
    #[error("{0}")]
    KeptChanging(String),
    /// 507 Insufficient Storage: the store is full ([`StoreError::Full`]); nothing of the
    /// request was written.
    #[error("storage is full")]
    StorageFull(#[source] StoreError),
    /// 423 Locked: concurrency slots are not free (Prefect's answer to an increment); the
    /// `detail` is Prefect's (`Locked` when it gives none), with `Retry-After` in seconds
    /// when Prefect sends one.
    #[error("{detail}")]
    Locked {
        /// The response's detail.
        detail: String,
        /// The `Retry-After` header's value.
        retry_after: Option<String>,
    },
    /// 410 Gone: a concurrency lease expired or was released.
    #[error("{0}")]
    Gone(String),
    /// 500: logged with its cause chain, answered with a generic body.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::NotFound(m),
            StoreError::Conflict(m) => Self::Conflict(m),
            // A use case that takes a bounded counter (a concurrency slot) answers its own
            // way (Prefect's WAIT); one that lets it through is a 409 naming the counter.
            e @ StoreError::LimitReached(_) => Self::Conflict(e.to_string()),
            e @ (StoreError::Transient(_)
            | StoreError::VersionConflict(_)
            | StoreError::Unavailable { .. }) => Self::Unavailable(e),
            e @ StoreError::Full(_) => Self::StorageFull(e),
            StoreError::TooLarge(m) => Self::ContentTooLarge(m),
            e @ StoreError::Backend(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<pushpool_service::UseCaseError> for ApiError {
    fn from(e: pushpool_service::UseCaseError) -> Self {
        use pushpool_service::UseCaseError;
        match e {
            UseCaseError::Invalid(m) => Self::Invalid(m),
            UseCaseError::NotFound(m) => Self::NotFound(m),
            UseCaseError::BadRequest(m) => Self::BadRequest(m),
            UseCaseError::KeptChanging(k) => Self::KeptChanging(k.to_string()),
            UseCaseError::Store(e) => e.into(),
        }
    }
}

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        Self::Invalid(e.to_string())
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self::Invalid(e.to_string())
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail) = match &self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string()),
            Self::ContentTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            Self::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m.clone()),
            Self::Unavailable(StoreError::Unavailable { reason, source }) => {
                tracing::error!(error = %chain(source.as_ref()), reason, "storage unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Storage unavailable: {reason}. Nothing was written; \
                         retry once the server's storage is fixed."
                    ),
                )
            }
            Self::StorageFull(e) => {
                tracing::error!(error = %chain(e), "storage full");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    "Storage is full: nothing was written. Free disk space (or raise the \
                     storage limit) on the server, then retry."
                        .to_owned(),
                )
            }
            Self::KeptChanging(m) => {
                tracing::warn!(detail = %m, "write contended");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "detail": m })),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            Self::Unavailable(e) => {
                tracing::warn!(error = %chain(e), "store busy");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"detail": "Service temporarily unavailable, retry."})),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            Self::Gone(m) => (StatusCode::GONE, m.clone()),
            Self::Locked {
                detail,
                retry_after,
            } => {
                let mut r = (StatusCode::LOCKED, Json(json!({ "detail": detail }))).into_response();
                if let Some(v) = retry_after
                    .as_deref()
                    .and_then(|v| HeaderValue::from_str(v).ok())
                {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return r;
            }
            Self::Internal(e) => {
                tracing::error!(error = %chain(e.as_ref()), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error".to_owned(),
                )
            }
        };
        (status, Json(json!({ "detail": detail }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_that_kept_changing_is_a_503_to_retry_that_says_so() {
        let id = uuid::Uuid::nil();
        let e = ApiError::from(pushpool_service::UseCaseError::KeptChanging(
            pushpool_service::KeptChanging {
                what: "flow run",
                id,
                attempts: pushpool_service::MAX_WRITE_ATTEMPTS,
            },
        ));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"detail": "flow run 00000000-0000-0000-0000-000000000000 kept changing \
                while it was being written (8 attempts); retry"})
        );
    }

    #[test]
    fn a_counter_at_its_bound_is_a_409_naming_it() {
        let e = ApiError::from(StoreError::LimitReached("slots:pool".into()));
        assert!(
            matches!(&e, ApiError::Conflict(m) if m == "counter \"slots:pool\" is at its bound")
        );
    }
}
