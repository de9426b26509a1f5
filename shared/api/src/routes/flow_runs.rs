//! Flow runs: create, read, update, delete, filter, `set_state` with orchestration, and
//! the state history (`GET /flow_run_states/?flow_run_id=`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pushpool_core::model::{FlowRun, Object};
use pushpool_core::state::{State as RunState, StateCreate};
use pushpool_service::{FlowRunCreate, FlowRunUpdate, queries};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, FlowRunsBody, Paging, paginated};
use super::parse_id;
use crate::extract::{Json, Query};
use crate::{ApiError, AppState};

/// `POST /flow_runs/`: [`pushpool_service::Service::create_flow_run`] (201 when created,
/// 200 with the existing run of the same idempotency key).
pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<FlowRunCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let (run, created) = state.service.create_flow_run(body).await?;
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
) -> Result<axum::Json<FlowRun>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_flow_run(id).await?))
}

/// `PATCH /flow_runs/{id}`: [`pushpool_service::Service::update_flow_run`].
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<FlowRunUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.update_flow_run(id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /flow_runs/{id}/labels`: [`pushpool_service::Service::update_flow_run_labels`].
pub(crate) async fn update_labels(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(labels): Json<Object>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.update_flow_run_labels(id, labels).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.delete_flow_run(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /flow_runs/filter`: Prefect's `FlowRunFilter` and related filters, every sort, and
/// `offset`/`limit` (see [`super::filters`]).
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowRunsBody>,
) -> Result<axum::Json<Vec<FlowRun>>, ApiError> {
    let l = body.listing(Paging::Offset, true)?;
    Ok(axum::Json(
        queries::read_flow_runs(state.store().as_ref(), &l.related, l.sort, l.page).await?,
    ))
}

/// `POST /flow_runs/count`: how many runs the filters match.
pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowRunsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    let l = body.listing(Paging::None, true)?;
    Ok(axum::Json(
        queries::count_flow_runs(state.store().as_ref(), &l.related).await?,
    ))
}

/// `POST /flow_runs/paginate`: `{results, count, limit, pages, page}`.
pub(crate) async fn paginate(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowRunsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let l = body.listing(Paging::Page, true)?;
    let store = state.store().as_ref();
    let results = queries::read_flow_runs(store, &l.related, l.sort, l.page).await?;
    let count = queries::count_flow_runs(store, &l.related).await?;
    Ok(axum::Json(paginated(
        results,
        count,
        l.limit,
        l.page_number,
    )))
}

/// `{"state": StateCreate, "force": bool}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetState {
    state: StateCreate,
    #[serde(default)]
    force: bool,
}

/// `POST /flow_runs/{id}/set_state`: orchestrates the proposal
/// ([`pushpool_service::Service::set_flow_run_state`]) and answers Prefect's
/// `OrchestrationResult` `{state, status, details}`: 201 when a state was written, 200
/// otherwise.
pub(crate) async fn set_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<SetState>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    let t = state
        .service
        .set_flow_run_state(id, body.state, body.force)
        .await?;
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
    Ok((code, axum::Json(body)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatesQuery {
    flow_run_id: Uuid,
}

pub(crate) async fn read_states(
    State(state): State<AppState>,
    Query(q): Query<StatesQuery>,
) -> Result<axum::Json<Vec<RunState>>, ApiError> {
    Ok(axum::Json(
        state.store().read_flow_run_states(q.flow_run_id).await?,
    ))
}

pub(crate) async fn read_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RunState>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_state(id).await?))
}
