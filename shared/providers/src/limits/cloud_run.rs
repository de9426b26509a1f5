//! Cloud Run job limits as data, each with its source, and the checks built on them. The
//! same checks run on job variables ([`check_variables`], for
//! [`Provider::check_job_variables`](crate::Provider::check_job_variables): the field is the
//! variable's name) and on the rendered job configuration in `submit` (the field is the
//! dotted path in the job configuration).
//!
//! Sources:
//! - `run.v2.json` (Cloud Run Admin API v2 discovery document, revision 20261031),
//!   `GoogleCloudRunV2ResourceRequirements.limits`: "The only supported values for CPU are
//!   '1', '2', '4', and '8'. Setting 4 CPU requires at least 2Gi of memory."
//! - Cloud Run docs, "Configure CPU limits for jobs" (`/run/docs/configuring/jobs/cpu`):
//!   "You must set a minimum of 1 CPU for a Cloud Run job", and the vCPU/memory table
//!   (1 vCPU: 512 MiB to 4 GiB; 2: 512 MiB to 8 GiB; 4: 2 to 16 GiB; 6: 4 to 24 GiB; 8: 4 to
//!   32 GiB). Fractional vCPU needs request-based billing, which jobs do not have.
//! - Cloud Run docs, "Configure memory limits for jobs" (`/run/docs/configuring/jobs/memory-limits`):
//!   minimum 512 MiB, maximum 32 GiB (`32Gi`); sizes are a number followed by `G`/`M`
//!   (10⁹/10⁶ bytes) or `Gi`/`Mi` (2³⁰/2²⁰ bytes), the template's own pattern
//!   `^\d+(?:G|Gi|M|Mi)$` (prefect-gcp 0.6.22 `CloudRunWorkerV2Variables.memory`).
//! - Cloud Run docs, "Set task timeout for jobs" (`/run/docs/configuring/task-timeout`): up to
//!   168 hours (7 days); prefect-gcp's `timeout` variable: `gt=0, le=604800` seconds.
//! - Cloud Run docs, "Set maximum retries for jobs" (`/run/docs/configuring/max-retries`): an
//!   integer from 0 to 10.
//! - Job names: RFC 1035 labels as Cloud Run states for its resources ("must use only
//!   [lowercase] letters, numbers and '-'. Must begin with a letter and cannot end with a '-'.
//!   Maximum length is 63 characters."), and `run.v2.json` `GoogleCloudRunV2Job.runExecutionToken`
//!   ("The sum of job name and token length must be fewer than 63 characters").
//! - Regions: Google Cloud region names (`us-central1`, `europe-west4`,
//!   `northamerica-northeast1`): lowercase words joined by `-`, ending in a number.

use serde_json::{Map, Value};

use crate::ProviderError;

/// The vCPU counts a Cloud Run job accepts (whole vCPUs only; see the module sources).
pub const CPU_VALUES: &[u32] = &[1, 2, 4, 6, 8];

/// One MiB in bytes.
const MIB: u64 = 1 << 20;

/// The memory range (bytes, inclusive) each vCPU count accepts: `(vcpu, min, max)`.
pub const MEMORY_FOR_CPU: &[(u32, u64, u64)] = &[
    (1, 512 * MIB, 4096 * MIB),
    (2, 512 * MIB, 8192 * MIB),
    (4, 2048 * MIB, 16384 * MIB),
    (6, 4096 * MIB, 24576 * MIB),
    (8, 4096 * MIB, 32768 * MIB),
];

/// The smallest memory limit of a job: 512 MiB (in bytes).
pub const MIN_MEMORY_BYTES: u64 = 512 * MIB;

/// The largest memory limit of a job: 32 GiB (in bytes).
pub const MAX_MEMORY_BYTES: u64 = 32768 * MIB;

/// The longest task timeout, in seconds (168 hours).
pub const MAX_TIMEOUT_SECONDS: i64 = 604_800;

/// The most retries per failed task.
pub const MAX_RETRIES: i64 = 10;

/// The longest job name (and job name plus execution token).
pub const MAX_JOB_NAME_LEN: usize = 63;

/// A parsed `cpu` value: whole vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vcpu(pub u32);

/// Parses a Cloud Run cpu quantity: `"2"`, `"2.0"`, `"2000m"` (millicpu), or a JSON number.
///
/// # Errors
/// A message saying what is wrong (the caller names the field).
pub fn parse_cpu(value: &Value) -> Result<Vcpu, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err("must be a string such as \"1\", \"2\" or \"2000m\"".into()),
    };
    let millis: Option<u64> = if let Some(m) = text.strip_suffix('m') {
        m.parse::<u64>().ok()
    } else if let Ok(whole) = text.parse::<u64>() {
        whole.checked_mul(1000)
    } else {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| (f * 1000.0).round() as u64)
    };
    let Some(millis) = millis else {
        return Err(format!(
            "{text:?} is not a cpu quantity (use whole vCPUs: {})",
            cpu_list()
        ));
    };
    let allowed = if millis % 1000 == 0 {
        u32::try_from(millis / 1000)
            .ok()
            .filter(|v| CPU_VALUES.contains(v))
    } else {
        None
    };
    allowed.map(Vcpu).ok_or_else(|| {
        format!(
            "{text:?} is not a vCPU count Cloud Run jobs accept: use one of {} (or the same in millicpu, e.g. \"1000m\")",
            cpu_list()
        )
    })
}

fn cpu_list() -> String {
    CPU_VALUES
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a memory size `<digits><G|Gi|M|Mi>` into bytes and checks 512 MiB..=32 GiB.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_memory(value: &Value) -> Result<u64, String> {
    let Value::String(text) = value else {
        return Err("must be a string such as \"512Mi\" or \"2Gi\"".into());
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let factor: u64 = match unit {
        "Gi" => 1 << 30,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "M" => 1_000_000,
        _ => 0,
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .filter(|_| factor > 0)
        .and_then(|n| n.checked_mul(factor));
    let Some(bytes) = bytes else {
        return Err(format!(
            "{text:?} is not a memory size: use a whole number followed by Mi, Gi, M or G (e.g. \"512Mi\")"
        ));
    };
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(format!(
            "{text:?} is outside what Cloud Run jobs accept: 512Mi to 32Gi"
        ));
    }
    Ok(bytes)
}

/// Checks that `memory` (bytes) fits `cpu`, per the vCPU/memory table.
///
/// # Errors
/// A message naming both values.
pub fn check_pairing(cpu: Vcpu, memory: u64, memory_text: &str) -> Result<(), String> {
    let Some((_, min, max)) = MEMORY_FOR_CPU.iter().find(|(v, _, _)| *v == cpu.0) else {
        return Ok(());
    };
    if (*min..=*max).contains(&memory) {
        return Ok(());
    }
    Err(format!(
        "{memory_text:?} does not fit {} vCPU: Cloud Run jobs with {} vCPU need {} to {} of memory",
        cpu.0,
        cpu.0,
        human(*min),
        human(*max)
    ))
}

fn human(bytes: u64) -> String {
    if bytes % (1 << 30) == 0 {
        format!("{}Gi", bytes >> 30)
    } else {
        format!("{}Mi", bytes >> 20)
    }
}

/// Checks a timeout in seconds: an integer in 1..=604800.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_timeout(value: &Value) -> Result<i64, String> {
    let seconds = integer(value).ok_or("must be a whole number of seconds")?;
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
        return Err(format!(
            "{seconds} s is outside what Cloud Run jobs accept: 1 to {MAX_TIMEOUT_SECONDS} seconds (7 days)"
        ));
    }
    Ok(seconds)
}

/// Checks a retry count: an integer in 0..=10.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_max_retries(value: &Value) -> Result<i64, String> {
    let n = integer(value).ok_or("must be a whole number")?;
    if !(0..=MAX_RETRIES).contains(&n) {
        return Err(format!(
            "{n} is outside what Cloud Run jobs accept: 0 to {MAX_RETRIES} retries"
        ));
    }
    Ok(n)
}

/// Checks a region's shape (`us-central1`).
///
/// # Errors
/// A message saying what is wrong.
pub fn check_region(value: &Value) -> Result<String, String> {
    let Value::String(region) = value else {
        return Err("must be a string such as \"us-central1\"".into());
    };
    let words: Vec<&str> = region.split('-').collect();
    let well_formed = words.len() >= 2
        && words.iter().all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && words[..words.len() - 1]
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        && words[words.len() - 1]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && words[words.len() - 1]
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(format!(
            "{region:?} is not a Google Cloud region name (e.g. \"us-central1\", \"europe-west4\")"
        ));
    }
    Ok(region.clone())
}

/// Whether `name` is a valid Cloud Run job name (RFC 1035 label, at most 63 characters).
pub fn valid_job_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_JOB_NAME_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// An integer from a JSON number or a string holding one.
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The checks of [`Provider::check_job_variables`](crate::Provider::check_job_variables):
/// `cpu`, `memory` (and their pairing), `timeout`, `max_retries` and `region` of the
/// cloud-run-v2 template's variables. Null values and unknown variables pass.
///
/// # Errors
/// [`ProviderError::InvalidConfiguration`] whose field is the variable's name.
pub fn check_variables(variables: &Map<String, Value>) -> Result<(), ProviderError> {
    let get = |k: &str| variables.get(k).filter(|v| !v.is_null());
    let cpu = match get("cpu") {
        Some(v) => Some(parse_cpu(v).map_err(|m| ProviderError::invalid("cpu", m))?),
        None => None,
    };
    if let Some(v) = get("memory") {
        let bytes = parse_memory(v).map_err(|m| ProviderError::invalid("memory", m))?;
        if let Some(cpu) = cpu {
            check_pairing(cpu, bytes, v.as_str().unwrap_or_default())
                .map_err(|m| ProviderError::invalid("memory", m))?;
        }
    }
    if let Some(v) = get("timeout") {
        check_timeout(v).map_err(|m| ProviderError::invalid("timeout", m))?;
    }
    if let Some(v) = get("max_retries") {
        check_max_retries(v).map_err(|m| ProviderError::invalid("max_retries", m))?;
    }
    if let Some(v) = get("region") {
        check_region(v).map_err(|m| ProviderError::invalid("region", m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cpu_values() {
        assert_eq!(parse_cpu(&json!("1000m")), Ok(Vcpu(1)));
        assert_eq!(parse_cpu(&json!("2")), Ok(Vcpu(2)));
        assert_eq!(parse_cpu(&json!(4)), Ok(Vcpu(4)));
        assert_eq!(parse_cpu(&json!("6.0")), Ok(Vcpu(6)));
        assert_eq!(parse_cpu(&json!("8000m")), Ok(Vcpu(8)));
        assert_eq!(
            parse_cpu(&json!("500m")),
            Err("\"500m\" is not a vCPU count Cloud Run jobs accept: use one of 1, 2, 4, 6, 8 (or the same in millicpu, e.g. \"1000m\")".into())
        );
        assert!(parse_cpu(&json!("3")).is_err());
        assert!(parse_cpu(&json!("lots")).is_err());
        assert!(parse_cpu(&json!(true)).is_err());
    }

    #[test]
    fn memory_values() {
        assert_eq!(parse_memory(&json!("512Mi")), Ok(512 * MIB));
        assert_eq!(parse_memory(&json!("2Gi")), Ok(2048 * MIB));
        assert_eq!(parse_memory(&json!("4G")), Ok(4_000_000_000));
        assert_eq!(
            parse_memory(&json!("256Mi")),
            Err("\"256Mi\" is outside what Cloud Run jobs accept: 512Mi to 32Gi".into())
        );
        assert!(parse_memory(&json!("64Gi")).is_err());
        assert!(parse_memory(&json!("1.5Gi")).is_err());
        assert!(parse_memory(&json!("512")).is_err());
        assert!(parse_memory(&json!(512)).is_err());
    }

    #[test]
    fn pairing_follows_the_table() {
        assert!(check_pairing(Vcpu(1), 4096 * MIB, "4Gi").is_ok());
        assert_eq!(
            check_pairing(Vcpu(1), 8192 * MIB, "8Gi"),
            Err("\"8Gi\" does not fit 1 vCPU: Cloud Run jobs with 1 vCPU need 512Mi to 4Gi of memory".into())
        );
        assert!(check_pairing(Vcpu(4), 1024 * MIB, "1Gi").is_err());
        assert!(check_pairing(Vcpu(8), 32768 * MIB, "32Gi").is_ok());
    }

    #[test]
    fn timeouts_retries_regions_names() {
        assert_eq!(check_timeout(&json!(600)), Ok(600));
        assert!(check_timeout(&json!(0)).is_err());
        assert!(check_timeout(&json!(604_801)).is_err());
        assert_eq!(check_max_retries(&json!("3")), Ok(3));
        assert!(check_max_retries(&json!(11)).is_err());
        assert!(check_max_retries(&json!(-1)).is_err());
        for ok in [
            "us-central1",
            "europe-west4",
            "northamerica-northeast1",
            "me-central2",
        ] {
            assert!(check_region(&json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "us_central1",
            "US-central1",
            "central1",
            "us-central",
            "us--central1",
            "",
        ] {
            assert!(check_region(&json!(bad)).is_err(), "{bad}");
        }
        assert!(valid_job_name("a"));
        assert!(valid_job_name("flow-run-1a2b"));
        assert!(!valid_job_name("1flow"));
        assert!(!valid_job_name("flow-"));
        assert!(!valid_job_name("Flow"));
        assert!(!valid_job_name(&"a".repeat(64)));
    }

    #[test]
    fn variables_are_named() {
        let vars = |v: Value| v.as_object().cloned().unwrap();
        assert!(
            check_variables(&vars(
                json!({"cpu": "1000m", "memory": "512Mi", "timeout": 600,
            "max_retries": 0, "region": "us-central1", "unknown": {"x": 1}, "image": null})
            ))
            .is_ok()
        );
        for (v, field) in [
            (json!({"cpu": "500m"}), "cpu"),
            (json!({"memory": "100Mi"}), "memory"),
            (json!({"cpu": "4", "memory": "1Gi"}), "memory"),
            (json!({"timeout": 700000}), "timeout"),
            (json!({"max_retries": 20}), "max_retries"),
            (json!({"region": "moon"}), "region"),
        ] {
            match check_variables(&vars(v)) {
                Err(ProviderError::InvalidConfiguration { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
