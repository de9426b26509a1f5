//! Test setup shared by this crate's test binaries: one moto server per binary, a fresh
//! table per test.
//!
//! Each `#[tokio::test]` has its own runtime, so clients are made per test. The server is
//! held through `Arc`s: the static keeps only a `Weak`, each test keeps an `Arc` alive in a
//! task of its own runtime (dropped when that runtime shuts down at the end of the test), and
//! the last test to finish stops the server. Tests that overlap share one server; a static
//! `Arc` would never be dropped and would leave moto running after the binary exits.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, Weak};

use pushpool_store_dynamodb::DynamoStore;
use pushpool_tests::moto::MotoServer;

static MOTO: Mutex<Weak<MotoServer>> = Mutex::new(Weak::new());

/// The binary's moto server (started by `MotoServer::start`, which fails with the install
/// command when moto is missing).
pub fn moto() -> Arc<MotoServer> {
    let mut slot = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(moto) = slot.upgrade() {
        return moto;
    }
    let moto = Arc::new(MotoServer::start());
    *slot = Arc::downgrade(&moto);
    moto
}

/// Keeps `moto` running until the current test's runtime shuts down.
pub fn hold_for_this_test(moto: Arc<MotoServer>) {
    tokio::spawn(async move {
        let _moto = moto;
        std::future::pending::<()>().await;
    });
}

/// A DynamoDB client of the binary's moto server, held for this test.
pub async fn client() -> aws_sdk_dynamodb::Client {
    let moto = moto();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    hold_for_this_test(moto);
    client
}

/// A unique table name.
pub fn table_name() -> String {
    format!("pushpool-test-{}", uuid::Uuid::new_v4())
}

/// A store over a new table (and its client, for looking at raw items).
pub async fn fresh_store_and_client() -> (DynamoStore, aws_sdk_dynamodb::Client) {
    let client = client().await;
    let table = table_name();
    DynamoStore::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e:?}"));
    (DynamoStore::new(client.clone(), table), client)
}

/// A store over a new table.
pub async fn fresh_store() -> DynamoStore {
    fresh_store_and_client().await.0
}

pub use pushpool_tests::serializing_proxy::serializing_proxy;

/// A store over a new table, reached through a [`serializing_proxy`] to moto.
pub async fn fresh_store_behind_serializing_proxy() -> DynamoStore {
    let moto = moto();
    let endpoint = serializing_proxy(&moto.endpoint).await;
    let config = pushpool_tests::moto::test_sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    hold_for_this_test(moto);
    let table = table_name();
    DynamoStore::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e:?}"));
    DynamoStore::new(client, table)
}
