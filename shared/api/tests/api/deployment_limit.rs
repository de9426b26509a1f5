//! A deployment's `concurrency_limit` as Prefect 3.9.1 shows it: `global_concurrency_limit`,
//! the V2 limit named `deployment:<id>` (`models/deployments.py`,
//! `_create_or_update_deployment_concurrency_limit`), listed, read, updated and deleted
//! through `/v2/concurrency_limits` ([`pushpool_service::deployment_limit`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use pushpool_api::{AppState, router};
use pushpool_providers::Providers;
use pushpool_service::concurrency_slots::deployment_counter;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::{CounterChange, Transaction};
use pushpool_store_sqlite::SqliteStore;
use serde_json::{Value, json};

use crate::support::{create_flow, detail, keys, send};

fn app_and_service() -> (Router, Service) {
    let store = SqliteStore::in_memory().expect("in-memory SQLite store");
    let service = Service::new(Arc::new(store), Providers::new(), ServiceConfig::default());
    (router(AppState::new(service.clone())), service)
}

/// Creates `etl/limited` with `concurrency_limit: 2`; returns it as answered.
async fn limited(app: &Router) -> Value {
    let flow = create_flow(app).await;
    let (status, d) = send(
        app,
        "POST",
        "/api/deployments/",
        Some(json!({"name": "limited", "flow_id": flow["id"], "concurrency_limit": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d
}

fn names(keys_of: &[&str]) -> BTreeSet<String> {
    keys_of.iter().map(|k| (*k).to_owned()).collect()
}

/// Prefect's `GlobalConcurrencyLimitResponse` keys.
const RESPONSE_KEYS: [&str; 8] = [
    "id",
    "created",
    "updated",
    "active",
    "name",
    "limit",
    "active_slots",
    "slot_decay_per_second",
];

#[tokio::test]
async fn a_deployments_limit_is_its_global_concurrency_limit_named_after_it() {
    let (app, service) = app_and_service();
    let d = limited(&app).await;
    let id = d["id"].as_str().unwrap();
    let name = format!("deployment:{id}");

    // Prefect answers `concurrency_limit: null` ("for backwards compatibility") and the
    // limit as `global_concurrency_limit`.
    assert_eq!(d["concurrency_limit"], Value::Null);
    let limit = d["global_concurrency_limit"].clone();
    assert_eq!(keys(&limit), names(&RESPONSE_KEYS));
    assert_eq!(
        (
            &limit["name"],
            &limit["limit"],
            &limit["active"],
            &limit["active_slots"],
            &limit["slot_decay_per_second"]
        ),
        (
            &json!(name),
            &json!(2),
            &json!(true),
            &json!(0),
            &json!(0.0)
        )
    );
    assert_ne!(limit["id"], d["id"]);

    // Its slots are the deployment's runs' (the counter pushpool enforces the limit with).
    service
        .store()
        .commit(
            &Transaction::default().with_counter(CounterChange::increment(
                deployment_counter(id.parse().unwrap()),
                1,
                Some(2),
            )),
        )
        .await
        .unwrap();

    for path in [
        format!("/api/deployments/{id}"),
        "/api/deployments/name/my-flow/limited".to_owned(),
    ] {
        let (status, read) = send(&app, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert_eq!(read["concurrency_limit"], Value::Null);
        assert_eq!(
            read["global_concurrency_limit"]["active_slots"], 1,
            "{path}"
        );
        assert_eq!(
            read["global_concurrency_limit"]["id"], limit["id"],
            "{path}"
        );
    }
    let (_, listed) = send(&app, "POST", "/api/deployments/filter", Some(json!({}))).await;
    assert_eq!(listed[0]["global_concurrency_limit"]["active_slots"], 1);
    assert_eq!(listed[0]["concurrency_limit"], Value::Null);

    // The V2 routes: by name, by id, and in the listing (by name, among stored limits).
    for which in [name.clone(), limit["id"].as_str().unwrap().to_owned()] {
        let (status, v2) = send(
            &app,
            "GET",
            &format!("/api/v2/concurrency_limits/{which}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v2}");
        assert_eq!(keys(&v2), names(&RESPONSE_KEYS));
        assert_eq!(
            (&v2["id"], &v2["name"], &v2["limit"], &v2["active_slots"]),
            (&limit["id"], &json!(name), &json!(2), &json!(1))
        );
    }
    for stored in ["aaa", "zzz"] {
        let (status, _) = send(
            &app,
            "POST",
            "/api/v2/concurrency_limits/",
            Some(json!({"name": stored, "limit": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, all) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/filter",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["aaa", name.as_str(), "zzz"]);
    assert_eq!(all[1]["active_slots"], 1);

    // A deleted deployment takes its limit with it.
    let (status, _) = send(&app, "DELETE", &format!("/api/deployments/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = send(
        &app,
        "GET",
        &format!("/api/v2/concurrency_limits/{name}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}

#[tokio::test]
async fn the_v2_routes_update_and_delete_a_deployments_limit_or_refuse_naming_the_field() {
    let (app, _service) = app_and_service();
    let d = limited(&app).await;
    let id = d["id"].as_str().unwrap();
    let name = format!("deployment:{id}");
    let v2 = format!("/api/v2/concurrency_limits/{name}");
    let deployment = format!("/api/deployments/{id}");

    // A new `limit` is the deployment's limit (what Prefect's row is).
    let (status, answer) = send(&app, "PATCH", &v2, Some(json!({"limit": 7}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (_, read) = send(&app, "GET", &deployment, None).await;
    assert_eq!(read["global_concurrency_limit"]["limit"], 7);

    // Values it already has change nothing and are accepted.
    let same = json!({"active": true, "name": name, "slot_decay_per_second": 0.0,
                      "denied_slots": 0, "active_slots": 0, "limit": 3});
    let (status, answer) = send(&app, "PATCH", &v2, Some(same)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (_, read) = send(&app, "GET", &deployment, None).await;
    assert_eq!(read["global_concurrency_limit"]["limit"], 3);

    // What a counter of the deployment's runs cannot be is refused, naming the field.
    for (body, expected) in [
        (
            json!({"active": false}),
            format!(
                "active: {name} is a deployment's concurrency limit and cannot be deactivated; \
                 clear the deployment's concurrency_limit instead"
            ),
        ),
        (
            json!({"name": "renamed"}),
            format!("name: {name} is a deployment's concurrency limit and cannot be renamed"),
        ),
        (
            json!({"active_slots": 2}),
            format!(
                "active_slots: the slots of {name} are its deployment's runs and cannot be set"
            ),
        ),
        (
            json!({"denied_slots": 1}),
            format!(
                "denied_slots: the slots of {name} are its deployment's runs and cannot be set"
            ),
        ),
        (
            json!({"slot_decay_per_second": 0.5, "limit": 9}),
            format!(
                "slot_decay_per_second: {name} is a deployment's concurrency limit and cannot decay"
            ),
        ),
    ] {
        let (status, answer) = send(&app, "PATCH", &v2, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(detail(&answer), expected, "{body}");
    }
    let (_, read) = send(&app, "GET", &deployment, None).await;
    assert_eq!(
        read["global_concurrency_limit"]["limit"], 3,
        "nothing written"
    );

    // Its slots are its runs': not taken or given back by name.
    for (path, body) in [
        (
            "/api/v2/concurrency_limits/increment",
            json!({"names": [name], "slots": 1, "mode": "concurrency"}),
        ),
        (
            "/api/v2/concurrency_limits/decrement",
            json!({"names": [name], "slots": 1}),
        ),
    ] {
        let (status, answer) = send(&app, "POST", path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(
            detail(&answer),
            format!(
                "names: {name} is a deployment's concurrency limit: its slots are taken and \
                 given back by the deployment's runs only"
            )
        );
    }

    // Its name is taken.
    let (status, answer) = send(
        &app,
        "POST",
        "/api/v2/concurrency_limits/",
        Some(json!({"name": name, "limit": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        detail(&answer),
        format!("A concurrency limit with the name '{name}' already exists.")
    );

    // Deleting it leaves the deployment unlimited, as Prefect's deleted row does; a new
    // `concurrency_limit` makes it again.
    let (status, _) = send(&app, "DELETE", &v2, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &deployment, None).await;
    assert_eq!(read["global_concurrency_limit"], Value::Null);
    assert_eq!(read["concurrency_limit"], Value::Null);
    let (status, _) = send(&app, "GET", &v2, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, "DELETE", &v2, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        "PATCH",
        &deployment,
        Some(json!({"concurrency_limit": 4})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &deployment, None).await;
    assert_eq!(read["global_concurrency_limit"]["limit"], 4);
    assert_eq!(read["global_concurrency_limit"]["name"], json!(name));
}
