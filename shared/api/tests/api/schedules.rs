//! The schedule sub-resource (`/deployments/{id}/schedules`), schedules given with a
//! deployment, and pause/resume, with Prefect 3.9.1's bodies, statuses and details.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, create_c1_deployment, detail, id_of, keys, send};

fn schedule_keys() -> std::collections::BTreeSet<String> {
    [
        "id",
        "created",
        "updated",
        "deployment_id",
        "schedule",
        "active",
        "max_scheduled_runs",
        "parameters",
        "slug",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[tokio::test]
async fn schedules_given_with_a_deployment_have_ids_and_are_listed() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let id = id_of(&deployment);
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [
            {"schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}, "slug": "weekdays", "parameters": {"x": 1}},
            {"schedule": {"interval": 3600, "anchor_date": "2024-01-01T00:00:00Z"}, "active": false}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let schedules = read["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 2);
    for s in schedules {
        assert_eq!(keys(s), schedule_keys());
        assert_eq!(s["deployment_id"], json!(id));
        assert!(s["created"].is_string() && s["updated"].is_string());
    }
    // As Prefect's `Deployment.schedules` (most recently updated first): the schedules of one
    // request are stamped in order, so the later one comes first.
    assert_eq!(
        schedules[1]["schedule"],
        json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "day_or": true})
    );
    assert_eq!(schedules[1]["slug"], "weekdays");
    assert_eq!(schedules[1]["parameters"], json!({"x": 1}));
    assert_eq!(schedules[1]["active"], true);
    assert_eq!(schedules[1]["max_scheduled_runs"], Value::Null);
    assert_eq!(
        schedules[0]["schedule"],
        json!({"interval": 3600.0, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "UTC"})
    );
    assert_eq!(schedules[0]["active"], false);
    assert_eq!(schedules[0]["slug"], Value::Null);

    let (status, listed) = send(
        &app,
        "GET",
        &format!("/api/deployments/{id}/schedules"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Not every existing schedule has a slug: a PATCH replaces them all.
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [
            {"schedule": {"cron": "0 9 * * 1-5"}, "slug": "weekdays"},
            {"schedule": {"cron": "0 12 * * *"}, "slug": "noon"}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(read["schedules"].as_array().unwrap().len(), 2);
    let by_slug = |schedules: &Value, slug: &str| {
        schedules
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slug"] == slug)
            .cloned()
            .unwrap()
    };
    let weekday_id = by_slug(&read["schedules"], "weekdays")["id"].clone();
    assert_ne!(weekday_id, schedules[0]["id"]);

    // Every schedule has a slug: a PATCH updates the one it names in place (same id, here
    // only `active`), creates the new one, and keeps the one it does not name.
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [
            {"slug": "weekdays", "active": false},
            {"schedule": {"interval": 600}, "slug": "often"}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    let after = read["schedules"].as_array().unwrap();
    let mut slugs: Vec<&str> = after.iter().map(|s| s["slug"].as_str().unwrap()).collect();
    slugs.sort_unstable();
    assert_eq!(slugs, ["noon", "often", "weekdays"]);
    let weekdays = by_slug(&read["schedules"], "weekdays");
    assert_eq!(weekdays["id"], weekday_id);
    assert_eq!(weekdays["active"], false);
    assert_eq!(
        weekdays["schedule"],
        json!({"cron": "0 9 * * 1-5", "timezone": null, "day_or": true})
    );

    // ... and refuses schedules without slugs then, with Prefect's details.
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [{"schedule": {"interval": 60}}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Please provide a slug for each schedule in your request to ensure schedules are updated correctly."
    );
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [{"slug": "new-one"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Unable to create new deployment schedules without a schedule configuration."
    );
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [
            {"slug": "a", "replaces": "noon", "schedule": {"interval": 60}},
            {"slug": "b", "replaces": "noon", "schedule": {"interval": 60}}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Multiple schedules have 'replaces' targeting the same slug: noon"
    );
    // A rename through `replaces` keeps the schedule's id.
    let noon_id = by_slug(&Value::Array(after.clone()), "noon")["id"].clone();
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [{"slug": "midday", "replaces": "noon"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(by_slug(&read["schedules"], "midday")["id"], noon_id);
}

#[tokio::test]
async fn the_schedule_sub_resource_creates_updates_and_deletes() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let id = id_of(&deployment);
    let base = format!("/api/deployments/{id}/schedules");
    let (status, created) = send(
        &app,
        "POST",
        &base,
        Some(json!([{"schedule": {"rrule": "FREQ=DAILY;BYHOUR=6", "timezone": "UTC"}, "active": true, "slug": "daily"}])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created = &created[0];
    assert_eq!(keys(created), schedule_keys());
    assert_eq!(
        created["schedule"],
        json!({"rrule": "FREQ=DAILY;BYHOUR=6", "timezone": "UTC"})
    );
    assert_eq!(created["deployment_id"], json!(id));
    let sid = id_of(created);

    let (status, body) = send(
        &app,
        "POST",
        &base,
        Some(json!([{"schedule": {"interval": 60}, "slug": "daily"}])),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "Schedule slugs must be unique within a deployment."
    );

    let (status, body) = send(
        &app,
        "POST",
        &base,
        Some(json!([{"schedule": {"cron": "0 25 * * *"}}])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        detail(&body).starts_with("schedules[0].schedule.cron: Invalid cron string"),
        "{body}"
    );

    let (status, _) = send(
        &app,
        "PATCH",
        &format!("{base}/{sid}"),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = send(&app, "GET", &base, None).await;
    assert_eq!(listed[0]["active"], false);
    assert_eq!(listed[0]["slug"], "daily");

    let missing = uuid::Uuid::new_v4();
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("{base}/{missing}"),
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Schedule not found.");
    let (status, body) = send(&app, "DELETE", &format!("{base}/{missing}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Schedule not found.");

    let (status, _) = send(&app, "DELETE", &format!("{base}/{sid}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = send(&app, "GET", &base, None).await;
    assert_eq!(listed, json!([]));

    let (status, body) = send(
        &app,
        "GET",
        &format!("/api/deployments/{}/schedules", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Deployment not found.");
}

#[tokio::test]
async fn pause_and_resume_set_paused() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let id = id_of(&deployment);
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/pause_deployment"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(read["paused"], true);
    let (status, _) = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/resume_deployment"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(read["paused"], false);
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/pause_deployment", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Deployment not found");
}

/// `POST /deployments/{id}/schedule` (Prefect's `schedule_deployment`): a backfill window
/// makes the active schedules' runs with the scheduler's idempotency keys, once; `max_runs`
/// caps and `min_runs` / `min_time` stop early; an unknown deployment is a 200 with nothing.
#[tokio::test]
async fn schedule_makes_a_windows_runs_once() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let id = id_of(&deployment);
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{id}"),
        Some(json!({"schedules": [
            {"schedule": {"interval": 3600, "anchor_date": "2024-01-01T00:00:00Z"}, "slug": "hourly", "parameters": {"x": 2}},
            {"schedule": {"interval": 60, "anchor_date": "2024-01-01T00:00:00Z"}, "active": false}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &format!("/api/deployments/{id}"), None).await;
    let hourly = read["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slug"] == "hourly")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runs = || async {
        let (status, runs) = send(
            &app,
            "POST",
            "/api/flow_runs/filter",
            Some(json!({"sort": "EXPECTED_START_TIME_ASC"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        runs.as_array().unwrap().clone()
    };
    let window = json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T05:30:00Z",
                        "min_time": 0, "min_runs": 0, "max_runs": 10});
    for _ in 0..2 {
        let answer = send(
            &app,
            "POST",
            &format!("/api/deployments/{id}/schedule"),
            Some(window.clone()),
        )
        .await;
        assert_eq!(answer, (StatusCode::OK, Value::Null));
    }
    // min_runs 0 and min_time 0: the first date satisfies both minimums.
    let made = runs().await;
    assert_eq!(made.len(), 1);
    let full = json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T05:30:00Z",
                      "min_time": 86400, "max_runs": 10});
    let answer = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/schedule"),
        Some(full),
    )
    .await;
    assert_eq!(answer, (StatusCode::OK, Value::Null));
    let made = runs().await;
    let times: Vec<&str> = made
        .iter()
        .map(|r| r["expected_start_time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2024-01-01T00:00:00Z",
            "2024-01-01T01:00:00Z",
            "2024-01-01T02:00:00Z",
            "2024-01-01T03:00:00Z",
            "2024-01-01T04:00:00Z",
            "2024-01-01T05:00:00Z"
        ]
    );
    let first = &made[0];
    assert_eq!(
        first["idempotency_key"],
        json!(format!("scheduled {id} {hourly} 2024-01-01 00:00:00+00:00"))
    );
    assert_eq!(first["tags"][0], "auto-scheduled");
    assert_eq!(first["auto_scheduled"], true);
    assert_eq!(first["parameters"]["x"], 2);
    assert_eq!(
        (&first["state"]["type"], &first["state"]["message"]),
        (&json!("SCHEDULED"), &json!("Flow run scheduled"))
    );
    assert_eq!(
        first["created_by"],
        json!({"id": hourly, "display_value": "hourly", "type": "SCHEDULE"})
    );

    // max_runs caps.
    let capped = json!({"start_time": "2024-02-01T00:00:00Z", "max_runs": 2, "min_runs": 5});
    send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/schedule"),
        Some(capped),
    )
    .await;
    assert_eq!(runs().await.len(), 8);

    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/schedule"),
        Some(json!({"max_runs": -1})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_runs: must be greater than or equal to 0"
        )
    );
    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{id}/schedule"),
        Some(json!({"min_runs": 1, "later": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let unknown = uuid::Uuid::new_v4();
    let answer = send(
        &app,
        "POST",
        &format!("/api/deployments/{unknown}/schedule"),
        None,
    )
    .await;
    assert_eq!(answer, (StatusCode::OK, Value::Null));
}
