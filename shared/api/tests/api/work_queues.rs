//! Work queues: a pool's queues by name (`/work_pools/{name}/queues...`) and by id
//! (`/work_queues/{id}...`), with Prefect's default queue, priorities, details and statuses;
//! a deployment naming a missing queue creates it; `get_scheduled_flow_runs` of a pool.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, create_c1_deployment, create_ecs_pool, create_flow, detail, send};

async fn create_process_pool(app: &Router, name: &str) -> Value {
    let (status, pool) = send(
        app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": name, "type": "process"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    pool
}

async fn create_queue(app: &Router, pool: &str, body: Value) -> Value {
    let (status, queue) = send(
        app,
        "POST",
        &format!("/api/work_pools/{pool}/queues"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    queue
}

/// `(name, priority)` of the pool's queues, as `/queues/filter` lists them.
async fn priorities(app: &Router, pool: &str) -> Vec<(String, i64)> {
    let (status, queues) = send(
        app,
        "POST",
        &format!("/api/work_pools/{pool}/queues/filter"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queues}");
    queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_owned(),
                q["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_pool_is_created_with_its_default_queue() {
    let app = app();
    let pool = create_process_pool(&app, "p").await;
    let (status, queue) = send(&app, "GET", "/api/work_pools/p/queues/default", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["id"], pool["default_queue_id"]);
    let mut expected = json!({
        "name": "default",
        "description": "The work pool's default queue.",
        "is_paused": false,
        "concurrency_limit": null,
        "priority": 1,
        "work_pool_id": pool["id"],
        "filter": null,
        "last_polled": null,
        "work_pool_name": "p",
        "status": "READY",
        "active_slots": null,
    });
    for k in ["id", "created", "updated"] {
        expected[k] = queue[k].clone();
    }
    assert_eq!(queue, expected);
    let (status, by_id) = send(
        &app,
        "GET",
        &format!(
            "/api/work_queues/{}",
            pool["default_queue_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, queue);
    // A worker pool's queues are not ready: nothing polls them.
    let ecs = create_ecs_pool(&app).await;
    let (_, queue) = send(
        &app,
        "GET",
        &format!(
            "/api/work_queues/{}",
            ecs["default_queue_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(queue["status"], "NOT_READY");
}

#[tokio::test]
async fn create_read_update_delete_with_prefects_statuses_and_details() {
    let app = app();
    create_process_pool(&app, "p").await;
    let queue = create_queue(
        &app,
        "p",
        json!({"name": "high", "description": "urgent", "concurrency_limit": 2}),
    )
    .await;
    assert_eq!(queue["priority"], 2);
    assert_eq!(queue["description"], "urgent");
    assert_eq!(queue["concurrency_limit"], 2);
    assert_eq!(queue["work_pool_name"], "p");
    let plain = create_queue(&app, "p", json!({"name": "plain"})).await;
    assert_eq!(plain["description"], "");
    assert_eq!(plain["priority"], 3);

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/p/queues",
        Some(json!({"name": "high"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "A work queue with this name already exists in work pool 'p'."
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/nope/queues",
        Some(json!({"name": "q"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Work pool \"nope\" not found.");
    let (status, body) = send(&app, "GET", "/api/work_pools/p/queues/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Work pool queue 'p/nope' not found.");

    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/p/queues/high",
        Some(json!({"is_paused": true, "concurrency_limit": null, "name": "urgent"})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, read) = send(&app, "GET", "/api/work_pools/p/queues/urgent", None).await;
    assert_eq!(read["id"], queue["id"]);
    assert_eq!(read["is_paused"], true);
    assert_eq!(read["status"], "PAUSED");
    assert_eq!(read["concurrency_limit"], Value::Null);
    assert_eq!(read["description"], "urgent");

    let path = format!("/api/work_queues/{}", queue["id"].as_str().unwrap());
    let (status, _) = send(&app, "PATCH", &path, Some(json!({"is_paused": false}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &path, None).await;
    assert_eq!(
        (read["is_paused"].clone(), read["status"].clone()),
        (json!(false), json!("READY"))
    );

    let (status, _) = send(&app, "DELETE", "/api/work_pools/p/queues/urgent", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, "GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "work queue not found");
    let (status, body) = send(&app, "PATCH", &path, Some(json!({"is_paused": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        detail(&body),
        format!("Work Queue {} not found", queue["id"].as_str().unwrap())
    );
    let (status, body) = send(&app, "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "work queue not found");
    assert_eq!(
        priorities(&app, "p").await,
        [("default".into(), 1), ("plain".into(), 3)]
    );
}

#[tokio::test]
async fn the_default_queue_is_kept() {
    let app = app();
    let pool = create_process_pool(&app, "p").await;
    for path in [
        "/api/work_pools/p/queues/default".to_owned(),
        format!(
            "/api/work_queues/{}",
            pool["default_queue_id"].as_str().unwrap()
        ),
    ] {
        let (status, body) = send(&app, "DELETE", &path, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(detail(&body), "Can't delete a pool's default queue.");
    }
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/p/queues/default",
        Some(json!({"name": "other"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "name: a work pool's default queue cannot be renamed"
    );
    // Deleting the pool deletes its queues.
    create_queue(&app, "p", json!({"name": "q"})).await;
    let (status, _) = send(&app, "DELETE", "/api/work_pools/p", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create_process_pool(&app, "p").await;
    assert_eq!(priorities(&app, "p").await, [("default".into(), 1)]);
}

#[tokio::test]
async fn priorities_follow_prefects_rules() {
    let app = app();
    create_process_pool(&app, "p").await;
    for name in ["a", "b", "c"] {
        create_queue(&app, "p", json!({"name": name})).await;
    }
    assert_eq!(
        priorities(&app, "p").await,
        [
            ("default".into(), 1),
            ("a".into(), 2),
            ("b".into(), 3),
            ("c".into(), 4)
        ]
    );
    // A queue given a taken priority takes it; the ones at or after it move down.
    create_queue(&app, "p", json!({"name": "top", "priority": 1})).await;
    assert_eq!(
        priorities(&app, "p").await,
        [
            ("top".into(), 1),
            ("default".into(), 2),
            ("a".into(), 3),
            ("b".into(), 4),
            ("c".into(), 5)
        ]
    );
    // An update moves one queue; only the ones in its way shift.
    let (status, _) = send(
        &app,
        "PATCH",
        "/api/work_pools/p/queues/c",
        Some(json!({"priority": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        priorities(&app, "p").await,
        [
            ("top".into(), 1),
            ("c".into(), 2),
            ("default".into(), 3),
            ("a".into(), 4),
            ("b".into(), 5)
        ]
    );
    // A deletion leaves a gap, which the next queue without a priority takes.
    let (status, _) = send(&app, "DELETE", "/api/work_pools/p/queues/a", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gap = create_queue(&app, "p", json!({"name": "gap"})).await;
    assert_eq!(gap["priority"], 4);
    // A priority past the others is kept as given.
    let far = create_queue(&app, "p", json!({"name": "far", "priority": 10})).await;
    assert_eq!(far["priority"], 10);
    assert_eq!(
        priorities(&app, "p").await.last().unwrap(),
        &("far".to_owned(), 10)
    );
}

#[tokio::test]
async fn filter_takes_prefects_work_queue_filter_and_paging() {
    let app = app();
    create_process_pool(&app, "p").await;
    for name in ["Marvin-robot", "marvin", "sad-marvin"] {
        create_queue(&app, "p", json!({"name": name})).await;
    }
    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (body, expected) in [
        (
            json!({"work_queues": {"name": {"startswith_": ["marvin"]}}}),
            vec!["Marvin-robot", "marvin"],
        ),
        (
            json!({"work_queues": {"name": {"any_": ["default", "sad-marvin"]}}}),
            vec!["default", "sad-marvin"],
        ),
        (
            json!({"offset": 1, "limit": 2}),
            vec!["Marvin-robot", "marvin"],
        ),
        (
            json!({"work_queues": null}),
            vec!["default", "Marvin-robot", "marvin", "sad-marvin"],
        ),
    ] {
        let (status, out) = send(
            &app,
            "POST",
            "/api/work_pools/p/queues/filter",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(names(&out), expected, "{body}");
    }
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/p/queues/filter",
        Some(json!({"work_queues": {"tags": {"all_": ["x"]}}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn bad_queue_bodies_are_422_naming_the_field() {
    let app = app();
    create_process_pool(&app, "p").await;
    for (body, expected) in [
        (
            json!({"name": "q", "priority": 0}),
            "priority: must be greater than 0",
        ),
        (
            json!({"name": "q", "priority": 2_147_483_648_i64}),
            "priority: must be less than or equal to 2147483647",
        ),
        (
            json!({"name": "q", "concurrency_limit": -1}),
            "concurrency_limit: must be greater than or equal to 0",
        ),
        (
            json!({"name": "q", "filter": {"tags": ["a"]}}),
            "filter: deprecated queue filters (by tags and deployment ids) are not supported; send null",
        ),
    ] {
        let (status, out) = send(&app, "POST", "/api/work_pools/p/queues", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(detail(&out), expected);
    }
    let (status, _) = send(
        &app,
        "POST",
        "/api/work_pools/p/queues",
        Some(json!({"name": "q", "colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Prefect's `{id:uuid}` path matches no route: 404 `Not Found`.
    let (status, body) = send(&app, "GET", "/api/work_queues/not-a-uuid", None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Not Found")
    );
}

#[tokio::test]
async fn a_deployment_naming_a_missing_queue_creates_it_and_its_runs_carry_it() {
    let app = app();
    create_process_pool(&app, "p").await;
    let flow = create_flow(&app).await;
    let (status, deployment) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "p", "work_queue_name": "fast"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    let (status, queue) = send(&app, "GET", "/api/work_pools/p/queues/fast", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["priority"], 2);
    assert_eq!(deployment["work_queue_id"], queue["id"]);
    assert_eq!(deployment["work_queue_name"], "fast");
    let (status, run) = send(
        &app,
        "POST",
        &format!(
            "/api/deployments/{}/create_flow_run",
            deployment["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["work_queue_id"], queue["id"]);
    assert_eq!(run["work_queue_name"], "fast");
    // An update naming another missing queue creates that one.
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{}", deployment["id"].as_str().unwrap()),
        Some(json!({"work_queue_name": "slow"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, slow) = send(&app, "GET", "/api/work_pools/p/queues/slow", None).await;
    let (_, updated) = send(
        &app,
        "GET",
        &format!("/api/deployments/{}", deployment["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(updated["work_queue_id"], slow["id"]);
    assert_eq!(slow["priority"], 3);
}

#[tokio::test]
async fn pool_get_scheduled_flow_runs_orders_by_queue_priority_and_skips_paused_queues() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let pool = deployment["work_pool_name"].as_str().unwrap().to_owned();
    create_queue(&app, &pool, json!({"name": "urgent", "priority": 1})).await;
    create_queue(&app, &pool, json!({"name": "held", "is_paused": true})).await;
    let flow_id = deployment["flow_id"].clone();
    let mut expected = Vec::new();
    for (queue, at) in [
        ("default", "2030-01-01T00:00:00Z"),
        ("urgent", "2030-01-02T00:00:00Z"),
        ("held", "2029-01-01T00:00:00Z"),
        ("urgent", "2030-01-03T00:00:00Z"),
    ] {
        let (status, d) = send(
            &app,
            "POST",
            "/api/deployments/",
            Some(json!({"name": format!("d-{queue}"), "flow_id": flow_id, "work_pool_name": pool, "work_queue_name": queue})),
        )
        .await;
        assert!(status.is_success(), "{d}");
        let (status, run) = send(
            &app,
            "POST",
            &format!(
                "/api/deployments/{}/create_flow_run",
                d["id"].as_str().unwrap()
            ),
            Some(json!({"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": at}}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        if queue != "held" {
            expected.push((queue, run["id"].clone(), run["work_queue_id"].clone()));
        }
    }
    // urgent (priority 1) by time, then default.
    expected.sort_by_key(|(q, _, _)| *q != "urgent");
    let (status, out) = send(
        &app,
        "POST",
        &format!("/api/work_pools/{pool}/get_scheduled_flow_runs"),
        Some(json!({"scheduled_before": "2031-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let got: Vec<(Value, Value)> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["flow_run"]["id"].clone(), r["work_queue_id"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = expected
        .iter()
        .map(|(_, id, q)| (id.clone(), q.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        out[0]["work_pool_id"],
        json!(create_pool_id(&app, &pool).await)
    );
    // Named queues only; an unknown name is Prefect's 404.
    let (_, out) = send(
        &app,
        "POST",
        &format!("/api/work_pools/{pool}/get_scheduled_flow_runs"),
        Some(json!({"work_queue_names": ["default"]})),
    )
    .await;
    assert_eq!(out.as_array().unwrap().len(), 1);
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/work_pools/{pool}/get_scheduled_flow_runs"),
        Some(json!({"work_queue_names": ["nope"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        detail(&body),
        format!("Work pool queue '{pool}/nope' not found.")
    );
    // Before the first run's time: none.
    let (_, out) = send(
        &app,
        "POST",
        &format!("/api/work_pools/{pool}/get_scheduled_flow_runs"),
        Some(json!({"scheduled_before": "2029-06-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(out, json!([]));
}

async fn create_pool_id(app: &Router, pool: &str) -> String {
    let (_, body) = send(app, "GET", &format!("/api/work_pools/{pool}"), None).await;
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn queue_status_reports_prefects_health_policy() {
    let app = app();
    let pool = create_process_pool(&app, "p").await;
    let path = format!(
        "/api/work_queues/{}/status",
        pool["default_queue_id"].as_str().unwrap()
    );
    let (status, body) = send(&app, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "healthy": false,
            "late_runs_count": 0,
            "last_polled": null,
            "health_check_policy": {"maximum_late_runs": 0, "maximum_seconds_since_last_polled": 60},
        })
    );
}

#[tokio::test]
async fn pool_concurrency_status_counts_pending_and_running_runs_per_queue() {
    let app = app();
    let pool = create_process_pool(&app, "p").await;
    create_queue(&app, "p", json!({"name": "fast", "concurrency_limit": 4})).await;
    let flow = create_flow(&app).await;
    let (_, deployment) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "p", "work_queue_name": "fast"})),
    )
    .await;
    let (_, run) = send(
        &app,
        "POST",
        &format!(
            "/api/deployments/{}/create_flow_run",
            deployment["id"].as_str().unwrap()
        ),
        Some(json!({"state": {"type": "PENDING"}})),
    )
    .await;
    // A SCHEDULED run holds no slot.
    send(
        &app,
        "POST",
        &format!(
            "/api/deployments/{}/create_flow_run",
            deployment["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/p/concurrency_status",
        Some(json!({"flow_run_limit": 200})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, queue) = send(&app, "GET", "/api/work_pools/p/queues/fast", None).await;
    let summary = &body["queues"][1]["flow_runs"][0];
    assert!(
        summary["time_in_current_state"].as_f64().unwrap() >= 0.0,
        "{body}"
    );
    assert_eq!(
        body,
        json!({
            "active_slots": 1,
            "concurrency_limit": null,
            "queues": [
                {"queue_id": pool["default_queue_id"], "queue_name": "default", "active_slots": 0,
                 "concurrency_limit": null, "flow_runs": [], "flow_run_count": 0},
                {"queue_id": queue["id"], "queue_name": "fast", "active_slots": 1,
                 "concurrency_limit": 4, "flow_run_count": 1, "flow_runs": [{
                    "id": run["id"], "name": run["name"], "state_type": "PENDING",
                    "state_name": "Pending", "start_time": null,
                    "state_timestamp": summary["state_timestamp"],
                    "time_in_current_state": summary["time_in_current_state"],
                 }]},
            ],
            "count": 2,
            "limit": 200,
            "pages": 1,
            "page": 1,
        })
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/nope/concurrency_status",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Work pool 'nope' not found.");
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/p/concurrency_status",
        Some(json!({"flow_run_limit": 201})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), "flow_run_limit: must be between 0 and 200");
}

#[tokio::test]
async fn queue_get_runs_and_concurrency_status() {
    let app = app();
    create_process_pool(&app, "p").await;
    let flow = create_flow(&app).await;
    let (_, deployment) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "p", "work_queue_name": "fast"})),
    )
    .await;
    let create_run = |body: Value| {
        let app = app.clone();
        let id = deployment["id"].as_str().unwrap().to_owned();
        async move {
            let (status, run) = send(
                &app,
                "POST",
                &format!("/api/deployments/{id}/create_flow_run"),
                Some(body),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{run}");
            run
        }
    };
    let later = create_run(json!({"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2030-01-02T00:00:00Z"}}})).await;
    let sooner = create_run(json!({"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2030-01-01T00:00:00Z"}}})).await;
    let pending = create_run(json!({"state": {"type": "PENDING"}})).await;
    let queue_id = sooner["work_queue_id"].as_str().unwrap().to_owned();
    let runs_path = format!("/api/work_queues/{queue_id}/get_runs");
    let ids = |body: &Value| -> Vec<Value> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect()
    };
    let (status, body) = send(&app, "POST", &runs_path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), [sooner["id"].clone(), later["id"].clone()]);
    let (_, body) = send(
        &app,
        "POST",
        &runs_path,
        Some(json!({"scheduled_before": "2030-01-01T12:00:00Z", "limit": 5})),
    )
    .await;
    assert_eq!(ids(&body), [sooner["id"].clone()]);
    // The default queue has none of them.
    let (_, pool) = send(&app, "GET", "/api/work_pools/p", None).await;
    let (_, body) = send(
        &app,
        "POST",
        &format!(
            "/api/work_queues/{}/get_runs",
            pool["default_queue_id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(body, json!([]));
    // A paused queue gives none.
    send(
        &app,
        "PATCH",
        "/api/work_pools/p/queues/fast",
        Some(json!({"is_paused": true})),
    )
    .await;
    let (_, body) = send(&app, "POST", &runs_path, Some(json!({}))).await;
    assert_eq!(body, json!([]));

    let slots_path = format!("/api/work_queues/{queue_id}/concurrency_status");
    let (status, body) = send(&app, "POST", &slots_path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let summary = &body["flow_runs"][0];
    assert_eq!(
        body,
        json!({
            "active_slots": 1,
            "concurrency_limit": null,
            "flow_runs": [{
                "id": pending["id"], "name": pending["name"], "state_type": "PENDING",
                "state_name": "Pending", "start_time": null,
                "state_timestamp": summary["state_timestamp"],
                "time_in_current_state": summary["time_in_current_state"],
            }],
            "count": 1,
            "limit": 200,
            "pages": 1,
            "page": 1,
        })
    );
    let missing = format!(
        "/api/work_queues/{}/concurrency_status",
        uuid::Uuid::new_v4()
    );
    let (status, body) = send(&app, "POST", &missing, Some(json!({}))).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Work queue not found.")
    );
    let (status, body) = send(&app, "POST", &slots_path, Some(json!({"page": 0}))).await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "page: must be an integer greater than or equal to 1"
        )
    );
}

#[tokio::test]
async fn every_pools_queues_by_name() {
    let app = app();
    create_process_pool(&app, "p").await;
    create_process_pool(&app, "q").await;
    create_queue(&app, "q", json!({"name": "alpha"})).await;
    let (status, body) = send(&app, "POST", "/api/work_queues/filter", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(Value, Value)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["name"].clone(), q["work_pool_name"].clone()))
        .collect();
    assert_eq!(listed[0], (json!("alpha"), json!("q")));
    assert_eq!(listed.len(), 3);
    let mut pools: Vec<Value> = listed[1..]
        .iter()
        .map(|(n, p)| {
            assert_eq!(n, "default");
            p.clone()
        })
        .collect();
    pools.sort_by_key(|p| p.as_str().unwrap().to_owned());
    assert_eq!(pools, [json!("p"), json!("q")]);
    let (_, body) = send(
        &app,
        "POST",
        "/api/work_queues/filter",
        Some(json!({"work_queues": {"name": {"any_": ["alpha"]}}, "limit": 1})),
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["work_pool_name"], "q");
}

#[tokio::test]
async fn a_run_may_name_another_queue_of_its_deployments_pool() {
    let app = app();
    create_process_pool(&app, "p").await;
    let flow = create_flow(&app).await;
    let (_, deployment) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "p"})),
    )
    .await;
    let (status, run) = send(
        &app,
        "POST",
        &format!(
            "/api/deployments/{}/create_flow_run",
            deployment["id"].as_str().unwrap()
        ),
        Some(json!({"work_queue_name": "adhoc"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let (_, queue) = send(&app, "GET", "/api/work_pools/p/queues/adhoc", None).await;
    assert_eq!(run["work_queue_id"], queue["id"]);
    assert_eq!(run["work_queue_name"], "adhoc");

    let (status, body) = send(
        &app,
        "POST",
        &format!(
            "/api/deployments/{}/create_flow_run",
            deployment["id"].as_str().unwrap()
        ),
        Some(json!({"work_queue_name": "a/b"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "work_queue_name: \"a/b\" contains the character '/', which names cannot contain (none of / % & > <)"
    );
    let (_, unpooled) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "served", "flow_id": flow["id"]})),
    )
    .await;
    let id = unpooled["id"].as_str().unwrap();
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/create_flow_run"),
        Some(json!({"work_queue_name": "adhoc"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        detail(&body),
        format!(
            "Cannot create flow run in work queue adhoc because deployment {id} is not \
             associated with a work pool. Please remove work_pool_name and try again."
        )
    );
}

/// `POST /work_queues/` and `GET /work_queues/name/{name}`: queues without a pool live in
/// Prefect's `default-agent-pool` (type `prefect-agent`), made with its `default` queue the
/// first time; a name is read there first, else in any pool.
#[tokio::test]
async fn pool_less_queues_live_in_the_default_agent_pool() {
    let app = app();
    // Before the agent pool exists, a name is found in any pool.
    create_process_pool(&app, "local").await;
    create_queue(&app, "local", json!({"name": "only-here"})).await;
    let (status, found) = send(&app, "GET", "/api/work_queues/name/only-here", None).await;
    assert_eq!(
        (status, &found["work_pool_name"]),
        (StatusCode::OK, &json!("local"))
    );
    let (status, body) = send(&app, "GET", "/api/work_queues/name/nowhere", None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "work queue not found")
    );

    let (status, queue) = send(
        &app,
        "POST",
        "/api/work_queues/",
        Some(json!({"name": "agents", "description": "mine", "concurrency_limit": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    assert_eq!(
        (
            &queue["name"],
            &queue["description"],
            &queue["work_pool_name"],
            &queue["priority"],
            &queue["concurrency_limit"],
            &queue["status"],
            &queue["is_paused"]
        ),
        (
            &json!("agents"),
            &json!("mine"),
            &json!("default-agent-pool"),
            &json!(2),
            &json!(2),
            &json!("NOT_READY"),
            &json!(false)
        )
    );
    let (status, pool) = send(&app, "GET", "/api/work_pools/default-agent-pool", None).await;
    assert_eq!(
        (status, &pool["type"]),
        (StatusCode::OK, &json!("prefect-agent"))
    );
    assert_eq!(
        priorities(&app, "default-agent-pool").await,
        [("default".to_owned(), 1), ("agents".to_owned(), 2)]
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_queues/",
        Some(json!({"name": "agents"})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::CONFLICT,
            "A work queue with this name already exists."
        )
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_queues/",
        Some(json!({"name": "x", "priority": 0})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "priority: must be greater than 0"
        )
    );

    // Now names are read in the agent pool only.
    let (status, found) = send(&app, "GET", "/api/work_queues/name/agents", None).await;
    assert_eq!((status, &found["id"]), (StatusCode::OK, &queue["id"]));
    let (status, _) = send(&app, "GET", "/api/work_queues/name/only-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, found) = send(&app, "GET", "/api/work_queues/name/default", None).await;
    assert_eq!(
        (status, &found["id"]),
        (StatusCode::OK, &pool["default_queue_id"])
    );
}
