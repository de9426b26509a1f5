//! Task runs from a real flow: the real engine runs a deployed flow that calls two tasks in
//! the local process pool and reports its task runs as events on `WS /events/in`; pushpool's
//! task run recorder materialises them, and `prefect task-run ls` and the SDK's
//! `read_task_runs` list them, COMPLETED, in their flow run.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{deploy_and_run_on_process_pool, prefect};
use pushpool_tests::tools::venv_bin;
use serde_json::Value;

const FLOW: &str = r#"
from prefect import flow, task

@task
def add_one(x: int) -> int:
    return x + 1

@task(tags=["math"])
def double(x: int) -> int:
    return x * 2

@flow
def two_tasks(x: int = 1):
    return double(add_one(x))
"#;

const READ: &str = r#"
import asyncio, json, sys
from uuid import UUID
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

async def main():
    async with get_client() as client:
        runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[UUID(sys.argv[1])]))
        )
    print(json.dumps(sorted(
        [[r.name, r.state.type.value, r.state.name, str(r.flow_run_id), r.tags, r.run_count,
          r.start_time is not None, r.end_time is not None] for r in runs]
    )))

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_task_runs_are_listed_completed_by_the_cli_and_the_sdk() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let id = deploy_and_run_on_process_pool(
        &app.api,
        dir.path(),
        "two.py",
        FLOW,
        "two_tasks",
        "two-tasks",
        "two-local",
        r#"parameters={"x": 4},"#,
    )
    .await;
    app.wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;

    // The engine sends its events as it goes and flushes them at exit.
    let store = app.service.store().clone();
    let filter = pushpool_store::TaskRunFilter {
        flow_run_ids: Some(vec![id]),
        ..Default::default()
    };
    let mut runs = Vec::new();
    for _ in 0..300 {
        runs = store.list_task_runs(&filter).await.unwrap();
        if runs.len() == 2
            && runs
                .iter()
                .all(|r| r.state_type == Some(StateType::Completed))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    // The engine names a task run `<task>-<first 3 characters of its dynamic key>`.
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], format!("add_one-{}", &runs[0].dynamic_key[..3]));
    assert_eq!(names[1], format!("double-{}", &runs[1].dynamic_key[..3]));
    assert!(
        runs[0].task_key.starts_with("add_one-"),
        "{}",
        runs[0].task_key
    );
    assert_eq!(runs[1].tags, ["math"]);
    for run in &runs {
        let states = store.read_task_run_states(run.id).await.unwrap();
        let types: Vec<StateType> = states.iter().map(|s| s.r#type).collect();
        assert_eq!(
            types,
            [StateType::Pending, StateType::Running, StateType::Completed],
            "{}",
            run.name
        );
    }

    let ls = prefect(&app.api, dir.path(), &["task-run", "ls"])
        .await
        .ok();
    for run in &runs {
        let line = ls
            .stdout
            .lines()
            .find(|l| l.contains(&run.id.to_string()))
            .unwrap_or_else(|| panic!("{} not listed:\n{}", run.id, ls.stdout));
        assert!(line.contains(&run.name), "{line}");
        assert!(line.contains("COMPLETED"), "{line}");
    }
    let json = prefect(
        &app.api,
        dir.path(),
        &[
            "task-run",
            "ls",
            "--state-type",
            "COMPLETED",
            "--output",
            "json",
        ],
    )
    .await
    .ok();
    let listed: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // The script takes the flow run id as its argument.
    let script = dir.path().join("read.py");
    std::fs::write(&script, READ).unwrap();
    let out = tokio::process::Command::new(venv_bin("python"))
        .arg(&script)
        .arg(id.to_string())
        .env("PREFECT_API_URL", &app.api)
        .env("PREFECT_HOME", dir.path().join("prefect-home"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fr = id.to_string();
    assert_eq!(
        got,
        serde_json::json!([
            [names[0], "COMPLETED", "Completed", fr, [], 1, true, true],
            [
                names[1],
                "COMPLETED",
                "Completed",
                fr,
                ["math"],
                1,
                true,
                true
            ],
        ])
    );
}
