//! The rendered ECS job configuration, read once into typed values ("parse, don't validate"):
//! after [`EcsJobConfig::parse`] nothing about the configuration can fail any more.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, LaunchType,
    NetworkConfiguration, PropagateTags, Tag,
};
use serde_json::{Map, Value};
use tracing::warn;

use super::DEFAULT_LAUNCH_TYPE;
use super::task_definition::{self, DesiredTaskDefinition, LogsSettings, TaskDefinitionContext};
pub(super) use pushpool_providers::limits::ecs::{
    Obj, check_variables, ignored_variables, is_empty_value,
};
use pushpool_providers::{Job, ProviderError};

/// The container name prefect-aws uses when none is configured.
pub(super) const DEFAULT_CONTAINER_NAME: &str = "prefect";

/// At most this many tags per resource (`Tags` in the ECS model: `max 50`).
const MAX_TAGS: usize = 50;

/// The `task_run_request` keys pushpool turns into `RunTask` parameters.
const TASK_RUN_REQUEST_KEYS: &[&str] = &[
    "taskDefinition",
    "cluster",
    "launchType",
    "capacityProviderStrategy",
    "overrides",
    "tags",
    "networkConfiguration",
    "platformVersion",
    "group",
    "enableExecuteCommand",
    "enableECSManagedTags",
    "propagateTags",
];

/// The `task_run_request.overrides` keys pushpool passes on. `containerOverrides` is
/// rebuilt from the job's command and environment.
const OVERRIDE_KEYS: &[&str] = &[
    "containerOverrides",
    "cpu",
    "memory",
    "taskRoleArn",
    "executionRoleArn",
];

/// Everything `submit` needs, checked.
pub(super) struct EcsJobConfig {
    /// `cluster`, else `task_run_request.cluster`; `None` = ECS's default cluster.
    pub cluster: Option<String>,
    /// The flow's container; `None` when only the (given) task definition can tell.
    pub container_name: Option<String>,
    /// The command of the flow's container.
    pub command: Vec<String>,
    /// The flow's environment, sorted by name.
    pub environment: Vec<(String, String)>,
    pub task_definition: TaskDefinitionSource,
    pub launch: Launch,
    pub network: NetworkChoice,
    pub overrides: Overrides,
    pub tags: Vec<Tag>,
    pub extras: RunTaskExtras,
}

/// Where the task definition comes from.
pub(super) enum TaskDefinitionSource {
    /// `task_run_request.taskDefinition` (the `task_definition_arn` variable).
    Arn(String),
    /// Register (or reuse) this one.
    Build(Box<DesiredTaskDefinition>),
}

/// `launchType` or `capacityProviderStrategy`, never both.
pub(super) struct Launch {
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    /// Whether the task runs on Fargate (the `FARGATE` or `FARGATE_SPOT` launch type).
    pub fargate: bool,
}

/// How the `awsvpc` network configuration is found.
pub(super) enum NetworkChoice {
    /// Given by the configuration.
    Explicit(NetworkConfiguration),
    /// The task definition's network mode is not `awsvpc`.
    NotNeeded,
    /// Subnets of `vpc_id` (else the default VPC) if the task definition is `awsvpc`;
    /// `known_awsvpc` is `None` when only the given task definition can tell.
    DefaultIfAwsvpc {
        vpc_id: Option<String>,
        known_awsvpc: Option<bool>,
    },
}

/// Task-level overrides.
#[derive(Default)]
pub(super) struct Overrides {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
}

/// Other `RunTask` parameters a template may set in `task_run_request`.
#[derive(Default)]
pub(super) struct RunTaskExtras {
    pub platform_version: Option<String>,
    pub group: Option<String>,
    pub enable_execute_command: Option<bool>,
    pub enable_ecs_managed_tags: Option<bool>,
    pub propagate_tags: Option<PropagateTags>,
}

/// What `status` and `cancel` need: which cluster, which container.
pub(super) struct Target {
    pub cluster: Option<String>,
    pub container_name: Option<String>,
}

impl Target {
    /// Reads the cluster and the flow's container name; never fails (a job that was
    /// submitted had a valid configuration).
    pub fn parse(job: &Job) -> Self {
        let root = Obj::root(&job.configuration);
        let trr = root.obj("task_run_request").ok().flatten();
        let cluster = root
            .str("cluster")
            .ok()
            .flatten()
            .or_else(|| trr.as_ref().and_then(|t| t.str("cluster").ok().flatten()));
        let given_arn = trr
            .as_ref()
            .and_then(|t| t.str("taskDefinition").ok().flatten())
            .or_else(|| root.str("task_definition_arn").ok().flatten());
        let container_name = root
            .str("container_name")
            .ok()
            .flatten()
            .or_else(|| {
                root.obj("task_definition")
                    .ok()
                    .flatten()
                    .and_then(|td| task_definition::container_name_from_template(&td))
            })
            // What `submit` named the flow's container of a definition it built; for a
            // given ARN only the definition can tell.
            .or_else(|| {
                given_arn
                    .is_none()
                    .then(|| DEFAULT_CONTAINER_NAME.to_owned())
            });
        Self {
            cluster,
            container_name,
        }
    }

    /// The cluster to ask about `task_arn`: the configured one, else the one the (long
    /// format) ARN names, else none (ECS's default cluster).
    pub fn cluster_for(&self, task_arn: &str) -> Option<String> {
        self.cluster
            .clone()
            .or_else(|| cluster_of_task_arn(task_arn))
    }
}

/// `arn:aws:ecs:<region>:<account>:task/<cluster>/<id>` → `<cluster>`.
pub(super) fn cluster_of_task_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("task"), Some(cluster), Some(_)) if !cluster.is_empty() => Some(cluster.to_owned()),
        _ => None,
    }
}

/// The `clientToken` of a submission: the idempotency key when it fits the model's rule
/// ("Up to 64 characters ... in the range of 33-126"), else a deterministic digest of it.
pub(super) fn client_token(idempotency_key: &str) -> String {
    let fits = !idempotency_key.is_empty()
        && idempotency_key.len() <= 64
        && idempotency_key.bytes().all(|b| (33..=126).contains(&b));
    if fits {
        return idempotency_key.to_owned();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("pushpool-{}", &hex[..55])
}

impl EcsJobConfig {
    /// Reads and checks the job's configuration. `region` is the region of the clients
    /// that will run it (for CloudWatch logs options).
    pub fn parse(job: &Job, region: Option<&str>) -> Result<Self, ProviderError> {
        let root = Obj::root(&job.configuration);
        let trr = root.obj("task_run_request")?;
        let empty = Map::new();
        let trr = trr.unwrap_or_else(|| Obj::new(&empty, "task_run_request"));
        trr.check_keys(TASK_RUN_REQUEST_KEYS)?;

        let cluster = match root.str("cluster")? {
            Some(c) => Some(c),
            None => trr.str("cluster")?,
        };
        let launch = parse_launch(&trr)?;

        let secret_env = secret_environment(&root)?;
        let mut environment: Vec<(String, String)> = job
            .env()
            .into_iter()
            .filter(|(name, _)| !secret_env.iter().any(|(n, _)| n == name))
            .collect();
        environment.sort_by(|a, b| a.0.cmp(&b.0));
        let command = job.command_args()?;

        let configured_container = root.str("container_name")?;
        let arn = match trr.str("taskDefinition")? {
            Some(arn) => Some(arn),
            None => root.str("task_definition_arn")?,
        };
        let (task_definition, container_name, known_awsvpc) = match arn {
            Some(arn) => {
                let awsvpc = launch.fargate.then_some(true);
                (TaskDefinitionSource::Arn(arn), configured_container, awsvpc)
            }
            None => {
                let td = root.obj("task_definition")?;
                let td = td.unwrap_or_else(|| Obj::new(&empty, "task_definition"));
                let logs = logs_settings(&root, region)?;
                let execution_role_fallback = root.str("execution_role_arn")?;
                let desired = task_definition::desired(
                    &td,
                    &TaskDefinitionContext {
                        container_name: configured_container.as_deref(),
                        default_family: task_definition::default_family(
                            job.work_pool_name(),
                            job.deployment_id(),
                            job.flow_id(),
                        ),
                        fargate: launch.fargate,
                        execution_role_fallback,
                        logs,
                        secrets: secret_env.clone(),
                    },
                )?;
                let name = desired.container_name.clone();
                let awsvpc = desired.is_awsvpc();
                (
                    TaskDefinitionSource::Build(Box::new(desired)),
                    Some(name),
                    Some(awsvpc),
                )
            }
        };

        let network = match root.value("network_configuration") {
            Some(v) if !is_empty_value(v) => {
                NetworkChoice::Explicit(parse_network(v, "network_configuration")?)
            }
            _ => match trr.value("networkConfiguration") {
                Some(v) if !is_empty_value(v) => NetworkChoice::Explicit(parse_network(
                    v,
                    "task_run_request.networkConfiguration",
                )?),
                _ if known_awsvpc == Some(false) => NetworkChoice::NotNeeded,
                _ => NetworkChoice::DefaultIfAwsvpc {
                    vpc_id: root.str("vpc_id")?,
                    known_awsvpc,
                },
            },
        };

        let overrides = parse_overrides(&trr, launch.fargate)?;
        let tags = parse_tags(&root, &trr)?;
        let extras = RunTaskExtras {
            platform_version: trr.str("platformVersion")?,
            group: trr.str("group")?,
            enable_execute_command: trr.bool("enableExecuteCommand")?,
            enable_ecs_managed_tags: trr.bool("enableECSManagedTags")?,
            propagate_tags: trr
                .enum_str("propagateTags", &["TASK_DEFINITION", "SERVICE", "NONE"])?
                .map(|s| PropagateTags::from(s.as_str())),
        };

        Ok(Self {
            cluster,
            container_name,
            command,
            environment,
            task_definition,
            launch,
            network,
            overrides,
            tags,
            extras,
        })
    }
}

fn parse_launch(trr: &Obj<'_>) -> Result<Launch, ProviderError> {
    let launch = trr.enum_str(
        "launchType",
        &[
            "FARGATE",
            "FARGATE_SPOT",
            "EC2",
            "EXTERNAL",
            "MANAGED_INSTANCES",
        ],
    )?;
    let strategy = match trr.list("capacityProviderStrategy")? {
        Some(items) if !items.is_empty() => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("task_run_request.capacityProviderStrategy[{i}]");
                    let Value::Object(map) = item else {
                        return Err(ProviderError::invalid(path, "must be an object"));
                    };
                    let obj = Obj::new(map, &path);
                    obj.check_keys(&["capacityProvider", "weight", "base"])?;
                    let provider = obj.str("capacityProvider")?.ok_or_else(|| {
                        ProviderError::invalid(
                            format!("{path}.capacityProvider"),
                            "a capacity provider name is required",
                        )
                    })?;
                    CapacityProviderStrategyItem::builder()
                        .capacity_provider(provider)
                        .set_weight(obj.i32("weight")?)
                        .set_base(obj.i32("base")?)
                        .build()
                        .map_err(|e| ProviderError::invalid(path, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => None,
    };
    let name = launch.unwrap_or_else(|| DEFAULT_LAUNCH_TYPE.as_str().to_owned());
    let fargate = name == "FARGATE" || name == "FARGATE_SPOT";
    Ok(match (strategy, name.as_str()) {
        // A strategy replaces the launch type (the API takes one or the other).
        (Some(strategy), _) => Launch {
            launch_type: None,
            capacity_provider_strategy: Some(strategy),
            fargate,
        },
        // Not an ECS launch type: prefect-aws's spelling of the FARGATE_SPOT provider.
        (None, "FARGATE_SPOT") => Launch {
            launch_type: None,
            capacity_provider_strategy: Some(vec![
                CapacityProviderStrategyItem::builder()
                    .capacity_provider("FARGATE_SPOT")
                    .weight(1)
                    .build()
                    .map_err(|e| {
                        ProviderError::invalid("task_run_request.launchType", e.to_string())
                    })?,
            ]),
            fargate,
        },
        (None, other) => Launch {
            launch_type: Some(LaunchType::from(other)),
            capacity_provider_strategy: None,
            fargate,
        },
    })
}

/// `(variable, secret ARN)` pairs that replace environment variables by container secrets.
fn secret_environment(root: &Obj<'_>) -> Result<Vec<(String, String)>, ProviderError> {
    let mut secrets = Vec::new();
    if let Some(arn) = root.str("prefect_api_key_secret_arn")? {
        secrets.push(("PREFECT_API_KEY".to_owned(), arn));
    }
    if let Some(arn) = root.str("prefect_api_auth_string_secret_arn")? {
        secrets.push(("PREFECT_API_AUTH_STRING".to_owned(), arn));
    }
    Ok(secrets)
}

fn logs_settings(
    root: &Obj<'_>,
    region: Option<&str>,
) -> Result<Option<LogsSettings>, ProviderError> {
    let options = match root.obj("cloudwatch_logs_options")? {
        Some(obj) => obj.string_map()?,
        None => Vec::new(),
    };
    if root.bool("configure_cloudwatch_logs")? != Some(true) {
        if !options.is_empty() {
            return Err(ProviderError::invalid(
                "cloudwatch_logs_options",
                "needs `configure_cloudwatch_logs` to be enabled",
            ));
        }
        return Ok(None);
    }
    let region = region.ok_or_else(|| {
        ProviderError::invalid(
            "configure_cloudwatch_logs",
            "CloudWatch logs need an AWS region: set `region_name` in the AWS credentials or the process's AWS region",
        )
    })?;
    Ok(Some(LogsSettings {
        region: region.to_owned(),
        stream_prefix: root.str("cloudwatch_logs_prefix")?,
        options,
    }))
}

/// Prefect's inner form (`{"subnets": ...}`, what prefect-aws wraps in
/// `awsvpcConfiguration`) or the API form (`{"awsvpcConfiguration": {...}}`).
fn parse_network(value: &Value, path: &str) -> Result<NetworkConfiguration, ProviderError> {
    let Value::Object(map) = value else {
        return Err(ProviderError::invalid(path, "must be an object"));
    };
    let (map, path) = match map.get("awsvpcConfiguration") {
        Some(Value::Object(inner)) if map.len() == 1 => {
            (inner, format!("{path}.awsvpcConfiguration"))
        }
        Some(_) => {
            return Err(ProviderError::invalid(
                format!("{path}.awsvpcConfiguration"),
                "must be the only key, an object",
            ));
        }
        None => (map, path.to_owned()),
    };
    let obj = Obj::new(map, &path);
    obj.check_keys(&["subnets", "securityGroups", "assignPublicIp"])?;
    let subnets = obj.str_list("subnets")?.unwrap_or_default();
    if subnets.is_empty() {
        return Err(ProviderError::invalid(
            format!("{path}.subnets"),
            "at least one subnet id is required for the awsvpc network mode",
        ));
    }
    let assign = obj.enum_str("assignPublicIp", &["ENABLED", "DISABLED"])?;
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(subnets))
        .set_security_groups(obj.str_list("securityGroups")?.filter(|g| !g.is_empty()))
        .set_assign_public_ip(assign.map(|a| AssignPublicIp::from(a.as_str())))
        .build()
        .map_err(|e| ProviderError::invalid(path, e.to_string()))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

fn parse_overrides(trr: &Obj<'_>, fargate: bool) -> Result<Overrides, ProviderError> {
    let Some(obj) = trr.obj("overrides")? else {
        return Ok(Overrides::default());
    };
    obj.check_keys(OVERRIDE_KEYS)?;
    let cpu = match obj.value("cpu") {
        Some(v) if !is_empty_value(v) => Some(task_definition::parse_cpu(v, &obj.path_of("cpu"))?),
        _ => None,
    };
    let memory = match obj.value("memory") {
        Some(v) if !is_empty_value(v) => {
            Some(task_definition::parse_memory(v, &obj.path_of("memory"))?)
        }
        _ => None,
    };
    if let (true, Some(cpu), Some(memory)) = (fargate, cpu, memory) {
        task_definition::check_fargate_size(
            cpu,
            memory,
            &obj.path_of("cpu"),
            &obj.path_of("memory"),
        )?;
    }
    Ok(Overrides {
        cpu: cpu.map(|c| c.to_string()),
        memory: memory.map(|m| m.to_string()),
        task_role_arn: obj.str("taskRoleArn")?,
        execution_role_arn: obj.str("executionRoleArn")?,
    })
}

/// `task_run_request.tags` (a `{key: value}` object or `[{key, value}]`), then `labels`
/// (which win), skipping what the API would refuse.
fn parse_tags(root: &Obj<'_>, trr: &Obj<'_>) -> Result<Vec<Tag>, ProviderError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut push = |key: String, value: String| {
        if let Some(existing) = pairs.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else {
            pairs.push((key, value));
        }
    };
    match trr.value("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Some(v) = scalar_string(v) {
                    push(k.clone(), v);
                }
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let key = item.get("key").and_then(Value::as_str);
                let value = item.get("value").and_then(scalar_string);
                match (key, value) {
                    (Some(k), Some(v)) => push(k.to_owned(), v),
                    (Some(k), None) => push(k.to_owned(), String::new()),
                    _ => warn!(
                        provider = "ecs",
                        "skipping a task_run_request tag without a key"
                    ),
                }
            }
        }
        Some(_) => {
            return Err(ProviderError::invalid(
                "task_run_request.tags",
                "must be an object of tags or a list of {key, value}",
            ));
        }
    }
    if let Some(labels) = root.obj("labels")? {
        for (k, v) in labels.map {
            if let Some(v) = scalar_string(v) {
                push(k.clone(), v);
            }
        }
    }
    let mut tags = Vec::new();
    for (key, value) in pairs {
        if !valid_tag(&key, &value) {
            warn!(provider = "ecs", tag = %key, "skipping a label ECS does not accept as a tag");
            continue;
        }
        if tags.len() == MAX_TAGS {
            warn!(provider = "ecs", tag = %key, "skipping a label past ECS's 50 tags");
            continue;
        }
        tags.push(Tag::builder().key(key).value(value).build());
    }
    Ok(tags)
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// The ECS model's `TagKey` (1..=128) and `TagValue` (0..=256), both
/// `([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`; keys starting `aws:` are reserved for AWS.
pub(super) fn valid_tag(key: &str, value: &str) -> bool {
    fn allowed(c: char) -> bool {
        c.is_alphabetic()
            || c.is_numeric()
            || (c.is_whitespace() && !c.is_control())
            || "_.:/=+-@".contains(c)
    }
    let key_len = key.chars().count();
    (1..=128).contains(&key_len)
        && value.chars().count() <= 256
        && key.chars().all(allowed)
        && value.chars().all(allowed)
        && !key.to_ascii_lowercase().starts_with("aws:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_token_is_the_key_when_it_fits() {
        let key = "pushpool-1b9d3c1e-8a5e-4f2e-9c51-0c6f8a1d2e3f-1";
        assert_eq!(client_token(key), key);
    }

    #[test]
    fn client_token_digests_keys_that_do_not_fit() {
        let long = "x".repeat(65);
        let token = client_token(&long);
        assert_eq!(token.len(), 64);
        assert!(token.starts_with("pushpool-"));
        assert_eq!(token, client_token(&long));
        assert_ne!(client_token("with space"), "with space");
    }

    #[test]
    fn cluster_is_read_from_long_task_arns() {
        assert_eq!(
            cluster_of_task_arn("arn:aws:ecs:us-east-1:123456789012:task/flows/0123abcd"),
            Some("flows".to_owned())
        );
        assert_eq!(
            cluster_of_task_arn("arn:aws:ecs:us-east-1:123456789012:task/0123abcd"),
            None
        );
        assert_eq!(cluster_of_task_arn("0123abcd"), None);
    }

    fn check(v: serde_json::Value) -> Result<(), String> {
        check_variables(v.as_object().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn fargate_pairs_are_checked_on_the_variables() {
        use serde_json::json;
        check(json!({})).unwrap();
        check(json!({"cpu": 512, "memory": 1024})).unwrap();
        check(json!({"cpu": 256})).unwrap(); // with prefect-aws's 2048 MiB
        check(json!({"cpu": 4096, "memory": 8192, "launch_type": "FARGATE_SPOT"})).unwrap();
        check(json!({"cpu": 300, "memory": 1024, "launch_type": "EC2"})).unwrap();
        // A task definition ARN with only one of them: no task size override pair to check.
        check(json!({"cpu": 4096, "task_definition_arn": "arn:x"})).unwrap();
        assert_eq!(
            check(json!({"cpu": 256, "memory": 4096})).unwrap_err(),
            "invalid job configuration: memory: Fargate does not allow memory 4096 MiB with cpu 256; \
             allowed memory with cpu 256: 512, 1024, 2048 MiB"
        );
        assert_eq!(
            check(json!({"cpu": 4096})).unwrap_err(),
            "invalid job configuration: memory: Fargate does not allow memory 2048 MiB with cpu 4096; \
             allowed memory with cpu 4096: 8192 to 30720 MiB in steps of 1024 MiB"
        );
        assert_eq!(
            check(json!({"cpu": 300, "memory": 1024, "task_definition_arn": "arn:x"})).unwrap_err(),
            "invalid job configuration: cpu: Fargate has no task size with cpu 300; allowed cpu \
             values: 256, 512, 1024, 2048, 4096, 8192, 16384"
        );
        assert_eq!(
            check(json!({"memory": 0})).unwrap_err(),
            "invalid job configuration: memory: must be a positive amount in MiB (2048) or GB (\"2 GB\")"
        );
        assert_eq!(
            check(json!({"launch_type": "LAMBDA"})).unwrap_err(),
            "invalid job configuration: launch_type: \"LAMBDA\" is not one of FARGATE, FARGATE_SPOT, EC2, EXTERNAL"
        );
        assert_eq!(
            check(json!({"family": "!!!"})).unwrap_err(),
            "invalid job configuration: family: has no letters, numbers, hyphens or underscores to \
             make a task definition family of"
        );
        check(json!({"family": "my flows"})).unwrap();
        assert_eq!(
            check(json!({"container_name": "flow container"})).unwrap_err(),
            "invalid job configuration: container_name: must be 1 to 255 letters, numbers, hyphens \
             and underscores"
        );
    }

    #[test]
    fn variables_a_given_task_definition_makes_useless_are_reported() {
        use serde_json::json;
        let ignored = |v: serde_json::Value| -> Vec<String> {
            ignored_variables(v.as_object().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            ignored(json!({"image": "i", "cpu": 512})),
            Vec::<String>::new()
        );
        assert_eq!(
            ignored(
                json!({"task_definition_arn": "arn:td", "image": "i", "family": "f",
                "cpu": 512, "memory": 1024, "configure_cloudwatch_logs": false,
                "execution_role_arn": null})
            ),
            vec![
                "Job variables image and family are ignored: task_definition_arn names the task \
                 definition to run, which is used as it is (cpu, memory, task_role_arn, env and \
                 command still apply, as task overrides)."
            ]
        );
        assert_eq!(
            ignored(
                json!({"vpc_id": "vpc-1", "network_configuration": {"subnets": ["s"]},
                "auto_deregister_task_definition": true})
            ),
            vec![
                "Job variable vpc_id is ignored: network_configuration gives the subnets, so no VPC \
                 is looked up.",
                "Job variable auto_deregister_task_definition is ignored: pushpool keeps the task \
                 definition revisions it registers, to reuse them for the next runs of the deployment."
            ]
        );
    }

    #[test]
    fn tags_follow_the_model_pattern() {
        assert!(valid_tag("prefect.io/flow-run-id", "1b9d3c1e-8a5e"));
        assert!(valid_tag("team", ""));
        assert!(valid_tag("équipe", "données 1"));
        assert!(!valid_tag("", "x"));
        assert!(!valid_tag("aws:reserved", "x"));
        assert!(!valid_tag("bad*key", "x"));
        assert!(!valid_tag("k", "bad\nvalue"));
        assert!(!valid_tag(&"k".repeat(129), "x"));
        assert!(!valid_tag("k", &"v".repeat(257)));
    }
}
