//! Flow run inputs (Prefect's `FlowRunInput`): small key/value texts stored under a flow run.
//!
//! A flow that pauses or suspends with `wait_for_input=` stores the JSON schema of the input
//! it waits for under its pause's keyset (`<state name>-<pause key>-schema`, and
//! `-description`); `POST /flow_runs/{id}/resume` validates the `run_input` it gets against
//! that schema and stores it under `<...>-response`, which the flow then reads
//! (`prefect.input.run_input`). Flows also send each other inputs (`send_input`,
//! `receive_input`) through the same routes.
//!
//! ```
//! use pushpool_core::run_input::check_key;
//! assert!(check_key("paused-1-schema").is_ok());
//! assert_eq!(
//!     check_key("Paused_1").unwrap_err(),
//!     "key: value must only contain lowercase letters, numbers, and dashes."
//! );
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One input of a flow run (Prefect's `schemas.core.FlowRunInput`). `(flow_run_id, key)` is
/// unique; the inputs of a run list in the order they were created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRunInput {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at (inputs are never updated: the creation time).
    pub updated: DateTime<Utc>,
    /// The flow run it belongs to.
    pub flow_run_id: Uuid,
    /// The key: lowercase letters, digits and dashes ([`check_key`]).
    pub key: String,
    /// The value, as text (the clients send JSON text).
    pub value: String,
    /// Who sent it (`send_input`'s sender), if anyone said.
    pub sender: Option<String>,
}

/// Checks an input key as Prefect's `raise_on_name_alphanumeric_dashes_only` does
/// (`^[a-z0-9-]*$`).
///
/// # Errors
/// Prefect's validation message (`value must only contain ...`), prefixed with the field, `key`.
pub fn check_key(key: &str) -> Result<(), String> {
    if key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err("key: value must only contain lowercase letters, numbers, and dashes.".into())
    }
}

/// Validates a `run_input` against the JSON schema a paused run stored (`schema_json`, the
/// text of its `...-schema` input), as Prefect's `resume_flow_run` does with
/// `schema_tools.validate(..., raise_on_error=True)` (draft 2020-12, the first error).
///
/// # Errors
/// The reason Prefect answers in its REJECT details:
/// `"Run input schema is not valid JSON."`, or `"Reason: Validation failed for field 'x'.
/// Failure reason: <message>"` (`"Reason: Validation failed. Failure reason: ..."` for an
/// error at the top). The validator's message is the Rust `jsonschema` crate's with its
/// double quotes turned into Python's single quotes (`'name' is a required property`,
/// `5 is not of type 'string'`), which matches Prefect's for these common cases; a schema
/// that does not compile answers `"Reason: Validation failed. Failure reason: <why>"`.
pub fn validate_run_input(run_input: &Value, schema_json: &str) -> Result<(), String> {
    let schema: Value = serde_json::from_str(schema_json)
        .map_err(|_| "Run input schema is not valid JSON.".to_owned())?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| {
            format!(
                "Reason: Validation failed. Failure reason: {}",
                python_quotes(&e.to_string())
            )
        })?;
    let Some(error) = validator.iter_errors(run_input).next() else {
        return Ok(());
    };
    let path = error.instance_path().as_str().to_owned();
    let message = python_quotes(&error.to_string());
    if path.is_empty() {
        return Err(format!(
            "Reason: Validation failed. Failure reason: {message}"
        ));
    }
    // jsonschema's `json_path` without the leading `$.`: `name`, `items[0]`, `a.b`.
    let mut field = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&segment);
        }
    }
    Err(format!(
        "Reason: Validation failed for field '{field}'. Failure reason: {message}"
    ))
}

fn python_quotes(message: &str) -> String {
    message.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"title": "Answer", "type": "object",
        "properties": {"name": {"title": "Name", "type": "string"},
                       "age": {"title": "Age", "type": "integer"}},
        "required": ["name"]}"#;

    #[test]
    fn a_valid_input_passes() {
        assert_eq!(
            validate_run_input(&json!({"name": "x", "age": 3}), SCHEMA),
            Ok(())
        );
    }

    #[test]
    fn errors_read_as_prefect_words_them() {
        assert_eq!(
            validate_run_input(&json!({"age": 3}), SCHEMA),
            Err("Reason: Validation failed. Failure reason: 'name' is a required property".into())
        );
        assert_eq!(
            validate_run_input(&json!({"name": 5}), SCHEMA),
            Err(
                "Reason: Validation failed for field 'name'. Failure reason: 5 is not of type \
                 'string'"
                    .into()
            )
        );
        assert_eq!(
            validate_run_input(&json!({}), "not json"),
            Err("Run input schema is not valid JSON.".into())
        );
    }

    #[test]
    fn keys_are_lowercase_letters_digits_and_dashes() {
        assert!(check_key("suspended-1-response").is_ok());
        assert!(check_key("").is_ok());
        assert!(check_key("a_b").is_err());
        assert!(check_key("A").is_err());
    }
}
