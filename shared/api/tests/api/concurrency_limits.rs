//! `/v2/concurrency_limits/…` and `/concurrency_limits/…`, as Prefect 3.9.1's server answers
//! them (`api/concurrency_limits_v2.py`, `api/concurrency_limits.py`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use pushpool_api::{AppState, router};
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{detail, id_of, send};

fn app_and_service() -> (Router, Service) {
    let store = SqliteStore::in_memory().expect("in-memory SQLite store");
    let service = Service::new(Arc::new(store), Providers::new(), ServiceConfig::default());
    (router(AppState::new(service.clone())), service)
}

/// `send`, with the `Retry-After` header of the answer.
async fn send_h(app: &Router, path: &str, body: Value) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, retry, value)
}

async fn create(app: &Router, body: Value) -> Value {
    let (status, created) = send(app, "POST", "/api/v2/concurrency_limits/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn read(app: &Router, id_or_name: &str) -> Value {
    let (status, body) = send(
        app,
        "GET",
        &format!("/api/v2/concurrency_limits/{id_or_name}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn create_read_filter_update_and_delete_by_id_and_name() {
    let (app, _) = app_and_service();
    let created = create(&app, json!({"name": "db", "limit": 2})).await;
    assert_eq!(
        keys(&created),
        [
            "id",
            "created",
            "updated",
            "active",
            "name",
            "limit",
            "active_slots",
            "denied_slots",
            "slot_decay_per_second",
            "avg_slot_occupancy_seconds"
        ]
    );
    assert_eq!(
        (
            &created["active"],
            &created["limit"],
            &created["active_slots"],
            &created["denied_slots"],
            &created["slot_decay_per_second"],
            &created["avg_slot_occupancy_seconds"]
        ),
        (
            &json!(true),
            &json!(2),
            &json!(0),
            &json!(0),
            &json!(0.0),
            &json!(2.0)
        )
    );
    let id = id_of(&created);
    let by_name = read(&app, "db").await;
    assert_eq!(
        keys(&by_name),
        [
            "id",
            "created",
            "updated",
            "active",
            "name",
            "limit",
            "active_slots",
            "slot_decay_per_second"
        ]
    );
    assert_eq!(by_name, read(&app, &id).await);

    let (status, body) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/",
        Some(json!({"name": "db", "limit": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "A concurrency limit with the name 'db' already exists."
    );

    create(&app, json!({"name": "api", "limit": 5, "active": false})).await;
    let (status, listed) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/filter",
        Some(json!({"limit": 10, "offset": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "db"]);
    let (_, second) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/filter",
        Some(json!({"offset": 1})),
    )
    .await;
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert_eq!(second[0]["name"], "db");
    let (status, body) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/filter",
        Some(json!({"sort": "NAME_DESC"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("sort: not a key of this route's body"));

    let (status, _) = send(
        &app,
        "PATCH",
        "/api/v2/concurrency_limits/db",
        Some(json!({"limit": 7, "active": false, "slot_decay_per_second": 0.5})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/v2/concurrency_limits/{id}"),
        Some(json!({"name": "database"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let read_back = read(&app, "database").await;
    assert_eq!(
        (
            &read_back["id"],
            &read_back["limit"],
            &read_back["active"],
            &read_back["slot_decay_per_second"]
        ),
        (&json!(id), &json!(7), &json!(false), &json!(0.5))
    );
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/v2/concurrency_limits/database",
        Some(json!({"name": "api"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "A concurrency limit with the name 'api' already exists."
    );

    for (method, path) in [
        ("GET", "/api/v2/concurrency_limits/db"),
        ("DELETE", "/api/v2/concurrency_limits/db"),
    ] {
        let (status, body) = send(&app, method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(detail(&body), "Concurrency Limit not found");
    }
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/v2/concurrency_limits/db",
        Some(json!({"limit": 1})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Concurrency Limit not found")
    );
    let (status, _) = send(
        &app,
        "DELETE",
        &format!("/api/v2/concurrency_limits/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, "GET", "/api/v2/concurrency_limits/database", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_fields_are_422s_naming_them() {
    let (app, _) = app_and_service();
    for (body, expected) in [
        (
            json!({"name": "a/b", "limit": 1}),
            "name: must not contain any of `/ % & > <`",
        ),
        (
            json!({"name": "x", "limit": -1}),
            "limit: Input should be greater than or equal to 0",
        ),
        (
            json!({"name": "x", "limit": 1, "slot_decay_per_second": -0.5}),
            "slot_decay_per_second: Input should be greater than or equal to 0",
        ),
    ] {
        let (status, answer) = send(&app, "POST", "/api/v2/concurrency_limits/", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            detail(&answer).starts_with(expected.split(':').next().unwrap()),
            "{answer}"
        );
        if !expected.starts_with("name") {
            assert_eq!(detail(&answer), expected);
        }
    }
    let (status, answer) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/",
        Some(json!({"name": "x", "limit": 1, "colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&answer).contains("colour"), "{answer}");
    create(&app, json!({"name": "x", "limit": 1})).await;
    let (status, answer) = send(
        &app,
        "PATCH",
        "/api/v2/concurrency_limits/x",
        Some(json!({"limit": null})),
    )
    .await;
    assert_eq!(
        (status, detail(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "limit: must not be null")
    );
    for (body, expected) in [
        (
            json!({"names": ["x"], "slots": 0}),
            "slots: Input should be greater than 0",
        ),
        (
            json!({"names": [], "slots": 1}),
            "names: List should have at least 1 item after validation, not 0",
        ),
        (
            json!({"names": ["x"], "slots": 2}),
            "Slots requested is greater than the limit",
        ),
        (
            json!({"names": ["x"], "slots": 1, "mode": "rate_limit"}),
            "Only concurrency limits with slot decay can be used for rate limiting. \
             The following limits do not have a decay configured: 'x'",
        ),
    ] {
        let (status, answer) = send(
            &app,
            "POST",
            "/api/v2/concurrency_limits/increment",
            Some(body),
        )
        .await;
        assert_eq!(
            (status, detail(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected)
        );
    }
    let (status, answer) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment-with-lease",
        Some(json!({"names": ["x"], "slots": 1, "lease_duration": 30})),
    )
    .await;
    assert_eq!(
        (status, detail(&answer)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "lease_duration: Input should be between 60 and 86400 seconds (got 30)"
        )
    );
}

#[tokio::test]
async fn increment_decrement_and_locked_with_retry_after() {
    let (app, _) = app_and_service();
    let x = create(&app, json!({"name": "x", "limit": 2})).await;
    create(&app, json!({"name": "off", "limit": 1, "active": false})).await;
    let (status, taken) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment",
        Some(json!({"names": ["x", "off", "missing"], "slots": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        taken,
        json!([
            {"id": x["id"], "name": "x", "limit": 2},
            {"id": taken[1]["id"], "name": "off", "limit": 1}
        ])
    );
    assert_eq!(read(&app, "x").await["active_slots"], 2);
    assert_eq!(read(&app, "off").await["active_slots"], 0);

    // Full: 423 Locked, Prefect's detail-less body, a Retry-After around the average
    // occupancy (2 s) × (1 + 1 denied) / limit 2 = 2 s, jittered within [0.75, 1.3] × 2 s.
    let (status, retry, body) = send_h(
        &app,
        "/api/v2/concurrency_limits/increment",
        json!({"names": ["x"], "slots": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(body, json!({"detail": "Locked"}));
    let retry: f64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1.5..=2.6).contains(&retry), "{retry}");

    let (status, given) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/decrement",
        Some(json!({"names": ["x"], "slots": 1, "occupancy_seconds": 8.0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(given, json!([{"id": x["id"], "name": "x", "limit": 2}]));
    assert_eq!(read(&app, "x").await["active_slots"], 1);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment",
        Some(json!({"names": ["x"], "slots": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, none) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/decrement",
        Some(json!({"names": ["missing"], "slots": 1})),
    )
    .await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn leases_are_renewed_released_and_expire() {
    let (app, service) = app_and_service();
    let x = create(&app, json!({"name": "x", "limit": 1})).await;
    let task_run = uuid::Uuid::new_v4();
    let (status, acquired) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment-with-lease",
        Some(json!({
            "names": ["x"], "slots": 1, "lease_duration": 60,
            "holder": {"type": "task_run", "id": task_run}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&acquired), ["lease_id", "limits"]);
    assert_eq!(
        acquired["limits"],
        json!([{"id": x["id"], "name": "x", "limit": 1}])
    );
    let lease_id = acquired["lease_id"].as_str().unwrap().to_owned();
    let (status, _, _) = send_h(
        &app,
        "/api/v2/concurrency_limits/increment-with-lease",
        json!({"names": ["x"], "slots": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);

    let renew = format!("/api/v2/concurrency_limits/leases/{lease_id}/renew");
    let (status, _) = send(&app, "POST", &renew, Some(json!({"lease_duration": 120}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, "POST", &renew, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Released: the slot is free, the lease gone (renewing it is a 410, releasing it again
    // nothing).
    let (status, _) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/decrement-with-lease",
        Some(json!({"lease_id": lease_id})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(read(&app, "x").await["active_slots"], 0);
    let (status, body) = send(&app, "POST", &renew, Some(json!({"lease_duration": 60}))).await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::GONE,
            "Lease not found - it may have expired or been revoked"
        )
    );
    let (status, _) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/decrement-with-lease",
        Some(json!({"lease_id": lease_id})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A lease that lapses gives its slot back (the reconciler's sweep).
    let (_, acquired) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment-with-lease",
        Some(json!({"names": ["x"], "slots": 1, "lease_duration": 60})),
    )
    .await;
    assert_eq!(read(&app, "x").await["active_slots"], 1);
    let limits = service.concurrency_limits();
    assert_eq!(limits.release_expired(chrono::Utc::now()).await.unwrap(), 0);
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    assert_eq!(limits.release_expired(later).await.unwrap(), 1);
    assert_eq!(read(&app, "x").await["active_slots"], 0);
    let renew = format!(
        "/api/v2/concurrency_limits/leases/{}/renew",
        acquired["lease_id"].as_str().unwrap()
    );
    let (status, _) = send(&app, "POST", &renew, None).await;
    assert_eq!(status, StatusCode::GONE);

    // Deleting a limit releases its leases.
    let (_, acquired) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment-with-lease",
        Some(json!({"names": ["x"], "slots": 1})),
    )
    .await;
    let (status, _) = send(&app, "DELETE", "/api/v2/concurrency_limits/x", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let renew = format!(
        "/api/v2/concurrency_limits/leases/{}/renew",
        acquired["lease_id"].as_str().unwrap()
    );
    let (status, _) = send(&app, "POST", &renew, None).await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn rate_limits_decay() {
    let (app, _) = app_and_service();
    create(
        &app,
        json!({"name": "rl", "limit": 1, "slot_decay_per_second": 10.0}),
    )
    .await;
    let body = json!({"names": ["rl"], "slots": 1, "mode": "rate_limit"});
    let (status, _) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, retry, _) =
        send_h(&app, "/api/v2/concurrency_limits/increment", body.clone()).await;
    // One blocking slot (1 requested + 1 denied) at 10 per second: 0.2 s on average.
    assert_eq!(status, StatusCode::LOCKED);
    let retry: f64 = retry.unwrap().parse().unwrap();
    assert!((0.1..=0.27).contains(&retry), "{retry}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(read(&app, "rl").await["active_slots"], 0);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/increment",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_increments_never_exceed_the_limit() {
    let (app, _) = app_and_service();
    create(&app, json!({"name": "race", "limit": 3})).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let app = app.clone();
        tasks.spawn(async move {
            send_h(
                &app,
                "/api/v2/concurrency_limits/increment-with-lease",
                json!({"names": ["race"], "slots": 1}),
            )
            .await
            .0
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::LOCKED)
        .count();
    assert_eq!((ok, locked), (3, 9), "{statuses:?}");
    assert_eq!(read(&app, "race").await["active_slots"], 3);
}

#[tokio::test]
async fn tag_limits_are_v2_limits_named_tag() {
    let (app, _) = app_and_service();
    let (status, created) = send(
        &app,
        "POST",
        "/api/concurrency_limits/",
        Some(json!({"tag": "etl", "concurrency_limit": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        keys(&created),
        [
            "id",
            "created",
            "updated",
            "tag",
            "concurrency_limit",
            "active_slots"
        ]
    );
    assert_eq!(
        (
            &created["tag"],
            &created["concurrency_limit"],
            &created["active_slots"]
        ),
        (&json!("etl"), &json!(1), &json!([]))
    );
    let id = id_of(&created);
    assert_eq!(read(&app, "tag:etl").await["id"], json!(id));
    // Created again: an upsert (200) of the limit.
    let (status, again) = send(
        &app,
        "POST",
        "/api/concurrency_limits/",
        Some(json!({"tag": "etl", "concurrency_limit": 2})),
    )
    .await;
    assert_eq!(
        (status, &again["id"], &again["concurrency_limit"]),
        (StatusCode::OK, &json!(id), &json!(2))
    );

    let run_a = uuid::Uuid::new_v4();
    let run_b = uuid::Uuid::new_v4();
    let run_c = uuid::Uuid::new_v4();
    for run in [run_a, run_b] {
        let (status, taken) = send(
            &app,
            "POST",
            "/api/concurrency_limits/increment",
            Some(json!({"names": ["etl", "untracked"], "task_run_id": run})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(taken, json!([{"id": id, "name": "etl", "limit": 2}]));
    }
    let (status, retry, body) = send_h(
        &app,
        "/api/concurrency_limits/increment",
        json!({"names": ["etl"], "task_run_id": run_c}),
    )
    .await;
    assert_eq!(
        (status, retry.as_deref(), detail(&body)),
        (
            StatusCode::LOCKED,
            Some("30"),
            "Concurrency limit for the etl tag has been reached"
        )
    );
    let (status, by_tag) = send(&app, "GET", "/api/concurrency_limits/tag/etl", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut holders: Vec<String> = by_tag["active_slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    holders.sort();
    let mut expected = vec![run_a.to_string(), run_b.to_string()];
    expected.sort();
    assert_eq!(holders, expected);

    let (status, released) = send(
        &app,
        "POST",
        "/api/concurrency_limits/decrement",
        Some(json!({"names": ["etl"], "task_run_id": run_a})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(released, json!([{"id": id, "name": "tag:etl", "limit": 2}]));
    let (_, by_id) = send(&app, "GET", &format!("/api/concurrency_limits/{id}"), None).await;
    assert_eq!(by_id["active_slots"], json!([run_b.to_string()]));
    assert_eq!(read(&app, "tag:etl").await["active_slots"], 1);

    // Reset with an override: the override's runs hold the slots, nothing else.
    let (status, body) = send(
        &app,
        "POST",
        "/api/concurrency_limits/tag/etl/reset",
        Some(json!({"slot_override": [run_c]})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let (_, by_tag) = send(&app, "GET", "/api/concurrency_limits/tag/etl", None).await;
    assert_eq!(by_tag["active_slots"], json!([run_c.to_string()]));
    assert_eq!(read(&app, "tag:etl").await["active_slots"], 1);

    // A zero limit deadlocks: 423 with Prefect's detail.
    send(
        &app,
        "POST",
        "/api/concurrency_limits/",
        Some(json!({"tag": "never", "concurrency_limit": 0})),
    )
    .await;
    let (status, retry, body) = send_h(
        &app,
        "/api/concurrency_limits/increment",
        json!({"names": ["never"], "task_run_id": run_a}),
    )
    .await;
    assert_eq!(
        (status, retry, detail(&body)),
        (
            StatusCode::LOCKED,
            None,
            "The concurrency limit on tag \"never\" is 0 and will deadlock if the task tries to run again."
        )
    );

    // Only `tag:` limits are listed; a V2 limit is not a tag limit.
    create(&app, json!({"name": "plain", "limit": 1})).await;
    let (_, listed) = send(
        &app,
        "POST",
        "/api/concurrency_limits/filter",
        Some(json!({})),
    )
    .await;
    let tags: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["etl", "never"]);
    let plain_id = id_of(&read(&app, "plain").await);
    let (status, body) = send(
        &app,
        "GET",
        &format!("/api/concurrency_limits/{plain_id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Concurrency limit not found")
    );

    let (status, body) = send(&app, "DELETE", "/api/concurrency_limits/tag/never", None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let (status, _) = send(
        &app,
        "DELETE",
        &format!("/api/concurrency_limits/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/concurrency_limits/tag/etl",
        "/api/concurrency_limits/tag/never",
    ] {
        let (status, body) = send(&app, "GET", path, None).await;
        assert_eq!(
            (status, detail(&body)),
            (StatusCode::NOT_FOUND, "Concurrency limit not found")
        );
    }
    let (status, body) = send(&app, "POST", "/api/concurrency_limits/tag/etl/reset", None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Concurrency limit not found")
    );
    // The leases went with the limit.
    let (status, none) = send(&app, "POST", "/api/v2/concurrency_limits/filter", None).await;
    assert_eq!(
        (status, none.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
}
