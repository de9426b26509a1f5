//! The ECS provider against the spec-checked fake ECS: the exact requests it sends, its
//! idempotency, and how task lifecycles map to job statuses. Every test ends with the fake's
//! violations of the ECS model asserted empty.

use pushpool_provider_ecs::EcsProvider;
use pushpool_providers::{Job, JobStatus, Provider, ProviderError};
use pushpool_tests::fake_ecs::{FakeEcs, Lifecycle, ecs_push_job};
use serde_json::{Value, json};
use uuid::Uuid;

const IMAGE: &str = "prefecthq/prefect:3-latest";

/// The family of `ecs_push_job`'s jobs: pool `ecs-pool`, no deployment, flow
/// `00000000-0000-0000-0000-00000000f10f` (prefect-aws's `prefect_<pool>_<flow id>`).
const FAMILY: &str = "prefect_ecs-pool_00000000-0000-0000-0000-00000000f10f";

fn run_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1b9d3c1e_8a5e_4f2e_9c51_0c6f00000000 + n)
}

/// Job variables of a typical deployment: Fargate, 0.5 vCPU / 1 GiB, explicit network.
fn variables() -> Value {
    json!({
        "image": IMAGE,
        "cluster": "flows",
        "cpu": 512,
        "memory": 1024,
        "network_configuration": {
            "subnets": ["subnet-0a1b2c3d4e5f60001"],
            "securityGroups": ["sg-0a1b2c3d4e5f60001"],
            "assignPublicIp": "DISABLED"
        },
        "labels": {"team": "data"},
        "env": {"EXTRA_SETTING": "on"}
    })
}

fn with(mut vars: Value, key: &str, value: Value) -> Value {
    vars[key] = value;
    vars
}

async fn provider(fake: &FakeEcs) -> EcsProvider {
    EcsProvider::new(fake.sdk_config().await)
}

fn no_violations(fake: &FakeEcs) {
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// Statuses until a terminal one (at most 10 looks).
async fn statuses(provider: &EcsProvider, job: &Job, arn: &str) -> Vec<JobStatus> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let status = provider.status(job, arn).await.expect("status");
        let terminal = !matches!(status, JobStatus::Pending | JobStatus::Running);
        seen.push(status);
        if terminal {
            break;
        }
    }
    seen
}

fn environment(id: Uuid) -> Value {
    json!([
        {"name": "EXTRA_SETTING", "value": "on"},
        {"name": "PREFECT_API_URL", "value": "http://127.0.0.1:4200/api"},
        {"name": "PREFECT__FLOW_ID", "value": Uuid::from_u128(0xf10f).to_string()},
        {"name": "PREFECT__FLOW_RUN_ID", "value": id.to_string()},
    ])
}

#[tokio::test]
async fn submit_sends_the_exact_register_and_run_task_requests() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let id = run_id(1);
    let job = ecs_push_job(variables(), id, 1);

    let arn = provider.submit(&job).await.expect("submit");

    assert_eq!(
        arn,
        "arn:aws:ecs:us-east-1:123456789012:task/flows/00000000000000000000000000000001"
    );
    assert_eq!(
        fake.requests("DescribeTaskDefinition"),
        vec![json!({"taskDefinition": FAMILY})]
    );
    assert_eq!(
        fake.requests("RegisterTaskDefinition"),
        vec![json!({
            "family": FAMILY,
            "containerDefinitions": [{"name": "prefect", "image": IMAGE}],
            "cpu": "512",
            "memory": "1024",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"]
        })]
    );
    assert_eq!(
        fake.requests("RunTask"),
        vec![json!({
            "cluster": "flows",
            "taskDefinition": format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:1"),
            "launchType": "FARGATE",
            "clientToken": format!("pushpool-{id}-1"),
            "startedBy": "pushpool",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d4e5f60001"],
                "securityGroups": ["sg-0a1b2c3d4e5f60001"],
                "assignPublicIp": "DISABLED"
            }},
            "overrides": {
                "containerOverrides": [{
                    "name": "prefect",
                    "command": ["prefect", "flow-run", "execute"],
                    "environment": environment(id)
                }],
                "cpu": "512",
                "memory": "1024"
            },
            "tags": [
                {"key": "team", "value": "data"},
                {"key": "prefect.io/flow-run-id", "value": id.to_string()},
                {"key": "prefect.io/flow-run-name", "value": "elegant-caribou"},
                {"key": "prefect.io/work-pool-name", "value": "ecs-pool"}
            ]
        })]
    );
    no_violations(&fake);
}

#[tokio::test]
async fn the_same_idempotency_key_starts_one_task() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let job = ecs_push_job(variables(), run_id(2), 1);

    let first = provider.submit(&job).await.expect("first submit");
    let second = provider.submit(&job).await.expect("redelivered submit");

    assert_eq!(first, second);
    assert_eq!(fake.task_arns(), vec![first]);
    let run_tasks = fake.requests("RunTask");
    assert_eq!(run_tasks.len(), 2);
    assert_eq!(run_tasks[0], run_tasks[1]);
    // The second submission reused the revision the first registered.
    assert_eq!(fake.requests("RegisterTaskDefinition").len(), 1);
    assert_eq!(fake.requests("DescribeTaskDefinition").len(), 2);

    // The next attempt (a new key) is a new task, on the same revision.
    let retry = ecs_push_job(variables(), run_id(2), 2);
    let third = provider.submit(&retry).await.expect("next attempt");
    assert_ne!(third, second);
    assert_eq!(fake.task_arns().len(), 2);
    assert_eq!(fake.requests("RegisterTaskDefinition").len(), 1);
    no_violations(&fake);
}

#[tokio::test]
async fn a_changed_template_registers_a_new_revision() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    provider
        .submit(&ecs_push_job(variables(), run_id(3), 1))
        .await
        .expect("submit");
    let changed = with(
        variables(),
        "image",
        json!("prefecthq/prefect:3.9.1-python3.12"),
    );
    provider
        .submit(&ecs_push_job(changed, run_id(4), 1))
        .await
        .expect("submit with another image");

    let registered: Vec<Value> = fake
        .requests("RegisterTaskDefinition")
        .iter()
        .map(|r| r["containerDefinitions"][0]["image"].clone())
        .collect();
    assert_eq!(
        registered,
        vec![json!(IMAGE), json!("prefecthq/prefect:3.9.1-python3.12")]
    );
    assert_eq!(
        fake.requests("RunTask")[1]["taskDefinition"],
        json!(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:2"
        ))
    );
    no_violations(&fake);
}

/// `ecs_push_job` for a flow run of deployment `deployment` (the label the service adds).
fn deployment_job(vars: Value, deployment: Uuid, run: Uuid) -> Job {
    let mut job = ecs_push_job(vars, run, 1);
    job.configuration
        .get_mut("labels")
        .and_then(Value::as_object_mut)
        .expect("labels")
        .insert(
            "prefect.io/deployment-id".into(),
            json!(deployment.to_string()),
        );
    job
}

#[tokio::test]
async fn alternating_deployments_each_reuse_their_own_family() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let a = Uuid::from_u128(0xa);
    let b = Uuid::from_u128(0xb);
    let other_image = with(
        variables(),
        "image",
        json!("prefecthq/prefect:3.9.1-python3.12"),
    );
    for (i, (deployment, vars)) in [
        (a, variables()),
        (b, other_image.clone()),
        (a, variables()),
        (b, other_image),
    ]
    .into_iter()
    .enumerate()
    {
        provider
            .submit(&deployment_job(vars, deployment, run_id(40 + i as u128)))
            .await
            .expect("submit");
    }
    let family_a = "prefect_ecs-pool_00000000-0000-0000-0000-00000000000a";
    let family_b = "prefect_ecs-pool_00000000-0000-0000-0000-00000000000b";
    let registered: Vec<Value> = fake
        .requests("RegisterTaskDefinition")
        .iter()
        .map(|r| r["family"].clone())
        .collect();
    assert_eq!(registered, vec![json!(family_a), json!(family_b)]);
    let used: Vec<Value> = fake
        .requests("RunTask")
        .iter()
        .map(|r| r["taskDefinition"].clone())
        .collect();
    let arn = |family: &str| {
        json!(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1"
        ))
    };
    assert_eq!(
        used,
        vec![arn(family_a), arn(family_b), arn(family_a), arn(family_b)]
    );
    no_violations(&fake);
}

#[tokio::test]
async fn concurrent_submissions_of_one_family_register_one_revision() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let jobs: Vec<Job> = (0..4)
        .map(|i| ecs_push_job(variables(), run_id(50 + i), 1))
        .collect();
    let (r0, r1, r2, r3) = tokio::join!(
        provider.submit(&jobs[0]),
        provider.submit(&jobs[1]),
        provider.submit(&jobs[2]),
        provider.submit(&jobs[3]),
    );
    for r in [r0, r1, r2, r3] {
        r.expect("submit");
    }
    assert_eq!(fake.requests("RegisterTaskDefinition").len(), 1);
    assert_eq!(fake.task_arns().len(), 4);
    no_violations(&fake);
}

#[tokio::test]
async fn failed_to_start_is_failed_with_the_stopped_reason() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/prefecthq/prefect:nope: not found";
    fake.script_next_task(Lifecycle::FailedToStart {
        reason: reason.into(),
    });
    let job = ecs_push_job(variables(), run_id(5), 1);
    let arn = provider.submit(&job).await.expect("submit");

    assert_eq!(
        statuses(&provider, &job, &arn).await,
        vec![
            JobStatus::Pending,
            JobStatus::Failed {
                reason: reason.into()
            }
        ]
    );
    assert_eq!(
        fake.requests("DescribeTasks")[0],
        json!({"cluster": "flows", "tasks": [arn]})
    );
    no_violations(&fake);
}

#[tokio::test]
async fn an_oom_kill_is_exited_137_with_both_reasons() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    fake.script_next_task(Lifecycle::Exits {
        exit_code: 137,
        reason: "OutOfMemoryError: Container killed due to memory usage".into(),
    });
    let job = ecs_push_job(variables(), run_id(6), 1);
    let arn = provider.submit(&job).await.expect("submit");

    assert_eq!(
        statuses(&provider, &job, &arn).await,
        vec![
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Exited {
                exit_code: 137,
                detail: "Essential container in task exited; container prefect: OutOfMemoryError: Container killed due to memory usage".into()
            }
        ]
    );
    no_violations(&fake);
}

#[tokio::test]
async fn a_clean_exit_is_exited_0() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    fake.script_next_task(Lifecycle::Exits {
        exit_code: 0,
        reason: String::new(),
    });
    let job = ecs_push_job(variables(), run_id(7), 1);
    let arn = provider.submit(&job).await.expect("submit");

    assert_eq!(
        statuses(&provider, &job, &arn).await.last(),
        Some(&JobStatus::Exited {
            exit_code: 0,
            detail: "Essential container in task exited".into()
        })
    );
    no_violations(&fake);
}

#[tokio::test]
async fn cancel_stops_the_task_with_pushpools_reason() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let id = run_id(8);
    let job = ecs_push_job(variables(), id, 1);
    let arn = provider.submit(&job).await.expect("submit");
    assert_eq!(
        provider.status(&job, &arn).await.unwrap(),
        JobStatus::Pending
    );
    assert_eq!(
        provider.status(&job, &arn).await.unwrap(),
        JobStatus::Running
    );
    assert_eq!(
        provider.status(&job, &arn).await.unwrap(),
        JobStatus::Running
    );

    provider.cancel(&job, &arn).await.expect("cancel");

    let reason = format!("Cancelled by pushpool (flow run {id})");
    assert_eq!(
        fake.requests("StopTask"),
        vec![json!({"cluster": "flows", "task": arn, "reason": reason})]
    );
    assert_eq!(
        statuses(&provider, &job, &arn).await,
        vec![
            JobStatus::Running,
            JobStatus::Exited {
                exit_code: 143,
                detail: reason.clone()
            }
        ]
    );
    // Stopping a stopped task is fine.
    provider.cancel(&job, &arn).await.expect("second cancel");
    no_violations(&fake);
}

#[tokio::test]
async fn a_task_cancelled_before_it_ran_has_no_exit_code() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let id = run_id(9);
    let job = ecs_push_job(variables(), id, 1);
    let arn = provider.submit(&job).await.expect("submit");

    provider.cancel(&job, &arn).await.expect("cancel");

    assert_eq!(
        statuses(&provider, &job, &arn).await,
        vec![
            JobStatus::Running,
            JobStatus::Failed {
                reason: format!("Cancelled by pushpool (flow run {id})")
            }
        ]
    );
    no_violations(&fake);
}

#[tokio::test]
async fn an_unknown_task_is_missing_and_cancelling_it_is_fine() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let job = ecs_push_job(variables(), run_id(10), 1);
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/flows/0000000000000000000000000000beef";

    assert_eq!(
        provider.status(&job, arn).await.unwrap(),
        JobStatus::Missing {
            reason: format!("ECS task {arn} not found: MISSING")
        }
    );
    provider
        .cancel(&job, arn)
        .await
        .expect("cancel of a missing task");
    assert_eq!(
        fake.requests("StopTask")[0]["reason"],
        json!(format!("Cancelled by pushpool (flow run {})", run_id(10)))
    );
    no_violations(&fake);
}

#[tokio::test]
async fn run_task_failures_are_permanent_except_capacity() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    fake.script_next_task(Lifecycle::RunTaskFailure {
        reason: "ATTRIBUTE".into(),
        detail: "Task definition requires ecs.capability.task-eni".into(),
    });
    let err = provider
        .submit(&ecs_push_job(variables(), run_id(11), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ECS RunTask failed: ATTRIBUTE (arn:aws:ecs:us-east-1:123456789012:cluster/flows): Task definition requires ecs.capability.task-eni"
    );

    fake.script_next_task(Lifecycle::RunTaskFailure {
        reason: "Capacity is unavailable at this time. Please try again later or in a different availability zone".into(),
        detail: String::new(),
    });
    let err = provider
        .submit(&ecs_push_job(variables(), run_id(12), 1))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ECS RunTask failed: Capacity is unavailable at this time. Please try again later or in a different availability zone (arn:aws:ecs:us-east-1:123456789012:cluster/flows)"
    );
    assert!(fake.task_arns().is_empty());
    no_violations(&fake);
}

#[tokio::test]
async fn service_errors_read_as_sentences_with_the_services_words() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let cases = [
        (
            400,
            "ThrottlingException",
            "Rate exceeded",
            true,
            "ECS RunTask failed: ThrottlingException: Rate exceeded.",
        ),
        (
            500,
            "ServerException",
            "Service unavailable. Try again later.",
            true,
            "ECS RunTask failed: ServerException: Service unavailable. Try again later.",
        ),
        (
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
            false,
            "ECS RunTask failed: ClusterNotFoundException: Cluster not found. The cluster named by \
             the cluster job variable (ECS's default cluster when none is set) does not exist in \
             the region pushpool uses: create it, or set cluster to an existing one.",
        ),
        (
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/pushpool/x is not authorized to perform: ecs:RunTask",
            false,
            "ECS RunTask failed: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/pushpool/x \
             is not authorized to perform: ecs:RunTask. The AWS credentials pushpool used may not call \
             ecs:RunTask: allow it in their IAM policy (infra/template.yaml lists every action pushpool needs).",
        ),
        (
            400,
            "InvalidParameterException",
            "No Container Instances were found in your cluster.",
            false,
            "ECS RunTask failed: InvalidParameterException: No Container Instances were found in your \
             cluster. ECS refused a value pushpool sent from the flow run's job configuration: fix the \
             job variable or base job template field it names.",
        ),
        (
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            false,
            "ECS RunTask failed: UnrecognizedClientException: The security token included in the request \
             is invalid. AWS rejected the credentials pushpool used (invalid, expired or for another \
             partition). pushpool uses the work pool's aws_credentials block when it is set, else its \
             own AWS configuration (environment variables, shared config files, the container or \
             instance role): give one of them credentials.",
        ),
    ];
    for (i, (status, code, message, transient, expected)) in cases.into_iter().enumerate() {
        fake.inject_error("RunTask", status, code, message, 1);
        let err = provider
            .submit(&ecs_push_job(variables(), run_id(20 + i as u128), 1))
            .await
            .unwrap_err();
        assert_eq!(err.is_transient(), transient, "{code}: {err:?}");
        assert_eq!(err.to_string(), expected);
    }
    no_violations(&fake);
}

#[tokio::test]
async fn long_service_messages_are_cut_to_500_characters() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let long = format!("Invalid setting {}", "x".repeat(1000));
    fake.inject_error("RunTask", 400, "InvalidParameterException", &long, 1);
    let err = provider
        .submit(&ecs_push_job(variables(), run_id(30), 1))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(text.chars().count(), 500);
    assert_eq!(
        text,
        format!(
            "ECS RunTask failed: InvalidParameterException: Invalid setting {}…",
            "x".repeat(436)
        )
    );
    no_violations(&fake);
}

/// The default credentials chain when it finds nothing.
#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            ),
        ))
    }
}

#[tokio::test]
async fn no_credentials_is_permanent_and_says_where_pushpool_looked() {
    let fake = FakeEcs::start().await;
    let config = fake
        .sdk_config()
        .await
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(NoCredentials),
        )
        .build();
    let provider = EcsProvider::new(config);
    let err = provider
        .submit(&ecs_push_job(variables(), run_id(31), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ECS DescribeTaskDefinition was not sent: no AWS credentials were found (the credential \
         provider was not enabled: no providers in chain provided credentials). pushpool uses the work pool's \
         aws_credentials block when it is set, else its own AWS configuration (environment \
         variables, shared config files, the container or instance role): give one of them credentials."
    );
    assert_eq!(fake.all_requests(), vec![]);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient_without_debug_output() {
    let dead = format!("http://127.0.0.1:{}", pushpool_tests::tools::free_port());
    let fake = FakeEcs::start().await;
    let config = fake
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(&dead)
        .build();
    let provider = EcsProvider::new(config);
    let err = provider
        .submit(&ecs_push_job(variables(), run_id(32), 1))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ECS DescribeTaskDefinition failed: pushpool could not reach the ECS endpoint (client \
         error (Connect): tcp connect error: Connection refused (os error 111)). If it lasts, \
         check the region, AWS_ENDPOINT_URL and the network path to AWS."
    );
}

#[tokio::test]
async fn concurrent_registrations_of_a_family_are_transient() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    fake.inject_error(
        "RegisterTaskDefinition",
        400,
        "ClientException",
        "Too many concurrent attempts to create a new revision of the specified family.",
        1,
    );
    let job = ecs_push_job(variables(), run_id(33), 1);
    let err = provider.submit(&job).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ECS RegisterTaskDefinition failed: ClientException: Too many concurrent attempts to create \
         a new revision of the specified family."
    );
    // The retry registers.
    provider.submit(&job).await.expect("submit");
    no_violations(&fake);
}

#[tokio::test]
async fn a_given_task_definition_arn_is_used_as_is() {
    let fake = FakeEcs::start().await;
    let ecs = aws_sdk_ecs::Client::new(&fake.sdk_config().await);
    let registered = ecs
        .register_task_definition()
        .family("custom")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("flow")
                .image(IMAGE)
                .build(),
        )
        .send()
        .await
        .expect("register");
    let td_arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_owned();
    let provider = provider(&fake).await;
    let vars = with(variables(), "task_definition_arn", json!(td_arn));
    let vars = with(vars, "cpu", Value::Null);
    let vars = with(vars, "memory", Value::Null);
    let id = run_id(13);

    provider
        .submit(&ecs_push_job(vars, id, 1))
        .await
        .expect("submit");

    // Only the look-up of the container name; nothing registered by the provider.
    assert_eq!(
        fake.requests("DescribeTaskDefinition"),
        vec![json!({"taskDefinition": td_arn})]
    );
    assert_eq!(fake.requests("RegisterTaskDefinition").len(), 1);
    let run = &fake.requests("RunTask")[0];
    assert_eq!(run["taskDefinition"], json!(td_arn));
    assert_eq!(
        run["overrides"],
        json!({"containerOverrides": [{
            "name": "flow",
            "command": ["prefect", "flow-run", "execute"],
            "environment": environment(id)
        }]})
    );
    no_violations(&fake);
}

#[tokio::test]
async fn fargate_spot_runs_on_the_fargate_spot_capacity_provider() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let vars = with(variables(), "launch_type", json!("FARGATE_SPOT"));
    provider
        .submit(&ecs_push_job(vars, run_id(14), 1))
        .await
        .expect("submit");

    let run = &fake.requests("RunTask")[0];
    assert_eq!(run.get("launchType"), None);
    assert_eq!(
        run["capacityProviderStrategy"],
        json!([{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    );
    assert_eq!(
        fake.requests("RegisterTaskDefinition")[0]["requiresCompatibilities"],
        json!(["FARGATE"])
    );
    no_violations(&fake);
}

#[tokio::test]
async fn invalid_configurations_make_no_request() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;

    let vars = with(with(variables(), "cpu", json!(256)), "memory", json!(4096));
    match provider.submit(&ecs_push_job(vars, run_id(15), 1)).await {
        Err(ProviderError::InvalidConfiguration { field, message }) => {
            assert_eq!(field, "task_definition.memory");
            assert_eq!(
                message,
                "Fargate does not allow memory 4096 MiB with cpu 256; allowed memory with cpu 256: 512, 1024, 2048 MiB"
            );
        }
        other => panic!("{other:?}"),
    }

    let vars = with(variables(), "image", Value::Null);
    match provider.submit(&ecs_push_job(vars, run_id(16), 1)).await {
        Err(ProviderError::InvalidConfiguration { field, message }) => {
            assert_eq!(field, "image");
            assert_eq!(
                message,
                "no container image for the flow's container: set the `image` job variable"
            );
        }
        other => panic!("{other:?}"),
    }

    let vars = with(
        variables(),
        "network_configuration",
        json!({"securityGroups": ["sg-1"]}),
    );
    match provider.submit(&ecs_push_job(vars, run_id(17), 1)).await {
        Err(ProviderError::InvalidConfiguration { field, .. }) => {
            assert_eq!(field, "network_configuration.subnets");
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(fake.all_requests(), vec![]);
    no_violations(&fake);
}

#[tokio::test]
async fn credentials_blocks_are_used_and_never_shown() {
    let fake = FakeEcs::start().await;
    // The process's own configuration points nowhere: only the block's endpoint works.
    let dead = format!("http://127.0.0.1:{}", pushpool_tests::tools::free_port());
    let base = pushpool_tests::moto::test_sdk_config(&dead).await;
    let provider = EcsProvider::new(base);
    let secret = "pushpool-very-secret-access-key";
    let vars = with(
        variables(),
        "aws_credentials",
        json!({
            "aws_access_key_id": "AKIAPUSHPOOLTEST0001",
            "aws_secret_access_key": secret,
            "aws_session_token": "pushpool-very-secret-session-token",
            "region_name": "us-east-1",
            "aws_client_parameters": {"endpoint_url": fake.endpoint},
        }),
    );
    let job = ecs_push_job(vars, run_id(18), 1);
    fake.inject_error(
        "RunTask",
        400,
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/AKIAPUSHPOOLTEST0001 is not authorized to perform: ecs:RunTask",
        1,
    );

    let err = provider.submit(&job).await.unwrap_err();

    assert_eq!(fake.requests("RunTask").len(), 1);
    let shown = format!("{err} {err:?} {provider:?} {job:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    // The same block again: the cached clients, still the block's endpoint.
    let arn = provider.submit(&job).await.expect("submit");
    assert_eq!(fake.task_arns(), vec![arn]);
    no_violations(&fake);
}

#[tokio::test]
async fn the_fake_rejects_requests_that_break_the_model() {
    let fake = FakeEcs::start().await;
    let response = reqwest::Client::new()
        .post(&fake.endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.RunTask")
        .body(
            json!({
                "taskDefinition": "prefect",
                "clientToken": "x".repeat(65),
                "launchType": "LAMBDA",
                "overrides": {"containerOverrides": [{"name": "prefect", "command": "prefect"}]},
                "bogus": true
            })
            .to_string(),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["__type"], json!("ValidationException"));
    let mut violations = fake.take_violations();
    violations.sort();
    assert_eq!(
        violations,
        vec![
            "RunTask.bogus: RunTaskRequest has no member bogus".to_owned(),
            format!(
                "RunTask.clientToken: \"{}\" breaks the model's documented rule \"Up to 64 characters are allowed. The valid characters are characters in the range of 33-126, inclusive.\"",
                "x".repeat(65)
            ),
            "RunTask.launchType: \"LAMBDA\" is not a value of enum LaunchType".to_owned(),
            "RunTask.overrides.containerOverrides[0].command: StringList must be a list, got \"prefect\"".to_owned(),
        ]
    );
    assert!(fake.requests("RunTask").is_empty());
    no_violations(&fake);
}

#[tokio::test]
async fn a_sidecar_does_not_hide_the_flows_exit_code() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    fake.script_next_task(Lifecycle::Exits {
        exit_code: 1,
        reason: String::new(),
    });
    let vars = with(variables(), "container_name", json!("prefect"));
    let mut job = ecs_push_job(vars, run_id(19), 1);
    // A customised template: a non-essential sidecar before the flow's container.
    job.configuration["task_definition"]["containerDefinitions"]
        .as_array_mut()
        .expect("container definitions")
        .insert(0, json!({"name": "sidecar", "image": "public.ecr.aws/docker/library/busybox:1", "essential": false}));
    let arn = provider.submit(&job).await.expect("submit");

    assert_eq!(
        fake.requests("RegisterTaskDefinition")[0]["containerDefinitions"],
        json!([
            {"name": "sidecar", "image": "public.ecr.aws/docker/library/busybox:1", "essential": false},
            {"name": "prefect", "image": IMAGE}
        ])
    );
    assert_eq!(
        fake.requests("RunTask")[0]["overrides"]["containerOverrides"][0]["name"],
        json!("prefect")
    );
    assert_eq!(
        statuses(&provider, &job, &arn).await.last(),
        Some(&JobStatus::Exited {
            exit_code: 1,
            detail: "Essential container in task exited".into()
        })
    );
    no_violations(&fake);
}

#[tokio::test]
async fn a_changed_request_under_the_same_key_keeps_the_first_task() {
    let fake = FakeEcs::start().await;
    let provider = provider(&fake).await;
    let first = provider
        .submit(&ecs_push_job(variables(), run_id(30), 1))
        .await
        .expect("submit");
    // The pool's template changed between two deliveries of the same submission.
    let changed = with(
        variables(),
        "image",
        json!("prefecthq/prefect:3.9.1-python3.12"),
    );

    let again = provider
        .submit(&ecs_push_job(changed, run_id(30), 1))
        .await
        .expect("redelivered submit");

    assert_eq!(again, first);
    assert_eq!(fake.task_arns(), vec![first]);
    let run_tasks = fake.requests("RunTask");
    assert_eq!(run_tasks[0]["clientToken"], run_tasks[1]["clientToken"]);
    assert_ne!(
        run_tasks[0]["taskDefinition"],
        run_tasks[1]["taskDefinition"]
    );
    no_violations(&fake);
}
