//! The AWS due timer against moto's EventBridge Scheduler: the one-time schedule's exact
//! request (name, `at()` expression in UTC, flexible window off, self-deleting, the target's
//! input event), idempotent arming, disarming; and the reconciler handling the event the
//! schedule delivers.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use pushpool_providers::Providers;
use pushpool_reconciler::timer::{SchedulerTimer, TimerTarget, run_due_input, schedule_name};
use pushpool_reconciler::{Trigger, classify};
use pushpool_service::DueTimer;
use pushpool_tests::moto::MotoServer;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn a_due_timer_is_one_self_deleting_one_time_schedule_per_run() {
    let moto = MotoServer::start();
    let client = aws_sdk_scheduler::Client::new(&moto.sdk_config().await);
    let target = TimerTarget {
        group: "default".into(),
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:pushpool-reconciler".into(),
        role_arn: "arn:aws:iam::123456789012:role/pushpool-due-timer".into(),
    };
    let timer = SchedulerTimer::new(client.clone(), target.clone());
    let run = Uuid::new_v4();
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-30T12:00:05.250Z")
        .unwrap()
        .to_utc();
    timer.arm(run, at).await.unwrap();
    // Arming again (the tick and the submitter, two ticks) is the same schedule.
    timer.arm(run, at).await.unwrap();

    let got = client
        .get_schedule()
        .name(schedule_name(run))
        .group_name("default")
        .send()
        .await
        .unwrap();
    assert_eq!(got.schedule_expression(), Some("at(2026-11-30T12:00:06)"));
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        got.flexible_time_window().map(|w| w.mode().as_str()),
        Some("OFF")
    );
    assert_eq!(
        got.action_after_completion().map(|a| a.as_str()),
        Some("DELETE")
    );
    let t = got.target().unwrap();
    assert_eq!(t.arn(), target.target_arn);
    assert_eq!(t.role_arn(), target.role_arn);
    let input: Value = serde_json::from_str(t.input().unwrap()).unwrap();
    assert_eq!(input["detail"], json!({"flow_run_id": run}));
    let listed = client.list_schedules().send().await.unwrap();
    assert_eq!(listed.schedules().len(), 1);

    timer.disarm(run).await.unwrap();
    let gone = client
        .get_schedule()
        .name(schedule_name(run))
        .group_name("default")
        .send()
        .await;
    assert!(gone.is_err());
    // Disarming a run without a timer (it fired and deleted itself) is fine.
    timer.disarm(run).await.unwrap();
}

#[tokio::test]
async fn the_event_the_schedule_delivers_submits_the_run() {
    let run = Uuid::new_v4();
    let event: EventBridgeEvent<Value> = serde_json::from_str(&run_due_input(run)).unwrap();
    assert_eq!(classify(&event), Trigger::RunDue { flow_run_id: run });
    // A deleted run: nothing to do, no error.
    let store = pushpool_store_sqlite::SqliteStore::in_memory().unwrap();
    let service = pushpool_service::Service::new(
        Arc::new(store),
        Providers::new(),
        pushpool_service::ServiceConfig::default(),
    );
    let report = pushpool_reconciler::handle(&service, event).await.unwrap();
    assert_eq!(report.acted, 0);
    assert_eq!(
        report.summary,
        format!("flow run {run} due: Skipped(\"flow run deleted\")")
    );
}
