//! The routes only Prefect's web UI calls (Prefect 3.9.1 `prefect/server/api/ui/`,
//! `api/admin.py`, `api/saved_searches.py`).

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::Utc;
use pushpool_core::state::StateType;
use pushpool_service::queries;
use pushpool_store::TaskRunFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, FlowRunsBody};
use crate::error::ApiError;
use crate::extract::Json;

use crate::AppState;

/// One run of `POST /ui/flow_runs/history` (Prefect's `SimpleFlowRun`).
#[derive(Debug, Serialize)]
pub(crate) struct SimpleFlowRun {
    id: Uuid,
    state_type: Option<StateType>,
    /// The start time, or the expected start time when the run has not started.
    timestamp: Option<chrono::DateTime<Utc>>,
    /// Seconds run (Prefect's `estimated_run_time`).
    duration: f64,
    /// Seconds between the expected and the actual (or, not started, the current) start
    /// (Prefect's `estimated_start_time_delta`).
    lateness: f64,
}

/// `POST /ui/flow_runs/history`: the runs the filters match, in `sort` order, as the
/// points of the UI's run-history chart.
pub(crate) async fn flow_run_history(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowRunsBody>,
) -> Result<axum::Json<Vec<SimpleFlowRun>>, ApiError> {
    let l = body.history_listing()?;
    let runs = queries::read_flow_runs(state.store().as_ref(), &l.related, l.sort, l.page).await?;
    Ok(axum::Json(
        runs.into_iter()
            .map(|r| SimpleFlowRun {
                id: r.id,
                state_type: r.state_type,
                timestamp: r.start_time.or(r.expected_start_time),
                duration: r.estimated_run_time,
                lateness: r.estimated_start_time_delta,
            })
            .collect(),
    ))
}

/// `POST /ui/flow_runs/count-task-runs`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountTaskRuns {
    flow_run_ids: Vec<Uuid>,
}

/// `POST /ui/flow_runs/count-task-runs`: `{flow run id: number of its task runs}` for up to
/// 200 runs (task runs that stand for a subflow run are not counted, as on Prefect's
/// server).
pub(crate) async fn count_task_runs(
    State(state): State<AppState>,
    Json(body): Json<CountTaskRuns>,
) -> Result<axum::Json<BTreeMap<Uuid, u64>>, ApiError> {
    if body.flow_run_ids.len() > 200 {
        return Err(ApiError::Invalid(
            "flow_run_ids: at most 200 ids (Prefect's max_length)".into(),
        ));
    }
    let mut counts: BTreeMap<Uuid, u64> = body.flow_run_ids.iter().map(|id| (*id, 0)).collect();
    if body.flow_run_ids.is_empty() {
        return Ok(axum::Json(counts));
    }
    let task_runs = state
        .store()
        .list_task_runs(&TaskRunFilter {
            flow_run_ids: Some(body.flow_run_ids.clone()),
            ..TaskRunFilter::default()
        })
        .await?;
    let ids: Vec<Uuid> = task_runs.iter().map(|t| t.id).collect();
    let subflow_tasks: std::collections::HashSet<Uuid> = state
        .store()
        .list_subflow_runs(&ids, pushpool_store::Page::default())
        .await?
        .into_iter()
        .filter_map(|r| r.parent_task_run_id)
        .collect();
    for task_run in task_runs {
        if subflow_tasks.contains(&task_run.id) {
            continue;
        }
        if let Some(count) = task_run.flow_run_id.and_then(|id| counts.get_mut(&id)) {
            *count += 1;
        }
    }
    Ok(axum::Json(counts))
}

/// `GET /admin/settings`: the server's settings. Prefect answers its own `Settings` object;
/// pushpool answers the settings a UI user may look for, in Prefect's layout where one
/// exists (`server.ui`), and its own under `pushpool`. No secret is included.
pub(crate) async fn admin_settings(State(state): State<AppState>) -> axum::Json<Value> {
    let ui = state.ui.as_ref().map(|ui| ui.settings().clone());
    axum::Json(json!({
        "server": {
            "ui": {
                "enabled": ui.is_some(),
                "api_url": ui.as_ref().map(|u| u.api_url.clone()),
                "v2_enabled": ui.as_ref().is_some_and(|u| u.default_ui == crate::ui::UiVersion::V2),
            },
        },
        "pushpool": {
            "version": env!("CARGO_PKG_VERSION"),
            "api_keys_required": state.auth == crate::auth::AuthMode::Required,
        },
    }))
}

/// `POST /saved_searches/filter`: pushpool stores no saved searches (the UI's saved run
/// filters), so the list is empty; creating one is refused ([`create_saved_search`]).
pub(crate) async fn saved_searches_filter() -> axum::Json<Vec<Value>> {
    axum::Json(Vec::new())
}

/// `PUT /saved_searches/`: refused with a 422 that says saved searches are not supported.
pub(crate) async fn create_saved_search() -> ApiError {
    ApiError::Invalid(
        "saved searches are not supported by pushpool: the run filters stay in the page's URL"
            .into(),
    )
}

/// `POST /flow_runs/lateness`: the average lateness, in seconds, of the flow runs the filters
/// match, or `null` when none match (Prefect's `average_flow_run_lateness`). A run's lateness
/// is `start_time - expected_start_time` when it started late; for a run not started, not
/// final and past its expected start, the time since then; else 0.
pub(crate) async fn flow_run_lateness(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowRunsBody>,
) -> Result<axum::Json<Option<f64>>, ApiError> {
    let l = body.listing(super::filters::Paging::None, true)?;
    let runs = queries::read_flow_runs(state.store().as_ref(), &l.related, l.sort, l.page).await?;
    if runs.is_empty() {
        return Ok(axum::Json(None));
    }
    let now = Utc::now();
    let total: f64 = runs
        .iter()
        .map(|r| match (r.start_time, r.expected_start_time) {
            (Some(start), Some(expected)) if start > expected => {
                (start - expected).num_milliseconds() as f64 / 1000.0
            }
            (None, Some(expected))
                if expected < now && !r.state_type.is_some_and(StateType::is_terminal) =>
            {
                (now - expected).num_milliseconds() as f64 / 1000.0
            }
            _ => 0.0,
        })
        .sum();
    Ok(axum::Json(Some(total / runs.len() as f64)))
}
