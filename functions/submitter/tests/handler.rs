//! The submitter handler fed a real-shaped DynamoDB stream batch (fixture named in
//! `tests/fixtures/README.md`), over the SQLite store and a recording provider: one job per
//! run however often its change appears, and per-record failures reported for retry.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::dynamodb::Event;
use pushpool_core::state::StateType;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers};
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{flow, flow_run, work_pool};
use pushpool_store_sqlite::SqliteStore;
use pushpool_submitter::{decode, handle};

#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

#[async_trait]
impl Provider for Recording {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        self.0.lock().unwrap().push(job.idempotency_key.clone());
        Ok(format!("task-{}", job.idempotency_key))
    }
    async fn status(&self, _: &Job, _: &str) -> Result<JobStatus, ProviderError> {
        Ok(JobStatus::Running)
    }
    async fn cancel(&self, _: &Job, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn batch(a: &str, b: &str) -> Event {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/stream-batch.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("RUN_A", a)
    .replace("RUN_B", b);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn each_run_of_a_batch_is_submitted_once_and_redelivery_submits_nothing() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    store
        .create_work_pool(&work_pool("ecs-pool"))
        .await
        .unwrap();
    let f = flow("etl");
    store.upsert_flow(&f).await.unwrap();
    let (a, _) = store
        .create_flow_run(&flow_run(f.id, Some("ecs-pool")))
        .await
        .unwrap();
    let (b, _) = store
        .create_flow_run(&flow_run(f.id, Some("ecs-pool")))
        .await
        .unwrap();
    let provider = Arc::new(Recording::default());
    let service = Service::new(
        Arc::clone(&store),
        Providers::new().with("ecs:push", provider.clone() as Arc<dyn Provider>),
        ServiceConfig::default(),
    );
    let event = batch(&a.id.to_string(), &b.id.to_string());
    let decoded: Vec<_> = event
        .records
        .iter()
        .filter_map(decode)
        .map(|c| c.sequence_number)
        .collect();
    assert_eq!(
        decoded,
        ["111", "333", "444"],
        "the MODIFY of the run item is not a change"
    );

    let response = handle(&service, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let mut keys = provider.0.lock().unwrap().clone();
    keys.sort();
    let mut expected = vec![
        format!("pushpool-{}-1", a.id),
        format!("pushpool-{}-1", b.id),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    for id in [a.id, b.id] {
        assert_eq!(
            store.read_flow_run(id).await.unwrap().state_type,
            Some(StateType::Pending)
        );
    }

    // The whole batch delivered again: nothing more is submitted.
    let response = handle(&service, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(provider.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_runs_are_acknowledged_and_store_failures_are_reported_for_retry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushpool.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let service = Service::new(store, Providers::new(), ServiceConfig::default());
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    // Runs that no longer exist are acknowledged: retrying would not help.
    let response = handle(&service, batch(&a.to_string(), &b.to_string())).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );

    // The store breaks (its flow run table is gone): each distinct run's first record is
    // reported, so Lambda retries from there and nothing is lost.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE flow_runs")
        .unwrap();
    let response = handle(&service, batch(&a.to_string(), &b.to_string())).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [
            {"itemIdentifier": "111"}, {"itemIdentifier": "444"}
        ]})
    );
}
