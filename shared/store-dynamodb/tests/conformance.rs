//! The store conformance suite against the DynamoDB adapter, on moto server (one server for
//! the binary, a new table per test).

mod common;

pushpool_store::store_conformance_tests!(dynamodb, crate::common::fresh_store().await);
