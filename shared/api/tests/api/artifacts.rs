//! `/artifacts/…`, as Prefect 3.9.1's server answers them (`prefect/server/api/artifacts.py`):
//! artifacts, and the collections (latest per key) they form.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, detail, id_of, send};

async fn create(app: &Router, body: Value) -> Value {
    let (status, created) = send(app, "POST", "/api/artifacts/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

fn field<'a>(list: &'a Value, name: &str) -> Vec<&'a Value> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| &v[name])
        .collect()
}

#[tokio::test]
async fn create_read_update_delete() {
    let app = app();
    let long = "m".repeat(501);
    let created = create(
        &app,
        json!({"key": "daily-report", "type": "markdown", "description": "# Report",
            "data": "**ok**", "metadata_": {"long": long, "short": "s"}}),
    )
    .await;
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "created",
            "updated",
            "key",
            "type",
            "description",
            "data",
            "metadata_",
            "flow_run_id",
            "task_run_id"
        ]
    );
    assert_eq!(
        created["metadata_"],
        json!({"long": format!("{}...", "m".repeat(500)), "short": "s"})
    );
    let id = id_of(&created);
    let (status, read) = send(&app, "GET", &format!("/api/artifacts/{id}"), None).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));

    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/artifacts/{id}"),
        Some(json!({"data": "**changed**", "description": null})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &format!("/api/artifacts/{id}"), None).await;
    assert_eq!(read["data"], "**changed**");
    assert_eq!(read["description"], Value::Null);
    assert_eq!(read["type"], "markdown");

    let (status, _) = send(&app, "DELETE", &format!("/api/artifacts/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in ["GET", "DELETE"] {
        let (status, body) = send(&app, method, &format!("/api/artifacts/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(detail(&body), "Artifact not found.");
    }
    let (status, body) = send(&app, "GET", "/api/artifacts/daily-report/latest", None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Artifact not found.")
    );
}

#[tokio::test]
async fn collections_follow_the_latest_artifact_of_each_key() {
    let app = app();
    let first = create(&app, json!({"key": "report", "data": 1})).await;
    let second = create(&app, json!({"key": "report", "data": 2})).await;
    create(&app, json!({"key": "other", "data": 3, "type": "table"})).await;
    create(&app, json!({"data": 4})).await;

    let (status, latest) = send(&app, "GET", "/api/artifacts/report/latest", None).await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["latest_id"], second["id"]);
    assert_eq!(latest["data"], 2);
    assert_eq!(latest["created"], first["created"]);
    assert_ne!(latest["id"], second["id"]);
    let collection_id = latest["id"].clone();

    let (_, list) = send(
        &app,
        "POST",
        "/api/artifacts/latest/filter",
        Some(json!({"sort": "KEY_ASC"})),
    )
    .await;
    assert_eq!(field(&list, "key"), [&json!("other"), &json!("report")]);
    let (_, n) = send(&app, "POST", "/api/artifacts/latest/count", None).await;
    assert_eq!(n, json!(2));

    // Deleting the latest moves the collection back to the one before; its id stays.
    let (status, _) = send(
        &app,
        "DELETE",
        &format!("/api/artifacts/{}", id_of(&second)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, latest) = send(&app, "GET", "/api/artifacts/report/latest", None).await;
    assert_eq!(latest["latest_id"], first["id"]);
    assert_eq!(latest["id"], collection_id);
}

/// The run-side criteria: `flow_run_id`, `task_run_id`, `key.any_`, the related `flow_runs`,
/// `flows` and `deployments` filters, and `latest_id` on collections.
#[tokio::test]
async fn run_side_criteria_and_related_filters() {
    let app = app();
    let flow = crate::support::create_flow(&app).await;
    let (status, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": flow["id"], "state": {"type": "RUNNING"}, "tags": ["nightly"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let task = "6a4b0b5e-4b1c-4a58-9a43-1d2a1b6a0c11";
    let of_run = create(&app, json!({"key": "k1", "flow_run_id": run["id"]})).await;
    let of_task = create(&app, json!({"key": "k2", "task_run_id": task})).await;
    let loose = create(&app, json!({"key": "k3"})).await;

    for (path, body, expected) in [
        (
            "/api/artifacts/filter",
            json!({"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}),
            vec![&of_run["id"]],
        ),
        (
            "/api/artifacts/filter",
            json!({"artifacts": {"task_run_id": {"any_": [task]}}}),
            vec![&of_task["id"]],
        ),
        (
            "/api/artifacts/filter",
            json!({"artifacts": {"key": {"any_": ["k3", "nope"]}}}),
            vec![&loose["id"]],
        ),
        (
            "/api/artifacts/filter",
            json!({"flow_runs": {"tags": {"all_": ["nightly"]}}}),
            vec![&of_run["id"]],
        ),
        (
            "/api/artifacts/filter",
            json!({"flows": {"name": {"any_": [flow["name"]]}}}),
            vec![&of_run["id"]],
        ),
        (
            "/api/artifacts/filter",
            json!({"deployments": {"id": {"any_": []}}}),
            vec![],
        ),
        (
            "/api/artifacts/latest/filter",
            json!({"artifacts": {"latest_id": {"any_": [of_task["id"]]}}}),
            vec![&of_task["id"]],
        ),
    ] {
        let (status, list) = send(&app, "POST", path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{path} {body}: {list}");
        let ids = if path.contains("latest") {
            field(&list, "latest_id")
        } else {
            field(&list, "id")
        };
        assert_eq!(ids, expected, "{path} {body}");
    }
}

#[tokio::test]
async fn filter_sort_page_count_and_bad_bodies() {
    let app = app();
    let a = create(&app, json!({"key": "a-key", "type": "markdown"})).await;
    let b = create(&app, json!({"key": "b-key", "type": "table"})).await;
    let c = create(&app, json!({"type": "result"})).await;

    for (body, expected) in [
        (json!({}), vec![&c["id"], &b["id"], &a["id"]]),
        (
            json!({"sort": "KEY_ASC"}),
            vec![&c["id"], &a["id"], &b["id"]],
        ),
        (json!({"sort": "KEY_DESC", "limit": 1}), vec![&b["id"]]),
        (json!({"sort": "CREATED_DESC", "offset": 2}), vec![&a["id"]]),
        (
            json!({"artifacts": {"key": {"exists_": false}}}),
            vec![&c["id"]],
        ),
        (
            json!({"artifacts": {"key": {"like_": "B-"}}}),
            vec![&b["id"]],
        ),
        (
            json!({"artifacts": {"type": {"not_any_": ["result"]}}, "sort": "KEY_ASC"}),
            vec![&a["id"], &b["id"]],
        ),
        (
            json!({"artifacts": {"operator": "or_", "id": {"any_": [a["id"]]},
            "type": {"any_": ["result"]}}, "sort": "KEY_ASC"}),
            vec![&c["id"], &a["id"]],
        ),
        (json!({"flow_runs": {"id": {"any_": []}}}), vec![]),
    ] {
        let mut expected = expected;
        if body.get("sort").is_none()
            && body.get("artifacts").is_none()
            && body.get("flow_runs").is_none()
        {
            // ID_DESC: by id, descending.
            expected.sort_by(|x, y| y.as_str().cmp(&x.as_str()));
        }
        let (status, list) = send(&app, "POST", "/api/artifacts/filter", Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}: {list}");
        assert_eq!(field(&list, "id"), expected, "{body}");
    }
    let (_, n) = send(
        &app,
        "POST",
        "/api/artifacts/count",
        Some(json!({"artifacts": {"key": {"exists_": true}}})),
    )
    .await;
    assert_eq!(n, json!(2));

    for (path, body, expected) in [
        (
            "/api/artifacts/",
            json!({"key": "Bad Key"}),
            "key: Artifact key must only contain lowercase letters, numbers, and dashes (got \"Bad Key\")",
        ),
        (
            "/api/artifacts/",
            json!({"metadata_": {"n": 1}}),
            "metadata_.n: 1 is not a string (metadata values are strings)",
        ),
        (
            "/api/artifacts/filter",
            json!({"task_runs": {}}),
            "task_runs: filtering by task runs is not supported by pushpool yet",
        ),
        (
            "/api/artifacts/filter",
            json!({"artifacts": {"latest_id": {"any_": []}}}),
            "artifacts.latest_id: unknown field `latest_id` here (this route's filter has `id`)",
        ),
        (
            "/api/artifacts/count",
            json!({"limit": 1}),
            "limit: this route does not take this key (Prefect's body for it has no such field)",
        ),
        (
            "/api/artifacts/filter",
            json!({"limit": 201}),
            "Invalid limit: must be less than or equal to 200.",
        ),
    ] {
        let (status, answer) = send(&app, "POST", path, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {answer}"
        );
        assert_eq!(detail(&answer), expected, "{path} {body}");
    }
}
