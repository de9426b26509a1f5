//! The reconciler function's handler: what one EventBridge event makes pushpool do.
//!
//! Two kinds of events reach it (both routed by rules in `infra/`):
//! - the **schedule** (`detail-type: Scheduled Event`, every minute): one
//!   [`Service::reconcile_once`] — due runs submitted, claims without a pid resubmitted with
//!   the same key, ended jobs finished, CANCELLING runs stopped;
//! - **due timers** (`source: pushpool.timer`, `detail-type: pushpool Flow Run Due`): the
//!   one-time EventBridge Scheduler schedule [`timer::SchedulerTimer`] made for a run due
//!   before the next tick fires at the run's time; the run is submitted then;
//! - **ECS task state changes** (`source: aws.ecs`, `detail-type: ECS Task State Change`) of
//!   tasks pushpool started (`startedBy: pushpool`): the run named by the task's
//!   `PREFECT__FLOW_RUN_ID` override is reconciled at once, instead of at the next tick. The
//!   event only triggers a check: the run's state comes from `DescribeTasks`, through the
//!   same rules as the schedule, so a late or duplicated event changes nothing. The event's
//!   detail is read by the ECS provider (`pushpool_provider_ecs::events`).
//!
//! The function's `main` only wires configuration, clients and the runtime.

pub mod timer;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use pushpool_provider_ecs::events;
use pushpool_service::{Outcome, Service, ServiceError};
use pushpool_store::StoreError;
use serde_json::Value;
use uuid::Uuid;

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The periodic tick.
    Schedule,
    /// A state change of a task pushpool started, for flow run `flow_run_id`.
    TaskStateChange {
        /// The task ARN (the run's infrastructure pid).
        task_arn: String,
        /// The run, from the task's `PREFECT__FLOW_RUN_ID` container override.
        flow_run_id: Uuid,
        /// The task's `lastStatus` in the event.
        last_status: String,
    },
    /// A due timer fired ([`timer::SchedulerTimer`]): submit run `flow_run_id` now.
    RunDue {
        /// The run.
        flow_run_id: Uuid,
    },
    /// Anything else (another service's task, another event type): ignored.
    Ignored(String),
}

/// Classifies an EventBridge event.
pub fn classify(event: &EventBridgeEvent<Value>) -> Trigger {
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.events", "Scheduled Event") => Trigger::Schedule,
        (timer::RUN_DUE_SOURCE, timer::RUN_DUE_DETAIL_TYPE) => {
            match event.detail["flow_run_id"]
                .as_str()
                .and_then(|v| v.parse().ok())
            {
                Some(flow_run_id) => Trigger::RunDue { flow_run_id },
                None => Trigger::Ignored("due timer event without flow_run_id".into()),
            }
        }
        (events::SOURCE, events::TASK_STATE_CHANGE) => {
            match events::parse_task_state_change(&event.detail) {
                Ok(change) => Trigger::TaskStateChange {
                    task_arn: change.task_arn,
                    flow_run_id: change.flow_run_id,
                    last_status: change.last_status,
                },
                Err(reason) => Trigger::Ignored(reason.into()),
            }
        }
        (source, kind) => Trigger::Ignored(format!("unhandled event {source}/{kind}")),
    }
}

/// What the handler did, returned as the invocation's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Runs acted on (submitted or finished).
    pub acted: usize,
    /// What happened, in words.
    pub summary: String,
}

/// Errors that make the invocation fail (EventBridge retries it).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The store or a provider failed transiently.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Handles one event.
///
/// # Errors
/// Store failures and transient provider failures, for EventBridge to retry.
pub async fn handle(
    service: &Service,
    event: EventBridgeEvent<Value>,
) -> Result<Report, HandlerError> {
    match classify(&event) {
        Trigger::Schedule => {
            let acted = service.reconcile_once(Utc::now()).await?;
            Ok(Report {
                acted,
                summary: format!("reconciled: {acted} run(s) acted on"),
            })
        }
        Trigger::TaskStateChange {
            task_arn,
            flow_run_id,
            last_status,
        } => {
            let run = match service.store().read_flow_run(flow_run_id).await {
                Ok(run) => run,
                Err(StoreError::NotFound(_)) => {
                    return Ok(Report {
                        acted: 0,
                        summary: format!("flow run {flow_run_id} not found"),
                    });
                }
                Err(e) => return Err(ServiceError::from(e).into()),
            };
            if run.infrastructure_pid.as_deref() != Some(task_arn.as_str()) {
                return Ok(Report {
                    acted: 0,
                    summary: format!(
                        "task {task_arn} is not flow run {flow_run_id}'s current task"
                    ),
                });
            }
            let outcome = if run.state_type == Some(pushpool_core::state::StateType::Cancelling) {
                service.cancel(run).await?
            } else {
                service.reconcile_run(run, Utc::now()).await?
            };
            let acted = usize::from(matches!(
                outcome,
                Outcome::Finished(_) | Outcome::Submitted(_)
            ));
            Ok(Report {
                acted,
                summary: format!("task {last_status}: {outcome:?}"),
            })
        }
        Trigger::RunDue { flow_run_id } => {
            // The same step as a change of the run: submitted when it is a due SCHEDULED
            // run (a claimed, deleted or rescheduled run is left alone; one not yet due is
            // armed again).
            let outcome = service.handle_change(flow_run_id).await?;
            let acted = usize::from(matches!(outcome, Outcome::Submitted(_)));
            Ok(Report {
                acted,
                summary: format!("flow run {flow_run_id} due: {outcome:?}"),
            })
        }
        Trigger::Ignored(why) => Ok(Report {
            acted: 0,
            summary: format!("ignored: {why}"),
        }),
    }
}
