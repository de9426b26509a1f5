//! Meta endpoints and the router-wide answers: health, version, CSRF probe, storage,
//! unknown paths, invalid ids and oversized bodies.

use axum::http::StatusCode;
use pushpool_api::{MAX_BODY_BYTES, PREFECT_API_VERSION};
use serde_json::json;

use crate::support::{app, detail, recorded_response, send, send_raw};

#[tokio::test]
async fn health_is_true() {
    let (status, body) = send(&app(), "GET", "/api/health", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(true));
}

#[tokio::test]
async fn version_is_the_prefect_server_version() {
    let (status, body) = send(&app(), "GET", "/api/admin/version", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!("3.9.1"));
    assert_eq!(PREFECT_API_VERSION, "3.9.1");
}

#[tokio::test]
async fn csrf_token_says_protection_is_disabled() {
    let (status, body) = send(&app(), "GET", "/api/csrf-token?client=x", None).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"detail": "CSRF protection is disabled."}));
}

#[tokio::test]
async fn admin_storage_has_no_default_result_storage() {
    let recorded = recorded_response(
        "e1-engine-execute-from-scheduled",
        "032-GET-api_admin_storage.json",
    );

    let (status, body) = send(&app(), "GET", "/api/admin/storage", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, recorded);
    assert_eq!(body, json!({"default_result_storage_block_id": null}));
}

#[tokio::test]
async fn unknown_paths_are_404_not_found() {
    let app = app();
    for (method, path) in [
        ("GET", "/api/nope"),
        ("GET", "/nope"),
        ("POST", "/api/work_pools/my-push-pool/workers/heartbeat"),
        ("DELETE", "/api/automations/x"),
    ] {
        let (status, body) = send(&app, method, path, None).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body, json!({"detail": "Not Found"}), "{method} {path}");
    }
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_404_as_on_prefects_server() {
    // Prefect's routes match `{id:uuid}` only: any other segment is an unknown path.
    let app = app();
    for path in [
        "/api/flow_runs/not-a-uuid",
        "/api/deployments/not-a-uuid",
        "/api/flows/not-a-uuid",
        "/api/block_documents/not-a-uuid",
        "/api/block_types/not-a-uuid",
    ] {
        let (status, body) = send(&app, "GET", path, None).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"detail": "Not Found"}), "{path}");
    }
}

#[tokio::test]
async fn invalid_uuid_in_a_query_is_422() {
    let (status, body) = send(
        &app(),
        "GET",
        "/api/flow_run_states/?flow_run_id=not-a-uuid",
        None,
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("flow_run_id"), "{body}");
}

/// A syntactically valid work pool body just over the limit.
fn oversized_body() -> Vec<u8> {
    let padding = "x".repeat(MAX_BODY_BYTES + 1);
    json!({"name": "big", "type": "ecs:push", "description": padding})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn body_over_2_mib_is_rejected_and_nothing_is_created() {
    let app = app();

    let (status, _) = send_raw(&app, "POST", "/api/work_pools/", oversized_body()).await;

    assert!(status.is_client_error(), "{status}");
    let (status, _) = send(&app, "GET", "/api/work_pools/big", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn body_over_2_mib_is_413() {
    let app = app();

    let (status, body) = send_raw(&app, "POST", "/api/work_pools/", oversized_body()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (status, body) = send_raw(&app, "POST", "/api/work_pools/filter", oversized_body()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn body_just_under_the_limit_is_accepted() {
    let app = app();
    let padding = "x".repeat(MAX_BODY_BYTES - 1024);
    let body = json!({"name": "big", "type": "ecs:push", "description": padding});

    let (status, pool) = send(&app, "POST", "/api/work_pools/", Some(body)).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        pool["description"].as_str().map(str::len),
        Some(MAX_BODY_BYTES - 1024)
    );
}

#[tokio::test]
async fn wrong_method_on_a_known_path_is_405() {
    let (status, _) = send(
        &app(),
        "PUT",
        "/api/work_pools/my-push-pool",
        Some(json!({})),
    )
    .await;

    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn wrong_method_has_a_detail_body() {
    let (status, body) = send(
        &app(),
        "PUT",
        "/api/work_pools/my-push-pool",
        Some(json!({})),
    )
    .await;

    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"detail": "Method Not Allowed"}));
}
