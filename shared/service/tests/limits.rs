//! Work pool, work queue and deployment concurrency limits in submission on SQLite (the
//! same checks run on DynamoDB in `pushpool-store-dynamodb`'s `limits.rs`).

#[path = "common/limits_suite.rs"]
mod suite;

use std::sync::Arc;

use pushpool_store_sqlite::SqliteStore;

macro_rules! on_sqlite {
    ($($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                suite::$name(Arc::new(SqliteStore::in_memory().unwrap())).await;
            }
        )*
    };
}

on_sqlite!(
    a_pool_limit_of_one_runs_due_runs_one_after_another,
    a_queue_limit_holds_its_own_runs,
    a_deployment_limit_enqueues_and_a_cancelled_run_frees_its_slot,
    a_deployment_limit_with_cancel_new_cancels_the_new_run,
    a_crashed_run_frees_its_slot,
    an_expired_deployment_lease_frees_the_slot,
    a_running_jobs_lease_is_renewed_by_the_reconciler,
    concurrent_redelivered_and_killed_submitters_never_exceed_the_limit,
    a_limit_set_later_counts_the_runs_already_active,
    a_deployment_limit_is_its_v2_limit_with_its_runs_as_slots
);
