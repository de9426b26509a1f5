//! Meta endpoints: health, version, CSRF probe, storage, the collections view.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{ApiError, AppState, PREFECT_API_VERSION};

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
/// their default base job templates, less those this build left out
/// ([`pushpool_providers::Providers::unavailable`]: the embedded binary built without a
/// provider's cargo feature), so that Prefect's UI offers only pool types it can create;
/// other views are 404.
pub(crate) async fn collections_view(
    State(state): State<AppState>,
    Path(view): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if view == "aggregate-worker-metadata" {
        let mut metadata = pushpool_core::pool_types::aggregate_worker_metadata();
        let providers = state.service.providers();
        if let Some(collections) = metadata.as_object_mut() {
            for types in collections.values_mut() {
                if let Some(types) = types.as_object_mut() {
                    types.retain(|pool_type, _| providers.unavailable(pool_type).is_none());
                }
            }
            collections.retain(|_, types| types.as_object().is_none_or(|t| !t.is_empty()));
        }
        Ok(Json(metadata))
    } else {
        Err(ApiError::NotFound(format!(
            "View {view} not found in registry"
        )))
    }
}
