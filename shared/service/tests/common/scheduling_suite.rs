//! The scheduler's checks, run over any store: `scheduling.rs` runs them on SQLite, the
//! DynamoDB adapter's `scheduler.rs` on moto (this file is included by both; it lives in a
//! subfolder so that cargo does not build it as a test of its own).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use pushpool_core::filter::FlowRunFilter;
use pushpool_core::model::{Deployment, FlowRun};
use pushpool_core::orchestration::apply_state;
use pushpool_core::schedule::DeploymentSchedule;
use pushpool_core::state::{State, StateType};
use pushpool_providers::Providers;
use pushpool_service::{
    DeploymentScheduleCreate, DeploymentScheduleUpdate, ScheduleTick, Service, ServiceConfig,
};
use pushpool_store::conformance::{deployment, flow, flow_run, work_pool};
use pushpool_store::{FlowRunQuery, Store};
use serde_json::{Value, json};
use uuid::Uuid;

/// A store under test.
pub type DynStore = Arc<dyn Store>;

/// A service over a store with one deployment.
pub struct World {
    /// The service.
    pub service: Service,
    /// Its store.
    pub store: DynStore,
    /// The deployment.
    pub deployment: Deployment,
}

fn object(v: Value) -> pushpool_core::model::Object {
    v.as_object().cloned().unwrap()
}

/// A pool, a flow and a deployment with parameters `{"x": 0, "y": 2}` and tags `["etl"]`,
/// with the given schedules.
pub async fn world(store: DynStore, schedules: Value) -> World {
    store.create_work_pool(&work_pool("pool")).await.unwrap();
    let f = flow("my-flow");
    store.upsert_flow(&f).await.unwrap();
    let mut d = deployment(f.id, "my-deployment", "pool");
    d.parameters = object(json!({"x": 0, "y": 2}));
    d.tags = vec!["etl".into()];
    let given: Vec<DeploymentScheduleCreate> = serde_json::from_value(schedules).unwrap();
    d.schedules = pushpool_service::schedules::schedules_for(given, &[], d.id, Utc::now()).unwrap();
    store.create_deployment(&d).await.unwrap();
    let service = Service::new(
        Arc::clone(&store),
        Providers::new(),
        ServiceConfig::default(),
    );
    World {
        service,
        store,
        deployment: d,
    }
}

/// Every 10 minutes from 2024-01-01 00:00 UTC, slug `ten`, parameters `{"x": 1}`.
pub fn every_ten_minutes() -> Value {
    json!([{"schedule": {"interval": 600, "anchor_date": "2024-01-01T00:00:00Z"},
            "slug": "ten", "parameters": {"x": 1}}])
}

/// The deployment's runs, by scheduled time.
pub async fn runs(w: &World) -> Vec<FlowRun> {
    let query = FlowRunQuery {
        deployment_ids: Some(vec![w.deployment.id]),
        ..FlowRunQuery::new(FlowRunFilter::default())
    };
    let mut runs = w.store.list_flow_runs(&query).await.unwrap();
    runs.sort_by_key(|r| r.next_scheduled_start_time);
    runs
}

/// The next 10-minute slot at or after `t`.
fn next_slot(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t
        .with_nanosecond(0)
        .unwrap()
        .with_second(0)
        .unwrap()
        .with_minute(t.minute() / 10 * 10)
        .unwrap();
    if floor == t {
        floor
    } else {
        floor + Duration::minutes(10)
    }
}

fn schedule(w: &World) -> &DeploymentSchedule {
    &w.deployment.schedules[0]
}

/// A tick makes Prefect's horizon of runs (at least 3 and an hour ahead: 7 slots of 10
/// minutes), each with Prefect's fields; the next tick makes none and materialises nothing.
pub async fn tick_materialises_the_horizon_once(store: DynStore) {
    let w = world(store, every_ten_minutes()).await;
    let now = Utc::now();
    let tick = w.service.schedule_deployments(now).await.unwrap();
    assert_eq!(
        tick,
        ScheduleTick {
            deployments: 1,
            schedules: 1,
            materialised: 1,
            runs_created: 7
        }
    );
    let made = runs(&w).await;
    let first = next_slot(now);
    let times: Vec<_> = made
        .iter()
        .map(|r| r.next_scheduled_start_time.unwrap())
        .collect();
    let expected: Vec<_> = (0..7).map(|i| first + Duration::minutes(10 * i)).collect();
    assert_eq!(times, expected);
    let run = &made[0];
    let s = schedule(&w);
    assert!(run.auto_scheduled);
    assert_eq!(run.tags, ["auto-scheduled", "etl"]);
    assert_eq!(
        Value::Object(run.labels.clone()),
        json!({"prefect.flow.id": w.deployment.flow_id, "prefect.deployment.id": w.deployment.id})
    );
    assert_eq!(
        Value::Object(run.parameters.clone()),
        json!({"x": 1, "y": 2})
    );
    assert_eq!(
        run.idempotency_key.as_deref().unwrap(),
        format!(
            "scheduled {} {} {}+00:00",
            w.deployment.id,
            s.id,
            first.format("%Y-%m-%d %H:%M:%S")
        )
    );
    assert_eq!(
        run.created_by,
        Some(json!({"id": s.id, "display_value": "ten", "type": "SCHEDULE"}))
    );
    assert_eq!(run.state_type, Some(StateType::Scheduled));
    assert_eq!(run.state_name.as_deref(), Some("Scheduled"));
    let state = run.state.as_ref().unwrap();
    assert_eq!(state.message.as_deref(), Some("Flow run scheduled"));
    assert_eq!(state.state_details.scheduled_time, Some(first));
    assert_eq!(run.expected_start_time, Some(first));
    assert_eq!(run.work_pool_name.as_deref(), Some("pool"));
    assert_eq!(run.deployment_id, Some(w.deployment.id));

    let again = w.service.schedule_deployments(now).await.unwrap();
    assert_eq!((again.materialised, again.runs_created), (0, 0));
    assert_eq!(runs(&w).await.len(), 7);
    // Once two slots have passed, the horizon reaches first + 80 min: only the two new
    // slots are made.
    let later = first + Duration::minutes(10) + Duration::seconds(1);
    let tick = w.service.schedule_deployments(later).await.unwrap();
    assert_eq!((tick.materialised, tick.runs_created), (1, 2));
    let all = runs(&w).await;
    assert_eq!(all.len(), 9);
    assert_eq!(
        all.last().unwrap().next_scheduled_start_time,
        Some(first + Duration::minutes(80))
    );
}

/// Two schedulers ticking at once make one run per slot.
pub async fn concurrent_ticks_make_one_run_per_slot(store: DynStore) {
    let w = world(Arc::clone(&store), every_ten_minutes()).await;
    let other = Service::new(store, Providers::new(), ServiceConfig::default());
    let now = Utc::now();
    let (a, b) = tokio::join!(
        w.service.schedule_deployments(now),
        other.schedule_deployments(now)
    );
    assert_eq!(a.unwrap().runs_created + b.unwrap().runs_created, 7);
    let made = runs(&w).await;
    assert_eq!(made.len(), 7);
    let mut keys: Vec<_> = made.iter().map(|r| r.idempotency_key.clone()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 7);
}

/// A paused deployment and an inactive schedule make nothing; resuming makes the runs.
pub async fn paused_and_inactive_make_nothing(store: DynStore) {
    let w = world(
        store,
        json!([{"schedule": {"cron": "* * * * *"}, "active": false},
               {"schedule": {"interval": 600, "anchor_date": "2024-01-01T00:00:00Z"}}]),
    )
    .await;
    w.service.pause_deployment(w.deployment.id).await.unwrap();
    let tick = w.service.schedule_deployments(Utc::now()).await.unwrap();
    assert_eq!((tick.schedules, tick.runs_created), (0, 0));
    w.service.resume_deployment(w.deployment.id).await.unwrap();
    let tick = w.service.schedule_deployments(Utc::now()).await.unwrap();
    assert_eq!((tick.schedules, tick.runs_created), (1, 7));
    // Pausing deletes the auto-scheduled runs that have not started.
    w.service.pause_deployment(w.deployment.id).await.unwrap();
    assert_eq!(runs(&w).await.len(), 0);
}

async fn put_run(w: &World, name: &str, at: DateTime<Utc>, auto: bool, run_count: i64) -> FlowRun {
    let mut run = flow_run(w.deployment.flow_id, Some("pool"));
    run.deployment_id = Some(w.deployment.id);
    run.auto_scheduled = auto;
    run.run_count = run_count;
    let mut state = State::new(StateType::Scheduled, Utc::now());
    state.name = name.into();
    state.state_details.flow_run_id = Some(run.id);
    state.state_details.scheduled_time = Some(at);
    apply_state(&mut run, state, Utc::now());
    w.store.create_flow_run(&run).await.unwrap().0
}

/// Changing a schedule deletes only the future auto-scheduled runs that have not started:
/// a manual run, a Late run, an AwaitingRetry run and an AwaitingConcurrencySlot run stay;
/// the next tick makes the new schedule's runs.
pub async fn schedule_change_replaces_only_future_auto_runs(store: DynStore) {
    let w = world(store, every_ten_minutes()).await;
    let now = Utc::now();
    w.service.schedule_deployments(now).await.unwrap();
    let manual = put_run(&w, "Scheduled", now + Duration::minutes(30), false, 0).await;
    let late = put_run(&w, "Late", now - Duration::hours(1), true, 0).await;
    let retry = put_run(&w, "AwaitingRetry", now + Duration::minutes(5), true, 1).await;
    let slot = put_run(
        &w,
        "AwaitingConcurrencySlot",
        now + Duration::minutes(5),
        true,
        0,
    )
    .await;
    let update: DeploymentScheduleUpdate = serde_json::from_value(
        json!({"schedule": {"interval": 1200, "anchor_date": "2024-01-01T00:00:00Z"}}),
    )
    .unwrap();
    w.service
        .update_deployment_schedule(w.deployment.id, schedule(&w).id, update)
        .await
        .unwrap();
    let mut kept: Vec<Uuid> = runs(&w).await.iter().map(|r| r.id).collect();
    kept.sort();
    let mut expected = vec![manual.id, late.id, retry.id, slot.id];
    expected.sort();
    assert_eq!(kept, expected);
    let tick = w.service.schedule_deployments(Utc::now()).await.unwrap();
    assert_eq!(tick.runs_created, 4);
    let new: Vec<_> = runs(&w)
        .await
        .into_iter()
        .filter(|r| r.auto_scheduled && r.state_name.as_deref() == Some("Scheduled"))
        .collect();
    assert_eq!(new.len(), 4);
    for pair in new.windows(2) {
        assert_eq!(
            pair[1].next_scheduled_start_time.unwrap() - pair[0].next_scheduled_start_time.unwrap(),
            Duration::minutes(20)
        );
    }
}

/// Runs more than 15 s past their time and named `Scheduled` are marked Late (keeping their
/// scheduled time); younger ones and AwaitingConcurrencySlot ones are not.
pub async fn late_runs_are_marked(store: DynStore) {
    let w = world(store, json!([])).await;
    let now = Utc::now();
    let overdue = put_run(&w, "Scheduled", now - Duration::seconds(20), false, 0).await;
    let young = put_run(&w, "Scheduled", now - Duration::seconds(5), false, 0).await;
    let waiting = put_run(
        &w,
        "AwaitingConcurrencySlot",
        now - Duration::minutes(1),
        false,
        0,
    )
    .await;
    assert_eq!(w.service.mark_late_runs(now).await.unwrap(), 1);
    let read = |id| {
        let store = Arc::clone(&w.store);
        async move { store.read_flow_run(id).await.unwrap() }
    };
    let late = read(overdue.id).await;
    assert_eq!(late.state_type, Some(StateType::Scheduled));
    assert_eq!(late.state_name.as_deref(), Some("Late"));
    assert_eq!(
        late.state.unwrap().state_details.scheduled_time,
        overdue.next_scheduled_start_time
    );
    assert_eq!(
        read(young.id).await.state_name.as_deref(),
        Some("Scheduled")
    );
    assert_eq!(
        read(waiting.id).await.state_name.as_deref(),
        Some("AwaitingConcurrencySlot")
    );
    // A second pass marks nothing more.
    assert_eq!(w.service.mark_late_runs(now).await.unwrap(), 0);
}

/// Deleting a deployment deletes its scheduled runs (manual ones too) and its marks, and
/// keeps its runs that started.
pub async fn deleting_a_deployment_deletes_its_scheduled_runs(store: DynStore) {
    let w = world(store, every_ten_minutes()).await;
    w.service.schedule_deployments(Utc::now()).await.unwrap();
    put_run(
        &w,
        "Scheduled",
        Utc::now() + Duration::minutes(30),
        false,
        0,
    )
    .await;
    let mut running = flow_run(w.deployment.flow_id, Some("pool"));
    running.deployment_id = Some(w.deployment.id);
    apply_state(
        &mut running,
        State::new(StateType::Running, Utc::now()),
        Utc::now(),
    );
    let running = w.store.create_flow_run(&running).await.unwrap().0;
    assert_eq!(runs(&w).await.len(), 9);
    w.service.delete_deployment(w.deployment.id).await.unwrap();
    let left: Vec<Uuid> = runs(&w).await.iter().map(|r| r.id).collect();
    assert_eq!(left, vec![running.id]);
    assert_eq!(w.store.list_schedule_marks().await.unwrap(), vec![]);
}

/// A cron schedule in a time zone, through the store: the runs of a daily 09:00 in New
/// York cross the DST change at 09:00 local.
pub async fn cron_schedule_in_a_time_zone(store: DynStore) {
    let w = world(
        store,
        json!([{"schedule": {"cron": "0 9 * * *", "timezone": "America/New_York"}}]),
    )
    .await;
    let now = Utc.with_ymd_and_hms(2024, 3, 9, 0, 0, 0).unwrap();
    w.service.schedule_deployments(now).await.unwrap();
    let keys: Vec<String> = runs(&w)
        .await
        .iter()
        .map(|r| {
            r.idempotency_key
                .clone()
                .unwrap()
                .rsplit(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        keys,
        [
            "09:00:00-05:00 2024-03-09",
            "09:00:00-04:00 2024-03-10",
            "09:00:00-04:00 2024-03-11"
        ]
    );
}
