//! Meta endpoints: health, version, CSRF probe, storage, the collections view.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{ApiError, PREFECT_API_VERSION};

/// `GET /health` → `true`.
pub(crate) async fn health() -> Json<bool> {
    Json(true)
}

/// `GET /admin/version` → `"3.9.1"`; mandatory for the engine.
pub(crate) async fn version() -> Json<&'static str> {
    Json(PREFECT_API_VERSION)
}

/// `GET /admin/storage`: no server-side default result storage.
pub(crate) async fn storage() -> Json<Value> {
    Json(json!({"default_result_storage_block_id": null}))
}

/// `GET /csrf-token` → `422 CSRF protection is disabled.` (what the OSS server answers; the
/// client then stops asking).
pub(crate) async fn csrf_token() -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": "CSRF protection is disabled."})),
    )
        .into_response()
}

/// `GET /collections/views/aggregate-worker-metadata`: the pool types pushpool submits, with
/// their default base job templates; other views are 404.
pub(crate) async fn collections_view(Path(view): Path<String>) -> Result<Json<Value>, ApiError> {
    if view == "aggregate-worker-metadata" {
        Ok(Json(pushpool_core::pool_types::aggregate_worker_metadata()))
    } else {
        Err(ApiError::NotFound(format!(
            "View {view} not found in registry"
        )))
    }
}
