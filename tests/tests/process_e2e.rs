//! A real flow runs to COMPLETED in the local process pool: the real Prefect client deploys
//! and runs it against pushpool, pushpool submits it with no worker, and the real engine
//! (`prefect flow-run execute`) reports RUNNING and COMPLETED back through pushpool's API.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use pushpool_tests::tools::venv_bin;

const FLOW: &str = r#"
from prefect import flow, task

@task
def add_one(x: int) -> int:
    return x + 1

@flow(log_prints=True)
def hello(x: int = 1):
    y = add_one(x)
    print(f"hello from pushpool: {y}")
    return y
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_flow_runs_to_completed_in_the_process_pool() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.py"), FLOW).unwrap();

    prefect(
        &app.api,
        dir.path(),
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    let deploy = format!(
        r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="hello.py:hello").deploy(
    name="hello-local", work_pool_name="local", parameters={{"x": 41}},
    job_variables={{"command": {command:?}}},
)
"#,
        src = dir.path().to_string_lossy(),
    );
    python(&app.api, dir.path(), &deploy).await.ok();
    let ran = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "hello/hello-local"],
    )
    .await
    .ok();
    let id = ran.flow_run_id();

    let run = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    assert_eq!(run.state_name.as_deref(), Some("Completed"));
    assert_eq!(run.run_count, 1);
    let pid = run.infrastructure_pid.clone().expect("pid recorded");
    assert!(pid.contains(':'), "host:pid, got {pid}");

    let states = app.service.store().read_flow_run_states(id).await.unwrap();
    let types: Vec<StateType> = states.iter().map(|s| s.r#type).collect();
    assert_eq!(
        types,
        [
            StateType::Scheduled,
            StateType::Pending,
            StateType::Running,
            StateType::Completed
        ]
    );
    // pushpool's own claim carries no transition id; the engine's proposals do.
    assert_eq!(states[1].state_details.transition_id, None);
    assert_eq!(
        states[1].message.as_deref(),
        Some("Submitting to work pool 'local' (process)")
    );
    assert!(
        states[2].state_details.transition_id.is_some(),
        "RUNNING reported by the engine"
    );
    assert!(
        states[3].state_details.transition_id.is_some(),
        "COMPLETED reported by the engine"
    );
    assert_eq!(run.parameters["x"], 41);

    // Let the engine exit (it flushes events and logs) before the server stops.
    let os_pid = pid.rsplit(':').next().unwrap();
    for _ in 0..300 {
        if !std::path::Path::new(&format!("/proc/{os_pid}")).exists() {
            break;
        }
        let zombie = std::fs::read_to_string(format!("/proc/{os_pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
