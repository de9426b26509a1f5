//! Work queues, as Prefect's `api/workers.py` (a pool's queues by name) and
//! `api/work_queues.py` (a queue by id) serve them:
//!
//! - `POST /work_pools/{name}/queues` (201), `POST /work_pools/{name}/queues/filter`,
//!   `GET|PATCH|DELETE /work_pools/{name}/queues/{queue_name}` (PATCH and DELETE: 204);
//! - `GET|PATCH|DELETE /work_queues/{id}`, `GET /work_queues/{id}/status`,
//!   `POST /work_queues/{id}/get_runs` (`prefect work-queue preview`),
//!   `POST /work_queues/filter` (every pool's queues, `prefect work-queue ls` without `-p`),
//!   `POST /work_queues/{id}/concurrency_status` (`prefect work-queue slots`);
//! - `POST /work_queues/` and `GET /work_queues/name/{name}` (`create_work_queue` and
//!   `read_work_queue_by_name` without a pool): queues of Prefect's default agent pool
//!   ([`pushpool_service::agent_queues`]).
//!
//! The rules (default queue, unique names within a pool, priorities) are in
//! [`pushpool_service::queues`]. What pushpool does with a queue:
//! - `is_paused`: a paused queue's runs wait SCHEDULED and are not submitted; once it is
//!   resumed, the reconciler's next tick submits the due ones (embedded: every
//!   `--reconcile-interval`, 5 s by default; AWS: the reconciler's `ScheduleExpression`,
//!   1 minute by default). A resume writes no run, so nothing is submitted sooner;
//! - `priority`: the reconciler submits the due runs of higher-priority queues first
//!   (1 is the highest); it matters only when slots are short;
//! - `concurrency_limit`: enforced at submission (`pushpool_service::concurrency_slots`):
//!   runs of a queue at its limit wait as `AwaitingConcurrencySlot`.
//!
//! The response is Prefect's `WorkQueueResponse`: the stored queue plus `filter: null`,
//! `work_pool_name`, `status` (`PAUSED` when paused; else `READY` for a pool pushpool
//! submits, which serves its queues without polling, and `NOT_READY` for a worker pool's,
//! which nothing polls here) and `active_slots` (with a concurrency limit, the runs holding one
//! of its slots; `null` without one, as Prefect: [`queue_response`]).
//! Deviations from Prefect: deleting a pool's default queue is a 409 with Prefect's message
//! "Can't delete a pool's default queue." (Prefect's server raises it unhandled, a 500);
//! the conflict detail of a create names the pool (Prefect's has the unformatted
//! `{work_pool_name!r}`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use pushpool_core::filter::WorkQueueFilter;
use pushpool_core::model::{WorkPool, WorkQueue};
use pushpool_service::queues::{self, QueueCreate};
use pushpool_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::filters::{FilterBody, RawNumber, checked_page};
use super::parse_id;
use crate::extract::Json;
use crate::{ApiError, AppState};

/// Prefect's `WorkQueueCreate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkQueueCreate {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    is_paused: bool,
    #[serde(default)]
    concurrency_limit: Option<i64>,
    #[serde(default)]
    priority: Option<i64>,
    /// Deprecated in Prefect; only `null` is accepted.
    #[serde(default)]
    filter: Option<Value>,
}

/// Prefect's `WorkQueueUpdate` (only the keys sent change anything).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkQueueUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::explicit")]
    description: Option<Option<String>>,
    #[serde(default)]
    is_paused: Option<bool>,
    #[serde(default, deserialize_with = "super::explicit")]
    concurrency_limit: Option<Option<i64>>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "super::explicit")]
    last_polled: Option<Option<DateTime<Utc>>>,
    /// Deprecated in Prefect; only `null` is accepted.
    #[serde(default)]
    filter: Option<Value>,
}

/// `/work_pools/{name}/queues/filter`: `{work_queues, offset, limit}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WorkQueuesBody {
    #[serde(default)]
    work_queues: Option<WorkQueueFilter>,
    #[serde(default)]
    offset: RawNumber,
    #[serde(default)]
    limit: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// [`response`] with Prefect's `active_slots`: with a concurrency limit, the runs holding
/// one of the queue's slots (pushpool's slot counter counts PENDING, RUNNING and CANCELLING
/// runs: [`pushpool_service::concurrency_slots`]); `null` without a limit, as Prefect.
pub(crate) async fn queue_response(
    state: &AppState,
    queue: &WorkQueue,
    pool: &WorkPool,
) -> Result<Value, ApiError> {
    let mut body = response(queue, pool);
    if queue.concurrency_limit.is_some() {
        let counter = pushpool_service::concurrency_slots::queue_counter(queue.id);
        body["active_slots"] = json!(state.store().read_counter(&counter).await?);
    }
    Ok(body)
}

/// Prefect's `WorkQueueResponse` of `queue` in `pool` (`active_slots` `null`: see
/// [`queue_response`]).
pub(crate) fn response(queue: &WorkQueue, pool: &WorkPool) -> Value {
    let status = if queue.is_paused {
        "PAUSED"
    } else if pool.is_submitted_by_pushpool() {
        "READY"
    } else {
        "NOT_READY"
    };
    json!({
        "id": queue.id,
        "created": queue.created,
        "updated": queue.updated,
        "name": queue.name,
        "description": queue.description,
        "is_paused": queue.is_paused,
        "concurrency_limit": queue.concurrency_limit,
        "priority": queue.priority,
        "work_pool_id": queue.work_pool_id,
        "filter": null,
        "last_polled": queue.last_polled,
        "work_pool_name": pool.name,
        "status": status,
        "active_slots": null,
    })
}

fn check_limit(limit: Option<i64>) -> Result<(), ApiError> {
    match limit {
        Some(l) if l < 0 => Err(ApiError::Invalid(
            "concurrency_limit: must be greater than or equal to 0".into(),
        )),
        _ => Ok(()),
    }
}

/// The largest priority: Prefect stores it in an `INTEGER` column (32 bits on PostgreSQL).
const MAX_PRIORITY: i64 = i32::MAX as i64;

fn check_priority(priority: Option<i64>) -> Result<(), ApiError> {
    match priority {
        Some(p) if p < 1 => Err(ApiError::Invalid("priority: must be greater than 0".into())),
        Some(p) if p > MAX_PRIORITY => Err(ApiError::Invalid(format!(
            "priority: must be less than or equal to {MAX_PRIORITY}"
        ))),
        _ => Ok(()),
    }
}

fn check_filter(filter: Option<&Value>) -> Result<(), ApiError> {
    match filter {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::Invalid(
            "filter: deprecated queue filters (by tags and deployment ids) are not supported; \
             send null"
                .into(),
        )),
    }
}

/// The queue of a pool's unknown name: Prefect's 404 detail for the pool.
async fn pool(state: &AppState, name: &str) -> Result<WorkPool, ApiError> {
    Ok(state.store().read_work_pool(name).await?)
}

/// `POST /work_pools/{name}/queues`: 201 with the queue; 409 when the pool already has one
/// of that name; 404 for an unknown pool.
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(pool_name): Path<String>,
    Json(body): Json<WorkQueueCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::Name)?;
    check_limit(body.concurrency_limit)?;
    check_priority(body.priority)?;
    check_filter(body.filter.as_ref())?;
    let pool = pool(&state, &pool_name).await?;
    let queue = queues::create_queue(
        state.store().as_ref(),
        &pool,
        QueueCreate {
            name: body.name,
            description: body.description,
            is_paused: body.is_paused,
            concurrency_limit: body.concurrency_limit,
            priority: body.priority,
        },
    )
    .await?;
    tracing::info!(work_pool = %pool.name, work_queue = %queue.name, priority = queue.priority, "work queue created");
    // The priorities of others may have moved, never this one's: it is as created.
    Ok((
        StatusCode::CREATED,
        axum::Json(queue_response(&state, &queue, &pool).await?),
    ))
}

/// `POST /work_pools/{name}/queues/filter`: the pool's queues by priority, filtered by
/// Prefect's `WorkQueueFilter`, `offset`/`limit`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    Path(pool_name): Path<String>,
    FilterBody(body): FilterBody<WorkQueuesBody>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let pool = pool(&state, &pool_name).await?;
    let filter = body.work_queues.unwrap_or_default();
    let out = queues::pool_queues(state.store().as_ref(), &pool)
        .await?
        .into_iter()
        .filter(|q| filter.matches(q.id, &q.name))
        .skip(page.offset)
        .take(page.limit.unwrap_or(usize::MAX))
        .collect::<Vec<_>>();
    let mut answered = Vec::with_capacity(out.len());
    for q in &out {
        answered.push(queue_response(&state, q, &pool).await?);
    }
    Ok(axum::Json(answered))
}

/// `GET /work_pools/{name}/queues/{queue_name}`.
pub(crate) async fn read(
    State(state): State<AppState>,
    Path((pool_name, queue_name)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let pool = pool(&state, &pool_name).await?;
    let queue = queues::read_queue(state.store().as_ref(), &pool, &queue_name).await?;
    Ok(axum::Json(queue_response(&state, &queue, &pool).await?))
}

/// `PATCH /work_pools/{name}/queues/{queue_name}`: 204.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path((pool_name, queue_name)): Path<(String, String)>,
    Json(body): Json<WorkQueueUpdate>,
) -> Result<StatusCode, ApiError> {
    check_update(&body)?;
    let pool = pool(&state, &pool_name).await?;
    let queue = queues::read_queue(state.store().as_ref(), &pool, &queue_name).await?;
    apply_update(state.store().as_ref(), &pool, queue, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /work_pools/{name}/queues/{queue_name}`: 204; 409 for the default queue.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((pool_name, queue_name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let pool = pool(&state, &pool_name).await?;
    let queue = queues::read_queue(state.store().as_ref(), &pool, &queue_name).await?;
    remove(state.store().as_ref(), &pool, &queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /work_queues/{id}`: 404 `work queue not found` (Prefect's detail).
pub(crate) async fn read_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (queue, pool) = by_id(&state, &id).await?;
    Ok(axum::Json(queue_response(&state, &queue, &pool).await?))
}

/// `PATCH /work_queues/{id}`: 204; 404 `Work Queue <id> not found` (Prefect's detail).
pub(crate) async fn update_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<WorkQueueUpdate>,
) -> Result<StatusCode, ApiError> {
    check_update(&body)?;
    let (queue, pool) = by_id(&state, &id).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound(format!("Work Queue {id} not found")),
        e => e,
    })?;
    apply_update(state.store().as_ref(), &pool, queue, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /work_queues/{id}`: 204; 409 for a pool's default queue.
pub(crate) async fn delete_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (queue, pool) = by_id(&state, &id).await?;
    remove(state.store().as_ref(), &pool, &queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /work_queues/{id}/status`: Prefect's `WorkQueueStatusDetail` with its default health
/// policy (no late runs, polled within 60 s). Nothing polls a queue here, so `healthy` is
/// `false` unless a client set `last_polled` in the last 60 s, as on Prefect without a worker.
pub(crate) async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (queue, pool) = by_id(&state, &id).await?;
    let late = pushpool_core::filter::FlowRunFilter {
        state: Some(pushpool_core::filter::FlowRunFilterState {
            name: Some(pushpool_core::filter::AnyNotAny {
                any_: Some(vec!["Late".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let query = pushpool_store::FlowRunQuery {
        work_pool_names: Some(vec![pool.name.clone()]),
        ..pushpool_store::FlowRunQuery::new(late)
    };
    let late_runs = state
        .store()
        .list_flow_runs(&query)
        .await?
        .iter()
        .filter(|r| queues::queue_of(r, &pool, std::slice::from_ref(&queue)).is_some())
        .count();
    let polled_recently = queue
        .last_polled
        .is_some_and(|t| (Utc::now() - t).num_milliseconds() <= 60_000);
    Ok(axum::Json(json!({
        "healthy": late_runs == 0 && polled_recently,
        "late_runs_count": late_runs,
        "last_polled": queue.last_polled,
        "health_check_policy": {
            "maximum_late_runs": 0,
            "maximum_seconds_since_last_polled": 60,
        },
    })))
}

async fn by_id(state: &AppState, id: &str) -> Result<(WorkQueue, WorkPool), ApiError> {
    let id = parse_id("id", id)?;
    let not_found = || ApiError::NotFound("work queue not found".into());
    let queue = match state.store().read_work_queue(id).await {
        Ok(q) => q,
        Err(StoreError::NotFound(_)) => {
            // A pool stored before queues were modelled: its default queue on first read.
            let pools = state
                .store()
                .list_work_pools(pushpool_store::Page::default())
                .await?;
            let pool = pools
                .into_iter()
                .find(|p| p.default_queue_id == id)
                .ok_or_else(not_found)?;
            let queue = queues::default_queue(state.store().as_ref(), &pool).await?;
            return Ok((queue, pool));
        }
        Err(e) => return Err(e.into()),
    };
    let pool = match state.store().read_work_pool_by_id(queue.work_pool_id).await {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    Ok((queue, pool))
}

fn check_update(body: &WorkQueueUpdate) -> Result<(), ApiError> {
    if let Some(name) = &body.name {
        crate::names::check("name", name, crate::names::Rule::Name)?;
    }
    check_limit(body.concurrency_limit.flatten())?;
    check_priority(body.priority)?;
    check_filter(body.filter.as_ref())
}

async fn apply_update(
    store: &dyn Store,
    pool: &WorkPool,
    mut queue: WorkQueue,
    body: WorkQueueUpdate,
) -> Result<(), ApiError> {
    if let Some(name) = body.name {
        if queue.id == pool.default_queue_id && name != queue.name {
            // Deployments and runs name the default queue `default`; Prefect allows the
            // rename, pushpool keeps the name its runs are routed by.
            return Err(ApiError::Invalid(
                "name: a work pool's default queue cannot be renamed".into(),
            ));
        }
        queue.name = name;
    }
    if let Some(d) = body.description {
        queue.description = d;
    }
    if let Some(p) = body.is_paused {
        queue.is_paused = p;
    }
    if let Some(c) = body.concurrency_limit {
        queue.concurrency_limit = c;
    }
    if let Some(t) = body.last_polled {
        queue.last_polled = t;
    }
    let paused = queue.is_paused;
    let name = queue.name.clone();
    queues::update_queue(store, pool, queue, body.priority).await?;
    if let Some(p) = body.is_paused {
        tracing::info!(work_pool = %pool.name, work_queue = %name, is_paused = p, paused, "work queue updated");
    }
    Ok(())
}

async fn remove(store: &dyn Store, pool: &WorkPool, queue: &WorkQueue) -> Result<(), ApiError> {
    if queue.id == pool.default_queue_id {
        return Err(ApiError::Conflict(
            "Can't delete a pool's default queue.".into(),
        ));
    }
    store.delete_work_queue(queue.id).await?;
    tracing::info!(work_pool = %pool.name, work_queue = %queue.name, "work queue deleted");
    Ok(())
}

/// Prefect's `FlowRunSlotSummary` of a run holding a slot, `time_in_current_state` in
/// seconds since its state's timestamp.
pub(crate) fn slot_summary(run: &pushpool_core::model::FlowRun, now: DateTime<Utc>) -> Value {
    let at = run.state.as_ref().map(|s| s.timestamp);
    json!({
        "id": run.id,
        "name": run.name,
        "state_type": run.state_type,
        "state_name": run.state_name,
        "start_time": run.start_time,
        "state_timestamp": at,
        "time_in_current_state": at.map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
    })
}

/// The runs of `pool` in `states`, those of `queue` only.
async fn runs_of_queue(
    store: &dyn Store,
    pool: &WorkPool,
    queue: &WorkQueue,
    states: &[pushpool_core::state::StateType],
) -> Result<Vec<pushpool_core::model::FlowRun>, ApiError> {
    let query = pushpool_store::FlowRunQuery {
        work_pool_names: Some(vec![pool.name.clone()]),
        sort: pushpool_core::filter::FlowRunSort::NextScheduledStartTimeAsc,
        ..pushpool_store::FlowRunQuery::new(pushpool_core::filter::FlowRunFilter::state_types(
            states,
        ))
    };
    Ok(store
        .list_flow_runs(&query)
        .await?
        .into_iter()
        .filter(|r| queues::queue_of(r, pool, std::slice::from_ref(queue)).is_some())
        .collect())
}

/// The body of `POST /work_queues/{id}/get_runs`: `limit`, `scheduled_before`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueRunsBody {
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    scheduled_before: Option<DateTime<Utc>>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `POST /work_queues/{id}/get_runs` (`prefect work-queue preview`): the queue's SCHEDULED
/// runs whose next scheduled start time is at or before `scheduled_before`, soonest first,
/// at most `limit`; none for a paused queue or pool (Prefect's query skips them). Unlike
/// Prefect's, the poll marks nothing ready and the answer is not cut by concurrency slots
/// (pushpool's submitter enforces them when it claims a run).
pub(crate) async fn get_runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    FilterBody(body): FilterBody<QueueRunsBody>,
) -> Result<axum::Json<Vec<pushpool_core::model::FlowRun>>, ApiError> {
    super::filters::no_other_keys(&body.other)?;
    let limit = super::filters::limit(&body.limit)?;
    let (queue, pool) = by_id(&state, &id).await?;
    if queue.is_paused || pool.is_paused {
        return Ok(axum::Json(vec![]));
    }
    let runs = runs_of_queue(
        state.store().as_ref(),
        &pool,
        &queue,
        &[pushpool_core::state::StateType::Scheduled],
    )
    .await?
    .into_iter()
    .filter(|r| {
        body.scheduled_before
            .is_none_or(|b| r.next_scheduled_start_time.is_some_and(|t| t <= b))
    })
    .take(limit)
    .collect();
    Ok(axum::Json(runs))
}

/// The body of `POST /work_queues/{id}/concurrency_status`: `page` (from 1), `limit`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueSlotsBody {
    #[serde(default)]
    page: RawNumber,
    #[serde(default)]
    limit: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `POST /work_queues/{id}/concurrency_status` (`prefect work-queue slots`): Prefect's
/// `WorkQueueConcurrencyStatus`, the queue's PENDING and RUNNING runs by id, paged. The
/// queue's `concurrency_limit` is reported (and enforced at submission). 404 `Work queue not found.`
/// (Prefect's).
pub(crate) async fn concurrency_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    FilterBody(body): FilterBody<QueueSlotsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    super::filters::no_other_keys(&body.other)?;
    let page = match &body.page {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|p| p >= 1) => {
            usize::try_from(n.as_u64().unwrap_or(1)).unwrap_or(usize::MAX)
        }
        Some(_) => {
            return Err(ApiError::Invalid(
                "page: must be an integer greater than or equal to 1".into(),
            ));
        }
    };
    let limit = super::filters::limit(&body.limit)?;
    let (queue, pool) = by_id(&state, &id).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Work queue not found.".into()),
        e => e,
    })?;
    let mut runs = runs_of_queue(
        state.store().as_ref(),
        &pool,
        &queue,
        &[
            pushpool_core::state::StateType::Pending,
            pushpool_core::state::StateType::Running,
        ],
    )
    .await?;
    runs.sort_by_key(|r| r.id.to_string());
    let now = Utc::now();
    let count = runs.len();
    let listed: Vec<Value> = runs
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(|r| slot_summary(r, now))
        .collect();
    Ok(axum::Json(json!({
        "active_slots": count,
        "concurrency_limit": queue.concurrency_limit,
        "flow_runs": listed,
        "count": count,
        "limit": limit,
        "pages": if limit > 0 { count.div_ceil(limit) } else { 0 },
        "page": page,
    })))
}

/// `POST /work_queues/filter`: the queues of every pool by name (Prefect's order), filtered by
/// `WorkQueueFilter`, `offset`/`limit`.
pub(crate) async fn filter_all(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<WorkQueuesBody>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let filter = body.work_queues.unwrap_or_default();
    let store = state.store().as_ref();
    let mut all = Vec::new();
    for pool in store
        .list_work_pools(pushpool_store::Page::default())
        .await?
    {
        for queue in queues::pool_queues(store, &pool).await? {
            if filter.matches(queue.id, &queue.name) {
                all.push(queue_response(&state, &queue, &pool).await?);
            }
        }
    }
    all.sort_by(|a, b| {
        (a["name"].as_str(), a["id"].as_str()).cmp(&(b["name"].as_str(), b["id"].as_str()))
    });
    Ok(axum::Json(
        all.into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect(),
    ))
}

/// `POST /work_queues/`: creates the queue in Prefect's default agent pool
/// ([`pushpool_service::agent_queues`]): 201 with the queue; 409 "A work queue with this
/// name already exists."; 422 naming the field.
pub(crate) async fn create_pool_less(
    State(state): State<AppState>,
    Json(body): Json<WorkQueueCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::Name)?;
    check_limit(body.concurrency_limit)?;
    check_priority(body.priority)?;
    check_filter(body.filter.as_ref())?;
    let (queue, pool) = pushpool_service::agent_queues::create_pool_less_queue(
        state.store().as_ref(),
        QueueCreate {
            name: body.name,
            description: body.description,
            is_paused: body.is_paused,
            concurrency_limit: body.concurrency_limit,
            priority: body.priority,
        },
    )
    .await?;
    tracing::info!(work_pool = %pool.name, work_queue = %queue.name, priority = queue.priority, "work queue created");
    Ok((
        StatusCode::CREATED,
        axum::Json(queue_response(&state, &queue, &pool).await?),
    ))
}

/// `GET /work_queues/name/{name}` ([`pushpool_service::agent_queues::read_queue_by_name`]);
/// 404 "work queue not found".
pub(crate) async fn read_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (queue, pool) =
        pushpool_service::agent_queues::read_queue_by_name(state.store().as_ref(), &name).await?;
    Ok(axum::Json(queue_response(&state, &queue, &pool).await?))
}
