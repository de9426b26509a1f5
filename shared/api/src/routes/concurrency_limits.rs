//! `/v2/concurrency_limits/…` (global concurrency limits, Prefect 3.9.1's
//! `api/concurrency_limits_v2.py`) and `/concurrency_limits/…` (tag-based task run limits,
//! `api/concurrency_limits.py`), in both shapes, over
//! [`pushpool_service::concurrency_limits`]. `prefect global-concurrency-limit …`,
//! `prefect concurrency-limit …`, `concurrency()` / `rate_limit()` in flows and tagged task
//! runs use them.
//!
//! Bodies are Prefect's, field by field; an unknown key is a 422 naming it (Prefect's server
//! would ignore an unknown body key of these routes; pushpool refuses it, as everywhere). The
//! filter routes take only `limit` and `offset` (Prefect defines no filter nor sort on them).
//! `create_if_missing` of the increment and decrement routes is accepted and, as in Prefect
//! 3.9.1 (where it is deprecated), does nothing: limits must be created first.
//!
//! Statuses: 201 on create, 404 `Concurrency Limit not found` (V2) / `Concurrency limit not
//! found` (V1), 409 on a taken name, 422 on a bad field, 423 Locked when the slots are not
//! free (with Prefect's `Retry-After`), 410 on renewing a lease that is gone.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pushpool_core::concurrency::{ConcurrencyLimit, LeaseHolder};
use pushpool_service::concurrency_limits::{
    AcquireMode, ConcurrencyError, IdOrName, LimitCreate, LimitUpdate, TagLimit,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, no_other_keys, offset_page};
use crate::extract::Json;
use crate::names::{Rule, check};
use crate::{ApiError, AppState};

impl From<ConcurrencyError> for ApiError {
    fn from(e: ConcurrencyError) -> Self {
        match e {
            ConcurrencyError::Invalid(m) => Self::Invalid(m),
            ConcurrencyError::NotFound(m) => Self::NotFound(m),
            ConcurrencyError::Conflict(m) => Self::Conflict(m),
            ConcurrencyError::Gone(m) => Self::Gone(m),
            ConcurrencyError::Locked {
                detail,
                retry_after,
            } => Self::Locked {
                detail: detail.unwrap_or_else(|| "Locked".into()),
                retry_after: retry_after.map(|s| s.to_string()),
            },
            ConcurrencyError::KeptChanging(k) => Self::KeptChanging(k.to_string()),
            ConcurrencyError::Store(e) => e.into(),
        }
    }
}

/// Prefect's `ConcurrencyLimitV2` (the create response).
#[derive(Debug, Serialize)]
struct FullLimit {
    id: Uuid,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    active: bool,
    name: String,
    limit: i64,
    active_slots: i64,
    denied_slots: i64,
    slot_decay_per_second: f64,
    avg_slot_occupancy_seconds: f64,
}

impl From<ConcurrencyLimit> for FullLimit {
    fn from(l: ConcurrencyLimit) -> Self {
        Self {
            id: l.id,
            created: l.created,
            updated: l.updated,
            active: l.active,
            name: l.name,
            limit: l.limit,
            active_slots: l.active_slots,
            denied_slots: l.denied_slots,
            slot_decay_per_second: l.slot_decay_per_second,
            avg_slot_occupancy_seconds: l.avg_slot_occupancy_seconds,
        }
    }
}

/// Prefect's `GlobalConcurrencyLimitResponse`: `active_slots` after decay, as of now.
#[derive(Debug, Serialize)]
struct LimitResponse {
    id: Uuid,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    active: bool,
    name: String,
    limit: i64,
    active_slots: i64,
    slot_decay_per_second: f64,
}

impl LimitResponse {
    fn of(l: ConcurrencyLimit, now: DateTime<Utc>) -> Self {
        Self {
            id: l.id,
            created: l.created,
            updated: l.updated,
            active: l.active,
            active_slots: l.active_slots_at(now),
            name: l.name,
            limit: l.limit,
            slot_decay_per_second: l.slot_decay_per_second,
        }
    }
}

/// Prefect's `MinimalConcurrencyLimitResponse`.
#[derive(Debug, Serialize)]
struct Minimal {
    id: Uuid,
    name: String,
    limit: i64,
}

impl Minimal {
    fn of(l: &ConcurrencyLimit) -> Self {
        Self {
            id: l.id,
            name: l.name.clone(),
            limit: l.limit,
        }
    }
}

/// Prefect's `ConcurrencyLimit` (the V1 shape of a tag limit).
#[derive(Debug, Serialize)]
struct TagLimitResponse {
    id: Uuid,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    tag: String,
    concurrency_limit: i64,
    active_slots: Vec<Uuid>,
}

impl From<TagLimit> for TagLimitResponse {
    fn from(t: TagLimit) -> Self {
        Self {
            id: t.limit.id,
            created: t.limit.created,
            updated: t.limit.updated,
            tag: t.tag,
            concurrency_limit: t.limit.limit,
            active_slots: t.active_slots,
        }
    }
}

fn non_negative(field: &str, v: i64) -> Result<i64, ApiError> {
    if v < 0 {
        return Err(ApiError::Invalid(format!(
            "{field}: Input should be greater than or equal to 0"
        )));
    }
    Ok(v)
}

fn non_negative_float(field: &str, v: f64) -> Result<f64, ApiError> {
    if v.is_nan() || v < 0.0 || !v.is_finite() {
        return Err(ApiError::Invalid(format!(
            "{field}: Input should be greater than or equal to 0"
        )));
    }
    Ok(v)
}

fn not_null<T>(field: &str, v: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match v {
        Some(None) => Err(ApiError::Invalid(format!("{field}: must not be null"))),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// `POST /v2/concurrency_limits/`'s body (Prefect's `ConcurrencyLimitV2Create`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitCreateBody {
    name: String,
    limit: i64,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    active_slots: i64,
    #[serde(default)]
    denied_slots: i64,
    #[serde(default)]
    slot_decay_per_second: f64,
}

fn yes() -> bool {
    true
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<LimitCreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    check("name", &body.name, Rule::Name)?;
    let create = LimitCreate {
        name: body.name,
        limit: non_negative("limit", body.limit)?,
        active: body.active,
        active_slots: non_negative("active_slots", body.active_slots)?,
        denied_slots: non_negative("denied_slots", body.denied_slots)?,
        slot_decay_per_second: non_negative_float(
            "slot_decay_per_second",
            body.slot_decay_per_second,
        )?,
    };
    let limit = state.service.concurrency_limits().create(create).await?;
    Ok((StatusCode::CREATED, axum::Json(FullLimit::from(limit))))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = state
        .service
        .concurrency_limits()
        .read(&IdOrName::parse(&id_or_name))
        .await?;
    Ok(axum::Json(LimitResponse::of(limit, Utc::now())))
}

/// `POST /v2/concurrency_limits/filter` and `/concurrency_limits/filter`'s body: paging only.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageBody {
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<PageBody>,
) -> Result<impl IntoResponse, ApiError> {
    no_other_keys(&body.other)?;
    let page = offset_page(&body.offset, &body.limit)?;
    let now = Utc::now();
    let limits = state.service.concurrency_limits().list().await?;
    Ok(axum::Json(
        limits
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .map(|l| LimitResponse::of(l, now))
            .collect::<Vec<_>>(),
    ))
}

/// `PATCH /v2/concurrency_limits/{id_or_name}`'s body (Prefect's `ConcurrencyLimitV2Update`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitUpdateBody {
    #[serde(default, deserialize_with = "super::explicit")]
    active: Option<Option<bool>>,
    #[serde(default, deserialize_with = "super::explicit")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::explicit")]
    active_slots: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::explicit")]
    denied_slots: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::explicit")]
    slot_decay_per_second: Option<Option<f64>>,
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id_or_name): Path<String>,
    Json(body): Json<LimitUpdateBody>,
) -> Result<StatusCode, ApiError> {
    let name = not_null("name", body.name)?;
    if let Some(n) = &name {
        check("name", n, Rule::Name)?;
    }
    let update = LimitUpdate {
        active: not_null("active", body.active)?,
        name,
        limit: not_null("limit", body.limit)?
            .map(|v| non_negative("limit", v))
            .transpose()?,
        active_slots: not_null("active_slots", body.active_slots)?
            .map(|v| non_negative("active_slots", v))
            .transpose()?,
        denied_slots: not_null("denied_slots", body.denied_slots)?
            .map(|v| non_negative("denied_slots", v))
            .transpose()?,
        slot_decay_per_second: not_null("slot_decay_per_second", body.slot_decay_per_second)?
            .map(|v| non_negative_float("slot_decay_per_second", v))
            .transpose()?,
    };
    state
        .service
        .concurrency_limits()
        .update(&IdOrName::parse(&id_or_name), &update)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .concurrency_limits()
        .delete(&IdOrName::parse(&id_or_name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prefect's `mode` of the increment routes.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModeBody {
    #[default]
    Concurrency,
    RateLimit,
}

impl From<ModeBody> for AcquireMode {
    fn from(m: ModeBody) -> Self {
        match m {
            ModeBody::Concurrency => Self::Concurrency,
            ModeBody::RateLimit => Self::RateLimit,
        }
    }
}

/// `POST /v2/concurrency_limits/increment`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncrementBody {
    slots: i64,
    names: Vec<String>,
    #[serde(default)]
    mode: ModeBody,
    /// Deprecated in Prefect 3.9.1, which ignores it (limits must exist).
    #[serde(default)]
    #[allow(dead_code)]
    create_if_missing: Option<bool>,
}

/// `POST /v2/concurrency_limits/increment-with-lease`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncrementWithLeaseBody {
    slots: i64,
    names: Vec<String>,
    #[serde(default)]
    mode: ModeBody,
    #[serde(default = "default_lease_seconds")]
    lease_duration: f64,
    #[serde(default)]
    holder: Option<LeaseHolder>,
}

fn default_lease_seconds() -> f64 {
    300.0
}

fn check_slots_and_names(slots: i64, names: &[String]) -> Result<(), ApiError> {
    if slots <= 0 {
        return Err(ApiError::Invalid(
            "slots: Input should be greater than 0".into(),
        ));
    }
    if names.is_empty() {
        return Err(ApiError::Invalid(
            "names: List should have at least 1 item after validation, not 0".into(),
        ));
    }
    Ok(())
}

/// Prefect's `lease_duration`: seconds, 60 to 86,400 (one day).
fn check_lease_duration(seconds: f64) -> Result<f64, ApiError> {
    if !(60.0..=86_400.0).contains(&seconds) {
        return Err(ApiError::Invalid(format!(
            "lease_duration: Input should be between 60 and 86400 seconds (got {seconds})"
        )));
    }
    Ok(seconds)
}

pub(crate) async fn increment(
    State(state): State<AppState>,
    Json(body): Json<IncrementBody>,
) -> Result<impl IntoResponse, ApiError> {
    check_slots_and_names(body.slots, &body.names)?;
    let acquired = state
        .service
        .concurrency_limits()
        .increment(&body.names, body.slots, body.mode.into(), None)
        .await?;
    Ok(axum::Json(
        acquired.limits.iter().map(Minimal::of).collect::<Vec<_>>(),
    ))
}

/// `increment-with-lease`'s answer (Prefect's `ConcurrencyLimitWithLeaseResponse`).
#[derive(Debug, Serialize)]
struct WithLease {
    lease_id: Uuid,
    limits: Vec<Minimal>,
}

pub(crate) async fn increment_with_lease(
    State(state): State<AppState>,
    Json(body): Json<IncrementWithLeaseBody>,
) -> Result<impl IntoResponse, ApiError> {
    check_slots_and_names(body.slots, &body.names)?;
    let seconds = check_lease_duration(body.lease_duration)?;
    let acquired = state
        .service
        .concurrency_limits()
        .increment(
            &body.names,
            body.slots,
            body.mode.into(),
            Some((seconds, body.holder)),
        )
        .await?;
    Ok(axum::Json(WithLease {
        lease_id: acquired.lease_id.unwrap_or_else(Uuid::new_v4),
        limits: acquired.limits.iter().map(Minimal::of).collect(),
    }))
}

/// `POST /v2/concurrency_limits/decrement`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecrementBody {
    slots: i64,
    names: Vec<String>,
    #[serde(default)]
    occupancy_seconds: Option<f64>,
    /// Deprecated in Prefect 3.9.1, which ignores it.
    #[serde(default)]
    #[allow(dead_code)]
    create_if_missing: Option<bool>,
}

pub(crate) async fn decrement(
    State(state): State<AppState>,
    Json(body): Json<DecrementBody>,
) -> Result<impl IntoResponse, ApiError> {
    check_slots_and_names(body.slots, &body.names)?;
    if let Some(o) = body.occupancy_seconds
        && (o.is_nan() || o <= 0.0)
    {
        return Err(ApiError::Invalid(
            "occupancy_seconds: Input should be greater than 0".into(),
        ));
    }
    let limits = state
        .service
        .concurrency_limits()
        .decrement(&body.names, body.slots, body.occupancy_seconds)
        .await?;
    Ok(axum::Json(
        limits.iter().map(Minimal::of).collect::<Vec<_>>(),
    ))
}

/// `POST /v2/concurrency_limits/decrement-with-lease`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseBody {
    lease_id: Uuid,
}

pub(crate) async fn decrement_with_lease(
    State(state): State<AppState>,
    Json(body): Json<LeaseBody>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .concurrency_limits()
        .release_lease(body.lease_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/concurrency_limits/leases/{id}/renew`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewBody {
    #[serde(default = "default_lease_seconds")]
    lease_duration: f64,
}

impl Default for RenewBody {
    fn default() -> Self {
        Self {
            lease_duration: default_lease_seconds(),
        }
    }
}

pub(crate) async fn renew(
    State(state): State<AppState>,
    Path(lease_id): Path<String>,
    FilterBody(body): FilterBody<RenewBody>,
) -> Result<StatusCode, ApiError> {
    let lease_id = super::parse_id("lease_id", &lease_id)?;
    let seconds = check_lease_duration(body.lease_duration)?;
    state
        .service
        .concurrency_limits()
        .renew_lease(lease_id, seconds)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// The V1 (tag) routes.

/// `POST /concurrency_limits/`'s body (Prefect's `ConcurrencyLimitCreate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagCreateBody {
    tag: String,
    concurrency_limit: i64,
}

pub(crate) async fn tag_create(
    State(state): State<AppState>,
    Json(body): Json<TagCreateBody>,
) -> Result<Response, ApiError> {
    check("tag", &body.tag, Rule::Name)?;
    let limit = non_negative("concurrency_limit", body.concurrency_limit)?;
    let (tag_limit, created) = state
        .service
        .concurrency_limits()
        .upsert_tag(&body.tag, limit)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(TagLimitResponse::from(tag_limit))).into_response())
}

pub(crate) async fn tag_read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = super::parse_id("id", &id)?;
    let t = state
        .service
        .concurrency_limits()
        .read_tag_by_id(id)
        .await?;
    Ok(axum::Json(TagLimitResponse::from(t)))
}

pub(crate) async fn tag_read_by_tag(
    State(state): State<AppState>,
    Path(tag): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let t = state.service.concurrency_limits().read_tag(&tag).await?;
    Ok(axum::Json(TagLimitResponse::from(t)))
}

pub(crate) async fn tag_filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<PageBody>,
) -> Result<impl IntoResponse, ApiError> {
    no_other_keys(&body.other)?;
    let page = offset_page(&body.offset, &body.limit)?;
    let tags = state.service.concurrency_limits().list_tags().await?;
    Ok(axum::Json(
        tags.into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .map(TagLimitResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// `POST /concurrency_limits/tag/{tag}/reset`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    #[serde(default)]
    slot_override: Option<Vec<Uuid>>,
}

pub(crate) async fn tag_reset(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    FilterBody(body): FilterBody<ResetBody>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .service
        .concurrency_limits()
        .reset_tag(&tag, body.slot_override.as_deref())
        .await?;
    Ok(axum::Json(Value::Null))
}

pub(crate) async fn tag_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = super::parse_id("id", &id)?;
    state
        .service
        .concurrency_limits()
        .delete_tag(&IdOrName::Id(id))
        .await?;
    Ok(axum::Json(Value::Null))
}

pub(crate) async fn tag_delete_by_tag(
    State(state): State<AppState>,
    Path(tag): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .service
        .concurrency_limits()
        .delete_tag(&IdOrName::Name(tag))
        .await?;
    Ok(axum::Json(Value::Null))
}

/// `POST /concurrency_limits/increment` and `/decrement`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagSlotsBody {
    names: Vec<String>,
    task_run_id: Uuid,
}

pub(crate) async fn tag_increment(
    State(state): State<AppState>,
    Json(body): Json<TagSlotsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let limits = state
        .service
        .concurrency_limits()
        .increment_tags(&body.names, body.task_run_id)
        .await?;
    // Prefect answers the tag as the name here (and the limit's name on decrement).
    Ok(axum::Json(
        limits
            .iter()
            .map(|l| Minimal {
                id: l.id,
                name: l
                    .name
                    .strip_prefix(pushpool_core::concurrency::TAG_PREFIX)
                    .unwrap_or(&l.name)
                    .to_owned(),
                limit: l.limit,
            })
            .collect::<Vec<_>>(),
    ))
}

pub(crate) async fn tag_decrement(
    State(state): State<AppState>,
    Json(body): Json<TagSlotsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let limits = state
        .service
        .concurrency_limits()
        .decrement_tags(&body.names, body.task_run_id)
        .await?;
    Ok(axum::Json(
        limits.iter().map(Minimal::of).collect::<Vec<_>>(),
    ))
}
