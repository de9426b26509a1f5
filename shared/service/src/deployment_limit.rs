//! A deployment's `concurrency_limit` as Prefect 3.9.1 shows it: a V2 global concurrency
//! limit named `deployment:<deployment id>`.
//!
//! Prefect keeps a deployment's limit as a `concurrency_limit_v2` row
//! (`models/deployments.py`, `_create_or_update_deployment_concurrency_limit`): a deployment
//! answers it as `global_concurrency_limit` (and always `concurrency_limit: null`, "for
//! backwards compatibility"), `/v2/concurrency_limits` lists it, reads it by id or name,
//! updates it (a new `limit` is the deployment's new limit) and deletes it (the deployment is
//! then unlimited), and it goes with its deployment.
//!
//! pushpool enforces a deployment's limit with a store counter of its runs' slots
//! ([`crate::concurrency_slots`], exact under concurrent submitters), not with a V2 row. So
//! this module *derives* that limit from the deployment and its counter, and every view of it
//! matches Prefect's:
//! - `id`: the deployment's id with its bits flipped by a fixed mask
//!   ([`deployment_limit_id`]): stable, distinct from the deployment's, and mapped back
//!   without a lookup table;
//! - `created`/`updated`: the deployment's (Prefect's row is written with it);
//! - `active: true`, `slot_decay_per_second: 0.0`, `denied_slots: 0`,
//!   `avg_slot_occupancy_seconds: 2.0` (Prefect's values for that row);
//! - `limit`: the deployment's `concurrency_limit`;
//! - `active_slots`: the deployment's slot counter (its runs in PENDING, RUNNING or
//!   CANCELLING that pushpool submitted, leases unexpired).
//!
//! Writes through `/v2/concurrency_limits` ([`crate::concurrency_limits::ConcurrencyLimits`]):
//! - `PATCH` with `limit` sets the deployment's `concurrency_limit` (exact at once, as a
//!   `PATCH /deployments/{id}` is); `active: true`, `slot_decay_per_second: 0`,
//!   `denied_slots: 0` and the same `name` change nothing and are accepted. What would make
//!   the limit something a counter cannot be (inactive, decaying, renamed, slots set by
//!   hand) is refused with a 422 naming the field ([`refuse_update`]).
//! - `DELETE` clears the deployment's `concurrency_limit` (Prefect deletes the row: the
//!   deployment is unlimited afterwards).
//! - `POST` of a limit with that name while the deployment has a limit: 409, the name is
//!   taken (Prefect's unique name).
//! - `increment`/`decrement` naming it: 422 naming `names`. Prefect would let a client take
//!   the deployment's slots by hand; pushpool's slots are its runs' only (the counter
//!   changes in the same write as a run's state), so a slot taken by name could never be
//!   given back exactly.
//!
//! Listing (`POST /v2/concurrency_limits/filter`) reads every deployment (one page of the
//! deployments table per 1,000; DynamoDB: a query of the deployments' partition) and one
//! counter per limited deployment.

use chrono::{DateTime, Utc};
use pushpool_core::concurrency::ConcurrencyLimit;
use pushpool_core::model::Deployment;
use pushpool_store::{Page, Store, StoreError};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency_limits::LimitUpdate;
use crate::concurrency_slots::deployment_counter;

/// The prefix of the name of a deployment's limit (`deployment:<id>`, Prefect's).
pub const DEPLOYMENT_LIMIT_PREFIX: &str = "deployment:";

/// The bits flipped in a deployment's id to make its limit's id: version and variant bits
/// are kept, so the result is still a v4 UUID.
const ID_MASK: u128 = 0x5a5a_5a5a_5a5a_0a5a_0a5a_5a5a_5a5a_5a5a;

/// The id of the limit of the deployment `deployment_id` (its own inverse:
/// `deployment_limit_id(deployment_limit_id(d)) == d`).
pub fn deployment_limit_id(deployment_id: Uuid) -> Uuid {
    Uuid::from_u128(deployment_id.as_u128() ^ ID_MASK)
}

/// The name of the limit of the deployment `deployment_id`.
pub fn deployment_limit_name(deployment_id: Uuid) -> String {
    format!("{DEPLOYMENT_LIMIT_PREFIX}{deployment_id}")
}

/// The deployment a limit name `deployment:<uuid>` belongs to; `None` for another name.
pub fn deployment_of_name(name: &str) -> Option<Uuid> {
    name.strip_prefix(DEPLOYMENT_LIMIT_PREFIX)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// The limit `deployment` shows (see the module docs); `None` when it has no
/// `concurrency_limit`. Reads its slot counter.
///
/// # Errors
/// Store errors.
pub async fn limit_of(
    store: &dyn Store,
    deployment: &Deployment,
) -> Result<Option<ConcurrencyLimit>, StoreError> {
    let Some(limit) = deployment.concurrency_limit else {
        return Ok(None);
    };
    let active_slots = store
        .read_counter(&deployment_counter(deployment.id))
        .await?;
    Ok(Some(ConcurrencyLimit {
        id: deployment_limit_id(deployment.id),
        created: deployment.created,
        updated: deployment.updated,
        active: true,
        name: deployment_limit_name(deployment.id),
        limit,
        active_slots,
        denied_slots: 0,
        slot_decay_per_second: 0.0,
        avg_slot_occupancy_seconds: 2.0,
        version: 0,
    }))
}

/// The limit of the deployment `deployment_id`, if that deployment exists and has one.
///
/// # Errors
/// Store errors.
pub async fn limit_of_deployment(
    store: &dyn Store,
    deployment_id: Uuid,
) -> Result<Option<(Deployment, ConcurrencyLimit)>, StoreError> {
    let deployment = match store.read_deployment(deployment_id).await {
        Ok(d) => d,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(limit_of(store, &deployment)
        .await?
        .map(|limit| (deployment, limit)))
}

/// Every deployment's limit, by name.
///
/// # Errors
/// Store errors.
pub async fn all_limits(store: &dyn Store) -> Result<Vec<ConcurrencyLimit>, StoreError> {
    const PAGE: usize = 1000;
    let mut limits = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_deployments(Page {
                offset,
                limit: Some(PAGE),
            })
            .await?;
        let n = page.len();
        for d in &page {
            if let Some(l) = limit_of(store, d).await? {
                limits.push(l);
            }
        }
        if n < PAGE {
            break;
        }
        offset += n;
    }
    limits.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(limits)
}

/// Prefect's `GlobalConcurrencyLimitResponse` of `limit` (the deployment's
/// `global_concurrency_limit` field).
pub fn response(limit: &ConcurrencyLimit) -> Value {
    json!({
        "id": limit.id,
        "created": limit.created,
        "updated": limit.updated,
        "active": limit.active,
        "name": limit.name,
        "limit": limit.limit,
        "active_slots": limit.active_slots,
        "slot_decay_per_second": limit.slot_decay_per_second,
    })
}

/// `deployment` as Prefect answers it: `global_concurrency_limit` filled, `concurrency_limit`
/// null (Prefect's `DeploymentResponse`: "Will always be None for backwards
/// compatibility"), and its schedules most recently updated first (the order of Prefect's
/// `Deployment.schedules` relationship).
///
/// # Errors
/// Store errors (the slot counter's read).
pub async fn shown(
    store: &dyn Store,
    mut deployment: Deployment,
) -> Result<Deployment, StoreError> {
    deployment
        .schedules
        .sort_by_key(|s| std::cmp::Reverse(s.updated));
    deployment.global_concurrency_limit =
        limit_of(store, &deployment).await?.as_ref().map(response);
    deployment.concurrency_limit = None;
    Ok(deployment)
}

/// [`shown`] for each deployment of a listing.
///
/// # Errors
/// Store errors.
pub async fn all_shown(
    store: &dyn Store,
    deployments: Vec<Deployment>,
) -> Result<Vec<Deployment>, StoreError> {
    let mut out = Vec::with_capacity(deployments.len());
    for d in deployments {
        out.push(shown(store, d).await?);
    }
    Ok(out)
}

/// The 422 detail for a change a deployment's limit cannot take, naming the field; `None`
/// when every change asked is one pushpool honours exactly (see the module docs).
pub fn refuse_update(current: &ConcurrencyLimit, asked: &LimitUpdate) -> Option<String> {
    let name = &current.name;
    if asked.active == Some(false) {
        return Some(format!(
            "active: {name} is a deployment's concurrency limit and cannot be deactivated; \
             clear the deployment's concurrency_limit instead"
        ));
    }
    if asked.name.as_ref().is_some_and(|n| n != name) {
        return Some(format!(
            "name: {name} is a deployment's concurrency limit and cannot be renamed"
        ));
    }
    if asked
        .active_slots
        .is_some_and(|s| s != current.active_slots)
    {
        return Some(format!(
            "active_slots: the slots of {name} are its deployment's runs and cannot be set"
        ));
    }
    if asked.denied_slots.is_some_and(|s| s != 0) {
        return Some(format!(
            "denied_slots: the slots of {name} are its deployment's runs and cannot be set"
        ));
    }
    if asked.slot_decay_per_second.is_some_and(|s| s != 0.0) {
        return Some(format!(
            "slot_decay_per_second: {name} is a deployment's concurrency limit and cannot decay"
        ));
    }
    None
}

/// Sets (or with `None` clears) the `concurrency_limit` of `deployment` and writes it.
///
/// # Errors
/// Store errors.
pub async fn set_limit(
    store: &dyn Store,
    mut deployment: Deployment,
    limit: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    deployment.concurrency_limit = limit;
    deployment.updated = now;
    store.update_deployment(&deployment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_id_is_distinct_its_own_inverse_and_still_a_v4_uuid() {
        let d = Uuid::parse_str("0b7c8d1e-2f3a-4b5c-8d6e-7f8091a2b3c4").unwrap();
        let l = deployment_limit_id(d);
        assert_ne!(l, d);
        assert_eq!(deployment_limit_id(l), d);
        assert_eq!(l.get_version_num(), 4);
        assert_eq!(l.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn names_map_to_their_deployment() {
        let d = Uuid::new_v4();
        assert_eq!(deployment_of_name(&deployment_limit_name(d)), Some(d));
        assert_eq!(deployment_of_name("deployment:nope"), None);
        assert_eq!(deployment_of_name("warehouse"), None);
    }

    fn limit() -> ConcurrencyLimit {
        ConcurrencyLimit {
            id: Uuid::nil(),
            created: Utc::now(),
            updated: Utc::now(),
            active: true,
            name: "deployment:x".into(),
            limit: 2,
            active_slots: 1,
            denied_slots: 0,
            slot_decay_per_second: 0.0,
            avg_slot_occupancy_seconds: 2.0,
            version: 0,
        }
    }

    #[test]
    fn changes_a_counter_cannot_honour_are_refused_naming_the_field() {
        let l = limit();
        let refused = |asked: LimitUpdate| refuse_update(&l, &asked);
        assert_eq!(
            refused(LimitUpdate {
                limit: Some(9),
                ..LimitUpdate::default()
            }),
            None
        );
        assert_eq!(
            refused(LimitUpdate {
                active: Some(true),
                name: Some("deployment:x".into()),
                active_slots: Some(1),
                denied_slots: Some(0),
                slot_decay_per_second: Some(0.0),
                limit: Some(3),
            }),
            None
        );
        assert_eq!(
            refused(LimitUpdate {
                active: Some(false),
                ..LimitUpdate::default()
            })
            .unwrap(),
            "active: deployment:x is a deployment's concurrency limit and cannot be \
             deactivated; clear the deployment's concurrency_limit instead"
        );
        assert_eq!(
            refused(LimitUpdate {
                name: Some("other".into()),
                ..LimitUpdate::default()
            })
            .unwrap(),
            "name: deployment:x is a deployment's concurrency limit and cannot be renamed"
        );
        assert_eq!(
            refused(LimitUpdate {
                active_slots: Some(0),
                ..LimitUpdate::default()
            })
            .unwrap(),
            "active_slots: the slots of deployment:x are its deployment's runs and cannot be set"
        );
        assert_eq!(
            refused(LimitUpdate {
                denied_slots: Some(3),
                ..LimitUpdate::default()
            })
            .unwrap(),
            "denied_slots: the slots of deployment:x are its deployment's runs and cannot be set"
        );
        assert_eq!(
            refused(LimitUpdate {
                slot_decay_per_second: Some(0.5),
                ..LimitUpdate::default()
            })
            .unwrap(),
            "slot_decay_per_second: deployment:x is a deployment's concurrency limit and \
             cannot decay"
        );
    }
}
