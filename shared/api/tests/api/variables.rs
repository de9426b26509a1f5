//! `/variables/…`, as Prefect 3.9.1's server answers them (`prefect/server/api/variables.py`).

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, detail, id_of, send};

async fn create(app: &Router, body: Value) -> Value {
    let (status, created) = send(app, "POST", "/api/variables/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn create_read_update_delete_by_id_and_by_name() {
    let app = app();
    let created = create(
        &app,
        json!({"name": "my_var", "value": {"b": 1, "a": [1.0, null]}, "tags": ["x"]}),
    )
    .await;
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "created", "updated", "name", "value", "tags"]);
    assert_eq!(created["value"], json!({"b": 1, "a": [1.0, null]}));
    let id = id_of(&created);

    let (status, by_name) = send(&app, "GET", "/api/variables/name/my_var", None).await;
    assert_eq!((status, &by_name), (StatusCode::OK, &created));
    let (status, by_id) = send(&app, "GET", &format!("/api/variables/{id}"), None).await;
    assert_eq!((status, &by_id), (StatusCode::OK, &created));

    let (status, _) = send(
        &app,
        "PATCH",
        "/api/variables/name/my_var",
        Some(json!({"value": "text"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/variables/{id}"),
        Some(json!({"name": "renamed", "tags": []})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", "/api/variables/name/renamed", None).await;
    assert_eq!(read["value"], "text");
    assert_eq!(read["tags"], json!([]));
    assert_eq!(read["id"], created["id"]);
    assert_ne!(read["updated"], created["updated"]);

    let (status, _) = send(&app, "DELETE", "/api/variables/name/renamed", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path) in [
        ("GET", format!("/api/variables/{id}")),
        ("DELETE", format!("/api/variables/{id}")),
        ("GET", "/api/variables/name/renamed".to_owned()),
        ("DELETE", "/api/variables/name/renamed".to_owned()),
    ] {
        let (status, body) = send(&app, method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(detail(&body), "Variable not found.", "{method} {path}");
    }
    let (status, body) = send(
        &app,
        "PATCH",
        "/api/variables/name/renamed",
        Some(json!({"value": 1})),
    )
    .await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::NOT_FOUND, "Variable not found.")
    );
}

#[tokio::test]
async fn names_are_unique_on_create_and_rename() {
    let app = app();
    create(&app, json!({"name": "a", "value": 1})).await;
    let b = create(&app, json!({"name": "b", "value": null})).await;
    assert_eq!(b["value"], Value::Null);
    assert_eq!(b["tags"], json!([]));
    let (status, body) = send(
        &app,
        "POST",
        "/api/variables/",
        Some(json!({"name": "a", "value": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "A variable with the name 'a' already exists."
    );
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/variables/{}", id_of(&b)),
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&body),
        "A variable with the name 'a' already exists."
    );
}

#[tokio::test]
async fn bad_bodies_are_422_naming_the_field() {
    let app = app();
    let long = "x".repeat(4999);
    for (body, expected) in [
        (json!({"name": "a"}), "value: Field required".to_owned()),
        (
            json!({"name": "My Var", "value": 1}),
            "name: \"My Var\" must only contain lowercase letters, numbers, and dashes or \
             underscores"
                .to_owned(),
        ),
        (
            json!({"name": "a", "value": long}),
            "value: Variable value must be less than 5000 characters (its JSON text is 5001)"
                .to_owned(),
        ),
        (
            json!({"name": "a", "value": 1, "secret": true}),
            "Invalid request body: secret: unknown field `secret`, expected one of `name`, \
             `value`, `tags` at line 1 column 30"
                .to_owned(),
        ),
    ] {
        let (status, answer) = send(&app, "POST", "/api/variables/", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(detail(&answer), expected, "{body}");
    }
    // 4,998 characters and two quotes: exactly 5,000 bytes of JSON, accepted.
    create(&app, json!({"name": "a", "value": "x".repeat(4998)})).await;
    let (status, answer) = send(
        &app,
        "PATCH",
        "/api/variables/name/a",
        Some(json!({"name": null})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(detail(&answer), "name: must not be null");
}

#[tokio::test]
async fn filter_sort_page_and_count() {
    let app = app();
    create(&app, json!({"name": "beta", "value": 1, "tags": ["prod"]})).await;
    create(
        &app,
        json!({"name": "alpha", "value": 2, "tags": ["prod", "eu"]}),
    )
    .await;
    create(&app, json!({"name": "gamma_x", "value": 3})).await;

    for (body, expected) in [
        (json!({}), vec!["alpha", "beta", "gamma_x"]),
        (
            json!({"sort": "NAME_DESC"}),
            vec!["gamma_x", "beta", "alpha"],
        ),
        (
            json!({"sort": "CREATED_DESC"}),
            vec!["gamma_x", "alpha", "beta"],
        ),
        (json!({"limit": 1, "offset": 1}), vec!["beta"]),
        (
            json!({"variables": {"name": {"like_": "MM"}}}),
            vec!["gamma_x"],
        ),
        (
            json!({"variables": {"name": {"any_": ["beta", "nope"]}}}),
            vec!["beta"],
        ),
        (
            json!({"variables": {"tags": {"all_": ["prod", "eu"]}}}),
            vec!["alpha"],
        ),
        (
            json!({"variables": {"tags": {"is_null_": true}}}),
            vec!["gamma_x"],
        ),
        (
            json!({"variables": {"operator": "or_", "tags": {"all_": ["eu"]},
                "name": {"any_": ["gamma_x"]}}}),
            vec!["alpha", "gamma_x"],
        ),
    ] {
        let (status, list) = send(&app, "POST", "/api/variables/filter", Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}: {list}");
        assert_eq!(names(&list), expected, "{body}");
    }
    // By id.
    let (_, all) = send(&app, "POST", "/api/variables/filter", None).await;
    let beta_id = all[1]["id"].clone();
    let (_, list) = send(
        &app,
        "POST",
        "/api/variables/filter",
        Some(json!({"variables": {"id": {"any_": [beta_id]}}})),
    )
    .await;
    assert_eq!(names(&list), ["beta"]);
    let (status, n) = send(
        &app,
        "POST",
        "/api/variables/count",
        Some(json!({"variables": {"tags": {"all_": ["prod"]}}})),
    )
    .await;
    assert_eq!((status, n), (StatusCode::OK, json!(2)));
    for (body, expected) in [
        (
            json!({"variables": {"tags": {"any_": ["prod"]}}}),
            "variables.tags.any_: unknown field `any_`, expected one of `operator`, `all_`, \
             `is_null_`",
        ),
        (
            json!({"limit": 500}),
            "Invalid limit: must be less than or equal to 200.",
        ),
        (
            json!({"sort": "ID_DESC"}),
            "sort: unknown variant `ID_DESC`, expected one of `CREATED_DESC`, `UPDATED_DESC`, \
             `NAME_DESC`, `NAME_ASC`",
        ),
    ] {
        let (status, answer) =
            send(&app, "POST", "/api/variables/filter", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(detail(&answer), expected, "{body}");
    }
}
