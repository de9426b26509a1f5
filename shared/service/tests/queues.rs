//! Work queues in submission (paused queues, priorities) on SQLite (the same checks run on
//! DynamoDB in `pushpool-store-dynamodb`'s `queues.rs`).

#[path = "common/queue_suite.rs"]
mod suite;

use std::sync::Arc;

use pushpool_store_sqlite::SqliteStore;

macro_rules! on_sqlite {
    ($($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                suite::$name(Arc::new(SqliteStore::in_memory().unwrap())).await;
            }
        )*
    };
}

on_sqlite!(
    a_paused_queue_holds_its_runs_until_resumed,
    due_runs_are_submitted_by_queue_priority
);
