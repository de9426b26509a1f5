//! The DynamoDB adapter of the [`Store`](pushpool_store::Store) port: pushpool's AWS shape,
//! everything in **one table** (on-demand, stream `NEW_AND_OLD_IMAGES`, five GSIs), passing
//! the same conformance suite as the embedded SQLite adapter.
//!
//! This crate depends on the port, the domain and the DynamoDB SDK only: no HTTP framework, no
//! Lambda runtime, no provider SDK. SDK types never leave it; its errors become
//! [`StoreError`](pushpool_store::StoreError)s (`Conflict`, `NotFound`, `VersionConflict`,
//! `Transient` for throttling, 5xx and timeouts, `Backend` for the rest) whose sources are a
//! [`DynamoError`], which never carries an item's content (block documents hold secrets).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), pushpool_store::StoreError> {
//! use pushpool_store::{Page, Store};
//! use pushpool_store_dynamodb::DynamoStore;
//!
//! let config = aws_config::load_from_env().await;
//! let client = aws_sdk_dynamodb::Client::new(&config);
//! DynamoStore::create_table(&client, "pushpool").await?; // idempotent; the deploy makes it too
//! let store = DynamoStore::new(client, "pushpool");
//! let pools = store.list_work_pools(Page::default()).await?;
//! # let _ = pools; Ok(()) }
//! ```
//!
//! # Why one table
//!
//! Single-table design: every resource, its uniqueness guards, the flow run history and the
//! change feed live in one table, so a transaction can write a resource together with its
//! unique names, a flow run with its history entry and its change, and one stream carries
//! every change to the submitter. Items are told apart by their keys (`pk`, `sk`, strings).
//!
//! # Item layout
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | work pool | `WORKPOOL#<id>` | `WORKPOOL` | `id`, `body` (JSON), `uk0` (its name) |
//! | block type | `BLOCKTYPE#<id>` | `BLOCKTYPE` | `id`, `body`, `uk0` (slug) |
//! | block schema | `BLOCKSCHEMA#<id>` | `BLOCKSCHEMA` | `id`, `body`, `uk0` (`<checksum>#<version>`) |
//! | block document | `BLOCKDOC#<id>` | `BLOCKDOC` | `id`, `body`, `uk0` (`<block type id>#<name>`) |
//! | flow | `FLOW#<id>` | `FLOW` | `id`, `body`, `uk0` (name) |
//! | deployment | `DEPLOYMENT#<id>` | `DEPLOYMENT` | `id`, `body`, `uk0` (`<flow id>#<name>`) |
//! | API key | `APIKEY#<id>` | `APIKEY` | `id`, `body`, `uk0` (name), `uk1` (hash) |
//! | uniqueness item | `UNIQUE#<KIND>` (`UNIQUE#WORKPOOL`, `UNIQUE#BLOCKTYPE`, `UNIQUE#BLOCKSCHEMA`, `UNIQUE#BLOCKDOC`, `UNIQUE#FLOW`, `UNIQUE#DEPLOYMENT`, `UNIQUE#APIKEYNAME`, `UNIQUE#APIKEY`) | the unique key | `id` of the resource, `created` |
//! | flow run (item format 2) | `RUN#<id>` | `RUN` | `body` (compact JSON), `version` (N), `format` (N, 2), `flow_id`, `deployment_id`, `work_pool_name`, `idempotency_key`, `est` (expected start time), `runs` (`RUNS`), `gsi1pk`, `gsi1sk` |
//! | flow run (item format 1, before upgrade) | `RUN#<id>` | `RUN` | `id`, `body` (full JSON), `version`, `state_type`, `state_name`, `state_id`, `flow_id`, `deployment_id`, `work_pool_name`, `idempotency_key`, `sort_time`, `gsi1pk`, `gsi1sk` |
//! | tag listing entry | `RUNTAG#<tag>` | `<run id>` | none |
//! | item format | `META` | `FORMAT` | `format` (N): every run item is at least at this format |
//! | state history | `RUN#<id>` | `STATE#<timestamp>#<state id>` | `state_id`, `body` (the state's JSON) |
//! | state pointer | `STATE#<state id>` | `STATE` | `run_id`, `history_sk` |
//! | idempotency key | `RUNKEY#<flow id>#<key>` | `RUNKEY` | `id` of the run |
//! | change (outbox) | `OUTBOX` | `<seq, 20 digits>` | `seq` (N), `flow_run_id`, `state_type`, `expires_at` (TTL) |
//! | outbox counter | `COUNTER` | `OUTBOX` | `seq` (N) |
//! | named counter ([`Store::commit`](pushpool_store::Store::commit)) | `COUNTER#<name>` | `COUNTER` | `count` (N) |
//! | task run | `TASKRUN#<id>` | `TASKRUN` | `id`, `body` (JSON), `version` (N), `state_id`, `flow_run_id` (`NONE` without one), `run_key` (the pk of its uniqueness item) |
//! | task run state history | `TASKRUN#<id>` | `STATE#<timestamp>#<state id>` | `state_id`, `body` |
//! | task run state pointer | `TASKRUNSTATE#<state id>` | `STATE` | `run_id` (the task run), `history_sk` |
//! | task run unique key | `TASKRUNKEY#<flow run id or NONE>#<task key>#<dynamic key>` | `TASKRUNKEY` | `id` of the task run |
//! | task run listing entries | `TASKRUNS` and `TASKRUNS#<flow run id or NONE>` | `<task run id>` | none |
//! | subflow link | `TASKRUN#<parent task run id>` | `CHILD#<flow run id>` | none |
//! | event (see `events`) | `EVENT#<yyyy-mm-dd>` | `<occurred>#<event id>` | `doc` (JSON), `expires_at` (TTL: received + retention) |
//! | log line (see `logs`) | `LOG#<flow run id>` (`LOG#NONE`) | `<timestamp>#<log id>` | `name`, `level` (N), `message`, `task_run_id`, `created`, `expires_at` (TTL: created + retention) |
//! | lease | `LEASE#<key>` | `LEASE` | `holder`, `until_ms` (N, epoch ms), `expires_at` (TTL: a day after) |
//!
//! Composite keys join their parts with `#`, each part escaped (`%` → `%25`, `#` → `%23`), so
//! no name can forge another's key. Times are ISO 8601 with microseconds and `Z` (fixed width:
//! string order is time order).
//!
//! - **Resources** are keyed by id (`GetItem` by id), in their own partition. Each unique key
//!   has a **uniqueness item** in its kind's partition, holding the resource's id; creating a
//!   resource is a `TransactWriteItems` of a `Put` of the resource and a `Put` of each
//!   uniqueness item, all conditioned on `attribute_not_exists(pk)`, and a cancelled
//!   condition on a uniqueness item is a `Conflict` with the SQLite adapter's message. A
//!   rename on update moves the uniqueness item in the same transaction (put the new one
//!   conditionally, delete the old one if it is still ours); the resource's `uk<i>`
//!   attributes record its keys, so the update is conditioned on them too. Reads by name
//!   are two strongly consistent `GetItem`s (uniqueness item → resource). Listings `Query`
//!   the kind's uniqueness partition, which is sorted by the unique key (what the SQLite
//!   adapter orders by), page over it, then `BatchGetItem` the resources.
//! - **Flow runs** are in their own partition with their state history, so the history is one
//!   `Query` and a delete removes the partition. The run's JSON is a **string attribute**
//!   (`body`), not a DynamoDB map made with serde_dynamo: the documents carry free-form JSON
//!   (parameters, job variables, base job templates) that must come back byte-for-byte, and
//!   a map would lose the order of object keys and the difference between `1` and `1.0` (a
//!   DynamoDB number has neither). What queries and filters need is copied to top-level
//!   attributes beside it, and stream consumers decode `body` with `serde_json`.
//!   `version` is a number attribute: [`Store::commit`](pushpool_store::Store::commit)
//!   (and `update_flow_run`, a commit of one run) puts the run on the condition `version =
//!   :expected`, with the state history item (when the state id changed: a strongly
//!   consistent read of the run first tells, and tells `NotFound` from `VersionConflict`
//!   when the condition fails) and the change in the same transaction, together with the
//!   transaction's other runs and bounded counter changes (`transact.rs`).
//! - **Idempotency keys** are uniqueness items too, one partition each (never listed); on a
//!   taken key `create_flow_run` returns the run it points to, with `created = false`. A
//!   run's key is fixed when it is created (as in SQLite, updates do not move it); deleting
//!   the run frees it.
//! - **State history** items sort by the state's timestamp, then its id (UUIDv7): the order
//!   the states were entered, as long as the writers' clocks agree.
//! - **The run-state index** `gsi1` (`gsi1pk = RUNSTATE#<state type>` or `RUNSTATE#NONE`,
//!   projecting `id`, `flow_id`, `deployment_id`, `work_pool_name`, `state_name` and
//!   `sort_time`) holds every run. In its `RUNSTATE#SCHEDULED` partition `gsi1sk` is the
//!   time the run is due (its state's scheduled time, else its expected start time, else
//!   its creation): due runs are one `Query` up to a time. In the other partitions it is
//!   the expected start time (format 2; format 1 wrote `<sort time>#<run id>` everywhere).
//!   The index is eventually consistent, so the runs it names are read with a strongly
//!   consistent `BatchGetItem` and checked again against the filter: a listing never returns
//!   a run in a state it no longer has.
//! - **The listing indexes** (format 2), each projecting `flow_id`, `deployment_id` and
//!   `work_pool_name` (those that are not its keys): `gsi2` (`deployment_id` → `est`),
//!   `gsi3` (`work_pool_name` → `est`), `gsi4` (`runs` → `est`: every run by expected start
//!   time) and `gsi5` (`runs` → `pk`: every run by id). `est` is the expected start time, or
//!   `!` without one (below every time: `NULL`s first ascending, last descending, as
//!   Prefect sorts). Index sort keys need not be unique; equal times are ordered by id in
//!   memory. **Tag listing entries** (`RUNTAG#<tag>` / `<run id>`, keys only), one per
//!   distinct tag, are put (`PutItem`) *before* the transaction that creates the run or
//!   gives it the tag, and deleted after the one that drops it, and with the run. An entry
//!   is a hint: listings read the run and test its tags, so an entry without its run (a
//!   failed create) is skipped, while a run never lacks the entry of a tag it has. Keeping
//!   them out of the transaction keeps a run with many tags within DynamoDB's 100 items
//!   per transaction, and costs 1 write unit per entry instead of 2.
//!
//! - **Task runs** follow flow runs (run item and history in one partition, conditional
//!   writes on `version`, a state pointer per state) without outbox items: nothing is
//!   submitted for them. `(flow_run_id, task_key, dynamic_key)` has a uniqueness item
//!   written in the creating transaction, so a second create returns the first run. Two
//!   listing entries (all task runs; the task runs of one flow run) hold only keys, the task
//!   run id as sort key: a descending `Query` is Prefect's default `ID_DESC` (server-made
//!   task run ids are UUIDv7), then a strongly consistent `BatchGetItem` reads the runs. A
//!   flow run created with a `parent_task_run_id` puts a **subflow link** in that task run's
//!   partition in its creating transaction: the engine's lookup of an existing subflow run
//!   is one `Query` of `CHILD#` there. Task runs of a deleted flow run are kept (Prefect
//!   cascades the delete; pushpool does not yet).
//!
//! # Flow run queries: cost that does not grow with the table
//!
//! `list_flow_runs` answers each query from one **source**: partitions that hold every run
//! it can match. The ids or parent task runs it names are read directly. Otherwise the
//! candidates are the partitions of its deployments (`deployment_id.any_` under `and_`, or
//! the `deployments` filter), of its work pools, of its tags (`tags.any_`, or one of
//! `tags.all_`) and of its state types (`state.type.any_`), in that order of preference:
//! the first whose order is the sort's is read in order; else a deployment, pool or tag
//! source is read whole; else every run (`gsi4`/`gsi5`) in the sort's order.
//! When the source's order is the query's sort (`EXPECTED_START_TIME_ASC`/`_DESC` on the
//! `est` indexes and the non-SCHEDULED state partitions, `ID_DESC` on tag entries and
//! `gsi5`) and the query has a limit, each partition is read **in that order** with `Limit`
//! and `ExclusiveStartKey`, its runs read (strongly consistent `BatchGetItem`) and tested
//! with the reference predicate [`FlowRunQuery::matches`](pushpool_store::FlowRunQuery),
//! until `offset + limit` match and the next entry sorts after the last one kept; then the
//! partitions' runs are merged by the sort. An `expected_start_time` window becomes a
//! `BETWEEN` on the sort key. The rest of the filter is a residual: a page reads
//! `offset + limit` entries plus those the residual rejects, whatever the size of the table
//! (`tests/flat_queries.rs` asserts it: the same items and read units at 1,000 and 5,000
//! runs). Otherwise (another sort, no limit, a count) the source is read whole and sorted in
//! memory, and `or_` filters, queries by id and sorts without a narrow source keep the
//! format 1 path (every state partition, restrictions as a `FilterExpression`). Exactness
//! never depends on the plan: every returned run passed `matches` when read.
//!
//! **Trade-offs.** Writes: the four listing indexes are keyed by what a run keeps for its
//! life (deployment, pool, expected start time, id) and project only such attributes, so a
//! state transition writes none of them (DynamoDB writes an index only when one of its key
//! or projected attributes changes); each costs one index write when the run is created, and
//! about 120 bytes of index storage. The run-state index's key changes at every transition
//! (a delete and a put: 2 write units), as in format 1. A tag entry costs 1 write unit when
//! the run is created and when a tag is added or removed: a GSI cannot index a list. The single `RUNS` partition of `gsi4`/`gsi5` and each deployment's
//! and pool's partitions take one write per run created (a partition sustains 1,000 writes
//! a second); they are the next thing to shard (`RUNS#<n>`, read by merging) if that is ever
//! short. Reads: a page of 200 costs about 100 read units for the runs (1 per run up to 4
//! KB, strongly consistent) and a few for the index pages; reading the runs eventually
//! consistent would halve it, at the price of pages that may show a state a run just left.
//! Counts read every match (as SQLite and Prefect do); when the source is the whole answer
//! (only state types, deployments, pools or an expected start time window, or nothing) they
//! count its index entries and read no run: about 0.5 unit per 4 KB of entries, eventually
//! consistent.
//!
//! # Item format and upgrades
//!
//! Run items carry `format` (absent: format 1). Format 2 added the listing indexes, tag
//! entries, the expected start time as the sort key of the run-state index outside
//! SCHEDULED, and a **compact body**: the run's JSON without the fields that hold their
//! default (or the value of the state's `id`/`type`/`name`, or of the item's `pk`,
//! `flow_id`, `deployment_id`, `work_pool_name`), put back on reading, exactly (see
//! `compact.rs`). A typical run item went from 2.4 KB to under 1 KB: 1 write unit per
//! write instead of 3 (2 instead of 6 in a transaction). Reading accepts both formats;
//! every write writes format 2. [`DynamoStore::upgrade_items`] rewrites the remaining
//! format 1 run items (conditionally on their version: a concurrent write wins and is
//! already at format 2) and then records `META`/`FORMAT` = 2, after which listings use the
//! new indexes (until then, and while the table lacks the indexes, the format 1 path
//! answers them, which reads both formats). It runs in `create_table` and at each
//! reconciler event (one `GetItem` once done); `tests/item_format.rs` loads a table written
//! by format 1 and checks reads, filters, a transition and the upgrade.
//!
//! # The change feed: an outbox, not the stream
//!
//! On AWS the submitter is triggered by the table's stream, so
//! [`change_notifier`](pushpool_store::Store::change_notifier) is `None`. The port's
//! `read_changes`/`delete_changes` still work: every flow run write puts an **outbox item**
//! in the same transaction as the run, so a change exists exactly when its write committed.
//! Its `seq` comes from a counter item (`ADD seq :one`, one `UpdateItem` before the
//! transaction: a transaction cannot read back a value it computes). Why not read the stream
//! itself: stream sequence numbers are 21+ digit strings that do not fit the port's `u64`,
//! order is per shard, records cannot be deleted, and they expire after 24 hours; moto's
//! emulation of it would also be the only thing tested. The outbox costs one small item
//! (and the counter update) per run write; it carries a TTL (`expires_at`, 7 days by default)
//! because nothing consumes it on AWS. Outbox, counter and uniqueness items can be left out
//! of the stream's Lambda trigger with a filter on `sk`.
//!
//! Order: changes of one run are in commit order (a writer allocates its `seq` after reading
//! the version it updates, and the version condition serialises the writers of a run), which
//! is the order a stream gives per item. Across runs, two concurrent writers may commit in the
//! opposite order of their `seq`s, and a cancelled transaction leaves a gap: a reader must not
//! assume that no lower `seq` can appear after it read a higher one. A strictly global order
//! would need every run write to condition on one counter item, which serialises all writers;
//! the reconciler's sweep of due runs is the safety net instead.
//!
//! # Costs and limits
//!
//! Every `UNIQUE#<KIND>` partition, the `OUTBOX` partition, each `RUNSTATE#<type>` index
//! partition and the `RUNS` partitions are single partitions: fine for a control plane
//! (thousands of writes a second each), and the first thing to shard (`RUNSTATE#<type>#<n>`)
//! if one day they are not. Filtering runs by flow reads the source the rest of the filter
//! picks (flows are not indexed). Items are limited to 400 KB, like the request bodies the
//! API accepts. What a run costs from creation to COMPLETED, and what the listings read, is
//! measured by `cargo bench -p pushpool-store-dynamodb --bench costs` (moto; figures in
//! `docs/benchmarks.md`); [`DynamoStore::with_metering`] counts capacity units by DynamoDB's
//! rules, since moto reports fixed ones.

mod compact;
mod concurrency;
mod error;
mod events;
pub mod events_stream;
mod item;
mod lease;
mod logs;
mod meter;
mod ops;
mod plan;
mod run_inputs;
mod runs;
mod schedules;
mod store;
pub mod stream;
mod task_runs;
mod transact;
mod ws_connections;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pushpool_store::Result;

pub use error::DynamoError;
pub use meter::{Usage, item_size};
pub use ws_connections::{EventSocket, SocketPhase, WsConnection};

/// The DynamoDB item of a log line that expires `retention` after it was stored (for the
/// cost bench's sizes; the store writes exactly this item).
pub fn log_item_for_bench(
    log: &pushpool_core::logs::Log,
    retention: std::time::Duration,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    logs::log_item(log, retention)
}
/// The DynamoDB item of an event that expires `retention` after it was received (for the
/// cost bench's sizes; the store writes exactly this item).
///
/// # Errors
/// `Malformed` when the event cannot be encoded.
pub fn event_item_for_bench(
    event: &pushpool_core::events::Event,
    retention: std::time::Duration,
) -> Result<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, DynamoError>
{
    events::event_item(event, retention)
}
pub use runs::ITEM_FORMAT;

use crate::error::sdk;
use crate::item::{
    DEPLOYMENT_ID, EST, EXPIRES_AT, GSI_DEPLOYMENT, GSI_ID, GSI_POOL, GSI_TIME, GSI1,
    GSI1_PROJECTED, GSI1PK, GSI1SK, PK, RUNS, SK, STABLE_PROJECTED, WORK_POOL_NAME,
};

/// How long `create_table` waits for a new table to become `ACTIVE`.
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The store over one DynamoDB table. Cheap to clone (the SDK client is shared).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    outbox_retention: chrono::Duration,
    meter: Option<Arc<meter::Meter>>,
    /// Whether the table's items are known to be at [`ITEM_FORMAT`] (the `META`/`FORMAT`
    /// item says so); until then listings use only what format 1 items have.
    upgraded: Arc<AtomicBool>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store over the existing table `table` (see [`DynamoStore::create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            outbox_retention: chrono::Duration::days(7),
            meter: None,
            upgraded: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Counts what this store's DynamoDB calls consume (see [`Usage`]); for benches and
    /// tests. Clones share the counts.
    #[must_use]
    pub fn with_metering(mut self) -> Self {
        self.meter = Some(Arc::new(meter::Meter::default()));
        self
    }

    /// What was consumed since the store was made or last reset (all zero unless
    /// [`with_metering`](Self::with_metering)).
    pub fn usage(&self) -> Usage {
        self.meter.as_ref().map(|m| m.usage()).unwrap_or_default()
    }

    /// Sets the counts of [`usage`](Self::usage) back to zero.
    pub fn reset_usage(&self) {
        if let Some(m) = &self.meter {
            m.reset();
        }
    }

    /// How long outbox items (the port's change feed) live before DynamoDB's TTL removes them
    /// (7 days by default). [`Store::delete_changes`](pushpool_store::Store::delete_changes)
    /// removes consumed ones at once.
    #[must_use]
    pub fn with_outbox_retention(mut self, retention: chrono::Duration) -> Self {
        self.outbox_retention = retention;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table `table` if it does not exist: on-demand billing, key `pk` (S) +
    /// `sk` (S), stream `NEW_AND_OLD_IMAGES`, the run-state index `gsi1`, and TTL on
    /// `expires_at`; then waits until it is `ACTIVE`. Idempotent: an existing table
    /// (`ResourceInUseException`) is fine, and TTL is only enabled where it is not yet.
    ///
    /// Encryption with a customer KMS key (design §8) is the deploy template's business: it
    /// creates the production table with the same layout.
    ///
    /// # Errors
    /// `Transient` on throttling, 5xx and timeouts, or when the table does not become
    /// `ACTIVE` in time; `Backend` otherwise.
    pub async fn create_table(client: &Client, table: &str) -> Result<()> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(DynamoError::from)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(DynamoError::from)
        };
        let index = |name: &str, hash: &str, range: &str, projected: &[&str]| {
            let mut projection = Projection::builder().projection_type(ProjectionType::Include);
            // An index's own keys are always projected (and are not "non-key").
            for attr in projected.iter().filter(|a| **a != hash && **a != range) {
                projection = projection.non_key_attributes(*attr);
            }
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(projection.build())
                .build()
                .map_err(DynamoError::from)
        };
        let indexes = vec![
            index(GSI1, GSI1PK, GSI1SK, GSI1_PROJECTED)?,
            index(GSI_DEPLOYMENT, DEPLOYMENT_ID, EST, STABLE_PROJECTED)?,
            index(GSI_POOL, WORK_POOL_NAME, EST, STABLE_PROJECTED)?,
            index(GSI_TIME, RUNS, EST, STABLE_PROJECTED)?,
            index(GSI_ID, RUNS, PK, STABLE_PROJECTED)?,
        ];
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(DynamoError::from)?;
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .attribute_definitions(attribute(GSI1PK)?)
            .attribute_definitions(attribute(GSI1SK)?)
            .attribute_definitions(attribute(DEPLOYMENT_ID)?)
            .attribute_definitions(attribute(WORK_POOL_NAME)?)
            .attribute_definitions(attribute(EST)?)
            .attribute_definitions(attribute(RUNS)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .set_global_secondary_indexes(Some(indexes))
            .stream_specification(stream)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table, "created the DynamoDB table"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk("CreateTable", e).into()),
        }
        wait_until_active(client, table).await?;
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk("DescribeTimeToLive", e))?;
        let status = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .map_err(DynamoError::from)?;
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| sdk("UpdateTimeToLive", e))?;
        }
        DynamoStore::new(client.clone(), table)
            .upgrade_items()
            .await
    }
}

async fn wait_until_active(client: &Client, table: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk("DescribeTable", e))?;
        let status = described.table().and_then(|t| t.table_status());
        if matches!(status, Some(TableStatus::Active)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DynamoError::NotActive {
                table: table.to_owned(),
            }
            .into());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
