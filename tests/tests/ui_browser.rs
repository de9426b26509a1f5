//! Prefect's own web UI, served by `pushpool serve` from the installed `prefect` package,
//! opened in headless Chromium as a person would (issue 10 §3), in both modes, one server and
//! one browser session per mode:
//!
//! - **open mode**: each page of a seeded server is loaded, waited for until what it should
//!   show is on screen (the event feed with the run's events, the flow run's logs and task
//!   runs tabs included), and checked for no error banner and no API response >= 400 in the
//!   browser's network log; then the push-pool guide's first step is clicked: an AWS
//!   Credentials, a GCP Credentials and an Azure Container Instance Credentials block are
//!   created from their forms in the block catalog (the block types come from the installed
//!   prefect's collection data, as on Prefect's server), and what the API stored is checked;
//!   then an ECS push pool is created in the work pool wizard with the AWS block, and runs
//!   of deployments are started from their pages and watched on the run's page: on a process
//!   pool to COMPLETED, and on the ECS pool until the run is submitted to ECS (moto server,
//!   reached only through the block's endpoint URL typed into its form), with moto's task
//!   and task definition checked against the runs' job variables.
//! - **keys on** (`--require-api-key`): the UI's own login form is used with a wrong key (its
//!   error is shown, no data is answered, nothing is kept) and then with the right one; then
//!   the same pages.
//!
//! Screenshots are kept in `target/ui-screenshots/<mode>/` (the ECS runs in
//! `target/ui-screenshots/open_mode/ecs/`).
//!
//! The browser is Debian's `chromium` with `chromium-driver`, driven by selenium from the
//! project's virtualenv (`scripts/setup-test-tools.sh` installs all three); the driver script
//! is `tests/browser/ui_pages.py`.

use aws_sdk_ecs::types::{DesiredStatus, KeyValuePair, Task};
use pushpool::UiSource;
use pushpool_tests::app::TestApp;
use pushpool_tests::moto::MotoServer;
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

/// The API of a test server, with an API key when keys are required.
struct Api<'a> {
    app: &'a TestApp,
    key: Option<String>,
}

impl Api<'_> {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let Some(key) = &self.key else {
            return self.app.send(method, path, body).await;
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.app.api))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A paused pool (no run of it starts), a flow with a deployment and a run of it an hour
/// late with two log lines and a completed task run, a variable and a global concurrency
/// limit: what the pages below must show. Returns the run's id.
async fn seed(api: &Api<'_>) -> String {
    let (status, pool) = api
        .send(
            "POST",
            "/work_pools/",
            Some(json!({"name": "local", "type": "process", "is_paused": true})),
        )
        .await;
    assert_eq!(status, 201, "{pool}");
    let (_, flow) = api
        .send("POST", "/flows/", Some(json!({"name": "etl"})))
        .await;
    let (status, deployment) = api
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
    let (status, run) = api
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
    let (status, task_run) = api
        .send(
            "POST",
            "/task_runs/",
            Some(
                json!({"name": "extract-0", "task_key": "extract-1a2b", "dynamic_key": "0",
                        "flow_run_id": run["id"],
                        "state": {"type": "COMPLETED", "name": "Completed"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{task_run}");
    let now = chrono::Utc::now();
    let (status, logs) = api
        .send(
            "POST",
            "/logs/",
            Some(json!([
                {"name": "prefect.flow_runs", "level": 20, "message": "extracted 42 rows",
                 "timestamp": now, "flow_run_id": run["id"]},
                {"name": "prefect.task_runs", "level": 30, "message": "slow warehouse",
                 "timestamp": now, "flow_run_id": run["id"], "task_run_id": task_run["id"]},
            ])),
        )
        .await;
    assert_eq!(status, 201, "{logs}");
    let (status, variable) = api
        .send(
            "POST",
            "/variables/",
            Some(json!({"name": "region", "value": "eu-west-1"})),
        )
        .await;
    assert_eq!(status, 201, "{variable}");
    let (status, limit) = api
        .send(
            "POST",
            "/v2/concurrency_limits/",
            Some(json!({"name": "warehouse", "limit": 3})),
        )
        .await;
    assert_eq!(status, 201, "{limit}");
    run["id"].as_str().unwrap().to_owned()
}

/// The pages both modes open, with what each must show. The V2 event feed is opened over
/// the two hours around now: its default span ends at the current minute, rounded down, so
/// it would not show events of this minute yet.
fn pages(run: &str, pools: &str) -> Value {
    let at = |d: chrono::Duration| {
        (chrono::Utc::now() + d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let events = format!(
        "/v2/events?rangeType=range&start={}&end={}",
        at(-chrono::Duration::hours(1)),
        at(chrono::Duration::hours(1))
    );
    json!([
        {"name": "v2-dashboard", "path": "/v2/dashboard", "expect": ["Dashboard"]},
        {"name": "v2-work-pools", "path": "/v2/work-pools", "expect": [pools, "local", "Process"]},
        {"name": "v2-work-pool", "path": "/v2/work-pools/work-pool/local",
         "expect": ["local", "Work Queues"]},
        {"name": "v2-deployments", "path": "/v2/deployments", "expect": ["nightly", "etl"]},
        {"name": "v2-blocks", "path": "/v2/blocks", "expect": ["Blocks"]},
        {"name": "v2-variables", "path": "/v2/variables", "expect": ["region", "eu-west-1"]},
        {"name": "v2-concurrency", "path": "/v2/concurrency-limits",
         "expect": ["warehouse"]},
        {"name": "v2-runs", "path": "/v2/runs", "expect": ["nightly-run"]},
        {"name": "v2-flow-run", "path": format!("/v2/runs/flow-run/{run}"),
         "expect": ["nightly-run", "etl", "extracted 42 rows", "slow warehouse"]},
        {"name": "v2-flow-run-task-runs", "path": format!("/v2/runs/flow-run/{run}?tab=TaskRuns"),
         "expect": ["nightly-run", "extract-0", "Completed"]},
        {"name": "v2-events", "path": events,
         "expect": ["Event Feed", "prefect.flow-run.Scheduled", "nightly-run"]},
        {"name": "v1-work-pools", "path": "/work-pools", "expect": ["local"]},
        {"name": "v1-runs", "path": "/runs", "expect": ["nightly-run"]},
        {"name": "v1-deployments", "path": "/deployments", "expect": ["nightly"]},
        {"name": "v1-variables", "path": "/variables", "expect": ["region"]},
        {"name": "v1-events", "path": "/events", "expect": ["prefect.flow-run.Scheduled", "nightly-run"]},
    ])
}

/// Runs the browser driver over `scenario` against `base`; returns its report.
async fn browse(base: &str, mode: &str, scenario: Value) -> Value {
    let out = workspace_root().join("target/ui-screenshots").join(mode);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("scenario.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let ran = tokio::process::Command::new(venv_bin("python"))
        .arg(workspace_root().join("tests/browser/ui_pages.py"))
        .arg(base)
        .arg(&path)
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

/// The pages of `report` that did not render as they should.
fn page_problems(report: &Value, mode: &str) {
    let pages = report["pages"].as_array().unwrap();
    let problems: Vec<String> = pages
        .iter()
        .filter(|p| {
            !p["missing"].as_array().unwrap().is_empty()
                || !p["errors_shown"].as_array().unwrap().is_empty()
                || !p["failed_responses"].as_array().unwrap().is_empty()
        })
        .map(|p| serde_json::to_string_pretty(p).unwrap())
        .collect();
    assert_eq!(pages.len(), 16, "{report:#}");
    assert!(
        problems.is_empty(),
        "pages that did not render as they should (screenshots in target/ui-screenshots/{mode}):\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_of_a_push_pool_user_render_without_errors() {
    // The ECS the push pool reaches: moto server with a cluster `flows`, its tasks kept
    // RUNNING (moto moves them towards STOPPED on every DescribeTasks otherwise: bug 5 in the
    // emulator report), and its default VPC, which pushpool finds through EC2.
    let moto = MotoServer::start();
    keep_ecs_tasks_running(&moto).await;
    let cluster_arn = moto.create_cluster("flows").await;
    let network = moto.default_network().await;
    // pushpool's own AWS configuration reaches nothing: only the block's endpoint URL,
    // typed into its form below, leads to moto.
    let nowhere = unreachable_aws().await;
    let app = TestApp::spawn_with(|c| {
        c.ui = UiSource::Dir(prefect_package());
        c.aws = Some(nowhere);
    })
    .await;
    let api = Api {
        app: &app,
        key: None,
    };
    let run = seed(&api).await;
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

    let deployment = deploy_guide_flow(&app).await;

    // The push-pool guide's first step: a credentials block per provider, from its form
    // (the AWS one with the nested "AWS Client Parameters" field "Endpoint URL" set to moto).
    let blocks = json!([
        {"name": "block-aws", "slug": "aws-credentials", "type_name": "AWS Credentials",
         "fields": {"Name": "ecs-creds", "AWS Access Key ID": "AKIAGUIDEEXAMPLE",
                    "AWS Access Key Secret": "guide-aws-secret-value",
                    "Region Name": "us-east-1", "Endpoint URL": moto.endpoint},
         "expect": ["ecs-creds", "AKIAGUIDEEXAMPLE", "us-east-1"],
         "hidden": ["guide-aws-secret-value"]},
        {"name": "block-gcp", "slug": "gcp-credentials", "type_name": "GCP Credentials",
         "fields": {"Name": "cloud-run-creds", "Project": "guide-project"},
         "expect": ["cloud-run-creds", "guide-project"], "hidden": []},
        {"name": "block-azure", "slug": "azure-container-instance-credentials",
         "type_name": "Azure Container Instance Credentials",
         "fields": {"Name": "aci-creds", "Client ID": "guide-client-id",
                    "Tenant ID": "guide-tenant-id", "Client Secret": "guide-azure-secret"},
         "expect": ["aci-creds", "guide-client-id"], "hidden": ["guide-azure-secret"]},
    ]);
    // Then a push pool on ECS that uses the AWS block and the cluster `flows`, from the
    // work pool wizard.
    let pools = json!([
        {"name": "pool-ecs", "type": "ecs:push", "pool": "ecs-push",
         "strings": {"Cluster": "flows"},
         "blocks": {"AWS Credentials": "ecs-creds"}, "expect": ["ecs-push"]},
    ]);
    // Then runs of a deployment from its page: a quick run, and a custom run with job
    // variables, each watched to COMPLETED with its logs and task runs.
    let runs = json!([
        {"name": "quick-run", "deployment": deployment,
         "expect": ["stage default", "extracted 42 rows"], "task_runs": ["extract-"]},
        {"name": "custom-run", "deployment": deployment,
         "custom": {"run_name": "custom-guide-run",
                    "job_variables": "{\"env\": {\"GUIDE_STAGE\": \"custom\"}}"},
         "expect": ["custom-guide-run", "stage custom", "extracted 42 rows"],
         "task_runs": ["extract-"]},
    ]);
    let report = browse(
        &base,
        "open_mode",
        json!({"pages": pages(&run, "2 work pools"), "blocks": blocks, "pools": pools,
               "runs": runs}),
    )
    .await;
    page_problems(&report, "open_mode");

    let created = report["blocks"].as_array().unwrap();
    assert_eq!(created.len(), 3, "{report:#}");
    for block in created {
        assert_eq!(
            (
                &block["missing"],
                &block["hidden_shown"],
                &block["errors_shown"],
                &block["failed_responses"]
            ),
            (&json!([]), &json!([]), &json!([]), &json!([])),
            "{block:#}"
        );
    }
    // What the API stored from each form: the fields typed, the secrets obfuscated.
    let stored = |slug: &'static str, name: &'static str| {
        let api = &api;
        async move {
            let (status, doc) = api
                .send(
                    "GET",
                    &format!("/block_types/slug/{slug}/block_documents/name/{name}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{doc}");
            doc
        }
    };
    let aws = stored("aws-credentials", "ecs-creds").await;
    assert_eq!(
        block_page_id(&created[0]),
        aws["id"].as_str().unwrap(),
        "the form opened the new block's page"
    );
    assert_eq!(aws["data"]["aws_access_key_id"], "AKIAGUIDEEXAMPLE");
    assert_eq!(aws["data"]["aws_secret_access_key"], "********");
    assert_eq!(aws["data"]["region_name"], "us-east-1");
    assert_eq!(
        aws["data"]["aws_client_parameters"]["endpoint_url"],
        json!(moto.endpoint),
        "{aws:#}"
    );
    assert_eq!(aws["block_type"]["slug"], "aws-credentials");
    let gcp = stored("gcp-credentials", "cloud-run-creds").await;
    assert_eq!(gcp["data"]["project"], "guide-project");
    let aci = stored("azure-container-instance-credentials", "aci-creds").await;
    assert_eq!(
        (
            &aci["data"]["client_id"],
            &aci["data"]["tenant_id"],
            &aci["data"]["client_secret"]
        ),
        (
            &json!("guide-client-id"),
            &json!("guide-tenant-id"),
            &json!("********")
        )
    );
    // The secret is stored as typed.
    let (_, with_secrets) = api
        .send(
            "GET",
            &format!(
                "/block_documents/{}?include_secrets=true",
                aws["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        with_secrets["data"]["aws_secret_access_key"],
        "guide-aws-secret-value"
    );

    // The pool the wizard created: an `ecs:push` pool whose template's AWS credentials
    // default to the block.
    let created = &report["pools"][0];
    assert_eq!(
        (
            &created["url"],
            &created["missing"],
            &created["errors_shown"],
            &created["failed_responses"]
        ),
        (
            &json!("/v2/work-pools/work-pool/ecs-push?tab=Runs"),
            &json!([]),
            &json!([]),
            &json!([])
        ),
        "{created:#}"
    );
    let (status, pool) = api.send("GET", "/work_pools/ecs-push", None).await;
    assert_eq!(status, 200, "{pool}");
    assert_eq!(pool["type"], "ecs:push");
    assert_eq!(
        pool["base_job_template"]["variables"]["properties"]["aws_credentials"]["default"],
        json!({"$ref": {"block_document_id": aws["id"]}})
    );
    assert_eq!(
        pool["base_job_template"]["variables"]["properties"]["cluster"]["default"],
        "flows"
    );

    // The runs: each reached COMPLETED on its page, with its logs and task runs shown.
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{report:#}");
    for run in runs {
        assert_eq!(
            (
                &run["missing"],
                &run["task_runs_missing"],
                &run["errors_shown"],
                &run["failed_responses"]
            ),
            (&json!([]), &json!([]), &json!([]), &json!([])),
            "{run:#} (screenshots in target/ui-screenshots/open_mode)"
        );
    }
    // What the API stored from each click.
    let stored_run = |i: usize| {
        let api = &api;
        let id = runs[i]["run_id"].as_str().unwrap().to_owned();
        async move { api.send("GET", &format!("/flow_runs/{id}"), None).await.1 }
    };
    let quick = stored_run(0).await;
    assert_eq!(
        (
            &quick["deployment_id"],
            &quick["state_type"],
            &quick["job_variables"]
        ),
        (&json!(deployment), &json!("COMPLETED"), &json!({}))
    );
    let custom = stored_run(1).await;
    assert_eq!(
        (
            &custom["name"],
            &custom["state_type"],
            &custom["job_variables"]
        ),
        (
            &json!("custom-guide-run"),
            &json!("COMPLETED"),
            &json!({"env": {"GUIDE_STAGE": "custom"}})
        )
    );

    ecs_runs_from_the_deployment_page(&api, &base, &moto, &pool, &cluster_arn, &network).await;
}

/// The image of the ECS deployment.
const ECS_IMAGE: &str = "prefecthq/prefect:3-latest";

/// The ARN of a task of moto's cluster `flows`, up to the task's id.
const MOTO_TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/flows/";

/// The issue's "watch the run reach the provider": a deployment on the wizard's ECS pool
/// (through the API, as the seeded fixture's), a quick run and a custom run with job
/// variables started from its page, each watched on its page until it is Pending with
/// pushpool's submission lines (the task ARN, the infrastructure pid, is shown in them: the
/// UI shows the pid nowhere else); then moto's ECS is asked what it runs.
///
/// moto's task never starts a container, so the run stays Pending (Prefect's state until
/// the engine in the container proposes Running); pushpool's reconciler sees the task
/// RUNNING and leaves the run alone.
async fn ecs_runs_from_the_deployment_page(
    api: &Api<'_>,
    base: &str,
    moto: &MotoServer,
    pool: &Value,
    cluster_arn: &str,
    network: &pushpool_tests::moto::DefaultNetwork,
) {
    // moto's RunTask needs a container-level memory (bug 1 in the emulator report; ECS does
    // not): the pool's template gives its container the `memory` variable, as a user would
    // in the template's Advanced tab (as `prefect_ecs.rs` does through the client).
    let mut template = pool["base_job_template"].clone();
    template["job_configuration"]["task_definition"]["containerDefinitions"][0]["memory"] =
        json!("{{ memory }}");
    let (status, patched) = api
        .send(
            "PATCH",
            "/work_pools/ecs-push",
            Some(json!({"base_job_template": template})),
        )
        .await;
    assert_eq!(status, 204, "{patched}");
    let (status, flow) = api
        .send("POST", "/flows/", Some(json!({"name": "ecs-etl"})))
        .await;
    assert_eq!(status, 201, "{flow}");
    let (status, deployment) = api
        .send(
            "POST",
            "/deployments/",
            Some(
                json!({"name": "on-ecs", "flow_id": flow["id"], "work_pool_name": "ecs-push",
                        "entrypoint": "flows.py:etl",
                        "job_variables": {"image": ECS_IMAGE, "cpu": 256, "memory": 512}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    let deployment = deployment["id"].as_str().unwrap().to_owned();
    let flow_id = flow["id"].as_str().unwrap();

    // What pushpool writes in a run's log when ECS has its task, up to the task's id.
    let submitted = format!("Submitted to ECS task {MOTO_TASK_ARN}");
    let lines = json!(["Submitting flow run to work pool", "Submitted to ECS task"]);
    let runs = json!([
        {"name": "ecs-quick-run", "deployment": deployment, "state": "Pending",
         "expect": ["on-ecs", submitted], "lines": lines},
        {"name": "ecs-custom-run", "deployment": deployment, "state": "Pending",
         "custom": {"run_name": "custom-ecs-run",
                    "job_variables":
                        "{\"cpu\": 512, \"memory\": 1024, \"env\": {\"GUIDE_STAGE\": \"custom\"}}"},
         "expect": ["custom-ecs-run", submitted], "lines": lines},
    ]);
    let report = browse(base, "open_mode/ecs", json!({"runs": runs})).await;
    let shown = report["runs"].as_array().unwrap();
    assert_eq!(shown.len(), 2, "{report:#}");

    // What the API has of each run, and what its page showed.
    let mut ecs_runs = Vec::new();
    for run in shown {
        let id = run["run_id"].as_str().unwrap();
        let (status, stored) = api.send("GET", &format!("/flow_runs/{id}"), None).await;
        assert_eq!(status, 200, "{stored}");
        let pid = stored["infrastructure_pid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(pid.starts_with(MOTO_TASK_ARN), "{stored:#}");
        assert_eq!(
            (
                &stored["state_type"],
                &stored["state_name"],
                &stored["deployment_id"]
            ),
            (&json!("PENDING"), &json!("Pending"), &json!(deployment)),
            "{stored:#}"
        );
        assert_eq!(
            (
                &run["missing"],
                &run["errors_shown"],
                &run["failed_responses"],
                &run["states_shown"],
                &run["lines"]
            ),
            (
                &json!([]),
                &json!([]),
                &json!([]),
                &json!(["Pending"]),
                &json!([
                    "Submitting flow run to work pool 'ecs-push' (ecs:push)",
                    format!("Submitted to ECS task {pid}")
                ])
            ),
            "{run:#} (screenshots in target/ui-screenshots/open_mode/ecs)"
        );
        ecs_runs.push((stored, pid));
    }
    let (quick, quick_pid) = &ecs_runs[0];
    let (custom, custom_pid) = &ecs_runs[1];
    assert_eq!(quick["job_variables"], json!({}));
    assert_eq!(
        (&custom["name"], &custom["job_variables"]),
        (
            &json!("custom-ecs-run"),
            &json!({"cpu": 512, "memory": 1024, "env": {"GUIDE_STAGE": "custom"}})
        )
    );

    // moto's side: the cluster runs exactly these two tasks, started by pushpool.
    let ecs = moto.ecs().await;
    let listed = ecs
        .list_tasks()
        .cluster("flows")
        .started_by(pushpool_provider_ecs::STARTED_BY)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .expect("moto ListTasks");
    let mut listed = listed.task_arns().to_vec();
    listed.sort();
    let mut pids = vec![quick_pid.clone(), custom_pid.clone()];
    pids.sort();
    assert_eq!(listed, pids);

    // Each task's task definition is the rendered one: the deployment's cpu and memory for
    // the quick run, the custom run's job variables for the custom run (a new revision of
    // the deployment's family).
    let family = format!("prefect_ecs-push_{deployment}");
    let quick_task = describe_task(moto, quick_pid).await;
    let custom_task = describe_task(moto, custom_pid).await;
    for (task, run, revision, cpu, memory) in [
        (&quick_task, quick, 1, "256", 512),
        (&custom_task, custom, 2, "512", 1024),
    ] {
        let td_arn = task.task_definition_arn().unwrap_or_default();
        assert_eq!(
            td_arn,
            format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{revision}")
        );
        let td = ecs
            .describe_task_definition()
            .task_definition(td_arn)
            .send()
            .await
            .expect("moto DescribeTaskDefinition")
            .task_definition
            .expect("a task definition");
        let container = &td.container_definitions()[0];
        assert_eq!(
            (
                td.family(),
                td.cpu(),
                td.memory(),
                td.network_mode().map(|m| m.as_str()),
                container.name(),
                container.image(),
                container.memory()
            ),
            (
                Some(family.as_str()),
                Some(cpu),
                Some(memory.to_string().as_str()),
                Some("awsvpc"),
                Some("prefect"),
                Some(ECS_IMAGE),
                Some(memory)
            ),
            "{td:#?}"
        );
        let overrides = task.overrides().expect("the task's overrides");
        assert_eq!(
            (overrides.cpu(), overrides.memory()),
            (Some(cpu), Some(memory.to_string().as_str()))
        );
        // The flow's container: pushpool's command and environment (sorted by name), with
        // the custom run's `env`.
        let run_id = run["id"].as_str().unwrap();
        let mut env = vec![
            ("PREFECT_API_URL".to_owned(), api.app.api.clone()),
            ("PREFECT__DEPLOYMENT_ID".to_owned(), deployment.clone()),
            ("PREFECT__DEPLOYMENT_NAME".to_owned(), "on-ecs".to_owned()),
            ("PREFECT__FLOW_ID".to_owned(), flow_id.to_owned()),
            ("PREFECT__FLOW_RUN_ID".to_owned(), run_id.to_owned()),
        ];
        if revision == 2 {
            env.insert(0, ("GUIDE_STAGE".to_owned(), "custom".to_owned()));
        }
        let container = &overrides.container_overrides()[0];
        assert_eq!(
            (
                container.name(),
                container.command(),
                pairs(container.environment())
            ),
            (
                Some("prefect"),
                &["prefect", "flow-run", "execute"].map(String::from)[..],
                env
            )
        );
        assert_eq!(
            (
                task.cluster_arn(),
                task.launch_type().map(|l| l.as_str()),
                subnet(task)
            ),
            (
                Some(cluster_arn),
                Some("FARGATE"),
                Some(network.subnet_ids[0].as_str())
            ),
            "{task:#?}"
        );
        // Its tags: the labels pushpool gives every job, and no others.
        let mut tags = task_tags(moto, task.task_arn().unwrap_or_default()).await;
        tags.sort();
        let mut labels = vec![
            ("prefect.io/deployment-id".to_owned(), deployment.clone()),
            ("prefect.io/flow-run-id".to_owned(), run_id.to_owned()),
            (
                "prefect.io/flow-run-name".to_owned(),
                run["name"].as_str().unwrap().to_owned(),
            ),
            (
                "prefect.io/work-pool-name".to_owned(),
                "ecs-push".to_owned(),
            ),
        ];
        labels.sort();
        assert_eq!(tags, labels);
    }
}

/// Freezes moto's ECS tasks in RUNNING (its state manager's `ecs::task` transition).
async fn keep_ecs_tasks_running(moto: &MotoServer) {
    reqwest::Client::new()
        .post(format!(
            "{}/moto-api/state-manager/set-transition",
            moto.endpoint
        ))
        .json(&json!({"model_name": "ecs::task",
            "transition": {"progression": "manual", "times": 1000}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// pushpool's own AWS configuration in this test: a region, keys and an endpoint (a free
/// loopback port nothing listens on) that are not the block's, so a run reaches moto only
/// through the block.
async fn unreachable_aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-north-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIANOTTHEBLOCKS",
            "not-the-blocks-secret",
            None,
            None,
            "ui-browser",
        ))
        .endpoint_url(format!(
            "http://127.0.0.1:{}",
            pushpool_tests::tools::free_port()
        ))
        .load()
        .await
}

/// moto's ECS task `arn` of the cluster `flows`.
async fn describe_task(moto: &MotoServer, arn: &str) -> Task {
    let out = moto
        .ecs()
        .await
        .describe_tasks()
        .cluster("flows")
        .tasks(arn)
        .send()
        .await
        .expect("moto DescribeTasks");
    out.tasks().first().cloned().expect("moto has the task")
}

/// The tags of moto's ECS task `arn` as `(key, value)`, by `ListTagsForResource`: moto
/// 5.2.5 answers `DescribeTasks` with `include=TAGS` through a class-wide switch that a
/// concurrent `DescribeTasks` without it (pushpool's reconciler polling the task) turns off,
/// so the tags there come and go.
async fn task_tags(moto: &MotoServer, arn: &str) -> Vec<(String, String)> {
    let out = moto
        .ecs()
        .await
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("moto ListTagsForResource");
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Name/value pairs of an ECS environment.
fn pairs(kv: &[KeyValuePair]) -> Vec<(String, String)> {
    kv.iter()
        .map(|p| {
            (
                p.name().unwrap_or_default().to_owned(),
                p.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The subnet of the task's network interface.
fn subnet(task: &Task) -> Option<&str> {
    task.attachments()
        .first()?
        .details()
        .iter()
        .find(|d| d.name() == Some("subnetId"))
        .and_then(|d| d.value())
}

/// A flow with a task that logs, deployed with Prefect's own `flow.from_source(...).deploy()`
/// to the process pool `guide-process` (its jobs run the virtualenv's `prefect flow-run
/// execute`, as in [`pushpool_tests::python::deploy_and_run_on_process_pool`]); returns the
/// deployment's id. The flow logs the `GUIDE_STAGE` environment variable, which the custom
/// run sets through its job variables.
async fn deploy_guide_flow(app: &TestApp) -> String {
    let dir = app.data_dir.path().join("guide-flow");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("guide_flow.py"),
        r#"import os
from prefect import flow, task, get_run_logger

@task
def extract() -> int:
    get_run_logger().info("extracted 42 rows")
    return 42

@flow(name="guide-etl")
def etl() -> int:
    get_run_logger().info("stage %s", os.environ.get("GUIDE_STAGE", "default"))
    return extract()
"#,
    )
    .unwrap();
    pushpool_tests::python::prefect(
        &app.api,
        &dir,
        &["work-pool", "create", "guide-process", "--type", "process"],
    )
    .await
    .ok();
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    pushpool_tests::python::python(
        &app.api,
        &dir,
        &format!(
            r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="guide_flow.py:etl").deploy(
    name="guide", work_pool_name="guide-process", job_variables={{"command": {command:?}}},
)
"#,
            src = dir.to_string_lossy()
        ),
    )
    .await
    .ok();
    let (status, deployment) = app
        .send("GET", "/deployments/name/guide-etl/guide", None)
        .await;
    assert_eq!(status, 200, "{deployment}");
    deployment["id"].as_str().unwrap().to_owned()
}

/// The block document id of a block step's final URL (`/v2/blocks/block/<id>`).
fn block_page_id(step: &Value) -> &str {
    step["url"]
        .as_str()
        .unwrap()
        .rsplit("/blocks/block/")
        .next()
        .unwrap()
        .split(['?', '/'])
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_required_the_ui_logs_in_with_a_key_and_shows_the_same_pages() {
    const JOB_KEY: &str = "pp_ui-browser-jobs-key-0123456789";
    let key = pushpool_api::auth::generate_key();
    let app = TestApp::spawn_with(|c| {
        c.ui = UiSource::Dir(prefect_package());
        c.auth = pushpool_api::auth::AuthMode::Required;
        c.job_api_key = Some(JOB_KEY.into());
    })
    .await;
    app.service
        .store()
        .create_api_key(&pushpool_core::model::ApiKey {
            id: uuid::Uuid::new_v4(),
            name: "ui".into(),
            hash: pushpool_api::auth::hash_key(&key),
            created: chrono::Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let api = Api {
        app: &app,
        key: Some(key.clone()),
    };
    let run = seed(&api).await;
    let base = app.api.trim_end_matches("/api").to_owned();
    let settings: Value = reqwest::get(format!("{base}/ui-settings"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["auth"], "BASIC");

    let report = browse(
        &base,
        "keys_on",
        json!({
            "login": {"wrong": "pp_not-a-key-of-this-server-000000", "key": key,
                      "hidden": ["nightly-run", "etl", "region", "warehouse"]},
            "pages": pages(&run, "1 work pool"),
        }),
    )
    .await;
    let login = &report["login"];
    assert!(
        login["login_url"]
            .as_str()
            .unwrap()
            .starts_with("/v2/login"),
        "{login:#}"
    );
    // A wrong key: the form's error, the key not kept, no data shown or answered.
    let wrong = &login["wrong_key"];
    assert_eq!(
        (
            &wrong["shows_invalid_credentials"],
            &wrong["stored_credentials"],
            &wrong["hidden_shown"]
        ),
        (&json!(true), &Value::Null, &json!([])),
        "{wrong:#}"
    );
    let answered: Vec<&Value> = wrong["api_responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] != "/health" && r["status"] != 401)
        .collect();
    assert!(
        answered.is_empty(),
        "answered without a valid key: {answered:?}"
    );
    assert!(
        wrong["api_responses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "/admin/version" && r["status"] == 401),
        "{wrong:#}"
    );
    // The right key: the UI goes on to the dashboard and keeps the credentials.
    assert!(
        login["after_login_url"]
            .as_str()
            .unwrap()
            .starts_with("/v2/dashboard"),
        "{login:#}"
    );
    assert_eq!(login["stored_credentials_set"], true);
    page_problems(&report, "keys_on");
}
