//! Events through the real Prefect client: a subscriber of `WS /events/out`
//! (`get_events_subscriber`, what `prefect event stream` and the engine's cancellation
//! observer use) receives the state change event of a flow run driven through the API; and
//! a process-pool flow's engine-sent task run events (`WS /events/in`) are stored and
//! returned by `POST /events/filter`.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{deploy_and_run_on_process_pool, python};

const SUBSCRIBE: &str = r#"
import asyncio
from prefect.client.orchestration import get_client
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.states import Running

async def main():
    f = EventFilter(event=EventNameFilter(prefix=["prefect.flow-run."]))
    async with get_events_subscriber(filter=f) as subscriber:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("watched")
            r = await client._client.post(
                "/flow_runs/", json={"flow_id": str(flow_id), "name": "watched-run"}
            )
            run_id = r.json()["id"]
            await client.set_flow_run_state(run_id, Running())
        seen = []
        async def collect():
            async for event in subscriber:
                if event.resource.id == f"prefect.flow-run.{run_id}":
                    seen.append(event)
                    if event.event == "prefect.flow-run.Running":
                        return
        await asyncio.wait_for(collect(), 30)
        for e in seen:
            print(e.event, e.resource["prefect.state-type"], e.payload["intended"]["from"], e.payload["intended"]["to"])

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_receives_the_transition_events_of_a_run() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let out = python(&app.api, dir.path(), SUBSCRIBE).await.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "prefect.flow-run.Pending PENDING None PENDING",
            "prefect.flow-run.Running RUNNING PENDING RUNNING",
        ],
        "{out:?}"
    );
}

const FLOW: &str = r#"
from prefect import flow, task

@task
def add(a, b):
    return a + b

@flow
def summing():
    return add(1, 2)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_events_are_stored_and_filtered() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let id = deploy_and_run_on_process_pool(
        &app.api,
        dir.path(),
        "summing.py",
        FLOW,
        "summing",
        "summing",
        "summing-local",
        r#""#,
    )
    .await;
    app.wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    let read = format!(
        r#"
import time, httpx, os
api = os.environ["PREFECT_API_URL"]
body = {{"filter": {{"any_resource": {{"id": ["prefect.flow-run.{id}"]}}, "order": "ASC"}}}}
names = []
for _ in range(100):
    page = httpx.post(api + "/events/filter", json=body).json()
    names = [e["event"] for e in page["events"]]
    if "prefect.task-run.Completed" in names and "prefect.flow-run.Completed" in names:
        break
    time.sleep(0.2)
for n in names:
    print(n)
"#
    );
    let out = python(&app.api, dir.path(), &read).await.ok();
    let names: Vec<&str> = out.stdout.lines().collect();
    let task: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("prefect.task-run."))
        .collect();
    assert_eq!(
        task,
        [
            "prefect.task-run.Pending",
            "prefect.task-run.Running",
            "prefect.task-run.Completed"
        ],
        "{out:?}"
    );
    // pushpool's state change events and the engine's own (its pull step; heartbeats come
    // at the engine's pace and are left out).
    let flow: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("prefect.flow-run.") && *n != "prefect.flow-run.heartbeat")
        .collect();
    assert_eq!(
        flow,
        [
            "prefect.flow-run.Scheduled",
            "prefect.flow-run.Pending",
            "prefect.flow-run.pull-step.executed",
            "prefect.flow-run.Running",
            "prefect.flow-run.Completed"
        ],
        "{out:?}"
    );
}
