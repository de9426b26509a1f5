//! The harness: a router over an in-memory store, one helper to send a request through it
//! (`oneshot`, no socket), and the recorded exchanges of the real Prefect 3.9.1 client.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use pushpool_api::{AppState, MAX_BODY_BYTES, router};
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A fresh API over an empty in-memory store, as `pushpool-api` is wired in production.
pub fn app() -> Router {
    app_with(Providers::new())
}

/// [`app`] with `providers` registered (their job-variable checks apply).
pub fn app_with(providers: Providers) -> Router {
    let store = SqliteStore::in_memory().expect("in-memory SQLite store");
    let service = Service::new(Arc::new(store), providers, ServiceConfig::default());
    router(AppState::new(service))
}

/// Sends `method path` with an optional JSON body and returns the status and the decoded
/// body: `Value::Null` when the body is empty, a `Value::String` when it is not JSON.
pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    send_raw(app, method, path, bytes).await
}

/// Sends raw bytes as an `application/json` body (for malformed and oversized bodies).
pub async fn send_raw(
    app: &Router,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "prefect/3.9.1 (API 0.8.4)")
        .header("X-PREFECT-API-VERSION", "0.8.4")
        .body(Body::from(body))
        .expect("request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 4 * MAX_BODY_BYTES)
        .await
        .expect("response body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

/// One recorded exchange, `fixtures/<scenario>/<file>` (copies of the team's
/// `reference/prefect/exchanges/`): `{method, path, query, request_json, status, response_json}`.
pub fn recorded(scenario: &str, file: &str) -> Value {
    read_fixture(&format!("{scenario}/{file}"))
}

/// The request body the real client sent in a recorded exchange.
pub fn recorded_request(scenario: &str, file: &str) -> Value {
    recorded(scenario, file)["request_json"].clone()
}

/// The response body the OSS server answered in a recorded exchange.
pub fn recorded_response(scenario: &str, file: &str) -> Value {
    recorded(scenario, file)["response_json"].clone()
}

/// A default base job template of the reference material (`fixtures/templates/default-*.json`).
pub fn default_template(name: &str) -> Value {
    read_fixture(&format!("templates/default-{name}.json"))
}

fn read_fixture(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The top-level keys of a JSON object (empty for anything else).
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// `value` with `field` replaced (top level), for re-targeting a recorded body at the ids
/// this server generated.
pub fn with(mut value: Value, field: &str, new: Value) -> Value {
    value[field] = new;
    value
}

/// The `detail` string of an error body.
pub fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

/// The id of a created object, as a string for paths.
pub fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

/// Creates the hybrid `ecs` pool `my-push-pool` with the template the CLI sent in a2.
pub async fn create_ecs_pool(app: &Router) -> Value {
    let body = recorded_request("a2-cli-create-ecs", "004-POST-api_work_pools.json");
    let (status, pool) = send(app, "POST", "/api/work_pools/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    pool
}

/// Creates the flow `my-flow` as the client does before a deployment (c1).
pub async fn create_flow(app: &Router) -> Value {
    let body = recorded_request("c1-flow-deploy-ecs-pool", "009-POST-api_flows.json");
    let (status, flow) = send(app, "POST", "/api/flows/", Some(body)).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{status} {flow}"
    );
    flow
}

/// Creates pool, flow and the c1 deployment `my-flow/my-deployment`; returns the deployment.
pub async fn create_c1_deployment(app: &Router) -> Value {
    create_ecs_pool(app).await;
    let flow = create_flow(app).await;
    let body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    let (status, deployment) = send(app, "POST", "/api/deployments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    deployment
}

/// A flow run of the c1 deployment created with d1's body, its scheduled time `at`
/// (an RFC 3339 string) instead of the recorded one.
pub async fn create_run_scheduled_at(app: &Router, deployment_id: &str, at: &str) -> Value {
    let mut body = recorded_request(
        "d1-cli-deployment-run",
        "004-POST-api_deployments_ID_create_flow_run.json",
    );
    body["state"]["state_details"]["scheduled_time"] = json!(at);
    let (status, run) = send(
        app,
        "POST",
        &format!("/api/deployments/{deployment_id}/create_flow_run"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    run
}
