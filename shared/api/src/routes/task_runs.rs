//! Task runs: create (idempotent on `(flow_run_id, task_key, dynamic_key)`: 201 new, 200
//! existing), read, rename (PATCH), delete, `set_state` with Prefect's task policy, the state
//! history (`GET /task_run_states/?task_run_id=`, `GET /task_run_states/{id}`) and
//! `POST /task_runs/filter`, `/count`, `/paginate`, `/history` (Prefect's `TaskRunFilter` and
//! `TaskRunSort`: see [`super::task_run_filter`]). Task runs the engine reports as events
//! are recorded by the service's task run recorder. (The engine's lookup of an existing
//! subflow run, `POST /flow_runs/filter` by `flow_runs.parent_task_run_id`, is the typed flow
//! run filter's.)

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pushpool_core::state::{State as RunState, StateCreate};
use pushpool_core::task_run::{TaskRun, TaskRunCreate};
use pushpool_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, paginated};
use super::parse_id;
use super::task_run_filter::{HistoryBody, Paging, TaskRunsBody};
use crate::extract::{Json, Query};
use crate::{ApiError, AppState};

/// Maps the store's "Task run not found" to Prefect's detail for this route.
fn not_found_as(detail: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound(_) => ApiError::NotFound(detail.into()),
        e => e.into(),
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<TaskRunCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let (run, created) = state.service.create_task_run(body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(run)))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<TaskRun>, ApiError> {
    let id = parse_id("id", &id)?;
    let run = state
        .store()
        .read_task_run(id)
        .await
        .map_err(not_found_as("Task not found"))?;
    Ok(axum::Json(run))
}

/// Prefect's `TaskRunUpdate`: only the name can change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRunUpdate {
    #[serde(default)]
    name: Option<String>,
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<TaskRunUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state
        .service
        .update_task_run_name(id, body.name)
        .await
        .map_err(|e| match e {
            pushpool_service::UseCaseError::Store(e) => not_found_as("Task run not found")(e),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state
        .store()
        .delete_task_run(id)
        .await
        .map_err(not_found_as("Task not found"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"state": StateCreate, "force": bool}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetState {
    state: StateCreate,
    #[serde(default)]
    force: bool,
}

/// `POST /task_runs/{id}/set_state`: Prefect's `OrchestrationResult` `{state, status,
/// details}`, 201 when a state was written, 200 otherwise (the flow run route's shape).
pub(crate) async fn set_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<SetState>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    let t = state
        .service
        .set_task_run_state(id, body.state, body.force)
        .await
        .map_err(|e| match e {
            pushpool_service::TaskRunError::Store(StoreError::NotFound(_)) => {
                ApiError::NotFound("Task run not found".into())
            }
            e => e.into(),
        })?;
    let code = if t.written {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        axum::Json(json!({
            "state": t.state,
            "status": t.decision.status(),
            "details": t.decision.details(),
        })),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatesQuery {
    task_run_id: Uuid,
}

pub(crate) async fn read_states(
    State(state): State<AppState>,
    Query(q): Query<StatesQuery>,
) -> Result<axum::Json<Vec<RunState>>, ApiError> {
    Ok(axum::Json(
        state.store().read_task_run_states(q.task_run_id).await?,
    ))
}

pub(crate) async fn read_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RunState>, ApiError> {
    let id = parse_id("id", &id)?;
    let s = state
        .store()
        .read_task_run_state(id)
        .await
        // Prefect's own detail for this route.
        .map_err(not_found_as("Flow run state not found"))?;
    Ok(axum::Json(s))
}

/// `POST /task_runs/filter`: the matching task runs, sorted (default `ID_DESC`), from
/// `offset`, at most `limit` (see [`super::task_run_filter`]).
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<TaskRunsBody>,
) -> Result<axum::Json<Vec<TaskRun>>, ApiError> {
    let a = body.answer(state.store().as_ref(), Paging::Offset).await?;
    Ok(axum::Json(a.runs))
}

/// `POST /task_runs/count`: the number of matching task runs.
pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<TaskRunsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    let a = body.answer(state.store().as_ref(), Paging::None).await?;
    Ok(axum::Json(a.count))
}

/// `POST /task_runs/paginate`: `{results, count, limit, pages, page}`.
pub(crate) async fn paginate(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<TaskRunsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let a = body.answer(state.store().as_ref(), Paging::Page).await?;
    Ok(axum::Json(paginated(a.runs, a.count, a.limit, a.page)))
}

/// `POST /task_runs/history`: Prefect's run history of the matching task runs (see
/// [`HistoryBody::answer`]).
pub(crate) async fn history(
    State(state): State<AppState>,
    Json(body): Json<HistoryBody>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(body.answer(state.store().as_ref()).await?))
}
