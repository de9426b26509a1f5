//! The real `prefect deployment schedule ls|create|pause|resume|delete|clear` against
//! `pushpool serve`, and the embedded scheduler making a schedule's runs: the CLI's
//! `ls -o json` must read every schedule (`id`, `created`, `updated`, `deployment_id`).

use std::time::Duration;

use pushpool_core::filter::FlowRunFilter;
use pushpool_store::FlowRunQuery;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::prefect;
use serde_json::{Value, json};

async fn ls(app: &TestApp, dir: &std::path::Path) -> Vec<Value> {
    let out = prefect(
        &app.api,
        dir,
        &[
            "deployment",
            "schedule",
            "ls",
            "my-flow/nightly",
            "-o",
            "json",
        ],
    )
    .await
    .ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefect_cli_manages_schedules_and_the_scheduler_makes_runs() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let (status, flow) = app
        .send("POST", "/flows/", Some(json!({"name": "my-flow"})))
        .await;
    assert_eq!(status, 201, "{flow}");
    let (status, deployment) = app
        .send(
            "POST",
            "/deployments/",
            Some(json!({"name": "nightly", "flow_id": flow["id"], "parameters": {"x": 0}})),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    let deployment_id = deployment["id"].as_str().unwrap().to_owned();

    let created = prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "create",
            "my-flow/nightly",
            "--interval",
            "60",
        ],
    )
    .await
    .ok();
    assert!(
        created.stdout.contains("Created deployment schedule!"),
        "{}",
        created.stdout
    );

    let listed = ls(&app, dir.path()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let schedule = &listed[0];
    // The CLI prints the interval as Python prints a timedelta.
    assert_eq!(schedule["schedule"], "interval: 0:01:00s");
    assert_eq!(schedule["active"], true);
    assert_eq!(schedule["deployment_id"], json!(deployment_id));
    assert!(schedule["created"].is_string() && schedule["updated"].is_string());
    let schedule_id = schedule["id"].as_str().unwrap().to_owned();

    prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "pause",
            "my-flow/nightly",
            &schedule_id,
        ],
    )
    .await
    .ok();
    assert_eq!(ls(&app, dir.path()).await[0]["active"], false);
    prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "resume",
            "my-flow/nightly",
            &schedule_id,
        ],
    )
    .await
    .ok();
    assert_eq!(ls(&app, dir.path()).await[0]["active"], true);

    // The embedded reconciler (1 s here) makes the horizon's runs: every minute for an hour.
    let query = FlowRunQuery {
        deployment_ids: Some(vec![deployment_id.parse().unwrap()]),
        ..FlowRunQuery::new(FlowRunFilter::default())
    };
    let mut runs = Vec::new();
    for _ in 0..50 {
        runs = app.service.store().list_flow_runs(&query).await.unwrap();
        if runs.len() >= 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!((60..=61).contains(&runs.len()), "{} runs", runs.len());
    assert!(
        runs.iter()
            .all(|r| r.auto_scheduled && r.tags == ["auto-scheduled"])
    );

    prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "create",
            "my-flow/nightly",
            "--cron",
            "0 9 * * *",
            "--timezone",
            "Europe/Paris",
        ],
    )
    .await
    .ok();
    let listed = ls(&app, dir.path()).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|s| s["schedule"] == "cron: 0 9 * * *"));

    prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "delete",
            "my-flow/nightly",
            &schedule_id,
            "--accept-yes",
        ],
    )
    .await
    .ok();
    let listed = ls(&app, dir.path()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["schedule"], "cron: 0 9 * * *");
    // Deleting the schedule deleted its auto-scheduled runs that had not started.
    let left = app.service.store().list_flow_runs(&query).await.unwrap();
    assert!(
        left.iter().all(|r| r
            .created_by
            .as_ref()
            .is_none_or(|c| c["id"] != json!(schedule_id))),
        "{} left",
        left.len()
    );

    prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "schedule",
            "clear",
            "my-flow/nightly",
            "--accept-yes",
        ],
    )
    .await
    .ok();
    assert_eq!(ls(&app, dir.path()).await, Vec::<Value>::new());
}

/// The Python client's own `DeploymentScheduleCreate` in a deployment (what `flow.deploy(cron=...)`
/// and `prefect deploy` with `schedules:` send), read back by the client (its
/// `DeploymentResponse` needs each schedule's `id`, `created`, `updated`), and the scheduler
/// making the cron's runs in its time zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_deploys_with_a_cron_schedule() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule

async def main():
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("etl")
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name="daily",
            schedules=[DeploymentScheduleCreate(
                schedule=CronSchedule(cron="30 6 * * *", timezone="America/New_York"),
                parameters={"day": "today"},
                slug="morning",
            )],
            parameters={"day": "unset", "n": 1},
        )
        d = await client.read_deployment(deployment_id)
        s = d.schedules[0]
        print(json.dumps({"id": str(d.id), "schedule_id": str(s.id), "slug": s.slug,
                          "cron": s.schedule.cron, "tz": s.schedule.timezone,
                          "active": s.active, "has_created": s.created is not None}))

asyncio.run(main())
"#;
    let out = pushpool_tests::python::python(&app.api, dir.path(), script)
        .await
        .ok();
    let printed: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(printed["slug"], "morning");
    assert_eq!(printed["cron"], "30 6 * * *");
    assert_eq!(printed["tz"], "America/New_York");
    assert_eq!(printed["active"], true);
    assert_eq!(printed["has_created"], true);
    let deployment_id: uuid::Uuid = printed["id"].as_str().unwrap().parse().unwrap();
    let query = FlowRunQuery {
        deployment_ids: Some(vec![deployment_id]),
        ..FlowRunQuery::new(FlowRunFilter::default())
    };
    let mut runs = Vec::new();
    for _ in 0..50 {
        runs = app.service.store().list_flow_runs(&query).await.unwrap();
        if runs.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.len(), 3, "a daily cron: Prefect's minimum of 3 runs");
    for run in &runs {
        assert_eq!(
            Value::Object(run.parameters.clone()),
            json!({"day": "today", "n": 1})
        );
        let key = run.idempotency_key.as_deref().unwrap();
        assert!(
            key.starts_with(&format!(
                "scheduled {deployment_id} {} ",
                printed["schedule_id"].as_str().unwrap()
            )),
            "{key}"
        );
        // 06:30 in New York, whichever side of a DST change.
        assert!(key.contains(" 06:30:00-0"), "{key}");
    }
}
