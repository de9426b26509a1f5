//! The task run recorder over any store: `task_run_recorder.rs` runs it on SQLite, the
//! DynamoDB adapter's `task_run_recorder.rs` on moto (this file is included by both).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pushpool_core::state::StateType;
use pushpool_core::task_run::TaskRun;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use serde_json::{Value, json};
use uuid::Uuid;

/// A store under test.
pub type DynStore = Arc<dyn Store>;

fn service(store: DynStore) -> Service {
    Service::new(store, Providers::new(), ServiceConfig::default())
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// The event the engine emits when task run `task_run_id` of flow run `flow_run_id` enters
/// `state` (`(type, name, seconds after t0)`), as `emit_task_run_state_change_event` builds it.
fn event(
    task_run_id: Uuid,
    flow_run_id: Uuid,
    event_id: Uuid,
    (r#type, name, at): (&str, &str, i64),
) -> Value {
    let running = r#type != "PENDING";
    let done = r#type == "COMPLETED";
    let mut task_run = json!({
        "name": "add-0", "task_key": "flows.add-4b1d", "dynamic_key": "0",
        "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0,
                             "retry_delay": 0},
        "tags": ["math"], "labels": {"prefect.flow-run.id": flow_run_id.to_string()},
        "task_inputs": {"x": [], "y": []},
        "run_count": i64::from(running), "flow_run_run_count": i64::from(running),
        "expected_start_time": t(0).to_rfc3339(),
        "total_run_time": if done { 1.5 } else { 0.0 },
        "estimated_run_time": 99.0,
        "state_type": "PENDING",
    });
    if running {
        task_run["start_time"] = json!(t(1).to_rfc3339());
    }
    if done {
        task_run["end_time"] = json!(t(3).to_rfc3339());
    }
    json!({
        "occurred": t(at).to_rfc3339(),
        "event": format!("prefect.task-run.{name}"),
        "resource": {"prefect.resource.id": format!("prefect.task-run.{task_run_id}"),
                     "prefect.resource.name": "add-0", "prefect.state-name": name,
                     "prefect.state-type": r#type},
        "related": [{"prefect.resource.id": format!("prefect.flow-run.{flow_run_id}"),
                     "prefect.resource.role": "flow-run", "prefect.resource.name": "f"},
                    {"prefect.resource.id": "prefect.tag.math", "prefect.resource.role": "tag"}],
        "payload": {
            "intended": {"from": null, "to": r#type},
            "initial_state": null,
            "validated_state": {"type": r#type, "name": name, "message": "",
                                "state_details": {}, "data": null},
            "task_run": task_run,
        },
        "id": event_id.to_string(),
        "follows": null,
    })
}

/// Three events of one task run: PENDING at t0, RUNNING at t1, COMPLETED at t3.
fn lifecycle(task_run_id: Uuid, flow_run_id: Uuid) -> Vec<Value> {
    [
        ("PENDING", "Pending", 0),
        ("RUNNING", "Running", 1),
        ("COMPLETED", "Completed", 3),
    ]
    .into_iter()
    .map(|s| event(task_run_id, flow_run_id, Uuid::now_v7(), s))
    .collect()
}

/// The run as a client sees it (server bookkeeping aside).
fn seen(run: &TaskRun) -> Value {
    let mut v = serde_json::to_value(run).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("created");
    o.remove("updated");
    v
}

async fn check_final(store: &DynStore, task_run_id: Uuid, flow_run_id: Uuid) -> TaskRun {
    let run = store.read_task_run(task_run_id).await.unwrap();
    assert_eq!(run.name, "add-0");
    assert_eq!(run.flow_run_id, Some(flow_run_id));
    assert_eq!(run.task_key, "flows.add-4b1d");
    assert_eq!(run.dynamic_key, "0");
    assert_eq!(run.tags, vec!["math".to_owned()]);
    assert_eq!(run.state_type, Some(StateType::Completed));
    assert_eq!(run.state_name.as_deref(), Some("Completed"));
    let state = run.state.clone().unwrap();
    assert_eq!(run.state_id, Some(state.id));
    assert_eq!(state.timestamp, t(3));
    assert_eq!(state.state_details.task_run_id, Some(task_run_id));
    assert_eq!(state.state_details.flow_run_id, Some(flow_run_id));
    assert_eq!(run.run_count, 1);
    assert_eq!(run.start_time, Some(t(1)));
    assert_eq!(run.end_time, Some(t(3)));
    assert_eq!(run.total_run_time, 1.5);
    assert_eq!(run.estimated_run_time, 1.5);
    assert_eq!(run.estimated_start_time_delta, 1.0);
    let states = store.read_task_run_states(task_run_id).await.unwrap();
    let summary: Vec<(StateType, String, DateTime<Utc>)> = states
        .iter()
        .map(|s| (s.r#type, s.name.clone(), s.timestamp))
        .collect();
    assert_eq!(
        summary,
        vec![
            (StateType::Pending, "Pending".into(), t(0)),
            (StateType::Running, "Running".into(), t(1)),
            (StateType::Completed, "Completed".into(), t(3)),
        ]
    );
    assert!(
        states
            .iter()
            .all(|s| s.state_details.task_run_id == Some(task_run_id))
    );
    run
}

/// Events in order, one by one, and the same events shuffled, duplicated and in one batch,
/// give the same task run (COMPLETED, with the client's times) and the same three states.
pub async fn ordered_and_disordered_events_give_the_same_task_run(store: DynStore) {
    let service = service(store.clone());
    let flow_run_id = Uuid::new_v4();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for e in lifecycle(a, flow_run_id) {
        assert_eq!(service.record_task_run_events(&[e]).await, 1);
    }
    let ordered = check_final(&store, a, flow_run_id).await;

    // The second run: same events for another id and flow run, completed first, then all
    // again, then the first ones once more, one by one and in a batch.
    let other_flow_run = Uuid::new_v4();
    let events = lifecycle(b, other_flow_run);
    assert_eq!(service.record_task_run_events(&events[2..]).await, 1);
    let batch = vec![
        events[1].clone(),
        events[0].clone(),
        events[2].clone(),
        events[1].clone(),
    ];
    assert_eq!(service.record_task_run_events(&batch).await, 4);
    assert_eq!(service.record_task_run_events(&events[..1]).await, 1);
    let disordered = check_final(&store, b, other_flow_run).await;

    let mut expected = seen(&ordered).to_string();
    for (from, to) in [
        (a, b),
        (flow_run_id, other_flow_run),
        (ordered.state_id.unwrap(), disordered.state_id.unwrap()),
    ] {
        expected = expected.replace(&from.to_string(), &to.to_string());
    }
    assert_eq!(
        seen(&disordered),
        serde_json::from_str::<Value>(&expected).unwrap()
    );
}

/// An event for a new id whose `(flow_run_id, task_key, dynamic_key)` is held by a stored
/// run updates that run (its id wins); events that are not task run events are ignored;
/// an unreadable task run event is dropped.
pub async fn the_natural_key_wins_and_other_events_are_ignored(store: DynStore) {
    let service = service(store.clone());
    let flow_run_id = Uuid::new_v4();
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let events = lifecycle(first, flow_run_id);
    assert_eq!(service.record_task_run_events(&events[..1]).await, 1);
    let late = lifecycle(second, flow_run_id);
    let unrelated = json!({"event": "prefect.flow-run.Running", "id": Uuid::new_v4(),
                           "occurred": t(0).to_rfc3339(), "resource": {}, "payload": {}});
    let mut broken = events[1].clone();
    broken["payload"]
        .as_object_mut()
        .unwrap()
        .remove("validated_state");
    let batch = vec![unrelated, broken, late[1].clone(), late[2].clone()];
    assert_eq!(service.record_task_run_events(&batch).await, 2);
    check_final(&store, first, flow_run_id).await;
    assert!(matches!(
        store.read_task_run(second).await,
        Err(pushpool_store::StoreError::NotFound(_))
    ));
    let listed = store
        .list_task_runs(&pushpool_store::TaskRunFilter {
            flow_run_ids: Some(vec![flow_run_id]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}
