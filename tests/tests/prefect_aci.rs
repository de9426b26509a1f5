//! The real Prefect client drives pushpool, and pushpool submits to Azure Container Instances
//! (the spec-checked fake ARM + Entra ID of `pushpool_tests::fake_aci`) with no worker
//! running: `prefect work-pool create --type azure-container-instance:push`, an
//! `AzureContainerInstanceCredentials` block saved with prefect-azure and set as the pool's
//! `aci_credentials` default (as Prefect's push provisioner does), `flow.deploy(...)` and
//! `prefect deployment run` → exactly one container group, whose body the test asserts; then
//! each run follows the container group's status to its final state, and the group is
//! deleted once the run is final.

use std::sync::Arc;
use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_provider_aci::{AciProvider, container_group_name};
use pushpool_providers::Providers;
use pushpool_tests::app::TestApp;
use pushpool_tests::fake_aci::{
    CLIENT_ID, CLIENT_SECRET, FakeAci, LOCATION, Lifecycle, RESOURCE_GROUP, SUBSCRIPTION_ID,
    TENANT_ID, pull_failure_message,
};
use pushpool_tests::python::{prefect, python};
use serde_json::json;

const POOL: &str = "my-aci-pool";
const IMAGE: &str = "prefecthq/prefect:3-latest";

fn group_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    )
}

fn last_message(run: &pushpool_core::model::FlowRun) -> Option<String> {
    run.state.as_ref().and_then(|s| s.message.clone())
}

/// Waits until `check` holds (polling every 100 ms), or panics with `what` after `timeout`.
async fn until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefect_client_deploys_and_runs_on_aci_without_a_worker() {
    let fake = FakeAci::start().await;
    let provider = Arc::new(AciProvider::new(fake.settings()));
    let app = TestApp::spawn_with(|c| {
        c.providers = Providers::new().with("azure-container-instance:push", provider);
        c.reconcile_interval = Duration::from_millis(200);
        c.service.release_poll = Duration::from_millis(200);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();

    let created = prefect(
        &app.api,
        dir.path(),
        &[
            "work-pool",
            "create",
            POOL,
            "--type",
            "azure-container-instance:push",
        ],
    )
    .await
    .ok();
    assert!(
        created
            .stdout
            .contains(&format!("Created work pool '{POOL}'")),
        "{}",
        created.stdout
    );

    let script = format!(
        r#"
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect_azure import AzureContainerInstanceCredentials

creds = AzureContainerInstanceCredentials(client_id={CLIENT_ID:?}, tenant_id={TENANT_ID:?},
                                          client_secret={CLIENT_SECRET:?})
block_id = creds.save("my-aci-creds")
loaded = AzureContainerInstanceCredentials.load("my-aci-creds")
assert loaded.client_secret.get_secret_value() == {CLIENT_SECRET:?}, "secret round-trips"

with get_client(sync_client=True) as client:
    pool = client.read_work_pool({POOL:?})
    template = pool.base_job_template
    props = template["variables"]["properties"]
    props["aci_credentials"]["default"] = {{"$ref": {{"block_document_id": str(block_id)}}}}
    props["subscription_id"]["default"] = {SUBSCRIPTION_ID:?}
    props["resource_group_name"]["default"] = {RESOURCE_GROUP:?}
    client.update_work_pool({POOL:?}, WorkPoolUpdate(base_job_template=template))

@flow
def my_flow(x: int = 1):
    return x

my_flow.deploy(name="my-deployment", work_pool_name={POOL:?}, image={IMAGE:?},
               build=False, push=False, job_variables={{"cpu": 0.5, "memory": 1.5}})
print("deployed")
"#
    );
    let deployed = python(&app.api, dir.path(), &script).await.ok();
    assert!(deployed.stdout.contains("deployed"), "{}", deployed.stdout);

    // A job variable past ACI's limits is refused when the flow run is created.
    let refused = prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "run",
            "my-flow/my-deployment",
            "--job-variable",
            "cpu=8",
        ],
    )
    .await;
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("cpu: 8 vCPU is outside 0.1–4 vCPU"), "{said}");
    assert!(fake.puts().is_empty());

    // 1. A run that completes.
    let run_once = || async {
        prefect(
            &app.api,
            dir.path(),
            &["deployment", "run", "my-flow/my-deployment"],
        )
        .await
        .ok()
        .flow_run_id()
    };
    let id = run_once().await;
    let done = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(60))
        .await;
    let name = container_group_name(&done.name, &done.submission_key());
    let pid = group_path(&name);
    assert_eq!(done.infrastructure_pid.as_deref(), Some(pid.as_str()));
    let puts = fake.puts();
    assert_eq!(puts.len(), 1, "exactly one container group");
    let deployment_id = done.deployment_id.expect("a deployment run").to_string();
    assert_eq!(
        puts[0],
        json!({
            "location": LOCATION,
            "properties": {
                "containers": [{
                    "name": name,
                    "properties": {
                        "image": IMAGE,
                        "command": ["/opt/prefect/entrypoint.sh", "prefect", "flow-run", "execute"],
                        "resources": {"requests": {"cpu": 0.5, "memoryInGB": 1.5}},
                        "environmentVariables": [
                            {"name": "PREFECT_API_URL", "value": app.api},
                            {"name": "PREFECT__FLOW_RUN_ID", "value": id.to_string()},
                            {"name": "PREFECT__FLOW_ID", "value": done.flow_id.to_string()},
                            {"name": "PREFECT__DEPLOYMENT_ID", "value": deployment_id},
                            {"name": "PREFECT__DEPLOYMENT_NAME", "value": "my-deployment"},
                        ],
                    },
                }],
                "osType": "Linux",
                "restartPolicy": "Never",
            },
        })
    );
    assert!(!puts[0].to_string().contains(CLIENT_SECRET));
    // The final run's container group is deleted (Provider::release).
    until(
        "the DELETE of the completed run's group",
        Duration::from_secs(30),
        || fake.calls().contains(&format!("DELETE {pid}")),
    )
    .await;
    assert!(!fake.group_names().contains(&name));
    let history: Vec<StateType> = app.history(id).await.into_iter().map(|h| h.0).collect();
    assert_eq!(history.first(), Some(&StateType::Scheduled));
    assert_eq!(history.last(), Some(&StateType::Completed));

    // 2. An image that cannot be pulled.
    fake.script_next_group(Lifecycle::ImagePullFails);
    let id = run_once().await;
    let crashed = app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(60))
        .await;
    assert_eq!(
        last_message(&crashed),
        Some(format!(
            "Flow run infrastructure failed: {}",
            pull_failure_message(IMAGE)
        ))
    );
    let pid = crashed.infrastructure_pid.clone().expect("pid");
    until(
        "the DELETE of the crashed run's group",
        Duration::from_secs(30),
        || fake.calls().contains(&format!("DELETE {pid}")),
    )
    .await;

    // 3. A container that exits 1.
    fake.script_next_group(Lifecycle::Exits { exit_code: 1 });
    let id = run_once().await;
    let crashed = app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(60))
        .await;
    assert_eq!(
        last_message(&crashed),
        Some("Flow run infrastructure exited with non-zero status code 1. Error".into())
    );
    let pid = crashed.infrastructure_pid.clone().expect("pid");
    until(
        "the DELETE of the exited run's group",
        Duration::from_secs(30),
        || fake.calls().contains(&format!("DELETE {pid}")),
    )
    .await;

    // 4. A running group, cancelled with the CLI.
    fake.script_next_group(Lifecycle::Runs);
    let id = run_once().await;
    let pid = loop {
        let run = app.flow_run(id).await;
        if let Some(pid) = run.infrastructure_pid {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cancelled = prefect(
        &app.api,
        dir.path(),
        &["flow-run", "cancel", &id.to_string()],
    )
    .await
    .ok();
    assert!(
        cancelled
            .stdout
            .contains("was successfully scheduled for cancellation"),
        "{}",
        cancelled.stdout
    );
    let done = app
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(60))
        .await;
    assert_eq!(
        last_message(&done),
        Some("Flow run was cancelled; its infrastructure was stopped by pushpool.".into())
    );
    assert!(fake.calls().contains(&format!("POST {pid}/stop")));
    until(
        "the DELETE of the cancelled run's group",
        Duration::from_secs(30),
        || fake.calls().contains(&format!("DELETE {pid}")),
    )
    .await;

    assert_eq!(fake.created(), 4);
    assert_eq!(fake.redeployments(), 0);
    assert_eq!(fake.group_names(), Vec::<String>::new());
    assert_eq!(fake.violations(), Vec::<String>::new());
}
