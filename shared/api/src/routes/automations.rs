//! `/automations/…`: pushpool runs no automations (no triggers, no actions), so it holds none,
//! and says so truthfully on every route of Prefect 3.9.1's automations API
//! (`prefect/server/api/automations.py`):
//!
//! - `POST /automations/filter` → `[]` and `POST /automations/count` → `0`, after checking the
//!   body as Prefect does (its `AutomationFilter`, `AutomationSort`, `limit`/`offset` rules):
//!   an empty answer is the exact answer for every valid filter, and an invalid one is a 422.
//! - `GET /automations/related-to/{resource_id}` → `[]` and
//!   `DELETE /automations/owned-by/{resource_id}` → `202` (Prefect's status), deleting nothing:
//!   `prefect deploy` and `prefect deployment inspect` call them.
//! - `GET|PUT|PATCH|DELETE /automations/{id}` → `404 "Automation not found"`, Prefect's answer
//!   for an id it does not hold.
//! - `POST /automations/` (`prefect automation create`, an automation in `prefect.yaml`) →
//!   `422` whose detail says automations are not supported: accepting one would store a
//!   trigger that never fires.

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use pushpool_core::filter::{AnyOf, Operator};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, no_other_keys, offset_page};
use crate::ApiError;

/// The detail of `POST /automations/`.
pub(crate) const NOT_SUPPORTED: &str = "Error creating automation: pushpool does not run \
    automations (it has no triggers or actions), so it does not store them. Use Prefect's own \
    server or Prefect Cloud for automations.";

/// Prefect's `AutomationSort`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[allow(dead_code)] // as above
enum AutomationSort {
    #[serde(rename = "CREATED_DESC")]
    CreatedDesc,
    #[serde(rename = "UPDATED_DESC")]
    UpdatedDesc,
    #[default]
    #[serde(rename = "NAME_ASC")]
    NameAsc,
    #[serde(rename = "NAME_DESC")]
    NameDesc,
}

/// Prefect's `AutomationFilterCreated`.
#[allow(dead_code)] // parsed to refuse a malformed filter; there is nothing to match it against
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatedFilter {
    #[serde(default)]
    before_: Option<DateTime<Utc>>,
}

/// Prefect's `AutomationFilterTags`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct TagsFilter {
    #[serde(default)]
    operator: Option<Operator>,
    #[serde(default)]
    all_: Option<Vec<String>>,
    #[serde(default)]
    any_: Option<Vec<String>>,
    #[serde(default)]
    is_null_: Option<bool>,
}

/// Prefect's `AutomationFilter`: every key it defines, nothing else. Parsed so that a
/// malformed filter is a 422 naming the key; no automation exists to match it against.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct AutomationFilter {
    #[serde(default)]
    operator: Option<Operator>,
    #[serde(default)]
    id: Option<AnyOf<Uuid>>,
    #[serde(default)]
    name: Option<AnyOf<String>>,
    #[serde(default)]
    created: Option<CreatedFilter>,
    #[serde(default)]
    tags: Option<TagsFilter>,
}

/// `POST /automations/filter`'s body.
#[derive(Debug, Default, Deserialize)]
#[allow(dead_code)] // as above
pub(crate) struct FilterAutomations {
    #[serde(default)]
    automations: Option<AutomationFilter>,
    #[serde(default)]
    sort: Option<AutomationSort>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `POST /automations/count`'s body.
#[derive(Debug, Default, Deserialize)]
#[allow(dead_code)] // as above
pub(crate) struct CountAutomations {
    #[serde(default)]
    automations: Option<AutomationFilter>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

pub(crate) async fn filter(
    FilterBody(body): FilterBody<FilterAutomations>,
) -> Result<Json<Value>, ApiError> {
    no_other_keys(&body.other)?;
    offset_page(&body.offset, &body.limit)?;
    Ok(Json(json!([])))
}

pub(crate) async fn count(
    FilterBody(body): FilterBody<CountAutomations>,
) -> Result<Json<Value>, ApiError> {
    no_other_keys(&body.other)?;
    Ok(Json(json!(0)))
}

pub(crate) async fn create() -> ApiError {
    ApiError::Invalid(NOT_SUPPORTED.into())
}

/// `GET|PUT|PATCH|DELETE /automations/{id}`: none exists.
pub(crate) async fn by_id(
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<(), ApiError> {
    super::parse_id("id", &id)?;
    Err(ApiError::NotFound("Automation not found".into()))
}

pub(crate) async fn related_to(
    axum::extract::Path(_resource_id): axum::extract::Path<String>,
) -> Json<Value> {
    Json(json!([]))
}

pub(crate) async fn delete_owned_by(
    axum::extract::Path(_resource_id): axum::extract::Path<String>,
) -> impl IntoResponse {
    StatusCode::ACCEPTED
}
