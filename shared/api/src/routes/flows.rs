//! Flows: `POST /flows/` upserts by name (201 new, 200 existing), reads, filter, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::model::{Flow, Object};
use pushpool_store::Page;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::parse_id;
use crate::extract::{Json, OptionalJson};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct FlowCreate {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    labels: Option<Object>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<FlowCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::Name)?;
    let now = Utc::now();
    let flow = Flow {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: body.name,
        tags: body.tags,
        labels: body.labels.unwrap_or_default(),
    };
    let (flow, created) = state.store().upsert_flow(&flow).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(flow)))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Flow>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_flow(id).await?))
}

pub(crate) async fn read_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<Flow>, ApiError> {
    Ok(axum::Json(state.store().read_flow_by_name(&name).await?))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_flow(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn filter(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<Value>,
) -> Result<axum::Json<Vec<Flow>>, ApiError> {
    let names = super::filters::any_strings(body.get("flows"), "name");
    let ids = super::filters::any_ids(body.get("flows"), "id");
    let offset = body.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = body
        .get("limit")
        .and_then(Value::as_u64)
        .map(|l| l as usize);
    let flows = state.store().list_flows(Page::default()).await?;
    Ok(axum::Json(
        flows
            .into_iter()
            .filter(|f| names.as_ref().is_none_or(|n| n.contains(&f.name)))
            .filter(|f| ids.as_ref().is_none_or(|i| i.contains(&f.id)))
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect(),
    ))
}
