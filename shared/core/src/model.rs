//! The Prefect-shaped resources pushpool stores, serialised exactly as the Prefect 3.9.1
//! server returns them (field names and `null`s from the recorded exchanges in the team's
//! reference material, `reference/prefect/exchanges/`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::state::{State, StateType};

/// A JSON object.
pub type Object = Map<String, Value>;

/// The pool type of the embedded default: jobs run as local child processes.
pub const PROCESS_POOL_TYPE: &str = "process";

/// `WorkPoolStatus` (`READY`, `NOT_READY`, `PAUSED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkPoolStatus {
    /// Ready to run work: push pools are ready as soon as they exist.
    Ready,
    /// No worker (hybrid pools).
    NotReady,
    /// Paused.
    Paused,
}

/// `storage_configuration` of a work pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfiguration {
    /// Bundle upload step.
    pub bundle_upload_step: Option<Value>,
    /// Bundle execution step.
    pub bundle_execution_step: Option<Value>,
    /// Default result storage block.
    pub default_result_storage_block_id: Option<Uuid>,
}

/// A work pool (`GET /work_pools/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkPool {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Pool type: `ecs:push`, `process`, ...
    pub r#type: String,
    /// `{job_configuration, variables}`; `{}` when empty.
    pub base_job_template: Value,
    /// Paused pools submit nothing.
    pub is_paused: bool,
    /// Concurrency limit (not enforced yet).
    pub concurrency_limit: Option<i64>,
    /// Status.
    pub status: WorkPoolStatus,
    /// The pool's default work queue.
    pub default_queue_id: Uuid,
    /// Storage configuration.
    pub storage_configuration: StorageConfiguration,
    /// Active slots.
    pub active_slots: Option<i64>,
}

impl WorkPool {
    /// Push pools (`*:push`) and the local process pool are submitted by pushpool itself.
    pub fn is_submitted_by_pushpool(&self) -> bool {
        self.r#type.ends_with(":push") || self.r#type == PROCESS_POOL_TYPE
    }
}

/// A work queue of a work pool, as stored (Prefect's `WorkQueue`; the response adds
/// `filter`, `status`, `work_pool_name` and `active_slots`, see the API's queue routes).
///
/// Each pool has a `default` queue made with it (its id is the pool's `default_queue_id`);
/// names are unique within a pool; priorities are unique positive integers within a pool,
/// 1 the highest (Prefect's `models.workers.bulk_update_work_queue_priorities`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkQueue {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Name, unique within the pool.
    pub name: String,
    /// Description (`""` by default, as Prefect's `WorkQueueCreate`).
    pub description: Option<String>,
    /// A paused queue's runs wait (they stay SCHEDULED and are not submitted).
    pub is_paused: bool,
    /// Concurrency limit: stored and returned, not enforced yet.
    pub concurrency_limit: Option<i64>,
    /// Priority within the pool: 1 is the highest.
    pub priority: i64,
    /// The pool.
    pub work_pool_id: Uuid,
    /// When a worker last polled it (push pools have no workers: `null` unless a client
    /// sets it).
    pub last_polled: Option<DateTime<Utc>>,
}

/// A block type (`GET /block_types/slug/{slug}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockType {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Display name (`AWS Credentials`).
    pub name: String,
    /// Unique slug (`aws-credentials`).
    pub slug: String,
    /// Logo URL.
    pub logo_url: Option<String>,
    /// Documentation URL.
    pub documentation_url: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Code example.
    pub code_example: Option<String>,
    /// Protected (system) types cannot be changed.
    pub is_protected: bool,
}

/// A block schema (`GET /block_schemas/checksum/{checksum}`), with its block type embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSchema {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// `sha256:<hex>` of the fields (see [`crate::blocks::schema_checksum`]).
    pub checksum: String,
    /// The pydantic JSON schema plus `block_type_slug`, `secret_fields`, `block_schema_references`.
    pub fields: Value,
    /// Owning block type.
    pub block_type_id: Uuid,
    /// The block type, embedded on reads.
    pub block_type: Option<BlockType>,
    /// Capabilities.
    pub capabilities: Vec<String>,
    /// Library version (`0.7.12`, `non-versioned`).
    pub version: String,
}

impl BlockSchema {
    /// The schema's `secret_fields` (dotted paths, `*` wildcards), empty when absent.
    pub fn secret_fields(&self) -> Vec<String> {
        self.fields
            .get("secret_fields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A block document as stored: `data` holds the plain values, secrets included.
/// [`crate::blocks::obfuscate`] hides them for responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDocument {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Name, unique within its block type (anonymous documents get a generated one).
    pub name: Option<String>,
    /// The values, secrets in plain text.
    pub data: Value,
    /// Schema.
    pub block_schema_id: Uuid,
    /// Block type.
    pub block_type_id: Uuid,
    /// Anonymous documents are not listed by default.
    pub is_anonymous: bool,
}

/// A flow (`POST /flows/` upserts by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Unique name.
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Object,
}

/// A variable (Prefect's `Variable`): a named JSON value flows read with `Variable.get()` and
/// `prefect.yaml` with `{{ prefect.variables.<name> }}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Unique name: lowercase letters, digits, dashes and underscores.
    pub name: String,
    /// The value: any JSON (a string, number, boolean, null, object or list) whose JSON text
    /// is at most 5,000 characters (Prefect's `MAX_VARIABLE_VALUE_LENGTH`).
    pub value: Value,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An artifact a flow or task run published (Prefect's `Artifact`: `create_markdown_artifact`,
/// `create_table_artifact`, `create_link_artifact`, results). Artifacts sharing a `key` form
/// a collection whose latest is the most recently created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// The collection key (lowercase letters, digits and dashes), if any.
    pub key: Option<String>,
    /// What `data` holds (`markdown`, `table`, `link`, `result`, ...).
    pub r#type: Option<String>,
    /// A markdown description.
    pub description: Option<String>,
    /// The content, shaped by `type`.
    pub data: Option<Value>,
    /// String metadata (values over 500 characters are cut to 500 and `...`, as Prefect does).
    pub metadata_: Option<Map<String, Value>>,
    /// The flow run that created it.
    pub flow_run_id: Option<Uuid>,
    /// The task run that created it.
    pub task_run_id: Option<Uuid>,
}

/// A deployment, with every field of Prefect's `DeploymentResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Name, unique per flow.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Flow.
    pub flow_id: Uuid,
    /// Paused deployments create no scheduled runs.
    pub paused: bool,
    /// Schedules, with their ids (Prefect's `DeploymentSchedule`s).
    pub schedules: Vec<crate::schedule::DeploymentSchedule>,
    /// Concurrency limit.
    pub concurrency_limit: Option<i64>,
    /// Global concurrency limit.
    pub global_concurrency_limit: Option<Value>,
    /// Concurrency options.
    pub concurrency_options: Option<Value>,
    /// Job variables, layered over the pool's defaults.
    pub job_variables: Object,
    /// Default parameters.
    pub parameters: Object,
    /// Tags.
    pub tags: Vec<String>,
    /// Labels (`prefect.flow.id` added).
    pub labels: Object,
    /// Work queue name (`default`).
    pub work_queue_name: Option<String>,
    /// Work queue id (the pool's default queue).
    pub work_queue_id: Option<Uuid>,
    /// Last polled.
    pub last_polled: Option<DateTime<Utc>>,
    /// Parameter schema.
    pub parameter_openapi_schema: Option<Value>,
    /// Path.
    pub path: Option<String>,
    /// Pull steps.
    pub pull_steps: Option<Vec<Value>>,
    /// Entrypoint (`flows/my_flow.py:my_flow`).
    pub entrypoint: Option<String>,
    /// Storage document.
    pub storage_document_id: Option<Uuid>,
    /// Infrastructure document.
    pub infrastructure_document_id: Option<Uuid>,
    /// Created by.
    pub created_by: Option<Value>,
    /// Updated by.
    pub updated_by: Option<Value>,
    /// Work pool name.
    pub work_pool_name: Option<String>,
    /// Status.
    pub status: String,
    /// Enforce the parameter schema.
    pub enforce_parameter_schema: bool,
}

/// `empirical_policy` of a flow run (retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmpiricalPolicy {
    /// Deprecated alias of `retries`.
    pub max_retries: i64,
    /// Deprecated alias of `retry_delay`.
    pub retry_delay_seconds: f64,
    /// Retries allowed.
    pub retries: Option<i64>,
    /// Seconds between retries.
    pub retry_delay: Option<f64>,
    /// Pause keys.
    pub pause_keys: Vec<String>,
    /// Resuming.
    pub resuming: bool,
    /// Retry type.
    pub retry_type: Option<String>,
}

impl Default for EmpiricalPolicy {
    fn default() -> Self {
        Self {
            max_retries: 0,
            retry_delay_seconds: 0.0,
            retries: None,
            retry_delay: None,
            pause_keys: Vec::new(),
            resuming: false,
            retry_type: None,
        }
    }
}

/// A flow run, with every field of Prefect's `FlowRunResponse`, plus `version`, the
/// optimistic-concurrency counter every conditional write checks (not sent to clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRun {
    /// Id (UUIDv4).
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Generated name (`elegant-caribou`).
    pub name: String,
    /// Flow.
    pub flow_id: Uuid,
    /// Current state id.
    pub state_id: Option<Uuid>,
    /// Deployment.
    pub deployment_id: Option<Uuid>,
    /// Deployment version.
    pub deployment_version: Option<String>,
    /// Work queue id.
    pub work_queue_id: Option<Uuid>,
    /// Work queue name.
    pub work_queue_name: Option<String>,
    /// Flow version.
    pub flow_version: Option<String>,
    /// Parameters.
    pub parameters: Object,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Context.
    pub context: Object,
    /// Retry policy.
    pub empirical_policy: EmpiricalPolicy,
    /// Tags.
    pub tags: Vec<String>,
    /// Labels.
    pub labels: Object,
    /// Parent task run.
    pub parent_task_run_id: Option<Uuid>,
    /// Current state type.
    pub state_type: Option<StateType>,
    /// Current state name.
    pub state_name: Option<String>,
    /// Times the run entered RUNNING.
    pub run_count: i64,
    /// When it was expected to start.
    pub expected_start_time: Option<DateTime<Utc>>,
    /// Next scheduled start (SCHEDULED only).
    pub next_scheduled_start_time: Option<DateTime<Utc>>,
    /// First RUNNING.
    pub start_time: Option<DateTime<Utc>>,
    /// Terminal state time.
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds spent RUNNING.
    pub total_run_time: f64,
    /// Estimated run time (seconds).
    pub estimated_run_time: f64,
    /// Seconds between expected and actual start.
    pub estimated_start_time_delta: f64,
    /// Created by a schedule.
    pub auto_scheduled: bool,
    /// Infrastructure document.
    pub infrastructure_document_id: Option<Uuid>,
    /// Provider id of the job: ECS task ARN, process id, execution name.
    pub infrastructure_pid: Option<String>,
    /// Created by.
    pub created_by: Option<Value>,
    /// Work pool id.
    pub work_pool_id: Option<Uuid>,
    /// Work pool name.
    pub work_pool_name: Option<String>,
    /// Current state.
    pub state: Option<State>,
    /// Job variables of this run (highest layer).
    pub job_variables: Object,
    /// Optimistic-concurrency version; incremented by every write.
    #[serde(skip_serializing, default)]
    pub version: u64,
    /// Submission attempt; part of the provider idempotency key.
    #[serde(skip_serializing, default)]
    pub submission_attempt: u32,
    /// The concurrency slots (work pool, work queue, deployment) this run takes while it is
    /// active, and the ones it holds now (not sent to clients; stores keep it beside the
    /// run, see `pushpool_service::concurrency_slots`).
    #[serde(skip_serializing, default)]
    pub concurrency_slots: ConcurrencySlots,
}

/// The concurrency slots of one flow run, kept with the run so that giving them back is
/// exact: a run releases the counters it holds, whatever the limits, queues or deployment
/// are by then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencySlots {
    /// The counters the run takes a slot of while PENDING, RUNNING or CANCELLING (named
    /// when pushpool first claimed it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<String>,
    /// The counters it holds a slot of now (a subset of `counters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
    /// When the deployment slot's lease expires (UTC), while it holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<DateTime<Utc>>,
    /// The deployment slot's lease duration, in seconds (0: no deployment slot).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease_seconds: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ConcurrencySlots {
    /// Whether there is nothing to keep (never claimed with slots).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl FlowRun {
    /// A run of `flow_id` named `name`, created at `now`, with every other field at Prefect's
    /// default (no state yet: apply one with [`crate::orchestration::apply_state`]).
    pub fn new(id: Uuid, flow_id: Uuid, name: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            created: now,
            updated: now,
            name,
            flow_id,
            state_id: None,
            deployment_id: None,
            deployment_version: None,
            work_queue_id: None,
            work_queue_name: None,
            flow_version: None,
            parameters: Object::new(),
            idempotency_key: None,
            context: Object::new(),
            empirical_policy: EmpiricalPolicy::default(),
            tags: Vec::new(),
            labels: Object::new(),
            parent_task_run_id: None,
            state_type: None,
            state_name: None,
            run_count: 0,
            expected_start_time: None,
            next_scheduled_start_time: None,
            start_time: None,
            end_time: None,
            total_run_time: 0.0,
            estimated_run_time: 0.0,
            estimated_start_time_delta: 0.0,
            auto_scheduled: false,
            infrastructure_document_id: None,
            infrastructure_pid: None,
            created_by: None,
            work_pool_id: None,
            work_pool_name: None,
            state: None,
            job_variables: Object::new(),
            version: 0,
            submission_attempt: 0,
            concurrency_slots: ConcurrencySlots::default(),
        }
    }

    /// When a SCHEDULED run is due: its state's `scheduled_time`, else `expected_start_time`.
    pub fn scheduled_time(&self) -> Option<DateTime<Utc>> {
        self.state
            .as_ref()
            .and_then(|s| s.state_details.scheduled_time)
            .or(self.expected_start_time)
    }

    /// The idempotency key of the current submission attempt: `pushpool-<run id>-<attempt>`,
    /// 50 ASCII characters, valid as an ECS `clientToken` (at most 64 characters, ASCII 33–126).
    pub fn submission_key(&self) -> String {
        format!("pushpool-{}-{}", self.id, self.submission_attempt)
    }
}

/// An API key as stored: only the SHA-256 of the secret is kept (hex, 64 characters).
/// The key itself is shown once, when it is created (`pushpool api-key create`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Id.
    pub id: Uuid,
    /// A name to recognise it by (`ci`, `laptop`).
    pub name: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Revoked keys are refused.
    pub revoked: bool,
}
