//! Flow runs: create, read, update, delete, filter, `set_state` with orchestration, and
//! the state history (`GET /flow_run_states/?flow_run_id=`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::model::{EmpiricalPolicy, FlowRun, Object};
use pushpool_core::orchestration::{apply_decision, apply_state, orchestrate};
use pushpool_core::state::{State as RunState, StateCreate, StateType};
use pushpool_service::queries;
use pushpool_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, FlowRunsBody, Paging, paginated};
use super::parse_id;
use crate::extract::{Json, Query};
use crate::{ApiError, AppState};

/// Prefect's `FlowRunCreate` (local, non-deployment runs).
#[derive(Debug, Deserialize)]
pub(crate) struct FlowRunCreate {
    flow_id: Uuid,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    deployment_id: Option<Uuid>,
    #[serde(default)]
    state: Option<StateCreate>,
    #[serde(default)]
    flow_version: Option<String>,
    #[serde(default)]
    parameters: Option<Object>,
    #[serde(default)]
    context: Option<Object>,
    #[serde(default)]
    parent_task_run_id: Option<Uuid>,
    #[serde(default)]
    empirical_policy: Option<EmpiricalPolicy>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Object>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    job_variables: Option<Object>,
}

/// Checks the retry delays of a flow run's `empirical_policy`: `retry_delay` and its
/// deprecated alias `retry_delay_seconds` (the fallback when `retry_delay` is null) must lie
/// between 0 and [`crate::MAX_RETRY_DELAY_SECONDS`]. A negative delay is refused too: Prefect's
/// client never sends one, and it would schedule the retry in the past.
///
/// # Errors
/// [`ApiError::Invalid`] naming `empirical_policy.retry_delay` (or `.retry_delay_seconds`).
pub(crate) fn check_empirical_policy(policy: &EmpiricalPolicy) -> Result<(), ApiError> {
    for (field, value) in [
        ("retry_delay", policy.retry_delay),
        ("retry_delay_seconds", Some(policy.retry_delay_seconds)),
    ] {
        if let Some(v) = value.filter(|v| !(0.0..=crate::MAX_RETRY_DELAY_SECONDS).contains(v)) {
            return Err(ApiError::Invalid(format!(
                "empirical_policy.{field}: {v} seconds is out of range: from 0 to \
                 {} (365 days)",
                crate::MAX_RETRY_DELAY_SECONDS
            )));
        }
    }
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<FlowRunCreate>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(policy) = &body.empirical_policy {
        check_empirical_policy(policy)?;
    }
    match state.store().read_flow(body.flow_id).await {
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!(
                "flow_id: flow {} not found",
                body.flow_id
            )));
        }
        other => {
            other?;
        }
    }
    let now = Utc::now();
    let id = Uuid::new_v4();
    let first = body
        .state
        .unwrap_or(StateCreate {
            r#type: StateType::Pending,
            name: None,
            message: None,
            data: None,
            state_details: None,
        })
        .into_state(id, now);
    let mut labels = body.labels.unwrap_or_default();
    labels.insert(
        "prefect.flow.id".into(),
        Value::String(body.flow_id.to_string()),
    );
    let mut run = FlowRun::new(
        id,
        body.flow_id,
        body.name
            .unwrap_or_else(pushpool_core::names::flow_run_name),
        now,
    );
    run.deployment_id = body.deployment_id;
    run.flow_version = body.flow_version;
    run.parameters = body.parameters.unwrap_or_default();
    run.idempotency_key = body.idempotency_key;
    run.context = body.context.unwrap_or_default();
    run.empirical_policy = body.empirical_policy.unwrap_or_default();
    run.tags = body.tags.unwrap_or_default();
    run.labels = labels;
    run.parent_task_run_id = body.parent_task_run_id;
    run.expected_start_time = Some(now);
    run.job_variables = body.job_variables.unwrap_or_default();
    apply_state(&mut run, first, now);
    let (run, created) = state.store().create_flow_run(&run).await?;
    if created {
        state.service.update_subflow_parent_task(&run).await;
    }
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

/// Prefect's `FlowRunUpdate`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FlowRunUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::explicit")]
    flow_version: Option<Option<String>>,
    #[serde(default)]
    parameters: Option<Object>,
    #[serde(default)]
    empirical_policy: Option<EmpiricalPolicy>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    infrastructure_pid: Option<Option<String>>,
    #[serde(default)]
    job_variables: Option<Object>,
}

/// Applies `change` to the latest version of the run, retrying on concurrent writes.
async fn modify(
    state: &AppState,
    id: Uuid,
    change: impl Fn(&mut FlowRun),
) -> Result<FlowRun, ApiError> {
    for _ in 0..10 {
        let mut run = state.store().read_flow_run(id).await?;
        change(&mut run);
        run.updated = Utc::now();
        match state.store().update_flow_run(&run).await {
            Ok(r) => return Ok(r),
            Err(StoreError::VersionConflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionConflict(id).into())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<FlowRunUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    if let Some(policy) = &body.empirical_policy {
        check_empirical_policy(policy)?;
    }
    modify(&state, id, |run| {
        if let Some(v) = &body.name {
            run.name = v.clone();
        }
        if let Some(v) = &body.flow_version {
            run.flow_version = v.clone();
        }
        if let Some(v) = &body.parameters {
            run.parameters = v.clone();
        }
        if let Some(v) = &body.empirical_policy {
            run.empirical_policy = v.clone();
        }
        if let Some(v) = &body.tags {
            run.tags = v.clone();
        }
        if let Some(v) = &body.infrastructure_pid {
            run.infrastructure_pid = v.clone();
        }
        if let Some(v) = &body.job_variables {
            run.job_variables = v.clone();
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn update_labels(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(labels): Json<Object>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    modify(&state, id, |run| {
        for (k, v) in &labels {
            run.labels.insert(k.clone(), v.clone());
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_flow_run(id).await?;
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

/// `POST /flow_runs/{id}/set_state`: orchestrates the proposal (see
/// `pushpool_core::orchestration`) and answers Prefect's `OrchestrationResult`
/// `{state, status, details}`: 201 when a state was written, 200 otherwise.
pub(crate) async fn set_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<SetState>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    for _ in 0..10 {
        let run = state.store().read_flow_run(id).await?;
        let now = Utc::now();
        let proposed = body.state.clone().into_state(id, now);
        let decision = orchestrate(&run, proposed, body.force, now);
        let (returned, code) = match decision.state_to_write() {
            Some(to_write) => {
                let mut next = run.clone();
                let from = run.state_type;
                apply_decision(&mut next, &decision, body.force, now);
                match state.store().update_flow_run(&next).await {
                    Ok(written) => {
                        state.service.update_subflow_parent_task(&written).await;
                        tracing::info!(
                            flow_run_id = %id,
                            work_pool = written.work_pool_name.as_deref().unwrap_or(""),
                            "flow run '{}' ({}): {} -> {} (reported)",
                            written.name,
                            id,
                            from.map_or("-", |t| t.as_str()),
                            to_write.r#type
                        );
                        (Some(to_write.clone()), StatusCode::CREATED)
                    }
                    Err(StoreError::VersionConflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Nothing written: 200, as Prefect answers when the returned state is older
            // than the request (ABORT, WAIT, REJECT keeping the current state).
            None => (run.state.clone(), StatusCode::OK),
        };
        let body = json!({
            "state": returned,
            "status": decision.status(),
            "details": decision.details(),
        });
        return Ok((code, axum::Json(body)));
    }
    Err(StoreError::VersionConflict(id).into())
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
