//! Flow run use cases of the API: create a run (`POST /flow_runs/` and `POST
//! /deployments/{id}/create_flow_run`, with the same checks), `set_state` with orchestration,
//! `PATCH /flow_runs/{id}` and the labels update. Every change of a stored run goes through
//! [`Service::modify_flow_run`] (the bounded optimistic write); the API only parses, calls and
//! maps [`UseCaseError`] to a response.
//!
//! The checks a new run passes, whichever route made it:
//! - `empirical_policy`: retry delays between 0 and [`MAX_RETRY_DELAY_SECONDS`];
//! - the flow exists (`flow_id`), and the deployment when one is named (`deployment_id`);
//! - job variables: when the run has a deployment with a work pool, the deployment's job
//!   variables merged with the run's are validated against the pool's base job template
//!   (its `variables` schema, then the limits of the pool type's provider), as Prefect's
//!   `validate_job_variables_for_deployment_flow_run` does; a run without a work pool has no
//!   schema to check against (Prefect skips it too);
//! - a run without a `name` gets a generated one (Prefect's adjective-animal names); an
//!   `idempotency_key` already used for the flow returns that run (`created = false`).

use chrono::Utc;
use pushpool_core::model::{Deployment, EmpiricalPolicy, FlowRun, Object, WorkPool};
use pushpool_core::orchestration::{Decision, apply_decision, apply_state, orchestrate};
use pushpool_core::state::{State, StateCreate, StateType};
use pushpool_core::template::merge_job_variables;
use pushpool_providers::ProviderError;
use pushpool_store::StoreError;
use serde::Deserialize;
use serde_json::Value;
use tracing::info;
use uuid::Uuid;

use crate::write::Plan;
use crate::{Service, UseCaseError};

/// Longest retry delay accepted in a flow run's `empirical_policy`, in seconds: 365 days.
///
/// Prefect declares `retry_delay` as an integer with no bound, and its server fails (an
/// `OverflowError` adding the delay to the current time) on a delay past the year 9999. A
/// retry delayed by more than a year is no longer a retry, so pushpool refuses such a policy
/// when the run is created or updated, naming the field, rather than at the failure that would
/// schedule the retry.
pub const MAX_RETRY_DELAY_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// For `Option<Option<T>>` fields of PATCH bodies: absent stays `None` (via `default`), an
/// explicit `null` becomes `Some(None)` and clears the field, as Prefect's `exclude_unset`
/// updates do.
fn explicit<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// Prefect's `FlowRunCreate` (`POST /flow_runs/`: local runs, subflows, runs the engine
/// creates itself).
#[derive(Debug, Default, Deserialize)]
pub struct FlowRunCreate {
    /// The flow.
    pub flow_id: Uuid,
    /// The name (generated when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// The deployment, if any.
    #[serde(default)]
    pub deployment_id: Option<Uuid>,
    /// The first state (PENDING when absent).
    #[serde(default)]
    pub state: Option<StateCreate>,
    /// The flow's version.
    #[serde(default)]
    pub flow_version: Option<String>,
    /// Parameters.
    #[serde(default)]
    pub parameters: Option<Object>,
    /// Context.
    #[serde(default)]
    pub context: Option<Object>,
    /// The tracking task run of a subflow.
    #[serde(default)]
    pub parent_task_run_id: Option<Uuid>,
    /// Retries.
    #[serde(default)]
    pub empirical_policy: Option<EmpiricalPolicy>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Labels (`prefect.flow.id` is added).
    #[serde(default)]
    pub labels: Option<Object>,
    /// Idempotency key: a second create with the same key for the flow returns the first run.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Job variables.
    #[serde(default)]
    pub job_variables: Option<Object>,
}

/// Prefect's `DeploymentFlowRunCreate` (`POST /deployments/{id}/create_flow_run`).
#[derive(Debug, Default, Deserialize)]
pub struct DeploymentFlowRunCreate {
    /// The first state (SCHEDULED now when absent).
    #[serde(default)]
    pub state: Option<StateCreate>,
    /// The name (generated when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// Parameters, merged over the deployment's.
    #[serde(default)]
    pub parameters: Option<Object>,
    /// Context.
    #[serde(default)]
    pub context: Option<Object>,
    /// Tags, added to the deployment's.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Idempotency key.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The tracking task run of a `run_deployment` inside a flow.
    #[serde(default)]
    pub parent_task_run_id: Option<Uuid>,
    /// Job variables, over the deployment's.
    #[serde(default)]
    pub job_variables: Option<Object>,
    /// Labels, over the deployment's.
    #[serde(default)]
    pub labels: Option<Object>,
    /// Retries.
    #[serde(default)]
    pub empirical_policy: Option<EmpiricalPolicy>,
    /// A queue of the deployment's pool to run in instead of the deployment's (created when
    /// the pool lacks it, as Prefect does); 400 for a deployment without a pool.
    #[serde(default)]
    pub work_queue_name: Option<String>,
}

/// Prefect's `FlowRunUpdate` (`PATCH /flow_runs/{id}`): each field given replaces the run's.
#[derive(Debug, Default, Deserialize)]
pub struct FlowRunUpdate {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Flow version (`null` clears it).
    #[serde(default, deserialize_with = "explicit")]
    pub flow_version: Option<Option<String>>,
    /// Parameters.
    #[serde(default)]
    pub parameters: Option<Object>,
    /// Retries.
    #[serde(default)]
    pub empirical_policy: Option<EmpiricalPolicy>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Infrastructure pid (`null` clears it).
    #[serde(default, deserialize_with = "explicit")]
    pub infrastructure_pid: Option<Option<String>>,
    /// Job variables.
    #[serde(default)]
    pub job_variables: Option<Object>,
}

/// What `set_state` did: the decision, the state to answer with (the written one, else the
/// current one), and whether a state was written.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRunTransition {
    /// The orchestration outcome.
    pub decision: Decision,
    /// The state written, or the run's current state when nothing was written.
    pub state: Option<State>,
    /// Whether a state was written (HTTP 201) or not (200, as Prefect answers when the
    /// returned state is older than the request: ABORT, WAIT, REJECT keeping the state).
    pub written: bool,
}

/// Checks the retry delays of a flow run's `empirical_policy`: `retry_delay` and its
/// deprecated alias `retry_delay_seconds` (the fallback when `retry_delay` is null) must lie
/// between 0 and [`MAX_RETRY_DELAY_SECONDS`]. A negative delay is refused too: Prefect's
/// client never sends one, and it would schedule the retry in the past.
///
/// # Errors
/// [`UseCaseError::Invalid`] naming `empirical_policy.retry_delay` (or `.retry_delay_seconds`).
pub fn check_empirical_policy(policy: &EmpiricalPolicy) -> Result<(), UseCaseError> {
    for (field, value) in [
        ("retry_delay", policy.retry_delay),
        ("retry_delay_seconds", Some(policy.retry_delay_seconds)),
    ] {
        if let Some(v) = value.filter(|v| !(0.0..=MAX_RETRY_DELAY_SECONDS).contains(v)) {
            return Err(UseCaseError::Invalid(format!(
                "empirical_policy.{field}: {v} seconds is out of range: from 0 to \
                 {MAX_RETRY_DELAY_SECONDS} (365 days)"
            )));
        }
    }
    Ok(())
}

/// Whether `run` may take new job variables (Prefect's `update_flow_run`): it has a state
/// and it is SCHEDULED.
///
/// # Errors
/// `BadRequest` with Prefect's detail.
fn job_variables_updatable(run: &FlowRun) -> Result<(), UseCaseError> {
    match run.state_type {
        None => Err(UseCaseError::BadRequest(
            "Flow run state is required to update job variables but none exists".into(),
        )),
        Some(StateType::Scheduled) => Ok(()),
        Some(other) => Err(UseCaseError::BadRequest(format!(
            "Job variables for a flow run in state {} cannot be updated",
            other.as_str()
        ))),
    }
}

fn pending() -> StateCreate {
    StateCreate {
        r#type: StateType::Pending,
        name: None,
        message: None,
        data: None,
        state_details: None,
    }
}

impl Service {
    /// The work pool named `name`, for a field of that name.
    ///
    /// # Errors
    /// `NotFound` naming `work_pool_name`; `Store`.
    pub async fn work_pool_named(&self, name: &str) -> Result<WorkPool, UseCaseError> {
        match self.store().read_work_pool(name).await {
            Ok(p) => Ok(p),
            Err(StoreError::NotFound(m)) => {
                Err(UseCaseError::NotFound(format!("work_pool_name: {m}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Validates `vars` against `pool`'s `variables` schema (compiled once per pool version),
    /// then, merged over the schema's defaults, against the documented limits of the pool
    /// type's provider ([`pushpool_providers::Provider::check_job_variables`]: Cloud Run cpu
    /// values, ACI memory sizes, ...), so a value the cloud would refuse is a 422 now rather
    /// than a CRASHED run later.
    ///
    /// # Errors
    /// `Invalid` naming the field (`job_variables.cpu`), or the pool when its template does
    /// not parse.
    pub fn validate_job_variables(
        &self,
        pool: &WorkPool,
        vars: &Object,
    ) -> Result<(), UseCaseError> {
        let template = self
            .template(pool)
            .map_err(|e| UseCaseError::Invalid(format!("work pool {:?}: {e}", pool.name)))?;
        template
            .validate(vars)
            .map_err(|e| UseCaseError::Invalid(e.to_string()))?;
        if let Some(provider) = self.providers().get(&pool.r#type) {
            let merged = merge_job_variables(&[&template.defaults(), vars]);
            provider.check_job_variables(&merged).map_err(|e| match e {
                ProviderError::InvalidConfiguration { field, message } => UseCaseError::Invalid(
                    format!("invalid job variables: job_variables.{field}: {message}"),
                ),
                other => UseCaseError::Invalid(format!("invalid job variables: {other}")),
            })?;
        }
        Ok(())
    }

    /// The work pool of a run of `deployment` with job variables `run_vars`, after checking
    /// the deployment's job variables merged with the run's against it (see
    /// [`Service::validate_job_variables`]); `None` when the deployment has no pool.
    async fn check_run_job_variables(
        &self,
        deployment: &Deployment,
        run_vars: &Object,
    ) -> Result<Option<WorkPool>, UseCaseError> {
        let Some(name) = &deployment.work_pool_name else {
            return Ok(None);
        };
        let pool = self.work_pool_named(name).await?;
        let merged = merge_job_variables(&[&deployment.job_variables, run_vars]);
        self.validate_job_variables(&pool, &merged)?;
        Ok(Some(pool))
    }

    /// Stores a new run (or finds the one of its idempotency key), then copies its state to
    /// its parent task run when it is a subflow run.
    async fn insert_flow_run(&self, run: FlowRun) -> Result<(FlowRun, bool), UseCaseError> {
        let (run, created) = self.store().create_flow_run(&run).await?;
        if created {
            self.flow_run_written(None, &run).await;
            self.update_subflow_parent_task(&run).await;
            info!(
                flow_run_id = %run.id,
                work_pool = run.work_pool_name.as_deref().unwrap_or(""),
                "flow run '{}' ({}) created: {}",
                run.name,
                run.id,
                run.state_type.map_or("-", |t| t.as_str())
            );
        }
        Ok((run, created))
    }

    /// `POST /flow_runs/`: creates a run of a flow (PENDING when no state is given, expected
    /// to start now), or returns the run of the same flow and `idempotency_key`: `(run,
    /// created)`. The checks are the module's.
    ///
    /// # Errors
    /// `Invalid` (`empirical_policy.*`, `job_variables.*`); `NotFound` (`flow_id: flow <id>
    /// not found`, `deployment_id: deployment <id> not found`, `work_pool_name: ...`); `Store`.
    pub async fn create_flow_run(
        &self,
        body: FlowRunCreate,
    ) -> Result<(FlowRun, bool), UseCaseError> {
        if let Some(policy) = &body.empirical_policy {
            check_empirical_policy(policy)?;
        }
        match self.store().read_flow(body.flow_id).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                return Err(UseCaseError::NotFound(format!(
                    "flow_id: flow {} not found",
                    body.flow_id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let job_variables = body.job_variables.unwrap_or_default();
        if let Some(deployment_id) = body.deployment_id {
            let deployment = match self.store().read_deployment(deployment_id).await {
                Ok(d) => d,
                Err(StoreError::NotFound(_)) => {
                    return Err(UseCaseError::NotFound(format!(
                        "deployment_id: deployment {deployment_id} not found"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            self.check_run_job_variables(&deployment, &job_variables)
                .await?;
        }
        let now = Utc::now();
        let id = Uuid::new_v4();
        let first = body.state.unwrap_or_else(pending).into_state(id, now);
        let mut labels = body.labels.unwrap_or_default();
        labels.insert(
            "prefect.flow.id".into(),
            Value::String(body.flow_id.to_string()),
        );
        let mut run = FlowRun::new(
            id,
            body.flow_id,
            body.name
                .unwrap_or_else(pushpool_core::names::flow_run_name),
            now,
        );
        run.deployment_id = body.deployment_id;
        run.flow_version = body.flow_version;
        run.parameters = body.parameters.unwrap_or_default();
        run.idempotency_key = body.idempotency_key;
        run.context = body.context.unwrap_or_default();
        run.empirical_policy = body.empirical_policy.unwrap_or_default();
        run.tags = body.tags.unwrap_or_default();
        run.labels = labels;
        run.parent_task_run_id = body.parent_task_run_id;
        // Prefect's `SetExpectedStartTime`: a first SCHEDULED state's time, else now.
        if first.r#type != StateType::Scheduled {
            run.expected_start_time = Some(now);
        }
        run.job_variables = job_variables;
        apply_state(&mut run, first, now);
        self.insert_flow_run(run).await
    }

    /// `POST /deployments/{id}/create_flow_run`: a run of the deployment (SCHEDULED now when
    /// no state is given) in its work pool, with the deployment's parameters, tags, labels
    /// and job variables under the request's, or the run of the same flow and
    /// `idempotency_key`: `(run, created)`. The checks are the module's.
    ///
    /// # Errors
    /// `Invalid` (`empirical_policy.*`, `job_variables.*`); `Store(NotFound)` for an unknown
    /// deployment; `NotFound` (`work_pool_name: ...`); `Store`.
    pub async fn create_flow_run_from_deployment(
        &self,
        deployment_id: Uuid,
        body: DeploymentFlowRunCreate,
    ) -> Result<(FlowRun, bool), UseCaseError> {
        if let Some(policy) = &body.empirical_policy {
            check_empirical_policy(policy)?;
        }
        let deployment = self.store().read_deployment(deployment_id).await?;
        if let Some(queue) = &body.work_queue_name {
            if deployment.work_pool_name.is_none() {
                return Err(UseCaseError::BadRequest(format!(
                    "Cannot create flow run in work queue {queue} because deployment \
                     {deployment_id} is not associated with a work pool. Please remove \
                     work_pool_name and try again."
                )));
            }
        }
        let job_variables = body.job_variables.unwrap_or_default();
        let pool = self
            .check_run_job_variables(&deployment, &job_variables)
            .await?;
        let mut parameters = deployment.parameters.clone();
        for (k, v) in body.parameters.unwrap_or_default() {
            parameters.insert(k, v);
        }
        let mut tags = deployment.tags.clone();
        for t in body.tags.unwrap_or_default() {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let mut labels = deployment.labels.clone();
        labels.insert(
            "prefect.deployment.id".into(),
            Value::String(deployment.id.to_string()),
        );
        for (k, v) in body.labels.unwrap_or_default() {
            labels.insert(k, v);
        }
        let now = Utc::now();
        let run_id = Uuid::new_v4();
        let proposed = body.state.unwrap_or(StateCreate {
            r#type: StateType::Scheduled,
            ..pending()
        });
        let first = proposed.into_state(run_id, now);
        let mut run = FlowRun::new(
            run_id,
            deployment.flow_id,
            body.name
                .unwrap_or_else(pushpool_core::names::flow_run_name),
            now,
        );
        run.deployment_id = Some(deployment.id);
        run.deployment_version = deployment.version.clone();
        run.work_queue_name = deployment.work_queue_name.clone();
        if let Some(p) = &pool {
            // The queue named by the request, else the deployment's (made if it was deleted
            // since, as Prefect's `create_flow_run_from_deployment` does for a named queue).
            let name = body
                .work_queue_name
                .as_deref()
                .or(deployment.work_queue_name.as_deref())
                .unwrap_or(crate::queues::DEFAULT_QUEUE_NAME);
            let queue = crate::queues::queue_for_deployment(self.store().as_ref(), p, name).await?;
            run.work_queue_id = Some(queue.id);
            run.work_queue_name = Some(queue.name);
        }
        run.parameters = parameters;
        run.idempotency_key = body.idempotency_key;
        run.context = body.context.unwrap_or_default();
        run.empirical_policy = body.empirical_policy.unwrap_or_default();
        run.tags = tags;
        run.labels = labels;
        run.parent_task_run_id = body.parent_task_run_id;
        run.infrastructure_document_id = deployment.infrastructure_document_id;
        run.work_pool_id = pool.as_ref().map(|p| p.id);
        run.work_pool_name = pool.as_ref().map(|p| p.name.clone());
        run.job_variables = job_variables;
        if first.r#type != StateType::Scheduled {
            run.expected_start_time = Some(now);
        }
        apply_state(&mut run, first, now);
        self.insert_flow_run(run).await
    }

    /// `POST /flow_runs/{id}/set_state`: orchestrates `proposed` (see
    /// `pushpool_core::orchestration`; `force` skips the rules) against the run as stored
    /// and writes the resulting state on the run's version ([`Service::modify_flow_run`]:
    /// a lost race orchestrates again against the new state). A written state of a subflow
    /// run is copied to its parent task run.
    ///
    /// # Errors
    /// `Store(NotFound)` for an unknown run; `KeptChanging`; `Store`.
    pub async fn set_flow_run_state(
        &self,
        id: Uuid,
        proposed: StateCreate,
        force: bool,
    ) -> Result<FlowRunTransition, UseCaseError> {
        let done = self
            .modify_flow_run::<_, UseCaseError>(id, |run| {
                let now = Utc::now();
                let decision = orchestrate(run, proposed.clone().into_state(id, now), force, now);
                if decision.state_to_write().is_none() {
                    return Ok(Plan::Keep(decision));
                }
                let mut next = run.clone();
                apply_decision(&mut next, &decision, force, now);
                Ok(Plan::write(next, decision))
            })
            .await?;
        let decision = done.answer;
        let Some(written) = done.written else {
            return Ok(FlowRunTransition {
                decision,
                state: done.read.state,
                written: false,
            });
        };
        self.update_subflow_parent_task(&written).await;
        if let Some(state) = written.state.as_ref() {
            self.forget_pause_inputs(id, state).await;
        }
        let state = decision.state_to_write().cloned();
        info!(
            flow_run_id = %id,
            work_pool = written.work_pool_name.as_deref().unwrap_or(""),
            "flow run '{}' ({}): {} -> {} (reported)",
            written.name,
            id,
            done.read.state_type.map_or("-", |t| t.as_str()),
            state.as_ref().map_or("-", |s| s.r#type.as_str())
        );
        Ok(FlowRunTransition {
            decision,
            state,
            written: true,
        })
    }

    /// `PATCH /flow_runs/{id}`: replaces each field the body gives.
    ///
    /// New `job_variables` follow Prefect's `update_flow_run`: only a SCHEDULED run of a
    /// deployment takes them (400 otherwise, with Prefect's details), and the deployment's
    /// job variables merged with them are validated against its work pool as when a run is
    /// created (a deployment without a pool has nothing to check against). The run's state
    /// and deployment are checked again on the version written.
    ///
    /// # Errors
    /// `Invalid` (`empirical_policy.*`, `job_variables.*`); `BadRequest` (job variables of a
    /// run that is not SCHEDULED or has no deployment); `Store(NotFound)`; `KeptChanging`;
    /// `Store`.
    pub async fn update_flow_run(
        &self,
        id: Uuid,
        body: FlowRunUpdate,
    ) -> Result<FlowRun, UseCaseError> {
        if let Some(policy) = &body.empirical_policy {
            check_empirical_policy(policy)?;
        }
        let mut checked_deployment = None;
        if let Some(vars) = &body.job_variables {
            let run = self.store().read_flow_run(id).await?;
            job_variables_updatable(&run)?;
            let no_deployment = || {
                UseCaseError::BadRequest("A deployment for the flow run could not be found".into())
            };
            let deployment_id = run.deployment_id.ok_or_else(no_deployment)?;
            let deployment = match self.store().read_deployment(deployment_id).await {
                Ok(d) => d,
                Err(StoreError::NotFound(_)) => return Err(no_deployment()),
                Err(e) => return Err(e.into()),
            };
            self.check_run_job_variables(&deployment, vars).await?;
            checked_deployment = Some(deployment_id);
        }
        let done = self
            .modify_flow_run::<_, UseCaseError>(id, |run| {
                if body.job_variables.is_some() {
                    job_variables_updatable(run)?;
                    if run.deployment_id != checked_deployment {
                        return Err(UseCaseError::BadRequest(
                            "A deployment for the flow run could not be found".into(),
                        ));
                    }
                }
                let mut next = run.clone();
                if let Some(v) = &body.name {
                    next.name = v.clone();
                }
                if let Some(v) = &body.flow_version {
                    next.flow_version = v.clone();
                }
                if let Some(v) = &body.parameters {
                    next.parameters = v.clone();
                }
                if let Some(v) = &body.empirical_policy {
                    next.empirical_policy = v.clone();
                }
                if let Some(v) = &body.tags {
                    next.tags = v.clone();
                }
                if let Some(v) = &body.infrastructure_pid {
                    next.infrastructure_pid = v.clone();
                }
                if let Some(v) = &body.job_variables {
                    next.job_variables = v.clone();
                }
                next.updated = Utc::now();
                Ok(Plan::write(next, ()))
            })
            .await?;
        done.written
            .ok_or_else(|| StoreError::Backend("a planned write was not made".into()).into())
    }

    /// `DELETE /flow_runs/{id}`: deletes the run with its state history, then its task runs
    /// and its inputs (Prefect's `flow_run_id` foreign keys cascade the same way). An active
    /// run gives its concurrency slots back first ([`Service::give_back_slots`]).
    ///
    /// # Errors
    /// `Store(NotFound)` ("Flow run not found"); `Store`.
    pub async fn delete_flow_run(&self, id: Uuid) -> Result<(), UseCaseError> {
        self.give_back_slots(id).await?;
        self.store().delete_flow_run(id).await?;
        let task_runs = self
            .store()
            .list_task_runs(&pushpool_store::TaskRunFilter {
                flow_run_ids: Some(vec![id]),
                ..pushpool_store::TaskRunFilter::default()
            })
            .await?;
        for task_run in task_runs {
            match self.store().delete_task_run(task_run.id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for input in self.store().list_flow_run_inputs(id).await? {
            match self.store().delete_flow_run_input(id, &input.key).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `PATCH /flow_runs/{id}/labels`: sets each label given, keeping the others.
    ///
    /// # Errors
    /// `Store(NotFound)`; `KeptChanging`; `Store`.
    pub async fn update_flow_run_labels(
        &self,
        id: Uuid,
        labels: Object,
    ) -> Result<FlowRun, UseCaseError> {
        self.change_flow_run(id, |run| {
            for (k, v) in &labels {
                run.labels.insert(k.clone(), v.clone());
            }
        })
        .await
    }

    /// Applies `change` to the latest version of the run and writes it (with a new `updated`).
    async fn change_flow_run(
        &self,
        id: Uuid,
        change: impl Fn(&mut FlowRun),
    ) -> Result<FlowRun, UseCaseError> {
        let done = self
            .modify_flow_run::<_, UseCaseError>(id, |run| {
                let mut next = run.clone();
                change(&mut next);
                next.updated = Utc::now();
                Ok(Plan::write(next, ()))
            })
            .await?;
        done.written
            .ok_or_else(|| StoreError::Backend("a planned write was not made".into()).into())
    }
}
