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

/// A loopback HTTP proxy to `upstream` (`http://127.0.0.1:<port>`) that forwards **one request
/// at a time**, each on its own connection (`Connection: close`); returns its endpoint. It
/// lives as long as the current test's runtime.
///
/// Why: moto's `TransactWriteItems` is not atomic across its request threads (it checks every
/// condition, then writes, and a cancelled transaction restores a snapshot of the whole table
/// taken when it began, undoing other requests' writes). Real DynamoDB isolates
/// transactions, so tests of concurrent writers go through this proxy: their requests still
/// interleave (read, read, write, write), but each runs alone in moto.
pub async fn serializing_proxy(upstream: &str) -> String {
    use tokio::net::TcpListener;

    let upstream: std::net::SocketAddr = upstream
        .trim_start_matches("http://")
        .parse()
        .expect("moto's endpoint is http://<ip>:<port>");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let gate = Arc::new(tokio::sync::Mutex::new(()));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                if let Err(e) = proxy_one(client, upstream, gate).await {
                    eprintln!("serializing proxy: {e}");
                }
            });
        }
    });
    endpoint
}

async fn proxy_one(
    mut client: tokio::net::TcpStream,
    upstream: std::net::SocketAddr,
    gate: Arc<tokio::sync::Mutex<()>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // an idle connection closed by the client
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut request = close_connection(&head).into_bytes();
    request.extend_from_slice(&buf[body_start..body_start + length]);

    let response = {
        let _turn = gate.lock().await;
        let mut moto = tokio::net::TcpStream::connect(upstream).await?;
        moto.write_all(&request).await?;
        let mut response = Vec::new();
        moto.read_to_end(&mut response).await?;
        response
    };
    let Some(end) = find(&response, b"\r\n\r\n") else {
        client.write_all(&response).await?;
        return client.shutdown().await;
    };
    let mut out = close_connection(&String::from_utf8_lossy(&response[..end])).into_bytes();
    out.extend_from_slice(&response[end + 4..]);
    client.write_all(&out).await?;
    client.shutdown().await
}

/// The message head without its `Connection` headers, plus `Connection: close`, and the
/// blank line.
fn close_connection(head: &str) -> String {
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

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
