//! Global concurrency limits and tag-based task run limits: the use cases behind
//! `/v2/concurrency_limits/…` and `/concurrency_limits/…` (Prefect 3.9.1's
//! `api/concurrency_limits_v2.py` and `api/concurrency_limits.py`), over the store's limit and
//! lease documents ([`pushpool_store::concurrency`]).
//!
//! How slots are taken: read the named limits, decide with Prefect's arithmetic
//! ([`ConcurrencyLimit::take`]: decayed active slots + requested ≤ limit, for every active
//! limit), then write the limits (each conditioned on the version read) together with the new
//! lease in one [`Store::commit_concurrency`]. A writer that lost a race reads again and
//! decides again (at most [`MAX_SLOT_ATTEMPTS`] times, then [`ConcurrencyError::KeptChanging`]),
//! so concurrent acquisitions never take more than a limit's slots, in both shapes.
//!
//! Leases: a lease that lapses without renewal gives its slots back. That happens lazily (an
//! acquisition first releases the lapsed leases of the limits it names) and in
//! [`ConcurrencyLimits::release_expired`], which the reconciler's tick calls.
//!
//! Tag-based limits are limits named `tag:<tag>` (Prefect 3.x keeps no separate V1 record);
//! their `active_slots` in the V1 shape are the task runs holding a lease on them.
//!
//! Where pushpool differs from Prefect, on purpose:
//! - Resetting or deleting a tag limit (and deleting any limit) releases its leases **and
//!   gives their slots back** (Prefect only revokes the leases, leaving the slot counts as
//!   they were); a lease that also held other limits gives those back too.
//! - An acquisition that matched no limit at all answers a `lease_id` but stores no lease
//!   (Prefect stores one on no resource; the client neither renews nor releases it).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pushpool_core::concurrency::{
    ConcurrencyLease, ConcurrencyLimit, LeaseHolder, LeaseHolderKind, TAG_PREFIX,
    clamped_poisson_interval,
};
use pushpool_store::concurrency::{ConcurrencyWrite, LIMIT_NOT_FOUND, LeaseWrite};
use pushpool_store::{Store, StoreError};
use uuid::Uuid;

use crate::deployment_limit;
use crate::write::KeptChanging;

/// How many times a slot write that lost a race is decided again before
/// [`ConcurrencyError::KeptChanging`]: higher than [`crate::MAX_WRITE_ATTEMPTS`], since many
/// flows may race for one limit at once.
pub const MAX_SLOT_ATTEMPTS: u32 = 30;

/// Prefect's `V1_LEASE_TTL`: the leases of `/concurrency_limits/increment` (V1 clients never
/// renew) last about 100 years.
pub const V1_LEASE_DAYS: i64 = 100 * 365;

/// Prefect's `PREFECT_TASK_RUN_TAG_CONCURRENCY_SLOT_WAIT_SECONDS` (default 30): the
/// `Retry-After` of a denied `/concurrency_limits/increment`.
pub const TAG_SLOT_WAIT_SECONDS: f64 = 30.0;

/// Errors of the concurrency use cases, one HTTP status each.
#[derive(Debug, thiserror::Error)]
pub enum ConcurrencyError {
    /// 422: a field has a bad value; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// 404 (`Concurrency Limit not found`, `Concurrency limit not found`).
    #[error("{0}")]
    NotFound(String),
    /// 409: the name is taken.
    #[error("{0}")]
    Conflict(String),
    /// 423 Locked: the slots are not free; `retry_after` seconds is the `Retry-After` header
    /// (when Prefect sends one); `detail` is Prefect's (none: the status phrase `Locked`).
    #[error("{}", detail.as_deref().unwrap_or("Locked"))]
    Locked {
        /// The response's detail, when Prefect gives one.
        detail: Option<String>,
        /// Seconds to wait, for `Retry-After`.
        retry_after: Option<f64>,
    },
    /// 410 Gone: the lease expired or was released.
    #[error("{0}")]
    Gone(String),
    /// 503: the limits kept changing under the write.
    #[error(transparent)]
    KeptChanging(#[from] KeptChanging),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = ConcurrencyError> = std::result::Result<T, E>;

/// Prefect's `mode` of an acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireMode {
    /// Slots held until released (`concurrency()`).
    Concurrency,
    /// Slots that decay by themselves (`rate_limit()`): every active limit needs a
    /// `slot_decay_per_second` > 0.
    RateLimit,
}

/// A new limit (Prefect's `ConcurrencyLimitV2Create`, checked by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitCreate {
    /// Unique name.
    pub name: String,
    /// Slots.
    pub limit: i64,
    /// Enforced.
    pub active: bool,
    /// Slots held from the start.
    pub active_slots: i64,
    /// Denied slots from the start.
    pub denied_slots: i64,
    /// Decay per second (a rate limit when > 0).
    pub slot_decay_per_second: f64,
}

/// A change of a limit (Prefect's `ConcurrencyLimitV2Update`): what is `Some` is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitUpdate {
    /// Enforced.
    pub active: Option<bool>,
    /// New unique name.
    pub name: Option<String>,
    /// Slots.
    pub limit: Option<i64>,
    /// Held slots.
    pub active_slots: Option<i64>,
    /// Denied slots.
    pub denied_slots: Option<i64>,
    /// Decay per second.
    pub slot_decay_per_second: Option<f64>,
}

/// A limit addressed by id or by name (Prefect's `id_or_name`: a valid UUID is an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// By id.
    Id(Uuid),
    /// By name.
    Name(String),
}

impl IdOrName {
    /// Parses a path segment as Prefect does: a UUID is an id, anything else a name.
    pub fn parse(s: &str) -> Self {
        Uuid::parse_str(s).map_or_else(|_| Self::Name(s.to_owned()), Self::Id)
    }
}

/// Slots taken: the limits named that exist (inactive ones included, as Prefect answers) and
/// the lease, when one was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Acquired {
    /// The limits, in the order their names were given.
    pub limits: Vec<ConcurrencyLimit>,
    /// The lease holding the slots.
    pub lease_id: Option<Uuid>,
}

/// A tag-based limit in Prefect's V1 shape (`ConcurrencyLimit`).
#[derive(Debug, Clone, PartialEq)]
pub struct TagLimit {
    /// The V2 limit behind it (`tag:<tag>`).
    pub limit: ConcurrencyLimit,
    /// The tag.
    pub tag: String,
    /// The task runs holding a slot (lease holders of kind `task_run`).
    pub active_slots: Vec<Uuid>,
}

/// The lease to create with an acquisition.
#[derive(Debug, Clone)]
struct LeaseSpec {
    ttl: chrono::Duration,
    holder: Option<LeaseHolder>,
    /// Store it even when no limit is active (V2: the client renews whenever a limit
    /// matched), or only when slots were taken (V1).
    without_slots: bool,
}

/// The outcome of one decision.
enum Take {
    Taken(Acquired),
    Denied(Vec<ConcurrencyLimit>),
}

/// The concurrency use cases over a store.
#[derive(Clone)]
pub struct ConcurrencyLimits {
    store: Arc<dyn Store>,
}

fn tag_name(tag: &str) -> String {
    format!("{TAG_PREFIX}{tag}")
}

async fn pause(attempt: u32) {
    let spread = u64::from(rand::random::<u8>() % 40);
    tokio::time::sleep(std::time::Duration::from_millis(
        3 + spread + u64::from(attempt.min(20)) * 2,
    ))
    .await;
}

fn v1_not_found() -> ConcurrencyError {
    ConcurrencyError::NotFound("Concurrency limit not found".into())
}

impl ConcurrencyLimits {
    /// The use cases over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn kept_changing(id: Uuid) -> ConcurrencyError {
        ConcurrencyError::KeptChanging(KeptChanging {
            what: "concurrency limit",
            id,
            attempts: MAX_SLOT_ATTEMPTS,
        })
    }

    /// Creates a limit (`POST /v2/concurrency_limits/`); `Conflict` when the name is taken.
    ///
    /// # Errors
    /// [`ConcurrencyError::Conflict`], store errors.
    pub async fn create(&self, create: LimitCreate) -> Result<ConcurrencyLimit> {
        if deployment_limit::deployment_of_name(&create.name).is_some()
            && self
                .of_deployment(&IdOrName::Name(create.name.clone()))
                .await?
                .is_some()
        {
            return Err(ConcurrencyError::Conflict(format!(
                "A concurrency limit with the name '{}' already exists.",
                create.name
            )));
        }
        let now = Utc::now();
        let limit = ConcurrencyLimit {
            id: Uuid::new_v4(),
            created: now,
            updated: now,
            active: create.active,
            name: create.name,
            limit: create.limit,
            active_slots: create.active_slots,
            denied_slots: create.denied_slots,
            slot_decay_per_second: create.slot_decay_per_second,
            avg_slot_occupancy_seconds: 2.0,
            version: 0,
        };
        match self.store.create_concurrency_limit(&limit).await {
            Ok(()) => Ok(limit),
            Err(StoreError::Conflict(m)) => Err(ConcurrencyError::Conflict(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a limit by id or name; `NotFound("Concurrency Limit not found")`.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], store errors.
    pub async fn read(&self, which: &IdOrName) -> Result<ConcurrencyLimit> {
        let found = match which {
            IdOrName::Id(id) => self.store.read_concurrency_limit(*id).await,
            IdOrName::Name(name) => self.store.read_concurrency_limit_by_name(name).await,
        };
        match found {
            Ok(l) => Ok(l),
            Err(StoreError::NotFound(m)) => match self.of_deployment(which).await? {
                Some((_, l)) => Ok(l),
                None => Err(ConcurrencyError::NotFound(m)),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The limit of a deployment `which` addresses (by its `deployment:<id>` name or its
    /// derived id, [`crate::deployment_limit`]), when the deployment has a limit.
    async fn of_deployment(
        &self,
        which: &IdOrName,
    ) -> Result<Option<(pushpool_core::model::Deployment, ConcurrencyLimit)>> {
        let deployment_id = match which {
            IdOrName::Id(id) => deployment_limit::deployment_limit_id(*id),
            IdOrName::Name(name) => match deployment_limit::deployment_of_name(name) {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        Ok(deployment_limit::limit_of_deployment(self.store.as_ref(), deployment_id).await?)
    }

    /// The limit of a deployment `which` addresses when no stored limit answers to it.
    async fn derived(
        &self,
        which: &IdOrName,
    ) -> Result<Option<(pushpool_core::model::Deployment, ConcurrencyLimit)>> {
        let stored = match which {
            IdOrName::Id(id) => self.store.read_concurrency_limit(*id).await,
            IdOrName::Name(name) => self.store.read_concurrency_limit_by_name(name).await,
        };
        match stored {
            Ok(_) => Ok(None),
            Err(StoreError::NotFound(_)) => self.of_deployment(which).await,
            Err(e) => Err(e.into()),
        }
    }

    /// 422 naming `names` when one of them is a deployment's limit (see
    /// [`crate::deployment_limit`]: its slots are its runs').
    async fn refuse_deployment_names(&self, names: &[String]) -> Result<()> {
        for name in names {
            if deployment_limit::deployment_of_name(name).is_some()
                && self.derived(&IdOrName::Name(name.clone())).await?.is_some()
            {
                return Err(ConcurrencyError::Invalid(format!(
                    "names: {name} is a deployment's concurrency limit: its slots are taken \
                     and given back by the deployment's runs only"
                )));
            }
        }
        Ok(())
    }

    /// Every limit, by name: the stored ones and the deployments' ([`crate::deployment_limit`]).
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(&self) -> Result<Vec<ConcurrencyLimit>> {
        let mut limits = self.store.list_concurrency_limits().await?;
        limits.extend(deployment_limit::all_limits(self.store.as_ref()).await?);
        limits.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(limits)
    }

    /// Changes a limit (`PATCH /v2/concurrency_limits/{id_or_name}`); `NotFound`, `Conflict`
    /// when the new name is taken.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], [`ConcurrencyError::Conflict`],
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn update(&self, which: &IdOrName, update: &LimitUpdate) -> Result<()> {
        if let Some((deployment, current)) = self.derived(which).await? {
            if let Some(detail) = deployment_limit::refuse_update(&current, update) {
                return Err(ConcurrencyError::Invalid(detail));
            }
            if let Some(limit) = update.limit {
                deployment_limit::set_limit(
                    self.store.as_ref(),
                    deployment,
                    Some(limit),
                    Utc::now(),
                )
                .await?;
            }
            return Ok(());
        }
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let mut limit = self.read(which).await?;
            if let Some(v) = update.active {
                limit.active = v;
            }
            if let Some(v) = &update.name {
                limit.name.clone_from(v);
            }
            if let Some(v) = update.limit {
                limit.limit = v;
            }
            if let Some(v) = update.active_slots {
                limit.active_slots = v;
            }
            if let Some(v) = update.denied_slots {
                limit.denied_slots = v;
            }
            if let Some(v) = update.slot_decay_per_second {
                limit.slot_decay_per_second = v;
            }
            limit.updated = Utc::now();
            match self.store.update_concurrency_limit(&limit).await {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict(_)) => pause(attempt).await,
                Err(StoreError::NotFound(_)) => {
                    return Err(ConcurrencyError::NotFound(LIMIT_NOT_FOUND.into()));
                }
                Err(StoreError::Conflict(m)) => return Err(ConcurrencyError::Conflict(m)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(Uuid::nil()))
    }

    /// Deletes a limit after releasing its leases (their slots on other limits are given
    /// back); `NotFound`.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], store errors.
    pub async fn delete(&self, which: &IdOrName) -> Result<()> {
        if let Some((deployment, _)) = self.derived(which).await? {
            deployment_limit::set_limit(self.store.as_ref(), deployment, None, Utc::now()).await?;
            return Ok(());
        }
        let limit = self.read(which).await?;
        self.release_leases_of(limit.id, Utc::now()).await?;
        match self.store.delete_concurrency_limit(limit.id).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(m)) => Err(ConcurrencyError::NotFound(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives back the slots of `lease` and deletes it, in one write; `false` when the lease
    /// changed or went away meanwhile (renewed, released by another): read it again.
    async fn release(&self, lease: &ConcurrencyLease, now: DateTime<Utc>) -> Result<bool> {
        let occupancy = (now - lease.created).num_milliseconds() as f64 / 1000.0;
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let mut limits = Vec::with_capacity(lease.resource_ids.len());
            for id in &lease.resource_ids {
                match self.store.read_concurrency_limit(*id).await {
                    // Prefect decrements active limits only.
                    Ok(mut l) if l.active => {
                        l.give_back(lease.slots, Some(occupancy), now);
                        limits.push(l);
                    }
                    Ok(_) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let write = ConcurrencyWrite {
                limits,
                leases: vec![LeaseWrite::Delete(lease.clone())],
            };
            match self.store.commit_concurrency(&write).await {
                Ok(()) => return Ok(true),
                Err(StoreError::VersionConflict(id)) if id == lease.id => return Ok(false),
                Err(StoreError::VersionConflict(_)) => pause(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(lease.id))
    }

    /// Releases every lease that holds limit `limit_id`; how many.
    async fn release_leases_of(&self, limit_id: Uuid, now: DateTime<Utc>) -> Result<usize> {
        let mut released = 0;
        for lease in self.store.list_concurrency_leases().await? {
            if lease.resource_ids.contains(&limit_id) && self.release(&lease, now).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Releases the leases lapsed at `now` (their slots are given back): the reconciler's
    /// sweep. Returns how many were released.
    ///
    /// # Errors
    /// Store errors.
    pub async fn release_expired(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut released = 0;
        for lease in self.store.list_concurrency_leases().await? {
            if lease.is_expired(now) && self.release(&lease, now).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Reads the limits named, in order (each once; unknown names are skipped), first
    /// releasing the lapsed leases that hold any of them.
    async fn named(&self, names: &[String], now: DateTime<Utc>) -> Result<Vec<ConcurrencyLimit>> {
        let mut limits: Vec<ConcurrencyLimit> = Vec::with_capacity(names.len());
        for name in names {
            if limits.iter().any(|l| &l.name == name) {
                continue;
            }
            match self.store.read_concurrency_limit_by_name(name).await {
                Ok(l) => limits.push(l),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if limits.is_empty() {
            return Ok(limits);
        }
        let mut released = false;
        for lease in self.store.list_concurrency_leases().await? {
            let ours = lease
                .resource_ids
                .iter()
                .any(|id| limits.iter().any(|l| l.id == *id));
            if ours && lease.is_expired(now) {
                released |= self.release(&lease, now).await?;
            }
        }
        if released {
            for l in &mut limits {
                if let Ok(fresh) = self.store.read_concurrency_limit(l.id).await {
                    *l = fresh;
                }
            }
        }
        Ok(limits)
    }

    /// One decision: take `slots` on every active limit named, or record a denial.
    async fn take(
        &self,
        names: &[String],
        slots: i64,
        lease: Option<&LeaseSpec>,
        check: &(dyn Fn(&[ConcurrencyLimit]) -> Result<()> + Sync),
    ) -> Result<Take> {
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let now = Utc::now();
            let limits = self.named(names, now).await?;
            check(&limits)?;
            let mut written: Vec<ConcurrencyLimit> =
                limits.iter().filter(|l| l.active).cloned().collect();
            let fits = written.iter_mut().all(|l| l.take(slots, now));
            if !fits {
                let mut denied: Vec<ConcurrencyLimit> =
                    limits.iter().filter(|l| l.active).cloned().collect();
                for l in &mut denied {
                    l.deny(slots, now);
                }
                let write = ConcurrencyWrite {
                    limits: denied.clone(),
                    leases: vec![],
                };
                match self.store.commit_concurrency(&write).await {
                    Ok(()) => return Ok(Take::Denied(denied)),
                    Err(StoreError::VersionConflict(_)) => {
                        pause(attempt).await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let mut leases = Vec::new();
            let mut lease_id = None;
            if let Some(spec) = lease {
                let id = Uuid::new_v4();
                lease_id = Some(id);
                let store_it = if spec.without_slots {
                    !limits.is_empty()
                } else {
                    !written.is_empty()
                };
                if store_it {
                    leases.push(LeaseWrite::Create(ConcurrencyLease {
                        id,
                        created: now,
                        expires: now + spec.ttl,
                        resource_ids: written.iter().map(|l| l.id).collect(),
                        slots,
                        holder: spec.holder.clone(),
                    }));
                }
            }
            let write = ConcurrencyWrite {
                limits: written,
                leases,
            };
            match self.store.commit_concurrency(&write).await {
                Ok(()) => return Ok(Take::Taken(Acquired { limits, lease_id })),
                Err(StoreError::VersionConflict(_)) => pause(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(Uuid::nil()))
    }

    /// Takes `slots` on the limits `names` (`POST /v2/concurrency_limits/increment`, and
    /// `increment-with-lease` when `lease` is given: `(seconds, holder)`).
    ///
    /// Prefect's rules: unknown names are ignored, inactive limits are answered but take
    /// nothing; 422 `Slots requested is greater than the limit` when an active limit is
    /// smaller than `slots`; in `rate_limit` mode, 422 naming the active limits without
    /// decay; when the slots are not all free, 423 whose `Retry-After` is Prefect's (see
    /// [`ConcurrencyLimit::average_retry_after`], jittered like Prefect's
    /// `clamped_poisson_interval`).
    ///
    /// # Errors
    /// [`ConcurrencyError::Invalid`], [`ConcurrencyError::Locked`],
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn increment(
        &self,
        names: &[String],
        slots: i64,
        mode: AcquireMode,
        lease: Option<(f64, Option<LeaseHolder>)>,
    ) -> Result<Acquired> {
        self.refuse_deployment_names(names).await?;
        let check = move |limits: &[ConcurrencyLimit]| -> Result<()> {
            let active: Vec<&ConcurrencyLimit> = limits.iter().filter(|l| l.active).collect();
            if active.iter().any(|l| l.limit < slots) {
                return Err(ConcurrencyError::Invalid(
                    "Slots requested is greater than the limit".into(),
                ));
            }
            let non_decaying: Vec<&str> = active
                .iter()
                .filter(|l| l.slot_decay_per_second == 0.0)
                .map(|l| l.name.as_str())
                .collect();
            if mode == AcquireMode::RateLimit && !non_decaying.is_empty() {
                return Err(ConcurrencyError::Invalid(format!(
                    "Only concurrency limits with slot decay can be used for rate limiting. \
                     The following limits do not have a decay configured: '{}'",
                    non_decaying.join(",")
                )));
            }
            Ok(())
        };
        let spec = lease.map(|(seconds, holder)| LeaseSpec {
            ttl: chrono::Duration::milliseconds((seconds * 1000.0) as i64),
            holder,
            without_slots: true,
        });
        match self.take(names, slots, spec.as_ref(), &check).await? {
            Take::Taken(acquired) => Ok(acquired),
            Take::Denied(denied) => {
                let average = denied
                    .iter()
                    .max_by(|a, b| a.blocking_slots(slots).total_cmp(&b.blocking_slots(slots)))
                    .map_or(0.0, |l| l.average_retry_after(slots));
                Err(ConcurrencyError::Locked {
                    detail: None,
                    retry_after: Some(clamped_poisson_interval(average, rand::random::<f64>())),
                })
            }
        }
    }

    /// Gives `slots` back on the active limits `names`
    /// (`POST /v2/concurrency_limits/decrement`); with `occupancy_seconds` the average
    /// occupancy moves. Returns the limits named that exist.
    ///
    /// # Errors
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn decrement(
        &self,
        names: &[String],
        slots: i64,
        occupancy_seconds: Option<f64>,
    ) -> Result<Vec<ConcurrencyLimit>> {
        self.refuse_deployment_names(names).await?;
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let now = Utc::now();
            let limits = self.named(names, now).await?;
            let mut written: Vec<ConcurrencyLimit> =
                limits.iter().filter(|l| l.active).cloned().collect();
            for l in &mut written {
                l.give_back(slots, occupancy_seconds, now);
            }
            let write = ConcurrencyWrite {
                limits: written,
                leases: vec![],
            };
            match self.store.commit_concurrency(&write).await {
                Ok(()) => return Ok(limits),
                Err(StoreError::VersionConflict(_)) => pause(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(Uuid::nil()))
    }

    /// Releases a lease (`POST /v2/concurrency_limits/decrement-with-lease`): its slots are
    /// given back with the time held as occupancy. An unknown lease is nothing to do.
    ///
    /// # Errors
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn release_lease(&self, lease_id: Uuid) -> Result<()> {
        for _ in 0..MAX_SLOT_ATTEMPTS {
            let lease = match self.store.read_concurrency_lease(lease_id).await {
                Ok(l) => l,
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if self.release(&lease, Utc::now()).await? {
                return Ok(());
            }
        }
        Err(Self::kept_changing(lease_id))
    }

    /// Renews a lease for `seconds` from now (`POST /v2/concurrency_limits/leases/{id}/renew`);
    /// 410 `Lease not found - it may have expired or been revoked` when it is gone or lapsed.
    ///
    /// # Errors
    /// [`ConcurrencyError::Gone`], [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn renew_lease(&self, lease_id: Uuid, seconds: f64) -> Result<()> {
        let gone = || {
            ConcurrencyError::Gone("Lease not found - it may have expired or been revoked".into())
        };
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let now = Utc::now();
            let mut lease = match self.store.read_concurrency_lease(lease_id).await {
                Ok(l) => l,
                Err(StoreError::NotFound(_)) => return Err(gone()),
                Err(e) => return Err(e.into()),
            };
            if lease.is_expired(now) {
                return Err(gone());
            }
            lease.expires = now + chrono::Duration::milliseconds((seconds * 1000.0) as i64);
            let write = ConcurrencyWrite {
                limits: vec![],
                leases: vec![LeaseWrite::Renew(lease)],
            };
            match self.store.commit_concurrency(&write).await {
                Ok(()) => return Ok(()),
                // Released meanwhile (the renewal needs the lease to exist).
                Err(StoreError::VersionConflict(_)) => {
                    if matches!(
                        self.store.read_concurrency_lease(lease_id).await,
                        Err(StoreError::NotFound(_))
                    ) {
                        return Err(gone());
                    }
                    pause(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(lease_id))
    }

    // Tag-based limits (the V1 API).

    async fn tag_limit(&self, limit: ConcurrencyLimit) -> Result<TagLimit> {
        let active_slots = self
            .store
            .list_concurrency_leases()
            .await?
            .into_iter()
            .filter(|l| l.resource_ids.contains(&limit.id))
            .filter_map(|l| l.holder)
            .filter(|h| h.kind == LeaseHolderKind::TaskRun)
            .map(|h| h.id)
            .collect();
        let tag = limit
            .name
            .strip_prefix(TAG_PREFIX)
            .unwrap_or(&limit.name)
            .to_owned();
        Ok(TagLimit {
            limit,
            tag,
            active_slots,
        })
    }

    /// Creates the tag limit of `tag`, or sets the limit of the existing one
    /// (`POST /concurrency_limits/`): `(limit, created)`.
    ///
    /// # Errors
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn upsert_tag(&self, tag: &str, concurrency_limit: i64) -> Result<(TagLimit, bool)> {
        let name = tag_name(tag);
        for _ in 0..MAX_SLOT_ATTEMPTS {
            match self.store.read_concurrency_limit_by_name(&name).await {
                Ok(_) => {
                    let update = LimitUpdate {
                        limit: Some(concurrency_limit),
                        ..LimitUpdate::default()
                    };
                    match self.update(&IdOrName::Name(name.clone()), &update).await {
                        Ok(()) => {}
                        Err(ConcurrencyError::NotFound(_)) => continue,
                        Err(e) => return Err(e),
                    }
                    let limit = self.store.read_concurrency_limit_by_name(&name).await?;
                    return Ok((self.tag_limit(limit).await?, false));
                }
                Err(StoreError::NotFound(_)) => {
                    let create = LimitCreate {
                        name: name.clone(),
                        limit: concurrency_limit,
                        active: true,
                        active_slots: 0,
                        denied_slots: 0,
                        slot_decay_per_second: 0.0,
                    };
                    match self.create(create).await {
                        Ok(limit) => return Ok((self.tag_limit(limit).await?, true)),
                        Err(ConcurrencyError::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(Uuid::nil()))
    }

    /// The tag limit with id `id` (a limit whose name is not `tag:…` is not one);
    /// `NotFound("Concurrency limit not found")`.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], store errors.
    pub async fn read_tag_by_id(&self, id: Uuid) -> Result<TagLimit> {
        match self.store.read_concurrency_limit(id).await {
            Ok(l) if l.name.starts_with(TAG_PREFIX) => self.tag_limit(l).await,
            Ok(_) | Err(StoreError::NotFound(_)) => Err(v1_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// The tag limit of `tag`; `NotFound("Concurrency limit not found")`.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], store errors.
    pub async fn read_tag(&self, tag: &str) -> Result<TagLimit> {
        match self
            .store
            .read_concurrency_limit_by_name(&tag_name(tag))
            .await
        {
            Ok(l) => self.tag_limit(l).await,
            Err(StoreError::NotFound(_)) => Err(v1_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every tag limit, by name.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_tags(&self) -> Result<Vec<TagLimit>> {
        let leases = self.store.list_concurrency_leases().await?;
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|l| l.name.starts_with(TAG_PREFIX))
            .map(|limit| {
                let active_slots = leases
                    .iter()
                    .filter(|l| l.resource_ids.contains(&limit.id))
                    .filter_map(|l| l.holder.as_ref())
                    .filter(|h| h.kind == LeaseHolderKind::TaskRun)
                    .map(|h| h.id)
                    .collect();
                TagLimit {
                    tag: limit.name[TAG_PREFIX.len()..].to_owned(),
                    limit,
                    active_slots,
                }
            })
            .collect())
    }

    /// Releases every slot of the tag limit, then, with `slot_override`, takes one slot for
    /// each task run listed (`POST /concurrency_limits/tag/{tag}/reset`).
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn reset_tag(&self, tag: &str, slot_override: Option<&[Uuid]>) -> Result<()> {
        let limit = self.read_tag(tag).await?.limit;
        self.release_leases_of(limit.id, Utc::now()).await?;
        for task_run_id in slot_override.unwrap_or_default() {
            let spec = LeaseSpec {
                ttl: chrono::Duration::days(V1_LEASE_DAYS),
                holder: Some(LeaseHolder {
                    kind: LeaseHolderKind::TaskRun,
                    id: *task_run_id,
                }),
                without_slots: false,
            };
            // Prefect's reset takes the override's slots whatever the limit.
            let names = [limit.name.clone()];
            self.take_unbounded(&names, &spec).await?;
        }
        Ok(())
    }

    /// Takes one slot on the limits named even past their limit (a reset's override).
    async fn take_unbounded(&self, names: &[String], spec: &LeaseSpec) -> Result<()> {
        for attempt in 0..MAX_SLOT_ATTEMPTS {
            let now = Utc::now();
            let mut limits = self.named(names, now).await?;
            for l in &mut limits {
                l.active_slots = l.active_slots_at(now) + 1;
                l.updated = now;
            }
            let lease = ConcurrencyLease {
                id: Uuid::new_v4(),
                created: now,
                expires: now + spec.ttl,
                resource_ids: limits.iter().map(|l| l.id).collect(),
                slots: 1,
                holder: spec.holder.clone(),
            };
            let write = ConcurrencyWrite {
                limits,
                leases: vec![LeaseWrite::Create(lease)],
            };
            match self.store.commit_concurrency(&write).await {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict(_)) => pause(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Self::kept_changing(Uuid::nil()))
    }

    /// Deletes a tag limit by id (`DELETE /concurrency_limits/{id}`) or tag, releasing its
    /// leases first; `NotFound("Concurrency limit not found")`.
    ///
    /// # Errors
    /// [`ConcurrencyError::NotFound`], store errors.
    pub async fn delete_tag(&self, which: &IdOrName) -> Result<()> {
        let limit = match which {
            IdOrName::Id(id) => self.read_tag_by_id(*id).await?.limit,
            IdOrName::Name(tag) => self.read_tag(tag).await?.limit,
        };
        match self.delete(&IdOrName::Id(limit.id)).await {
            Err(ConcurrencyError::NotFound(_)) => Err(v1_not_found()),
            other => other,
        }
    }

    /// Takes a slot of every tag's limit for task run `task_run_id`
    /// (`POST /concurrency_limits/increment`), held by a lease of [`V1_LEASE_DAYS`]. Prefect's
    /// 423s: a limit of 0 (`The concurrency limit on tag "x" is 0 and will deadlock if the
    /// task tries to run again.`, no `Retry-After`), a full one (`Concurrency limit for the x
    /// tag has been reached`, `Retry-After: 30`). Returns the tag limits that took a slot.
    ///
    /// # Errors
    /// [`ConcurrencyError::Locked`], [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn increment_tags(
        &self,
        tags: &[String],
        task_run_id: Uuid,
    ) -> Result<Vec<ConcurrencyLimit>> {
        let names: Vec<String> = tags.iter().map(|t| tag_name(t)).collect();
        let check = |limits: &[ConcurrencyLimit]| -> Result<()> {
            if let Some(zero) = limits.iter().find(|l| l.limit == 0) {
                return Err(ConcurrencyError::Locked {
                    detail: Some(format!(
                        "The concurrency limit on tag \"{}\" is 0 and will deadlock if the task \
                         tries to run again.",
                        &zero.name[TAG_PREFIX.len()..]
                    )),
                    retry_after: None,
                });
            }
            Ok(())
        };
        let spec = LeaseSpec {
            ttl: chrono::Duration::days(V1_LEASE_DAYS),
            holder: Some(LeaseHolder {
                kind: LeaseHolderKind::TaskRun,
                id: task_run_id,
            }),
            without_slots: false,
        };
        match self.take(&names, 1, Some(&spec), &check).await? {
            Take::Taken(acquired) => Ok(acquired.limits.into_iter().filter(|l| l.active).collect()),
            Take::Denied(denied) => {
                let first = denied
                    .first()
                    .map_or("", |l| l.name.strip_prefix(TAG_PREFIX).unwrap_or(&l.name));
                Err(ConcurrencyError::Locked {
                    detail: Some(format!(
                        "Concurrency limit for the {first} tag has been reached"
                    )),
                    retry_after: Some(TAG_SLOT_WAIT_SECONDS),
                })
            }
        }
    }

    /// Releases the leases task run `task_run_id` holds on the tags' limits
    /// (`POST /concurrency_limits/decrement`). Returns the tag limits that exist.
    ///
    /// # Errors
    /// [`ConcurrencyError::KeptChanging`], store errors.
    pub async fn decrement_tags(
        &self,
        tags: &[String],
        task_run_id: Uuid,
    ) -> Result<Vec<ConcurrencyLimit>> {
        let names: Vec<String> = tags.iter().map(|t| tag_name(t)).collect();
        let limits = self.named(&names, Utc::now()).await?;
        for lease in self.store.list_concurrency_leases().await? {
            let holds = lease.holder.as_ref().is_some_and(|h| h.id == task_run_id)
                && lease
                    .resource_ids
                    .iter()
                    .any(|id| limits.iter().any(|l| l.id == *id));
            if holds {
                self.release_lease(lease.id).await?;
            }
        }
        Ok(limits)
    }
}

impl crate::Service {
    /// The concurrency limit use cases over this service's store.
    pub fn concurrency_limits(&self) -> ConcurrencyLimits {
        ConcurrencyLimits::new(Arc::clone(self.store()))
    }
}
