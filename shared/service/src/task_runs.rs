//! Task run use cases: create (idempotent on `(flow_run_id, task_key, dynamic_key)`),
//! orchestrated `set_state`, and keeping a subflow's tracking task run in step with its flow
//! run (Prefect's `UpdateSubflowParentTask`).
//!
//! A subflow (a flow called from a flow) and `run_deployment` inside a flow make the engine
//! create a task run in the parent flow run, then a flow run whose `parent_task_run_id` is
//! that task run. Prefect's server copies every state the child flow run enters onto the
//! task run (forced, with `child_flow_run_id` set); the engine never sets that task run's
//! state itself, so this copy is what finishes it.

use chrono::Utc;
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::Decision;
use pushpool_core::state::{State, StateCreate, StateType};
use pushpool_core::task_orchestration::{
    apply_task_state, orchestrate_task_run, subflow_parent_task_state,
};
use pushpool_core::task_run::{TaskRun, TaskRunCreate};
use pushpool_store::StoreError;
use tracing::{info, warn};
use uuid::Uuid;

use crate::write::retry_on_conflict;
use crate::{Service, TaskRunError};

/// What `set_state` did: the decision, the state to answer with (the written one, else the
/// current one), and whether a state was written.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunTransition {
    /// The orchestration outcome.
    pub decision: Decision,
    /// The state written, or the run's current state when nothing was written.
    pub state: Option<State>,
    /// Whether a state was written (HTTP 201) or not (200).
    pub written: bool,
}

fn refuse_deferred(state: Option<&StateCreate>) -> Result<(), TaskRunError> {
    if state
        .and_then(|s| s.state_details.as_ref())
        .and_then(|d| d.deferred)
        == Some(true)
    {
        return Err(TaskRunError::Invalid(
            "state.state_details.deferred: background (deferred) task runs are not supported: \
             pushpool serves no task worker subscription"
                .into(),
        ));
    }
    Ok(())
}

impl Service {
    /// `POST /task_runs/`: creates the task run with its first state (PENDING when none is
    /// given; written without orchestration, as Prefect's server forces it), or returns the
    /// existing run of the same `(flow_run_id, task_key, dynamic_key)`: `(run, created)`.
    ///
    /// # Errors
    /// `Invalid` for a deferred state or a bad field (see [`TaskRunCreate::into_task_run`]);
    /// `NotFound` ("flow_run_id: flow run <id> not found") for an unknown flow run; `Store`.
    pub async fn create_task_run(
        &self,
        body: TaskRunCreate,
    ) -> Result<(TaskRun, bool), TaskRunError> {
        refuse_deferred(body.state.as_ref())?;
        let flow_run = match body.flow_run_id {
            Some(id) => match self.store().read_flow_run(id).await {
                Ok(run) => Some(run),
                Err(StoreError::NotFound(_)) => {
                    return Err(TaskRunError::NotFound(format!(
                        "flow_run_id: flow run {id} not found"
                    )));
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let now = Utc::now();
        let first = body.state.clone().unwrap_or(StateCreate {
            r#type: StateType::Pending,
            name: None,
            message: None,
            data: None,
            state_details: None,
        });
        let mut run = body
            .into_task_run(now, flow_run.as_ref().map(|f| &f.labels))
            .map_err(TaskRunError::Invalid)?;
        let state = first.into_state(run.flow_run_id.unwrap_or_default(), now);
        apply_task_state(&mut run, state, now);
        let (run, created) = self.store().create_task_run(&run).await?;
        if created {
            info!(
                task_run_id = %run.id,
                flow_run_id = run.flow_run_id.map(|f| f.to_string()).unwrap_or_default(),
                "task run '{}' created: {}",
                run.name,
                run.state_type.map_or("-", |t| t.as_str())
            );
        }
        Ok((run, created))
    }

    /// `POST /task_runs/{id}/set_state`: orchestrates `proposed` with Prefect's task policy
    /// (see `pushpool_core::task_orchestration`; `force` skips the rules) and writes the
    /// resulting state on the run's version, re-reading on a conflict.
    ///
    /// # Errors
    /// `Invalid` for a deferred state; `Store(NotFound)` for an unknown task run; `Store`.
    pub async fn set_task_run_state(
        &self,
        id: Uuid,
        proposed: StateCreate,
        force: bool,
    ) -> Result<TaskRunTransition, TaskRunError> {
        refuse_deferred(Some(&proposed))?;
        retry_on_conflict("task run", id, || async {
            let run = self.store().read_task_run(id).await?;
            let flow_run = match run.flow_run_id {
                Some(fid) => match self.store().read_flow_run(fid).await {
                    Ok(f) => Some(f),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            let now = Utc::now();
            let state = proposed
                .clone()
                .into_state(run.flow_run_id.unwrap_or_default(), now);
            let decision = orchestrate_task_run(
                &run,
                flow_run.as_ref(),
                state,
                force,
                now,
                rand::random::<f64>(),
            );
            let mut next = run.clone();
            if !decision.apply(&mut next, now) {
                return Ok(TaskRunTransition {
                    decision: decision.decision,
                    state: run.state,
                    written: false,
                });
            }
            let written = self.store().update_task_run(&next).await?;
            info!(
                task_run_id = %id,
                "task run '{}': {} -> {} (reported)",
                written.name,
                run.state_type.map_or("-", |t| t.as_str()),
                written.state_type.map_or("-", |t| t.as_str())
            );
            Ok(TaskRunTransition {
                decision: decision.decision,
                state: written.state,
                written: true,
            })
        })
        .await
    }

    /// `PATCH /task_runs/{id}`: renames the task run when `name` is given (Prefect's
    /// `TaskRunUpdate` has only the name), on the run's version.
    ///
    /// # Errors
    /// `Store(NotFound)` ("Task run not found"); `KeptChanging`; `Store`.
    pub async fn update_task_run_name(
        &self,
        id: Uuid,
        name: Option<String>,
    ) -> Result<TaskRun, TaskRunError> {
        retry_on_conflict("task run", id, || async {
            let mut run = self.store().read_task_run(id).await?;
            if let Some(name) = &name {
                run.name = name.clone();
            }
            run.updated = Utc::now();
            Ok(self.store().update_task_run(&run).await?)
        })
        .await
    }

    /// After a state of flow run `child` was written: when it is a subflow run
    /// (`parent_task_run_id` set), writes a copy of its current state onto that task run,
    /// forced, with `child_flow_run_id` set (Prefect's `UpdateSubflowParentTask`).
    ///
    /// Best effort, after the child's write committed (Prefect does both in one transaction):
    /// a missing task run is logged and skipped (pushpool does not refuse a flow run whose
    /// parent task run is gone), and a failed write is logged; the child's next state brings
    /// the task run up to date, since the copy is always of the child's latest state.
    pub async fn update_subflow_parent_task(&self, child: &FlowRun) {
        let (Some(task_run_id), Some(state)) = (child.parent_task_run_id, child.state.as_ref())
        else {
            return;
        };
        let copied =
            retry_on_conflict::<_, TaskRunError, _, _>("task run", task_run_id, || async {
                let run = self.store().read_task_run(task_run_id).await?;
                let now = Utc::now();
                let mut next = run.clone();
                apply_task_state(&mut next, subflow_parent_task_state(child, state, now), now);
                self.store().update_task_run(&next).await?;
                Ok(())
            })
            .await;
        match copied {
            Ok(()) => {}
            Err(TaskRunError::Store(StoreError::NotFound(_))) => {
                warn!(flow_run_id = %child.id, task_run_id = %task_run_id,
                    "the parent task run of this subflow run does not exist; its state is not copied");
            }
            Err(e) => {
                warn!(flow_run_id = %child.id, task_run_id = %task_run_id, error = %e,
                    "could not copy the subflow run's state to its parent task run");
            }
        }
    }
}
