//! `/logs/…`, as Prefect 3.9.1's server answers them (`prefect/server/api/logs.py`): lines
//! stored from the engine's batches and read back by every `LogFilter` criterion, both
//! sorts, `limit`/`offset`; and pushpool's size limits.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, detail, send, send_raw};

const RUN_A: &str = "e1abfe3a-b8ff-40fe-a279-d5d095ac9f6e";
const RUN_B: &str = "0b0b0b0b-0000-4000-8000-000000000000";
const TASK: &str = "7a5c0000-0000-4000-8000-000000000001";

fn line(run: Option<&str>, task: Option<&str>, level: i64, ts: &str, message: &str) -> Value {
    json!({
        "name": if task.is_some() { "prefect.task_runs" } else { "prefect.flow_runs" },
        "level": level, "message": message, "timestamp": ts,
        "flow_run_id": run, "task_run_id": task,
    })
}

/// Six lines over two runs, a task run and no run; the engine's batches come in any order.
async fn seeded() -> Router {
    let app = app();
    let first = json!([
        line(
            Some(RUN_A),
            None,
            20,
            "2026-11-29T10:29:12.000002Z",
            "Beginning flow run"
        ),
        line(
            Some(RUN_A),
            None,
            10,
            "2026-11-29T10:29:11.5Z",
            "debug detail"
        ),
        line(
            Some(RUN_A),
            Some(TASK),
            40,
            "2026-11-29T10:29:15.25+00:00",
            "Task failed: Connection timeout"
        ),
    ]);
    let second = json!([
        line(
            Some(RUN_A),
            None,
            20,
            "2026-11-29T10:29:16Z",
            "Finished in state Failed()"
        ),
        line(Some(RUN_B), None, 30, "2026-11-29T10:29:13Z", "b warns"),
        line(None, None, 20, "2026-11-29T10:29:14Z", "no flow run"),
    ]);
    for batch in [first, second] {
        let (status, body) = send(&app, "POST", "/api/logs/", Some(batch)).await;
        assert_eq!((status, body), (StatusCode::CREATED, Value::Null));
    }
    app
}

async fn filter(app: &Router, body: Value) -> Vec<String> {
    let (status, logs) = send(app, "POST", "/api/logs/filter", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    logs.as_array()
        .expect("a list")
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lines_are_stored_and_read_back_as_prefects_log() {
    let app = seeded().await;
    let (status, logs) = send(
        &app,
        "POST",
        "/api/logs/filter",
        Some(json!({"logs": {"flow_run_id": {"any_": [RUN_A]}}, "limit": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let log = &logs[0];
    let keys: Vec<&str> = log
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
            "name",
            "level",
            "message",
            "timestamp",
            "flow_run_id",
            "task_run_id"
        ]
    );
    assert_eq!(log["name"], "prefect.flow_runs");
    assert_eq!(log["level"], 10);
    assert_eq!(log["message"], "debug detail");
    assert_eq!(log["timestamp"], "2026-11-29T10:29:11.500Z");
    assert_eq!(log["flow_run_id"], RUN_A);
    assert_eq!(log["task_run_id"], Value::Null);
    assert_eq!(log["created"], log["updated"]);
}

#[tokio::test]
async fn every_criterion_sort_and_page_selects_as_prefect_does() {
    let app = seeded().await;
    let a = json!({"flow_run_id": {"any_": [RUN_A]}});
    assert_eq!(
        filter(&app, json!({"logs": a})).await,
        [
            "debug detail",
            "Beginning flow run",
            "Task failed: Connection timeout",
            "Finished in state Failed()"
        ]
    );
    assert_eq!(
        filter(
            &app,
            json!({"logs": a, "sort": "TIMESTAMP_DESC", "offset": 1, "limit": 2})
        )
        .await,
        ["Task failed: Connection timeout", "Beginning flow run"]
    );
    assert_eq!(
        filter(&app, json!({})).await,
        [
            "debug detail",
            "Beginning flow run",
            "b warns",
            "no flow run",
            "Task failed: Connection timeout",
            "Finished in state Failed()"
        ]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"level": {"ge_": 30}}})).await,
        ["b warns", "Task failed: Connection timeout"]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"level": {"ge_": 20, "le_": 20}, "flow_run_id": {"any_": [RUN_A, RUN_B]}}})).await,
        ["Beginning flow run", "Finished in state Failed()"]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"timestamp": {"after_": "2026-11-29T10:29:13Z", "before_": "2026-11-29T10:29:15.25Z"}}})).await,
        ["b warns", "no flow run", "Task failed: Connection timeout"]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"task_run_id": {"any_": [TASK]}}})).await,
        ["Task failed: Connection timeout"]
    );
    assert_eq!(
        filter(
            &app,
            json!({"logs": {"task_run_id": {"is_null_": true}, "flow_run_id": {"any_": [RUN_A]}}})
        )
        .await,
        [
            "debug detail",
            "Beginning flow run",
            "Finished in state Failed()"
        ]
    );
    assert_eq!(
        filter(
            &app,
            json!({"logs": {"text": {"query": "TIMEOUT failed -debug"}}})
        )
        .await,
        [
            "Task failed: Connection timeout",
            "Finished in state Failed()"
        ]
    );
    assert_eq!(
        filter(
            &app,
            json!({"logs": {"text": {"query": "\"connection timeout\" +task_runs"}}})
        )
        .await,
        ["Task failed: Connection timeout"]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"operator": "or_", "level": {"ge_": 40}, "flow_run_id": {"any_": [RUN_B]}}})).await,
        ["b warns", "Task failed: Connection timeout"]
    );
    assert_eq!(
        filter(&app, json!({"logs": {"flow_run_id": {"any_": []}}})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filter(&app, json!({"limit": 0})).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn unknown_criteria_sorts_and_bad_pages_are_422_naming_them() {
    let app = seeded().await;
    for (body, want) in [
        (
            json!({"logs": {"name": {"any_": ["x"]}}}),
            "logs.name: unknown field `name`, expected one of `operator`, `level`, `timestamp`, `flow_run_id`, `task_run_id`, `text`",
        ),
        (
            json!({"logs": {"task_run_id": {"not_any_": []}}}),
            "logs.task_run_id.not_any_: unknown field `not_any_`, expected `any_` or `is_null_`",
        ),
        (
            json!({"sort": "LEVEL_DESC"}),
            "sort: unknown variant `LEVEL_DESC`, expected `TIMESTAMP_ASC` or `TIMESTAMP_DESC`",
        ),
        (
            json!({"limit": 201}),
            "Invalid limit: must be less than or equal to 200.",
        ),
        (
            json!({"offset": -1}),
            "offset: must be greater than or equal to 0",
        ),
        (
            json!({"flows": {"id": {"any_": []}}}),
            "flows: not a key of this route's body (Prefect's server would ignore it; pushpool refuses it)",
        ),
        (
            json!({"logs": {"text": {"query": "x".repeat(201)}}}),
            "logs.text.query: String should have at most 200 characters (got 201)",
        ),
    ] {
        let (status, body) = send(&app, "POST", "/api/logs/filter", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&body), want);
    }
}

#[tokio::test]
async fn a_batch_with_an_unknown_key_or_an_overlong_line_stores_nothing() {
    let app = app();
    let mut extra = line(Some(RUN_A), None, 20, "2026-11-29T10:29:12Z", "x");
    extra["worker_id"] = json!("w");
    let (status, body) = send(&app, "POST", "/api/logs/", Some(json!([extra]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "[0].worker_id: unknown field `worker_id`, expected one of `name`, `level`, `message`, \
         `timestamp`, `flow_run_id`, `task_run_id`"
    );

    let long = "é".repeat(25_001);
    let batch = json!([
        line(Some(RUN_A), None, 20, "2026-11-29T10:29:12Z", "kept? no"),
        line(Some(RUN_A), None, 20, "2026-11-29T10:29:13Z", &long),
    ]);
    let (status, body) = send(&app, "POST", "/api/logs/", Some(batch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "[1].message: the message is 25001 characters, over the 25000 pushpool stores per log \
         line; set PREFECT_LOGGING_TO_API_MAX_LOG_SIZE=25000 to have the client cut long lines. \
         Nothing of the batch was stored."
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/logs/",
        Some(json!([{"name": "n", "level": 20, "message": "m"}])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), "[0]: missing field `timestamp`");
    assert_eq!(filter(&app, json!({})).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_batch_over_5_mib_is_413_and_one_of_4_mb_is_stored() {
    let app = app();
    // 4,000,000 bytes of lines: the client's default batch size.
    let message = "x".repeat(20_000);
    let lines: Vec<Value> = (0..200)
        .map(|i| {
            line(
                Some(RUN_A),
                None,
                20,
                &format!("2026-11-29T10:29:{:02}Z", i % 60),
                &message,
            )
        })
        .collect();
    let body = serde_json::to_vec(&lines).unwrap();
    assert!(
        body.len() > 4_000_000 && body.len() < 5 * 1024 * 1024,
        "{}",
        body.len()
    );
    let (status, _) = send_raw(&app, "POST", "/api/logs/", body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, stored) = send(
        &app,
        "POST",
        "/api/logs/filter",
        Some(json!({"limit": 200})),
    )
    .await;
    assert_eq!(stored.as_array().unwrap().len(), 200);

    let lines: Vec<Value> = (0..265)
        .map(|_| line(Some(RUN_A), None, 20, "2026-11-29T10:29:12Z", &message))
        .collect();
    let body = serde_json::to_vec(&lines).unwrap();
    assert!(body.len() > 5 * 1024 * 1024);
    let (status, body) = send_raw(&app, "POST", "/api/logs/", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        detail(&body),
        "A log batch is at most 5242880 bytes (5 MiB) of JSON; send fewer lines per request \
         (PREFECT_LOGGING_TO_API_BATCH_SIZE). Nothing was stored."
    );
}

/// Every criterion, sort and `LogCreate` field Prefect's OpenAPI document defines
/// (`fixtures/openapi-logs.json`) is one the tests above send and pushpool honours: a new one
/// in a later Prefect fails here until it is handled.
#[test]
fn every_prefect_log_criterion_sort_and_field_is_covered() {
    let doc: Value = serde_json::from_str(include_str!("../fixtures/openapi-logs.json")).unwrap();
    let schemas = &doc["components"]["schemas"];
    fn schema_ref(v: &Value) -> Option<String> {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            return Some(r.rsplit('/').next().unwrap().to_owned());
        }
        v.get("anyOf")?.as_array()?.iter().find_map(schema_ref)
    }
    fn walk(schemas: &Value, name: &str, prefix: &str, out: &mut Vec<String>) {
        for (key, prop) in schemas[name]["properties"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match schema_ref(prop) {
                Some(r) if schemas[&r]["properties"].is_object() => walk(schemas, &r, &path, out),
                _ => out.push(path),
            }
        }
    }
    let mut leaves = Vec::new();
    walk(schemas, "Body_read_logs_logs_filter_post", "", &mut leaves);
    leaves.sort();
    assert_eq!(
        leaves,
        [
            "limit",
            "logs.flow_run_id.any_",
            "logs.level.ge_",
            "logs.level.le_",
            "logs.operator",
            "logs.task_run_id.any_",
            "logs.task_run_id.is_null_",
            "logs.text.query",
            "logs.timestamp.after_",
            "logs.timestamp.before_",
            "offset",
            "sort",
        ]
    );
    assert_eq!(
        schemas["LogSort"]["enum"],
        json!(["TIMESTAMP_ASC", "TIMESTAMP_DESC"])
    );
    assert_eq!(schemas["Operator"]["enum"], json!(["and_", "or_"]));
    let mut fields: Vec<&str> = schemas["LogCreate"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "flow_run_id",
            "level",
            "message",
            "name",
            "task_run_id",
            "timestamp"
        ]
    );
}
