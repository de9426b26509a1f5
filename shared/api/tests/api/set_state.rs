//! `POST /flow_runs/{id}/set_state` and the state history: the engine's proposals replayed
//! from e1 (SCHEDULED → RUNNING → COMPLETED), e2a (PENDING first) and e7 (FAILED with retries
//! → REJECT into AwaitingRetry → WAIT → RUNNING → FAILED), and the ABORT answers that make a
//! claim exclusive and keep a finished run finished.

use axum::Router;
use axum::http::StatusCode;
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    app, create_c1_deployment, create_flow, create_run_scheduled_at, id_of, keys, recorded,
    recorded_request, send,
};

const PENDING: (&str, &str) = (
    "e2a-propose-pending",
    "003-POST-api_flow_runs_ID_set_state.json",
);
const RUNNING: (&str, &str) = (
    "e1-engine-execute-from-scheduled",
    "030-POST-api_flow_runs_ID_set_state.json",
);
const COMPLETED: (&str, &str) = (
    "e1-engine-execute-from-scheduled",
    "042-POST-api_flow_runs_ID_set_state.json",
);
const ENGINE_PATCH: (&str, &str) = (
    "e1-engine-execute-from-scheduled",
    "023-PATCH-api_flow_runs_ID.json",
);
const E7: &str = "e7-local-failing-flow-with-retries";

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A run of the c1 deployment that is due now (scheduled one second ago).
async fn due_run(app: &Router) -> String {
    let deployment = create_c1_deployment(app).await;
    let run = create_run_scheduled_at(
        app,
        &id_of(&deployment),
        &rfc3339(Utc::now() - Duration::seconds(1)),
    )
    .await;
    id_of(&run)
}

/// A recorded `set_state` body aimed at `run_id`, with a fresh `transition_id` (the engine
/// sends a new one per proposal; a repeated one is a duplicate).
fn proposal((scenario, file): (&str, &str), run_id: &str) -> Value {
    let mut body = recorded_request(scenario, file);
    body["state"]["state_details"]["flow_run_id"] = json!(run_id);
    body["state"]["state_details"]["transition_id"] = json!(Uuid::new_v4());
    body
}

fn retyped(mut body: Value, state_type: &str, name: &str) -> Value {
    body["state"]["type"] = json!(state_type);
    body["state"]["name"] = json!(name);
    body
}

async fn propose(app: &Router, run_id: &str, body: Value) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        &format!("/api/flow_runs/{run_id}/set_state"),
        Some(body),
    )
    .await
}

async fn read_run(app: &Router, run_id: &str) -> Value {
    let (status, run) = send(app, "GET", &format!("/api/flow_runs/{run_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    run
}

/// Checks an ACCEPT answer against the recorded one and returns the written state.
fn assert_accepted(
    status: StatusCode,
    answer: &Value,
    sent: &Value,
    recorded_answer: &Value,
) -> Value {
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(keys(answer), keys(recorded_answer));
    assert_eq!(answer["status"], "ACCEPT");
    assert_eq!(answer["details"], json!({"type": "accept_details"}));
    assert_eq!(answer["details"], recorded_answer["details"]);
    let state = &answer["state"];
    assert_eq!(keys(state), keys(&recorded_answer["state"]));
    assert_eq!(
        keys(&state["state_details"]),
        keys(&recorded_answer["state"]["state_details"])
    );
    assert_eq!(state["type"], sent["state"]["type"]);
    assert_eq!(state["name"], sent["state"]["name"]);
    assert_eq!(state["message"], sent["state"]["message"]);
    assert_eq!(
        state["state_details"]["transition_id"],
        sent["state"]["state_details"]["transition_id"]
    );
    state.clone()
}

#[tokio::test]
async fn engine_path_pending_running_completed_is_accepted() {
    let app = app();
    let run_id = due_run(&app).await;

    // e2a: the submitter's claim
    let sent = proposal(PENDING, &run_id);
    let (status, answer) = propose(&app, &run_id, sent.clone()).await;
    assert_accepted(
        status,
        &answer,
        &sent,
        &recorded(PENDING.0, PENDING.1)["response_json"],
    );

    // e1: the engine's PATCH, then RUNNING and COMPLETED
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/flow_runs/{run_id}"),
        Some(recorded_request(ENGINE_PATCH.0, ENGINE_PATCH.1)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);
    for step in [RUNNING, COMPLETED] {
        let sent = proposal(step, &run_id);
        let (status, answer) = propose(&app, &run_id, sent.clone()).await;
        assert_accepted(
            status,
            &answer,
            &sent,
            &recorded(step.0, step.1)["response_json"],
        );
    }

    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "COMPLETED");
    assert_eq!(run["state_name"], "Completed");
    assert_eq!(run["run_count"], 1);
    assert_eq!(run["flow_version"], "8cdc90c1971aa48af4305d523b95c6c9");
    assert!(
        run["start_time"].is_string() && run["end_time"].is_string(),
        "{run}"
    );
    assert_eq!(run["next_scheduled_start_time"], Value::Null);

    let (status, history) = send(
        &app,
        "GET",
        &format!("/api/flow_run_states/?flow_run_id={run_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let steps: Vec<(&str, &str)> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["type"].as_str().expect("type"),
                s["name"].as_str().expect("name"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("SCHEDULED", "Scheduled"),
            ("PENDING", "Pending"),
            ("RUNNING", "Running"),
            ("COMPLETED", "Completed")
        ]
    );
    assert_eq!(history[3], run["state"]);
    let (status, one) = send(
        &app,
        "GET",
        &format!(
            "/api/flow_run_states/{}",
            history[1]["id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, history[1]);
}

#[tokio::test]
async fn engine_patch_is_204_and_stored() {
    let app = app();
    let run_id = due_run(&app).await;
    let patch = recorded(ENGINE_PATCH.0, ENGINE_PATCH.1);

    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/flow_runs/{run_id}"),
        Some(patch["request_json"].clone()),
    )
    .await;

    assert_eq!(status.as_u16(), patch["status"]);
    assert_eq!(body, Value::Null);
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["flow_version"], patch["request_json"]["flow_version"]);
    assert_eq!(run["empirical_policy"]["retries"], 0);
    assert_eq!(run["empirical_policy"]["retry_delay"], 0.0);
    assert_eq!(run["state_type"], "SCHEDULED");
}

#[tokio::test]
async fn second_pending_is_aborted() {
    let app = app();
    let run_id = due_run(&app).await;
    let (status, _) = propose(&app, &run_id, proposal(PENDING, &run_id)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, answer) = propose(&app, &run_id, proposal(PENDING, &run_id)).await;

    assert_eq!(answer["status"], "ABORT");
    assert_eq!(
        answer["details"],
        json!({"type": "abort_details",
               "reason": "This run is in a PENDING state and cannot transition to a PENDING state."})
    );
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "PENDING");
    assert_eq!(answer["state"], run["state"]);
    let (_, history) = send(
        &app,
        "GET",
        &format!("/api/flow_run_states/?flow_run_id={run_id}"),
        None,
    )
    .await;
    assert_eq!(history.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn crashed_after_completed_is_aborted_and_the_run_stays_completed() {
    let app = app();
    let run_id = due_run(&app).await;
    for step in [RUNNING, COMPLETED] {
        let (status, answer) = propose(&app, &run_id, proposal(step, &run_id)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    let crashed = retyped(proposal(COMPLETED, &run_id), "CRASHED", "Crashed");
    let (_, answer) = propose(&app, &run_id, crashed).await;

    assert_eq!(answer["status"], "ABORT");
    assert_eq!(
        answer["details"],
        json!({"type": "abort_details", "reason": "Run is already in terminal state COMPLETED."})
    );
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "COMPLETED");
    assert_eq!(run["state_name"], "Completed");
}

#[tokio::test]
async fn answers_without_a_new_state_are_200() {
    let app = app();
    let run_id = due_run(&app).await;
    assert_eq!(
        propose(&app, &run_id, proposal(PENDING, &run_id)).await.0,
        StatusCode::CREATED
    );

    let (status, answer) = propose(&app, &run_id, proposal(PENDING, &run_id)).await;
    assert_eq!(answer["status"], "ABORT");
    assert_eq!(status, StatusCode::OK);

    // a repeated transition id is REJECTed with the current state: nothing new either
    let sent = proposal(RUNNING, &run_id);
    assert_eq!(
        propose(&app, &run_id, sent.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, answer) = propose(&app, &run_id, sent).await;
    assert_eq!(answer["status"], "REJECT");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_transition_id_is_rejected_without_a_new_state() {
    let app = app();
    let run_id = due_run(&app).await;
    let sent = proposal(RUNNING, &run_id);
    let (_, first) = propose(&app, &run_id, sent.clone()).await;

    let (_, again) = propose(&app, &run_id, sent).await;

    assert_eq!(again["status"], "REJECT");
    assert_eq!(
        again["details"],
        json!({"type": "reject_details", "reason": "This run has already made this state transition."})
    );
    assert_eq!(again["state"], first["state"]);
    assert_eq!(read_run(&app, &run_id).await["run_count"], 1);
}

#[tokio::test]
async fn running_before_the_scheduled_time_waits() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let run = create_run_scheduled_at(
        &app,
        &id_of(&deployment),
        &rfc3339(Utc::now() + Duration::seconds(60)),
    )
    .await;
    let run_id = id_of(&run);
    let recorded_wait = recorded(E7, "023-POST-api_flow_runs_ID_set_state.json");

    let (status, answer) = propose(&app, &run_id, proposal(RUNNING, &run_id)).await;

    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(status.as_u16(), recorded_wait["status"]);
    assert_eq!(keys(&answer), keys(&recorded_wait["response_json"]));
    assert_eq!(answer["status"], "WAIT");
    assert_eq!(
        keys(&answer["details"]),
        keys(&recorded_wait["response_json"]["details"])
    );
    assert_eq!(answer["details"]["type"], "wait_details");
    assert_eq!(
        answer["details"]["reason"],
        "Scheduled time is in the future"
    );
    let delay = answer["details"]["delay_seconds"]
        .as_i64()
        .expect("integer delay");
    assert!((59..=60).contains(&delay), "{delay}");
    assert_eq!(answer["state"], run["state"]);
    assert_eq!(read_run(&app, &run_id).await["state_type"], "SCHEDULED");
}

#[tokio::test]
async fn failed_with_retries_left_is_rejected_into_awaiting_retry() {
    let app = app();
    let run_id = due_run(&app).await;
    // the engine's PATCH carries the flow's retry policy (e1, with retries=1 as in e7)
    let mut patch = recorded_request(ENGINE_PATCH.0, ENGINE_PATCH.1);
    patch["empirical_policy"]["retries"] = json!(1);
    patch["empirical_policy"]["retry_delay"] = json!(1);
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/flow_runs/{run_id}"),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        propose(&app, &run_id, proposal(RUNNING, &run_id)).await.0,
        StatusCode::CREATED
    );
    let recorded_reject = recorded(E7, "022-POST-api_flow_runs_ID_set_state.json");
    let sent = proposal((E7, "022-POST-api_flow_runs_ID_set_state.json"), &run_id);

    let (status, answer) = propose(&app, &run_id, sent.clone()).await;

    assert_eq!(status.as_u16(), recorded_reject["status"]);
    assert_eq!(status, StatusCode::CREATED);
    let theirs = &recorded_reject["response_json"];
    assert_eq!(answer["status"], "REJECT");
    assert_eq!(answer["details"], theirs["details"]);
    assert_eq!(
        answer["details"],
        json!({"type": "reject_details", "reason": "Retrying"})
    );
    assert_eq!(keys(&answer["state"]), keys(&theirs["state"]));
    assert_eq!(answer["state"]["type"], "SCHEDULED");
    assert_eq!(answer["state"]["name"], "AwaitingRetry");
    assert_eq!(answer["state"]["message"], theirs["state"]["message"]);
    assert!(
        answer["state"]["state_details"]["scheduled_time"].is_string(),
        "{answer}"
    );
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "SCHEDULED");
    assert_eq!(run["state_name"], "AwaitingRetry");
    assert_eq!(run["state"], answer["state"]);
}

#[tokio::test]
async fn local_failing_flow_with_retries_replays_e7() {
    let app = app();
    let flow = create_flow(&app).await;
    let create = recorded(E7, "004-POST-api_flow_runs.json");
    let mut body = create["request_json"].clone();
    body["flow_id"] = flow["id"].clone();

    // POST /flow_runs/ (a local run starts PENDING)
    let (status, run) = send(&app, "POST", "/api/flow_runs/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let theirs = &create["response_json"];
    assert_eq!(keys(&run), keys(theirs));
    for field in [
        "state_type",
        "state_name",
        "flow_version",
        "parameters",
        "context",
        "tags",
        "run_count",
        "work_pool_name",
        "deployment_id",
    ] {
        assert_eq!(run[field], theirs[field], "{field}");
    }
    assert_eq!(run["labels"], json!({"prefect.flow.id": flow["id"]}));
    assert_eq!(run["empirical_policy"]["retries"], 1);
    assert_eq!(run["empirical_policy"]["retry_delay"].as_f64(), Some(1.0));
    let run_id = id_of(&run);

    // RUNNING → ACCEPT
    let sent = proposal((E7, "005-POST-api_flow_runs_ID_set_state.json"), &run_id);
    let (status, answer) = propose(&app, &run_id, sent.clone()).await;
    assert_accepted(
        status,
        &answer,
        &sent,
        &recorded(E7, "005-POST-api_flow_runs_ID_set_state.json")["response_json"],
    );

    // FAILED → REJECT into AwaitingRetry (retry_delay 1 s)
    let (status, answer) = propose(
        &app,
        &run_id,
        proposal((E7, "022-POST-api_flow_runs_ID_set_state.json"), &run_id),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        answer["details"],
        json!({"type": "reject_details", "reason": "Retrying"})
    );
    assert_eq!(answer["state"]["name"], "AwaitingRetry");

    // RUNNING at once → WAIT 1 s, as recorded
    let wait = recorded(E7, "023-POST-api_flow_runs_ID_set_state.json");
    let (status, answer) = propose(
        &app,
        &run_id,
        proposal((E7, "023-POST-api_flow_runs_ID_set_state.json"), &run_id),
    )
    .await;
    assert_eq!(status.as_u16(), wait["status"]);
    assert_eq!(answer["status"], "WAIT");
    assert_eq!(answer["details"], wait["response_json"]["details"]);
    assert_eq!(
        answer["details"],
        json!({"type": "wait_details", "delay_seconds": 1, "reason": "Scheduled time is in the future"})
    );

    // RUNNING after the delay → ACCEPT; FAILED with no retries left → ACCEPT
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let sent = proposal((E7, "024-POST-api_flow_runs_ID_set_state.json"), &run_id);
    let (status, answer) = propose(&app, &run_id, sent.clone()).await;
    assert_accepted(
        status,
        &answer,
        &sent,
        &recorded(E7, "024-POST-api_flow_runs_ID_set_state.json")["response_json"],
    );
    let sent = proposal((E7, "033-POST-api_flow_runs_ID_set_state.json"), &run_id);
    let (status, answer) = propose(&app, &run_id, sent.clone()).await;
    assert_accepted(
        status,
        &answer,
        &sent,
        &recorded(E7, "033-POST-api_flow_runs_ID_set_state.json")["response_json"],
    );
    assert_eq!(answer["state"]["data"], sent["state"]["data"]);

    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "FAILED");
    assert_eq!(run["run_count"], 2);
    let (_, history) = send(
        &app,
        "GET",
        &format!("/api/flow_run_states/?flow_run_id={run_id}"),
        None,
    )
    .await;
    let names: Vec<&str> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["Pending", "Running", "AwaitingRetry", "Running", "Failed"]
    );
}

#[tokio::test]
async fn awaiting_retry_keeps_the_failed_result_data() {
    let app = app();
    let flow = create_flow(&app).await;
    let mut body = recorded_request(E7, "004-POST-api_flow_runs.json");
    body["flow_id"] = flow["id"].clone();
    let (_, run) = send(&app, "POST", "/api/flow_runs/", Some(body)).await;
    let run_id = id_of(&run);
    propose(
        &app,
        &run_id,
        proposal((E7, "005-POST-api_flow_runs_ID_set_state.json"), &run_id),
    )
    .await;
    let recorded_reject = recorded(E7, "022-POST-api_flow_runs_ID_set_state.json");

    let (_, answer) = propose(
        &app,
        &run_id,
        proposal((E7, "022-POST-api_flow_runs_ID_set_state.json"), &run_id),
    )
    .await;

    assert_eq!(answer["state"]["name"], "AwaitingRetry");
    assert_eq!(
        answer["state"]["data"],
        recorded_reject["response_json"]["state"]["data"]
    );
}

#[tokio::test]
async fn pending_copies_the_scheduled_time() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let at = rfc3339(Utc::now() - Duration::seconds(1));
    let run = create_run_scheduled_at(&app, &id_of(&deployment), &at).await;
    let run_id = id_of(&run);

    let (_, answer) = propose(&app, &run_id, proposal(PENDING, &run_id)).await;

    assert_eq!(answer["status"], "ACCEPT");
    assert_eq!(
        answer["state"]["state_details"]["scheduled_time"],
        run["state"]["state_details"]["scheduled_time"]
    );
}

#[tokio::test]
async fn set_state_of_missing_run_is_404() {
    let app = app();
    let run_id = Uuid::new_v4().to_string();

    let (status, body) = propose(&app, &run_id, proposal(RUNNING, &run_id)).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "Flow run not found"}));
}

#[tokio::test]
async fn unknown_state_type_is_422() {
    let app = app();
    let run_id = due_run(&app).await;

    let (status, body) = propose(
        &app,
        &run_id,
        retyped(proposal(RUNNING, &run_id), "DONE", "Done"),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("state.type")),
        "{body}"
    );
}

/// `EnsureOnlyScheduledFlowsMarkedLate`: `SCHEDULED/Late` on a PENDING run, and a second
/// `Late`, are REJECTed with the current state (200, nothing written).
#[tokio::test]
async fn late_is_only_for_scheduled_runs_and_only_once() {
    let app = app();
    let run_id = due_run(&app).await;
    let (status, answer) = propose(&app, &run_id, late(&run_id)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "ACCEPT");
    assert_eq!(answer["state"]["name"], "Late");

    let (status, answer) = propose(&app, &run_id, late(&run_id)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "REJECT");
    assert_eq!(
        answer["details"],
        json!({"type": "reject_details", "reason": "This flow run is already marked late."})
    );
    assert_eq!(answer["state"]["name"], "Late");

    assert_eq!(
        propose(&app, &run_id, proposal(PENDING, &run_id)).await.0,
        StatusCode::CREATED
    );
    let (status, answer) = propose(&app, &run_id, late(&run_id)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "REJECT");
    assert_eq!(
        answer["details"],
        json!({"type": "reject_details", "reason": "Only scheduled flows can be marked late."})
    );
    assert_eq!(answer["state"]["type"], "PENDING");
    let history = send(
        &app,
        "GET",
        &format!("/api/flow_run_states/?flow_run_id={run_id}"),
        None,
    )
    .await
    .1;
    let names: Vec<&str> = history
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Scheduled", "Late", "Pending"]);
}

/// `BypassCancellingFlowRunsWithNoInfra`: CANCELLING a SCHEDULED run without infrastructure
/// is REJECTed into CANCELLED (201, the new state returned).
#[tokio::test]
async fn cancelling_a_scheduled_run_without_infrastructure_writes_cancelled() {
    let app = app();
    let run_id = due_run(&app).await;
    let (status, answer) = propose(
        &app,
        &run_id,
        json!({"state": {"type": "CANCELLING", "name": "Cancelling"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "REJECT");
    assert_eq!(
        answer["details"],
        json!({"type": "reject_details",
            "reason": "Scheduled flow run has no infrastructure to terminate."})
    );
    assert_eq!(answer["state"]["type"], "CANCELLED");
    assert_eq!(answer["state"]["name"], "Cancelled");
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "CANCELLED");
}

/// pushpool's addition to `HandleFlowTerminalStateTransitions`: the engine's RUNNING on a
/// CANCELLED run is ABORTed, and the run stays CANCELLED.
#[tokio::test]
async fn a_cancelled_run_refuses_the_engines_running() {
    let app = app();
    let run_id = due_run(&app).await;
    propose(
        &app,
        &run_id,
        json!({"state": {"type": "CANCELLING", "name": "Cancelling"}}),
    )
    .await;
    let (status, answer) = propose(&app, &run_id, proposal(RUNNING, &run_id)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "ABORT");
    assert_eq!(
        answer["details"],
        json!({"type": "abort_details", "reason": "Run is already in terminal state CANCELLED."})
    );
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_type"], "CANCELLED");
    assert_eq!(run["run_count"], 0);
}

/// `MinimalFlowPolicy`: a forced `SCHEDULED/AwaitingRetry` on a finished run (the UI's
/// Retry) is written; the end time is cleared (`SetEndTime`).
#[tokio::test]
async fn a_forced_retry_of_a_finished_run_is_accepted() {
    let app = app();
    let run_id = due_run(&app).await;
    for step in [RUNNING, COMPLETED] {
        assert_eq!(
            propose(&app, &run_id, proposal(step, &run_id)).await.0,
            StatusCode::CREATED
        );
    }
    assert!(read_run(&app, &run_id).await["end_time"].is_string());
    let (status, answer) = propose(
        &app,
        &run_id,
        json!({"state": {"type": "SCHEDULED", "name": "AwaitingRetry",
            "message": "Retry from the UI"}, "force": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "ACCEPT");
    let run = read_run(&app, &run_id).await;
    assert_eq!(run["state_name"], "AwaitingRetry");
    assert_eq!(run["end_time"], Value::Null);
}

/// A `SCHEDULED/Late` proposal, as Prefect's late-runs service makes it.
fn late(run_id: &str) -> Value {
    json!({"state": {"type": "SCHEDULED", "name": "Late",
        "state_details": {"flow_run_id": run_id,
            "scheduled_time": rfc3339(Utc::now() - Duration::seconds(1))}}})
}
