//! The AWS [`DueTimer`]: one EventBridge Scheduler **one-time schedule** per flow run due
//! before the reconciler's next tick, whose target is this reconciler function with a
//! [`RUN_DUE_DETAIL_TYPE`] event naming the run.
//!
//! - **Idempotent**: the schedule is named after the run (`pushpool-run-<id>`), so arming a
//!   run twice (the tick and the submitter, two ticks, a redelivered change) finds the
//!   existing schedule (`ConflictException` is success).
//! - **Bounded**: only runs due within the reconciler's period get one, so the account's
//!   schedule quota is never approached by the runs scheduled days ahead; each schedule
//!   deletes itself after it fires (`ActionAfterCompletion: DELETE`) and is deleted when
//!   its run is claimed or deleted first.
//! - **Precision**: `at()` expressions have whole seconds, so the time is rounded up to the
//!   next second (a wake-up is never early); EventBridge Scheduler then invokes the target
//!   with the flexible time window off. The expected lateness (`infra/README.md`) is that
//!   rounding plus the service's invocation delay and the function's start.
//!
//! SDK types stay in this module: errors become [`TimerError`]s.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use chrono::{DateTime, DurationRound, Utc};
use pushpool_service::{DueTimer, TimerError};
use uuid::Uuid;

/// The `detail-type` of the event a due timer delivers to the reconciler.
pub const RUN_DUE_DETAIL_TYPE: &str = "pushpool Flow Run Due";
/// The `source` of that event.
pub const RUN_DUE_SOURCE: &str = "pushpool.timer";

/// Where the one-time schedules go and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTarget {
    /// The schedule group (`PUSHPOOL_DUE_TIMER_GROUP`).
    pub group: String,
    /// The function to invoke (this reconciler's ARN, `PUSHPOOL_DUE_TIMER_TARGET_ARN`).
    pub target_arn: String,
    /// The role EventBridge Scheduler assumes to invoke it (`PUSHPOOL_DUE_TIMER_ROLE_ARN`).
    pub role_arn: String,
}

/// How far ahead the reconciler arms due timers: its schedule's period (1 minute) plus 10 s,
/// so that a tick that starts a little late still finds every run due before it armed.
pub const DUE_TIMER_WINDOW: std::time::Duration = std::time::Duration::from_secs(70);

impl TimerTarget {
    /// Reads `PUSHPOOL_DUE_TIMER_GROUP`, `PUSHPOOL_DUE_TIMER_TARGET_ARN` and
    /// `PUSHPOOL_DUE_TIMER_ROLE_ARN`: all three set turn due timers on, none leaves them off
    /// (runs are then submitted by the reconciler's tick, up to a minute late).
    ///
    /// # Errors
    /// [`pushpool_service::ConfigError::Missing`] naming the one missing when the others are
    /// set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, pushpool_service::ConfigError> {
        let names = [
            "PUSHPOOL_DUE_TIMER_GROUP",
            "PUSHPOOL_DUE_TIMER_TARGET_ARN",
            "PUSHPOOL_DUE_TIMER_ROLE_ARN",
        ];
        let values: Vec<Option<String>> = names
            .iter()
            .map(|n| lookup(n).filter(|v| !v.is_empty()))
            .collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(i) = values.iter().position(Option::is_none) {
            return Err(pushpool_service::ConfigError::Missing(names[i]));
        }
        let mut v = values.into_iter().flatten();
        Ok(Some(Self {
            group: v.next().unwrap_or_default(),
            target_arn: v.next().unwrap_or_default(),
            role_arn: v.next().unwrap_or_default(),
        }))
    }
}

/// EventBridge Scheduler one-time schedules.
#[derive(Debug, Clone)]
pub struct SchedulerTimer {
    client: aws_sdk_scheduler::Client,
    target: TimerTarget,
}

impl SchedulerTimer {
    /// A timer over `client` writing schedules for `target`.
    pub fn new(client: aws_sdk_scheduler::Client, target: TimerTarget) -> Self {
        Self { client, target }
    }
}

/// The schedule's name for run `id` (49 characters; the limit is 64).
pub fn schedule_name(id: Uuid) -> String {
    format!("pushpool-run-{id}")
}

/// `at(yyyy-mm-ddThh:mm:ss)` of `at` rounded up to the whole second, in UTC.
pub fn at_expression(at: DateTime<Utc>) -> String {
    let floor = at
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or(at);
    let up = if floor < at {
        floor + chrono::Duration::seconds(1)
    } else {
        floor
    };
    format!("at({})", up.format("%Y-%m-%dT%H:%M:%S"))
}

/// The event the schedule delivers: EventBridge's envelope, `detail.flow_run_id`.
pub fn run_due_input(id: Uuid) -> String {
    serde_json::json!({
        "version": "0",
        "id": format!("pushpool-run-due-{id}"),
        "detail-type": RUN_DUE_DETAIL_TYPE,
        "source": RUN_DUE_SOURCE,
        "account": "",
        "time": "1970-01-01T00:00:00Z",
        "region": "",
        "resources": [],
        "detail": {"flow_run_id": id},
    })
    .to_string()
}

fn failed<E: std::error::Error + Send + Sync + 'static>(e: E) -> TimerError {
    TimerError(Box::new(e))
}

#[async_trait]
impl DueTimer for SchedulerTimer {
    async fn arm(&self, flow_run_id: Uuid, at: DateTime<Utc>) -> Result<(), TimerError> {
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(failed)?;
        let target = Target::builder()
            .arn(&self.target.target_arn)
            .role_arn(&self.target.role_arn)
            .input(run_due_input(flow_run_id))
            .build()
            .map_err(failed)?;
        let result = self
            .client
            .create_schedule()
            .name(schedule_name(flow_run_id))
            .group_name(&self.target.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .target(target)
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e.into_service_error())),
        }
    }

    async fn disarm(&self, flow_run_id: Uuid) -> Result<(), TimerError> {
        let result = self
            .client
            .delete_schedule()
            .name(schedule_name(flow_run_id))
            .group_name(&self.target.group)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e.into_service_error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_rounds_up_to_the_second() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T12:00:05.001Z")
            .unwrap()
            .to_utc();
        assert_eq!(at_expression(t), "at(2026-11-30T12:00:06)");
        let t = DateTime::parse_from_rfc3339("2026-11-30T12:00:05Z")
            .unwrap()
            .to_utc();
        assert_eq!(at_expression(t), "at(2026-11-30T12:00:05)");
        assert_eq!(schedule_name(Uuid::nil()).len(), 49);
    }

    #[test]
    fn timers_are_on_with_all_three_variables_and_off_with_none() {
        let none = TimerTarget::from_lookup(|_| None).unwrap();
        assert_eq!(none, None);
        let all = TimerTarget::from_lookup(|k| Some(format!("v-{k}")))
            .unwrap()
            .unwrap();
        assert_eq!(all.role_arn, "v-PUSHPOOL_DUE_TIMER_ROLE_ARN");
        let partial = TimerTarget::from_lookup(|k| {
            (k != "PUSHPOOL_DUE_TIMER_ROLE_ARN").then(|| "x".to_owned())
        })
        .unwrap_err();
        assert_eq!(
            partial.to_string(),
            "environment variable PUSHPOOL_DUE_TIMER_ROLE_ARN is required"
        );
    }
}
