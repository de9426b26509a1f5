//! The compact flow run body of item format 2: the run's JSON without the fields that hold
//! their default value, or a value the rest of the body gives, put back on reading.
//!
//! Why: a flow run document is mostly defaults (nulls, zeros, empty objects: about 1 KB of
//! a 1.9 KB body), and every run write pays for the run item's size in write units, per KB,
//! twice in a transaction. The rule is exact, not a guess: a field is left out only when
//! its JSON value *equals* the value it is put back as ([`serde_json::Value`] equality:
//! `0` and `0.0` differ, as do `null` and a missing key), so reading a compact body gives
//! the document that was written, byte for byte after serialisation. What is left out:
//! - the top-level fields of [`DEFAULTS`] and the fields of `empirical_policy`,
//!   `state` and `state.state_details` in [`DEFAULTS`] that hold those defaults (free-form
//!   objects such as `parameters`, `job_variables` and `state.data` are never looked into);
//! - `state_id`, `state_type`, `state_name` when they equal the state's `id`, `type`, `name`
//!   (`null` without a state).
//!
//! The defaults are part of the format: changing them needs a new item format (a body
//! written with one set must be read with it).

use serde_json::{Map, Value, json};

/// The defaults of format 2.
fn defaults() -> Value {
    json!({
        "deployment_id": null,
        "deployment_version": null,
        "work_queue_id": null,
        "work_queue_name": null,
        "flow_version": null,
        "parameters": {},
        "idempotency_key": null,
        "context": {},
        "empirical_policy": {
            "max_retries": 0,
            "retry_delay_seconds": 0.0,
            "retries": null,
            "retry_delay": null,
            "pause_keys": [],
            "resuming": false,
            "retry_type": null
        },
        "tags": [],
        "labels": {},
        "parent_task_run_id": null,
        "run_count": 0,
        "expected_start_time": null,
        "next_scheduled_start_time": null,
        "start_time": null,
        "end_time": null,
        "total_run_time": 0.0,
        "estimated_run_time": 0.0,
        "estimated_start_time_delta": 0.0,
        "auto_scheduled": false,
        "infrastructure_document_id": null,
        "infrastructure_pid": null,
        "created_by": null,
        "work_pool_id": null,
        "work_pool_name": null,
        "state": null,
        "job_variables": {},
        "_submission_attempt": 0
    })
}

/// The defaults inside `state` (and its `state_details`).
fn state_defaults() -> Value {
    json!({
        "message": null,
        "data": null,
        "state_details": {
            "flow_run_id": null,
            "task_run_id": null,
            "child_flow_run_id": null,
            "scheduled_time": null,
            "cache_key": null,
            "cache_expiration": null,
            "deferred": false,
            "untrackable_result": false,
            "pause_timeout": null,
            "pause_reschedule": false,
            "pause_key": null,
            "run_input_keyset": null,
            "refresh_cache": null,
            "retriable": null,
            "transition_id": null,
            "task_parameters_id": null,
            "traceparent": null,
            "deployment_concurrency_lease_id": null
        }
    })
}

/// Nested objects whose own fields are compacted against the defaults (the rest are
/// compared whole).
const NESTED: &[&str] = &["empirical_policy", "state_details"];

/// Removes from `object` the fields equal to `defaults`' (recursing into [`NESTED`]).
fn strip(object: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (k, default) in defaults {
        let Some(value) = object.get_mut(k) else {
            continue;
        };
        if NESTED.contains(&k.as_str()) {
            if let (Value::Object(inner), Value::Object(d)) = (&mut *value, default) {
                strip(inner, d);
                if inner.is_empty() {
                    object.remove(k);
                }
                continue;
            }
        }
        if value == default {
            object.remove(k);
        }
    }
}

/// Puts back into `object` the fields of `defaults` it lacks (recursing into [`NESTED`]).
fn fill(object: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (k, default) in defaults {
        match object.get_mut(k) {
            None => {
                object.insert(k.clone(), default.clone());
            }
            Some(Value::Object(inner)) if NESTED.contains(&k.as_str()) => {
                if let Value::Object(d) = default {
                    fill(inner, d);
                }
            }
            Some(_) => {}
        }
    }
}

/// The fields derived from the state: (top-level key, state key).
const DERIVED: &[(&str, &str)] = &[
    ("state_id", "id"),
    ("state_type", "type"),
    ("state_name", "name"),
];

/// The value a derived field is read back as when it is missing: the state's, `null`
/// without a state.
fn derived(run: &Map<String, Value>, inner: &str) -> Value {
    run.get("state")
        .and_then(|s| s.get(inner))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The compact form of a flow run body.
pub(crate) fn compact(mut body: Value) -> Value {
    let Value::Object(run) = &mut body else {
        return body;
    };
    for (top, inner) in DERIVED {
        if run.get(*top) == Some(&derived(run, inner)) {
            run.remove(*top);
        }
    }
    if let Value::Object(d) = defaults() {
        strip(run, &d);
    }
    if let Some(Value::Object(state)) = run.get_mut("state") {
        if let Value::Object(d) = state_defaults() {
            strip(state, &d);
        }
    }
    body
}

/// The full flow run body of a compact (or already full) one.
pub(crate) fn expand(mut body: Value) -> Value {
    let Value::Object(run) = &mut body else {
        return body;
    };
    if let Some(Value::Object(state)) = run.get_mut("state") {
        if let Value::Object(d) = state_defaults() {
            fill(state, &d);
        }
    }
    for (top, inner) in DERIVED {
        if !run.contains_key(*top) {
            let value = derived(run, inner);
            run.insert((*top).to_owned(), value);
        }
    }
    if let Value::Object(d) = defaults() {
        fill(run, &d);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_body_reads_back_as_written() {
        let full = json!({
            "id": "a", "state_id": "s1", "deployment_id": null, "tags": [], "total_run_time": 0,
            "empirical_policy": {"max_retries": 2, "retry_delay_seconds": 0.0, "retries": null,
                "retry_delay": null, "pause_keys": [], "resuming": false, "retry_type": null},
            "state_type": "RUNNING", "state_name": "Late",
            "state": {"id": "s1", "type": "RUNNING", "name": "Running", "message": null, "data": null,
                "state_details": {"flow_run_id": "a", "task_run_id": null, "deferred": false}},
            "parameters": {"x": null}
        });
        let compacted = compact(full.clone());
        assert_eq!(
            compacted,
            json!({
                "id": "a", "total_run_time": 0,
                "empirical_policy": {"max_retries": 2},
                "state_name": "Late",
                "state": {"id": "s1", "type": "RUNNING", "name": "Running",
                    "state_details": {"flow_run_id": "a"}},
                "parameters": {"x": null}
            })
        );
        let back = expand(compacted);
        // Keys come back (in the defaults' order where they were dropped); values equal.
        for (k, v) in full.as_object().unwrap() {
            if k == "state" || k == "empirical_policy" {
                continue;
            }
            assert_eq!(back.get(k), Some(v), "{k}");
        }
        assert_eq!(back["empirical_policy"]["max_retries"], json!(2));
        assert_eq!(back["empirical_policy"]["retry_type"], Value::Null);
        assert_eq!(back["state"]["state_details"]["task_run_id"], Value::Null);
        assert_eq!(back["state"]["state_details"]["flow_run_id"], json!("a"));
        assert_eq!(back["state"]["message"], Value::Null);
    }
}
