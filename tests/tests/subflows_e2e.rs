//! Subflows with the real Prefect 3.9.1 engine in the local process pool: a flow that calls a
//! flow, and a flow that calls `run_deployment` for a deployment of the same pool, both run
//! to COMPLETED; the child flow run points at a tracking task run (`parent_task_run_id`)
//! whose `flow_run_id` is the parent run, and that task run is COMPLETED (its states are the
//! child's, copied by the server as Prefect's `UpdateSubflowParentTask` does).
//!
//! The push pools (`ecs:push`, ...) run the same engine against the same API routes, so this
//! process-pool test plus the router tests (`shared/api/tests/api/task_runs.rs`) cover them.

use std::time::Duration;

use pushpool_core::model::FlowRun;
use pushpool_core::state::StateType;
use pushpool_store::FlowRunQuery;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use pushpool_tests::tools::venv_bin;

const FLOWS: &str = r#"
from prefect import flow
from prefect.deployments import run_deployment

@flow
def child(x: int) -> int:
    return x * 2

@flow(log_prints=True)
def parent(x: int = 1):
    y = child(x)
    print(f"child said {y}")
    return y

@flow
def leaf() -> str:
    return "leaf"

@flow(log_prints=True)
def caller():
    run = run_deployment("leaf/leaf-local", timeout=120, poll_interval=1)
    print(f"leaf run {run.id} is {run.state.type.value}")
    if not run.state.is_completed():
        raise RuntimeError(f"leaf ended {run.state.type.value}")
    return str(run.id)
"#;

/// Creates the `local` process pool and deploys `flows.py:<name>` as `<name>-local` on it.
async fn deploy(app: &TestApp, dir: &std::path::Path, names: &[&str]) {
    prefect(
        &app.api,
        dir,
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    for name in names {
        let script = format!(
            r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="flows.py:{name}").deploy(
    name="{name}-local", work_pool_name="local", job_variables={{"command": {command:?}}},
)
"#,
            src = dir.to_string_lossy(),
        );
        python(&app.api, dir, &script).await.ok();
    }
}

/// Every flow run whose `parent_task_run_id` is set.
async fn subflow_runs(app: &TestApp) -> Vec<FlowRun> {
    app.service
        .store()
        .list_flow_runs(&FlowRunQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.parent_task_run_id.is_some())
        .collect()
}

/// Checks the link child → tracking task run → parent, and that both finished COMPLETED.
async fn assert_linked(app: &TestApp, parent: &FlowRun, child: &FlowRun) {
    assert_eq!(child.state_type, Some(StateType::Completed), "{child:#?}");
    let task_run_id = child.parent_task_run_id.unwrap();
    let task = app
        .service
        .store()
        .read_task_run(task_run_id)
        .await
        .unwrap();
    assert_eq!(task.flow_run_id, Some(parent.id));
    assert_eq!(task.state_type, Some(StateType::Completed), "{task:#?}");
    assert_eq!(task.state_name.as_deref(), Some("Completed"));
    let state = task.state.as_ref().unwrap();
    assert_eq!(state.state_details.child_flow_run_id, Some(child.id));
    assert_eq!(state.state_details.task_run_id, Some(task.id));
    assert_eq!(state.state_details.flow_run_id, Some(parent.id));
    assert_eq!(task.labels["prefect.flow-run.id"], parent.id.to_string());
    assert!(
        task.end_time.is_some() && task.start_time.is_some(),
        "{task:#?}"
    );
}

/// Waits until the process with the run's pid is gone, so that the engine flushes before the
/// server stops.
async fn wait_exit(run: &FlowRun) {
    let Some(pid) = run.infrastructure_pid.as_deref() else {
        return;
    };
    let os_pid = pid.rsplit(':').next().unwrap_or_default().to_owned();
    for _ in 0..300 {
        let stat = std::fs::read_to_string(format!("/proc/{os_pid}/stat"));
        if stat.map(|s| s.contains(") Z ")).unwrap_or(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_with_a_subflow_runs_to_completed_in_the_process_pool() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flows.py"), FLOWS).unwrap();
    deploy(&app, dir.path(), &["parent"]).await;
    let ran = prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "run",
            "parent/parent-local",
            "--param",
            "x=21",
        ],
    )
    .await
    .ok();
    let id = ran.flow_run_id();

    let parent = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(120))
        .await;
    assert_eq!(parent.run_count, 1);
    let children = subflow_runs(&app).await;
    assert_eq!(children.len(), 1, "{children:#?}");
    let child = &children[0];
    assert_eq!(child.parameters["x"], 21);
    assert_eq!(child.deployment_id, None);
    let states: Vec<StateType> = app
        .service
        .store()
        .read_flow_run_states(child.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.r#type)
        .collect();
    assert_eq!(
        states,
        [StateType::Pending, StateType::Running, StateType::Completed]
    );
    assert_linked(&app, &parent, child).await;
    let task_states: Vec<StateType> = app
        .service
        .store()
        .read_task_run_states(child.parent_task_run_id.unwrap())
        .await
        .unwrap()
        .iter()
        .map(|s| s.r#type)
        .collect();
    assert_eq!(
        task_states,
        [
            StateType::Pending,
            StateType::Pending,
            StateType::Running,
            StateType::Completed
        ]
    );
    wait_exit(&parent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_deployment_inside_a_flow_links_the_child_and_completes() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flows.py"), FLOWS).unwrap();
    deploy(&app, dir.path(), &["leaf", "caller"]).await;
    let ran = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "caller/caller-local"],
    )
    .await
    .ok();
    let id = ran.flow_run_id();

    let parent = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(180))
        .await;
    let children = subflow_runs(&app).await;
    assert_eq!(children.len(), 1, "{children:#?}");
    let child = &children[0];
    assert!(child.deployment_id.is_some(), "{child:#?}");
    assert_eq!(child.work_pool_name.as_deref(), Some("local"));
    assert!(child.infrastructure_pid.is_some(), "{child:#?}");
    assert_linked(&app, &parent, child).await;
    let task = app
        .service
        .store()
        .read_task_run(child.parent_task_run_id.unwrap())
        .await
        .unwrap();
    assert_eq!(
        task.task_key,
        "prefect.deployments.flow_runs.run_deployment.leaf-leaf-local"
    );
    wait_exit(&parent).await;
    wait_exit(child).await;
}
