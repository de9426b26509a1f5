//! The rendered cloud-run-v2 job configuration, read once into what `submit` sends: the
//! `jobs.create` body built the way prefect-gcp 0.6.22's
//! `CloudRunWorkerJobV2Configuration.prepare_for_flow_run` builds it, the job name, the
//! region and the options. Every problem is an [`ProviderError::InvalidConfiguration`]
//! naming the field's dotted path in the job configuration.

use serde_json::{Map, Value, json};

use super::limits;
use pushpool_providers::{Job, ProviderError};

/// The region prefect-gcp's `region` variable defaults to.
pub(super) const DEFAULT_REGION: &str = "us-central1";

/// The image of a job body whose container names none (the template's own `image` default,
/// fully qualified; prefect-gcp uses `docker.io/<its prefect image>` the same way).
pub(super) const DEFAULT_IMAGE: &str = "docker.io/prefecthq/prefect:3-latest";

/// Hex digits of the idempotency key's digest that end every job name.
const HASH_LEN: usize = 10;

/// The most labels a Cloud Run resource takes (prefect-gcp `_GCP_LABEL_MAX_COUNT`).
const MAX_LABELS: usize = 64;

/// The label key of the submission (`pushpool-<flow run id>-<attempt>`).
pub const SUBMISSION_LABEL: &str = "pushpool-submission";

/// Path of the flow's container in the job configuration.
const CONTAINER: &str = "job_body.template.template.containers[0]";

/// What `submit` needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JobSpec {
    /// `region` (default `us-central1`).
    pub region: String,
    /// `project`, when the configuration names one (a custom template); else the
    /// credentials decide.
    pub project: Option<String>,
    /// The job id (`jobs.create?jobId=`).
    pub job_id: String,
    /// `keep_job`.
    pub keep_job: bool,
    /// The `jobs.create` body.
    pub body: Value,
    /// The flow's container image.
    pub image: String,
}

/// A deterministic, valid job id for `name` and `idempotency_key`: the name lowercased with
/// every run of characters other than `a-z0-9` turned into one `-`, leading characters up to
/// the first letter dropped, cut to leave room, then `-` and the first 10 hex digits of the
/// key's SHA-256 (`elegant-caribou-3f9a1c0b2d`). An empty name becomes `prefect`.
pub fn job_id(name: &str, idempotency_key: &str) -> String {
    use sha2::Digest;
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let room = limits::MAX_JOB_NAME_LEN - 1 - HASH_LEN;
    let slug = slug[..slug.len().min(room)].trim_end_matches('-');
    let slug = if slug.is_empty() { "prefect" } else { slug };
    let digest = sha2::Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{slug}-{}", &hex[..HASH_LEN])
}

/// A label key or value as Cloud Run takes it (prefect-gcp `sanitize_labels_for_gcp`):
/// lowercased, characters other than `a-z0-9_-` turned into `-`, at most 63 characters;
/// keys start with a letter (leading characters dropped).
fn sanitize_label(text: &str, key: bool) -> String {
    let mut out: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if key {
        out = out
            .trim_start_matches(|c: char| !c.is_ascii_lowercase())
            .to_owned();
    }
    out.chars().take(63).collect()
}

/// prefect-gcp's `merge_labels_for_gcp`: the sanitized Prefect labels, then the labels the
/// job body already has (they win), at most 64 (the last Prefect labels dropped first).
fn merge_labels(prefect: &[(String, String)], existing: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = Map::new();
    let mut prefect_keys = Vec::new();
    for (k, v) in prefect {
        let key = sanitize_label(k, true);
        if key.is_empty() {
            continue;
        }
        if !merged.contains_key(&key) {
            prefect_keys.push(key.clone());
        }
        merged.insert(key, Value::String(sanitize_label(v, false)));
    }
    for (k, v) in existing {
        merged.insert(k.clone(), v.clone());
    }
    let prefect_only: Vec<&String> = prefect_keys
        .iter()
        .filter(|k| !existing.contains_key(*k))
        .collect();
    let excess = merged.len().saturating_sub(MAX_LABELS);
    for key in prefect_only.iter().rev().take(excess) {
        merged.shift_remove(*key);
    }
    merged
}

fn string_map(value: Option<&Value>, field: &str) -> Result<Map<String, Value>, ProviderError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if !v.is_string() {
                    return Err(ProviderError::invalid(
                        format!("{field}.{k}"),
                        "must be a string",
                    ));
                }
            }
            Ok(map.clone())
        }
        Some(_) => Err(ProviderError::invalid(
            field,
            "must be an object of strings",
        )),
    }
}

/// A `SecretKeySelector` (`{secret, version}`), when set.
fn secret_selector(value: Option<&Value>, field: &str) -> Result<Option<Value>, ProviderError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            for key in ["secret", "version"] {
                if !matches!(map.get(key), Some(Value::String(s)) if !s.is_empty()) {
                    return Err(ProviderError::invalid(
                        format!("{field}.{key}"),
                        "is required (a Secret Manager secret name and version)",
                    ));
                }
            }
            Ok(Some(
                json!({"secret": map["secret"], "version": map["version"]}),
            ))
        }
        Some(_) => Err(ProviderError::invalid(
            field,
            "must be {\"secret\": ..., \"version\": ...}",
        )),
    }
}

/// A command or args value as a list: a list of strings as is, a string split like a POSIX
/// shell (prefect's `command_from_string`, `shlex.split`).
fn argv(value: &Value, field: &str) -> Result<Vec<Value>, ProviderError> {
    match value {
        Value::String(s) => match shlex::split(s) {
            Some(args) => Ok(args.into_iter().map(Value::String).collect()),
            None => Err(ProviderError::invalid(
                field,
                format!("cannot split {s:?} into arguments"),
            )),
        },
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items.clone()),
        _ => Err(ProviderError::invalid(
            field,
            "must be a string or a list of strings",
        )),
    }
}

/// Reads and checks the job's configuration and builds the `jobs.create` body.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming the field.
pub(super) fn parse(job: &Job) -> Result<JobSpec, ProviderError> {
    let cfg = &job.configuration;
    let present = |k: &str| cfg.get(k).filter(|v| !v.is_null());

    let region = match present("region") {
        None => DEFAULT_REGION.to_owned(),
        Some(v) => limits::check_region(v).map_err(|m| ProviderError::invalid("region", m))?,
    };
    let project = match present("project") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ProviderError::invalid("project", "must be a string")),
    };
    let keep_job = match present("keep_job") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ProviderError::invalid("keep_job", "must be true or false")),
    };
    let timeout = match present("timeout") {
        None => None,
        Some(v) => {
            Some(limits::check_timeout(v).map_err(|m| ProviderError::invalid("timeout", m))?)
        }
    };

    let mut body = match present("job_body") {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => {
            return Err(ProviderError::invalid(
                "job_body",
                "must be an object: the Cloud Run job to create",
            ));
        }
    };
    // prefect-gcp `_ensure_job_includes_all_required_components`.
    for (pointer, field) in [
        ("/template", "job_body.template"),
        ("/template/template", "job_body.template.template"),
    ] {
        if !body.pointer(pointer).is_some_and(Value::is_object) {
            return Err(ProviderError::invalid(field, "is required (an object)"));
        }
    }
    let has_container = body
        .pointer("/template/template/containers/0")
        .is_some_and(Value::is_object);
    if !has_container {
        return Err(ProviderError::invalid(
            "job_body.template.template.containers",
            "needs the flow's container (a list of one object)",
        ));
    }

    // Environment (prefect-gcp `_populate_env`).
    let api_key_secret =
        secret_selector(present("prefect_api_key_secret"), "prefect_api_key_secret")?;
    let auth_secret = secret_selector(
        present("prefect_api_auth_string_secret"),
        "prefect_api_auth_string_secret",
    )?;
    let mut from_secrets = Vec::new();
    match present("env_from_secrets") {
        None => {}
        Some(Value::Object(map)) => {
            for (name, selector) in map {
                let field = format!("env_from_secrets.{name}");
                if let Some(sel) = secret_selector(Some(selector), &field)? {
                    from_secrets.push((name.clone(), sel));
                }
            }
        }
        Some(_) => {
            return Err(ProviderError::invalid(
                "env_from_secrets",
                "must be an object of {\"secret\", \"version\"} selectors",
            ));
        }
    }
    let secret_named = |name: &str| from_secrets.iter().any(|(n, _)| n == name);
    let skip_api_key = api_key_secret.is_some() || secret_named("PREFECT_API_KEY");
    let skip_auth = auth_secret.is_some() || secret_named("PREFECT_API_AUTH_STRING");
    let mut env: Vec<Value> = match body.pointer("/template/template/containers/0/env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(ProviderError::invalid(
                format!("{CONTAINER}.env"),
                "must be a list of {\"name\", \"value\"}",
            ));
        }
    };
    for (name, value) in job.env() {
        if (name == "PREFECT_API_KEY" && skip_api_key)
            || (name == "PREFECT_API_AUTH_STRING" && skip_auth)
        {
            continue;
        }
        env.push(json!({"name": name, "value": value}));
    }
    for (name, selector) in &from_secrets {
        env.push(json!({"name": name, "valueSource": {"secretKeyRef": selector}}));
    }
    if let Some(sel) = api_key_secret {
        env.push(json!({"name": "PREFECT_API_KEY", "valueSource": {"secretKeyRef": sel}}));
    }
    if let Some(sel) = auth_secret {
        env.push(json!({"name": "PREFECT_API_AUTH_STRING", "valueSource": {"secretKeyRef": sel}}));
    }

    // Labels (prefect-gcp `_populate_labels`), plus the submission.
    let mut prefect_labels: Vec<(String, String)> = string_map(present("labels"), "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect();
    prefect_labels.push((SUBMISSION_LABEL.to_owned(), job.idempotency_key.clone()));
    let job_labels = string_map(body.get("labels"), "job_body.labels")?;
    let exec_labels = string_map(body.pointer("/template/labels"), "job_body.template.labels")?;
    body["labels"] = Value::Object(merge_labels(&prefect_labels, &job_labels));
    body["template"]["labels"] = Value::Object(merge_labels(&prefect_labels, &exec_labels));

    // Cloud SQL (prefect-gcp `_configure_cloudsql_volumes`).
    let cloudsql = match present("cloudsql_instances") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(_) => {
            return Err(ProviderError::invalid(
                "cloudsql_instances",
                "must be a list of connection names (project:region:instance)",
            ));
        }
    };

    let task = &mut body["template"]["template"];
    if !cloudsql.is_empty() {
        if !task.get("volumes").is_some_and(Value::is_array) {
            task["volumes"] = json!([]);
        }
        if let Some(volumes) = task["volumes"].as_array_mut() {
            volumes.push(json!({"name": "cloudsql", "cloudSqlInstance": {"instances": cloudsql}}));
        }
    }
    // Timeout (prefect-gcp `_populate_timeout`): the configuration's `timeout`, in seconds.
    if let Some(seconds) = timeout {
        task["timeout"] = Value::String(format!("{seconds}s"));
    } else if let Some(v) = task
        .get("timeout")
        .filter(|v| !v.is_string() && !v.is_null())
    {
        let seconds = limits::check_timeout(v)
            .map_err(|m| ProviderError::invalid("job_body.template.template.timeout", m))?;
        task["timeout"] = Value::String(format!("{seconds}s"));
    }
    if let Some(v) = task.get("maxRetries").filter(|v| !v.is_null()) {
        let n = limits::check_max_retries(v)
            .map_err(|m| ProviderError::invalid("job_body.template.template.maxRetries", m))?;
        task["maxRetries"] = json!(n);
    }
    // prefect-gcp `_remove_vpc_access_if_unset`.
    let unset_vpc = match task.get("vpcAccess") {
        Some(Value::Object(v)) => {
            v.is_empty() || (v.len() == 1 && v.get("connector").is_some_and(Value::is_null))
        }
        Some(Value::Null) => true,
        _ => false,
    };
    if unset_vpc {
        if let Some(t) = task.as_object_mut() {
            t.remove("vpcAccess");
        }
    }

    let container = &mut task["containers"][0];
    container["env"] = Value::Array(env);
    if !cloudsql.is_empty() {
        if !container.get("volumeMounts").is_some_and(Value::is_array) {
            container["volumeMounts"] = json!([]);
        }
        if let Some(mounts) = container["volumeMounts"].as_array_mut() {
            mounts.push(json!({"name": "cloudsql", "mountPath": "/cloudsql"}));
        }
    }
    // Command and args (prefect-gcp `_populate_or_format_command`, `_format_args_if_present`).
    let command = match container.get("command").filter(|v| !v.is_null()) {
        Some(v) => argv(v, &format!("{CONTAINER}.command"))?,
        None => job.command_args()?.into_iter().map(Value::String).collect(),
    };
    container["command"] = Value::Array(command);
    if let Some(v) = container.get("args").filter(|v| !v.is_null()) {
        let args = argv(v, &format!("{CONTAINER}.args"))?;
        container["args"] = Value::Array(args);
    }
    // Image (prefect-gcp `_populate_image_if_not_present`).
    let image = match container.get("image") {
        None | Some(Value::Null) => DEFAULT_IMAGE.to_owned(),
        Some(Value::String(s)) if s.trim().is_empty() => DEFAULT_IMAGE.to_owned(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => {
            return Err(ProviderError::invalid(
                format!("{CONTAINER}.image"),
                "must be an image reference (a string)",
            ));
        }
    };
    container["image"] = Value::String(image.clone());
    // Resources: Cloud Run's limits, checked before the call.
    if let Some(limits_value) = container.pointer_mut("/resources/limits") {
        let field = format!("{CONTAINER}.resources.limits");
        let Some(map) = limits_value.as_object_mut() else {
            return Err(ProviderError::invalid(field, "must be an object"));
        };
        let mut cpu = None;
        if let Some(v) = map.get("cpu").filter(|v| !v.is_null()).cloned() {
            cpu = Some(
                limits::parse_cpu(&v)
                    .map_err(|m| ProviderError::invalid(format!("{field}.cpu"), m))?,
            );
            if let Value::Number(n) = v {
                map.insert("cpu".into(), Value::String(n.to_string()));
            }
        }
        if let Some(v) = map.get("memory").filter(|v| !v.is_null()) {
            let bytes = limits::parse_memory(v)
                .map_err(|m| ProviderError::invalid(format!("{field}.memory"), m))?;
            if let Some(cpu) = cpu {
                limits::check_pairing(cpu, bytes, v.as_str().unwrap_or_default())
                    .map_err(|m| ProviderError::invalid(format!("{field}.memory"), m))?;
            }
        }
    }

    let name = job
        .str_field("name")
        .unwrap_or(job.flow_run_name.as_str())
        .to_owned();
    Ok(JobSpec {
        region,
        project,
        job_id: job_id(&name, &job.idempotency_key),
        keep_job,
        body,
        image,
    })
}

/// The parts of an execution's full name
/// (`projects/<p>/locations/<l>/jobs/<job>/executions/<execution>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExecutionName {
    pub project: String,
    pub region: String,
    pub job: String,
    pub execution: String,
}

impl ExecutionName {
    /// Parses an infrastructure pid.
    pub fn parse(pid: &str) -> Option<Self> {
        let parts: Vec<&str> = pid.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "locations", l, "jobs", j, "executions", e]
                if [p, l, j, e].iter().all(|s| !s.is_empty()) =>
            {
                Some(Self {
                    project: (*p).to_owned(),
                    region: (*l).to_owned(),
                    job: (*j).to_owned(),
                    execution: (*e).to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The path segments of the execution.
    pub fn segments(&self) -> [&str; 8] {
        [
            "projects",
            &self.project,
            "locations",
            &self.region,
            "jobs",
            &self.job,
            "executions",
            &self.execution,
        ]
    }

    /// The path segments of its job.
    pub fn job_segments(&self) -> [&str; 6] {
        [
            "projects",
            &self.project,
            "locations",
            &self.region,
            "jobs",
            &self.job,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_valid_and_deterministic() {
        let key = "pushpool-1b9d3c1e-8a5e-4f2e-9c51-0c6f8a1d2e3f-1";
        let id = job_id("elegant-caribou", key);
        assert_eq!(id, job_id("elegant-caribou", key));
        assert!(id.starts_with("elegant-caribou-"), "{id}");
        assert_eq!(id.len(), "elegant-caribou-".len() + HASH_LEN);
        assert_ne!(id, job_id("elegant-caribou", "pushpool-x-2"));
        for name in [
            "",
            "123",
            "Ünïcode Flow__Run!!",
            "-lead",
            &"x".repeat(200),
            "a-",
            "9lives-cat",
        ] {
            let id = job_id(name, key);
            assert!(limits::valid_job_name(&id), "{name:?} → {id}");
        }
        assert!(job_id("", key).starts_with("prefect-"));
        assert!(job_id("9lives-cat", key).starts_with("lives-cat-"));
        assert!(job_id("Ünïcode Flow__Run!!", key).starts_with("n-code-flow-run-"));
    }

    #[test]
    fn labels_follow_prefect_gcp() {
        let prefect = vec![
            ("prefect.io/flow-run-id".to_owned(), "1B9D".to_owned()),
            ("team".to_owned(), "Data Eng".to_owned()),
            ("123".to_owned(), "dropped".to_owned()),
        ];
        let existing = json!({"team": "platform"}).as_object().cloned().unwrap();
        assert_eq!(
            Value::Object(merge_labels(&prefect, &existing)),
            json!({"prefect-io-flow-run-id": "1b9d", "team": "platform"})
        );
    }

    #[test]
    fn execution_names() {
        let n = ExecutionName::parse("projects/p/locations/us-central1/jobs/j/executions/j-abc12")
            .unwrap();
        assert_eq!(n.job, "j");
        assert_eq!(n.execution, "j-abc12");
        assert_eq!(ExecutionName::parse("projects/p/locations/l/jobs/j"), None);
        assert_eq!(ExecutionName::parse("arn:aws:ecs:x"), None);
    }
}
