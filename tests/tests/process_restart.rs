//! The process pool across a restart of the embedded server: a job started by the first
//! server is neither started again nor marked CRASHED by the second one, which reads it from
//! `/proc` as running, and can still stop it. A long `sleep` stands in for the engine.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use serde_json::json;

/// The live (not zombie) processes whose environment names flow run `id`.
fn processes_of(id: uuid::Uuid) -> usize {
    let wanted = format!("PREFECT__FLOW_RUN_ID={id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| {
            let zombie = std::fs::read_to_string(format!("/proc/{n}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            let ours = std::fs::read(format!("/proc/{n}/environ"))
                .map(|e| e.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
                .unwrap_or(false);
            ours && !zombie
        })
        .count()
}

/// A short missing grace. (The claim deadline cannot be shortened below the provider retry
/// budget plus its margin, `ServiceConfig::validate`; it does not apply here: the run has its
/// pid before the restart.)
fn short_grace(config: &mut pushpool::ServeConfig) {
    config.service.missing_grace = Duration::from_secs(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_job_survives_a_restart_as_running_and_is_not_started_twice() {
    let mut first = TestApp::spawn_with(short_grace).await;
    let (status, _) = first
        .send(
            "POST",
            "/work_pools/",
            Some(json!({"name": "local", "type": "process"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, flow) = first
        .send("POST", "/flows/", Some(json!({"name": "sleepy"})))
        .await;
    let (status, deployment) = first
        .send(
            "POST",
            "/deployments/",
            Some(
                json!({"name": "long", "flow_id": flow["id"], "work_pool_name": "local",
                "job_variables": {"command": "sleep 300", "stream_output": false}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    let (status, run) = first
        .send(
            "POST",
            &format!(
                "/deployments/{}/create_flow_run",
                deployment["id"].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id: uuid::Uuid = run["id"].as_str().unwrap().parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(pid) = first.flow_run(id).await.infrastructure_pid {
            break pid;
        }
        assert!(tokio::time::Instant::now() < deadline, "no pid recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(processes_of(id), 1);

    // Restart: the same data directory, a new server that did not start the job.
    let data_dir = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = TestApp::spawn_in(data_dir, short_grace).await;

    // Past the missing grace, several reconciler ticks later.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let run = second.flow_run(id).await;
    let history = second.history(id).await;
    assert_eq!(run.state_type, Some(StateType::Pending), "{history:#?}");
    assert_eq!(run.infrastructure_pid.as_deref(), Some(pid.as_str()));
    assert_eq!(processes_of(id), 1, "not started a second time");

    // The second server stops the job it did not start.
    let (status, answer) = second
        .send(
            "POST",
            &format!("/flow_runs/{id}/set_state"),
            Some(json!({"state": {"type": "CANCELLING", "name": "Cancelling"}})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    second
        .wait_for_state(id, StateType::Cancelled, Duration::from_secs(20))
        .await;
    assert_eq!(processes_of(id), 0);
}
