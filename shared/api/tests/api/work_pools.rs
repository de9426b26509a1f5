//! Work pools: the CLI's create, overwrite, inspect and ls paths (a2, a5–a8, f3, h1), the
//! credentials link of the push provisioners (a10), and the 4xx answers to bad bodies.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    app, create_ecs_pool, detail, keys, recorded, recorded_request, recorded_response, send,
    send_raw, with,
};

/// The fields whose values a created pool must echo exactly as the OSS server did.
const ECHOED: [&str; 7] = [
    "name",
    "type",
    "base_job_template",
    "is_paused",
    "concurrency_limit",
    "description",
    "storage_configuration",
];

fn assert_echoes(actual: &Value, recorded: &Value) {
    assert_eq!(keys(actual), keys(recorded), "key set of {actual}");
    for field in ECHOED {
        assert_eq!(actual[field], recorded[field], "{field}");
    }
    assert_eq!(actual["active_slots"], Value::Null);
}

#[tokio::test]
async fn missing_pool_is_404_with_prefects_detail() {
    let app = app();
    let exchange = recorded(
        "a2-cli-create-ecs",
        "001-GET-api_work_pools_my-push-pool.json",
    );

    let (status, body) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;

    assert_eq!(status.as_u16(), exchange["status"]);
    assert_eq!(body, exchange["response_json"]);
    assert_eq!(
        body,
        json!({"detail": "Work pool \"my-push-pool\" not found."})
    );
}

#[tokio::test]
async fn cli_create_of_hybrid_pool_answers_as_recorded() {
    for (scenario, file) in [
        ("a2-cli-create-ecs", "004-POST-api_work_pools.json"),
        ("h1-cli-pool-create-subset", "004-POST-api_work_pools.json"),
    ] {
        let app = app();
        let exchange = recorded(scenario, file);

        let (status, pool) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(exchange["request_json"].clone()),
        )
        .await;

        assert_eq!(status, StatusCode::CREATED, "{scenario}: {pool}");
        assert_echoes(&pool, &exchange["response_json"]);
        // A hybrid pool waits for a worker pushpool never runs, as on the OSS server.
        assert_eq!(pool["status"], "NOT_READY", "{scenario}");
        assert_eq!(pool["status"], exchange["response_json"]["status"]);
    }
}

#[tokio::test]
async fn api_create_of_push_pools_answers_as_recorded() {
    let app = app();
    for file in [
        "002-POST-api_work_pools.json",
        "003-POST-api_work_pools.json",
        "004-POST-api_work_pools.json",
    ] {
        let exchange = recorded("a5-api-create-push-pools", file);

        let (status, pool) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(exchange["request_json"].clone()),
        )
        .await;

        assert_eq!(status, StatusCode::CREATED, "{file}: {pool}");
        assert_echoes(&pool, &exchange["response_json"]);
        // Deliberate difference: the OSS server has no push submitter and says NOT_READY;
        // pushpool submits `:push` pools itself, so they are READY as soon as they exist.
        assert_eq!(exchange["response_json"]["status"], "NOT_READY");
        assert_eq!(pool["status"], "READY", "{file}");
    }
}

#[tokio::test]
async fn inspect_answers_the_recorded_key_set() {
    let app = app();
    create_ecs_pool(&app).await;
    let exchange = recorded("a8-cli-inspect", "001-GET-api_work_pools_my-push-pool.json");

    let (status, pool) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_echoes(&pool, &exchange["response_json"]);
    assert_eq!(
        keys(&pool["storage_configuration"]),
        keys(&exchange["response_json"]["storage_configuration"])
    );
}

#[tokio::test]
async fn second_create_is_409_as_recorded() {
    let app = app();
    create_ecs_pool(&app).await;
    let exchange = recorded(
        "a6-cli-create-ecs-overwrite",
        "004-POST-api_work_pools.json",
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(exchange["request_json"].clone()),
    )
    .await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, exchange["response_json"]);
    assert_eq!(
        body,
        json!({"detail": "A work pool with this name already exists."})
    );
}

#[tokio::test]
async fn overwrite_patch_is_204_and_the_next_read_shows_it() {
    let app = app();
    // GIVEN a paused pool (the CLI's overwrite sends `is_paused: false`)
    let body = with(
        recorded_request("a2-cli-create-ecs", "004-POST-api_work_pools.json"),
        "is_paused",
        json!(true),
    );
    let (status, before) = send(&app, "POST", "/api/work_pools/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(before["status"], "PAUSED");

    // WHEN the CLI's --overwrite PATCH is replayed
    let exchange = recorded(
        "a6-cli-create-ecs-overwrite",
        "006-PATCH-api_work_pools_my-push-pool.json",
    );
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/my-push-pool",
        Some(exchange["request_json"].clone()),
    )
    .await;

    // THEN 204 with no body, and the following GET answers what the OSS server answered
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, after) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_echoes(
        &after,
        &recorded_response(
            "a6-cli-create-ecs-overwrite",
            "007-GET-api_work_pools_my-push-pool.json",
        ),
    );
    assert_eq!(after["is_paused"], false);
    assert_eq!(after["status"], "NOT_READY");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["default_queue_id"], before["default_queue_id"]);
    assert_ne!(after["updated"], before["updated"]);
}

#[tokio::test]
async fn overwrite_patch_with_nulls_clears_the_fields() {
    let app = app();
    let mut body = recorded_request("a2-cli-create-ecs", "004-POST-api_work_pools.json");
    body["description"] = json!("old description");
    body["concurrency_limit"] = json!(3);
    let (status, _) = send(&app, "POST", "/api/work_pools/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let patch = recorded_request(
        "a6-cli-create-ecs-overwrite",
        "006-PATCH-api_work_pools_my-push-pool.json",
    );
    assert_eq!(patch["description"], Value::Null);
    assert_eq!(patch["concurrency_limit"], Value::Null);

    let (status, _) = send(&app, "PATCH", "/api/work_pools/my-push-pool", Some(patch)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, after) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(after["description"], Value::Null);
    assert_eq!(after["concurrency_limit"], Value::Null);
}

#[tokio::test]
async fn patch_of_missing_pool_is_404() {
    let app = app();
    let body = recorded_request(
        "a6-cli-create-ecs-overwrite",
        "006-PATCH-api_work_pools_my-push-pool.json",
    );

    let (status, body) = send(&app, "PATCH", "/api/work_pools/my-push-pool", Some(body)).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": "Work pool \"my-push-pool\" not found."})
    );
}

#[tokio::test]
async fn ls_filter_lists_pools() {
    let app = app();
    let exchange = recorded("f3-cli-work-pool-ls", "002-POST-api_work_pools_filter.json");
    assert_eq!(
        exchange["request_json"],
        json!({"limit": null, "offset": 0, "work_pools": null})
    );

    let (status, empty) = send(
        &app,
        "POST",
        "/api/work_pools/filter",
        Some(exchange["request_json"].clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, exchange["response_json"]);

    create_ecs_pool(&app).await;
    let push = recorded_request("a5-api-create-push-pools", "002-POST-api_work_pools.json");
    assert_eq!(
        send(&app, "POST", "/api/work_pools/", Some(push)).await.0,
        StatusCode::CREATED
    );

    let (status, pools) = send(
        &app,
        "POST",
        "/api/work_pools/filter",
        Some(exchange["request_json"].clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut names: Vec<&str> = pools
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["my-push-pool", "my-real-push-pool-ecs"]);

    let (status, only) = send(
        &app,
        "POST",
        "/api/work_pools/filter",
        Some(json!({"work_pools": {"name": {"any_": ["my-push-pool"]}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(only.as_array().map(Vec::len), Some(1));
    assert_eq!(only[0]["name"], "my-push-pool");
}

#[tokio::test]
async fn workers_filter_is_an_empty_list() {
    let app = app();
    create_ecs_pool(&app).await;
    let exchange = recorded(
        "c1-flow-deploy-ecs-pool",
        "003-POST-api_work_pools_my-push-pool_workers_filter.json",
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/my-push-pool/workers/filter",
        Some(exchange["request_json"].clone()),
    )
    .await;

    assert_eq!(status.as_u16(), exchange["status"]);
    assert_eq!(body, exchange["response_json"]);
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn workers_filter_of_missing_pool_is_404() {
    let app = app();
    let body = recorded_request(
        "c1-flow-deploy-ecs-pool",
        "003-POST-api_work_pools_my-push-pool_workers_filter.json",
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/my-push-pool/workers/filter",
        Some(body),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": "Work pool \"my-push-pool\" not found."})
    );
}

#[tokio::test]
async fn unknown_pool_type_is_422_naming_type() {
    let app = app();
    let body = with(
        recorded_request("a2-cli-create-ecs", "004-POST-api_work_pools.json"),
        "type",
        json!("nope"),
    );

    let (status, body) = send(&app, "POST", "/api/work_pools/", Some(body)).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("type:"), "{body}");
    assert!(detail(&body).contains("\"nope\""), "{body}");
    assert!(detail(&body).contains("ecs:push"), "{body}");
}

#[tokio::test]
async fn bad_base_job_template_is_422_naming_it() {
    let app = app();
    let bad = json!({"job_configuration": [], "variables": {}});

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "bad", "type": "ecs:push", "base_job_template": bad})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).starts_with("base_job_template"), "{body}");

    create_ecs_pool(&app).await;
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/my-push-pool",
        Some(json!({"base_job_template": bad})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).starts_with("base_job_template"), "{body}");
    let (_, pool) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(
        pool["base_job_template"],
        recorded_request("a2-cli-create-ecs", "004-POST-api_work_pools.json")["base_job_template"]
    );
}

#[tokio::test]
async fn non_object_base_job_template_is_422() {
    let app = app();

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "bad", "type": "ecs:push", "base_job_template": []})),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).starts_with("base_job_template"), "{body}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = app();

    let (status, body) = send_raw(
        &app,
        "POST",
        "/api/work_pools/",
        b"{\"name\": \"x\",".to_vec(),
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(detail(&body).starts_with("Invalid request body"), "{body}");
}

#[tokio::test]
async fn wrong_json_type_is_422_naming_the_field() {
    let app = app();

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "x", "type": "ecs:push", "is_paused": "x"})),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("is_paused"), "{body}");
}

#[tokio::test]
async fn missing_name_is_422_naming_it() {
    let app = app();

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"type": "ecs:push"})),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("name"), "{body}");
}

#[tokio::test]
async fn credentials_ref_default_is_stored_unchanged() {
    let app = app();
    let create = recorded_request("a5-api-create-push-pools", "002-POST-api_work_pools.json");
    assert_eq!(
        send(&app, "POST", "/api/work_pools/", Some(create)).await.0,
        StatusCode::CREATED
    );
    let patch = recorded(
        "a10-link-credentials-to-push-pools",
        "004-PATCH-api_work_pools_my-real-push-pool-ecs.json",
    );
    let reference = &patch["request_json"]["base_job_template"]["variables"]["properties"]["aws_credentials"]
        ["default"];
    assert_eq!(
        reference,
        &json!({"$ref": {"block_document_id": "9d37d1d6-208d-4a24-bf56-84fc39a37928"}})
    );

    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/my-real-push-pool-ecs",
        Some(patch["request_json"].clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, pool) = send(&app, "GET", "/api/work_pools/my-real-push-pool-ecs", None).await;
    assert_eq!(status, StatusCode::OK);
    let after = recorded_response(
        "a10-link-credentials-to-push-pools",
        "005-GET-api_work_pools_my-real-push-pool-ecs.json",
    );
    assert_echoes(&pool, &after);
    assert_eq!(
        pool["base_job_template"]["variables"]["properties"]["aws_credentials"]["default"],
        *reference
    );
}

#[tokio::test]
async fn delete_removes_the_pool() {
    let app = app();
    create_ecs_pool(&app).await;

    let (status, body) = send(&app, "DELETE", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, _) = send(&app, "GET", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, "DELETE", "/api/work_pools/my-push-pool", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Prefect's `validate_base_job_template`: a placeholder in `job_configuration` that
/// `variables.properties` does not declare is a 422 naming it, on create and on update.
#[tokio::test]
async fn undeclared_template_variable_is_422_on_create_and_update() {
    let app = app();
    let template = json!({
        "job_configuration": {"command": "{{ command }}", "image": "{{ image }}",
            "env": {"A": "{{ zone }}"}},
        "variables": {"type": "object", "properties": {"command": {"type": "string"}}}
    });
    let expected = "base_job_template: The variables specified in the job configuration \
        template must be present as properties in the variables schema. Your job configuration \
        uses the following undeclared variable(s): image ,zone.";

    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "undeclared", "type": "process", "base_job_template": template})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(detail(&body), expected);

    create_ecs_pool(&app).await;
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/work_pools/my-push-pool",
        Some(json!({"base_job_template": template})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(detail(&body), expected);
}

/// Prefect's `validate_base_job_template`: a template other than `{}` needs a non-empty
/// `job_configuration` and a non-empty `variables`, on create and on update.
#[tokio::test]
async fn template_without_both_sections_is_422_on_create_and_update() {
    let app = app();
    create_ecs_pool(&app).await;
    let expected = "base_job_template: The `base_job_template` must contain both a \
        `job_configuration` key and a `variables` key.";
    let config = json!({"command": "{{ command }}"});
    let variables = json!({"type": "object", "properties": {"command": {"type": "string"}}});
    for (i, template) in [
        json!({"job_configuration": config}),
        json!({"variables": variables}),
        json!({"job_configuration": {}, "variables": variables}),
        json!({"job_configuration": config, "variables": {}}),
        json!({"job_configuration": config, "variables": null}),
        json!({"other": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = send(
            &app,
            "POST",
            "/api/work_pools/",
            Some(json!({"name": format!("sections-{i}"), "type": "process",
                "base_job_template": template})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{template}: {body}"
        );
        assert_eq!(detail(&body), expected, "{template}");
        let (status, body) = send(
            &app,
            "PATCH",
            "/api/work_pools/my-push-pool",
            Some(json!({"base_job_template": template})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{template}: {body}"
        );
        assert_eq!(detail(&body), expected, "{template}");
    }
    // `{}` is still accepted (Prefect's default for a pool created without a template).
    let (status, body) = send(
        &app,
        "POST",
        "/api/work_pools/",
        Some(json!({"name": "empty-template", "type": "process", "base_job_template": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A pool stored before the check (or by another path) still reads.
#[tokio::test]
async fn a_stored_template_with_an_undeclared_variable_still_reads() {
    use pushpool_store::Store;
    let store = std::sync::Arc::new(
        pushpool_store_sqlite::SqliteStore::in_memory().expect("in-memory store"),
    );
    let mut pool = pushpool_store::conformance::work_pool("legacy");
    pool.base_job_template = json!({"job_configuration": {"image": "{{ image }}"},
        "variables": {"properties": {}}});
    store.create_work_pool(&pool).await.expect("stored");
    let service = pushpool_service::Service::new(
        store,
        pushpool_providers::Providers::new(),
        pushpool_service::ServiceConfig::default(),
    );
    let app = pushpool_api::router(pushpool_api::AppState::new(service));
    let (status, body) = send(&app, "GET", "/api/work_pools/legacy", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["base_job_template"]["job_configuration"],
        json!({"image": "{{ image }}"})
    );
}
