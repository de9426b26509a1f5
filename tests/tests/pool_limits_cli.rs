//! A work pool's concurrency limit with the real Prefect 3.9.1 CLI and engine against
//! pushpool: `prefect work-pool set-concurrency-limit local 1` on a `process` pool, three
//! runs of a deployment at once: they run one after another (never two RUNNING at once), the
//! waiting ones pass through `AwaitingConcurrencySlot`, and each starts as soon as the one
//! before it ends.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use pushpool_tests::tools::venv_bin;

const FLOW: &str = r#"
import time
from prefect import flow

@flow
def nap():
    time.sleep(2)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_limit_of_one_runs_three_runs_one_after_another() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("nap.py"), FLOW).unwrap();
    prefect(
        &app.api,
        d,
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    let set = prefect(
        &app.api,
        d,
        &["work-pool", "set-concurrency-limit", "local", "1"],
    )
    .await
    .ok();
    assert_eq!(
        set.stdout.trim(),
        "Set concurrency limit for work pool 'local' to 1"
    );
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    let deploy = format!(
        r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="nap.py:nap").deploy(
    name="nap-local", work_pool_name="local", job_variables={{"command": {command:?}}},
)
"#,
        src = d.to_string_lossy(),
    );
    python(&app.api, d, &deploy).await.ok();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let ran = prefect(&app.api, d, &["deployment", "run", "nap/nap-local"])
            .await
            .ok();
        ids.push(ran.flow_run_id());
    }

    let mut spans = Vec::new();
    let mut waited = 0;
    for id in &ids {
        app.wait_for_state(*id, StateType::Completed, Duration::from_secs(120))
            .await;
        let states = app.service.store().read_flow_run_states(*id).await.unwrap();
        if states.iter().any(|s| {
            s.name == "AwaitingConcurrencySlot"
                && s.message.as_deref() == Some("Work pool 'local' concurrency limit (1) reached.")
        }) {
            waited += 1;
        }
        let start = states
            .iter()
            .find(|s| s.r#type == StateType::Pending)
            .unwrap()
            .timestamp;
        let end = states.last().unwrap().timestamp;
        spans.push((start, end));
    }
    assert_eq!(waited, 2, "two of the three runs waited for the slot");
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "a run was claimed before the one before it ended: {spans:?}"
        );
    }
    assert_eq!(
        app.service
            .store()
            .read_counter(&pushpool_service::concurrency_slots::pool_counter(
                app.service
                    .store()
                    .read_work_pool("local")
                    .await
                    .unwrap()
                    .id
            ))
            .await
            .unwrap(),
        0
    );
}
