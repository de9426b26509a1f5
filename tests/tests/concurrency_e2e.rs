//! Two real flow runs in the local process pool share a global concurrency limit of one slot:
//! each takes it with `concurrency("e2e-gate", occupy=1)` (the engine's
//! `/v2/concurrency_limits/increment-with-lease`, 423 and retry, then
//! `decrement-with-lease`) around a sleep, and records when its critical section started and
//! ended. The two sections must not overlap.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use pushpool_tests::tools::venv_bin;

const FLOW: &str = r#"
import time
from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

@flow
def guarded(out_dir: str):
    asked = time.time()
    with concurrency("e2e-gate", occupy=1):
        start = time.time()
        time.sleep(3)
        end = time.time()
    with open(f"{out_dir}/{flow_run.id}.txt", "w") as f:
        f.write(f"{asked} {start} {end}\n")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_flow_runs_sharing_a_one_slot_limit_do_not_overlap() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("guarded.py"), FLOW).unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();

    prefect(
        &app.api,
        d,
        &[
            "global-concurrency-limit",
            "create",
            "e2e-gate",
            "--limit",
            "1",
        ],
    )
    .await
    .ok();
    prefect(
        &app.api,
        d,
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    let deploy = format!(
        r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="guarded.py:guarded").deploy(
    name="gate", work_pool_name="local", parameters={{"out_dir": {out:?}}},
    job_variables={{"command": {command:?}}},
)
"#,
        src = d.to_string_lossy(),
        out = out.to_string_lossy(),
    );
    python(&app.api, d, &deploy).await.ok();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let ran = prefect(&app.api, d, &["deployment", "run", "guarded/gate"])
            .await
            .ok();
        ids.push(ran.flow_run_id());
    }
    for id in &ids {
        let run = app
            .wait_for_state(*id, StateType::Completed, Duration::from_secs(120))
            .await;
        assert_eq!(run.state_name.as_deref(), Some("Completed"));
    }

    let mut sections: Vec<(f64, f64, f64)> = ids
        .iter()
        .map(|id| {
            let text = std::fs::read_to_string(out.join(format!("{id}.txt"))).unwrap();
            let v: Vec<f64> = text
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            (v[0], v[1], v[2])
        })
        .collect();
    sections.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (first, second) = (sections[0], sections[1]);
    assert!(first.2 - first.1 >= 3.0 && second.2 - second.1 >= 3.0);
    assert!(
        second.1 >= first.2,
        "critical sections overlap: first {first:?}, second {second:?}"
    );
    // Both slots were given back.
    let limit = app
        .service
        .store()
        .read_concurrency_limit_by_name("e2e-gate")
        .await
        .unwrap();
    assert_eq!(limit.active_slots, 0);
    assert!(
        app.service
            .store()
            .list_concurrency_leases()
            .await
            .unwrap()
            .is_empty()
    );
}
