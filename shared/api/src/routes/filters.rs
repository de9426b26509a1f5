//! Helpers for Prefect's filter bodies (`{"flow_runs": {"id": {"any_": [...]}}}`).

use serde_json::Value;
use uuid::Uuid;

/// The `any_` list of `section.field`, as strings; `None` when absent or null.
pub(crate) fn any_strings(section: Option<&Value>, field: &str) -> Option<Vec<String>> {
    let list = section?.get(field)?.get("any_")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

/// The `any_` list of `section.field`, as UUIDs (unparsable ones dropped: they match nothing).
pub(crate) fn any_ids(section: Option<&Value>, field: &str) -> Option<Vec<Uuid>> {
    any_strings(section, field).map(|v| v.iter().filter_map(|s| s.parse().ok()).collect())
}

/// `section.outer.inner.any_` as strings (e.g. `flow_runs.state.type.any_`).
pub(crate) fn nested_any_strings(
    section: Option<&Value>,
    outer: &str,
    inner: &str,
) -> Option<Vec<String>> {
    any_strings(section?.get(outer), inner)
}
