//! Server-side orchestration of proposed flow run states.
//!
//! A proposal (`POST /flow_runs/{id}/set_state`, or pushpool's own submitter and reconciler)
//! is answered the way Prefect 3.9.1's server answers it (`prefect.server.orchestration.
//! core_policy.CoreFlowPolicy`), with one of four outcomes:
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
//! `force=true` skips every rule. Rules, in order:
//! 1. a repeated `transition_id` is rejected (Prefect's `PreventDuplicateTransitions`);
//! 2. PENDING from PENDING, RUNNING, CANCELLING or CANCELLED is aborted
//!    (`PreventPendingTransitions`): this is what makes a claim exclusive;
//! 3. from CANCELLING only CANCELLED is allowed (`EnforceCancellingToCancelledTransition`);
//! 4. from a terminal state, PAUSED, CRASHED and CANCELLING are aborted and anything from
//!    COMPLETED is rejected (`HandleFlowTerminalStateTransitions`) — so a late infrastructure
//!    signal never moves a finished run back. pushpool also aborts FAILED/COMPLETED/CANCELLED
//!    proposals from another terminal state, so a run's end is written once;
//! 5. RUNNING from SCHEDULED before its scheduled time waits (`WaitForScheduledTime`);
//! 6. FAILED from RUNNING with retries left is rejected into `SCHEDULED/AwaitingRetry` at
//!    `now + retry_delay`, keeping the failed state's message and result (`RetryFailedFlows`).
//!
//! An accepted PENDING from SCHEDULED carries the scheduled time over (`CopyScheduledTime`).

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

/// Decides what to do with `proposed` for `run` at `now` (module docs list the rules).
pub fn orchestrate(run: &FlowRun, proposed: State, force: bool, now: DateTime<Utc>) -> Decision {
    if force {
        return Decision::Accept(proposed);
    }
    let Some(current) = run.state.as_ref() else {
        return Decision::Accept(proposed);
    };
    let from = current.r#type;
    let to = proposed.r#type;

    if proposed.state_details.transition_id.is_some()
        && proposed.state_details.transition_id == current.state_details.transition_id
    {
        return Decision::Reject {
            write: None,
            reason: "This run has already made this state transition.".into(),
        };
    }
    if to == StateType::Pending
        && matches!(
            from,
            StateType::Pending | StateType::Running | StateType::Cancelling | StateType::Cancelled
        )
    {
        return Decision::Abort {
            reason: format!(
                "This run is in a {from} state and cannot transition to a PENDING state."
            ),
        };
    }
    if from == StateType::Cancelling && to != StateType::Cancelled {
        return Decision::Reject {
            write: None,
            reason: "Cannot transition flows that are cancelling to a state other than Cancelled."
                .into(),
        };
    }
    if from.is_terminal() {
        if matches!(
            to,
            StateType::Paused | StateType::Crashed | StateType::Cancelling
        ) || (to.is_terminal() && from != StateType::Completed)
        {
            return Decision::Abort {
                reason: format!("Run is already {from}."),
            };
        }
        if from == StateType::Completed {
            return Decision::Reject {
                write: None,
                reason: "This run has already completed.".into(),
            };
        }
    }
    if to == StateType::Running && from == StateType::Scheduled {
        if let Some(at) = current.state_details.scheduled_time {
            let delay = (at - now).num_milliseconds();
            if delay > 0 {
                return Decision::Wait {
                    delay_seconds: (delay + 999) / 1000,
                    reason: "Scheduled time is in the future".into(),
                };
            }
        }
    }
    if to == StateType::Failed && from == StateType::Running {
        let retries = run
            .empirical_policy
            .retries
            .unwrap_or(run.empirical_policy.max_retries);
        if run.run_count <= retries {
            let delay = run
                .empirical_policy
                .retry_delay
                .unwrap_or(run.empirical_policy.retry_delay_seconds);
            // Checked: a delay too large for a date (the API refuses one past
            // `MAX_RETRY_DELAY_SECONDS`, but a stored run may predate that check) means no
            // retry can be scheduled, and the FAILED state is accepted as is.
            let Some(at) = chrono::TimeDelta::try_milliseconds((delay * 1000.0) as i64)
                .and_then(|d| now.checked_add_signed(d))
            else {
                return Decision::Accept(proposed);
            };
            let mut retry = State::new(StateType::Scheduled, now);
            retry.name = "AwaitingRetry".into();
            retry.message = proposed.message.clone();
            retry.data = proposed.data.clone();
            retry.state_details.flow_run_id = Some(run.id);
            retry.state_details.scheduled_time = Some(at);
            return Decision::Reject {
                write: Some(retry),
                reason: "Retrying".into(),
            };
        }
    }
    let mut proposed = proposed;
    if to == StateType::Pending
        && from == StateType::Scheduled
        && proposed.state_details.scheduled_time.is_none()
    {
        proposed.state_details.scheduled_time = current.state_details.scheduled_time;
    }
    Decision::Accept(proposed)
}

/// Applies an accepted state to the run's bookkeeping fields (`state`, `state_type`,
/// `run_count`, `start_time`, `end_time`, `total_run_time`, `expected_start_time`,
/// `next_scheduled_start_time`), as Prefect's server does after a transition.
pub fn apply_state(run: &mut FlowRun, state: State, now: DateTime<Utc>) {
    if let Some(prev) = run.state.as_ref() {
        if prev.r#type == StateType::Running {
            let secs = (now - prev.timestamp).num_milliseconds() as f64 / 1000.0;
            run.total_run_time += secs.max(0.0);
        }
    }
    match state.r#type {
        StateType::Running => {
            run.run_count += 1;
            if run.start_time.is_none() {
                run.start_time = Some(now);
                if let Some(expected) = run.expected_start_time {
                    run.estimated_start_time_delta =
                        (now - expected).num_milliseconds().max(0) as f64 / 1000.0;
                }
            }
        }
        StateType::Scheduled => {
            run.next_scheduled_start_time = state.state_details.scheduled_time;
            if run.expected_start_time.is_none() {
                run.expected_start_time = state.state_details.scheduled_time;
            }
        }
        t if t.is_terminal() => run.end_time = Some(now),
        _ => {}
    }
    if state.r#type != StateType::Scheduled {
        run.next_scheduled_start_time = None;
    }
    run.state_id = Some(state.id);
    run.state_type = Some(state.r#type);
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
        let mut s = State::new(t, now);
        if t == StateType::Scheduled {
            s.state_details.scheduled_time = Some(now);
        }
        apply_state(&mut run, s, now);
        run
    }

    fn propose(run: &FlowRun, t: StateType) -> Decision {
        orchestrate(run, State::new(t, Utc::now()), false, Utc::now())
    }

    #[test]
    fn second_pending_is_aborted() {
        let run = run_in(StateType::Pending);
        assert_eq!(
            propose(&run, StateType::Pending),
            Decision::Abort {
                reason: "This run is in a PENDING state and cannot transition to a PENDING state."
                    .into()
            }
        );
    }

    #[test]
    fn completed_run_is_not_moved_by_late_signals() {
        let run = run_in(StateType::Completed);
        assert_eq!(
            propose(&run, StateType::Crashed),
            Decision::Abort {
                reason: "Run is already COMPLETED.".into()
            }
        );
        assert_eq!(
            propose(&run, StateType::Failed),
            Decision::Reject {
                write: None,
                reason: "This run has already completed.".into()
            }
        );
        assert_eq!(
            propose(&run, StateType::Running).status(),
            SetStateStatus::Reject
        );
    }

    #[test]
    fn cancelling_only_goes_to_cancelled() {
        let run = run_in(StateType::Cancelling);
        assert_eq!(
            propose(&run, StateType::Completed).status(),
            SetStateStatus::Reject
        );
        assert_eq!(
            propose(&run, StateType::Cancelled).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn running_before_scheduled_time_waits() {
        let mut run = run_in(StateType::Scheduled);
        let at = Utc::now() + chrono::Duration::seconds(30);
        if let Some(s) = run.state.as_mut() {
            s.state_details.scheduled_time = Some(at);
        }
        match propose(&run, StateType::Running) {
            Decision::Wait {
                delay_seconds,
                reason,
            } => {
                assert!((29..=30).contains(&delay_seconds), "{delay_seconds}");
                assert_eq!(reason, "Scheduled time is in the future");
            }
            other => panic!("expected WAIT, got {other:?}"),
        }
    }

    #[test]
    fn failed_with_retries_left_is_rescheduled() {
        let mut run = run_in(StateType::Running);
        run.empirical_policy.retries = Some(1);
        run.empirical_policy.retry_delay = Some(5.0);
        let now = Utc::now();
        match orchestrate(&run, State::new(StateType::Failed, now), false, now) {
            Decision::Reject {
                write: Some(s),
                reason,
            } => {
                assert_eq!(reason, "Retrying");
                assert_eq!(
                    (s.r#type, s.name.as_str()),
                    (StateType::Scheduled, "AwaitingRetry")
                );
                assert_eq!(
                    s.state_details.scheduled_time,
                    Some(now + chrono::Duration::seconds(5))
                );
            }
            other => panic!("expected REJECT into AwaitingRetry, got {other:?}"),
        }
        run.run_count = 2;
        assert_eq!(
            propose(&run, StateType::Failed).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn force_skips_rules_and_bookkeeping_counts_runs() {
        let run = run_in(StateType::Completed);
        let now = Utc::now();
        assert_eq!(
            orchestrate(&run, State::new(StateType::Crashed, now), true, now).status(),
            SetStateStatus::Accept
        );
        let run = run_in(StateType::Running);
        assert_eq!(run.run_count, 1);
        assert!(run.start_time.is_some());
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
}
