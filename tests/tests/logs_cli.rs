//! Flow run logs through the real Prefect client: a process-pool flow's `get_run_logger()`
//! lines reach pushpool through the engine's `APILogHandler` (`POST /api/logs/`), and
//! `prefect flow-run logs <id>` and the SDK's `read_logs` print them after pushpool's own
//! submission lines, in order; and the embedded server's retention task deletes lines past
//! their retention.

use std::time::Duration;

use pushpool_core::state::StateType;
use pushpool_store::LogQuery;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{deploy_and_run_on_process_pool, prefect, python};

const FLOW: &str = r#"
from prefect import flow, get_run_logger

@flow
def chatty():
    logger = get_run_logger()
    logger.info("first line from the flow")
    logger.warning("second line, a warning")
    logger.error("third line, an error")
"#;

/// Waits until process `os_pid` has exited (or is a zombie), at most 30 s: the engine
/// flushes its last log lines as it exits.
async fn wait_for_exit(os_pid: &str) {
    for _ in 0..300 {
        let zombie = std::fs::read_to_string(format!("/proc/{os_pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The messages of `prefect flow-run logs` output lines
/// (`<date> <time> | <LEVEL>   | Flow run '<name>' - <message>`), with their level.
fn printed(stdout: &str, run_name: &str) -> Vec<(String, String)> {
    let marker = format!("| Flow run '{run_name}' - ");
    stdout
        .lines()
        .filter_map(|l| {
            let (head, message) = l.split_once(&marker)?;
            let level = head.split('|').nth(1)?.trim().to_owned();
            Some((level, message.to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefect_flow_run_logs_prints_pushpools_lines_then_the_flows() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let id = deploy_and_run_on_process_pool(
        &app.api,
        dir.path(),
        "chatty.py",
        FLOW,
        "chatty",
        "chatty",
        "chatty-local",
        r#""#,
    )
    .await;
    let run = app
        .wait_for_state(id, StateType::Completed, Duration::from_secs(90))
        .await;
    let pid = run.infrastructure_pid.clone().expect("pid recorded");
    wait_for_exit(pid.rsplit(':').next().unwrap()).await;

    let out = prefect(&app.api, dir.path(), &["flow-run", "logs", &id.to_string()])
        .await
        .ok();
    let lines = printed(&out.stdout, &run.name);
    let pos = |message: &str| {
        lines
            .iter()
            .position(|(_, m)| m == message)
            .unwrap_or_else(|| panic!("{message:?} not printed:\n{}", out.stdout))
    };
    assert_eq!(
        lines[..2],
        [
            (
                "INFO".to_owned(),
                "Submitting flow run to work pool 'local' (process)".to_owned()
            ),
            ("INFO".to_owned(), format!("Submitted to process {pid}")),
        ],
        "{}",
        out.stdout
    );
    let first = pos("first line from the flow");
    assert!(first > 1);
    assert_eq!(
        lines[first..first + 3],
        [
            ("INFO".to_owned(), "first line from the flow".to_owned()),
            ("WARNING".to_owned(), "second line, a warning".to_owned()),
            ("ERROR".to_owned(), "third line, an error".to_owned()),
        ],
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Error logging to API") && !out.stderr.contains("Error"),
        "{out:?}"
    );

    // `--tail -n 2`: the last two lines, oldest first.
    let tail = prefect(
        &app.api,
        dir.path(),
        &["flow-run", "logs", &id.to_string(), "--tail", "-n", "2"],
    )
    .await
    .ok();
    assert_eq!(printed(&tail.stdout, &run.name), lines[lines.len() - 2..]);
    // `--head -n 1 --reverse`... `--reverse`: newest first.
    let reversed = prefect(
        &app.api,
        dir.path(),
        &["flow-run", "logs", &id.to_string(), "--reverse"],
    )
    .await
    .ok();
    let mut backwards = lines.clone();
    backwards.reverse();
    assert_eq!(printed(&reversed.stdout, &run.name), backwards);

    // The SDK: `read_logs` with a level filter, newest first.
    let sdk = python(
        &app.api,
        dir.path(),
        &format!(
            r#"
import asyncio
from uuid import UUID
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
from prefect.client.schemas.sorting import LogSort

async def main():
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[UUID("{id}")]),
                level=LogFilterLevel(ge_=30),
            ),
            sort=LogSort.TIMESTAMP_DESC,
        )
        for log in logs:
            print(log.level, log.name, log.message, str(log.flow_run_id) == "{id}")

asyncio.run(main())
"#
        ),
    )
    .await
    .ok();
    assert_eq!(
        sdk.stdout.lines().collect::<Vec<_>>(),
        [
            "40 prefect.flow_runs third line, an error True",
            "30 prefect.flow_runs second line, a warning True",
        ],
        "{sdk:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_task_deletes_lines_past_the_retention() {
    let app = TestApp::spawn_with(|c| {
        c.service.log_retention = Duration::from_secs(3600);
        c.log_retention_interval = Duration::from_millis(200);
    })
    .await;
    let created = chrono::Utc::now() - chrono::Duration::hours(2);
    let line = |created: chrono::DateTime<chrono::Utc>, message: &str| pushpool_core::logs::Log {
        id: uuid::Uuid::now_v7(),
        created,
        updated: created,
        name: "prefect.flow_runs".into(),
        level: 20,
        message: message.into(),
        timestamp: created,
        flow_run_id: Some(uuid::Uuid::now_v7()),
        task_run_id: None,
    };
    app.service
        .store()
        .create_logs(
            &[
                line(created, "two hours old"),
                line(chrono::Utc::now(), "new"),
            ],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let mut left = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = app
            .service
            .store()
            .read_logs(&LogQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect::<Vec<_>>();
        if left.len() == 1 {
            break;
        }
    }
    assert_eq!(left, ["new"]);
}

const LOCAL_FLOW: &str = r#"
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

@flow
def chatty():
    logger = get_run_logger()
    logger.info("first line from the flow")
    logger.warning("second line, a warning")
    print("FLOW_RUN_ID", flow_run.id)

chatty()
"#;

/// The AWS shape's path offline: the API over DynamoDB (moto), a flow run in the client's
/// process whose `APILogHandler` posts its lines, then `prefect flow-run logs` and the SDK's
/// `read_logs` read them back from the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_a_flows_lines_are_read_back_by_the_cli_and_the_sdk() {
    use std::sync::Arc;

    use pushpool_providers::Providers;
    use pushpool_service::{Service, ServiceConfig};
    use pushpool_store::Store;
    use pushpool_store_dynamodb::DynamoStore;

    let moto = pushpool_tests::moto::MotoServer::start();
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    DynamoStore::create_table(&dynamodb, "pushpool")
        .await
        .expect("table");
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb, "pushpool"));
    let service = Service::new(store, Providers::new(), ServiceConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = pushpool_api::router(pushpool_api::AppState::new(service));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let api = format!("http://{addr}/api");
    let dir = tempfile::tempdir().unwrap();

    let ran = python(&api, dir.path(), LOCAL_FLOW).await.ok();
    let id = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("FLOW_RUN_ID "))
        .unwrap_or_else(|| panic!("no flow run id: {ran:?}"))
        .trim()
        .to_owned();
    assert!(
        !ran.stderr.contains("Error logging to API")
            && !ran.stdout.contains("Error logging to API"),
        "{ran:?}"
    );

    let out = prefect(&api, dir.path(), &["flow-run", "logs", &id])
        .await
        .ok();
    let name = out
        .stdout
        .lines()
        .find_map(|l| l.split("| Flow run '").nth(1)?.split('\'').next())
        .unwrap_or_else(|| panic!("no log line printed: {out:?}"))
        .to_owned();
    let lines = printed(&out.stdout, &name);
    let first = lines
        .iter()
        .position(|(_, m)| m == "first line from the flow")
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(
        lines[first..first + 2],
        [
            ("INFO".to_owned(), "first line from the flow".to_owned()),
            ("WARNING".to_owned(), "second line, a warning".to_owned()),
        ],
        "{}",
        out.stdout
    );
    assert!(
        lines[..first]
            .iter()
            .any(|(_, m)| m.starts_with("Beginning flow run")),
        "{}",
        out.stdout
    );

    let sdk = python(
        &api,
        dir.path(),
        &format!(
            r#"
import asyncio
from uuid import UUID
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

async def main():
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[UUID("{id}")]),
                level=LogFilterLevel(ge_=30),
            ),
        )
        for log in logs:
            print(log.level, log.name, log.message)

asyncio.run(main())
"#
        ),
    )
    .await
    .ok();
    assert_eq!(
        sdk.stdout.lines().collect::<Vec<_>>(),
        ["30 prefect.flow_runs second line, a warning"],
        "{sdk:?}"
    );
    server.abort();
}
