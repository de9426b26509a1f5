//! Task runs: create (idempotent on `(flow_run_id, task_key, dynamic_key)`: 201 new, 200
//! existing), read, rename (PATCH), delete, `set_state` with Prefect's task policy, the state
//! history (`GET /task_run_states/?task_run_id=`, `GET /task_run_states/{id}`) and
//! `POST /task_runs/filter`. (The engine's lookup of an existing subflow run,
//! `POST /flow_runs/filter` by `flow_runs.parent_task_run_id`, is the typed flow run filter's.)
//!
//! Filter bodies are Prefect's (`{"task_runs": {"flow_run_id": {"any_": [...]}}, "limit": 10}`).
//! Honoured: `task_runs.id.any_`, `task_runs.flow_run_id.any_`, `limit` (default and maximum
//! 200, Prefect's `PREFECT_SERVER_API_DEFAULT_LIMIT`), `offset`, `sort` `ID_DESC` (the
//! default). Any other criterion is refused with a 422 that names it: never ignored. Empty
//! criteria (`null`, `"operator": "and_"`, `"is_null_": false`) are what the Prefect client
//! sends for unset fields, and are accepted.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pushpool_core::state::{State as RunState, StateCreate};
use pushpool_core::task_run::{TaskRun, TaskRunCreate};
use pushpool_store::{Page, StoreError, TaskRunFilter};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::parse_id;
use crate::extract::{Json, OptionalJson, Query};
use crate::{ApiError, AppState};

/// Prefect's `PREFECT_SERVER_API_DEFAULT_LIMIT`: the default and the largest `limit`.
const DEFAULT_LIMIT: u64 = 200;

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

/// Whether `v` sets no criterion: `null`, or an object whose entries are all empty, an
/// `"operator": "and_"` or an `"is_null_": false` (what the client sends for unset fields).
/// Returns the path of the first criterion set, if any.
fn first_criterion(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Object(map) => map.iter().find_map(|(k, val)| {
            let here = format!("{path}.{k}");
            match (k.as_str(), val) {
                ("operator", Value::String(op)) if op == "and_" => None,
                ("is_null_", Value::Bool(false)) => None,
                (_, Value::Object(_) | Value::Null) => first_criterion(val, &here),
                _ => Some(here),
            }
        }),
        _ => Some(path.to_owned()),
    }
}

fn unsupported(path: &str) -> ApiError {
    ApiError::Invalid(format!(
        "{path}: this filter criterion is not supported by pushpool yet"
    ))
}

/// The UUIDs of `section.any_` (`None` when absent or null); other keys of `section` must
/// be empty criteria.
fn any_uuids(section: Option<&Value>, path: &str) -> Result<Option<Vec<Uuid>>, ApiError> {
    let Some(section) = section.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(obj) = section.as_object() else {
        return Err(ApiError::Invalid(format!("{path}: must be an object")));
    };
    let mut rest = obj.clone();
    let any = rest.shift_remove("any_");
    if let Some(p) = first_criterion(&Value::Object(rest), path) {
        return Err(unsupported(&p));
    }
    match any {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        ApiError::Invalid(format!("{path}.any_: {i} is not a valid UUID"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ApiError::Invalid(format!(
            "{path}.any_: {other} is not a list of UUIDs"
        ))),
    }
}

/// `limit` (default and maximum 200, with Prefect's details) and `offset` of a filter body.
fn page_of(body: &Map<String, Value>, default_limit: Option<u64>) -> Result<Page, ApiError> {
    let limit = match body.get("limit") {
        None | Some(Value::Null) => default_limit,
        Some(v) => match v.as_i64() {
            Some(l) if l < 0 => {
                return Err(ApiError::Invalid(
                    "Invalid limit: must be greater than or equal to 0.".into(),
                ));
            }
            Some(l) if default_limit.is_some_and(|d| l as u64 > d) => {
                return Err(ApiError::Invalid(format!(
                    "Invalid limit: must be less than or equal to {DEFAULT_LIMIT}."
                )));
            }
            Some(l) => Some(l as u64),
            None => return Err(ApiError::Invalid(format!("limit: {v} is not an integer"))),
        },
    };
    let offset = match body.get("offset") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::Invalid(format!("offset: {v} is not an integer >= 0")))?,
    };
    Ok(Page {
        offset: offset as usize,
        limit: limit.map(|l| l as usize),
    })
}

/// `POST /task_runs/filter`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<Value>,
) -> Result<axum::Json<Vec<TaskRun>>, ApiError> {
    let body = match body {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => return Err(ApiError::Invalid("body: must be an object".into())),
    };
    let mut filter = TaskRunFilter {
        page: page_of(&body, Some(DEFAULT_LIMIT))?,
        ..TaskRunFilter::default()
    };
    for (key, value) in &body {
        match key.as_str() {
            "limit" | "offset" => {}
            "sort" => match value {
                Value::Null => {}
                Value::String(s) if s == "ID_DESC" => {}
                other => {
                    return Err(ApiError::Invalid(format!(
                        "sort: {other} is not supported for task runs yet (only ID_DESC)"
                    )));
                }
            },
            "task_runs" => {
                let Some(section) = value.as_object() else {
                    if value.is_null() {
                        continue;
                    }
                    return Err(ApiError::Invalid("task_runs: must be an object".into()));
                };
                for (k, v) in section {
                    let path = format!("task_runs.{k}");
                    match k.as_str() {
                        "id" => filter.ids = any_uuids(Some(v), &path)?,
                        "flow_run_id" => filter.flow_run_ids = any_uuids(Some(v), &path)?,
                        "operator" if v == "and_" => {}
                        _ => {
                            if let Some(p) = first_criterion(v, &path) {
                                return Err(unsupported(&p));
                            }
                        }
                    }
                }
            }
            "flows" | "flow_runs" | "deployments" => {
                if let Some(p) = first_criterion(value, key) {
                    return Err(unsupported(&p));
                }
            }
            other => {
                if !value.is_null() {
                    return Err(ApiError::Invalid(format!(
                        "{other}: unknown field of a task run filter"
                    )));
                }
            }
        }
    }
    Ok(axum::Json(state.store().list_task_runs(&filter).await?))
}
