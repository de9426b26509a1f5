//! What the conformance suite does not see: the table's shape, the item layout, races
//! between real concurrent writers, renames, and errors that must not echo secrets.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, StreamViewType, TimeToLiveStatus,
};
use chrono::{Duration, Utc};
use pushpool_core::filter::FlowRunSort;
use pushpool_core::model::{BlockDocument, BlockSchema, BlockType};
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::conformance::{flow_run, work_pool};
use pushpool_store::{FlowRunQuery, Page, Store, StoreError};
use pushpool_store_dynamodb::DynamoStore;
use serde_json::json;
use uuid::Uuid;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn create_table_enables_the_stream_the_index_and_the_ttl_and_is_idempotent() {
    let client = common::client().await;
    let table = common::table_name();
    DynamoStore::create_table(&client, &table).await.unwrap();
    DynamoStore::create_table(&client, &table).await.unwrap();

    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let stream = t.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    assert!(t.latest_stream_arn().is_some_and(|a| !a.is_empty()));
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let keys: Vec<(&str, &KeyType)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(keys, [("pk", &KeyType::Hash), ("sk", &KeyType::Range)]);
    let gsis = t.global_secondary_indexes();
    type IndexShape<'a> = (&'a str, Vec<(&'a str, &'a KeyType)>, Vec<&'a str>);
    let shape: Vec<IndexShape<'_>> = gsis
        .iter()
        .map(|g| {
            assert_eq!(
                g.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::Include)
            );
            (
                g.index_name().unwrap(),
                g.key_schema()
                    .iter()
                    .map(|k| (k.attribute_name(), k.key_type()))
                    .collect(),
                g.projection()
                    .map(|p| p.non_key_attributes().iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let stable = vec!["flow_id", "deployment_id", "work_pool_name"];
    assert_eq!(
        shape,
        [
            (
                "gsi1",
                vec![("gsi1pk", &KeyType::Hash), ("gsi1sk", &KeyType::Range)],
                vec![
                    "id",
                    "flow_id",
                    "deployment_id",
                    "work_pool_name",
                    "state_name",
                    "sort_time"
                ]
            ),
            (
                "gsi2",
                vec![("deployment_id", &KeyType::Hash), ("est", &KeyType::Range)],
                vec!["flow_id", "work_pool_name"]
            ),
            (
                "gsi3",
                vec![("work_pool_name", &KeyType::Hash), ("est", &KeyType::Range)],
                vec!["flow_id", "deployment_id"]
            ),
            (
                "gsi4",
                vec![("runs", &KeyType::Hash), ("est", &KeyType::Range)],
                stable.clone()
            ),
            (
                "gsi5",
                vec![("runs", &KeyType::Hash), ("pk", &KeyType::Range)],
                stable
            ),
        ]
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

/// Two submitters holding the same version race for one claim, 20 times: exactly one wins,
/// the other gets `VersionConflict`, and only the winner's state and change are recorded.
/// Through the serializing proxy: moto's transactions are not isolated from each other
/// (see `common::serializing_proxy`), DynamoDB's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_with_the_same_version_have_exactly_one_winner() {
    let store: Arc<dyn Store> = Arc::new(common::fresh_store_behind_serializing_proxy().await);
    for round in 0..20 {
        let run = flow_run(Uuid::new_v4(), Some("pool"));
        let (stored, _) = store.create_flow_run(&run).await.unwrap();
        let now = Utc::now();
        let mut a = stored.clone();
        apply_state(&mut a, State::new(StateType::Pending, now), now);
        let mut b = stored.clone();
        apply_state(
            &mut b,
            State::new(StateType::Pending, now).with_message("b"),
            now,
        );
        let (sa, sb) = (Arc::clone(&store), Arc::clone(&store));
        let ta = tokio::spawn(async move { sa.update_flow_run(&a).await });
        let tb = tokio::spawn(async move { sb.update_flow_run(&b).await });
        let results = [ta.await.unwrap(), tb.await.unwrap()];
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = results.iter().find(|r| r.is_err()).unwrap();
        assert!(
            matches!(loser, Err(StoreError::VersionConflict(id)) if *id == run.id),
            "round {round}: {loser:?}"
        );
        let read = store.read_flow_run(run.id).await.unwrap();
        assert_eq!(read.version, stored.version + 1);
        assert_eq!(read.state_id, winners[0].state_id);
        let history: Vec<Uuid> = store
            .read_flow_run_states(run.id)
            .await
            .unwrap()
            .into_iter()
            .map(|st| st.id)
            .collect();
        assert_eq!(
            history,
            [stored.state_id.unwrap(), winners[0].state_id.unwrap()],
            "round {round}"
        );
        let changes = store
            .read_changes(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.flow_run_id == run.id)
            .map(|c| c.state_type)
            .collect::<Vec<_>>();
        assert_eq!(
            changes,
            [Some(StateType::Scheduled), Some(StateType::Pending)],
            "round {round}"
        );
    }
}

#[tokio::test]
async fn flow_run_items_hold_json_a_numeric_version_and_current_index_keys() {
    let (store, client) = common::fresh_store_and_client().await;
    let table = store.table().to_owned();
    let mut run = flow_run(Uuid::new_v4(), Some("pool"));
    run.parameters.insert("ratio".into(), json!(1.0));
    run.parameters.insert("zeta".into(), json!(1));
    run.parameters
        .insert("alpha".into(), json!({"b": 1, "a": 2}));
    let (stored, _) = store.create_flow_run(&run).await.unwrap();
    let pk = format!("RUN#{}", run.id);

    let item = raw_item(&client, &table, &pk, "RUN").await.unwrap();
    assert_eq!(item["version"], AttributeValue::N("1".into()));
    assert_eq!(item["gsi1pk"], s("RUNSTATE#SCHEDULED"));
    let sort = run
        .scheduled_time()
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    // Format 2: the SCHEDULED partition by due time, the others by expected start time.
    assert_eq!(item["format"], AttributeValue::N("2".into()));
    assert_eq!(item["gsi1sk"], s(&sort));
    let expected = run
        .expected_start_time
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(item["est"], s(&expected));
    assert_eq!(item["runs"], s("RUNS"));
    assert_eq!(item["work_pool_name"], s("pool"));
    assert_eq!(item["flow_id"], s(&run.flow_id.to_string()));
    let body = item["body"].as_s().unwrap();
    assert!(
        body.contains(r#""parameters":{"ratio":1.0,"zeta":1,"alpha":{"b":1,"a":2}}"#),
        "{body}"
    );
    // The compact body: no field an attribute holds, no default.
    let run_id = format!(r#""id":"{}""#, run.id);
    for left_out in [
        &run_id,
        r#""flow_id":"#,
        r#""work_pool_name":"#,
        "null",
        r#""tags":[]"#,
    ] {
        assert!(!body.contains(left_out), "{left_out} in {body}");
    }
    assert_eq!(store.read_flow_run(run.id).await.unwrap(), stored);

    let mut pending = stored.clone();
    let now = Utc::now();
    apply_state(&mut pending, State::new(StateType::Pending, now), now);
    let written = store.update_flow_run(&pending).await.unwrap();
    let item = raw_item(&client, &table, &pk, "RUN").await.unwrap();
    assert_eq!(item["version"], AttributeValue::N("2".into()));
    assert_eq!(item["gsi1pk"], s("RUNSTATE#PENDING"));
    assert_eq!(item["gsi1sk"], s(&expected));
    assert!(!item.contains_key("state_id"));
    let state = written.state.as_ref().unwrap();
    let history_sk = format!(
        "STATE#{}#{}",
        state
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        state.id
    );
    assert!(raw_item(&client, &table, &pk, &history_sk).await.is_some());

    let changes = store.read_changes(0, 10).await.unwrap();
    assert_eq!(changes.len(), 2);
    let outbox = raw_item(
        &client,
        &table,
        "OUTBOX",
        &format!("{:020}", changes[1].seq),
    )
    .await
    .unwrap();
    assert_eq!(outbox["flow_run_id"], s(&run.id.to_string()));
    assert_eq!(outbox["state_type"], s("PENDING"));
    let expires: i64 = outbox["expires_at"].as_n().unwrap().parse().unwrap();
    let in_a_week = (Utc::now() + Duration::days(7)).timestamp();
    assert!((in_a_week - 60..=in_a_week).contains(&expires), "{expires}");

    store.delete_flow_run(run.id).await.unwrap();
    assert!(raw_item(&client, &table, &pk, "RUN").await.is_none());
    assert!(raw_item(&client, &table, &pk, &history_sk).await.is_none());
    assert!(
        raw_item(&client, &table, &format!("STATE#{}", state.id), "STATE")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn deleting_a_run_frees_its_idempotency_key() {
    let store = common::fresh_store().await;
    let flow_id = Uuid::new_v4();
    let mut first = flow_run(flow_id, None);
    first.idempotency_key = Some("scheduled #1".into());
    store.create_flow_run(&first).await.unwrap();
    store.delete_flow_run(first.id).await.unwrap();
    let mut second = flow_run(flow_id, None);
    second.idempotency_key = Some("scheduled #1".into());
    let (run, created) = store.create_flow_run(&second).await.unwrap();
    assert!(created);
    assert_eq!(run.id, second.id);
    assert!(matches!(
        store.delete_flow_run(first.id).await,
        Err(StoreError::NotFound(m)) if m == "Flow run not found"
    ));
}

#[tokio::test]
async fn renaming_a_work_pool_moves_its_unique_name() {
    let store = common::fresh_store().await;
    let pool = work_pool("pool-a");
    store.create_work_pool(&pool).await.unwrap();
    store.create_work_pool(&work_pool("pool-c")).await.unwrap();
    let mut renamed = pool.clone();
    renamed.name = "pool-b".into();
    store.update_work_pool(&renamed).await.unwrap();

    assert_eq!(store.read_work_pool("pool-b").await.unwrap(), renamed);
    assert_eq!(store.read_work_pool_by_id(pool.id).await.unwrap(), renamed);
    assert!(matches!(
        store.read_work_pool("pool-a").await,
        Err(StoreError::NotFound(m)) if m == "Work pool \"pool-a\" not found."
    ));
    // The old name is free again, the new one is taken.
    store.create_work_pool(&work_pool("pool-a")).await.unwrap();
    let mut clash = renamed.clone();
    clash.name = "pool-c".into();
    let err = store.update_work_pool(&clash).await;
    assert!(
        matches!(&err, Err(StoreError::Conflict(m)) if m == "A work_pool with this name already exists."),
        "{err:?}"
    );
    let names: Vec<String> = store
        .list_work_pools(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["pool-a", "pool-b", "pool-c"]);
    let gone = work_pool("ghost");
    assert!(matches!(
        store.update_work_pool(&gone).await,
        Err(StoreError::NotFound(m)) if m == "Work pool \"ghost\" not found."
    ));
}

#[tokio::test]
async fn api_key_conflicts_name_the_taken_key() {
    let store = common::fresh_store().await;
    let key = pushpool_core::model::ApiKey {
        id: Uuid::new_v4(),
        name: "ci".into(),
        hash: "a".repeat(64),
        created: Utc::now(),
        revoked: false,
    };
    store.create_api_key(&key).await.unwrap();
    let mut same_hash = key.clone();
    same_hash.id = Uuid::new_v4();
    same_hash.name = "laptop".into();
    assert!(matches!(
        store.create_api_key(&same_hash).await,
        Err(StoreError::Conflict(m)) if m == "This API key already exists."
    ));
    let mut same_name = key.clone();
    same_name.id = Uuid::new_v4();
    same_name.hash = "b".repeat(64);
    assert!(matches!(
        store.create_api_key(&same_name).await,
        Err(StoreError::Conflict(m)) if m == "An API key named \"ci\" already exists."
    ));
    assert_eq!(store.list_api_keys().await.unwrap(), [key]);
}

#[tokio::test]
async fn unfiltered_run_listings_merge_the_state_partitions_newest_first() {
    let store = common::fresh_store().await;
    let flow_id = Uuid::new_v4();
    let base = Utc::now();
    let mut ids = Vec::new();
    for minutes in [0i64, 10, 20, 30, 40] {
        let mut run = flow_run(flow_id, Some("pool"));
        let at = base + Duration::minutes(minutes);
        if let Some(st) = run.state.as_mut() {
            st.state_details.scheduled_time = Some(at);
        }
        run.expected_start_time = Some(at);
        store.create_flow_run(&run).await.unwrap();
        ids.push(run.id);
    }
    // Spread the runs over three state partitions; a new state keeps the scheduled time.
    for (i, state_type) in [(1, StateType::Running), (3, StateType::Completed)] {
        let mut run = store.read_flow_run(ids[i]).await.unwrap();
        let mut state = State::new(state_type, base);
        state.state_details.scheduled_time = run.scheduled_time();
        apply_state(&mut run, state, base);
        store.update_flow_run(&run).await.unwrap();
    }
    let list = |page: Page| {
        let store = &store;
        async move {
            store
                .list_flow_runs(&FlowRunQuery {
                    flow_ids: Some(vec![flow_id]),
                    sort: FlowRunSort::ExpectedStartTimeDesc,
                    page,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    assert_eq!(list(Page::default()).await, newest_first);
    assert_eq!(
        list(Page {
            offset: 1,
            limit: Some(3)
        })
        .await,
        newest_first[1..4]
    );
    let other_flow = store
        .list_flow_runs(&FlowRunQuery {
            flow_ids: Some(vec![Uuid::new_v4()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other_flow.is_empty());
}

#[tokio::test]
async fn an_oversized_block_document_fails_without_echoing_its_secret() {
    let store = common::fresh_store().await;
    let now = Utc::now();
    let bt = BlockType {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: "Secret".into(),
        slug: "secret".into(),
        logo_url: None,
        documentation_url: None,
        description: None,
        code_example: None,
        is_protected: false,
    };
    store.create_block_type(&bt).await.unwrap();
    let schema = BlockSchema {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        checksum: "sha256:def".into(),
        fields: json!({"secret_fields": ["value"]}),
        block_type_id: bt.id,
        block_type: None,
        capabilities: vec![],
        version: "1".into(),
    };
    store.create_block_schema(&schema).await.unwrap();
    let secret = format!("hunter2-{}", "x".repeat(450 * 1024));
    let doc = BlockDocument {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: Some("big".into()),
        data: json!({ "value": secret }),
        block_schema_id: schema.id,
        block_type_id: bt.id,
        is_anonymous: false,
    };
    let err = store.create_block_document(&doc).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    let mut chain = format!("{err:?}");
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        chain.push_str(&e.to_string());
        source = e.source();
    }
    assert!(!chain.contains("hunter2"), "the error echoes the secret");
    assert!(matches!(
        store.read_block_document(doc.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The longest names the API accepts (`pushpool_api::names::MAX_NAME_CHARS`, 200 characters)
/// of the widest characters (4 bytes in UTF-8) fit DynamoDB's key limits (a sort key of at most
/// 1024 bytes; moto enforces it): the deployment's unique key `<flow id>#<name>` is 837 bytes.
#[tokio::test]
async fn the_longest_names_the_api_accepts_fit_in_the_keys() {
    let store = common::fresh_store().await;
    let name = "\u{1F600}".repeat(200);
    assert_eq!(name.len(), 800);
    let pool = work_pool(&name);
    store.create_work_pool(&pool).await.unwrap();
    assert_eq!(store.read_work_pool(&name).await.unwrap(), pool);
    let flow = pushpool_store::conformance::flow(&name);
    store.upsert_flow(&flow).await.unwrap();
    let deployment = pushpool_store::conformance::deployment(flow.id, &name, &name);
    store.create_deployment(&deployment).await.unwrap();
    assert_eq!(
        store.read_deployment_by_name(&name, &name).await.unwrap(),
        deployment
    );
    store.delete_work_pool(&name).await.unwrap();
    assert!(matches!(
        store.read_work_pool(&name).await,
        Err(StoreError::NotFound(_))
    ));
}
