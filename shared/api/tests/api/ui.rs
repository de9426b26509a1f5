//! The routes only Prefect's web UI calls: `POST /ui/flow_runs/history`,
//! `POST /ui/flow_runs/count-task-runs`, `GET /admin/settings`, `POST /saved_searches/filter`
//! and `PUT /saved_searches/`, with exact values.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{app, create_flow, detail, id_of, send};

#[tokio::test]
async fn history_answers_each_run_as_a_point_of_the_chart_in_the_sort_order() {
    let app = app();
    let flow = create_flow(&app).await;
    let (_, done) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": id_of(&flow), "name": "done",
                    "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2030-01-01T00:00:00Z"}}})),
    )
    .await;
    let (_, later) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": id_of(&flow), "name": "later",
                    "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2031-01-01T00:00:00Z"}}})),
    )
    .await;
    let (status, body) = send(&app, "POST", "/api/ui/flow_runs/history", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([
            {"id": id_of(&later), "state_type": "SCHEDULED", "timestamp": "2031-01-01T00:00:00Z",
             "duration": 0.0, "lateness": 0.0},
            {"id": id_of(&done), "state_type": "SCHEDULED", "timestamp": "2030-01-01T00:00:00Z",
             "duration": 0.0, "lateness": 0.0},
        ])
    );
    let (_, ascending) = send(
        &app,
        "POST",
        "/api/ui/flow_runs/history",
        Some(json!({"sort": "EXPECTED_START_TIME_ASC", "limit": 1,
                    "flow_runs": {"name": {"any_": ["done", "later"]}}})),
    )
    .await;
    assert_eq!(ascending.as_array().unwrap().len(), 1);
    assert_eq!(ascending[0]["id"], json!(id_of(&done)));

    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/flow_runs/history",
        Some(json!({"limit": 1001})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid limit: must be between 0 and 1000."
        )
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/flow_runs/history",
        Some(json!({"page": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).starts_with("page:"), "{body}");
}

#[tokio::test]
async fn count_task_runs_counts_per_flow_run_and_zero_for_a_run_without_any() {
    let app = app();
    let flow = create_flow(&app).await;
    let (_, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": id_of(&flow), "state": {"type": "RUNNING"}})),
    )
    .await;
    let (_, other) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": id_of(&flow), "state": {"type": "RUNNING"}})),
    )
    .await;
    for key in ["a", "b"] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/task_runs/",
            Some(
                json!({"name": format!("t-{key}"), "flow_run_id": id_of(&run),
                        "task_key": "t", "dynamic_key": key,
                        "state": {"type": "PENDING"}}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/flow_runs/count-task-runs",
        Some(json!({"flow_run_ids": [id_of(&run), id_of(&other)]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({id_of(&run): 2, id_of(&other): 0}));

    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/flow_runs/count-task-runs",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("flow_run_ids"), "{body}");
}

#[tokio::test]
async fn admin_settings_and_saved_searches_answer_truthfully() {
    let app = app();
    let (status, body) = send(&app, "GET", "/api/admin/settings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "server": {"ui": {"enabled": false, "api_url": null, "v2_enabled": false}},
            "pushpool": {"version": env!("CARGO_PKG_VERSION"), "api_keys_required": false}
        })
    );
    let (status, body) = send(&app, "POST", "/api/saved_searches/filter", Some(json!({}))).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = send(
        &app,
        "PUT",
        "/api/saved_searches/",
        Some(json!({"name": "mine", "filters": []})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "saved searches are not supported by pushpool: the run filters stay in the page's URL"
        )
    );
}

#[tokio::test]
async fn lateness_is_the_average_over_the_matching_runs_or_null() {
    let app = app();
    let (status, body) = send(&app, "POST", "/api/flow_runs/lateness", Some(json!({}))).await;
    assert_eq!((status, body), (StatusCode::OK, json!(null)));
    let flow = create_flow(&app).await;
    for (name, at) in [
        ("late", "2026-01-01T00:00:00Z"),
        ("future", "2099-01-01T00:00:00Z"),
    ] {
        send(
            &app,
            "POST",
            "/api/flow_runs/",
            Some(json!({"flow_id": id_of(&flow), "name": name,
                        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": at}}})),
        )
        .await;
    }
    let expected = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let before = (chrono::Utc::now() - expected.to_utc()).num_milliseconds() as f64 / 1000.0;
    // The UI's body: its list's sort and offset come along.
    let (status, body) = send(
        &app,
        "POST",
        "/api/flow_runs/lateness",
        Some(json!({"sort": "ID_DESC", "offset": 0,
                    "flow_runs": {"name": {"any_": ["late", "future"]}}})),
    )
    .await;
    let after = (chrono::Utc::now() - expected.to_utc()).num_milliseconds() as f64 / 1000.0;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The late run's lateness and the future run's 0, averaged.
    let average = body.as_f64().unwrap();
    assert!(
        (before / 2.0..=after / 2.0).contains(&average),
        "{average} not in [{}, {}]",
        before / 2.0,
        after / 2.0
    );
    let (_, only_future) = send(
        &app,
        "POST",
        "/api/flow_runs/lateness",
        Some(json!({"flow_runs": {"name": {"any_": ["future"]}}})),
    )
    .await;
    assert_eq!(only_future, json!(0.0));
}
