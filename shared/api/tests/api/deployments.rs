//! Flows, deployments and `create_flow_run`: `flow.deploy()` (c1, c2, c4, h2) and
//! `prefect deployment run` / `run_deployment()` (d1, h2), with job variables validated
//! against the pool's schema.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    app, app_with, create_c1_deployment, create_ecs_pool, create_flow, detail, id_of, keys,
    recorded, recorded_request, send, with,
};

const D1: (&str, &str) = (
    "d1-cli-deployment-run",
    "004-POST-api_deployments_ID_create_flow_run.json",
);

/// Pool, flow and c4's `my-flow/yaml-deployment` (tags `["research"]`, parameters `{"x": 5}`),
/// the deployment d1 ran.
async fn create_yaml_deployment(app: &Router) -> (Value, Value) {
    let pool = create_ecs_pool(app).await;
    let flow = create_flow(app).await;
    let body = with(
        recorded_request("c4-prefect-deploy-yaml", "006-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    let (status, deployment) = send(app, "POST", "/api/deployments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    (pool, deployment)
}

#[tokio::test]
async fn flow_create_is_201_with_the_recorded_keys() {
    let app = app();
    let first = recorded("c1-flow-deploy-ecs-pool", "009-POST-api_flows.json");

    let (status, flow) = send(
        &app,
        "POST",
        "/api/flows/",
        Some(first["request_json"].clone()),
    )
    .await;

    assert_eq!(status.as_u16(), first["status"]);
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(keys(&flow), keys(&first["response_json"]));
    for field in ["name", "tags", "labels"] {
        assert_eq!(flow[field], first["response_json"][field], "{field}");
    }
    let (status, read) = send(&app, "GET", &format!("/api/flows/{}", id_of(&flow)), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, flow);
    let (status, by_name) = send(&app, "GET", "/api/flows/name/my-flow", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name, flow);
}

#[tokio::test]
async fn flow_create_of_an_existing_name_is_200_with_the_same_flow() {
    let app = app();
    let first = recorded("c1-flow-deploy-ecs-pool", "009-POST-api_flows.json");
    let again = recorded("h2-sdk-subset", "013-POST-api_flows.json");
    let (_, flow) = send(
        &app,
        "POST",
        "/api/flows/",
        Some(first["request_json"].clone()),
    )
    .await;

    let (status, same) = send(
        &app,
        "POST",
        "/api/flows/",
        Some(again["request_json"].clone()),
    )
    .await;

    assert_eq!(status.as_u16(), again["status"]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["id"], flow["id"]);
    assert_eq!(same["created"], flow["created"]);
    let (_, flows) = send(&app, "POST", "/api/flows/filter", Some(json!({}))).await;
    assert_eq!(flows.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn deployment_create_answers_as_recorded() {
    let app = app();
    let pool = create_ecs_pool(&app).await;
    let flow = create_flow(&app).await;
    let exchange = recorded("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json");
    let body = with(
        exchange["request_json"].clone(),
        "flow_id",
        flow["id"].clone(),
    );

    let (status, deployment) = send(&app, "POST", "/api/deployments/", Some(body)).await;

    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    let theirs = &exchange["response_json"];
    assert_eq!(keys(&deployment), keys(theirs));
    for field in [
        "name",
        "version",
        "description",
        "paused",
        "schedules",
        "concurrency_limit",
        "global_concurrency_limit",
        "concurrency_options",
        "job_variables",
        "parameters",
        "tags",
        "work_queue_name",
        "last_polled",
        "parameter_openapi_schema",
        "path",
        "pull_steps",
        "entrypoint",
        "storage_document_id",
        "infrastructure_document_id",
        "created_by",
        "updated_by",
        "work_pool_name",
        "status",
        "enforce_parameter_schema",
    ] {
        assert_eq!(deployment[field], theirs[field], "{field}");
    }
    assert_eq!(deployment["flow_id"], flow["id"]);
    assert_eq!(deployment["labels"], json!({"prefect.flow.id": flow["id"]}));
    assert_eq!(deployment["work_queue_id"], pool["default_queue_id"]);
}

#[tokio::test]
async fn deployment_read_by_name_is_404_then_200() {
    let app = app();
    let lookup = recorded(
        "c1-flow-deploy-ecs-pool",
        "007-GET-api_deployments_name_my-flow_my-deployment.json",
    );
    let path = lookup["path"].as_str().expect("path");

    let (status, body) = send(&app, "GET", path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, lookup["response_json"]);

    let deployment = create_c1_deployment(&app).await;
    let (status, read) = send(&app, "GET", path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, deployment);

    let (status, by_id) = send(
        &app,
        "GET",
        &format!("/api/deployments/{}", id_of(&deployment)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, deployment);
}

#[tokio::test]
async fn deployment_of_missing_pool_is_404_naming_work_pool_name() {
    let app = app();
    let flow = create_flow(&app).await;
    let body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );

    let (status, body) = send(&app, "POST", "/api/deployments/", Some(body)).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": "work_pool_name: Work pool \"my-push-pool\" not found."})
    );
}

#[tokio::test]
async fn deployment_job_variables_breaking_the_pool_schema_are_422() {
    let app = app();
    create_ecs_pool(&app).await;
    let flow = create_flow(&app).await;
    let mut body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    body["job_variables"] = json!({"cpu": "abc"});

    let (status, body) = send(&app, "POST", "/api/deployments/", Some(body)).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("job_variables.cpu"), "{body}");
    let (status, _) = send(
        &app,
        "GET",
        "/api/deployments/name/my-flow/my-deployment",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn redeploy_patch_moves_the_deployment_to_the_push_pool() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let push = recorded_request("a5-api-create-push-pools", "002-POST-api_work_pools.json");
    let (status, push_pool) = send(&app, "POST", "/api/work_pools/", Some(push)).await;
    assert_eq!(status, StatusCode::CREATED);
    let patch = recorded_request(
        "c2-flow-deploy-real-push-pool",
        "009-PATCH-api_deployments_ID.json",
    );

    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{}", id_of(&deployment)),
        Some(patch.clone()),
    )
    .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);
    let (_, after) = send(
        &app,
        "GET",
        "/api/deployments/name/my-flow/my-deployment",
        None,
    )
    .await;
    assert_eq!(after["id"], deployment["id"]);
    for field in [
        "work_pool_name",
        "job_variables",
        "parameters",
        "version",
        "entrypoint",
        "enforce_parameter_schema",
    ] {
        assert_eq!(after[field], patch[field], "{field}");
    }
    assert_eq!(after["work_queue_id"], push_pool["default_queue_id"]);
    assert_eq!(after["labels"], deployment["labels"]);
}

#[tokio::test]
async fn redeploy_patch_with_nulls_clears_the_fields() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let push = recorded_request("a5-api-create-push-pools", "002-POST-api_work_pools.json");
    assert_eq!(
        send(&app, "POST", "/api/work_pools/", Some(push)).await.0,
        StatusCode::CREATED
    );
    let patch = recorded_request(
        "c2-flow-deploy-real-push-pool",
        "009-PATCH-api_deployments_ID.json",
    );
    assert_eq!(
        (&patch["description"], &patch["pull_steps"]),
        (&Value::Null, &Value::Null)
    );

    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{}", id_of(&deployment)),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, after) = send(
        &app,
        "GET",
        "/api/deployments/name/my-flow/my-deployment",
        None,
    )
    .await;
    assert_eq!(after["description"], Value::Null);
    assert_eq!(after["pull_steps"], Value::Null);
}

#[tokio::test]
async fn redeploy_to_missing_pool_is_404() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let patch = recorded_request(
        "c2-flow-deploy-real-push-pool",
        "009-PATCH-api_deployments_ID.json",
    );

    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/deployments/{}", id_of(&deployment)),
        Some(patch),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(detail(&body).starts_with("work_pool_name"), "{body}");
}

#[tokio::test]
async fn create_flow_run_answers_as_recorded() {
    let app = app();
    let (pool, deployment) = create_yaml_deployment(&app).await;
    let exchange = recorded(D1.0, D1.1);

    let (status, run) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(exchange["request_json"].clone()),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED, "{run}");
    let theirs = &exchange["response_json"];
    assert_eq!(keys(&run), keys(theirs));
    assert_eq!(keys(&run["state"]), keys(&theirs["state"]));
    assert_eq!(
        keys(&run["state"]["state_details"]),
        keys(&theirs["state"]["state_details"])
    );
    assert_eq!(
        keys(&run["empirical_policy"]),
        keys(&theirs["empirical_policy"])
    );
    for field in [
        "deployment_version",
        "work_queue_name",
        "flow_version",
        "parameters",
        "idempotency_key",
        "context",
        "empirical_policy",
        "tags",
        "parent_task_run_id",
        "state_type",
        "state_name",
        "run_count",
        "expected_start_time",
        "next_scheduled_start_time",
        "start_time",
        "end_time",
        "total_run_time",
        "estimated_run_time",
        "auto_scheduled",
        "infrastructure_document_id",
        "infrastructure_pid",
        "created_by",
        "work_pool_name",
        "job_variables",
    ] {
        assert_eq!(run[field], theirs[field], "{field}");
    }
    assert_eq!(run["state_type"], "SCHEDULED");
    assert_eq!(run["state_name"], "Scheduled");
    assert_eq!(run["tags"], json!(["research"]));
    assert_eq!(run["parameters"], json!({"x": 7}));
    assert_eq!(
        run["labels"],
        json!({"prefect.flow.id": deployment["flow_id"], "prefect.deployment.id": deployment["id"]})
    );
    assert_eq!(run["flow_id"], deployment["flow_id"]);
    assert_eq!(run["deployment_id"], deployment["id"]);
    assert_eq!(run["work_pool_id"], pool["id"]);
    assert_eq!(run["work_queue_id"], pool["default_queue_id"]);
    assert_eq!(run["state_id"], run["state"]["id"]);
    assert_eq!(run["state"]["type"], "SCHEDULED");
    assert_eq!(run["state"]["name"], "Scheduled");
    assert_eq!(run["state"]["state_details"]["flow_run_id"], run["id"]);
    assert_eq!(
        run["state"]["state_details"]["scheduled_time"],
        theirs["state"]["state_details"]["scheduled_time"]
    );
    assert!(
        run["name"].as_str().is_some_and(|n| n.contains('-')),
        "{}",
        run["name"]
    );

    let (status, read) = send(
        &app,
        "GET",
        &format!("/api/flow_runs/{}", id_of(&run)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, run);
}

#[tokio::test]
async fn create_flow_run_state_details_match_recorded() {
    let app = app();
    let (_, deployment) = create_yaml_deployment(&app).await;
    let exchange = recorded(D1.0, D1.1);

    let (_, run) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(exchange["request_json"].clone()),
    )
    .await;

    let mut expected = exchange["response_json"]["state"]["state_details"].clone();
    expected["flow_run_id"] = run["id"].clone();
    assert_eq!(run["state"]["state_details"], expected);
}

#[tokio::test]
async fn run_deployment_with_null_job_variables_is_accepted() {
    let app = app();
    let pool = create_ecs_pool(&app).await;
    let flow = create_flow(&app).await;
    let mut body = recorded_request("h2-sdk-subset", "014-POST-api_deployments.json");
    body["flow_id"] = flow["id"].clone();
    body["work_pool_name"] = pool["name"].clone();
    let (status, deployment) = send(&app, "POST", "/api/deployments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    let exchange = recorded(
        "h2-sdk-subset",
        "018-POST-api_deployments_ID_create_flow_run.json",
    );
    assert_eq!(exchange["request_json"]["job_variables"], Value::Null);

    let (status, run) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(exchange["request_json"].clone()),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(keys(&run), keys(&exchange["response_json"]));
    assert_eq!(run["job_variables"], json!({}));
    assert_eq!(run["tags"], json!([]));
}

#[tokio::test]
async fn create_flow_run_job_variables_breaking_the_pool_schema_are_422() {
    let app = app();
    let (_, deployment) = create_yaml_deployment(&app).await;
    let body = with(
        recorded_request(D1.0, D1.1),
        "job_variables",
        json!({"memory": "lots"}),
    );

    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(body),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("job_variables.memory"), "{body}");
    let (_, runs) = send(&app, "POST", "/api/flow_runs/filter", Some(json!({}))).await;
    assert_eq!(runs, json!([]));
}

#[tokio::test]
async fn create_flow_run_of_missing_deployment_is_404() {
    let app = app();

    let (status, body) = send(
        &app,
        "POST",
        "/api/deployments/a0f0e10d-bef7-439a-857c-eae3b238f90f/create_flow_run",
        Some(recorded_request(D1.0, D1.1)),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "Deployment not found"}));
}

/// `prefect deploy` deletes the automations a deployment owned. The recorded exchange's 404
/// (`h2-sdk-subset/015-…`) was made up by the recording proxy ("never reached the server");
/// Prefect's server answers 202, and so does pushpool, which holds none to delete.
#[tokio::test]
async fn automations_cleanup_after_deploy_is_202_as_on_prefects_server() {
    let app = app();
    let deployment = create_c1_deployment(&app).await;
    let (status, body) = send(
        &app,
        "DELETE",
        &format!(
            "/api/automations/owned-by/prefect.deployment.{}",
            id_of(&deployment)
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// A provider whose documented limit is "at most 4096 cpu units", recording the variables
/// it was asked about.
#[derive(Default)]
struct LimitedProvider {
    seen: std::sync::Mutex<Vec<serde_json::Map<String, Value>>>,
}

#[async_trait::async_trait]
impl pushpool_providers::Provider for LimitedProvider {
    async fn submit(
        &self,
        _job: &pushpool_providers::Job,
    ) -> Result<String, pushpool_providers::ProviderError> {
        unreachable!("the API never submits")
    }
    async fn status(
        &self,
        _job: &pushpool_providers::Job,
        _pid: &str,
    ) -> Result<pushpool_providers::JobStatus, pushpool_providers::ProviderError> {
        unreachable!("the API never reads a job's status")
    }
    async fn cancel(
        &self,
        _job: &pushpool_providers::Job,
        _pid: &str,
    ) -> Result<(), pushpool_providers::ProviderError> {
        unreachable!("the API never cancels a job")
    }
    fn check_job_variables(
        &self,
        variables: &serde_json::Map<String, Value>,
    ) -> Result<(), pushpool_providers::ProviderError> {
        self.seen.lock().unwrap().push(variables.clone());
        match variables.get("cpu").and_then(Value::as_i64) {
            Some(cpu) if cpu > 4096 => Err(pushpool_providers::ProviderError::invalid(
                "cpu",
                format!("{cpu} is more than the 4096 cpu units a task may have"),
            )),
            _ => Ok(()),
        }
    }
}

fn limited() -> (Router, std::sync::Arc<LimitedProvider>) {
    let provider = std::sync::Arc::new(LimitedProvider::default());
    // The recorded pool (a2) is of type `ecs`: the check follows the pool's type.
    let app = app_with(pushpool_providers::Providers::new().with(
        "ecs",
        provider.clone() as std::sync::Arc<dyn pushpool_providers::Provider>,
    ));
    (app, provider)
}

#[tokio::test]
async fn deployment_job_variables_past_the_providers_limits_are_422_naming_the_variable() {
    let (app, provider) = limited();
    create_ecs_pool(&app).await;
    let flow = create_flow(&app).await;
    let mut body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    body["job_variables"] = json!({"cpu": 8192});

    let (status, body) = send(&app, "POST", "/api/deployments/", Some(body)).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        detail(&body),
        "invalid job variables: job_variables.cpu: 8192 is more than the 4096 cpu units a task may have"
    );
    // The provider saw the pool's defaults under the deployment's variables.
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["cpu"], json!(8192));
    assert_eq!(seen[0]["launch_type"], json!("FARGATE"));
    let (status, _) = send(
        &app,
        "GET",
        "/api/deployments/name/my-flow/my-deployment",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn flow_run_job_variables_past_the_providers_limits_are_422_and_no_run_is_created() {
    let (app, _provider) = limited();
    let (_, deployment) = create_yaml_deployment(&app).await;
    let body = with(
        recorded_request(D1.0, D1.1),
        "job_variables",
        json!({"cpu": 5000}),
    );

    let (status, body) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(body),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        detail(&body),
        "invalid job variables: job_variables.cpu: 5000 is more than the 4096 cpu units a task may have"
    );
    let (_, runs) = send(&app, "POST", "/api/flow_runs/filter", Some(json!({}))).await;
    assert_eq!(runs, json!([]));
}

/// A `POST /flow_runs/` body for a run of `deployment` (its flow) with `job_variables`.
fn flow_run_of(deployment: &Value, job_variables: Value) -> Value {
    json!({
        "flow_id": deployment["flow_id"],
        "deployment_id": deployment["id"],
        "job_variables": job_variables,
    })
}

#[tokio::test]
async fn post_flow_runs_checks_job_variables_as_create_flow_run_does() {
    let app = app();
    let (_, deployment) = create_yaml_deployment(&app).await;
    let (status, from_deployment) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(with(
            recorded_request(D1.0, D1.1),
            "job_variables",
            json!({"memory": "lots"}),
        )),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{from_deployment}"
    );

    let (status, body) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(flow_run_of(&deployment, json!({"memory": "lots"}))),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body, from_deployment);
    assert!(detail(&body).contains("job_variables.memory"), "{body}");
    let (_, runs) = send(&app, "POST", "/api/flow_runs/filter", Some(json!({}))).await;
    assert_eq!(runs, json!([]));

    // Valid variables make the run (with the deployment, as the body says).
    let (status, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(flow_run_of(&deployment, json!({"memory": 4096}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["deployment_id"], deployment["id"]);
    assert_eq!(run["job_variables"], json!({"memory": 4096}));
}

#[tokio::test]
async fn post_flow_runs_checks_the_providers_limits_as_create_flow_run_does() {
    let (app, _provider) = limited();
    let (_, deployment) = create_yaml_deployment(&app).await;

    let (status, body) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(flow_run_of(&deployment, json!({"cpu": 5000}))),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        detail(&body),
        "invalid job variables: job_variables.cpu: 5000 is more than the 4096 cpu units a task may have"
    );
    let (_, runs) = send(&app, "POST", "/api/flow_runs/filter", Some(json!({}))).await;
    assert_eq!(runs, json!([]));
}

#[tokio::test]
async fn post_flow_runs_of_a_missing_deployment_is_404_naming_deployment_id() {
    let app = app();
    let flow = create_flow(&app).await;
    let missing = "a0f0e10d-bef7-439a-857c-eae3b238f90f";

    let (status, body) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": flow["id"], "deployment_id": missing})),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": format!("deployment_id: deployment {missing} not found")})
    );
}

#[tokio::test]
async fn patch_job_variables_of_a_scheduled_run_are_checked_like_a_new_runs() {
    let app = app();
    let (_, deployment) = create_yaml_deployment(&app).await;
    let (status, run) = send(
        &app,
        "POST",
        &format!("/api/deployments/{}/create_flow_run", id_of(&deployment)),
        Some(recorded_request(D1.0, D1.1)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["state_type"], "SCHEDULED");
    let path = format!("/api/flow_runs/{}", id_of(&run));
    let (_, refused_at_create) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(flow_run_of(&deployment, json!({"memory": "lots"}))),
    )
    .await;

    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"job_variables": {"memory": "lots"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body, refused_at_create);

    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"job_variables": {"memory": 4096}})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, stored) = send(&app, "GET", &path, None).await;
    assert_eq!(stored["job_variables"], json!({"memory": 4096}));

    // Once the run left SCHEDULED, its job variables are fixed (Prefect's 400).
    let (status, _) = send(
        &app,
        "POST",
        &format!("{path}/set_state"),
        Some(json!({"state": {"type": "PENDING"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send(
        &app,
        "PATCH",
        &path,
        Some(json!({"job_variables": {"memory": 2048}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"detail": "Job variables for a flow run in state PENDING cannot be updated"})
    );
    let (_, stored) = send(&app, "GET", &path, None).await;
    assert_eq!(stored["job_variables"], json!({"memory": 4096}));
}

#[tokio::test]
async fn patch_job_variables_of_a_run_without_deployment_is_400() {
    let app = app();
    let flow = create_flow(&app).await;
    let (status, run) = send(
        &app,
        "POST",
        "/api/flow_runs/",
        Some(json!({"flow_id": flow["id"], "state": {"type": "SCHEDULED"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");

    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/flow_runs/{}", id_of(&run)),
        Some(json!({"job_variables": {"memory": 2048}})),
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"detail": "A deployment for the flow run could not be found"})
    );
}

/// A deployment's `concurrency_limit` and `concurrency_options` are kept as Prefect returns
/// them (both option fields present); an unknown collision strategy, a grace period out of
/// 60–86400 or a negative limit is a 422 naming the field, on create and on PATCH.
#[tokio::test]
async fn deployment_concurrency_options_are_kept_and_an_unknown_strategy_is_422() {
    let app = app();
    create_ecs_pool(&app).await;
    let flow = create_flow(&app).await;
    let mut body = with(
        recorded_request("c1-flow-deploy-ecs-pool", "010-POST-api_deployments.json"),
        "flow_id",
        flow["id"].clone(),
    );
    body["concurrency_limit"] = json!(2);
    body["concurrency_options"] = json!({"collision_strategy": "CANCEL_NEW"});
    let (status, created) = send(&app, "POST", "/api/deployments/", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Prefect 3.9.1 answers the limit as `global_concurrency_limit` (`concurrency_limit` is
    // always null "for backwards compatibility").
    assert_eq!(created["concurrency_limit"], Value::Null);
    assert_eq!(created["global_concurrency_limit"]["limit"], 2);
    assert_eq!(
        created["concurrency_options"],
        json!({"collision_strategy": "CANCEL_NEW", "grace_period_seconds": null})
    );
    let path = format!("/api/deployments/{}", created["id"].as_str().unwrap());

    for (options, limit, expected) in [
        (
            json!({"collision_strategy": "CANCEL_OLD"}),
            json!(1),
            "concurrency_options.collision_strategy: Input should be 'ENQUEUE' or 'CANCEL_NEW'",
        ),
        (
            json!({"collision_strategy": "ENQUEUE", "grace_period_seconds": 59}),
            json!(1),
            "concurrency_options.grace_period_seconds: must be an integer from 60 to 86400",
        ),
        (
            json!({"collision_strategy": "ENQUEUE"}),
            json!(-1),
            "concurrency_limit: must be greater than or equal to 0",
        ),
    ] {
        let mut bad = body.clone();
        bad["concurrency_options"] = options.clone();
        bad["concurrency_limit"] = limit.clone();
        let (status, answer) = send(&app, "POST", "/api/deployments/", Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(detail(&answer), expected);
        let patch = json!({"concurrency_options": options, "concurrency_limit": limit});
        let (status, answer) = send(&app, "PATCH", &path, Some(patch)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(detail(&answer), expected);
    }

    let patch = json!({"concurrency_options": {"collision_strategy": "ENQUEUE", "grace_period_seconds": 120}});
    let (status, _) = send(&app, "PATCH", &path, Some(patch)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(&app, "GET", &path, None).await;
    assert_eq!(
        read["concurrency_options"],
        json!({"collision_strategy": "ENQUEUE", "grace_period_seconds": 120})
    );
    assert_eq!(read["concurrency_limit"], Value::Null);
    assert_eq!(read["global_concurrency_limit"]["limit"], 2);
}
