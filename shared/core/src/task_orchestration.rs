//! Server-side orchestration of proposed task run states (`POST /task_runs/{id}/set_state`),
//! answered as Prefect 3.9.1's server answers them with `CoreTaskPolicy`
//! (`prefect.server.orchestration.core_policy`), in the shapes of
//! [`crate::orchestration`] (ACCEPT / REJECT / WAIT / ABORT, same details).
//!
//! `force=true` skips every rule (Prefect's `MinimalTaskPolicy`); the bookkeeping of
//! [`apply_task_state`] (Prefect's `GlobalTaskPolicy`) applies to every written state. Rules,
//! in Prefect's order (the first that decides wins):
//! 1. from a terminal state (`HandleTaskTerminalStateTransitions`): CANCELLING, PAUSED and
//!    CRASHED are aborted ("Run is already COMPLETED."); leaving a COMPLETED state whose
//!    result is persisted (`data` set and its `type` not `"unpersisted"`) is rejected ("This
//!    run is already completed."); an accepted move to a non-final state resets `run_count`
//!    (fresh retries); RUNNING while the flow run has run more times than this task run saw
//!    is renamed `Retrying`;
//! 2. RUNNING needs the enclosing flow run RUNNING (`PreventRunningTasksFromStoppedFlows`):
//!    a flow run without state or not RUNNING aborts ("The enclosing flow must be running to
//!    begin task execution."), a PAUSED one rejects into `PAUSED/NotReady` (its pause
//!    timeout and reschedule flag copied);
//! 3. PENDING from SCHEDULED carries the scheduled time over (`CopyScheduledTime`);
//! 4. RUNNING from SCHEDULED or PENDING before the scheduled time waits, the delay rounded
//!    to the nearest second (`WaitForScheduledTime`);
//! 5. FAILED from RUNNING with `run_count <= retries` is rejected into
//!    `SCHEDULED/AwaitingRetry` at `now + delay` (`retry_delay`, a list indexed by the
//!    attempt, jittered by `retry_jitter_factor` with Prefect's clamped Poisson interval),
//!    keeping message and data, unless the proposal says `retriable: false`
//!    (`RetryFailedTasks`);
//! 6. RUNNING again is renamed `Retrying` after `AwaitingRetry`, `Rerunning` otherwise
//!    (`RenameReruns`);
//! 7. an accepted RUNNING records the flow run's `run_count` (`UpdateFlowRunTrackerOnTasks`);
//! 8. COMPLETED with a `cache_key` longer than [`MAX_CACHE_KEY_LENGTH`] is rejected with the
//!    proposed state written (`CacheInsertion`).
//!
//! Not kept, with the reason: the server-side task cache (`CacheRetrieval` and
//! `CacheInsertion`'s cache rows: the 3.x engine caches client-side, so a RUNNING proposal is
//! never answered from a cache) and tag concurrency slots (`SecureTaskConcurrencySlots`:
//! pushpool has no tag concurrency limits yet, so there is no slot to take). Deferred
//! (background) task runs are refused at the API, since their task worker subscription is
//! not served.

use chrono::{DateTime, Utc};

use crate::model::FlowRun;
use crate::orchestration::Decision;
use crate::state::{State, StateType};
use crate::task_run::{MAX_CACHE_KEY_LENGTH, TaskRun};

/// What a proposal leads to, with the bookkeeping that only an orchestrated (not forced)
/// acceptance does. Apply it with [`TaskRunDecision::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunDecision {
    /// The outcome.
    pub decision: Decision,
    reset_run_count: bool,
    flow_run_run_count: Option<i64>,
}

impl TaskRunDecision {
    fn plain(decision: Decision) -> Self {
        Self {
            decision,
            reset_run_count: false,
            flow_run_run_count: None,
        }
    }

    /// Writes the decision's state into `run` (rules' side effects, then
    /// [`apply_task_state`]); `false` when the decision writes nothing.
    pub fn apply(&self, run: &mut TaskRun, now: DateTime<Utc>) -> bool {
        let Some(state) = self.decision.state_to_write() else {
            return false;
        };
        if self.reset_run_count {
            run.run_count = 0;
        }
        if let Some(count) = self.flow_run_run_count {
            run.flow_run_run_count = count;
        }
        apply_task_state(run, state.clone(), now);
        true
    }
}

/// Prefect's `clamped_poisson_interval(average, clamping_factor)` with the uniform draw `u`
/// (in `[0, 1)`) given, so that callers choose the randomness and tests can fix it.
pub fn clamped_poisson_interval(average: f64, clamping_factor: f64, u: f64) -> f64 {
    if average <= 0.0 || clamping_factor <= 0.0 {
        return average.max(0.0);
    }
    let k = 1.0 + clamping_factor;
    let upper = average * k;
    let lower_multiple = if k >= 50.0 {
        0.0
    } else {
        (2f64.powf(k) / (2f64.powf(k) - 1.0)).max(1e-10).log2()
    };
    let lower = (average * lower_multiple).max(0.0);
    let cdf = |x: f64| 1.0 - (-x / average).exp();
    let (lo, hi) = (cdf(lower), cdf(upper));
    let draw = lo + (hi - lo) * u;
    -(1.0 - draw).max(1e-10).ln() * average
}

/// Seconds until `at`, as Prefect's `WaitForScheduledTime` rounds them: the whole seconds
/// (floored) plus the fraction rounded half to even.
fn delay_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let micros = (at - now).num_microseconds().unwrap_or(i64::MAX);
    let whole = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    whole + i64::from(frac > 500_000)
}

/// Decides what to do with `proposed` for task run `run` at `now` (module docs list the
/// rules). `flow_run` is the run's enclosing flow run, when it has one and it exists;
/// `jitter` is a uniform draw in `[0, 1)` for the retry jitter.
pub fn orchestrate_task_run(
    run: &TaskRun,
    flow_run: Option<&FlowRun>,
    proposed: State,
    force: bool,
    now: DateTime<Utc>,
    jitter: f64,
) -> TaskRunDecision {
    if force {
        return TaskRunDecision::plain(Decision::Accept(proposed));
    }
    let mut proposed = proposed;
    let current = run.state.as_ref();
    let from = current.map(|s| s.r#type);
    let to = proposed.r#type;
    let mut run_count = run.run_count;
    let mut reset_run_count = false;

    if let (Some(current), Some(from)) = (current, from) {
        if from.is_terminal() {
            if matches!(
                to,
                StateType::Cancelling | StateType::Paused | StateType::Crashed
            ) {
                return TaskRunDecision::plain(Decision::Abort {
                    reason: format!("Run is already {from}."),
                });
            }
            let persisted = current.data.as_ref().is_some_and(|d| {
                !d.is_null() && d.get("type").and_then(|t| t.as_str()) != Some("unpersisted")
            });
            if from == StateType::Completed && persisted {
                return TaskRunDecision::plain(Decision::Reject {
                    write: None,
                    reason: "This run is already completed.".into(),
                });
            }
            if !to.is_terminal() {
                run_count = 0;
                reset_run_count = true;
            }
            if to == StateType::Running
                && flow_run.is_some_and(|f| run.flow_run_run_count < f.run_count)
            {
                proposed.name = "Retrying".into();
            }
        }
    }

    if to == StateType::Running && run.flow_run_id.is_some() {
        if let Some(flow_run) = flow_run {
            let stopped = "The enclosing flow must be running to begin task execution.";
            match flow_run.state.as_ref() {
                None => {
                    return TaskRunDecision::plain(Decision::Abort {
                        reason: stopped.into(),
                    });
                }
                Some(fs) if fs.r#type == StateType::Paused => {
                    let mut paused = State::new(StateType::Paused, now);
                    paused.name = "NotReady".into();
                    paused.state_details.pause_timeout = fs.state_details.pause_timeout;
                    paused.state_details.pause_reschedule = fs.state_details.pause_reschedule;
                    return TaskRunDecision::plain(Decision::Reject {
                        write: Some(paused),
                        reason: format!(
                            "The flow is paused, new tasks can execute after resuming flow run: {}.",
                            flow_run.id
                        ),
                    });
                }
                Some(fs) if fs.r#type != StateType::Running => {
                    return TaskRunDecision::plain(Decision::Abort {
                        reason: stopped.into(),
                    });
                }
                Some(_) => {}
            }
        }
    }

    if let (Some(current), Some(from)) = (current, from) {
        if from == StateType::Scheduled
            && to == StateType::Pending
            && proposed.state_details.scheduled_time.is_none()
        {
            proposed.state_details.scheduled_time = current.state_details.scheduled_time;
        }
        if matches!(from, StateType::Scheduled | StateType::Pending) && to == StateType::Running {
            if let Some(at) = current.state_details.scheduled_time {
                let delay = delay_seconds(at, now);
                if delay > 0 {
                    return TaskRunDecision::plain(Decision::Wait {
                        delay_seconds: delay,
                        reason: "Scheduled time is in the future".into(),
                    });
                }
            }
        }
        if from == StateType::Running && to == StateType::Failed {
            let policy = &run.empirical_policy;
            let base = policy.base_delay(run_count);
            let delay = match policy.retry_jitter_factor {
                Some(j) if j > 0.0 && base > 0.0 => clamped_poisson_interval(base, j, jitter),
                _ => base,
            };
            let retriable = proposed.state_details.retriable != Some(false);
            if retriable && policy.retries.is_some_and(|r| run_count <= r) {
                let mut retry = State::new(StateType::Scheduled, now);
                retry.name = "AwaitingRetry".into();
                retry.message = proposed.message.clone();
                retry.data = proposed.data.clone();
                retry.state_details.scheduled_time =
                    Some(now + chrono::Duration::microseconds((delay * 1e6) as i64));
                return TaskRunDecision {
                    decision: Decision::Reject {
                        write: Some(retry),
                        reason: "Retrying".into(),
                    },
                    reset_run_count,
                    flow_run_run_count: None,
                };
            }
        }
        if to == StateType::Running && run_count > 0 {
            proposed.name = if current.name == "AwaitingRetry" {
                "Retrying".into()
            } else {
                "Rerunning".into()
            };
        }
    }

    let flow_run_run_count = if to == StateType::Running {
        flow_run.map(|f| f.run_count)
    } else {
        None
    };

    if to == StateType::Completed
        && proposed
            .state_details
            .cache_key
            .as_ref()
            .is_some_and(|k| k.chars().count() > MAX_CACHE_KEY_LENGTH)
    {
        return TaskRunDecision {
            decision: Decision::Reject {
                write: Some(proposed),
                reason: format!(
                    "Cache key exceeded maximum allowed length of {MAX_CACHE_KEY_LENGTH} characters."
                ),
            },
            reset_run_count,
            flow_run_run_count,
        };
    }

    TaskRunDecision {
        decision: Decision::Accept(proposed),
        reset_run_count,
        flow_run_run_count,
    }
}

/// Applies a written state to the task run's bookkeeping as Prefect's `GlobalTaskPolicy`
/// does: the state's `flow_run_id`/`task_run_id` point at this run; `state_type`,
/// `state_name`; `start_time` at the first RUNNING; `end_time` on entering a final state
/// (`start_time` too when unset) and cleared on leaving one; `total_run_time` grows by the
/// time spent RUNNING; `expected_start_time` set once (the scheduled time for SCHEDULED, the
/// state's time otherwise); `next_scheduled_start_time` follows SCHEDULED states; `run_count`
/// counts RUNNING entries. Times are the state's timestamp.
pub fn apply_task_state(run: &mut TaskRun, state: State, now: DateTime<Utc>) {
    let mut state = state;
    state.state_details.flow_run_id = run.flow_run_id;
    state.state_details.task_run_id = Some(run.id);
    let ts = state.timestamp;
    let to = state.r#type;
    let from = run.state.as_ref().map(|s| (s.r#type, s.timestamp));
    if to == StateType::Running && run.start_time.is_none() {
        run.start_time = Some(ts);
    }
    if from.is_some_and(|(t, _)| t.is_terminal()) && !to.is_terminal() {
        run.end_time = None;
    }
    if to.is_terminal() && run.end_time.is_none() {
        if run.start_time.is_none() {
            run.start_time = Some(ts);
        }
        run.end_time = Some(ts);
    }
    if let Some((StateType::Running, since)) = from {
        run.total_run_time += ((ts - since).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0);
    }
    if run.expected_start_time.is_none() {
        run.expected_start_time = if to == StateType::Scheduled {
            state.state_details.scheduled_time
        } else {
            Some(ts)
        };
    }
    if from.is_some_and(|(t, _)| t == StateType::Scheduled) {
        run.next_scheduled_start_time = None;
    }
    if to == StateType::Scheduled {
        run.next_scheduled_start_time = state.state_details.scheduled_time;
    }
    if to == StateType::Running {
        run.run_count += 1;
    }
    run.estimated_run_time = run.total_run_time;
    if let (Some(start), Some(expected)) = (run.start_time, run.expected_start_time) {
        run.estimated_start_time_delta =
            ((start - expected).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0);
    }
    run.state_id = Some(state.id);
    run.state_type = Some(to);
    run.state_name = Some(state.name.clone());
    run.state = Some(state);
    run.updated = now;
}

/// The state a subflow's tracking task run takes when its flow run `child` enters `state`
/// (Prefect's `UpdateSubflowParentTask`): a fresh copy (new id, timestamp `now`) whose
/// `child_flow_run_id` is the child run; it is written with `force` (no task rules).
pub fn subflow_parent_task_state(child: &FlowRun, state: &State, now: DateTime<Utc>) -> State {
    let mut copy = state.clone();
    copy.id = uuid::Uuid::now_v7();
    copy.timestamp = now;
    copy.state_details.child_flow_run_id = Some(child.id);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::{SetStateStatus, apply_state};
    use serde_json::json;
    use uuid::Uuid;

    fn task_in(t: StateType) -> TaskRun {
        let now = Utc::now();
        let mut run = TaskRun::new(Uuid::now_v7(), "t-0".into(), "k".into(), "0".into(), now);
        run.flow_run_id = Some(Uuid::new_v4());
        apply_task_state(&mut run, State::new(t, now), now);
        run
    }

    fn flow_in(t: StateType) -> FlowRun {
        let now = Utc::now();
        let mut run = FlowRun::new(Uuid::new_v4(), Uuid::new_v4(), "f".into(), now);
        apply_state(&mut run, State::new(t, now), now);
        run
    }

    fn propose(run: &TaskRun, flow: Option<&FlowRun>, t: StateType) -> Decision {
        let now = Utc::now();
        orchestrate_task_run(run, flow, State::new(t, now), false, now, 0.5).decision
    }

    #[test]
    fn terminal_task_runs_refuse_crash_pause_and_cancelling() {
        let run = task_in(StateType::Completed);
        assert_eq!(
            propose(&run, None, StateType::Crashed),
            Decision::Abort {
                reason: "Run is already COMPLETED.".into()
            }
        );
        let mut persisted = run.clone();
        if let Some(s) = persisted.state.as_mut() {
            s.data = Some(json!({"type": "result", "storage_key": "x"}));
        }
        assert_eq!(
            propose(&persisted, None, StateType::Running),
            Decision::Reject {
                write: None,
                reason: "This run is already completed.".into()
            }
        );
    }

    #[test]
    fn leaving_a_terminal_state_resets_the_run_count() {
        let flow = flow_in(StateType::Running);
        let mut run = task_in(StateType::Running);
        run.flow_run_id = Some(flow.id);
        run.flow_run_run_count = 1;
        let now = Utc::now();
        let done = orchestrate_task_run(
            &run,
            Some(&flow),
            State::new(StateType::Failed, now),
            false,
            now,
            0.5,
        );
        assert!(done.apply(&mut run, now));
        assert_eq!(run.run_count, 1);
        let again = orchestrate_task_run(
            &run,
            Some(&flow),
            State::new(StateType::Running, now),
            false,
            now,
            0.5,
        );
        assert_eq!(
            again.decision.state_to_write().map(|s| s.name.as_str()),
            Some("Running")
        );
        assert!(again.apply(&mut run, now));
        assert_eq!((run.run_count, run.end_time), (1, None));
    }

    #[test]
    fn running_needs_a_running_flow_run() {
        let run = task_in(StateType::Pending);
        let flow = flow_in(StateType::Completed);
        assert_eq!(
            propose(&run, Some(&flow), StateType::Running),
            Decision::Abort {
                reason: "The enclosing flow must be running to begin task execution.".into()
            }
        );
        let paused = flow_in(StateType::Paused);
        match propose(&run, Some(&paused), StateType::Running) {
            Decision::Reject {
                write: Some(s),
                reason,
            } => {
                assert_eq!((s.r#type, s.name.as_str()), (StateType::Paused, "NotReady"));
                assert_eq!(
                    reason,
                    format!(
                        "The flow is paused, new tasks can execute after resuming flow run: {}.",
                        paused.id
                    )
                );
            }
            other => panic!("expected REJECT into NotReady, got {other:?}"),
        }
        let running = flow_in(StateType::Running);
        assert_eq!(
            propose(&run, Some(&running), StateType::Running).status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn failed_with_retries_left_awaits_retry_then_retrying() {
        let flow = flow_in(StateType::Running);
        let mut run = task_in(StateType::Running);
        run.empirical_policy.retries = Some(1);
        run.empirical_policy.retry_delay = Some(json!([3, 30]));
        let now = Utc::now();
        let d = orchestrate_task_run(
            &run,
            Some(&flow),
            State::new(StateType::Failed, now).with_message("boom"),
            false,
            now,
            0.5,
        );
        match &d.decision {
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
                    Some(now + chrono::Duration::seconds(3))
                );
            }
            other => panic!("expected AwaitingRetry, got {other:?}"),
        }
        assert!(d.apply(&mut run, now));
        let later = now + chrono::Duration::seconds(4);
        let retrying = orchestrate_task_run(
            &run,
            Some(&flow),
            State::new(StateType::Running, later),
            false,
            later,
            0.5,
        );
        assert_eq!(
            retrying.decision.state_to_write().map(|s| s.name.as_str()),
            Some("Retrying")
        );
        let mut not_retriable = State::new(StateType::Failed, now);
        not_retriable.state_details.retriable = Some(false);
        let mut run = task_in(StateType::Running);
        run.empirical_policy.retries = Some(3);
        assert_eq!(
            orchestrate_task_run(&run, None, not_retriable, false, now, 0.5)
                .decision
                .status(),
            SetStateStatus::Accept
        );
    }

    #[test]
    fn running_before_the_scheduled_time_waits_rounded() {
        let mut run = task_in(StateType::Scheduled);
        let now = Utc::now();
        if let Some(s) = run.state.as_mut() {
            s.state_details.scheduled_time = Some(now + chrono::Duration::milliseconds(29_600));
        }
        assert_eq!(
            orchestrate_task_run(
                &run,
                None,
                State::new(StateType::Running, now),
                false,
                now,
                0.5
            )
            .decision,
            Decision::Wait {
                delay_seconds: 30,
                reason: "Scheduled time is in the future".into()
            }
        );
        assert_eq!(
            delay_seconds(now + chrono::Duration::milliseconds(29_400), now),
            29
        );
        assert_eq!(
            delay_seconds(now - chrono::Duration::milliseconds(400), now),
            0
        );
    }

    #[test]
    fn bookkeeping_follows_prefects_global_policy() {
        let now = Utc::now();
        let mut run = TaskRun::new(Uuid::now_v7(), "t".into(), "k".into(), "0".into(), now);
        let fr = Uuid::new_v4();
        run.flow_run_id = Some(fr);
        apply_task_state(&mut run, State::new(StateType::Pending, now), now);
        assert_eq!(run.expected_start_time, Some(now));
        let t1 = now + chrono::Duration::seconds(1);
        apply_task_state(&mut run, State::new(StateType::Running, t1), t1);
        let t2 = now + chrono::Duration::milliseconds(3500);
        apply_task_state(&mut run, State::new(StateType::Completed, t2), t2);
        assert_eq!(
            (run.start_time, run.end_time, run.run_count),
            (Some(t1), Some(t2), 1)
        );
        assert_eq!(run.total_run_time, 2.5);
        assert_eq!(run.estimated_start_time_delta, 1.0);
        let s = run.state.as_ref().unwrap();
        assert_eq!(
            (s.state_details.flow_run_id, s.state_details.task_run_id),
            (Some(fr), Some(run.id))
        );
        assert_eq!(
            (run.state_type, run.state_name.as_deref()),
            (Some(StateType::Completed), Some("Completed"))
        );
    }

    #[test]
    fn jitter_stays_within_prefects_clamp() {
        let hi = clamped_poisson_interval(10.0, 0.3, 0.999_999);
        let lo = clamped_poisson_interval(10.0, 0.3, 0.0);
        assert!((hi - 13.0).abs() < 1e-3, "{hi}");
        assert!(lo > 0.0 && lo < 10.0, "{lo}");
    }
}
