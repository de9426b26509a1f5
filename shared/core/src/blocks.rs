//! Block rules: Prefect's block schema checksum and the obfuscation of secret fields.
//!
//! Both follow Prefect 3.9.1's server (`prefect.utilities.hashing.hash_objects`,
//! `prefect.blocks.core.generate_block_schema_checksum`, and the `include_secrets=false`
//! branch of `BlockDocument.from_orm_model`), because the Python client looks schemas up by
//! the checksum it computes itself and compares obfuscated values literally.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What a secret value is replaced with in responses: eight asterisks, as Prefect sends it.
pub const OBFUSCATED: &str = "********";

/// `"sha256:<hex>"` of a block schema's `fields`: every `secret_fields` key removed at any
/// depth, `definitions` reduced to those reachable through `$ref`s that are not themselves
/// blocks (a definition with a `block_type_slug`), then hashed as Python's
/// `json.dumps([[fields], {}], sort_keys=True)` (separators `", "` and `": "`, ASCII only).
pub fn schema_checksum(fields: &Value) -> String {
    let mut fields = remove_key(fields, "secret_fields");
    if let Some(obj) = fields.as_object_mut() {
        if let Some(defs) = obj.get("definitions").and_then(Value::as_object).cloned() {
            let mut kept = Map::new();
            non_block_definitions(&Value::Object(obj.clone()), &defs, &mut kept);
            if kept.is_empty() {
                obj.remove("definitions");
            } else {
                obj.insert("definitions".into(), Value::Object(kept));
            }
        }
    }
    let mut text = String::from("[[");
    python_json(&fields, &mut text);
    text.push_str("], {}]");
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

fn remove_key(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| (k.clone(), remove_key(v, key)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| remove_key(v, key)).collect()),
        other => other.clone(),
    }
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Prefect's `_get_non_block_reference_definitions`, with a visited set against cycles.
fn non_block_definitions(object: &Value, defs: &Map<String, Value>, kept: &mut Map<String, Value>) {
    let mut refs = Vec::new();
    collect_refs(object, &mut refs);
    for r in refs {
        let key = r.replace("#/definitions/", "");
        if kept.contains_key(&key) {
            continue;
        }
        if let Some(def) = defs.get(&key) {
            if def.get("block_type_slug").is_none_or(Value::is_null) {
                kept.insert(key, def.clone());
                non_block_definitions(def, defs, kept);
            }
        }
    }
}

/// Serialises like Python's `json.dumps(value, sort_keys=True)`.
fn python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    out.push_str(&format!("{f:.1}"));
                } else {
                    out.push_str(&n.to_string());
                }
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => python_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(v, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                python_json(&m[k], out);
            }
            out.push('}');
        }
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Replaces every secret value of `data` with [`OBFUSCATED`]. `secret_fields` are dotted paths;
/// a `*` segment matches every key at that level and every leaf below it
/// (`service_account_info.*`). A plain path is replaced only when its value is not `null`.
pub fn obfuscate(data: &Value, secret_fields: &[String]) -> Value {
    let mut data = data.clone();
    for field in secret_fields {
        let path: Vec<&str> = field.split('.').collect();
        replace_path(&mut data, &path, &mut |v| {
            *v = Value::String(OBFUSCATED.into());
        });
    }
    data
}

fn replace_path(value: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((head, rest)) = path.split_first() else {
        if !value.is_null() {
            f(value);
        }
        return;
    };
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    if *head == "*" {
        for v in obj.values_mut() {
            if rest.is_empty() {
                obfuscate_leaves(v, f);
            } else {
                replace_path(v, rest, f);
            }
        }
    } else if let Some(v) = obj.get_mut(*head) {
        replace_path(v, rest, f);
    }
}

fn obfuscate_leaves(value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Object(m) if !m.is_empty() => m.values_mut().for_each(|v| obfuscate_leaves(v, f)),
        other => f(other),
    }
}

/// For an update: wherever `new` holds [`OBFUSCATED`] at a secret path, keeps the value of
/// `old` (Prefect does the same, so a client that round-trips an obfuscated document does
/// not overwrite its secrets with asterisks).
pub fn restore_obfuscated(new: &mut Value, old: &Value, secret_fields: &[String]) {
    restore(new, old, secret_fields, &mut Vec::new());
}

fn restore(new: &mut Value, old: &Value, secret_fields: &[String], path: &mut Vec<String>) {
    match new {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                if let Some(o) = old.get(k) {
                    restore(v, o, secret_fields, path);
                }
                path.pop();
            }
        }
        Value::String(s) if s == OBFUSCATED && is_secret_path(path, secret_fields) => {
            *new = old.clone();
        }
        _ => {}
    }
}

fn is_secret_path(path: &[String], secret_fields: &[String]) -> bool {
    secret_fields.iter().any(|f| {
        let pattern: Vec<&str> = f.split('.').collect();
        let mut i = 0;
        for (j, seg) in pattern.iter().enumerate() {
            if *seg == "*" && j == pattern.len() - 1 {
                return path.len() > i;
            }
            match path.get(i) {
                Some(p) if *seg == "*" || p == seg => i += 1,
                _ => return false,
            }
        }
        i == path.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn obfuscates_plain_and_wildcard_paths() {
        let data = json!({
            "aws_secret_access_key": "s3cret", "region_name": "us-east-1",
            "token": null,
            "service_account_info": {"private_key": "k", "nested": {"a": "b"}},
        });
        let fields = vec![
            "aws_secret_access_key".to_owned(),
            "token".to_owned(),
            "service_account_info.*".to_owned(),
        ];
        assert_eq!(
            obfuscate(&data, &fields),
            json!({
                "aws_secret_access_key": "********", "region_name": "us-east-1",
                "token": null,
                "service_account_info": {"private_key": "********", "nested": {"a": "********"}},
            })
        );
    }

    #[test]
    fn restores_obfuscated_values_on_update() {
        let old = json!({"key": "real", "sa": {"pk": "real-pk"}, "r": "x"});
        let mut new = json!({"key": "********", "sa": {"pk": "********"}, "r": "********"});
        restore_obfuscated(&mut new, &old, &["key".into(), "sa.*".into()]);
        assert_eq!(
            new,
            json!({"key": "real", "sa": {"pk": "real-pk"}, "r": "********"})
        );
    }

    #[test]
    fn python_json_matches_json_dumps_sort_keys() {
        let mut s = String::new();
        python_json(&json!({"b": [1, 2.0, "é"], "a": null}), &mut s);
        assert_eq!(s, r#"{"a": null, "b": [1, 2.0, "\u00e9"]}"#);
    }
}
