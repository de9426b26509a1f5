//! Faults found by fuzzing, fault injection and load (issue 8, section 4), each pinned through
//! the whole router: a retry delay too large for a date, names too long for a URL, a full or
//! read-only database, a foreign `Host` in open mode, a body that is not JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use pushpool_api::auth::AuthMode;
use pushpool_api::{AppState, router};
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{
    app, create_c1_deployment, create_flow, default_template, detail, id_of, recorded, send,
};

fn app_over(store: SqliteStore) -> Router {
    let service = Service::new(Arc::new(store), Providers::new(), ServiceConfig::default());
    router(AppState::new(service))
}

/// Sends `method path` with the given headers and raw body; returns status and decoded body.
async fn send_with(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

// ---- empirical_policy.retry_delay -------------------------------------------------------

const HUGE_DELAY_DETAIL: &str = "empirical_policy.retry_delay: 10000000000000 seconds is out of \
     range: from 0 to 31536000 (365 days)";

/// The e7 body (a local run with `retries: 1`) with `retry_delay` replaced.
fn e7_create(flow_id: &Value, retry_delay: Value) -> Value {
    let mut body = recorded(
        "e7-local-failing-flow-with-retries",
        "004-POST-api_flow_runs.json",
    )["request_json"]
        .clone();
    body["flow_id"] = flow_id.clone();
    body["empirical_policy"]["retry_delay"] = retry_delay;
    body
}

#[tokio::test]
async fn a_retry_delay_too_large_for_a_date_is_refused_on_create_and_update() {
    let app = app();
    let flow = create_flow(&app).await;
    // The request that used to be accepted, and whose FAILED proposal then panicked.
    let (status, body) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(e7_create(&flow["id"], json!(1e13))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), HUGE_DELAY_DETAIL);

    let (status, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(e7_create(&flow["id"], json!(31_536_000))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let path = format!("/api/flow_runs/{}", id_of(&run));
    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"empirical_policy": {"retries": 1, "retry_delay": 1e13}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), HUGE_DELAY_DETAIL);
    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"empirical_policy": {"retry_delay": -1, "retry_delay_seconds": 0}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "empirical_policy.retry_delay: -1 seconds is out of range: from 0 to 31536000 (365 days)"
    );
    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"empirical_policy": {"retry_delay_seconds": 1e13}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "empirical_policy.retry_delay_seconds: 10000000000000 seconds is out of range: from 0 \
         to 31536000 (365 days)"
    );

    let deployment = create_c1_deployment(&app).await;
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(json!({"empirical_policy": {"retries": 1, "retry_delay": 1e13}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), HUGE_DELAY_DETAIL);
}

#[tokio::test]
async fn failing_a_stored_run_whose_retry_delay_overflows_a_date_is_accepted_without_retry() {
    let store = SqliteStore::in_memory().unwrap();
    let app = app_over(store.clone());
    let flow = create_flow(&app).await;
    let (status, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(e7_create(&flow["id"], json!(1))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = id_of(&run);
    // A run stored before the API checked the policy.
    let mut stored = store.read_flow_run(id.parse().unwrap()).await.unwrap();
    stored.empirical_policy.retry_delay = Some(1e13);
    store.update_flow_run(&stored).await.unwrap();

    let set_state = format!("/api/flow_runs/{id}/set_state");
    let (status, answer) = send(
        &app,
        "POST",
        &set_state,
        Some(json!({"state": {"type": "RUNNING", "name": "Running"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "ACCEPT");
    let (status, answer) = send(
        &app,
        "POST",
        &set_state,
        Some(json!({"state": {"type": "FAILED", "name": "Failed", "message": "boom"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "ACCEPT");
    assert_eq!(answer["state"]["type"], "FAILED");
    assert_eq!(answer["state"]["message"], "boom");
}

// ---- names ------------------------------------------------------------------------------

#[tokio::test]
async fn a_work_pool_name_longer_than_the_limit_is_refused_and_the_longest_allowed_round_trips() {
    let app = app();
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "p".repeat(500_000), "type": "process"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "name: 500000 characters, more than the 200 allowed"
    );

    // 200 characters of 2 bytes each: created, read and deleted by name.
    let name = "é".repeat(200);
    let (status, pool) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": name, "type": "process"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    let path = format!("/api/work_pools/{}", "%C3%A9".repeat(200));
    let (status, read) = send(&app, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["name"], json!(name));
    let (status, _) = send(&app, "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for (name, expected) in [
        (
            "a/b",
            "name: \"a/b\" contains the character '/', which names cannot contain (none of / % & > <)",
        ),
        ("'\"  \"'", "name: must not be empty"),
    ] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(json!({"name": name, "type": "process"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_eq!(detail(&body), expected);
    }
}

#[tokio::test]
async fn names_of_flows_deployments_queues_and_blocks_follow_prefect_and_the_length_limit() {
    let app = app();
    let long = "n".repeat(201);
    let too_long = "name: 201 characters, more than the 200 allowed";

    let (status, body) = send(&app, "POST", "/api/flows/", Some(json!({"name": long}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), too_long);
    let (status, body) = send(&app, "POST", "/api/flows/", Some(json!({"name": "a<b"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "name: \"a<b\" contains the character '<', which names cannot contain (none of / % & > <)"
    );

    let flow = create_flow(&app).await;
    let (status, body) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": long, "flow_id": flow["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), too_long);
    let (status, body) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"], "work_queue_name": long})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "work_queue_name: 201 characters, more than the 200 allowed"
    );
    let (status, deployment) = send(
        &app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "d", "flow_id": flow["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{}", id_of(&deployment)),
        Some(json!({"work_queue_name": "q&a"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "work_queue_name: \"q&a\" contains the character '&', which names cannot contain (none of / % & > <)"
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/block_types/",
        Some(json!({"name": long, "slug": "s"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), too_long);
    let (status, body) = send(
        &app,
        "POST",
        "/api/block_types/",
        Some(json!({"name": "T", "slug": "s".repeat(201)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "slug: 201 characters, more than the 200 allowed"
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/block_types/",
        Some(json!({"name": "T", "slug": "My_Type"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "slug: \"My_Type\" must only contain lowercase letters, numbers, and dashes"
    );

    let (status, block_type) = send(
        &app,
        "POST",
        "/api/block_types/",
        Some(json!({"name": "T", "slug": "t"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{block_type}");
    let (status, schema) = send(
        &app,
        "POST",
        "/api/block_schemas/",
        Some(
            json!({"block_type_id": block_type["id"], "capabilities": [],
            "fields": {"title": "T", "type": "object", "properties": {}}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{schema}");
    for (name, expected) in [
        (long.as_str(), too_long.to_owned()),
        (
            "My_Creds",
            "name: \"My_Creds\" must only contain lowercase letters, numbers, and dashes"
                .to_owned(),
        ),
    ] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/block_documents/",
            Some(json!({"name": name, "block_type_id": block_type["id"],
                "block_schema_id": schema["id"], "data": {}})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_eq!(detail(&body), expected);
    }
}

// ---- a full or read-only database ----------------------------------------------------------

const FULL_DETAIL: &str = "Storage is full: nothing was written. Free disk space (or raise the \
     storage limit) on the server, then retry.";

fn pool_body(name: &str) -> Value {
    json!({"name": name, "type": "ecs", "base_job_template": default_template("ecs")})
}

#[tokio::test]
async fn a_full_database_is_a_507_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushpool.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            max_pages: Some(52), // 48 before schema version 5 added the logs table and its 3 indexes (4 pages)
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let app = app_over(store);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..100 {
        let name = format!("pool-{i}");
        let (status, body) = send(&app, "POST", "/api/work_pools/", Some(pool_body(&name))).await;
        if status == StatusCode::CREATED {
            acknowledged.push(name);
            continue;
        }
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
        assert_eq!(body, json!({"detail": FULL_DETAIL}));
        refused = Some(name);
        break;
    }
    let refused = refused.expect("the size limit was reached");
    assert!(!acknowledged.is_empty(), "the limit left room for a pool");
    // Reads still work: everything acknowledged is there, the refused pool is not.
    for name in &acknowledged {
        let (status, pool) = send(&app, "GET", &format!("/api/work_pools/{name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(pool["base_job_template"], default_template("ecs"));
    }
    let (status, _) = send(&app, "GET", &format!("/api/work_pools/{refused}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(app);

    // With room again (the limit lifted), the same file takes the refused pool.
    let app = app_over(SqliteStore::open(&path).unwrap());
    let (status, _) = send(&app, "POST", "/api/work_pools/", Some(pool_body(&refused))).await;
    assert_eq!(status, StatusCode::CREATED);
    for name in &acknowledged {
        let (status, _) = send(&app, "GET", &format!("/api/work_pools/{name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn a_read_only_database_is_a_503_that_says_so_and_still_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushpool.db");
    let app = app_over(SqliteStore::open(&path).unwrap());
    let (status, _) = send(&app, "POST", "/api/work_pools/", Some(pool_body("kept"))).await;
    assert_eq!(status, StatusCode::CREATED);
    drop(app);

    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            read_only: true,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let app = app_over(store);
    let (status, pool) = send(&app, "GET", "/api/work_pools/kept", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pool["name"], "kept");
    let (status, body) = send(&app, "POST", "/api/work_pools/", Some(pool_body("new"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"detail": "Storage unavailable: the database is read-only. Nothing was written; \
            retry once the server's storage is fixed."})
    );
    let (status, body) = send(&app, "DELETE", "/api/work_pools/kept", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = send(&app, "GET", "/api/work_pools/kept", None).await;
    assert_eq!(status, StatusCode::OK);
}

// ---- Host and content type ------------------------------------------------------------------

fn open_app() -> Router {
    let store = SqliteStore::in_memory().unwrap();
    let service = Service::new(Arc::new(store), Providers::new(), ServiceConfig::default());
    router(AppState::new(service).allow_url_host("http://Pushpool.example:8080/api"))
}

#[tokio::test]
async fn open_mode_answers_only_loopback_and_the_public_url_host() {
    let app = open_app();
    for host in [
        "127.0.0.1",
        "127.0.0.1:4200",
        "localhost:4200",
        "LOCALHOST",
        "[::1]:4200",
        "pushpool.example",
        "pushpool.example:9999",
    ] {
        let (status, body) =
            send_with(&app, "GET", "/api/work_pools/x", &[("host", host)], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{host}: {body}");
    }
    for host in [
        "evil.example",
        "evil.example:4200",
        "127.0.0.2:4200",
        "localhost.evil.example",
    ] {
        let (status, body) = send_with(
            &app,
            "POST",
            "/api/work_pools/",
            &[("host", host), ("content-type", "application/json")],
            r#"{"name": "p", "type": "process"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
        assert_eq!(
            detail(&body),
            format!(
                "Host {host:?} is not allowed: without API keys this server only answers the \
                 hosts 127.0.0.1, localhost, [::1], pushpool.example. To reach it under another \
                 name, start it with --public-url (PUSHPOOL_PUBLIC_URL) set to the URL clients \
                 use, or require API keys (--require-api-key)."
            )
        );
    }
    // Nothing was created by the refused requests.
    let (status, _) = send_with(
        &app,
        "GET",
        "/api/work_pools/p",
        &[("host", "localhost")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // With API keys required, the key is the protection: any host gets the key check.
    let store = SqliteStore::in_memory().unwrap();
    let service = Service::new(Arc::new(store), Providers::new(), ServiceConfig::default());
    let keyed = router(AppState::new(service).with_auth(AuthMode::Required));
    let (status, _) = send_with(
        &keyed,
        "GET",
        "/api/work_pools/x",
        &[("host", "abc.execute-api.us-east-1.amazonaws.com")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_state_changing_body_must_be_json_but_an_empty_body_needs_no_type() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let path = format!("/api/deployments/{}/create_flow_run", id_of(&deployment));
    // A cross-site "simple" POST from a web page.
    let (status, body) = send_with(
        &app,
        "POST",
        &path,
        &[("content-type", "text/plain;charset=UTF-8")],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        detail(&body),
        "Content-Type \"text/plain;charset=UTF-8\" is not accepted: a POST request with a body \
         must send 'Content-Type: application/json'."
    );
    let (status, body) = send_with(&app, "PATCH", "/api/work_pools/my-push-pool", &[], "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        detail(&body),
        "Content-Type is missing: a PATCH request with a body must send \
         'Content-Type: application/json'."
    );
    let (status, body) = send_with(
        &app,
        "POST",
        "/api/work_pools/filter",
        &[("content-type", "application/x-www-form-urlencoded")],
        "limit=1",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");

    // No body, no content type: allowed (Prefect's UI sends such POSTs).
    let (status, run) = send_with(&app, "POST", &path, &[], "").await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let (status, _) = send_with(&app, "POST", "/api/work_pools/filter", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    // JSON with parameters, and a +json type, are JSON.
    let (status, run) = send_with(
        &app,
        "POST",
        &path,
        &[("content-type", "Application/JSON; charset=utf-8")],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let (status, _) = send_with(
        &app,
        "POST",
        "/api/work_pools/filter",
        &[("content-type", "application/merge-patch+json")],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

// ---- a flow run larger than the store keeps --------------------------------------------

/// A flow run whose document would be over 384 KiB (the limit both shapes keep, for
/// DynamoDB's 400 KB items) is a 413 naming its size, the limit and the field that makes it
/// large, and nothing is written. The same body in the AWS shape gave a 500 before.
#[tokio::test]
async fn a_flow_run_larger_than_the_store_keeps_is_a_413_and_nothing_is_written() {
    let app = app();
    let flow = create_flow(&app).await;
    let blob = "x".repeat(400_000);
    let body = json!({"flow_id": flow["id"], "parameters": {"blob": blob}});
    let (status, response) = send(&app, "POST", "/api/flow_runs/", Some(body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{response}");
    let detail = detail(&response);
    assert!(detail.starts_with("The flow run is "), "{detail}");
    assert!(
        detail.ends_with(
            " bytes as JSON, over the 393216 bytes (384 KiB) pushpool stores per flow run \
             (DynamoDB keeps at most 400 KB per item). Its largest field is `parameters` \
             (400011 bytes). Nothing was written."
        ),
        "{detail}"
    );
    let (status, runs) = send(&app, "POST", "/api/flow_runs/filter", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs, json!([]));
}
