//! Prefect's own web UI, served by `pushpool serve` from the installed `prefect` package,
//! opened in headless Chromium as a person would (issue 10 §3): each page of a seeded
//! server is loaded, waited for until what it should show is on screen, and checked for no
//! error banner and no API response >= 400 in the browser's network log. Screenshots are
//! kept in `target/ui-screenshots/<test>/`.
//!
//! The browser is Debian's `chromium` with `chromium-driver`, driven by selenium from the
//! project's virtualenv (`scripts/setup-test-tools.sh` installs all three); the driver script
//! is `tests/browser/ui_pages.py`.

use pushpool::UiSource;
use pushpool_tests::app::TestApp;
use pushpool_tests::tools::{venv, venv_bin, workspace_root};
use serde_json::{Value, json};

/// The `prefect` package of the project's virtualenv (`.venv/lib/python3.*/site-packages`).
fn prefect_package() -> std::path::PathBuf {
    let lib = venv().join("lib");
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/prefect"))
        .find(|p| p.join("server").is_dir())
        .expect("prefect is installed in the virtualenv: run scripts/setup-test-tools.sh")
}

/// A paused pool (no run of it starts), a flow with a deployment and a run of it an hour
/// late, a variable and a global concurrency limit: what the pages below must show.
async fn seed(app: &TestApp) -> String {
    let (status, pool) = app
        .send(
            "POST",
            "/work_pools/",
            Some(json!({"name": "local", "type": "process", "is_paused": true})),
        )
        .await;
    assert_eq!(status, 201, "{pool}");
    let (_, flow) = app
        .send("POST", "/flows/", Some(json!({"name": "etl"})))
        .await;
    let (status, deployment) = app
        .send(
            "POST",
            "/deployments/",
            Some(
                json!({"name": "nightly", "flow_id": flow["id"], "work_pool_name": "local",
                        "paused": true, "entrypoint": "flows.py:etl"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let (status, run) = app
        .send(
            "POST",
            &format!(
                "/deployments/{}/create_flow_run",
                deployment["id"].as_str().unwrap()
            ),
            Some(json!({"name": "nightly-run", "state": {"type": "SCHEDULED",
                        "state_details": {"scheduled_time": an_hour_ago}}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let (status, variable) = app
        .send(
            "POST",
            "/variables/",
            Some(json!({"name": "region", "value": "eu-west-1"})),
        )
        .await;
    assert_eq!(status, 201, "{variable}");
    let (status, limit) = app
        .send(
            "POST",
            "/v2/concurrency_limits/",
            Some(json!({"name": "warehouse", "limit": 3})),
        )
        .await;
    assert_eq!(status, 201, "{limit}");
    run["id"].as_str().unwrap().to_owned()
}

/// Opens `pages` (`{name, path, expect}`) against `base`; returns the driver's report.
async fn browse(base: &str, test: &str, pages: Value) -> Vec<Value> {
    let out = workspace_root().join("target/ui-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let list = out.join("pages.json");
    std::fs::write(&list, pages.to_string()).unwrap();
    let ran = tokio::process::Command::new(venv_bin("python"))
        .arg(workspace_root().join("tests/browser/ui_pages.py"))
        .arg(base)
        .arg(&list)
        .arg(&out)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the browser driver starts");
    assert!(
        ran.status.success(),
        "the browser driver failed:\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_of_a_push_pool_user_render_without_errors() {
    let app = TestApp::spawn_with(|c| c.ui = UiSource::Dir(prefect_package())).await;
    let run = seed(&app).await;
    let base = app.api.trim_end_matches("/api").to_owned();

    // `/ui-settings` says what the browser is given.
    let settings: Value = reqwest::get(format!("{base}/ui-settings"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        settings,
        json!({"api_url": app.api, "csrf_enabled": false, "auth": null, "flags": [],
               "default_ui": "v2", "available_uis": ["v1", "v2"],
               "v1_base_url": "/", "v2_base_url": "/v2"})
    );

    let pages = json!([
        {"name": "v2-dashboard", "path": "/v2/dashboard", "expect": ["Dashboard"]},
        {"name": "v2-work-pools", "path": "/v2/work-pools", "expect": ["1 work pool", "local", "Process"]},
        {"name": "v2-work-pool", "path": "/v2/work-pools/work-pool/local",
         "expect": ["local", "Work Queues"]},
        {"name": "v2-deployments", "path": "/v2/deployments", "expect": ["nightly", "etl"]},
        {"name": "v2-blocks", "path": "/v2/blocks", "expect": ["Blocks"]},
        {"name": "v2-variables", "path": "/v2/variables", "expect": ["region", "eu-west-1"]},
        {"name": "v2-concurrency", "path": "/v2/concurrency-limits",
         "expect": ["warehouse"]},
        {"name": "v2-runs", "path": "/v2/runs", "expect": ["nightly-run"]},
        {"name": "v2-flow-run", "path": format!("/v2/runs/flow-run/{run}"),
         "expect": ["nightly-run", "etl"]},
        {"name": "v1-work-pools", "path": "/work-pools", "expect": ["local"]},
        {"name": "v1-runs", "path": "/runs", "expect": ["nightly-run"]},
        {"name": "v1-deployments", "path": "/deployments", "expect": ["nightly"]},
        {"name": "v1-variables", "path": "/variables", "expect": ["region"]},
    ]);
    let report = browse(&base, "open_mode", pages).await;
    let problems: Vec<String> = report
        .iter()
        .filter(|p| {
            !p["missing"].as_array().unwrap().is_empty()
                || !p["errors_shown"].as_array().unwrap().is_empty()
                || !p["failed_responses"].as_array().unwrap().is_empty()
        })
        .map(|p| serde_json::to_string_pretty(p).unwrap())
        .collect();
    assert_eq!(report.len(), 13, "{report:?}");
    assert!(
        problems.is_empty(),
        "pages that did not render as they should (screenshots in target/ui-screenshots/open_mode):\n{}",
        problems.join("\n")
    );
}
