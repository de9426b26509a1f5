//! Prefect base job templates: parsing, job-variable validation, merging and
//! rendering.
//!
//! A work pool's `base_job_template` is
//! `{"job_configuration": {...}, "variables": <JSON Schema>}`. Turning it into a
//! concrete job configuration for a flow run is what a Prefect worker does in
//! `BaseJobConfiguration.from_template_and_values` (`prefect.workers.base`),
//! using `prefect.utilities.templating.apply_values`. A push work pool has no
//! worker, so this control plane does the same server-side. The rules below
//! follow those two functions (Prefect 3.x); the few deliberate differences are
//! listed under *Differences from Prefect*.
//!
//! # Job variables
//!
//! The values used for rendering are built in layers, lowest first (see
//! [`merge_job_variables`]):
//!
//! 1. the schema defaults, `variables.properties.<name>.default`
//!    ([`BaseJobTemplate::defaults`]),
//! 2. the deployment's `job_variables`,
//! 3. the flow run's `job_variables`.
//!
//! A later layer replaces an earlier value per top-level key, except `env`,
//! which is merged key by key when both sides are objects.
//!
//! Explicit job variables are checked against the `variables` schema with
//! [`BaseJobTemplate::validate`], as Prefect's server does when a deployment or
//! a flow run is created (`prefect.server.api.validation`).
//!
//! # Rendering
//!
//! [`render`] walks the `job_configuration` and replaces placeholders matching
//! Prefect's `PLACEHOLDER_CAPTURE_REGEX`, `{{\s*([\w\.\-\[\]$]+)\s*}}`, in every
//! string:
//!
//! * a string that is exactly one placeholder becomes the variable's JSON
//!   value, keeping its type (object, array, number, bool, string);
//! * if that variable is missing or null, the key is removed from its parent
//!   object (or the element from its parent array), so the output never holds
//!   `null`, `""` or `"None"` for an unset variable;
//! * a placeholder inside a longer string is interpolated as text: strings raw,
//!   numbers and bools as JSON text, objects and arrays as compact JSON, a
//!   missing or null value as `""`;
//! * dotted names (`{{ a.b }}`, `{{ a[0].b }}`) look into nested objects and
//!   arrays, like Prefect's `get_from_dict`;
//! * non-string leaves (numbers, bools, a literal `null`) and object keys are
//!   kept as they are.
//!
//! # Block document references
//!
//! A value that is exactly `{"$ref": {"block_document_id": "<uuid>"}}` refers
//! to a block document (Prefect's push provisioners store credentials this way
//! as the default of e.g. `aws_credentials`). The worker resolves such
//! references with `resolve_block_document_references`; here
//! [`block_document_refs`] lists them and [`resolve_block_document_refs`]
//! replaces them by the block document's data, before rendering.
//!
//! # Differences from Prefect
//!
//! * Placeholders starting with `prefect.blocks.`, `prefect.variables.` or `$`
//!   (block documents by name, Prefect variables, environment variables of the
//!   worker process) are not supported server-side: they are left unchanged.
//! * Prefect keeps a key whose single placeholder names a variable that is
//!   present but `null`; here the key is removed as if the variable were unset.
//! * Prefect interpolates with Python's `str()` (`True`, `None`,
//!   `{'a': 1}`); here interpolation uses JSON text (`true`, `""` for null,
//!   `{"a":1}`).
//! * Prefect substitutes each distinct placeholder with `str.replace` over the
//!   whole string in set order; here a single left-to-right pass is made, so
//!   substituted text is never scanned again.
//! * Only the exact reference form `{"$ref": {"block_document_id": "<uuid>"}}`
//!   with a valid UUID is recognised.

use serde_json::{Map, Value};
use uuid::Uuid;

/// Name of the job variable whose object value is merged key by key across
/// layers instead of being replaced.
const ENV_KEY: &str = "env";

/// Placeholder prefixes that Prefect resolves on the worker and that are left
/// unchanged here (block documents by name, Prefect variables, environment
/// variables).
const UNSUPPORTED_PREFIXES: [&str; 3] = ["prefect.blocks.", "prefect.variables.", "$"];

/// Errors raised while parsing a base job template or validating job variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The base job template is malformed; the message names the offending
    /// field, e.g. `base_job_template.job_configuration must be an object`.
    #[error("invalid base job template: {0}")]
    InvalidTemplate(String),
    /// The `job_configuration` uses variables that `variables.properties` does not declare
    /// (Prefect's message; the names are joined with `" ,"` exactly as Prefect joins them).
    #[error(
        "The variables specified in the job configuration template must be present as \
         properties in the variables schema. Your job configuration uses the following \
         undeclared variable(s): {}.",
        .0.join(" ,")
    )]
    UndeclaredVariables(Vec<String>),
    /// A non-empty base job template whose `job_configuration` or `variables` is missing or
    /// empty (`null`, `{}`, `[]`, `""`, `0` or `false`: Python's falsy values, which Prefect's
    /// check tests). Prefect's message.
    #[error(
        "The `base_job_template` must contain both a `job_configuration` key and a \
         `variables` key."
    )]
    MissingSections,
    /// Job variables do not conform to the template's `variables` schema.
    #[error("invalid job variables: {field}: {message}")]
    InvalidJobVariables {
        /// Dotted path of the offending value, e.g. `job_variables.cpu` or
        /// `job_variables.env.FOO` (`job_variables` for the whole object).
        field: String,
        /// The schema validator's message, e.g.
        /// `"abc" is not valid under any of the given schemas`.
        message: String,
    },
}

/// Prefect's check of a base job template written through the API (`validate_base_job_template`
/// in `prefect/server/schemas/actions.py`, run on work pool create and update): `{}` passes;
/// any other template must have a non-empty `job_configuration` and a non-empty `variables`
/// (Python truthiness); then every placeholder name used in `job_configuration` (keys and values, at any depth, including
/// `prefect.variables.*`, `prefect.blocks.*` and `$ENV` names, as Prefect counts them) must be a
/// property of `variables`. `{}` passes. Only writes are checked: a template stored before
/// still parses ([`BaseJobTemplate::parse`]) and renders.
///
/// # Errors
/// [`TemplateError::MissingSections`] when a section is missing or empty;
/// [`TemplateError::UndeclaredVariables`] with the undeclared names, sorted.
pub fn check_declared_variables(value: &Value) -> Result<(), TemplateError> {
    let Some(template) = value.as_object() else {
        return Ok(());
    };
    if template.is_empty() {
        return Ok(());
    }
    let truthy = |key: &str| match template.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    };
    if !(truthy("job_configuration") && truthy("variables")) {
        return Err(TemplateError::MissingSections);
    }
    let Some(Value::Object(job_configuration)) = template.get("job_configuration") else {
        return Ok(());
    };
    let declared = template
        .get("variables")
        .and_then(|v| v.get("properties"))
        .and_then(Value::as_object);
    let mut undeclared: Vec<String> = Vec::new();
    for field in job_configuration.values() {
        let text = field.to_string();
        for placeholder in find_placeholders(&text) {
            let name = placeholder.name;
            if !declared.is_some_and(|d| d.contains_key(name))
                && !undeclared.iter().any(|u| u == name)
            {
                undeclared.push(name.to_owned());
            }
        }
    }
    if undeclared.is_empty() {
        return Ok(());
    }
    undeclared.sort();
    Err(TemplateError::UndeclaredVariables(undeclared))
}

/// A parsed base job template: the `job_configuration` object and the
/// `variables` JSON Schema, with the schema compiled once.
///
/// Compiling the schema is the expensive part; build one `BaseJobTemplate` per
/// work pool version and reuse it (it is `Clone`, `Send` and `Sync`) for every
/// deployment and flow run of that pool.
#[derive(Debug, Clone)]
pub struct BaseJobTemplate {
    job_configuration: Map<String, Value>,
    variables: Value,
    validator: Option<jsonschema::Validator>,
}

impl BaseJobTemplate {
    /// Parse and check a `base_job_template` value and compile its `variables`
    /// schema.
    ///
    /// `{}` is accepted (an empty template: no job configuration and no
    /// variables, so nothing is validated). A missing `job_configuration` is
    /// an empty object; a missing or empty `variables` schema disables
    /// validation, as in Prefect.
    ///
    /// # Errors
    ///
    /// [`TemplateError::InvalidTemplate`] when the template is not an object,
    /// `job_configuration`, `variables` or `variables.properties` has the wrong
    /// type, or the `variables` schema does not compile (invalid schema, or a
    /// `$ref` that does not resolve inside the schema; nothing is fetched).
    pub fn parse(value: &Value) -> Result<Self, TemplateError> {
        let template = value.as_object().ok_or_else(|| {
            TemplateError::InvalidTemplate("base_job_template must be an object".to_owned())
        })?;

        let job_configuration = match template.get("job_configuration") {
            None => Map::new(),
            Some(Value::Object(config)) => config.clone(),
            Some(_) => {
                return Err(TemplateError::InvalidTemplate(
                    "base_job_template.job_configuration must be an object".to_owned(),
                ));
            }
        };

        let schema = match template.get("variables") {
            None => Map::new(),
            Some(Value::Object(schema)) => schema.clone(),
            Some(_) => {
                return Err(TemplateError::InvalidTemplate(
                    "base_job_template.variables must be an object".to_owned(),
                ));
            }
        };
        if schema.get("properties").is_some_and(|p| !p.is_object()) {
            return Err(TemplateError::InvalidTemplate(
                "base_job_template.variables.properties must be an object".to_owned(),
            ));
        }

        let validator = if schema.is_empty() {
            None
        } else {
            Some(compile_variables_schema(schema.clone())?)
        };
        let variables = Value::Object(schema);

        Ok(Self {
            job_configuration,
            variables,
            validator,
        })
    }

    /// The `job_configuration` object (the template to render).
    pub fn job_configuration(&self) -> &Map<String, Value> {
        &self.job_configuration
    }

    /// The `variables` JSON Schema as given (an empty object when absent).
    pub fn variables_schema(&self) -> &Value {
        &self.variables
    }

    /// The schema defaults: `variables.properties.<name>.default` for every
    /// property that has a `default` key (a `null` default included), in
    /// schema order. This is the lowest layer of [`merge_job_variables`].
    pub fn defaults(&self) -> Map<String, Value> {
        self.variables
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|(name, property)| {
                        property
                            .get("default")
                            .map(|default| (name.clone(), default.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Validate explicit job variables (a deployment's, or a deployment's
    /// merged with a flow run's) against the `variables` schema.
    ///
    /// As in Prefect's server:
    /// * the top-level `required` list is ignored, because a missing value
    ///   falls back to the schema default when the job is rendered;
    /// * a top-level property that is not required and has a `type` other
    ///   than `null` also accepts `null` (Prefect's `_fix_null_typing` with
    ///   `allow_none_with_default=True`, which works around Pydantic v1
    ///   schemas for optional fields; the same fix-up is applied, without the
    ///   `default` exemption, to nested `properties` and, with it, to the
    ///   properties of `definitions`);
    /// * keys that are not in `properties` are accepted unless the schema
    ///   itself forbids them.
    ///
    /// A value that is exactly a block document reference
    /// (`{"$ref": {"block_document_id": "<uuid>"}}`) is not checked against its
    /// property schema: it is resolved later. Only the first error is
    /// reported.
    ///
    /// # Errors
    ///
    /// [`TemplateError::InvalidJobVariables`] with the dotted path of the first
    /// offending value and the validator's message.
    pub fn validate(&self, job_variables: &Map<String, Value>) -> Result<(), TemplateError> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let instance = Value::Object(
            job_variables
                .iter()
                .filter(|(_, value)| block_document_ref(value).is_none())
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        );
        match validator.iter_errors(&instance).next() {
            None => Ok(()),
            Some(error) => {
                let path = error.instance_path().as_str().to_owned();
                let mut message = error.to_string();
                // Prefect's pre-processing wraps a typed variable with a default in
                // `anyOf: [<it>, null]`, whose own message says nothing useful ("... is not valid
                // under any of the schemas listed in the 'anyOf' keyword"): name the type the
                // variable's schema asks for.
                if let Some(expected) = self.declared_type(&path) {
                    if message.contains("'anyOf'") {
                        message = format!("{} is not of type {expected}", error.instance());
                    }
                }
                Err(TemplateError::InvalidJobVariables {
                    field: dotted_field("job_variables", &path),
                    message,
                })
            }
        }
    }

    /// The type the variables schema declares for a top-level variable (`/cpu` →
    /// `"string"`), from its `type` or from an `anyOf` of plain types (`"integer" or
    /// "null"`); `None` for anything richer.
    fn declared_type(&self, instance_path: &str) -> Option<String> {
        let name = instance_path.strip_prefix('/')?;
        if name.contains('/') {
            return None;
        }
        let property = self.variables.get("properties")?.get(name)?;
        let types: Vec<String> = match (property.get("type"), property.get("anyOf")) {
            (Some(Value::String(t)), _) => vec![format!("{t:?}")],
            (Some(Value::Array(ts)), _) => ts.iter().map(Value::to_string).collect(),
            // Pydantic's `Optional[int]`: `anyOf: [{"type": "integer"}, {"type": "null"}]`.
            (None, Some(Value::Array(alternatives))) => alternatives
                .iter()
                .map(|a| {
                    a.get("type")
                        .filter(|t| t.is_string())
                        .map(Value::to_string)
                })
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        (!types.is_empty()).then(|| types.join(" or "))
    }
}

/// Compile the (pre-processed) variables schema. Draft 7 is used unless the
/// schema names its own `$schema`: Prefect's schemas are generated by
/// Pydantic with `definitions` and `#/definitions/...` references and no
/// `$schema`. Nothing is fetched (the crate is built without remote
/// resolution), so only references inside the schema resolve.
fn compile_variables_schema(
    mut schema: Map<String, Value>,
) -> Result<jsonschema::Validator, TemplateError> {
    preprocess_schema(&mut schema);
    let has_dialect = schema.contains_key("$schema");
    let schema = Value::Object(schema);
    let mut options = jsonschema::options();
    if !has_dialect {
        options = options.with_draft(jsonschema::Draft::Draft7);
    }
    options.build(&schema).map_err(|error| {
        TemplateError::InvalidTemplate(format!(
            "base_job_template.variables is not a valid JSON schema: {error}"
        ))
    })
}

/// Prefect's validation pre-processing (`prefect.utilities.schema_tools.
/// validation.preprocess_schema` with `allow_none_with_default=True`, plus
/// `ignore_required` for the top level only).
fn preprocess_schema(schema: &mut Map<String, Value>) {
    let required = required_fields(schema);
    schema.remove("required");
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        process_properties(properties, &required, true);
    }
    if let Some(Value::Object(definitions)) = schema.get_mut("definitions") {
        for definition in definitions.values_mut() {
            let Value::Object(definition) = definition else {
                continue;
            };
            let required = required_fields(definition);
            if let Some(Value::Object(properties)) = definition.get_mut("properties") {
                process_properties(properties, &required, true);
            }
        }
    }
}

/// The `required` list of an object schema.
fn required_fields(schema: &Map<String, Value>) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Prefect's `process_properties`: let optional typed properties accept
/// `null`, recursing into nested `properties` (where, as in Prefect, the
/// `default` exemption applies again).
fn process_properties(
    properties: &mut Map<String, Value>,
    required: &[String],
    allow_none_with_default: bool,
) {
    for (name, property) in properties.iter_mut() {
        let Value::Object(property) = property else {
            continue;
        };
        let nullable_type = property
            .get("type")
            .is_some_and(|kind| kind.as_str() != Some("null"));
        if !required.iter().any(|field| field == name)
            && nullable_type
            && (allow_none_with_default || !property.contains_key("default"))
        {
            if let Some(kind) = property.remove("type") {
                property.insert(
                    "anyOf".to_owned(),
                    serde_json::json!([{ "type": kind }, { "type": "null" }]),
                );
            }
        }
        let nested_required = required_fields(property);
        if let Some(Value::Object(nested)) = property.get_mut("properties") {
            process_properties(nested, &nested_required, false);
        }
    }
}

/// `prefix` followed by the JSON pointer's segments joined with dots:
/// `("job_variables", "/env/FOO")` gives `job_variables.env.FOO`.
fn dotted_field(prefix: &str, pointer: &str) -> String {
    let mut field = prefix.to_owned();
    if let Some(rest) = pointer.strip_prefix('/') {
        for segment in rest.split('/') {
            field.push('.');
            field.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    field
}

/// Merge job variable layers, lowest first: typically the schema defaults
/// ([`BaseJobTemplate::defaults`]), the deployment's `job_variables`, then the
/// flow run's `job_variables`.
///
/// A later layer replaces an earlier value per top-level key, except `env`:
/// when both the earlier and the later `env` are objects they are merged key
/// by key (a later key wins); otherwise the later `env` replaces the earlier
/// one.
pub fn merge_job_variables(layers: &[&Map<String, Value>]) -> Map<String, Value> {
    let mut merged = Map::new();
    for layer in layers {
        for (key, value) in layer.iter() {
            match (merged.get_mut(key), value) {
                (Some(Value::Object(base)), Value::Object(overlay)) if key == ENV_KEY => {
                    for (name, env_value) in overlay {
                        base.insert(name.clone(), env_value.clone());
                    }
                }
                _ => {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
    }
    merged
}

/// Render a job configuration: replace the `{{ name }}` placeholders in every
/// string with the matching value from `values` (see the module docs for the
/// rules; this is Prefect's `apply_values` with `remove_notset=True`).
///
/// * A string that is exactly one placeholder takes the variable's JSON value
///   and type; if the variable is missing or null, its key is removed from
///   the parent object (or its element from the parent array).
/// * A placeholder inside a longer string is interpolated as text (strings
///   raw, numbers and bools as JSON text, objects and arrays as compact JSON,
///   missing or null as `""`).
/// * Dotted names (`{{ a.b }}`, `{{ a[0] }}`) look into nested values.
/// * Placeholders starting with `prefect.blocks.`, `prefect.variables.` or
///   `$` are left unchanged: they are not supported server-side.
/// * Non-string leaves are kept as they are.
pub fn render(
    job_configuration: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Map<String, Value> {
    render_object(job_configuration, values)
}

fn render_object(object: &Map<String, Value>, values: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter_map(|(key, value)| render_value(value, values).map(|value| (key.clone(), value)))
        .collect()
}

/// Render one template value; `None` means "remove it from its parent".
fn render_value(template: &Value, values: &Map<String, Value>) -> Option<Value> {
    match template {
        Value::String(text) => render_string(text, values),
        Value::Object(object) => Some(Value::Object(render_object(object, values))),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|item| render_value(item, values))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn render_string(text: &str, values: &Map<String, Value>) -> Option<Value> {
    let placeholders = find_placeholders(text);
    let Some(first) = placeholders.first() else {
        return Some(Value::String(text.to_owned()));
    };
    if placeholders.len() == 1
        && first.start == 0
        && first.end == text.len()
        && is_standard(first.name)
    {
        return match lookup(values, first.name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.clone()),
        };
    }

    let mut rendered = String::with_capacity(text.len());
    let mut cursor = 0;
    for placeholder in &placeholders {
        rendered.push_str(&text[cursor..placeholder.start]);
        let full_match = &text[placeholder.start..placeholder.end];
        if is_standard(placeholder.name) {
            match lookup(values, placeholder.name) {
                None | Some(Value::Null) => {}
                Some(Value::String(value)) => rendered.push_str(value),
                Some(value) => rendered.push_str(&value.to_string()),
            }
        } else {
            rendered.push_str(full_match);
        }
        cursor = placeholder.end;
    }
    rendered.push_str(&text[cursor..]);
    Some(Value::String(rendered))
}

/// One `{{ name }}` occurrence: byte range of the full match and the name.
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
}

/// A character of Prefect's placeholder name class `[\w\.\-\[\]$]`.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']' | '$')
}

/// All non-overlapping matches of `{{\s*([\w\.\-\[\]$]+)\s*}}`, left to right.
fn find_placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find("{{") {
        let start = search_from + offset;
        match match_placeholder(text, start) {
            Some(placeholder) => {
                search_from = placeholder.end;
                found.push(placeholder);
            }
            None => search_from = start + 1,
        }
    }
    found
}

/// Match a placeholder starting exactly at `start` (where `{{` is).
fn match_placeholder(text: &str, start: usize) -> Option<Placeholder<'_>> {
    let after_open = start + 2;
    let rest = &text[after_open..];
    let name_start = after_open + (rest.len() - rest.trim_start().len());
    let name_len: usize = text[name_start..]
        .chars()
        .take_while(|c| is_name_char(*c))
        .map(char::len_utf8)
        .sum();
    if name_len == 0 {
        return None;
    }
    let name_end = name_start + name_len;
    let rest = &text[name_end..];
    let close = name_end + (rest.len() - rest.trim_start().len());
    text[close..].starts_with("}}").then(|| Placeholder {
        start,
        end: close + 2,
        name: &text[name_start..name_end],
    })
}

/// A placeholder rendered from `values` (not a block, variable or env one).
fn is_standard(name: &str) -> bool {
    !UNSUPPORTED_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Prefect's `get_from_dict`: `a.b[0].c` is split into `a`, `b`, `0`, `c`;
/// an integer segment indexes an array (negative from the end), any other
/// segment looks up an object key. `None` when any step is missing.
fn lookup<'v>(values: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    let path = name.replace('[', ".").replace(']', "");
    let mut segments = path.split('.');
    let mut current = values.get(segments.next()?)?;
    for segment in segments {
        current = match (current, segment.parse::<i64>()) {
            (Value::Array(items), Ok(index)) => {
                let len = i64::try_from(items.len()).ok()?;
                let index = if index < 0 { index + len } else { index };
                items.get(usize::try_from(index).ok()?)?
            }
            // Like Python, an integer key never matches an object's string key.
            (Value::Object(object), Err(_)) => object.get(segment)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The block document id of a value that is exactly
/// `{"$ref": {"block_document_id": "<uuid>"}}`, if it is one.
pub fn block_document_ref(value: &Value) -> Option<Uuid> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let reference = object.get("$ref")?.as_object()?;
    if reference.len() != 1 {
        return None;
    }
    Uuid::parse_str(reference.get("block_document_id")?.as_str()?).ok()
}

/// Every block document id referenced anywhere in `values` (recursively, in
/// document order, each id once). See [`block_document_ref`] for the form.
pub fn block_document_refs(values: &Map<String, Value>) -> Vec<Uuid> {
    fn collect(value: &Value, found: &mut Vec<Uuid>) {
        if let Some(id) = block_document_ref(value) {
            if !found.contains(&id) {
                found.push(id);
            }
            return;
        }
        match value {
            Value::Object(object) => object.values().for_each(|v| collect(v, found)),
            Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    values.values().for_each(|value| collect(value, &mut found));
    found
}

/// Replace every block document reference in `values` (recursively) by
/// `resolve(id)`, typically the block document's `data`. The replacement is
/// not scanned again. `resolve` is called once per occurrence.
///
/// # Errors
///
/// The first error returned by `resolve`, unchanged; `values` may then be
/// partially resolved.
pub fn resolve_block_document_refs<E>(
    values: &mut Map<String, Value>,
    mut resolve: impl FnMut(Uuid) -> Result<Value, E>,
) -> Result<(), E> {
    fn walk<E>(
        value: &mut Value,
        resolve: &mut impl FnMut(Uuid) -> Result<Value, E>,
    ) -> Result<(), E> {
        if let Some(id) = block_document_ref(value) {
            *value = resolve(id)?;
            return Ok(());
        }
        match value {
            Value::Object(object) => object.values_mut().try_for_each(|v| walk(v, resolve)),
            Value::Array(items) => items.iter_mut().try_for_each(|v| walk(v, resolve)),
            _ => Ok(()),
        }
    }
    values
        .values_mut()
        .try_for_each(|value| walk(value, &mut resolve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("expected an object, got {other}"),
        }
    }

    #[test]
    fn finds_placeholders_like_prefect_regex() {
        let names = |text: &str| -> Vec<String> {
            find_placeholders(text)
                .iter()
                .map(|p| p.name.to_owned())
                .collect()
        };
        assert_eq!(names("{{ a }}"), ["a"]);
        assert_eq!(names("{{a}}"), ["a"]);
        assert_eq!(names("{{\t a.b[0]-c$ \n}}"), ["a.b[0]-c$"]);
        assert_eq!(names("x{{{ a }}}y {{b}}"), ["a", "b"]);
        assert_eq!(names("{{ a b }} {{ }} {{ a"), Vec::<String>::new());
        assert_eq!(names("{{ é_1 }}"), ["é_1"]);
    }

    #[test]
    fn exact_placeholder_keeps_type() {
        let values = map(json!({
            "obj": {"k": [1, 2]}, "num": 2.5, "int": 7, "yes": true, "list": ["a", 1],
            "text": "hi"
        }));
        let template = map(json!({
            "obj": "{{ obj }}", "num": "{{num}}", "int": "{{ int }}", "yes": "{{ yes }}",
            "list": "{{ list }}", "text": "{{ text }}"
        }));
        assert_eq!(
            Value::Object(render(&template, &values)),
            json!({
                "obj": {"k": [1, 2]}, "num": 2.5, "int": 7, "yes": true, "list": ["a", 1],
                "text": "hi"
            })
        );
    }

    #[test]
    fn interpolates_inside_longer_strings() {
        let values = map(json!({
            "region": "us-east-1", "n": 3, "flag": false, "obj": {"a": 1, "b": "x"},
            "list": [1, "two"], "nothing": null
        }));
        let template = map(json!({
            "arn": "arn:aws:{{ region }}:x",
            "missing": "arn:aws:{{ nope }}:x",
            "null": "<{{ nothing }}>",
            "mixed": "{{ n }}/{{ flag }}/{{ obj }}/{{ list }}/{{n}}",
            "two": "{{ region }}{{ region }}",
        }));
        assert_eq!(
            Value::Object(render(&template, &values)),
            json!({
                "arn": "arn:aws:us-east-1:x",
                "missing": "arn:aws::x",
                "null": "<>",
                "mixed": "3/false/{\"a\":1,\"b\":\"x\"}/[1,\"two\"]/3",
                "two": "us-east-1us-east-1",
            })
        );
    }

    #[test]
    fn missing_or_null_exact_placeholders_are_removed() {
        let values = map(json!({"set": "v", "nothing": null}));
        let template = map(json!({
            "a": "{{ missing }}",
            "b": "{{ nothing }}",
            "c": ["{{ set }}", "{{ missing }}", "{{ nothing }}", 1, null, "lit"],
            "d": {"e": "{{ missing }}", "f": "{{ set }}"},
            "g": {"h": "{{ missing }}"},
            "i": null,
            "j": 0,
            "k": false,
            "l": ""
        }));
        assert_eq!(
            Value::Object(render(&template, &values)),
            json!({
                "c": ["v", 1, null, "lit"],
                "d": {"f": "v"},
                "g": {},
                "i": null,
                "j": 0,
                "k": false,
                "l": ""
            })
        );
    }

    #[test]
    fn dotted_and_indexed_names_look_into_nested_values() {
        let values = map(json!({
            "a": {"b": {"c": "deep"}, "list": [10, {"x": "y"}], "0": "zero"}
        }));
        let template = map(json!({
            "deep": "{{ a.b.c }}",
            "obj": "{{ a.b }}",
            "index": "{{ a.list[1].x }}",
            "dotted_index": "{{ a.list.0 }}",
            "negative": "{{ a.list[-2] }}",
            "out_of_range": "{{ a.list[5] }}",
            "int_key_on_object": "{{ a.0 }}",
            "through_scalar": "{{ a.b.c.d }}",
            "text": "v={{ a.b.c }}"
        }));
        assert_eq!(
            Value::Object(render(&template, &values)),
            json!({
                "deep": "deep",
                "obj": {"c": "deep"},
                "index": "y",
                "dotted_index": 10,
                "negative": 10,
                "text": "v=deep"
            })
        );
    }

    #[test]
    fn unsupported_placeholders_are_left_unchanged() {
        let values = map(json!({"name": "n", "$HOME": "x", "prefect": {"blocks": "b"}}));
        let template = map(json!({
            "block": "{{ prefect.blocks.secret.my-secret }}",
            "variable": "{{ prefect.variables.my_var }}",
            "env": "{{ $HOME }}",
            "mixed": "{{ name }}-{{ $HOME }}-{{ prefect.variables.v }}"
        }));
        assert_eq!(
            Value::Object(render(&template, &values)),
            json!({
                "block": "{{ prefect.blocks.secret.my-secret }}",
                "variable": "{{ prefect.variables.my_var }}",
                "env": "{{ $HOME }}",
                "mixed": "n-{{ $HOME }}-{{ prefect.variables.v }}"
            })
        );
    }

    #[test]
    fn block_document_ref_requires_the_exact_form() {
        let id = "9d37d1d6-208d-4a24-bf56-84fc39a37928";
        let expected = Uuid::parse_str(id).ok();
        assert_eq!(
            block_document_ref(&json!({"$ref": {"block_document_id": id}})),
            expected
        );
        assert_eq!(block_document_ref(&json!({"$ref": id})), None);
        assert_eq!(
            block_document_ref(&json!({"$ref": {"block_document_id": "nope"}})),
            None
        );
        assert_eq!(
            block_document_ref(&json!({"$ref": {"block_document_id": id}, "x": 1})),
            None
        );
        assert_eq!(
            block_document_ref(&json!({"$ref": {"block_document_id": id, "x": 1}})),
            None
        );
        assert_eq!(block_document_ref(&json!(id)), None);
    }

    #[test]
    fn refs_are_found_and_resolved_recursively() {
        let a = "11111111-1111-4111-8111-111111111111";
        let b = "22222222-2222-4222-8222-222222222222";
        let mut values = map(json!({
            "creds": {"$ref": {"block_document_id": a}},
            "nested": {"list": [{"$ref": {"block_document_id": b}}, 1]},
            "again": {"$ref": {"block_document_id": a}},
            "plain": "x"
        }));
        let ids = block_document_refs(&values);
        assert_eq!(
            ids,
            vec![
                Uuid::parse_str(a).unwrap_or_default(),
                Uuid::parse_str(b).unwrap_or_default()
            ]
        );

        let mut calls = Vec::new();
        let result: Result<(), String> = resolve_block_document_refs(&mut values, |id| {
            calls.push(id);
            Ok(json!({"id": id.to_string()}))
        });
        assert_eq!(result, Ok(()));
        assert_eq!(calls.len(), 3);
        assert_eq!(
            Value::Object(values),
            json!({
                "creds": {"id": a},
                "nested": {"list": [{"id": b}, 1]},
                "again": {"id": a},
                "plain": "x"
            })
        );
    }

    #[test]
    fn resolve_propagates_the_first_error() {
        let mut values = map(json!({
            "creds": {"$ref": {"block_document_id": "11111111-1111-4111-8111-111111111111"}}
        }));
        let result = resolve_block_document_refs(&mut values, |id| Err(format!("missing {id}")));
        assert_eq!(
            result,
            Err("missing 11111111-1111-4111-8111-111111111111".to_owned())
        );
    }

    #[test]
    fn dotted_field_unescapes_pointer_segments() {
        assert_eq!(dotted_field("job_variables", ""), "job_variables");
        assert_eq!(dotted_field("job_variables", "/cpu"), "job_variables.cpu");
        assert_eq!(
            dotted_field("job_variables", "/env/FOO"),
            "job_variables.env.FOO"
        );
        assert_eq!(
            dotted_field("job_variables", "/a~1b/c~0d/0"),
            "job_variables.a/b.c~d.0"
        );
    }

    #[test]
    fn parse_rejects_malformed_templates() {
        let err = |value: Value| BaseJobTemplate::parse(&value).err();
        assert_eq!(
            err(json!([])),
            Some(TemplateError::InvalidTemplate(
                "base_job_template must be an object".to_owned()
            ))
        );
        assert_eq!(
            err(json!({"job_configuration": "x"})),
            Some(TemplateError::InvalidTemplate(
                "base_job_template.job_configuration must be an object".to_owned()
            ))
        );
        assert_eq!(
            err(json!({"job_configuration": {}, "variables": []})),
            Some(TemplateError::InvalidTemplate(
                "base_job_template.variables must be an object".to_owned()
            ))
        );
        assert_eq!(
            err(json!({"variables": {"properties": []}})),
            Some(TemplateError::InvalidTemplate(
                "base_job_template.variables.properties must be an object".to_owned()
            ))
        );
        assert!(matches!(
            err(json!({"variables": {"properties": {"a": {"$ref": "#/definitions/Missing"}}}})),
            Some(TemplateError::InvalidTemplate(message))
                if message.starts_with("base_job_template.variables is not a valid JSON schema: ")
        ));
        assert!(matches!(
            err(json!({"variables": {"type": 12}})),
            Some(TemplateError::InvalidTemplate(message))
                if message.starts_with("base_job_template.variables is not a valid JSON schema: ")
        ));
    }

    #[test]
    fn empty_template_has_nothing_to_render_or_validate() {
        let template = BaseJobTemplate::parse(&json!({})).ok();
        let Some(template) = template else {
            panic!("{{}} must parse");
        };
        assert_eq!(template.job_configuration(), &Map::new());
        assert_eq!(template.variables_schema(), &json!({}));
        assert_eq!(template.defaults(), Map::new());
        assert_eq!(template.validate(&map(json!({"anything": [1]}))), Ok(()));
        assert_eq!(
            render(template.job_configuration(), &Map::new()),
            Map::new()
        );
    }

    #[test]
    fn template_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone>() {}
        assert_traits::<BaseJobTemplate>();
    }

    #[test]
    fn nested_optional_fields_accept_null_only_without_default() {
        let template = BaseJobTemplate::parse(&json!({
            "variables": {
                "type": "object",
                "required": ["top"],
                "properties": {
                    "top": {"type": "string"},
                    "opt": {"type": "integer", "default": 1},
                    "nested": {
                        "type": "object",
                        "required": ["req"],
                        "properties": {
                            "req": {"type": "string"},
                            "with_default": {"type": "string", "default": "x"},
                            "without_default": {"type": "string"}
                        }
                    }
                }
            }
        }));
        let Ok(template) = template else {
            panic!("schema must compile");
        };
        let check = |value: Value| template.validate(&map(value));
        assert_eq!(check(json!({})), Ok(()));
        assert_eq!(check(json!({"opt": null})), Ok(()));
        assert_eq!(
            check(json!({"top": null})),
            Err(TemplateError::InvalidJobVariables {
                field: "job_variables.top".to_owned(),
                message: "null is not of type \"string\"".to_owned(),
            })
        );
        assert_eq!(
            check(json!({"nested": {"req": "r", "without_default": null}})),
            Ok(())
        );
        assert_eq!(
            check(json!({"nested": {"req": "r", "with_default": null}})),
            Err(TemplateError::InvalidJobVariables {
                field: "job_variables.nested.with_default".to_owned(),
                message: "null is not of type \"string\"".to_owned(),
            })
        );
        assert_eq!(
            check(json!({"nested": {}})),
            Err(TemplateError::InvalidJobVariables {
                field: "job_variables.nested".to_owned(),
                message: "\"req\" is a required property".to_owned(),
            })
        );
    }

    #[test]
    fn merge_replaces_top_level_keys_and_merges_env() {
        let defaults = map(json!({"image": "default", "env": {"D": "d"}, "cpu": null}));
        let deployment = map(json!({"image": "dep", "env": {"A": "dep", "B": "dep"}}));
        let flow_run = map(json!({"env": {"B": "run"}, "cpu": 1}));
        assert_eq!(
            Value::Object(merge_job_variables(&[&defaults, &deployment, &flow_run])),
            json!({
                "image": "dep",
                "env": {"D": "d", "A": "dep", "B": "run"},
                "cpu": 1
            })
        );
    }

    #[test]
    fn undeclared_variables_are_named_like_prefect() {
        let ok = json!({"job_configuration": {"image": "{{ image }}", "n": 1},
            "variables": {"properties": {"image": {"type": "string"}}}});
        assert_eq!(check_declared_variables(&ok), Ok(()));
        assert_eq!(check_declared_variables(&json!({})), Ok(()));
        let bad = json!({"job_configuration": {
                "command": "{{command}} --x {{ $HOME }}",
                "nested": {"{{ key }}": ["{{ prefect.variables.v }}", "{{ image }}"]}},
            "variables": {"properties": {"image": {}}}});
        let err = check_declared_variables(&bad).unwrap_err();
        assert_eq!(
            err,
            TemplateError::UndeclaredVariables(vec![
                "$HOME".into(),
                "command".into(),
                "key".into(),
                "prefect.variables.v".into()
            ])
        );
        assert_eq!(
            err.to_string(),
            "The variables specified in the job configuration template must be present as \
             properties in the variables schema. Your job configuration uses the following \
             undeclared variable(s): $HOME ,command ,key ,prefect.variables.v."
        );
    }
}
