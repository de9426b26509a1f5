//! `POST /deployments/{id}/schedule`: a deployment's scheduled runs over a window, made on
//! demand ([`pushpool_service::manual_schedule`]).

use axum::extract::{Path, State};
use pushpool_service::manual_schedule::ScheduleRuns;
use serde_json::Value;

use super::parse_id;
use crate::extract::OptionalJson;
use crate::{ApiError, AppState};

/// `POST /deployments/{id}/schedule`: 200 with `null`, as Prefect answers (also for an
/// unknown deployment); 422 naming a field for a bad body.
pub(crate) async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ScheduleRuns>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let created = state.service.schedule_deployment_runs(id, &body).await?;
    tracing::info!(deployment_id = %id, runs = created, "deployment scheduled on demand");
    Ok(axum::Json(Value::Null))
}
