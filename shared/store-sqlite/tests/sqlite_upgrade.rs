//! A database written by the first release (schema before versioning, `user_version` 0)
//! opens with this build, is migrated to the latest schema version, and answers the new
//! filters and sorts over its old runs.
//!
//! `fixtures/pushpool-0.1.0.sqlite` was written by the store of commit 189af4a (the release
//! before schema versions): a work pool `legacy-pool`, a flow `legacy-flow`, a deployment
//! `legacy-deployment`, and two runs of it: `old-scheduled` (SCHEDULED, expected at
//! 2026-11-01T12:00:00Z) and `old-completed` (expected at 12:01, RUNNING then COMPLETED 42 s
//! later, tagged `nightly`).

use pushpool_core::filter::{FlowRunFilter, FlowRunSort};
use pushpool_core::state::StateType;
use pushpool_store::{FlowRunQuery, Page, Store};
use pushpool_store_sqlite::{SCHEMA_VERSION, SqliteStore};

fn copy_of_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushpool.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pushpool-0.1.0.sqlite"
        ),
        &path,
    )
    .unwrap();
    (dir, path)
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn filter(body: serde_json::Value) -> FlowRunQuery {
    FlowRunQuery::new(serde_json::from_value::<FlowRunFilter>(body).unwrap())
}

#[tokio::test]
async fn the_first_release_database_is_migrated_and_filtered() {
    let (_dir, path) = copy_of_fixture();
    assert_eq!(user_version(&path), 0);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 6);
    // Version 4: the counters of `Store::commit`.
    assert_eq!(store.read_counter("slots").await.unwrap(), 0);
    // Version 5: log lines.
    assert_eq!(
        store
            .read_logs(&pushpool_store::LogQuery::default())
            .await
            .unwrap(),
        Vec::new()
    );
    // Version 6: events.
    assert_eq!(
        store
            .read_events(&pushpool_core::events::EventFilter::default())
            .await
            .unwrap(),
        Vec::new()
    );

    let pool = store.read_work_pool("legacy-pool").await.unwrap();
    assert_eq!(pool.r#type, "ecs:push");
    let flow = store.read_flow_by_name("legacy-flow").await.unwrap();
    let deployment = store
        .read_deployment_by_name("legacy-flow", "legacy-deployment")
        .await
        .unwrap();
    assert_eq!(deployment.flow_id, flow.id);

    let names = |runs: Vec<pushpool_core::model::FlowRun>| {
        runs.into_iter().map(|r| r.name).collect::<Vec<_>>()
    };
    let by_expected = FlowRunQuery {
        sort: FlowRunSort::ExpectedStartTimeAsc,
        ..FlowRunQuery::default()
    };
    assert_eq!(
        names(store.list_flow_runs(&by_expected).await.unwrap()),
        ["old-scheduled", "old-completed"]
    );
    let newest_end = FlowRunQuery {
        sort: FlowRunSort::EndTimeDesc,
        ..FlowRunQuery::default()
    };
    assert_eq!(
        names(store.list_flow_runs(&newest_end).await.unwrap()),
        ["old-completed", "old-scheduled"]
    );
    assert_eq!(
        names(
            store
                .list_flow_runs(&filter(serde_json::json!({
                    "end_time": {"after_": "2026-11-01T12:01:42Z", "before_": "2026-11-01T12:01:42Z"}
                })))
                .await
                .unwrap()
        ),
        ["old-completed"]
    );
    assert_eq!(
        names(
            store
                .list_flow_runs(&filter(serde_json::json!({"name": {"like_": "SCHED"}})))
                .await
                .unwrap()
        ),
        ["old-scheduled"]
    );
    let nightly = filter(serde_json::json!({"tags": {"all_": ["nightly"]}}));
    assert_eq!(store.count_flow_runs(&nightly).await.unwrap(), 1);

    // The old runs are still writable, and the new columns follow the writes.
    let mut run = store
        .list_flow_runs(&FlowRunQuery {
            page: Page {
                offset: 0,
                limit: Some(1),
            },
            ..filter(serde_json::json!({"state": {"type": {"any_": ["SCHEDULED"]}}}))
        })
        .await
        .unwrap()
        .remove(0);
    run.name = "renamed".into();
    store.update_flow_run(&run).await.unwrap();
    assert_eq!(
        names(
            store
                .list_flow_runs(&filter(serde_json::json!({"name": {"any_": ["renamed"]}})))
                .await
                .unwrap()
        ),
        ["renamed"]
    );
    assert_eq!(
        store
            .count_flow_runs(&FlowRunQuery::new(FlowRunFilter::state_types(&[
                StateType::Completed
            ])))
            .await
            .unwrap(),
        1
    );
    drop(store);

    // Opening again runs no step twice.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    assert_eq!(
        store
            .count_flow_runs(&FlowRunQuery::default())
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_database_from_a_newer_pushpool_is_refused() {
    let (_dir, path) = copy_of_fixture();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    // What `pushpool serve` prints: the error and its cause.
    let err = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(
        err.contains("written by a newer pushpool (schema version 7; this one knows up to 6): upgrade pushpool"),
        "{err}"
    );
}

#[tokio::test]
async fn a_read_only_file_of_an_older_schema_is_refused_saying_how_to_migrate_it() {
    use pushpool_store_sqlite::SqliteOptions;
    let (_dir, path) = copy_of_fixture();
    let read_only = SqliteOptions {
        read_only: true,
        ..SqliteOptions::default()
    };
    let err = SqliteStore::open_with(&path, read_only).unwrap_err();
    let err = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(
        err,
        "the database is at schema version 0 and this pushpool reads version 6; a read-only file cannot be migrated: open it read-write once"
    );
    // Once migrated, it opens read-only and answers.
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open_with(&path, read_only).unwrap();
    assert_eq!(
        store
            .count_flow_runs(&FlowRunQuery::default())
            .await
            .unwrap(),
        2
    );
}
