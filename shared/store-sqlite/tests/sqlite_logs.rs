//! SQLite log retention: `delete_logs_created_before` deletes the lines stored before the
//! cutoff and keeps the rest (the embedded server's retention task calls it).

use chrono::{DateTime, Duration, Utc};
use pushpool_core::logs::Log;
use pushpool_store::{LogQuery, Store};
use pushpool_store_sqlite::SqliteStore;
use uuid::Uuid;

fn line(created: DateTime<Utc>, message: &str) -> Log {
    Log {
        id: Uuid::now_v7(),
        created,
        updated: created,
        name: "prefect.flow_runs".into(),
        level: 20,
        message: message.into(),
        timestamp: created,
        flow_run_id: Some(Uuid::nil()),
        task_run_id: None,
    }
}

#[tokio::test]
async fn old_lines_are_deleted_by_created_time() {
    let store = SqliteStore::in_memory().unwrap();
    let now = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let lines = [
        line(now - Duration::days(31), "old"),
        line(now - Duration::days(30) - Duration::seconds(1), "just past"),
        line(now - Duration::days(30), "at the cutoff"),
        line(now, "new"),
    ];
    store
        .create_logs(&lines, std::time::Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    let deleted = store
        .delete_logs_created_before(now - Duration::days(30))
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let left: Vec<String> = store
        .read_logs(&LogQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(left, vec!["at the cutoff", "new"]);
    assert_eq!(
        store
            .delete_logs_created_before(now - Duration::days(30))
            .await
            .unwrap(),
        0
    );
}
