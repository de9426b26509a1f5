//! `POST /deployments/get_scheduled_flow_runs`: what `flow.serve()` (a runner) polls for the
//! runs of the deployments it serves (Prefect 3.9.1, `prefect/server/api/deployments.py`,
//! `get_scheduled_flow_runs_for_deployments`).
//!
//! The answer is Prefect's: the SCHEDULED runs of the named deployments whose
//! `next_scheduled_start_time` is at or before `scheduled_before` (all of them when it is
//! absent), by `next_scheduled_start_time` ascending, at most `limit` (Prefect's `LimitBody`:
//! default and maximum 200). As on Prefect's server, a poll marks the named deployments
//! `READY` and sets their `last_polled` to now.
//!
//! A served deployment has no work pool, so pushpool never submits its runs anywhere: the
//! runner that polls here runs them itself.

use axum::extract::State;
use chrono::{DateTime, Utc};
use pushpool_core::filter::{FlowRunFilter, FlowRunSort, TimeRange};
use pushpool_core::model::FlowRun;
use pushpool_core::state::StateType;
use pushpool_store::{FlowRunQuery, Page, StoreError};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, limit, no_other_keys};
use crate::{ApiError, AppState};

/// The body: `deployment_ids` (required), `scheduled_before`, `limit`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScheduledRunsBody {
    #[serde(default)]
    deployment_ids: Option<Vec<Uuid>>,
    #[serde(default)]
    scheduled_before: Option<DateTime<Utc>>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

pub(crate) async fn get_scheduled_flow_runs(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<ScheduledRunsBody>,
) -> Result<axum::Json<Vec<FlowRun>>, ApiError> {
    no_other_keys(&body.other)?;
    let Some(deployment_ids) = body.deployment_ids else {
        return Err(ApiError::Invalid("deployment_ids: Field required".into()));
    };
    let limit = limit(&body.limit)?;
    let store = state.store().as_ref();
    let query = FlowRunQuery {
        filter: FlowRunFilter {
            next_scheduled_start_time: body.scheduled_before.map(|before| TimeRange {
                before_: Some(before),
                after_: None,
            }),
            ..FlowRunFilter::state_types(&[StateType::Scheduled])
        },
        deployment_ids: Some(deployment_ids.clone()),
        sort: FlowRunSort::NextScheduledStartTimeAsc,
        page: Page {
            offset: 0,
            limit: Some(limit),
        },
        ..FlowRunQuery::default()
    };
    let runs = store.list_flow_runs(&query).await?;
    let now = Utc::now();
    for id in deployment_ids {
        match store.read_deployment(id).await {
            Ok(mut deployment) => {
                deployment.last_polled = Some(now);
                deployment.status = "READY".into();
                deployment.updated = now;
                store.update_deployment(&deployment).await?;
            }
            // Prefect's update touches the deployments that exist and skips the rest.
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(axum::Json(runs))
}
