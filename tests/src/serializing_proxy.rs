//! A loopback HTTP proxy that forwards **one request at a time** to moto, shared by the
//! DynamoDB adapter's tests and the AWS-shape end-to-end test.
//!
//! Why: moto 5.2.5's `TransactWriteItems` is not atomic across its request threads. It
//! deep-copies the table when it begins, checks the conditions, writes, and on a cancelled
//! transaction puts the copy back, undoing the writes (and the stream records) that other
//! requests made meanwhile. Real DynamoDB isolates transactions. Tests that race writers on
//! purpose go through this proxy: requests still interleave (read, read, write, write), but each runs alone in
//! moto.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts the proxy to `upstream` (`http://127.0.0.1:<port>`); returns its endpoint. It lives
/// as long as the current runtime.
pub async fn serializing_proxy(upstream: &str) -> String {
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
    mut client: TcpStream,
    upstream: std::net::SocketAddr,
    gate: Arc<tokio::sync::Mutex<()>>,
) -> std::io::Result<()> {
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
        let mut moto = TcpStream::connect(upstream).await?;
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
