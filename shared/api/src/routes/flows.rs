//! Flows: `POST /flows/` upserts by name (201 new, 200 existing), reads, filter, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::model::{Flow, Object};

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::filters::{FilterBody, FlowsBody, Paging, paginated};
use super::parse_id;
use crate::extract::Json;
use crate::{ApiError, AppState};
use pushpool_service::queries;

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

/// `POST /flows/filter`: Prefect's `FlowFilter` and related filters, every `FlowSort`, and
/// `offset`/`limit`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowsBody>,
) -> Result<axum::Json<Vec<Flow>>, ApiError> {
    let l = body.listing(Paging::Offset, false)?;
    Ok(axum::Json(
        queries::read_flows(state.store().as_ref(), &l.related, l.sort, l.page).await?,
    ))
}

/// `POST /flows/count`.
pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    let l = body.listing(Paging::None, false)?;
    Ok(axum::Json(
        queries::count_flows(state.store().as_ref(), &l.related).await?,
    ))
}

/// `POST /flows/paginate`.
pub(crate) async fn paginate(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FlowsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let l = body.listing(Paging::Page, false)?;
    let store = state.store().as_ref();
    let results = queries::read_flows(store, &l.related, l.sort, l.page).await?;
    let count = queries::count_flows(store, &l.related).await?;
    Ok(axum::Json(paginated(
        results,
        count,
        l.limit,
        l.page_number,
    )))
}
