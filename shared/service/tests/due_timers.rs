//! Due timers (embedded): a run due before the reconciler's next tick is submitted at its
//! time, whether the reconciler's tick or the submitter's change armed its timer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::pool_types::pool_type;
use pushpool_core::state::{State, StateType};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_service::{Outcome, Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{deployment, flow, flow_run, work_pool};
use pushpool_store_sqlite::SqliteStore;
use serde_json::json;

/// Records when each job was submitted.
#[derive(Default)]
struct Clocked {
    submitted: Mutex<Vec<(String, DateTime<Utc>)>>,
}

#[async_trait]
impl Provider for Clocked {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        self.submitted
            .lock()
            .unwrap()
            .push((job.idempotency_key.clone(), Utc::now()));
        Ok(format!("job-{}", job.idempotency_key))
    }
    async fn status(&self, _: &Job, _: &str) -> Result<JobStatus, ProviderError> {
        Ok(JobStatus::Running)
    }
    async fn cancel(&self, _: &Job, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn release(&self, _: &Job, _: &str) -> Result<Released, ProviderError> {
        Ok(Released::Deleted)
    }
}

async fn setup() -> (
    Service,
    Arc<dyn Store>,
    Arc<Clocked>,
    uuid::Uuid,
    uuid::Uuid,
) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let mut pool = work_pool("ecs-pool");
    pool.base_job_template = pool_type("ecs:push").unwrap().default_base_job_template();
    store.create_work_pool(&pool).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let mut d = deployment(f.id, "my-deployment", "ecs-pool");
    d.job_variables = json!({"image": "prefecthq/prefect:3-latest"})
        .as_object()
        .cloned()
        .unwrap();
    store.create_deployment(&d).await.unwrap();
    let provider = Arc::new(Clocked::default());
    let service = Service::new(
        Arc::clone(&store),
        Providers::new().with("ecs:push", provider.clone() as Arc<dyn Provider>),
        ServiceConfig::default(),
    )
    .with_local_timers(Duration::from_secs(5));
    (service, store, provider, f.id, d.id)
}

async fn run_at(
    store: &Arc<dyn Store>,
    flow_id: uuid::Uuid,
    deployment_id: uuid::Uuid,
    at: DateTime<Utc>,
) -> FlowRun {
    let mut run = flow_run(flow_id, Some("ecs-pool"));
    run.deployment_id = Some(deployment_id);
    let mut state = State::new(StateType::Scheduled, Utc::now());
    state.state_details.flow_run_id = Some(run.id);
    state.state_details.scheduled_time = Some(at);
    apply_state(&mut run, state, Utc::now());
    store.create_flow_run(&run).await.unwrap().0
}

async fn submitted_at(provider: &Clocked, run: &FlowRun) -> DateTime<Utc> {
    for _ in 0..60 {
        let found = provider
            .submitted
            .lock()
            .unwrap()
            .iter()
            .find(|(key, _)| key.contains(&run.id.to_string()))
            .map(|(_, t)| *t);
        if let Some(t) = found {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {} was not submitted", run.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_due_before_the_next_tick_is_submitted_at_its_time() {
    let (service, store, provider, flow_id, deployment_id) = setup().await;
    let at = Utc::now() + chrono::Duration::milliseconds(1200);
    let run = run_at(&store, flow_id, deployment_id, at).await;
    // The reconciler's tick arms its timer (it is due within the 5 s window).
    service.reconcile_once(Utc::now()).await.unwrap();
    assert!(provider.submitted.lock().unwrap().is_empty());
    let when = submitted_at(&provider, &run).await;
    let late = when - at;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::milliseconds(1000),
        "submitted {late} after its time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_seen_not_due_by_the_submitter_is_submitted_at_its_time() {
    let (service, store, provider, flow_id, deployment_id) = setup().await;
    let at = Utc::now() + chrono::Duration::milliseconds(800);
    let run = run_at(&store, flow_id, deployment_id, at).await;
    assert_eq!(
        service.handle_change(run.id).await.unwrap(),
        Outcome::NotDue(at)
    );
    // A second change of the same run arms no second timer: one submission.
    service.handle_change(run.id).await.unwrap();
    let when = submitted_at(&provider, &run).await;
    let late = when - at;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::milliseconds(1000),
        "submitted {late} after its time"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.submitted.lock().unwrap().len(), 1);
    // A run due after the window gets no timer.
    let later = run_at(
        &store,
        flow_id,
        deployment_id,
        Utc::now() + chrono::Duration::seconds(60),
    )
    .await;
    assert!(matches!(
        service.handle_change(later.id).await.unwrap(),
        Outcome::NotDue(_)
    ));
}
