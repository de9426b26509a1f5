//! The ECS provider against moto server: the requests it makes are accepted by an AWS
//! emulator, and what moto recorded (task overrides, task definitions, network attachments)
//! is exactly what the job configuration asked for. moto's task lifecycle is synthetic, so
//! statuses are tested against the fake (`ecs_fake.rs`).
//!
//! Every test starts its own moto; a missing virtualenv fails with the install command.

use aws_sdk_ecs::types::{KeyValuePair, Task, TaskField};
use pushpool_provider_ecs::EcsProvider;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError};
use pushpool_tests::fake_ecs::ecs_push_job;
use pushpool_tests::moto::{DefaultNetwork, MotoServer};
use serde_json::{Value, json};
use uuid::Uuid;

const IMAGE: &str = "prefecthq/prefect:3-latest";

fn run_id(n: u128) -> Uuid {
    Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_0000 + n)
}

/// Job variables like a deployment's, plus the container-level memory moto needs (its bug
/// 1) through a customised `task_definition`.
fn variables(cluster: &str, network: Option<&DefaultNetwork>) -> Value {
    let mut vars = json!({
        "image": IMAGE,
        "cluster": cluster,
        "cpu": 256,
        "memory": 512,
        "labels": {"team": "data"},
        "env": {"EXTRA_SETTING": "on"}
    });
    if let Some(net) = network {
        vars["network_configuration"] = json!({
            "subnets": [net.subnet_ids[0]],
            "securityGroups": [net.security_group_id],
            "assignPublicIp": "ENABLED"
        });
    }
    vars
}

/// The rendered default template, with `memory` set on the flow's container (moto bug 1).
fn job(vars: Value, id: Uuid) -> Job {
    let mut job = ecs_push_job(vars, id, 1);
    let container = job
        .configuration
        .get_mut("task_definition")
        .and_then(|td| td.get_mut("containerDefinitions"))
        .and_then(|cs| cs.get_mut(0))
        .and_then(Value::as_object_mut)
        .expect("the template has a container definition");
    container.insert("memory".into(), json!(512));
    job
}

async fn describe(moto: &MotoServer, cluster: &str, arn: &str) -> Task {
    let out = moto
        .ecs()
        .await
        .describe_tasks()
        .cluster(cluster)
        .tasks(arn)
        .include(TaskField::Tags)
        .send()
        .await
        .expect("moto DescribeTasks");
    out.tasks().first().cloned().expect("moto knows the task")
}

fn env(pairs: &[KeyValuePair]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_owned(),
                kv.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn submit_runs_a_fargate_task_with_the_rendered_overrides() {
    let moto = MotoServer::start();
    let cluster_arn = moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    let provider = EcsProvider::new(moto.sdk_config().await);
    let id = run_id(1);

    let arn = provider
        .submit(&job(variables("flows", Some(&network)), id))
        .await
        .expect("submit");

    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/"),
        "{arn}"
    );
    let task = describe(&moto, "flows", &arn).await;
    assert_eq!(task.cluster_arn(), Some(cluster_arn.as_str()));
    assert_eq!(task.started_by(), Some("pushpool"));
    let overrides = task.overrides().expect("overrides");
    assert_eq!(overrides.cpu(), Some("256"));
    assert_eq!(overrides.memory(), Some("512"));
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("prefect"));
    assert_eq!(container.command(), ["prefect", "flow-run", "execute"]);
    assert_eq!(
        env(container.environment()),
        vec![
            ("EXTRA_SETTING".to_owned(), "on".to_owned()),
            (
                "PREFECT_API_URL".to_owned(),
                "http://127.0.0.1:4200/api".to_owned()
            ),
            (
                "PREFECT__FLOW_ID".to_owned(),
                Uuid::from_u128(0xf10f).to_string()
            ),
            ("PREFECT__FLOW_RUN_ID".to_owned(), id.to_string()),
        ]
    );
    let tags: Vec<(&str, &str)> = task
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    let id_text = id.to_string();
    assert_eq!(
        tags,
        vec![
            ("team", "data"),
            ("prefect.io/flow-run-id", id_text.as_str()),
            ("prefect.io/flow-run-name", "elegant-caribou"),
            ("prefect.io/work-pool-name", "ecs-pool"),
        ]
    );

    let td_arn = task.task_definition_arn().expect("task definition ARN");
    assert_eq!(
        td_arn,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f:1"
    );
    let td = moto
        .ecs()
        .await
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .expect("moto DescribeTaskDefinition")
        .task_definition
        .expect("task definition");
    assert_eq!(
        td.family(),
        Some("prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f")
    );
    assert_eq!(td.cpu(), Some("256"));
    assert_eq!(td.memory(), Some("512"));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    let containers = td.container_definitions();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].name(), Some("prefect"));
    assert_eq!(containers[0].image(), Some(IMAGE));
    assert_eq!(containers[0].memory(), Some(512));

    let subnet = task.attachments()[0]
        .details()
        .iter()
        .find(|d| d.name() == Some("subnetId"))
        .and_then(|d| d.value());
    assert_eq!(subnet, Some(network.subnet_ids[0].as_str()));
}

#[tokio::test]
async fn a_second_submit_reuses_the_task_definition_revision() {
    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    let provider = EcsProvider::new(moto.sdk_config().await);

    let first = provider
        .submit(&job(variables("flows", Some(&network)), run_id(2)))
        .await
        .expect("first submit");
    let second = provider
        .submit(&job(variables("flows", Some(&network)), run_id(3)))
        .await
        .expect("second submit");

    assert_ne!(first, second);
    let definitions = moto
        .ecs()
        .await
        .list_task_definitions()
        .family_prefix("prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f")
        .send()
        .await
        .expect("moto ListTaskDefinitions");
    assert_eq!(
        definitions.task_definition_arns(),
        [
            "arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f:1"
        ]
    );
    let a = describe(&moto, "flows", &first).await;
    let b = describe(&moto, "flows", &second).await;
    assert_eq!(a.task_definition_arn(), b.task_definition_arn());

    // Another image is another revision.
    let mut vars = variables("flows", Some(&network));
    vars["image"] = json!("prefecthq/prefect:3.9.1-python3.12");
    let third = provider
        .submit(&job(vars, run_id(4)))
        .await
        .expect("third submit");
    assert_eq!(
        describe(&moto, "flows", &third).await.task_definition_arn(),
        Some(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f:2"
        )
    );
}

#[tokio::test]
async fn a_missing_cluster_is_a_permanent_error_in_the_services_words() {
    let moto = MotoServer::start();
    let network = moto.default_network().await;
    let provider = EcsProvider::new(moto.sdk_config().await);

    let err = provider
        .submit(&job(
            variables("no-such-cluster", Some(&network)),
            run_id(5),
        ))
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ClusterNotFoundException"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "ECS RunTask failed: ClusterNotFoundException: Cluster not found. The cluster named by \
         the cluster job variable (ECS's default cluster when none is set) does not exist in the \
         region pushpool uses: create it, or set cluster to an existing one."
    );

    // A task cannot outlive its cluster: missing, and cancelling it is done.
    let job = job(variables("no-such-cluster", Some(&network)), run_id(5));
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/no-such-cluster/0123456789abcdef";
    assert_eq!(
        provider.status(&job, arn).await.unwrap(),
        JobStatus::Missing {
            reason: "ECS DescribeTasks failed: ClusterNotFoundException: Cluster not found.".into()
        }
    );
    provider
        .cancel(&job, arn)
        .await
        .expect("cancel in a missing cluster");
}

#[tokio::test]
async fn without_network_configuration_the_default_vpc_is_used() {
    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    assert!(network.subnet_ids.len() > 1, "{network:?}");
    let provider = EcsProvider::new(moto.sdk_config().await);

    let arn = provider
        .submit(&job(variables("flows", None), run_id(6)))
        .await
        .expect("submit");

    // moto attaches the task's ENI to the first subnet of the request: the provider sent
    // the default VPC's subnets, sorted.
    let task = describe(&moto, "flows", &arn).await;
    let details = task.attachments()[0].details();
    let value = |name: &str| {
        details
            .iter()
            .find(|d| d.name() == Some(name))
            .and_then(|d| d.value())
            .map(str::to_owned)
    };
    assert_eq!(value("subnetId"), Some(network.subnet_ids[0].clone()));
    // ... and the default VPC's default security group.
    let eni = value("networkInterfaceId").expect("ENI id");
    let enis = moto
        .ec2()
        .await
        .describe_network_interfaces()
        .network_interface_ids(&eni)
        .send()
        .await
        .expect("moto DescribeNetworkInterfaces");
    let groups: Vec<&str> = enis.network_interfaces()[0]
        .groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, vec![network.security_group_id.as_str()]);
    assert_eq!(
        enis.network_interfaces()[0].vpc_id(),
        Some(network.vpc_id.as_str())
    );
}

#[tokio::test]
async fn an_invalid_fargate_size_is_refused_before_any_call() {
    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    let provider = EcsProvider::new(moto.sdk_config().await);
    let mut vars = variables("flows", Some(&network));
    vars["cpu"] = json!(256);
    vars["memory"] = json!(4096);

    match provider.submit(&job(vars, run_id(7))).await {
        Err(ProviderError::InvalidConfiguration { field, message }) => {
            assert_eq!(field, "task_definition.memory");
            assert_eq!(
                message,
                "Fargate does not allow memory 4096 MiB with cpu 256; allowed memory with cpu 256: 512, 1024, 2048 MiB"
            );
        }
        other => panic!("{other:?}"),
    }

    let ecs = moto.ecs().await;
    let definitions = ecs.list_task_definitions().send().await.expect("list");
    assert!(definitions.task_definition_arns().is_empty());
    let tasks = ecs
        .list_tasks()
        .cluster("flows")
        .send()
        .await
        .expect("list");
    assert!(tasks.task_arns().is_empty());
}

#[tokio::test]
async fn cancel_stops_the_task_in_moto() {
    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    let provider = EcsProvider::new(moto.sdk_config().await);
    let id = run_id(8);
    let job = job(variables("flows", Some(&network)), id);
    let arn = provider.submit(&job).await.expect("submit");

    provider.cancel(&job, &arn).await.expect("cancel");

    let task = describe(&moto, "flows", &arn).await;
    assert_eq!(task.desired_status(), Some("STOPPED"));
    assert_eq!(
        task.stopped_reason(),
        Some(format!("Cancelled by pushpool (flow run {id})").as_str())
    );
}

#[tokio::test]
async fn a_credentials_block_replaces_the_process_configuration() {
    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    // The process's own configuration points nowhere and has another region.
    let dead = format!("http://127.0.0.1:{}", pushpool_tests::tools::free_port());
    let base = pushpool_tests::moto::test_sdk_config(&dead)
        .await
        .into_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let provider = EcsProvider::new(base);
    let mut vars = variables("flows", Some(&network));
    vars["aws_credentials"] = json!({
        "aws_access_key_id": "AKIAPUSHPOOLTEST0002",
        "aws_secret_access_key": "pushpool-very-secret-access-key",
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": moto.endpoint},
    });

    let arn = provider
        .submit(&job(vars, run_id(9)))
        .await
        .expect("submit");

    assert!(arn.starts_with("arn:aws:ecs:us-east-1:"), "{arn}");
    assert!(!format!("{provider:?}").contains("very-secret"));
}

/// Two submitters in different processes (two providers: their in-process family locks are
/// separate, as in two Lambda invocations) submit runs of one deployment whose task
/// definition family does not exist yet, at once: with the family lease in the table they
/// share (DynamoDB, on the same moto), one revision is registered and both tasks use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submitters_in_two_processes_register_one_revision_of_a_new_family() {
    use std::sync::Arc;

    use pushpool_service::StoreLeases;
    use pushpool_store_dynamodb::DynamoStore;

    let moto = MotoServer::start();
    moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    let config = moto.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    DynamoStore::create_table(&dynamodb, "pushpool")
        .await
        .expect("table");
    let process = || {
        let store = Arc::new(DynamoStore::new(dynamodb.clone(), "pushpool"));
        EcsProvider::new(config.clone()).with_leases(Arc::new(StoreLeases(store)))
    };
    let (first, second) = (process(), process());
    let jobs: Vec<Job> = (0..4)
        .map(|i| job(variables("flows", Some(&network)), run_id(40 + i)))
        .collect();
    let (a, b, c, d) = tokio::join!(
        first.submit(&jobs[0]),
        second.submit(&jobs[1]),
        first.submit(&jobs[2]),
        second.submit(&jobs[3]),
    );
    let arns: Vec<String> = [a, b, c, d]
        .into_iter()
        .map(|r| r.expect("submit"))
        .collect();
    let family = "prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f";
    let revisions = moto
        .ecs()
        .await
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("moto ListTaskDefinitions");
    assert_eq!(
        revisions.task_definition_arns(),
        [format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1"
        )]
    );
    for arn in &arns {
        let task = describe(&moto, "flows", arn).await;
        assert_eq!(
            task.task_definition_arn(),
            Some(format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1").as_str())
        );
    }
}
