//! `/events/…`, as Prefect 3.9.1's server answers them (`prefect/server/api/events.py`):
//! the state change event of every accepted flow run transition (the client's proposals
//! too), read back by `/events/filter`, paged by `/events/filter/next`, counted by
//! `/events/count-by/{countable}`; bad filters are a 422 naming the key.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, create_flow, detail, send};

/// A flow run created PENDING by the client, then proposed RUNNING: its id.
async fn run_moved_to_running(app: &Router) -> String {
    let flow = create_flow(app).await;
    let (status, run) = send(
        app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": flow["id"], "name": "brave-otter", "tags": ["nightly"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        app,
        "POST",
        &format!("/api/flow_runs/{id}/set_state"),
        Some(json!({"state": {"type": "RUNNING", "name": "Running"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "ACCEPT");
    id
}

fn filter_of(run: &str) -> Value {
    json!({"resource": {"id": [format!("prefect.flow-run.{run}")]}, "order": "ASC"})
}

#[tokio::test]
async fn every_accepted_transition_has_its_event() {
    let app = app();
    let run = run_moved_to_running(&app).await;
    let (status, page) = send(
        &app,
        "POST",
        "/api/events/filter",
        Some(json!({"filter": filter_of(&run)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["next_page"], Value::Null);
    let events = page["events"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["prefect.flow-run.Pending", "prefect.flow-run.Running"]
    );
    let running = &events[1];
    let resource = &running["resource"];
    assert_eq!(
        resource["prefect.resource.id"],
        format!("prefect.flow-run.{run}")
    );
    assert_eq!(resource["prefect.resource.name"], "brave-otter");
    assert_eq!(resource["prefect.state-name"], "Running");
    assert_eq!(resource["prefect.state-type"], "RUNNING");
    assert_eq!(resource["prefect.run-count"], "1");
    assert_eq!(
        running["payload"]["intended"],
        json!({"from": "PENDING", "to": "RUNNING"})
    );
    assert_eq!(running["payload"]["initial_state"]["type"], "PENDING");
    assert_eq!(running["payload"]["validated_state"]["name"], "Running");
    assert_eq!(running["follows"], events[0]["id"]);
    let related = running["related"].as_array().unwrap();
    assert_eq!(related[0]["prefect.resource.role"], "flow");
    assert_eq!(related[0]["prefect.resource.name"], "my-flow");
    assert_eq!(
        related[1],
        json!({"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"})
    );
    // The event id is the state's id, as Prefect's.
    let (_, read) = send(&app, "GET", &format!("/api/flow_runs/{run}"), None).await;
    assert_eq!(running["id"], read["state"]["id"]);
}

#[tokio::test]
async fn pages_follow_the_next_page_link() {
    let app = app();
    let run = run_moved_to_running(&app).await;
    let (status, first) = send(
        &app,
        "POST",
        "/api/events/filter",
        Some(json!({"filter": filter_of(&run), "limit": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["total"], 2);
    assert_eq!(first["events"][0]["event"], "prefect.flow-run.Pending");
    let next = first["next_page"].as_str().unwrap();
    // The service's public API URL (`ServiceConfig::default()`), not the request's Host.
    let path = next
        .strip_prefix("http://127.0.0.1:4200")
        .unwrap_or_else(|| panic!("{next}"))
        .to_owned();
    assert!(
        path.starts_with("/api/events/filter/next?page-token="),
        "{next}"
    );
    let (status, second) = send(&app, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["events"][0]["event"], "prefect.flow-run.Running");
    assert_eq!(second["next_page"], Value::Null);
    let (status, _) = send(&app, "GET", "/api/events/filter/next?page-token=!!", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn events_are_counted_by_name_and_day() {
    let app = app();
    let run = run_moved_to_running(&app).await;
    let (status, counts) = send(
        &app,
        "POST",
        "/api/events/count-by/event",
        Some(json!({"filter": filter_of(&run)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    let got: Vec<(&str, u64)> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["value"].as_str().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("prefect.flow-run.Pending", 1),
            ("prefect.flow-run.Running", 1)
        ]
    );
    let today = chrono::Utc::now().date_naive();
    let mut by_day = filter_of(&run);
    by_day["occurred"] =
        json!({"since": format!("{today}T00:00:00Z"), "until": format!("{today}T23:59:59Z")});
    let (status, days) = send(
        &app,
        "POST",
        "/api/events/count-by/day",
        Some(json!({"filter": by_day})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{days}");
    assert_eq!(days.as_array().unwrap().len(), 1, "{days}");
    assert_eq!(days[0]["count"], 2);
    assert_eq!(days[0]["label"], format!("{today}T00:00:00+00:00"));
    let (status, body) = send(
        &app,
        "POST",
        "/api/events/count-by/week",
        Some(json!({"filter": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "countable: Input should be 'day', 'time', 'event' or 'resource' (got 'week')"
    );
}

#[tokio::test]
async fn bad_filters_are_refused_naming_the_key() {
    let app = app();
    let (status, body) = send(
        &app,
        "POST",
        "/api/events/filter",
        Some(json!({"filter": {"resource": {"idd": ["x"]}}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        detail(&body).starts_with("filter.resource.idd: unknown field `idd`"),
        "{body}"
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/events/filter",
        Some(json!({"limit": 51})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "limit: Input should be an integer from 0 to 50 (got 51)"
    );
    let (status, body) = send(
        &app,
        "POST",
        "/api/events/filter",
        Some(json!({"filter": {"text": {"query": "x".repeat(201)}}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "filter.text.query: String should have at most 200 characters"
    );
}
