//! The Prefect 3.9.1 CLI and SDK against pushpool, compared step by step with golden
//! transcripts recorded once from Prefect's own server (issue 9's "Done when").
//!
//! Each scenario in `tests/golden/scenarios/` is a list of CLI commands and SDK calls that
//! `tests/golden/driver.py` runs in one Python process (Prefect's own in-process CLI runner),
//! normalising ids, times and table widths. `tests/golden/record.sh` recorded the same
//! scenarios against `prefect server start` into `tests/fixtures/golden/`. Here each is
//! replayed against both shapes of pushpool:
//! - embedded: `pushpool serve` over SQLite ([`TestApp`]);
//! - AWS: the API function's router over a DynamoDB table on moto, with API keys required
//!   (the client sends `PREFECT_API_KEY`), as the API Lambda serves it.
//!
//! What each step printed (or the SDK call returned) and its exit code must equal the
//! golden transcript's.

use std::path::PathBuf;
use std::sync::Arc;

use pushpool_api::auth::{AuthMode, generate_key, hash_key};
use pushpool_core::model::ApiKey;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store_dynamodb::DynamoStore;
use pushpool_tests::app::TestApp;
use pushpool_tests::moto::MotoServer;
use pushpool_tests::tools::{venv_bin, workspace_root};
use serde_json::Value;

/// Runs `scenario` with the driver against `api`; returns the transcript.
async fn replay(scenario: &str, api: &str, api_key: Option<&str>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let out = dir.path().join("transcript.json");
    let mut command = tokio::process::Command::new(venv_bin("python"));
    command
        .arg(root.join("tests/golden/driver.py"))
        .arg(root.join(format!("tests/golden/scenarios/{scenario}.py")))
        .arg(&out)
        .current_dir(dir.path())
        .env("PREFECT_API_URL", api)
        .env("PREFECT_HOME", dir.path().join("prefect-home"))
        .env_remove("PREFECT_API_KEY")
        .kill_on_drop(true);
    if let Some(key) = api_key {
        command.env("PREFECT_API_KEY", key);
    }
    let ran = command.output().await.expect("the driver starts");
    assert!(
        ran.status.success(),
        "the driver failed on {scenario}:\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// The golden transcript of `scenario`, with pushpool's deliberate differences
/// (`tests/golden/differences.json`, each with its reason) applied.
fn golden(scenario: &str) -> Vec<Value> {
    let path: PathBuf = workspace_root().join(format!("tests/fixtures/golden/{scenario}.json"));
    let mut steps: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let differences: Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("tests/golden/differences.json")).unwrap(),
    )
    .unwrap();
    let applicable = ["*", scenario]
        .into_iter()
        .filter_map(|k| differences[k].as_array())
        .flatten();
    for difference in applicable {
        let (from, to) = (
            difference["golden"].as_str().unwrap(),
            difference["pushpool"].as_str().unwrap(),
        );
        assert!(
            difference["why"].as_str().is_some_and(|w| !w.is_empty()),
            "a difference without its reason: {difference}"
        );
        for step in &mut steps {
            replace_in(&mut step["output"], from, to);
        }
    }
    steps
}

fn replace_in(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_in(v, from, to)),
        _ => {}
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap(),
    }
}

/// Asserts the transcript equals the golden one, listing every step that differs.
fn assert_matches(scenario: &str, shape: &str, got: &[Value]) {
    let want = golden(scenario);
    let mut differences = Vec::new();
    for (i, expected) in want.iter().enumerate() {
        let step = expected["step"].as_str().unwrap_or_default();
        match got.get(i) {
            None => differences.push(format!("step {i} `{step}`: missing")),
            Some(actual) if actual != expected => differences.push(format!(
                "step {i} `{step}`:\n--- Prefect 3.9.1 (exit {})\n{}\n--- pushpool {shape} (exit {})\n{}",
                expected["exit_code"],
                show(&expected["output"]),
                actual["exit_code"],
                show(&actual["output"]),
            )),
            Some(_) => {}
        }
    }
    assert_eq!(got.len(), want.len(), "{scenario}: number of steps");
    assert!(
        differences.is_empty(),
        "{scenario} on pushpool {shape} differs from Prefect 3.9.1 in {} of {} steps:\n\n{}",
        differences.len(),
        want.len(),
        differences.join("\n\n")
    );
}

/// The API function's router over a fresh table on `moto`, keys required; returns its
/// `PREFECT_API_URL` and a key.
async fn aws_api(moto: &MotoServer, table: &str) -> (String, String) {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    DynamoStore::create_table(&client, table).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client, table));
    let key = generate_key();
    store
        .create_api_key(&ApiKey {
            id: uuid::Uuid::new_v4(),
            name: "golden".into(),
            hash: hash_key(&key),
            created: chrono::Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let service = Service::new(store, Providers::new(), ServiceConfig::default());
    let app =
        pushpool_api::router(pushpool_api::AppState::new(service).with_auth(AuthMode::Required));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api"), key)
}

async fn check(scenario: &str) {
    let app = TestApp::spawn().await;
    let embedded = replay(scenario, &app.api, None).await;
    assert_matches(scenario, "embedded (SQLite)", &embedded);

    let moto = MotoServer::start();
    let (api, key) = aws_api(&moto, "pushpool").await;
    let aws = replay(scenario, &api, Some(&key)).await;
    assert_matches(scenario, "AWS (DynamoDB)", &aws);
}

/// Every scenario in `tests/golden/scenarios/` has its golden transcript and a test here.
#[test]
fn every_scenario_is_recorded_and_tested() {
    let this = std::fs::read_to_string(workspace_root().join("tests/tests/cli_golden.rs")).unwrap();
    for entry in std::fs::read_dir(workspace_root().join("tests/golden/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("py") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            workspace_root()
                .join(format!("tests/fixtures/golden/{name}.json"))
                .exists(),
            "{name} has no golden transcript: run tests/golden/record.sh {name}"
        );
        assert!(
            this.contains(&format!("check(\"{name}\")")),
            "{name} has no test in cli_golden.rs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_pools_queues() {
    check("work_pools_queues").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_flow_runs() {
    check("deployments_flow_runs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_artifacts_automations() {
    check("variables_artifacts_automations").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_logs_resume() {
    check("concurrency_logs_resume").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_yaml() {
    check("deploy_yaml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve() {
    check("serve").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume() {
    check("pause_resume").await;
}
