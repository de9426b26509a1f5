//! Server-side orchestration of proposed flow run states.
//!
//! A proposal (`POST /flow_runs/{id}/set_state`, or pushpool's own submitter and reconciler)
//! is answered the way Prefect 3.9.1's server answers it (`prefect.server.orchestration.
//! core_policy.CoreFlowPolicy`, and `MinimalFlowPolicy` when `force=true`), with one of four
//! outcomes:
//!
//! | outcome | when | HTTP |
//! |---|---|---|
//! | ACCEPT | the state is written | 201 |
//! | REJECT | another state is written (retries: 201) or the current one kept (200) | 201 / 200 |
//! | WAIT | try again after `delay_seconds` (RUNNING before the scheduled time) | 200 |
//! | ABORT | the proposal makes no sense for this run (a second PENDING: someone else claimed it) | 200 |
//!
//! (Prefect answers 201 when the returned state is new, 200 otherwise.)
//!
//! # Prefect's rules, one by one
//!
//! `CoreFlowPolicy` in Prefect's priority order (the first rule that refuses a proposal ends
//! orchestration), then `MinimalFlowPolicy` (used for `force=true`) and `GlobalFlowPolicy` (the
//! bookkeeping of every written state, [`apply_state`] and [`apply_decision`]). Each
//! `CoreFlowPolicy` and `MinimalFlowPolicy` rule that pushpool implements has a unit test named
//! after it (`tests::<rule_in_snake_case>...`); the `GlobalFlowPolicy` transforms share
//! `tests::global_flow_policy_bookkeeping`.
//!
//! | Prefect rule | pushpool |
//! |---|---|
//! | `PreserveDeploymentConcurrencyLeaseId` | belongs to issue 9 (deployment concurrency leases) |
//! | `PreventDuplicateTransitions` | implemented: a repeated `transition_id` is rejected, the current state kept |
//! | `HandleFlowTerminalStateTransitions` | implemented: from a terminal state, CANCELLING / PAUSED / CRASHED are aborted ("Run is already in terminal state X."); leaving a COMPLETED state with a persisted result for a non-final one is rejected; COMPLETED over a COMPLETED with a persisted result by one without is rejected; SCHEDULED for a run without a deployment is aborted; leaving a terminal state resets the pause fields and sets `retry_type` (`reschedule` for SCHEDULED). **pushpool addition**: a CANCELLED run accepts only SCHEDULED (a rerun): anything else (the engine's late RUNNING, a COMPLETED) is aborted "Run is already in terminal state CANCELLED.", so a cancelled run ends CANCELLED |
//! | `EnforceCancellingToCancelledTransition` | implemented: from CANCELLING only CANCELLED |
//! | `BypassCancellingFlowRunsWithNoInfra` | implemented: CANCELLING for a SCHEDULED run without infrastructure pid (or a `Resuming` one) is rejected into CANCELLED, and for a PAUSED run whose pause reschedules (suspended) too |
//! | `PreventPendingTransitions` | implemented: PENDING from PENDING, RUNNING, CANCELLING or CANCELLED is aborted (what makes a claim exclusive), except a PENDING sub-state with a new, non-default name from PENDING (`Submitting`), which keeps the scheduled time |
//! | `ValidateDeploymentConcurrencyAtRunning` | belongs to issue 9 (deployment concurrency) |
//! | `SecureFlowConcurrencySlots` | belongs to issue 9 (deployment concurrency) |
//! | `RemoveDeploymentConcurrencyLeaseForOldClientVersions` | belongs to issue 9 (deployment concurrency leases) |
//! | `EnsureOnlyScheduledFlowsMarkedLate` | implemented: `SCHEDULED/Late` for a run that is not SCHEDULED is rejected ("Only scheduled flows can be marked late."), and for one already `Late` too ("This flow run is already marked late.") |
//! | `HandlePausingFlows` | implemented: PAUSED for a run with no state is aborted ("Cannot pause flows with no state."), for a run that is not RUNNING rejected ("Cannot pause flows that are not currently running."), for a pause key already in `pause_keys` rejected ("This pause has already fired.", the current RUNNING state answered: how a rescheduled flow skips its fired pauses); a `pause_reschedule` pause of a subflow or of a run without a deployment is aborted ("Cannot suspend subflows." / "... flows without a deployment."); "suspend" for a state named `Suspended`. Once written, the key (a new UUID when the state has none) joins `pause_keys`; the service deletes the inputs stored under the pause's `run_input_keyset` (an earlier attempt's) |
//! | `HandleResumingPausedFlows` | implemented: from PAUSED only RUNNING, SCHEDULED, CANCELLING or a final state ("This run cannot transition to the StateType.X state from the StateType.PAUSED state."); leaving a `pause_reschedule` pause without a deployment is rejected; past the pause's `pause_timeout` (CANCELLING excepted) the proposal is rejected into FAILED ("The flow was <name> and never resumed.", reason "The flow run <verb> has timed out and can no longer resume."). Once written: SCHEDULED after a blocking pause resets `resuming`, `pause_keys` and sets `retry_type` `reschedule` (a new attempt from the top); anything else sets `resuming` (after `IncrementFlowRunCount` and `RemoveResumingIndicator` looked at it, as in Prefect, where core rules' `after_transition` runs after the global transforms) |
//! | `CopyScheduledTime` | implemented: PENDING from SCHEDULED keeps the scheduled time unless it brings one |
//! | `WaitForScheduledTime` | implemented: RUNNING from SCHEDULED or PENDING before the scheduled time waits, the delay rounded to the nearest second as Prefect rounds it |
//! | `RetryFailedFlows` | implemented: FAILED from RUNNING with retries left is rejected into `SCHEDULED/AwaitingRetry` at `now + retry_delay`, keeping the message and result, `retry_type` `in_process`; without retries left `retry_type` is cleared |
//! | `InstrumentFlowRunStateTransitions` | belongs to issue 9 (event emission) |
//! | `ReleaseFlowConcurrencySlots` | belongs to issue 9 (deployment concurrency) |
//! | `MinimalFlowPolicy` (`force=true`) | implemented: only `PreventResultDataLoss` and `BypassCancellingFlowRunsWithNoInfra` apply (leases and events: issue 9) |
//! | `PreventResultDataLoss` | implemented (also under `force`): COMPLETED over a COMPLETED with a persisted result by one without is rejected |
//! | `MarkLateRunsPolicy` | not applicable: pushpool has no late-runs service yet; the `Late` rule above is the one it applies |
//! | `EnsureFlowRunStateTimestampIsUnique` | implemented against the current state (the one a run's history could collide with here): a timestamp equal to it moves 1 µs later |
//! | `SetRunStateType`, `SetRunStateName`, `SetRunStateTimestamp` | implemented (`state_type`, `state_name`, `state` with its timestamp) |
//! | `SetStartTime` | implemented: the first RUNNING's timestamp |
//! | `SetEndTime` | implemented: set once on entering a final state (with `start_time` when there was none), cleared on leaving one for a non-final state |
//! | `IncrementRunTime` | implemented: time between a RUNNING state and the next one |
//! | `SetExpectedStartTime` | implemented: the first state's scheduled time, or its timestamp when it is not SCHEDULED |
//! | `SetNextScheduledStartTime` | implemented |
//! | `UpdateStateDetails` | implemented: every state carries its `flow_run_id` |
//! | `IncrementFlowRunCount` | implemented: each RUNNING counts, unless the run is resuming |
//! | `RemoveResumingIndicator` | implemented: RUNNING or a final state clears `resuming` |
//! | `UpdateSubflowParentTask` | implemented in the service (`update_subflow_parent_task`): each state a subflow run takes is copied onto its tracking task run |
//! | `UpdateSubflowStateDetails` | implemented: a subflow run's states carry its tracking task run as `state_details.task_run_id` |
//!
//! Rules that pushpool's own submitter and reconciler rely on: a claim is SCHEDULED → PENDING
//! (a second claim is aborted), and the service proposes its states only while the run is
//! still in the state it read (`pushpool_service` guards that), so a late infrastructure
//! signal never moves a run that someone else finished.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::FlowRun;
use crate::state::{State, StateType};

/// `SetStateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SetStateStatus {
    /// Written.
    Accept,
    /// Another state written or kept.
    Reject,
    /// Retry later.
    Wait,
    /// Refused.
    Abort,
}

/// `details` of an orchestration result, tagged by `type` as Prefect sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Details {
    /// `{"type": "accept_details"}`.
    AcceptDetails,
    /// `{"type": "reject_details", "reason": ...}`.
    RejectDetails {
        /// Why.
        reason: String,
    },
    /// `{"type": "wait_details", "delay_seconds": ..., "reason": ...}`.
    WaitDetails {
        /// Seconds to wait before proposing again.
        delay_seconds: i64,
        /// Why.
        reason: String,
    },
    /// `{"type": "abort_details", "reason": ...}`.
    AbortDetails {
        /// Why.
        reason: String,
    },
}

/// What a proposal leads to. `Accept` and `Reject { write: Some(..) }` carry the state to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write the proposed state.
    Accept(State),
    /// Do not write the proposal; write `write` instead when given, else keep the current state.
    Reject {
        /// State to write instead, if any.
        write: Option<State>,
        /// Why.
        reason: String,
    },
    /// Propose again after `delay_seconds`.
    Wait {
        /// Seconds.
        delay_seconds: i64,
        /// Why.
        reason: String,
    },
    /// Refused.
    Abort {
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// The wire status.
    pub fn status(&self) -> SetStateStatus {
        match self {
            Decision::Accept(_) => SetStateStatus::Accept,
            Decision::Reject { .. } => SetStateStatus::Reject,
            Decision::Wait { .. } => SetStateStatus::Wait,
            Decision::Abort { .. } => SetStateStatus::Abort,
        }
    }

    /// The wire details.
    pub fn details(&self) -> Details {
        match self {
            Decision::Accept(_) => Details::AcceptDetails,
            Decision::Reject { reason, .. } => Details::RejectDetails {
                reason: reason.clone(),
            },
            Decision::Wait {
                delay_seconds,
                reason,
            } => Details::WaitDetails {
                delay_seconds: *delay_seconds,
                reason: reason.clone(),
            },
            Decision::Abort { reason } => Details::AbortDetails {
                reason: reason.clone(),
            },
        }
    }

    /// The state this decision writes, if any.
    pub fn state_to_write(&self) -> Option<&State> {
        match self {
            Decision::Accept(s) => Some(s),
            Decision::Reject { write, .. } => write.as_ref(),
            _ => None,
        }
    }
}

/// Decides what to do with `proposed` for `run` at `now` (the module docs list the rules, in
/// the order they apply).
pub fn orchestrate(run: &FlowRun, proposed: State, force: bool, now: DateTime<Utc>) -> Decision {
    let Some(current) = run.state.as_ref() else {
        if !force && proposed.r#type == StateType::Paused {
            // HandlePausingFlows.
            return Decision::Abort {
                reason: format!("Cannot {} flows with no state.", pause_verb(&proposed)),
            };
        }
        return Decision::Accept(proposed);
    };
    let mut proposed = proposed;
    if proposed.timestamp == current.timestamp {
        // EnsureFlowRunStateTimestampIsUnique.
        proposed.timestamp += chrono::Duration::microseconds(1);
    }
    if force {
        // MinimalFlowPolicy.
        if let Some(refused) = prevent_result_data_loss(current, &proposed)
            .or_else(|| bypass_cancelling_flow_runs_with_no_infra(run, current, &proposed, now))
        {
            return refused;
        }
        return Decision::Accept(proposed);
    }
    let p = &proposed;
    let refused = prevent_duplicate_transitions(current, p)
        .or_else(|| handle_flow_terminal_state_transitions(run, current, p))
        .or_else(|| enforce_cancelling_to_cancelled_transition(current, p))
        .or_else(|| bypass_cancelling_flow_runs_with_no_infra(run, current, p, now))
        .or_else(|| prevent_pending_transitions(current, p))
        .or_else(|| ensure_only_scheduled_flows_marked_late(current, p))
        .or_else(|| handle_pausing_flows(run, current, p))
        .or_else(|| handle_resuming_paused_flows(run, current, p, now));
    if let Some(refused) = refused {
        return refused;
    }
    copy_scheduled_time(current, &mut proposed);
    if let Some(wait) = wait_for_scheduled_time(current, &proposed, now) {
        return wait;
    }
    if let Some(retry) = retry_failed_flows(run, current, &proposed, now) {
        return retry;
    }
    Decision::Accept(proposed)
}

/// Prefect's `_has_persisted_result`: the state's data is a result record that is not
/// `{"type": "unpersisted"}` (an empty object counts as no data).
fn has_persisted_result(data: Option<&serde_json::Value>) -> bool {
    matches!(data, Some(serde_json::Value::Object(o))
        if !o.is_empty() && o.get("type").and_then(serde_json::Value::as_str) != Some("unpersisted"))
}

/// `PreventDuplicateTransitions`.
fn prevent_duplicate_transitions(current: &State, proposed: &State) -> Option<Decision> {
    let id = proposed.state_details.transition_id?;
    (current.state_details.transition_id == Some(id)).then(|| Decision::Reject {
        write: None,
        reason: "This run has already made this state transition.".into(),
    })
}

/// `PreventResultDataLoss` (also the COMPLETED → COMPLETED branch of
/// `HandleFlowTerminalStateTransitions`).
fn prevent_result_data_loss(current: &State, proposed: &State) -> Option<Decision> {
    (current.r#type == StateType::Completed
        && proposed.r#type == StateType::Completed
        && has_persisted_result(current.data.as_ref())
        && !has_persisted_result(proposed.data.as_ref()))
    .then(|| Decision::Reject {
        write: None,
        reason: "Cannot overwrite a COMPLETED state that carries persisted result data with one \
                 that does not."
            .into(),
    })
}

/// `HandleFlowTerminalStateTransitions`, with pushpool's CANCELLED addition (module docs).
fn handle_flow_terminal_state_transitions(
    run: &FlowRun,
    current: &State,
    proposed: &State,
) -> Option<Decision> {
    let from = current.r#type;
    if !from.is_terminal() {
        return None;
    }
    let to = proposed.r#type;
    let already = || Decision::Abort {
        reason: format!("Run is already in terminal state {from}."),
    };
    if matches!(
        to,
        StateType::Cancelling | StateType::Paused | StateType::Crashed
    ) {
        return Some(already());
    }
    if from == StateType::Completed
        && !to.is_terminal()
        && has_persisted_result(current.data.as_ref())
    {
        return Some(Decision::Reject {
            write: None,
            reason: "Run is already COMPLETED.".into(),
        });
    }
    if let Some(refused) = prevent_result_data_loss(current, proposed) {
        return Some(refused);
    }
    if to == StateType::Scheduled && run.deployment_id.is_none() {
        return Some(Decision::Abort {
            reason: "Cannot reschedule a run without an associated deployment.".into(),
        });
    }
    if from == StateType::Cancelled && !matches!(to, StateType::Scheduled | StateType::Pending) {
        // pushpool: a cancelled run ends CANCELLED; only a rerun (SCHEDULED) leaves it
        // (PENDING is aborted by PreventPendingTransitions, with Prefect's reason).
        return Some(already());
    }
    None
}

/// `EnforceCancellingToCancelledTransition`.
fn enforce_cancelling_to_cancelled_transition(
    current: &State,
    proposed: &State,
) -> Option<Decision> {
    (current.r#type == StateType::Cancelling && proposed.r#type != StateType::Cancelled).then(
        || Decision::Reject {
            write: None,
            reason: "Cannot transition flows that are cancelling to a state other than Cancelled."
                .into(),
        },
    )
}

/// `BypassCancellingFlowRunsWithNoInfra`.
fn bypass_cancelling_flow_runs_with_no_infra(
    run: &FlowRun,
    current: &State,
    proposed: &State,
    now: DateTime<Utc>,
) -> Option<Decision> {
    if proposed.r#type != StateType::Cancelling
        || !matches!(current.r#type, StateType::Scheduled | StateType::Paused)
    {
        return None;
    }
    let reason = if (current.r#type == StateType::Scheduled && run.infrastructure_pid.is_none())
        || current.name == "Resuming"
    {
        "Scheduled flow run has no infrastructure to terminate."
    } else if current.r#type == StateType::Paused && current.state_details.pause_reschedule {
        "Suspended flow run has no infrastructure to terminate."
    } else {
        return None;
    };
    let mut cancelled = State::new(StateType::Cancelled, now);
    cancelled.state_details.flow_run_id = Some(run.id);
    Some(Decision::Reject {
        write: Some(cancelled),
        reason: reason.into(),
    })
}

/// `PreventPendingTransitions`.
fn prevent_pending_transitions(current: &State, proposed: &State) -> Option<Decision> {
    let from = current.r#type;
    if proposed.r#type != StateType::Pending
        || !matches!(
            from,
            StateType::Pending | StateType::Running | StateType::Cancelling | StateType::Cancelled
        )
    {
        return None;
    }
    if from == StateType::Pending && current.name != proposed.name && proposed.name != "Pending" {
        // A named PENDING sub-state (Pending → Submitting → InfrastructurePending).
        return None;
    }
    Some(Decision::Abort {
        reason: format!("This run is in a {from} state and cannot transition to a PENDING state."),
    })
}

/// `EnsureOnlyScheduledFlowsMarkedLate`.
fn ensure_only_scheduled_flows_marked_late(current: &State, proposed: &State) -> Option<Decision> {
    if proposed.r#type != StateType::Scheduled || proposed.name != "Late" {
        return None;
    }
    let reason = if current.r#type != StateType::Scheduled {
        "Only scheduled flows can be marked late."
    } else if current.name == "Late" {
        "This flow run is already marked late."
    } else {
        return None;
    };
    Some(Decision::Reject {
        write: None,
        reason: reason.into(),
    })
}

/// `"suspend"` for a state named `Suspended` (what `suspend_flow_run` proposes), else
/// `"pause"`: the verb of `HandlePausingFlows`' and `HandleResumingPausedFlows`' reasons.
fn pause_verb(state: &State) -> &'static str {
    if state.name == "Suspended" {
        "suspend"
    } else {
        "pause"
    }
}

/// `HandlePausingFlows` (its `after_transition` is in [`apply_decision`]).
fn handle_pausing_flows(run: &FlowRun, current: &State, proposed: &State) -> Option<Decision> {
    if proposed.r#type != StateType::Paused {
        return None;
    }
    let verb = pause_verb(proposed);
    let reject = |reason: String| Decision::Reject {
        write: None,
        reason,
    };
    if current.r#type != StateType::Running {
        return Some(reject(format!(
            "Cannot {verb} flows that are not currently running."
        )));
    }
    if let Some(key) = proposed.state_details.pause_key.as_ref() {
        if run.empirical_policy.pause_keys.contains(key) {
            return Some(reject(format!("This {verb} has already fired.")));
        }
    }
    if proposed.state_details.pause_reschedule {
        if run.parent_task_run_id.is_some() {
            return Some(Decision::Abort {
                reason: format!("Cannot {verb} subflows."),
            });
        }
        if run.deployment_id.is_none() {
            return Some(Decision::Abort {
                reason: format!("Cannot {verb} flows without a deployment."),
            });
        }
    }
    None
}

/// `HandleResumingPausedFlows` (its `after_transition` is in [`apply_decision`]).
fn handle_resuming_paused_flows(
    run: &FlowRun,
    current: &State,
    proposed: &State,
    now: DateTime<Utc>,
) -> Option<Decision> {
    if current.r#type != StateType::Paused {
        return None;
    }
    let to = proposed.r#type;
    let reject = |reason: String| Decision::Reject {
        write: None,
        reason,
    };
    if !(matches!(
        to,
        StateType::Running | StateType::Scheduled | StateType::Cancelling
    ) || to.is_terminal())
    {
        return Some(reject(format!(
            "This run cannot transition to the StateType.{to} state from the StateType.{} state.",
            current.r#type
        )));
    }
    let verb = pause_verb(proposed);
    let display_state_name = proposed.name.to_lowercase();
    if current.state_details.pause_reschedule && run.deployment_id.is_none() {
        return Some(reject(format!(
            "Cannot reschedule a {display_state_name} flow run without a deployment."
        )));
    }
    if to == StateType::Cancelling {
        return None;
    }
    if current
        .state_details
        .pause_timeout
        .is_some_and(|deadline| deadline < now)
    {
        let mut failed = State::new(StateType::Failed, now).with_message(format!(
            "The flow was {display_state_name} and never resumed."
        ));
        failed.state_details.flow_run_id = Some(run.id);
        return Some(Decision::Reject {
            write: Some(failed),
            reason: format!("The flow run {verb} has timed out and can no longer resume."),
        });
    }
    None
}

/// `CopyScheduledTime`, and the carry-over of `PreventPendingTransitions` for a named PENDING
/// sub-state (which always takes the current scheduled time).
fn copy_scheduled_time(current: &State, proposed: &mut State) {
    let named_sub_state =
        current.r#type == StateType::Pending && proposed.r#type == StateType::Pending;
    let from_scheduled = current.r#type == StateType::Scheduled
        && proposed.r#type == StateType::Pending
        && proposed.state_details.scheduled_time.is_none();
    if named_sub_state || from_scheduled {
        proposed.state_details.scheduled_time = current.state_details.scheduled_time;
    }
}

/// `WaitForScheduledTime`: the delay is rounded as Prefect rounds it (whole seconds plus the
/// fraction rounded half to even).
fn wait_for_scheduled_time(
    current: &State,
    proposed: &State,
    now: DateTime<Utc>,
) -> Option<Decision> {
    if proposed.r#type != StateType::Running
        || !matches!(current.r#type, StateType::Scheduled | StateType::Pending)
    {
        return None;
    }
    let at = current.state_details.scheduled_time?;
    let micros = (at - now).num_microseconds().unwrap_or(i64::MAX);
    let whole = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let delay_seconds = whole + i64::from(fraction > 500_000);
    (delay_seconds > 0).then(|| Decision::Wait {
        delay_seconds,
        reason: "Scheduled time is in the future".into(),
    })
}

/// `RetryFailedFlows`.
fn retry_failed_flows(
    run: &FlowRun,
    current: &State,
    proposed: &State,
    now: DateTime<Utc>,
) -> Option<Decision> {
    if current.r#type != StateType::Running || proposed.r#type != StateType::Failed {
        return None;
    }
    let retries = run
        .empirical_policy
        .retries
        .unwrap_or(run.empirical_policy.max_retries);
    if run.run_count > retries {
        return None;
    }
    let delay = run
        .empirical_policy
        .retry_delay
        .unwrap_or(run.empirical_policy.retry_delay_seconds);
    // Checked: a delay too large for a date (the API refuses one past
    // `MAX_RETRY_DELAY_SECONDS`, but a stored run may predate that check) means no retry can
    // be scheduled, and the FAILED state is accepted as proposed.
    let at = chrono::TimeDelta::try_milliseconds((delay * 1000.0) as i64)
        .and_then(|d| now.checked_add_signed(d))?;
    let mut retry = State::new(StateType::Scheduled, now);
    retry.name = "AwaitingRetry".into();
    retry.message = proposed.message.clone();
    retry.data = proposed.data.clone();
    retry.state_details.flow_run_id = Some(run.id);
    retry.state_details.scheduled_time = Some(at);
    Some(Decision::Reject {
        write: Some(retry),
        reason: "Retrying".into(),
    })
}

/// Writes what `decision` writes (if anything) into `run`: the state's bookkeeping
/// ([`apply_state`]) and the `empirical_policy` changes Prefect's rules make on the way
/// (`HandleFlowTerminalStateTransitions` and `RetryFailedFlows`; none under `force`).
/// Returns the written state.
pub fn apply_decision(
    run: &mut FlowRun,
    decision: &Decision,
    force: bool,
    now: DateTime<Utc>,
) -> Option<State> {
    let state = decision.state_to_write()?.clone();
    // HandleResumingPausedFlows' `after_transition`: applied after the global bookkeeping.
    let mut resumed_policy = None;
    if !force {
        let from = run.state_type;
        if let Decision::Accept(s) = decision {
            if s.r#type == StateType::Paused {
                // HandlePausingFlows' `after_transition`.
                let key = s
                    .state_details
                    .pause_key
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if !run.empirical_policy.pause_keys.contains(&key) {
                    run.empirical_policy.pause_keys.push(key);
                }
            }
            if let Some(paused) = run.state.as_ref().filter(|c| c.r#type == StateType::Paused) {
                resumed_policy = Some(
                    !paused.state_details.pause_reschedule && s.r#type == StateType::Scheduled,
                );
            }
        }
        let policy = &mut run.empirical_policy;
        match decision {
            Decision::Reject { write: Some(s), .. }
                if s.name == "AwaitingRetry" && from == Some(StateType::Running) =>
            {
                policy.resuming = false;
                policy.pause_keys.clear();
                policy.retry_type = Some("in_process".into());
            }
            Decision::Accept(s) => {
                if from == Some(StateType::Running) && s.r#type == StateType::Failed {
                    policy.retry_type = None;
                }
                if from.is_some_and(StateType::is_terminal) && !s.r#type.is_terminal() {
                    policy.resuming = false;
                    policy.pause_keys.clear();
                    policy.retry_type =
                        (s.r#type == StateType::Scheduled).then(|| "reschedule".to_owned());
                }
            }
            _ => {}
        }
    }
    let state = subflow_state_details(run, state);
    apply_state(run, state.clone(), now);
    match resumed_policy {
        Some(true) => {
            // A blocking pause left for SCHEDULED: a new attempt from the top, whose pauses
            // fire again.
            let policy = &mut run.empirical_policy;
            policy.resuming = false;
            policy.pause_keys.clear();
            policy.retry_type = Some("reschedule".into());
        }
        Some(false) => run.empirical_policy.resuming = true,
        None => {}
    }
    Some(state)
}

/// `UpdateSubflowStateDetails`: a subflow run's states name its tracking task run in the
/// parent (`state_details.task_run_id`).
fn subflow_state_details(run: &FlowRun, mut state: State) -> State {
    if let Some(parent) = run.parent_task_run_id {
        state.state_details.task_run_id = Some(parent);
    }
    state
}

/// Applies an accepted state to the run's bookkeeping fields (`state`, `state_type`,
/// `state_name`, `run_count`, `start_time`, `end_time`, `total_run_time`,
/// `expected_start_time`, `next_scheduled_start_time`, `empirical_policy.resuming`), as
/// Prefect's `GlobalFlowPolicy` does after a transition (module docs). `now` is the
/// `updated` time; the state's own timestamp is the time of the transition.
pub fn apply_state(run: &mut FlowRun, state: State, now: DateTime<Utc>) {
    let state = subflow_state_details(run, state);
    let at = state.timestamp;
    let to = state.r#type;
    if let Some(prev) = run.state.as_ref() {
        if prev.r#type == StateType::Running {
            let secs = (at - prev.timestamp).num_milliseconds() as f64 / 1000.0;
            run.total_run_time += secs.max(0.0);
        }
        if prev.r#type.is_terminal() && !to.is_terminal() {
            run.end_time = None;
        }
    }
    if to == StateType::Running && run.start_time.is_none() {
        run.start_time = Some(at);
        if let Some(expected) = run.expected_start_time {
            run.estimated_start_time_delta =
                (at - expected).num_milliseconds().max(0) as f64 / 1000.0;
        }
    }
    if to.is_terminal() && run.end_time.is_none() {
        if run.start_time.is_none() {
            run.start_time = Some(at);
        }
        run.end_time = Some(at);
    }
    if run.expected_start_time.is_none() {
        run.expected_start_time = if to == StateType::Scheduled {
            state.state_details.scheduled_time
        } else {
            Some(at)
        };
    }
    run.next_scheduled_start_time = if to == StateType::Scheduled {
        state.state_details.scheduled_time
    } else {
        None
    };
    if to == StateType::Running && !run.empirical_policy.resuming {
        run.run_count += 1;
    }
    if to == StateType::Running || to.is_terminal() {
        run.empirical_policy.resuming = false;
    }
    run.state_id = Some(state.id);
    run.state_type = Some(to);
    run.state_name = Some(state.name.clone());
    run.state = Some(state);
    run.updated = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FlowRun;
    use uuid::Uuid;

    pub(crate) fn run_in(t: StateType) -> FlowRun {
        let now = Utc::now();
        let mut run = FlowRun::new(Uuid::new_v4(), Uuid::new_v4(), "quiet-otter".into(), now);
        run.deployment_id = Some(Uuid::new_v4());
        let mut s = State::new(t, now - chrono::Duration::seconds(1));
        if t == StateType::Scheduled {
            s.state_details.scheduled_time = Some(now);
        }
        apply_state(&mut run, s, now);
        run
    }

    fn named(t: StateType, name: &str) -> State {
        let mut s = State::new(t, Utc::now());
        s.name = name.into();
        s
    }

    fn propose(run: &FlowRun, t: StateType) -> Decision {
        orchestrate(run, State::new(t, Utc::now()), false, Utc::now())
    }

    fn reject(reason: &str) -> Decision {
        Decision::Reject {
            write: None,
            reason: reason.into(),
        }
    }

    fn abort(reason: &str) -> Decision {
        Decision::Abort {
            reason: reason.into(),
        }
    }

    #[test]
    fn prevent_duplicate_transitions_rejects_a_repeated_transition_id() {
        let mut run = run_in(StateType::Pending);
        let id = Uuid::new_v4();
        if let Some(s) = run.state.as_mut() {
            s.state_details.transition_id = Some(id);
        }
        let mut again = State::new(StateType::Running, Utc::now());
        again.state_details.transition_id = Some(id);
        assert_eq!(
            orchestrate(&run, again.clone(), false, Utc::now()),
            reject("This run has already made this state transition.")
        );
        again.state_details.transition_id = Some(Uuid::new_v4());
        assert_eq!(
            orchestrate(&run, again, false, Utc::now()).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn handle_flow_terminal_state_transitions_aborts_crashed_paused_cancelling() {
        for from in [
            StateType::Completed,
            StateType::Failed,
            StateType::Crashed,
            StateType::Cancelled,
        ] {
            let run = run_in(from);
            for to in [StateType::Crashed, StateType::Paused, StateType::Cancelling] {
                assert_eq!(
                    propose(&run, to),
                    abort(&format!("Run is already in terminal state {from}.")),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn handle_flow_terminal_state_transitions_keeps_a_persisted_completed_result() {
        let mut run = run_in(StateType::Completed);
        if let Some(s) = run.state.as_mut() {
            s.data = Some(
                serde_json::json!({"storage_key": "/tmp/r", "serializer": {"type": "pickle"}}),
            );
        }
        assert_eq!(
            propose(&run, StateType::Running),
            reject("Run is already COMPLETED.")
        );
        assert_eq!(
            propose(&run, StateType::Completed),
            reject(
                "Cannot overwrite a COMPLETED state that carries persisted result data with one \
                 that does not."
            )
        );
        // A final state other than COMPLETED may replace it, as in Prefect.
        assert_eq!(
            propose(&run, StateType::Failed).status(),
            SetStateStatus::Accept
        );
        // Without a persisted result a completed run may run again (an ad-hoc rerun).
        let unpersisted = run_in(StateType::Completed);
        assert_eq!(
            propose(&unpersisted, StateType::Running).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn handle_flow_terminal_state_transitions_reschedules_only_deployed_runs() {
        let mut run = run_in(StateType::Failed);
        run.empirical_policy.retry_type = Some("in_process".into());
        run.empirical_policy.pause_keys = vec!["k".into()];
        let decision = orchestrate(
            &run,
            named(StateType::Scheduled, "AwaitingRetry"),
            false,
            Utc::now(),
        );
        assert_eq!(decision.status(), SetStateStatus::Accept);
        let mut next = run.clone();
        apply_decision(&mut next, &decision, false, Utc::now());
        assert_eq!(
            next.empirical_policy.retry_type.as_deref(),
            Some("reschedule")
        );
        assert!(next.empirical_policy.pause_keys.is_empty());
        assert_eq!(next.end_time, None, "SetEndTime clears the end time");

        run.deployment_id = None;
        assert_eq!(
            propose(&run, StateType::Scheduled),
            abort("Cannot reschedule a run without an associated deployment.")
        );
    }

    #[test]
    fn handle_flow_terminal_state_transitions_cancelled_refuses_all_but_a_rerun() {
        let run = run_in(StateType::Cancelled);
        for to in [
            StateType::Running,
            StateType::Completed,
            StateType::Failed,
            StateType::Cancelled,
        ] {
            assert_eq!(
                propose(&run, to),
                abort("Run is already in terminal state CANCELLED."),
                "CANCELLED -> {to}"
            );
        }
        assert_eq!(
            propose(&run, StateType::Scheduled).status(),
            SetStateStatus::Accept
        );
        // Other terminal states follow Prefect: the engine's real result is accepted.
        assert_eq!(
            propose(&run_in(StateType::Crashed), StateType::Completed).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn enforce_cancelling_to_cancelled_transition() {
        let run = run_in(StateType::Cancelling);
        for to in [
            StateType::Completed,
            StateType::Running,
            StateType::Scheduled,
        ] {
            assert_eq!(
                propose(&run, to),
                reject(
                    "Cannot transition flows that are cancelling to a state other than Cancelled."
                ),
                "{to}"
            );
        }
        assert_eq!(
            propose(&run, StateType::Cancelled).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn bypass_cancelling_flow_runs_with_no_infra() {
        let run = run_in(StateType::Scheduled);
        for force in [false, true] {
            match orchestrate(
                &run,
                State::new(StateType::Cancelling, Utc::now()),
                force,
                Utc::now(),
            ) {
                Decision::Reject {
                    write: Some(s),
                    reason,
                } => {
                    assert_eq!(
                        reason,
                        "Scheduled flow run has no infrastructure to terminate."
                    );
                    assert_eq!(
                        (s.r#type, s.name.as_str()),
                        (StateType::Cancelled, "Cancelled")
                    );
                    assert_eq!(s.state_details.flow_run_id, Some(run.id));
                }
                other => panic!("expected REJECT into CANCELLED, got {other:?}"),
            }
        }
        // An AwaitingRetry run with infrastructure goes through CANCELLING.
        let mut with_pid = run_in(StateType::Scheduled);
        with_pid.infrastructure_pid = Some("host:1".into());
        assert_eq!(
            propose(&with_pid, StateType::Cancelling).status(),
            SetStateStatus::Accept
        );
        let mut suspended = run_in(StateType::Paused);
        if let Some(s) = suspended.state.as_mut() {
            s.state_details.pause_reschedule = true;
        }
        match propose(&suspended, StateType::Cancelling) {
            Decision::Reject {
                write: Some(s),
                reason,
            } => {
                assert_eq!(
                    reason,
                    "Suspended flow run has no infrastructure to terminate."
                );
                assert_eq!(s.r#type, StateType::Cancelled);
            }
            other => panic!("expected REJECT into CANCELLED, got {other:?}"),
        }
    }

    #[test]
    fn prevent_pending_transitions() {
        // From CANCELLING, EnforceCancellingToCancelledTransition answers first.
        assert_eq!(
            propose(&run_in(StateType::Cancelling), StateType::Pending).status(),
            SetStateStatus::Reject
        );
        for from in [StateType::Pending, StateType::Running, StateType::Cancelled] {
            let run = run_in(from);
            assert_eq!(
                propose(&run, StateType::Pending),
                abort(&format!(
                    "This run is in a {from} state and cannot transition to a PENDING state."
                )),
                "{from}"
            );
        }
        // A named sub-state may follow PENDING, once, and keeps the scheduled time.
        let mut run = run_in(StateType::Scheduled);
        let claim = orchestrate(
            &run,
            State::new(StateType::Pending, Utc::now()),
            false,
            Utc::now(),
        );
        apply_decision(&mut run, &claim, false, Utc::now());
        let scheduled = run
            .state
            .as_ref()
            .and_then(|s| s.state_details.scheduled_time);
        assert!(scheduled.is_some());
        let submitting = orchestrate(
            &run,
            named(StateType::Pending, "Submitting"),
            false,
            Utc::now(),
        );
        match &submitting {
            Decision::Accept(s) => assert_eq!(s.state_details.scheduled_time, scheduled),
            other => panic!("expected ACCEPT, got {other:?}"),
        }
        apply_decision(&mut run, &submitting, false, Utc::now());
        assert_eq!(
            orchestrate(
                &run,
                named(StateType::Pending, "Submitting"),
                false,
                Utc::now()
            )
            .status(),
            SetStateStatus::Abort
        );
    }

    #[test]
    fn ensure_only_scheduled_flows_marked_late() {
        let pending = run_in(StateType::Pending);
        assert_eq!(
            orchestrate(
                &pending,
                named(StateType::Scheduled, "Late"),
                false,
                Utc::now()
            ),
            reject("Only scheduled flows can be marked late.")
        );
        let mut run = run_in(StateType::Scheduled);
        let late = orchestrate(&run, named(StateType::Scheduled, "Late"), false, Utc::now());
        assert_eq!(late.status(), SetStateStatus::Accept);
        apply_decision(&mut run, &late, false, Utc::now());
        assert_eq!(
            orchestrate(&run, named(StateType::Scheduled, "Late"), false, Utc::now()),
            reject("This flow run is already marked late.")
        );
    }

    #[test]
    fn copy_scheduled_time() {
        let run = run_in(StateType::Scheduled);
        let at = run
            .state
            .as_ref()
            .and_then(|s| s.state_details.scheduled_time);
        match propose(&run, StateType::Pending) {
            Decision::Accept(s) => assert_eq!(s.state_details.scheduled_time, at),
            other => panic!("{other:?}"),
        }
        let mut own = State::new(StateType::Pending, Utc::now());
        let later = Utc::now() + chrono::Duration::hours(1);
        own.state_details.scheduled_time = Some(later);
        match orchestrate(&run, own, false, Utc::now()) {
            Decision::Accept(s) => assert_eq!(s.state_details.scheduled_time, Some(later)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wait_for_scheduled_time_from_scheduled_and_pending() {
        let now = Utc::now();
        for from in [StateType::Scheduled, StateType::Pending] {
            for (ms, expected) in [(29_600, Some(30)), (29_400, Some(29)), (400, None)] {
                let mut run = run_in(from);
                if let Some(s) = run.state.as_mut() {
                    s.state_details.scheduled_time = Some(now + chrono::Duration::milliseconds(ms));
                }
                let d = orchestrate(&run, State::new(StateType::Running, now), false, now);
                match expected {
                    Some(delay_seconds) => assert_eq!(
                        d,
                        Decision::Wait {
                            delay_seconds,
                            reason: "Scheduled time is in the future".into()
                        },
                        "{from} +{ms} ms"
                    ),
                    None => assert_eq!(d.status(), SetStateStatus::Accept, "{from} +{ms} ms"),
                }
            }
        }
    }

    #[test]
    fn retry_failed_flows_reschedules_in_process_until_retries_run_out() {
        let mut run = run_in(StateType::Pending);
        run.empirical_policy.retries = Some(1);
        run.empirical_policy.retry_delay = Some(5.0);
        let now = Utc::now();
        let running = orchestrate(&run, State::new(StateType::Running, now), false, now);
        apply_decision(&mut run, &running, false, now);
        assert_eq!(run.run_count, 1);
        let failed = orchestrate(
            &run,
            State::new(StateType::Failed, now).with_message("boom"),
            false,
            now,
        );
        match &failed {
            Decision::Reject {
                write: Some(s),
                reason,
            } => {
                assert_eq!(reason, "Retrying");
                assert_eq!(
                    (s.r#type, s.name.as_str(), s.message.as_deref()),
                    (StateType::Scheduled, "AwaitingRetry", Some("boom"))
                );
                assert_eq!(
                    s.state_details.scheduled_time,
                    Some(now + chrono::Duration::seconds(5))
                );
            }
            other => panic!("expected REJECT into AwaitingRetry, got {other:?}"),
        }
        apply_decision(&mut run, &failed, false, now);
        assert_eq!(
            run.empirical_policy.retry_type.as_deref(),
            Some("in_process")
        );
        let later = now + chrono::Duration::seconds(6);
        let rerun = orchestrate(&run, State::new(StateType::Running, later), false, later);
        apply_decision(&mut run, &rerun, false, later);
        assert_eq!(run.run_count, 2);
        let exhausted = propose(&run, StateType::Failed);
        assert_eq!(exhausted.status(), SetStateStatus::Accept);
        apply_decision(&mut run, &exhausted, false, now);
        assert_eq!(run.empirical_policy.retry_type, None);
    }

    #[test]
    fn minimal_flow_policy_under_force() {
        let run = run_in(StateType::Completed);
        let now = Utc::now();
        assert_eq!(
            orchestrate(&run, State::new(StateType::Crashed, now), true, now).status(),
            SetStateStatus::Accept
        );
        assert_eq!(
            orchestrate(
                &run_in(StateType::Cancelled),
                State::new(StateType::Running, now),
                true,
                now
            )
            .status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn prevent_result_data_loss_applies_under_force() {
        let mut run = run_in(StateType::Completed);
        if let Some(s) = run.state.as_mut() {
            s.data = Some(serde_json::json!({"storage_key": "k"}));
        }
        let now = Utc::now();
        let mut unpersisted = State::new(StateType::Completed, now);
        unpersisted.data = Some(serde_json::json!({"type": "unpersisted"}));
        assert_eq!(
            orchestrate(&run, unpersisted, true, now),
            reject(
                "Cannot overwrite a COMPLETED state that carries persisted result data with one \
                 that does not."
            )
        );
    }

    #[test]
    fn ensure_flow_run_state_timestamp_is_unique() {
        let run = run_in(StateType::Pending);
        let at = run.state.as_ref().map(|s| s.timestamp).unwrap_or_default();
        match orchestrate(&run, State::new(StateType::Running, at), false, at) {
            Decision::Accept(s) => assert_eq!(s.timestamp, at + chrono::Duration::microseconds(1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_subflow_state_details_names_the_tracking_task_run() {
        let now = Utc::now();
        let parent = uuid::Uuid::new_v4();
        let mut run = FlowRun::new(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            "child".into(),
            now,
        );
        run.parent_task_run_id = Some(parent);
        apply_state(&mut run, State::new(StateType::Pending, now), now);
        assert_eq!(
            run.state.as_ref().unwrap().state_details.task_run_id,
            Some(parent)
        );
        let decision = orchestrate(&run, State::new(StateType::Running, now), false, now);
        let written = apply_decision(&mut run, &decision, false, now).expect("RUNNING written");
        assert_eq!(written.state_details.task_run_id, Some(parent));
        assert_eq!(run.state.unwrap().state_details.task_run_id, Some(parent));
    }

    #[test]
    fn global_flow_policy_bookkeeping() {
        let t0 = Utc::now();
        let mut run = FlowRun::new(Uuid::new_v4(), Uuid::new_v4(), "quiet-otter".into(), t0);
        // SetExpectedStartTime: the first state's timestamp when it is not SCHEDULED.
        apply_state(&mut run, State::new(StateType::Pending, t0), t0);
        assert_eq!(run.expected_start_time, Some(t0));
        // SetStartTime and IncrementFlowRunCount.
        let t1 = t0 + chrono::Duration::seconds(2);
        apply_state(&mut run, State::new(StateType::Running, t1), t1);
        assert_eq!((run.start_time, run.run_count), (Some(t1), 1));
        // IncrementRunTime and SetEndTime.
        let t2 = t1 + chrono::Duration::seconds(3);
        apply_state(&mut run, State::new(StateType::Crashed, t2), t2);
        assert_eq!((run.total_run_time, run.end_time), (3.0, Some(t2)));
        // A second final state keeps the first end time (a forced CANCELLED after a crash).
        let t3 = t2 + chrono::Duration::seconds(1);
        apply_state(&mut run, State::new(StateType::Cancelled, t3), t3);
        assert_eq!(run.end_time, Some(t2));
        // Resuming runs do not count a new run; RUNNING clears the indicator.
        run.empirical_policy.resuming = true;
        apply_state(&mut run, State::new(StateType::Running, t3), t3);
        assert_eq!(
            (run.run_count, run.empirical_policy.resuming, run.end_time),
            (1, false, None)
        );
    }

    #[test]
    fn details_serialise_as_prefect_does() {
        assert_eq!(
            serde_json::to_value(Details::WaitDetails {
                delay_seconds: 1,
                reason: "Scheduled time is in the future".into()
            })
            .ok(),
            Some(
                serde_json::json!({"type": "wait_details", "delay_seconds": 1,
                "reason": "Scheduled time is in the future"})
            )
        );
    }

    fn paused(key: &str, reschedule: bool) -> State {
        let mut s = named(
            StateType::Paused,
            if reschedule { "Suspended" } else { "Paused" },
        );
        s.state_details.pause_key = Some(key.into());
        s.state_details.pause_reschedule = reschedule;
        s
    }

    /// Writes what `orchestrate` decides, as the service does.
    fn step(run: &mut FlowRun, proposed: State) -> Decision {
        let now = Utc::now();
        let decision = orchestrate(run, proposed, false, now);
        apply_decision(run, &decision, false, now);
        decision
    }

    #[test]
    fn handle_pausing_flows() {
        let mut no_state = run_in(StateType::Running);
        no_state.state = None;
        assert_eq!(
            orchestrate(&no_state, paused("1", true), false, Utc::now()),
            abort("Cannot suspend flows with no state.")
        );
        assert_eq!(
            orchestrate(
                &run_in(StateType::Pending),
                paused("1", false),
                false,
                Utc::now()
            ),
            reject("Cannot pause flows that are not currently running.")
        );
        let mut run = run_in(StateType::Running);
        assert!(matches!(
            step(&mut run, paused("1", false)),
            Decision::Accept(_)
        ));
        assert_eq!(run.empirical_policy.pause_keys, vec!["1".to_owned()]);
        assert!(matches!(
            step(&mut run, named(StateType::Running, "Running")),
            Decision::Accept(_)
        ));
        assert_eq!(
            orchestrate(&run, paused("1", false), false, Utc::now()),
            reject("This pause has already fired.")
        );
        let mut subflow = run_in(StateType::Running);
        subflow.parent_task_run_id = Some(Uuid::new_v4());
        assert_eq!(
            orchestrate(&subflow, paused("1", true), false, Utc::now()),
            abort("Cannot suspend subflows.")
        );
        let mut adhoc = run_in(StateType::Running);
        adhoc.deployment_id = None;
        assert_eq!(
            orchestrate(&adhoc, paused("1", true), false, Utc::now()),
            abort("Cannot suspend flows without a deployment.")
        );
        // A pause without a key records a generated one.
        let mut keyless = run_in(StateType::Running);
        let mut p = paused("x", false);
        p.state_details.pause_key = None;
        step(&mut keyless, p);
        assert_eq!(keyless.empirical_policy.pause_keys.len(), 1);
    }

    #[test]
    fn handle_resuming_paused_flows() {
        let mut run = run_in(StateType::Running);
        step(&mut run, paused("1", false));
        assert_eq!(
            propose(&run, StateType::Pending),
            reject(
                "This run cannot transition to the StateType.PENDING state from the StateType.PAUSED state."
            )
        );
        // In-process resume: RUNNING counts the run again (resuming was unset), then
        // `resuming` is set.
        let count = run.run_count;
        assert!(matches!(
            step(&mut run, named(StateType::Running, "Running")),
            Decision::Accept(_)
        ));
        assert_eq!(run.run_count, count + 1);
        assert!(run.empirical_policy.resuming);
        assert_eq!(run.empirical_policy.pause_keys, vec!["1".to_owned()]);

        // A suspended run resumes into SCHEDULED/Resuming: keys kept, resuming set, and its
        // next RUNNING does not count.
        let mut run = run_in(StateType::Running);
        step(&mut run, paused("1", true));
        let mut resuming = named(StateType::Scheduled, "Resuming");
        resuming.state_details.scheduled_time = Some(Utc::now());
        assert!(matches!(step(&mut run, resuming), Decision::Accept(_)));
        assert!(run.empirical_policy.resuming);
        assert_eq!(run.empirical_policy.pause_keys, vec!["1".to_owned()]);
        let count = run.run_count;
        step(&mut run, named(StateType::Pending, "Pending"));
        step(&mut run, named(StateType::Running, "Running"));
        assert_eq!(run.run_count, count);
        assert!(!run.empirical_policy.resuming);

        // A blocking pause left for SCHEDULED starts over.
        let mut run = run_in(StateType::Running);
        step(&mut run, paused("1", false));
        step(&mut run, named(StateType::Scheduled, "Scheduled"));
        assert!(!run.empirical_policy.resuming);
        assert!(run.empirical_policy.pause_keys.is_empty());
        assert_eq!(
            run.empirical_policy.retry_type.as_deref(),
            Some("reschedule")
        );

        // Past the pause timeout: FAILED instead (CANCELLING still passes).
        let mut run = run_in(StateType::Running);
        let mut p = paused("1", false);
        p.state_details.pause_timeout = Some(Utc::now() - chrono::Duration::seconds(5));
        step(&mut run, p);
        match propose(&run, StateType::Running) {
            Decision::Reject {
                write: Some(s),
                reason,
            } => {
                assert_eq!(
                    reason,
                    "The flow run pause has timed out and can no longer resume."
                );
                assert_eq!(s.r#type, StateType::Failed);
                assert_eq!(
                    s.message.as_deref(),
                    Some("The flow was running and never resumed.")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            propose(&run, StateType::Cancelling),
            Decision::Accept(_)
        ));

        // Leaving a suspension needs a deployment.
        let mut run = run_in(StateType::Running);
        step(&mut run, paused("1", true));
        run.deployment_id = None;
        assert_eq!(
            orchestrate(
                &run,
                named(StateType::Scheduled, "Resuming"),
                false,
                Utc::now()
            ),
            reject("Cannot reschedule a resuming flow run without a deployment.")
        );
    }
}
