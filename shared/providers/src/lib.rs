//! The `Provider` port: how a rendered job configuration becomes a job on some
//! infrastructure, how its status is read back, and how it is cancelled. The adapters live in
//! their own crates, so that each host links only the SDKs it calls:
//! `pushpool-provider-process` (local child processes, the embedded default),
//! `pushpool-provider-ecs` (AWS ECS tasks through `aws-sdk-ecs`), `pushpool-provider-cloud-run`
//! (Google Cloud Run jobs, Cloud Run Admin API v2, tokens from `gcp_auth`) and
//! `pushpool-provider-aci` (Azure Container Instances container groups through Azure Resource
//! Manager, Entra ID tokens from `azure_identity`); `pushpool-push-providers` registers the
//! push ones by pool type. This crate also holds the pure job-variable checks of the push
//! pool types ([`limits`]), which the API runs without any provider SDK.
//!
//! Every adapter receives a [`Job`]: the job configuration already rendered from the pool's
//! base job template and the run's job variables, with block references resolved, the flow
//! run environment (`PREFECT_API_URL`, `PREFECT__FLOW_RUN_ID`, ...) merged into `env` and the
//! command defaulted. It must:
//! - use [`Job::idempotency_key`] so that submitting the same job twice starts one job
//!   (ECS `clientToken`, a deterministic name elsewhere);
//! - classify its failures ([`ProviderError`]): permanent ones end the run CRASHED with the
//!   provider's own reason, transient ones are retried;
//! - never put a credential in an error message or a log line.
//!
//! This crate must not depend on the store, the API or Lambda crates, nor on any cloud SDK.

mod error;
pub mod limits;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use error::{MAX_MESSAGE_CHARS, MAX_RETRY_AFTER, ProviderError, cap_message};
pub use limits::{Unavailable, limit_checks};

/// Leases shared by every process of a deployment: a lock on a key, held by one holder at a
/// time until it is released or its time-to-live passes. Providers take one around work
/// that must not run twice at once across processes (on AWS, concurrent Lambda
/// invocations), such as registering a revision of one ECS task definition family. This
/// crate only defines it (it has no store); the service implements it over the store's
/// leases (`pushpool_service::StoreLeases`).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes `key` for `holder` for `ttl` if it is free, expired or already `holder`'s:
    /// `true` when `holder` holds it now.
    async fn try_acquire(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>>;
    /// Gives `key` up if `holder` holds it.
    async fn release(
        &self,
        key: &str,
        holder: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// A job ready to submit.
#[derive(Clone, PartialEq)]
pub struct Job {
    /// The flow run.
    pub flow_run_id: Uuid,
    /// The flow run's name (`elegant-caribou`), a default for infrastructure names.
    pub flow_run_name: String,
    /// The pool type (`ecs:push`).
    pub pool_type: String,
    /// The rendered job configuration: `env` is a `{name: value}` object, `command` a string.
    /// May hold credentials (resolved block documents): never log it.
    pub configuration: Map<String, Value>,
    /// Idempotency key of this submission attempt (`pushpool-<run id>-<attempt>`).
    pub idempotency_key: String,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration may hold secrets: only its keys are shown.
        f.debug_struct("Job")
            .field("flow_run_id", &self.flow_run_id)
            .field("pool_type", &self.pool_type)
            .field(
                "configuration_keys",
                &self.configuration.keys().collect::<Vec<_>>(),
            )
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

impl Job {
    /// The job's environment (`configuration.env`), string values only.
    pub fn env(&self) -> Vec<(String, String)> {
        self.configuration
            .get("env")
            .and_then(Value::as_object)
            .map(|env| {
                env.iter()
                    .filter_map(|(k, v)| match v {
                        Value::String(s) => Some((k.clone(), s.clone())),
                        Value::Null => None,
                        other => Some((k.clone(), other.to_string())),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The command as arguments, split like a POSIX shell would (`shlex`).
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming `command` when it is empty or has an
    /// unterminated quote.
    pub fn command_args(&self) -> Result<Vec<String>, ProviderError> {
        let command = match self.configuration.get("command") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => {
                return Ok(a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect());
            }
            _ => return Err(ProviderError::invalid("command", "no command to run")),
        };
        match shlex::split(&command) {
            Some(args) if !args.is_empty() => Ok(args),
            _ => Err(ProviderError::invalid(
                "command",
                format!("cannot split {command:?} into arguments"),
            )),
        }
    }

    /// The work pool's name: the `prefect.io/work-pool-name` label the service adds to
    /// every job (`build_job`).
    pub fn work_pool_name(&self) -> Option<&str> {
        self.label("prefect.io/work-pool-name")
    }

    /// The deployment's id: the `prefect.io/deployment-id` label the service adds to the
    /// job of a deployment's flow run.
    pub fn deployment_id(&self) -> Option<&str> {
        self.label("prefect.io/deployment-id")
    }

    /// The flow's id: `PREFECT__FLOW_ID` of the job's environment (the service sets it).
    pub fn flow_id(&self) -> Option<&str> {
        self.configuration
            .get("env")
            .and_then(|env| env.get("PREFECT__FLOW_ID"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.configuration
            .get("labels")
            .and_then(|labels| labels.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A string field of the configuration, if set and non-empty.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.configuration
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// What a provider says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Accepted, not running yet (provisioning, pulling the image).
    Pending,
    /// Running.
    Running,
    /// The job ended with an exit code. `detail` is the provider's own words (ECS
    /// `stoppedReason`, the container's `reason`), empty when it has none.
    Exited {
        /// Exit code of the main (essential) container or process.
        exit_code: i64,
        /// Provider detail.
        detail: String,
    },
    /// The job ended without an exit code (failed to start, image pull failure, killed by
    /// the platform). Never success.
    Failed {
        /// The provider's reason.
        reason: String,
    },
    /// The provider has no such job (it was never started, or expired).
    Missing {
        /// The provider's words.
        reason: String,
    },
}

/// Job variables a provider does not use, given the others, and why (prefect-aws warns the
/// same way: "The following job variable references in the task definition template will be
/// ignored: ..."). The service puts it in the message of the run's PENDING (submission)
/// state and in its log, so that no variable is dropped in silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredVariables {
    /// The variables' names, in the order the provider lists them.
    pub names: Vec<String>,
    /// Why: a sentence fragment (`"task_definition_arn names the task definition to run"`).
    pub reason: String,
}

impl std::fmt::Display for IgnoredVariables {
    /// `Job variables image and family are ignored: <reason>.`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = match self.names.as_slice() {
            [] => return Ok(()),
            [one] => return write!(f, "Job variable {one} is ignored: {}.", self.reason),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        write!(f, "Job variables {names} are ignored: {}.", self.reason)
    }
}

/// What [`Provider::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The job's resources (Cloud Run job, ACI container group) were deleted, or were
    /// already gone.
    Deleted,
    /// The configuration asks to keep them (`keep_job`, `keep_container_group`).
    Kept,
    /// The provider leaves nothing behind (ECS tasks, processes).
    Nothing,
}

/// A provider adapter.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Starts the job; returns its infrastructure pid (ECS task ARN, `host:pid`). Submitting
    /// the same [`Job::idempotency_key`] again returns the same pid and starts nothing.
    async fn submit(&self, job: &Job) -> Result<String, ProviderError>;
    /// Reads the job's status.
    async fn status(&self, job: &Job, infrastructure_pid: &str)
    -> Result<JobStatus, ProviderError>;
    /// Stops the job. Stopping a job that has already ended is not an error.
    async fn cancel(&self, job: &Job, infrastructure_pid: &str) -> Result<(), ProviderError>;

    /// Deletes what the job left behind once it has ended, unless the configuration keeps it
    /// (as prefect-gcp's Cloud Run v2 worker deletes the job unless `keep_job`, and
    /// prefect-azure's ACI worker the container group unless `keep_container_group`). The
    /// service calls it when the run is final and [`Provider::status`] says the job ended (or
    /// a grace period passed). Resources already gone are [`Released::Deleted`], not an error.
    /// The default releases nothing.
    async fn release(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<Released, ProviderError> {
        let _ = (job, infrastructure_pid);
        Ok(Released::Nothing)
    }

    /// Whether [`Provider::release`] may have something to delete (Cloud Run jobs, ACI
    /// container groups). The service only waits for a final run's job to end, and then calls
    /// `release`, for providers that say so. The default is `false`.
    fn leaves_resources(&self) -> bool {
        false
    }

    /// Checks job variables against the provider's documented limits (name lengths and
    /// characters, cpu and memory values) before any job exists: the API calls it when a
    /// deployment or a flow run is created, with the pool's defaults merged under the given
    /// variables, and answers 422 naming the variable. No I/O. The default accepts all.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] whose `field` is the variable's name.
    fn check_job_variables(&self, variables: &Map<String, Value>) -> Result<(), ProviderError> {
        let _ = variables;
        Ok(())
    }

    /// The job variables (the pool's defaults merged under the deployment's and the run's)
    /// that this provider will not use because of the others (an ECS `image` next to a
    /// given `task_definition_arn`). The service reports them in the run's submission message
    /// and its log. No I/O. The default reports none.
    fn ignored_job_variables(&self, variables: &Map<String, Value>) -> Vec<IgnoredVariables> {
        let _ = variables;
        Vec::new()
    }
    /// Why this pool type cannot be used in this build, when its adapter was left out
    /// ([`Unavailable`]): the API refuses to create a work pool of the type with it (422).
    /// The default (every real adapter) is `None`.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Providers by pool type.
#[derive(Clone, Default)]
pub struct Providers {
    by_type: HashMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_type.keys()).finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `provider` for `pool_type`.
    pub fn with(mut self, pool_type: &str, provider: Arc<dyn Provider>) -> Self {
        self.by_type.insert(pool_type.to_owned(), provider);
        self
    }

    /// Adds every provider of `other`, replacing those of the same pool type.
    pub fn with_all(mut self, other: Providers) -> Self {
        self.by_type.extend(other.by_type);
        self
    }

    /// Whether any registered provider leaves resources to release
    /// ([`Provider::leaves_resources`]).
    pub fn any_leaves_resources(&self) -> bool {
        self.by_type.values().any(|p| p.leaves_resources())
    }

    /// The registered pool types that this build can submit to, sorted (those
    /// [`Self::unavailable`] names are left out).
    pub fn usable_pool_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self
            .by_type
            .iter()
            .filter(|(_, p)| p.unavailable().is_none())
            .map(|(t, _)| t.as_str())
            .collect();
        types.sort_unstable();
        types
    }

    /// Why `pool_type` cannot be used in this build ([`Provider::unavailable`]): `None` for
    /// the pool types with an adapter and those without a provider at all.
    pub fn unavailable(&self, pool_type: &str) -> Option<String> {
        self.by_type.get(pool_type).and_then(|p| p.unavailable())
    }

    /// The provider of `pool_type`.
    pub fn get(&self, pool_type: &str) -> Option<Arc<dyn Provider>> {
        self.by_type.get(pool_type).cloned()
    }
}
