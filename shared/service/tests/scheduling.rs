//! The scheduler, schedule changes, late runs and deployment deletion on SQLite (the same
//! checks run on DynamoDB in `pushpool-store-dynamodb`'s `scheduler.rs`).

#[path = "common/scheduling_suite.rs"]
mod suite;

use std::sync::Arc;

use pushpool_store_sqlite::SqliteStore;

fn store() -> suite::DynStore {
    Arc::new(SqliteStore::in_memory().unwrap())
}

macro_rules! on_sqlite {
    ($($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                suite::$name(store()).await;
            }
        )*
    };
}

on_sqlite!(
    tick_materialises_the_horizon_once,
    concurrent_ticks_make_one_run_per_slot,
    paused_and_inactive_make_nothing,
    schedule_change_replaces_only_future_auto_runs,
    late_runs_are_marked,
    deleting_a_deployment_deletes_its_scheduled_runs,
    cron_schedule_in_a_time_zone
);
