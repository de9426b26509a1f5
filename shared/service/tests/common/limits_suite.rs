//! Work pool, work queue and deployment concurrency limits in submission, run over any
//! store: `limits.rs` runs them on SQLite, the DynamoDB adapter's `limits.rs` on moto (this
//! file is included by both; it lives in a subfolder so that cargo does not build it as a
//! test of its own).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use pushpool_core::model::{Deployment, FlowRun, WorkPool};
use pushpool_core::pool_types::pool_type;
use pushpool_core::state::{StateCreate, StateType};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_service::concurrency_slots::{deployment_counter, pool_counter, queue_counter};
use pushpool_service::queues::{self, QueueCreate};
use pushpool_service::{Outcome, Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{deployment, flow, flow_run, work_pool};
use serde_json::json;
use uuid::Uuid;

/// Handles the change of run `id` as the stream does: an invocation that fails on a transient
/// store error is delivered again, up to 5 times.
async fn handle_until_done(service: &Service, id: Uuid) -> Outcome {
    let mut tries = 0;
    loop {
        match service.handle_change(id).await {
            Ok(outcome) => return outcome,
            Err(pushpool_service::ServiceError::Store(pushpool_store::StoreError::Transient(
                e,
            ))) if tries < 5 => {
                tries += 1;
                eprintln!("redelivering the change of {id} after a transient store error: {e}");
            }
            Err(e) => panic!("the change of {id}: {e}"),
        }
    }
}

/// A store under test.
pub type DynStore = Arc<dyn Store>;

/// Records each submitted job's idempotency key; answers each pid's status from a map
/// (RUNNING by default). With `hold` set, the next `submit` records its call, signals
/// `held`, and never returns (a submitter killed mid-call).
#[derive(Default)]
struct Recorder {
    keys: Mutex<Vec<String>>,
    statuses: Mutex<HashMap<String, JobStatus>>,
    hold: Mutex<bool>,
    held: tokio::sync::Notify,
}

#[async_trait]
impl Provider for Recorder {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        self.keys.lock().unwrap().push(job.idempotency_key.clone());
        let hold = std::mem::take(&mut *self.hold.lock().unwrap());
        if hold {
            self.held.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(format!("job-{}", job.idempotency_key))
    }
    async fn status(&self, _job: &Job, pid: &str) -> Result<JobStatus, ProviderError> {
        Ok(self
            .statuses
            .lock()
            .unwrap()
            .get(pid)
            .cloned()
            .unwrap_or(JobStatus::Running))
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

/// A service over a store with an `ecs:push` pool `pool` (its default queue made), a flow
/// and a deployment in the pool's default queue.
pub struct World {
    service: Service,
    store: DynStore,
    recorder: Arc<Recorder>,
    pool: WorkPool,
    deployment: Deployment,
}

async fn world(store: DynStore, pool_limit: Option<i64>) -> World {
    let mut pool = work_pool("pool");
    pool.base_job_template = pool_type("ecs:push").unwrap().default_base_job_template();
    pool.concurrency_limit = pool_limit;
    store.create_work_pool(&pool).await.unwrap();
    queues::default_queue(store.as_ref(), &pool).await.unwrap();
    let pool = store.read_work_pool("pool").await.unwrap();
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

/// Sets the deployment's `concurrency_limit` and `concurrency_options`.
async fn limit_deployment(w: &mut World, limit: i64, options: serde_json::Value) {
    w.deployment.concurrency_limit = Some(limit);
    w.deployment.concurrency_options = Some(options);
    w.store.update_deployment(&w.deployment).await.unwrap();
}

/// A due SCHEDULED run of the deployment in queue `(id, name)`, scheduled `age_s` seconds ago.
async fn run_in(w: &World, queue: (Uuid, &str), age_s: i64) -> FlowRun {
    let mut run = flow_run(w.deployment.flow_id, Some("pool"));
    let at = Utc::now() - chrono::Duration::seconds(age_s);
    run.state.as_mut().unwrap().state_details.scheduled_time = Some(at);
    run.expected_start_time = Some(at);
    run.next_scheduled_start_time = Some(at);
    run.deployment_id = Some(w.deployment.id);
    run.work_pool_id = Some(w.pool.id);
    run.work_queue_id = Some(queue.0);
    run.work_queue_name = Some(queue.1.into());
    w.store.create_flow_run(&run).await.unwrap().0
}

async fn due_run(w: &World, age_s: i64) -> FlowRun {
    run_in(w, (w.pool.default_queue_id, "default"), age_s).await
}

async fn read(w: &World, run: &FlowRun) -> FlowRun {
    w.store.read_flow_run(run.id).await.unwrap()
}

/// `(type, name, message)` of the run's state.
async fn state_of(w: &World, run: &FlowRun) -> (StateType, String, Option<String>) {
    let s = read(w, run).await.state.unwrap();
    (s.r#type, s.name, s.message)
}

fn waiting(message: &str) -> (StateType, String, Option<String>) {
    (
        StateType::Scheduled,
        "AwaitingConcurrencySlot".into(),
        Some(message.into()),
    )
}

fn key(run: &FlowRun) -> String {
    format!("pushpool-{}-1", run.id)
}

fn keys(w: &World) -> Vec<String> {
    w.recorder.keys.lock().unwrap().clone()
}

/// Proposes `state_type` for the run as its engine would (`POST /flow_runs/{id}/set_state`).
async fn report(w: &World, run: &FlowRun, state_type: &str) {
    let proposed: StateCreate = serde_json::from_value(json!({"type": state_type})).unwrap();
    let t = w
        .service
        .set_flow_run_state(run.id, proposed, false)
        .await
        .unwrap();
    assert!(t.written, "{state_type} was not written: {:?}", t.decision);
}

/// The engine reports RUNNING then COMPLETED; the change of the final state is handled.
async fn finish(w: &World, run: &FlowRun) {
    report(w, run, "RUNNING").await;
    report(w, run, "COMPLETED").await;
    w.service.handle_change(run.id).await.unwrap();
}

async fn counter(w: &World, name: &str) -> i64 {
    w.store.read_counter(name).await.unwrap()
}

/// The runs of `runs` in PENDING, RUNNING or CANCELLING now.
async fn active(w: &World, runs: &[FlowRun]) -> usize {
    let mut n = 0;
    for r in runs {
        if matches!(
            read(w, r).await.state_type,
            Some(StateType::Pending | StateType::Running | StateType::Cancelling)
        ) {
            n += 1;
        }
    }
    n
}

const POOL_FULL: &str = "Work pool 'pool' concurrency limit (1) reached.";

/// A pool limit of 1 with 3 due runs: exactly one is claimed, the others wait
/// (`AwaitingConcurrencySlot`, saying why), and they go one after another, oldest first, as
/// runs finish (the change of the finished run submits the next).
pub async fn a_pool_limit_of_one_runs_due_runs_one_after_another(store: DynStore) {
    let w = world(store, Some(1)).await;
    let first = due_run(&w, 30).await;
    let second = due_run(&w, 20).await;
    let third = due_run(&w, 10).await;
    let pool_slots = pool_counter(w.pool.id);

    assert_eq!(
        w.service.handle_change(first.id).await.unwrap(),
        Outcome::Submitted(format!("job-{}", key(&first)))
    );
    for run in [&second, &third] {
        assert_eq!(
            w.service.handle_change(run.id).await.unwrap(),
            Outcome::AwaitingConcurrencySlot(pool_slots.clone())
        );
        assert_eq!(state_of(&w, run).await, waiting(POOL_FULL));
        // Its change comes back (a SCHEDULED write): nothing more is written.
        let version = read(&w, run).await.version;
        w.service.handle_change(run.id).await.unwrap();
        assert_eq!(read(&w, run).await.version, version);
    }
    assert_eq!(keys(&w), [key(&first)]);
    assert_eq!(counter(&w, &pool_slots).await, 1);
    // The reconciler's tick does not overshoot either.
    w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(keys(&w), [key(&first)]);

    finish(&w, &first).await;
    assert_eq!(keys(&w), [key(&first), key(&second)]);
    assert_eq!(read(&w, &second).await.state_type, Some(StateType::Pending));
    assert_eq!(state_of(&w, &third).await, waiting(POOL_FULL));
    assert_eq!(counter(&w, &pool_slots).await, 1);

    finish(&w, &second).await;
    assert_eq!(keys(&w), [key(&first), key(&second), key(&third)]);
    finish(&w, &third).await;
    assert_eq!(counter(&w, &pool_slots).await, 0);
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 0);
}

/// A queue's limit holds its own runs only; the other queues of the pool go.
pub async fn a_queue_limit_holds_its_own_runs(store: DynStore) {
    let w = world(store, None).await;
    let slow = queues::create_queue(
        w.store.as_ref(),
        &w.pool,
        QueueCreate {
            name: "slow".into(),
            concurrency_limit: Some(1),
            ..QueueCreate::default()
        },
    )
    .await
    .unwrap();
    let a = run_in(&w, (slow.id, "slow"), 30).await;
    let b = run_in(&w, (slow.id, "slow"), 20).await;
    let other = due_run(&w, 10).await;
    w.service.reconcile_once(Utc::now()).await.unwrap();
    let mut submitted = keys(&w);
    submitted.sort();
    let mut expected = vec![key(&a), key(&other)];
    expected.sort();
    assert_eq!(submitted, expected);
    assert_eq!(
        state_of(&w, &b).await,
        waiting("Work queue 'slow' concurrency limit (1) reached.")
    );
    assert_eq!(counter(&w, &queue_counter(slow.id)).await, 1);
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 2);
    finish(&w, &a).await;
    assert_eq!(keys(&w)[2..], [key(&b)]);
}

/// A deployment limit with `ENQUEUE`: the new run waits (Prefect's state name, and its
/// reason as the message); a cancelled run gives its slot back at once and the waiting run
/// goes.
pub async fn a_deployment_limit_enqueues_and_a_cancelled_run_frees_its_slot(store: DynStore) {
    let mut w = world(store, None).await;
    limit_deployment(&mut w, 1, json!({"collision_strategy": "ENQUEUE"})).await;
    let first = due_run(&w, 20).await;
    let second = due_run(&w, 10).await;
    w.service.handle_change(first.id).await.unwrap();
    assert_eq!(
        w.service.handle_change(second.id).await.unwrap(),
        Outcome::AwaitingConcurrencySlot(deployment_counter(w.deployment.id))
    );
    assert_eq!(
        state_of(&w, &second).await,
        waiting("Deployment concurrency limit reached.")
    );

    report(&w, &first, "CANCELLING").await;
    assert_eq!(
        w.service.handle_change(first.id).await.unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 0);
    w.service.handle_change(first.id).await.unwrap();
    assert_eq!(keys(&w), [key(&first), key(&second)]);
    assert_eq!(read(&w, &second).await.state_type, Some(StateType::Pending));
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 1);
}

/// A deployment limit with `CANCEL_NEW`: the new run ends CANCELLED with Prefect's message;
/// the slot count is unchanged.
pub async fn a_deployment_limit_with_cancel_new_cancels_the_new_run(store: DynStore) {
    let mut w = world(store, None).await;
    limit_deployment(&mut w, 1, json!({"collision_strategy": "CANCEL_NEW"})).await;
    let first = due_run(&w, 20).await;
    let second = due_run(&w, 10).await;
    w.service.handle_change(first.id).await.unwrap();
    assert_eq!(
        w.service.handle_change(second.id).await.unwrap(),
        Outcome::Finished(StateType::Cancelled)
    );
    assert_eq!(
        state_of(&w, &second).await,
        (
            StateType::Cancelled,
            "Cancelled".into(),
            Some("Deployment concurrency limit reached.".into())
        )
    );
    assert_eq!(keys(&w), [key(&first)]);
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 1);
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 1);
}

/// A run whose job crashed (the reconciler ends it CRASHED from the provider's status) gives
/// its slot back; the waiting run goes on the change.
pub async fn a_crashed_run_frees_its_slot(store: DynStore) {
    let w = world(store, Some(1)).await;
    let first = due_run(&w, 20).await;
    let second = due_run(&w, 10).await;
    w.service.handle_change(first.id).await.unwrap();
    w.service.handle_change(second.id).await.unwrap();
    assert_eq!(state_of(&w, &second).await, waiting(POOL_FULL));
    w.recorder.statuses.lock().unwrap().insert(
        format!("job-{}", key(&first)),
        JobStatus::Failed {
            reason: "OutOfMemoryError".into(),
        },
    );
    let now = Utc::now();
    assert_eq!(
        w.service
            .reconcile_run(read(&w, &first).await, now)
            .await
            .unwrap(),
        Outcome::Finished(StateType::Crashed)
    );
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 0);
    w.service.handle_change(first.id).await.unwrap();
    assert_eq!(keys(&w), [key(&first), key(&second)]);
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 1);
}

/// A deployment slot whose lease is not renewed expires: the reconciler gives it back and
/// the waiting run goes (the first run keeps its pool slot until it ends).
pub async fn an_expired_deployment_lease_frees_the_slot(store: DynStore) {
    let mut w = world(store, None).await;
    limit_deployment(
        &mut w,
        1,
        json!({"collision_strategy": "ENQUEUE", "grace_period_seconds": 60}),
    )
    .await;
    let first = due_run(&w, 20).await;
    let second = due_run(&w, 10).await;
    w.service.handle_change(first.id).await.unwrap();
    w.service.handle_change(second.id).await.unwrap();
    let claimed = read(&w, &first).await;
    let expires = claimed.concurrency_slots.lease_expires.unwrap();
    assert_eq!(claimed.concurrency_slots.lease_seconds, 60);
    // Before the lease ends, nothing expires.
    assert!(
        !w.service
            .expire_deployment_lease(&claimed, expires - chrono::Duration::seconds(1))
            .await
            .unwrap()
    );
    let later = expires + chrono::Duration::seconds(1);
    assert!(
        w.service
            .expire_deployment_lease(&claimed, later)
            .await
            .unwrap()
    );
    assert_eq!(keys(&w), [key(&first), key(&second)]);
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 1);
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 2);
    let first_now = read(&w, &first).await;
    assert_eq!(first_now.state_type, Some(StateType::Pending));
    assert_eq!(
        first_now.concurrency_slots.held,
        [
            pool_counter(w.pool.id),
            queue_counter(w.pool.default_queue_id)
        ]
    );
    // The first run ends: it gives back only what it still holds.
    finish(&w, &first).await;
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 1);
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 1);
}

/// A running job's lease is renewed by the reconciler (the provider says it runs).
pub async fn a_running_jobs_lease_is_renewed_by_the_reconciler(store: DynStore) {
    let mut w = world(store, None).await;
    limit_deployment(&mut w, 1, json!({"collision_strategy": "ENQUEUE"})).await;
    let run = due_run(&w, 10).await;
    w.service.handle_change(run.id).await.unwrap();
    let claimed = read(&w, &run).await;
    let first_expiry = claimed.concurrency_slots.lease_expires.unwrap();
    assert_eq!(claimed.concurrency_slots.lease_seconds, 300);
    // 200 s later (less than half of the 300 s left), the reconciler renews it.
    let later = first_expiry - chrono::Duration::seconds(100);
    assert_eq!(
        w.service.reconcile_run(claimed, later).await.unwrap(),
        Outcome::StillRunning
    );
    assert_eq!(
        read(&w, &run).await.concurrency_slots.lease_expires,
        Some(later + chrono::Duration::seconds(300))
    );
}

/// Concurrent submitters, every change delivered twice, and a submitter killed after its
/// claim (mid provider call): the pool's limit of 2 is never exceeded, each run gets one
/// job, and the killed claim is finished by the reconciler with the same key and no second
/// slot. Then the runs finish, two at a time, until all completed and the counter is 0.
pub async fn concurrent_redelivered_and_killed_submitters_never_exceed_the_limit(store: DynStore) {
    let w = world(store, Some(2)).await;
    let mut runs = Vec::new();
    for age in 0..8 {
        runs.push(due_run(&w, 100 - age).await);
    }
    let pool_slots = pool_counter(w.pool.id);

    // A submitter that dies in its provider call, after the claim.
    *w.recorder.hold.lock().unwrap() = true;
    let killed = {
        let service = w.service.clone();
        let id = runs[0].id;
        tokio::spawn(async move { service.handle_change(id).await })
    };
    w.recorder.held.notified().await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    assert_eq!(
        read(&w, &runs[0]).await.state_type,
        Some(StateType::Pending)
    );
    assert_eq!(read(&w, &runs[0]).await.infrastructure_pid, None);

    // Four submitters, each change delivered twice, all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        for _ in 0..2 {
            for run in &runs {
                let service = w.service.clone();
                let id = run.id;
                tasks.spawn(async move { handle_until_done(&service, id).await });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let active_now = active(&w, &runs).await;
    assert_eq!(
        (active_now, counter(&w, &pool_slots).await),
        (2, 2),
        "active runs and the pool slot counter"
    );
    let mut submitted = keys(&w);
    submitted.sort();
    submitted.dedup();
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    assert_eq!(keys(&w).len(), 2, "one provider call per claimed run");

    // The reconciler finds the claim without a pid past the deadline: the same key, no
    // second slot.
    let late = Utc::now() + chrono::Duration::minutes(10);
    w.service.reconcile_once(late).await.unwrap();
    assert_eq!(keys(&w)[2..], [key(&runs[0])]);
    assert_eq!(
        read(&w, &runs[0]).await.infrastructure_pid,
        Some(format!("job-{}", key(&runs[0])))
    );
    assert_eq!(counter(&w, &pool_slots).await, 2);

    // Runs finish; each final change is delivered twice, concurrently.
    let mut completed = 0;
    while completed < runs.len() {
        let mut finishing = Vec::new();
        for run in &runs {
            if read(&w, run).await.state_type == Some(StateType::Pending) {
                report(&w, run, "RUNNING").await;
                report(&w, run, "COMPLETED").await;
                finishing.push(run.id);
            }
        }
        assert!(!finishing.is_empty(), "no run was active");
        completed += finishing.len();
        let mut tasks = tokio::task::JoinSet::new();
        for id in finishing.iter().chain(finishing.iter()) {
            let service = w.service.clone();
            let id = *id;
            tasks.spawn(async move { service.handle_change(id).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let now_active = active(&w, &runs).await;
        assert!(now_active <= 2, "{now_active} active runs");
        assert_eq!(counter(&w, &pool_slots).await, now_active as i64);
    }
    assert_eq!(counter(&w, &pool_slots).await, 0);
    let mut all = keys(&w);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 8);
    for run in &runs {
        assert_eq!(read(&w, run).await.state_type, Some(StateType::Completed));
    }
}

/// Counters always count: a limit set while runs are active applies at once (runs already
/// active count against it); a run deleted while active gives its slot back.
pub async fn a_limit_set_later_counts_the_runs_already_active(store: DynStore) {
    let mut w = world(store, None).await;
    let a = due_run(&w, 30).await;
    let b = due_run(&w, 20).await;
    let c = due_run(&w, 10).await;
    w.service.handle_change(a.id).await.unwrap();
    w.service.handle_change(b.id).await.unwrap();
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 2);
    w.pool.concurrency_limit = Some(2);
    w.store.update_work_pool(&w.pool).await.unwrap();
    w.service.handle_change(c.id).await.unwrap();
    assert_eq!(
        state_of(&w, &c).await,
        waiting("Work pool 'pool' concurrency limit (2) reached.")
    );
    w.service.delete_flow_run(a.id).await.unwrap();
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 1);
    w.service.reconcile_once(Utc::now()).await.unwrap();
    assert_eq!(read(&w, &c).await.state_type, Some(StateType::Pending));
    assert_eq!(counter(&w, &pool_counter(w.pool.id)).await, 2);
}

/// A deployment's limit seen through `/v2/concurrency_limits` (Prefect's V2 limit named
/// `deployment:<id>`, [`pushpool_service::deployment_limit`]): its `active_slots` are the
/// deployment's claimed runs; a new `limit` written through it is enforced exactly (the
/// waiting run goes once the limit is raised); deleting it leaves the deployment unlimited.
pub async fn a_deployment_limit_is_its_v2_limit_with_its_runs_as_slots(store: DynStore) {
    use pushpool_service::concurrency_limits::{ConcurrencyError, IdOrName, LimitUpdate};
    use pushpool_service::deployment_limit::deployment_limit_id;

    let mut w = world(store, None).await;
    limit_deployment(&mut w, 1, json!({"collision_strategy": "ENQUEUE"})).await;
    let name = format!("deployment:{}", w.deployment.id);
    let which = IdOrName::Name(name.clone());
    let limits = w.service.concurrency_limits();
    let first = due_run(&w, 30).await;
    let second = due_run(&w, 20).await;
    let third = due_run(&w, 10).await;
    w.service.handle_change(first.id).await.unwrap();
    w.service.handle_change(second.id).await.unwrap();
    assert_eq!(
        state_of(&w, &second).await,
        waiting("Deployment concurrency limit reached.")
    );

    let seen = limits.read(&which).await.unwrap();
    assert_eq!(
        (
            seen.id,
            seen.name.as_str(),
            seen.limit,
            seen.active_slots,
            seen.active
        ),
        (
            deployment_limit_id(w.deployment.id),
            name.as_str(),
            1,
            1,
            true
        )
    );
    assert_eq!(limits.read(&IdOrName::Id(seen.id)).await.unwrap(), seen);
    assert_eq!(limits.list().await.unwrap(), vec![seen.clone()]);

    // A refused change writes nothing.
    let refused = limits
        .update(
            &which,
            &LimitUpdate {
                limit: Some(5),
                active: Some(false),
                ..LimitUpdate::default()
            },
        )
        .await;
    assert!(
        matches!(&refused, Err(ConcurrencyError::Invalid(d)) if d.starts_with("active: ")),
        "{refused:?}"
    );
    assert_eq!(limits.read(&which).await.unwrap().limit, 1);

    // Raised to 2 through the V2 route: the waiting run goes, the third still waits.
    limits
        .update(
            &which,
            &LimitUpdate {
                limit: Some(2),
                ..LimitUpdate::default()
            },
        )
        .await
        .unwrap();
    w.service.handle_change(second.id).await.unwrap();
    w.service.handle_change(third.id).await.unwrap();
    assert_eq!(read(&w, &second).await.state_type, Some(StateType::Pending));
    assert_eq!(
        state_of(&w, &third).await,
        waiting("Deployment concurrency limit reached.")
    );
    let seen = limits.read(&which).await.unwrap();
    assert_eq!((seen.limit, seen.active_slots), (2, 2));
    assert_eq!(counter(&w, &deployment_counter(w.deployment.id)).await, 2);

    // Deleted through the V2 route: the deployment is unlimited, the third run goes.
    limits.delete(&which).await.unwrap();
    assert_eq!(
        w.store
            .read_deployment(w.deployment.id)
            .await
            .unwrap()
            .concurrency_limit,
        None
    );
    assert!(matches!(
        limits.read(&which).await,
        Err(ConcurrencyError::NotFound(_))
    ));
    assert_eq!(limits.list().await.unwrap(), vec![]);
    w.service.handle_change(third.id).await.unwrap();
    assert_eq!(read(&w, &third).await.state_type, Some(StateType::Pending));
    assert_eq!(keys(&w), [key(&first), key(&second), key(&third)]);
}
