//! The task run recorder (`pushpool-service`'s `task_run_recorder_suite.rs`) on DynamoDB
//! (moto).

mod common;

#[path = "../../service/tests/common/task_run_recorder_suite.rs"]
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
    ordered_and_disordered_events_give_the_same_task_run,
    the_natural_key_wins_and_other_events_are_ignored
);
