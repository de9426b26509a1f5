//! Live logs and log downloads, through Prefect 3.9.1's own clients:
//!
//! - `prefect deployment run <flow>/<deployment> --watch` and `prefect flow-run watch <id>`
//!   (`prefect/cli/flow_runs_watching.py`, whose `FlowRunSubscriber` subscribes to both
//!   `WS /events/out` and `WS /logs/out`) against `pushpool serve` with a process pool: they
//!   print the flow's own `get_run_logger()` line and the final state, and exit 0.
//! - `PrefectLogsSubscriber` (`prefect/logging/clients.py`) with a filter for one flow run
//!   gets that run's lines and not another run's; a filter criterion Prefect's own live
//!   stream ignores (`level`, `text`) is honoured; protocol errors close with Prefect's
//!   reasons; with keys required the auth message must carry a key.
//! - `GET /flow_runs/{id}/logs/download`: Prefect's exact CSV, on SQLite and on DynamoDB
//!   (moto), every line of a run over more than one page.

use std::sync::Arc;

use chrono::Utc;
use pushpool_api::auth::{AuthMode, hash_key};
use pushpool_core::model::ApiKey;
use pushpool_core::state::StateType;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::{deploy_on_process_pool, prefect, python};
use serde_json::{Value, json};

const FLOW: &str = r#"
import time
from prefect import flow, get_run_logger

@flow
def chatty(wait: int = 0):
    time.sleep(wait)
    logger = get_run_logger()
    logger.info("first line from the flow")
"#;

/// The lines of a watch's output that show `message` for the run (`▪ <time> <last 12
/// characters of the run id> <message>`, `FlowRunFormatter.format_log`).
fn watched_log_lines<'a>(stdout: &'a str, run_id: &str, message: &str) -> Vec<&'a str> {
    let tail = format!(" {} {message}", &run_id[run_id.len() - 12..]);
    stdout
        .lines()
        .filter(|l| l.starts_with("▪ ") && l.ends_with(&tail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_run_watch_and_flow_run_watch_print_the_flows_lines_and_final_state() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    deploy_on_process_pool(
        &app.api,
        dir.path(),
        "chatty.py",
        FLOW,
        "chatty",
        "local",
        "",
    )
    .await;

    // `prefect deployment run --watch`: the run is created, then watched to its end.
    let out = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "chatty/local", "--watch"],
    )
    .await
    .ok();
    let id = out.flow_run_id().to_string();
    assert_eq!(
        watched_log_lines(&out.stdout, &id, "first line from the flow").len(),
        1,
        "{out:?}"
    );
    let run = app.flow_run(id.parse().unwrap()).await;
    assert_eq!(
        run.state.as_ref().map(|s| s.r#type),
        Some(StateType::Completed)
    );
    let completed = format!(
        " {} prefect.flow-run.Completed * {}",
        &id[id.len() - 12..],
        run.name
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("● ") && l.ends_with(&completed)),
        "{out:?}"
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("Flow run finished successfully in 'Completed'."),
        "{out:?}"
    );

    // `prefect flow-run watch <id>` of a run that has not finished (its flow waits 15 s
    // before it logs).
    let started = prefect(
        &app.api,
        dir.path(),
        &["deployment", "run", "chatty/local", "--param", "wait=15"],
    )
    .await
    .ok();
    let id = started.flow_run_id().to_string();
    let out = prefect(&app.api, dir.path(), &["flow-run", "watch", &id])
        .await
        .ok();
    assert_eq!(
        watched_log_lines(&out.stdout, &id, "first line from the flow").len(),
        1,
        "{out:?}"
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("Flow run finished successfully in 'Completed'."),
        "{out:?}"
    );
}

const RUN_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const RUN_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

const SUBSCRIBER: &str = r#"
import asyncio, json, uuid
import websockets
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    LogFilter, LogFilterFlowRunId, LogFilterLevel, LogFilterTextSearch,
)
from prefect.logging.clients import PrefectLogsSubscriber
from prefect.settings import PREFECT_API_URL
from prefect.types._datetime import now

A = uuid.UUID("__A__")
B = uuid.UUID("__B__")

async def post(run, level, message):
    async with get_client() as client:
        await client.create_logs([{
            "name": "test.logs", "level": level, "message": message,
            "timestamp": now("UTC").isoformat(), "flow_run_id": str(run),
        }])

async def received(subscriber, label):
    while True:
        try:
            log = await asyncio.wait_for(subscriber.__anext__(), 3)
        except asyncio.TimeoutError:
            print(label, "nothing more")
            return
        print(label, "got", "A" if log.flow_run_id == A else "B", log.level, log.message)

async def raw(label, second):
    url = PREFECT_API_URL.value().replace("http://", "ws://") + "/logs/out"
    async with websockets.connect(url, subprotocols=["prefect"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": None}))
        print(label, json.loads(await ws.recv())["type"])
        await ws.send(second)
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print(label, "closed", e.rcvd.code, e.rcvd.reason)

async def main():
    by_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[A]))
    async with PrefectLogsSubscriber(filter=by_run, reconnection_attempts=0) as subscriber:
        await post(B, 20, "b one")
        await post(A, 20, "a one")
        await post(B, 20, "b two")
        await post(A, 40, "a two")
        await received(subscriber, "run")
    narrow = LogFilter(
        level=LogFilterLevel(ge_=30),
        text=LogFilterTextSearch(query="-skip"),
    )
    async with PrefectLogsSubscriber(filter=narrow, reconnection_attempts=0) as subscriber:
        await post(A, 20, "info line")
        await post(B, 30, "warning line")
        await post(A, 40, "error line to skip")
        await post(A, 40, "error line")
        await received(subscriber, "narrow")
    await raw("type", json.dumps({"type": "nope"}))
    await raw("filter", json.dumps({"type": "filter", "filter": {"flow_run_id": {"like_": "x"}}}))

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logs_subscriber_gets_the_lines_its_filter_passes_and_only_those() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let script = SUBSCRIBER.replace("__A__", RUN_A).replace("__B__", RUN_B);
    let out = python(&app.api, dir.path(), &script).await.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "run got A 20 a one",
            "run got A 40 a two",
            "run nothing more",
            "narrow got B 30 warning line",
            "narrow got A 40 error line",
            "narrow nothing more",
            "type auth_success",
            "type closed 1002 Expected 'filter' message",
            "filter auth_success",
            "filter closed 1002 Invalid filter: flow_run_id.like_: unknown field `like_`, expected `any_`",
        ],
        "{out:?}"
    );
}

const KEY: &str = "pp_0123456789abcdefghijklmnopqrstuvwxyzABCD";

const AUTH_SCRIPT: &str = r#"
import asyncio, uuid
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.clients import PrefectLogsSubscriber
from prefect.settings import PREFECT_API_KEY, PREFECT_API_AUTH_STRING, temporary_settings
from prefect.types._datetime import now

A = uuid.UUID("__A__")
KEY = "__KEY__"

async def case(label):
    f = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[A]))
    try:
        async with PrefectLogsSubscriber(filter=f, reconnection_attempts=0) as subscriber:
            async with get_client() as client:
                await client.create_logs([{
                    "name": "test.logs", "level": 20, "message": "hello " + label,
                    "timestamp": now("UTC").isoformat(), "flow_run_id": str(A),
                }])
            log = await asyncio.wait_for(subscriber.__anext__(), 10)
            print(label, "got", log.message)
    except Exception as e:
        print(label, "refused:", str(e).split("Reason: ")[-1].splitlines()[0])

async def main():
    for label, settings in [
        ("key-only", {PREFECT_API_KEY: KEY}),
        ("wrong-auth-string", {PREFECT_API_KEY: KEY, PREFECT_API_AUTH_STRING: "pp_wrong"}),
        ("auth-string", {PREFECT_API_KEY: KEY, PREFECT_API_AUTH_STRING: KEY}),
    ]:
        with temporary_settings(updates=settings):
            await case(label)

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_required_the_logs_subscriber_authenticates_with_the_auth_message() {
    let app = TestApp::spawn_with(|c| {
        c.auth = AuthMode::Required;
        c.job_api_key = Some("pp_jobs_key_for_this_test_0123456789abcdefgh".into());
    })
    .await;
    app.service
        .store()
        .create_api_key(&ApiKey {
            id: uuid::Uuid::new_v4(),
            name: "ci".into(),
            hash: hash_key(KEY),
            created: Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = AUTH_SCRIPT.replace("__A__", RUN_A).replace("__KEY__", KEY);
    let out = python(&app.api, dir.path(), &script).await.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "key-only refused: Auth required but no token provided",
            "wrong-auth-string refused: Invalid token",
            "auth-string got hello auth-string",
        ],
        "{out:?}"
    );
}

/// Serves the API over `store` on a free loopback port; returns `http://…/api`.
async fn serve(store: Arc<dyn Store>) -> String {
    let service = Service::new(store, Providers::new(), ServiceConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = pushpool_api::router(pushpool_api::AppState::new(service));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api")
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    let r = client.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert!(status == 200 || status == 201, "{status} {body}");
    body
}

fn line(run: &str, task: Option<&str>, level: i64, ts: &str, message: &str) -> Value {
    json!({
        "name": "prefect.flow_runs", "level": level, "message": message,
        "timestamp": ts, "flow_run_id": run, "task_run_id": task,
    })
}

/// The download of a run with lines of every shape (a task run's, a message with a comma,
/// quotes and a newline, a time without a fraction), posted out of order next to another
/// run's; then a run of 1,001 lines (two pages of Prefect's 1,000); then unknown runs.
async fn downloads_are_prefects_csv(api: &str) {
    let client = reqwest::Client::new();
    let flow = post(
        &client,
        format!("{api}/flows/"),
        json!({"name": "csv-flow"}),
    )
    .await;
    let run = post(
        &client,
        format!("{api}/flow_runs/"),
        json!({"flow_id": flow["id"], "name": "quiet fox/é"}),
    )
    .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let other = post(
        &client,
        format!("{api}/flow_runs/"),
        json!({"flow_id": flow["id"], "name": "many-lines"}),
    )
    .await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let task = "7a5c0000-0000-4000-8000-000000000001";
    post(
        &client,
        format!("{api}/logs/"),
        json!([
            line(
                &id,
                None,
                20,
                "2026-11-30T10:00:02.5Z",
                "Finished in state Completed()"
            ),
            line(
                &id,
                Some(task),
                30,
                "2026-11-30T10:00:01.000250Z",
                "He said \"hi, there\"\nand left"
            ),
            line(
                &other_id,
                None,
                20,
                "2026-11-30T10:00:01.5Z",
                "not this run's"
            ),
            line(&id, None, 20, "2026-11-30T10:00:00Z", "Beginning flow run"),
        ]),
    )
    .await;
    let r = client
        .get(format!("{api}/flow_runs/{id}/logs/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"flow-run-logs.csv\"; filename*=UTF-8''quiet%20fox%2F%C3%A9-logs.csv"
    );
    assert_eq!(
        r.text().await.unwrap(),
        format!(
            "timestamp,level,flow_run_id,task_run_id,message\r\n\
             2026-11-30 10:00:00+00:00,20,{id},,Beginning flow run\r\n\
             2026-11-30 10:00:01.000250+00:00,30,{id},{task},\"He said \"\"hi, there\"\"\nand left\"\r\n\
             2026-11-30 10:00:02.500000+00:00,20,{id},,Finished in state Completed()\r\n"
        )
    );

    let many: Vec<Value> = (0..1001)
        .map(|i| {
            let ts = format!("2026-11-30T11:{:02}:{:02}Z", i / 60, i % 60);
            line(&other_id, None, 20, &ts, &format!("line {i:04}"))
        })
        .collect();
    post(&client, format!("{api}/logs/"), Value::Array(many)).await;
    let body = client
        .get(format!("{api}/flow_runs/{other_id}/logs/download"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(rows.len(), 1 + 1002 + 1, "{body}");
    assert_eq!(
        rows[1],
        format!("2026-11-30 10:00:01.500000+00:00,20,{other_id},,not this run's")
    );
    for (i, row) in rows[2..1003].iter().enumerate() {
        assert_eq!(
            *row,
            format!(
                "2026-11-30 11:{:02}:{:02}+00:00,20,{other_id},,line {i:04}",
                i / 60,
                i % 60
            )
        );
    }
    assert_eq!(rows[1003], "");

    for path in [
        "/flow_runs/00000000-0000-4000-8000-00000000dead/logs/download",
        "/flow_runs/not-a-uuid/logs/download",
    ] {
        let r = client.get(format!("{api}{path}")).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        let expected = if path.contains("not-a-uuid") {
            "Not Found"
        } else {
            "Flow run not found"
        };
        assert_eq!((status, body), (404, json!({"detail": expected})));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_downloads_are_prefects_csv_on_sqlite() {
    let store = pushpool_store_sqlite::SqliteStore::in_memory().unwrap();
    let api = serve(Arc::new(store)).await;
    downloads_are_prefects_csv(&api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_downloads_are_prefects_csv_on_dynamodb() {
    use pushpool_store_dynamodb::DynamoStore;

    let moto = pushpool_tests::moto::MotoServer::start();
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    DynamoStore::create_table(&dynamodb, "pushpool")
        .await
        .expect("table");
    let api = serve(Arc::new(DynamoStore::new(dynamodb, "pushpool"))).await;
    downloads_are_prefects_csv(&api).await;
}
