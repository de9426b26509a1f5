//! The documented limits a job configuration is checked against before anything reaches
//! Azure, as data with their sources, and the checks that use them. Each check names the
//! field it was given (a job variable in `check_job_variables`, a dotted path of the job
//! configuration in `submit`).

use serde_json::{Map, Value};

use crate::ProviderError;

/// A closed range of a number (vCPU or GB) with its unit and source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberLimit {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// Unit of both bounds (`vCPU`, `GB`).
    pub unit: &'static str,
    /// Where the bounds come from.
    pub source: &'static str,
}

/// The length and character rules of an ARM resource name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameLimit {
    /// Shortest name.
    pub min_len: usize,
    /// Longest name (in characters).
    pub max_len: usize,
    /// The rule in words (used in error messages).
    pub rule: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
}

/// CPU request of the flow's container (vCPU): at most 4 for a standard Linux container
/// group in every region, inside or outside a virtual network. The minimum is pushpool's
/// floor (ACI documents no per-container minimum; its 2019 container-groups page asks for at
/// least 1 vCPU and 1 GB per group, which ARM enforces itself where it applies).
pub const CPU: NumberLimit = NumberLimit {
    min: 0.1,
    max: 4.0,
    unit: "vCPU",
    source: "Azure docs, Resource availability & quota limits for ACI \
             (articles/container-instances/container-instances-resource-and-quota-limits.md), \
             Standard Container Resources, Linux Container Groups: Max CPU 4",
};

/// Memory request of the flow's container (GB, ACI's `memoryInGB`): at most 16 for a
/// standard Linux container group; the minimum is pushpool's floor, as for [`CPU`].
pub const MEMORY_GB: NumberLimit = NumberLimit {
    min: 0.1,
    max: 16.0,
    unit: "GB",
    source: "Azure docs, Resource availability & quota limits for ACI \
             (articles/container-instances/container-instances-resource-and-quota-limits.md), \
             Standard Container Resources, Linux Container Groups: Max Memory (GB) 16",
};

/// The GPU SKUs a container may request (`resources.requests.gpu.sku`): the `GpuSku` enum of
/// the Container Instances API 2023-05-01 (`specs/azure/aci_models_from_python_sdk_2023-05-01.json`).
pub const GPU_SKUS: &[&str] = &["K80", "P100", "V100"];

/// The GPU counts a container may request (`resources.requests.gpu.count`).
pub const GPU_COUNTS: &[i64] = &[1, 2, 4];

/// Where [`GPU_COUNTS`] comes from.
pub const GPU_COUNTS_SOURCE: &str = "Azure docs, Deploy container instances that use GPU \
     resources (articles/container-instances/container-instances-gpu.md), Preview limitations: \
     \"Count - The number of GPUs: 1, 2, or 4\"";

/// Checks the `gpu_count` and `gpu_sku` job variables together: both or neither, a count of
/// [`GPU_COUNTS`] and a SKU of [`GPU_SKUS`]. Returns the GPU request (`count`, `sku`), if any.
/// A count of 0 or `null` is no GPU.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming `gpu_count` or `gpu_sku`.
pub fn check_gpu(
    count: Option<&serde_json::Value>,
    sku: Option<&serde_json::Value>,
) -> Result<Option<(i64, String)>, ProviderError> {
    use serde_json::Value;
    let count = match count {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(0) => None,
            Some(n) if GPU_COUNTS.contains(&n) => Some(n),
            _ => {
                return Err(ProviderError::invalid(
                    "gpu_count",
                    format!("{v} is not a GPU count ACI accepts: 1, 2 or 4 ({GPU_COUNTS_SOURCE})"),
                ));
            }
        },
    };
    let sku = match sku {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if GPU_SKUS.contains(&s.as_str()) => Some(s.clone()),
        Some(v) => {
            return Err(ProviderError::invalid(
                "gpu_sku",
                format!(
                    "{v} is not a GPU SKU of the Container Instances API 2023-05-01: one of {}",
                    GPU_SKUS.join(", ")
                ),
            ));
        }
    };
    match (count, sku) {
        (None, None) => Ok(None),
        (Some(count), Some(sku)) => Ok(Some((count, sku))),
        (Some(_), None) => Err(ProviderError::invalid(
            "gpu_sku",
            format!(
                "gpu_count asks for GPUs but gpu_sku names none: set gpu_sku to one of {}",
                GPU_SKUS.join(", ")
            ),
        )),
        (None, Some(_)) => Err(ProviderError::invalid(
            "gpu_count",
            "gpu_sku is set but gpu_count is not: set gpu_count to 1, 2 or 4, or remove gpu_sku",
        )),
    }
}

/// `Microsoft.ContainerInstance/containerGroups` names.
pub const CONTAINER_GROUP_NAME: NameLimit = NameLimit {
    min_len: 1,
    max_len: 63,
    rule: "lowercase letters, numbers and hyphens; cannot start or end with a hyphen; no consecutive hyphens",
    source: "Azure docs, Naming rules and restrictions for Azure resources \
             (articles/azure-resource-manager/management/resource-name-rules.md), Microsoft.ContainerInstance",
};

/// `Microsoft.Resources/resourcegroups` names.
pub const RESOURCE_GROUP_NAME: NameLimit = NameLimit {
    min_len: 1,
    max_len: 90,
    rule: "letters, digits, underscores, parentheses, hyphens and periods; cannot end with a period",
    source: "Azure docs, Naming rules and restrictions for Azure resources \
             (articles/azure-resource-manager/management/resource-name-rules.md), Microsoft.Resources",
};

/// Checks a number against `limit`; `field` names it in the error.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] when it is not finite or outside the range.
pub fn check_number(field: &str, value: f64, limit: &NumberLimit) -> Result<f64, ProviderError> {
    if !value.is_finite() || value < limit.min || value > limit.max {
        return Err(ProviderError::invalid(
            field,
            format!(
                "{value} {unit} is outside {min}–{max} {unit} ({source})",
                unit = limit.unit,
                min = limit.min,
                max = limit.max,
                source = limit.source
            ),
        ));
    }
    Ok(value)
}

fn check_len(field: &str, name: &str, limit: &NameLimit) -> Result<(), ProviderError> {
    let len = name.chars().count();
    if len < limit.min_len || len > limit.max_len {
        return Err(ProviderError::invalid(
            field,
            format!(
                "{name:?} has {len} characters, not {}–{} ({})",
                limit.min_len, limit.max_len, limit.source
            ),
        ));
    }
    Ok(())
}

/// Checks a container group name ([`CONTAINER_GROUP_NAME`]).
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming `field`.
pub fn check_container_group_name(field: &str, name: &str) -> Result<(), ProviderError> {
    check_len(field, name, &CONTAINER_GROUP_NAME)?;
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !allowed || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(ProviderError::invalid(
            field,
            format!(
                "{name:?} breaks the container group name rule: {} ({})",
                CONTAINER_GROUP_NAME.rule, CONTAINER_GROUP_NAME.source
            ),
        ));
    }
    Ok(())
}

/// Checks a resource group name ([`RESOURCE_GROUP_NAME`]; "letters and digits" are Unicode
/// ones, as the Resource Groups REST API's pattern `^[-\w\._\(\)]+$` allows).
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming `field`.
pub fn check_resource_group_name(field: &str, name: &str) -> Result<(), ProviderError> {
    check_len(field, name, &RESOURCE_GROUP_NAME)?;
    let allowed = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.'));
    if !allowed || name.ends_with('.') {
        return Err(ProviderError::invalid(
            field,
            format!(
                "{name:?} breaks the resource group name rule: {} ({})",
                RESOURCE_GROUP_NAME.rule, RESOURCE_GROUP_NAME.source
            ),
        ));
    }
    Ok(())
}

/// Checks that a subscription id is a GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex), as
/// every ARM URL's `{subscriptionId}` is. The value itself is not repeated in the error
/// (Prefect's template marks it `writeOnly`).
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming `field`.
pub fn check_subscription_id(field: &str, id: &str) -> Result<(), ProviderError> {
    let groups: Vec<&str> = id.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(ProviderError::invalid(
            field,
            "an Azure subscription id is a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        ));
    }
    Ok(())
}

/// A number (or a numeric string, as a hand-written template may render one).
pub fn number(field: &str, value: &Value) -> Result<f64, ProviderError> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ProviderError::invalid(field, "must be a number")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ProviderError::invalid(field, format!("{s:?} is not a number"))),
        _ => Err(ProviderError::invalid(field, "must be a number")),
    }
}

/// Checks the job variables that have documented limits (`cpu`, `memory`, `gpu_count` with
/// `gpu_sku`, `subscription_id`, `resource_group_name`); absent and `null` ones are not
/// checked.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] naming the variable.
pub fn check_variables(variables: &Map<String, Value>) -> Result<(), ProviderError> {
    for (key, limit) in [("cpu", &CPU), ("memory", &MEMORY_GB)] {
        if let Some(v) = variables.get(key).filter(|v| !v.is_null()) {
            check_number(key, number(key, v)?, limit)?;
        }
    }
    check_gpu(variables.get("gpu_count"), variables.get("gpu_sku"))?;
    match variables.get("subscription_id") {
        Some(Value::String(s)) if !s.is_empty() => check_subscription_id("subscription_id", s)?,
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => {
            return Err(ProviderError::invalid(
                "subscription_id",
                "must be a string",
            ));
        }
    }
    match variables.get("resource_group_name") {
        Some(Value::String(s)) if !s.is_empty() => {
            check_resource_group_name("resource_group_name", s)?
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => {
            return Err(ProviderError::invalid(
                "resource_group_name",
                "must be a string",
            ));
        }
    }
    Ok(())
}

/// The variables of the `azure-container-instance:push` template that steer prefect-azure's
/// worker process, which pushpool does not run: reported when set to anything but the
/// template's default (`stream_output` true, `task_start_timeout_seconds` other than 240,
/// `task_watch_poll_interval` other than 5).
pub fn ignored_variables(variables: &Map<String, Value>) -> Vec<crate::IgnoredVariables> {
    let mut ignored = Vec::new();
    if variables.get("stream_output") == Some(&Value::Bool(true)) {
        ignored.push(crate::IgnoredVariables {
            names: vec!["stream_output".to_owned()],
            reason: "pushpool runs no worker to stream the container's output: read it in ACI \
                     (az container logs) or in the flow run's Prefect logs"
                .to_owned(),
        });
    }
    let differs = |key: &str, default: f64| {
        variables
            .get(key)
            .and_then(Value::as_f64)
            .is_some_and(|v| (v - default).abs() > f64::EPSILON)
    };
    let mut watch = Vec::new();
    if differs("task_start_timeout_seconds", 240.0) {
        watch.push("task_start_timeout_seconds".to_owned());
    }
    if differs("task_watch_poll_interval", 5.0) {
        watch.push("task_watch_poll_interval".to_owned());
    }
    if !watch.is_empty() {
        ignored.push(crate::IgnoredVariables {
            names: watch,
            reason: "pushpool waits for the container group's creation for a fixed bound and then \
                     follows it with its reconciler, not with a worker's polling"
                .to_owned(),
        });
    }
    ignored
}
#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ProviderError) -> String {
        match err {
            ProviderError::InvalidConfiguration { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(check_number("cpu", 1.0, &CPU).unwrap(), 1.0);
        assert_eq!(check_number("cpu", 4.0, &CPU).unwrap(), 4.0);
        let err = check_number("cpu", 8.0, &CPU).unwrap_err();
        assert!(err.to_string().starts_with(
            "invalid job configuration: cpu: 8 vCPU is outside 0.1–4 vCPU (Azure docs"
        ));
        assert_eq!(
            field_of(check_number("memory", 0.0, &MEMORY_GB).unwrap_err()),
            "memory"
        );
        assert!(check_number("memory", f64::NAN, &MEMORY_GB).is_err());
        assert!(check_number("memory", 16.0, &MEMORY_GB).is_ok());
    }

    #[test]
    fn container_group_names() {
        for ok in ["a", "elegant-caribou-1a2b3c4d", &"a".repeat(63)] {
            check_container_group_name("name", ok).unwrap();
        }
        for bad in ["", "-a", "a-", "a--b", "Abc", "a_b", &"a".repeat(64)] {
            assert_eq!(
                field_of(check_container_group_name("name", bad).unwrap_err()),
                "name"
            );
        }
    }

    #[test]
    fn resource_group_names() {
        for ok in ["rg", "my_rg.(prod)-1", "grüppe", &"r".repeat(90)] {
            check_resource_group_name("resource_group_name", ok).unwrap();
        }
        for bad in ["", "rg.", "a/b", "a b", "a#b", &"r".repeat(91)] {
            assert!(
                check_resource_group_name("resource_group_name", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn subscription_ids() {
        check_subscription_id("subscription_id", "00000000-0000-0000-0000-000000000000").unwrap();
        check_subscription_id("subscription_id", "9A0E2b4c-1d2e-4f50-8a9b-0c1d2e3f4a5b").unwrap();
        for bad in [
            "",
            "sub",
            "00000000-0000-0000-0000-00000000000g",
            "00000000000000000000000000000000",
        ] {
            let err = check_subscription_id("subscription_id", bad).unwrap_err();
            // The value is not repeated: the template marks it writeOnly.
            assert_eq!(
                err.to_string(),
                "invalid job configuration: subscription_id: an Azure subscription id is a GUID \
                 (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            );
        }
    }
}
