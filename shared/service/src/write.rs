//! The one bounded optimistic-write primitive of the use cases: read, decide, write on the
//! version read, and on a lost race ([`StoreError::VersionConflict`]) read again and decide
//! again, at most [`MAX_WRITE_ATTEMPTS`] times with a short jittered backoff; then
//! [`KeptChanging`].
//!
//! [`Service::modify_flow_run`] is the form every flow run change takes (set_state, PATCH,
//! labels, the submitter's claim and pid, the reconciler's and cancel's final states): the
//! decision is a [`Plan`], and a write is one [`Store::commit`] of the run (and, for the
//! use cases that need them, bounded counter changes in the same transaction).
//! [`retry_on_conflict`] is the loop itself, for writes that are not flow runs (task runs,
//! which have no change feed and are written by `update_task_run` on their own version).
//!
//! Why bounded: a run that keeps changing under a writer (a hot loop of reports, a bug) must
//! not pin a request or a submitter forever. Why 8: each lost race means another writer
//! committed in between, so 8 in a row within ~0.5 s is contention no retry will fix soon;
//! the caller answers 503 with `Retry-After` (the Prefect client retries it) or, in the
//! submitter, leaves the run to the reconciler.

use std::future::Future;
use std::time::Duration;

use pushpool_core::model::FlowRun;
use pushpool_store::{CounterChange, Store, StoreError, Transaction};
use uuid::Uuid;

use crate::Service;

/// How many times a read → decide → write is tried before [`KeptChanging`].
pub const MAX_WRITE_ATTEMPTS: u32 = 8;

/// The first wait after a lost race; it doubles each time up to [`MAX_WRITE_BACKOFF`], and
/// a random jitter of up to as much again is added (so racing writers spread out).
pub const FIRST_WRITE_BACKOFF: Duration = Duration::from_millis(5);

/// The longest wait between two tries before jitter.
pub const MAX_WRITE_BACKOFF: Duration = Duration::from_millis(80);

/// A resource lost [`MAX_WRITE_ATTEMPTS`] races in a row: other writers kept changing it
/// between this writer's read and its write. Nothing of this writer's change was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {id} kept changing while it was being written ({attempts} attempts); retry")]
pub struct KeptChanging {
    /// What kind of resource (`flow run`, `task run`).
    pub what: &'static str,
    /// Its id.
    pub id: Uuid,
    /// The attempts made.
    pub attempts: u32,
}

/// An error that may be a lost race, which [`retry_on_conflict`] retries.
pub trait Conflict {
    /// Whether this is a [`StoreError::VersionConflict`] (the write lost a race).
    fn is_version_conflict(&self) -> bool;
}

impl Conflict for StoreError {
    fn is_version_conflict(&self) -> bool {
        matches!(self, StoreError::VersionConflict(_))
    }
}

/// The wait before try `attempt + 1` (`attempt` ≥ 1): see [`FIRST_WRITE_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_WRITE_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_WRITE_BACKOFF);
    base + base.mul_f64(rand::random::<f64>())
}

/// Runs `attempt` (one read → decide → conditional write) until it does not lose a race,
/// at most [`MAX_WRITE_ATTEMPTS`] times, waiting a short jittered backoff between tries.
/// `what` and `id` name the resource in the [`KeptChanging`] error.
///
/// # Errors
/// The attempt's own error, or [`KeptChanging`] (through `E: From<KeptChanging>`) after
/// [`MAX_WRITE_ATTEMPTS`] lost races.
pub async fn retry_on_conflict<T, E, F, Fut>(
    what: &'static str,
    id: Uuid,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Conflict + From<KeptChanging>,
{
    for n in 1..=MAX_WRITE_ATTEMPTS {
        match attempt().await {
            Err(e) if e.is_version_conflict() => {
                if n < MAX_WRITE_ATTEMPTS {
                    tokio::time::sleep(backoff(n)).await;
                }
            }
            other => return other,
        }
    }
    tracing::warn!(flow_run_id = %id, what, attempts = MAX_WRITE_ATTEMPTS, "gave up writing: it kept changing");
    Err(KeptChanging {
        what,
        id,
        attempts: MAX_WRITE_ATTEMPTS,
    }
    .into())
}

/// What a step of [`Service::modify_flow_run`] decided about the run it read.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan<T> {
    /// Write `run` (the read run, changed; its `version` is the one read) together with
    /// `counters`, in one transaction; answer `answer`.
    Write {
        /// The run to write.
        run: Box<FlowRun>,
        /// Bounded counter changes written with it.
        counters: Vec<CounterChange>,
        /// The answer.
        answer: T,
    },
    /// Write nothing; answer `answer`.
    Keep(T),
}

impl<T> Plan<T> {
    /// Write `run` alone.
    pub fn write(run: FlowRun, answer: T) -> Self {
        Self::Write {
            run: Box::new(run),
            counters: Vec::new(),
            answer,
        }
    }
}

/// What [`Service::modify_flow_run`] did: the step's answer, the run as it was read for
/// the decision that stood, and the run as written (`None` when the plan was to keep it).
#[derive(Debug, Clone, PartialEq)]
pub struct Modified<T> {
    /// The step's answer.
    pub answer: T,
    /// The run the decision was made on.
    pub read: FlowRun,
    /// The run written (new version), if any.
    pub written: Option<FlowRun>,
}

impl Service {
    /// Reads flow run `id`, lets `decide` plan a change, and commits it on the version read;
    /// on a lost race, reads and decides again ([`retry_on_conflict`]: at most
    /// [`MAX_WRITE_ATTEMPTS`] tries). `decide` must be a pure function of the run it is given
    /// (it runs once per try).
    ///
    /// # Errors
    /// `decide`'s error; `StoreError::NotFound` ("Flow run not found") for an unknown run,
    /// other store errors, [`KeptChanging`] — all through `E`.
    pub async fn modify_flow_run<T, E>(
        &self,
        id: Uuid,
        decide: impl Fn(&FlowRun) -> Result<Plan<T>, E>,
    ) -> Result<Modified<T>, E>
    where
        E: Conflict + From<KeptChanging> + From<StoreError>,
    {
        let store: &dyn Store = self.store().as_ref();
        let decide = &decide;
        let done: Modified<T> = retry_on_conflict("flow run", id, || async move {
            let read = store.read_flow_run(id).await?;
            match decide(&read)? {
                Plan::Keep(answer) => Ok(Modified {
                    answer,
                    read,
                    written: None,
                }),
                Plan::Write {
                    mut run,
                    mut counters,
                    answer,
                } => {
                    if counters.is_empty() {
                        // Slots follow the state: given back when the run leaves the
                        // active set, in the same commit (see `concurrency_slots`).
                        counters = crate::concurrency_slots::transition(
                            &read,
                            &mut run,
                            chrono::Utc::now(),
                        );
                    }
                    let tx = Transaction {
                        flow_runs: vec![*run],
                        counters,
                    };
                    let written = store.commit(&tx).await?.pop();
                    Ok::<_, E>(Modified {
                        answer,
                        read,
                        written,
                    })
                }
            }
        })
        .await?;
        // Every accepted transition is written here: its event (`crate::events`).
        if let Some(written) = &done.written {
            self.flow_run_written(Some(&done.read), written).await;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use pushpool_store_sqlite::SqliteStore;

    /// A `Store` impl for `$ty` with `commit` given and every other method delegated to
    /// `self.inner`.
    macro_rules! store_with_commit {
        ($ty:ty, |$this:ident, $tx:ident| $body:block) => {
            #[async_trait::async_trait]
            impl pushpool_store::Store for $ty {
                async fn commit(&self, $tx: &Transaction) -> pushpool_store::Result<Vec<FlowRun>> {
                    let $this = self;
                    $body
                }
                async fn read_flow_run(&self, id: Uuid) -> pushpool_store::Result<FlowRun> {
                    self.inner.read_flow_run(id).await
                }
                async fn create_flow_run(
                    &self,
                    run: &FlowRun,
                ) -> pushpool_store::Result<(FlowRun, bool)> {
                    self.inner.create_flow_run(run).await
                }
                async fn read_counter(&self, name: &str) -> pushpool_store::Result<i64> {
                    self.inner.read_counter(name).await
                }
                async fn create_concurrency_limit(
                    &self,
                    l: &pushpool_core::concurrency::ConcurrencyLimit,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_concurrency_limit(l).await
                }
                async fn read_concurrency_limit(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::concurrency::ConcurrencyLimit> {
                    self.inner.read_concurrency_limit(i).await
                }
                async fn read_concurrency_limit_by_name(
                    &self,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::concurrency::ConcurrencyLimit> {
                    self.inner.read_concurrency_limit_by_name(n).await
                }
                async fn list_concurrency_limits(
                    &self,
                ) -> pushpool_store::Result<Vec<pushpool_core::concurrency::ConcurrencyLimit>> {
                    self.inner.list_concurrency_limits().await
                }
                async fn update_concurrency_limit(
                    &self,
                    l: &pushpool_core::concurrency::ConcurrencyLimit,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_concurrency_limit(l).await
                }
                async fn delete_concurrency_limit(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_concurrency_limit(i).await
                }
                async fn commit_concurrency(
                    &self,
                    w: &pushpool_store::concurrency::ConcurrencyWrite,
                ) -> pushpool_store::Result<()> {
                    self.inner.commit_concurrency(w).await
                }
                async fn read_concurrency_lease(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::concurrency::ConcurrencyLease> {
                    self.inner.read_concurrency_lease(i).await
                }
                async fn list_concurrency_leases(
                    &self,
                ) -> pushpool_store::Result<Vec<pushpool_core::concurrency::ConcurrencyLease>> {
                    self.inner.list_concurrency_leases().await
                }
                async fn create_flow_run_input(
                    &self,
                    i: &pushpool_core::run_input::FlowRunInput,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_flow_run_input(i).await
                }
                async fn read_flow_run_input(
                    &self,
                    r: Uuid,
                    k: &str,
                ) -> pushpool_store::Result<pushpool_core::run_input::FlowRunInput> {
                    self.inner.read_flow_run_input(r, k).await
                }
                async fn list_flow_run_inputs(
                    &self,
                    r: Uuid,
                ) -> pushpool_store::Result<Vec<pushpool_core::run_input::FlowRunInput>> {
                    self.inner.list_flow_run_inputs(r).await
                }
                async fn delete_flow_run_input(
                    &self,
                    r: Uuid,
                    k: &str,
                ) -> pushpool_store::Result<()> {
                    self.inner.delete_flow_run_input(r, k).await
                }
                async fn list_schedule_marks(
                    &self,
                ) -> pushpool_store::Result<Vec<pushpool_store::ScheduleMark>> {
                    self.inner.list_schedule_marks().await
                }
                async fn put_schedule_mark(
                    &self,
                    m: &pushpool_store::ScheduleMark,
                ) -> pushpool_store::Result<()> {
                    self.inner.put_schedule_mark(m).await
                }
                async fn delete_schedule_marks(&self, d: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_schedule_marks(d).await
                }
                async fn create_work_pool(
                    &self,
                    p: &pushpool_core::model::WorkPool,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_work_pool(p).await
                }
                async fn read_work_pool(
                    &self,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::WorkPool> {
                    self.inner.read_work_pool(n).await
                }
                async fn read_work_pool_by_id(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::WorkPool> {
                    self.inner.read_work_pool_by_id(i).await
                }
                async fn update_work_pool(
                    &self,
                    p: &pushpool_core::model::WorkPool,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_work_pool(p).await
                }
                async fn delete_work_pool(&self, n: &str) -> pushpool_store::Result<()> {
                    self.inner.delete_work_pool(n).await
                }
                async fn list_work_pools(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::WorkPool>> {
                    self.inner.list_work_pools(p).await
                }
                async fn create_block_type(
                    &self,
                    b: &pushpool_core::model::BlockType,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_block_type(b).await
                }
                async fn read_block_type(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::BlockType> {
                    self.inner.read_block_type(i).await
                }
                async fn read_block_type_by_slug(
                    &self,
                    s: &str,
                ) -> pushpool_store::Result<pushpool_core::model::BlockType> {
                    self.inner.read_block_type_by_slug(s).await
                }
                async fn update_block_type(
                    &self,
                    b: &pushpool_core::model::BlockType,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_block_type(b).await
                }
                async fn list_block_types(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::BlockType>> {
                    self.inner.list_block_types(p).await
                }
                async fn create_block_schema(
                    &self,
                    b: &pushpool_core::model::BlockSchema,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_block_schema(b).await
                }
                async fn read_block_schema(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::BlockSchema> {
                    self.inner.read_block_schema(i).await
                }
                async fn read_block_schema_by_checksum(
                    &self,
                    c: &str,
                    v: Option<&str>,
                ) -> pushpool_store::Result<pushpool_core::model::BlockSchema> {
                    self.inner.read_block_schema_by_checksum(c, v).await
                }
                async fn list_block_schemas(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::BlockSchema>> {
                    self.inner.list_block_schemas(p).await
                }
                async fn create_block_document(
                    &self,
                    d: &pushpool_core::model::BlockDocument,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_block_document(d).await
                }
                async fn read_block_document(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::BlockDocument> {
                    self.inner.read_block_document(i).await
                }
                async fn read_block_document_by_name(
                    &self,
                    t: Uuid,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::BlockDocument> {
                    self.inner.read_block_document_by_name(t, n).await
                }
                async fn update_block_document(
                    &self,
                    d: &pushpool_core::model::BlockDocument,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_block_document(d).await
                }
                async fn delete_block_document(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_block_document(i).await
                }
                async fn list_block_documents(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::BlockDocument>> {
                    self.inner.list_block_documents(p).await
                }
                async fn upsert_flow(
                    &self,
                    f: &pushpool_core::model::Flow,
                ) -> pushpool_store::Result<(pushpool_core::model::Flow, bool)> {
                    self.inner.upsert_flow(f).await
                }
                async fn read_flow(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::Flow> {
                    self.inner.read_flow(i).await
                }
                async fn read_flow_by_name(
                    &self,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::Flow> {
                    self.inner.read_flow_by_name(n).await
                }
                async fn delete_flow(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_flow(i).await
                }
                async fn list_flows(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::Flow>> {
                    self.inner.list_flows(p).await
                }
                async fn create_variable(
                    &self,
                    v: &pushpool_core::model::Variable,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_variable(v).await
                }
                async fn read_variable(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::Variable> {
                    self.inner.read_variable(i).await
                }
                async fn read_variable_by_name(
                    &self,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::Variable> {
                    self.inner.read_variable_by_name(n).await
                }
                async fn update_variable(
                    &self,
                    v: &pushpool_core::model::Variable,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_variable(v).await
                }
                async fn delete_variable(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_variable(i).await
                }
                async fn list_variables(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::Variable>> {
                    self.inner.list_variables(p).await
                }
                async fn create_work_queue(
                    &self,
                    q: &pushpool_core::model::WorkQueue,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_work_queue(q).await
                }
                async fn read_work_queue(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::WorkQueue> {
                    self.inner.read_work_queue(i).await
                }
                async fn read_work_queue_by_name(
                    &self,
                    p: Uuid,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::WorkQueue> {
                    self.inner.read_work_queue_by_name(p, n).await
                }
                async fn update_work_queue(
                    &self,
                    q: &pushpool_core::model::WorkQueue,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_work_queue(q).await
                }
                async fn delete_work_queue(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_work_queue(i).await
                }
                async fn list_work_queues(
                    &self,
                    p: Option<Uuid>,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::WorkQueue>> {
                    self.inner.list_work_queues(p).await
                }
                async fn try_acquire_lease(
                    &self,
                    k: &str,
                    h: &str,
                    t: std::time::Duration,
                ) -> pushpool_store::Result<bool> {
                    self.inner.try_acquire_lease(k, h, t).await
                }
                async fn release_lease(&self, k: &str, h: &str) -> pushpool_store::Result<()> {
                    self.inner.release_lease(k, h).await
                }
                async fn create_artifact(
                    &self,
                    a: &pushpool_core::model::Artifact,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_artifact(a).await
                }
                async fn read_artifact(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::Artifact> {
                    self.inner.read_artifact(i).await
                }
                async fn update_artifact(
                    &self,
                    a: &pushpool_core::model::Artifact,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_artifact(a).await
                }
                async fn delete_artifact(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_artifact(i).await
                }
                async fn list_artifacts(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::Artifact>> {
                    self.inner.list_artifacts(p).await
                }
                async fn create_deployment(
                    &self,
                    d: &pushpool_core::model::Deployment,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_deployment(d).await
                }
                async fn read_deployment(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::model::Deployment> {
                    self.inner.read_deployment(i).await
                }
                async fn read_deployment_by_name(
                    &self,
                    f: &str,
                    n: &str,
                ) -> pushpool_store::Result<pushpool_core::model::Deployment> {
                    self.inner.read_deployment_by_name(f, n).await
                }
                async fn update_deployment(
                    &self,
                    d: &pushpool_core::model::Deployment,
                ) -> pushpool_store::Result<()> {
                    self.inner.update_deployment(d).await
                }
                async fn delete_deployment(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_deployment(i).await
                }
                async fn list_deployments(
                    &self,
                    p: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::Deployment>> {
                    self.inner.list_deployments(p).await
                }
                async fn delete_flow_run(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_flow_run(i).await
                }
                async fn list_flow_runs(
                    &self,
                    q: &pushpool_store::FlowRunQuery,
                ) -> pushpool_store::Result<Vec<FlowRun>> {
                    self.inner.list_flow_runs(q).await
                }
                async fn count_flow_runs(
                    &self,
                    q: &pushpool_store::FlowRunQuery,
                ) -> pushpool_store::Result<u64> {
                    self.inner.count_flow_runs(q).await
                }
                async fn list_due_flow_runs(
                    &self,
                    b: chrono::DateTime<chrono::Utc>,
                    l: usize,
                ) -> pushpool_store::Result<Vec<FlowRun>> {
                    self.inner.list_due_flow_runs(b, l).await
                }
                async fn read_flow_run_states(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<Vec<pushpool_core::state::State>> {
                    self.inner.read_flow_run_states(i).await
                }
                async fn read_state(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::state::State> {
                    self.inner.read_state(i).await
                }
                async fn create_task_run(
                    &self,
                    r: &pushpool_core::task_run::TaskRun,
                ) -> pushpool_store::Result<(pushpool_core::task_run::TaskRun, bool)> {
                    self.inner.create_task_run(r).await
                }
                async fn read_task_run(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::task_run::TaskRun> {
                    self.inner.read_task_run(i).await
                }
                async fn update_task_run(
                    &self,
                    r: &pushpool_core::task_run::TaskRun,
                ) -> pushpool_store::Result<pushpool_core::task_run::TaskRun> {
                    self.inner.update_task_run(r).await
                }
                async fn delete_task_run(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.delete_task_run(i).await
                }
                async fn read_task_run_states(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<Vec<pushpool_core::state::State>> {
                    self.inner.read_task_run_states(i).await
                }
                async fn read_task_run_state(
                    &self,
                    i: Uuid,
                ) -> pushpool_store::Result<pushpool_core::state::State> {
                    self.inner.read_task_run_state(i).await
                }
                async fn list_task_runs(
                    &self,
                    f: &pushpool_store::TaskRunFilter,
                ) -> pushpool_store::Result<Vec<pushpool_core::task_run::TaskRun>> {
                    self.inner.list_task_runs(f).await
                }
                async fn add_task_run_state(
                    &self,
                    i: Uuid,
                    s: &pushpool_core::state::State,
                ) -> pushpool_store::Result<()> {
                    self.inner.add_task_run_state(i, s).await
                }
                async fn list_subflow_runs(
                    &self,
                    p: &[Uuid],
                    g: pushpool_store::Page,
                ) -> pushpool_store::Result<Vec<FlowRun>> {
                    self.inner.list_subflow_runs(p, g).await
                }
                async fn create_api_key(
                    &self,
                    k: &pushpool_core::model::ApiKey,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_api_key(k).await
                }
                async fn read_api_key_by_hash(
                    &self,
                    h: &str,
                ) -> pushpool_store::Result<pushpool_core::model::ApiKey> {
                    self.inner.read_api_key_by_hash(h).await
                }
                async fn list_api_keys(
                    &self,
                ) -> pushpool_store::Result<Vec<pushpool_core::model::ApiKey>> {
                    self.inner.list_api_keys().await
                }
                async fn revoke_api_key(&self, i: Uuid) -> pushpool_store::Result<()> {
                    self.inner.revoke_api_key(i).await
                }
                async fn create_events(
                    &self,
                    e: &[pushpool_core::events::Event],
                    r: std::time::Duration,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_events(e, r).await
                }
                async fn read_events(
                    &self,
                    f: &pushpool_core::events::EventFilter,
                ) -> pushpool_store::Result<Vec<pushpool_core::events::Event>> {
                    self.inner.read_events(f).await
                }
                async fn delete_events_received_before(
                    &self,
                    c: chrono::DateTime<chrono::Utc>,
                ) -> pushpool_store::Result<u64> {
                    self.inner.delete_events_received_before(c).await
                }
                async fn create_logs(
                    &self,
                    g: &[pushpool_core::logs::Log],
                    r: std::time::Duration,
                ) -> pushpool_store::Result<()> {
                    self.inner.create_logs(g, r).await
                }
                async fn read_logs(
                    &self,
                    q: &pushpool_store::LogQuery,
                ) -> pushpool_store::Result<Vec<pushpool_core::logs::Log>> {
                    self.inner.read_logs(q).await
                }
                async fn delete_logs_created_before(
                    &self,
                    c: chrono::DateTime<chrono::Utc>,
                ) -> pushpool_store::Result<u64> {
                    self.inner.delete_logs_created_before(c).await
                }
                async fn read_changes(
                    &self,
                    a: u64,
                    l: usize,
                ) -> pushpool_store::Result<Vec<pushpool_store::Change>> {
                    self.inner.read_changes(a, l).await
                }
                async fn delete_changes(&self, u: u64) -> pushpool_store::Result<()> {
                    self.inner.delete_changes(u).await
                }
                fn change_notifier(&self) -> Option<Arc<tokio::sync::Notify>> {
                    self.inner.change_notifier()
                }
            }
        };
    }

    /// A store whose every commit loses a race (and counts the tries); the rest is SQLite.
    struct AlwaysConflicts {
        inner: SqliteStore,
        commits: AtomicU32,
    }

    store_with_commit!(AlwaysConflicts, |this, tx| {
        this.commits.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::VersionConflict(tx.flow_runs[0].id))
    });

    /// A store where another writer renames the run just before the first commit.
    struct RenamedOnce {
        inner: SqliteStore,
        commits: AtomicU32,
    }

    store_with_commit!(RenamedOnce, |this, tx| {
        if this.commits.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut other = this.inner.read_flow_run(tx.flow_runs[0].id).await?;
            other.name = "renamed".into();
            this.inner.commit(&Transaction::flow_run(other)).await?;
        }
        this.inner.commit(tx).await
    });

    fn service_over(store: Arc<dyn Store>) -> Service {
        Service::new(
            store,
            pushpool_providers::Providers::new(),
            crate::ServiceConfig::default(),
        )
    }

    #[tokio::test]
    async fn a_run_that_keeps_changing_is_given_up_after_the_bounded_attempts() {
        let store = Arc::new(AlwaysConflicts {
            inner: SqliteStore::in_memory().unwrap(),
            commits: AtomicU32::new(0),
        });
        let run = pushpool_store::conformance::flow_run(Uuid::new_v4(), Some("pool"));
        store.create_flow_run(&run).await.unwrap();
        let service = service_over(store.clone());
        let decisions = AtomicU32::new(0);
        let result: Result<Modified<()>, crate::UseCaseError> = service
            .modify_flow_run(run.id, |read| {
                decisions.fetch_add(1, Ordering::SeqCst);
                let mut next = read.clone();
                next.infrastructure_pid = Some("pid".into());
                Ok(Plan::write(next, ()))
            })
            .await;
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "flow run {} kept changing while it was being written (8 attempts); retry",
                run.id
            )
        );
        assert!(matches!(
            err,
            crate::UseCaseError::KeptChanging(KeptChanging { what: "flow run", id, attempts: 8 }) if id == run.id
        ));
        assert_eq!(store.commits.load(Ordering::SeqCst), MAX_WRITE_ATTEMPTS);
        assert_eq!(decisions.load(Ordering::SeqCst), MAX_WRITE_ATTEMPTS);
        // Nothing was written.
        assert_eq!(
            store
                .read_flow_run(run.id)
                .await
                .unwrap()
                .infrastructure_pid,
            None
        );
    }

    #[tokio::test]
    async fn a_lost_race_is_retried_with_a_fresh_read_and_a_new_decision() {
        let store = Arc::new(RenamedOnce {
            inner: SqliteStore::in_memory().unwrap(),
            commits: AtomicU32::new(0),
        });
        let run = pushpool_store::conformance::flow_run(Uuid::new_v4(), Some("pool"));
        store.create_flow_run(&run).await.unwrap();
        let service = service_over(store.clone());
        let versions = std::sync::Mutex::new(Vec::new());
        let done: Modified<usize> = service
            .modify_flow_run::<_, crate::UseCaseError>(run.id, |read| {
                let mut seen = versions.lock().unwrap();
                seen.push(read.version);
                let mut next = read.clone();
                next.infrastructure_pid = Some(format!("pid-{}", seen.len()));
                Ok(Plan::write(next, seen.len()))
            })
            .await
            .unwrap();
        assert_eq!(done.answer, 2);
        assert_eq!(*versions.lock().unwrap(), [1, 2]);
        assert_eq!(done.read.name, "renamed");
        let stored = store.read_flow_run(run.id).await.unwrap();
        assert_eq!(stored.name, "renamed");
        assert_eq!(stored.infrastructure_pid.as_deref(), Some("pid-2"));
        assert_eq!(stored.version, 3);
        assert_eq!(done.written.map(|w| w.version), Some(3));
    }

    #[tokio::test]
    async fn a_claim_that_lost_a_race_is_still_a_new_attempt() {
        let store = Arc::new(RenamedOnce {
            inner: SqliteStore::in_memory().unwrap(),
            commits: AtomicU32::new(0),
        });
        store
            .create_work_pool(&pushpool_store::conformance::work_pool("pool"))
            .await
            .unwrap();
        let run = pushpool_store::conformance::flow_run(Uuid::new_v4(), Some("pool"));
        let (run, _) = store.create_flow_run(&run).await.unwrap();
        assert_eq!(run.submission_attempt, 0);
        let service = service_over(store.clone());

        // No provider for the pool's type: the claim is written (after losing the first
        // race to the rename), then the run ends CRASHED saying so.
        let outcome = service
            .submit(run.clone(), chrono::Utc::now())
            .await
            .unwrap();

        assert_eq!(
            outcome,
            crate::Outcome::Finished(pushpool_core::state::StateType::Crashed)
        );
        let stored = store.read_flow_run(run.id).await.unwrap();
        assert_eq!(stored.name, "renamed");
        assert_eq!(stored.submission_attempt, 1);
        let types: Vec<_> = store
            .read_flow_run_states(run.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.r#type)
            .collect();
        use pushpool_core::state::StateType::{Crashed, Pending, Scheduled};
        assert_eq!(types, [Scheduled, Pending, Crashed]);
    }
}
