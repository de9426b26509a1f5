//! Pause and resume (`POST /flow_runs/{id}/resume`) and flow run inputs
//! (`/flow_runs/{id}/input...`), as Prefect 3.9.1's `api/flow_runs.py` answers them (see
//! [`pushpool_service::run_inputs`]).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use pushpool_core::orchestration::Details;
use pushpool_core::run_input::FlowRunInput;
use pushpool_service::{Resume, RunInputFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse_id;
use crate::extract::{Json, OptionalJson};
use crate::{ApiError, AppState};

/// `POST /flow_runs/{id}/resume`'s body: `{"run_input": {...}}` (optional, as the body).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeBody {
    #[serde(default)]
    run_input: Option<Value>,
}

/// `POST /flow_runs/{id}/resume`: [`pushpool_service::Service::resume_flow_run`], answered
/// as Prefect's `OrchestrationResult` (`{state, status, details}`): 201 when a state was
/// written, 200 otherwise (refusals included).
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ResumeBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    if let Some(input) = body
        .run_input
        .as_ref()
        .filter(|v| !v.is_object() && !v.is_null())
    {
        return Err(ApiError::Invalid(format!(
            "run_input: Input should be a valid dictionary, got {input}"
        )));
    }
    Ok(
        match state.service.resume_flow_run(id, body.run_input).await? {
            Resume::Orchestrated(t) => {
                let code = if t.written {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let body = json!({
                    "state": t.state,
                    "status": t.decision.status(),
                    "details": t.decision.details(),
                });
                (code, axum::Json(body))
            }
            Resume::Refused {
                status,
                reason,
                state,
            } => (
                StatusCode::OK,
                axum::Json(json!({
                    "state": state,
                    "status": status,
                    "details": Details::AbortDetails { reason },
                })),
            ),
        },
    )
}

/// `POST /flow_runs/{id}/input`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputCreate {
    key: String,
    value: String,
    #[serde(default)]
    sender: Option<String>,
}

/// `POST /flow_runs/{id}/input`: 201 with no body (`null`); 404 "Flow run not found"; 409
/// "A flow run input with this key already exists."; 422 naming `key`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<InputCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    state
        .service
        .create_flow_run_input(id, body.key, body.value, body.sender)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(Value::Null)))
}

/// `POST /flow_runs/{id}/input/filter`: `{prefix, limit = 1, exclude_keys = []}` → the
/// matching inputs, oldest first.
pub(crate) async fn filter(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RunInputFilter>,
) -> Result<axum::Json<Vec<FlowRunInput>>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(
        state.service.filter_flow_run_inputs(id, &body).await?,
    ))
}

/// `GET /flow_runs/{id}/input/{key}`: the value as `text/plain` (Prefect's
/// `PlainTextResponse`); 404 "Flow run input not found".
pub(crate) async fn read(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    let input = state.store().read_flow_run_input(id, &key).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        input.value,
    ))
}

/// `DELETE /flow_runs/{id}/input/{key}`: 204; 404 "Flow run input not found".
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_flow_run_input(id, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
