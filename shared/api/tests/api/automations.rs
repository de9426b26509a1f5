//! `/automations/…`: pushpool holds no automations and says so truthfully, with Prefect
//! 3.9.1's statuses (`prefect/server/api/automations.py`); creating one is a 422 that says
//! automations are not supported.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{app, detail, send};

#[tokio::test]
async fn filter_and_count_answer_none_for_valid_bodies() {
    let app = app();
    for body in [
        None,
        Some(json!({})),
        Some(json!({"sort": "CREATED_DESC", "limit": 200, "offset": 0, "automations": null})),
        Some(json!({"automations": {"operator": "or_", "id": {"any_": [
            "6a4b0b5e-4b1c-4a58-9a43-1d2a1b6a0c11"]}, "name": {"any_": ["nightly"]},
            "created": {"before_": "2026-11-30T10:00:00Z"},
            "tags": {"operator": "and_", "all_": ["a"], "any_": ["b"], "is_null_": false}}})),
    ] {
        let (status, answer) = send(&app, "POST", "/api/automations/filter", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body:?}: {answer}");
        assert_eq!(answer, json!([]), "{body:?}");
    }
    let (status, answer) = send(
        &app,
        "POST",
        "/api/automations/count",
        Some(json!({"automations": {"name": {"any_": ["x"]}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!(0));
    let (status, answer) = send(&app, "POST", "/api/automations/count", None).await;
    assert_eq!((status, answer), (StatusCode::OK, json!(0)));
}

#[tokio::test]
async fn malformed_filter_bodies_are_422_naming_the_key() {
    let app = app();
    for (body, expected) in [
        (
            json!({"automations": {"name": {"like_": "x"}}}),
            "automations.name.like_: unknown field `like_`, expected `any_`",
        ),
        (
            json!({"sort": "NAME"}),
            "sort: unknown variant `NAME`, expected one of `CREATED_DESC`, `UPDATED_DESC`, \
             `NAME_ASC`, `NAME_DESC`",
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
            json!({"automations": {"id": {"any_": ["not-a-uuid"]}}}),
            "automations.id.any_[0]: UUID parsing failed: invalid character: found `n` at 0",
        ),
        (
            json!({"triggers": []}),
            "triggers: not a key of this route's body (Prefect's server would ignore it; \
             pushpool refuses it)",
        ),
    ] {
        let (status, answer) =
            send(&app, "POST", "/api/automations/filter", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(detail(&answer), expected, "{body}");
    }
}

#[tokio::test]
async fn related_and_owned_routes_answer_as_prefect_with_nothing_held() {
    let app = app();
    let resource = "prefect.deployment.6a4b0b5e-4b1c-4a58-9a43-1d2a1b6a0c11";
    let (status, answer) = send(
        &app,
        "GET",
        &format!("/api/automations/related-to/{resource}"),
        None,
    )
    .await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
    let (status, _) = send(
        &app,
        "DELETE",
        &format!("/api/automations/owned-by/{resource}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_automation_id_is_not_found_and_creating_one_is_refused() {
    let app = app();
    let id = "6a4b0b5e-4b1c-4a58-9a43-1d2a1b6a0c11";
    for method in ["GET", "PATCH", "PUT", "DELETE"] {
        let body = (method == "PATCH" || method == "PUT").then(|| json!({"enabled": false}));
        let (status, answer) = send(&app, method, &format!("/api/automations/{id}"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
        assert_eq!(detail(&answer), "Automation not found", "{method}");
    }
    let (status, answer) = send(&app, "GET", "/api/automations/not-a-uuid", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&answer), "Not Found");

    let (status, answer) = send(
        &app,
        "POST",
        "/api/automations/",
        Some(json!({"name": "on failure", "trigger": {"type": "event"}, "actions": []})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        detail(&answer),
        "Error creating automation: pushpool does not run automations (it has no triggers or \
         actions), so it does not store them. Use Prefect's own server or Prefect Cloud for \
         automations."
    );
}
