//! Lifecycle from the provider, end to end: the embedded server submits to a fake ECS that
//! follows the published ECS model (`tests/fixtures/ecs/service-2.json`), and the reconciler
//! finishes each run from what `DescribeTasks` says — with the exact final state and message.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::fake_ecs::{FakeEcs, Lifecycle};
use serde_json::{Value, json};

struct Setup {
    app: TestApp,
    fake: FakeEcs,
    deployment_id: String,
}

async fn setup() -> Setup {
    setup_with_budget(pushpool_service::DEFAULT_RETRY_BUDGET).await
}

async fn setup_with_budget(retry_budget: Duration) -> Setup {
    let fake = FakeEcs::start().await;
    let sdk = fake.sdk_config().await;
    let app = TestApp::spawn_with(|c| {
        c.aws = Some(sdk);
        c.reconcile_interval = Duration::from_millis(200);
        c.service = c.service.clone().with_retry_budget(retry_budget);
    })
    .await;
    let (status, _) = app
        .send(
            "POST",
            "/work_pools/",
            Some(json!({"name": "ecs-pool", "type": "ecs:push"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, flow) = app
        .send("POST", "/flows/", Some(json!({"name": "etl"})))
        .await;
    assert_eq!(status, 201);
    let (status, deployment) = app
        .send(
            "POST",
            "/deployments/",
            Some(json!({
                "name": "nightly",
                "flow_id": flow["id"],
                "work_pool_name": "ecs-pool",
                "job_variables": {
                    "image": "prefecthq/prefect:3-latest",
                    "cluster": "prod",
                    "cpu": 256,
                    "memory": 512,
                    "network_configuration": {"awsvpcConfiguration": {
                        "subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"],
                        "assignPublicIp": "DISABLED"}},
                },
            })),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    Setup {
        app,
        fake,
        deployment_id: deployment["id"].as_str().unwrap().to_owned(),
    }
}

async fn run(s: &Setup) -> uuid::Uuid {
    let (status, run) = s
        .app
        .send(
            "POST",
            &format!("/deployments/{}/create_flow_run", s.deployment_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().parse().unwrap()
}

fn last_message(run: &pushpool_core::model::FlowRun) -> Option<&str> {
    run.state.as_ref().and_then(|s| s.message.as_deref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_fails_to_start_ends_crashed_with_the_stop_reason() {
    let s = setup().await;
    let reason = "CannotPullContainerError: pull image manifest has been retried 7 time(s): \
                  failed to resolve ref docker.io/prefecthq/prefect:3-nope: not found";
    s.fake.script_next_task(Lifecycle::FailedToStart {
        reason: reason.into(),
    });
    let id = run(&s).await;
    let done = s
        .app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&done),
        Some(format!("Flow run infrastructure failed: {reason}").as_str())
    );
    let tasks = s.fake.task_arns();
    assert_eq!(tasks.len(), 1);
    assert_eq!(done.infrastructure_pid.as_deref(), Some(tasks[0].as_str()));
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_essential_container_exiting_137_ends_crashed() {
    let s = setup().await;
    s.fake.script_next_task(Lifecycle::Exits {
        exit_code: 137,
        reason: "OutOfMemoryError: Container killed due to memory usage".into(),
    });
    let id = run(&s).await;
    let done = s
        .app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&done),
        Some(
            "Flow run infrastructure exited with non-zero status code 137. Essential container \
             in task exited; container prefect: OutOfMemoryError: Container killed due to memory usage"
        )
    );
    let history: Vec<StateType> = s.app.history(id).await.into_iter().map(|h| h.0).collect();
    assert_eq!(
        history,
        [StateType::Scheduled, StateType::Pending, StateType::Crashed]
    );
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_stays_completed_when_its_task_stops_late() {
    let s = setup().await;
    s.fake.script_next_task(Lifecycle::Exits {
        exit_code: 1,
        reason: String::new(),
    });
    let id = run(&s).await;
    // The engine in the container reports RUNNING then COMPLETED before the task stops.
    let pid = loop {
        let r = s.app.flow_run(id).await;
        if let Some(pid) = r.infrastructure_pid {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for t in ["RUNNING", "COMPLETED"] {
        let (status, body) = s
            .app
            .send(
                "POST",
                &format!("/flow_runs/{id}/set_state"),
                Some(json!({"state": {"type": t}, "force": false})),
            )
            .await;
        assert_eq!(
            (status, body["status"].clone()),
            (201, Value::from("ACCEPT")),
            "{body}"
        );
    }
    // Let the reconciler see the stopped task (exit code 1) several times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = s.app.flow_run(id).await;
    assert_eq!(after.state_type, Some(StateType::Completed));
    assert_eq!(after.infrastructure_pid.as_deref(), Some(pid.as_str()));
    let history: Vec<StateType> = s.app.history(id).await.into_iter().map(|h| h.0).collect();
    assert_eq!(
        history,
        [
            StateType::Scheduled,
            StateType::Pending,
            StateType::Running,
            StateType::Completed
        ]
    );
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelling_run_ends_cancelled_after_stop_task() {
    let s = setup().await;
    s.fake.script_next_task(Lifecycle::Runs);
    let id = run(&s).await;
    let pid = loop {
        let r = s.app.flow_run(id).await;
        if let Some(pid) = r.infrastructure_pid {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // `prefect flow-run cancel` proposes CANCELLING.
    let (status, body) = s
        .app
        .send(
            "POST",
            &format!("/flow_runs/{id}/set_state"),
            Some(json!({"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let done = s
        .app
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&done),
        Some("Flow run was cancelled; its infrastructure was stopped by pushpool.")
    );
    let stops = s.fake.requests("StopTask");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["task"], Value::from(pid.as_str()));
    assert_eq!(stops[0]["cluster"], "prod");
    assert_eq!(
        stops[0]["reason"],
        Value::from(format!("Cancelled by pushpool (flow run {id})"))
    );
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_error_ends_crashed_with_the_services_words_and_one_run_task() {
    let s = setup().await;
    s.fake.inject_error(
        "RunTask",
        400,
        "ClusterNotFoundException",
        "Cluster not found.",
        1,
    );
    let id = run(&s).await;
    let done = s
        .app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&done),
        Some(
            "Flow run could not be submitted to infrastructure: ECS RunTask failed: ClusterNotFoundException: \
             Cluster not found. The cluster named by the cluster job variable (ECS's default cluster when \
             none is set) does not exist in the region pushpool uses: create it, or set cluster to an \
             existing one."
        )
    );
    assert_eq!(s.fake.requests("RunTask").len(), 1);
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_a_given_task_definition_ignores_are_named_in_the_submission_message() {
    let s = setup().await;
    let registered = aws_sdk_ecs::Client::new(&s.fake.sdk_config().await)
        .register_task_definition()
        .family("custom")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("prefect")
                .image("prefecthq/prefect:3-latest")
                .build(),
        )
        .send()
        .await
        .expect("register");
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_owned();
    let (status, run) = s
        .app
        .send(
            "POST",
            &format!("/deployments/{}/create_flow_run", s.deployment_id),
            Some(json!({"job_variables": {"task_definition_arn": arn, "family": "mine"}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id: uuid::Uuid = run["id"].as_str().unwrap().parse().unwrap();
    let pending = s
        .app
        .wait_for_state(id, StateType::Pending, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&pending),
        Some(
            "Submitting to work pool 'ecs-pool' (ecs:push). Job variables image and family are \
             ignored: task_definition_arn names the task definition to run, which is used as it is \
             (cpu, memory, task_role_arn, env and command still apply, as task overrides)."
        )
    );
    // The run still ran, on the given task definition.
    let run_tasks = s.fake.requests("RunTask");
    assert_eq!(run_tasks.len(), 1);
    assert_eq!(run_tasks[0]["taskDefinition"], json!(arn));
    assert_eq!(s.fake.requests("RegisterTaskDefinition").len(), 1);
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fargate_size_aws_refuses_is_a_422_at_run_creation() {
    let s = setup().await;
    let (status, body) = s
        .app
        .send(
            "POST",
            &format!("/deployments/{}/create_flow_run", s.deployment_id),
            Some(json!({"job_variables": {"cpu": 256, "memory": 4096}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body,
        json!({"detail": "invalid job variables: job_variables.memory: Fargate does not allow memory \
            4096 MiB with cpu 256; allowed memory with cpu 256: 512, 1024, 2048 MiB"})
    );
    assert_eq!(s.fake.requests("RunTask").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_past_the_retry_budget_ends_crashed_saying_how_long_pushpool_tried() {
    // A zero budget: one attempt, no wait.
    let s = setup_with_budget(Duration::ZERO).await;
    s.fake.inject_error(
        "DescribeTaskDefinition",
        400,
        "ThrottlingException",
        "Rate exceeded",
        1,
    );
    let id = run(&s).await;
    let done = s
        .app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(20))
        .await;
    assert_eq!(
        last_message(&done),
        Some(
            "Flow run could not be submitted to infrastructure after 1 attempt over 0 s: ECS \
             DescribeTaskDefinition failed: ThrottlingException: Rate exceeded. pushpool stopped \
             retrying at the end of its 0 s retry budget: run the flow again later, or raise the \
             budget (PUSHPOOL_PROVIDER_RETRY_BUDGET)."
        )
    );
    assert_eq!(s.fake.requests("RunTask").len(), 0);
    assert_eq!(s.fake.violations(), Vec::<String>::new());
}
