//! The API function's router fed API Gateway HTTP API (payload v2) events, converted the way
//! `lambda_http` converts them: keys are required, expected failures are responses.

use std::sync::Arc;

use axum::body::to_bytes;
use lambda_http::request::LambdaRequest;
use pushpool_api::auth::{AuthMode, hash_key};
use pushpool_core::model::ApiKey;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store_sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> (axum::Router, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    store
        .create_api_key(&ApiKey {
            id: uuid::Uuid::new_v4(),
            name: "ci".into(),
            hash: hash_key("pp_valid"),
            created: chrono::Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let service = Service::new(
        Arc::clone(&store),
        Providers::new(),
        ServiceConfig::default(),
    );
    (
        pushpool_api::router(pushpool_api::AppState::new(service).with_auth(AuthMode::Required)),
        store,
    )
}

async fn send(app: &axum::Router, fixture: &str, authorization: &str) -> (u16, Value) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("AUTHORIZATION", authorization);
    let event: LambdaRequest = serde_json::from_str(&text).unwrap();
    let request: lambda_http::Request = event.into();
    let response = app
        .clone()
        .oneshot(request.map(axum::body::Body::new))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health_is_open_and_other_routes_need_a_valid_key() {
    let (app, store) = app().await;
    assert_eq!(
        send(&app, "apigw-v2-get-health.json", "").await,
        (200, Value::Bool(true))
    );
    let (status, body) = send(&app, "apigw-v2-post-work-pool.json", "Bearer pp_wrong").await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (401, Some("Invalid API key."))
    );
    let (status, body) = send(&app, "apigw-v2-post-work-pool.json", "Bearer pp_valid").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "my-push-pool");
    assert_eq!(
        store.read_work_pool("my-push-pool").await.unwrap().r#type,
        "ecs:push"
    );
    let (status, body) = send(&app, "apigw-v2-post-work-pool.json", "Bearer pp_valid").await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (409, Some("A work pool with this name already exists."))
    );
}
