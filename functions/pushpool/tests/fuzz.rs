//! The fuzzer in the test suite: schemathesis (PyPI, pinned in `scripts/setup-test-tools.sh`,
//! installed into `.venv-fuzz`) generates requests from Prefect 3.9.1's OpenAPI document
//! (`fixtures/prefect-openapi-3.9.1.json`) for every operation it describes, valid and
//! invalid, and sends them to a real `pushpool serve` over SQLite. The check is
//! `not_a_server_error`: no 5xx, and no dropped connection (schemathesis counts a network
//! error as a failure). The server's log must show no panic either.
//!
//! Pinned: schemathesis 4.32.5, seed 1, the `examples` and `fuzzing` phases, 20 examples per
//! operation, 2 workers, the `filter_too_much` health check off (some of Prefect's path
//! patterns are hard to generate for): about 3,500 requests in under a minute here. Longer runs, outside
//! CI: `PUSHPOOL_FUZZ_EXAMPLES=500 PUSHPOOL_FUZZ_SEED=7 cargo test -p pushpool --test fuzz`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pushpool_tests::tools::workspace_root;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn schemathesis_finds_no_server_error_and_no_dropped_connection() {
    let schemathesis = workspace_root().join(".venv-fuzz/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/setup-test-tools.sh (it installs schemathesis into .venv-fuzz)",
        schemathesis.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_pushpool"))
        .arg("serve")
        .env("PUSHPOOL_BIND", format!("127.0.0.1:{port}"))
        .env("PUSHPOOL_DATA_DIR", dir.path().join("data"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("pushpool binary starts");
    let api = format!("http://127.0.0.1:{port}/api");
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while !client
        .get(format!("{api}/health"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let examples = std::env::var("PUSHPOOL_FUZZ_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("PUSHPOOL_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let output = Command::new(&schemathesis)
        .current_dir(dir.path())
        .args([
            "run",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/prefect-openapi-3.9.1.json"
            ),
        ])
        .args(["--url", &api])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,fuzzing"])
        .args([
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "2",
        ])
        .args(["--no-color", "--warnings", "off"])
        // Some of Prefect's path patterns are hard to satisfy: a health check, not a finding.
        .args(["--suppress-health-check", "filter_too_much"])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let _ = server.kill();
    let _ = server.wait();
    let server_log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();

    assert!(
        output.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(" passed"), "no test case ran:\n{report}");
    assert!(
        !server_log.contains("panicked"),
        "the server panicked:\n{server_log}"
    );
}
