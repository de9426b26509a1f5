//! The task run recorder on SQLite (the same checks run on DynamoDB in
//! `pushpool-store-dynamodb`'s `task_run_recorder.rs`).

#[path = "common/task_run_recorder_suite.rs"]
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
    ordered_and_disordered_events_give_the_same_task_run,
    the_natural_key_wins_and_other_events_are_ignored
);
