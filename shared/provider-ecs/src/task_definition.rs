//! The task definition pushpool registers: built from the template's `task_definition` the way
//! prefect-aws's `_prepare_task_definition` builds it, checked against Fargate's task sizes,
//! and compared with the latest revision of its family the way `_task_definitions_equal` does.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, EphemeralStorage, KeyValuePair,
    LogConfiguration, LogDriver, NetworkMode, OsFamily, RepositoryCredentials, RuntimePlatform,
    Secret, TaskDefinition,
};
use serde_json::Value;

use super::config::{DEFAULT_CONTAINER_NAME, Obj, is_empty_value};
use pushpool_providers::ProviderError;
pub(crate) use pushpool_providers::limits::ecs::{
    DEFAULT_CPU, DEFAULT_MEMORY, check_fargate_size, parse_cpu, parse_memory, slugify_family,
    valid_name,
};
pub use pushpool_providers::limits::ecs::{FARGATE_TASK_SIZES, FargateMemory, FargateTaskSize};

/// The prefix of the family prefect-aws generates when the template names none
/// (`ECS_DEFAULT_FAMILY`).
const DEFAULT_FAMILY: &str = "prefect";

/// The family of a job whose template names none, as prefect-aws's `_get_or_generate_family`
/// builds it: `prefect_<work pool name>_<deployment id>` (the flow id for a flow run without a
/// deployment), slugified ([`slugify_family`]). One family per work pool and deployment, so
/// that alternating deployments each reuse their own latest revision instead of registering
/// a new revision of a shared family on every run. `prefect` when the job names neither (a
/// job not built by the service).
pub(crate) fn default_family(
    work_pool_name: Option<&str>,
    deployment_id: Option<&str>,
    flow_id: Option<&str>,
) -> String {
    let Some(pool) = work_pool_name else {
        return DEFAULT_FAMILY.to_owned();
    };
    let family = match deployment_id.or(flow_id) {
        Some(id) => format!("{DEFAULT_FAMILY}_{pool}_{id}"),
        None => format!("{DEFAULT_FAMILY}_{pool}"),
    };
    slugify_family(&family).unwrap_or_else(|| DEFAULT_FAMILY.to_owned())
}

/// The task definition fields pushpool models.
const TASK_DEFINITION_KEYS: &[&str] = &[
    "family",
    "containerDefinitions",
    "cpu",
    "memory",
    "executionRoleArn",
    "taskRoleArn",
    "networkMode",
    "requiresCompatibilities",
    "runtimePlatform",
    "ephemeralStorage",
];

/// The container definition fields pushpool models.
const CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "essential",
    "cpu",
    "memory",
    "memoryReservation",
    "command",
    "entryPoint",
    "environment",
    "secrets",
    "workingDirectory",
    "user",
    "logConfiguration",
    "stopTimeout",
    "startTimeout",
    "readonlyRootFilesystem",
    "dockerLabels",
    "repositoryCredentials",
];

/// CloudWatch logs settings (`configure_cloudwatch_logs`).
pub(super) struct LogsSettings {
    pub region: String,
    pub stream_prefix: Option<String>,
    pub options: Vec<(String, String)>,
}

/// What the task definition depends on besides the template's `task_definition`.
pub(super) struct TaskDefinitionContext<'a> {
    pub container_name: Option<&'a str>,
    /// The family when the template names none ([`default_family`]).
    pub default_family: String,
    pub fargate: bool,
    pub execution_role_fallback: Option<String>,
    pub logs: Option<LogsSettings>,
    pub secrets: Vec<(String, String)>,
}

/// The task definition to register (or to find as the latest revision of its family).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DesiredTaskDefinition {
    pub family: String,
    /// The flow's container.
    pub container_name: String,
    containers: Vec<ContainerDefinition>,
    cpu: Option<String>,
    memory: Option<String>,
    network_mode: Option<NetworkMode>,
    requires_compatibilities: Vec<Compatibility>,
    execution_role_arn: Option<String>,
    task_role_arn: Option<String>,
    runtime_platform: Option<RuntimePlatform>,
    ephemeral_storage: Option<EphemeralStorage>,
}

impl DesiredTaskDefinition {
    /// Whether tasks of it need an awsvpc network configuration.
    pub fn is_awsvpc(&self) -> bool {
        self.network_mode == Some(NetworkMode::Awsvpc)
    }

    /// The `RegisterTaskDefinition` call.
    pub fn register_request(
        &self,
        client: &aws_sdk_ecs::Client,
    ) -> RegisterTaskDefinitionFluentBuilder {
        client
            .register_task_definition()
            .family(&self.family)
            .set_container_definitions(Some(self.containers.clone()))
            .set_cpu(self.cpu.clone())
            .set_memory(self.memory.clone())
            .set_network_mode(self.network_mode.clone())
            .set_requires_compatibilities(
                (!self.requires_compatibilities.is_empty())
                    .then(|| self.requires_compatibilities.clone()),
            )
            .set_execution_role_arn(self.execution_role_arn.clone())
            .set_task_role_arn(self.task_role_arn.clone())
            .set_runtime_platform(self.runtime_platform.clone())
            .set_ephemeral_storage(self.ephemeral_storage.clone())
    }

    /// Whether `existing` (a described revision) is this task definition.
    pub fn matches(&self, existing: &TaskDefinition) -> bool {
        TaskKey::desired(self) == TaskKey::existing(existing)
    }
}

/// The flow container's name the prefect-aws way: `prefect` if there is such a container,
/// else the first container's name.
pub(super) fn container_name_from_template(td: &Obj<'_>) -> Option<String> {
    let containers = td.list("containerDefinitions").ok().flatten()?;
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .collect();
    if names.contains(&DEFAULT_CONTAINER_NAME) {
        return Some(DEFAULT_CONTAINER_NAME.to_owned());
    }
    containers
        .first()
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// The flow's container of a registered task definition, the prefect-aws way: `prefect` if
/// it has such a container, else its first container.
pub(super) fn flow_container_of(td: &TaskDefinition) -> String {
    let names: Vec<&str> = td
        .container_definitions()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    if names.contains(&DEFAULT_CONTAINER_NAME) {
        return DEFAULT_CONTAINER_NAME.to_owned();
    }
    names
        .first()
        .map_or_else(|| DEFAULT_CONTAINER_NAME.to_owned(), |n| (*n).to_owned())
}

/// Builds the task definition of a job.
pub(super) fn desired(
    td: &Obj<'_>,
    ctx: &TaskDefinitionContext<'_>,
) -> Result<DesiredTaskDefinition, ProviderError> {
    td.check_keys(TASK_DEFINITION_KEYS)?;

    let family = match td.str("family")? {
        Some(given) => slugify_family(&given).ok_or_else(|| {
            ProviderError::invalid(
                td.path_of("family"),
                "has no letters, numbers, hyphens or underscores to make a task definition family of",
            )
        })?,
        None => ctx.default_family.clone(),
    };

    // The container definitions, empty ones dropped (prefect-aws does the same).
    let mut raw: Vec<(serde_json::Map<String, Value>, String)> = Vec::new();
    for (i, c) in td
        .list("containerDefinitions")?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("{}[{i}]", td.path_of("containerDefinitions"));
        match c {
            Value::Object(map) if map.values().all(is_empty_value) => {}
            Value::Object(map) => raw.push((map.clone(), path)),
            Value::Null => {}
            _ => return Err(ProviderError::invalid(path, "must be an object")),
        }
    }

    let configured = ctx.container_name.map(str::to_owned);
    let container_name = configured
        .clone()
        .or_else(|| container_name_from_template(td))
        .unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_owned());
    if !valid_name(&container_name) {
        return Err(ProviderError::invalid(
            "container_name",
            "must be 1 to 255 letters, numbers, hyphens and underscores",
        ));
    }
    let has_name = |m: &serde_json::Map<String, Value>, n: &str| {
        m.get("name").and_then(Value::as_str) == Some(n)
    };
    let unnamed = |m: &serde_json::Map<String, Value>| {
        m.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    let flow_index = match raw.iter().position(|(m, _)| has_name(m, &container_name)) {
        Some(i) => i,
        None => match raw.iter().position(|(m, _)| unnamed(m)) {
            Some(i) => i,
            None if container_name == DEFAULT_CONTAINER_NAME || raw.is_empty() => {
                let path = format!("{}[{}]", td.path_of("containerDefinitions"), raw.len());
                raw.push((serde_json::Map::new(), path));
                raw.len() - 1
            }
            None => {
                return Err(ProviderError::invalid(
                    "container_name",
                    format!(
                        "no container named {container_name:?} in task_definition.containerDefinitions"
                    ),
                ));
            }
        },
    };
    raw[flow_index]
        .0
        .insert("name".into(), Value::String(container_name.clone()));

    // Task cpu and memory.
    let cpu = match td.value("cpu") {
        Some(v) if !is_empty_value(v) => Some(parse_cpu(v, &td.path_of("cpu"))?),
        _ => None,
    };
    let memory = match td.value("memory") {
        Some(v) if !is_empty_value(v) => Some(parse_memory(v, &td.path_of("memory"))?),
        _ => None,
    };

    let execution_role_arn = td
        .str("executionRoleArn")?
        .or_else(|| ctx.execution_role_fallback.clone());
    if ctx.logs.is_some() && execution_role_arn.is_none() {
        return Err(ProviderError::invalid(
            "execution_role_arn",
            "`configure_cloudwatch_logs` needs an execution role that may write CloudWatch logs",
        ));
    }

    let mut containers = Vec::with_capacity(raw.len());
    for (i, (map, path)) in raw.iter().enumerate() {
        let obj = Obj::new(map, path);
        let mut builder = container_definition(&obj)?;
        if i == flow_index {
            if builder.get_image().is_none() {
                return Err(ProviderError::invalid(
                    "image",
                    "no container image for the flow's container: set the `image` job variable",
                ));
            }
            if !ctx.secrets.is_empty() {
                let mut secrets = builder.get_secrets().clone().unwrap_or_default();
                for (name, arn) in &ctx.secrets {
                    let secret = Secret::builder()
                        .name(name)
                        .value_from(arn)
                        .build()
                        .map_err(|e| ProviderError::invalid(path.clone(), e.to_string()))?;
                    match secrets.iter_mut().find(|s| s.name() == name) {
                        Some(existing) => *existing = secret,
                        None => secrets.push(secret),
                    }
                }
                builder = builder.set_secrets(Some(secrets));
            }
            if let Some(logs) = &ctx.logs {
                let mut options = BTreeMap::new();
                options.insert("awslogs-create-group".to_owned(), "true".to_owned());
                options.insert("awslogs-group".to_owned(), "prefect".to_owned());
                options.insert("awslogs-region".to_owned(), logs.region.clone());
                options.insert(
                    "awslogs-stream-prefix".to_owned(),
                    logs.stream_prefix
                        .clone()
                        .unwrap_or_else(|| "prefect-logs".to_owned()),
                );
                for (k, v) in &logs.options {
                    options.insert(k.clone(), v.clone());
                }
                let log = LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .set_options(Some(options.into_iter().collect()))
                    .build()
                    .map_err(|e| {
                        ProviderError::invalid("cloudwatch_logs_options", e.to_string())
                    })?;
                builder = builder.log_configuration(log);
            }
            if !ctx.fargate {
                // Container-level cpu and memory are required off Fargate (prefect-aws).
                if builder.get_cpu().is_none() {
                    builder = builder.cpu(to_i32(cpu.unwrap_or(DEFAULT_CPU)));
                }
                if builder.get_memory().is_none() {
                    builder = builder.memory(to_i32(memory.unwrap_or(DEFAULT_MEMORY)));
                }
            }
        } else if builder.get_image().is_none() {
            return Err(ProviderError::invalid(
                format!("{path}.image"),
                "every container needs an image",
            ));
        }
        containers.push(builder.build());
    }

    let mut network_mode = td
        .enum_str("networkMode", &["bridge", "host", "awsvpc", "none"])?
        .map(|m| NetworkMode::from(m.as_str()));
    let mut requires_compatibilities: Vec<Compatibility> = td
        .str_list("requiresCompatibilities")?
        .unwrap_or_default()
        .into_iter()
        .map(|c| match c.as_str() {
            "EC2" | "FARGATE" | "EXTERNAL" | "MANAGED_INSTANCES" => {
                Ok(Compatibility::from(c.as_str()))
            }
            _ => Err(ProviderError::invalid(
                td.path_of("requiresCompatibilities"),
                format!("{c:?} is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"),
            )),
        })
        .collect::<Result<_, _>>()?;

    let (cpu, memory) = if ctx.fargate {
        let cpu = cpu.unwrap_or(DEFAULT_CPU);
        let memory = memory.unwrap_or(DEFAULT_MEMORY);
        check_fargate_size(cpu, memory, &td.path_of("cpu"), &td.path_of("memory"))?;
        match &network_mode {
            None => network_mode = Some(NetworkMode::Awsvpc),
            Some(NetworkMode::Awsvpc) => {}
            Some(other) => {
                return Err(ProviderError::invalid(
                    td.path_of("networkMode"),
                    format!(
                        "Fargate supports only the awsvpc network mode, not {}",
                        other.as_str()
                    ),
                ));
            }
        }
        if !requires_compatibilities.contains(&Compatibility::Fargate) {
            requires_compatibilities.push(Compatibility::Fargate);
        }
        (Some(cpu), Some(memory))
    } else {
        (cpu, memory)
    };

    let runtime_platform = match td.obj("runtimePlatform")? {
        Some(rp) => {
            rp.check_keys(&["cpuArchitecture", "operatingSystemFamily"])?;
            Some(
                RuntimePlatform::builder()
                    .set_cpu_architecture(
                        rp.enum_str("cpuArchitecture", &["X86_64", "ARM64"])?
                            .map(|a| CpuArchitecture::from(a.as_str())),
                    )
                    .set_operating_system_family(
                        rp.str("operatingSystemFamily")?
                            .map(|f| OsFamily::from(f.as_str())),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let ephemeral_storage = match td.obj("ephemeralStorage")? {
        Some(es) => {
            es.check_keys(&["sizeInGiB"])?;
            es.i32("sizeInGiB")?
                .map(|size| EphemeralStorage::builder().size_in_gib(size).build())
        }
        None => None,
    };

    Ok(DesiredTaskDefinition {
        family,
        container_name,
        containers,
        cpu: cpu.map(|c| c.to_string()),
        memory: memory.map(|m| m.to_string()),
        network_mode,
        requires_compatibilities,
        execution_role_arn,
        task_role_arn: td.str("taskRoleArn")?,
        runtime_platform,
        ephemeral_storage,
    })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A container definition from the template.
fn container_definition(
    obj: &Obj<'_>,
) -> Result<aws_sdk_ecs::types::builders::ContainerDefinitionBuilder, ProviderError> {
    obj.check_keys(CONTAINER_KEYS)?;
    if obj.str("name")?.is_some_and(|name| !valid_name(&name)) {
        return Err(ProviderError::invalid(
            obj.path_of("name"),
            "must be 1 to 255 letters, numbers, hyphens and underscores",
        ));
    }
    let environment = match obj.list("environment")? {
        None => None,
        Some(items) => Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let path = format!("{}[{i}]", obj.path_of("environment"));
                    let name = item.get("name").and_then(Value::as_str);
                    match (name, item.get("value")) {
                        (Some(_), None | Some(Value::Null)) => None,
                        (Some(n), Some(Value::String(v))) => {
                            Some(Ok(KeyValuePair::builder().name(n).value(v).build()))
                        }
                        (Some(n), Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
                            Some(Ok(KeyValuePair::builder()
                                .name(n)
                                .value(v.to_string())
                                .build()))
                        }
                        _ => Some(Err(ProviderError::invalid(
                            path,
                            "must be {\"name\": ..., \"value\": ...} with string values",
                        ))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let secrets = match obj.list("secrets")? {
        None => None,
        Some(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("{}[{i}]", obj.path_of("secrets"));
                    let name = item.get("name").and_then(Value::as_str);
                    let from = item.get("valueFrom").and_then(Value::as_str);
                    match (name, from) {
                        (Some(n), Some(f)) => Secret::builder()
                            .name(n)
                            .value_from(f)
                            .build()
                            .map_err(|e| ProviderError::invalid(path, e.to_string())),
                        _ => Err(ProviderError::invalid(
                            path,
                            "must be {\"name\": ..., \"valueFrom\": ...}",
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let log_configuration = match obj.obj("logConfiguration")? {
        None => None,
        Some(log) => {
            log.check_keys(&["logDriver", "options"])?;
            let driver = log.str("logDriver")?.ok_or_else(|| {
                ProviderError::invalid(log.path_of("logDriver"), "a log driver is required")
            })?;
            let options = match log.obj("options")? {
                Some(o) => Some(o.string_map()?.into_iter().collect()),
                None => None,
            };
            Some(
                LogConfiguration::builder()
                    .log_driver(LogDriver::from(driver.as_str()))
                    .set_options(options)
                    .build()
                    .map_err(|e| ProviderError::invalid(log.path_of("logDriver"), e.to_string()))?,
            )
        }
    };
    let docker_labels = match obj.obj("dockerLabels")? {
        Some(labels) => Some(labels.string_map()?.into_iter().collect()),
        None => None,
    };
    let repository_credentials = match obj.obj("repositoryCredentials")? {
        None => None,
        Some(rc) => {
            rc.check_keys(&["credentialsParameter"])?;
            let parameter = rc.str("credentialsParameter")?.ok_or_else(|| {
                ProviderError::invalid(
                    rc.path_of("credentialsParameter"),
                    "the secret ARN of the registry credentials is required",
                )
            })?;
            Some(
                RepositoryCredentials::builder()
                    .credentials_parameter(parameter)
                    .build()
                    .map_err(|e| {
                        ProviderError::invalid(rc.path_of("credentialsParameter"), e.to_string())
                    })?,
            )
        }
    };
    Ok(ContainerDefinition::builder()
        .set_name(obj.str("name")?)
        .set_image(obj.str("image")?)
        .set_essential(obj.bool("essential")?)
        .set_cpu(obj.i32("cpu")?)
        .set_memory(obj.i32("memory")?)
        .set_memory_reservation(obj.i32("memoryReservation")?)
        .set_command(obj.str_list("command")?)
        .set_entry_point(obj.str_list("entryPoint")?)
        .set_environment(environment)
        .set_secrets(secrets)
        .set_working_directory(obj.str("workingDirectory")?)
        .set_user(obj.str("user")?)
        .set_log_configuration(log_configuration)
        .set_stop_timeout(obj.i32("stopTimeout")?)
        .set_start_timeout(obj.i32("startTimeout")?)
        .set_readonly_root_filesystem(obj.bool("readonlyRootFilesystem")?)
        .set_docker_labels(docker_labels)
        .set_repository_credentials(repository_credentials))
}

/// A task definition reduced to what pushpool sets, with ECS's registration defaults
/// applied, so that a wanted definition and a described revision compare equal exactly when
/// running either is the same (prefect-aws's `_task_definitions_equal`).
#[derive(Debug, PartialEq)]
struct TaskKey {
    family: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    network_mode: String,
    requires_compatibilities: BTreeSet<String>,
    execution_role_arn: Option<String>,
    task_role_arn: Option<String>,
    runtime_platform: Option<(Option<String>, Option<String>)>,
    ephemeral_storage: Option<i32>,
    containers: Vec<ContainerKey>,
    /// Whether the definition has something pushpool never sets (volumes, placement
    /// constraints, a proxy, accelerators): such a revision is not ours to reuse.
    extras: bool,
}

impl TaskKey {
    fn desired(td: &DesiredTaskDefinition) -> Self {
        Self {
            family: Some(td.family.clone()),
            cpu: td.cpu.clone(),
            memory: td.memory.clone(),
            network_mode: network_mode(td.network_mode.as_ref()),
            requires_compatibilities: td
                .requires_compatibilities
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            execution_role_arn: td.execution_role_arn.clone(),
            task_role_arn: td.task_role_arn.clone(),
            runtime_platform: td.runtime_platform.as_ref().map(platform),
            ephemeral_storage: td.ephemeral_storage.as_ref().map(|e| e.size_in_gib()),
            containers: td.containers.iter().map(ContainerKey::of).collect(),
            extras: false,
        }
    }

    fn existing(td: &TaskDefinition) -> Self {
        Self {
            family: td.family().map(str::to_owned),
            cpu: td.cpu().map(str::to_owned),
            memory: td.memory().map(str::to_owned),
            network_mode: network_mode(td.network_mode()),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            execution_role_arn: td.execution_role_arn().map(str::to_owned),
            task_role_arn: td.task_role_arn().map(str::to_owned),
            runtime_platform: td.runtime_platform().map(platform),
            ephemeral_storage: td.ephemeral_storage().map(|e| e.size_in_gib()),
            containers: td
                .container_definitions()
                .iter()
                .map(ContainerKey::of)
                .collect(),
            extras: !td.volumes().is_empty()
                || !td.placement_constraints().is_empty()
                || td.proxy_configuration().is_some()
                || !td.inference_accelerators().is_empty()
                || td.pid_mode().is_some()
                || td.ipc_mode().is_some(),
        }
    }
}

fn network_mode(mode: Option<&NetworkMode>) -> String {
    // ECS registers `bridge` when none is given.
    mode.map_or_else(|| "bridge".to_owned(), |m| m.as_str().to_owned())
}

fn platform(p: &RuntimePlatform) -> (Option<String>, Option<String>) {
    (
        p.cpu_architecture().map(|a| a.as_str().to_owned()),
        p.operating_system_family().map(|f| f.as_str().to_owned()),
    )
}

#[derive(Debug, PartialEq)]
struct ContainerKey {
    name: Option<String>,
    image: Option<String>,
    essential: bool,
    cpu: i32,
    memory: Option<i32>,
    memory_reservation: Option<i32>,
    command: Vec<String>,
    entry_point: Vec<String>,
    environment: BTreeSet<(Option<String>, Option<String>)>,
    secrets: BTreeSet<(String, String)>,
    working_directory: Option<String>,
    user: Option<String>,
    log: Option<(String, BTreeMap<String, String>)>,
    stop_timeout: Option<i32>,
    start_timeout: Option<i32>,
    readonly_root_filesystem: bool,
    docker_labels: BTreeMap<String, String>,
    repository_credentials: Option<String>,
    /// Whether the container has something pushpool never sets.
    extras: bool,
}

impl ContainerKey {
    fn of(c: &ContainerDefinition) -> Self {
        Self {
            name: c.name().map(str::to_owned),
            image: c.image().map(str::to_owned),
            // ECS registers `essential: true` when it is not given.
            essential: c.essential().unwrap_or(true),
            cpu: c.cpu(),
            memory: c.memory(),
            memory_reservation: c.memory_reservation(),
            command: c.command().to_vec(),
            entry_point: c.entry_point().to_vec(),
            environment: c
                .environment()
                .iter()
                .map(|kv| (kv.name().map(str::to_owned), kv.value().map(str::to_owned)))
                .collect(),
            secrets: c
                .secrets()
                .iter()
                .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
                .collect(),
            working_directory: c.working_directory().map(str::to_owned),
            user: c.user().map(str::to_owned),
            log: c.log_configuration().map(|l| {
                (
                    l.log_driver().as_str().to_owned(),
                    l.options()
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                )
            }),
            stop_timeout: c.stop_timeout(),
            start_timeout: c.start_timeout(),
            readonly_root_filesystem: c.readonly_root_filesystem().unwrap_or(false),
            docker_labels: c
                .docker_labels()
                .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            repository_credentials: c
                .repository_credentials()
                .map(|r| r.credentials_parameter().to_owned()),
            extras: !c.port_mappings().is_empty()
                || !c.mount_points().is_empty()
                || !c.volumes_from().is_empty()
                || !c.links().is_empty()
                || !c.depends_on().is_empty()
                || !c.environment_files().is_empty()
                || !c.resource_requirements().is_empty()
                || c.health_check().is_some()
                || c.linux_parameters().is_some()
                || c.firelens_configuration().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn build(td: Value, fargate: bool) -> Result<DesiredTaskDefinition, ProviderError> {
        let Value::Object(map) = td else {
            panic!("object")
        };
        desired(
            &Obj::new(&map, "task_definition"),
            &TaskDefinitionContext {
                container_name: None,
                default_family: "prefect".to_owned(),
                fargate,
                execution_role_fallback: None,
                logs: None,
                secrets: Vec::new(),
            },
        )
    }

    fn field(err: ProviderError) -> (String, String) {
        match err {
            ProviderError::InvalidConfiguration { field, message } => (field, message),
            other => panic!("not an invalid configuration: {other:?}"),
        }
    }

    #[test]
    fn fargate_table_matches_the_documented_pairs() {
        let ok = [
            (256, 512),
            (256, 2048),
            (512, 4096),
            (1024, 2048),
            (1024, 8192),
            (2048, 16384),
            (4096, 30720),
            (8192, 61440),
            (16384, 122880),
        ];
        for (cpu, memory) in ok {
            assert!(
                check_fargate_size(cpu, memory, "cpu", "memory").is_ok(),
                "{cpu}/{memory}"
            );
        }
        let bad = [
            (256, 4096),
            (256, 1536),
            (1024, 1024),
            (8192, 18432),
            (4096, 31744),
        ];
        for (cpu, memory) in bad {
            let (f, _) = field(check_fargate_size(cpu, memory, "cpu", "memory").unwrap_err());
            assert_eq!(f, "memory", "{cpu}/{memory}");
        }
        let (f, message) = field(check_fargate_size(300, 1024, "cpu", "memory").unwrap_err());
        assert_eq!(f, "cpu");
        assert_eq!(
            message,
            "Fargate has no task size with cpu 300; allowed cpu values: 256, 512, 1024, 2048, 4096, 8192, 16384"
        );
        let (_, message) = field(check_fargate_size(256, 4096, "cpu", "memory").unwrap_err());
        assert_eq!(
            message,
            "Fargate does not allow memory 4096 MiB with cpu 256; allowed memory with cpu 256: 512, 1024, 2048 MiB"
        );
    }

    #[test]
    fn cpu_and_memory_accept_the_forms_ecs_accepts() {
        assert_eq!(parse_cpu(&json!(256), "cpu").unwrap(), 256);
        assert_eq!(parse_cpu(&json!("512"), "cpu").unwrap(), 512);
        assert_eq!(parse_cpu(&json!("1 vCPU"), "cpu").unwrap(), 1024);
        assert_eq!(parse_cpu(&json!(".25 vcpu"), "cpu").unwrap(), 256);
        assert_eq!(parse_memory(&json!("2 GB"), "memory").unwrap(), 2048);
        assert_eq!(parse_memory(&json!("0.5GB"), "memory").unwrap(), 512);
        assert!(parse_cpu(&json!("lots"), "cpu").is_err());
        assert!(parse_cpu(&json!(0), "cpu").is_err());
        assert!(parse_memory(&json!(-1), "memory").is_err());
    }

    #[test]
    fn the_default_template_becomes_a_fargate_definition() {
        let td = build(
            json!({"containerDefinitions": [{"image": "prefecthq/prefect:3-latest"}]}),
            true,
        )
        .unwrap();
        assert_eq!(td.family, "prefect");
        assert_eq!(td.container_name, "prefect");
        assert_eq!(td.cpu.as_deref(), Some("1024"));
        assert_eq!(td.memory.as_deref(), Some("2048"));
        assert_eq!(td.network_mode, Some(NetworkMode::Awsvpc));
        assert_eq!(td.requires_compatibilities, vec![Compatibility::Fargate]);
        assert_eq!(td.containers[0].name(), Some("prefect"));
    }

    #[test]
    fn the_default_family_is_one_per_work_pool_and_deployment() {
        let deployment = "0b9f2f5e-6d0c-4a8e-9d43-3f0f5b0c1a2b";
        let flow = "7e0d3f1c-2b4a-4c5d-8e6f-1a2b3c4d5e6f";
        assert_eq!(
            default_family(Some("ecs-pool"), Some(deployment), Some(flow)),
            "prefect_ecs-pool_0b9f2f5e-6d0c-4a8e-9d43-3f0f5b0c1a2b"
        );
        assert_eq!(
            default_family(Some("ecs-pool"), None, Some(flow)),
            "prefect_ecs-pool_7e0d3f1c-2b4a-4c5d-8e6f-1a2b3c4d5e6f"
        );
        assert_eq!(
            default_family(Some("My ECS pool!"), Some(deployment), None),
            "prefect_My-ECS-pool-_0b9f2f5e-6d0c-4a8e-9d43-3f0f5b0c1a2b"
        );
        assert_eq!(default_family(None, Some(deployment), None), "prefect");
        let long = "p".repeat(300);
        assert_eq!(
            default_family(Some(&long), Some(deployment), None).len(),
            255
        );
    }

    #[test]
    fn a_given_family_is_slugified_not_refused() {
        assert_eq!(slugify_family("flows_v2-x").as_deref(), Some("flows_v2-x"));
        assert_eq!(
            slugify_family("my flows: nightly/ETL").as_deref(),
            Some("my-flows-nightly-ETL")
        );
        assert_eq!(slugify_family(" données ").as_deref(), Some("donn-es"));
        assert_eq!(slugify_family("!!!"), None);
        let td = build(
            json!({"family": "team a/flows", "containerDefinitions": [{"image": "i"}]}),
            true,
        )
        .unwrap();
        assert_eq!(td.family, "team-a-flows");
        let err = build(
            json!({"family": "???", "containerDefinitions": [{"image": "i"}]}),
            true,
        )
        .unwrap_err();
        assert_eq!(
            field(err),
            (
                "task_definition.family".to_owned(),
                "has no letters, numbers, hyphens or underscores to make a task definition family of"
                    .to_owned()
            )
        );
    }

    #[test]
    fn missing_image_names_the_image_variable() {
        let err = build(json!({"containerDefinitions": [{"name": "prefect"}]}), true).unwrap_err();
        assert_eq!(field(err).0, "image");
        let err = build(json!({}), true).unwrap_err();
        assert_eq!(field(err).0, "image");
    }

    #[test]
    fn ec2_containers_get_cpu_and_memory() {
        let td = build(
            json!({"containerDefinitions": [{"image": "i", "name": "flow"}], "cpu": 512}),
            false,
        )
        .unwrap();
        assert_eq!(td.container_name, "flow");
        assert_eq!(td.containers[0].cpu(), 512);
        assert_eq!(td.containers[0].memory(), Some(2048));
        assert_eq!(td.network_mode, None);
        assert_eq!(td.cpu.as_deref(), Some("512"));
        assert_eq!(td.memory, None);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = build(
            json!({"containerDefinitions": [{"image": "i", "portMappings": [{"containerPort": 80}]}]}),
            true,
        )
        .unwrap_err();
        assert_eq!(
            field(err).0,
            "task_definition.containerDefinitions[0].portMappings"
        );
        let err = build(
            json!({"containerDefinitions": [{"image": "i"}], "volumes": [{"name": "v"}]}),
            true,
        )
        .unwrap_err();
        assert_eq!(field(err).0, "task_definition.volumes");
    }

    #[test]
    fn a_described_revision_with_ecs_defaults_matches() {
        let td = build(
            json!({"family": "flows", "cpu": 256, "memory": 512,
                   "containerDefinitions": [{"image": "i", "name": "prefect", "memory": 512,
                     "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}),
            true,
        )
        .unwrap();
        let described = TaskDefinition::builder()
            .family("flows")
            .cpu("256")
            .memory("512")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("prefect")
                    .image("i")
                    .memory(512)
                    .cpu(0)
                    .essential(true)
                    .environment(KeyValuePair::builder().name("A").value("1").build())
                    .environment(KeyValuePair::builder().name("B").value("2").build())
                    .set_port_mappings(Some(vec![]))
                    .set_mount_points(Some(vec![]))
                    .build(),
            )
            .revision(3)
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/flows:3")
            .build();
        assert!(td.matches(&described));

        let other_image = described.clone().to_builder_with_image("j");
        assert!(!td.matches(&other_image));
    }

    trait WithImage {
        fn to_builder_with_image(self, image: &str) -> TaskDefinition;
    }

    impl WithImage for TaskDefinition {
        fn to_builder_with_image(self, image: &str) -> TaskDefinition {
            let containers = self
                .container_definitions()
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.image = Some(image.to_owned());
                    c
                })
                .collect();
            let mut td = self;
            td.container_definitions = Some(containers);
            td
        }
    }
}
