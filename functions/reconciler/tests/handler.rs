//! The reconciler handler fed real-shaped EventBridge events (fixtures named in
//! `tests/fixtures/README.md`), over the SQLite store and a scripted provider.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers};
use pushpool_reconciler::{Trigger, classify, handle};
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{flow, flow_run, work_pool};
use pushpool_store_sqlite::SqliteStore;
use serde_json::Value;

const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0a1b2c3d4e5f";

struct Scripted(Mutex<Vec<JobStatus>>, Mutex<Vec<String>>);

#[async_trait]
impl Provider for Scripted {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        Ok(format!("task-{}", job.idempotency_key))
    }
    async fn status(&self, _job: &Job, pid: &str) -> Result<JobStatus, ProviderError> {
        self.1.lock().unwrap().push(pid.to_owned());
        Ok(self.0.lock().unwrap().pop().unwrap_or(JobStatus::Running))
    }
    async fn cancel(&self, _job: &Job, _pid: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn event(name: &str, run_id: &str) -> EventBridgeEvent<Value> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("TASK_ARN", TASK)
    .replace("THE_RUN_ID", run_id);
    serde_json::from_str(&text).unwrap()
}

async fn setup(status: JobStatus) -> (Service, Arc<Scripted>, uuid::Uuid) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    store
        .create_work_pool(&work_pool("ecs-pool"))
        .await
        .unwrap();
    let f = flow("etl");
    store.upsert_flow(&f).await.unwrap();
    let (mut run, _) = store
        .create_flow_run(&flow_run(f.id, Some("ecs-pool")))
        .await
        .unwrap();
    let now = Utc::now();
    apply_state(&mut run, State::new(StateType::Pending, now), now);
    run.infrastructure_pid = Some(TASK.into());
    store.update_flow_run(&run).await.unwrap();
    let provider = Arc::new(Scripted(Mutex::new(vec![status]), Mutex::default()));
    let service = Service::new(
        store,
        Providers::new().with("ecs:push", provider.clone() as Arc<dyn Provider>),
        ServiceConfig::default(),
    );
    (service, provider, run.id)
}

#[test]
fn events_are_classified() {
    let id = uuid::Uuid::new_v4();
    assert_eq!(
        classify(&event("scheduled-event.json", "")),
        Trigger::Schedule
    );
    assert_eq!(
        classify(&event(
            "ecs-task-state-change-stopped.json",
            &id.to_string()
        )),
        Trigger::TaskStateChange {
            task_arn: TASK.into(),
            flow_run_id: id,
            last_status: "STOPPED".into()
        }
    );
    let mut other = event("ecs-task-state-change-stopped.json", &id.to_string());
    other.detail["startedBy"] = "ecs-svc/1234".into();
    assert_eq!(
        classify(&other),
        Trigger::Ignored("task not started by pushpool".into())
    );
}

#[tokio::test]
async fn a_stopped_task_event_finishes_its_run_at_once() {
    let (service, provider, run_id) = setup(JobStatus::Exited {
        exit_code: 137,
        detail: "Essential container in task exited; container prefect: OutOfMemoryError: Container killed due to memory usage".into(),
    })
    .await;
    let report = handle(
        &service,
        event("ecs-task-state-change-stopped.json", &run_id.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(report.acted, 1, "{report:?}");
    assert_eq!(
        *provider.1.lock().unwrap(),
        [TASK.to_owned()],
        "status read from the provider"
    );
    let run = service.store().read_flow_run(run_id).await.unwrap();
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run infrastructure exited with non-zero status code 137. Essential container in task exited; container prefect: OutOfMemoryError: Container killed due to memory usage"
        )
    );
    // The same event delivered again changes nothing.
    let again = handle(
        &service,
        event("ecs-task-state-change-stopped.json", &run_id.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(again.acted, 0);
}

#[tokio::test]
async fn an_event_for_a_task_that_is_not_the_runs_current_one_is_ignored() {
    let (service, provider, run_id) = setup(JobStatus::Exited {
        exit_code: 1,
        detail: String::new(),
    })
    .await;
    let mut e = event("ecs-task-state-change-stopped.json", &run_id.to_string());
    e.detail["taskArn"] = "arn:aws:ecs:us-east-1:123456789012:task/prod/older".into();
    let report = handle(&service, e).await.unwrap();
    assert_eq!(report.acted, 0);
    assert!(provider.1.lock().unwrap().is_empty());
    let run = service.store().read_flow_run(run_id).await.unwrap();
    assert_eq!(run.state_type, Some(StateType::Pending));
}

#[tokio::test]
async fn the_schedule_runs_one_reconciler_pass() {
    let (service, _provider, run_id) = setup(JobStatus::Failed {
        reason: "CannotPullContainerError: not found".into(),
    })
    .await;
    let report = handle(&service, event("scheduled-event.json", ""))
        .await
        .unwrap();
    assert_eq!(report.acted, 1);
    let run = service.store().read_flow_run(run_id).await.unwrap();
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some("Flow run infrastructure failed: CannotPullContainerError: not found")
    );
}
