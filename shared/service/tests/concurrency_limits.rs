//! Global concurrency slots and leases on SQLite (the same checks run on DynamoDB in
//! `pushpool-store-dynamodb`'s `concurrency_limits.rs`).

#[path = "common/concurrency_suite.rs"]
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
    a_lapsed_lease_frees_its_slots,
    concurrent_acquisitions_never_exceed_the_limit,
    deleting_a_limit_releases_its_leases
);
