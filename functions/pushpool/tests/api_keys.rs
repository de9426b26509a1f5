//! API keys end to end with the real binary: keys are created and revoked with
//! `pushpool api-key ...`, `serve --require-api-key` answers 401 without a valid key (but not
//! on /api/health), jobs get their own key as `PREFECT_API_KEY`, and neither a key nor its
//! hash appears in the log.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn pushpool(args: &[&str], data: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pushpool"))
        .args(args)
        .env("PUSHPOOL_DATA_DIR", data)
        .output()
        .expect("pushpool runs")
}

fn create_key(name: &str, data: &std::path::Path) -> String {
    let out = pushpool(&["api-key", "create", name], data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("pp_") && key.len() == 43, "{key}");
    key
}

fn status(client: &reqwest::blocking::Client, url: &str, key: Option<&str>) -> u16 {
    let mut req = client.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().expect("answers").status().as_u16()
}

#[test]
fn keys_are_required_checked_revoked_and_handed_to_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let user_key = create_key("ci", &data);
    let job_key = create_key("jobs", &data);
    let dup = pushpool(&["api-key", "create", "ci"], &data);
    assert!(!dup.status.success(), "a second key named ci is refused");

    // --require-api-key without a job key refuses to start, naming the variable.
    let refused = Command::new(env!("CARGO_BIN_EXE_pushpool"))
        .args(["serve", "--require-api-key", "--bind", "127.0.0.1:0"])
        .env("PUSHPOOL_DATA_DIR", &data)
        .env_remove("PUSHPOOL_JOB_API_KEY")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PUSHPOOL_JOB_API_KEY is required"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{port}/api");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushpool"))
        .args([
            "serve",
            "--require-api-key",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("PUSHPOOL_DATA_DIR", &data)
        .env("PUSHPOOL_JOB_API_KEY", &job_key)
        .env("PUSHPOOL_RECONCILE_INTERVAL", "1")
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let start = Instant::now();
    while client.get(format!("{api}/health")).send().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(status(&client, &format!("{api}/health"), None), 200);
    assert_eq!(
        status(&client, &format!("{api}/work_pools/nope"), None),
        401
    );
    assert_eq!(
        status(&client, &format!("{api}/work_pools/nope"), Some("pp_wrong")),
        401
    );
    assert_eq!(
        status(&client, &format!("{api}/work_pools/nope"), Some(&user_key)),
        404
    );
    // Prefect's UI sends what its login form was given as HTTP Basic: `user:key` or the key.
    let basic = |user: &str, password: Option<&str>| {
        client
            .get(format!("{api}/work_pools/nope"))
            .basic_auth(user, password)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(basic("admin", Some(&user_key)), 404);
    assert_eq!(basic(&user_key, None), 404);
    assert_eq!(basic("admin", Some("pp_wrong")), 401);
    let body: Value = client
        .get(format!("{api}/admin/version"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        body,
        json!({"detail": "Missing API key: send 'Authorization: Bearer <key>' (PREFECT_API_KEY)."})
    );

    // A job gets the job key and can report back with it.
    let out = dir.path().join("key.txt");
    let post = |path: &str, body: Value| -> Value {
        let resp = client
            .post(format!("{api}{path}"))
            .bearer_auth(&user_key)
            .json(&body)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().unwrap()
    };
    post("/work_pools/", json!({"name": "local", "type": "process"}));
    let flow = post("/flows/", json!({"name": "f"}));
    let command = format!(
        "sh -c 'echo \"$PREFECT_API_KEY\" > {out} && curl -fs -H \"Authorization: Bearer $PREFECT_API_KEY\" $PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID >> {out}'",
        out = out.display()
    );
    let dep = post(
        "/deployments/",
        json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "local",
        "job_variables": {"command": command}}),
    );
    let run = post(
        &format!(
            "/deployments/{}/create_flow_run",
            dep["id"].as_str().unwrap()
        ),
        json!({}),
    );
    let run_url = format!("{api}/flow_runs/{}", run["id"].as_str().unwrap());
    let start = Instant::now();
    loop {
        let r: Value = client
            .get(&run_url)
            .bearer_auth(&user_key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if r["state_type"] == "COMPLETED" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "run did not complete: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = std::fs::read_to_string(&out).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some(job_key.as_str()));
    let seen: Value = serde_json::from_str(lines.next().unwrap_or("null")).unwrap();
    assert_eq!(seen["id"], run["id"], "the job read its run with its key");

    // Revoking a key takes effect at once.
    let listed = String::from_utf8(pushpool(&["api-key", "list"], &data).stdout).unwrap();
    let ci_id = listed
        .lines()
        .find(|l| l.contains("\tci\t"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        pushpool(&["api-key", "revoke", &ci_id], &data)
            .status
            .success()
    );
    assert_eq!(
        status(&client, &format!("{api}/work_pools/nope"), Some(&user_key)),
        401
    );
    let listed = String::from_utf8(pushpool(&["api-key", "list"], &data).stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.contains("\tci\t") && l.ends_with("revoked")),
        "{listed}"
    );

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    for secret in [
        user_key.clone(),
        job_key.clone(),
        pushpool_api::auth::hash_key(&user_key),
        pushpool_api::auth::hash_key(&job_key),
    ] {
        assert!(!text.contains(&secret), "a key or its hash is in the log");
    }
}
