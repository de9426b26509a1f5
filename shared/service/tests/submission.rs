//! The submission rules, over the SQLite store and a scripted fake provider: one job per run
//! however often a change is delivered, claims that lose races do nothing, provider failures
//! classified into CRASHED or retries, lifecycles finished from the provider's status, and
//! completed runs never moved back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use pushpool_core::model::{Deployment, FlowRun, WorkPool};
use pushpool_core::orchestration::{apply_decision, apply_state, orchestrate};
use pushpool_core::pool_types::pool_type;
use pushpool_core::state::{State, StateType};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_service::{Outcome, Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{deployment, flow, flow_run, work_pool};
use pushpool_store_sqlite::SqliteStore;
use serde_json::json;

/// A provider that records calls and answers from scripts.
#[derive(Default)]
struct FakeProvider {
    submits: Mutex<Vec<Job>>,
    started: Mutex<Vec<String>>,
    submit_results: Mutex<VecDeque<Result<String, ProviderError>>>,
    statuses: Mutex<VecDeque<JobStatus>>,
    cancels: Mutex<Vec<String>>,
    /// Whether it leaves resources behind (like Cloud Run jobs and ACI container groups).
    leaves: std::sync::atomic::AtomicBool,
    status_calls: std::sync::atomic::AtomicUsize,
    releases: Mutex<Vec<String>>,
    release_results: Mutex<VecDeque<Result<Released, ProviderError>>>,
    /// When set, `submit` (after recording the call) and `cancel` stop at this gate until the
    /// test opens it: the test changes the run while a provider call is in flight.
    submit_gate: Mutex<Option<Arc<Gate>>>,
    cancel_gate: Mutex<Option<Arc<Gate>>>,
}

/// A provider call held in flight: `reached` is notified when the call arrives, the call
/// goes on once `release` is notified.
#[derive(Default)]
struct Gate {
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Gate {
    async fn pass(&self) {
        self.reached.notify_one();
        self.release.notified().await;
    }
}

impl FakeProvider {
    fn submits(&self) -> Vec<Job> {
        self.submits.lock().unwrap().clone()
    }
    fn script_submit(&self, r: Result<String, ProviderError>) {
        self.submit_results.lock().unwrap().push_back(r);
    }
    fn script_status(&self, s: JobStatus) {
        self.statuses.lock().unwrap().push_back(s);
    }
}

#[async_trait]
impl Provider for FakeProvider {
    /// As ECS does: an `image` next to a `task_definition_arn` is ignored.
    fn ignored_job_variables(
        &self,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<pushpool_providers::IgnoredVariables> {
        if variables
            .get("task_definition_arn")
            .is_some_and(|v| !v.is_null())
            && variables.get("image").is_some_and(|v| !v.is_null())
        {
            vec![pushpool_providers::IgnoredVariables {
                names: vec!["image".into()],
                reason: "task_definition_arn names the task definition to run".into(),
            }]
        } else {
            Vec::new()
        }
    }

    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        self.submits.lock().unwrap().push(job.clone());
        let gate = self.submit_gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        if let Some(r) = self.submit_results.lock().unwrap().pop_front() {
            return r;
        }
        // Idempotent like the real providers: one job per key.
        let pid = format!("job-{}", job.idempotency_key);
        let mut started = self.started.lock().unwrap();
        if !started.contains(&pid) {
            started.push(pid.clone());
        }
        Ok(pid)
    }
    async fn status(&self, _job: &Job, _pid: &str) -> Result<JobStatus, ProviderError> {
        self.status_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self
            .statuses
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(JobStatus::Running))
    }
    async fn cancel(&self, _job: &Job, pid: &str) -> Result<(), ProviderError> {
        self.cancels.lock().unwrap().push(pid.to_owned());
        let gate = self.cancel_gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        Ok(())
    }
    async fn release(&self, _job: &Job, pid: &str) -> Result<Released, ProviderError> {
        self.releases.lock().unwrap().push(pid.to_owned());
        self.release_results
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Released::Deleted))
    }
    fn leaves_resources(&self) -> bool {
        self.leaves.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct World {
    service: Service,
    store: Arc<dyn Store>,
    provider: Arc<FakeProvider>,
    pool: WorkPool,
    deployment: Deployment,
}

/// Base delay 20 ms, budget 130 ms: jittered waits are 20–40 ms then 40–80 ms, so two waits
/// take 60–120 ms and three at least 140 ms: a call failing transiently is tried exactly 3
/// times.
async fn world() -> World {
    world_with_budget(Duration::from_millis(130)).await
}

async fn world_with_budget(retry_budget: Duration) -> World {
    world_with(retry_budget, None).await
}

/// The world with `api_key` as the key handed to jobs.
async fn world_with(retry_budget: Duration, api_key: Option<&str>) -> World {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let provider = Arc::new(FakeProvider::default());
    let mut pool = work_pool("ecs-pool");
    pool.base_job_template = pool_type("ecs:push").unwrap().default_base_job_template();
    store.create_work_pool(&pool).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let mut d = deployment(f.id, "my-deployment", "ecs-pool");
    d.job_variables = json!({"image": "prefecthq/prefect:3-latest", "cpu": 512, "memory": 1024,
        "env": {"FROM_DEPLOYMENT": "1", "SHARED": "deployment"}})
    .as_object()
    .cloned()
    .unwrap();
    store.create_deployment(&d).await.unwrap();
    let service = Service::new(
        Arc::clone(&store),
        Providers::new().with("ecs:push", provider.clone() as Arc<dyn Provider>),
        ServiceConfig {
            api_url: "http://pushpool.test/api".into(),
            api_key: api_key.map(str::to_owned),
            claim_deadline: Duration::from_secs(60),
            missing_grace: Duration::from_secs(30),
            retry_budget,
            retry_base_delay: Duration::from_millis(20),
            release_grace: Duration::from_millis(200),
            release_poll: Duration::from_millis(5),
            ..ServiceConfig::default()
        },
    );
    World {
        service,
        store,
        provider,
        pool,
        deployment: d,
    }
}

async fn new_run(w: &World) -> FlowRun {
    let mut run = flow_run(w.deployment.flow_id, Some("ecs-pool"));
    run.deployment_id = Some(w.deployment.id);
    run.job_variables = json!({"env": {"SHARED": "run"}})
        .as_object()
        .cloned()
        .unwrap();
    w.store.create_flow_run(&run).await.unwrap().0
}

async fn read(w: &World, run: &FlowRun) -> FlowRun {
    w.store.read_flow_run(run.id).await.unwrap()
}

/// With keys required, the job gets the key both as `PREFECT_API_KEY` (Prefect's HTTP
/// client) and as `PREFECT_API_AUTH_STRING` (the only credential Prefect 3.9.1's event
/// sockets send, `prefect/events/clients.py`).
#[tokio::test]
async fn a_job_gets_the_key_as_api_key_and_as_auth_string() {
    let w = world_with(Duration::from_millis(130), Some("pp_job_key_0123456789")).await;
    let run = new_run(&w).await;
    w.service.handle_change(run.id).await.unwrap();
    let submits = w.provider.submits();
    let env = &submits[0].configuration["env"];
    assert_eq!(env["PREFECT_API_KEY"], "pp_job_key_0123456789");
    assert_eq!(env["PREFECT_API_AUTH_STRING"], "pp_job_key_0123456789");
    assert_eq!(env.as_object().unwrap().len(), 9);
}

#[tokio::test]
async fn a_due_run_is_claimed_rendered_and_submitted_with_its_key() {
    let w = world().await;
    let run = new_run(&w).await;
    let outcome = w.service.handle_change(run.id).await.unwrap();
    let key = format!("pushpool-{}-1", run.id);
    assert_eq!(outcome, Outcome::Submitted(format!("job-{key}")));

    let submits = w.provider.submits();
    assert_eq!(submits.len(), 1);
    let job = &submits[0];
    assert_eq!(job.idempotency_key, key);
    assert_eq!(
        job.configuration["env"],
        json!({
            "PREFECT_API_URL": "http://pushpool.test/api",
            "PREFECT__FLOW_RUN_ID": run.id.to_string(),
            "PREFECT__FLOW_ID": w.deployment.flow_id.to_string(),
            "PREFECT__DEPLOYMENT_ID": w.deployment.id.to_string(),
            "PREFECT__DEPLOYMENT_NAME": "my-deployment",
            "FROM_DEPLOYMENT": "1",
            "SHARED": "run",
        })
    );
    assert_eq!(job.configuration["command"], "prefect flow-run execute");
    assert_eq!(job.configuration["name"], "quiet-otter");
    assert_eq!(
        job.configuration["task_definition"],
        json!({"containerDefinitions": [{"image": "prefecthq/prefect:3-latest"}],
               "cpu": 512, "memory": 1024})
    );
    assert_eq!(
        job.configuration["labels"]["prefect.io/work-pool-name"],
        "ecs-pool"
    );

    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Pending));
    assert_eq!(run.infrastructure_pid, Some(format!("job-{key}")));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some("Submitting to work pool 'ecs-pool' (ecs:push)")
    );
}

#[tokio::test]
async fn the_same_change_delivered_twice_submits_one_job() {
    let w = world().await;
    let run = new_run(&w).await;
    let (a, b) = tokio::join!(
        w.service.handle_change(run.id),
        w.service.handle_change(run.id)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Submitted(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::LostRace | Outcome::Skipped(_)))
    );
    // and a third, later delivery finds the run PENDING and does nothing
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Skipped("nothing to do in this state".into())
    );
    assert_eq!(w.provider.submits().len(), 1);
}

#[tokio::test]
async fn a_permanent_provider_error_crashes_the_run_with_the_providers_reason() {
    let w = world().await;
    let run = new_run(&w).await;
    w.provider.script_submit(Err(ProviderError::permanent(
        "ClusterNotFoundException: Cluster not found.",
    )));
    let outcome = w.service.handle_change(run.id).await.unwrap();
    assert_eq!(outcome, Outcome::Finished(StateType::Crashed));
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run could not be submitted to infrastructure: ClusterNotFoundException: Cluster not found."
        )
    );
    assert_eq!(
        w.provider.submits().len(),
        1,
        "permanent errors are not retried"
    );
}

#[tokio::test]
async fn an_invalid_configuration_names_the_field() {
    let w = world().await;
    let run = new_run(&w).await;
    w.provider.script_submit(Err(ProviderError::invalid(
        "memory",
        "512 MiB is not valid with 1024 CPU units on Fargate",
    )));
    w.service.handle_change(run.id).await.unwrap();
    let run = read(&w, &run).await;
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run could not be submitted to infrastructure: invalid job configuration: memory: 512 MiB is not valid with 1024 CPU units on Fargate"
        )
    );
}

#[tokio::test]
async fn transient_errors_are_retried_then_succeed_with_the_same_key() {
    let w = world().await;
    let run = new_run(&w).await;
    w.provider.script_submit(Err(ProviderError::transient(
        "ThrottlingException: Rate exceeded",
    )));
    w.provider.script_submit(Err(ProviderError::transient(
        "ServerException: Service unavailable",
    )));
    let outcome = w.service.handle_change(run.id).await.unwrap();
    assert!(matches!(outcome, Outcome::Submitted(_)), "{outcome:?}");
    let keys: Vec<String> = w
        .provider
        .submits()
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    let key = format!("pushpool-{}-1", run.id);
    assert_eq!(keys, [key.clone(), key.clone(), key]);
}

#[tokio::test]
async fn transient_errors_that_do_not_stop_crash_the_run_after_the_bounded_attempts() {
    let w = world().await;
    let run = new_run(&w).await;
    for _ in 0..3 {
        w.provider.script_submit(Err(ProviderError::transient(
            "ThrottlingException: Rate exceeded",
        )));
    }
    w.service.handle_change(run.id).await.unwrap();
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run could not be submitted to infrastructure after 3 attempts over 0 s: ThrottlingException: Rate exceeded. \
             pushpool stopped retrying at the end of its 0 s retry budget: run the flow again later, \
             or raise the budget (PUSHPOOL_PROVIDER_RETRY_BUDGET)."
        )
    );
    assert_eq!(w.provider.submits().len(), 3);
}

#[tokio::test]
async fn a_claim_left_without_pid_is_resubmitted_with_the_same_key() {
    let w = world().await;
    let run = new_run(&w).await;
    // A submitter claimed the run, then died before recording the pid (long ago).
    let mut claimed = read(&w, &run).await;
    claimed.submission_attempt = 1;
    let then = Utc::now() - chrono::Duration::seconds(120);
    apply_state(&mut claimed, State::new(StateType::Pending, then), then);
    w.store.update_flow_run(&claimed).await.unwrap();
    // It had already started the job:
    w.provider
        .started
        .lock()
        .unwrap()
        .push(format!("job-pushpool-{}-1", run.id));

    let acted = w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(acted, 1);
    let run = read(&w, &run).await;
    assert_eq!(
        run.infrastructure_pid,
        Some(format!("job-pushpool-{}-1", run.id))
    );
    assert_eq!(run.state_type, Some(StateType::Pending));
    assert_eq!(w.provider.started.lock().unwrap().len(), 1, "no second job");
}

#[tokio::test]
async fn a_run_scheduled_later_is_submitted_when_it_becomes_due() {
    let w = world().await;
    let mut run = flow_run(w.deployment.flow_id, Some("ecs-pool"));
    let at = Utc::now() + chrono::Duration::seconds(30);
    run.state.as_mut().unwrap().state_details.scheduled_time = Some(at);
    run.expected_start_time = Some(at);
    // As the API writes a SCHEDULED run (the Late marking reads it).
    run.next_scheduled_start_time = Some(at);
    let run = w.store.create_flow_run(&run).await.unwrap().0;
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::NotDue(at)
    );
    assert_eq!(w.service.reconcile_once(Utc::now()).await.unwrap(), 0);
    assert_eq!(
        w.service
            .reconcile_once(at + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(read(&w, &run).await.state_type, Some(StateType::Pending));
}

async fn submitted(w: &World) -> FlowRun {
    let run = new_run(w).await;
    w.service.handle_change(run.id).await.unwrap();
    read(w, &run).await
}

async fn finish_with(w: &World, status: JobStatus) -> FlowRun {
    let run = submitted(w).await;
    w.provider.script_status(status);
    w.service
        .reconcile_run(run.clone(), Utc::now())
        .await
        .unwrap();
    read(w, &run).await
}

#[tokio::test]
async fn a_job_that_failed_to_start_ends_crashed_with_the_reason() {
    let w = world().await;
    let run = finish_with(
        &w,
        JobStatus::Failed {
            reason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
                .into(),
        },
    )
    .await;
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run infrastructure failed: CannotPullContainerError: pull image manifest has been retried 5 time(s)"
        )
    );
}

#[tokio::test]
async fn a_non_zero_exit_ends_crashed_with_the_code_and_detail() {
    let w = world().await;
    let run = finish_with(
        &w,
        JobStatus::Exited {
            exit_code: 137,
            detail: "Essential container in task exited: OutOfMemoryError".into(),
        },
    )
    .await;
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run infrastructure exited with non-zero status code 137. Essential container in task exited: OutOfMemoryError"
        )
    );
}

#[tokio::test]
async fn a_running_job_leaves_the_run_alone_and_exit_zero_completes_it() {
    let w = world().await;
    let run = submitted(&w).await;
    w.provider.script_status(JobStatus::Running);
    assert_eq!(
        w.service
            .reconcile_run(run.clone(), Utc::now())
            .await
            .unwrap(),
        Outcome::StillRunning
    );
    w.provider.script_status(JobStatus::Exited {
        exit_code: 0,
        detail: String::new(),
    });
    assert_eq!(
        w.service
            .reconcile_run(read(&w, &run).await, Utc::now())
            .await
            .unwrap(),
        Outcome::Finished(StateType::Completed)
    );
}

#[tokio::test]
async fn a_completed_run_stays_completed_when_a_late_signal_arrives() {
    let w = world().await;
    let mut run = submitted(&w).await;
    let now = Utc::now();
    apply_state(&mut run, State::new(StateType::Running, now), now);
    let running = w.store.update_flow_run(&run).await.unwrap();
    let mut run = running.clone();
    apply_state(&mut run, State::new(StateType::Completed, now), now);
    let run = w.store.update_flow_run(&run).await.unwrap();
    // The reconciler read the run while it was RUNNING; the engine reported COMPLETED since.
    // Its CRASHED proposal loses the conditional write, and on a fresh read it is aborted.
    let stale = running;
    w.provider.script_status(JobStatus::Exited {
        exit_code: 1,
        detail: String::new(),
    });
    let outcome = w.service.reconcile_run(stale, Utc::now()).await.unwrap();
    assert_eq!(outcome, Outcome::LostRace);
    let after = read(&w, &run).await;
    assert_eq!(after.state_type, Some(StateType::Completed));
    assert_eq!(after.state_id, run.state_id);
}

#[tokio::test]
async fn a_cancelling_run_is_stopped_and_ends_cancelled() {
    let w = world().await;
    let mut run = submitted(&w).await;
    let pid = run.infrastructure_pid.clone().unwrap();
    let now = Utc::now();
    apply_state(&mut run, State::new(StateType::Cancelling, now), now);
    let run = w.store.update_flow_run(&run).await.unwrap();
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    assert_eq!(*w.provider.cancels.lock().unwrap(), [pid]);
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Cancelled));
}

#[tokio::test]
async fn a_missing_block_document_crashes_the_run_and_names_it() {
    let w = world().await;
    let mut pool = w.pool.clone();
    let missing = uuid::Uuid::new_v4();
    pool.base_job_template["variables"]["properties"]["aws_credentials"]["default"] =
        json!({"$ref": {"block_document_id": missing.to_string()}});
    pool.updated = Utc::now();
    w.store.update_work_pool(&pool).await.unwrap();
    let run = new_run(&w).await;
    w.service.handle_change(run.id).await.unwrap();
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Crashed));
    assert_eq!(
        run.state.unwrap().message,
        Some(format!(
            "Flow run could not be submitted to infrastructure: job variables reference block document {missing}, which does not exist"
        ))
    );
    assert!(w.provider.submits().is_empty());
}

/// A submitted run that the engine has since finished (RUNNING, then `final_type`).
async fn finished_by_engine(w: &World, final_type: StateType) -> FlowRun {
    let mut run = submitted(w).await;
    let now = Utc::now();
    apply_state(&mut run, State::new(StateType::Running, now), now);
    let mut run = w.store.update_flow_run(&run).await.unwrap();
    apply_state(&mut run, State::new(final_type, now), now);
    w.store.update_flow_run(&run).await.unwrap()
}

fn leaving_resources(w: &World) {
    w.provider
        .leaves
        .store(true, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test]
async fn a_final_run_is_released_once_its_job_has_ended() {
    let w = world().await;
    leaving_resources(&w);
    let run = finished_by_engine(&w, StateType::Completed).await;
    let pid = run.infrastructure_pid.clone().unwrap();
    // The container is still exiting when the engine reports COMPLETED.
    w.provider.script_status(JobStatus::Running);
    w.provider.script_status(JobStatus::Running);
    w.provider.script_status(JobStatus::Exited {
        exit_code: 0,
        detail: String::new(),
    });
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Released(Released::Deleted)
    );
    assert_eq!(
        w.provider
            .status_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert_eq!(*w.provider.releases.lock().unwrap(), [pid]);
    // The run itself is untouched.
    assert_eq!(read(&w, &run).await.state_type, Some(StateType::Completed));
}

#[tokio::test]
async fn a_job_still_running_after_the_grace_is_released_anyway() {
    let w = world().await;
    leaving_resources(&w);
    let run = finished_by_engine(&w, StateType::Failed).await;
    // The fake answers Running whenever nothing is scripted.
    let started = std::time::Instant::now();
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Released(Released::Deleted)
    );
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert!(
        w.provider
            .status_calls
            .load(std::sync::atomic::Ordering::SeqCst)
            > 10
    );
    assert_eq!(w.provider.releases.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_kept_job_is_reported_kept() {
    let w = world().await;
    leaving_resources(&w);
    let run = finished_by_engine(&w, StateType::Completed).await;
    w.provider.script_status(JobStatus::Exited {
        exit_code: 0,
        detail: String::new(),
    });
    w.provider
        .release_results
        .lock()
        .unwrap()
        .push_back(Ok(Released::Kept));
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Released(Released::Kept)
    );
}

#[tokio::test]
async fn providers_that_leave_nothing_are_neither_waited_for_nor_released() {
    let w = world().await;
    let run = finished_by_engine(&w, StateType::Completed).await;
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Skipped("nothing to release".into())
    );
    assert_eq!(
        w.provider
            .status_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(w.provider.releases.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_release_that_keeps_failing_transiently_is_returned_for_a_retry() {
    let w = world().await;
    leaving_resources(&w);
    let run = finished_by_engine(&w, StateType::Crashed).await;
    w.provider.script_status(JobStatus::Failed {
        reason: "gone".into(),
    });
    for _ in 0..3 {
        w.provider
            .release_results
            .lock()
            .unwrap()
            .push_back(Err(ProviderError::transient("503 Service Unavailable")));
    }
    let err = w.service.handle_change(run.id).await.unwrap_err();
    assert_eq!(err.to_string(), "503 Service Unavailable");
    assert_eq!(w.provider.releases.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn retry_after_lengthens_the_wait_between_submission_attempts() {
    let w = world().await;
    w.provider.script_submit(Err(ProviderError::throttled(
        "429 Too Many Requests",
        Some(Duration::from_millis(100)),
    )));
    let run = new_run(&w).await;
    let started = std::time::Instant::now();
    let outcome = w.service.handle_change(run.id).await.unwrap();
    assert!(matches!(outcome, Outcome::Submitted(_)), "{outcome:?}");
    // The first wait is 20–40 ms: only the provider's Retry-After explains the wait.
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(w.provider.submits().len(), 2);
}

/// Proposes `state` as a client would (`set_state`, `force` as given) and writes the decision.
async fn set_state(w: &World, run: &FlowRun, state: State, force: bool) -> FlowRun {
    let current = read(w, run).await;
    let now = state.timestamp;
    let decision = orchestrate(&current, state, force, now);
    let mut next = current.clone();
    apply_decision(&mut next, &decision, force, now).expect("a state to write");
    w.store.update_flow_run(&next).await.unwrap()
}

fn named(t: StateType, name: &str) -> State {
    let mut s = State::new(t, Utc::now());
    s.name = name.into();
    s
}

/// The UI's Retry on a finished run (a forced `SCHEDULED/AwaitingRetry`, the previous
/// attempt's pid still on the run) is submitted again as a new attempt once that job has
/// ended.
#[tokio::test]
async fn a_finished_run_retried_from_the_ui_is_resubmitted_as_a_new_attempt() {
    let w = world().await;
    let run = finished_by_engine(&w, StateType::Completed).await;
    let first = run.infrastructure_pid.clone().unwrap();
    set_state(&w, &run, named(StateType::Scheduled, "AwaitingRetry"), true).await;
    w.provider.script_status(JobStatus::Exited {
        exit_code: 0,
        detail: String::new(),
    });

    let outcome = w.service.handle_change(run.id).await.unwrap();

    let key = format!("pushpool-{}-2", run.id);
    assert_eq!(outcome, Outcome::Submitted(format!("job-{key}")));
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Pending));
    assert_eq!(run.submission_attempt, 2);
    assert_eq!(run.infrastructure_pid, Some(format!("job-{key}")));
    assert_ne!(run.infrastructure_pid, Some(first));
    assert_eq!(w.provider.submits().len(), 2);
}

/// The engine's in-process retry (RetryFailedFlows' AwaitingRetry while its job runs) is
/// left to the engine; if that job ends without the engine proposing RUNNING, the run is
/// submitted again.
#[tokio::test]
async fn an_in_process_retry_is_left_to_the_live_engine_until_its_job_ends() {
    let w = world().await;
    let mut run = submitted(&w).await;
    run.empirical_policy.retries = Some(1);
    let run = w.store.update_flow_run(&run).await.unwrap();
    let run = set_state(&w, &run, State::new(StateType::Running, Utc::now()), false).await;
    let run = set_state(&w, &run, State::new(StateType::Failed, Utc::now()), false).await;
    assert_eq!(run.state_name.as_deref(), Some("AwaitingRetry"));
    assert_eq!(
        run.empirical_policy.retry_type.as_deref(),
        Some("in_process")
    );

    w.provider.script_status(JobStatus::Running);
    assert_eq!(
        w.service.handle_change(run.id).await.unwrap(),
        Outcome::Skipped("retry handled by the running engine of the current attempt".into())
    );
    assert_eq!(w.provider.submits().len(), 1);

    w.provider.script_status(JobStatus::Failed {
        reason: "killed".into(),
    });
    assert_eq!(
        w.service.reconcile_once(Utc::now()).await.unwrap(),
        1,
        "the due AwaitingRetry run is submitted"
    );
    let run = read(&w, &run).await;
    assert_eq!(run.submission_attempt, 2);
    assert_eq!(run.state_type, Some(StateType::Pending));
}

/// A run cancelled while its submission is in flight: the job that starts is stopped, its
/// pid is not recorded, and the run stays CANCELLED.
#[tokio::test]
async fn a_run_cancelled_during_submission_gets_its_job_stopped_and_no_pid() {
    let w = world().await;
    let run = new_run(&w).await;
    let gate = Arc::new(Gate::default());
    *w.provider.submit_gate.lock().unwrap() = Some(Arc::clone(&gate));
    let service = w.service.clone();
    let id = run.id;
    let submitting = tokio::spawn(async move { service.handle_change(id).await });
    gate.reached.notified().await;

    // The user cancels: CANCELLING, then pushpool's cancel finds no pid and writes CANCELLED.
    let cancelling = set_state(
        &w,
        &run,
        State::new(StateType::Cancelling, Utc::now()),
        false,
    )
    .await;
    assert_eq!(cancelling.state_type, Some(StateType::Cancelling));
    assert_eq!(
        w.service.cancel(cancelling).await.unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    gate.release.notify_one();

    let pid = format!("job-pushpool-{}-1", run.id);
    assert_eq!(
        submitting.await.unwrap().unwrap(),
        Outcome::Stopped(pid.clone())
    );
    assert_eq!(*w.provider.cancels.lock().unwrap(), [pid]);
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Cancelled));
    assert_eq!(run.infrastructure_pid, None);
    // The engine's late RUNNING is refused.
    let now = Utc::now();
    assert_eq!(
        orchestrate(&run, State::new(StateType::Running, now), false, now).status(),
        pushpool_core::orchestration::SetStateStatus::Abort
    );
}

/// A run that turned CANCELLING while its submission was in flight gets its pid, its job is
/// stopped and it ends CANCELLED.
#[tokio::test]
async fn a_run_cancelling_when_its_pid_arrives_is_stopped_and_cancelled() {
    let w = world().await;
    let run = new_run(&w).await;
    let gate = Arc::new(Gate::default());
    *w.provider.submit_gate.lock().unwrap() = Some(Arc::clone(&gate));
    let service = w.service.clone();
    let id = run.id;
    let submitting = tokio::spawn(async move { service.handle_change(id).await });
    gate.reached.notified().await;
    set_state(
        &w,
        &run,
        State::new(StateType::Cancelling, Utc::now()),
        false,
    )
    .await;
    gate.release.notify_one();

    assert_eq!(
        submitting.await.unwrap().unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    let pid = format!("job-pushpool-{}-1", run.id);
    assert_eq!(
        *w.provider.cancels.lock().unwrap(),
        std::slice::from_ref(&pid)
    );
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Cancelled));
    assert_eq!(run.infrastructure_pid, Some(pid));
}

/// A run rescheduled (the UI's Retry, forced) while its submission was in flight: the job
/// started for the old attempt is stopped and no pid is recorded on the new one.
#[tokio::test]
async fn a_job_started_for_a_rescheduled_attempt_is_stopped() {
    let w = world().await;
    let run = new_run(&w).await;
    let gate = Arc::new(Gate::default());
    *w.provider.submit_gate.lock().unwrap() = Some(Arc::clone(&gate));
    let service = w.service.clone();
    let id = run.id;
    let submitting = tokio::spawn(async move { service.handle_change(id).await });
    gate.reached.notified().await;
    let mut later = named(StateType::Scheduled, "AwaitingRetry");
    later.state_details.scheduled_time = Some(Utc::now() + chrono::Duration::hours(1));
    set_state(&w, &run, later, true).await;
    gate.release.notify_one();

    let pid = format!("job-pushpool-{}-1", run.id);
    assert_eq!(
        submitting.await.unwrap().unwrap(),
        Outcome::Stopped(pid.clone())
    );
    assert_eq!(*w.provider.cancels.lock().unwrap(), [pid]);
    let run = read(&w, &run).await;
    assert_eq!(run.state_name.as_deref(), Some("AwaitingRetry"));
    assert_eq!(run.infrastructure_pid, None);
}

/// The engine reports a (forced) CRASHED while its job is being stopped: once the job is
/// gone the run is CANCELLED over it.
#[tokio::test]
async fn a_crash_reported_while_the_job_is_stopped_ends_cancelled() {
    let w = world().await;
    let run = submitted(&w).await;
    let run = set_state(&w, &run, State::new(StateType::Running, Utc::now()), false).await;
    let run = set_state(
        &w,
        &run,
        State::new(StateType::Cancelling, Utc::now()),
        false,
    )
    .await;
    let gate = Arc::new(Gate::default());
    *w.provider.cancel_gate.lock().unwrap() = Some(Arc::clone(&gate));
    let service = w.service.clone();
    let cancelling = run.clone();
    let cancel = tokio::spawn(async move { service.cancel(cancelling).await });
    gate.reached.notified().await;
    let crashed = State::new(StateType::Crashed, Utc::now())
        .with_message("Execution was aborted by Python system exit call");
    set_state(&w, &run, crashed, true).await;
    gate.release.notify_one();

    assert_eq!(
        cancel.await.unwrap().unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    let run = read(&w, &run).await;
    assert_eq!(run.state_type, Some(StateType::Cancelled));
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some("Flow run was cancelled; its infrastructure was stopped by pushpool.")
    );
}

/// The reconciler's reading of an exit code never overwrites what the engine wrote
/// meanwhile: the proposal is dropped when the run moved on.
#[tokio::test]
async fn an_exit_code_read_before_the_engine_reported_does_not_overwrite_it() {
    let w = world().await;
    let run = submitted(&w).await;
    let run = set_state(&w, &run, State::new(StateType::Running, Utc::now()), false).await;
    let stale = run.clone();
    set_state(&w, &run, State::new(StateType::Failed, Utc::now()), false).await;
    w.provider.script_status(JobStatus::Exited {
        exit_code: 0,
        detail: String::new(),
    });
    assert_eq!(
        w.service.reconcile_run(stale, Utc::now()).await.unwrap(),
        Outcome::LostRace
    );
    assert_eq!(read(&w, &run).await.state_type, Some(StateType::Failed));
}

#[tokio::test]
async fn throttling_is_retried_for_the_budget_and_the_message_says_how_long() {
    // Retry-After 1 s on every answer, budget 2.5 s: tries at 0, 1 and 2 s; a fourth would
    // start at 3 s, past the budget.
    let w = world_with_budget(Duration::from_millis(2500)).await;
    for _ in 0..6 {
        w.provider.script_submit(Err(ProviderError::throttled(
            "ECS RunTask failed: ThrottlingException: Rate exceeded.",
            Some(Duration::from_secs(1)),
        )));
    }
    let run = new_run(&w).await;
    let outcome = w.service.handle_change(run.id).await.unwrap();
    assert_eq!(outcome, Outcome::Finished(StateType::Crashed));
    assert_eq!(w.provider.submits().len(), 3);
    let run = read(&w, &run).await;
    assert_eq!(
        run.state.unwrap().message.as_deref(),
        Some(
            "Flow run could not be submitted to infrastructure after 3 attempts over 2 s: ECS RunTask failed: ThrottlingException: Rate exceeded. \
             pushpool stopped retrying at the end of its 3 s retry budget: run the flow again later, \
             or raise the budget (PUSHPOOL_PROVIDER_RETRY_BUDGET)."
        )
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_ends_the_tries() {
    let w = world().await;
    w.provider.script_submit(Err(ProviderError::throttled(
        "429 Too Many Requests",
        Some(Duration::from_secs(30)),
    )));
    let run = new_run(&w).await;
    let started = std::time::Instant::now();
    let outcome = w.service.handle_change(run.id).await.unwrap();
    assert_eq!(outcome, Outcome::Finished(StateType::Crashed));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        read(&w, &run).await.state.unwrap().message.as_deref(),
        Some(
            "Flow run could not be submitted to infrastructure after 1 attempt over 0 s: 429 Too Many Requests. \
             pushpool stopped retrying at the end of its 0 s retry budget: run the flow again later, \
             or raise the budget (PUSHPOOL_PROVIDER_RETRY_BUDGET)."
        )
    );
}

// ---------------------------------------------------------------- pushpool's lines in the run's log

/// The run's log as `(level, logger name, message)`, oldest first.
async fn run_log(w: &World, run: &FlowRun) -> Vec<(i64, String, String)> {
    let query = pushpool_store::LogQuery {
        filter: pushpool_core::logs::LogFilter {
            flow_run_id: Some(pushpool_core::logs::FlowRunIdFilter {
                any_: Some(vec![run.id]),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    w.store
        .read_logs(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.level, l.name, l.message))
        .collect()
}

fn line(level: i64, message: &str) -> (i64, String, String) {
    (level, "prefect.flow_runs.worker".into(), message.into())
}

#[tokio::test]
async fn an_ecs_submission_writes_its_lines_with_the_retries_it_made() {
    let w = world().await;
    let run = new_run(&w).await;
    w.provider.script_submit(Err(ProviderError::transient(
        "ThrottlingException: Rate exceeded",
    )));
    w.provider.script_submit(Err(ProviderError::transient(
        "ServerException: Service unavailable",
    )));
    w.service.handle_change(run.id).await.unwrap();
    assert_eq!(
        run_log(&w, &run).await,
        [
            line(20, "Submitting flow run to work pool 'ecs-pool' (ecs:push)"),
            line(
                20,
                &format!(
                    "Submitted to ECS task job-pushpool-{}-1 after 3 attempts over 0 s \
                     (the provider's transient errors were retried)",
                    run.id
                )
            ),
        ]
    );
}

#[tokio::test]
async fn a_refused_submission_and_a_failed_job_write_the_providers_reasons() {
    let w = world().await;
    let run = new_run(&w).await;
    w.provider.script_submit(Err(ProviderError::permanent(
        "ClusterNotFoundException: Cluster not found.",
    )));
    w.service.handle_change(run.id).await.unwrap();
    assert_eq!(
        run_log(&w, &run).await,
        [
            line(20, "Submitting flow run to work pool 'ecs-pool' (ecs:push)"),
            line(
                40,
                "Flow run could not be submitted to infrastructure: ClusterNotFoundException: Cluster not found."
            ),
        ]
    );

    let run = submitted(&w).await;
    w.provider.script_status(JobStatus::Exited {
        exit_code: 137,
        detail: "Essential container in task exited (OutOfMemoryError: Container killed due to memory usage)".into(),
    });
    w.service
        .reconcile_run(run.clone(), Utc::now())
        .await
        .unwrap();
    let log = run_log(&w, &run).await;
    assert_eq!(
        log.last(),
        Some(&line(
            40,
            "Flow run infrastructure exited with non-zero status code 137. Essential container \
             in task exited (OutOfMemoryError: Container killed due to memory usage)"
        ))
    );
    assert_eq!(log.len(), 3, "{log:#?}");
}

#[tokio::test]
async fn a_cancelled_run_and_ignored_job_variables_are_in_the_log() {
    let w = world().await;
    let mut run = flow_run(w.deployment.flow_id, Some("ecs-pool"));
    run.deployment_id = Some(w.deployment.id);
    run.job_variables =
        json!({"task_definition_arn": "arn:aws:ecs:us-east-1:1:task-definition/x:1"})
            .as_object()
            .cloned()
            .unwrap();
    let run = w.store.create_flow_run(&run).await.unwrap().0;
    w.service.handle_change(run.id).await.unwrap();
    assert_eq!(
        run_log(&w, &run).await,
        [
            line(20, "Submitting flow run to work pool 'ecs-pool' (ecs:push)"),
            line(
                30,
                "Job variable image is ignored: task_definition_arn names the task definition to run."
            ),
            line(
                20,
                &format!("Submitted to ECS task job-pushpool-{}-1", run.id)
            ),
        ]
    );

    let mut run = read(&w, &run).await;
    let now = Utc::now();
    apply_state(&mut run, State::new(StateType::Cancelling, now), now);
    let run = w.store.update_flow_run(&run).await.unwrap();
    w.service.handle_change(run.id).await.unwrap();
    assert_eq!(
        run_log(&w, &run).await.last(),
        Some(&line(
            20,
            "Flow run was cancelled; its infrastructure was stopped by pushpool."
        ))
    );
}
