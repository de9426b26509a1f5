//! Deployments: create (an upsert on flow and name, as Prefect's server does), read by id and
//! by `flow/deployment` name, update, delete, filter, and `create_flow_run`.
//!
//! Job variables are validated against the work pool's `variables` schema (compiled once per
//! pool version) when a deployment is created or updated and when a run is created: a value
//! that breaks the schema is a 422 naming the field (`job_variables.cpu`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::model::{Deployment, Object, WorkPool};
use pushpool_core::schedule::DeploymentSchedule;
use pushpool_service::deployment_limit::{all_shown, shown};
use pushpool_service::schedules::{patched_schedules, schedules_for};
use pushpool_service::{
    DeploymentFlowRunCreate, DeploymentScheduleCreate, DeploymentScheduleUpdate,
};
use pushpool_store::StoreError;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::filters::{DeploymentsBody, FilterBody, Paging, paginated};
use super::parse_id;
use crate::extract::{Json, OptionalJson};
use crate::{ApiError, AppState};
use pushpool_service::queries;

#[derive(Debug, Deserialize)]
pub(crate) struct DeploymentCreate {
    name: String,
    flow_id: Uuid,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    schedules: Vec<DeploymentScheduleCreate>,
    #[serde(default)]
    concurrency_limit: Option<i64>,
    #[serde(default)]
    concurrency_options: Option<Value>,
    #[serde(default)]
    enforce_parameter_schema: Option<bool>,
    #[serde(default)]
    parameter_openapi_schema: Option<Value>,
    #[serde(default)]
    parameters: Option<Object>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    labels: Option<Object>,
    #[serde(default)]
    pull_steps: Option<Vec<Value>>,
    #[serde(default)]
    work_queue_name: Option<String>,
    #[serde(default)]
    work_pool_name: Option<String>,
    #[serde(default)]
    storage_document_id: Option<Uuid>,
    #[serde(default)]
    infrastructure_document_id: Option<Uuid>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    job_variables: Option<Object>,
}

/// Prefect's `DeploymentUpdate`: every field optional.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeploymentUpdate {
    #[serde(default, deserialize_with = "super::explicit")]
    version: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    description: Option<Option<String>>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    schedules: Option<Vec<DeploymentScheduleUpdate>>,
    #[serde(default, deserialize_with = "super::explicit")]
    concurrency_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::explicit")]
    concurrency_options: Option<Option<Value>>,
    #[serde(default)]
    parameters: Option<Object>,
    #[serde(default, deserialize_with = "super::explicit")]
    parameter_openapi_schema: Option<Option<Value>>,
    #[serde(default)]
    enforce_parameter_schema: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Object>,
    #[serde(default, deserialize_with = "super::explicit")]
    work_queue_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    work_pool_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    path: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    entrypoint: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    pull_steps: Option<Option<Vec<Value>>>,
    #[serde(default)]
    job_variables: Option<Object>,
    #[serde(default, deserialize_with = "super::explicit")]
    storage_document_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::explicit")]
    infrastructure_document_id: Option<Option<Uuid>>,
}

async fn pool_named(state: &AppState, name: &str) -> Result<WorkPool, ApiError> {
    Ok(state.service.work_pool_named(name).await?)
}

/// [`pushpool_service::Service::validate_job_variables`].
fn validate_job_variables(
    state: &AppState,
    pool: &WorkPool,
    vars: &Object,
) -> Result<(), ApiError> {
    Ok(state.service.validate_job_variables(pool, vars)?)
}

/// Checks a deployment's `concurrency_limit` (Prefect's `NonNegativeInteger`) and
/// `concurrency_options` (Prefect's `ConcurrencyOptions`: `collision_strategy` `ENQUEUE` or
/// `CANCEL_NEW`, `grace_period_seconds` 60–86400), enforced at submission
/// (`pushpool_service::concurrency_slots`); the options are stored as Prefect returns them,
/// both fields present. A 422 names the field.
fn check_concurrency(limit: Option<i64>, options: &mut Option<Value>) -> Result<(), ApiError> {
    if limit.is_some_and(|l| l < 0) {
        return Err(ApiError::Invalid(
            "concurrency_limit: must be greater than or equal to 0".into(),
        ));
    }
    let parsed = pushpool_service::concurrency_slots::parse_concurrency_options(options.as_ref())
        .map_err(ApiError::Invalid)?;
    if options.as_ref().is_some_and(|v| !v.is_null()) {
        let strategy = match parsed.collision_strategy {
            pushpool_service::concurrency_slots::CollisionStrategy::Enqueue => "ENQUEUE",
            pushpool_service::concurrency_slots::CollisionStrategy::CancelNew => "CANCEL_NEW",
        };
        *options = Some(serde_json::json!({
            "collision_strategy": strategy,
            "grace_period_seconds": parsed.grace_period_seconds,
        }));
    }
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<DeploymentCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::Name)?;
    if let Some(queue) = &body.work_queue_name {
        crate::names::check("work_queue_name", queue, crate::names::Rule::Name)?;
    }
    let mut body = body;
    check_concurrency(body.concurrency_limit, &mut body.concurrency_options)?;
    let flow = match state.store().read_flow(body.flow_id).await {
        Ok(f) => f,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!(
                "flow_id: flow {} not found",
                body.flow_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let job_variables = body.job_variables.unwrap_or_default();
    let pool = match &body.work_pool_name {
        Some(name) => {
            let pool = pool_named(&state, name).await?;
            validate_job_variables(&state, &pool, &job_variables)?;
            Some(pool)
        }
        None => None,
    };
    let queue_name = body
        .work_queue_name
        .clone()
        .unwrap_or_else(|| pushpool_service::queues::DEFAULT_QUEUE_NAME.into());
    let mut labels = body.labels.unwrap_or_default();
    labels.insert("prefect.flow.id".into(), Value::String(flow.id.to_string()));
    let now = Utc::now();
    let id = Uuid::new_v4();
    let given_schedules = body.schedules;
    let mut deployment = Deployment {
        id,
        created: now,
        updated: now,
        name: body.name,
        version: body.version,
        description: body.description,
        flow_id: flow.id,
        paused: body.paused,
        schedules: schedules_for(given_schedules.clone(), &[], id, now)?,
        concurrency_limit: body.concurrency_limit,
        global_concurrency_limit: None,
        concurrency_options: body.concurrency_options,
        job_variables,
        parameters: body.parameters.unwrap_or_default(),
        tags: body.tags,
        labels,
        // As Prefect's: the pool's queue (its default queue when none is named); without a
        // pool, the queue name as given (null when none is).
        work_queue_name: if pool.is_some() {
            Some(queue_name.clone())
        } else {
            body.work_queue_name.clone()
        },
        work_queue_id: match &pool {
            // As Prefect's `create_deployment`: a queue the pool does not have is created.
            Some(p) => Some(
                pushpool_service::queues::queue_for_deployment(
                    state.store().as_ref(),
                    p,
                    &queue_name,
                )
                .await?
                .id,
            ),
            None => None,
        },
        last_polled: None,
        parameter_openapi_schema: body.parameter_openapi_schema,
        path: body.path,
        // Prefect's column default: a deployment created without pull steps has `[]`.
        pull_steps: Some(body.pull_steps.unwrap_or_default()),
        entrypoint: body.entrypoint,
        storage_document_id: body.storage_document_id,
        infrastructure_document_id: body.infrastructure_document_id,
        created_by: None,
        updated_by: None,
        work_pool_name: pool.as_ref().map(|p| p.name.clone()),
        status: if pool
            .as_ref()
            .is_some_and(WorkPool::is_submitted_by_pushpool)
        {
            "READY".into()
        } else {
            "NOT_READY".into()
        },
        enforce_parameter_schema: body.enforce_parameter_schema.unwrap_or(true),
    };
    match state.store().create_deployment(&deployment).await {
        Ok(()) => Ok((
            StatusCode::CREATED,
            axum::Json(shown(state.store().as_ref(), deployment).await?),
        )),
        Err(StoreError::Conflict(_)) => {
            // Prefect upserts on (flow, name): keep the id and creation time.
            let existing = state
                .store()
                .read_deployment_by_name(&flow.name, &deployment.name)
                .await?;
            deployment.id = existing.id;
            deployment.created = existing.created;
            // Prefect's upsert replaces the schedules (new ids) and deletes the future
            // auto-scheduled runs of the old configuration.
            deployment.schedules = schedules_for(given_schedules, &[], existing.id, now)?;
            state.store().update_deployment(&deployment).await?;
            state
                .service
                .delete_scheduled_runs(existing.id, true, true, now)
                .await?;
            Ok((
                StatusCode::OK,
                axum::Json(shown(state.store().as_ref(), deployment).await?),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Deployment>, ApiError> {
    let id = parse_id("id", &id)?;
    let deployment = state.store().read_deployment(id).await?;
    Ok(axum::Json(shown(state.store().as_ref(), deployment).await?))
}

pub(crate) async fn read_by_name(
    State(state): State<AppState>,
    Path((flow_name, name)): Path<(String, String)>,
) -> Result<axum::Json<Deployment>, ApiError> {
    let deployment = state
        .store()
        .read_deployment_by_name(&flow_name, &name)
        .await?;
    Ok(axum::Json(shown(state.store().as_ref(), deployment).await?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<DeploymentUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    if let Some(Some(queue)) = &body.work_queue_name {
        crate::names::check("work_queue_name", queue, crate::names::Rule::Name)?;
    }
    let mut body = body;
    if let Some(options) = body.concurrency_options.as_mut() {
        check_concurrency(None, options)?;
    }
    check_concurrency(body.concurrency_limit.flatten(), &mut None)?;
    let mut d = state.store().read_deployment(id).await?;
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = body.$field { d.$field = v; } )* };
    }
    let now = Utc::now();
    if let Some(given) = body.schedules {
        d.schedules = patched_schedules(given, &d.schedules, d.id, now)?;
    }
    set!(
        version,
        description,
        paused,
        concurrency_limit,
        concurrency_options,
        parameters,
        parameter_openapi_schema,
        enforce_parameter_schema,
        tags,
        path,
        entrypoint,
        pull_steps,
        job_variables,
        storage_document_id,
        infrastructure_document_id,
        work_queue_name
    );
    if let Some(labels) = body.labels {
        d.labels = labels;
        d.labels.insert(
            "prefect.flow.id".into(),
            Value::String(d.flow_id.to_string()),
        );
    }
    if let Some(pool_name) = body.work_pool_name {
        d.work_pool_name = pool_name;
    }
    if let Some(name) = d.work_pool_name.clone() {
        let pool = pool_named(&state, &name).await?;
        validate_job_variables(&state, &pool, &d.job_variables)?;
        // As Prefect's `update_deployment`: a queue the pool does not have is created.
        let queue_name = d
            .work_queue_name
            .clone()
            .unwrap_or_else(|| pushpool_service::queues::DEFAULT_QUEUE_NAME.into());
        let queue = pushpool_service::queues::queue_for_deployment(
            state.store().as_ref(),
            &pool,
            &queue_name,
        )
        .await?;
        d.work_queue_name = Some(queue.name);
        d.work_queue_id = Some(queue.id);
    }
    d.updated = now;
    state.store().update_deployment(&d).await?;
    // As Prefect's `update_deployment`: the future auto-scheduled runs of the old
    // configuration go; the next scheduler tick makes the new ones.
    state
        .service
        .delete_scheduled_runs(d.id, true, true, now)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.delete_deployment(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /deployments/filter`: Prefect's `DeploymentFilter` and related filters, every
/// `DeploymentSort`, and `offset`/`limit`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<DeploymentsBody>,
) -> Result<axum::Json<Vec<Deployment>>, ApiError> {
    let l = body.listing(Paging::Offset, true)?;
    let store = state.store().as_ref();
    let found = queries::read_deployments(store, &l.related, l.sort, l.page).await?;
    Ok(axum::Json(all_shown(store, found).await?))
}

/// `POST /deployments/count`.
pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<DeploymentsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    let l = body.listing(Paging::None, true)?;
    Ok(axum::Json(
        queries::count_deployments(state.store().as_ref(), &l.related).await?,
    ))
}

/// `POST /deployments/paginate`.
pub(crate) async fn paginate(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<DeploymentsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let l = body.listing(Paging::Page, true)?;
    let store = state.store().as_ref();
    let results = queries::read_deployments(store, &l.related, l.sort, l.page).await?;
    let results = all_shown(store, results).await?;
    let count = queries::count_deployments(store, &l.related).await?;
    Ok(axum::Json(paginated(
        results,
        count,
        l.limit,
        l.page_number,
    )))
}

/// `POST /deployments/{id}/create_flow_run`:
/// [`pushpool_service::Service::create_flow_run_from_deployment`] (201 when created, 200
/// with the existing run of the same idempotency key).
pub(crate) async fn create_flow_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DeploymentFlowRunCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    if let Some(queue) = &body.work_queue_name {
        // It may name a queue to create: a name the queue routes can address.
        crate::names::check("work_queue_name", queue, crate::names::Rule::Name)?;
    }
    let (run, created) = state
        .service
        .create_flow_run_from_deployment(id, body)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(run)))
}

/// `GET /deployments/{id}/schedules`: [`pushpool_service::Service::read_deployment_schedules`].
pub(crate) async fn read_schedules(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<DeploymentSchedule>>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(
        state.service.read_deployment_schedules(id).await?,
    ))
}

/// `POST /deployments/{id}/schedules`: 201 with the schedules created.
pub(crate) async fn create_schedules(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Vec<DeploymentScheduleCreate>>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id("id", &id)?;
    let created = state.service.create_deployment_schedules(id, body).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `PATCH /deployments/{id}/schedules/{schedule_id}`: 204.
pub(crate) async fn update_schedule(
    State(state): State<AppState>,
    Path((id, schedule_id)): Path<(String, String)>,
    Json(body): Json<DeploymentScheduleUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let schedule_id = parse_id("schedule_id", &schedule_id)?;
    state
        .service
        .update_deployment_schedule(id, schedule_id, body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /deployments/{id}/schedules/{schedule_id}`: 204.
pub(crate) async fn delete_schedule(
    State(state): State<AppState>,
    Path((id, schedule_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let schedule_id = parse_id("schedule_id", &schedule_id)?;
    state
        .service
        .delete_deployment_schedule(id, schedule_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /deployments/{id}/pause_deployment`: 200 with `null`, as Prefect answers.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.pause_deployment(id).await?;
    Ok(axum::Json(Value::Null))
}

/// `POST /deployments/{id}/resume_deployment`: 200 with `null`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    state.service.resume_deployment(id).await?;
    Ok(axum::Json(Value::Null))
}
