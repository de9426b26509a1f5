//! Scheduler figures for `docs/benchmarks.md` (ignored by default; run with
//! `cargo test -p pushpool-service --test scheduler_bench -- --ignored --nocapture`):
//! - a scheduler tick over 10,000 deployments with schedules, once their runs exist (the
//!   steady state: each deployment and each mark read once, no run written), and the first
//!   tick that makes the runs;
//! - schedule slot → provider request lateness with the embedded due timers (p50, p99).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushpool_core::pool_types::pool_type;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Providers, Released};
use pushpool_service::schedules::schedules_for;
use pushpool_service::{DeploymentScheduleCreate, Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store::conformance::{deployment, flow, work_pool};
use pushpool_store_sqlite::SqliteStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn tick_over_10000_deployments() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    store.create_work_pool(&work_pool("pool")).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let now = Utc::now();
    for i in 0..10_000 {
        let mut d = deployment(f.id, &format!("d{i}"), "pool");
        let given: Vec<DeploymentScheduleCreate> = serde_json::from_value(
            json!([{"schedule": {"cron": format!("{} {} * * *", i % 60, i % 24), "timezone": "Europe/Paris"}}]),
        )
        .unwrap();
        d.schedules = schedules_for(given, &[], d.id, now).unwrap();
        store.create_deployment(&d).await.unwrap();
    }
    let service = Service::new(
        Arc::clone(&store),
        Providers::new(),
        ServiceConfig::default(),
    );
    let started = Instant::now();
    let first = service.schedule_deployments(Utc::now()).await.unwrap();
    let first_took = started.elapsed();
    let mut steady = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let tick = service.schedule_deployments(Utc::now()).await.unwrap();
        steady.push(started.elapsed());
        assert_eq!(tick.runs_created, 0);
    }
    steady.sort();
    println!(
        "first tick: {} deployments, {} runs created in {:.2} s; steady tick (median of 5): {:.0} ms, max {:.0} ms",
        first.deployments,
        first.runs_created,
        first_took.as_secs_f64(),
        steady[2].as_secs_f64() * 1000.0,
        steady[4].as_secs_f64() * 1000.0
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn slot_to_provider_request() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let mut pool = work_pool("ecs-pool");
    pool.base_job_template = pool_type("ecs:push").unwrap().default_base_job_template();
    store.create_work_pool(&pool).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let provider = Arc::new(Clocked::default());
    let service = Service::new(
        Arc::clone(&store),
        Providers::new().with("ecs:push", provider.clone() as Arc<dyn Provider>),
        ServiceConfig::default(),
    )
    .with_local_timers(Duration::from_secs(5));
    // 200 hourly deployments whose next slots fall 1.5 to 4.5 s from now, 15 ms apart: the
    // reconciler's tick (every 5 s, `pushpool serve`'s default) makes their runs and arms the
    // timers of those due before its next tick.
    let now = Utc::now();
    let first_slot = now + chrono::Duration::milliseconds(1500);
    for i in 0..200 {
        let mut d = deployment(f.id, &format!("d{i}"), "ecs-pool");
        d.job_variables = json!({"image": "prefecthq/prefect:3-latest"})
            .as_object()
            .cloned()
            .unwrap();
        let anchor = first_slot + chrono::Duration::milliseconds(15 * i);
        let given: Vec<DeploymentScheduleCreate> = serde_json::from_value(json!([{"schedule": {
            "interval": 3600, "anchor_date": anchor.to_rfc3339()}}]))
        .unwrap();
        d.schedules = schedules_for(given, &[], d.id, now).unwrap();
        store.create_deployment(&d).await.unwrap();
    }
    service.reconcile_once(Utc::now()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let submitted = provider.submitted.lock().unwrap().clone();
    let mut late_ms = Vec::new();
    for (key, at) in submitted {
        let id: uuid::Uuid = key.trim_start_matches("pushpool-")[..36].parse().unwrap();
        let run = store.read_flow_run(id).await.unwrap();
        let slot = run.expected_start_time.unwrap();
        late_ms.push((at - slot).num_microseconds().unwrap() as f64 / 1000.0);
    }
    late_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| late_ms[((late_ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "slot → provider request: {} runs, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        late_ms.len(),
        pct(0.5),
        pct(0.99),
        late_ms.last().unwrap()
    );
}
