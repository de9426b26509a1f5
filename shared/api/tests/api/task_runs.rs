//! Task runs: the calls the engine makes for a subflow and for `run_deployment` inside a flow
//! (`POST /task_runs/` with the body shape of Prefect 3.9.1's client, the idempotent repeat,
//! reads, `set_state` under Prefect's task policy, the filter, and the subflow lookup
//! `POST /flow_runs/filter` by `parent_task_run_id`), with exact values.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{app, create_flow, detail, id_of, send};

/// Prefect 3.9.1's `TaskRun` response fields, in order (OpenAPI `TaskRun`).
const TASK_RUN_FIELDS: [&str; 27] = [
    "id",
    "created",
    "updated",
    "name",
    "flow_run_id",
    "task_key",
    "dynamic_key",
    "cache_key",
    "cache_expiration",
    "task_version",
    "empirical_policy",
    "tags",
    "labels",
    "state_id",
    "task_inputs",
    "state_type",
    "state_name",
    "run_count",
    "flow_run_run_count",
    "expected_start_time",
    "next_scheduled_start_time",
    "start_time",
    "end_time",
    "total_run_time",
    "estimated_run_time",
    "estimated_start_time_delta",
    "state",
];

/// A flow run of a new flow in `state` (`PENDING`, `RUNNING`, ...), optionally a subflow run.
async fn flow_run(app: &Router, state: &str, parent_task_run_id: Option<&str>) -> Value {
    let flow = create_flow(app).await;
    let (status, run) = send(
        app,
        "POST",
        "/api/flow_runs/",
        Some(json!({
            "flow_id": id_of(&flow), "state": {"type": state},
            "parent_task_run_id": parent_task_run_id, "labels": {"team": "data"}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    run
}

/// The body the Prefect 3.9.1 client sends for a subflow's tracking task run.
fn create_body(flow_run_id: &str, dynamic_key: &str) -> Value {
    json!({
        "name": format!("child-{dynamic_key}"),
        "flow_run_id": flow_run_id,
        "task_key": "child-2a1c31e8",
        "dynamic_key": dynamic_key,
        "cache_key": null,
        "cache_expiration": null,
        "task_version": null,
        "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0,
                             "retry_delay": 0, "retry_jitter_factor": null},
        "tags": ["nightly"],
        "labels": {},
        "task_inputs": {"x": [{"input_type": "parameter", "name": "x"}], "__parents__": []},
        "state": {"type": "PENDING", "name": "Pending", "message": null, "data": null,
                  "state_details": {"deferred": false, "untrackable_result": false,
                                    "pause_reschedule": false}}
    })
}

async fn create(app: &Router, body: Value) -> (StatusCode, Value) {
    send(app, "POST", "/api/task_runs/", Some(body)).await
}

async fn set_state(app: &Router, id: &str, body: Value) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        &format!("/api/task_runs/{id}/set_state"),
        Some(body),
    )
    .await
}

async fn set_flow_state(app: &Router, id: &str, state: &str) {
    let (status, body) = send(
        app,
        "POST",
        &format!("/api/flow_runs/{id}/set_state"),
        Some(json!({"state": {"type": state}, "force": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn create_answers_prefects_task_run_then_the_same_run_for_the_same_keys() {
    let app = app();
    let parent = flow_run(&app, "RUNNING", None).await;
    let parent_id = id_of(&parent);
    let (status, run) = create(&app, create_body(&parent_id, "0")).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let fields: Vec<&str> = run
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, TASK_RUN_FIELDS);
    let id = id_of(&run);
    assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(run["name"], "child-0");
    assert_eq!(run["flow_run_id"], json!(parent_id));
    assert_eq!(run["task_key"], "child-2a1c31e8");
    assert_eq!(run["dynamic_key"], "0");
    assert_eq!(
        run["empirical_policy"],
        json!({"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0,
               "retry_delay": 0, "retry_jitter_factor": null})
    );
    assert_eq!(run["tags"], json!(["nightly"]));
    assert_eq!(
        run["labels"],
        json!({"team": "data", "prefect.flow.id": parent["flow_id"],
               "prefect.flow-run.id": parent_id})
    );
    assert_eq!(
        run["task_inputs"],
        json!({"x": [{"input_type": "parameter", "name": "x"}], "__parents__": []})
    );
    assert_eq!(
        (&run["state_type"], &run["state_name"], &run["run_count"]),
        (&json!("PENDING"), &json!("Pending"), &json!(0))
    );
    assert_eq!(run["state_id"], run["state"]["id"]);
    assert_eq!(run["state"]["state_details"]["task_run_id"], json!(id));
    assert_eq!(
        run["state"]["state_details"]["flow_run_id"],
        json!(parent_id)
    );
    assert_eq!(run["expected_start_time"], run["state"]["timestamp"]);
    assert_eq!(
        (&run["start_time"], &run["end_time"], &run["total_run_time"]),
        (&Value::Null, &Value::Null, &json!(0.0))
    );

    let (status, read) = send(&app, "GET", &format!("/api/task_runs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, run);

    // The engine repeats the create (a retried request, a rerun): the first run comes back.
    let mut again = create_body(&parent_id, "0");
    again["name"] = json!("child-other");
    let (status, same) = create(&app, again).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same, run);
    let (status, other) = create(&app, create_body(&parent_id, "1")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(id_of(&other), id);
}

#[tokio::test]
async fn create_refuses_what_it_cannot_honour_naming_the_field() {
    let app = app();
    let missing = Uuid::new_v4();
    let (status, body) = create(&app, create_body(&missing.to_string(), "0")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        detail(&body),
        format!("flow_run_id: flow run {missing} not found")
    );

    let mut unknown = create_body(&missing.to_string(), "0");
    unknown["colour"] = json!("blue");
    let (status, body) = create(&app, unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        detail(&body).starts_with("Invalid request body: colour: unknown field `colour`"),
        "{body}"
    );

    let mut deferred = create_body(&missing.to_string(), "0");
    deferred["flow_run_id"] = Value::Null;
    deferred["state"] = json!({"type": "SCHEDULED", "state_details": {"deferred": true}});
    let (status, body) = create(&app, deferred).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "state.state_details.deferred: background (deferred) task runs are not supported: \
         pushpool serves no task worker subscription"
    );

    let mut long = create_body(&missing.to_string(), "0");
    long["flow_run_id"] = Value::Null;
    long["cache_key"] = json!("k".repeat(2001));
    let (status, body) = create(&app, long).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "cache_key: Cache key exceeded maximum allowed length of 2000 characters."
    );

    let (status, body) = send(&app, "GET", &format!("/api/task_runs/{missing}"), None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Task not found")
    );
    // Not a UUID: an unknown path, as on Prefect's server (`{id:uuid}` routes).
    let (status, body) = send(&app, "GET", "/api/task_runs/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Not Found");
}

#[tokio::test]
async fn set_state_follows_prefects_task_policy() {
    let app = app();
    let parent = flow_run(&app, "PENDING", None).await;
    let parent_id = id_of(&parent);
    let mut body = create_body(&parent_id, "0");
    body["empirical_policy"] = json!({"retries": 1, "retry_delay": 0});
    let (_, run) = create(&app, body).await;
    let id = id_of(&run);

    // The enclosing flow run is not RUNNING: the task may not start.
    let (status, r) = set_state(&app, &id, json!({"state": {"type": "RUNNING"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["status"], "ABORT");
    assert_eq!(
        r["details"],
        json!({"type": "abort_details",
               "reason": "The enclosing flow must be running to begin task execution."})
    );
    assert_eq!(r["state"]["type"], "PENDING");

    set_flow_state(&app, &parent_id, "RUNNING").await;
    let (status, r) = set_state(&app, &id, json!({"state": {"type": "RUNNING"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (&r["status"], &r["details"]),
        (&json!("ACCEPT"), &json!({"type": "accept_details"}))
    );
    assert_eq!(
        (&r["state"]["type"], &r["state"]["name"]),
        (&json!("RUNNING"), &json!("Running"))
    );
    assert_eq!(r["state"]["state_details"]["task_run_id"], json!(id));

    // One retry left: FAILED becomes AwaitingRetry, keeping the message.
    let (status, r) = set_state(
        &app,
        &id,
        json!({"state": {"type": "FAILED", "message": "boom"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(r["status"], "REJECT");
    assert_eq!(
        r["details"],
        json!({"type": "reject_details", "reason": "Retrying"})
    );
    assert_eq!(
        (
            &r["state"]["type"],
            &r["state"]["name"],
            &r["state"]["message"]
        ),
        (&json!("SCHEDULED"), &json!("AwaitingRetry"), &json!("boom"))
    );
    let (_, r) = set_state(&app, &id, json!({"state": {"type": "RUNNING"}})).await;
    assert_eq!(
        (&r["status"], &r["state"]["name"]),
        (&json!("ACCEPT"), &json!("Retrying"))
    );
    let (status, r) = set_state(&app, &id, json!({"state": {"type": "COMPLETED"}})).await;
    assert_eq!(
        (status, &r["status"]),
        (StatusCode::CREATED, &json!("ACCEPT"))
    );

    // A finished task run is not crashed by a late signal; force skips the rules.
    let (status, r) = set_state(&app, &id, json!({"state": {"type": "CRASHED"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&r["status"], &r["details"]["reason"], &r["state"]["type"]),
        (
            &json!("ABORT"),
            &json!("Run is already COMPLETED."),
            &json!("COMPLETED")
        )
    );
    let (status, r) = set_state(
        &app,
        &id,
        json!({"state": {"type": "CRASHED"}, "force": true}),
    )
    .await;
    assert_eq!(
        (status, &r["status"]),
        (StatusCode::CREATED, &json!("ACCEPT"))
    );

    let (_, run) = send(&app, "GET", &format!("/api/task_runs/{id}"), None).await;
    assert_eq!(
        (&run["state_type"], &run["run_count"]),
        (&json!("CRASHED"), &json!(2))
    );
    assert!(
        run["end_time"].is_string() && run["start_time"].is_string(),
        "{run}"
    );
    let (status, states) = send(
        &app,
        "GET",
        &format!("/api/task_run_states/?task_run_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = states
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "Completed",
            "Crashed"
        ]
    );
    let first = &states[0];
    let (status, one) = send(
        &app,
        "GET",
        &format!("/api/task_run_states/{}", id_of(first)),
        None,
    )
    .await;
    assert_eq!((status, &one), (StatusCode::OK, first));
    let (status, body) = send(
        &app,
        "GET",
        &format!("/api/task_run_states/{}", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Flow run state not found")
    );
    let (status, body) = set_state(
        &app,
        &Uuid::now_v7().to_string(),
        json!({"state": {"type": "RUNNING"}}),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Task run not found")
    );
}

#[tokio::test]
async fn a_subflow_run_moves_its_tracking_task_run_and_is_found_by_it() {
    let app = app();
    let parent = flow_run(&app, "RUNNING", None).await;
    let (_, task) = create(&app, create_body(&id_of(&parent), "0")).await;
    let task_id = id_of(&task);

    // The engine's lookup before it creates the subflow run: nothing yet.
    let lookup = json!({
        "flows": null,
        "flow_runs": {"parent_task_run_id": {"any_": [task_id]}},
        "task_runs": null, "deployments": null, "work_pools": null, "work_pool_queues": null,
        "sort": "EXPECTED_START_TIME_DESC", "limit": 1, "offset": 0
    });
    let (status, found) = send(&app, "POST", "/api/flow_runs/filter", Some(lookup.clone())).await;
    assert_eq!((status, &found), (StatusCode::OK, &json!([])));

    let child = flow_run(&app, "PENDING", Some(&task_id)).await;
    let child_id = id_of(&child);
    let (_, found) = send(&app, "POST", "/api/flow_runs/filter", Some(lookup.clone())).await;
    let ids: Vec<String> = found.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, std::slice::from_ref(&child_id));

    set_flow_state(&app, &child_id, "RUNNING").await;
    set_flow_state(&app, &child_id, "COMPLETED").await;
    let (_, task) = send(&app, "GET", &format!("/api/task_runs/{task_id}"), None).await;
    assert_eq!(
        (&task["state_type"], &task["state_name"]),
        (&json!("COMPLETED"), &json!("Completed"))
    );
    assert_eq!(
        task["state"]["state_details"]["child_flow_run_id"],
        json!(child_id)
    );
    assert_eq!(
        task["state"]["state_details"]["task_run_id"],
        json!(task_id)
    );
    assert_eq!(task["state"]["state_details"]["flow_run_id"], parent["id"]);
    assert_eq!(task["run_count"], 1);
    let (_, states) = send(
        &app,
        "GET",
        &format!("/api/task_run_states/?task_run_id={task_id}"),
        None,
    )
    .await;
    let types: Vec<&str> = states
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PENDING", "PENDING", "RUNNING", "COMPLETED"]);

    // An empty parent criterion (as a client dumping defaults sends it) filters nothing.
    let (status, every) = send(
        &app,
        "POST",
        "/api/flow_runs/filter",
        Some(json!({"flow_runs": {"parent_task_run_id": {"operator": "and_", "any_": null}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(every.as_array().map(Vec::len), Some(2));

    // Another criterion beside the parent task run is honoured with it.
    let mut both = lookup;
    both["flow_runs"]["name"] = json!({"any_": ["x"]});
    let (status, body) = send(&app, "POST", "/api/flow_runs/filter", Some(both)).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn filter_by_flow_run_and_id_pages_newest_first_and_names_bad_keys() {
    let app = app();
    let a = id_of(&flow_run(&app, "RUNNING", None).await);
    let b = id_of(&flow_run(&app, "RUNNING", None).await);
    let mut ids = Vec::new();
    for (fr, key) in [(&a, "0"), (&b, "0"), (&a, "1")] {
        let (_, run) = create(&app, create_body(fr, key)).await;
        ids.push(id_of(&run));
    }
    let filter = |body: Value| {
        let app = app.clone();
        async move { send(&app, "POST", "/api/task_runs/filter", Some(body)).await }
    };
    let ids_of = |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(id_of).collect() };

    let (status, all) = filter(json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids_of(&all),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    // The client's shape: unset criteria as nulls, `operator` and `is_null_` defaults.
    let (status, of_a) = filter(json!({
        "flows": null, "flow_runs": null, "deployments": null, "sort": null, "offset": 0,
        "limit": null,
        "task_runs": {"operator": "and_", "id": null, "name": null, "tags": null,
                      "state": null, "start_time": null, "end_time": null,
                      "expected_start_time": null, "subflow_runs": null,
                      "flow_run_id": {"operator": "and_", "any_": [a], "is_null_": false}}
    }))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids_of(&of_a), [ids[2].clone(), ids[0].clone()]);
    let (_, page) = filter(json!({"task_runs": {"flow_run_id": {"any_": [a]}},
                                  "limit": 1, "offset": 1}))
    .await;
    assert_eq!(ids_of(&page), [ids[0].clone()]);
    let (_, by_id) = filter(json!({"task_runs": {"id": {"any_": [ids[1]]}}})).await;
    assert_eq!(ids_of(&by_id), [ids[1].clone()]);
    // Related filters select by the task run's flow run (Prefect's join).
    let (status, of_b) = filter(json!({"flow_runs": {"id": {"any_": [b]}}})).await;
    assert_eq!(status, StatusCode::OK, "{of_b}");
    assert_eq!(ids_of(&of_b), [ids[1].clone()]);
    let (_, of_none) = filter(json!({"flows": {"name": {"any_": ["no such flow"]}}})).await;
    assert_eq!(ids_of(&of_none), Vec::<String>::new());

    for (body, message) in [
        (
            json!({"task_runs": {"name": {"all_": ["child-0"]}}}),
            "task_runs.name.all_: unknown field `all_`, expected `any_` or `like_`",
        ),
        (
            json!({"flow_runs": {"nope": {"any_": []}}}),
            "flow_runs.nope: unknown field `nope`, expected one of `operator`, `id`, `name`, `tags`, `deployment_id`, `work_queue_name`, `state`, `flow_version`, `start_time`, `end_time`, `expected_start_time`, `next_scheduled_start_time`, `parent_flow_run_id`, `parent_task_run_id`, `idempotency_key`, `created_by`",
        ),
        (
            json!({"sort": "START_TIME_ASC"}),
            "sort: unknown variant `START_TIME_ASC`, expected one of `ID_DESC`, `EXPECTED_START_TIME_ASC`, `EXPECTED_START_TIME_DESC`, `NAME_ASC`, `NAME_DESC`, `NEXT_SCHEDULED_START_TIME_ASC`, `END_TIME_DESC`, `DURATION_DESC`, `DURATION_ASC`",
        ),
        (
            json!({"limit": 201}),
            "Invalid limit: must be less than or equal to 200.",
        ),
        (
            json!({"page": 2}),
            "page: this route does not take this key (Prefect's body for it has no such field)",
        ),
        (
            json!({"task_runs": {"id": {"any_": ["nope"]}}}),
            "task_runs.id.any_[0]: UUID parsing failed: invalid character: found `n` at 0",
        ),
        (
            json!({"work_pools": {}}),
            "work_pools: not a key of this route's body (Prefect's server would ignore it; pushpool refuses it)",
        ),
    ] {
        let (status, answer) = filter(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&answer), message, "{body}");
    }
}

#[tokio::test]
async fn patch_renames_and_delete_removes() {
    let app = app();
    let parent = id_of(&flow_run(&app, "RUNNING", None).await);
    let (_, run) = create(&app, create_body(&parent, "0")).await;
    let id = id_of(&run);
    let path = format!("/api/task_runs/{id}");
    let (status, _) = send(&app, "PATCH", &path, Some(json!({"name": "renamed"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &path, None).await;
    assert_eq!(read["name"], "renamed");
    let (status, body) = send(&app, "PATCH", &path, Some(json!({"tags": ["x"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        detail(&body)
            .starts_with("Invalid request body: tags: unknown field `tags`, expected `name`"),
        "{body}"
    );
    let (status, _) = send(&app, "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, "DELETE", &path, None).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Task not found")
    );
    let other = Uuid::now_v7();
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/task_runs/{other}"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Task run not found")
    );
}

/// Deleting a flow run deletes its task runs (Prefect's foreign key cascades).
#[tokio::test]
async fn deleting_a_flow_run_deletes_its_task_runs() {
    let app = app();
    let run = flow_run(&app, "RUNNING", None).await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let (status, task) = create(&app, create_body(&run_id, "0")).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();

    let (status, _) = send(&app, "DELETE", &format!("/api/flow_runs/{run_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, "GET", &format!("/api/task_runs/{task_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = send(&app, "DELETE", &format!("/api/flow_runs/{run_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// Every `TaskRunFilter` criterion and `TaskRunSort`, `/count` (the UI's paging and sort keys
/// accepted and not used) and `/paginate` (the UI's bodies).
#[tokio::test]
async fn criteria_sorts_count_and_paginate_answer_as_prefect() {
    let app = app();
    let a = id_of(&flow_run(&app, "RUNNING", None).await);
    let mut names = Vec::new();
    for (key, name, tags, state) in [
        ("0", "add-0", json!(["math", "fast"]), "COMPLETED"),
        ("1", "Add-1", json!(["math"]), "RUNNING"),
        ("2", "mul-0", json!([]), "PENDING"),
    ] {
        let mut body = create_body(&a, key);
        body["name"] = json!(name);
        body["tags"] = tags;
        body["state"] = json!({"type": state});
        let (status, run) = create(&app, body).await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        names.push(name);
    }
    let mut orphan = create_body(&a, "9");
    orphan["flow_run_id"] = Value::Null;
    orphan["name"] = json!("orphan");
    orphan["tags"] = json!([]);
    create(&app, orphan).await;

    let names_of = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let filter = |body: Value| {
        let app = app.clone();
        async move {
            let (status, v) = send(&app, "POST", "/api/task_runs/filter", Some(body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{body}: {v}");
            v
        }
    };
    for (criteria, expected) in [
        (
            json!({"name": {"any_": ["add-0", "mul-0"]}}),
            vec!["add-0", "mul-0"],
        ),
        (json!({"name": {"like_": "ADD"}}), vec!["Add-1", "add-0"]),
        (json!({"tags": {"all_": ["math", "fast"]}}), vec!["add-0"]),
        (json!({"tags": {"is_null_": true}}), vec!["mul-0", "orphan"]),
        (
            json!({"state": {"type": {"any_": ["RUNNING", "PENDING"]}}}),
            vec!["Add-1", "mul-0", "orphan"],
        ),
        (
            json!({"state": {"name": {"any_": ["Completed"]}}}),
            vec!["add-0"],
        ),
        (
            json!({"state": {"operator": "or_", "type": {"any_": ["RUNNING"]},
                          "name": {"any_": ["Completed"]}}}),
            vec!["Add-1", "add-0"],
        ),
        (json!({"flow_run_id": {"is_null_": true}}), vec!["orphan"]),
        (
            json!({"flow_run_id": {"is_null_": false}}),
            vec!["Add-1", "add-0", "mul-0"],
        ),
        (
            json!({"operator": "or_", "name": {"any_": ["orphan"]},
                "tags": {"all_": ["fast"]}}),
            vec!["add-0", "orphan"],
        ),
        (
            json!({"start_time": {"is_null_": true}, "name": {"like_": "-"}}),
            vec!["mul-0"],
        ),
        (json!({"end_time": {"is_null_": false}}), vec!["add-0"]),
        (json!({"subflow_runs": {"exists_": true}}), vec![]),
        (
            json!({"expected_start_time": {"before_": "2000-01-01T00:00:00Z"}}),
            vec![],
        ),
    ] {
        let mut got =
            names_of(&filter(json!({"task_runs": criteria.clone(), "sort": "NAME_ASC"})).await);
        got.sort();
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(got, expected, "{criteria}");
    }
    assert_eq!(
        names_of(&filter(json!({"sort": "NAME_ASC"})).await),
        ["Add-1", "add-0", "mul-0", "orphan"]
    );
    assert_eq!(
        names_of(&filter(json!({"sort": "NAME_DESC", "limit": 2, "offset": 1})).await),
        ["mul-0", "add-0"]
    );

    let (status, count) = send(&app, "POST", "/api/task_runs/count", Some(json!({}))).await;
    assert_eq!((status, count), (StatusCode::OK, json!(4)));
    let (status, count) = send(
        &app,
        "POST",
        "/api/task_runs/count",
        Some(
            json!({"task_runs": {"tags": {"all_": ["math"]}}, "sort": "EXPECTED_START_TIME_DESC",
                    "limit": 500, "page": 3, "offset": 7}),
        ),
    )
    .await;
    assert_eq!((status, count), (StatusCode::OK, json!(2)));

    let (status, page) = send(
        &app,
        "POST",
        "/api/task_runs/paginate",
        Some(json!({"page": 1, "limit": 100, "sort": "EXPECTED_START_TIME_DESC"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["count"], 4);
    assert_eq!(page["pages"], 1);
    assert_eq!(
        (page["page"].clone(), page["limit"].clone()),
        (json!(1), json!(100))
    );
    assert_eq!(page["results"].as_array().unwrap().len(), 4);
    let (status, page) = send(
        &app,
        "POST",
        "/api/task_runs/paginate",
        Some(
            json!({"task_runs": {"expected_start_time": {"before_": "2000-01-02T00:00:00Z",
                                                          "after_": "2000-01-01T00:00:00Z"}},
                    "sort": "EXPECTED_START_TIME_DESC", "limit": 100, "page": 1}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page,
        json!({"results": [], "count": 0, "limit": 100, "pages": 0, "page": 1})
    );
    let (status, page) = send(
        &app,
        "POST",
        "/api/task_runs/paginate",
        Some(json!({"sort": "NAME_ASC", "limit": 3, "page": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names_of(&page["results"]), ["orphan"]);
    assert_eq!(
        (page["count"].clone(), page["pages"].clone()),
        (json!(4), json!(2))
    );
    let (status, answer) = send(
        &app,
        "POST",
        "/api/task_runs/paginate",
        Some(json!({"offset": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&answer),
        "offset: this route does not take this key (Prefect's body for it has no such field)"
    );
}

/// `POST /task_runs/history`: Prefect's intervals from `history_start`, the matching runs
/// grouped by state in the interval of their expected start time; a too small interval and
/// a missing key are 422s.
#[tokio::test]
async fn history_groups_runs_by_interval_and_state() {
    let app = app();
    let a = id_of(&flow_run(&app, "RUNNING", None).await);
    let mut runs = Vec::new();
    for (key, state) in [("0", "COMPLETED"), ("1", "COMPLETED"), ("2", "RUNNING")] {
        let mut body = create_body(&a, key);
        body["state"] = json!({"type": state});
        let (_, run) = create(&app, body).await;
        runs.push(run);
    }
    let expected: Vec<chrono::DateTime<chrono::Utc>> = runs
        .iter()
        .map(|r| r["expected_start_time"].as_str().unwrap().parse().unwrap())
        .collect();
    let start = *expected.iter().min().unwrap() - chrono::Duration::seconds(5);
    let max = *expected.iter().max().unwrap();
    assert!(
        max - start < chrono::Duration::seconds(10),
        "runs created within 5 s"
    );
    let at = |s: i64| {
        (start + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    let lateness = |state: &str| -> f64 {
        runs.iter()
            .filter(|r| r["state_type"] == state)
            .map(|r| r["estimated_start_time_delta"].as_f64().unwrap().max(0.0))
            .sum()
    };
    let (status, history) = send(
        &app,
        "POST",
        "/api/task_runs/history",
        Some(json!({"history_start": at(0), "history_end": at(25),
                    "history_interval_seconds": 10,
                    "task_runs": {"flow_run_id": {"any_": [a]}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let parse = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let bounds: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (parse(&i["interval_start"]), parse(&i["interval_end"])))
        .collect();
    let s = |n: i64| start + chrono::Duration::seconds(n);
    assert_eq!(bounds, [(s(0), s(10)), (s(10), s(20)), (s(20), s(30))]);
    assert_eq!(
        history[0]["states"],
        json!([
            {"state_type": "COMPLETED", "state_name": "Completed", "count_runs": 2,
             "sum_estimated_run_time": 0.0, "sum_estimated_lateness": lateness("COMPLETED")},
            {"state_type": "RUNNING", "state_name": "Running", "count_runs": 1,
             "sum_estimated_run_time": runs[2]["estimated_run_time"].as_f64().unwrap().max(0.0),
             "sum_estimated_lateness": lateness("RUNNING")},
        ])
    );
    assert_eq!(history[1]["states"], json!([]));
    assert_eq!(history[2]["states"], json!([]));

    let (status, empty) = send(
        &app,
        "POST",
        "/api/task_runs/history",
        Some(json!({"history_start": at(10), "history_end": at(10),
                    "history_interval_seconds": 10})),
    )
    .await;
    assert_eq!((status, empty), (StatusCode::OK, json!([])));
    // An interval past what a date can reach is one interval, ending at the last date.
    let (status, one) = send(
        &app,
        "POST",
        "/api/task_runs/history",
        Some(json!({"history_start": at(0), "history_end": at(25),
                    "history_interval_seconds": 1e300})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    assert_eq!(one[0]["states"].as_array().map(Vec::len), Some(2));
    for (body, message) in [
        (
            json!({"history_start": at(0), "history_end": at(25), "history_interval_seconds": 0.5}),
            "History interval must not be less than 1 second.",
        ),
        (
            json!({"history_start": at(0), "history_interval_seconds": 10}),
            "Invalid request body: missing field `history_end`",
        ),
    ] {
        let (status, answer) =
            send(&app, "POST", "/api/task_runs/history", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        // The JSON extractor's detail ends with the position of the error in the body.
        assert!(detail(&answer).starts_with(message), "{body}: {answer}");
    }
}
