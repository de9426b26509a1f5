//! Artifacts with the real Prefect 3.9.1 SDK and CLI against pushpool: a flow publishes a
//! markdown and a table artifact under keys (run in-process by the SDK, reporting to
//! pushpool), then `prefect artifact ls|inspect|delete` read and remove them.

use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_artifacts_are_listed_inspected_and_deleted() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();

    let ran = python(
        api,
        d,
        r##"
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact, Artifact

@flow
def report():
    create_markdown_artifact(key="daily-report", markdown="# Day 1")
    create_markdown_artifact(key="daily-report", markdown="# Day 2")
    create_table_artifact(key="numbers", table=[{"n": 1}, {"n": 2}])

report()
latest = Artifact.get("daily-report")
print(latest.data)
print(latest.type)
"##,
    )
    .await
    .ok();
    assert_eq!(
        ran.stdout.lines().collect::<Vec<_>>(),
        ["# Day 2", "markdown"]
    );

    let listed = prefect(api, d, &["artifact", "ls"]).await.ok();
    let rows: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.contains("daily-report") || l.contains("numbers"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", listed.stdout);

    let inspected = prefect(api, d, &["artifact", "inspect", "daily-report"])
        .await
        .ok();
    assert!(inspected.stdout.contains("# Day 2"), "{}", inspected.stdout);
    assert!(inspected.stdout.contains("# Day 1"), "{}", inspected.stdout);

    let deleted = prefect(api, d, &["artifact", "delete", "daily-report"])
        .await
        .ok();
    assert!(
        deleted
            .stdout
            .contains("Deleted 2 artifact(s) with key 'daily-report'."),
        "{}",
        deleted.stdout
    );
    let (status, _) = app
        .send("GET", "/artifacts/daily-report/latest", None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = app.send("GET", "/artifacts/numbers/latest", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "table");
}
