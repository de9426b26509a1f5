//! `/variables/…`: Prefect 3.9.1's variables API (`prefect/server/api/variables.py`), in both
//! shapes: create, read by id or name, filter and count, update and delete by id or name.
//! `prefect variable set|get|ls|inspect|unset`, `Variable.set/get()` in flows and
//! `{{ prefect.variables.<name> }}` in `prefect.yaml` use them.
//!
//! Rules, as Prefect's `VariableCreate` / `VariableUpdate`:
//! - `name`: lowercase letters, digits, dashes and underscores (`VariableName`), unique
//!   (409 `A variable with the name 'x' already exists.`), at most
//!   [`crate::names::MAX_NAME_CHARS`] characters (Prefect allows 255; pushpool's limit for
//!   every name).
//! - `value`: required on create; any JSON, `null` included, whose compact JSON text is at
//!   most 5,000 bytes (`MAX_VARIABLE_VALUE_LENGTH`; Prefect measures `orjson.dumps`).
//! - `tags`: a list of strings.
//! - Unknown keys are a 422 naming them (Prefect's action models forbid extra keys).
//!
//! A variable's value is not a secret in Prefect (it is returned in full); pushpool returns it
//! as written, byte for byte (object key order, `1` vs `1.0`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::filter::{VariableFilter, VariableSort};
use pushpool_core::model::Variable;
use pushpool_store::{Page, StoreError};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, no_other_keys, offset_page};
use super::parse_id;
use crate::extract::Json;
use crate::names::{Rule, check};
use crate::{ApiError, AppState};

/// Prefect's `MAX_VARIABLE_VALUE_LENGTH`: bytes of the value's compact JSON text.
pub const MAX_VARIABLE_VALUE_BYTES: usize = 5000;

/// `POST /variables/`'s body (Prefect's `VariableCreate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariableCreate {
    name: String,
    #[serde(default, deserialize_with = "super::explicit")]
    value: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `PATCH /variables/{id}`'s body (Prefect's `VariableUpdate`): what is present is written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariableUpdate {
    #[serde(default, deserialize_with = "super::explicit")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    value: Option<Value>,
    #[serde(default, deserialize_with = "super::explicit")]
    tags: Option<Option<Vec<String>>>,
}

fn check_value(value: &Value) -> Result<(), ApiError> {
    let bytes = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    if !value.is_null() && bytes > MAX_VARIABLE_VALUE_BYTES {
        return Err(ApiError::Invalid(format!(
            "value: Variable value must be less than {MAX_VARIABLE_VALUE_BYTES} characters \
             (its JSON text is {bytes})"
        )));
    }
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::NotFound("Variable not found.".into())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<VariableCreate>,
) -> Result<impl IntoResponse, ApiError> {
    check("name", &body.name, Rule::LowercaseDashesUnderscores)?;
    let Some(value) = body.value else {
        return Err(ApiError::Invalid("value: Field required".into()));
    };
    check_value(&value)?;
    let now = Utc::now();
    let variable = Variable {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: body.name,
        value,
        tags: body.tags.unwrap_or_default(),
    };
    state.store().create_variable(&variable).await?;
    Ok((StatusCode::CREATED, axum::Json(variable)))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Variable>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_variable(id).await?))
}

pub(crate) async fn read_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<Variable>, ApiError> {
    Ok(axum::Json(
        state.store().read_variable_by_name(&name).await?,
    ))
}

async fn apply_update(
    state: &AppState,
    mut variable: Variable,
    body: VariableUpdate,
) -> Result<StatusCode, ApiError> {
    match body.name {
        Some(Some(name)) => {
            check("name", &name, Rule::LowercaseDashesUnderscores)?;
            variable.name = name;
        }
        Some(None) => return Err(ApiError::Invalid("name: must not be null".into())),
        None => {}
    }
    if let Some(value) = body.value {
        check_value(&value)?;
        variable.value = value;
    }
    match body.tags {
        Some(Some(tags)) => variable.tags = tags,
        Some(None) => return Err(ApiError::Invalid("tags: must not be null".into())),
        None => {}
    }
    variable.updated = Utc::now();
    match state.store().update_variable(&variable).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(format!(
            "A variable with the name '{}' already exists.",
            variable.name
        ))),
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<VariableUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let variable = state.store().read_variable(id).await?;
    apply_update(&state, variable, body).await
}

pub(crate) async fn update_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<VariableUpdate>,
) -> Result<StatusCode, ApiError> {
    let variable = state.store().read_variable_by_name(&name).await?;
    apply_update(&state, variable, body).await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_variable(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let variable = state.store().read_variable_by_name(&name).await?;
    state.store().delete_variable(variable.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /variables/filter`'s body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FilterVariables {
    #[serde(default)]
    variables: Option<VariableFilter>,
    #[serde(default)]
    sort: Option<VariableSort>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `POST /variables/count`'s body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CountVariables {
    #[serde(default)]
    variables: Option<VariableFilter>,
    /// The paging keys Prefect's UI sends with a count: the total does not depend on them
    /// (Prefect's server ignores them too).
    #[serde(default, rename = "offset")]
    _offset: Option<Value>,
    #[serde(default, rename = "limit")]
    _limit: Option<Value>,
    #[serde(default, rename = "sort")]
    _sort: Option<Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// Every variable the filter matches. Variables are a small collection (a workspace's
/// settings), read whole and filtered with Prefect's predicates, as flows and deployments are.
async fn matching(
    state: &AppState,
    filter: Option<&VariableFilter>,
) -> Result<Vec<Variable>, ApiError> {
    let all = state.store().list_variables(Page::default()).await?;
    Ok(all
        .into_iter()
        .filter(|v| filter.is_none_or(|f| f.matches(v)))
        .collect())
}

pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FilterVariables>,
) -> Result<axum::Json<Vec<Variable>>, ApiError> {
    no_other_keys(&body.other)?;
    let page = offset_page(&body.offset, &body.limit)?;
    let sort = body.sort.unwrap_or_default();
    let mut found = matching(&state, body.variables.as_ref()).await?;
    found.sort_by(|a, b| sort.compare(a, b));
    Ok(axum::Json(
        found
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect(),
    ))
}

pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<CountVariables>,
) -> Result<axum::Json<usize>, ApiError> {
    no_other_keys(&body.other)?;
    Ok(axum::Json(
        matching(&state, body.variables.as_ref()).await?.len(),
    ))
}
