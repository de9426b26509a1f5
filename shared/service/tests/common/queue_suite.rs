//! Work queues in submission, run over any store: `queues.rs` runs them on SQLite, the
//! DynamoDB adapter's `queues.rs` on moto (this file is included by both; it lives in a
//! subfolder so that cargo does not build it as a test of its own).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use pushpool_core::model::{Deployment, FlowRun, WorkPool};
use pushpool_core::pool_types::pool_type;
use pushpool_core::state::StateType;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_service::queues::{self, QueueCreate};
use pushpool_service::{Outcome, Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{deployment, flow, flow_run, work_pool};
use serde_json::json;
use uuid::Uuid;

/// A store under test.
pub type DynStore = Arc<dyn Store>;

/// Records the idempotency key of each submitted job, in order.
#[derive(Default)]
struct Recorder {
    keys: Mutex<Vec<String>>,
}

#[async_trait]
impl Provider for Recorder {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        self.keys.lock().unwrap().push(job.idempotency_key.clone());
        Ok(format!("job-{}", job.idempotency_key))
    }
    async fn status(&self, _job: &Job, _pid: &str) -> Result<JobStatus, ProviderError> {
        Ok(JobStatus::Running)
    }
    async fn cancel(&self, _job: &Job, _pid: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn release(&self, _job: &Job, _pid: &str) -> Result<Released, ProviderError> {
        Ok(Released::Deleted)
    }
    fn leaves_resources(&self) -> bool {
        false
    }
}

/// A service over a store with an `ecs:push` pool (its default queue made), a flow and a
/// deployment in the pool's default queue.
pub struct World {
    service: Service,
    store: DynStore,
    recorder: Arc<Recorder>,
    pool: WorkPool,
    deployment: Deployment,
}

async fn world(store: DynStore) -> World {
    let mut pool = work_pool("pool");
    pool.base_job_template = pool_type("ecs:push").unwrap().default_base_job_template();
    store.create_work_pool(&pool).await.unwrap();
    queues::default_queue(store.as_ref(), &pool).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let mut d = deployment(f.id, "my-deployment", "pool");
    d.job_variables = json!({"image": "prefecthq/prefect:3-latest"})
        .as_object()
        .cloned()
        .unwrap();
    store.create_deployment(&d).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let service = Service::new(
        Arc::clone(&store),
        Providers::new().with("ecs:push", recorder.clone() as Arc<dyn Provider>),
        ServiceConfig {
            api_url: "http://pushpool.test/api".into(),
            ..ServiceConfig::default()
        },
    );
    World {
        service,
        store,
        recorder,
        pool,
        deployment: d,
    }
}

/// A due SCHEDULED run of the deployment in queue `(id, name)`, scheduled `age_s` seconds ago.
async fn run_in(w: &World, queue: (Uuid, &str), age_s: i64) -> FlowRun {
    let mut run = flow_run(w.deployment.flow_id, Some("pool"));
    let at = Utc::now() - chrono::Duration::seconds(age_s);
    run.state.as_mut().unwrap().state_details.scheduled_time = Some(at);
    run.expected_start_time = Some(at);
    run.next_scheduled_start_time = Some(at);
    run.deployment_id = Some(w.deployment.id);
    run.work_queue_id = Some(queue.0);
    run.work_queue_name = Some(queue.1.into());
    w.store.create_flow_run(&run).await.unwrap().0
}

fn key(run: &FlowRun) -> String {
    format!("pushpool-{}-1", run.id)
}

async fn state_of(w: &World, run: &FlowRun) -> Option<StateType> {
    w.store.read_flow_run(run.id).await.unwrap().state_type
}

/// A paused queue's runs stay SCHEDULED (neither the change nor the reconciler submits
/// them) while the other queues' runs go; once resumed, the reconciler's next tick submits
/// them.
pub async fn a_paused_queue_holds_its_runs_until_resumed(store: DynStore) {
    let w = world(store).await;
    let held = queues::create_queue(
        w.store.as_ref(),
        &w.pool,
        QueueCreate {
            name: "held".into(),
            is_paused: true,
            ..QueueCreate::default()
        },
    )
    .await
    .unwrap();
    let waiting = run_in(&w, (held.id, "held"), 5).await;
    let going = run_in(&w, (w.pool.default_queue_id, "default"), 5).await;

    assert_eq!(
        w.service.handle_change(waiting.id).await.unwrap(),
        Outcome::Skipped("work queue is paused".into())
    );
    w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(*w.recorder.keys.lock().unwrap(), [key(&going)]);
    assert_eq!(state_of(&w, &waiting).await, Some(StateType::Scheduled));
    assert_eq!(state_of(&w, &going).await, Some(StateType::Pending));

    let mut resumed = w.store.read_work_queue(held.id).await.unwrap();
    resumed.is_paused = false;
    queues::update_queue(w.store.as_ref(), &w.pool, resumed, None)
        .await
        .unwrap();
    w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(
        *w.recorder.keys.lock().unwrap(),
        [key(&going), key(&waiting)]
    );
    assert_eq!(state_of(&w, &waiting).await, Some(StateType::Pending));
}

/// The reconciler submits the due runs of higher-priority queues first (oldest first within
/// a queue), whatever their age; a run whose queue name is unknown goes last.
pub async fn due_runs_are_submitted_by_queue_priority(store: DynStore) {
    let w = world(store).await;
    let urgent = queues::create_queue(
        w.store.as_ref(),
        &w.pool,
        QueueCreate {
            name: "urgent".into(),
            priority: Some(1),
            ..QueueCreate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        w.store
            .read_work_queue(w.pool.default_queue_id)
            .await
            .unwrap()
            .priority,
        2
    );
    let old_default = run_in(&w, (w.pool.default_queue_id, "default"), 300).await;
    let newer_urgent = run_in(&w, (urgent.id, "urgent"), 10).await;
    let older_urgent = run_in(&w, (urgent.id, "urgent"), 20).await;
    let orphan = run_in(&w, (w.pool.default_queue_id, "gone"), 400).await;
    let due = w.store.list_due_flow_runs(Utc::now(), 10).await.unwrap();
    let ordered: Vec<Uuid> = w
        .service
        .by_queue_priority(due)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ordered,
        [older_urgent.id, newer_urgent.id, old_default.id, orphan.id]
    );
    w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(
        *w.recorder.keys.lock().unwrap(),
        [
            key(&older_urgent),
            key(&newer_urgent),
            key(&old_default),
            key(&orphan)
        ]
    );
}
