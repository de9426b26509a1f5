//! `/artifacts/…`: Prefect 3.9.1's artifacts API (`prefect/server/api/artifacts.py`,
//! `models/artifacts.py`), in both shapes. Flows publish artifacts with
//! `create_markdown_artifact`, `create_table_artifact`, `create_link_artifact`, ...;
//! `prefect artifact ls|inspect|delete` and the UI read them.
//!
//! - `POST /artifacts/` → 201 with the artifact. `key`: lowercase letters, digits and dashes
//!   (Prefect's `ArtifactKey`); `metadata_` values over 500 characters are cut to 500 and
//!   `...`, as Prefect's validator does. Unknown keys are a 422.
//! - `GET|PATCH|DELETE /artifacts/{id}`: 404 `Artifact not found.`; a PATCH writes the fields
//!   present of `data`, `description`, `metadata_` → 204.
//! - Artifacts sharing a key form a **collection** whose latest is the most recently created
//!   (Prefect's `artifact_collection` table, which a create upserts and a delete of the latest
//!   moves back to the next most recent). `GET /artifacts/{key}/latest` and
//!   `POST /artifacts/latest/filter|count` answer collections: the latest artifact's fields
//!   with `latest_id`, the collection's own stable `id` (a version 8 UUID derived from the
//!   key), `created` (its first artifact's) and `updated` (its latest's).
//! - `POST /artifacts/filter|count` and `/artifacts/latest/filter|count` take Prefect's
//!   `artifacts` filter, `sort` (`ArtifactSort`, default `ID_DESC`), `limit`/`offset`, and the
//!   related `flow_runs`, `flows` and `deployments` filters (an artifact passes when its flow
//!   run does, as Prefect's join through `flow_run` does); a `task_runs` filter is refused
//!   with a 422 until task runs are filterable.
//!
//! Artifacts are read whole and filtered in memory (as flows and deployments are): the cost
//! grows with the number of artifacts.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::filter::{
    ArtifactFilter, ArtifactSort, DeploymentFilter, FlowFilter, FlowRunFilter, FlowRunSort,
};
use pushpool_core::model::Artifact;
use pushpool_service::queries::{self, Related};
use pushpool_store::Page;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, no_other_keys, offset_page};
use super::parse_id;
use crate::extract::Json;
use crate::{ApiError, AppState};

/// Prefect's cut of each `metadata_` value (`validate_max_metadata_length`), in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

/// `POST /artifacts/`'s body (Prefect's `ArtifactCreate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactCreate {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    r#type: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    metadata_: Option<Map<String, Value>>,
    #[serde(default)]
    flow_run_id: Option<Uuid>,
    #[serde(default)]
    task_run_id: Option<Uuid>,
}

/// `PATCH /artifacts/{id}`'s body (Prefect's `ArtifactUpdate`): the fields present are
/// written, `null` included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactUpdate {
    #[serde(default, deserialize_with = "super::explicit")]
    data: Option<Value>,
    #[serde(default, deserialize_with = "super::explicit")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    metadata_: Option<Option<Map<String, Value>>>,
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "key: Artifact key must only contain lowercase letters, numbers, and dashes \
             (got {key:?})"
        )))
    }
}

/// Prefect's `dict[str, str]` metadata with its 500-character cut.
fn metadata(raw: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => {
                let cut = if s.chars().count() > MAX_METADATA_VALUE_CHARS {
                    let mut t: String = s.chars().take(MAX_METADATA_VALUE_CHARS).collect();
                    t.push_str("...");
                    t
                } else {
                    s
                };
                Ok((k, Value::String(cut)))
            }
            other => Err(ApiError::Invalid(format!(
                "metadata_.{k}: {other} is not a string (metadata values are strings)"
            ))),
        })
        .collect()
}

fn not_found() -> ApiError {
    ApiError::NotFound("Artifact not found.".into())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<ArtifactCreate>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(key) = &body.key {
        check_key(key)?;
    }
    let now = Utc::now();
    let artifact = Artifact {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        key: body.key,
        r#type: body.r#type,
        description: body.description,
        data: body.data,
        metadata_: body.metadata_.map(metadata).transpose()?,
        flow_run_id: body.flow_run_id,
        task_run_id: body.task_run_id,
    };
    state.store().create_artifact(&artifact).await?;
    Ok((StatusCode::CREATED, axum::Json(artifact)))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Artifact>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_artifact(id).await?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ArtifactUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let mut artifact = state.store().read_artifact(id).await?;
    if let Some(data) = body.data {
        artifact.data = (!data.is_null()).then_some(data);
    }
    if let Some(description) = body.description {
        artifact.description = description;
    }
    if let Some(m) = body.metadata_ {
        artifact.metadata_ = m.map(metadata).transpose()?;
    }
    artifact.updated = Utc::now();
    state.store().update_artifact(&artifact).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_artifact(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The collection id of `key`: stable for as long as the key is used.
fn collection_id(key: &str) -> Uuid {
    let digest = Sha256::digest(format!("pushpool artifact collection\0{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// One collection per key: the latest artifact (most recent `created`, then highest id), the
/// first one's `created`.
fn collections(all: Vec<Artifact>) -> Vec<(Artifact, chrono::DateTime<Utc>)> {
    let mut by_key: HashMap<String, (Artifact, chrono::DateTime<Utc>)> = HashMap::new();
    for a in all {
        let Some(key) = a.key.clone() else { continue };
        match by_key.get_mut(&key) {
            None => {
                let first = a.created;
                by_key.insert(key, (a, first));
            }
            Some((latest, first)) => {
                *first = (*first).min(a.created);
                if (a.created, a.id) > (latest.created, latest.id) {
                    *latest = a;
                }
            }
        }
    }
    by_key.into_values().collect()
}

fn collection_json(latest: &Artifact, first: chrono::DateTime<Utc>) -> Value {
    let key = latest.key.as_deref().unwrap_or_default();
    json!({
        "id": collection_id(key),
        "created": first,
        "updated": latest.created.max(latest.updated),
        "key": key,
        "latest_id": latest.id,
        "type": latest.r#type,
        "description": latest.description,
        "data": latest.data,
        "metadata_": latest.metadata_,
        "flow_run_id": latest.flow_run_id,
        "task_run_id": latest.task_run_id,
    })
}

pub(crate) async fn read_latest(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let all = state.store().list_artifacts(Page::default()).await?;
    let found = collections(
        all.into_iter()
            .filter(|a| a.key.as_deref() == Some(key.as_str()))
            .collect(),
    );
    let (latest, first) = found.first().ok_or_else(not_found)?;
    Ok(axum::Json(collection_json(latest, *first)))
}

/// The body of `/artifacts/filter`, `/count` and their `/latest/` siblings.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ArtifactsBody {
    #[serde(default)]
    artifacts: Option<ArtifactFilter>,
    #[serde(default)]
    flow_runs: Option<FlowRunFilter>,
    #[serde(default)]
    task_runs: Option<Value>,
    #[serde(default)]
    flows: Option<FlowFilter>,
    #[serde(default)]
    deployments: Option<DeploymentFilter>,
    #[serde(default)]
    sort: Option<ArtifactSort>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Which route a body came to: collections take `latest_id`, artifacts `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Artifacts,
    Collections,
}

impl ArtifactsBody {
    fn check(&self, kind: Kind, paged: bool) -> Result<Page, ApiError> {
        no_other_keys(&self.other)?;
        if self.task_runs.is_some() {
            return Err(ApiError::Invalid(
                "task_runs: filtering by task runs is not supported by pushpool yet".into(),
            ));
        }
        if let Some(f) = &self.artifacts {
            let (wrong, right) = match kind {
                Kind::Artifacts => (f.latest_id.is_some(), "id"),
                Kind::Collections => (f.id.is_some(), "latest_id"),
            };
            if wrong {
                let key = if kind == Kind::Artifacts {
                    "latest_id"
                } else {
                    "id"
                };
                return Err(ApiError::Invalid(format!(
                    "artifacts.{key}: unknown field `{key}` here (this route's filter has \
                     `{right}`)"
                )));
            }
        }
        if paged {
            offset_page(&self.offset, &self.limit)
        } else {
            for (present, key) in [
                (self.sort.is_some(), "sort"),
                (self.limit.is_some(), "limit"),
                (self.offset.is_some(), "offset"),
            ] {
                if present {
                    return Err(ApiError::Invalid(format!(
                        "{key}: this route does not take this key (Prefect's body for it has \
                         no such field)"
                    )));
                }
            }
            Ok(Page::default())
        }
    }

    /// The artifacts (or each collection's latest) that pass every filter, sorted.
    async fn matching(
        &self,
        state: &AppState,
        kind: Kind,
    ) -> Result<Vec<(Artifact, chrono::DateTime<Utc>)>, ApiError> {
        let store = state.store().as_ref();
        let all = store.list_artifacts(Page::default()).await?;
        let mut rows: Vec<(Artifact, chrono::DateTime<Utc>)> = match kind {
            Kind::Artifacts => all.into_iter().map(|a| (a.clone(), a.created)).collect(),
            Kind::Collections => collections(all),
        };
        if let Some(f) = &self.artifacts {
            rows.retain(|(a, _)| f.matches(a));
        }
        if self.flow_runs.is_some() || self.flows.is_some() || self.deployments.is_some() {
            let related = Related {
                flows: self.flows.clone(),
                flow_runs: self.flow_runs.clone(),
                deployments: self.deployments.clone(),
                work_pools: None,
                work_pool_queues: None,
            };
            let runs: HashSet<Uuid> =
                queries::read_flow_runs(store, &related, FlowRunSort::default(), Page::default())
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
            rows.retain(|(a, _)| a.flow_run_id.is_some_and(|id| runs.contains(&id)));
        }
        let sort = self.sort.unwrap_or_default();
        match kind {
            Kind::Artifacts => rows.sort_by(|(a, _), (b, _)| sort.compare(a, b)),
            Kind::Collections => {
                // A collection's own `created` is its first artifact's, its id the key's.
                rows.sort_by(|(a, fa), (b, fb)| {
                    let (ka, kb) = (
                        collection_id(a.key.as_deref().unwrap_or_default()),
                        collection_id(b.key.as_deref().unwrap_or_default()),
                    );
                    let primary = match sort {
                        ArtifactSort::CreatedDesc => fb.cmp(fa),
                        ArtifactSort::UpdatedDesc => b.created.cmp(&a.created),
                        ArtifactSort::IdDesc => std::cmp::Ordering::Equal,
                        ArtifactSort::KeyDesc => b.key.cmp(&a.key),
                        ArtifactSort::KeyAsc => a.key.cmp(&b.key),
                    };
                    primary.then_with(|| kb.cmp(&ka))
                });
            }
        }
        Ok(rows)
    }
}

pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<ArtifactsBody>,
) -> Result<axum::Json<Vec<Artifact>>, ApiError> {
    let page = body.check(Kind::Artifacts, true)?;
    let rows = body.matching(&state, Kind::Artifacts).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|(a, _)| a)
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect(),
    ))
}

pub(crate) async fn count(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<ArtifactsBody>,
) -> Result<axum::Json<usize>, ApiError> {
    body.check(Kind::Artifacts, false)?;
    Ok(axum::Json(
        body.matching(&state, Kind::Artifacts).await?.len(),
    ))
}

pub(crate) async fn filter_latest(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<ArtifactsBody>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let page = body.check(Kind::Collections, true)?;
    let rows = body.matching(&state, Kind::Collections).await?;
    Ok(axum::Json(
        rows.iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .map(|(latest, first)| collection_json(latest, *first))
            .collect(),
    ))
}

pub(crate) async fn count_latest(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<ArtifactsBody>,
) -> Result<axum::Json<usize>, ApiError> {
    body.check(Kind::Collections, false)?;
    Ok(axum::Json(
        body.matching(&state, Kind::Collections).await?.len(),
    ))
}
