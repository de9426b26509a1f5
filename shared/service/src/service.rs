//! [`Service`]: submit, reconcile and cancel, one flow run at a time, each a single step
//! that returns an [`Outcome`] (zero-to-production's issue-delivery worker is the model).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use pushpool_core::filter::FlowRunFilter;
use pushpool_core::model::{Deployment, FlowRun, WorkPool};
use pushpool_core::orchestration::{Decision, apply_decision, orchestrate};
use pushpool_core::state::{State, StateType};
use pushpool_core::template::BaseJobTemplate;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_store::{FlowRunQuery, Store, StoreError};
use tracing::{info, warn};
use uuid::Uuid;

use crate::job::{JobBuildError, build_job};
use crate::write::{Conflict, KeptChanging, Plan};

/// How long transient provider errors are retried by default: long enough to ride out a
/// minute of throttling (cloud APIs throttle for tens of seconds, not the 3.5 s of 4 quick
/// tries). `pushpool serve --provider-retry-budget` and the functions'
/// `PUSHPOOL_PROVIDER_RETRY_BUDGET` change it.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(75);

/// The longest wait between two tries of a provider call before jitter (backon's jitter
/// adds up to as much again): the AWS SDKs' own cap on a retry backoff is 20 s.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

/// How much longer than [`ServiceConfig::retry_budget`] the claim deadline must be: the
/// last try starts at most `retry_budget` after the first and may itself take a while (an
/// SDK call has its own retries and timeouts); a claim deadline shorter than both would let
/// the reconciler resubmit a run whose submitter is still trying.
pub const CLAIM_DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The `PREFECT_API_URL` handed to jobs (`http://127.0.0.1:4200/api`).
    pub api_url: String,
    /// The `PREFECT_API_KEY` handed to jobs, when the API requires one.
    pub api_key: Option<String>,
    /// A PENDING run with no infrastructure pid older than this is resubmitted (same
    /// idempotency key): its submitter died between the claim and the pid write. Must be at
    /// least `retry_budget` + [`CLAIM_DEADLINE_MARGIN`] ([`ServiceConfig::validate`]);
    /// [`ServiceConfig::with_retry_budget`] sets it so.
    pub claim_deadline: Duration,
    /// A run whose infrastructure is reported missing for longer than this ends CRASHED
    /// (providers can be briefly inconsistent right after a start).
    pub missing_grace: Duration,
    /// How long a provider call is retried on transient errors: waits grow exponentially
    /// from `retry_base_delay` (doubling, at most [`MAX_RETRY_DELAY`] plus jitter, at least
    /// the provider's `Retry-After` up to [`pushpool_providers::MAX_RETRY_AFTER`]), and no
    /// new try starts later than this after the first. Then the run ends CRASHED with the
    /// number of tries and the time they took.
    pub retry_budget: Duration,
    /// First backoff delay.
    pub retry_base_delay: Duration,
    /// How long a final run's job may keep running before its resources are released anyway
    /// (the engine reports the final state a moment before its container exits).
    pub release_grace: Duration,
    /// Time between status reads while waiting for a final run's job to end.
    pub release_poll: Duration,
    /// How long flow run log lines are kept after they were stored: default
    /// [`pushpool_store::DEFAULT_LOG_RETENTION`] (30 days); `PUSHPOOL_LOG_RETENTION_DAYS`.
    /// SQLite: the embedded server's retention task deletes older lines; DynamoDB: each line
    /// carries its TTL (`expires_at`).
    pub log_retention: Duration,
    /// How long events are kept after they were received: default
    /// [`pushpool_store::DEFAULT_EVENT_RETENTION`] (7 days, Prefect's
    /// `PREFECT_EVENTS_RETENTION_PERIOD`); `PUSHPOOL_EVENT_RETENTION_DAYS`. SQLite: the
    /// embedded server's retention task deletes older events; DynamoDB: each event carries
    /// its TTL (`expires_at`).
    pub event_retention: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:4200/api".into(),
            api_key: None,
            claim_deadline: DEFAULT_RETRY_BUDGET + CLAIM_DEADLINE_MARGIN,
            missing_grace: Duration::from_secs(30),
            retry_budget: DEFAULT_RETRY_BUDGET,
            retry_base_delay: Duration::from_millis(500),
            release_grace: Duration::from_secs(60),
            release_poll: Duration::from_secs(2),
            log_retention: pushpool_store::DEFAULT_LOG_RETENTION,
            event_retention: pushpool_store::DEFAULT_EVENT_RETENTION,
        }
    }
}

impl ServiceConfig {
    /// Sets the retry budget and derives the claim deadline from it
    /// (`budget` + [`CLAIM_DEADLINE_MARGIN`]).
    pub fn with_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = budget;
        self.claim_deadline = budget.saturating_add(CLAIM_DEADLINE_MARGIN);
        self
    }

    /// Checks that the timings fit together: the claim deadline exceeds the retry budget by
    /// at least [`CLAIM_DEADLINE_MARGIN`], so that the reconciler never resubmits a run
    /// whose submitter is still retrying.
    ///
    /// # Errors
    /// [`crate::ConfigError::Timing`] saying which setting to change.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let needed = self.retry_budget.saturating_add(CLAIM_DEADLINE_MARGIN);
        if self.claim_deadline < needed {
            return Err(crate::ConfigError::Timing(format!(
                "the claim deadline ({} s) must be at least the provider retry budget ({} s) plus {} s, \
                 or the reconciler would resubmit runs whose submitter is still retrying; \
                 lower the retry budget or raise the claim deadline",
                self.claim_deadline.as_secs(),
                self.retry_budget.as_secs(),
                CLAIM_DEADLINE_MARGIN.as_secs()
            )));
        }
        Ok(())
    }
}

/// What the retries of one provider call did: how many tries, over how long (from the start
/// of the first to the end of the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Tries made (at least 1).
    pub attempts: usize,
    /// Time from the start of the first try to the end of the last.
    pub elapsed: Duration,
}

impl std::fmt::Display for Tries {
    /// `7 attempts over 63 s` (whole seconds, rounded).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "{} attempt{plural} over {} s",
            self.attempts,
            self.elapsed.as_secs_f64().round()
        )
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do, and why.
    Skipped(String),
    /// Not due yet.
    NotDue(DateTime<Utc>),
    /// Another writer changed the run first; it carries on.
    LostRace,
    /// Submitted; the infrastructure pid.
    Submitted(String),
    /// The run was moved to this state.
    Finished(StateType),
    /// The job is still going.
    StillRunning,
    /// A final run's infrastructure was released (deleted, or kept as configured).
    Released(Released),
    /// A job was started for an attempt the run no longer is (it was cancelled or
    /// rescheduled while the submission was in flight): its pid was not recorded and the job
    /// was stopped. Carries the pid.
    Stopped(String),
    /// No concurrency slot: the run waits (SCHEDULED, `AwaitingConcurrencySlot`). Carries
    /// the counter that was full ([`crate::concurrency_slots`]).
    AwaitingConcurrencySlot(String),
}

/// Errors of the use cases that the caller should retry (the run itself is left consistent).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transient provider failure on a status or cancel call; try on the next tick.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The run kept changing under the write ([`crate::MAX_WRITE_ATTEMPTS`] lost races):
    /// the step is left to the next change or tick (a claim without a pid is found by the
    /// reconciler, and the same idempotency key finds its job again).
    #[error(transparent)]
    KeptChanging(#[from] KeptChanging),
}

impl Conflict for ServiceError {
    fn is_version_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::VersionConflict(_)))
    }
}

/// The use cases, over a store and the providers.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    providers: Providers,
    pub(crate) config: ServiceConfig,
    templates: TemplateCache,
    releasing: Arc<Mutex<std::collections::HashSet<Uuid>>>,
    pub(crate) timers: crate::timer::Timers,
    pub(crate) events: crate::events::EventBus,
}

/// Parsed base job templates by (pool id, pool update time).
type TemplateCache = Arc<Mutex<HashMap<(Uuid, DateTime<Utc>), BaseJobTemplate>>>;

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

/// `text` with final punctuation (a period added when it has none).
fn as_sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?', '…']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn short(run: &FlowRun) -> String {
    format!("flow run '{}' ({})", run.name, run.id)
}

impl Service {
    /// A service over `store` and `providers`.
    pub fn new(store: Arc<dyn Store>, providers: Providers, config: ServiceConfig) -> Self {
        Self {
            store,
            providers,
            config,
            templates: Arc::default(),
            releasing: Arc::default(),
            timers: crate::timer::Timers::default(),
            events: crate::events::EventBus::default(),
        }
    }

    /// The API's public URL, as handed to jobs as `PREFECT_API_URL`
    /// (`https://<id>.cloudfront.net/api` on AWS, `http://127.0.0.1:4200/api` embedded by
    /// default): links the API writes into its answers start with it.
    pub fn api_url(&self) -> &str {
        &self.config.api_url
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The providers, by pool type.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The pool's parsed template, compiled once per pool version.
    ///
    /// # Errors
    /// The template's own error when it does not parse.
    pub fn template(
        &self,
        pool: &WorkPool,
    ) -> Result<BaseJobTemplate, pushpool_core::template::TemplateError> {
        let key = (pool.id, pool.updated);
        if let Some(t) = self
            .templates
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(t);
        }
        let parsed = BaseJobTemplate::parse(&pool.base_job_template)?;
        if let Ok(mut m) = self.templates.lock() {
            m.retain(|(id, _), _| *id != pool.id);
            m.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    /// Reacts to a change of one flow run (the change feed's handler): submits it when it is
    /// a due SCHEDULED run of a pool pushpool submits, cancels it when it is CANCELLING, and
    /// releases its infrastructure ([`Service::release`]) when it is final. A final or
    /// PAUSED run gave its concurrency slots back: the runs waiting for one are submitted
    /// ([`Service::submit_waiting`]).
    ///
    /// # Errors
    /// Store failures, for the caller to retry the change.
    pub async fn handle_change(&self, flow_run_id: Uuid) -> Result<Outcome, ServiceError> {
        let run = match self.store.read_flow_run(flow_run_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Ok(Outcome::Skipped("flow run deleted".into())),
            Err(e) => return Err(e.into()),
        };
        match run.state_type {
            Some(StateType::Scheduled) => self.submit(run, Utc::now()).await,
            Some(StateType::Cancelling) => self.cancel(run).await,
            Some(t) if t.is_terminal() => {
                // Its slots were given back with this state: the waiting runs go first.
                self.submit_waiting(&run, Utc::now()).await?;
                self.release(run).await
            }
            Some(StateType::Paused) => {
                self.submit_waiting(&run, Utc::now()).await?;
                Ok(Outcome::Skipped("paused".into()))
            }
            _ => Ok(Outcome::Skipped("nothing to do in this state".into())),
        }
    }

    /// Whether a change to `state_type` may need [`Service::release`]: a final state, when
    /// some provider of this service leaves resources behind (without Cloud Run or ACI, final
    /// changes cost no read at all).
    pub fn is_release_change(&self, state_type: Option<StateType>) -> bool {
        state_type.is_some_and(StateType::is_terminal) && self.providers.any_leaves_resources()
    }

    /// Releases the infrastructure of a final run whose provider leaves resources behind
    /// (a Cloud Run job, an ACI container group), as Prefect's workers do once the job
    /// has ended: waits until [`Provider::status`] says the job ended (reading it every
    /// `release_poll`, at most `release_grace`, after which it releases anyway), then calls
    /// [`Provider::release`], which keeps them when the job configuration says so
    /// (`keep_job`, `keep_container_group`).
    ///
    /// # Errors
    /// Store failures and transient provider failures (the caller retries the change).
    pub async fn release(&self, run: FlowRun) -> Result<Outcome, ServiceError> {
        if !run.state_type.is_some_and(StateType::is_terminal) {
            return Ok(Outcome::Skipped("not final".into()));
        }
        let Some(pid) = run.infrastructure_pid.clone() else {
            return Ok(Outcome::Skipped("no infrastructure".into()));
        };
        let Some(pool) = self.pool_of(&run).await? else {
            return Ok(Outcome::Skipped("no work pool".into()));
        };
        let Some(provider) = self.providers.get(&pool.r#type) else {
            return Ok(Outcome::Skipped("no provider".into()));
        };
        if !pool.is_submitted_by_pushpool() || !provider.leaves_resources() {
            return Ok(Outcome::Skipped("nothing to release".into()));
        }
        let job = match self.job_for(&run, &pool).await {
            Ok(job) => job,
            Err(JobBuildError::Store(e)) => return Err(e.into()),
            Err(e) => {
                warn!(flow_run_id = %run.id, error = %e, "cannot build the job to release its infrastructure");
                return Ok(Outcome::Skipped("job cannot be built".into()));
            }
        };
        let provider: &dyn Provider = provider.as_ref();
        let deadline = tokio::time::Instant::now() + self.config.release_grace;
        loop {
            match provider.status(&job, &pid).await {
                Ok(JobStatus::Pending | JobStatus::Running) => {}
                Ok(_) => break,
                Err(e) if e.is_transient() => {}
                Err(e) => {
                    warn!(flow_run_id = %run.id, error = %e, "reading the job's status before releasing it failed");
                    break;
                }
            }
            if tokio::time::Instant::now() + self.config.release_poll > deadline {
                info!(flow_run_id = %run.id, infrastructure_pid = %pid, "{}: the job is still running {:?} after the final state; releasing it anyway", short(&run), self.config.release_grace);
                break;
            }
            tokio::time::sleep(self.config.release_poll).await;
        }
        match self.with_retries(|| provider.release(&job, &pid)).await {
            Ok(released) => {
                info!(flow_run_id = %run.id, infrastructure_pid = %pid, released = ?released, "{}: infrastructure released", short(&run));
                Ok(Outcome::Released(released))
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                warn!(flow_run_id = %run.id, infrastructure_pid = %pid, error = %e, "releasing the job's infrastructure failed; it is left in place");
                Ok(Outcome::Skipped(format!("release failed: {e}")))
            }
        }
    }

    pub(crate) async fn pool_of(&self, run: &FlowRun) -> Result<Option<WorkPool>, ServiceError> {
        let Some(name) = run.work_pool_name.as_deref() else {
            return Ok(None);
        };
        match self.store.read_work_pool(name).await {
            Ok(p) => Ok(Some(p)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The run's work queue (`None`: a queue deleted since). One read: the queue by id, or
    /// by name for a run in the default queue (see [`crate::queues::queue_of`]).
    pub(crate) async fn queue_of_run(
        &self,
        run: &FlowRun,
        pool: &WorkPool,
    ) -> Result<Option<pushpool_core::model::WorkQueue>, ServiceError> {
        let read = match run.work_queue_id {
            Some(id) if id != pool.default_queue_id => self.store.read_work_queue(id).await,
            _ => {
                let name = run
                    .work_queue_name
                    .as_deref()
                    .unwrap_or(crate::queues::DEFAULT_QUEUE_NAME);
                self.store.read_work_queue_by_name(pool.id, name).await
            }
        };
        match read {
            Ok(q) => Ok(Some(q)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `due` (oldest first) reordered by the priority of each run's work queue, 1 first
    /// (stable: oldest first within a priority; runs without a known queue last). Priorities
    /// are per pool, and so are slots: runs of different pools interleave by number, which
    /// changes nothing for any one pool. This is the order the reconciler submits in, so that
    /// when slots are short the higher-priority queues' runs take them first.
    ///
    /// # Errors
    /// Store failures (reading the pools and queues: two listings per tick).
    pub async fn by_queue_priority(
        &self,
        mut due: Vec<FlowRun>,
    ) -> Result<Vec<FlowRun>, ServiceError> {
        if due.len() < 2 {
            return Ok(due);
        }
        let pools: std::collections::HashMap<String, WorkPool> = self
            .store
            .list_work_pools(pushpool_store::Page::default())
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut queues: std::collections::HashMap<Uuid, Vec<pushpool_core::model::WorkQueue>> =
            std::collections::HashMap::new();
        for q in self.store.list_work_queues(None).await? {
            queues.entry(q.work_pool_id).or_default().push(q);
        }
        let priority = |run: &FlowRun| -> i64 {
            run.work_pool_name
                .as_ref()
                .and_then(|n| pools.get(n))
                .and_then(|p| {
                    let of_pool = queues.get(&p.id).map_or(&[][..], Vec::as_slice);
                    crate::queues::queue_of(run, p, of_pool)
                        .map(|q| q.priority)
                        // The default queue of a pool stored before queues were modelled.
                        .or_else(|| {
                            (run.work_queue_name.as_deref().unwrap_or("default") == "default")
                                .then_some(1)
                        })
                })
                .unwrap_or(i64::MAX)
        };
        due.sort_by_cached_key(priority);
        Ok(due)
    }

    pub(crate) async fn deployment_of(
        &self,
        run: &FlowRun,
    ) -> Result<Option<Deployment>, ServiceError> {
        let Some(id) = run.deployment_id else {
            return Ok(None);
        };
        match self.store.read_deployment(id).await {
            Ok(d) => Ok(Some(d)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes `state` for the run (not forced) and writes it when orchestration accepts it
    /// ([`Service::modify_flow_run`]: on a lost race the run is read and orchestrated
    /// again). Returns the written run, or `None` when the proposal was refused (the run
    /// moved on: e.g. it already COMPLETED).
    ///
    /// The service's proposals are its own reading of the run: each is written only while the
    /// run is still in the state type it was read in (a run someone else moved on in the
    /// meantime is left alone), so e.g. a job's exit code never overwrites the engine's
    /// FAILED, nor the reconciler's COMPLETED a CANCELLED.
    async fn propose(&self, run: FlowRun, state: State) -> Result<Option<FlowRun>, ServiceError> {
        let expected = run.state_type;
        self.propose_if(
            run.id,
            state,
            false,
            move |r| r.state_type == expected,
            |_| Vec::new(),
        )
        .await
    }

    /// [`Service::propose`] with `force`, the condition `still` that the run as read must
    /// meet for the proposal to be made (checked on every read: a run that moved on is left
    /// alone), and `change`, applied to the run with the state (the claim's new attempt),
    /// which returns the counter changes to commit with it (the claim's concurrency slots;
    /// none: the run's slots follow its state, see [`crate::concurrency_slots`]).
    pub(crate) async fn propose_if(
        &self,
        id: Uuid,
        state: State,
        force: bool,
        still: impl Fn(&FlowRun) -> bool,
        change: impl Fn(&mut FlowRun) -> Vec<pushpool_store::CounterChange>,
    ) -> Result<Option<FlowRun>, ServiceError> {
        let done = self
            .modify_flow_run::<_, ServiceError>(id, |run| {
                if !still(run) {
                    info!(flow_run_id = %run.id, proposed = %state.r#type, now_in = ?run.state_type, "the run moved on; proposal dropped");
                    return Ok(Plan::Keep(()));
                }
                let now = Utc::now();
                let mut proposed = state.clone();
                proposed.timestamp = now;
                proposed.state_details.flow_run_id = Some(run.id);
                let decision = orchestrate(run, proposed, force, now);
                if !matches!(decision, Decision::Accept(_)) {
                    info!(flow_run_id = %run.id, proposed = %state.r#type, decision = ?decision.status(), "proposal refused");
                    return Ok(Plan::Keep(()));
                }
                let mut next = run.clone();
                let counters = change(&mut next);
                apply_decision(&mut next, &decision, force, now);
                Ok(Plan::Write {
                    run: Box::new(next),
                    counters,
                    answer: (),
                })
            })
            .await?;
        let Some(written) = done.written else {
            return Ok(None);
        };
        self.update_subflow_parent_task(&written).await;
        info!(
            flow_run_id = %written.id,
            work_pool = written.work_pool_name.as_deref().unwrap_or(""),
            message = written.state.as_ref().and_then(|s| s.message.as_deref()).unwrap_or(""),
            "{}: {} -> {}",
            short(&written),
            done.read.state_type.map_or("-", |t| t.as_str()),
            state.r#type
        );
        Ok(Some(written))
    }

    /// Records the infrastructure pid of the job started for `claimed` (the run as it was
    /// claimed), conditionally: only while the run is still that attempt (same
    /// `submission_attempt`, no other pid) and has not been cancelled or rescheduled since
    /// (SCHEDULED, CANCELLED). Otherwise nothing is recorded and the job is stopped
    /// ([`Outcome::Stopped`]). A run that turned CANCELLING meanwhile gets its pid and is
    /// cancelled at once ([`Service::cancel`]: the job is stopped, then CANCELLED written).
    async fn record_pid(
        &self,
        claimed: &FlowRun,
        provider: &dyn Provider,
        job: &Job,
        pid: &str,
    ) -> Result<Outcome, ServiceError> {
        let done = self
            .modify_flow_run::<_, ServiceError>(claimed.id, |run| {
                let same_attempt = run.submission_attempt == claimed.submission_attempt
                    && run.infrastructure_pid.as_deref().is_none_or(|p| p == pid);
                let wanted = !matches!(
                    run.state_type,
                    None | Some(StateType::Scheduled | StateType::Cancelled)
                );
                if !(same_attempt && wanted) {
                    return Ok(Plan::Keep(false));
                }
                if run.infrastructure_pid.is_some() {
                    return Ok(Plan::Keep(true));
                }
                let mut next = run.clone();
                next.infrastructure_pid = Some(pid.to_owned());
                Ok(Plan::write(next, true))
            })
            .await?;
        let run = done.written.unwrap_or(done.read);
        if !done.answer {
            warn!(flow_run_id = %run.id, infrastructure_pid = %pid, state = ?run.state_type, attempt = claimed.submission_attempt, "{}: the job started for an attempt the run no longer is; stopping it", short(&run));
            match self.with_retries(|| provider.cancel(job, pid)).await {
                Ok(()) => {}
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    warn!(flow_run_id = %run.id, infrastructure_pid = %pid, error = %e, "stopping the abandoned job failed");
                }
            }
            return Ok(Outcome::Stopped(pid.to_owned()));
        }
        info!(flow_run_id = %run.id, infrastructure_pid = %pid, work_pool = run.work_pool_name.as_deref().unwrap_or(""), "{}: submitted", short(&run));
        if run.state_type == Some(StateType::Cancelling) {
            return self.cancel(run).await;
        }
        Ok(Outcome::Submitted(pid.to_owned()))
    }

    async fn crash(&self, run: FlowRun, message: String) -> Result<Outcome, ServiceError> {
        let state = State::new(StateType::Crashed, Utc::now()).with_message(message);
        let (id, logged) = (run.id, state.clone());
        Ok(match self.propose(run, state).await? {
            Some(_) => {
                self.log_state(id, &logged).await;
                Outcome::Finished(StateType::Crashed)
            }
            None => Outcome::LostRace,
        })
    }

    async fn with_retries<T, F, Fut>(&self, op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        self.with_counted_retries(op).await.0
    }

    /// Runs `op`, retrying transient errors within [`ServiceConfig::retry_budget`]; returns
    /// the last result and what the tries were.
    async fn with_counted_retries<T, F, Fut>(&self, mut op: F) -> (Result<T, ProviderError>, Tries)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        let started = tokio::time::Instant::now();
        let budget = self.config.retry_budget;
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let result = (|| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            op()
        })
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(self.config.retry_base_delay)
                .with_max_delay(MAX_RETRY_DELAY)
                .without_max_times()
                .with_jitter(),
        )
        .when(ProviderError::is_transient)
        .adjust(|e: &ProviderError, delay| {
            // A provider's Retry-After lengthens the next wait (never past the cap); no try
            // starts past the budget.
            let delay = match (delay, e.retry_after()) {
                (Some(d), Some(asked)) => {
                    Some(d.max(asked.min(pushpool_providers::MAX_RETRY_AFTER)))
                }
                (d, _) => d,
            }?;
            (started.elapsed().saturating_add(delay) <= budget).then_some(delay)
        })
        .await;
        let tries = Tries {
            attempts: attempts.load(std::sync::atomic::Ordering::Relaxed).max(1),
            elapsed: started.elapsed(),
        };
        (result, tries)
    }

    /// Submits a SCHEDULED run if it is due and its pool is submitted by pushpool: claim
    /// (SCHEDULED → PENDING), render, call the provider, record the pid.
    ///
    /// # Errors
    /// Store failures; provider failures end the run CRASHED instead.
    pub async fn submit(&self, run: FlowRun, now: DateTime<Utc>) -> Result<Outcome, ServiceError> {
        if run.state_type != Some(StateType::Scheduled) {
            return Ok(Outcome::Skipped("not SCHEDULED".into()));
        }
        if let Some(at) = run.scheduled_time() {
            if at > now {
                if self.wants_timer(at, now) {
                    self.arm(run.id, at).await;
                }
                return Ok(Outcome::NotDue(at));
            }
        }
        let Some(pool) = self.pool_of(&run).await? else {
            return Ok(Outcome::Skipped("no work pool".into()));
        };
        if !pool.is_submitted_by_pushpool() {
            return Ok(Outcome::Skipped(format!(
                "pool type {} has workers",
                pool.r#type
            )));
        }
        if pool.is_paused {
            return Ok(Outcome::Skipped("work pool is paused".into()));
        }
        let queue = self.queue_of_run(&run, &pool).await?;
        if queue.as_ref().is_some_and(|q| q.is_paused) {
            // It stays SCHEDULED; the reconciler's next tick after a resume submits it.
            return Ok(Outcome::Skipped("work queue is paused".into()));
        }
        if self.previous_job_is_running(&run, &pool).await? {
            // An in-process retry (RetryFailedFlows' AwaitingRetry): the engine of the
            // current attempt is alive and proposes RUNNING itself. Once its job has ended
            // (a retry from the UI after the run finished, or an engine that died while
            // waiting), the run is submitted again as a new attempt.
            return Ok(Outcome::Skipped(
                "retry handled by the running engine of the current attempt".into(),
            ));
        }
        let mut message = format!("Submitting to work pool '{}' ({})", pool.name, pool.r#type);
        let ignored = self.ignored_job_variables(&pool, &run).await?;
        if !ignored.is_empty() {
            let notes: Vec<String> = ignored.iter().map(ToString::to_string).collect();
            let notes = notes.join(" ");
            warn!(flow_run_id = %run.id, work_pool = %pool.name, "{}: {notes}", short(&run));
            message = format!("{message}. {notes}");
        }
        let mut claim = State::new(StateType::Pending, now).with_message(message);
        claim.state_details.flow_run_id = Some(run.id);
        // The claim is a new attempt with no pid yet, made only while the run is still
        // SCHEDULED (a lost race reads it again: the attempt counts from the fresh read).
        // The claim takes the run's concurrency slots (pool, queue, deployment) in the same
        // commit, within their limits.
        let deployment = self.deployment_of(&run).await?;
        let limits =
            crate::concurrency_slots::limits_for(&pool, queue.as_ref(), deployment.as_ref());
        let claimed = self
            .propose_if(
                run.id,
                claim,
                false,
                |r| r.state_type == Some(StateType::Scheduled),
                |r| {
                    r.submission_attempt += 1;
                    r.infrastructure_pid = None;
                    crate::concurrency_slots::claim(r, &limits, now)
                },
            )
            .await;
        let claimed = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return Ok(Outcome::LostRace),
            Err(ServiceError::Store(StoreError::LimitReached(counter))) => {
                return self.no_slot(run, &limits, &counter, now).await;
            }
            Err(e) => return Err(e),
        };
        self.disarm(claimed.id).await;
        self.log_claim(claimed.id, &pool, &ignored).await;
        self.start_job(claimed, pool).await
    }

    /// Whether a SCHEDULED run still has a live job of its current attempt (its infrastructure
    /// pid, kept by an AwaitingRetry): the provider's status says Pending or Running. A job
    /// that cannot be built or whose status is refused counts as ended.
    /// A suspended run that was resumed (`SCHEDULED/Resuming` with `pause_reschedule`: its
    /// engine exited on suspending) has no live job to wait for, even while its old process
    /// is still winding down: it is submitted again at once.
    ///
    /// # Errors
    /// Store failures and transient provider failures (the submission is tried again later).
    async fn previous_job_is_running(
        &self,
        run: &FlowRun,
        pool: &WorkPool,
    ) -> Result<bool, ServiceError> {
        let Some(pid) = run.infrastructure_pid.as_deref() else {
            return Ok(false);
        };
        if run.state_name.as_deref() == Some("Resuming") && run.empirical_policy.resuming {
            return Ok(false);
        }
        let Some(provider) = self.providers.get(&pool.r#type) else {
            return Ok(false);
        };
        let job = match self.job_for(run, pool).await {
            Ok(job) => job,
            Err(JobBuildError::Store(e)) => return Err(e.into()),
            Err(_) => return Ok(false),
        };
        match provider.status(&job, pid).await {
            Ok(JobStatus::Pending | JobStatus::Running) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                warn!(flow_run_id = %run.id, infrastructure_pid = %pid, error = %e, "reading the previous attempt's job failed; submitting a new attempt");
                Ok(false)
            }
        }
    }

    /// Builds the job of a claimed (PENDING) run and calls the provider.
    async fn start_job(&self, run: FlowRun, pool: WorkPool) -> Result<Outcome, ServiceError> {
        let Some(provider) = self.providers.get(&pool.r#type) else {
            return self
                .crash(
                    run,
                    format!(
                        "No provider for work pool type '{}' is configured in this pushpool",
                        pool.r#type
                    ),
                )
                .await;
        };
        let job = match self.job_for(&run, &pool).await {
            Ok(job) => job,
            Err(JobBuildError::Store(e)) => return Err(e.into()),
            Err(e) => {
                return self
                    .crash(
                        run,
                        format!("Flow run could not be submitted to infrastructure: {e}"),
                    )
                    .await;
            }
        };
        let provider: &dyn Provider = provider.as_ref();
        let (result, tries) = self.with_counted_retries(|| provider.submit(&job)).await;
        match result {
            Ok(pid) => {
                self.log_submitted(run.id, &pool.r#type, &pid, &tries).await;
                self.record_pid(&run, provider, &job, &pid).await
            }
            Err(e) => {
                warn!(flow_run_id = %run.id, work_pool = %pool.name, error = %e, attempts = tries.attempts, elapsed_s = tries.elapsed.as_secs(), "submission failed");
                let reason = pushpool_providers::cap_message(&e.to_string());
                let message = if e.is_transient() {
                    format!(
                        "Flow run could not be submitted to infrastructure after {tries}: {} \
                         pushpool stopped retrying at the end of its {} s retry budget: run the flow \
                         again later, or raise the budget (PUSHPOOL_PROVIDER_RETRY_BUDGET).",
                        as_sentence(&reason),
                        self.config.retry_budget.as_secs_f64().round()
                    )
                } else {
                    format!("Flow run could not be submitted to infrastructure: {reason}")
                };
                self.crash(run, message).await
            }
        }
    }

    /// The job variables the pool's provider will not use for this run
    /// ([`Provider::ignored_job_variables`], over the pool's defaults, the deployment's and the
    /// run's variables); none when the pool has no provider or its template does not parse
    /// (the submission then fails with the reason).
    async fn ignored_job_variables(
        &self,
        pool: &WorkPool,
        run: &FlowRun,
    ) -> Result<Vec<pushpool_providers::IgnoredVariables>, ServiceError> {
        let Some(provider) = self.providers.get(&pool.r#type) else {
            return Ok(Vec::new());
        };
        let Ok(template) = self.template(pool) else {
            return Ok(Vec::new());
        };
        let deployment = self.deployment_of(run).await?;
        let defaults = template.defaults();
        let empty = pushpool_core::model::Object::new();
        let deployment_vars = deployment.as_ref().map_or(&empty, |d| &d.job_variables);
        let variables = pushpool_core::template::merge_job_variables(&[
            &defaults,
            deployment_vars,
            &run.job_variables,
        ]);
        Ok(provider.ignored_job_variables(&variables))
    }

    async fn job_for(&self, run: &FlowRun, pool: &WorkPool) -> Result<Job, JobBuildError> {
        let template = self.template(pool)?;
        let deployment = self.deployment_of(run).await.map_err(|e| match e {
            ServiceError::Store(s) => JobBuildError::Store(s),
            ServiceError::Provider(p) => JobBuildError::Store(StoreError::Backend(Box::new(p))),
            ServiceError::KeptChanging(k) => JobBuildError::Store(StoreError::Backend(Box::new(k))),
        })?;
        build_job(
            self.store.as_ref(),
            pool,
            &template,
            deployment.as_ref(),
            run,
            &self.config.api_url,
            self.config.api_key.as_deref(),
        )
        .await
    }

    /// Carries a CANCELLING run to CANCELLED: stops its job through the provider first when
    /// it has one.
    ///
    /// # Errors
    /// Store failures and transient provider failures (retried on the next tick).
    pub async fn cancel(&self, run: FlowRun) -> Result<Outcome, ServiceError> {
        if run.state_type != Some(StateType::Cancelling) {
            return Ok(Outcome::Skipped("not CANCELLING".into()));
        }
        if let (Some(pid), Some(pool)) = (run.infrastructure_pid.clone(), self.pool_of(&run).await?)
        {
            if let Some(provider) = self.providers.get(&pool.r#type) {
                match self.job_for(&run, &pool).await {
                    Ok(job) => {
                        let provider: &dyn Provider = provider.as_ref();
                        match self.with_retries(|| provider.cancel(&job, &pid)).await {
                            Ok(()) => {}
                            Err(e) if e.is_transient() => return Err(e.into()),
                            Err(e) => {
                                warn!(flow_run_id = %run.id, error = %e, "cancel failed; marking the run CANCELLED anyway");
                            }
                        }
                    }
                    Err(e) => {
                        warn!(flow_run_id = %run.id, error = %e, "cannot build the job to cancel it")
                    }
                }
            }
        }
        // The job is gone (the provider's cancel returns once it is): write CANCELLED, also
        // over a CRASHED or FAILED that the job reported while it was being stopped (the
        // engine's forced CRASHED on SIGTERM): Prefect's rules accept CANCELLED after those,
        // as Prefect's workers mark a cancelled run (`_mark_flow_run_as_cancelled`).
        let state = State::new(StateType::Cancelled, Utc::now())
            .with_message("Flow run was cancelled; its infrastructure was stopped by pushpool.");
        let attempt = run.submission_attempt;
        let since = run.state.as_ref().map_or(run.updated, |s| s.timestamp);
        let still = move |r: &FlowRun| {
            r.state_type == Some(StateType::Cancelling)
                || (r.submission_attempt == attempt
                    && matches!(r.state_type, Some(StateType::Crashed | StateType::Failed))
                    && r.state.as_ref().is_some_and(|s| s.timestamp >= since))
        };
        let logged = state.clone();
        let written = self
            .propose_if(run.id, state, false, still, |_| Vec::new())
            .await?;
        if written.is_some() {
            self.log_state(run.id, &logged).await;
        }
        if let Some(w) = &written {
            if run.state_type != Some(StateType::Cancelling) {
                info!(flow_run_id = %run.id, "{}: the job reported {:?} while it was being cancelled; marked CANCELLED", short(w), run.state_type);
            }
        }
        Ok(match written {
            Some(_) => Outcome::Finished(StateType::Cancelled),
            None => Outcome::LostRace,
        })
    }

    /// Checks one PENDING or RUNNING run against its infrastructure: resubmits a claim
    /// without a pid past the deadline, and finishes a run whose job ended without reporting.
    ///
    /// # Errors
    /// Store failures and transient provider failures.
    pub async fn reconcile_run(
        &self,
        run: FlowRun,
        now: DateTime<Utc>,
    ) -> Result<Outcome, ServiceError> {
        let Some(pool) = self.pool_of(&run).await? else {
            return Ok(Outcome::Skipped("no work pool".into()));
        };
        if !pool.is_submitted_by_pushpool() {
            return Ok(Outcome::Skipped("pool has workers".into()));
        }
        let since = run.state.as_ref().map_or(run.updated, |s| s.timestamp);
        let Some(pid) = run.infrastructure_pid.clone() else {
            if run.state_type == Some(StateType::Pending)
                && now - since
                    > chrono::Duration::from_std(self.config.claim_deadline).unwrap_or_default()
            {
                info!(flow_run_id = %run.id, "{}: claimed without a pid past the deadline; resubmitting with the same key", short(&run));
                self.log_run(run.id, crate::run_log::RunLogLevel::Warning, "The flow run was claimed but its job was not recorded within the claim deadline; submitting it again (same idempotency key)").await;
                return self.start_job(run, pool).await;
            }
            return Ok(Outcome::StillRunning);
        };
        let Some(provider) = self.providers.get(&pool.r#type) else {
            return Ok(Outcome::Skipped("no provider".into()));
        };
        let job = match self.job_for(&run, &pool).await {
            Ok(job) => job,
            Err(JobBuildError::Store(e)) => return Err(e.into()),
            Err(e) => {
                return self
                    .crash(
                        run,
                        format!("Cannot read the flow run's infrastructure status: {e}"),
                    )
                    .await;
            }
        };
        let status = provider.status(&job, &pid).await?;
        let state = match status {
            JobStatus::Pending | JobStatus::Running => {
                self.renew_deployment_lease(&run, now).await?;
                return Ok(Outcome::StillRunning);
            }
            JobStatus::Exited { exit_code: 0, .. } => State::new(StateType::Completed, now)
                .with_message(
                    "The job exited with code 0 without the flow run reporting a final state.",
                ),
            JobStatus::Exited { exit_code, detail } => {
                let mut m = format!(
                    "Flow run infrastructure exited with non-zero status code {exit_code}."
                );
                if !detail.is_empty() {
                    m.push_str(&format!(" {detail}"));
                }
                State::new(StateType::Crashed, now).with_message(m)
            }
            JobStatus::Failed { reason } => State::new(StateType::Crashed, now)
                .with_message(format!("Flow run infrastructure failed: {reason}")),
            JobStatus::Missing { reason } => {
                if now - since
                    < chrono::Duration::from_std(self.config.missing_grace).unwrap_or_default()
                {
                    return Ok(Outcome::StillRunning);
                }
                State::new(StateType::Crashed, now)
                    .with_message(format!("Flow run infrastructure is missing: {reason}"))
            }
        };
        let t = state.r#type;
        let (id, logged) = (run.id, state.clone());
        Ok(match self.propose(run, state).await? {
            Some(_) => {
                self.log_state(id, &logged).await;
                Outcome::Finished(t)
            }
            None => Outcome::LostRace,
        })
    }

    /// One reconciler tick: materialises deployment schedules into SCHEDULED runs
    /// ([`Service::schedule_deployments`]), marks late runs ([`Service::mark_late_runs`]),
    /// submits due SCHEDULED runs, checks PENDING and RUNNING runs with
    /// their providers, and carries CANCELLING runs to CANCELLED. Per-run failures are logged
    /// and left for the next tick. Returns how many runs it acted on.
    ///
    /// # Errors
    /// Store failures of the scans themselves.
    pub async fn reconcile_once(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let mut acted = 0;
        // Lapsed concurrency leases give their slots back.
        match self.concurrency_limits().release_expired(now).await {
            Ok(released) => acted += released,
            Err(e) => warn!(error = %e, "releasing lapsed concurrency leases failed"),
        }
        // Timers first: the runs due before the next tick that exist already are armed
        // before the scheduler (which may make many runs) takes its time; the scheduler arms
        // the ones it makes.
        if let Err(e) = self.arm_due_runs(now).await {
            warn!(error = %e, "arming the due timers of the runs due before the next tick failed");
        }
        match self.schedule_deployments(now).await {
            Ok(tick) => acted += tick.runs_created,
            Err(e) => warn!(error = %e, "the scheduler tick failed"),
        }
        match self.mark_late_runs(now).await {
            Ok(marked) => acted += marked,
            Err(e) => warn!(error = %e, "marking late runs failed"),
        }
        let due = self.store.list_due_flow_runs(now, 500).await?;
        // A pool found full holds its other runs back for this tick (each would only try a
        // claim that fails).
        let mut full_pools = std::collections::HashSet::new();
        for run in self.by_queue_priority(due).await? {
            let pool = run.work_pool_name.clone();
            if pool.as_ref().is_some_and(|p| full_pools.contains(p)) {
                continue;
            }
            match self.submit(run, now).await {
                Ok(Outcome::AwaitingConcurrencySlot(c)) if c.starts_with("slots:work_pool:") => {
                    full_pools.extend(pool);
                }
                Ok(Outcome::Submitted(_) | Outcome::Finished(_)) => acted += 1,
                Ok(_) => {}
                Err(e) => warn!(error = %e, "submitting a due run failed"),
            }
        }
        let active = FlowRunQuery::new(FlowRunFilter::state_types(&[
            StateType::Pending,
            StateType::Running,
            StateType::Cancelling,
        ]));
        for run in self.store.list_flow_runs(&active).await? {
            let id = run.id;
            match self.expire_deployment_lease(&run, now).await {
                Ok(true) => acted += 1,
                Ok(false) => {}
                Err(e) => {
                    warn!(flow_run_id = %id, error = %e, "expiring a deployment slot's lease failed")
                }
            }
            let result = if run.state_type == Some(StateType::Cancelling) {
                self.cancel(run).await
            } else {
                self.reconcile_run(run, now).await
            };
            match result {
                Ok(Outcome::Submitted(_) | Outcome::Finished(_)) => acted += 1,
                Ok(_) => {}
                Err(e) => warn!(flow_run_id = %id, error = %e, "reconciling a run failed"),
            }
        }
        Ok(acted)
    }

    /// Consumes the store's change feed until `shutdown` resolves: each change's run goes
    /// through [`Service::handle_change`] (at most `concurrency` at once); consumed changes
    /// are deleted. This is the embedded shape's submitter (the DynamoDB stream plays this
    /// role on AWS).
    pub async fn run_submitter(
        &self,
        concurrency: usize,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let notify = self.store.change_notifier();
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut cursor = 0u64;
        tokio::pin!(shutdown);
        loop {
            match self.store.read_changes(cursor, 200).await {
                Ok(changes) if !changes.is_empty() => {
                    let mut seen = std::collections::HashSet::new();
                    let mut tasks = tokio::task::JoinSet::new();
                    for change in &changes {
                        if !seen.insert(change.flow_run_id) {
                            continue;
                        }
                        if self.is_release_change(change.state_type) {
                            // Releasing waits for the job to end: never in the way of
                            // submissions, so it runs on its own.
                            self.spawn_release(change.flow_run_id);
                        }
                        let frees = crate::concurrency_slots::frees_slots(change.state_type);
                        if !frees
                            && !matches!(
                                change.state_type,
                                Some(StateType::Scheduled | StateType::Cancelling)
                            )
                        {
                            continue;
                        }
                        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                            break;
                        };
                        let service = self.clone();
                        let id = change.flow_run_id;
                        tasks.spawn(async move {
                            let _permit = permit;
                            let result = if frees {
                                service.submit_waiting_after(id).await
                            } else {
                                service.handle_change(id).await
                            };
                            if let Err(e) = result {
                                warn!(flow_run_id = %id, error = %e, "handling a change failed; the reconciler retries it");
                            }
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                    if let Some(last) = changes.last() {
                        cursor = last.seq;
                        if let Err(e) = self.store.delete_changes(cursor).await {
                            warn!(error = %e, "deleting consumed changes failed");
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reading the change feed failed"),
            }
            let wait = async {
                match &notify {
                    Some(n) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), n.notified()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = wait => {}
            }
        }
    }

    /// Releases a final run's infrastructure in the background, once at a time per run.
    fn spawn_release(&self, id: Uuid) {
        if let Ok(mut releasing) = self.releasing.lock() {
            if !releasing.insert(id) {
                return;
            }
        }
        let service = self.clone();
        tokio::spawn(async move {
            let result = match service.store.read_flow_run(id).await {
                Ok(run) => service.release(run).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                warn!(flow_run_id = %id, error = %e, "releasing a final run's infrastructure failed");
            }
            if let Ok(mut releasing) = service.releasing.lock() {
                releasing.remove(&id);
            }
        });
    }

    /// Runs [`Service::reconcile_once`] every `interval` until `shutdown` resolves.
    pub async fn run_reconciler(
        &self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {
                    if let Err(e) = self.reconcile_once(Utc::now()).await {
                        warn!(error = %e, "reconciler tick failed");
                    }
                }
            }
        }
    }
}
