//! Meta endpoints: health, version, CSRF probe, storage, the collections view, events.

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

/// `WS /events/in`: the engine's event stream. pushpool accepts the connection (subprotocol
/// `prefect`, `{"type":"auth"}` answered by `{"type":"auth_success"}`, as the OSS server
/// does); its task run events become task runs (the task run recorder,
/// `Service::record_task_run_events`), the other events are dropped. Without it the
/// engine logs warnings and errors for every run. `/events/out` is deliberately absent, so
/// the engine's cancellation observer polls `POST /flow_runs/filter`, which pushpool serves.
pub(crate) async fn events_in(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    use axum::extract::ws::Message;
    ws.protocols(["prefect"])
        .on_upgrade(|mut socket| async move {
            let mut dropped = 0u64;
            while let Some(Ok(msg)) = socket.recv().await {
                match msg {
                    Message::Text(text) => {
                        let event =
                            serde_json::from_str::<Value>(text.as_str()).unwrap_or_default();
                        if event["type"] == "auth" {
                            let reply = json!({"type": "auth_success"}).to_string();
                            if socket.send(Message::Text(reply.into())).await.is_err() {
                                break;
                            }
                        } else {
                            state.service.record_task_run_events(&[event]).await;
                            dropped += 1;
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            tracing::debug!(dropped, "events stream closed");
        })
}
