//! A push pool type whose adapter the build left out (the embedded binary built without its
//! `ecs`, `cloud-run` or `aci` cargo feature registers `pushpool_providers::Unavailable` for
//! it): creating a work pool of that type, and a deployment on an existing pool of that type,
//! are 422s naming the pool type and the feature; the other pool types are untouched.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use pushpool_api::{AppState, router};
use pushpool_providers::{Providers, Unavailable};
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store_sqlite::SqliteStore;
use serde_json::json;

use crate::support::{create_flow, detail, recorded_request, send, with};

const ECS_UNAVAILABLE: &str = "work pool type \"ecs:push\" is not available: this pushpool was \
                               built without its \"ecs\" feature (cargo build -p pushpool \
                               --features ecs)";

fn without_ecs() -> Providers {
    Providers::new().with("ecs:push", Arc::new(Unavailable::new("ecs:push", "ecs")))
}

fn app_over(store: Arc<dyn Store>, providers: Providers) -> Router {
    router(AppState::new(Service::new(
        store,
        providers,
        ServiceConfig::default(),
    )))
}

#[tokio::test]
async fn a_pool_of_a_compiled_out_type_is_refused_naming_the_type_and_the_feature() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let app = app_over(store.clone(), without_ecs());
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "aws", "type": "ecs:push"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(detail(&body), format!("type: {ECS_UNAVAILABLE}"));
    assert!(
        store
            .list_work_pools(Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // The pool types this build has (or that have no provider at all) are created as before.
    for (name, pool_type) in [("local", "process"), ("gcp", "cloud-run-v2:push")] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(json!({"name": name, "type": pool_type})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["type"], pool_type);
    }
}

#[tokio::test]
async fn a_deployment_on_an_existing_pool_of_a_compiled_out_type_is_refused() {
    // The pool was created by a build with the feature; the same database is then served by
    // one without it.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let with_ecs = app_over(store.clone(), Providers::new());
    let (status, pool) = send(
        &with_ecs,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "my-push-pool", "type": "ecs:push"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    let flow = create_flow(&with_ecs).await;

    let app = app_over(store, without_ecs());
    let body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    let (status, body) = send(&app, "POST", "/api/deployments/", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        detail(&body),
        format!("invalid job variables: {ECS_UNAVAILABLE}")
    );
}

/// Prefect's UI offers the pool types of `aggregate-worker-metadata` in its work pool form:
/// a type this build left out is not listed (creating it would be the 422 above); the others
/// are, with their collections.
#[tokio::test]
async fn the_worker_metadata_lists_only_the_pool_types_this_build_has() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let types = |body: &serde_json::Value| -> Vec<String> {
        let mut t: Vec<String> = body
            .as_object()
            .unwrap()
            .values()
            .flat_map(|c| c.as_object().unwrap().keys().cloned())
            .collect();
        t.sort();
        t
    };
    let view = "/api/collections/views/aggregate-worker-metadata";
    let (status, all) = send(
        &app_over(store.clone(), Providers::new()),
        "GET",
        view,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&app_over(store, without_ecs()), "GET", view, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = types(&all);
    expected.retain(|t| t != "ecs:push");
    assert_eq!(types(&body), expected);
    assert_eq!(
        expected,
        [
            "azure-container-instance:push",
            "cloud-run-v2:push",
            "process"
        ]
    );
    assert!(body.get("prefect-aws").is_none(), "{body}");
}
