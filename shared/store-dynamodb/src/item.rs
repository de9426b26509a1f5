//! Item layout: attribute names, key builders and attribute accessors. The crate docs
//! describe the layout; this module is the only place that spells it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::DynamoError;

/// One DynamoDB item (or key).
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub(crate) const PK: &str = "pk";
/// Sort key attribute.
pub(crate) const SK: &str = "sk";
/// The run-state index.
pub(crate) const GSI1: &str = "gsi1";
/// Its partition key: `RUNSTATE#<state type>` (or `RUNSTATE#NONE`).
pub(crate) const GSI1PK: &str = "gsi1pk";
/// Its sort key: `<sort time>#<run id>`.
pub(crate) const GSI1SK: &str = "gsi1sk";
/// A resource's id (resource, uniqueness and pointer items).
pub(crate) const ID: &str = "id";
/// A resource's JSON document.
pub(crate) const BODY: &str = "body";
/// Creation time of the resource a uniqueness item points to (block schemas: "newest").
pub(crate) const CREATED: &str = "created";
/// A flow run's optimistic-concurrency version (a number).
pub(crate) const VERSION: &str = "version";
/// The id of a flow run's current state.
pub(crate) const STATE_ID: &str = "state_id";
/// A flow run's current state type.
pub(crate) const STATE_TYPE: &str = "state_type";
/// A flow run's current state name.
pub(crate) const STATE_NAME: &str = "state_name";
/// A flow run's flow.
pub(crate) const FLOW_ID: &str = "flow_id";
/// A flow run's deployment.
pub(crate) const DEPLOYMENT_ID: &str = "deployment_id";
/// A flow run's work pool.
pub(crate) const WORK_POOL_NAME: &str = "work_pool_name";
/// A flow run's idempotency key.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency_key";
/// A flow run's sort time (ISO 8601, microseconds, `Z`).
pub(crate) const SORT_TIME: &str = "sort_time";
/// A state pointer's history item sort key.
pub(crate) const HISTORY_SK: &str = "history_sk";
/// A state pointer's flow run.
pub(crate) const RUN_ID: &str = "run_id";
/// An outbox entry's or the counter's sequence number.
pub(crate) const SEQ: &str = "seq";
/// An outbox entry's flow run.
pub(crate) const FLOW_RUN_ID: &str = "flow_run_id";
/// The table's TTL attribute (epoch seconds); set on outbox entries only.
pub(crate) const EXPIRES_AT: &str = "expires_at";

/// The deployment index: `deployment_id` → [`EST`] (runs with a deployment).
pub(crate) const GSI_DEPLOYMENT: &str = "gsi2";
/// The work pool index: `work_pool_name` → [`EST`] (runs with a work pool).
pub(crate) const GSI_POOL: &str = "gsi3";
/// The all-runs index by expected start time: [`RUNS`] → [`EST`].
pub(crate) const GSI_TIME: &str = "gsi4";
/// The all-runs index by id: [`RUNS`] → [`PK`] (`RUN#<id>`: id order).
pub(crate) const GSI_ID: &str = "gsi5";
/// A flow run's expected start time (ISO 8601, microseconds, `Z`), or `!` without one (`!`
/// sorts below every time: `NULL`s first ascending, last descending).
pub(crate) const EST: &str = "est";
/// The partition of the all-runs indexes (always [`RUNS_PARTITION`] on run items).
pub(crate) const RUNS: &str = "runs";
/// The value of [`RUNS`].
pub(crate) const RUNS_PARTITION: &str = "RUNS";
/// The item format of a flow run item (a number; absent on items of format 1).
pub(crate) const FORMAT: &str = "format";
/// The sk prefix-free pk prefix of a tag listing entry (`RUNTAG#<tag>`, sk the run id).
pub(crate) const RUN_TAG_PREFIX: &str = "RUNTAG#";

/// The attributes the deployment, pool and all-runs indexes project besides the keys: the
/// ones a run keeps for its life, so that no state transition writes to these indexes.
pub(crate) const STABLE_PROJECTED: &[&str] = &[FLOW_ID, DEPLOYMENT_ID, WORK_POOL_NAME];

/// The attributes the run-state index projects besides the keys: what the flow run filters
/// test in a `FilterExpression`.
pub(crate) const GSI1_PROJECTED: &[&str] = &[
    ID,
    FLOW_ID,
    DEPLOYMENT_ID,
    WORK_POOL_NAME,
    STATE_NAME,
    SORT_TIME,
];

/// A resource kind stored as a document with unique keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Prefix of the resource item's pk and its sk (`WORKPOOL`).
    pub tag: &'static str,
    /// The name in messages (the SQLite adapter's kind name).
    pub label: &'static str,
    /// The partition of each unique key's uniqueness items (`UNIQUE#WORKPOOL`); the first
    /// one orders listings.
    pub uniques: &'static [&'static str],
}

/// Work pools: unique name.
pub(crate) const WORK_POOL: Kind = Kind {
    tag: "WORKPOOL",
    label: "work_pool",
    uniques: &["UNIQUE#WORKPOOL"],
};
/// Work queues: unique (work pool id, name).
pub(crate) const WORK_QUEUE: Kind = Kind {
    tag: "WORKQUEUE",
    label: "work_queue",
    uniques: &["UNIQUE#WORKQUEUE"],
};
/// Artifacts: keyed by id (no unique name; collections share a key).
pub(crate) const ARTIFACT: Kind = Kind {
    tag: "ARTIFACT",
    label: "artifact",
    uniques: &["UNIQUE#ARTIFACT"],
};
/// Variables: unique name.
pub(crate) const VARIABLE: Kind = Kind {
    tag: "VARIABLE",
    label: "variable",
    uniques: &["UNIQUE#VARIABLE"],
};
/// Block types: unique slug.
pub(crate) const BLOCK_TYPE: Kind = Kind {
    tag: "BLOCKTYPE",
    label: "block_type",
    uniques: &["UNIQUE#BLOCKTYPE"],
};
/// Block schemas: unique (checksum, version).
pub(crate) const BLOCK_SCHEMA: Kind = Kind {
    tag: "BLOCKSCHEMA",
    label: "block_schema",
    uniques: &["UNIQUE#BLOCKSCHEMA"],
};
/// Block documents: unique (block type id, name).
pub(crate) const BLOCK_DOCUMENT: Kind = Kind {
    tag: "BLOCKDOC",
    label: "block_document",
    uniques: &["UNIQUE#BLOCKDOC"],
};
/// Flows: unique name.
pub(crate) const FLOW: Kind = Kind {
    tag: "FLOW",
    label: "flow",
    uniques: &["UNIQUE#FLOW"],
};
/// Deployments: unique (flow id, name).
pub(crate) const DEPLOYMENT: Kind = Kind {
    tag: "DEPLOYMENT",
    label: "deployment",
    uniques: &["UNIQUE#DEPLOYMENT"],
};
/// API keys: unique name (index 0, the listing order) and unique hash (index 1, the lookup).
pub(crate) const API_KEY: Kind = Kind {
    tag: "APIKEY",
    label: "api_key",
    uniques: &["UNIQUE#APIKEYNAME", "UNIQUE#APIKEY"],
};

/// The attribute of a resource item holding its `i`-th unique key.
pub(crate) fn unique_attr(i: usize) -> &'static str {
    ["uk0", "uk1", "uk2", "uk3"].get(i).copied().unwrap_or("uk")
}

/// A key item.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// The key of a resource item.
pub(crate) fn resource_key(kind: Kind, id: Uuid) -> Item {
    key(format!("{}#{id}", kind.tag), kind.tag)
}

/// The key of a uniqueness item.
pub(crate) fn unique_key(kind: Kind, index: usize, value: &str) -> Item {
    key(kind.uniques.get(index).copied().unwrap_or("UNIQUE"), value)
}

/// The pk of a flow run's items.
pub(crate) fn run_pk(id: Uuid) -> String {
    format!("RUN#{id}")
}

/// The pk of the tag listing entries of `tag` (sk: the run id).
pub(crate) fn run_tag_pk(tag: &str) -> String {
    format!("{RUN_TAG_PREFIX}{}", escape(tag))
}

/// The sk of a flow run item.
pub(crate) const RUN_SK: &str = "RUN";
/// The sk prefix of a flow run's state history items.
pub(crate) const STATE_PREFIX: &str = "STATE#";
/// The outbox partition.
pub(crate) const OUTBOX: &str = "OUTBOX";

/// The key of a state pointer item.
pub(crate) fn state_pointer_key(state_id: Uuid) -> Item {
    key(format!("STATE#{state_id}"), "STATE")
}

/// The key of an idempotency-key uniqueness item (one partition per key: these are never
/// listed, so they are spread out).
pub(crate) fn run_key_key(flow_id: Uuid, idempotency_key: &str) -> Item {
    key(
        format!("RUNKEY#{flow_id}#{}", escape(idempotency_key)),
        "RUNKEY",
    )
}

/// The key of the outbox sequence counter.
pub(crate) fn counter_key() -> Item {
    key("COUNTER", OUTBOX)
}

/// The sk of outbox entry `seq`: zero-padded so that string order is numeric order.
pub(crate) fn outbox_sk(seq: u64) -> String {
    format!("{seq:020}")
}

/// Escapes one part of a composite key so that `#` only ever separates parts.
pub(crate) fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

/// A composite key: the escaped parts joined by `#`.
pub(crate) fn composite(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| escape(p))
        .collect::<Vec<_>>()
        .join("#")
}

/// ISO 8601 with microseconds and `Z`: fixed width, so string order is time order.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk_of(item: &Item) -> String {
    match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => "?".into(),
    }
}

/// A string attribute that may be absent.
pub(crate) fn opt_str<'a>(
    item: &'a Item,
    name: &'static str,
) -> Result<Option<&'a str>, DynamoError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(DynamoError::Malformed {
            pk: pk_of(item),
            attribute: name,
            problem: "is not a string",
        }),
    }
}

/// A required string attribute.
pub(crate) fn req_str<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, DynamoError> {
    opt_str(item, name)?.ok_or_else(|| DynamoError::Malformed {
        pk: pk_of(item),
        attribute: name,
        problem: "is missing",
    })
}

/// A required number attribute, as `u64`.
pub(crate) fn req_u64(item: &Item, name: &'static str) -> Result<u64, DynamoError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| DynamoError::Malformed {
            pk: pk_of(item),
            attribute: name,
            problem: "is not an unsigned integer",
        }),
        Some(_) => Err(DynamoError::Malformed {
            pk: pk_of(item),
            attribute: name,
            problem: "is not a number",
        }),
        None => Err(DynamoError::Malformed {
            pk: pk_of(item),
            attribute: name,
            problem: "is missing",
        }),
    }
}

/// A required UUID attribute.
pub(crate) fn req_uuid(item: &Item, name: &'static str) -> Result<Uuid, DynamoError> {
    req_str(item, name)?
        .parse()
        .map_err(|_| DynamoError::Malformed {
            pk: pk_of(item),
            attribute: name,
            problem: "is not a UUID",
        })
}

/// Decodes the JSON attribute `name` of `item`.
pub(crate) fn decode<T: DeserializeOwned>(
    item: &Item,
    name: &'static str,
) -> Result<T, DynamoError> {
    let text = req_str(item, name)?;
    serde_json::from_str(text).map_err(|e| DynamoError::decode(&pk_of(item), name, &e))
}

/// Encodes `value` as JSON.
pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<String, DynamoError> {
    serde_json::to_string(value).map_err(|source| DynamoError::Encode { what, source })
}

/// Expression attribute names and values, collected while an expression is written. Every
/// attribute goes through a `#name` placeholder, so DynamoDB's reserved words (`name`,
/// `state`, `version`, ...) never matter.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder of attribute `attr` (`#attr`).
    pub fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// A new placeholder bound to `value` (`:v3`).
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `#attr IN (:v.., :v..)`.
    pub fn any_of(&mut self, attr: &str, values: impl IntoIterator<Item = String>) -> String {
        let name = self.name(attr);
        let marks: Vec<String> = values.into_iter().map(|v| self.value(s(v))).collect();
        format!("{name} IN ({})", marks.join(", "))
    }

    /// The names, or `None` when empty (DynamoDB rejects empty maps).
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The values, or `None` when empty.
    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// A condition expression with its placeholders.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub text: String,
    pub expr: Expr,
}

impl Cond {
    /// The item does not exist.
    pub fn absent() -> Self {
        let mut expr = Expr::default();
        let text = format!("attribute_not_exists({})", expr.name(PK));
        Self { text, expr }
    }

    /// The item exists and `attr = value` for each pair.
    pub fn equals(pairs: &[(&str, AttributeValue)]) -> Self {
        let mut expr = Expr::default();
        let mut parts = vec![format!("attribute_exists({})", expr.name(PK))];
        for (attr, value) in pairs {
            let name = expr.name(attr);
            let value = expr.value(value.clone());
            parts.push(format!("{name} = {value}"));
        }
        Self {
            text: parts.join(" AND "),
            expr,
        }
    }

    /// The item does not exist, or `attr = value`.
    pub fn absent_or_equals(attr: &str, value: AttributeValue) -> Self {
        let mut expr = Expr::default();
        let pk = expr.name(PK);
        let name = expr.name(attr);
        let value = expr.value(value);
        Self {
            text: format!("attribute_not_exists({pk}) OR {name} = {value}"),
            expr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_escape_the_separator() {
        assert_eq!(composite(&["sha256:abc", "0.7.12"]), "sha256:abc#0.7.12");
        assert_eq!(composite(&["a#b", "c"]), "a%23b#c");
        assert_eq!(composite(&["a", "b#c"]), "a#b%23c");
        assert_eq!(composite(&["100%", ""]), "100%25#");
    }

    #[test]
    fn outbox_keys_sort_numerically() {
        assert!(outbox_sk(9) < outbox_sk(10));
        assert_eq!(outbox_sk(u64::MAX).len(), 20);
    }

    #[test]
    fn iso_times_have_a_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(iso(t), "2024-05-01T10:00:00.000000Z");
    }
}
