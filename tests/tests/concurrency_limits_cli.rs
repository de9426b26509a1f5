//! Global concurrency limits and tag-based limits with the real Prefect 3.9.1 CLI against
//! pushpool: `prefect global-concurrency-limit create|ls|inspect|update|enable|disable|delete`
//! and `prefect concurrency-limit create|ls|inspect|reset|delete`, asserting what they print.

use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};
use serde_json::Value;

fn row<'a>(stdout: &'a str, needle: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_concurrency_limit_cli() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();

    let created = prefect(
        api,
        d,
        &["global-concurrency-limit", "create", "db", "--limit", "3"],
    )
    .await
    .ok();
    let out = created
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        out.starts_with("Created global concurrency limit with name 'db' and ID '"),
        "{out}"
    );
    assert!(
        out.ends_with("Run `prefect gcl inspect db` to view details."),
        "{out}"
    );
    let again = prefect(
        api,
        d,
        &["global-concurrency-limit", "create", "db", "--limit", "3"],
    )
    .await;
    assert_eq!(again.code, 1, "{again:?}");
    let again_out = again
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        again_out.contains(
            "Global concurrency limit 'db' already exists. Please try creating with a different name."
        ),
        "{again_out}"
    );
    prefect(
        api,
        d,
        &[
            "gcl",
            "create",
            "api-rate",
            "--limit",
            "5",
            "--slot-decay-per-second",
            "0.5",
            "--disable",
        ],
    )
    .await
    .ok();

    let inspected = prefect(
        api,
        d,
        &[
            "global-concurrency-limit",
            "inspect",
            "db",
            "--output",
            "json",
        ],
    )
    .await
    .ok();
    let v: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(
        (
            &v["name"],
            &v["limit"],
            &v["active"],
            &v["active_slots"],
            &v["slot_decay_per_second"]
        ),
        (
            &Value::from("db"),
            &Value::from(3),
            &Value::from(true),
            &Value::from(0),
            &Value::from(0.0)
        )
    );
    let pretty = prefect(api, d, &["global-concurrency-limit", "inspect", "api-rate"])
        .await
        .ok();
    assert!(
        pretty.stdout.contains("name='api-rate'"),
        "{}",
        pretty.stdout
    );
    assert!(pretty.stdout.contains("active=False"), "{}", pretty.stdout);
    assert!(
        pretty.stdout.contains("slot_decay_per_second=0.5"),
        "{}",
        pretty.stdout
    );

    let listed = prefect(api, d, &["global-concurrency-limit", "ls"])
        .await
        .ok();
    let db = row(&listed.stdout, " db ");
    let cells: Vec<&str> = db
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(&cells[1..5], ["db", "True", "3", "0"], "{db}");
    let rate = row(&listed.stdout, "api-rate");
    let cells: Vec<&str> = rate
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        &cells[1..6],
        ["api-rate", "False", "5", "0", "0.5"],
        "{rate}"
    );

    let updated = prefect(
        api,
        d,
        &["global-concurrency-limit", "update", "db", "--limit", "7"],
    )
    .await
    .ok();
    assert_eq!(
        updated.stdout.trim(),
        "Updated global concurrency limit with name 'db'."
    );
    let disabled = prefect(api, d, &["global-concurrency-limit", "disable", "db"])
        .await
        .ok();
    assert_eq!(
        disabled.stdout.trim(),
        "Disabled global concurrency limit with name 'db'."
    );
    let inspected = prefect(
        api,
        d,
        &["global-concurrency-limit", "inspect", "db", "-o", "json"],
    )
    .await
    .ok();
    let v: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(
        (&v["limit"], &v["active"]),
        (&Value::from(7), &Value::from(false))
    );
    let enabled = prefect(api, d, &["global-concurrency-limit", "enable", "db"])
        .await
        .ok();
    assert_eq!(
        enabled.stdout.trim(),
        "Enabled global concurrency limit with name 'db'."
    );

    // Slots taken by the SDK show in `ls`.
    python(
        api,
        d,
        r#"
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    c.increment_concurrency_slots(names=["db"], slots=2, mode="concurrency")
"#,
    )
    .await
    .ok();
    let listed = prefect(api, d, &["gcl", "ls"]).await.ok();
    let db = row(&listed.stdout, " db ");
    let cells: Vec<&str> = db
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(&cells[1..5], ["db", "True", "7", "2"], "{db}");

    let deleted = prefect(api, d, &["global-concurrency-limit", "delete", "db"])
        .await
        .ok();
    assert_eq!(
        deleted.stdout.trim(),
        "Deleted global concurrency limit with name 'db'."
    );
    let missing = prefect(api, d, &["global-concurrency-limit", "inspect", "db"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stdout
            .contains("Global concurrency limit 'db' not found."),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_concurrency_limit_cli() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();

    let created = prefect(api, d, &["concurrency-limit", "create", "etl", "2"])
        .await
        .ok();
    let lines: Vec<&str> = created
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        [
            "Created concurrency limit with properties:",
            "tag - 'etl'",
            "concurrency_limit - 2",
            "Delete the concurrency limit:",
            "prefect concurrency-limit delete 'etl'",
            "Inspect the concurrency limit:",
            "prefect concurrency-limit inspect 'etl'",
        ]
    );

    // A task run holds a slot (the V1 increment the SDK still exposes).
    let task_run = uuid::Uuid::new_v4();
    python(
        api,
        d,
        &format!(
            r#"
from uuid import UUID
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    c.increment_v1_concurrency_slots(names=["etl"], task_run_id=UUID("{task_run}"))
"#
        ),
    )
    .await
    .ok();

    let listed = prefect(api, d, &["concurrency-limit", "ls"]).await.ok();
    let etl = row(&listed.stdout, "etl");
    let cells: Vec<&str> = etl
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!((cells[0], cells[2], cells[3]), ("etl", "2", "1"), "{etl}");

    let inspected = prefect(
        api,
        d,
        &["concurrency-limit", "inspect", "etl", "--output", "json"],
    )
    .await
    .ok();
    let v: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(
        (&v["tag"], &v["concurrency_limit"], &v["active_slots"]),
        (
            &Value::from("etl"),
            &Value::from(2),
            &serde_json::json!([task_run.to_string()])
        )
    );
    let panel = prefect(api, d, &["concurrency-limit", "inspect", "etl"])
        .await
        .ok();
    assert!(
        panel.stdout.contains(&task_run.to_string()),
        "{}",
        panel.stdout
    );
    assert!(
        panel.stdout.contains("Active Task Run IDs"),
        "{}",
        panel.stdout
    );

    let reset = prefect(api, d, &["concurrency-limit", "reset", "etl"])
        .await
        .ok();
    assert_eq!(
        reset.stdout.trim(),
        "Reset concurrency limit set on the tag: etl"
    );
    let inspected = prefect(
        api,
        d,
        &["concurrency-limit", "inspect", "etl", "-o", "json"],
    )
    .await
    .ok();
    let v: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(v["active_slots"], serde_json::json!([]));

    let deleted = prefect(api, d, &["concurrency-limit", "delete", "etl"])
        .await
        .ok();
    assert_eq!(
        deleted.stdout.trim(),
        "Deleted concurrency limit set on the tag: etl"
    );
    let missing = prefect(api, d, &["concurrency-limit", "inspect", "etl"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stdout
            .contains("No concurrency limit found for the tag: etl"),
        "{missing:?}"
    );
    let missing = prefect(api, d, &["concurrency-limit", "reset", "etl"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    let empty = prefect(api, d, &["concurrency-limit", "ls"]).await.ok();
    assert_eq!(empty.stdout.trim(), "No concurrency limits found.");
}
