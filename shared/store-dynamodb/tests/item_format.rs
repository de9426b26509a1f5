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

/// Loads the fixture's items into a fresh table, as the table of a format 1 release: no
/// `META` item (the new `create_table` writes one; it is removed).
async fn format1_table() -> (
    pushpool_store_dynamodb::DynamoStore,
    aws_sdk_dynamodb::Client,
) {
    let (store, client) = common::fresh_store_and_client().await;
    let table = store.table().to_owned();
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("META".into()))
        .key("sk", AttributeValue::S("FORMAT".into()))
        .send()
        .await
        .unwrap();
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    for item in fixture["items"].as_array().unwrap() {
        let item: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), from_json(v)))
            .collect();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    (
        pushpool_store_dynamodb::DynamoStore::new(client.clone(), table),
        client,
    )
}

fn run_id(i: usize) -> Uuid {
    RUN_IDS[i].parse().unwrap()
}

/// What the fixture holds, asked through the port: reads, filters (tags, deployment, state,
/// work pool, a window), paging, the due index, states by id, the idempotency key.
async fn check_fixture_answers(store: &pushpool_store_dynamodb::DynamoStore, completed: &[usize]) {
    use pushpool_core::filter::{FlowRunFilter, FlowRunSort};
    use pushpool_store::{FlowRunQuery, Page};
    let run = store.read_flow_run(run_id(2)).await.unwrap();
    assert_eq!(run.name, "fixture-run-2");
    assert_eq!(run.tags, ["nightly", "big"]);
    assert_eq!(run.state_type, Some(StateType::Completed));
    assert_eq!(run.work_pool_name.as_deref(), Some("pool-1"));
    assert_eq!(
        serde_json::to_string(&run.parameters).unwrap(),
        r#"{"day":"2026-11-01","n":2,"x":1.0}"#
    );
    let list = |body: Value, sort: FlowRunSort| {
        let q = FlowRunQuery {
            filter: serde_json::from_value::<FlowRunFilter>(body).unwrap(),
            sort,
            page: Page {
                offset: 0,
                limit: Some(10),
            },
            ..FlowRunQuery::default()
        };
        async move {
            store
                .list_flow_runs(&q)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    RUN_IDS
                        .iter()
                        .position(|id| *id == r.id.to_string())
                        .unwrap()
                })
                .collect::<Vec<usize>>()
        }
    };
    assert_eq!(
        list(json!({}), FlowRunSort::ExpectedStartTimeDesc).await,
        [4, 3, 2, 1, 0]
    );
    assert_eq!(list(json!({}), FlowRunSort::IdDesc).await, [4, 3, 2, 1, 0]);
    assert_eq!(
        list(json!({"tags": {"any_": ["nightly"]}}), FlowRunSort::IdDesc).await,
        [2, 0]
    );
    assert_eq!(
        list(
            json!({"deployment_id": {"any_": [DEPLOYMENT_ID]}}),
            FlowRunSort::ExpectedStartTimeAsc
        )
        .await,
        [0, 1, 2, 4]
    );
    assert_eq!(
        list(
            json!({"state": {"type": {"any_": ["COMPLETED"]}}}),
            FlowRunSort::ExpectedStartTimeDesc
        )
        .await,
        completed
    );
    assert_eq!(
        list(
            json!({"expected_start_time": {"after_": "2026-11-01T08:01:00Z", "before_": "2026-11-01T08:03:00Z"}}),
            FlowRunSort::ExpectedStartTimeAsc
        )
        .await,
        [1, 2, 3]
    );
    let pool = FlowRunQuery {
        work_pool_names: Some(vec!["pool-1".into()]),
        sort: FlowRunSort::ExpectedStartTimeDesc,
        page: Page {
            offset: 1,
            limit: Some(2),
        },
        ..FlowRunQuery::default()
    };
    let ids: Vec<Uuid> = store
        .list_flow_runs(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [run_id(3), run_id(2)]);
    let due = store
        .list_due_flow_runs(chrono::Utc::now(), 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect::<Vec<_>>();
    assert_eq!(due, [run_id(0), run_id(4)]);
    let first_state = Uuid::from_u128(0x0192_f000_0000_7000_8000_0000_0000_0c02);
    assert_eq!(
        store.read_state(first_state).await.unwrap().r#type,
        StateType::Scheduled
    );
    // The idempotency key still names its run.
    let mut again = FlowRun::new(
        Uuid::new_v4(),
        FLOW_ID.parse().unwrap(),
        "again".into(),
        chrono::Utc::now(),
    );
    again.idempotency_key = Some("scheduled-2026-11-01".into());
    let (existing, created) = store.create_flow_run(&again).await.unwrap();
    assert!(!created);
    assert_eq!(existing.id, run_id(4));
}

/// A table written by the format 1 release (commit ac9564f) opens and works with this one:
/// before its items are upgraded (listings read as format 1 did), after
/// `upgrade_items` (every run item at format 2, tag entries written, listings from the new
/// indexes), and a run of it goes from RUNNING to COMPLETED in between.
#[tokio::test]
async fn a_table_written_by_format_1_opens_upgrades_and_works() {
    let (store, client) = format1_table().await;
    check_fixture_answers(&store, &[2]).await;

    // RUNNING → COMPLETED on a format 1 item.
    let mut run = store.read_flow_run(run_id(1)).await.unwrap();
    assert_eq!(run.state_type, Some(StateType::Running));
    let now = chrono::Utc::now();
    apply_state(&mut run, State::new(StateType::Completed, now), now);
    let written = store.update_flow_run(&run).await.unwrap();
    assert_eq!(written.version, run.version + 1);
    let history: Vec<StateType> = store
        .read_flow_run_states(run_id(1))
        .await
        .unwrap()
        .iter()
        .map(|s| s.r#type)
        .collect();
    assert_eq!(
        history,
        [
            StateType::Scheduled,
            StateType::Pending,
            StateType::Running,
            StateType::Completed
        ]
    );
    check_fixture_answers(&store, &[2, 1]).await;

    store.upgrade_items().await.unwrap();
    let items = scan_all(&client, store.table()).await;
    let formats: Vec<Option<&AttributeValue>> = items
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("RUN"))
        .map(|i| i.get("format"))
        .collect();
    assert_eq!(formats, vec![Some(&AttributeValue::N("2".into())); 5]);
    let tag_entries = items
        .iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|p| p.starts_with("RUNTAG#"))
        })
        .count();
    assert_eq!(tag_entries, 3);
    // A fresh store (a new Lambda) reads the format item and takes the new path.
    let fresh =
        pushpool_store_dynamodb::DynamoStore::new(client.clone(), store.table()).with_metering();
    check_fixture_answers(&fresh, &[2, 1]).await;
    // The upgrade is idempotent, and a second run only reads the format item.
    fresh.reset_usage();
    fresh.upgrade_items().await.unwrap();
    assert_eq!(fresh.usage().read_calls, 0, "known upgraded: nothing read");
    // A run of the fixture goes on with the new format.
    let mut run = fresh.read_flow_run(run_id(3)).await.unwrap();
    let now = chrono::Utc::now();
    apply_state(&mut run, State::new(StateType::Running, now), now);
    fresh.update_flow_run(&run).await.unwrap();
    let mut run = fresh.read_flow_run(run_id(3)).await.unwrap();
    apply_state(&mut run, State::new(StateType::Completed, now), now);
    let done = fresh.update_flow_run(&run).await.unwrap();
    assert_eq!(done.state_type, Some(StateType::Completed));
}
