//! The `Store` port: everything pushpool persists, behind one small object-safe trait, with
//! its models, errors and the conformance suite ([`conformance`]) that every adapter must pass:
//! the embedded SQLite adapter (`pushpool-store-sqlite`, `SqliteStore`) and the DynamoDB
//! adapter of the AWS shape (`pushpool-store-dynamodb`) run the same suite. This crate links
//! no database driver, so that a host links only the adapter it opens.
//!
//! Why a port: the same API, submitter and reconciler run over SQLite on one machine and over
//! DynamoDB on AWS. The port speaks the caller's language (`NotFound`, `Conflict`,
//! `VersionConflict`, `Transient`), never an adapter's error type.
//!
//! Two rules every adapter keeps:
//! - **Conditional flow run writes.** [`Store::update_flow_run`] writes only when the stored
//!   `version` equals the run's `version`, and bumps it; two submitters racing on one run
//!   produce one claim.
//! - **A change feed.** Every flow run write appends a [`Change`] (an outbox row in SQLite,
//!   the table's stream on DynamoDB) that drives submission. Task run writes are conditional
//!   on their own `version` too, and never go to the change feed.
//! - **One optimistic write primitive.** [`Store::commit`] writes a [`Transaction`] (flow run
//!   updates, each on the version it was read at, with their history and changes, and
//!   bounded [`CounterChange`]s) all or nothing: one SQL transaction in SQLite, one
//!   `TransactWriteItems` on DynamoDB. [`Store::update_flow_run`] is a transaction of one run.
//!
//! This crate must not depend on HTTP, Lambda, provider SDKs or a database driver.

pub mod concurrency;
pub mod conformance;
mod error;
pub mod events;
pub mod logs;

use std::sync::Arc;

use async_trait::async_trait;
use pushpool_core::concurrency::{ConcurrencyLease, ConcurrencyLimit};
use pushpool_core::filter::{FlowRunFilter, FlowRunSort};
use pushpool_core::model::{
    ApiKey, Artifact, BlockDocument, BlockSchema, BlockType, Deployment, Flow, FlowRun, Variable,
    WorkPool, WorkQueue,
};
use pushpool_core::run_input::FlowRunInput;
use pushpool_core::state::{State, StateType};
use pushpool_core::task_run::TaskRun;
use uuid::Uuid;

pub use error::StoreError;
pub use events::DEFAULT_EVENT_RETENTION;
pub use logs::{DEFAULT_LOG_RETENTION, LogQuery};

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The largest flow run or task run a store keeps: 384 KiB (393,216 bytes) of its JSON
/// document (`serde_json::to_vec`). Larger ones are refused with [`StoreError::TooLarge`]
/// before anything is written, by **both** adapters, so that a run behaves the same in
/// both shapes. Why this number: DynamoDB (the AWS shape) stores at most 400 KB per item,
/// counting attribute names and values, and a run item holds the run's document beside
/// about 1 KB of key and index attributes; 16 KiB of headroom keeps every accepted run
/// within it. SQLite has no such limit, and Prefect none either: a run over it (huge
/// `parameters`, say) is the one Prefect request pushpool refuses for its size alone.
pub const MAX_RUN_DOCUMENT_BYTES: usize = 384 * 1024;

/// Refuses a run document (`what`: `"flow run"`, `"task run"`) larger than
/// [`MAX_RUN_DOCUMENT_BYTES`], naming its size, the limit and its largest top-level field.
///
/// # Errors
/// [`StoreError::TooLarge`]; [`StoreError::Backend`] if it does not serialise.
pub fn check_run_size<T: serde::Serialize>(what: &str, document: &T) -> Result<()> {
    let value = serde_json::to_value(document).map_err(|e| StoreError::Backend(Box::new(e)))?;
    let size = serde_json::to_vec(&value)
        .map_err(|e| StoreError::Backend(Box::new(e)))?
        .len();
    if size <= MAX_RUN_DOCUMENT_BYTES {
        return Ok(());
    }
    let largest = value.as_object().and_then(|fields| {
        fields
            .iter()
            .map(|(k, v)| (k, serde_json::to_vec(v).map_or(0, |b| b.len())))
            .max_by_key(|(_, n)| *n)
    });
    let field = largest.map_or_else(String::new, |(k, n)| {
        format!(" Its largest field is `{k}` ({n} bytes).")
    });
    Err(StoreError::TooLarge(format!(
        "The {what} is {size} bytes as JSON, over the {MAX_RUN_DOCUMENT_BYTES} bytes (384 KiB) \
         pushpool stores per {what} (DynamoDB keeps at most 400 KB per item).{field} \
         Nothing was written."
    )))
}

/// Offset and limit of a listing; `limit: None` means every row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most.
    pub limit: Option<usize>,
}

/// A flow run query: Prefect's [`FlowRunFilter`] plus the restrictions that other resources'
/// filters resolve to, a [`FlowRunSort`] and a [`Page`].
///
/// The restrictions are how `POST /flow_runs/filter` answers its `flows`, `deployments` and
/// `work_pools` filters: Prefect joins (`EXISTS` subqueries); pushpool resolves those small
/// collections to id sets first and passes them here, which selects the same runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowRunQuery {
    /// Prefect's flow run criteria.
    pub filter: FlowRunFilter,
    /// Only runs of these flows.
    pub flow_ids: Option<Vec<Uuid>>,
    /// Only runs of these deployments (a run without a deployment never matches).
    pub deployment_ids: Option<Vec<Uuid>>,
    /// Only runs of these work pools (a run without a pool never matches).
    pub work_pool_names: Option<Vec<String>>,
    /// Order.
    pub sort: FlowRunSort,
    /// Paging.
    pub page: Page,
}

impl FlowRunQuery {
    /// A query of `filter`, unpaged, in the default order.
    pub fn new(filter: FlowRunFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Whether `run` passes the filter and the restrictions (paging aside): the reference
    /// every adapter's answer must equal.
    pub fn matches(&self, run: &FlowRun) -> bool {
        fn within<T: PartialEq>(list: &Option<Vec<T>>, value: Option<&T>) -> bool {
            list.as_ref()
                .is_none_or(|l| value.is_some_and(|v| l.contains(v)))
        }
        within(&self.flow_ids, Some(&run.flow_id))
            && within(&self.deployment_ids, run.deployment_id.as_ref())
            && within(&self.work_pool_names, run.work_pool_name.as_ref())
            && self.filter.matches(run)
    }
}

/// A filter over task runs: each `Some` list must match (any of its values). Listings are
/// ordered by task run id, descending (Prefect's default `ID_DESC`; server-made ids are
/// UUIDv7, so newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRunFilter {
    /// Task run ids.
    pub ids: Option<Vec<Uuid>>,
    /// Flow run ids (the runs the task runs belong to).
    pub flow_run_ids: Option<Vec<Uuid>>,
    /// Paging.
    pub page: Page,
}

/// One entry of the change feed: flow run `flow_run_id` was written and is now in `state_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic sequence number.
    pub seq: u64,
    /// The run.
    pub flow_run_id: Uuid,
    /// Its state type after the write.
    pub state_type: Option<StateType>,
}

/// A bounded change of a named counter (a concurrency slot count keyed by a string, say),
/// part of a [`Transaction`].
///
/// Counters start at 0 and are created by their first change. The bound is checked in the
/// direction of the change only: an increment (`delta > 0`) needs the result to be at most
/// `limit` (no limit: any result); a decrement (`delta < 0`) needs the result to be at least 0
/// (whatever the limit, so a slot can always be given back after a limit was lowered). A
/// change that breaks its bound fails the whole transaction with
/// [`StoreError::LimitReached`]; nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    /// The counter's name (any string; adapters escape it in their keys).
    pub name: String,
    /// What to add (negative to subtract; 0 checks nothing and writes nothing but is allowed).
    pub delta: i64,
    /// The largest value an increment may reach.
    pub limit: Option<i64>,
}

impl CounterChange {
    /// `+delta` on `name`, only while the result stays at most `limit`.
    pub fn increment(name: impl Into<String>, delta: i64, limit: Option<i64>) -> Self {
        Self {
            name: name.into(),
            delta,
            limit,
        }
    }

    /// `-delta` on `name`, never below 0.
    pub fn decrement(name: impl Into<String>, delta: i64) -> Self {
        Self {
            name: name.into(),
            delta: -delta,
            limit: None,
        }
    }

    /// Whether `current + delta` is within this change's bound (see the type's docs); `None`
    /// when the sum overflows.
    pub fn apply_to(&self, current: i64) -> Option<i64> {
        let next = current.checked_add(self.delta)?;
        let ok = if self.delta > 0 {
            self.limit.is_none_or(|l| next <= l)
        } else if self.delta < 0 {
            next >= 0
        } else {
            true
        };
        ok.then_some(next)
    }
}

/// What [`Store::commit`] writes at once, all or nothing.
///
/// - `flow_runs`: each run is written only if its stored `version` still equals the run's
///   `version` (the one it was read at), and gets the next version; as with
///   [`Store::update_flow_run`], a new `state_id` is appended to the run's state history and
///   every run written appends a [`Change`]. A stale run fails the transaction with
///   [`StoreError::VersionConflict`] (its id), a deleted one with [`StoreError::NotFound`].
/// - `counters`: each [`CounterChange`] is applied within its bound, else
///   [`StoreError::LimitReached`] (when a run is stale too, `VersionConflict` wins: the
///   caller re-reads and decides again).
///
/// A run or a counter appears at most once per transaction (`Backend` otherwise: a bug of
/// the caller). Size: at most [`Transaction::MAX_ITEMS`] items, a run counting up to 4 (the
/// run, its history entry, its state pointer, its change) and a counter 1: DynamoDB's
/// `TransactWriteItems` takes at most 100 items; SQLite has no such limit but both adapters
/// refuse larger transactions alike (`Backend`), so a caller cannot depend on one shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transaction {
    /// Flow run updates, each conditioned on its `version`.
    pub flow_runs: Vec<FlowRun>,
    /// Counter changes, each within its bound.
    pub counters: Vec<CounterChange>,
}

impl Transaction {
    /// The most items one transaction may hold (DynamoDB's `TransactWriteItems` limit).
    pub const MAX_ITEMS: usize = 100;
    /// The items a flow run update takes at most (run, history entry, state pointer, change).
    pub const ITEMS_PER_FLOW_RUN: usize = 4;

    /// A transaction writing one run.
    pub fn flow_run(run: FlowRun) -> Self {
        Self {
            flow_runs: vec![run],
            counters: Vec::new(),
        }
    }

    /// Adds a run update.
    #[must_use]
    pub fn with_flow_run(mut self, run: FlowRun) -> Self {
        self.flow_runs.push(run);
        self
    }

    /// Adds a counter change.
    #[must_use]
    pub fn with_counter(mut self, change: CounterChange) -> Self {
        self.counters.push(change);
        self
    }

    /// Whether nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.flow_runs.is_empty() && self.counters.is_empty()
    }

    /// Checks the rules every adapter applies before writing: each run and counter at most
    /// once, at most [`Transaction::MAX_ITEMS`] items.
    ///
    /// # Errors
    /// [`StoreError::Backend`] saying which rule is broken (no run or counter content).
    pub fn check(&self) -> Result<()> {
        let items = self.flow_runs.len() * Self::ITEMS_PER_FLOW_RUN + self.counters.len();
        if items > Self::MAX_ITEMS {
            return Err(StoreError::Backend(
                format!(
                    "a transaction of {} flow runs and {} counters may take {items} items, more than the {} allowed",
                    self.flow_runs.len(),
                    self.counters.len(),
                    Self::MAX_ITEMS
                )
                .into(),
            ));
        }
        let mut runs = std::collections::HashSet::new();
        if let Some(run) = self.flow_runs.iter().find(|r| !runs.insert(r.id)) {
            return Err(StoreError::Backend(
                format!("a transaction writes flow run {} twice", run.id).into(),
            ));
        }
        let mut counters = std::collections::HashSet::new();
        if self
            .counters
            .iter()
            .any(|c| !counters.insert(c.name.as_str()))
        {
            return Err(StoreError::Backend(
                "a transaction changes one counter twice".into(),
            ));
        }
        Ok(())
    }
}

/// What the scheduler last materialised for one schedule of a deployment: a small record
/// that lets a scheduler tick decide without reading runs whether the schedule needs new
/// runs (Prefect's scheduler counts the schedule's future runs in SQL instead).
///
/// A mark is valid only for the `fingerprint` it was made with (the deployment's and the
/// schedule's `updated` times): any change of either makes the next tick materialise the
/// schedule again (idempotently: a slot whose run exists gets no second one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleMark {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The schedule.
    pub schedule_id: Uuid,
    /// The deployment's and schedule's versions the mark was made for.
    pub fingerprint: String,
    /// The latest slot a run was made for (runs up to it exist or were made).
    pub last: Option<chrono::DateTime<chrono::Utc>>,
    /// When the schedule needs runs again (fewer than the minimum ahead, or a new slot
    /// entering the horizon).
    pub next_check: chrono::DateTime<chrono::Utc>,
}

/// The storage port. All methods are conditional where a race matters and return
/// [`StoreError::NotFound`] / [`StoreError::Conflict`] in the caller's terms.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a pool; `Conflict` when the name exists.
    async fn create_work_pool(&self, pool: &WorkPool) -> Result<()>;
    /// Reads a pool by name.
    async fn read_work_pool(&self, name: &str) -> Result<WorkPool>;
    /// Reads a pool by id.
    async fn read_work_pool_by_id(&self, id: Uuid) -> Result<WorkPool>;
    /// Replaces a pool (matched by id).
    async fn update_work_pool(&self, pool: &WorkPool) -> Result<()>;
    /// Deletes a pool by name.
    async fn delete_work_pool(&self, name: &str) -> Result<()>;
    /// Lists pools by name.
    async fn list_work_pools(&self, page: Page) -> Result<Vec<WorkPool>>;

    /// Creates a work queue; `Conflict` when its pool already has a queue of that name.
    async fn create_work_queue(&self, queue: &WorkQueue) -> Result<()>;
    /// Reads a work queue by id; `NotFound("Work queue not found")`.
    async fn read_work_queue(&self, id: Uuid) -> Result<WorkQueue>;
    /// Reads the queue `name` of pool `work_pool_id`; `NotFound("Work queue not found")`.
    async fn read_work_queue_by_name(&self, work_pool_id: Uuid, name: &str) -> Result<WorkQueue>;
    /// Replaces a work queue (matched by id; a rename moves its unique name);
    /// `NotFound("Work queue not found")`, `Conflict` when the new name is taken in the pool.
    async fn update_work_queue(&self, queue: &WorkQueue) -> Result<()>;
    /// Deletes a work queue; `NotFound("Work queue not found")`.
    async fn delete_work_queue(&self, id: Uuid) -> Result<()>;
    /// The queues of pool `work_pool_id` (every pool's when `None`), in no particular order
    /// (callers sort by priority): a small collection, read whole.
    async fn list_work_queues(&self, work_pool_id: Option<Uuid>) -> Result<Vec<WorkQueue>>;

    /// Creates a block type; `Conflict` when the slug exists.
    async fn create_block_type(&self, block_type: &BlockType) -> Result<()>;
    /// Reads a block type by id.
    async fn read_block_type(&self, id: Uuid) -> Result<BlockType>;
    /// Reads a block type by slug.
    async fn read_block_type_by_slug(&self, slug: &str) -> Result<BlockType>;
    /// Replaces a block type.
    async fn update_block_type(&self, block_type: &BlockType) -> Result<()>;
    /// Lists block types.
    async fn list_block_types(&self, page: Page) -> Result<Vec<BlockType>>;

    /// Creates a block schema; `Conflict` when (checksum, version) exists.
    async fn create_block_schema(&self, schema: &BlockSchema) -> Result<()>;
    /// Reads a block schema by id.
    async fn read_block_schema(&self, id: Uuid) -> Result<BlockSchema>;
    /// Reads a block schema by checksum, and version when given (else the newest).
    async fn read_block_schema_by_checksum(
        &self,
        checksum: &str,
        version: Option<&str>,
    ) -> Result<BlockSchema>;
    /// Lists block schemas.
    async fn list_block_schemas(&self, page: Page) -> Result<Vec<BlockSchema>>;

    /// Creates a block document; `Conflict` when its type already has that name.
    async fn create_block_document(&self, document: &BlockDocument) -> Result<()>;
    /// Reads a block document by id.
    async fn read_block_document(&self, id: Uuid) -> Result<BlockDocument>;
    /// Reads a block document by block type and name.
    async fn read_block_document_by_name(
        &self,
        block_type_id: Uuid,
        name: &str,
    ) -> Result<BlockDocument>;
    /// Replaces a block document.
    async fn update_block_document(&self, document: &BlockDocument) -> Result<()>;
    /// Deletes a block document.
    async fn delete_block_document(&self, id: Uuid) -> Result<()>;
    /// Lists block documents.
    async fn list_block_documents(&self, page: Page) -> Result<Vec<BlockDocument>>;

    /// Creates the flow, or returns the one with that name: `(flow, created)`.
    async fn upsert_flow(&self, flow: &Flow) -> Result<(Flow, bool)>;
    /// Reads a flow by id.
    async fn read_flow(&self, id: Uuid) -> Result<Flow>;
    /// Reads a flow by name.
    async fn read_flow_by_name(&self, name: &str) -> Result<Flow>;
    /// Deletes a flow.
    async fn delete_flow(&self, id: Uuid) -> Result<()>;
    /// Lists flows.
    async fn list_flows(&self, page: Page) -> Result<Vec<Flow>>;

    /// Creates a variable; `Conflict("A variable with the name 'x' already exists.")` (Prefect's
    /// message) when the name is taken.
    async fn create_variable(&self, variable: &Variable) -> Result<()>;
    /// Reads a variable by id; `NotFound("Variable not found.")`.
    async fn read_variable(&self, id: Uuid) -> Result<Variable>;
    /// Reads a variable by its unique name; `NotFound("Variable not found.")`.
    async fn read_variable_by_name(&self, name: &str) -> Result<Variable>;
    /// Replaces a variable (a rename moves its unique name); `NotFound("Variable not found.")`,
    /// `Conflict` when the new name is taken.
    async fn update_variable(&self, variable: &Variable) -> Result<()>;
    /// Deletes a variable; `NotFound("Variable not found.")`.
    async fn delete_variable(&self, id: Uuid) -> Result<()>;
    /// Lists variables by name, paged.
    async fn list_variables(&self, page: Page) -> Result<Vec<Variable>>;

    /// Creates an artifact.
    async fn create_artifact(&self, artifact: &Artifact) -> Result<()>;
    /// Reads an artifact; `NotFound("Artifact not found.")`.
    async fn read_artifact(&self, id: Uuid) -> Result<Artifact>;
    /// Replaces an artifact; `NotFound("Artifact not found.")`.
    async fn update_artifact(&self, artifact: &Artifact) -> Result<()>;
    /// Deletes an artifact; `NotFound("Artifact not found.")`.
    async fn delete_artifact(&self, id: Uuid) -> Result<()>;
    /// Lists artifacts (in no particular order), paged.
    async fn list_artifacts(&self, page: Page) -> Result<Vec<Artifact>>;

    /// Creates a deployment; `Conflict` when the flow already has one of that name.
    async fn create_deployment(&self, deployment: &Deployment) -> Result<()>;
    /// Reads a deployment by id.
    async fn read_deployment(&self, id: Uuid) -> Result<Deployment>;
    /// Reads a deployment by flow name and deployment name.
    async fn read_deployment_by_name(&self, flow_name: &str, name: &str) -> Result<Deployment>;
    /// Replaces a deployment.
    async fn update_deployment(&self, deployment: &Deployment) -> Result<()>;
    /// Deletes a deployment.
    async fn delete_deployment(&self, id: Uuid) -> Result<()>;
    /// Lists deployments.
    async fn list_deployments(&self, page: Page) -> Result<Vec<Deployment>>;

    /// Creates a flow run with its first state (history and change feed included). With an
    /// `idempotency_key` already used for the same flow, returns that run: `(run, created)`.
    async fn create_flow_run(&self, run: &FlowRun) -> Result<(FlowRun, bool)>;
    /// Reads a flow run.
    async fn read_flow_run(&self, id: Uuid) -> Result<FlowRun>;
    /// Writes `run` only if the stored version equals `run.version`
    /// ([`StoreError::VersionConflict`] otherwise); returns it with the bumped version.
    /// A new `state_id` is appended to the state history; every write appends a [`Change`].
    /// A [`Store::commit`] of one run.
    async fn update_flow_run(&self, run: &FlowRun) -> Result<FlowRun> {
        let mut written = self.commit(&Transaction::flow_run(run.clone())).await?;
        written
            .pop()
            .ok_or_else(|| StoreError::Backend("a committed run was not returned".into()))
    }
    /// Writes `tx` atomically, all or nothing (see [`Transaction`] for the conditions and
    /// errors: `VersionConflict`, `NotFound`, `LimitReached`, `Backend` for a malformed
    /// transaction). Returns the runs written, in `tx` order, with their new versions.
    async fn commit(&self, tx: &Transaction) -> Result<Vec<FlowRun>>;
    /// The value of counter `name` (0 when it was never changed).
    async fn read_counter(&self, name: &str) -> Result<i64>;
    /// Deletes a flow run and its history.
    async fn delete_flow_run(&self, id: Uuid) -> Result<()>;
    /// The runs that match `query`, in its order, paged.
    async fn list_flow_runs(&self, query: &FlowRunQuery) -> Result<Vec<FlowRun>>;
    /// How many runs match `query` (its page aside).
    async fn count_flow_runs(&self, query: &FlowRunQuery) -> Result<u64>;
    /// SCHEDULED runs whose scheduled time is at or before `before`, oldest first, at most
    /// `limit` (the due index: the submitter's and reconciler's scan).
    async fn list_due_flow_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<FlowRun>>;
    /// The run's states, oldest first.
    async fn read_flow_run_states(&self, id: Uuid) -> Result<Vec<State>>;
    /// Reads the state with id `state_id`.
    async fn read_state(&self, state_id: Uuid) -> Result<State>;

    // Task runs. Their writes never go to the change feed (nothing is submitted for them).

    /// Creates a task run with its first state (history included). When a task run with the
    /// same `(flow_run_id, task_key, dynamic_key)` exists (`flow_run_id` may be `None`),
    /// returns it instead, as Prefect's server does: `(run, created)`.
    async fn create_task_run(&self, run: &TaskRun) -> Result<(TaskRun, bool)>;
    /// Reads a task run (`NotFound`: "Task run not found").
    async fn read_task_run(&self, id: Uuid) -> Result<TaskRun>;
    /// Writes `run` only if the stored version equals `run.version`
    /// ([`StoreError::VersionConflict`] otherwise); returns it with the bumped version.
    /// A new `state_id` is appended to the run's state history.
    async fn update_task_run(&self, run: &TaskRun) -> Result<TaskRun>;
    /// Deletes a task run and its history (its `(flow_run_id, task_key, dynamic_key)` is free
    /// again).
    async fn delete_task_run(&self, id: Uuid) -> Result<()>;
    /// The task run's states, oldest first (empty for an unknown run).
    async fn read_task_run_states(&self, id: Uuid) -> Result<Vec<State>>;
    /// Reads the task run state with id `state_id` (`NotFound`: "State not found").
    async fn read_task_run_state(&self, state_id: Uuid) -> Result<State>;
    /// Filters task runs, by id descending.
    async fn list_task_runs(&self, filter: &TaskRunFilter) -> Result<Vec<TaskRun>>;
    /// Adds `state` to the state history of task run `task_run_id` without touching the run
    /// (a state the task run recorder received after a newer one, as Prefect's
    /// `_insert_task_run_states`). Idempotent on `state.id`: a state already stored is kept
    /// as it is. `NotFound` ("Task run not found") when the run does not exist.
    async fn add_task_run_state(&self, task_run_id: Uuid, state: &State) -> Result<()>;
    /// The flow runs whose `parent_task_run_id` is one of `parent_task_run_ids` (the subflow
    /// runs of those tracking task runs), newest expected start first, paged.
    async fn list_subflow_runs(
        &self,
        parent_task_run_ids: &[Uuid],
        page: Page,
    ) -> Result<Vec<FlowRun>>;

    /// Stores a new API key (by its hash); `Conflict` when the hash or name exists.
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    /// Finds a key by the hex SHA-256 of its secret.
    async fn read_api_key_by_hash(&self, hash: &str) -> Result<ApiKey>;
    /// Every key, revoked ones included, by name.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Marks a key revoked (kept for the record); `NotFound` when no key has that id.
    async fn revoke_api_key(&self, id: Uuid) -> Result<()>;

    /// Takes the lease `key` for `holder` until `ttl` from now, if it is free, expired, or
    /// already `holder`'s (then it is extended): `true` when `holder` holds it now. A lease
    /// is a lock shared by every process over the store (concurrent Lambda invocations on
    /// AWS), for work that must not run twice at once, such as registering a revision of
    /// one ECS task definition family; the `ttl` bounds how long a crashed holder blocks
    /// the others. Expiry is by each writer's clock.
    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool>;
    /// Gives the lease `key` up if `holder` holds it (otherwise nothing happens).
    async fn release_lease(&self, key: &str, holder: &str) -> Result<()>;

    // Scheduler marks ([`ScheduleMark`]): one small record per deployment schedule.

    /// Every schedule mark (one read per scheduler tick), in no particular order.
    async fn list_schedule_marks(&self) -> Result<Vec<ScheduleMark>>;
    /// Creates or replaces the mark of `(mark.deployment_id, mark.schedule_id)`.
    async fn put_schedule_mark(&self, mark: &ScheduleMark) -> Result<()>;
    /// Deletes the marks of a deployment (none: nothing to do).
    async fn delete_schedule_marks(&self, deployment_id: Uuid) -> Result<()>;

    // Logs ([`logs`]): flow run and task run log lines, kept for a retention time.

    /// Stores a batch of log lines (ids made by the caller). Each line is kept at least
    /// `retention` after its `created`: DynamoDB expires it by TTL (`expires_at`), SQLite's
    /// retention task deletes it ([`Store::delete_logs_created_before`]).
    async fn create_logs(
        &self,
        logs: &[pushpool_core::logs::Log],
        retention: std::time::Duration,
    ) -> Result<()>;
    /// The lines that pass `query`, in its order, paged.
    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<pushpool_core::logs::Log>>;
    /// Deletes the lines created before `cutoff` and says how many. DynamoDB deletes
    /// nothing here (its TTL expires lines) and answers 0.
    async fn delete_logs_created_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64>;

    // Events ([`events`]): Prefect events (the engine's, and pushpool's flow run state
    // changes), kept for a retention time.

    /// Stores events (an id already stored is written again, unchanged in effect). Each is
    /// kept at least `retention` after its `received`: DynamoDB expires it by TTL
    /// (`expires_at`), SQLite's retention task deletes it
    /// ([`Store::delete_events_received_before`]).
    async fn create_events(
        &self,
        events: &[pushpool_core::events::Event],
        retention: std::time::Duration,
    ) -> Result<()>;
    /// Every stored event that passes `filter` (whose `occurred` bounds must be set:
    /// [`pushpool_core::events::EventFilter::resolve`]), in its order
    /// ([`pushpool_core::events::EventFilter::finish`]).
    async fn read_events(
        &self,
        filter: &pushpool_core::events::EventFilter,
    ) -> Result<Vec<pushpool_core::events::Event>>;
    /// Deletes the events received before `cutoff` and says how many. DynamoDB deletes
    /// nothing here (its TTL expires events) and answers 0.
    async fn delete_events_received_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64>;

    // Global concurrency limits and their leases ([`concurrency`]). Limits are a small
    // collection (a workspace's limits), read whole; leases are as many as the slots held.

    /// Creates a limit (its `version` as given, 0 for a new one);
    /// `Conflict("A concurrency limit with the name 'x' already exists.")` when the name is
    /// taken.
    async fn create_concurrency_limit(&self, limit: &ConcurrencyLimit) -> Result<()>;
    /// Reads a limit by id; `NotFound("Concurrency Limit not found")`.
    async fn read_concurrency_limit(&self, id: Uuid) -> Result<ConcurrencyLimit>;
    /// Reads a limit by its unique name; `NotFound("Concurrency Limit not found")`.
    async fn read_concurrency_limit_by_name(&self, name: &str) -> Result<ConcurrencyLimit>;
    /// Every limit, by name (byte order).
    async fn list_concurrency_limits(&self) -> Result<Vec<ConcurrencyLimit>>;
    /// Replaces a limit (a rename moves its unique name) only if the stored one still has
    /// `limit.version`, storing `version + 1`: `NotFound`, `VersionConflict(id)` when it
    /// changed, `Conflict` when the new name is taken.
    async fn update_concurrency_limit(&self, limit: &ConcurrencyLimit) -> Result<()>;
    /// Deletes a limit; `NotFound("Concurrency Limit not found")`. Its leases are the
    /// caller's to release first.
    async fn delete_concurrency_limit(&self, id: Uuid) -> Result<()>;
    /// Writes `write` all or nothing (see [`concurrency::ConcurrencyWrite`]).
    async fn commit_concurrency(&self, write: &concurrency::ConcurrencyWrite) -> Result<()>;
    /// Reads a lease; `NotFound("Lease not found")` (expired ones are read until released).
    async fn read_concurrency_lease(&self, id: Uuid) -> Result<ConcurrencyLease>;
    /// Every lease (expired ones included), in no particular order.
    async fn list_concurrency_leases(&self) -> Result<Vec<ConcurrencyLease>>;
    // Flow run inputs ([`FlowRunInput`]): key/value texts under a flow run (pause and resume
    // with `wait_for_input`, `send_input`/`receive_input`).

    /// Creates an input; `Conflict("A flow run input with this key already exists.")` when
    /// the run has one with that key. The store does not check that the run exists.
    async fn create_flow_run_input(&self, input: &FlowRunInput) -> Result<()>;
    /// The run's input of that key; `NotFound("Flow run input not found")`.
    async fn read_flow_run_input(&self, flow_run_id: Uuid, key: &str) -> Result<FlowRunInput>;
    /// Every input of the run, oldest (`created`) first.
    async fn list_flow_run_inputs(&self, flow_run_id: Uuid) -> Result<Vec<FlowRunInput>>;
    /// Deletes the run's input of that key; `NotFound("Flow run input not found")`.
    async fn delete_flow_run_input(&self, flow_run_id: Uuid, key: &str) -> Result<()>;

    /// Changes after `after`, oldest first, at most `limit`.
    async fn read_changes(&self, after: u64, limit: usize) -> Result<Vec<Change>>;
    /// Drops changes up to and including `upto` (consumed).
    async fn delete_changes(&self, upto: u64) -> Result<()>;
    /// A notifier woken after each change, for in-process consumers; `None` where the feed is
    /// external (a DynamoDB stream).
    fn change_notifier(&self) -> Option<Arc<tokio::sync::Notify>>;
}
