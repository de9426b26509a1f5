//! `pushpool serve` as a user starts it: the real binary, configured only through its
//! environment variables (`PUSHPOOL_BIND`, `PUSHPOOL_DATA_DIR`, `PUSHPOOL_PUBLIC_URL`), with
//! debug logging on. A process-pool run gets the public URL as `PREFECT_API_URL`; an ECS run
//! whose endpoint is unreachable ends CRASHED after bounded retries; no secret (a block's or
//! the environment's) appears in any log line; SIGTERM stops it cleanly.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BLOCK_SECRET: &str = "block-secret-value-7d1f3a";
const ENV_SECRET: &str = "env-secret-value-93b2c4";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn call(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("server answers");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_is_configured_by_environment_and_keeps_secrets_out_of_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}/api");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushpool"))
        .arg("serve")
        .env("PUSHPOOL_BIND", format!("127.0.0.1:{port}"))
        .env("PUSHPOOL_DATA_DIR", &data)
        .env("PUSHPOOL_PUBLIC_URL", "http://pushpool.example:8080")
        .env("PUSHPOOL_RECONCILE_INTERVAL", "1")
        .env("PUSHPOOL_PROVIDER_RETRY_BUDGET", "2")
        .env("RUST_LOG", "debug")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT")
        .env("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("pushpool binary starts");
    let client = reqwest::blocking::Client::new();
    wait_for("health", Duration::from_secs(30), || {
        client
            .get(format!("{api}/health"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("pushpool.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the database holds secrets");
    }

    // A process-pool run: the job's PREFECT_API_URL is the public URL.
    let out = dir.path().join("api-url.txt");
    let (s, _) = call(
        &client,
        "POST",
        &format!("{api}/work_pools/"),
        Some(json!({"name": "local", "type": "process"})),
    );
    assert_eq!(s, 201);
    let (_, flow) = call(
        &client,
        "POST",
        &format!("{api}/flows/"),
        Some(json!({"name": "f"})),
    );
    let command = format!(
        "sh -c 'echo \"$PREFECT_API_URL $PREFECT__FLOW_RUN_ID\" > {}'",
        out.display()
    );
    let (s, dep) = call(
        &client,
        "POST",
        &format!("{api}/deployments/"),
        Some(json!({
            "name": "d", "flow_id": flow["id"], "work_pool_name": "local",
            "job_variables": {"command": command},
        })),
    );
    assert_eq!(s, 201, "{dep}");
    let (s, run) = call(
        &client,
        "POST",
        &format!(
            "{api}/deployments/{}/create_flow_run",
            dep["id"].as_str().unwrap()
        ),
        Some(json!({})),
    );
    assert_eq!(s, 201);
    let run_id = run["id"].as_str().unwrap().to_owned();
    let run_url = format!("{api}/flow_runs/{run_id}");
    wait_for("the process run to finish", Duration::from_secs(30), || {
        call(&client, "GET", &run_url, None).1["state_type"] == "COMPLETED"
    });
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        format!("http://pushpool.example:8080/api {run_id}")
    );
    let (_, done) = call(&client, "GET", &run_url, None);
    assert_eq!(
        done["state"]["message"],
        "The job exited with code 0 without the flow run reporting a final state."
    );

    // An ECS run with credentials from a block, against an unreachable endpoint.
    let (s, bt) = call(
        &client,
        "POST",
        &format!("{api}/block_types/"),
        Some(json!({"name": "AWS Credentials", "slug": "aws-credentials"})),
    );
    assert_eq!(s, 201);
    let (s, schema) = call(
        &client,
        "POST",
        &format!("{api}/block_schemas/"),
        Some(json!({
            "block_type_id": bt["id"], "capabilities": [], "version": "0.7.12",
            "fields": {"title": "AwsCredentials", "type": "object", "block_type_slug": "aws-credentials",
                "properties": {"aws_access_key_id": {"type": "string"}, "aws_secret_access_key": {"type": "string", "format": "password"},
                    "region_name": {"type": "string"}},
                "secret_fields": ["aws_secret_access_key"], "block_schema_references": {}},
        })),
    );
    assert_eq!(s, 201);
    let (s, doc) = call(
        &client,
        "POST",
        &format!("{api}/block_documents/"),
        Some(json!({
            "name": "creds", "block_type_id": bt["id"], "block_schema_id": schema["id"], "is_anonymous": false,
            "data": {"aws_access_key_id": "AKIAFROMBLOCK", "aws_secret_access_key": BLOCK_SECRET, "region_name": "us-east-1"},
        })),
    );
    assert_eq!(s, 201);
    assert_eq!(doc["data"]["aws_secret_access_key"], "********");
    let (s, pool) = call(
        &client,
        "POST",
        &format!("{api}/work_pools/"),
        Some(json!({"name": "ecs", "type": "ecs:push"})),
    );
    assert_eq!(s, 201);
    let mut template = pool["base_job_template"].clone();
    template["variables"]["properties"]["aws_credentials"]["default"] =
        json!({"$ref": {"block_document_id": doc["id"]}});
    let (s, _) = call(
        &client,
        "PATCH",
        &format!("{api}/work_pools/ecs"),
        Some(json!({"base_job_template": template})),
    );
    assert_eq!(s, 204);
    let (s, dep) = call(
        &client,
        "POST",
        &format!("{api}/deployments/"),
        Some(json!({
            "name": "on-ecs", "flow_id": flow["id"], "work_pool_name": "ecs",
            "job_variables": {"image": "prefecthq/prefect:3-latest", "cluster": "c", "cpu": 256, "memory": 512,
                "network_configuration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}},
        })),
    );
    assert_eq!(s, 201, "{dep}");
    let (_, run) = call(
        &client,
        "POST",
        &format!(
            "{api}/deployments/{}/create_flow_run",
            dep["id"].as_str().unwrap()
        ),
        Some(json!({})),
    );
    let ecs_url = format!("{api}/flow_runs/{}", run["id"].as_str().unwrap());
    wait_for("the ECS run to crash", Duration::from_secs(120), || {
        call(&client, "GET", &ecs_url, None).1["state_type"] == "CRASHED"
    });
    let (_, crashed) = call(&client, "GET", &ecs_url, None);
    let message = crashed["state"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Flow run could not be submitted to infrastructure after "),
        "{message}"
    );
    assert!(!message.contains(BLOCK_SECRET) && !message.contains(ENV_SECRET));
    // Sentences, not the SDK's Debug dump: the endpoint is refused, retried for the 2 s budget.
    assert!(
        message.contains(
            "ECS DescribeTaskDefinition failed: pushpool could not reach the ECS endpoint (client \
             error (Connect): tcp connect error: Connection refused (os error 111)). If it lasts, \
             check the region, AWS_ENDPOINT_URL and the network path to AWS. pushpool stopped \
             retrying at the end of its 2 s retry budget"
        ),
        "{message}"
    );
    assert!(!message.contains("DispatchFailure") && !message.contains("ConnectorError"));

    // SIGTERM stops the server cleanly.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut text = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("SCHEDULED -> PENDING"),
        "transitions are logged"
    );
    assert!(text.contains("PENDING -> CRASHED"));
    assert!(text.contains("pushpool stopped"));
    for secret in [BLOCK_SECRET, ENV_SECRET] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "secret in the log: {leaks:#?}");
    }
}

/// A `pushpool serve` child on a free loopback port, its data and log in `dir`, with `envs`
/// added to its environment; returns the child and the API's base URL once it is healthy.
fn spawn_serve(dir: &std::path::Path, envs: &[(&str, &str)]) -> (std::process::Child, String) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushpool"));
    command
        .arg("serve")
        .env("PUSHPOOL_BIND", format!("127.0.0.1:{port}"))
        .env("PUSHPOOL_DATA_DIR", dir.join("data"))
        .env("PUSHPOOL_RECONCILE_INTERVAL", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = command.spawn().expect("pushpool binary starts");
    let api = format!("http://127.0.0.1:{port}/api");
    let client = reqwest::blocking::Client::new();
    wait_for("health", Duration::from_secs(30), || {
        client
            .get(format!("{api}/health"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
    (child, api)
}

/// SIGTERM, a clean exit, and the whole log.
fn stop(mut child: std::process::Child, dir: &std::path::Path) -> String {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(dir.join("server.log")).unwrap()
}

const SESSION_TOKEN: &str = "session-token-value-5e8a1c";
const BLOCK_SECRET_KEY: &str = "block-secret-key-value-0c4d92";

#[test]
fn at_trace_level_no_aws_secret_reaches_the_log() {
    let moto = pushpool_tests::moto::MotoServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(moto.create_cluster("flows"));
    let dir = tempfile::tempdir().unwrap();
    let (child, api) = spawn_serve(
        dir.path(),
        &[
            ("RUST_LOG", "trace"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT"),
            ("AWS_SECRET_ACCESS_KEY", ENV_SECRET),
            ("AWS_ENDPOINT_URL", &moto.endpoint),
        ],
    );
    let client = reqwest::blocking::Client::new();

    let (s, bt) = call(
        &client,
        "POST",
        &format!("{api}/block_types/"),
        Some(json!({"name": "AWS Credentials", "slug": "aws-credentials"})),
    );
    assert_eq!(s, 201);
    let (s, schema) = call(
        &client,
        "POST",
        &format!("{api}/block_schemas/"),
        Some(json!({
            "block_type_id": bt["id"], "capabilities": [], "version": "0.7.12",
            "fields": {"title": "AwsCredentials", "type": "object", "block_type_slug": "aws-credentials",
                "properties": {"aws_access_key_id": {"type": "string"},
                    "aws_secret_access_key": {"type": "string", "format": "password"},
                    "aws_session_token": {"type": "string", "format": "password"},
                    "region_name": {"type": "string"},
                    "aws_client_parameters": {"type": "object"}},
                "secret_fields": ["aws_secret_access_key", "aws_session_token"],
                "block_schema_references": {}},
        })),
    );
    assert_eq!(s, 201, "{schema}");
    let (s, doc) = call(
        &client,
        "POST",
        &format!("{api}/block_documents/"),
        Some(json!({
            "name": "session-creds", "block_type_id": bt["id"], "block_schema_id": schema["id"],
            "is_anonymous": false,
            "data": {"aws_access_key_id": "AKIAFROMBLOCK", "aws_secret_access_key": BLOCK_SECRET_KEY,
                "aws_session_token": SESSION_TOKEN, "region_name": "us-east-1",
                "aws_client_parameters": {"endpoint_url": moto.endpoint}},
        })),
    );
    assert_eq!(s, 201, "{doc}");
    let (s, pool) = call(
        &client,
        "POST",
        &format!("{api}/work_pools/"),
        Some(json!({"name": "ecs", "type": "ecs:push"})),
    );
    assert_eq!(s, 201);
    let mut template = pool["base_job_template"].clone();
    template["variables"]["properties"]["aws_credentials"]["default"] =
        json!({"$ref": {"block_document_id": doc["id"]}});
    // moto needs a container-level memory (bug 1 of the team's emulator report).
    template["job_configuration"]["task_definition"]["containerDefinitions"][0]["memory"] =
        json!("{{ memory }}");
    let (s, _) = call(
        &client,
        "PATCH",
        &format!("{api}/work_pools/ecs"),
        Some(json!({"base_job_template": template})),
    );
    assert_eq!(s, 204);
    let (_, flow) = call(
        &client,
        "POST",
        &format!("{api}/flows/"),
        Some(json!({"name": "f"})),
    );
    let (s, dep) = call(
        &client,
        "POST",
        &format!("{api}/deployments/"),
        Some(json!({
            "name": "on-ecs", "flow_id": flow["id"], "work_pool_name": "ecs",
            "job_variables": {"image": "prefecthq/prefect:3-latest", "cluster": "flows", "cpu": 256, "memory": 512},
        })),
    );
    assert_eq!(s, 201, "{dep}");
    let (s, run) = call(
        &client,
        "POST",
        &format!(
            "{api}/deployments/{}/create_flow_run",
            dep["id"].as_str().unwrap()
        ),
        Some(json!({})),
    );
    assert_eq!(s, 201, "{run}");
    let run_url = format!("{api}/flow_runs/{}", run["id"].as_str().unwrap());
    // Submitted to moto with the block's session credentials (RunTask), then polled
    // (DescribeTasks) by the reconciler.
    let start = Instant::now();
    loop {
        let (_, run) = call(&client, "GET", &run_url, None);
        if run["infrastructure_pid"]
            .as_str()
            .is_some_and(|pid| pid.starts_with("arn:aws:ecs:us-east-1:"))
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
            let problems: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            panic!("no task ARN: {run}\n{problems:#?}\n{}", moto.log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));

    let text = stop(child, dir.path());
    // The SDK's own events were on (its debug lines pass the caps), and trace was on.
    assert!(
        text.contains("retry strategy has OKed initial request"),
        "the SDK's debug events are logged"
    );
    assert!(text.contains(" TRACE "), "trace events are logged");
    for secret in [SESSION_TOKEN, BLOCK_SECRET_KEY, ENV_SECRET] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "secret in the log: {leaks:#?}");
    }
}

#[test]
fn open_mode_refuses_foreign_hosts_and_bodies_that_are_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let (child, api) = spawn_serve(
        dir.path(),
        &[("PUSHPOOL_PUBLIC_URL", "http://pushpool.example:8080")],
    );
    let client = reqwest::blocking::Client::new();
    let send = |host: &str, content_type: Option<&str>, body: &str| {
        let mut req = client
            .post(format!("{api}/work_pools/"))
            .header("host", host)
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().expect("server answers");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let pool = r#"{"name": "p", "type": "process"}"#;

    let (status, body) = send("rebound.example:4200", Some("application/json"), pool);
    assert_eq!(status, 403);
    assert_eq!(
        body["detail"],
        "Host \"rebound.example:4200\" is not allowed: without API keys this server only \
         answers the hosts 127.0.0.1, localhost, [::1], pushpool.example. To reach it under \
         another name, start it with --public-url (PUSHPOOL_PUBLIC_URL) set to the URL clients \
         use, or require API keys (--require-api-key)."
    );
    let (status, body) = send("localhost", Some("text/plain"), pool);
    assert_eq!(status, 415);
    assert_eq!(
        body["detail"],
        "Content-Type \"text/plain\" is not accepted: a POST request with a body must send \
         'Content-Type: application/json'."
    );
    let (status, body) = send("pushpool.example:8080", Some("application/json"), pool);
    assert_eq!(status, 201, "{body}");
    let (status, _) = send("[::1]:1", Some("application/json"), pool);
    assert_eq!(status, 409);

    let text = stop(child, dir.path());
    assert!(
        text.contains(
            "open mode: no API key is required on loopback; only the hosts 127.0.0.1, \
             localhost, [::1] and pushpool.example are answered"
        ),
        "{text}"
    );
}
