//! The real Prefect client drives pushpool, and pushpool submits to Cloud Run (the
//! spec-checked fake Cloud Run Admin API v2 and token endpoint) with no worker running:
//! `prefect work-pool create --type cloud-run-v2:push`, a `GcpCredentials` block saved with
//! prefect-gcp 0.6.22 (its key's `token_uri` at the fake) and linked as the pool's
//! `credentials` default, `flow.deploy(...)` with an image on a fake registry, and
//! `prefect deployment run` → exactly one job whose rendered `jobs.create` body the test
//! asserts, followed to COMPLETED from the execution's status and then deleted. Other runs end
//! CRASHED (an image that cannot be pulled, a container exiting 1) and, after
//! `prefect flow-run cancel`, CANCELLED with `executions.cancel` sent.

use std::sync::Arc;
use std::time::Duration;

use pushpool_core::model::FlowRun;
use pushpool_core::state::StateType;
use pushpool_provider_cloud_run::{CloudRunProvider, CloudRunSettings, job_id};
use pushpool_providers::Providers;
use pushpool_tests::app::TestApp;
use pushpool_tests::fake_cloud_run::{ExecutionLifecycle, FakeCloudRun, PROJECT};
use pushpool_tests::fake_registry::FakeRegistry;
use pushpool_tests::python::{prefect, python};
use serde_json::json;
use uuid::Uuid;

fn last_message(run: &FlowRun) -> Option<&str> {
    run.state.as_ref().and_then(|s| s.message.as_deref())
}

async fn pid_of(app: &TestApp, id: Uuid) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = app.flow_run(id).await;
        if let Some(pid) = run.infrastructure_pid {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no infrastructure pid: {:#?}",
            app.history(id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deployment_run(app: &TestApp, dir: &std::path::Path) -> Uuid {
    prefect(
        app.api.as_str(),
        dir,
        &["deployment", "run", "my-flow/my-deployment"],
    )
    .await
    .ok()
    .flow_run_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefect_client_deploys_and_runs_on_cloud_run_without_a_worker() {
    let fake = FakeCloudRun::start().await;
    let registry = FakeRegistry::start().await;
    registry.require_token();
    registry.put_multi_platform("team/flows", "1");
    let image = format!("{}/team/flows:1", registry.host);
    let provider = CloudRunProvider::new(CloudRunSettings {
        endpoint: fake.endpoint.clone(),
        ready_poll_interval: Duration::from_millis(20),
        ..CloudRunSettings::default()
    })
    .expect("provider");
    let app = TestApp::spawn_with(|c| {
        c.providers = Providers::new().with("cloud-run-v2:push", Arc::new(provider));
        c.reconcile_interval = Duration::from_millis(200);
        c.service.release_poll = Duration::from_millis(100);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();

    let created = prefect(
        &app.api,
        dir.path(),
        &[
            "work-pool",
            "create",
            "my-cloud-run-pool",
            "--type",
            "cloud-run-v2:push",
        ],
    )
    .await
    .ok();
    assert!(
        created
            .stdout
            .contains("Created work pool 'my-cloud-run-pool'"),
        "{}",
        created.stdout
    );

    let info = fake.service_account_info().to_string();
    let script = format!(
        r#"
import json
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect_gcp import GcpCredentials

info = json.loads({info:?})
creds = GcpCredentials(service_account_info=info, project={PROJECT:?})
block_id = creds.save("my-gcp-creds")
loaded = GcpCredentials.load("my-gcp-creds")
assert loaded.service_account_info.get_secret_value()["private_key"] == info["private_key"], "key round-trips"

with get_client(sync_client=True) as client:
    pool = client.read_work_pool("my-cloud-run-pool")
    template = pool.base_job_template
    template["variables"]["properties"]["credentials"]["default"] = {{"$ref": {{"block_document_id": str(block_id)}}}}
    client.update_work_pool("my-cloud-run-pool", WorkPoolUpdate(base_job_template=template))

@flow
def my_flow(x: int = 1):
    return x

my_flow.deploy(name="my-deployment", work_pool_name="my-cloud-run-pool",
               image={image:?}, build=False, push=False,
               job_variables={{"region": "europe-west1", "cpu": "2", "memory": "2Gi",
                               "env": {{"TEAM": "data"}}}})
print("deployed")
"#
    );
    let deployed = python(&app.api, dir.path(), &script).await.ok();
    assert!(deployed.stdout.contains("deployed"), "{}", deployed.stdout);

    // The key is stored but never answered without include_secrets.
    let (status, doc) = app
        .send(
            "GET",
            "/block_types/slug/gcp-credentials/block_documents/name/my-gcp-creds",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["data"]["service_account_info"]["private_key"],
        "********"
    );

    // Run 1: one job, this body, COMPLETED from the execution, then deleted.
    let id = deployment_run(&app, dir.path()).await;
    let pid = pid_of(&app, id).await;
    let run = app.flow_run(id).await;
    let job = job_id(&run.name, &run.submission_key());
    let (_, deployment) = app
        .send("GET", "/deployments/name/my-flow/my-deployment", None)
        .await;
    let deployment_id = deployment["id"].as_str().unwrap().to_owned();
    let creates = fake.calls_of("jobs.create");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].path,
        format!("/v2/projects/{PROJECT}/locations/europe-west1/jobs")
    );
    assert_eq!(creates[0].query, format!("jobId={job}"));
    let labels = json!({
        "prefect-io-flow-run-id": id.to_string(),
        "prefect-io-flow-run-name": run.name,
        "prefect-io-deployment-id": deployment_id,
        "prefect-io-work-pool-name": "my-cloud-run-pool",
        "pushpool-submission": run.submission_key(),
    });
    assert_eq!(
        creates[0].body,
        json!({
            "client": "prefect",
            "launchStage": "BETA",
            "template": {
                "template": {
                    "containers": [{
                        "env": [
                            {"name": "PREFECT_API_URL", "value": app.api},
                            {"name": "PREFECT__FLOW_RUN_ID", "value": id.to_string()},
                            {"name": "PREFECT__FLOW_ID", "value": run.flow_id.to_string()},
                            {"name": "PREFECT__DEPLOYMENT_ID", "value": deployment_id},
                            {"name": "PREFECT__DEPLOYMENT_NAME", "value": "my-deployment"},
                            {"name": "TEAM", "value": "data"},
                        ],
                        "image": image,
                        "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
                        "command": ["prefect", "flow-run", "execute"],
                    }],
                    "maxRetries": 0,
                    "timeout": "600s",
                },
                "labels": labels,
            },
            "labels": labels,
        })
    );
    assert_eq!(fake.calls_of("jobs.run").len(), 1);
    assert!(
        pid.starts_with(&format!(
            "projects/{PROJECT}/locations/europe-west1/jobs/{job}/executions/{job}-"
        )),
        "{pid}"
    );
    let done = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(30))
        .await;
    assert_eq!(
        last_message(&done),
        Some("The job exited with code 0 without the flow run reporting a final state.")
    );
    let job_path = format!("/v2/projects/{PROJECT}/locations/europe-west1/jobs/{job}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.calls_of("jobs.delete").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job was not deleted: {:?}",
            fake.ops()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deletes = fake.calls_of("jobs.delete");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].path, job_path);
    assert_eq!(fake.job_names(), Vec::<String>::new());
    assert_eq!(fake.calls_of("jobs.run").len(), 1);

    // Run 2: the image cannot be pulled.
    let missing = format!("Image '{image}' not found.");
    fake.script_next_execution(ExecutionLifecycle::FailsToStart {
        message: missing.clone(),
    });
    let id = deployment_run(&app, dir.path()).await;
    let done = app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(30))
        .await;
    assert_eq!(
        last_message(&done),
        Some(format!("Flow run infrastructure failed: {missing}").as_str())
    );

    // Run 3: the container exits 1.
    fake.script_next_execution(ExecutionLifecycle::ExitsNonZero { exit_code: 1 });
    let id = deployment_run(&app, dir.path()).await;
    let pid = pid_of(&app, id).await;
    let short = pid.rsplit('/').next().unwrap().to_owned();
    let done = app
        .wait_for_state(id, StateType::Crashed, Duration::from_secs(30))
        .await;
    assert_eq!(
        last_message(&done),
        Some(
            format!(
                "Flow run infrastructure exited with non-zero status code 1. Task {short}-task0 failed with message: The container exited with an error."
            )
            .as_str()
        )
    );

    // Run 4: cancelled with the CLI while it runs.
    fake.script_next_execution(ExecutionLifecycle::RunsUntilCancelled);
    let id = deployment_run(&app, dir.path()).await;
    let pid = pid_of(&app, id).await;
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
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(30))
        .await;
    assert_eq!(
        last_message(&done),
        Some("Flow run was cancelled; its infrastructure was stopped by pushpool.")
    );
    // The submitter (on the CANCELLING change) and a reconciler tick may both stop it before
    // either writes CANCELLED: executions.cancel is idempotent, and only this one is stopped.
    let cancels = fake.calls_of("jobs.executions.cancel");
    assert!(!cancels.is_empty());
    for cancel in &cancels {
        assert_eq!(cancel.path, format!("/v2/{pid}:cancel"));
    }

    // One execution per run, every job deleted once its run was final.
    assert_eq!(fake.calls_of("jobs.run").len(), 4);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.calls_of("jobs.delete").len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every job was deleted: {:?}",
            fake.ops()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.job_names(), Vec::<String>::new());
    assert_eq!(fake.execution_names(), Vec::<String>::new());
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(registry.violations(), Vec::<String>::new());
}
