//! `POST /deployments/{id}/schedule` (Prefect's `schedule_deployment`, `models.deployments.
//! schedule_runs`): makes a deployment's scheduled runs over a window on demand (a backfill
//! when the window is in the past), with the scheduler's own runs and idempotency keys
//! (`scheduled <deployment> <schedule> <date>`), so the scheduler's tick never makes a run
//! twice and calling it twice makes nothing new.
//!
//! For each active schedule (whether the deployment is paused or not, as in Prefect), the
//! dates from `start_time` on: at most `max_runs`, none after `end_time`, stopping once there
//! are at least `min_runs` and the last is at least `min_time` after `start_time`. The
//! defaults are the scheduler's settings: `start_time` now, `end_time` `start_time` + 100
//! days, `min_time` 1 hour, `min_runs` 3, `max_runs` 100.

use chrono::{DateTime, Duration, Utc};
use pushpool_core::schedule::{MAX_RUNS, MAX_SCHEDULED_TIME, MIN_RUNS, MIN_SCHEDULED_TIME};
use pushpool_store::StoreError;
use serde::Deserialize;
use uuid::Uuid;

use crate::{Service, UseCaseError};

/// The body of `POST /deployments/{id}/schedule` (every key optional).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRuns {
    /// The earliest date to schedule (default: now).
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// The latest date to schedule (default: `start_time` + 100 days).
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds after `start_time` that the runs reach at least (default 3600).
    #[serde(default)]
    pub min_time: Option<f64>,
    /// At least this many runs per schedule (default 3).
    #[serde(default)]
    pub min_runs: Option<i64>,
    /// At most this many runs per schedule (default 100).
    #[serde(default)]
    pub max_runs: Option<i64>,
}

fn count(field: &str, value: Option<i64>, default: usize) -> Result<usize, UseCaseError> {
    match value {
        None => Ok(default),
        Some(v) => usize::try_from(v).map_err(|_| {
            UseCaseError::Invalid(format!("{field}: must be greater than or equal to 0"))
        }),
    }
}

impl Service {
    /// Makes the runs `request` asks for (module docs); returns how many were new. An
    /// unknown deployment makes none (Prefect answers 200 for it too), and so does a
    /// deployment whose work pool does not exist (as the scheduler's tick).
    ///
    /// # Errors
    /// `Invalid` naming `min_runs`, `max_runs` (negative) or `min_time` (negative or past
    /// 100 years); `Store`.
    pub async fn schedule_deployment_runs(
        &self,
        id: Uuid,
        request: &ScheduleRuns,
    ) -> Result<usize, UseCaseError> {
        let min_runs = count("min_runs", request.min_runs, MIN_RUNS)?;
        let max_runs = count("max_runs", request.max_runs, MAX_RUNS)?;
        let min_time = match request.min_time {
            None => MIN_SCHEDULED_TIME,
            Some(s) if (0.0..=3.2e9).contains(&s) => Duration::microseconds((s * 1e6) as i64),
            Some(s) => {
                return Err(UseCaseError::Invalid(format!(
                    "min_time: {s} seconds is out of range (0 to 100 years)"
                )));
            }
        };
        let now = Utc::now();
        let start = request.start_time.unwrap_or(now);
        let end = request.end_time.unwrap_or(start + MAX_SCHEDULED_TIME);
        let deployment = match self.store().read_deployment(id).await {
            Ok(d) => d,
            Err(StoreError::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let pool = match &deployment.work_pool_name {
            None => None,
            Some(name) => match self.store().read_work_pool(name).await {
                Ok(p) => Some(p),
                // As the scheduler's tick: no runs for a pool that does not exist.
                Err(StoreError::NotFound(_)) => return Ok(0),
                Err(e) => return Err(e.into()),
            },
        };
        let mut created = 0;
        for schedule in deployment.schedules.iter().filter(|s| s.active) {
            let mut dates = Vec::new();
            for date in schedule.schedule.dates(max_runs, start, Some(end)) {
                let far = date.with_timezone(&Utc) >= start + min_time;
                dates.push(date);
                if dates.len() >= min_runs && far {
                    break;
                }
            }
            for date in &dates {
                let run = crate::schedules::scheduled_run(
                    &deployment,
                    schedule,
                    pool.as_ref(),
                    date,
                    now,
                );
                let (run, new) = self.store().create_flow_run(&run).await?;
                if new {
                    created += 1;
                    let at = date.with_timezone(&Utc);
                    if self.wants_timer(at, Utc::now()) {
                        self.arm(run.id, at).await;
                    }
                }
            }
        }
        Ok(created)
    }
}
