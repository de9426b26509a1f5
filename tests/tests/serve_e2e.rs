//! `flow.serve()` with the real Prefect 3.9.1 SDK against pushpool: the serving process
//! creates its deployment (no work pool) and polls `POST /deployments/get_scheduled_flow_runs`;
//! a run started with `prefect deployment run` is picked up by that process and runs to
//! COMPLETED there. pushpool never submits it anywhere (it has no infrastructure pid), and the
//! poll marks the deployment READY.

use std::process::Stdio;
use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::prefect;
use pushpool_tests::tools::venv_bin;

const SERVED: &str = r#"
from prefect import flow

@flow(log_prints=True)
def hello(name: str = "world"):
    print(f"hello {name}")
    return name

if __name__ == "__main__":
    hello.serve(name="served", limit=1)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_flow_runs_its_deployments_runs_in_the_serving_process() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("served.py"), SERVED).unwrap();
    let mut serving = tokio::process::Command::new(venv_bin("python"))
        .arg("served.py")
        .current_dir(dir.path())
        .env("PREFECT_API_URL", &app.api)
        .env("PREFECT_HOME", dir.path().join("prefect-home"))
        .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        .env("PREFECT_RUNNER_POLL_FREQUENCY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");

    // The serving process creates its deployment, then polls.
    let mut deployed = None;
    let mut last = serde_json::Value::Null;
    for _ in 0..120 {
        let (status, body) = app
            .send("GET", "/deployments/name/hello/served", None)
            .await;
        if status == 200 && body["status"] == "READY" {
            deployed = Some(body);
            break;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deployment = deployed.unwrap_or_else(|| {
        panic!("flow.serve() did not deploy `hello/served` and poll for runs: {last}")
    });
    assert_eq!(deployment["work_pool_name"], serde_json::Value::Null);
    assert!(deployment["last_polled"].is_string(), "{deployment}");

    let ran = prefect(
        &app.api,
        dir.path(),
        &[
            "deployment",
            "run",
            "hello/served",
            "--param",
            "name=pushpool",
        ],
    )
    .await
    .ok();
    let id = ran.flow_run_id();
    let run = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    assert_eq!(run.infrastructure_pid, None, "{run:#?}");
    assert_eq!(run.parameters["name"], "pushpool");
    let states: Vec<(StateType, String)> = app
        .history(id)
        .await
        .into_iter()
        .map(|(t, name, _)| (t, name))
        .collect();
    // The runner claims the run (Pending), names its submission (Submitting), and the engine
    // runs it: Prefect's runner sequence.
    let expected = [
        (StateType::Scheduled, "Scheduled"),
        (StateType::Pending, "Pending"),
        (StateType::Pending, "Submitting"),
        (StateType::Running, "Running"),
        (StateType::Completed, "Completed"),
    ]
    .map(|(t, n)| (t, n.to_owned()));
    assert_eq!(states, expected);
    serving.kill().await.ok();
}
