//! Routes the web UI calls in the push-pool guide's clicks (issue 10 §3), found missing by the
//! browser test `tests/tests/ui_browser.rs`: `POST /ui/schemas/validate` (every schema form's
//! Save) and `GET /flow_runs/{id}/graph-v2` (a started flow run's page), with exact values.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{app, create_flow, detail, id_of, send};

#[tokio::test]
async fn a_block_form_is_validated_as_prefects_server_does() {
    let app = app();
    let schema = json!({
        "title": "AwsCredentials", "type": "object",
        "properties": {
            "aws_access_key_id": {"title": "AWS Access Key ID", "type": "string"},
            "region_name": {"title": "Region Name", "type": "string"},
            "max_attempts": {"type": "integer", "default": 3},
            "tags": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["aws_access_key_id"],
        "block_type_slug": "aws-credentials", "secret_fields": [], "block_schema_references": {}
    });
    // What the UI sends from the AWS Credentials form: an empty JSON field is dropped, an
    // optional field may be null.
    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/schemas/validate",
        Some(json!({"schema": schema, "values": {
            "aws_access_key_id": "AKIA", "region_name": null,
            "aws_client_parameters": {"config": {"__prefect_kind": "json"}}}})),
    )
    .await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({"errors": [], "valid": true}))
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/schemas/validate",
        Some(json!({"schema": schema, "values": {
            "max_attempts": "three",
            "tags": ["a", 2],
            "region_name": {"__prefect_kind": "json", "value": "{not json"}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        // (The order is the validator's: Prefect's lists `required` after `properties`.)
        json!({"errors": [
            {"property": "aws_access_key_id", "errors": ["'aws_access_key_id' is a required property"]},
            {"property": "max_attempts", "errors": ["'three' is not of type 'integer'"]},
            {"property": "tags", "errors": [{"index": 1, "errors": ["2 is not of type 'string'"]}]},
            {"property": "region_name", "errors": ["Invalid JSON: key must be a string at line 1 column 2"]}
        ], "valid": false})
    );

    // A workspace variable is read; an unknown one is the field's error.
    let (status, _) = send(
        &app,
        "POST",
        "/api/variables/",
        Some(json!({"name": "key_id", "value": "AKIAVAR"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = send(
        &app,
        "POST",
        "/api/ui/schemas/validate",
        Some(json!({"schema": schema, "values": {
            "aws_access_key_id": {"__prefect_kind": "workspace_variable", "variable_name": "key_id"},
            "region_name": {"__prefect_kind": "workspace_variable", "variable_name": "nope"}}})),
    )
    .await;
    assert_eq!(
        body,
        json!({"errors": [{"property": "region_name",
                           "errors": ["Variable 'nope' not found in workspace."]}],
               "valid": false})
    );

    // Not a schema: a 422 that says so.
    let (status, body) = send(
        &app,
        "POST",
        "/api/ui/schemas/validate",
        Some(json!({"schema": {"type": "no-such-type"}, "values": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).starts_with("Invalid schema: "), "{body}");
}

#[tokio::test]
async fn the_graph_of_a_flow_run_has_its_task_runs_and_states() {
    let app = app();
    let flow = create_flow(&app).await;
    let (_, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": id_of(&flow), "name": "graphed",
                    "state": {"type": "RUNNING", "timestamp": "2030-01-01T00:00:00Z"}})),
    )
    .await;
    let run_id = id_of(&run);
    let task = |name: &str, inputs: serde_json::Value| {
        json!({"name": name, "task_key": name, "dynamic_key": "0", "flow_run_id": run_id,
               "task_inputs": inputs,
               "state": {"type": "COMPLETED", "timestamp": "2030-01-01T00:00:01Z"}})
    };
    let (status, extract) = send(
        &app,
        "POST",
        "/api/task_runs/",
        Some(task("extract", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{extract}");
    let (_, load) = send(
        &app,
        "POST",
        "/api/task_runs/",
        Some(task(
            "load",
            json!({"rows": [{"input_type": "task_run", "id": id_of(&extract)}]}),
        )),
    )
    .await;
    let (status, graph) = send(
        &app,
        "GET",
        &format!("/api/flow_runs/{run_id}/graph-v2"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert_eq!(graph["root_node_ids"], json!([id_of(&extract)]));
    assert_eq!(graph["artifacts"], json!([]));
    assert_eq!(graph["end_time"], json!(null));
    let nodes = graph["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{graph}");
    let node = |id: &str| {
        nodes
            .iter()
            .find(|n| n[0] == json!(id))
            .map(|n| n[1].clone())
            .unwrap_or_else(|| panic!("no node {id} in {graph}"))
    };
    let e = node(&id_of(&extract));
    assert_eq!(
        (
            &e["kind"],
            &e["label"],
            &e["state_type"],
            &e["parents"],
            &e["children"],
            &e["encapsulating"]
        ),
        (
            &json!("task-run"),
            &json!("extract"),
            &json!("COMPLETED"),
            &json!([]),
            &json!([{"id": id_of(&load)}]),
            &json!([])
        )
    );
    let l = node(&id_of(&load));
    assert_eq!(l["parents"], json!([{"id": id_of(&extract)}]));
    assert_eq!(l["children"], json!([]));
    let states = graph["states"].as_array().unwrap();
    assert_eq!(states.len(), 1, "{graph}");
    assert_eq!(
        (&states[0]["type"], &states[0]["name"]),
        (&json!("RUNNING"), &json!("Running"))
    );

    let (status, body) = send(
        &app,
        "GET",
        "/api/flow_runs/00000000-0000-0000-0000-000000000000/graph-v2",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
