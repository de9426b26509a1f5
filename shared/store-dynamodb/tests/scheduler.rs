//! The scheduler's checks (`pushpool-service`'s `scheduling_suite.rs`) on DynamoDB (moto):
//! idempotent run creation per slot, two concurrent ticks, schedule changes, late runs and
//! deployment deletion through this adapter.

mod common;

#[path = "../../service/tests/common/scheduling_suite.rs"]
mod suite;

use std::sync::Arc;

macro_rules! on_dynamodb {
    ($($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store: suite::DynStore = Arc::new(common::fresh_store().await);
                suite::$name(store).await;
            }
        )*
    };
}

on_dynamodb!(
    tick_materialises_the_horizon_once,
    concurrent_ticks_make_one_run_per_slot,
    paused_and_inactive_make_nothing,
    schedule_change_replaces_only_future_auto_runs,
    late_runs_are_marked,
    deleting_a_deployment_deletes_its_scheduled_runs,
    cron_schedule_in_a_time_zone
);
