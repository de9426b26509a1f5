//! `GET /collections/views/aggregate-worker-metadata`: the view that makes
//! `prefect work-pool create --type ecs:push` work (REPORT §3.a9). Its entries must have the
//! shape of the recorded (proxy-injected) view, and their templates must be the defaults.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, default_template, keys, recorded_response, send};

const VIEW: &str = "/api/collections/views/aggregate-worker-metadata";

fn entry<'a>(view: &'a Value, collection: &str, pool_type: &str) -> &'a Value {
    let entry = &view[collection][pool_type];
    assert!(entry.is_object(), "no {collection}/{pool_type} in the view");
    entry
}

#[tokio::test]
async fn view_lists_exactly_the_push_types_and_process() {
    let app = app();

    let (status, view) = send(&app, "GET", VIEW, None).await;

    assert_eq!(status, StatusCode::OK);
    let types: BTreeSet<String> = view
        .as_object()
        .expect("collections")
        .values()
        .flat_map(|c| c.as_object().expect("types").keys().cloned())
        .collect();
    let expected: BTreeSet<String> = [
        "ecs:push",
        "cloud-run-v2:push",
        "azure-container-instance:push",
        "process",
    ]
    .map(String::from)
    .into();
    assert_eq!(types, expected);
}

#[tokio::test]
async fn push_entries_have_the_recorded_shape_and_the_default_templates() {
    let app = app();
    let injected = recorded_response(
        "a9-injected-cli-create-ecs-push",
        "002-GET-api_collections_views_aggregate-worker-metadata.json",
    );

    let (_, view) = send(&app, "GET", VIEW, None).await;

    for (collection, pool_type, template) in [
        ("prefect-aws", "ecs:push", "ecs"),
        ("prefect-gcp", "cloud-run-v2:push", "cloud-run-v2"),
        (
            "prefect-azure",
            "azure-container-instance:push",
            "azure-container-instance",
        ),
    ] {
        let ours = entry(&view, collection, pool_type);
        let theirs = entry(&injected, collection, pool_type);
        assert_eq!(keys(ours), keys(theirs), "{pool_type}");
        assert_eq!(ours["type"], pool_type);
        assert_eq!(ours["is_beta"], false);
        assert_eq!(
            ours["default_base_job_configuration"],
            default_template(template),
            "{pool_type}"
        );
        assert_eq!(
            keys(&ours["default_base_job_configuration"]),
            keys(&theirs["default_base_job_configuration"])
        );
    }
}

#[tokio::test]
async fn process_entry_has_the_recorded_shape_and_the_pool_default() {
    let app = app();
    let injected = recorded_response(
        "a9-injected-cli-create-ecs-push",
        "002-GET-api_collections_views_aggregate-worker-metadata.json",
    );
    let (_, view) = send(&app, "GET", VIEW, None).await;
    let ours = entry(&view, "prefect", "process");
    assert_eq!(keys(ours), keys(entry(&injected, "prefect", "process")));

    let (status, pool) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "local", "type": "process"})),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED, "{pool}");
    assert_eq!(
        ours["default_base_job_configuration"],
        pool["base_job_template"]
    );
    assert!(pool["base_job_template"]["job_configuration"].is_object());
}

#[tokio::test]
async fn a_push_pool_created_without_template_gets_the_views_template() {
    // What the CLI does after reading the view (a9): it sends the view's template; a client
    // that sends none gets the same one from the server.
    let app = app();
    let (_, view) = send(&app, "GET", VIEW, None).await;

    for (collection, pool_type) in [
        ("prefect-aws", "ecs:push"),
        ("prefect-gcp", "cloud-run-v2:push"),
        ("prefect-azure", "azure-container-instance:push"),
    ] {
        let name = format!("cli-{}", pool_type.replace(':', "-"));
        let (status, pool) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(json!({"name": name, "type": pool_type, "base_job_template": {}, "is_paused": false})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{pool}");
        assert_eq!(
            pool["base_job_template"],
            view[collection][pool_type]["default_base_job_configuration"],
            "{pool_type}"
        );
    }
}

#[tokio::test]
async fn other_views_are_404() {
    let app = app();

    let (status, body) = send(&app, "GET", "/api/collections/views/nope", None).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "View nope not found in registry"}));
}
