//! The `ecs:push` provider: a flow run becomes an AWS ECS task (Fargate by default), through
//! `aws-sdk-ecs` (and `aws-sdk-ec2` to find the default VPC). It does what prefect-aws 0.7.12's
//! `ECSWorker` does for one run, without a worker process.
//!
//! # Submit
//! The job configuration is Prefect's rendered ECS job configuration (the `job_configuration`
//! of the `ecs:push` base job template). Everything below is checked before the first AWS
//! call, with an [`ProviderError::InvalidConfiguration`] naming the field:
//! 1. **Task definition.** `task_run_request.taskDefinition` (the `task_definition_arn`
//!    variable) is used as is. Otherwise the `task_definition` object is turned into a
//!    `RegisterTaskDefinition` request like prefect-aws's `_prepare_task_definition`: the
//!    flow's container is the one named `container_name`, else the one named `prefect`, else
//!    the first one (an unnamed container gets the name); its `image` is required (`image`);
//!    `family` defaults to prefect-aws's `prefect_<work pool name>_<deployment id>` (the flow
//!    id without a deployment), one family per work pool and deployment, and a given or
//!    generated family is slugified to ECS's `[A-Za-z0-9_-]{1,255}` rather than refused
//!    (`task_definition::slugify_family`). For the `FARGATE` launch type (the template's default,
//!    also `FARGATE_SPOT`): `networkMode` `awsvpc`, `requiresCompatibilities` `["FARGATE"]`,
//!    task `cpu`/`memory` defaulting to `1024`/`2048` like prefect-aws, and checked against
//!    Fargate's task size table ([`FARGATE_TASK_SIZES`]). For `EC2`/`EXTERNAL` the flow's
//!    container gets `cpu`/`memory` from the task's (or those defaults) when it has none, as
//!    prefect-aws does. `configure_cloudwatch_logs`, `cloudwatch_logs_options`,
//!    `cloudwatch_logs_prefix`, `prefect_api_key_secret_arn` and
//!    `prefect_api_auth_string_secret_arn` are honoured the prefect-aws way (the secret ARNs
//!    become container `secrets` and the variables leave the environment). Task definition
//!    fields pushpool does not model are refused by name rather than dropped.
//! 2. **Reuse.** pushpool keeps no per-deployment cache (a Lambda forgets it), so it always
//!    does what prefect-aws does with `match_latest_revision_in_family`: `DescribeTaskDefinition`
//!    on the family, and if the latest revision is `ACTIVE` and equal to the wanted one (after
//!    the normalisation of prefect-aws's `_task_definitions_equal`: `essential` defaults to
//!    true, `networkMode` to `bridge`, environment and secrets compared as sets, container
//!    `cpu` 0 equals unset, and no extra volumes, mounts, ports or dependencies) its ARN is
//!    reused; else a new revision is registered. A family that does not exist yet, or a role
//!    without `ecs:DescribeTaskDefinition`, just registers. The look-up and the registration
//!    of one family run under a per-family lock of the provider, so concurrent submissions of
//!    one deployment in this process register one revision and reuse it; across processes
//!    (concurrent Lambda invocations) they also run under a lease of the family in the store
//!    ([`EcsProvider::with_leases`]: `ecs-task-definition-family/<region>/<family>`, 30 s,
//!    waited for up to 20 s, then the work goes on without it). Without leases, or when the
//!    wait runs out, ECS may answer "Too many concurrent attempts to create a new revision of
//!    the specified family" (a 400 `ClientException`), which is transient.
//! 3. **Network.** For `awsvpc` tasks: `network_configuration` when given (either Prefect's
//!    inner form `{"subnets": [...], "securityGroups": [...], "assignPublicIp": ...}`, as
//!    prefect-aws wraps it, or the API form `{"awsvpcConfiguration": {...}}`), else
//!    `task_run_request.networkConfiguration`, else the subnets of `vpc_id` or of the default
//!    VPC (EC2 `DescribeVpcs` / `DescribeSubnets`, sorted so that a retry sends the same
//!    request), `assignPublicIp` `ENABLED`, and that VPC's `default` security group
//!    (`DescribeSecurityGroups`): ECS uses it anyway when none is given, and naming it keeps
//!    the request explicit (moto 5.2.5 also fails without one).
//! 4. **`RunTask`** with `clientToken` = the job's idempotency key (hashed into the documented
//!    64 printable-ASCII characters if it does not fit), `startedBy` `pushpool`, the cluster
//!    (`cluster`, else `task_run_request.cluster`, else ECS's default cluster), `launchType`
//!    or `capacityProviderStrategy` (never both; `FARGATE_SPOT` becomes the `FARGATE_SPOT`
//!    capacity provider, as in prefect-aws), and `overrides.containerOverrides[0]` =
//!    `{name, command, environment}` with the job's command and environment (sorted by name;
//!    the template's own `containerOverrides` are replaced by this one),
//!    plus the task-level `cpu`/`memory`/`taskRoleArn`/`executionRoleArn` overrides of
//!    `task_run_request.overrides` when set. Tags come from `task_run_request.tags` and the
//!    job's `labels` (labels win); tags the API would refuse (`aws:` prefix, characters outside
//!    the model's `TagKey`/`TagValue` pattern, too long, past the 50th) are skipped with a
//!    warning.
//! 5. **Failures.** A `RunTask` answered HTTP 200 with `failures[]` is permanent
//!    (`ECS RunTask failed: <reason> (<arn>): <detail>`), except the capacity reasons AWS
//!    documents as momentary (`RESOURCE:*`, "Capacity is unavailable at this time"), which are
//!    transient. Service errors keep the service's own code and message, followed by what
//!    to do (`ECS RunTask failed: ClusterNotFoundException: Cluster not found. The cluster
//!    named by the cluster job variable ...`), never the SDK's `Debug` output, at most
//!    [`pushpool_providers::MAX_MESSAGE_CHARS`] characters; they are permanent, except throttling,
//!    `ServerException`, HTTP 5xx, timeouts and failures to reach the endpoint, which are
//!    transient. Missing or rejected credentials are permanent (see `errors`). A `ConflictException` (the same `clientToken` with different parameters)
//!    names the task that token already started: that task is returned.
//!
//! The infrastructure pid is the task ARN.
//!
//! # Before submission
//! `check_job_variables` (at deployment and flow run creation) refuses, naming the variable,
//! what `submit` would refuse: a Fargate `cpu`/`memory` pair outside AWS's table
//! ([`FARGATE_TASK_SIZES`]), a `launch_type` outside the template's enum, a `family` with
//! nothing to slugify, an invalid `container_name`. `ignored_job_variables` names what a
//! given `task_definition_arn` makes useless (`image`, `family`, `execution_role_arn`, the
//! CloudWatch logs variables), `vpc_id` next to `network_configuration`, and
//! `auto_deregister_task_definition`; the service puts them in the run's submission message.
//!
//! # Status
//! `DescribeTasks(cluster, [arn])` (the cluster of the configuration, else the one in the
//! task ARN). `lastStatus` (ECS "Task lifecycle"): `PROVISIONING`/`PENDING`/`ACTIVATING` →
//! [`JobStatus::Pending`]; `RUNNING`/`DEACTIVATING`/`STOPPING`/`DEPROVISIONING` →
//! [`JobStatus::Running`]; `STOPPED` → [`JobStatus::Failed`] with `stoppedReason` when
//! `stopCode` is `TaskFailedToStart` (even if `containers` is empty), else the flow's
//! container's `exitCode`: present → [`JobStatus::Exited`] with `stoppedReason` and the
//! container's `reason` as detail, absent → [`JobStatus::Failed`]. The flow's container is the
//! configured one, else the only one, else the first essential container of the task
//! definition. A `MISSING` failure, no task and no failure (moto), or a
//! `ClusterNotFoundException` (a task cannot outlive its cluster) → [`JobStatus::Missing`].
//! The detail of an exit is `<stoppedReason>; container <name>: <reason>` (either part alone
//! when the other is empty).
//!
//! # Cancel
//! `StopTask(cluster, arn, "Cancelled by pushpool (flow run <id>)")`. A task that has already
//! stopped is stopped again harmlessly by ECS; a task or cluster that no longer exists is
//! treated as stopped.
//!
//! # Credentials
//! Without `aws_credentials` (or with an empty block) the process's own `SdkConfig` is used
//! (its default chain, region and `AWS_ENDPOINT_URL`). A resolved `aws-credentials` block
//! (prefect-aws's `AwsCredentials` data) replaces what it sets: static keys, `region_name`,
//! `aws_client_parameters.endpoint_url`. Clients are cached per distinct block under a
//! SHA-256 digest of it; no secret is ever formatted into an error, a `Debug` output or a
//! tracing field. Named profiles and `assume_role_arn` are refused by name (a function has no
//! profiles; role assumption is not implemented yet).

mod config;
mod credentials;
mod errors;
pub mod events;
mod network;
mod status;
mod task_definition;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::types::{
    ContainerOverride, KeyValuePair, LaunchType, NetworkMode, TaskDefinitionStatus, TaskOverride,
};
use tracing::{info, warn};

use config::{EcsJobConfig, NetworkChoice, Target, TaskDefinitionSource};
use credentials::{Clients, CredentialsKey};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError};

pub use task_definition::{FARGATE_TASK_SIZES, FargateMemory, FargateTaskSize};

/// `startedBy` of every task pushpool runs (`ListTasks --started-by pushpool` finds them).
pub const STARTED_BY: &str = "pushpool";

/// How many distinct credential blocks keep cached clients before the cache starts over.
const MAX_CACHED_CLIENTS: usize = 64;

/// The `ecs:push` provider. Cheap to share behind an `Arc`; see the module docs for the
/// mapping from a job configuration to ECS calls.
pub struct EcsProvider {
    base: Clients,
    base_config: aws_config::SdkConfig,
    cache: Mutex<HashMap<CredentialsKey, Clients>>,
    /// One lock per task definition family (and region): at most one
    /// describe-then-register of a family at a time in this process, so that concurrent
    /// submissions of one deployment reuse the revision the first one registers instead of
    /// racing ECS ("Too many concurrent attempts to create a new revision of the specified
    /// family"). Across processes (several Lambda invocations) the race is still possible;
    /// that error is transient and retried.
    family_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The leases that extend the family lock across processes, if any.
    leases: Option<Arc<dyn pushpool_providers::Leases>>,
}

/// How long a family lease is held at most (a crashed holder blocks the family this long).
const FAMILY_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a submission waits for another process's family lease before going on without.
const FAMILY_LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// How many family locks are kept before unused ones are dropped.
const MAX_FAMILY_LOCKS: usize = 256;

impl std::fmt::Debug for EcsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("EcsProvider")
            .field("region", &self.base.region)
            .field("cached_credential_sets", &cached)
            .finish_non_exhaustive()
    }
}

impl EcsProvider {
    /// A provider whose default clients come from `base`, the process's one `SdkConfig`
    /// (loaded with `aws_config::defaults(BehaviorVersion::latest())`, so `AWS_ENDPOINT_URL`,
    /// the region and the default credential chain apply).
    pub fn new(base: aws_config::SdkConfig) -> Self {
        Self {
            base: Clients::from_base(&base),
            base_config: base,
            cache: Mutex::new(HashMap::new()),
            family_locks: Mutex::new(HashMap::new()),
            leases: None,
        }
    }

    /// Holds a lease of the family (in `leases`, shared by every process over the same
    /// store) while it looks up and registers a task definition revision, so that concurrent
    /// submissions in different processes (Lambda invocations) register one revision.
    #[must_use]
    pub fn with_leases(mut self, leases: Arc<dyn pushpool_providers::Leases>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Takes the lease of `family` (waiting up to [`FAMILY_LEASE_WAIT`]); returns its key
    /// and holder when taken. A lease store that fails or a wait that runs out is logged and
    /// the registration goes on without it (ECS refuses concurrent registrations with a
    /// transient error, which is retried).
    async fn family_lease(&self, region: Option<&str>, family: &str) -> Option<(String, String)> {
        let leases = self.leases.as_ref()?;
        let key = format!(
            "ecs-task-definition-family/{}/{family}",
            region.unwrap_or_default()
        );
        let holder = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + FAMILY_LEASE_WAIT;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            match leases.try_acquire(&key, &holder, FAMILY_LEASE_TTL).await {
                Ok(true) => return Some((key, holder)),
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
                Ok(false) => {
                    warn!(
                        provider = "ecs",
                        family,
                        "another process held the task definition family's lease for too long; registering without it"
                    );
                    return None;
                }
                Err(e) => {
                    warn!(provider = "ecs", family, error = %e, "the task definition family's lease could not be taken; registering without it");
                    return None;
                }
            }
        }
    }

    /// The lock of `family` in `region`.
    fn family_lock(&self, region: Option<&str>, family: &str) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}/{family}", region.unwrap_or_default());
        let mut locks = match self.family_locks.lock() {
            Ok(locks) => locks,
            Err(poisoned) => poisoned.into_inner(),
        };
        if locks.len() >= MAX_FAMILY_LOCKS {
            // Drop the locks nobody holds or waits for.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Arc::clone(locks.entry(key).or_default())
    }

    /// The clients for a job: the base ones, or ones built from its credentials block.
    fn clients(&self, creds: Option<&credentials::AwsCredentialsBlock>) -> Clients {
        let Some(block) = creds.filter(|b| !b.is_empty()) else {
            return self.base.clone();
        };
        let key = block.key();
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(clients) = cache.get(&key) {
            return clients.clone();
        }
        if cache.len() >= MAX_CACHED_CLIENTS {
            cache.clear();
        }
        let clients = Clients::from_block(&self.base_config, block);
        cache.insert(key, clients.clone());
        clients
    }

    async fn task_definition_arn(
        &self,
        clients: &Clients,
        job: &Job,
        source: &TaskDefinitionSource,
    ) -> Result<String, ProviderError> {
        let desired = match source {
            TaskDefinitionSource::Arn(arn) => return Ok(arn.clone()),
            TaskDefinitionSource::Build(desired) => desired,
        };
        let lock = self.family_lock(clients.region.as_deref(), &desired.family);
        let _registering = lock.lock().await;
        let lease = self
            .family_lease(clients.region.as_deref(), &desired.family)
            .await;
        let result = self.reuse_or_register(clients, job, desired).await;
        if let (Some((key, holder)), Some(leases)) = (lease, &self.leases) {
            if let Err(e) = leases.release(&key, &holder).await {
                warn!(provider = "ecs", family = %desired.family, error = %e, "giving up the task definition family's lease failed; it expires by itself");
            }
        }
        result
    }

    /// The latest revision of the family if it is the wanted one, else a new revision (the
    /// caller holds the family's lock and lease).
    async fn reuse_or_register(
        &self,
        clients: &Clients,
        job: &Job,
        desired: &task_definition::DesiredTaskDefinition,
    ) -> Result<String, ProviderError> {
        match clients
            .ecs
            .describe_task_definition()
            .task_definition(&desired.family)
            .send()
            .await
        {
            Ok(out) => {
                let reusable = out
                    .task_definition()
                    .filter(|existing| {
                        existing.status() == Some(&TaskDefinitionStatus::Active)
                            && desired.matches(existing)
                    })
                    .and_then(|existing| existing.task_definition_arn());
                if let Some(arn) = reusable {
                    info!(flow_run_id = %job.flow_run_id, provider = "ecs", task_definition = arn,
                        "reusing the latest revision of the task definition family");
                    return Ok(arn.to_owned());
                }
            }
            Err(err) => {
                // No such family yet (ClientException), or no permission to look: register.
                // Anything else (no credentials, throttling) fails the submission here.
                let register_anyway =
                    err.as_service_error()
                        .and_then(|e| e.code())
                        .is_some_and(|code| {
                            code == "ClientException" || errors::is_access_denied(code)
                        });
                let err = errors::classify("ECS", "DescribeTaskDefinition", err);
                if !register_anyway {
                    return Err(err);
                }
                info!(flow_run_id = %job.flow_run_id, provider = "ecs", family = %desired.family,
                    reason = %err, "no reusable task definition revision");
            }
        }
        let out = desired
            .register_request(&clients.ecs)
            .send()
            .await
            .map_err(|e| errors::classify("ECS", "RegisterTaskDefinition", e))?;
        let arn = out
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .ok_or_else(|| {
                ProviderError::transient("ECS RegisterTaskDefinition answered without an ARN")
            })?;
        info!(flow_run_id = %job.flow_run_id, provider = "ecs", task_definition = arn,
            "registered a task definition revision");
        Ok(arn.to_owned())
    }

    /// A registered task definition.
    async fn describe_definition(
        &self,
        clients: &Clients,
        arn: &str,
    ) -> Result<aws_sdk_ecs::types::TaskDefinition, ProviderError> {
        clients
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| errors::classify("ECS", "DescribeTaskDefinition", e))?
            .task_definition
            .ok_or_else(|| {
                ProviderError::transient("ECS DescribeTaskDefinition answered without a definition")
            })
    }

    async fn describe_task(
        &self,
        clients: &Clients,
        target: &Target,
        arn: &str,
    ) -> Result<Result<aws_sdk_ecs::types::Task, String>, ProviderError> {
        let out = match clients
            .ecs
            .describe_tasks()
            .set_cluster(target.cluster_for(arn))
            .tasks(arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                // A task cannot outlive its cluster.
                if let Some(DescribeTasksError::ClusterNotFoundException(e)) =
                    err.as_service_error()
                {
                    return Ok(Err(format!(
                        "ECS DescribeTasks failed: ClusterNotFoundException: {}",
                        e.message().unwrap_or("Cluster not found.")
                    )));
                }
                return Err(errors::classify("ECS", "DescribeTasks", err));
            }
        };
        if let Some(task) = out.tasks().iter().find(|t| t.task_arn() == Some(arn)) {
            return Ok(Ok(task.clone()));
        }
        if let Some(task) = out.tasks().first() {
            // Asked by id or short ARN: ECS answers with the full one.
            return Ok(Ok(task.clone()));
        }
        if let Some(failure) = out.failures().first() {
            let reason = failure.reason().unwrap_or("no reason given");
            if reason == "MISSING" {
                let detail = failure
                    .detail()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Ok(Err(format!("ECS task {arn} not found: MISSING{detail}")));
            }
            return Err(ProviderError::permanent(errors::failure_message(
                "DescribeTasks",
                failure,
            )));
        }
        Ok(Err(format!(
            "ECS task {arn} not found: DescribeTasks returned neither the task nor a failure"
        )))
    }

    /// The name of the first essential container of a task definition.
    async fn first_essential_container(
        &self,
        clients: &Clients,
        task_definition_arn: &str,
    ) -> Result<Option<String>, ProviderError> {
        let td = self
            .describe_definition(clients, task_definition_arn)
            .await?;
        Ok(td
            .container_definitions()
            .iter()
            .find(|c| c.essential() != Some(false))
            .and_then(|c| c.name().map(str::to_owned)))
    }
}

#[async_trait]
impl Provider for EcsProvider {
    /// Fargate task sizes (AWS's documented cpu/memory pairs,
    /// [`FARGATE_TASK_SIZES`]), `launch_type`, `family` and `container_name`: see
    /// `config::check_variables`.
    fn check_job_variables(
        &self,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ProviderError> {
        config::check_variables(variables)
    }

    /// See `config::ignored_variables`.
    fn ignored_job_variables(
        &self,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<pushpool_providers::IgnoredVariables> {
        config::ignored_variables(variables)
    }

    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        let creds = credentials::AwsCredentialsBlock::from_configuration(job)?;
        let clients = self.clients(creds.as_ref());
        // Every check of the configuration happens here, before the first AWS call.
        let cfg = EcsJobConfig::parse(job, clients.region.as_deref())?;

        let task_definition_arn = self
            .task_definition_arn(&clients, job, &cfg.task_definition)
            .await?;

        // A given task definition ARN: its containers and network mode decide.
        let mut container_name = cfg.container_name.clone();
        let mut awsvpc = match &cfg.network {
            NetworkChoice::DefaultIfAwsvpc { known_awsvpc, .. } => *known_awsvpc,
            NetworkChoice::Explicit(_) | NetworkChoice::NotNeeded => Some(false),
        };
        if container_name.is_none() || awsvpc.is_none() {
            let td = self
                .describe_definition(&clients, &task_definition_arn)
                .await?;
            if container_name.is_none() {
                container_name = Some(task_definition::flow_container_of(&td));
            }
            if awsvpc.is_none() {
                awsvpc = Some(td.network_mode() == Some(&NetworkMode::Awsvpc));
            }
        }
        let container_name =
            container_name.unwrap_or_else(|| config::DEFAULT_CONTAINER_NAME.to_owned());
        let network = match &cfg.network {
            NetworkChoice::Explicit(nc) => Some(nc.clone()),
            NetworkChoice::NotNeeded => None,
            NetworkChoice::DefaultIfAwsvpc { vpc_id, .. } if awsvpc == Some(true) => {
                Some(network::default_network_configuration(&clients.ec2, vpc_id.as_deref()).await?)
            }
            NetworkChoice::DefaultIfAwsvpc { .. } => None,
        };

        let environment = cfg
            .environment
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect::<Vec<_>>();
        let container = ContainerOverride::builder()
            .name(&container_name)
            .set_command(Some(cfg.command.clone()))
            .set_environment(Some(environment))
            .build();
        let overrides = TaskOverride::builder()
            .container_overrides(container)
            .set_cpu(cfg.overrides.cpu.clone())
            .set_memory(cfg.overrides.memory.clone())
            .set_task_role_arn(cfg.overrides.task_role_arn.clone())
            .set_execution_role_arn(cfg.overrides.execution_role_arn.clone())
            .build();

        let request = clients
            .ecs
            .run_task()
            .task_definition(&task_definition_arn)
            .client_token(config::client_token(&job.idempotency_key))
            .started_by(STARTED_BY)
            .set_cluster(cfg.cluster.clone())
            .set_launch_type(cfg.launch.launch_type.clone())
            .set_capacity_provider_strategy(cfg.launch.capacity_provider_strategy.clone())
            .set_network_configuration(network)
            .overrides(overrides)
            .set_tags((!cfg.tags.is_empty()).then(|| cfg.tags.clone()))
            .set_platform_version(cfg.extras.platform_version.clone())
            .set_group(cfg.extras.group.clone())
            .set_enable_execute_command(cfg.extras.enable_execute_command)
            .set_enable_ecs_managed_tags(cfg.extras.enable_ecs_managed_tags)
            .set_propagate_tags(cfg.extras.propagate_tags.clone());

        let out = match request.send().await {
            Ok(out) => out,
            Err(err) => {
                if let Some(arn) = errors::conflicting_task(&err) {
                    warn!(flow_run_id = %job.flow_run_id, provider = "ecs", task_arn = %arn,
                        "the idempotency key already started a task with other parameters; keeping it");
                    return Ok(arn);
                }
                return Err(errors::classify("ECS", "RunTask", err));
            }
        };
        if let Some(arn) = out.tasks().iter().find_map(|t| t.task_arn()) {
            info!(flow_run_id = %job.flow_run_id, provider = "ecs", task_arn = arn,
                task_definition = %task_definition_arn, "started ECS task");
            return Ok(arn.to_owned());
        }
        if let Some(failure) = out.failures().first() {
            return Err(errors::run_task_failure(failure));
        }
        Err(ProviderError::transient(
            "ECS RunTask failed: the answer has neither a task nor a failure",
        ))
    }

    async fn status(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<JobStatus, ProviderError> {
        let creds = credentials::AwsCredentialsBlock::from_configuration(job)?;
        let clients = self.clients(creds.as_ref());
        let target = Target::parse(job);
        let task = match self
            .describe_task(&clients, &target, infrastructure_pid)
            .await?
        {
            Ok(task) => task,
            Err(reason) => return Ok(JobStatus::Missing { reason }),
        };
        let phase = status::phase(&task);
        if phase != status::Phase::Stopped || status::failed_to_start(&task) {
            return Ok(status::job_status(&task, None));
        }
        let mut main = status::main_container(&task, target.container_name.as_deref());
        if main.is_none() {
            if let Some(td) = task.task_definition_arn() {
                if let Some(name) = self.first_essential_container(&clients, td).await? {
                    main = task
                        .containers()
                        .iter()
                        .find(|c| c.name() == Some(name.as_str()));
                }
            }
        }
        Ok(status::job_status(&task, main))
    }

    async fn cancel(&self, job: &Job, infrastructure_pid: &str) -> Result<(), ProviderError> {
        let creds = credentials::AwsCredentialsBlock::from_configuration(job)?;
        let clients = self.clients(creds.as_ref());
        let target = Target::parse(job);
        let reason = format!("Cancelled by pushpool (flow run {})", job.flow_run_id);
        match clients
            .ecs
            .stop_task()
            .set_cluster(target.cluster_for(infrastructure_pid))
            .task(infrastructure_pid)
            .reason(reason)
            .send()
            .await
        {
            Ok(_) => {
                info!(flow_run_id = %job.flow_run_id, provider = "ecs", task_arn = infrastructure_pid,
                    "stopped ECS task");
                Ok(())
            }
            Err(err) if errors::is_gone(&err) => {
                info!(flow_run_id = %job.flow_run_id, provider = "ecs", task_arn = infrastructure_pid,
                    "ECS task to stop no longer exists");
                Ok(())
            }
            Err(err) => Err(errors::classify("ECS", "StopTask", err)),
        }
    }
}

/// The launch type pushpool uses when the configuration names none (prefect-aws's default).
pub(crate) const DEFAULT_LAUNCH_TYPE: LaunchType = LaunchType::Fargate;
