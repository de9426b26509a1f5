//! The pure checks of `ecs:push` job variables (no AWS SDK): Fargate's task sizes, task cpu and
//! memory amounts, family and container names, and the variables a given task definition
//! makes unused. The API checks deployments and flow runs with them (through
//! [`crate::limits::limit_checks`]); the ECS adapter (`pushpool-provider-ecs`) checks the
//! same rules again when it builds the task definition.

use serde_json::{Map, Value};

use crate::ProviderError;

/// The launch types the `launch_type` variable may name (the `ecs:push` template's enum).
pub const LAUNCH_TYPES: &[&str] = &["FARGATE", "FARGATE_SPOT", "EC2", "EXTERNAL"];

/// Checks the job variables of an `ecs:push` deployment or flow run (the pool's defaults
/// merged under them) against what `submit` would refuse, before any job exists:
/// - on Fargate (`launch_type` `FARGATE`, `FARGATE_SPOT` or unset) without
///   `task_definition_arn`, the task size `cpu`/`memory` (each defaulting to prefect-aws's
///   1024/2048 when the other is set) must be a pair of [`FARGATE_TASK_SIZES`];
///   with `task_definition_arn`, a given pair (task overrides) must be;
/// - `cpu` and `memory` are positive amounts;
/// - `family` must keep at least one character after slugifying, `container_name` must be
///   1 to 255 letters, numbers, hyphens and underscores.
///
/// Absent and `null` variables are not checked.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming the variable.
pub fn check_variables(variables: &Map<String, Value>) -> Result<(), ProviderError> {
    let vars = Obj::root(variables);
    let launch = vars.enum_str("launch_type", LAUNCH_TYPES)?;
    let fargate = matches!(launch.as_deref(), None | Some("FARGATE" | "FARGATE_SPOT"));
    let cpu = match vars.value("cpu") {
        Some(v) if !is_empty_value(v) => Some(parse_cpu(v, "cpu")?),
        _ => None,
    };
    let memory = match vars.value("memory") {
        Some(v) if !is_empty_value(v) => Some(parse_memory(v, "memory")?),
        _ => None,
    };
    let given_arn = vars.str("task_definition_arn")?.is_some();
    if fargate {
        let pair = if given_arn {
            cpu.zip(memory)
        } else if cpu.is_some() || memory.is_some() {
            Some((cpu.unwrap_or(DEFAULT_CPU), memory.unwrap_or(DEFAULT_MEMORY)))
        } else {
            None
        };
        if let Some((cpu, memory)) = pair {
            check_fargate_size(cpu, memory, "cpu", "memory")?;
        }
    }
    if let Some(family) = vars.str("family")? {
        if slugify_family(&family).is_none() {
            return Err(ProviderError::invalid(
                "family",
                "has no letters, numbers, hyphens or underscores to make a task definition family of",
            ));
        }
    }
    if let Some(name) = vars.str("container_name")? {
        if !valid_name(&name) {
            return Err(ProviderError::invalid(
                "container_name",
                "must be 1 to 255 letters, numbers, hyphens and underscores",
            ));
        }
    }
    Ok(())
}

/// The variables of the `ecs:push` template that only shape the task definition pushpool
/// builds: with a given `task_definition_arn` they are not used.
pub const TASK_DEFINITION_ONLY_VARIABLES: &[&str] = &[
    "image",
    "family",
    "execution_role_arn",
    "configure_cloudwatch_logs",
    "cloudwatch_logs_options",
    "cloudwatch_logs_prefix",
];

/// The variables `submit` will not use given the others (see [`crate::IgnoredVariables`]):
/// the task-definition-only ones next to `task_definition_arn` (`cpu`, `memory`,
/// `task_role_arn`, `container_name`, `env` and `command` still apply, as `RunTask`
/// overrides), `vpc_id` next to `network_configuration`, and
/// `auto_deregister_task_definition` (pushpool keeps and reuses the revisions it registers).
pub fn ignored_variables(variables: &Map<String, Value>) -> Vec<crate::IgnoredVariables> {
    let set = |key: &str| match variables.get(key) {
        None | Some(Value::Bool(false)) => false,
        Some(v) => !is_empty_value(v),
    };
    let mut ignored = Vec::new();
    if set("task_definition_arn") {
        let names: Vec<String> = TASK_DEFINITION_ONLY_VARIABLES
            .iter()
            .filter(|k| set(k))
            .map(|k| (*k).to_owned())
            .collect();
        if !names.is_empty() {
            ignored.push(crate::IgnoredVariables {
                names,
                reason: "task_definition_arn names the task definition to run, which is used \
                         as it is (cpu, memory, task_role_arn, env and command still apply, as \
                         task overrides)"
                    .to_owned(),
            });
        }
    }
    if set("vpc_id") && set("network_configuration") {
        ignored.push(crate::IgnoredVariables {
            names: vec!["vpc_id".to_owned()],
            reason: "network_configuration gives the subnets, so no VPC is looked up".to_owned(),
        });
    }
    if set("auto_deregister_task_definition") {
        ignored.push(crate::IgnoredVariables {
            names: vec!["auto_deregister_task_definition".to_owned()],
            reason: "pushpool keeps the task definition revisions it registers, to reuse them \
                     for the next runs of the deployment"
                .to_owned(),
        });
    }
    ignored
}

/// A family ECS accepts (`[A-Za-z0-9_-]{1,255}`, the model's rule): a valid name is kept as it
/// is; otherwise each run of other characters becomes one `-`, hyphens at either end are
/// dropped, and the result is cut to 255 characters. This is what the `family` variable's
/// description promises ("Values for this field will be slugified to match AWS character
/// requirements"; prefect-aws slugifies with the pattern `[^a-zA-Z0-9-_]+`). Unlike
/// python-slugify, case is kept, so that an existing family keeps its name. `None` when nothing
/// is left.
pub fn slugify_family(family: &str) -> Option<String> {
    if valid_name(family) {
        return Some(family.to_owned());
    }
    let mut out = String::with_capacity(family.len());
    let mut in_run = false;
    for c in family.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let out: String = out.trim_matches('-').chars().take(255).collect();
    (!out.is_empty()).then_some(out)
}
/// prefect-aws's default task cpu (units; 1024 = 1 vCPU) when the template gives none.
pub const DEFAULT_CPU: u32 = 1024;
/// prefect-aws's default task memory (MiB) when the template gives none.
pub const DEFAULT_MEMORY: u32 = 2048;

/// The memory sizes Fargate allows with one cpu size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FargateMemory {
    /// Exactly these sizes (MiB).
    OneOf(&'static [u32]),
    /// From `min` to `max` MiB in steps of `step` MiB.
    Range {
        /// Smallest size (MiB).
        min: u32,
        /// Largest size (MiB).
        max: u32,
        /// Increment (MiB).
        step: u32,
    },
}

impl FargateMemory {
    /// Whether `memory` (MiB) is one of the sizes.
    pub fn allows(&self, memory: u32) -> bool {
        match *self {
            Self::OneOf(sizes) => sizes.contains(&memory),
            Self::Range { min, max, step } => {
                (min..=max).contains(&memory) && (memory - min) % step == 0
            }
        }
    }
}

impl std::fmt::Display for FargateMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::OneOf(sizes) => {
                let sizes: Vec<String> = sizes.iter().map(u32::to_string).collect();
                write!(f, "{} MiB", sizes.join(", "))
            }
            Self::Range { min, max, step } => {
                write!(f, "{min} to {max} MiB in steps of {step} MiB")
            }
        }
    }
}

/// One row of Fargate's task size table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FargateTaskSize {
    /// Task cpu in CPU units (1024 = 1 vCPU).
    pub cpu: u32,
    /// The task memory sizes allowed with it.
    pub memory: FargateMemory,
}

/// The valid task `cpu`/`memory` pairs of a Fargate task (Linux).
///
/// Source: AWS, "Amazon ECS task definition parameters for Fargate" → "Task size", and
/// "Troubleshoot Amazon ECS task definition invalid CPU or memory errors"
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html>);
/// the same table is in the ECS API model (`botocore` 1.44.8
/// `ecs/2014-11-13/service-2.json`, documentation of `RegisterTaskDefinitionRequest.memory`).
/// 8 and 16 vCPU need Linux platform version 1.4.0 or later.
pub const FARGATE_TASK_SIZES: &[FargateTaskSize] = &[
    FargateTaskSize {
        cpu: 256,
        memory: FargateMemory::OneOf(&[512, 1024, 2048]),
    },
    FargateTaskSize {
        cpu: 512,
        memory: FargateMemory::OneOf(&[1024, 2048, 3072, 4096]),
    },
    FargateTaskSize {
        cpu: 1024,
        memory: FargateMemory::Range {
            min: 2048,
            max: 8192,
            step: 1024,
        },
    },
    FargateTaskSize {
        cpu: 2048,
        memory: FargateMemory::Range {
            min: 4096,
            max: 16384,
            step: 1024,
        },
    },
    FargateTaskSize {
        cpu: 4096,
        memory: FargateMemory::Range {
            min: 8192,
            max: 30720,
            step: 1024,
        },
    },
    FargateTaskSize {
        cpu: 8192,
        memory: FargateMemory::Range {
            min: 16384,
            max: 61440,
            step: 4096,
        },
    },
    FargateTaskSize {
        cpu: 16384,
        memory: FargateMemory::Range {
            min: 32768,
            max: 122880,
            step: 8192,
        },
    },
];

/// Checks a Fargate task size; the error names `cpu_field` or `memory_field` and lists the
/// allowed values.
pub fn check_fargate_size(
    cpu: u32,
    memory: u32,
    cpu_field: &str,
    memory_field: &str,
) -> Result<(), ProviderError> {
    let Some(size) = FARGATE_TASK_SIZES.iter().find(|s| s.cpu == cpu) else {
        let cpus: Vec<String> = FARGATE_TASK_SIZES
            .iter()
            .map(|s| s.cpu.to_string())
            .collect();
        return Err(ProviderError::invalid(
            cpu_field,
            format!(
                "Fargate has no task size with cpu {cpu}; allowed cpu values: {}",
                cpus.join(", ")
            ),
        ));
    };
    if !size.memory.allows(memory) {
        return Err(ProviderError::invalid(
            memory_field,
            format!(
                "Fargate does not allow memory {memory} MiB with cpu {cpu}; allowed memory with cpu {cpu}: {}",
                size.memory
            ),
        ));
    }
    Ok(())
}

/// Task cpu as CPU units: an integer, a string of one, or `"<n> vCPU"` (converted the way
/// ECS converts it on registration).
pub fn parse_cpu(value: &Value, field: &str) -> Result<u32, ProviderError> {
    parse_units(
        value,
        &["vcpu"],
        field,
        "CPU units (1024) or vCPUs (\"1 vCPU\")",
    )
}

/// Task memory as MiB: an integer, a string of one, or `"<n> GB"`.
pub fn parse_memory(value: &Value, field: &str) -> Result<u32, ProviderError> {
    parse_units(value, &["gb"], field, "MiB (2048) or GB (\"2 GB\")")
}

fn parse_units(
    value: &Value,
    suffixes: &[&str],
    field: &str,
    expected: &str,
) -> Result<u32, ProviderError> {
    let bad = || ProviderError::invalid(field, format!("must be a positive amount in {expected}"));
    let n = match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad)?,
        Value::String(s) => {
            let lower = s.trim().to_ascii_lowercase();
            match suffixes.iter().find_map(|suf| lower.strip_suffix(suf)) {
                Some(amount) => {
                    let amount: f64 = amount.trim().parse().map_err(|_| bad())?;
                    let units = amount * 1024.0;
                    if !(units.is_finite() && units >= 1.0 && units <= f64::from(u32::MAX))
                        || units.fract() != 0.0
                    {
                        return Err(bad());
                    }
                    // In range and integral (checked above).
                    units as u32
                }
                None => lower.parse().map_err(|_| bad())?,
            }
        }
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(n)
}

/// `[A-Za-z0-9_-]{1,255}`: the rule the model states for `family` and container `name`.
pub fn valid_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Null, an empty string, an empty object or list: a placeholder without a value.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A JSON object of the configuration with its dotted path, for errors that name the field.
#[derive(Clone)]
pub struct Obj<'a> {
    /// The object.
    pub map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// The root object (its fields' paths are their keys).
    pub fn root(map: &'a Map<String, Value>) -> Self {
        Self::new(map, "")
    }

    /// The object at dotted `path`.
    pub fn new(map: &'a Map<String, Value>, path: &str) -> Self {
        Self {
            map,
            path: path.to_owned(),
        }
    }

    /// The dotted path of `key` in this object.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, if present and not null.
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Refuses keys pushpool would otherwise drop (null and empty values are ignored).
    pub fn check_keys(&self, allowed: &[&str]) -> Result<(), ProviderError> {
        for (key, value) in self.map {
            if !allowed.contains(&key.as_str()) && !is_empty_value(value) {
                return Err(ProviderError::invalid(
                    self.path_of(key),
                    format!(
                        "not supported by pushpool's ECS provider (supported here: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A non-empty string.
    pub fn str(&self, key: &str) -> Result<Option<String>, ProviderError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ProviderError::invalid(
                self.path_of(key),
                "must be a string",
            )),
        }
    }

    /// A string that must be one of `allowed`.
    pub fn enum_str(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ProviderError> {
        match self.str(key)? {
            Some(s) if !allowed.contains(&s.as_str()) => Err(ProviderError::invalid(
                self.path_of(key),
                format!("{s:?} is not one of {}", allowed.join(", ")),
            )),
            other => Ok(other),
        }
    }

    /// An integer (or a string holding one).
    pub fn i32(&self, key: &str) -> Result<Option<i32>, ProviderError> {
        let bad = || ProviderError::invalid(self.path_of(key), "must be an integer");
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or_else(bad),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ProviderError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ProviderError::invalid(
                self.path_of(key),
                "must be true or false",
            )),
        }
    }

    /// A list of strings.
    pub fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, ProviderError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    ProviderError::invalid(self.path_of(key), "must be a list of strings")
                }),
            Some(_) => Err(ProviderError::invalid(
                self.path_of(key),
                "must be a list of strings",
            )),
        }
    }

    /// A list.
    pub fn list(&self, key: &str) -> Result<Option<&'a Vec<Value>>, ProviderError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(ProviderError::invalid(self.path_of(key), "must be a list")),
        }
    }

    /// An object.
    pub fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, ProviderError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj::new(map, &self.path_of(key)))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(_) => Err(ProviderError::invalid(
                self.path_of(key),
                "must be an object",
            )),
        }
    }

    /// This object as `{name: string}` pairs (null values dropped).
    pub fn string_map(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let mut out = Vec::new();
        for (k, v) in self.map {
            match v {
                Value::Null => {}
                Value::String(s) => out.push((k.clone(), s.clone())),
                Value::Number(_) | Value::Bool(_) => out.push((k.clone(), v.to_string())),
                _ => {
                    return Err(ProviderError::invalid(self.path_of(k), "must be a string"));
                }
            }
        }
        Ok(out)
    }
}
