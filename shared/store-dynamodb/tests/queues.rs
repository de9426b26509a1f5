//! Work queues in submission (`pushpool-service`'s `queue_suite.rs`: paused queues,
//! priorities) on DynamoDB (moto).

mod common;

#[path = "../../service/tests/common/queue_suite.rs"]
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
    a_paused_queue_holds_its_runs_until_resumed,
    due_runs_are_submitted_by_queue_priority
);
