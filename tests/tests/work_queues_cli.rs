//! Work queues with the real Prefect 3.9.1 CLI against pushpool: `prefect work-queue
//! create|ls|inspect|pause|resume|set-concurrency-limit|clear-concurrency-limit|delete -p
//! <pool>`, `prefect work-queue preview|slots`, `prefect work-pool preview|slots`, asserting
//! what they print.

use pushpool_tests::app::TestApp;
use pushpool_tests::python::prefect;
use serde_json::json;

/// The rows of a `work-queue ls` table: `(name, priority, concurrency limit)`.
fn rows(table: &str) -> Vec<(String, String, String)> {
    table
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('│')
                .split('│')
                .map(|c| c.trim().to_owned())
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_a_pools_work_queues() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();
    prefect(api, d, &["work-pool", "create", "p", "--type", "process"])
        .await
        .ok();

    let created = prefect(
        api,
        d,
        &[
            "work-queue",
            "create",
            "high",
            "-p",
            "p",
            "--priority",
            "1",
            "-l",
            "3",
        ],
    )
    .await
    .ok();
    let (_, queue) = app.send("GET", "/work_pools/p/queues/high", None).await;
    let id = queue["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.stdout.trim(),
        format!(
            "Created work queue with properties:\n    name - 'high'\n    work pool - 'p'\n    id - {id}\n    \
             concurrency limit - 3\nStart a worker to pick up flow runs from the work queue:\n    \
             prefect worker start -q 'high' -p 'p'\n\nInspect the work queue:\n    \
             prefect work-queue inspect 'high'"
        )
    );
    let again = prefect(api, d, &["work-queue", "create", "high", "-p", "p"]).await;
    assert_eq!(
        (again.code, again.stdout.trim()),
        (1, "Work queue with name: 'high' already exists.")
    );
    let missing = prefect(api, d, &["work-queue", "create", "x", "-p", "nope"]).await;
    assert_eq!(
        (missing.code, missing.stdout.trim()),
        (1, "Work pool with name: 'nope' not found.")
    );

    let listed = prefect(api, d, &["work-queue", "ls", "-p", "p"]).await.ok();
    assert!(
        listed.stdout.starts_with("Work Queues in Work Pool 'p'"),
        "{}",
        listed.stdout
    );
    assert_eq!(
        rows(&listed.stdout),
        [
            ("high".into(), "1".into(), "3".into()),
            ("default".into(), "2".into(), "None".into())
        ]
    );

    // Every pool's queues (`/work_queues/filter`): name, pool, id.
    let everywhere = prefect(api, d, &["work-queue", "ls"]).await.ok();
    assert_eq!(
        rows(&everywhere.stdout)[0],
        ("high".into(), "p".into(), id.clone()),
        "{}",
        everywhere.stdout
    );
    let inspected = prefect(api, d, &["work-queue", "inspect", "high", "-p", "p"])
        .await
        .ok();
    for expected in [
        format!("id='{id}'"),
        "name='high'".into(),
        "concurrency_limit=3".into(),
        "work_pool_name='p'".into(),
        "status=WorkQueueStatus.READY".into(),
        "WorkQueueStatusDetail(healthy=False".into(),
    ] {
        assert!(
            inspected.stdout.contains(&expected),
            "{expected}: {}",
            inspected.stdout
        );
    }

    let paused = prefect(api, d, &["work-queue", "pause", "high", "-p", "p"])
        .await
        .ok();
    assert_eq!(
        paused.stdout.trim(),
        "Work queue 'high' in work pool 'p' paused"
    );
    let (_, queue) = app.send("GET", &format!("/work_queues/{id}"), None).await;
    assert_eq!(
        (queue["is_paused"].clone(), queue["status"].clone()),
        (json!(true), json!("PAUSED"))
    );
    let listed = prefect(api, d, &["work-queue", "ls", "-p", "p"]).await.ok();
    assert_eq!(rows(&listed.stdout)[0].0, "high (**)", "{}", listed.stdout);
    let resumed = prefect(api, d, &["work-queue", "resume", "high", "-p", "p"])
        .await
        .ok();
    assert_eq!(
        resumed.stdout.trim(),
        "Work queue 'high' in work pool 'p' resumed"
    );
    let (_, queue) = app.send("GET", &format!("/work_queues/{id}"), None).await;
    assert_eq!(
        (queue["is_paused"].clone(), queue["status"].clone()),
        (json!(false), json!("READY"))
    );

    let limited = prefect(
        api,
        d,
        &[
            "work-queue",
            "set-concurrency-limit",
            "high",
            "5",
            "-p",
            "p",
        ],
    )
    .await
    .ok();
    assert_eq!(
        limited.stdout.trim(),
        "Concurrency limit of 5 set on work queue 'high' in work pool 'p'"
    );
    let (_, queue) = app.send("GET", &format!("/work_queues/{id}"), None).await;
    assert_eq!(queue["concurrency_limit"], 5);
    let cleared = prefect(
        api,
        d,
        &["work-queue", "clear-concurrency-limit", "high", "-p", "p"],
    )
    .await
    .ok();
    assert_eq!(
        cleared.stdout.trim(),
        "Concurrency limits removed on work queue 'high' in work pool 'p'"
    );
    let (_, queue) = app.send("GET", &format!("/work_queues/{id}"), None).await;
    assert_eq!(queue["concurrency_limit"], json!(null));

    let deleted = prefect(api, d, &["work-queue", "delete", "high", "-p", "p"])
        .await
        .ok();
    assert_eq!(
        deleted.stdout.trim(),
        "Successfully deleted work queue 'high' in work pool 'p'"
    );
    let gone = prefect(api, d, &["work-queue", "inspect", "high", "-p", "p"]).await;
    assert_eq!(
        (gone.code, gone.stdout.trim()),
        (1, "No work queue named 'high' found in work pool 'p'.")
    );
    // The default queue stays (Prefect's server fails this delete too).
    let kept = prefect(api, d, &["work-queue", "delete", "default", "-p", "p"]).await;
    assert_eq!(kept.code, 1, "{kept:?}");
    assert!(
        kept.stderr.contains("409 Conflict")
            && kept.stderr.contains("Can't delete a pool's default queue."),
        "{kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_slots_show_a_pools_runs() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();
    prefect(api, d, &["work-pool", "create", "p", "--type", "process"])
        .await
        .ok();
    let empty = prefect(api, d, &["work-pool", "preview", "p", "--hours", "1"])
        .await
        .ok();
    assert_eq!(
        empty.stdout.trim(),
        "No runs found - try increasing how far into the future you preview with the --hours flag"
    );
    let (_, flow) = app
        .send("POST", "/flows/", Some(json!({"name": "my-flow"})))
        .await;
    let (status, deployment) = app
        .send(
            "POST",
            "/deployments/",
            Some(json!({"name": "d", "flow_id": flow["id"], "work_pool_name": "p", "work_queue_name": "later"})),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    let at = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let (status, run) = app
        .send(
            "POST",
            &format!("/deployments/{}/create_flow_run", deployment["id"].as_str().unwrap()),
            Some(json!({"name": "soon-run", "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": at}}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let preview = prefect(api, d, &["work-pool", "preview", "p", "--hours", "1"])
        .await
        .ok();
    let line = preview
        .stdout
        .lines()
        .find(|l| l.contains("soon-run"))
        .unwrap_or_else(|| panic!("{}", preview.stdout));
    assert!(
        line.contains(run["id"].as_str().unwrap()),
        "{}",
        preview.stdout
    );
    assert!(
        line.contains(deployment["id"].as_str().unwrap()),
        "{}",
        preview.stdout
    );

    let queue_preview = prefect(
        api,
        d,
        &["work-queue", "preview", "later", "-p", "p", "--hours", "1"],
    )
    .await
    .ok();
    assert!(
        queue_preview
            .stdout
            .starts_with("Preview of Work Queue 'later' in Work Pool 'p'"),
        "{}",
        queue_preview.stdout
    );
    assert!(
        queue_preview
            .stdout
            .lines()
            .any(|l| l.contains(run["id"].as_str().unwrap()) && l.contains("soon-run")),
        "{}",
        queue_preview.stdout
    );
    let other = prefect(
        api,
        d,
        &[
            "work-queue",
            "preview",
            "default",
            "-p",
            "p",
            "--hours",
            "1",
        ],
    )
    .await
    .ok();
    assert!(!other.stdout.contains("soon-run"), "{}", other.stdout);
    let queue_slots = prefect(api, d, &["work-queue", "slots", "later", "-p", "p"])
        .await
        .ok();
    assert_eq!(
        queue_slots.stdout.trim(),
        "Work Queue: later\n  Slots: 0 active (Unlimited)\n\nNo flow runs occupying slots."
    );
    let slots = prefect(api, d, &["work-pool", "slots", "p"]).await.ok();
    assert_eq!(
        slots.stdout.trim(),
        "Work Pool: p\n  Slots: 0 active (Unlimited)\n\nNo flow runs occupying slots."
    );
    let missing = prefect(api, d, &["work-pool", "slots", "nope"]).await;
    assert_eq!(
        (missing.code, missing.stdout.trim()),
        (1, "Work pool 'nope' not found!")
    );
}

/// The SDK's pool-less calls: `create_work_queue(name=...)` makes the queue in Prefect's
/// `default-agent-pool`, and `read_work_queue_by_name` reads it back (and the pool's
/// `default` queue); an unknown name raises `ObjectNotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_creates_and_reads_pool_less_queues() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
with get_client(sync_client=True) as c:
    q = c.create_work_queue(name="sdk-queue", description="from the SDK", priority=5)
    print("created", q.name, q.work_pool_name, q.priority, q.description)
    r = c.read_work_queue_by_name("sdk-queue")
    print("read", r.id == q.id, r.work_pool_name, r.status)
    d = c.read_work_queue_by_name("default")
    print("default", d.work_pool_name, d.priority)
    try:
        c.read_work_queue_by_name("missing")
    except ObjectNotFound:
        print("missing: ObjectNotFound")
"#;
    let ran = pushpool_tests::python::python(&app.api, dir.path(), script)
        .await
        .ok();
    assert_eq!(
        ran.stdout.lines().collect::<Vec<_>>(),
        [
            "created sdk-queue default-agent-pool 5 from the SDK",
            "read True default-agent-pool WorkQueueStatus.NOT_READY",
            "default default-agent-pool 1",
            "missing: ObjectNotFound",
        ]
    );
    let (status, pool) = app
        .send("GET", "/work_pools/default-agent-pool", None)
        .await;
    assert_eq!((status, &pool["type"]), (200, &json!("prefect-agent")));
}
