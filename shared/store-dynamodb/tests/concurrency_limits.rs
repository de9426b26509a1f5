//! Global concurrency slots and leases (`pushpool-service`'s `concurrency_suite.rs`: lapsed
//! leases, concurrent acquisitions, deletes) on DynamoDB (moto).

mod common;

#[path = "../../service/tests/common/concurrency_suite.rs"]
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
    a_lapsed_lease_frees_its_slots,
    concurrent_acquisitions_never_exceed_the_limit,
    deleting_a_limit_releases_its_leases
);
