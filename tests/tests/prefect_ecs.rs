//! The real Prefect client drives pushpool, and pushpool submits to ECS (moto server) with no
//! worker running: `prefect work-pool create --type ecs:push`, an `AwsCredentials` block saved
//! and loaded (its secret obfuscated unless asked for), `flow.deploy(...)` and
//! `prefect deployment run` → one `RunTask` whose cluster, task definition, overrides and
//! network configuration the test reads back from moto.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::moto::MotoServer;
use pushpool_tests::python::{prefect, python};

const SECRET: &str = "moto-secret-access-key-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefect_client_deploys_and_runs_on_ecs_without_a_worker() {
    let moto = MotoServer::start();
    // moto moves tasks towards STOPPED on every DescribeTasks; freeze them RUNNING so the
    // reconciler sees a running task (moto bug 5 in the emulator report).
    reqwest::Client::new()
        .post(format!(
            "{}/moto-api/state-manager/set-transition",
            moto.endpoint
        ))
        .json(&serde_json::json!({"model_name": "ecs::task",
            "transition": {"progression": "manual", "times": 1000}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let cluster_arn = moto.create_cluster("my-cluster").await;
    let network = moto.default_network().await;
    let sdk = moto.sdk_config().await;
    let app = TestApp::spawn_with(|c| c.aws = Some(sdk)).await;
    let dir = tempfile::tempdir().unwrap();

    let created = prefect(
        &app.api,
        dir.path(),
        &["work-pool", "create", "my-push-pool", "--type", "ecs:push"],
    )
    .await
    .ok();
    assert!(
        created.stdout.contains("Created work pool 'my-push-pool'"),
        "{}",
        created.stdout
    );

    let script = format!(
        r#"
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect_aws import AwsCredentials

creds = AwsCredentials(aws_access_key_id="AKIATESTPUSHPOOL", aws_secret_access_key={SECRET:?},
                       region_name="us-east-1", aws_client_parameters={{"endpoint_url": {endpoint:?}}})
block_id = creds.save("my-aws-creds")
loaded = AwsCredentials.load("my-aws-creds")
assert loaded.aws_secret_access_key.get_secret_value() == {SECRET:?}, "secret round-trips"
assert loaded.aws_access_key_id == "AKIATESTPUSHPOOL"

with get_client(sync_client=True) as client:
    pool = client.read_work_pool("my-push-pool")
    template = pool.base_job_template
    template["variables"]["properties"]["aws_credentials"]["default"] = {{"$ref": {{"block_document_id": str(block_id)}}}}
    # moto needs a container-level memory (bug 1 in the emulator report)
    template["job_configuration"]["task_definition"]["containerDefinitions"][0]["memory"] = "{{{{ memory }}}}"
    client.update_work_pool("my-push-pool", WorkPoolUpdate(base_job_template=template))

@flow
def my_flow(x: int = 1):
    return x

my_flow.deploy(name="my-deployment", work_pool_name="my-push-pool",
               image="prefecthq/prefect:3-latest", build=False, push=False,
               job_variables={{"cluster": "my-cluster", "cpu": 256, "memory": 512}})
print("deployed")
"#,
        endpoint = moto.endpoint
    );
    let deployed = python(&app.api, dir.path(), &script).await.ok();
    assert!(deployed.stdout.contains("deployed"));

    // The secret is stored but never answered without include_secrets.
    let (status, doc) = app
        .send(
            "GET",
            "/block_types/slug/aws-credentials/block_documents/name/my-aws-creds",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["data"]["aws_secret_access_key"], "********");
    assert_eq!(doc["data"]["aws_access_key_id"], "AKIATESTPUSHPOOL");
    let (_, with_secrets) = app
        .send(
            "GET",
            "/block_types/slug/aws-credentials/block_documents/name/my-aws-creds?include_secrets=true",
            None,
        )
        .await;
    assert_eq!(with_secrets["data"]["aws_secret_access_key"], SECRET);

    let ran = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "my-flow/my-deployment"],
    )
    .await
    .ok();
    let id = ran.flow_run_id();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let run = loop {
        let run = app.flow_run(id).await;
        if run.infrastructure_pid.is_some() || tokio::time::Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        run.state_type,
        Some(StateType::Pending),
        "{:#?}",
        app.history(id).await
    );
    let task_arn = run.infrastructure_pid.clone().expect("task ARN recorded");
    assert!(
        task_arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/my-cluster/"),
        "{task_arn}"
    );

    // What RunTask asked for, read back from moto.
    let ecs = moto.ecs().await;
    let described = ecs
        .describe_tasks()
        .cluster("my-cluster")
        .tasks(&task_arn)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.cluster_arn(), Some(cluster_arn.as_str()));
    assert_eq!(task.started_by(), Some("pushpool"));
    assert_eq!(task.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let overrides = task.overrides().expect("overrides");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("prefect"));
    assert_eq!(container.command(), ["prefect", "flow-run", "execute"]);
    let env: std::collections::BTreeMap<&str, &str> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    assert_eq!(
        env.get("PREFECT__FLOW_RUN_ID"),
        Some(&id.to_string().as_str())
    );
    assert_eq!(env.get("PREFECT_API_URL"), Some(&app.api.as_str()));
    assert!(
        !env.values().any(|v| v.contains(SECRET)),
        "no secret in the container env"
    );

    let td_arn = task.task_definition_arn().expect("task definition");
    let td = ecs
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    // prefect-aws's family: one per work pool and deployment.
    let deployment_id = env
        .get("PREFECT__DEPLOYMENT_ID")
        .expect("PREFECT__DEPLOYMENT_ID");
    assert_eq!(
        td.family(),
        Some(format!("prefect_my-push-pool_{deployment_id}").as_str())
    );
    assert_eq!(td.cpu(), Some("256"));
    assert_eq!(td.memory(), Some("512"));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(
        td.container_definitions()[0].image(),
        Some("prefecthq/prefect:3-latest")
    );

    // No network configuration in the template: the default VPC's subnets were used.
    let eni_subnet = task
        .attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("subnetId"))
        .and_then(|d| d.value())
        .expect("awsvpc attachment with a subnet");
    assert!(
        network.subnet_ids.iter().any(|s| s == eni_subnet),
        "{eni_subnet} not in {:?}",
        network.subnet_ids
    );

    // Exactly one task for the run.
    let listed = ecs
        .list_tasks()
        .cluster("my-cluster")
        .started_by("pushpool")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.task_arns(), std::slice::from_ref(&task_arn));
}
