//! Work pool, work queue and deployment concurrency limits, enforced where pushpool starts
//! runs: in the submitter's claim (SCHEDULED → PENDING).
//!
//! **What is limited.** A work pool's or work queue's `concurrency_limit` bounds its runs in
//! PENDING, RUNNING or CANCELLING (the states Prefect's `get_scheduled_flow_runs` counts
//! against a pool's and queue's limits); a deployment's `concurrency_limit` bounds its runs
//! the same way, with `concurrency_options.collision_strategy` saying what happens to a run
//! that finds no slot (Prefect's `SecureFlowConcurrencySlots`):
//! - `ENQUEUE` (the default): the run waits, SCHEDULED named `AwaitingConcurrencySlot`, and
//!   is submitted as soon as a slot frees. Prefect reschedules it 30 s ahead
//!   (`PREFECT_DEPLOYMENT_CONCURRENCY_SLOT_WAIT_SECONDS`); pushpool keeps its scheduled time,
//!   so it stays due and goes the moment a slot frees (never marked Late, see
//!   [`crate::schedules::AWAITING_CONCURRENCY_SLOT`]).
//! - `CANCEL_NEW`: the run ends CANCELLED with Prefect's message
//!   `Deployment concurrency limit reached.` (only when the pool and queue had room: a run
//!   held back by its pool or queue waits, as Prefect's workers never pick it up).
//!
//! A run held back by its pool or queue waits the same way (`AwaitingConcurrencySlot`, with
//! a message naming the pool or queue: Prefect sets no state there, its workers just leave
//! the run SCHEDULED until it turns Late).
//!
//! **How slots are counted.** One store counter per pool, queue and deployment
//! ([`pool_counter`], [`queue_counter`], [`deployment_counter`]), changed in the *same*
//! [`pushpool_store::Store::commit`] as the run's state, so that a claim and its slots are
//! written together or not at all: conditional writes in one `TransactWriteItems` on
//! DynamoDB, one SQL transaction on SQLite. Concurrent submitters, redelivered stream
//! events and a submitter killed after its claim cannot overshoot a limit: a claim that
//! would pass a limit fails as a whole ([`pushpool_store::StoreError::LimitReached`]), and
//! a run claims its slots once (the run records what it holds, [`ConcurrencySlots`]: a
//! resubmission of the same claim takes nothing more).
//!
//! - Counters **always count**, limit or no limit: every claim of a pushpool-submitted run
//!   takes a slot of its pool, its queue and its deployment. So a limit set (or lowered)
//!   later is exact at once: runs already active count against it, and no new run is
//!   claimed until the count is under the new limit (runs already active are never
//!   stopped). A raised or removed limit lets waiting runs go at the next change or
//!   reconciler tick.
//! - A run **gives its slots back** in the commit that moves it out of PENDING, RUNNING and
//!   CANCELLING (a final state, PAUSED, or SCHEDULED again), whoever writes it (the engine's
//!   report, cancel, the reconciler's CRASHED), with one exception from Prefect's
//!   `ReleaseFlowConcurrencySlots`: a RUNNING run rejected into `AwaitingRetry` (an
//!   in-process retry; its engine lives on and proposes RUNNING again) keeps them. A run
//!   that comes back into the active set without a claim (a PAUSED run resumed by its
//!   engine) takes its recorded slots again, unbounded (it is running already: counted, not
//!   refused). A run deleted while it holds slots gives them back first.
//! - Runs moved to PENDING by something other than pushpool's submitter (a run executed by
//!   hand with `prefect flow-run execute`) are not counted.
//!
//! **Deployment slots are leases.** The deployment slot expires if its holder dies: its
//! lease lasts `concurrency_options.grace_period_seconds` when set, else
//! [`DEFAULT_LEASE_SECONDS`] (300 s, Prefect's `initial_deployment_lease_duration`), and is
//! renewed by every state write of the run while active (the engine's reports) and by the
//! reconciler while the provider reports the job pending or running. A lease that expires
//! gives its deployment slot back (the reconciler's tick); the run's pool and queue slots
//! stay until it leaves the active set (the reconciler ends a run whose job is gone).
//!
//! **Waiting runs go as soon as a slot frees.** The change of a run that gave slots back
//! (a final or PAUSED state) makes the submitter try the waiting runs of its pool and
//! deployment, higher-priority queues first ([`crate::Service::by_queue_priority`]): the
//! in-process submitter in the embedded shape, the stream-triggered submitter on AWS; the
//! reconciler's tick tries every due run as a safety net (a pool found full holds back its
//! other runs for that tick). Without a limit on the freed run's pool, queue or deployment
//! (three point reads), the due runs are not read at all.
//!
//! Not covered: runs of pools with workers (pushpool does not submit them); a counter is
//! never decremented below 0 (the store refuses it, [`pushpool_store::CounterChange`]), and
//! only a run that holds a slot gives one back, so the counts stay exact as long as every
//! write of a run goes through [`crate::Service::modify_flow_run`].

use chrono::{DateTime, Utc};
use pushpool_core::model::{ConcurrencySlots, Deployment, FlowRun, WorkPool, WorkQueue};
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::{CounterChange, StoreError};
use serde_json::Value;
use tracing::{info, warn};
use uuid::Uuid;

use crate::schedules::AWAITING_CONCURRENCY_SLOT;
use crate::write::Plan;
use crate::{Outcome, Service, ServiceError};

/// The deployment slot's lease when `concurrency_options.grace_period_seconds` is not set:
/// Prefect's `PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION` default.
pub const DEFAULT_LEASE_SECONDS: u32 = 300;

/// Prefect's message (and reject reason) when a deployment's limit is reached.
pub const DEPLOYMENT_LIMIT_REACHED: &str = "Deployment concurrency limit reached.";

/// The counter of a work pool's active runs.
pub fn pool_counter(pool_id: Uuid) -> String {
    format!("slots:work_pool:{pool_id}")
}

/// The counter of a work queue's active runs.
pub fn queue_counter(queue_id: Uuid) -> String {
    format!("slots:work_queue:{queue_id}")
}

/// The counter of a deployment's active runs.
pub fn deployment_counter(deployment_id: Uuid) -> String {
    format!("slots:deployment:{deployment_id}")
}

fn is_deployment_counter(name: &str) -> bool {
    name.starts_with("slots:deployment:")
}

/// Whether a run in `state_type` takes its slots (PENDING, RUNNING, CANCELLING).
pub fn is_active(state_type: Option<StateType>) -> bool {
    matches!(
        state_type,
        Some(StateType::Pending | StateType::Running | StateType::Cancelling)
    )
}

/// Whether a change to `state_type` may have given slots back (a final or PAUSED state), so
/// that the runs waiting for one should be tried.
pub fn frees_slots(state_type: Option<StateType>) -> bool {
    state_type.is_some_and(|t| t.is_terminal() || t == StateType::Paused)
}

/// How many waiting runs one freed slot makes the submitter try at most (the due runs it
/// reads; the reconciler's tick tries the rest).
pub const WAITING_BATCH: usize = 500;

/// Prefect's `ConcurrencyLimitStrategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CollisionStrategy {
    /// The run waits for a slot (`AwaitingConcurrencySlot`).
    #[default]
    Enqueue,
    /// The run ends CANCELLED.
    CancelNew,
}

/// A deployment's `concurrency_options` (Prefect's `ConcurrencyOptions`), parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConcurrencyOptions {
    /// `collision_strategy`.
    pub collision_strategy: CollisionStrategy,
    /// `grace_period_seconds` (60–86400), the deployment slot's lease.
    pub grace_period_seconds: Option<u32>,
}

/// Parses a deployment's `concurrency_options` as Prefect's `ConcurrencyOptions` does
/// (`null` or absent: ENQUEUE, the default lease).
///
/// # Errors
/// A message naming the field: `concurrency_options.collision_strategy: Input should be
/// 'ENQUEUE' or 'CANCEL_NEW'`, a missing `collision_strategy`, a `grace_period_seconds`
/// outside 60–86400, or an unknown field.
pub fn parse_concurrency_options(options: Option<&Value>) -> Result<ConcurrencyOptions, String> {
    let Some(options) = options.filter(|v| !v.is_null()) else {
        return Ok(ConcurrencyOptions::default());
    };
    let Value::Object(map) = options else {
        return Err("concurrency_options: Input should be a valid dictionary".into());
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "collision_strategy" | "grace_period_seconds"))
    {
        return Err(format!(
            "concurrency_options.{unknown}: Extra inputs are not permitted"
        ));
    }
    let collision_strategy = match map.get("collision_strategy") {
        None => return Err("concurrency_options.collision_strategy: Field required".into()),
        Some(Value::String(s)) if s == "ENQUEUE" => CollisionStrategy::Enqueue,
        Some(Value::String(s)) if s == "CANCEL_NEW" => CollisionStrategy::CancelNew,
        Some(_) => {
            return Err(
                "concurrency_options.collision_strategy: Input should be 'ENQUEUE' or 'CANCEL_NEW'"
                    .into(),
            );
        }
    };
    let grace_period_seconds = match map.get("grace_period_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n @ 60..=86_400) => Some(n as u32),
            _ => {
                return Err(
                    "concurrency_options.grace_period_seconds: must be an integer from 60 to 86400"
                        .into(),
                );
            }
        },
    };
    Ok(ConcurrencyOptions {
        collision_strategy,
        grace_period_seconds,
    })
}

/// The limits a claim is checked against: each counter with its limit (`None`: counted,
/// not limited).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotLimits {
    /// `(counter, limit, what)`: pool, queue, deployment, in that order; `what` names it
    /// for the waiting run's message (`Work pool 'p'`).
    pub counters: Vec<(String, Option<i64>, String)>,
    /// The deployment's options (default without a deployment).
    pub deployment_options: ConcurrencyOptions,
}

impl SlotLimits {
    /// The limit and description of `counter`.
    pub fn of(&self, counter: &str) -> Option<(Option<i64>, &str)> {
        self.counters
            .iter()
            .find(|(c, _, _)| c == counter)
            .map(|(_, l, w)| (*l, w.as_str()))
    }
}

/// The limits of a run of `pool` in `queue` (none: a queue deleted since) of `deployment`:
/// the pool's, the queue's and the deployment's counters with their `concurrency_limit`s.
/// A deployment's `concurrency_options` that do not parse (the API refuses them; a stored
/// deployment from before) count as the default (ENQUEUE, the default lease).
pub fn limits_for(
    pool: &WorkPool,
    queue: Option<&WorkQueue>,
    deployment: Option<&Deployment>,
) -> SlotLimits {
    let mut counters = vec![(
        pool_counter(pool.id),
        pool.concurrency_limit,
        format!("Work pool '{}'", pool.name),
    )];
    if let Some(q) = queue {
        counters.push((
            queue_counter(q.id),
            q.concurrency_limit,
            format!("Work queue '{}'", q.name),
        ));
    }
    let mut deployment_options = ConcurrencyOptions::default();
    if let Some(d) = deployment {
        counters.push((
            deployment_counter(d.id),
            d.concurrency_limit,
            format!("Deployment '{}'", d.name),
        ));
        deployment_options =
            parse_concurrency_options(d.concurrency_options.as_ref()).unwrap_or_default();
    }
    SlotLimits {
        counters,
        deployment_options,
    }
}

/// The counter changes of a claim of `run` (SCHEDULED → PENDING) under `limits`, applied to
/// `next` (the run as it will be written): a bounded increment of every counter the run
/// does not hold yet (a run claimed again after a lost submission, or an in-process retry
/// resubmitted, holds them already), the slots recorded as held, the deployment lease set.
pub fn claim(next: &mut FlowRun, limits: &SlotLimits, now: DateTime<Utc>) -> Vec<CounterChange> {
    let slots = &mut next.concurrency_slots;
    let mut changes = Vec::new();
    for (counter, limit, _) in &limits.counters {
        if !slots.counters.contains(counter) {
            slots.counters.push(counter.clone());
        }
        if !slots.held.contains(counter) {
            changes.push(CounterChange::increment(counter.clone(), 1, *limit));
            slots.held.push(counter.clone());
        }
    }
    if slots.counters.iter().any(|c| is_deployment_counter(c)) {
        slots.lease_seconds = limits
            .deployment_options
            .grace_period_seconds
            .unwrap_or(DEFAULT_LEASE_SECONDS);
    }
    renew(slots, now);
    changes
}

fn renew(slots: &mut ConcurrencySlots, now: DateTime<Utc>) {
    slots.lease_expires = slots
        .held
        .iter()
        .any(|c| is_deployment_counter(c))
        .then(|| now + chrono::Duration::seconds(i64::from(slots.lease_seconds)));
}

/// Whether `read` → `next` is Prefect's in-process retry: a RUNNING run rejected into
/// SCHEDULED `AwaitingRetry` (its engine keeps its slots while it waits to retry).
fn is_in_process_retry(read: &FlowRun, next: &FlowRun) -> bool {
    read.state_type == Some(StateType::Running)
        && next.state_type == Some(StateType::Scheduled)
        && next.state_name.as_deref() == Some("AwaitingRetry")
}

/// The counter changes of any other write of a run (`read` → `next`), applied to `next`:
/// leaving the active set gives every held slot back; coming back into it without a claim
/// takes the recorded slots again (unbounded); staying in it renews the deployment lease.
/// Nothing for a run that was never claimed with slots.
pub fn transition(read: &FlowRun, next: &mut FlowRun, now: DateTime<Utc>) -> Vec<CounterChange> {
    if next.concurrency_slots.counters.is_empty() {
        return Vec::new();
    }
    let active = is_active(next.state_type);
    let was_active = is_active(read.state_type);
    let retry = is_in_process_retry(read, next);
    let slots = &mut next.concurrency_slots;
    let changes = if !active && !slots.held.is_empty() && !retry {
        slots.lease_expires = None;
        std::mem::take(&mut slots.held)
            .into_iter()
            .map(|c| CounterChange::decrement(c, 1))
            .collect()
    } else if active && !was_active && slots.held.is_empty() {
        slots.held = slots.counters.clone();
        slots
            .held
            .iter()
            .map(|c| CounterChange::increment(c.clone(), 1, None))
            .collect()
    } else {
        Vec::new()
    };
    if active {
        // Every write of an active run renews the lease (never shortens it).
        let before = slots.lease_expires;
        renew(slots, now);
        if let (Some(b), Some(a)) = (before, slots.lease_expires) {
            slots.lease_expires = Some(a.max(b));
        }
    }
    changes
}

/// The changes that give every slot `run` holds back (a run about to be deleted), applied
/// to `next`.
pub fn give_back(next: &mut FlowRun) -> Vec<CounterChange> {
    let slots = &mut next.concurrency_slots;
    slots.lease_expires = None;
    std::mem::take(&mut slots.held)
        .into_iter()
        .map(|c| CounterChange::decrement(c, 1))
        .collect()
}

/// The changes that give an expired deployment lease's slot back (`None`: the run holds no
/// deployment slot, or its lease has not expired at `now`), applied to `next`.
pub fn expire_lease(next: &mut FlowRun, now: DateTime<Utc>) -> Option<Vec<CounterChange>> {
    let slots = &mut next.concurrency_slots;
    if slots.lease_expires.is_none_or(|at| at > now) {
        return None;
    }
    let (expired, kept): (Vec<String>, Vec<String>) = std::mem::take(&mut slots.held)
        .into_iter()
        .partition(|c| is_deployment_counter(c));
    slots.held = kept;
    slots.lease_expires = None;
    Some(
        expired
            .into_iter()
            .map(|c| CounterChange::decrement(c, 1))
            .collect(),
    )
}

/// Whether the deployment lease of `run` should be renewed at `now` (less than half of it
/// is left), so that a running job's lease is written at most twice per lease duration.
pub fn lease_needs_renewal(run: &FlowRun, now: DateTime<Utc>) -> bool {
    let slots = &run.concurrency_slots;
    slots
        .lease_expires
        .is_some_and(|at| at - now < chrono::Duration::seconds(i64::from(slots.lease_seconds) / 2))
}

/// Renews the deployment lease of `next` from `now`.
pub fn renew_lease(next: &mut FlowRun, now: DateTime<Utc>) {
    renew(&mut next.concurrency_slots, now);
}

impl Service {
    /// A claim of `run` found `counter` full: the run waits (SCHEDULED,
    /// `AwaitingConcurrencySlot`, its scheduled time kept so that it goes as soon as a slot
    /// frees), or, for a deployment with `CANCEL_NEW` whose pool and queue had room, ends
    /// CANCELLED with Prefect's message. A run already waiting is not written again (its
    /// change would only come back here).
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn no_slot(
        &self,
        run: FlowRun,
        limits: &SlotLimits,
        counter: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, ServiceError> {
        let by_deployment = is_deployment_counter(counter);
        if by_deployment
            && limits.deployment_options.collision_strategy == CollisionStrategy::CancelNew
            && !self.pool_or_queue_full(limits).await?
        {
            let state =
                State::new(StateType::Cancelled, now).with_message(DEPLOYMENT_LIMIT_REACHED);
            let written = self
                .propose_if(
                    run.id,
                    state,
                    false,
                    |r| r.state_type == Some(StateType::Scheduled),
                    |_| Vec::new(),
                )
                .await?;
            return Ok(match written {
                Some(_) => Outcome::Finished(StateType::Cancelled),
                None => Outcome::LostRace,
            });
        }
        let message = if by_deployment {
            DEPLOYMENT_LIMIT_REACHED.to_owned()
        } else {
            match limits.of(counter) {
                Some((Some(limit), what)) => format!("{what} concurrency limit ({limit}) reached."),
                _ => "Concurrency limit reached.".to_owned(),
            }
        };
        let done = self
            .modify_flow_run::<_, ServiceError>(run.id, |r| {
                if r.state_type != Some(StateType::Scheduled)
                    || r.state_name.as_deref() == Some(AWAITING_CONCURRENCY_SLOT)
                {
                    return Ok(Plan::Keep(()));
                }
                let mut next = r.clone();
                let mut state = State::new(StateType::Scheduled, now).with_message(message.clone());
                state.name = AWAITING_CONCURRENCY_SLOT.into();
                state.state_details.flow_run_id = Some(r.id);
                state.state_details.scheduled_time = r.scheduled_time().or(Some(now));
                if state.timestamp <= r.state.as_ref().map_or(state.timestamp, |s| s.timestamp) {
                    state.timestamp = r.state.as_ref().map_or(now, |s| s.timestamp)
                        + chrono::Duration::microseconds(1);
                }
                apply_state(&mut next, state, now);
                Ok(Plan::write(next, ()))
            })
            .await?;
        if done.written.is_some() {
            info!(flow_run_id = %run.id, work_pool = run.work_pool_name.as_deref().unwrap_or(""), counter, "flow run '{}' ({}): waiting for a concurrency slot: {message}", run.name, run.id);
        }
        Ok(Outcome::AwaitingConcurrencySlot(counter.to_owned()))
    }

    /// Whether the pool's or queue's counter of `limits` is at its limit now.
    async fn pool_or_queue_full(&self, limits: &SlotLimits) -> Result<bool, ServiceError> {
        for (counter, limit, _) in &limits.counters {
            let Some(limit) = limit else { continue };
            if is_deployment_counter(counter) {
                continue;
            }
            if self.store().read_counter(counter).await? >= *limit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Submits the due runs waiting for a slot (`AwaitingConcurrencySlot`) of the pool or
    /// deployment of `freed` (a run that gave its slots back), higher-priority queues first,
    /// oldest first within a queue; stops at the first run its pool has no slot for (the
    /// rest of the pool's runs would find none either). Returns how many were submitted
    /// (or finished: CANCEL_NEW).
    ///
    /// # Errors
    /// Store failures reading the due runs; a failed submission is logged and left to the
    /// reconciler.
    pub async fn submit_waiting(
        &self,
        freed: &FlowRun,
        now: DateTime<Utc>,
    ) -> Result<usize, ServiceError> {
        if freed.work_pool_name.is_none() && freed.deployment_id.is_none() {
            return Ok(0);
        }
        // Point reads first: without a limit on its pool, queue or deployment, no run can be
        // waiting behind this one (a run left waiting by a limit removed since is submitted
        // by the reconciler's tick), and the due runs are not read.
        if !self.is_limited(freed).await? {
            return Ok(0);
        }
        let waiting: Vec<FlowRun> = self
            .store()
            .list_due_flow_runs(now, WAITING_BATCH)
            .await?
            .into_iter()
            .filter(|r| {
                r.id != freed.id
                    && r.state_name.as_deref() == Some(AWAITING_CONCURRENCY_SLOT)
                    && ((r.work_pool_name.is_some() && r.work_pool_name == freed.work_pool_name)
                        || (r.deployment_id.is_some() && r.deployment_id == freed.deployment_id))
            })
            .collect();
        let mut started = 0;
        for run in self.by_queue_priority(waiting).await? {
            let id = run.id;
            match self.submit(run, now).await {
                Ok(Outcome::Submitted(_) | Outcome::Finished(_)) => started += 1,
                Ok(Outcome::AwaitingConcurrencySlot(c)) if c.starts_with("slots:work_pool:") => {
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(flow_run_id = %id, error = %e, "submitting a run waiting for a slot failed; the reconciler retries it");
                }
            }
        }
        Ok(started)
    }

    /// Whether the pool, queue or deployment of `run` has a `concurrency_limit`.
    async fn is_limited(&self, run: &FlowRun) -> Result<bool, ServiceError> {
        if let Some(d) = self.deployment_of(run).await? {
            if d.concurrency_limit.is_some() {
                return Ok(true);
            }
        }
        let Some(pool) = self.pool_of(run).await? else {
            return Ok(false);
        };
        if pool.concurrency_limit.is_some() {
            return Ok(true);
        }
        Ok(self
            .queue_of_run(run, &pool)
            .await?
            .is_some_and(|q| q.concurrency_limit.is_some()))
    }

    /// [`Service::submit_waiting`] after the change of run `id` (read first; a deleted run
    /// frees nothing here).
    ///
    /// # Errors
    /// Store failures.
    pub async fn submit_waiting_after(&self, id: Uuid) -> Result<Outcome, ServiceError> {
        let run = match self.store().read_flow_run(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Ok(Outcome::Skipped("flow run deleted".into())),
            Err(e) => return Err(e.into()),
        };
        let started = self.submit_waiting(&run, Utc::now()).await?;
        Ok(Outcome::Skipped(format!(
            "{started} waiting runs submitted"
        )))
    }

    /// Gives the deployment slot of an active `run` back when its lease expired at `now`
    /// (its holder stopped renewing it), and submits the runs waiting for it. `true` when
    /// a slot was given back.
    ///
    /// # Errors
    /// Store failures.
    pub async fn expire_deployment_lease(
        &self,
        run: &FlowRun,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        if run
            .concurrency_slots
            .lease_expires
            .is_none_or(|at| at > now)
        {
            return Ok(false);
        }
        let done = self
            .modify_flow_run::<_, ServiceError>(run.id, |r| {
                let mut next = r.clone();
                match expire_lease(&mut next, now) {
                    Some(counters) if !counters.is_empty() => Ok(Plan::Write {
                        run: Box::new(next),
                        counters,
                        answer: true,
                    }),
                    _ => Ok(Plan::Keep(false)),
                }
            })
            .await?;
        if !done.answer {
            return Ok(false);
        }
        warn!(flow_run_id = %run.id, "flow run '{}' ({}): its deployment concurrency slot's lease expired (not renewed for {} s); the slot was given back", run.name, run.id, run.concurrency_slots.lease_seconds);
        self.submit_waiting(run, now).await?;
        Ok(true)
    }

    /// Renews the deployment slot lease of `run` (its job is pending or running) when less
    /// than half of it is left.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn renew_deployment_lease(
        &self,
        run: &FlowRun,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        if !lease_needs_renewal(run, now) {
            return Ok(());
        }
        self.modify_flow_run::<_, ServiceError>(run.id, |r| {
            if !is_active(r.state_type) || !lease_needs_renewal(r, now) {
                return Ok(Plan::Keep(()));
            }
            let mut next = r.clone();
            renew_lease(&mut next, now);
            Ok(Plan::write(next, ()))
        })
        .await?;
        Ok(())
    }

    /// Gives back the slots run `id` holds (before it is deleted: a deleted active run must
    /// not keep its slots forever). Nothing for a run that holds none, or is gone.
    ///
    /// # Errors
    /// Store failures, [`crate::KeptChanging`].
    pub async fn give_back_slots(&self, id: Uuid) -> Result<(), crate::UseCaseError> {
        let done = self
            .modify_flow_run::<_, crate::UseCaseError>(id, |r| {
                if r.concurrency_slots.held.is_empty() {
                    return Ok(Plan::Keep(()));
                }
                let mut next = r.clone();
                let counters = give_back(&mut next);
                Ok(Plan::Write {
                    run: Box::new(next),
                    counters,
                    answer: (),
                })
            })
            .await;
        match done {
            Ok(_) | Err(crate::UseCaseError::Store(StoreError::NotFound(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushpool_core::orchestration::apply_state;
    use pushpool_core::state::State;
    use serde_json::json;

    fn run_in(t: StateType, name: Option<&str>) -> FlowRun {
        let now = Utc::now();
        let mut run = FlowRun::new(Uuid::new_v4(), Uuid::new_v4(), "r".into(), now);
        let mut s = State::new(t, now);
        if let Some(n) = name {
            s.name = n.into();
        }
        apply_state(&mut run, s, now);
        run
    }

    fn limits() -> SlotLimits {
        SlotLimits {
            counters: vec![
                ("slots:work_pool:p".into(), Some(1), "Work pool 'p'".into()),
                ("slots:deployment:d".into(), None, "Deployment 'd'".into()),
            ],
            deployment_options: ConcurrencyOptions::default(),
        }
    }

    #[test]
    fn a_claim_takes_each_slot_once_and_sets_the_lease() {
        let now = Utc::now();
        let mut next = run_in(StateType::Pending, None);
        let changes = claim(&mut next, &limits(), now);
        assert_eq!(
            changes,
            [
                CounterChange::increment("slots:work_pool:p", 1, Some(1)),
                CounterChange::increment("slots:deployment:d", 1, None)
            ]
        );
        assert_eq!(next.concurrency_slots.held, next.concurrency_slots.counters);
        assert_eq!(next.concurrency_slots.lease_seconds, 300);
        assert_eq!(
            next.concurrency_slots.lease_expires,
            Some(now + chrono::Duration::seconds(300))
        );
        // Claimed again (the same run, resubmitted): nothing more is taken.
        assert_eq!(claim(&mut next, &limits(), now), []);
    }

    #[test]
    fn leaving_the_active_set_gives_the_slots_back_but_an_in_process_retry_keeps_them() {
        let now = Utc::now();
        let mut running = run_in(StateType::Running, None);
        claim(&mut running, &limits(), now);
        let mut retry = running.clone();
        apply_state(
            &mut retry,
            {
                let mut s = State::new(StateType::Scheduled, now);
                s.name = "AwaitingRetry".into();
                s
            },
            now,
        );
        assert_eq!(transition(&running, &mut retry, now), []);
        assert_eq!(retry.concurrency_slots.held.len(), 2);

        let mut done = running.clone();
        apply_state(&mut done, State::new(StateType::Completed, now), now);
        assert_eq!(
            transition(&running, &mut done, now),
            [
                CounterChange::decrement("slots:work_pool:p", 1),
                CounterChange::decrement("slots:deployment:d", 1)
            ]
        );
        assert!(done.concurrency_slots.held.is_empty());
        assert_eq!(done.concurrency_slots.lease_expires, None);
        // A PAUSED run resumed by its engine takes its slots again.
        let mut paused = running.clone();
        apply_state(&mut paused, State::new(StateType::Paused, now), now);
        transition(&running, &mut paused, now);
        let mut resumed = paused.clone();
        apply_state(&mut resumed, State::new(StateType::Running, now), now);
        assert_eq!(
            transition(&paused, &mut resumed, now),
            [
                CounterChange::increment("slots:work_pool:p", 1, None),
                CounterChange::increment("slots:deployment:d", 1, None)
            ]
        );
    }

    #[test]
    fn an_expired_lease_gives_only_the_deployment_slot_back() {
        let now = Utc::now();
        let mut run = run_in(StateType::Running, None);
        claim(&mut run, &limits(), now);
        assert_eq!(expire_lease(&mut run.clone(), now), None);
        let later = now + chrono::Duration::seconds(301);
        assert!(lease_needs_renewal(&run, later));
        assert_eq!(
            expire_lease(&mut run, later),
            Some(vec![CounterChange::decrement("slots:deployment:d", 1)])
        );
        assert_eq!(run.concurrency_slots.held, ["slots:work_pool:p"]);
    }

    #[test]
    fn concurrency_options_are_parsed_as_prefect_does() {
        assert_eq!(
            parse_concurrency_options(Some(&json!({"collision_strategy": "CANCEL_NEW"}))),
            Ok(ConcurrencyOptions {
                collision_strategy: CollisionStrategy::CancelNew,
                grace_period_seconds: None
            })
        );
        assert_eq!(
            parse_concurrency_options(Some(
                &json!({"collision_strategy": "ENQUEUE", "grace_period_seconds": 120})
            )),
            Ok(ConcurrencyOptions {
                collision_strategy: CollisionStrategy::Enqueue,
                grace_period_seconds: Some(120)
            })
        );
        assert_eq!(
            parse_concurrency_options(Some(&json!({"collision_strategy": "CANCEL_OLD"}))),
            Err(
                "concurrency_options.collision_strategy: Input should be 'ENQUEUE' or 'CANCEL_NEW'"
                    .into()
            )
        );
        assert_eq!(
            parse_concurrency_options(Some(
                &json!({"collision_strategy": "ENQUEUE", "grace_period_seconds": 30})
            )),
            Err(
                "concurrency_options.grace_period_seconds: must be an integer from 60 to 86400"
                    .into()
            )
        );
        assert_eq!(
            parse_concurrency_options(Some(&json!({}))),
            Err("concurrency_options.collision_strategy: Field required".into())
        );
        assert_eq!(
            parse_concurrency_options(None),
            Ok(ConcurrencyOptions::default())
        );
    }
}
