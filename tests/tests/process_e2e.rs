//! A real flow runs to COMPLETED in the local process pool: the real Prefect client deploys
//! and runs it against pushpool, pushpool submits it with no worker, and the real engine
//! (`prefect flow-run execute`) reports RUNNING and COMPLETED back through pushpool's API;
//! and a running one cancelled with `prefect flow-run cancel` ends CANCELLED with no process of
//! its job left.

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

const SLOW: &str = r#"
import time
from prefect import flow

@flow
def slow():
    time.sleep(60)
"#;

/// The live processes (not zombies) whose environment names flow run `id`.
fn processes_of(id: uuid::Uuid) -> Vec<String> {
    let wanted = format!("PREFECT__FLOW_RUN_ID={id}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let zombie = std::fs::read_to_string(format!("/proc/{name}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        let ours = std::fs::read(format!("/proc/{name}/environ"))
            .map(|e| e.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
            .unwrap_or(false);
        if ours && !zombie {
            let cmd = std::fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default();
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
    }
    found
}

/// `prefect flow-run cancel` on a running 60 s flow of the process pool: the whole job (the
/// `prefect flow-run execute` supervisor and the engine it starts in a session of its own) is
/// stopped before CANCELLED is written, so the run ends CANCELLED, stays CANCELLED, and no
/// process of the job is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_process_pool_run_ends_cancelled_with_no_process_left() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.py"), SLOW).unwrap();
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
flow.from_source(source={src:?}, entrypoint="slow.py:slow").deploy(
    name="slow-local", work_pool_name="local", job_variables={{"command": {command:?}}},
)
"#,
        src = dir.path().to_string_lossy(),
    );
    python(&app.api, dir.path(), &deploy).await.ok();
    let id = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "slow/slow-local"],
    )
    .await
    .ok()
    .flow_run_id();
    app.wait_for_state(id, StateType::Running, Duration::from_secs(90))
        .await;
    // Give the engine time to be well inside the flow (its own session, its own children).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!processes_of(id).is_empty(), "the job runs");

    prefect(
        &app.api,
        dir.path(),
        &["flow-run", "cancel", &id.to_string()],
    )
    .await
    .ok();
    let run = app
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(40))
        .await;

    assert_eq!(
        processes_of(id),
        Vec::<String>::new(),
        "no process of the job is left"
    );
    assert_eq!(
        run.state.as_ref().and_then(|s| s.message.as_deref()),
        Some("Flow run was cancelled; its infrastructure was stopped by pushpool.")
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let later = app.flow_run(id).await;
    let history = app.history(id).await;
    assert_eq!(later.state_type, Some(StateType::Cancelled), "{history:#?}");
    assert_eq!(
        later.state_id, run.state_id,
        "nothing written after CANCELLED: {history:#?}"
    );
    let types: Vec<StateType> = history.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(
        types[..4],
        [
            StateType::Scheduled,
            StateType::Pending,
            StateType::Running,
            StateType::Cancelling
        ],
        "{history:#?}"
    );
    assert_eq!(types.last(), Some(&StateType::Cancelled), "{history:#?}");
    assert_eq!(processes_of(id), Vec::<String>::new());
}
