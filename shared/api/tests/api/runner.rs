//! `POST /deployments/get_scheduled_flow_runs`, what `flow.serve()` polls (Prefect 3.9.1,
//! `get_scheduled_flow_runs_for_deployments`): the named deployments' SCHEDULED runs due by
//! `scheduled_before`, soonest first, at most `limit`; the poll marks them READY.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, create_flow, create_run_scheduled_at, detail, id_of, send};

/// A deployment of `my-flow` without a work pool, as `flow.serve()` creates it.
async fn served_deployment(app: &Router, name: &str, flow_id: &str) -> String {
    let (status, deployment) = send(
        app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": name, "flow_id": flow_id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    assert_eq!(deployment["work_pool_name"], Value::Null);
    id_of(&deployment)
}

fn names(runs: &Value) -> Vec<String> {
    runs.as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            r["next_scheduled_start_time"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn answers_the_due_scheduled_runs_of_the_named_deployments_soonest_first() {
    let app = app();
    let flow = create_flow(&app).await;
    let served = served_deployment(&app, "served", &id_of(&flow)).await;
    let other = served_deployment(&app, "other", &id_of(&flow)).await;
    for at in [
        "2026-11-30T10:00:03Z",
        "2026-11-30T10:00:01Z",
        "2026-11-30T10:00:02Z",
        "2026-11-30T11:00:00Z",
    ] {
        create_run_scheduled_at(&app, &served, at).await;
    }
    create_run_scheduled_at(&app, &other, "2026-11-30T09:00:00Z").await;
    // A run that is no longer SCHEDULED is not answered.
    let running = create_run_scheduled_at(&app, &served, "2026-11-30T09:30:00Z").await;
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/flow_runs/{}/set_state", id_of(&running)),
        Some(json!({"state": {"type": "PENDING"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, runs) = send(
        &app,
        "POST",
        "/api/deployments/get_scheduled_flow_runs",
        Some(json!({"deployment_ids": [served], "scheduled_before": "2026-11-30T10:30:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(
        names(&runs),
        [
            "2026-11-30T10:00:01Z",
            "2026-11-30T10:00:02Z",
            "2026-11-30T10:00:03Z"
        ]
    );

    // Without scheduled_before: every scheduled run, within `limit`; two deployments.
    let (status, runs) = send(
        &app,
        "POST",
        "/api/deployments/get_scheduled_flow_runs",
        Some(json!({"deployment_ids": [served, other], "limit": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(
        names(&runs),
        ["2026-11-30T09:00:00Z", "2026-11-30T10:00:01Z"]
    );

    // The poll marked the deployment READY and recorded when.
    let (status, deployment) = send(&app, "GET", &format!("/api/deployments/{served}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deployment["status"], "READY");
    assert!(deployment["last_polled"].is_string(), "{deployment}");
}

#[tokio::test]
async fn bad_bodies_are_422_naming_the_key() {
    let app = app();
    for (body, expected) in [
        (json!({}), "deployment_ids: Field required"),
        (
            json!({"deployment_ids": [], "limit": 201}),
            "Invalid limit: must be less than or equal to 200.",
        ),
        (
            json!({"deployment_ids": ["x"]}),
            "deployment_ids[0]: UUID parsing failed: invalid character: found `x` at 0",
        ),
        (
            json!({"deployment_ids": [], "work_queue_ids": ["x"]}),
            "work_queue_ids: not a key of this route's body (Prefect's server would ignore \
             it; pushpool refuses it)",
        ),
    ] {
        let (status, answer) = send(
            &app,
            "POST",
            "/api/deployments/get_scheduled_flow_runs",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(detail(&answer), expected, "{body}");
    }
}
