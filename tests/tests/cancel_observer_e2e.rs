//! The engine's cancellation observer over `WS /events/out`, end to end (embedded, process
//! pool).
//!
//! A process-pool run is executed by `prefect flow-run execute`, whose
//! `FlowRunExecutorContext` (Prefect 3.9.1 `runner/_flow_run_executor.py`) holds a
//! `FlowRunCancellingObserver` (`_internal/observers.py`): it subscribes to `/events/out`
//! with the filter `{"event": {"name": ["prefect.flow-run.Cancelling"]}}` (it names the
//! event, not the run: the observer matches the run id itself) and polls the API every 10 s
//! only while that websocket is unavailable. This test cancels a running run with
//! `prefect flow-run cancel` and shows that the observer was subscribed, that pushpool sent it
//! that run's `prefect.flow-run.Cancelling` over the websocket within moments of the cancel
//! (far under the 10 s polling interval), and that the run ends CANCELLED.

use std::time::{Duration, Instant};

use chrono::Utc;
use pushpool_core::state::StateType;
use pushpool_service::event_subscriptions::Subscription;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{deploy_and_run_on_process_pool, prefect};

const SLOW: &str = r#"
import time
from prefect import flow


@flow
def slow():
    for _ in range(240):
        time.sleep(0.25)
"#;

/// The cancellation observer's subscription: its filter names `prefect.flow-run.Cancelling`.
fn is_cancellation_observer(s: &Subscription) -> bool {
    s.filter["event"]["name"]
        .as_array()
        .is_some_and(|names| names.iter().any(|n| n == "prefect.flow-run.Cancelling"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_reaches_its_engines_observer_over_the_websocket() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let id = deploy_and_run_on_process_pool(
        &app.api,
        dir.path(),
        "slow.py",
        SLOW,
        "slow",
        "slow",
        "slow-local",
        "",
    )
    .await;
    app.wait_for_state(id, StateType::Running, Duration::from_secs(90))
        .await;

    // The run's `flow-run execute` subscribed for cancellations (an open websocket).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app
        .service
        .event_subscriptions()
        .iter()
        .any(|s| is_cancellation_observer(s) && s.closed.is_none())
    {
        assert!(
            Instant::now() < deadline,
            "no open /events/out subscription for prefect.flow-run.Cancelling: {:#?}",
            app.service.event_subscriptions()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let observer = app
        .service
        .event_subscriptions()
        .into_iter()
        .find(|s| is_cancellation_observer(s) && s.closed.is_none())
        .unwrap();
    assert_eq!(
        observer.filter["event"]["name"],
        serde_json::json!(["prefect.flow-run.Cancelling"]),
        "Prefect 3.9.1's observer filter: {:#}",
        observer.filter
    );

    let asked = Utc::now();
    let started = Instant::now();
    prefect(
        &app.api,
        dir.path(),
        &["flow-run", "cancel", &id.to_string()],
    )
    .await
    .ok();
    let run = app
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(40))
        .await;
    let took = started.elapsed();

    let subscriptions = app.service.event_subscriptions();
    let resource = format!("prefect.flow-run.{id}");
    let delivery = subscriptions
        .iter()
        .filter(|s| s.number == observer.number)
        .flat_map(|s| s.delivered.iter())
        .find(|d| d.event == "prefect.flow-run.Cancelling" && d.resource_id == resource)
        .unwrap_or_else(|| {
            panic!("the observer was not sent {resource}'s Cancelling: {subscriptions:#?}")
        });
    let after = (delivery.at - asked).to_std().unwrap_or_default();
    assert!(
        after < Duration::from_secs(5),
        "the Cancelling event went out {after:?} after the cancel (the observer polls every 10 s)"
    );
    assert!(
        took < Duration::from_secs(10),
        "the cancel took {took:?}, not under the observer's 10 s polling interval"
    );
    assert_eq!(run.state_type, Some(StateType::Cancelled));
    let history = app.history(id).await;
    let types: Vec<StateType> = history.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(
        types,
        [
            StateType::Scheduled,
            StateType::Pending,
            StateType::Running,
            StateType::Cancelling,
            StateType::Cancelled
        ],
        "{history:#?}"
    );
}
