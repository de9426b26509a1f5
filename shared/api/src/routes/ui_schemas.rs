//! `POST /ui/schemas/validate`: the check Prefect's UI runs before it saves a form built from
//! a JSON schema (a block document's data, a deployment's parameters, a run's job variables)
//! — Prefect 3.9.1 `prefect/server/api/ui/schemas.py` `validate_obj`, with
//! `prefect/utilities/schema_tools/{validation,hydration}.py`.
//!
//! Body `{"schema": {...}, "values": {...}}`. The schema is preprocessed as Prefect does
//! ([`preprocess_schema`]: an optional property with a `type` and no default also accepts
//! `null`, a tuple's `items` list becomes `prefixItems`, a block type's definition also
//! accepts a `{"$ref": ...}` reference), checked against the draft 2020-12 meta-schema (a 422
//! `Invalid schema: ...` when it is not a schema), the values are hydrated ([`hydrate`]) and
//! validated, and the answer is Prefect's error tree: `{"errors": [...], "valid": bool}` where
//! an error is a message (at the root), `{"property": name, "errors": [...]}` or
//! `{"index": i, "errors": [...]}`; a missing required property is reported on the property.
//!
//! Differences from Prefect, for lack of its Python libraries: messages are the Rust
//! `jsonschema` crate's with Python's quotes (`'name' is a required property`, `5 is not of
//! type 'string'`: the same as Python's `jsonschema` for these common cases); a `jinja`
//! the errors come in the validator's order (a missing required property before the
//! properties' errors, where Prefect lists it after: the UI shows each under its field); a `jinja`
//! placeholder's template is accepted without a syntax check (pushpool renders no templates
//! of the UI's forms); a hydration error (invalid JSON, missing `value`, unknown variable) is
//! reported at its path whether or not the schema describes that path.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Json;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateBody {
    schema: Map<String, Value>,
    values: Map<String, Value>,
}

/// A path into the values: property names and array indexes.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Property(String),
    Index(usize),
}

/// What hydration left at a path instead of a value.
#[derive(Debug, Clone, PartialEq)]
enum Placeholder {
    /// A template, a variable reference: errors about its value are not reported.
    Valid,
    /// A hydration error, reported instead of any other error at its path.
    Error(String),
}

/// `POST /ui/schemas/validate`.
pub(crate) async fn validate(
    State(state): State<AppState>,
    Json(body): Json<ValidateBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let schema = Value::Object(preprocess_schema(body.schema));
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        return Err(ApiError::Invalid(format!(
            "Invalid schema: {}",
            python_quotes(&e.to_string())
        )));
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| {
            ApiError::Invalid(format!(
                "Invalid schema: Validation failed. Failure reason: {}",
                python_quotes(&e.to_string())
            ))
        })?;
    let mut placeholders = Vec::new();
    let mut path = Vec::new();
    let values = match hydrate(
        &state,
        Value::Object(body.values),
        &mut path,
        &mut placeholders,
    )
    .await?
    {
        Some(v) => v,
        None => Value::Object(Map::new()),
    };
    let mut errors: Vec<(Vec<Segment>, String)> = Vec::new();
    for error in validator.iter_errors(&values) {
        let mut at = segments(&values, error.instance_path().as_str());
        if placeholders.iter().any(|(p, _)| *p == at) {
            // A placeholder's own error (below) replaces the others at its path; a valid
            // placeholder (a template) has none.
            continue;
        }
        if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
            if let Some(name) = property.as_str() {
                at.push(Segment::Property(name.to_owned()));
            }
        }
        errors.push((at, python_quotes(&error.to_string())));
    }
    for (at, placeholder) in placeholders {
        if let Placeholder::Error(message) = placeholder {
            errors.push((at, message));
        }
    }
    Ok(axum::Json(error_tree(errors)))
}

/// Prefect's `preprocess_schema`: for the properties of the schema and of its definitions
/// (recursively into nested `properties`), an optional property (not in `required`) with a
/// `type` other than `null` and no `default` becomes `anyOf: [{type}, {type: null}]`, and an
/// `items` list without `prefixItems` becomes `prefixItems`; a definition of a block type
/// (with `block_type_slug`) becomes `oneOf: [itself, {"$ref": <block document id or
/// reference object>}]`.
fn preprocess_schema(mut schema: Map<String, Value>) -> Map<String, Value> {
    let required = required_of(&schema);
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        process_properties(properties, &required);
    }
    if let Some(Value::Object(definitions)) = schema.get_mut("definitions") {
        for definition in definitions.values_mut() {
            let Value::Object(d) = definition else {
                continue;
            };
            let required = required_of(d);
            if let Some(Value::Object(properties)) = d.get_mut("properties") {
                process_properties(properties, &required);
            }
            if d.contains_key("block_type_slug") {
                let itself = Value::Object(d.clone());
                *definition = json!({"oneOf": [itself, {
                    "type": "object",
                    "properties": {"$ref": {"oneOf": [
                        {"type": "string", "format": "uuid"},
                        {"type": "object", "additionalProperties": {"type": "string"},
                         "minProperties": 1}
                    ]}},
                    "required": ["$ref"]
                }]});
            }
        }
    }
    schema
}

fn required_of(schema: &Map<String, Value>) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn process_properties(properties: &mut Map<String, Value>, required: &[String]) {
    for (key, property) in properties.iter_mut() {
        let Value::Object(p) = property else {
            continue;
        };
        if !required.contains(key)
            && p.get("type").is_some_and(|t| t != "null")
            && !p.contains_key("default")
        {
            let t = p.remove("type").unwrap_or(Value::Null);
            p.insert("anyOf".into(), json!([{"type": t}, {"type": "null"}]));
        }
        if matches!(p.get("items"), Some(Value::Array(_))) && !p.contains_key("prefixItems") {
            if let Some(items) = p.remove("items") {
                p.insert("prefixItems".into(), items);
            }
        }
        let nested_required = required_of(p);
        if let Some(Value::Object(nested)) = p.get_mut("properties") {
            process_properties(nested, &nested_required);
        }
    }
}

/// Prefect's `hydrate` with `render_workspace_variables=True` and `render_jinja=False`:
/// `{"__prefect_kind": "json", "value": "<text>"}` is the parsed text (no `value`: removed
/// from its parent), `"none"` is its `value` hydrated, `"workspace_variable"` is the variable's
/// value (no `variable_name`: removed), `"jinja"` stays a template ([`Placeholder::Valid`]),
/// another kind is its `value`. `None`: removed. Placeholders left are recorded with their
/// path (the value there becomes `null`).
fn hydrate<'a>(
    state: &'a AppState,
    value: Value,
    path: &'a mut Vec<Segment>,
    placeholders: &'a mut Vec<(Vec<Segment>, Placeholder)>,
) -> futures_like::BoxFuture<'a, Result<Option<Value>, ApiError>> {
    Box::pin(async move {
        match value {
            Value::Object(mut o) if o.contains_key("__prefect_kind") => {
                let kind = o.get("__prefect_kind").cloned().unwrap_or(Value::Null);
                fn placeholder(
                    placeholders: &mut Vec<(Vec<Segment>, Placeholder)>,
                    p: Placeholder,
                    path: &[Segment],
                ) -> Result<Option<Value>, ApiError> {
                    placeholders.push((path.to_vec(), p));
                    Ok(Some(Value::Null))
                }
                match kind.as_str() {
                    Some("none") => match o.remove("value") {
                        Some(v) => hydrate(state, v, path, placeholders).await,
                        None => placeholder(placeholders, missing("value"), path),
                    },
                    Some("json") => {
                        let Some(v) = o.remove("value") else {
                            return Ok(None);
                        };
                        let v = if v.is_object() {
                            let before = placeholders.len();
                            let h = hydrate(state, v, path, placeholders).await?;
                            if placeholders.len() > before {
                                return Ok(h);
                            }
                            h.unwrap_or(Value::Null)
                        } else {
                            v
                        };
                        match v {
                            Value::String(text) => match serde_json::from_str(&text) {
                                Ok(parsed) => Ok(Some(parsed)),
                                Err(e) => placeholder(
                                    placeholders,
                                    Placeholder::Error(format!("Invalid JSON: {e}")),
                                    path,
                                ),
                            },
                            other => Ok(Some(other)),
                        }
                    }
                    Some("jinja") => match o.get("template") {
                        Some(_) => placeholder(placeholders, Placeholder::Valid, path),
                        None => placeholder(placeholders, missing("template"), path),
                    },
                    Some("workspace_variable") => {
                        let Some(name) = o.remove("variable_name") else {
                            return Ok(None);
                        };
                        let name = match name {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        match state.store().read_variable_by_name(&name).await {
                            Ok(v) => Ok(Some(v.value)),
                            Err(pushpool_store::StoreError::NotFound(_)) => placeholder(
                                placeholders,
                                Placeholder::Error(format!(
                                    "Variable '{name}' not found in workspace."
                                )),
                                path,
                            ),
                            Err(e) => Err(e.into()),
                        }
                    }
                    _ => Ok(Some(o.remove("value").unwrap_or(Value::Null))),
                }
            }
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, v) in o {
                    path.push(Segment::Property(k.clone()));
                    let h = hydrate(state, v, path, placeholders).await?;
                    path.pop();
                    if let Some(h) = h {
                        out.insert(k, h);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for v in items {
                    path.push(Segment::Index(out.len()));
                    let h = hydrate(state, v, path, placeholders).await?;
                    path.pop();
                    if let Some(h) = h {
                        out.push(h);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other)),
        }
    })
}

mod futures_like {
    /// A boxed future (hydration recurses).
    pub(super) type BoxFuture<'a, T> =
        std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

fn missing(key: &str) -> Placeholder {
    Placeholder::Error(format!("Missing '{key}' key in __prefect object"))
}

/// The segments of a JSON pointer into `values` (an index where the value there is an array).
fn segments(values: &Value, pointer: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut at = Some(values);
    for raw in pointer.split('/').skip(1) {
        let token = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) => {
                let i = token.parse::<usize>().unwrap_or(0);
                at = items.get(i);
                out.push(Segment::Index(i));
            }
            Some(Value::Object(o)) => {
                at = o.get(&token);
                out.push(Segment::Property(token));
            }
            _ => {
                at = None;
                out.push(Segment::Property(token));
            }
        }
    }
    out
}

/// Prefect's `build_error_obj`.
fn error_tree(errors: Vec<(Vec<Segment>, String)>) -> Value {
    let mut root: Vec<Value> = Vec::new();
    for (path, message) in errors {
        let mut current = &mut root;
        if path.is_empty() {
            current.push(Value::String(message));
            continue;
        }
        let last = path.len() - 1;
        for (i, part) in path.into_iter().enumerate() {
            let (key, id) = match &part {
                Segment::Property(p) => ("property", Value::String(p.clone())),
                Segment::Index(n) => ("index", json!(n)),
            };
            if i == last {
                current.push(json!({key: id, "errors": [message]}));
                break;
            }
            let found = current.iter().position(|e| e.get(key) == Some(&id));
            let position = match found {
                Some(p) => p,
                None => {
                    current.push(json!({key: id, "errors": []}));
                    current.len() - 1
                }
            };
            current = current[position]
                .get_mut("errors")
                .and_then(Value::as_array_mut)
                .expect("an entry has errors");
        }
    }
    let valid = root.is_empty();
    json!({"errors": root, "valid": valid})
}

fn python_quotes(message: &str) -> String {
    message.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_nested_as_prefects_error_object() {
        assert_eq!(error_tree(vec![]), json!({"errors": [], "valid": true}));
        assert_eq!(
            error_tree(vec![
                (vec![], "top".into()),
                (
                    vec![Segment::Property("a".into()), Segment::Index(1)],
                    "bad".into()
                ),
                (
                    vec![Segment::Property("a".into()), Segment::Index(2)],
                    "worse".into()
                ),
                (vec![Segment::Property("b".into())], "missing".into()),
            ]),
            json!({"errors": ["top",
                {"property": "a", "errors": [{"index": 1, "errors": ["bad"]},
                                             {"index": 2, "errors": ["worse"]}]},
                {"property": "b", "errors": ["missing"]}], "valid": false})
        );
    }

    #[test]
    fn optional_properties_accept_null_and_block_references() {
        let schema = json!({
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"},
                           "c": {"type": "string", "default": "x"},
                           "t": {"type": "array", "items": [{"type": "string"}]}},
            "required": ["b"],
            "definitions": {"AwsCredentials": {"title": "AwsCredentials",
                "block_type_slug": "aws-credentials", "properties": {}}}
        });
        let out = Value::Object(preprocess_schema(schema.as_object().unwrap().clone()));
        assert_eq!(
            out["properties"],
            json!({"a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                   "b": {"type": "integer"},
                   "c": {"type": "string", "default": "x"},
                   "t": {"anyOf": [{"type": "array"}, {"type": "null"}],
                         "prefixItems": [{"type": "string"}]}})
        );
        assert_eq!(
            out["definitions"]["AwsCredentials"]["oneOf"][1]["required"],
            json!(["$ref"])
        );
    }
}
