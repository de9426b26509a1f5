//! Deployment schedules: the schedule sub-resource (`/deployments/{id}/schedules`), pause and
//! resume, the scheduler tick that materialises schedules into SCHEDULED runs ahead of time,
//! and the late-runs marking, each with Prefect 3.9.1's rules (`models/deployments.py`,
//! `services/scheduler.py`, `services/late_runs.py`).
//!
//! **The scheduler** ([`Service::schedule_deployments`], run by the reconciler: the embedded
//! loop and the AWS reconciler function) reads every deployment once (their schedules are
//! part of the deployment) and every [`ScheduleMark`] once. For each active schedule of a
//! deployment that is not paused, it makes the runs of the slots in Prefect's horizon
//! ([`Schedule::horizon`]: at least 3 runs and 1 hour, at most 100 runs and 100 days ahead)
//! when the schedule's mark says it needs runs (or the deployment or schedule changed since
//! the mark). Each run is `auto_scheduled`, tagged `auto-scheduled`, has the schedule's
//! `parameters` over the deployment's and Prefect's idempotency key `scheduled
//! <deployment id> <schedule id> <date>`: two ticks, two reconcilers or a redelivered event
//! never make two runs for one slot (the store keeps one run per flow and key).
//!
//! **Replacing runs when schedules change**, as Prefect's `_delete_scheduled_runs`: a
//! deployment update, a schedule update or an upsert deletes the deployment's
//! *auto-scheduled* runs that are SCHEDULED, not `AwaitingConcurrencySlot`, never ran
//! (`run_count` 0) and are due in the future; the next tick makes the new ones. Deleting a
//! schedule or pausing the deployment deletes its auto-scheduled ones whatever their time;
//! deleting the deployment deletes all its scheduled runs, manual ones too. Manual runs,
//! Late runs (in the past) and AwaitingRetry runs (they ran) stay.
//!
//! **Late runs**: a run whose state is SCHEDULED and named `Scheduled` (so neither
//! `AwaitingConcurrencySlot`, `AwaitingRetry` nor already `Late`) and whose
//! `next_scheduled_start_time` is more than [`LATE_AFTER`] past is proposed `Late`
//! (orchestrated: only SCHEDULED runs can be marked late).
//!
//! Where the task is silent: schedules live inside the deployment document (one read per
//! deployment); a user deleting an auto-scheduled run by hand does not get it back until
//! the schedule or deployment changes (Prefect's scheduler would make it again on a tick
//! when fewer than 3 runs remain); the runs are deleted one by one after listing them, so a
//! run claimed in that instant may be deleted too (Prefect's single `DELETE ... WHERE` has
//! no such window).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use pushpool_core::filter::{FlowRunFilter, TimeRange};
use pushpool_core::model::{Deployment, FlowRun, Object, WorkPool};
use pushpool_core::orchestration::apply_state;
use pushpool_core::schedule::{
    DeploymentSchedule, MAX_SCHEDULED_TIME, MIN_RUNS, MIN_SCHEDULED_TIME, Schedule, idempotency_key,
};
use pushpool_core::state::{State, StateType};
use pushpool_store::{FlowRunQuery, Page, ScheduleMark, StoreError};
use serde::Deserialize;
use serde_json::Value;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{Service, ServiceError, UseCaseError};

/// A SCHEDULED run this long past its time is marked Late
/// (`PREFECT_API_SERVICES_LATE_RUNS_AFTER_SECONDS`, default 15 s).
pub const LATE_AFTER: Duration = Duration::seconds(15);

/// How many runs one late-runs pass looks at (Prefect's `batch_size`).
pub const LATE_BATCH: usize = 400;

/// The state name of a run waiting for a concurrency slot: never deleted by a schedule
/// change, never marked Late.
pub const AWAITING_CONCURRENCY_SLOT: &str = "AwaitingConcurrencySlot";

fn yes() -> bool {
    true
}

/// Prefect's `DeploymentScheduleCreate`, in a deployment's `schedules` or in
/// `POST /deployments/{id}/schedules`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentScheduleCreate {
    /// The schedule object (interval, cron or rrule).
    pub schedule: Value,
    /// Active (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// Positive when given (stored; see [`DeploymentSchedule`]).
    #[serde(default)]
    pub max_scheduled_runs: Option<i64>,
    /// Parameters over the deployment's.
    #[serde(default)]
    pub parameters: Option<Object>,
    /// Unique within the deployment.
    #[serde(default)]
    pub slug: Option<String>,
    /// The slug this schedule renames (a deploy-time directive, not stored).
    #[serde(default)]
    pub replaces: Option<String>,
}

/// Prefect's `DeploymentScheduleUpdate` (`PATCH /deployments/{id}/schedules/{schedule_id}`):
/// each field given replaces the schedule's (`null` leaves it, as Prefect's
/// `exclude_none`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentScheduleUpdate {
    /// Active.
    #[serde(default)]
    pub active: Option<bool>,
    /// The schedule object.
    #[serde(default)]
    pub schedule: Option<Value>,
    /// Positive.
    #[serde(default)]
    pub max_scheduled_runs: Option<i64>,
    /// Parameters (replace the schedule's).
    #[serde(default)]
    pub parameters: Option<Object>,
    /// Slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// Not stored.
    #[serde(default)]
    pub replaces: Option<String>,
}

fn check_max_runs(field: &str, value: Option<i64>) -> Result<(), UseCaseError> {
    match value {
        Some(v) if v <= 0 => Err(UseCaseError::Invalid(format!(
            "{field}.max_scheduled_runs: Input should be greater than 0"
        ))),
        _ => Ok(()),
    }
}

fn parse_schedule(
    field: &str,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Schedule, UseCaseError> {
    Schedule::parse_at(value, now)
        .map_err(|e| UseCaseError::Invalid(format!("{field}.{}: {}", e.field, e.message)))
}

impl DeploymentScheduleCreate {
    /// The schedule with a new id, for `deployment_id`, created at `now`; `field` names it
    /// in errors (`schedules[0]`).
    ///
    /// # Errors
    /// `Invalid` naming the field (`schedules[0].schedule.cron: ...`).
    pub fn into_schedule(
        self,
        field: &str,
        deployment_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<DeploymentSchedule, UseCaseError> {
        check_max_runs(field, self.max_scheduled_runs)?;
        Ok(DeploymentSchedule {
            id: Uuid::now_v7(),
            created: now,
            updated: now,
            deployment_id: Some(deployment_id),
            schedule: parse_schedule(field, &self.schedule, now)?,
            active: self.active,
            max_scheduled_runs: self.max_scheduled_runs,
            parameters: self.parameters.unwrap_or_default(),
            slug: self.slug,
        })
    }
}

/// The deployment's schedules for a create or an upsert: each given schedule, keeping the
/// id and creation time of an existing schedule with the same slug (or the slug it
/// `replaces`), as Prefect's slug-targeted updates do.
///
/// # Errors
/// `Invalid` naming the field; `Conflict` for a slug given twice.
pub fn schedules_for(
    given: Vec<DeploymentScheduleCreate>,
    existing: &[DeploymentSchedule],
    deployment_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<DeploymentSchedule>, UseCaseError> {
    let mut out: Vec<DeploymentSchedule> = Vec::with_capacity(given.len());
    for (i, create) in given.into_iter().enumerate() {
        let target = create.replaces.clone().or_else(|| create.slug.clone());
        let mut schedule = create.into_schedule(&format!("schedules[{i}]"), deployment_id, now)?;
        // Prefect stamps each schedule row as it is built, so the later schedules of one
        // request are the newer ones (its responses list them first, the CLI sorts by
        // `created`): schedule i is stamped `now` + i µs.
        let stamped = now + chrono::Duration::microseconds(i64::try_from(i).unwrap_or(0));
        schedule.created = stamped;
        schedule.updated = stamped;
        if let Some(slug) = &schedule.slug {
            if out.iter().any(|s| s.slug.as_deref() == Some(slug)) {
                return Err(StoreError::Conflict(
                    "Schedule slugs must be unique within a deployment.".into(),
                )
                .into());
            }
        }
        if let Some(old) = target
            .as_deref()
            .and_then(|t| existing.iter().find(|s| s.slug.as_deref() == Some(t)))
        {
            schedule.id = old.id;
            schedule.created = old.created;
        }
        out.push(schedule);
    }
    Ok(out)
}

fn unprocessable(detail: impl Into<String>) -> UseCaseError {
    UseCaseError::Invalid(detail.into())
}

fn apply_update(
    field: &str,
    target: &mut DeploymentSchedule,
    update: DeploymentScheduleUpdate,
    now: DateTime<Utc>,
) -> Result<(), UseCaseError> {
    check_max_runs(field, update.max_scheduled_runs)?;
    if let Some(v) = &update.schedule {
        target.schedule = parse_schedule(&format!("{field}.schedule"), v, now)?;
    }
    if let Some(v) = update.active {
        target.active = v;
    }
    if let Some(v) = update.max_scheduled_runs {
        target.max_scheduled_runs = Some(v);
    }
    if let Some(v) = update.parameters {
        target.parameters = v;
    }
    if let Some(v) = update.slug {
        target.slug = Some(v);
    }
    target.updated = now;
    Ok(())
}

/// The deployment's schedules after a `PATCH /deployments/{id}` with `schedules`, by
/// Prefect's rules (`api/deployments.py`, `update_deployment`):
/// - when every existing schedule and every given one has a slug, schedules are matched by
///   slug (or by the slug they `replaces`): a match is updated in place (same id), a given
///   schedule without a match is created, and existing schedules not named are kept;
/// - when the existing schedules all have slugs but a given one has none: 422;
/// - otherwise the schedules are replaced by the given ones (new ids).
///
/// # Errors
/// `Invalid` with Prefect's details, or naming the field (`schedules[0].schedule.cron`).
pub fn patched_schedules(
    given: Vec<DeploymentScheduleUpdate>,
    existing: &[DeploymentSchedule],
    deployment_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<DeploymentSchedule>, UseCaseError> {
    let no_schedule = || {
        unprocessable("Unable to create new deployment schedules without a schedule configuration.")
    };
    let all_given = given.iter().all(|s| s.slug.is_some());
    let all_existing = !existing.is_empty() && existing.iter().all(|s| s.slug.is_some());
    if all_existing && !all_given {
        return Err(unprocessable(
            "Please provide a slug for each schedule in your request to ensure schedules are updated correctly.",
        ));
    }
    if !all_existing {
        let mut creates = Vec::with_capacity(given.len());
        for g in given {
            creates.push(DeploymentScheduleCreate {
                schedule: g.schedule.ok_or_else(no_schedule)?,
                active: g.active.unwrap_or(true),
                max_scheduled_runs: g.max_scheduled_runs,
                parameters: g.parameters,
                slug: g.slug,
                replaces: None,
            });
        }
        return schedules_for(creates, &[], deployment_id, now);
    }
    let current: Vec<String> = existing.iter().filter_map(|s| s.slug.clone()).collect();
    let mut replaced: Vec<&str> = Vec::new();
    for g in &given {
        if let Some(r) = g.replaces.as_deref() {
            if replaced.contains(&r) {
                return Err(unprocessable(format!(
                    "Multiple schedules have 'replaces' targeting the same slug: {r}"
                )));
            }
            replaced.push(r);
        }
    }
    for g in &given {
        if let (Some(slug), Some(r)) = (g.slug.as_deref(), g.replaces.as_deref()) {
            if current.iter().any(|c| c == slug) && !replaced.contains(&slug) {
                return Err(unprocessable(format!(
                    "Cannot rename schedule from '{r}' to '{slug}': a schedule with slug '{slug}' already exists."
                )));
            }
        }
    }
    let mut out = existing.to_vec();
    for (i, g) in given.into_iter().enumerate() {
        let field = format!("schedules[{i}]");
        let target = g.replaces.clone().or_else(|| g.slug.clone());
        match out
            .iter_mut()
            .find(|s| s.slug.is_some() && s.slug == target)
        {
            Some(existing) => apply_update(&field, existing, g, now)?,
            None => {
                let create = DeploymentScheduleCreate {
                    schedule: g.schedule.ok_or_else(no_schedule)?,
                    active: g.active.unwrap_or(true),
                    max_scheduled_runs: g.max_scheduled_runs,
                    parameters: g.parameters,
                    slug: g.slug,
                    replaces: None,
                };
                out.push(create.into_schedule(&field, deployment_id, now)?);
            }
        }
    }
    Ok(out)
}

/// What one scheduler tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleTick {
    /// Deployments read.
    pub deployments: usize,
    /// Active schedules of deployments that are not paused.
    pub schedules: usize,
    /// Schedules whose slots were materialised (the others were up to date).
    pub materialised: usize,
    /// Runs created (a slot whose run existed counts nothing).
    pub runs_created: usize,
}

fn not_found() -> UseCaseError {
    UseCaseError::NotFound("Deployment not found.".into())
}

/// The fingerprint a mark is valid for: the deployment's and the schedule's versions.
fn fingerprint(deployment: &Deployment, schedule: &DeploymentSchedule) -> String {
    format!(
        "{}|{}",
        deployment.updated.to_rfc3339(),
        schedule.updated.to_rfc3339()
    )
}

/// When a schedule whose horizon from `now` is `dates` needs runs again: when fewer than
/// [`MIN_RUNS`] of them remain ahead, or the last is less than [`MIN_SCHEDULED_TIME`]
/// ahead (Prefect's `_get_select_deployments_to_schedule_query`); for a sparse schedule,
/// when its next date enters the [`MAX_SCHEDULED_TIME`] horizon.
fn next_check(schedule: &Schedule, dates: &[DateTime<Utc>], now: DateTime<Utc>) -> DateTime<Utc> {
    if dates.len() >= MIN_RUNS {
        let third_last = dates[dates.len() - MIN_RUNS];
        let last = dates[dates.len() - 1];
        return third_last.min(last - MIN_SCHEDULED_TIME);
    }
    let after = dates.last().map_or(now, |d| *d + Duration::microseconds(1));
    match schedule.dates(1, after, None).first() {
        Some(d) => (d.with_timezone(&Utc) - MAX_SCHEDULED_TIME).max(now + Duration::seconds(1)),
        None => now + Duration::days(1),
    }
}

/// The auto-scheduled run of `schedule` of `deployment` at `date`, as Prefect's
/// `_generate_scheduled_flow_runs` makes it.
pub(crate) fn scheduled_run(
    deployment: &Deployment,
    schedule: &DeploymentSchedule,
    pool: Option<&WorkPool>,
    date: &DateTime<Tz>,
    now: DateTime<Utc>,
) -> FlowRun {
    let at = date.with_timezone(&Utc);
    let id = Uuid::now_v7();
    let mut run = FlowRun::new(
        id,
        deployment.flow_id,
        pushpool_core::names::flow_run_name(),
        now,
    );
    let mut parameters = deployment.parameters.clone();
    for (k, v) in &schedule.parameters {
        parameters.insert(k.clone(), v.clone());
    }
    let mut tags = vec!["auto-scheduled".to_owned()];
    tags.extend(deployment.tags.iter().cloned());
    // Prefect's `with_system_labels_for_deployment_flow_run`: the deployment's labels, then
    // the system ones.
    let mut labels = deployment.labels.clone();
    labels.insert(
        "prefect.flow.id".into(),
        Value::String(deployment.flow_id.to_string()),
    );
    labels.insert(
        "prefect.deployment.id".into(),
        Value::String(deployment.id.to_string()),
    );
    run.deployment_id = Some(deployment.id);
    run.deployment_version = deployment.version.clone();
    run.work_queue_name = deployment.work_queue_name.clone();
    run.work_queue_id = deployment.work_queue_id;
    run.parameters = parameters;
    run.infrastructure_document_id = deployment.infrastructure_document_id;
    run.idempotency_key = Some(idempotency_key(deployment.id, schedule.id, date));
    run.tags = tags;
    run.labels = labels;
    run.auto_scheduled = true;
    run.work_pool_id = pool.map(|p| p.id);
    run.work_pool_name = pool.map(|p| p.name.clone());
    run.created_by = Some(serde_json::json!({
        "id": schedule.id,
        "display_value": schedule.slug.clone().unwrap_or_else(|| schedule.schedule.type_name().to_owned()),
        "type": "SCHEDULE",
    }));
    let mut state = State::new(StateType::Scheduled, now).with_message("Flow run scheduled");
    state.state_details.scheduled_time = Some(at);
    state.state_details.flow_run_id = Some(id);
    run.expected_start_time = Some(at);
    apply_state(&mut run, state, now);
    run
}

impl Service {
    async fn deployment(&self, id: Uuid) -> Result<Deployment, UseCaseError> {
        match self.store().read_deployment(id).await {
            Ok(d) => Ok(d),
            Err(StoreError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /deployments/{id}/schedules`: the schedules, most recently updated first (as
    /// Prefect orders them).
    ///
    /// # Errors
    /// `NotFound` ("Deployment not found."); `Store`.
    pub async fn read_deployment_schedules(
        &self,
        id: Uuid,
    ) -> Result<Vec<DeploymentSchedule>, UseCaseError> {
        let mut schedules = self.deployment(id).await?.schedules;
        schedules.sort_by_key(|s| std::cmp::Reverse(s.updated));
        Ok(schedules)
    }

    /// `POST /deployments/{id}/schedules`: adds schedules; returns them.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` naming the field (`schedules[0].schedule.cron`); `Store(Conflict)`
    /// ("Schedule slugs must be unique within a deployment."); `Store`.
    pub async fn create_deployment_schedules(
        &self,
        id: Uuid,
        given: Vec<DeploymentScheduleCreate>,
    ) -> Result<Vec<DeploymentSchedule>, UseCaseError> {
        let mut deployment = self.deployment(id).await?;
        let now = Utc::now();
        let created = schedules_for(given, &[], id, now)?;
        for s in &created {
            if let Some(slug) = &s.slug {
                if deployment
                    .schedules
                    .iter()
                    .any(|e| e.slug.as_deref() == Some(slug))
                {
                    return Err(StoreError::Conflict(
                        "Schedule slugs must be unique within a deployment.".into(),
                    )
                    .into());
                }
            }
        }
        deployment.schedules.extend(created.iter().cloned());
        deployment.updated = now;
        self.store().update_deployment(&deployment).await?;
        Ok(created)
    }

    /// `PATCH /deployments/{id}/schedules/{schedule_id}`: changes the schedule, then deletes
    /// the deployment's future auto-scheduled runs (the next tick makes the new ones).
    ///
    /// # Errors
    /// `NotFound` ("Deployment not found.", "Schedule not found."); `Invalid`; `Store`.
    pub async fn update_deployment_schedule(
        &self,
        id: Uuid,
        schedule_id: Uuid,
        update: DeploymentScheduleUpdate,
    ) -> Result<(), UseCaseError> {
        let mut deployment = self.deployment(id).await?;
        let now = Utc::now();
        check_max_runs("schedule", update.max_scheduled_runs)?;
        let parsed = match &update.schedule {
            Some(v) => Some(parse_schedule("schedule", v, now)?),
            None => None,
        };
        if let Some(slug) = &update.slug {
            if deployment
                .schedules
                .iter()
                .any(|s| s.id != schedule_id && s.slug.as_deref() == Some(slug))
            {
                return Err(StoreError::Conflict(
                    "Schedule slugs must be unique within a deployment.".into(),
                )
                .into());
            }
        }
        let Some(s) = deployment
            .schedules
            .iter_mut()
            .find(|s| s.id == schedule_id)
        else {
            return Err(UseCaseError::NotFound("Schedule not found.".into()));
        };
        if let Some(v) = update.active {
            s.active = v;
        }
        if let Some(v) = parsed {
            s.schedule = v;
        }
        if let Some(v) = update.max_scheduled_runs {
            s.max_scheduled_runs = Some(v);
        }
        if let Some(v) = update.parameters {
            s.parameters = v;
        }
        if let Some(v) = update.slug {
            s.slug = Some(v);
        }
        s.updated = now;
        deployment.updated = now;
        self.store().update_deployment(&deployment).await?;
        self.delete_scheduled_runs(id, true, true, now).await?;
        Ok(())
    }

    /// `DELETE /deployments/{id}/schedules/{schedule_id}`: removes the schedule, then deletes
    /// the deployment's auto-scheduled runs that have not started (Prefect: not only future
    /// ones).
    ///
    /// # Errors
    /// `NotFound` ("Deployment not found.", "Schedule not found."); `Store`.
    pub async fn delete_deployment_schedule(
        &self,
        id: Uuid,
        schedule_id: Uuid,
    ) -> Result<(), UseCaseError> {
        let mut deployment = self.deployment(id).await?;
        let before = deployment.schedules.len();
        deployment.schedules.retain(|s| s.id != schedule_id);
        if deployment.schedules.len() == before {
            return Err(UseCaseError::NotFound("Schedule not found.".into()));
        }
        let now = Utc::now();
        deployment.updated = now;
        self.store().update_deployment(&deployment).await?;
        self.delete_scheduled_runs(id, true, false, now).await?;
        Ok(())
    }

    /// `POST /deployments/{id}/pause_deployment`: pauses it and deletes its auto-scheduled
    /// runs that have not started.
    ///
    /// # Errors
    /// `NotFound` ("Deployment not found"); `Store`.
    pub async fn pause_deployment(&self, id: Uuid) -> Result<(), UseCaseError> {
        self.set_paused(id, true).await
    }

    /// `POST /deployments/{id}/resume_deployment`: resumes it (the next scheduler tick makes
    /// its runs).
    ///
    /// # Errors
    /// `NotFound` ("Deployment not found"); `Store`.
    pub async fn resume_deployment(&self, id: Uuid) -> Result<(), UseCaseError> {
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: Uuid, paused: bool) -> Result<(), UseCaseError> {
        let mut deployment = self
            .deployment(id)
            .await
            .map_err(|_| UseCaseError::NotFound("Deployment not found".into()))?;
        let now = Utc::now();
        deployment.paused = paused;
        deployment.updated = now;
        self.store().update_deployment(&deployment).await?;
        if paused {
            self.delete_scheduled_runs(id, true, false, now).await?;
        }
        Ok(())
    }

    /// `DELETE /deployments/{id}`: deletes its scheduled runs that have not started (manual
    /// ones too, as Prefect's `delete_deployment`), its scheduler marks, then the deployment.
    ///
    /// # Errors
    /// `Store(NotFound)` ("Deployment not found"); `Store`.
    pub async fn delete_deployment(&self, id: Uuid) -> Result<(), UseCaseError> {
        self.store().read_deployment(id).await?;
        self.delete_scheduled_runs(id, false, false, Utc::now())
            .await?;
        self.store().delete_schedule_marks(id).await?;
        self.store().delete_deployment(id).await?;
        Ok(())
    }

    /// Prefect's `_delete_scheduled_runs`: deletes the deployment's runs that are SCHEDULED,
    /// not `AwaitingConcurrencySlot` and never ran (`run_count` 0); with `auto_only`, only
    /// auto-scheduled ones; with `future_only`, only those due after `now`. Returns how many.
    ///
    /// # Errors
    /// `Store`.
    pub async fn delete_scheduled_runs(
        &self,
        deployment_id: Uuid,
        auto_only: bool,
        future_only: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut filter = FlowRunFilter::state_types(&[StateType::Scheduled]);
        if future_only {
            filter.next_scheduled_start_time = Some(TimeRange {
                before_: None,
                after_: Some(now),
            });
        }
        let query = FlowRunQuery {
            deployment_ids: Some(vec![deployment_id]),
            ..FlowRunQuery::new(filter)
        };
        let mut deleted = 0;
        for run in self.store().list_flow_runs(&query).await? {
            let doomed = run.state_type == Some(StateType::Scheduled)
                && run.state_name.as_deref() != Some(AWAITING_CONCURRENCY_SLOT)
                && run.run_count == 0
                && (!auto_only || run.auto_scheduled)
                && (!future_only || run.next_scheduled_start_time.is_some_and(|t| t > now));
            if !doomed {
                continue;
            }
            match self.store().delete_flow_run(run.id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {
                    self.disarm(run.id).await;
                    deleted += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if deleted > 0 {
            info!(deployment_id = %deployment_id, deleted, "scheduled runs deleted");
        }
        Ok(deleted)
    }

    /// One scheduler tick (see the module docs): reads every deployment and every mark once,
    /// and makes the runs of each schedule that needs them. A schedule whose runs could not
    /// all be made keeps its old mark and is tried again on the next tick.
    ///
    /// # Errors
    /// Store failures of the two reads; a failing run creation or mark write is logged and
    /// left to the next tick.
    pub async fn schedule_deployments(
        &self,
        now: DateTime<Utc>,
    ) -> Result<ScheduleTick, ServiceError> {
        let deployments = self.store().list_deployments(Page::default()).await?;
        let mut marks: HashMap<(Uuid, Uuid), ScheduleMark> = self
            .store()
            .list_schedule_marks()
            .await?
            .into_iter()
            .map(|m| ((m.deployment_id, m.schedule_id), m))
            .collect();
        let mut tick = ScheduleTick {
            deployments: deployments.len(),
            ..ScheduleTick::default()
        };
        let live: HashSet<Uuid> = deployments.iter().map(|d| d.id).collect();
        let gone: HashSet<Uuid> = marks
            .keys()
            .map(|(d, _)| *d)
            .filter(|d| !live.contains(d))
            .collect();
        for d in gone {
            if let Err(e) = self.store().delete_schedule_marks(d).await {
                warn!(deployment_id = %d, error = %e, "deleting the marks of a deleted deployment failed");
            }
        }
        let mut pools: HashMap<String, Option<WorkPool>> = HashMap::new();
        for deployment in deployments.iter().filter(|d| !d.paused) {
            for schedule in deployment.schedules.iter().filter(|s| s.active) {
                tick.schedules += 1;
                let fp = fingerprint(deployment, schedule);
                let mark = marks
                    .remove(&(deployment.id, schedule.id))
                    .filter(|m| m.fingerprint == fp);
                if mark.as_ref().is_some_and(|m| m.next_check > now) {
                    continue;
                }
                let pool = match &deployment.work_pool_name {
                    None => None,
                    Some(name) => {
                        if !pools.contains_key(name) {
                            let found = match self.store().read_work_pool(name).await {
                                Ok(p) => Some(p),
                                Err(StoreError::NotFound(_)) => None,
                                Err(e) => return Err(e.into()),
                            };
                            pools.insert(name.clone(), found);
                        }
                        match pools.get(name).cloned().flatten() {
                            Some(p) => Some(p),
                            None => {
                                warn!(deployment_id = %deployment.id, work_pool = %name, "the deployment's work pool does not exist; its schedules make no runs");
                                continue;
                            }
                        }
                    }
                };
                tick.materialised += 1;
                match self
                    .materialise(deployment, schedule, pool.as_ref(), mark.as_ref(), &fp, now)
                    .await
                {
                    Ok(created) => tick.runs_created += created,
                    Err(e) => {
                        warn!(deployment_id = %deployment.id, schedule_id = %schedule.id, error = %e, "scheduling runs failed; the next tick tries again");
                    }
                }
            }
        }
        if tick.runs_created > 0 {
            info!(
                runs = tick.runs_created,
                schedules = tick.materialised,
                "scheduler: runs created"
            );
        }
        Ok(tick)
    }

    /// Makes the runs of one schedule's horizon (those after the mark's `last` when the mark
    /// is still valid) and writes its new mark. Returns the runs created.
    async fn materialise(
        &self,
        deployment: &Deployment,
        schedule: &DeploymentSchedule,
        pool: Option<&WorkPool>,
        mark: Option<&ScheduleMark>,
        fp: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let dates = schedule.schedule.horizon(now);
        let done_until = mark.and_then(|m| m.last);
        let mut created = 0;
        let mut last = done_until;
        for date in &dates {
            let at = date.with_timezone(&Utc);
            if done_until.is_some_and(|l| at <= l) {
                continue;
            }
            let run = scheduled_run(deployment, schedule, pool, date, now);
            let (run, new) = self.store().create_flow_run(&run).await?;
            if new {
                created += 1;
                if self.wants_timer(at, Utc::now()) {
                    self.arm(run.id, at).await;
                }
            }
            last = Some(last.map_or(at, |l| l.max(at)));
        }
        let utc: Vec<DateTime<Utc>> = dates.iter().map(|d| d.with_timezone(&Utc)).collect();
        self.store()
            .put_schedule_mark(&ScheduleMark {
                deployment_id: deployment.id,
                schedule_id: schedule.id,
                fingerprint: fp.to_owned(),
                last,
                next_check: next_check(&schedule.schedule, &utc, now),
            })
            .await?;
        Ok(created)
    }

    /// Prefect's late-runs service: proposes `Late` (keeping the scheduled time) for each
    /// SCHEDULED run named `Scheduled` more than [`LATE_AFTER`] past its time, at most
    /// [`LATE_BATCH`] per pass. Returns how many were marked.
    ///
    /// # Errors
    /// Store failures of the scan; a failing proposal is logged.
    pub async fn mark_late_runs(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let before = now - LATE_AFTER;
        let mut marked = 0;
        // Only runs named `Scheduled` are read (Prefect's query), so runs already Late or
        // waiting on purpose never crowd out the ones to mark.
        let mut filter = FlowRunFilter::state_types(&[StateType::Scheduled]);
        if let Some(state) = filter.state.as_mut() {
            state.name = Some(pushpool_core::filter::AnyNotAny {
                any_: Some(vec!["Scheduled".to_owned()]),
                not_any_: None,
            });
        }
        filter.next_scheduled_start_time = Some(TimeRange {
            before_: Some(before),
            after_: None,
        });
        let query = FlowRunQuery {
            sort: pushpool_core::filter::FlowRunSort::NextScheduledStartTimeAsc,
            page: Page {
                offset: 0,
                limit: Some(LATE_BATCH),
            },
            ..FlowRunQuery::new(filter)
        };
        for run in self.store().list_flow_runs(&query).await? {
            if run.state_name.as_deref() != Some("Scheduled") {
                continue;
            }
            let Some(at) = run.next_scheduled_start_time.filter(|t| *t <= before) else {
                continue;
            };
            let mut late = State::new(StateType::Scheduled, now);
            late.name = "Late".into();
            late.state_details.scheduled_time = Some(at);
            let still = move |r: &FlowRun| {
                r.state_type == Some(StateType::Scheduled)
                    && r.state_name.as_deref() == Some("Scheduled")
                    && r.next_scheduled_start_time.is_some_and(|t| t <= before)
            };
            match self
                .propose_if(run.id, late, false, still, |_| Vec::new())
                .await
            {
                Ok(Some(_)) => marked += 1,
                Ok(None) => {}
                Err(e) => warn!(flow_run_id = %run.id, error = %e, "marking a run late failed"),
            }
        }
        Ok(marked)
    }
}
