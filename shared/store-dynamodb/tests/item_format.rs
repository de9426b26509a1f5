//! The item format across releases: a table written by an older release opens and works
//! after the upgrade.
//!
//! `tests/fixtures/format1-table.json` is every item of a moto table written through the
//! store port by the code at commit `ac9564f` (item format 1, before the `format` attribute
//! existed), made by the ignored test `write_format1_fixture` below run at that commit (see
//! `tests/fixtures/README.md`).

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, TimeZone, Utc};
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::Store;
use pushpool_store::conformance::{flow, work_pool};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The fixture's path.
fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1-table.json")
}

/// An attribute value as DynamoDB JSON (`{"S": "..."}`); the store writes S and N only.
fn to_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        other => panic!("unexpected attribute type in the table: {other:?}"),
    }
}

/// The reverse of [`to_json`].
#[allow(dead_code)]
fn from_json(v: &Value) -> AttributeValue {
    let (kind, value) = v.as_object().and_then(|o| o.iter().next()).expect("typed");
    match kind.as_str() {
        "S" => AttributeValue::S(value.as_str().expect("S").to_owned()),
        "N" => AttributeValue::N(value.as_str().expect("N").to_owned()),
        "BOOL" => AttributeValue::Bool(value.as_bool().expect("BOOL")),
        "SS" => AttributeValue::Ss(
            value
                .as_array()
                .expect("SS")
                .iter()
                .map(|s| s.as_str().expect("SS member").to_owned())
                .collect(),
        ),
        "NULL" => AttributeValue::Null(true),
        other => panic!("unexpected attribute type {other} in the fixture"),
    }
}

/// Every item of `table`, sorted by (pk, sk).
async fn scan_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    let key = |i: &HashMap<String, AttributeValue>| {
        let s = |n: &str| {
            i.get(n)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        (s("pk"), s("sk"))
    };
    out.sort_by_key(key);
    out
}

/// Ids the fixture is written with (fixed, so the upgrade test can name them).
pub const FLOW_ID: &str = "0192f000-0000-7000-8000-000000000001";
/// The deployment every fixture run but the last has.
pub const DEPLOYMENT_ID: &str = "0192f000-0000-7000-8000-0000000000d1";
/// Run ids: 0 SCHEDULED (tag `nightly`), 1 RUNNING, 2 COMPLETED (tags `nightly`, `big`),
/// 3 PENDING (no deployment), 4 SCHEDULED with an idempotency key.
pub const RUN_IDS: [&str; 5] = [
    "0192f000-0000-7000-8000-0000000000a0",
    "0192f000-0000-7000-8000-0000000000a1",
    "0192f000-0000-7000-8000-0000000000a2",
    "0192f000-0000-7000-8000-0000000000a3",
    "0192f000-0000-7000-8000-0000000000a4",
];

/// Writes the fixture through the store port of the code it is run with. Run only at a
/// release whose format is to be kept readable:
/// `cargo test -p pushpool-store-dynamodb --test item_format -- --ignored write_format1_fixture`.
#[tokio::test]
#[ignore = "writes tests/fixtures/format1-table.json; run by hand at the release being frozen"]
async fn write_format1_fixture() {
    let (store, client) = common::fresh_store_and_client().await;
    let mut pool = work_pool("pool-1");
    pool.id = "0192f000-0000-7000-8000-0000000000b1".parse().unwrap();
    store.create_work_pool(&pool).await.unwrap();
    let mut f = flow("etl");
    f.id = FLOW_ID.parse().unwrap();
    store.upsert_flow(&f).await.unwrap();
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    for (i, id) in RUN_IDS.iter().enumerate() {
        let id: Uuid = id.parse().unwrap();
        let at = base + Duration::minutes(i as i64);
        let mut run = FlowRun::new(id, f.id, format!("fixture-run-{i}"), at);
        run.created = at;
        run.updated = at;
        if i != 3 {
            run.deployment_id = Some(DEPLOYMENT_ID.parse().unwrap());
        }
        run.work_pool_name = Some("pool-1".into());
        run.work_queue_name = Some("default".into());
        run.parameters = json!({"day": "2026-11-01", "n": i, "x": 1.0})
            .as_object()
            .cloned()
            .unwrap();
        run.tags = match i {
            0 => vec!["nightly".into()],
            2 => vec!["nightly".into(), "big".into()],
            _ => vec![],
        };
        if i == 4 {
            run.idempotency_key = Some("scheduled-2026-11-01".into());
        }
        let mut scheduled = State::new(StateType::Scheduled, at);
        scheduled.id = Uuid::from_u128(0x0192_f000_0000_7000_8000_0000_0000_0c00 + i as u128);
        scheduled.state_details.flow_run_id = Some(id);
        scheduled.state_details.scheduled_time = Some(at);
        apply_state(&mut run, scheduled, at);
        let (mut run, _) = store.create_flow_run(&run).await.unwrap();
        let path: &[StateType] = match i {
            1 => &[StateType::Pending, StateType::Running],
            2 => &[StateType::Pending, StateType::Running, StateType::Completed],
            3 => &[StateType::Pending],
            _ => &[],
        };
        for (j, t) in path.iter().enumerate() {
            let now = at + Duration::seconds(10 * (j as i64 + 1));
            let mut state = State::new(*t, now);
            state.id =
                Uuid::from_u128(0x0192_f000_0000_7000_8000_0000_0000_0d00 + (i * 16 + j) as u128);
            state.state_details.flow_run_id = Some(id);
            apply_state(&mut run, state, now);
            run = store.update_flow_run(&run).await.unwrap();
        }
    }
    let items: Vec<Value> = scan_all(&client, store.table())
        .await
        .iter()
        .map(|item| {
            let mut sorted: Vec<(&String, &AttributeValue)> = item.iter().collect();
            sorted.sort_by_key(|(k, _)| k.as_str());
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect::<Map<String, Value>>(),
            )
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "items": items })).unwrap();
    std::fs::write(fixture_path(), text + "\n").unwrap();
}
