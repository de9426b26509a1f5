//! Global concurrency limits (Prefect 3.9.1's `ConcurrencyLimitV2`) and the leases that hold
//! their slots, with Prefect's slot arithmetic (`prefect/server/models/concurrency_limits_v2.py`):
//! decay of active and denied slots, the average slot occupancy, and the `Retry-After` of a
//! denied acquisition (`prefect/server/api/concurrency_limits_v2.py`).
//!
//! Tag-based task run limits (`/concurrency_limits/…`, `prefect concurrency-limit`) are the
//! same limits named `tag:<tag>` ([`TAG_PREFIX`]), as in Prefect 3.x. A deployment's
//! `concurrency_limit` is, in Prefect 3.9.1, a limit named `deployment:<id>`
//! ([`DEPLOYMENT_PREFIX`]), held by a lease whose holder is the flow run.
//!
//! No I/O here: the store keeps [`ConcurrencyLimit`] and [`ConcurrencyLease`] documents, the
//! service decides with these functions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The name prefix of a tag-based task run limit (`tag:etl` limits task runs tagged `etl`).
pub const TAG_PREFIX: &str = "tag:";

/// The name prefix Prefect 3.9.1 gives a deployment's concurrency limit (`deployment:<id>`).
pub const DEPLOYMENT_PREFIX: &str = "deployment:";

/// Prefect's `MINIMUM_OCCUPANCY_SECONDS_PER_SLOT`: the least average occupancy a slot is
/// given (it divides).
pub const MINIMUM_OCCUPANCY_SECONDS_PER_SLOT: f64 = 0.1;

/// Prefect's `OCCUPANCY_SAMPLES_MULTIPLIER`: the average occupancy is a moving average over
/// `limit × 2` releases.
pub const OCCUPANCY_SAMPLES_MULTIPLIER: f64 = 2.0;

/// The longest `Retry-After` a denied acquisition of a limit without decay answers, in
/// seconds: Prefect's `server.concurrency.maximum_concurrency_slot_wait_seconds` and
/// `server.tasks.tag_concurrency_slot_wait_seconds` (both 30 by default; pushpool has no
/// setting for them).
pub const MAX_SLOT_WAIT_SECONDS: f64 = 30.0;

/// A global concurrency limit (Prefect's `ConcurrencyLimitV2`), as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at: set by every write, slot changes included (the decay counts from it, as
    /// Prefect's ORM `updated` column does).
    pub updated: DateTime<Utc>,
    /// Whether the limit is enforced: an inactive limit takes no slots and denies nothing.
    pub active: bool,
    /// Unique name (Prefect's `Name`: no `/ % & > <`).
    pub name: String,
    /// The most slots that may be held at once.
    pub limit: i64,
    /// Slots held as of `updated` (before decay; see [`ConcurrencyLimit::active_slots_at`]).
    pub active_slots: i64,
    /// Slots denied recently, as of `updated` (before decay): what the `Retry-After` of the
    /// next denial grows with.
    pub denied_slots: i64,
    /// Slots freed per second without a release (a rate limit); 0 for a plain concurrency
    /// limit.
    pub slot_decay_per_second: f64,
    /// The moving average of how long a slot is held, in seconds (Prefect starts it at 2.0).
    pub avg_slot_occupancy_seconds: f64,
    /// The store's write version: every write is conditional on it and bumps it (not part of
    /// Prefect's schema; never in a response).
    #[serde(default)]
    pub version: u64,
}

fn elapsed_seconds(since: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let micros = (now - since).num_microseconds().unwrap_or(i64::MAX);
    (micros.max(0) as f64) / 1e6
}

fn decayed(value: i64, rate: f64, seconds: f64) -> i64 {
    let gone = (rate * seconds).floor();
    if gone >= value as f64 {
        0
    } else {
        (value - gone as i64).max(0)
    }
}

impl ConcurrencyLimit {
    /// Prefect's `active_slots_after_decay`: `max(0, active_slots - floor(decay × seconds since
    /// updated))`.
    pub fn active_slots_at(&self, now: DateTime<Utc>) -> i64 {
        decayed(
            self.active_slots,
            self.slot_decay_per_second,
            elapsed_seconds(self.updated, now),
        )
    }

    /// The longest a slot of this limit is waited for per denial: [`MAX_SLOT_WAIT_SECONDS`].
    fn max_wait(&self) -> f64 {
        MAX_SLOT_WAIT_SECONDS
    }

    /// Prefect's `denied_slots_after_decay`: denied slots decay at `slot_decay_per_second`
    /// for a rate limit, else at one per average occupancy (clamped to
    /// [`MINIMUM_OCCUPANCY_SECONDS_PER_SLOT`]..[`MAX_SLOT_WAIT_SECONDS`]).
    pub fn denied_slots_at(&self, now: DateTime<Utc>) -> i64 {
        let rate = if self.slot_decay_per_second > 0.0 {
            self.slot_decay_per_second
        } else {
            1.0 / self
                .avg_slot_occupancy_seconds
                .min(self.max_wait())
                .max(MINIMUM_OCCUPANCY_SECONDS_PER_SLOT)
        };
        decayed(self.denied_slots, rate, elapsed_seconds(self.updated, now))
    }

    /// Takes `slots` at `now` if they fit (Prefect's `bulk_increment_active_slots`: decayed
    /// active slots + `slots` ≤ `limit`): active slots become decayed + `slots`, denied slots
    /// their decayed value, `updated` becomes `now`. `false` (nothing changed) when they do
    /// not fit.
    pub fn take(&mut self, slots: i64, now: DateTime<Utc>) -> bool {
        let active = self.active_slots_at(now);
        if active.saturating_add(slots) > self.limit {
            return false;
        }
        self.denied_slots = self.denied_slots_at(now);
        self.active_slots = active + slots;
        self.updated = now;
        true
    }

    /// Records a denial of `slots` at `now` (Prefect's `bulk_update_denied_slots`: denied
    /// slots become their decayed value + `slots`).
    pub fn deny(&mut self, slots: i64, now: DateTime<Utc>) {
        self.denied_slots = self.denied_slots_at(now).saturating_add(slots);
        self.updated = now;
    }

    /// Gives `slots` back at `now` (Prefect's `bulk_decrement_active_slots`): active slots
    /// become max(0, decayed − `slots`), denied slots their decayed value; with
    /// `occupancy_seconds` (how long the slots were held), the average occupancy moves
    /// toward `occupancy_seconds / slots` by one `limit × 2`-th.
    pub fn give_back(&mut self, slots: i64, occupancy_seconds: Option<f64>, now: DateTime<Utc>) {
        let active = self.active_slots_at(now);
        let denied = self.denied_slots_at(now);
        if let Some(occupancy) = occupancy_seconds.filter(|o| *o > 0.0 && slots > 0) {
            let per_slot = (occupancy / slots as f64).max(MINIMUM_OCCUPANCY_SECONDS_PER_SLOT);
            let samples = self.limit as f64 * OCCUPANCY_SAMPLES_MULTIPLIER;
            if samples > 0.0 {
                self.avg_slot_occupancy_seconds = self.avg_slot_occupancy_seconds
                    + per_slot / samples
                    - self.avg_slot_occupancy_seconds / samples;
            }
        }
        self.active_slots = (active - slots).max(0);
        self.denied_slots = denied;
        self.updated = now;
    }

    /// How many of this limit's slots stand before a request of `slots` (Prefect's
    /// `num_blocking_slots`, with `denied_slots` as updated by the denial).
    pub fn blocking_slots(&self, slots: i64) -> f64 {
        let waiting = (slots + self.denied_slots) as f64;
        if self.slot_decay_per_second > 0.0 || self.limit <= 0 {
            waiting
        } else {
            waiting / self.limit as f64
        }
    }

    /// The average `Retry-After` of a request of `slots` this limit blocks, in seconds, before
    /// jitter (Prefect's `_generate_concurrency_locked_response`): for a rate limit, one slot
    /// per `1 / slot_decay_per_second` seconds for each blocking slot; otherwise the average
    /// occupancy (at most [`MAX_SLOT_WAIT_SECONDS`]) per blocking slot, at most
    /// [`MAX_SLOT_WAIT_SECONDS`] in all.
    pub fn average_retry_after(&self, slots: i64) -> f64 {
        let blocking = self.blocking_slots(slots);
        if self.slot_decay_per_second > 0.0 {
            blocking / self.slot_decay_per_second
        } else {
            let per_slot = self.avg_slot_occupancy_seconds.min(self.max_wait());
            (per_slot * blocking).min(self.max_wait())
        }
    }
}

/// Prefect's `clamped_poisson_interval` with its default clamping factor 0.3: an exponential
/// variate of mean `average`, kept within `[c × average, 1.3 × average]` where `c` balances
/// the mass around the median; `u` is a uniform draw in `[0, 1)`. 0 for an average ≤ 0.
pub fn clamped_poisson_interval(average: f64, u: f64) -> f64 {
    if average <= 0.0 {
        return 0.0;
    }
    let upper_multiple: f64 = 1.3;
    let lower_multiple = lower_clamp_multiple(upper_multiple);
    let cdf = |x: f64| 1.0 - (-x / average).exp();
    let upper_rv = cdf(average * upper_multiple);
    let lower_rv = cdf((average * lower_multiple).max(0.0));
    let rv = lower_rv + u.clamp(0.0, 1.0) * (upper_rv - lower_rv);
    -average * (1.0 - rv).max(1e-10).ln()
}

/// Prefect's `lower_clamp_multiple`: `log2(2^k / (2^k − 1))` (0 from `k` = 50).
fn lower_clamp_multiple(k: f64) -> f64 {
    if k >= 50.0 {
        return 0.0;
    }
    let two_k = 2f64.powf(k);
    (two_k / (two_k - 1.0)).max(1e-10).log2()
}

/// Who holds a lease (Prefect's `ConcurrencyLeaseHolder`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseHolder {
    /// `flow_run`, `task_run` or `deployment`.
    #[serde(rename = "type")]
    pub kind: LeaseHolderKind,
    /// The holder's id.
    pub id: Uuid,
}

/// The kinds of lease holder Prefect knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseHolderKind {
    /// A flow run.
    FlowRun,
    /// A task run (tagged task runs, `/concurrency_limits/increment`).
    TaskRun,
    /// A deployment.
    Deployment,
}

/// Slots held on some limits until released or until `expires` (Prefect's
/// `ResourceLease[ConcurrencyLimitLeaseMetadata]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyLease {
    /// Id (the `lease_id` clients renew and release).
    pub id: Uuid,
    /// When the slots were taken (the occupancy of a release counts from it).
    pub created: DateTime<Utc>,
    /// When the lease lapses and its slots are given back, unless renewed.
    pub expires: DateTime<Utc>,
    /// The limits whose slots it holds (the active ones at acquisition).
    pub resource_ids: Vec<Uuid>,
    /// Slots held on each of them.
    pub slots: i64,
    /// Who holds it, when the client said.
    #[serde(default)]
    pub holder: Option<LeaseHolder>,
}

impl ConcurrencyLease {
    /// Whether the lease has lapsed at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn limit(limit: i64, decay: f64) -> ConcurrencyLimit {
        ConcurrencyLimit {
            id: Uuid::nil(),
            created: at(0),
            updated: at(0),
            active: true,
            name: "n".into(),
            limit,
            active_slots: 0,
            denied_slots: 0,
            slot_decay_per_second: decay,
            avg_slot_occupancy_seconds: 2.0,
            version: 0,
        }
    }

    #[test]
    fn slots_are_taken_up_to_the_limit_and_given_back() {
        let mut l = limit(2, 0.0);
        assert!(l.take(1, at(1)));
        assert!(l.take(1, at(2)));
        assert!(!l.take(1, at(3)));
        assert_eq!(l.active_slots, 2);
        assert_eq!(l.updated, at(2));
        l.give_back(1, Some(6.0), at(4));
        assert_eq!(l.active_slots, 1);
        // 2.0 + 6/4 - 2/4
        assert_eq!(l.avg_slot_occupancy_seconds, 3.0);
        l.give_back(5, None, at(5));
        assert_eq!(l.active_slots, 0);
    }

    #[test]
    fn active_slots_decay_by_whole_slots() {
        let mut l = limit(10, 0.5);
        l.active_slots = 4;
        assert_eq!(l.active_slots_at(at(1)), 4);
        assert_eq!(l.active_slots_at(at(3)), 3);
        assert_eq!(l.active_slots_at(at(100)), 0);
    }

    #[test]
    fn denied_slots_decay_by_occupancy_without_a_rate() {
        let mut l = limit(1, 0.0);
        l.deny(3, at(0));
        assert_eq!(l.denied_slots, 3);
        // one slot per 2 s of average occupancy
        assert_eq!(l.denied_slots_at(at(3)), 2);
        assert_eq!(l.average_retry_after(1), 8.0);
        l.avg_slot_occupancy_seconds = 100.0;
        assert_eq!(l.average_retry_after(1), 30.0);
        let mut rate = limit(5, 2.0);
        rate.denied_slots = 3;
        assert_eq!(rate.average_retry_after(1), 2.0);
    }

    #[test]
    fn the_jittered_interval_stays_in_its_clamp() {
        let low = clamped_poisson_interval(10.0, 0.0);
        let high = clamped_poisson_interval(10.0, 0.999_999);
        assert!((high - 13.0).abs() < 1e-3, "{high}");
        // lower_clamp_multiple(1.3) = log2(2^1.3 / (2^1.3 - 1)) = 0.7518...
        assert!((low - 7.518).abs() < 1e-3, "{low}");
        assert_eq!(clamped_poisson_interval(0.0, 0.5), 0.0);
    }
}
