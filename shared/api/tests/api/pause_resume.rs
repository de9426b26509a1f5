//! Pause and resume (`POST /flow_runs/{id}/resume`) and flow run inputs
//! (`/flow_runs/{id}/input...`): the proposals `pause_flow_run` / `suspend_flow_run` send,
//! the inputs `wait_for_input` stores, and Prefect 3.9.1's answers (`api/flow_runs.py`,
//! `core_policy.py`'s `HandlePausingFlows` and `HandleResumingPausedFlows`).

use axum::Router;
use axum::http::StatusCode;
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{app, create_c1_deployment, create_run_scheduled_at, detail, id_of, send};

const SCHEMA: &str = r#"{"title": "Answer", "type": "object", "properties": {"name": {"title": "Name", "type": "string"}}, "required": ["name"]}"#;

/// A run of the c1 deployment, RUNNING.
async fn running_run(app: &Router) -> String {
    let deployment = create_c1_deployment(app).await;
    let at = (Utc::now() - Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Micros, true);
    let run = id_of(&create_run_scheduled_at(app, &id_of(&deployment), &at).await);
    let (status, body) = propose(app, &run, json!({"type": "RUNNING", "name": "Running"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    run
}

async fn propose(app: &Router, run: &str, state: Value) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        &format!("/api/flow_runs/{run}/set_state"),
        Some(json!({"state": state})),
    )
    .await
}

/// What `pause_flow_run(wait_for_input=...)` (`name` "Paused") or `suspend_flow_run`
/// ("Suspended", `pause_reschedule`) proposes, with pause key "1".
fn pause(name: &str, with_input: bool) -> Value {
    let base = format!("{}-1", name.to_lowercase());
    let keyset = with_input.then(|| {
        json!({"description": format!("{base}-description"), "response": format!("{base}-response"),
               "schema": format!("{base}-schema")})
    });
    json!({"type": "PAUSED", "name": name, "state_details": {
        "pause_key": "1", "pause_reschedule": name == "Suspended",
        "pause_timeout": (Utc::now() + Duration::hours(1)).to_rfc3339(),
        "run_input_keyset": keyset}})
}

async fn resume(app: &Router, run: &str, body: Option<Value>) -> (StatusCode, Value) {
    send(app, "POST", &format!("/api/flow_runs/{run}/resume"), body).await
}

async fn read_run(app: &Router, run: &str) -> Value {
    send(app, "GET", &format!("/api/flow_runs/{run}"), None)
        .await
        .1
}

async fn save_schema(app: &Router, run: &str, key: &str) {
    let (status, body) = send(
        app,
        "POST",
        &format!("/api/flow_runs/{run}/input"),
        Some(json!({"key": key, "value": SCHEMA})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::CREATED, Value::Null));
}

#[tokio::test]
async fn resume_refuses_runs_that_are_not_paused() {
    let app = app();
    let run = running_run(&app).await;
    assert_eq!(
        resume(&app, &run, None).await,
        (
            StatusCode::OK,
            json!({"state": null, "status": "ABORT", "details": {"type": "abort_details",
                   "reason": "Cannot resume a flow run that is not paused."}})
        )
    );
    let (status, body) = resume(&app, &Uuid::new_v4().to_string(), None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Flow run not found")
    );
}

#[tokio::test]
async fn a_paused_run_resumes_running_with_the_input_it_waits_for() {
    let app = app();
    let run = running_run(&app).await;
    let (status, body) = propose(&app, &run, pause("Paused", true)).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::CREATED, &json!("ACCEPT")),
        "{body}"
    );
    let paused = read_run(&app, &run).await;
    assert_eq!(paused["state"]["type"], "PAUSED");
    assert_eq!(paused["empirical_policy"]["pause_keys"], json!(["1"]));

    // No schema stored yet.
    let (status, body) = resume(&app, &run, Some(json!({"run_input": {"name": "Ada"}}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "REJECT");
    assert_eq!(
        body["details"],
        json!({"type": "abort_details", "reason": "Run input schema not found."})
    );
    assert_eq!(body["state"]["type"], "PAUSED");

    save_schema(&app, &run, "paused-1-schema").await;
    for (input, reason) in [
        (
            None,
            "Reason: Validation failed. Failure reason: 'name' is a required property",
        ),
        (
            Some(json!({"name": 5})),
            "Reason: Validation failed for field 'name'. Failure reason: 5 is not of type 'string'",
        ),
    ] {
        let body = input.map(|i| json!({"run_input": i}));
        let (status, answer) = resume(&app, &run, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["status"], "REJECT");
        assert_eq!(
            answer["details"],
            json!({"type": "abort_details", "reason": reason})
        );
        assert_eq!(answer["state"]["type"], "PAUSED");
    }
    // Nothing was stored by the refused resumes.
    let (status, _) = send(
        &app,
        "GET",
        &format!("/api/flow_runs/{run}/input/paused-1-response"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = resume(&app, &run, Some(json!({"run_input": {"name": "Ada"}}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "ACCEPT");
    assert_eq!(body["details"], json!({"type": "accept_details"}));
    assert_eq!(
        (&body["state"]["type"], &body["state"]["name"]),
        (&json!("RUNNING"), &json!("Running"))
    );
    assert_eq!(
        send(
            &app,
            "GET",
            &format!("/api/flow_runs/{run}/input/paused-1-response"),
            None
        )
        .await,
        (StatusCode::OK, json!({"name": "Ada"}))
    );
    let resumed = read_run(&app, &run).await;
    assert_eq!(resumed["empirical_policy"]["resuming"], true);
    assert_eq!(resumed["run_count"], 2);

    // The same pause fires no more: the flow gets its RUNNING state back.
    let (status, body) = propose(&app, &run, pause("Paused", true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "REJECT");
    assert_eq!(
        body["details"],
        json!({"type": "reject_details", "reason": "This pause has already fired."})
    );
    assert_eq!(body["state"]["type"], "RUNNING");
}

#[tokio::test]
async fn a_suspended_run_resumes_scheduled_to_be_submitted_again() {
    let app = app();
    let run = running_run(&app).await;
    let (status, body) = propose(&app, &run, pause("Suspended", false)).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::CREATED, &json!("ACCEPT")),
        "{body}"
    );
    let before = Utc::now();
    let (status, body) = resume(&app, &run, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "ACCEPT");
    assert_eq!(
        (&body["state"]["type"], &body["state"]["name"]),
        (&json!("SCHEDULED"), &json!("Resuming"))
    );
    let at: chrono::DateTime<Utc> =
        serde_json::from_value(body["state"]["state_details"]["scheduled_time"].clone()).unwrap();
    assert!(at >= before && at <= Utc::now(), "{at}");
    let resumed = read_run(&app, &run).await;
    assert_eq!(resumed["empirical_policy"]["resuming"], true);
    assert_eq!(resumed["empirical_policy"]["pause_keys"], json!(["1"]));

    // Suspending a run of no deployment is aborted.
    let (_, flow_run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({
        "flow_id": resumed["flow_id"], "state": {"type": "RUNNING", "name": "Running"}})),
    )
    .await;
    let (status, body) = propose(&app, &id_of(&flow_run), pause("Suspended", false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["details"],
        json!({"type": "abort_details", "reason": "Cannot suspend flows without a deployment."})
    );
}

#[tokio::test]
async fn a_new_pause_forgets_an_earlier_attempts_answer() {
    let app = app();
    let run = running_run(&app).await;
    let (status, _) = send(
        &app,
        "POST",
        &format!("/api/flow_runs/{run}/input"),
        Some(json!({"key": "paused-1-response", "value": "{\"name\": \"old\"}"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = propose(&app, &run, pause("Paused", true)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send(
        &app,
        "GET",
        &format!("/api/flow_runs/{run}/input/paused-1-response"),
        None,
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Flow run input not found")
    );
}

#[tokio::test]
async fn flow_run_input_routes() {
    let app = app();
    let run = running_run(&app).await;
    let base = format!("/api/flow_runs/{run}/input");
    let create = |key: &str, value: &str, sender: Option<&str>| json!({"key": key, "value": value, "sender": sender});
    for (key, value, sender) in [
        ("b-1", "one", None),
        ("a-1", "\"two\"", Some("flow-run/x")),
        ("a-2", "3", None),
    ] {
        let answer = send(&app, "POST", &base, Some(create(key, value, sender))).await;
        assert_eq!(answer, (StatusCode::CREATED, Value::Null));
    }
    let (status, body) = send(&app, "POST", &base, Some(create("a-1", "again", None))).await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::CONFLICT,
            "A flow run input with this key already exists."
        )
    );
    let (status, body) = send(&app, "POST", &base, Some(create("A_1", "x", None))).await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "key: value must only contain lowercase letters, numbers, and dashes."
        )
    );
    let unknown = format!("/api/flow_runs/{}/input", Uuid::new_v4());
    let (status, body) = send(&app, "POST", &unknown, Some(create("a", "x", None))).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Flow run not found")
    );

    // Read: the text as stored.
    assert_eq!(
        send(&app, "GET", &format!("{base}/b-1"), None).await,
        (StatusCode::OK, json!("one"))
    );
    assert_eq!(
        send(&app, "GET", &format!("{base}/a-2"), None).await,
        (StatusCode::OK, json!(3))
    );

    // Filter: prefix, oldest first, limit 1 by default, exclude_keys.
    let filter_path = format!("{base}/filter");
    let filter = |body: Value| send(&app, "POST", &filter_path, Some(body));
    let (status, found) = filter(json!({"prefix": "a-"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            &found[0]["key"],
            &found[0]["value"],
            &found[0]["sender"],
            &found[0]["flow_run_id"]
        ),
        (
            &json!("a-1"),
            &json!("\"two\""),
            &json!("flow-run/x"),
            &json!(run)
        )
    );
    let (_, found) = filter(json!({"prefix": "a-", "limit": 10, "exclude_keys": ["a-1"]})).await;
    let keys: Vec<&Value> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(keys, vec![&json!("a-2")]);
    let (_, found) = filter(json!({"prefix": "", "limit": 10})).await;
    let keys: Vec<&Value> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(keys, vec![&json!("b-1"), &json!("a-1"), &json!("a-2")]);
    let (status, _) = filter(json!({"limit": 10})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Delete.
    assert_eq!(
        send(&app, "DELETE", &format!("{base}/a-1"), None).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (status, body) = send(&app, "DELETE", &format!("{base}/a-1"), None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Flow run input not found")
    );

    // Deleting the run deletes its inputs.
    let (status, _) = send(&app, "DELETE", &format!("/api/flow_runs/{run}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, "GET", &format!("{base}/b-1"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
