//! Blocks: the full registration path of a new block type (b7), Prefect's schema checksum
//! (b1–b3), secret obfuscation (b1, b2, b3, b6), and the duplicate and overwrite paths
//! (b5, b5b).

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, id_of, keys, recorded, recorded_request, recorded_response, send};

/// A credentials block as the OSS server had it registered before the client saved a
/// document: the block type (`GET /block_types/slug/..` response) and its schema (the
/// `GET /block_schemas/checksum/..` response).
struct Registered {
    type_id: Value,
    schema_id: Value,
}

const AWS: (&str, &str, &str) = (
    "b1-save-aws",
    "001-GET-api_block_types_slug_aws-credentials.json",
    "002-GET-api_block_schemas_checksum_CHECKSUM.json",
);
const GCP: (&str, &str, &str) = (
    "b2-save-gcp",
    "001-GET-api_block_types_slug_gcp-credentials.json",
    "004-GET-api_block_schemas_checksum_CHECKSUM.json",
);
const AZURE: (&str, &str, &str) = (
    "b3-save-azure",
    "001-GET-api_block_types_slug_azure-container-instance-credentials.json",
    "004-GET-api_block_schemas_checksum_CHECKSUM.json",
);

/// Registers a recorded block type and schema through `POST /block_types/` and
/// `POST /block_schemas/`, as the client's registration path does (b7), and checks that the
/// checksum pushpool computed is the one the real client looked the schema up by.
async fn register(
    app: &Router,
    (scenario, type_file, schema_file): (&str, &str, &str),
) -> Registered {
    let block_type = recorded_response(scenario, type_file);
    let create_type = json!({
        "name": block_type["name"],
        "slug": block_type["slug"],
        "logo_url": block_type["logo_url"],
        "documentation_url": block_type["documentation_url"],
        "description": block_type["description"],
        "code_example": block_type["code_example"],
    });
    let (status, created_type) = send(app, "POST", "/api/block_types/", Some(create_type)).await;
    assert_eq!(status, StatusCode::CREATED, "{created_type}");
    assert_eq!(keys(&created_type), keys(&block_type));

    let exchange = recorded(scenario, schema_file);
    let schema = &exchange["response_json"];
    let create_schema = json!({
        "fields": schema["fields"],
        "block_type_id": created_type["id"],
        "capabilities": schema["capabilities"],
        "version": schema["version"],
    });
    let (status, created_schema) =
        send(app, "POST", "/api/block_schemas/", Some(create_schema)).await;
    assert_eq!(status, StatusCode::CREATED, "{created_schema}");
    assert_eq!(keys(&created_schema), keys(schema));
    assert_eq!(
        created_schema["checksum"], schema["checksum"],
        "{scenario}: checksum"
    );
    assert_eq!(created_schema["fields"], schema["fields"]);
    assert_eq!(created_schema["version"], schema["version"]);

    // The lookup the real client made, with the recorded checksum and version.
    let lookup = format!(
        "{}?{}",
        exchange["path"].as_str().expect("path"),
        exchange["query"].as_str().expect("query")
    );
    let (status, found) = send(app, "GET", &lookup, None).await;
    assert_eq!(status, StatusCode::OK, "{lookup}: {found}");
    assert_eq!(found["id"], created_schema["id"]);
    assert_eq!(found["block_type"]["slug"], block_type["slug"]);

    Registered {
        type_id: created_type["id"].clone(),
        schema_id: created_schema["id"].clone(),
    }
}

/// A recorded `POST /block_documents/` body re-targeted at the ids of this server.
fn document_body(scenario: &str, file: &str, registered: &Registered) -> Value {
    let mut body = recorded_request(scenario, file);
    body["block_schema_id"] = registered.schema_id.clone();
    body["block_type_id"] = registered.type_id.clone();
    body
}

async fn save(app: &Router, scenario: &str, file: &str, registered: &Registered) -> Value {
    let exchange = recorded(scenario, file);
    let (status, document) = send(
        app,
        "POST",
        "/api/block_documents/",
        Some(document_body(scenario, file, registered)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{document}");
    let theirs = &exchange["response_json"];
    assert_eq!(keys(&document), keys(theirs));
    assert_eq!(
        keys(&document["block_schema"]),
        keys(&theirs["block_schema"])
    );
    assert_eq!(keys(&document["block_type"]), keys(&theirs["block_type"]));
    for field in [
        "name",
        "data",
        "block_type_name",
        "block_document_references",
        "is_anonymous",
    ] {
        assert_eq!(document[field], theirs[field], "{scenario}: {field}");
    }
    document
}

#[tokio::test]
async fn unregistered_block_type_path_replays_b7() {
    let app = app();
    let scenario = "b7-save-unregistered-block-type";

    // 1. the type is unknown
    let lookup = recorded(
        scenario,
        "001-GET-api_block_types_slug_my-push-cloud-creds.json",
    );
    let (status, body) = send(&app, "GET", lookup["path"].as_str().expect("path"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, lookup["response_json"]);

    // 2. POST /block_types/
    let create_type = recorded(scenario, "003-POST-api_block_types.json");
    let (status, block_type) = send(
        &app,
        "POST",
        "/api/block_types/",
        Some(create_type["request_json"].clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{block_type}");
    let theirs = &create_type["response_json"];
    assert_eq!(keys(&block_type), keys(theirs));
    for field in [
        "name",
        "slug",
        "logo_url",
        "documentation_url",
        "description",
        "code_example",
        "is_protected",
    ] {
        assert_eq!(block_type[field], theirs[field], "{field}");
    }

    // 3. the schema is unknown under the checksum the client computed
    let checksum = recorded(scenario, "004-GET-api_block_schemas_checksum_CHECKSUM.json");
    let checksum_path = format!(
        "{}?{}",
        checksum["path"].as_str().expect("path"),
        checksum["query"].as_str().expect("query")
    );
    let (status, body) = send(&app, "GET", &checksum_path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, checksum["response_json"]);

    // 4. POST /block_schemas/
    let create_schema = recorded(scenario, "005-POST-api_block_schemas.json");
    let mut request = create_schema["request_json"].clone();
    request["block_type_id"] = block_type["id"].clone();
    let (status, schema) = send(&app, "POST", "/api/block_schemas/", Some(request)).await;
    assert_eq!(status, StatusCode::CREATED, "{schema}");
    let theirs = &create_schema["response_json"];
    assert_eq!(keys(&schema), keys(theirs));
    for field in ["checksum", "fields", "capabilities", "version"] {
        assert_eq!(schema[field], theirs[field], "{field}");
    }
    assert_eq!(schema["block_type"], block_type);

    // ... and now the client's lookup finds it
    let (status, found) = send(&app, "GET", &checksum_path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["id"], schema["id"]);

    // 5. POST /block_documents/
    let registered = Registered {
        type_id: block_type["id"].clone(),
        schema_id: schema["id"].clone(),
    };
    let document = save(
        &app,
        scenario,
        "007-POST-api_block_documents.json",
        &registered,
    )
    .await;
    assert_eq!(
        document["data"],
        json!({"region": "r1", "api_secret": "********"})
    );
    assert_eq!(document["block_type"], block_type);
}

#[tokio::test]
async fn schema_checksums_are_the_ones_the_client_computes() {
    // `register` asserts the checksum of each recorded schema, and that the client's recorded
    // `GET /block_schemas/checksum/<checksum>?version=<v>` finds it.
    let app = app();
    register(&app, AWS).await;
    register(&app, GCP).await;
    register(&app, AZURE).await;

    let (status, aws) = send(
        &app,
        "GET",
        "/api/block_schemas/checksum/sha256:c45e6bbf862f533edf08cd94a22228976c2782163c68a7c089473c630a4c319f?version=0.7.12",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(aws["block_type"]["slug"], "aws-credentials");
}

#[tokio::test]
async fn posting_the_same_schema_again_answers_the_existing_one() {
    let app = app();
    let registered = register(&app, AWS).await;
    let schema = recorded_response(AWS.0, AWS.2);

    let (status, again) = send(
        &app,
        "POST",
        "/api/block_schemas/",
        Some(json!({"fields": schema["fields"], "block_type_id": registered.type_id, "capabilities": [], "version": "0.7.12"})),
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], registered.schema_id);
}

#[tokio::test]
async fn block_type_metadata_patch_is_204() {
    for block in [GCP, AZURE] {
        let (scenario, type_file, _) = block;
        let app = app();
        let registered = register(&app, block).await;
        let patch = recorded_request(scenario, "003-PATCH-api_block_types_ID.json");
        let type_id = registered.type_id.as_str().expect("id");

        let (status, body) = send(
            &app,
            "PATCH",
            &format!("/api/block_types/{type_id}"),
            Some(patch.clone()),
        )
        .await;

        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let slug = recorded_response(scenario, type_file)["slug"].clone();
        let (status, block_type) = send(
            &app,
            "GET",
            &format!("/api/block_types/slug/{}", slug.as_str().expect("slug")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for field in [
            "logo_url",
            "documentation_url",
            "description",
            "code_example",
        ] {
            assert_eq!(block_type[field], patch[field], "{scenario}: {field}");
        }
    }
}

#[tokio::test]
async fn aws_secret_is_obfuscated_unless_include_secrets() {
    let app = app();
    let aws = register(&app, AWS).await;

    // POST answers obfuscated, exactly as the OSS server did
    let document = save(
        &app,
        "b1-save-aws",
        "004-POST-api_block_documents.json",
        &aws,
    )
    .await;
    assert_eq!(document["data"]["aws_secret_access_key"], "********");
    assert_eq!(document["data"]["aws_access_key_id"], "AKIAEXAMPLE123");
    let plain =
        recorded_request("b1-save-aws", "004-POST-api_block_documents.json")["data"].clone();
    let id = id_of(&document);

    for (path, secret) in [
        (format!("/api/block_documents/{id}"), false),
        (format!("/api/block_documents/{id}?include_secrets=false"), false),
        (format!("/api/block_documents/{id}?include_secrets=true"), true),
        ("/api/block_types/slug/aws-credentials/block_documents/name/my-aws-creds".to_owned(), false),
        ("/api/block_types/slug/aws-credentials/block_documents/name/my-aws-creds?include_secrets=false".to_owned(), false),
        ("/api/block_types/slug/aws-credentials/block_documents/name/my-aws-creds?include_secrets=true".to_owned(), true),
    ] {
        let (status, read) = send(&app, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let expected = if secret { &plain } else { &document["data"] };
        assert_eq!(&read["data"], expected, "{path}");
        assert_eq!(read["id"], document["id"]);
    }
}

#[tokio::test]
async fn gcp_wildcard_secret_obfuscates_every_key() {
    let app = app();
    let gcp = register(&app, GCP).await;

    let document = save(
        &app,
        "b2-save-gcp",
        "006-POST-api_block_documents.json",
        &gcp,
    )
    .await;

    let info = document["data"]["service_account_info"]
        .as_object()
        .expect("object");
    assert_eq!(info.len(), 8);
    assert!(info.values().all(|v| v == "********"), "{info:?}");
    assert_eq!(document["data"]["project"], "my-project");
    assert_eq!(document["data"]["service_account_file"], Value::Null);

    let recorded_read = recorded_response(
        "b6-read-block-doc-api",
        "003-GET-api_block_types_slug_gcp-credentials_block_documents_name_my-gcp-creds.json",
    );
    let (status, read) = send(&app, "GET", "/api/block_types/slug/gcp-credentials/block_documents/name/my-gcp-creds?include_secrets=false", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["data"], recorded_read["data"]);
    assert_eq!(keys(&read), keys(&recorded_read));

    let (_, plain) = send(&app, "GET", "/api/block_types/slug/gcp-credentials/block_documents/name/my-gcp-creds?include_secrets=true", None).await;
    assert_eq!(
        plain["data"],
        recorded_request("b2-save-gcp", "006-POST-api_block_documents.json")["data"]
    );
}

#[tokio::test]
async fn azure_client_secret_is_obfuscated() {
    let app = app();
    let azure = register(&app, AZURE).await;

    let document = save(
        &app,
        "b3-save-azure",
        "006-POST-api_block_documents.json",
        &azure,
    )
    .await;

    assert_eq!(document["data"]["client_secret"], "********");
    assert_eq!(document["data"]["client_id"], "az-client-id");
}

#[tokio::test]
async fn duplicate_document_name_is_409_as_recorded() {
    let app = app();
    let aws = register(&app, AWS).await;
    save(
        &app,
        "b1-save-aws",
        "004-POST-api_block_documents.json",
        &aws,
    )
    .await;
    let exchange = recorded(
        "b5b-save-aws-no-overwrite",
        "004-POST-api_block_documents.json",
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/block_documents/",
        Some(document_body(
            "b5b-save-aws-no-overwrite",
            "004-POST-api_block_documents.json",
            &aws,
        )),
    )
    .await;

    assert_eq!(status.as_u16(), exchange["status"]);
    assert_eq!(body, exchange["response_json"]);
    assert_eq!(body, json!({"detail": "Block already exists"}));
}

#[tokio::test]
async fn overwrite_path_replays_b5_and_b6() {
    let app = app();
    let aws = register(&app, AWS).await;
    save(
        &app,
        "b1-save-aws",
        "004-POST-api_block_documents.json",
        &aws,
    )
    .await;
    let scenario = "b5-save-aws-overwrite";

    // POST → 409
    let (status, body) = send(
        &app,
        "POST",
        "/api/block_documents/",
        Some(document_body(
            scenario,
            "009-POST-api_block_documents.json",
            &aws,
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        recorded_response(scenario, "009-POST-api_block_documents.json")
    );

    // GET by name with secrets, PATCH with plain secrets → 204
    let (status, existing) = send(&app, "GET", "/api/block_types/slug/aws-credentials/block_documents/name/my-aws-creds?include_secrets=true", None).await;
    assert_eq!(status, StatusCode::OK);
    let id = id_of(&existing);
    let mut patch = recorded_request(scenario, "011-PATCH-api_block_documents_ID.json");
    patch["block_schema_id"] = aws.schema_id.clone();
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/block_documents/{id}"),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);

    // the reads answer what the OSS server answered after the overwrite
    let (status, read) = send(
        &app,
        "GET",
        &format!("/api/block_documents/{id}?include_secrets=true"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let theirs = recorded_response(scenario, "012-GET-api_block_documents_ID.json");
    assert_eq!(read["data"], theirs["data"]);
    assert_eq!(read["data"]["aws_secret_access_key"], "aws-super-secret-2");
    assert_eq!(keys(&read), keys(&theirs));

    for (file, query) in [
        (
            "001-GET-api_block_types_slug_aws-credentials_block_documents_name_my-aws-creds.json",
            "include_secrets=false",
        ),
        (
            "002-GET-api_block_types_slug_aws-credentials_block_documents_name_my-aws-creds.json",
            "include_secrets=true",
        ),
    ] {
        let exchange = recorded("b6-read-block-doc-api", file);
        assert_eq!(exchange["query"], query);
        let (status, read) = send(
            &app,
            "GET",
            &format!("{}?{query}", exchange["path"].as_str().expect("path")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read["data"], exchange["response_json"]["data"], "{query}");
        assert_eq!(read["name"], exchange["response_json"]["name"]);
        assert_eq!(
            read["block_type_name"],
            exchange["response_json"]["block_type_name"]
        );
    }
}

#[tokio::test]
async fn patch_with_obfuscated_values_keeps_the_stored_secrets() {
    let app = app();
    let aws = register(&app, AWS).await;
    let gcp = register(&app, GCP).await;
    let aws_doc = save(
        &app,
        "b1-save-aws",
        "004-POST-api_block_documents.json",
        &aws,
    )
    .await;
    let gcp_doc = save(
        &app,
        "b2-save-gcp",
        "006-POST-api_block_documents.json",
        &gcp,
    )
    .await;

    // round-trip the obfuscated documents, changing only a readable field
    let mut aws_data = aws_doc["data"].clone();
    aws_data["region_name"] = json!("eu-west-1");
    let mut gcp_data = gcp_doc["data"].clone();
    gcp_data["project"] = json!("other-project");
    for (doc, data) in [(&aws_doc, aws_data), (&gcp_doc, gcp_data)] {
        let (status, body) = send(
            &app,
            "PATCH",
            &format!("/api/block_documents/{}", id_of(doc)),
            Some(json!({"data": data})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    let (_, aws_read) = send(
        &app,
        "GET",
        &format!(
            "/api/block_documents/{}?include_secrets=true",
            id_of(&aws_doc)
        ),
        None,
    )
    .await;
    assert_eq!(
        aws_read["data"]["aws_secret_access_key"],
        "aws-super-secret"
    );
    assert_eq!(aws_read["data"]["region_name"], "eu-west-1");

    let (_, gcp_read) = send(
        &app,
        "GET",
        &format!(
            "/api/block_documents/{}?include_secrets=true",
            id_of(&gcp_doc)
        ),
        None,
    )
    .await;
    assert_eq!(
        gcp_read["data"]["service_account_info"],
        recorded_request("b2-save-gcp", "006-POST-api_block_documents.json")["data"]["service_account_info"]
    );
    assert_eq!(gcp_read["data"]["project"], "other-project");
}

#[tokio::test]
async fn document_of_unknown_schema_is_404_naming_block_schema_id() {
    let app = app();
    let aws = register(&app, AWS).await;
    let mut body = document_body("b1-save-aws", "004-POST-api_block_documents.json", &aws);
    body["block_schema_id"] = json!("00000000-0000-4000-8000-000000000000");

    let (status, body) = send(&app, "POST", "/api/block_documents/", Some(body)).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("block_schema_id")),
        "{body}"
    );
}

#[tokio::test]
async fn duplicate_block_type_slug_is_409() {
    let app = app();
    let body = recorded_request(
        "b7-save-unregistered-block-type",
        "003-POST-api_block_types.json",
    );
    assert_eq!(
        send(&app, "POST", "/api/block_types/", Some(body.clone()))
            .await
            .0,
        StatusCode::CREATED
    );

    let (status, body) = send(&app, "POST", "/api/block_types/", Some(body)).await;

    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
