//! Pause and resume with real flows in the local process pool (issue 9 §4): a flow that
//! suspends itself (`suspend_flow_run(wait_for_input=...)`: its process exits) is submitted
//! again when the SDK's `resume_flow_run` resumes it with an input, and a flow that pauses
//! in its process (`pause_flow_run(wait_for_input=...)`) carries on in the same process;
//! both end COMPLETED with the input they received.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use pushpool_tests::tools::venv_bin;

const FLOWS: &str = r#"
import os
from prefect import flow
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput

class Answer(RunInput):
    name: str

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "answer.txt")

@flow
def asks():
    answer = suspend_flow_run(wait_for_input=Answer, timeout=600)
    with open(OUT, "a") as f:
        f.write(f"suspended: {answer.name}\n")
    return answer.name

@flow
def waits():
    answer = pause_flow_run(wait_for_input=Answer, timeout=600, poll_interval=1)
    with open(OUT, "a") as f:
        f.write(f"paused: {answer.name}\n")
    return answer.name
"#;

async fn deploy(app: &TestApp, dir: &std::path::Path, entrypoint: &str, name: &str) {
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    let deploy = format!(
        r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint={entrypoint:?}).deploy(
    name={name:?}, work_pool_name="local", job_variables={{"command": {command:?}}},
)
"#,
        src = dir.to_string_lossy(),
    );
    python(&app.api, dir, &deploy).await.ok();
}

async fn resume(app: &TestApp, dir: &std::path::Path, id: uuid::Uuid, name: &str) {
    let script = format!(
        "from prefect.flow_runs import resume_flow_run\n\
         resume_flow_run('{id}', run_input={{'name': {name:?}}})\n"
    );
    python(&app.api, dir, &script).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_and_paused_flows_resume_with_their_input() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flows.py"), FLOWS).unwrap();
    prefect(
        &app.api,
        dir.path(),
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    deploy(&app, dir.path(), "flows.py:asks", "asks-local").await;
    deploy(&app, dir.path(), "flows.py:waits", "waits-local").await;

    // Suspended: the first process exits; the resume submits a second one.
    let id = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "asks/asks-local"],
    )
    .await
    .ok()
    .flow_run_id();
    let run = app
        .wait_for_state(id, StateType::Paused, Duration::from_secs(90))
        .await;
    assert_eq!(run.state_name.as_deref(), Some("Suspended"));
    let first_pid = run.infrastructure_pid.clone().expect("first pid");
    resume(&app, dir.path(), id, "Ada").await;
    let run = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    assert_ne!(run.infrastructure_pid.as_deref(), Some(first_pid.as_str()));
    assert_eq!(run.submission_attempt, 2);
    assert_eq!(run.run_count, 1, "the resumed attempt does not count again");
    let names: Vec<(StateType, String)> = app
        .history(id)
        .await
        .into_iter()
        .map(|(t, n, _)| (t, n))
        .collect();
    assert_eq!(
        names,
        [
            (StateType::Scheduled, "Scheduled".into()),
            (StateType::Pending, "Pending".into()),
            (StateType::Running, "Running".into()),
            (StateType::Paused, "Suspended".into()),
            (StateType::Scheduled, "Resuming".into()),
            (StateType::Pending, "Pending".into()),
            (StateType::Running, "Running".into()),
            (StateType::Completed, "Completed".into()),
        ]
    );
    let (status, answer) = app
        .send(
            "GET",
            &format!("/flow_runs/{id}/input/suspended-1-response"),
            None,
        )
        .await;
    assert_eq!((status, answer), (200, serde_json::json!({"name": "Ada"})));

    // Paused in its process: the same process carries on.
    let id = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "waits/waits-local"],
    )
    .await
    .ok()
    .flow_run_id();
    let run = app
        .wait_for_state(id, StateType::Paused, Duration::from_secs(90))
        .await;
    assert_eq!(run.state_name.as_deref(), Some("Paused"));
    let pid = run.infrastructure_pid.clone().expect("pid");
    resume(&app, dir.path(), id, "Grace").await;
    let run = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    assert_eq!(run.infrastructure_pid, Some(pid));
    assert_eq!(run.submission_attempt, 1);

    assert_eq!(
        std::fs::read_to_string(dir.path().join("answer.txt")).unwrap(),
        "suspended: Ada\npaused: Grace\n"
    );
}
