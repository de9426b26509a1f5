//! The store conformance suite: the contract every [`Store`] adapter passes.
//!
//! Each check is a public async function taking a fresh store; [`store_conformance_tests!`]
//! expands them into `#[tokio::test]`s for an adapter, given an expression that builds a new,
//! empty store (ripgrep's `tests/macros.rs` pattern). A new adapter is done when the suite
//! passes unchanged:
//!
//! ```ignore
//! pushpool_store::store_conformance_tests!(sqlite, pushpool_store_sqlite::SqliteStore::in_memory().unwrap());
//! ```

use std::sync::Arc;

use chrono::Utc;
use pushpool_core::model::{
    BlockDocument, BlockSchema, BlockType, Deployment, Flow, FlowRun, StorageConfiguration,
    WorkPool, WorkPoolStatus,
};
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_core::task_orchestration::apply_task_state;
use pushpool_core::task_run::TaskRun;
use serde_json::json;
use uuid::Uuid;

use pushpool_core::filter::{FlowRunFilter, FlowRunSort};

mod events;
mod logs;
pub use events::*;
pub use logs::*;

use crate::{CounterChange, FlowRunQuery, Page, Store, StoreError, TaskRunFilter, Transaction};

/// Schedule marks: put creates or replaces the mark of (deployment, schedule); list returns
/// them all; deleting a deployment's marks leaves the others.
pub async fn schedule_marks(store: DynStore) {
    use crate::ScheduleMark;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let t = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mark = |deployment_id, schedule_id, fingerprint: &str| ScheduleMark {
        deployment_id,
        schedule_id,
        fingerprint: fingerprint.into(),
        last: Some(t),
        next_check: t,
    };
    assert_eq!(store.list_schedule_marks().await.unwrap(), vec![]);
    let (s1, s2, s3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    store.put_schedule_mark(&mark(a, s1, "1")).await.unwrap();
    store.put_schedule_mark(&mark(a, s2, "1")).await.unwrap();
    store.put_schedule_mark(&mark(b, s3, "1")).await.unwrap();
    store.put_schedule_mark(&mark(a, s1, "2")).await.unwrap();
    let mut marks = store.list_schedule_marks().await.unwrap();
    marks.sort_by_key(|m| (m.schedule_id == s3, m.schedule_id == s2));
    assert_eq!(
        marks,
        vec![mark(a, s1, "2"), mark(a, s2, "1"), mark(b, s3, "1")]
    );
    store.delete_schedule_marks(a).await.unwrap();
    assert_eq!(
        store.list_schedule_marks().await.unwrap(),
        vec![mark(b, s3, "1")]
    );
    store.delete_schedule_marks(Uuid::new_v4()).await.unwrap();
}

/// Flow run inputs: one per (run, key), a second is a conflict; read by key; listed oldest
/// first, per run; deleted by key (a missing one is `NotFound`).
pub async fn flow_run_inputs(store: DynStore) {
    use pushpool_core::run_input::FlowRunInput;
    let (run, other) = (Uuid::new_v4(), Uuid::new_v4());
    let t0 = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let input = |flow_run_id, key: &str, seconds: i64| FlowRunInput {
        id: Uuid::new_v4(),
        created: t0 + chrono::Duration::seconds(seconds),
        updated: t0 + chrono::Duration::seconds(seconds),
        flow_run_id,
        key: key.into(),
        value: format!("\"{key}\""),
        sender: (seconds == 1).then(|| "flow-run-a".to_owned()),
    };
    assert_eq!(store.list_flow_run_inputs(run).await.unwrap(), vec![]);
    // Created out of key order: the listing follows creation.
    let (b, a, c) = (
        input(run, "b-key", 0),
        input(run, "a-key", 1),
        input(other, "a-key", 2),
    );
    for i in [&b, &a, &c] {
        store.create_flow_run_input(i).await.unwrap();
    }
    let dup = store.create_flow_run_input(&input(run, "a-key", 3)).await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m == "A flow run input with this key already exists."),
        "{dup:?}"
    );
    assert_eq!(store.read_flow_run_input(run, "a-key").await.unwrap(), a);
    let missing = store.read_flow_run_input(run, "c-key").await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound(m)) if m == "Flow run input not found"),
        "{missing:?}"
    );
    assert_eq!(
        store.list_flow_run_inputs(run).await.unwrap(),
        vec![b.clone(), a]
    );
    store.delete_flow_run_input(run, "a-key").await.unwrap();
    let missing = store.delete_flow_run_input(run, "a-key").await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound(m)) if m == "Flow run input not found"),
        "{missing:?}"
    );
    assert_eq!(store.list_flow_run_inputs(run).await.unwrap(), vec![b]);
    assert_eq!(store.list_flow_run_inputs(other).await.unwrap(), vec![c]);
}

/// A store under test.
pub type DynStore = Arc<dyn Store>;

/// A work pool fixture named `name`.
pub fn work_pool(name: &str) -> WorkPool {
    let now = Utc::now();
    WorkPool {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: name.into(),
        description: None,
        r#type: "ecs:push".into(),
        base_job_template: json!({}),
        is_paused: false,
        concurrency_limit: None,
        status: WorkPoolStatus::Ready,
        default_queue_id: Uuid::new_v4(),
        storage_configuration: StorageConfiguration::default(),
        active_slots: None,
    }
}

/// A flow fixture.
pub fn flow(name: &str) -> Flow {
    let now = Utc::now();
    Flow {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: name.into(),
        tags: vec![],
        labels: Default::default(),
    }
}

/// A deployment fixture of `flow_id`.
pub fn deployment(flow_id: Uuid, name: &str, pool: &str) -> Deployment {
    let now = Utc::now();
    Deployment {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: name.into(),
        version: None,
        description: None,
        flow_id,
        paused: false,
        schedules: vec![],
        concurrency_limit: None,
        global_concurrency_limit: None,
        concurrency_options: None,
        job_variables: Default::default(),
        parameters: Default::default(),
        tags: vec![],
        labels: Default::default(),
        work_queue_name: Some("default".into()),
        work_queue_id: None,
        last_polled: None,
        parameter_openapi_schema: None,
        path: None,
        pull_steps: None,
        entrypoint: None,
        storage_document_id: None,
        infrastructure_document_id: None,
        created_by: None,
        updated_by: None,
        work_pool_name: Some(pool.into()),
        status: "READY".into(),
        enforce_parameter_schema: false,
    }
}

/// A SCHEDULED flow run fixture of `flow_id`, due now.
pub fn flow_run(flow_id: Uuid, pool: Option<&str>) -> FlowRun {
    let now = Utc::now();
    let id = Uuid::new_v4();
    let mut run = FlowRun::new(id, flow_id, "quiet-otter".into(), now);
    run.work_pool_name = pool.map(str::to_owned);
    let mut state = State::new(StateType::Scheduled, now);
    state.state_details.flow_run_id = Some(id);
    state.state_details.scheduled_time = Some(now);
    apply_state(&mut run, state, now);
    run
}

/// Work pools: create, unique name, read by name and id, update, list, delete.
pub async fn work_pools_crud(store: DynStore) {
    let pool = work_pool("pool-a");
    store.create_work_pool(&pool).await.unwrap();
    let dup = store.create_work_pool(&work_pool("pool-a")).await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m == "A work pool with this name already exists."),
        "{dup:?}"
    );
    assert_eq!(store.read_work_pool("pool-a").await.unwrap(), pool);
    assert_eq!(store.read_work_pool_by_id(pool.id).await.unwrap(), pool);
    let mut changed = pool.clone();
    changed.description = Some("new".into());
    store.update_work_pool(&changed).await.unwrap();
    assert_eq!(
        store
            .read_work_pool("pool-a")
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("new")
    );
    store.create_work_pool(&work_pool("pool-b")).await.unwrap();
    let names: Vec<String> = store
        .list_work_pools(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["pool-a", "pool-b"]);
    let limited = store
        .list_work_pools(Page {
            offset: 1,
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].name, "pool-b");
    store.delete_work_pool("pool-a").await.unwrap();
    let missing = store.read_work_pool("pool-a").await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound(m)) if m == "Work pool \"pool-a\" not found."),
        "{missing:?}"
    );
}

/// Block types, schemas and documents: unique keys and lookups by slug, checksum and name.
pub async fn blocks_crud(store: DynStore) {
    let now = Utc::now();
    let bt = BlockType {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: "AWS Credentials".into(),
        slug: "aws-credentials".into(),
        logo_url: None,
        documentation_url: None,
        description: None,
        code_example: None,
        is_protected: false,
    };
    store.create_block_type(&bt).await.unwrap();
    assert!(matches!(
        store.create_block_type(&bt).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .read_block_type_by_slug("aws-credentials")
            .await
            .unwrap(),
        bt
    );
    let schema = BlockSchema {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        checksum: "sha256:abc".into(),
        fields: json!({"secret_fields": ["aws_secret_access_key"]}),
        block_type_id: bt.id,
        block_type: None,
        capabilities: vec![],
        version: "0.7.12".into(),
    };
    store.create_block_schema(&schema).await.unwrap();
    assert_eq!(
        store
            .read_block_schema_by_checksum("sha256:abc", Some("0.7.12"))
            .await
            .unwrap()
            .id,
        schema.id
    );
    assert_eq!(
        store
            .read_block_schema_by_checksum("sha256:abc", None)
            .await
            .unwrap()
            .id,
        schema.id
    );
    assert!(matches!(
        store
            .read_block_schema_by_checksum("sha256:abc", Some("9.9"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let doc = BlockDocument {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: Some("my-aws-creds".into()),
        data: json!({"aws_secret_access_key": "s"}),
        block_schema_id: schema.id,
        block_type_id: bt.id,
        is_anonymous: false,
    };
    store.create_block_document(&doc).await.unwrap();
    let mut dup = doc.clone();
    dup.id = Uuid::new_v4();
    let err = store.create_block_document(&dup).await;
    assert!(
        matches!(&err, Err(StoreError::Conflict(m)) if m == "Block already exists"),
        "{err:?}"
    );
    assert_eq!(
        store
            .read_block_document_by_name(bt.id, "my-aws-creds")
            .await
            .unwrap(),
        doc
    );
    let mut changed = doc.clone();
    changed.data = json!({"aws_secret_access_key": "t"});
    store.update_block_document(&changed).await.unwrap();
    assert_eq!(store.read_block_document(doc.id).await.unwrap(), changed);
    store.delete_block_document(doc.id).await.unwrap();
    assert!(matches!(
        store.read_block_document(doc.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Flows upsert by name; deployments are unique per flow and found by `flow/deployment` name.
pub async fn flows_and_deployments(store: DynStore) {
    let f = flow("my-flow");
    let (created, is_new) = store.upsert_flow(&f).await.unwrap();
    assert!(is_new);
    let (again, is_new) = store.upsert_flow(&flow("my-flow")).await.unwrap();
    assert!(!is_new);
    assert_eq!(again.id, created.id);
    let d = deployment(f.id, "my-deployment", "pool");
    store.create_deployment(&d).await.unwrap();
    assert!(matches!(
        store
            .create_deployment(&deployment(f.id, "my-deployment", "pool"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .read_deployment_by_name("my-flow", "my-deployment")
            .await
            .unwrap(),
        d
    );
    assert!(matches!(
        store
            .read_deployment_by_name("other", "my-deployment")
            .await,
        Err(StoreError::NotFound(_))
    ));
    let mut changed = d.clone();
    changed.paused = true;
    store.update_deployment(&changed).await.unwrap();
    assert!(store.read_deployment(d.id).await.unwrap().paused);
    store.delete_deployment(d.id).await.unwrap();
    assert!(matches!(
        store.read_deployment(d.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Variables: unique names (Prefect's conflict message), read by id and name, a rename moves
/// the name (and a taken name is a conflict), delete, listing by name; values round-trip as
/// written (object key order, `1` vs `1.0`).
pub async fn variables_crud(store: DynStore) {
    let variable = |name: &str, value: serde_json::Value| pushpool_core::model::Variable {
        id: Uuid::new_v4(),
        created: Utc::now(),
        updated: Utc::now(),
        name: name.into(),
        value,
        tags: vec!["t".into()],
    };
    let b = variable(
        "b_var",
        json!({"z": 1, "a": 1.0, "list": [true, null, "x"]}),
    );
    let a = variable("a-var", json!("text"));
    store.create_variable(&b).await.unwrap();
    store.create_variable(&a).await.unwrap();
    assert!(matches!(
        store.create_variable(&variable("a-var", json!(1))).await,
        Err(StoreError::Conflict(m)) if m == "A variable with the name 'a-var' already exists."
    ));
    let read = store.read_variable(b.id).await.unwrap();
    assert_eq!(read, b);
    assert_eq!(
        serde_json::to_string(&read.value).unwrap(),
        r#"{"z":1,"a":1.0,"list":[true,null,"x"]}"#
    );
    assert_eq!(store.read_variable_by_name("a-var").await.unwrap(), a);
    let names = |v: Vec<pushpool_core::model::Variable>| -> Vec<String> {
        v.into_iter().map(|v| v.name).collect()
    };
    assert_eq!(
        names(store.list_variables(Page::default()).await.unwrap()),
        ["a-var", "b_var"]
    );
    let mut renamed = b.clone();
    renamed.name = "c".into();
    renamed.value = json!(42);
    store.update_variable(&renamed).await.unwrap();
    assert_eq!(store.read_variable_by_name("c").await.unwrap(), renamed);
    assert!(matches!(
        store.read_variable_by_name("b_var").await,
        Err(StoreError::NotFound(m)) if m == "Variable not found."
    ));
    let mut clash = renamed.clone();
    clash.name = "a-var".into();
    assert!(matches!(
        store.update_variable(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.read_variable(b.id).await.unwrap(), renamed);
    store.delete_variable(a.id).await.unwrap();
    assert!(matches!(
        store.delete_variable(a.id).await,
        Err(StoreError::NotFound(m)) if m == "Variable not found."
    ));
    assert!(matches!(
        store.update_variable(&a).await,
        Err(StoreError::NotFound(m)) if m == "Variable not found."
    ));
    assert_eq!(
        names(store.list_variables(Page::default()).await.unwrap()),
        ["c"]
    );
}

/// Work queues: names unique within a pool (the same name in another pool is fine), read by
/// id and by (pool, name), a rename moves the unique name, delete, listing by pool.
pub async fn work_queues_crud(store: DynStore) {
    use pushpool_core::model::WorkQueue;
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    let t = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let queue = |pool: Uuid, name: &str, priority: i64| WorkQueue {
        id: Uuid::new_v4(),
        created: t,
        updated: t,
        name: name.into(),
        description: Some(String::new()),
        is_paused: false,
        concurrency_limit: None,
        priority,
        work_pool_id: pool,
        last_polled: None,
    };
    let d1 = queue(p1, "default", 1);
    let hi = queue(p1, "high#1", 2);
    let d2 = queue(p2, "default", 1);
    for q in [&d1, &hi, &d2] {
        store.create_work_queue(q).await.unwrap();
    }
    assert!(matches!(
        store.create_work_queue(&queue(p1, "default", 3)).await,
        Err(StoreError::Conflict(m)) if m == "A work queue with the name 'default' already exists in this work pool."
    ));
    assert_eq!(store.read_work_queue(hi.id).await.unwrap(), hi);
    assert_eq!(
        store.read_work_queue_by_name(p2, "default").await.unwrap(),
        d2
    );
    assert_eq!(
        store.read_work_queue_by_name(p1, "high#1").await.unwrap(),
        hi
    );
    assert!(matches!(
        store.read_work_queue_by_name(p2, "high#1").await,
        Err(StoreError::NotFound(m)) if m == "Work queue not found"
    ));
    let ids = |mut v: Vec<WorkQueue>| -> Vec<Uuid> {
        v.sort_by_key(|q| (q.work_pool_id == p2, q.priority));
        v.into_iter().map(|q| q.id).collect()
    };
    assert_eq!(
        ids(store.list_work_queues(Some(p1)).await.unwrap()),
        [d1.id, hi.id]
    );
    assert_eq!(
        ids(store.list_work_queues(None).await.unwrap()),
        [d1.id, hi.id, d2.id]
    );
    let mut renamed = hi.clone();
    renamed.name = "low".into();
    renamed.is_paused = true;
    renamed.concurrency_limit = Some(3);
    store.update_work_queue(&renamed).await.unwrap();
    assert_eq!(
        store.read_work_queue_by_name(p1, "low").await.unwrap(),
        renamed
    );
    assert!(matches!(
        store.read_work_queue_by_name(p1, "high#1").await,
        Err(StoreError::NotFound(_))
    ));
    let mut clash = renamed.clone();
    clash.name = "default".into();
    assert!(matches!(
        store.update_work_queue(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.read_work_queue(hi.id).await.unwrap(), renamed);
    store.delete_work_queue(hi.id).await.unwrap();
    assert!(matches!(
        store.delete_work_queue(hi.id).await,
        Err(StoreError::NotFound(m)) if m == "Work queue not found"
    ));
    assert!(matches!(
        store.update_work_queue(&renamed).await,
        Err(StoreError::NotFound(m)) if m == "Work queue not found"
    ));
    // The name is free again.
    store
        .create_work_queue(&queue(p1, "high#1", 2))
        .await
        .unwrap();
    assert_eq!(store.list_work_queues(Some(p1)).await.unwrap().len(), 2);
}

/// Artifacts: create, read, replace, delete and list; `data` round-trips as written.
pub async fn artifacts_crud(store: DynStore) {
    let artifact = |key: Option<&str>| pushpool_core::model::Artifact {
        id: Uuid::new_v4(),
        created: Utc::now(),
        updated: Utc::now(),
        key: key.map(Into::into),
        r#type: Some("table".into()),
        description: Some("# rows".into()),
        data: Some(json!([{"b": 1, "a": 2.0}])),
        metadata_: None,
        flow_run_id: Some(Uuid::new_v4()),
        task_run_id: None,
    };
    let a = artifact(Some("report"));
    let b = artifact(Some("report"));
    let c = artifact(None);
    for x in [&a, &b, &c] {
        store.create_artifact(x).await.unwrap();
    }
    let read = store.read_artifact(a.id).await.unwrap();
    assert_eq!(read, a);
    assert_eq!(
        serde_json::to_string(&read.data).unwrap(),
        r#"[{"b":1,"a":2.0}]"#
    );
    let mut changed = b.clone();
    changed.data = Some(json!("new"));
    store.update_artifact(&changed).await.unwrap();
    assert_eq!(store.read_artifact(b.id).await.unwrap(), changed);
    store.delete_artifact(a.id).await.unwrap();
    assert!(matches!(
        store.read_artifact(a.id).await,
        Err(StoreError::NotFound(m)) if m == "Artifact not found."
    ));
    assert!(matches!(
        store.delete_artifact(a.id).await,
        Err(StoreError::NotFound(m)) if m == "Artifact not found."
    ));
    assert!(matches!(
        store.update_artifact(&a).await,
        Err(StoreError::NotFound(m)) if m == "Artifact not found."
    ));
    let mut ids: Vec<Uuid> = store
        .list_artifacts(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    ids.sort();
    let mut expected = vec![b.id, c.id];
    expected.sort();
    assert_eq!(ids, expected);
}

/// Flow run writes are conditional on the version: of two writers holding the same version,
/// exactly one wins; the state history records each new state once.
pub async fn flow_run_conditional_writes(store: DynStore) {
    let run = flow_run(Uuid::new_v4(), Some("pool"));
    let (stored, created) = store.create_flow_run(&run).await.unwrap();
    assert!(created);
    let now = Utc::now();
    let mut a = stored.clone();
    apply_state(&mut a, State::new(StateType::Pending, now), now);
    let mut b = stored.clone();
    apply_state(&mut b, State::new(StateType::Pending, now), now);
    let won = store.update_flow_run(&a).await.unwrap();
    assert_eq!(won.version, stored.version + 1);
    let lost = store.update_flow_run(&b).await;
    assert!(
        matches!(lost, Err(StoreError::VersionConflict(id)) if id == run.id),
        "{lost:?}"
    );
    let read = store.read_flow_run(run.id).await.unwrap();
    assert_eq!(read.state_type, Some(StateType::Pending));
    assert_eq!(read.version, won.version);
    let mut pid = read.clone();
    pid.infrastructure_pid = Some("arn:aws:ecs:task/1".into());
    pid.submission_attempt = 3;
    // The run's concurrency slots are kept beside it (never sent to clients).
    let slots = pushpool_core::model::ConcurrencySlots {
        counters: vec!["slots:work_pool:p".into(), "slots:deployment:d".into()],
        held: vec!["slots:work_pool:p".into()],
        lease_expires: Some(now + chrono::Duration::seconds(300)),
        lease_seconds: 300,
    };
    pid.concurrency_slots = slots.clone();
    store.update_flow_run(&pid).await.unwrap();
    let read = store.read_flow_run(run.id).await.unwrap();
    assert_eq!(
        read.infrastructure_pid.as_deref(),
        Some("arn:aws:ecs:task/1")
    );
    assert_eq!(read.submission_attempt, 3);
    assert_eq!(read.concurrency_slots, slots);
    assert!(
        serde_json::to_value(&read)
            .unwrap()
            .get("concurrency_slots")
            .is_none()
    );
    let history: Vec<StateType> = store
        .read_flow_run_states(run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.r#type)
        .collect();
    assert_eq!(history, [StateType::Scheduled, StateType::Pending]);
    let state_id = read.state_id.unwrap();
    assert_eq!(
        store.read_state(state_id).await.unwrap().r#type,
        StateType::Pending
    );
    let mut gone = read.clone();
    gone.id = Uuid::new_v4();
    assert!(matches!(
        store.update_flow_run(&gone).await,
        Err(StoreError::NotFound(_))
    ));
}

/// An idempotency key already used for a flow returns the first run.
pub async fn flow_run_idempotency_key(store: DynStore) {
    let flow_id = Uuid::new_v4();
    let mut first = flow_run(flow_id, None);
    first.idempotency_key = Some("k1".into());
    let (a, created) = store.create_flow_run(&first).await.unwrap();
    assert!(created);
    let mut second = flow_run(flow_id, None);
    second.idempotency_key = Some("k1".into());
    let (b, created) = store.create_flow_run(&second).await.unwrap();
    assert!(!created);
    assert_eq!(b.id, a.id);
}

/// Filters by state type, deployment, pool and id, with paging.
pub async fn flow_run_filters(store: DynStore) {
    let flow_id = Uuid::new_v4();
    let dep = Uuid::new_v4();
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut run = flow_run(flow_id, Some(if i % 2 == 0 { "even" } else { "odd" }));
        if i < 2 {
            run.deployment_id = Some(dep);
        }
        let (run, _) = store.create_flow_run(&run).await.unwrap();
        ids.push(run.id);
    }
    let mut running = store.read_flow_run(ids[3]).await.unwrap();
    let now = Utc::now();
    apply_state(&mut running, State::new(StateType::Running, now), now);
    store.update_flow_run(&running).await.unwrap();

    let ids_of = |runs: Vec<FlowRun>| {
        let mut v: Vec<Uuid> = runs.into_iter().map(|r| r.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    let scheduled = FlowRunQuery::new(FlowRunFilter::state_types(&[StateType::Scheduled]));
    assert_eq!(
        ids_of(store.list_flow_runs(&scheduled).await.unwrap()),
        sorted(ids[..3].to_vec())
    );
    assert_eq!(store.count_flow_runs(&scheduled).await.unwrap(), 3);
    let by_dep = FlowRunQuery {
        deployment_ids: Some(vec![dep]),
        ..Default::default()
    };
    assert_eq!(
        ids_of(store.list_flow_runs(&by_dep).await.unwrap()),
        sorted(ids[..2].to_vec())
    );
    let by_pool = FlowRunQuery {
        work_pool_names: Some(vec!["odd".into()]),
        ..FlowRunQuery::new(FlowRunFilter::state_types(&[StateType::Running]))
    };
    assert_eq!(
        ids_of(store.list_flow_runs(&by_pool).await.unwrap()),
        vec![ids[3]]
    );
    let by_id = FlowRunQuery {
        page: Page {
            offset: 0,
            limit: Some(1),
        },
        ..FlowRunQuery::new(FlowRunFilter::ids(&[ids[0], ids[2]]))
    };
    assert_eq!(store.list_flow_runs(&by_id).await.unwrap().len(), 1);
    assert_eq!(store.count_flow_runs(&by_id).await.unwrap(), 2);
    store.delete_flow_run(ids[0]).await.unwrap();
    assert!(matches!(
        store.read_flow_run(ids[0]).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Every criterion of Prefect's `FlowRunFilter`, each sort and paging: the adapter answers
/// exactly what [`FlowRunQuery::matches`] and [`FlowRunSort::compare`] say, over a set of
/// runs that differ in every filtered field (names, tags, states, times, deployments, pools,
/// parents, idempotency keys, creators).
pub async fn flow_run_filter_criteria(store: DynStore) {
    let flow_a = Uuid::new_v4();
    let flow_b = Uuid::new_v4();
    let dep = Uuid::new_v4();
    let parent = Uuid::new_v4();
    let creator = Uuid::new_v4();
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let names = [
        "nightly-etl",
        "Nightly_Load",
        "adhoc",
        "backfill-2025",
        "etl%raw",
        "zeta",
    ];
    let mut all = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut run = flow_run(
            if i % 2 == 0 { flow_a } else { flow_b },
            (i % 3 != 2).then_some(if i % 2 == 0 { "even" } else { "odd" }),
        );
        run.name = (*name).into();
        let at = base + chrono::Duration::minutes(i as i64 * 10);
        run.expected_start_time = Some(at);
        run.tags = match i {
            0 => vec!["nightly".into(), "etl".into()],
            1 => vec!["nightly".into()],
            2 => vec![],
            3 => vec!["etl".into()],
            _ => vec!["raw".into()],
        };
        if i < 3 {
            run.deployment_id = Some(dep);
            run.work_queue_name = Some("default".into());
            run.created_by = Some(
                json!({"id": creator.to_string(), "type": "DEPLOYMENT", "display_value": "d"}),
            );
        }
        if i == 4 {
            run.parent_task_run_id = Some(parent);
            run.flow_version = Some("1.2".into());
        }
        if i % 2 == 1 {
            run.idempotency_key = Some(format!("key-{i}"));
        }
        let (mut run, _) = store.create_flow_run(&run).await.unwrap();
        let now = at + chrono::Duration::seconds(5);
        match i {
            0 | 1 => {
                apply_state(&mut run, State::new(StateType::Running, now), now);
                run = store.update_flow_run(&run).await.unwrap();
                if i == 0 {
                    let end = now + chrono::Duration::seconds(60);
                    apply_state(&mut run, State::new(StateType::Completed, end), end);
                    run = store.update_flow_run(&run).await.unwrap();
                }
            }
            3 => {
                let mut late = State::new(StateType::Scheduled, now);
                late.name = "Late".into();
                apply_state(&mut run, late, now);
                run = store.update_flow_run(&run).await.unwrap();
            }
            _ => {}
        }
        all.push(run);
    }
    let t = |m: i64| (base + chrono::Duration::minutes(m)).to_rfc3339();
    let bodies = vec![
        json!({}),
        json!({"id": {"any_": [all[0].id, all[5].id]}}),
        json!({"id": {"not_any_": [all[0].id]}}),
        json!({"id": {"any_": []}}),
        json!({"name": {"any_": ["adhoc", "zeta"]}}),
        json!({"name": {"like_": "NIGHTLY"}}),
        json!({"name": {"like_": "etl%raw"}}),
        json!({"name": {"like_": "y_l"}}),
        json!({"tags": {"all_": ["nightly", "etl"]}}),
        json!({"tags": {"any_": ["etl", "raw"]}}),
        json!({"tags": {"any_": []}}),
        json!({"tags": {"is_null_": true}}),
        json!({"tags": {"is_null_": false, "all_": ["nightly"]}}),
        json!({"tags": {"operator": "or_", "is_null_": true, "all_": ["raw"]}}),
        json!({"deployment_id": {"any_": [dep]}}),
        json!({"deployment_id": {"is_null_": true}}),
        json!({"deployment_id": {"operator": "or_", "is_null_": true, "any_": [dep]}}),
        json!({"work_queue_name": {"any_": ["default"]}}),
        json!({"work_queue_name": {"is_null_": true}}),
        json!({"state": {"type": {"any_": ["RUNNING", "COMPLETED"]}}}),
        json!({"state": {"type": {"not_any_": ["SCHEDULED"]}}}),
        json!({"state": {"name": {"any_": ["Late"]}}}),
        json!({"state": {"name": {"not_any_": ["Late"]}, "type": {"any_": ["SCHEDULED"]}}}),
        json!({"state": {"operator": "or_", "name": {"any_": ["Late"]}, "type": {"any_": ["COMPLETED"]}}}),
        json!({"state": {}}),
        json!({"flow_version": {"any_": ["1.2"]}}),
        json!({"start_time": {"after_": t(15)}}),
        json!({"start_time": {"before_": t(10)}}),
        json!({"start_time": {"is_null_": false}}),
        json!({"end_time": {"is_null_": true}}),
        json!({"end_time": {"after_": t(0)}}),
        json!({"expected_start_time": {"after_": t(10), "before_": t(30)}}),
        json!({"next_scheduled_start_time": {"before_": t(100)}}),
        json!({"parent_task_run_id": {"any_": [parent]}}),
        json!({"parent_task_run_id": {"is_null_": true}}),
        json!({"idempotency_key": {"any_": ["key-1", "key-3"]}}),
        json!({"idempotency_key": {"not_any_": ["key-1"]}}),
        json!({"created_by": {"id_": [creator]}}),
        json!({"created_by": {"type_": ["AUTOMATION"]}}),
        json!({"created_by": {"is_null_": true}}),
        json!({"operator": "or_", "name": {"any_": ["zeta"]}, "tags": {"any_": ["nightly"]}}),
        json!({"operator": "or_", "name": {"any_": ["zeta"]}, "deployment_id": {"any_": [dep]}}),
        json!({"operator": "or_", "id": {}, "name": {"any_": ["nobody"]}}),
        json!({"state": {"type": {"any_": ["SCHEDULED"]}}, "tags": {"any_": ["etl"]}}),
    ];
    // A few answers spelled out, so that the reference itself is checked.
    let expect = |body: &serde_json::Value, want: &[usize]| {
        let filter: FlowRunFilter = serde_json::from_value(body.clone()).unwrap();
        let got: Vec<&str> = all
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| r.name.as_str())
            .collect();
        let want: Vec<&str> = want.iter().map(|i| names[*i]).collect();
        assert_eq!(got, want, "reference answer for {body}");
    };
    expect(&bodies[5], &[0, 1]);
    expect(&bodies[6], &[4]);
    expect(&bodies[7], &[1]);
    expect(&bodies[13], &[2, 4, 5]);
    expect(&bodies[22], &[2, 4, 5]);
    expect(&bodies[43], &[3]);
    let mut flows_and_pools = vec![
        FlowRunQuery::default(),
        FlowRunQuery {
            flow_ids: Some(vec![flow_b]),
            ..Default::default()
        },
        FlowRunQuery {
            work_pool_names: Some(vec!["even".into()]),
            ..Default::default()
        },
        FlowRunQuery {
            deployment_ids: Some(vec![]),
            ..Default::default()
        },
    ];
    for body in &bodies {
        let filter: FlowRunFilter = serde_json::from_value(body.clone()).unwrap();
        flows_and_pools.push(FlowRunQuery::new(filter));
    }
    // Every sort over the whole set; then each filter with one sort (in turn), so that the
    // suite stays quick on an emulator.
    let mut runs_of = Vec::new();
    for sort in FlowRunSort::ALL {
        runs_of.push((FlowRunQuery::default(), sort));
    }
    for (i, query) in flows_and_pools.into_iter().enumerate() {
        runs_of.push((query, FlowRunSort::ALL[i % FlowRunSort::ALL.len()]));
    }
    for (query, sort) in runs_of {
        {
            let mut want: Vec<&FlowRun> = all.iter().filter(|r| query.matches(r)).collect();
            want.sort_by(|a, b| sort.compare(a, b));
            let want: Vec<Uuid> = want.iter().map(|r| r.id).collect();
            let q = FlowRunQuery {
                sort,
                ..query.clone()
            };
            let got: Vec<Uuid> = store
                .list_flow_runs(&q)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(got, want, "{:?} sorted {sort:?}", query.filter);
            assert_eq!(
                store.count_flow_runs(&q).await.unwrap(),
                want.len() as u64,
                "{:?}",
                query.filter
            );
            let paged = FlowRunQuery {
                page: Page {
                    offset: 1,
                    limit: Some(2),
                },
                ..q
            };
            let got: Vec<Uuid> = store
                .list_flow_runs(&paged)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(
                got,
                want.iter().skip(1).take(2).copied().collect::<Vec<_>>(),
                "paged {:?} {sort:?}",
                query.filter
            );
        }
    }
}

/// A flow run or task run larger than [`crate::MAX_RUN_DOCUMENT_BYTES`] is refused with
/// `TooLarge` naming its size, the limit and its largest field, and nothing of it is
/// written: no run, no state, no change; an update over the limit leaves the run as it was.
pub async fn oversized_runs_are_refused_whole(store: DynStore) {
    let flow_id = Uuid::new_v4();
    let mut big = flow_run(flow_id, Some("pool"));
    big.parameters.insert(
        "blob".into(),
        json!("x".repeat(crate::MAX_RUN_DOCUMENT_BYTES)),
    );
    let size = serde_json::to_vec(&big).unwrap().len();
    let field = serde_json::to_vec(&big.parameters).unwrap().len();
    let want = format!(
        "The flow run is {size} bytes as JSON, over the 393216 bytes (384 KiB) pushpool stores \
         per flow run (DynamoDB keeps at most 400 KB per item). Its largest field is \
         `parameters` ({field} bytes). Nothing was written."
    );
    match store.create_flow_run(&big).await {
        Err(StoreError::TooLarge(m)) => assert_eq!(m, want),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        store.read_flow_run(big.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.read_flow_run_states(big.id).await.unwrap().is_empty());
    assert!(store.read_changes(0, 100).await.unwrap().is_empty());

    // Just under the limit is kept, byte for byte.
    let mut fits = flow_run(flow_id, Some("pool"));
    let base = serde_json::to_vec(&fits).unwrap().len();
    // `parameters` is `{}`: the new entry adds `"blob":"<room>"`.
    let room = crate::MAX_RUN_DOCUMENT_BYTES - base - r#""blob":"""#.len();
    fits.parameters
        .insert("blob".into(), json!("y".repeat(room)));
    assert_eq!(
        serde_json::to_vec(&fits).unwrap().len(),
        crate::MAX_RUN_DOCUMENT_BYTES
    );
    let (stored, created) = store.create_flow_run(&fits).await.unwrap();
    assert!(created);
    assert_eq!(store.read_flow_run(fits.id).await.unwrap(), stored);

    // An update that grows it over the limit is refused; the run stays as it was.
    let mut grown = stored.clone();
    grown
        .parameters
        .insert("more".into(), json!("z".repeat(1024)));
    let now = Utc::now();
    apply_state(&mut grown, State::new(StateType::Pending, now), now);
    assert!(matches!(
        store.update_flow_run(&grown).await,
        Err(StoreError::TooLarge(m)) if m.starts_with("The flow run is ")
    ));
    assert_eq!(store.read_flow_run(fits.id).await.unwrap(), stored);
    assert_eq!(store.read_flow_run_states(fits.id).await.unwrap().len(), 1);
    assert_eq!(store.read_changes(0, 100).await.unwrap().len(), 1);

    // Task runs too.
    let mut task = task_run(Some(stored.id), "big-task", "0");
    task.tags = vec!["x".repeat(crate::MAX_RUN_DOCUMENT_BYTES)];
    assert!(matches!(
        store.create_task_run(&task).await,
        Err(StoreError::TooLarge(m)) if m.starts_with("The task run is ")
    ));
    assert!(matches!(
        store.read_task_run(task.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Leases: one holder at a time per key, renewable by its holder, released only by it,
/// taken over once expired; keys are independent.
pub async fn leases(store: DynStore) {
    use std::time::Duration;
    let long = Duration::from_secs(60);
    let key = "ecs-family/us-east-1/prefect_pool_a#1";
    assert!(store.try_acquire_lease(key, "a", long).await.unwrap());
    assert!(!store.try_acquire_lease(key, "b", long).await.unwrap());
    assert!(
        store.try_acquire_lease(key, "a", long).await.unwrap(),
        "renewed"
    );
    assert!(
        store.try_acquire_lease("other", "b", long).await.unwrap(),
        "another key"
    );
    store.release_lease(key, "b").await.unwrap();
    assert!(
        !store.try_acquire_lease(key, "b", long).await.unwrap(),
        "not b's to release"
    );
    store.release_lease(key, "a").await.unwrap();
    assert!(
        store.try_acquire_lease(key, "b", long).await.unwrap(),
        "free after release"
    );
    // An expired lease is taken over.
    assert!(
        store
            .try_acquire_lease("short", "a", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.try_acquire_lease("short", "b", long).await.unwrap());
    assert!(!store.try_acquire_lease("short", "a", long).await.unwrap());
    // Releasing a lease nobody holds is fine.
    store.release_lease("never-taken", "a").await.unwrap();
}

/// The due index returns SCHEDULED runs at or before a time, oldest first.
pub async fn due_flow_runs(store: DynStore) {
    let flow_id = Uuid::new_v4();
    let now = Utc::now();
    let mut ids = Vec::new();
    for offset in [-20i64, -10, 30] {
        let mut run = flow_run(flow_id, Some("pool"));
        let at = now + chrono::Duration::seconds(offset);
        if let Some(s) = run.state.as_mut() {
            s.state_details.scheduled_time = Some(at);
        }
        run.expected_start_time = Some(at);
        store.create_flow_run(&run).await.unwrap();
        ids.push(run.id);
    }
    let mut done = store.read_flow_run(ids[1]).await.unwrap();
    let due: Vec<Uuid> = store
        .list_due_flow_runs(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, [ids[0], ids[1]]);
    apply_state(&mut done, State::new(StateType::Pending, now), now);
    store.update_flow_run(&done).await.unwrap();
    let due: Vec<Uuid> = store
        .list_due_flow_runs(now + chrono::Duration::seconds(60), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, [ids[0], ids[2]]);
    assert_eq!(store.list_due_flow_runs(now, 1).await.unwrap().len(), 1);
}

/// API keys: stored by hash, found by hash, unique names, revocation kept on record.
pub async fn api_keys(store: DynStore) {
    let key = pushpool_core::model::ApiKey {
        id: Uuid::new_v4(),
        name: "ci".into(),
        hash: "a".repeat(64),
        created: Utc::now(),
        revoked: false,
    };
    store.create_api_key(&key).await.unwrap();
    assert_eq!(
        store.read_api_key_by_hash(&"a".repeat(64)).await.unwrap(),
        key
    );
    let mut same_name = key.clone();
    same_name.id = Uuid::new_v4();
    same_name.hash = "b".repeat(64);
    assert!(matches!(
        store.create_api_key(&same_name).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.read_api_key_by_hash(&"c".repeat(64)).await,
        Err(StoreError::NotFound(_))
    ));
    store.revoke_api_key(key.id).await.unwrap();
    assert!(
        store
            .read_api_key_by_hash(&"a".repeat(64))
            .await
            .unwrap()
            .revoked
    );
    assert_eq!(store.list_api_keys().await.unwrap().len(), 1);
    assert!(matches!(
        store.revoke_api_key(Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Every flow run write appends one change, in order; consumed changes can be dropped.
pub async fn change_feed(store: DynStore) {
    let run = flow_run(Uuid::new_v4(), Some("pool"));
    let (stored, _) = store.create_flow_run(&run).await.unwrap();
    let mut pending = stored.clone();
    let now = Utc::now();
    apply_state(&mut pending, State::new(StateType::Pending, now), now);
    store.update_flow_run(&pending).await.unwrap();
    let changes = store.read_changes(0, 100).await.unwrap();
    let seen: Vec<(Uuid, Option<StateType>)> = changes
        .iter()
        .map(|c| (c.flow_run_id, c.state_type))
        .collect();
    assert_eq!(
        seen,
        [
            (run.id, Some(StateType::Scheduled)),
            (run.id, Some(StateType::Pending))
        ]
    );
    assert!(changes[0].seq < changes[1].seq);
    store.delete_changes(changes[0].seq).await.unwrap();
    let rest = store.read_changes(0, 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].seq, changes[1].seq);
    assert!(
        store
            .read_changes(changes[1].seq, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A PENDING task run fixture of `task_key`/`dynamic_key` in flow run `flow_run_id`.
pub fn task_run(flow_run_id: Option<Uuid>, task_key: &str, dynamic_key: &str) -> TaskRun {
    let now = Utc::now();
    let mut run = TaskRun::new(
        Uuid::now_v7(),
        format!("{task_key}-{dynamic_key}"),
        task_key.into(),
        dynamic_key.into(),
        now,
    );
    run.flow_run_id = flow_run_id;
    apply_task_state(&mut run, State::new(StateType::Pending, now), now);
    run
}

/// A task run is created once per `(flow_run_id, task_key, dynamic_key)`: the second create
/// returns the first run (also without a flow run); a taken id is a `Conflict`.
pub async fn task_run_idempotent_create(store: DynStore) {
    let flow_run_id = Uuid::new_v4();
    let first = task_run(Some(flow_run_id), "sub-1a2b", "0");
    let (a, created) = store.create_task_run(&first).await.unwrap();
    assert!(created);
    assert_eq!(a.version, 1);
    assert_eq!(store.read_task_run(first.id).await.unwrap(), a);
    let (b, created) = store
        .create_task_run(&task_run(Some(flow_run_id), "sub-1a2b", "0"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(b, a);
    let (c, created) = store
        .create_task_run(&task_run(Some(flow_run_id), "sub-1a2b", "1"))
        .await
        .unwrap();
    assert!(created);
    assert_ne!(c.id, a.id);
    let (d, created) = store
        .create_task_run(&task_run(Some(Uuid::new_v4()), "sub-1a2b", "0"))
        .await
        .unwrap();
    assert!(created);
    assert_ne!(d.id, a.id);
    let (e, created) = store
        .create_task_run(&task_run(None, "sub-1a2b", "0"))
        .await
        .unwrap();
    assert!(created);
    let (f, created) = store
        .create_task_run(&task_run(None, "sub-1a2b", "0"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(f.id, e.id);
    let mut same_id = task_run(Some(flow_run_id), "other", "0");
    same_id.id = a.id;
    let dup = store.create_task_run(&same_id).await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m == "A task run with this id already exists."),
        "{dup:?}"
    );
    let states = store.read_task_run_states(a.id).await.unwrap();
    assert_eq!(states, vec![a.state.clone().unwrap()]);
    assert!(matches!(
        store.read_task_run(Uuid::now_v7()).await,
        Err(StoreError::NotFound(m)) if m == "Task run not found"
    ));
}

/// Task run writes are conditional on the version; each new state is appended to the history
/// once; deleting frees the unique key; task run writes add nothing to the change feed.
pub async fn task_run_conditional_writes(store: DynStore) {
    let flow_run_id = Uuid::new_v4();
    let (stored, _) = store
        .create_task_run(&task_run(Some(flow_run_id), "k", "0"))
        .await
        .unwrap();
    let now = Utc::now();
    let mut a = stored.clone();
    apply_task_state(&mut a, State::new(StateType::Running, now), now);
    let mut b = stored.clone();
    apply_task_state(&mut b, State::new(StateType::Failed, now), now);
    let won = store.update_task_run(&a).await.unwrap();
    assert_eq!(won.version, 2);
    let lost = store.update_task_run(&b).await;
    assert!(
        matches!(lost, Err(StoreError::VersionConflict(id)) if id == stored.id),
        "{lost:?}"
    );
    let mut renamed = store.read_task_run(stored.id).await.unwrap();
    assert_eq!(renamed, won);
    renamed.name = "renamed".into();
    let renamed = store.update_task_run(&renamed).await.unwrap();
    assert_eq!(renamed.version, 3);
    let history: Vec<(StateType, Option<Uuid>)> = store
        .read_task_run_states(stored.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.r#type, s.state_details.task_run_id))
        .collect();
    assert_eq!(
        history,
        [
            (StateType::Pending, Some(stored.id)),
            (StateType::Running, Some(stored.id))
        ]
    );
    let running = store
        .read_task_run_state(renamed.state_id.unwrap())
        .await
        .unwrap();
    assert_eq!(Some(running), renamed.state);
    assert!(matches!(
        store.read_task_run_state(Uuid::now_v7()).await,
        Err(StoreError::NotFound(m)) if m == "State not found"
    ));
    let mut gone = renamed.clone();
    gone.id = Uuid::now_v7();
    assert!(matches!(
        store.update_task_run(&gone).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.read_changes(0, 100).await.unwrap().is_empty());
    store.delete_task_run(stored.id).await.unwrap();
    assert!(matches!(
        store.read_task_run(stored.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .read_task_run_states(stored.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_task_run(stored.id).await,
        Err(StoreError::NotFound(m)) if m == "Task run not found"
    ));
    let (again, created) = store
        .create_task_run(&task_run(Some(flow_run_id), "k", "0"))
        .await
        .unwrap();
    assert!(created);
    assert_ne!(again.id, stored.id);
}

/// Task runs filtered by flow run and id, by id descending, paged.
pub async fn task_run_listing(store: DynStore) {
    let (f1, f2) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ids = Vec::new();
    for (flow_run_id, key) in [(f1, "a"), (f2, "b"), (f1, "c"), (f1, "d")] {
        let (r, _) = store
            .create_task_run(&task_run(Some(flow_run_id), key, "0"))
            .await
            .unwrap();
        ids.push(r.id);
    }
    let list = |filter: TaskRunFilter| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_task_runs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(TaskRunFilter::default()).await,
        [ids[3], ids[2], ids[1], ids[0]]
    );
    let of_f1 = TaskRunFilter {
        flow_run_ids: Some(vec![f1]),
        ..TaskRunFilter::default()
    };
    assert_eq!(list(of_f1.clone()).await, [ids[3], ids[2], ids[0]]);
    assert_eq!(
        list(TaskRunFilter {
            page: Page {
                offset: 1,
                limit: Some(1)
            },
            ..of_f1.clone()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(TaskRunFilter {
            ids: Some(vec![ids[0], ids[1]]),
            ..of_f1
        })
        .await,
        [ids[0]]
    );
    assert_eq!(
        list(TaskRunFilter {
            ids: Some(vec![ids[1], Uuid::now_v7()]),
            ..TaskRunFilter::default()
        })
        .await,
        [ids[1]]
    );
    assert!(
        list(TaskRunFilter {
            flow_run_ids: Some(vec![]),
            ..TaskRunFilter::default()
        })
        .await
        .is_empty()
    );
}

/// Flow runs found by their parent (tracking) task run, newest expected start first.
pub async fn subflow_runs_by_parent_task_run(store: DynStore) {
    let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
    let now = Utc::now();
    let mut made = Vec::new();
    for (i, parent) in [Some(t1), Some(t2), None, Some(t1)].into_iter().enumerate() {
        let mut run = flow_run(Uuid::new_v4(), None);
        run.parent_task_run_id = parent;
        let at = now + chrono::Duration::seconds(i as i64);
        let mut s = State::new(StateType::Scheduled, at);
        s.state_details.scheduled_time = Some(at);
        apply_state(&mut run, s, at);
        store.create_flow_run(&run).await.unwrap();
        made.push(run.id);
    }
    let ids = |runs: Vec<FlowRun>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_subflow_runs(&[t1], Page::default())
            .await
            .unwrap()),
        [made[3], made[0]]
    );
    assert_eq!(
        ids(store
            .list_subflow_runs(
                &[t1, t2],
                Page {
                    offset: 0,
                    limit: Some(2)
                }
            )
            .await
            .unwrap()),
        [made[3], made[1]]
    );
    assert!(
        store
            .list_subflow_runs(&[Uuid::now_v7()], Page::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// [`Store::commit`]: flow run updates and counter changes are written together or not at
/// all. A stale run is a `VersionConflict` (even when a counter is at its bound too), a
/// counter past its bound a `LimitReached`, a deleted run `NotFound`; a transaction that
/// names a run or a counter twice, or is too large, is refused; nothing of a failed
/// transaction is written (no run, no history, no change, no counter).
pub async fn transaction_all_or_nothing(store: DynStore) {
    let (a, _) = store
        .create_flow_run(&flow_run(Uuid::new_v4(), Some("pool")))
        .await
        .unwrap();
    let (b, _) = store
        .create_flow_run(&flow_run(Uuid::new_v4(), Some("pool")))
        .await
        .unwrap();
    let changes = |s: DynStore| async move { s.read_changes(0, 1000).await.unwrap().len() };
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 0);
    let now = Utc::now();
    let mut a1 = a.clone();
    apply_state(&mut a1, State::new(StateType::Pending, now), now);
    let mut b1 = b.clone();
    b1.infrastructure_pid = Some("pid-b".into());
    let before = changes(store.clone()).await;
    let written = store
        .commit(
            &Transaction::flow_run(a1.clone())
                .with_flow_run(b1.clone())
                .with_counter(CounterChange::increment("slots:pool", 1, Some(2))),
        )
        .await
        .unwrap();
    assert_eq!(
        written
            .iter()
            .map(|r| (r.id, r.version))
            .collect::<Vec<_>>(),
        [(a.id, a.version + 1), (b.id, b.version + 1)]
    );
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 1);
    assert_eq!(changes(store.clone()).await, before + 2);
    let read_a = store.read_flow_run(a.id).await.unwrap();
    assert_eq!(read_a.state_type, Some(StateType::Pending));
    assert_eq!(store.read_flow_run_states(a.id).await.unwrap().len(), 2);
    assert_eq!(
        store
            .read_flow_run(b.id)
            .await
            .unwrap()
            .infrastructure_pid
            .as_deref(),
        Some("pid-b")
    );

    // A stale run: nothing written, the counter unchanged.
    let fresh_b = store.read_flow_run(b.id).await.unwrap();
    let before = changes(store.clone()).await;
    let stale = store
        .commit(
            &Transaction::flow_run(fresh_b.clone())
                .with_flow_run(a1.clone())
                .with_counter(CounterChange::increment("slots:pool", 1, Some(2))),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict(id)) if id == a.id),
        "{stale:?}"
    );
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 1);
    assert_eq!(
        store.read_flow_run(b.id).await.unwrap().version,
        fresh_b.version
    );
    assert_eq!(changes(store.clone()).await, before);

    // The counter reaches its limit; one more increment is refused, and its run not written.
    store
        .commit(
            &Transaction::default().with_counter(CounterChange::increment(
                "slots:pool",
                1,
                Some(2),
            )),
        )
        .await
        .unwrap();
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 2);
    let full = store
        .commit(
            &Transaction::flow_run(fresh_b.clone()).with_counter(CounterChange::increment(
                "slots:pool",
                1,
                Some(2),
            )),
        )
        .await;
    assert!(
        matches!(&full, Err(StoreError::LimitReached(name)) if name == "slots:pool"),
        "{full:?}"
    );
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 2);
    assert_eq!(
        store.read_flow_run(b.id).await.unwrap().version,
        fresh_b.version
    );
    assert_eq!(changes(store.clone()).await, before);

    // Stale and at the bound: the conflict is what the caller hears.
    let both = store
        .commit(
            &Transaction::flow_run(a1.clone()).with_counter(CounterChange::increment(
                "slots:pool",
                1,
                Some(2),
            )),
        )
        .await;
    assert!(
        matches!(both, Err(StoreError::VersionConflict(id)) if id == a.id),
        "{both:?}"
    );

    // A decrement is bounded by 0 only, whatever the limit was.
    for _ in 0..2 {
        store
            .commit(&Transaction::default().with_counter(CounterChange::decrement("slots:pool", 1)))
            .await
            .unwrap();
    }
    assert_eq!(store.read_counter("slots:pool").await.unwrap(), 0);
    let below = store
        .commit(&Transaction::default().with_counter(CounterChange::decrement("slots:pool", 1)))
        .await;
    assert!(
        matches!(&below, Err(StoreError::LimitReached(n)) if n == "slots:pool"),
        "{below:?}"
    );
    let never = store
        .commit(&Transaction::default().with_counter(CounterChange::decrement("never:written", 1)))
        .await;
    assert!(
        matches!(&never, Err(StoreError::LimitReached(n)) if n == "never:written"),
        "{never:?}"
    );
    assert_eq!(store.read_counter("never:written").await.unwrap(), 0);
    // Names are opaque strings: separators do not collide.
    store
        .commit(&Transaction::default().with_counter(CounterChange::increment("a#b", 3, None)))
        .await
        .unwrap();
    assert_eq!(store.read_counter("a#b").await.unwrap(), 3);
    assert_eq!(store.read_counter("a%23b").await.unwrap(), 0);

    // A deleted run.
    let gone = store.read_flow_run(b.id).await.unwrap();
    store.delete_flow_run(b.id).await.unwrap();
    let missing = store.commit(&Transaction::flow_run(gone.clone())).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // Malformed transactions are refused before anything is written.
    let current_a = store.read_flow_run(a.id).await.unwrap();
    let twice = store
        .commit(&Transaction::flow_run(current_a.clone()).with_flow_run(current_a.clone()))
        .await;
    assert!(matches!(twice, Err(StoreError::Backend(_))), "{twice:?}");
    let mut large = Transaction::default();
    for i in 0..=Transaction::MAX_ITEMS {
        large = large.with_counter(CounterChange::increment(format!("c{i}"), 1, None));
    }
    assert!(matches!(
        store.commit(&large).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.read_counter("c0").await.unwrap(), 0);
    assert_eq!(
        store.read_flow_run(a.id).await.unwrap().version,
        current_a.version
    );
}

/// Concurrent increments of one counter under a limit never exceed it: of 12 writers racing
/// `+1` under a limit of 5, exactly 5 succeed and the others get `LimitReached` (a
/// `Transient` answer, contention on DynamoDB, is retried as a caller would).
pub async fn counter_bound_under_concurrency(store: DynStore) {
    const WRITERS: usize = 12;
    const LIMIT: i64 = 5;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            let tx = Transaction::default().with_counter(CounterChange::increment(
                "slots:race",
                1,
                Some(LIMIT),
            ));
            // Contention is expected here (DynamoDB cancels racing transactions with
            // `TransactionConflict`, which the adapter retries and then reports as
            // `Transient`): retry with a spread-out wait, as a caller would. What is under
            // test is the bound, not the number of tries.
            for attempt in 0..200u64 {
                match store.commit(&tx).await {
                    Err(StoreError::Transient(_)) => {
                        let spread = (Uuid::new_v4().as_u128() % 40) as u64;
                        tokio::time::sleep(std::time::Duration::from_millis(
                            5 + spread + attempt.min(20),
                        ))
                        .await;
                    }
                    other => return other.map(|_| ()),
                }
            }
            panic!("still contended after 200 tries");
        });
    }
    let (mut won, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::LimitReached(name)) if name == "slots:race" => refused += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((won, refused), (LIMIT as usize, WRITERS - LIMIT as usize));
    assert_eq!(store.read_counter("slots:race").await.unwrap(), LIMIT);
}

/// A global concurrency limit named `name` with `limit` slots (for the concurrency checks).
pub fn concurrency_limit(name: &str, limit: i64) -> pushpool_core::concurrency::ConcurrencyLimit {
    pushpool_core::concurrency::ConcurrencyLimit {
        id: Uuid::new_v4(),
        created: Utc::now(),
        updated: Utc::now(),
        active: true,
        name: name.into(),
        limit,
        active_slots: 0,
        denied_slots: 0,
        slot_decay_per_second: 0.0,
        avg_slot_occupancy_seconds: 2.0,
        version: 0,
    }
}

/// Global concurrency limits: unique names (conflict message), read by id and name, list by
/// name, a versioned update that bumps the version and may rename (a stale version is a
/// `VersionConflict`, a taken name a `Conflict`), delete.
pub async fn concurrency_limits_crud(store: DynStore) {
    use crate::concurrency::LIMIT_NOT_FOUND;
    let b = concurrency_limit("b-limit", 2);
    let a = concurrency_limit("a limit:x", 1);
    store.create_concurrency_limit(&b).await.unwrap();
    store.create_concurrency_limit(&a).await.unwrap();
    assert!(matches!(
        store.create_concurrency_limit(&concurrency_limit("b-limit", 3)).await,
        Err(StoreError::Conflict(m)) if m == "A concurrency limit with the name 'b-limit' already exists."
    ));
    assert_eq!(store.read_concurrency_limit(b.id).await.unwrap(), b);
    assert_eq!(
        store
            .read_concurrency_limit_by_name("a limit:x")
            .await
            .unwrap(),
        a
    );
    let names = |v: Vec<pushpool_core::concurrency::ConcurrencyLimit>| -> Vec<String> {
        v.into_iter().map(|l| l.name).collect()
    };
    assert_eq!(
        names(store.list_concurrency_limits().await.unwrap()),
        ["a limit:x", "b-limit"]
    );
    let mut renamed = b.clone();
    renamed.name = "c".into();
    renamed.limit = 7;
    store.update_concurrency_limit(&renamed).await.unwrap();
    let read = store.read_concurrency_limit(b.id).await.unwrap();
    assert_eq!((read.name.as_str(), read.limit, read.version), ("c", 7, 1));
    assert_eq!(
        store.read_concurrency_limit_by_name("c").await.unwrap().id,
        b.id
    );
    assert!(matches!(
        store.read_concurrency_limit_by_name("b-limit").await,
        Err(StoreError::NotFound(m)) if m == LIMIT_NOT_FOUND
    ));
    // `renamed` still carries version 0: stale.
    assert!(matches!(
        store.update_concurrency_limit(&renamed).await,
        Err(StoreError::VersionConflict(id)) if id == b.id
    ));
    let mut clash = read.clone();
    clash.name = "a limit:x".into();
    assert!(matches!(
        store.update_concurrency_limit(&clash).await,
        Err(StoreError::Conflict(m)) if m == "A concurrency limit with the name 'a limit:x' already exists."
    ));
    store.delete_concurrency_limit(a.id).await.unwrap();
    assert!(matches!(
        store.delete_concurrency_limit(a.id).await,
        Err(StoreError::NotFound(m)) if m == LIMIT_NOT_FOUND
    ));
    assert!(matches!(
        store.update_concurrency_limit(&a).await,
        Err(StoreError::NotFound(m)) if m == LIMIT_NOT_FOUND
    ));
    assert_eq!(names(store.list_concurrency_limits().await.unwrap()), ["c"]);
}

/// Concurrency writes: limits and leases written all or nothing, each limit conditioned on
/// its version and a lease delete on the lease being unchanged; a stale item names itself in
/// the `VersionConflict` and nothing is written.
pub async fn concurrency_writes_all_or_nothing(store: DynStore) {
    use crate::concurrency::{ConcurrencyWrite, LEASE_NOT_FOUND, LeaseWrite};
    use pushpool_core::concurrency::{ConcurrencyLease, LeaseHolder, LeaseHolderKind};
    let x = concurrency_limit("x", 2);
    let y = concurrency_limit("y", 2);
    store.create_concurrency_limit(&x).await.unwrap();
    store.create_concurrency_limit(&y).await.unwrap();
    let now = Utc::now();
    let lease = ConcurrencyLease {
        id: Uuid::new_v4(),
        created: now,
        expires: now + chrono::Duration::seconds(60),
        resource_ids: vec![x.id, y.id],
        slots: 1,
        holder: Some(LeaseHolder {
            kind: LeaseHolderKind::TaskRun,
            id: Uuid::new_v4(),
        }),
    };
    let (mut x1, mut y1) = (x.clone(), y.clone());
    x1.active_slots = 1;
    y1.active_slots = 1;
    let take = ConcurrencyWrite {
        limits: vec![x1.clone(), y1.clone()],
        leases: vec![LeaseWrite::Create(lease.clone())],
    };
    store.commit_concurrency(&take).await.unwrap();
    let read_x = store.read_concurrency_limit(x.id).await.unwrap();
    assert_eq!((read_x.active_slots, read_x.version), (1, 1));
    assert_eq!(store.read_concurrency_lease(lease.id).await.unwrap(), lease);
    // The same write again: both limits are stale now (version 0 read), nothing written.
    let mut again = take.clone();
    again.leases = vec![LeaseWrite::Create(ConcurrencyLease {
        id: Uuid::new_v4(),
        ..lease.clone()
    })];
    assert!(matches!(
        store.commit_concurrency(&again).await,
        Err(StoreError::VersionConflict(id)) if id == x.id || id == y.id
    ));
    assert_eq!(
        store.list_concurrency_leases().await.unwrap(),
        vec![lease.clone()]
    );
    // A fresh x with a stale y: nothing of x is written either.
    let mut x2 = store.read_concurrency_limit(x.id).await.unwrap();
    x2.active_slots = 2;
    let partly_stale = ConcurrencyWrite {
        limits: vec![x2.clone(), y1.clone()],
        leases: vec![],
    };
    assert!(matches!(
        store.commit_concurrency(&partly_stale).await,
        Err(StoreError::VersionConflict(id)) if id == y.id
    ));
    assert_eq!(
        store
            .read_concurrency_limit(x.id)
            .await
            .unwrap()
            .active_slots,
        1
    );
    // A renewal replaces the lease; a delete of the lease as read before is then refused.
    let renewed = ConcurrencyLease {
        expires: now + chrono::Duration::seconds(600),
        ..lease.clone()
    };
    store
        .commit_concurrency(&ConcurrencyWrite {
            limits: vec![],
            leases: vec![LeaseWrite::Renew(renewed.clone())],
        })
        .await
        .unwrap();
    assert_eq!(
        store.read_concurrency_lease(lease.id).await.unwrap(),
        renewed
    );
    assert!(matches!(
        store
            .commit_concurrency(&ConcurrencyWrite {
                limits: vec![],
                leases: vec![LeaseWrite::Delete(lease.clone())],
            })
            .await,
        Err(StoreError::VersionConflict(id)) if id == lease.id
    ));
    let mut x3 = store.read_concurrency_limit(x.id).await.unwrap();
    x3.active_slots = 0;
    store
        .commit_concurrency(&ConcurrencyWrite {
            limits: vec![x3],
            leases: vec![LeaseWrite::Delete(renewed.clone())],
        })
        .await
        .unwrap();
    assert!(matches!(
        store.read_concurrency_lease(lease.id).await,
        Err(StoreError::NotFound(m)) if m == LEASE_NOT_FOUND
    ));
    assert!(store.list_concurrency_leases().await.unwrap().is_empty());
    // Renewing a lease that is gone is refused.
    assert!(matches!(
        store
            .commit_concurrency(&ConcurrencyWrite {
                limits: vec![],
                leases: vec![LeaseWrite::Renew(renewed.clone())],
            })
            .await,
        Err(StoreError::VersionConflict(id)) if id == lease.id
    ));
    // A limit deleted since it was read is a conflict too.
    let mut gone = store.read_concurrency_limit(y.id).await.unwrap();
    store.delete_concurrency_limit(y.id).await.unwrap();
    gone.active_slots = 0;
    assert!(matches!(
        store
            .commit_concurrency(&ConcurrencyWrite {
                limits: vec![gone],
                leases: vec![],
            })
            .await,
        Err(StoreError::VersionConflict(id)) if id == y.id
    ));
}

/// Concurrent takers of one limit, each reading, deciding and writing with its version
/// (retrying when another won), never take more slots than the limit: exactly `limit` of
/// them get a slot and a lease.
pub async fn concurrency_slots_under_concurrency(store: DynStore) {
    use crate::concurrency::{ConcurrencyWrite, LeaseWrite};
    use pushpool_core::concurrency::ConcurrencyLease;
    const TAKERS: usize = 10;
    const LIMIT: i64 = 3;
    store
        .create_concurrency_limit(&concurrency_limit("race", LIMIT))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TAKERS {
        let store = store.clone();
        tasks.spawn(async move {
            for attempt in 0..300u64 {
                let mut limit = store.read_concurrency_limit_by_name("race").await.unwrap();
                let now = Utc::now();
                if !limit.take(1, now) {
                    return false;
                }
                let lease = ConcurrencyLease {
                    id: Uuid::new_v4(),
                    created: now,
                    expires: now + chrono::Duration::seconds(60),
                    resource_ids: vec![limit.id],
                    slots: 1,
                    holder: None,
                };
                let write = ConcurrencyWrite {
                    limits: vec![limit],
                    leases: vec![LeaseWrite::Create(lease)],
                };
                match store.commit_concurrency(&write).await {
                    Ok(()) => return true,
                    Err(StoreError::VersionConflict(_) | StoreError::Transient(_)) => {
                        let spread = (Uuid::new_v4().as_u128() % 30) as u64;
                        tokio::time::sleep(std::time::Duration::from_millis(
                            2 + spread + attempt.min(20),
                        ))
                        .await;
                    }
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
            }
            panic!("still contended after 300 tries");
        });
    }
    let mut won = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, LIMIT as usize);
    let limit = store.read_concurrency_limit_by_name("race").await.unwrap();
    assert_eq!(limit.active_slots, LIMIT);
    assert_eq!(
        store.list_concurrency_leases().await.unwrap().len(),
        LIMIT as usize
    );
}

/// `add_task_run_state` adds an older state to the history (read by timestamp) without
/// touching the run, once however often it is added; an unknown run is `NotFound`.
pub async fn task_run_states_added(store: DynStore) {
    let (run, _) = store
        .create_task_run(&task_run(Some(Uuid::new_v4()), "late", "0"))
        .await
        .unwrap();
    let current = run.state.clone().unwrap();
    let mut older = State::new(
        StateType::Scheduled,
        current.timestamp - chrono::Duration::seconds(5),
    );
    older.state_details.task_run_id = Some(run.id);
    store.add_task_run_state(run.id, &older).await.unwrap();
    store.add_task_run_state(run.id, &older).await.unwrap();
    assert_eq!(
        store.read_task_run_states(run.id).await.unwrap(),
        vec![older.clone(), current]
    );
    assert_eq!(store.read_task_run_state(older.id).await.unwrap(), older);
    assert_eq!(store.read_task_run(run.id).await.unwrap(), run);
    let missing = store.add_task_run_state(Uuid::now_v7(), &older).await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound(m)) if m == "Task run not found"),
        "{missing:?}"
    );
}

/// Expands the whole suite into `#[tokio::test]`s in a module named `$name`, each on a fresh
/// store built by `$make` (an expression returning an `impl Store`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance_tests!(@tests $make;
                work_pools_crud, blocks_crud, flows_and_deployments,
                flow_run_conditional_writes, flow_run_idempotency_key,
                flow_run_filters, flow_run_filter_criteria, due_flow_runs, api_keys, change_feed,
                task_run_idempotent_create, task_run_conditional_writes, task_run_listing,
                subflow_runs_by_parent_task_run, transaction_all_or_nothing,
                counter_bound_under_concurrency, variables_crud, artifacts_crud,
                oversized_runs_are_refused_whole, leases, schedule_marks, work_queues_crud,
                logs_stored_and_read, events_stored_and_read,
                concurrency_limits_crud, concurrency_writes_all_or_nothing,
                concurrency_slots_under_concurrency,
                flow_run_inputs, task_run_states_added);
        }
    };
    (@tests $make:expr; $($test:ident),*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let store: $crate::conformance::DynStore = ::std::sync::Arc::new($make);
                $crate::conformance::$test(store).await;
            }
        )*
    };
}
