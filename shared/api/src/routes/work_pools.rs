//! Work pools: `POST /work_pools/`, `GET|PATCH|DELETE /work_pools/{name}`,
//! `POST /work_pools/filter`, `POST /work_pools/{name}/workers/filter`,
//! `POST /work_pools/{name}/get_scheduled_flow_runs`. A pool's queues are in
//! [`super::work_queues`]; its `default` queue is made with it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::model::{StorageConfiguration, WorkPool, WorkPoolStatus};
use pushpool_core::pool_types::pool_type;
use pushpool_core::template::{BaseJobTemplate, check_declared_variables};
use pushpool_store::Page;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, WorkPoolsBody, checked_page, no_other_keys};
use crate::extract::Json;
use crate::{ApiError, AppState};
use pushpool_service::queries;

/// Prefect's hybrid worker types: accepted (a user may keep such pools here) but never
/// submitted by pushpool; runs in them wait for a worker as on Prefect.
const WORKER_POOL_TYPES: &[&str] = &[
    "azure-container-instance",
    "cloud-run",
    "cloud-run-v2",
    "docker",
    "ecs",
    "kubernetes",
    "vertex-ai",
];

/// Prefect's `WorkPoolCreate`.
#[derive(Debug, Deserialize)]
pub(crate) struct WorkPoolCreate {
    name: String,
    #[serde(default)]
    description: Option<String>,
    r#type: Option<String>,
    #[serde(default)]
    base_job_template: Option<Value>,
    #[serde(default)]
    is_paused: bool,
    #[serde(default)]
    concurrency_limit: Option<i64>,
    #[serde(default)]
    storage_configuration: Option<StorageConfiguration>,
}

/// Prefect's `WorkPoolUpdate`.
#[derive(Debug, Deserialize)]
pub(crate) struct WorkPoolUpdate {
    #[serde(default, deserialize_with = "super::explicit")]
    description: Option<Option<String>>,
    #[serde(default)]
    is_paused: Option<bool>,
    #[serde(default)]
    base_job_template: Option<Value>,
    #[serde(default, deserialize_with = "super::explicit")]
    concurrency_limit: Option<Option<i64>>,
    #[serde(default)]
    storage_configuration: Option<StorageConfiguration>,
}

fn check_template(template: &Value) -> Result<(), ApiError> {
    if !template.is_object() {
        return Err(ApiError::Invalid(
            "base_job_template: must be an object".into(),
        ));
    }
    if template.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    // Prefect's presence and declaration checks first, then what rendering needs.
    check_declared_variables(template)
        .and_then(|()| BaseJobTemplate::parse(template).map(|_| ()))
        .map_err(|e| ApiError::Invalid(format!("base_job_template: {e}")))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<WorkPoolCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::NonEmptyish)?;
    let pool_type_name = body.r#type.unwrap_or_else(|| "process".into());
    let known = pool_type(&pool_type_name);
    if known.is_none() && !WORKER_POOL_TYPES.contains(&pool_type_name.as_str()) {
        let mut types: Vec<&str> = pushpool_core::pool_types::POOL_TYPES
            .iter()
            .map(|t| t.name)
            .chain(WORKER_POOL_TYPES.iter().copied())
            .collect();
        types.sort_unstable();
        return Err(ApiError::Invalid(format!(
            "type: unknown work pool type {pool_type_name:?}; expected one of {}",
            types.join(", ")
        )));
    }
    // A push pool type whose adapter this build left out (the embedded binary without its
    // `ecs`, `cloud-run` or `aci` feature): refused, naming the type and the feature.
    if let Some(reason) = state.service.providers().unavailable(&pool_type_name) {
        return Err(ApiError::Invalid(format!("type: {reason}")));
    }
    let template = match body.base_job_template {
        Some(t) if t.as_object().is_some_and(|o| !o.is_empty()) => t,
        Some(t) if !t.is_object() && !t.is_null() => {
            return Err(ApiError::Invalid(
                "base_job_template: must be an object".into(),
            ));
        }
        _ => known.map_or_else(|| json!({}), |k| k.default_base_job_template()),
    };
    check_template(&template)?;
    let now = Utc::now();
    let submitted = known.is_some();
    let pool = WorkPool {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: body.name,
        description: body.description,
        r#type: pool_type_name,
        base_job_template: template,
        is_paused: body.is_paused,
        concurrency_limit: body.concurrency_limit,
        status: if body.is_paused {
            WorkPoolStatus::Paused
        } else if submitted {
            WorkPoolStatus::Ready
        } else {
            WorkPoolStatus::NotReady
        },
        default_queue_id: Uuid::new_v4(),
        storage_configuration: body.storage_configuration.unwrap_or_default(),
        // Prefect answers 0 for a new pool with a limit.
        active_slots: body.concurrency_limit.map(|_| 0),
    };
    state.store().create_work_pool(&pool).await?;
    pushpool_service::queues::default_queue(state.store().as_ref(), &pool).await?;
    tracing::info!(work_pool = %pool.name, pool_type = %pool.r#type, "work pool created");
    Ok((StatusCode::CREATED, axum::Json(pool)))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<WorkPool>, ApiError> {
    let pool = state.store().read_work_pool(&name).await?;
    Ok(axum::Json(with_active_slots(&state, pool).await?))
}

/// Prefect's `active_slots`: with a concurrency limit, the runs holding one of the pool's
/// slots (pushpool's slot counter counts PENDING, RUNNING and CANCELLING runs:
/// [`pushpool_service::concurrency_slots`]); `None` without a limit, as Prefect.
async fn with_active_slots(state: &AppState, mut pool: WorkPool) -> Result<WorkPool, ApiError> {
    pool.active_slots = match pool.concurrency_limit {
        Some(_) => {
            let counter = pushpool_service::concurrency_slots::pool_counter(pool.id);
            Some(state.store().read_counter(&counter).await?)
        }
        None => None,
    };
    Ok(pool)
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<WorkPoolUpdate>,
) -> Result<StatusCode, ApiError> {
    let mut pool = state.store().read_work_pool(&name).await?;
    if let Some(d) = body.description {
        pool.description = d;
    }
    if let Some(p) = body.is_paused {
        pool.is_paused = p;
        pool.status = if p {
            WorkPoolStatus::Paused
        } else if pool_type(&pool.r#type).is_some() {
            WorkPoolStatus::Ready
        } else {
            WorkPoolStatus::NotReady
        };
    }
    if let Some(t) = body.base_job_template {
        check_template(&t)?;
        pool.base_job_template = t;
    }
    if let Some(c) = body.concurrency_limit {
        pool.concurrency_limit = c;
    }
    if let Some(s) = body.storage_configuration {
        pool.storage_configuration = s;
    }
    pool.updated = Utc::now();
    state.store().update_work_pool(&pool).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let pool = state.store().read_work_pool(&name).await?;
    state.store().delete_work_pool(&name).await?;
    // Its queues go with it (Prefect's cascade); runs and deployments keep their queue
    // fields, as they keep their pool name.
    for queue in state.store().list_work_queues(Some(pool.id)).await? {
        match state.store().delete_work_queue(queue.id).await {
            Ok(()) | Err(pushpool_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /work_pools/filter`: Prefect's `WorkPoolFilter`, by name, `offset`/`limit`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<WorkPoolsBody>,
) -> Result<axum::Json<Vec<WorkPool>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let pools = queries::read_work_pools(
        state.store().as_ref(),
        &body.work_pools.unwrap_or_default(),
        page,
    )
    .await?;
    let mut answered = Vec::with_capacity(pools.len());
    for pool in pools {
        answered.push(with_active_slots(&state, pool).await?);
    }
    Ok(axum::Json(answered))
}

/// `POST /work_pools/count`: `{work_pools}` only.
pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<WorkPoolsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    no_other_keys(&body.other)?;
    for (present, key) in [
        (body.offset.is_some(), "offset"),
        (body.limit.is_some(), "limit"),
    ] {
        if present {
            return Err(ApiError::Invalid(format!(
                "{key}: this route does not take this key (Prefect's body for it has no such field)"
            )));
        }
    }
    let pools = queries::read_work_pools(
        state.store().as_ref(),
        &body.work_pools.unwrap_or_default(),
        Page::default(),
    )
    .await?;
    Ok(axum::Json(pools.len() as u64))
}

/// Push pools have no workers: `[]` (a 404 would tell the client the pool is missing).
pub(crate) async fn workers_filter(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    state.store().read_work_pool(&name).await?;
    Ok(axum::Json(vec![]))
}

/// The body of `POST /work_pools/{name}/get_scheduled_flow_runs`: `work_queue_names`,
/// `scheduled_before`, `scheduled_after`, `limit` (Prefect's `LimitBody`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PoolScheduledRunsBody {
    #[serde(default)]
    work_queue_names: Option<Vec<String>>,
    #[serde(default)]
    scheduled_before: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    scheduled_after: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    limit: super::filters::RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `POST /work_pools/{name}/get_scheduled_flow_runs` (`prefect work-pool preview`): Prefect's
/// `WorkerFlowRunResponse`s (`{work_pool_id, work_queue_id, flow_run}`), the SCHEDULED runs
/// of the pool's queues (the named ones, 404 for an unknown name, else all) whose
/// `next_scheduled_start_time` is within `scheduled_after`..=`scheduled_before`, by queue
/// priority then next scheduled start time, at most `limit`. As Prefect's query: nothing
/// from a paused pool or a paused queue. Unlike Prefect's, the answer is not cut by
/// concurrency slots (enforced when pushpool's submitter claims a run) and the poll marks no queue or deployment ready:
/// nothing polls a push pool, pushpool submits its runs itself.
pub(crate) async fn get_scheduled_flow_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    FilterBody(body): FilterBody<PoolScheduledRunsBody>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    no_other_keys(&body.other)?;
    let limit = super::filters::limit(&body.limit)?;
    let store = state.store().as_ref();
    let pool = store.read_work_pool(&name).await?;
    let all = pushpool_service::queues::pool_queues(store, &pool).await?;
    let queues = match &body.work_queue_names {
        Some(names) if !names.is_empty() => {
            let mut named = Vec::new();
            for n in names {
                named.push(pushpool_service::queues::read_queue(store, &pool, n).await?);
            }
            named
        }
        _ => all.clone(),
    };
    if pool.is_paused {
        return Ok(axum::Json(vec![]));
    }
    let query = pushpool_store::FlowRunQuery {
        filter: pushpool_core::filter::FlowRunFilter {
            next_scheduled_start_time: Some(pushpool_core::filter::TimeRange {
                before_: body.scheduled_before,
                after_: body.scheduled_after,
            }),
            ..pushpool_core::filter::FlowRunFilter::state_types(&[
                pushpool_core::state::StateType::Scheduled,
            ])
        },
        work_pool_names: Some(vec![pool.name.clone()]),
        sort: pushpool_core::filter::FlowRunSort::NextScheduledStartTimeAsc,
        ..pushpool_store::FlowRunQuery::default()
    };
    let mut runs: Vec<(i64, pushpool_core::model::FlowRun, uuid::Uuid)> = store
        .list_flow_runs(&query)
        .await?
        .into_iter()
        .filter_map(|run| {
            let queue = pushpool_service::queues::queue_of(&run, &pool, &all)?;
            let chosen = queues.iter().any(|q| q.id == queue.id) && !queue.is_paused;
            chosen.then_some((queue.priority, run, queue.id))
        })
        .collect();
    // Stable: by next scheduled start time within a priority.
    runs.sort_by_key(|(priority, _, _)| *priority);
    Ok(axum::Json(
        runs.into_iter()
            .take(limit)
            .map(|(_, run, queue_id)| {
                json!({"work_pool_id": pool.id, "work_queue_id": queue_id, "flow_run": run})
            })
            .collect(),
    ))
}

/// The body of `POST /work_pools/{name}/concurrency_status`: `page` (from 1), `limit`
/// (queues per page, Prefect's `LimitBody`), `flow_run_limit` (runs listed per queue,
/// 0..=200, default 10).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConcurrencyStatusBody {
    #[serde(default)]
    page: super::filters::RawNumber,
    #[serde(default)]
    limit: super::filters::RawNumber,
    #[serde(default)]
    flow_run_limit: super::filters::RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

fn bounded(
    name: &str,
    raw: &super::filters::RawNumber,
    default: i64,
    min: i64,
    max: i64,
) -> Result<usize, ApiError> {
    let value = match raw {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(default),
        Some(_) => {
            return Err(ApiError::Invalid(format!("{name}: must be an integer")));
        }
    };
    if value < min || value > max {
        return Err(ApiError::Invalid(format!(
            "{name}: must be between {min} and {max}"
        )));
    }
    Ok(usize::try_from(value).unwrap_or(0))
}

/// `POST /work_pools/{name}/concurrency_status` (`prefect work-pool slots`): Prefect's
/// `WorkPoolConcurrencyStatus`. The slot holders are the pool's PENDING and RUNNING runs
/// (Prefect's `WORK_POOL_SLOT_OCCUPYING_STATES`), counted per queue and listed by id (at most
/// `flow_run_limit` per queue) as `FlowRunSlotSummary`s with `time_in_current_state` in
/// seconds; queues by priority, paged. This reports; the pool's and the queues'
/// `concurrency_limit`s are enforced at submission (`pushpool_service::concurrency_slots`).
/// 404 `Work pool '<name>' not found.` (Prefect's).
pub(crate) async fn concurrency_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
    FilterBody(body): FilterBody<ConcurrencyStatusBody>,
) -> Result<axum::Json<Value>, ApiError> {
    no_other_keys(&body.other)?;
    let page = bounded("page", &body.page, 1, 1, i64::MAX)?;
    let limit = super::filters::limit(&body.limit)?;
    let flow_run_limit = bounded("flow_run_limit", &body.flow_run_limit, 10, 0, 200)?;
    let store = state.store().as_ref();
    let pool = match store.read_work_pool(&name).await {
        Ok(p) => p,
        Err(pushpool_store::StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("Work pool '{name}' not found.")));
        }
        Err(e) => return Err(e.into()),
    };
    let queues = pushpool_service::queues::pool_queues(store, &pool).await?;
    let holding = pushpool_store::FlowRunQuery {
        work_pool_names: Some(vec![pool.name.clone()]),
        ..pushpool_store::FlowRunQuery::new(pushpool_core::filter::FlowRunFilter::state_types(&[
            pushpool_core::state::StateType::Pending,
            pushpool_core::state::StateType::Running,
        ]))
    };
    let mut runs = store.list_flow_runs(&holding).await?;
    runs.sort_by_key(|r| r.id.to_string());
    let now = Utc::now();
    let mut by_queue: std::collections::HashMap<uuid::Uuid, Vec<&pushpool_core::model::FlowRun>> =
        std::collections::HashMap::new();
    for run in &runs {
        if let Some(q) = pushpool_service::queues::queue_of(run, &pool, &queues) {
            by_queue.entry(q.id).or_default().push(run);
        }
    }
    let active: usize = by_queue.values().map(Vec::len).sum();
    let count = queues.len();
    let details: Vec<Value> = queues
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(|q| {
            let held = by_queue.get(&q.id).map_or(&[][..], Vec::as_slice);
            let listed: Vec<Value> = held
                .iter()
                .take(flow_run_limit)
                .map(|r| super::work_queues::slot_summary(r, now))
                .collect();
            json!({
                "queue_id": q.id,
                "queue_name": q.name,
                "active_slots": held.len(),
                "concurrency_limit": q.concurrency_limit,
                "flow_runs": listed,
                "flow_run_count": held.len(),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "active_slots": active,
        "concurrency_limit": pool.concurrency_limit,
        "queues": details,
        "count": count,
        "limit": limit,
        "pages": if limit > 0 { count.div_ceil(limit) } else { 0 },
        "page": page,
    })))
}
