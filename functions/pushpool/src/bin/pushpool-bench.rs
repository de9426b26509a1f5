//! `pushpool-bench`: measures a real `pushpool serve` process and prints the figures DESIGN.md
//! §10 asks for, as a Markdown table (and JSON with `--json-out`).
//!
//! It starts the server binary (`--server-bin`, default: the `pushpool` executable next to this
//! one) on `127.0.0.1:<free port>` over a fresh temporary data directory, then measures:
//!
//! 1. **start-up time**: spawn → first `GET /api/health` answering 200 (polled every 5 ms);
//! 2. **RSS idle**: `VmRSS` of the server from `/proc/<pid>/status`, 1 s after start-up;
//! 3. **`create_flow_run`** throughput (attempts/s and successes/s) and latency
//!    p50/p90/p99/max, at 1 client and at `--concurrency` clients (each with its own keep-alive
//!    connection), `--requests` requests per measurement after 50 warm-up requests. The
//!    fixtures and bodies are those of the Prefect anchor (`bench/bench_prefect_api.py`): an
//!    `ecs:push` pool holding the default ECS base job template (taken from the server's
//!    `aggregate-worker-metadata` view), flow `bench-flow`, deployment `bench-deployment`, and
//!    the body `prefect deployment run` sends with `scheduled_time` one hour ahead, so nothing
//!    is submitted while measuring;
//! 4. **submission latency** (run created → provider request received) with the local
//!    `process` provider: `--submissions` runs are created one after the other, scheduled now,
//!    on a `process` pool whose command appends `$PREFECT__FLOW_RUN_ID` and `date +%s%N` to a
//!    log; each start is matched by flow run id with the wall-clock time taken just before its
//!    create request was sent. It then waits until every run has left SCHEDULED/PENDING and
//!    reports how many reached COMPLETED;
//! 5. **RSS after load**, after the `create_flow_run` phases and again at the end.
//!
//! The server is stopped with SIGTERM at the end (unless `--keep-server`) and the temporary
//! directory removed. Client and server share the machine's cores, as with the anchor.
//!
//! Run it with:
//!
//! ```text
//! cargo build --release -p pushpool && cargo run --release -p pushpool --bin pushpool-bench
//! cargo run --release -p pushpool --bin pushpool-bench -- --requests 1000 --json-out bench.json
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// The headers the Prefect 3.9 client sends (as in the anchor script).
const USER_AGENT: &str = "prefect/3.9.1 (API 0.8.4)";
/// The Prefect API version header value.
const API_VERSION: &str = "0.8.4";
/// Warm-up requests before the `create_flow_run` measurements (not measured).
const WARMUP: usize = 50;
/// Largest latency the histograms hold, in microseconds (values above are clamped).
const MAX_LATENCY_US: u64 = 120_000_000;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "pushpool-bench",
    about = "Benchmark a `pushpool serve` process: start-up, RSS, create_flow_run, submission latency"
)]
struct Args {
    /// Requests per `create_flow_run` measurement (1 client, then N clients).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent clients of the second `create_flow_run` measurement.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Flow runs created for the submission-latency measurement (process provider).
    #[arg(long, default_value_t = 50)]
    submissions: usize,
    /// The `pushpool` server binary (default: `pushpool` next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Leave the server running at the end (its pid, URL and data directory are printed).
    #[arg(long)]
    keep_server: bool,
}

/// The server under test: the child process, its address and its temporary directory.
struct Server {
    child: Child,
    /// Just before the spawn.
    spawned: Instant,
    base: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// The server's pid.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server: SIGTERM through `kill`, then `Child::kill` after 10 s.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if !signalled || Instant::now() > deadline {
                self.child.kill().context("killing the server")?;
                self.child.wait().context("waiting for the server")?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.dir
            .close()
            .context("removing the temporary directory")?;
        Ok(())
    }
}

/// Latency and throughput of one load measurement.
#[derive(Debug)]
struct LoadResult {
    clients: usize,
    requests: usize,
    ok: u64,
    errors: BTreeMap<String, u64>,
    wall: Duration,
    /// Latencies of successful (2xx) responses, microseconds.
    hist: Histogram<u64>,
    server_cpu_s: Option<f64>,
}

impl LoadResult {
    fn attempts_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Latency at quantile `q` (0–1) in ms, `None` without successes.
    fn ms(&self, q: f64) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(q) as f64 / 1000.0)
    }

    fn max_ms(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.max() as f64 / 1000.0)
    }

    fn to_json(&self) -> Value {
        json!({
            "clients": self.clients,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "wall_s": round(self.wall.as_secs_f64(), 3),
            "attempts_per_s": round(self.attempts_per_s(), 1),
            "ok_per_s": round(self.ok_per_s(), 1),
            "p50_ms": self.ms(0.50).map(|v| round(v, 2)),
            "p90_ms": self.ms(0.90).map(|v| round(v, 2)),
            "p99_ms": self.ms(0.99).map(|v| round(v, 2)),
            "max_ms": self.max_ms().map(|v| round(v, 2)),
            "mean_ms": (!self.hist.is_empty()).then(|| round(self.hist.mean() / 1000.0, 2)),
            "server_cpu_s": self.server_cpu_s.map(|v| round(v, 2)),
        })
    }
}

/// Submission latency of the process provider.
#[derive(Debug, Default)]
struct SubmissionResult {
    created: usize,
    create_errors: usize,
    /// (process start − create request sent), ms, one per matched run.
    latencies_ms: Vec<f64>,
    unmatched: usize,
    /// Final state type → count.
    final_states: BTreeMap<String, usize>,
    completed: usize,
    /// From the last create request until every run left SCHEDULED/PENDING.
    settle: Option<Duration>,
}

impl SubmissionResult {
    /// Nearest-rank percentile of the matched latencies, ms.
    fn pct(&self, p: f64) -> Option<f64> {
        if self.latencies_ms.is_empty() {
            return None;
        }
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v.get(rank.clamp(1, v.len()) - 1).copied()
    }

    fn to_json(&self) -> Value {
        json!({
            "created": self.created,
            "create_errors": self.create_errors,
            "matched": self.latencies_ms.len(),
            "unmatched": self.unmatched,
            "p50_ms": self.pct(50.0).map(|v| round(v, 2)),
            "p90_ms": self.pct(90.0).map(|v| round(v, 2)),
            "max_ms": self.pct(100.0).map(|v| round(v, 2)),
            "final_states": self.final_states,
            "completed": self.completed,
            "settle_s": self.settle.map(|d| round(d.as_secs_f64(), 2)),
        })
    }
}

/// Everything measured in one bench run.
#[derive(Debug, Default)]
struct Report {
    startup: Option<Duration>,
    rss_idle_mib: Option<f64>,
    template_bytes: usize,
    loads: Vec<LoadResult>,
    rss_after_create_mib: Option<f64>,
    submissions: Option<SubmissionResult>,
    rss_end_mib: Option<f64>,
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.requests == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => default_server_bin()?,
    };
    if !server_bin.is_file() {
        bail!(
            "server binary {} not found; build it with `cargo build --release -p pushpool` or pass --server-bin",
            server_bin.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;

    let mut report = Report::default();
    let mut server = start_server(&server_bin)?;
    eprintln!(
        "started {} (pid {}) at {}",
        server_bin.display(),
        server.pid(),
        server.base
    );
    let outcome = runtime.block_on(run(&args, &mut server, &mut report));

    if args.keep_server {
        let pid = server.pid();
        let base = server.base.clone();
        let dir = server.dir.keep();
        eprintln!(
            "server kept running: pid {pid}, {base}/api, data and log in {}",
            dir.display()
        );
    } else {
        let log = std::fs::read_to_string(server.dir.path().join("server.log")).ok();
        let stopped = server.stop();
        if outcome.is_err()
            && let Some(log) = log
        {
            eprintln!("--- server log (last 40 lines) ---");
            let lines: Vec<&str> = log.lines().collect();
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
        stopped?;
    }
    outcome?;

    let markdown = render_markdown(&args, &server_bin, &report);
    println!("{markdown}");
    if let Some(path) = &args.json_out {
        let text = serde_json::to_string_pretty(&render_json(&args, &server_bin, &report))?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `pushpool` next to this executable (`target/release/pushpool` under `cargo run --release`).
fn default_server_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this executable")?;
    let dir = me
        .parent()
        .context("this executable has no parent directory")?;
    Ok(dir.join(format!("pushpool{}", std::env::consts::EXE_SUFFIX)))
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Spawns `<bin> serve --bind 127.0.0.1:<port> --data-dir <tmp>/data`, logging to
/// `<tmp>/server.log`.
fn start_server(bin: &Path) -> anyhow::Result<Server> {
    let dir = tempfile::Builder::new()
        .prefix("pushpool-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let port = free_port()?;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let spawned = Instant::now();
    let child = std::process::Command::new(bin)
        .arg("serve")
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // the bench sends no API key: keep the server in open mode on loopback
        .env_remove("PUSHPOOL_PUBLIC_URL")
        .env_remove("PUSHPOOL_REQUIRE_API_KEY")
        .env("RUST_LOG", "info,tower_http=warn,aws_config=error")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Server {
        child,
        spawned,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    })
}

/// An HTTP client with the Prefect client's headers and at most one idle connection.
fn client() -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-PREFECT-API-VERSION",
        HeaderValue::from_static(API_VERSION),
    );
    Ok(reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Runs every measurement against `server`, filling `report`.
async fn run(args: &Args, server: &mut Server, report: &mut Report) -> anyhow::Result<()> {
    let started = server.spawned;
    let api = format!("{}/api", server.base);
    let pid = server.pid();

    // 1. start-up time
    let http = client()?;
    let health = format!("{api}/health");
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited during start-up ({status})");
        }
        if let Ok(r) = http.get(&health).send().await
            && r.status().as_u16() == 200
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server did not answer GET /api/health within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report.startup = Some(started.elapsed());
    eprintln!(
        "healthy after {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // 2. RSS idle
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.rss_idle_mib = rss_mib(pid);

    // 3. create_flow_run on the ECS pool
    let fixtures = ecs_fixtures(&http, &api).await?;
    report.template_bytes = fixtures.template_bytes;
    let path = format!(
        "{api}/deployments/{}/create_flow_run",
        fixtures.deployment_id
    );
    let _warmup = load(&path, WARMUP, 1, None).await?;
    for clients in [1, args.concurrency] {
        let result = load(&path, args.requests, clients, Some(pid)).await?;
        eprintln!(
            "create_flow_run, {clients} client(s): {:.1} ok/s, p50 {:.2} ms, {} errors",
            result.ok_per_s(),
            result.ms(0.5).unwrap_or(f64::NAN),
            result.error_count()
        );
        report.loads.push(result);
    }
    report.rss_after_create_mib = rss_mib(pid);

    // 4. submission latency with the process provider
    if args.submissions > 0 {
        let result = submissions(&http, &api, server.dir.path(), args.submissions).await?;
        eprintln!(
            "submission latency p50 {:.1} ms over {} runs; {} COMPLETED",
            result.pct(50.0).unwrap_or(f64::NAN),
            result.latencies_ms.len(),
            result.completed
        );
        report.submissions = Some(result);
    }

    // 5. RSS after load
    report.rss_end_mib = rss_mib(pid);
    Ok(())
}

/// Ids of the `create_flow_run` fixtures.
struct EcsFixtures {
    deployment_id: String,
    template_bytes: usize,
}

/// POSTs `body` to `url`, failing with the response text unless the status is 2xx.
async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    let text = r.text().await.with_context(|| format!("POST {url}"))?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url}: response is not JSON"))
}

/// GETs `url` as JSON, failing unless the status is 2xx.
async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let text = r.text().await.with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("GET {url}: response is not JSON"))
}

/// The `id` field of a created object.
fn id_of(v: &Value, what: &str) -> anyhow::Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{what} has no id: {v}"))
}

/// The deployment body of the anchor script, for `pool` with `job_variables`.
fn deployment_body(name: &str, flow_id: &str, pool: &str, job_variables: Value) -> Value {
    json!({
        "name": name, "flow_id": flow_id, "paused": false, "schedules": [],
        "enforce_parameter_schema": true,
        "parameter_openapi_schema": {"title": "Parameters", "type": "object",
                                     "properties": {"x": {"default": 1, "position": 0,
                                                          "title": "x", "type": "integer"}}},
        "parameters": {"x": 1}, "tags": [], "labels": {},
        "pull_steps": [{"prefect.deployments.steps.set_working_directory":
                        {"directory": "/opt/prefect/flows"}}],
        "work_pool_name": pool, "entrypoint": "my_flow.py:my_flow",
        "job_variables": job_variables,
    })
}

/// The body `prefect deployment run` sends, scheduled `ahead` from now.
fn create_flow_run_body(ahead: chrono::Duration) -> Value {
    let scheduled = (chrono::Utc::now() + ahead).to_rfc3339();
    json!({
        "state": {"type": "SCHEDULED", "name": "Scheduled", "message": null,
                  "state_details": {"scheduled_time": scheduled, "traceparent": null},
                  "data": null},
        "name": null, "parameters": {"x": 7}, "context": {}, "tags": [],
        "idempotency_key": null, "parent_task_run_id": null,
        "job_variables": {}, "labels": {},
    })
}

/// Creates the anchor's `ecs:push` pool (default ECS template), flow and deployment.
async fn ecs_fixtures(http: &reqwest::Client, api: &str) -> anyhow::Result<EcsFixtures> {
    let view = get_json(
        http,
        &format!("{api}/collections/views/aggregate-worker-metadata"),
    )
    .await?;
    let template = view
        .get("prefect-aws")
        .and_then(|v| v.get("ecs:push"))
        .and_then(|v| v.get("default_base_job_configuration"))
        .cloned()
        .context("aggregate-worker-metadata has no prefect-aws/ecs:push template")?;
    let template_bytes = serde_json::to_vec(&template)?.len();
    post_json(
        http,
        &format!("{api}/work_pools/"),
        &json!({"name": "bench-pool", "type": "ecs:push",
                "base_job_template": template, "is_paused": false}),
    )
    .await?;
    let flow = post_json(
        http,
        &format!("{api}/flows/"),
        &json!({"name": "bench-flow", "tags": [], "labels": {}}),
    )
    .await?;
    let flow_id = id_of(&flow, "flow")?;
    let deployment = post_json(
        http,
        &format!("{api}/deployments/"),
        &deployment_body(
            "bench-deployment",
            &flow_id,
            "bench-pool",
            json!({"image": "prefecthq/prefect:3-latest", "cpu": 1024, "memory": 2048}),
        ),
    )
    .await?;
    Ok(EcsFixtures {
        deployment_id: id_of(&deployment, "deployment")?,
        template_bytes,
    })
}

/// Sends `total` `create_flow_run` requests to `url` from `clients` concurrent clients, each
/// with its own connection; with `pid`, also measures the server's CPU time.
async fn load(
    url: &str,
    total: usize,
    clients: usize,
    pid: Option<u32>,
) -> anyhow::Result<LoadResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = pid.and_then(cpu_seconds);
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let http = client()?;
        let next = Arc::clone(&next);
        let url = url.to_owned();
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
            let mut ok = 0u64;
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let body = create_flow_run_body(chrono::Duration::seconds(3600));
                let t = Instant::now();
                let outcome = match http.post(&url).json(&body).send().await {
                    Ok(r) => {
                        let status = r.status();
                        // read the whole body: the latency includes the response
                        match r.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(_) => Err(status.as_u16().to_string()),
                            Err(e) => Err(transport_error(&e)),
                        }
                    }
                    Err(e) => Err(transport_error(&e)),
                };
                let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(MAX_LATENCY_US);
                match outcome {
                    Ok(()) => {
                        ok += 1;
                        hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
                    }
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
            anyhow::Ok((hist, ok, errors))
        });
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let mut ok = 0;
    let mut errors = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (h, n, e) = joined.context("a load client panicked")??;
        hist.add(h)?;
        ok += n;
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    let wall = t0.elapsed();
    let server_cpu_s = match (cpu0, pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(LoadResult {
        clients,
        requests: total,
        ok,
        errors,
        wall,
        hist,
        server_cpu_s,
    })
}

/// A short name for a transport error (timeout, connect, body, request).
fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport:{kind}")
}

/// Nanoseconds since the Unix epoch (wall clock, comparable with `date +%s%N`).
fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Creates `count` runs on a `process` pool whose command logs its flow run id and start
/// time, and measures process start − create request sent.
async fn submissions(
    http: &reqwest::Client,
    api: &str,
    dir: &Path,
    count: usize,
) -> anyhow::Result<SubmissionResult> {
    let starts = dir.join("starts.log");
    let starts_str = starts
        .to_str()
        .context("the temporary directory's path is not UTF-8")?;
    if starts_str.contains(['\'', '"', '\\', '$', '`', ' ']) {
        bail!("the temporary directory's path {starts_str} needs quoting; set TMPDIR");
    }
    post_json(
        http,
        &format!("{api}/work_pools/"),
        &json!({"name": "bench-process", "type": "process", "is_paused": false}),
    )
    .await?;
    let flow = post_json(
        http,
        &format!("{api}/flows/"),
        &json!({"name": "bench-flow", "tags": [], "labels": {}}),
    )
    .await?;
    let flow_id = id_of(&flow, "flow")?;
    let command = format!("sh -c 'echo \"$PREFECT__FLOW_RUN_ID $(date +%s%N)\" >> {starts_str}'");
    let deployment = post_json(
        http,
        &format!("{api}/deployments/"),
        &deployment_body(
            "bench-process-deployment",
            &flow_id,
            "bench-process",
            json!({"command": command, "stream_output": false}),
        ),
    )
    .await?;
    let url = format!(
        "{api}/deployments/{}/create_flow_run",
        id_of(&deployment, "deployment")?
    );

    let mut result = SubmissionResult::default();
    let mut sent: HashMap<String, i128> = HashMap::new();
    for _ in 0..count {
        let body = create_flow_run_body(chrono::Duration::zero());
        let at = now_nanos();
        match post_json(http, &url, &body).await {
            Ok(run) => {
                sent.insert(id_of(&run, "flow run")?, at);
            }
            Err(e) => {
                eprintln!("create_flow_run failed: {e:#}");
                result.create_errors += 1;
            }
        }
    }
    let last_create = Instant::now();
    result.created = sent.len();

    // every process start, matched by flow run id
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut started: HashMap<String, i128> = HashMap::new();
    while Instant::now() < deadline {
        started = read_starts(&starts)?;
        if sent.keys().all(|id| started.contains_key(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (id, at) in &sent {
        match started.get(id) {
            Some(start) => result.latencies_ms.push((start - at) as f64 / 1_000_000.0),
            None => result.unmatched += 1,
        }
    }

    // wait until every run left SCHEDULED/PENDING (the reconciler records the exit)
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut states = BTreeMap::new();
        for id in sent.keys() {
            let run = get_json(http, &format!("{api}/flow_runs/{id}")).await?;
            let state = run
                .get("state_type")
                .or_else(|| run.get("state").and_then(|s| s.get("type")))
                .and_then(Value::as_str)
                .unwrap_or("NONE")
                .to_owned();
            *states.entry(state).or_insert(0usize) += 1;
        }
        let waiting: usize = ["SCHEDULED", "PENDING", "RUNNING"]
            .iter()
            .filter_map(|s| states.get(*s))
            .sum();
        let done = waiting == 0;
        if done || Instant::now() > deadline {
            result.completed = states.get("COMPLETED").copied().unwrap_or(0);
            result.final_states = states;
            if done {
                result.settle = Some(last_create.elapsed());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(result)
}

/// `starts.log` as flow run id → start time (ns since the epoch); missing file → empty.
fn read_starts(path: &Path) -> anyhow::Result<HashMap<String, i128>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let (id, ns) = line.trim().split_once(' ')?;
            Some((id.to_owned(), ns.trim().parse().ok()?))
        })
        .collect())
}

/// `VmRSS` of `pid` in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of `pid` (from `/proc/<pid>/stat`, 100 ticks per second).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `v` with `digits` decimals, or `–`.
fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The report as Markdown tables.
fn render_markdown(args: &Args, server_bin: &Path, r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## pushpool-bench ({}, {} CPUs, server {})\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        server_bin.display()
    );
    let _ = writeln!(s, "| measure | value |\n|---|---|");
    let _ = writeln!(
        s,
        "| start-up until GET /api/health 200 (fresh db) | {} ms |",
        fmt_opt(r.startup.map(|d| d.as_secs_f64() * 1e3), 1)
    );
    let _ = writeln!(
        s,
        "| RSS idle (start-up + 1 s) | {} MiB |",
        fmt_opt(r.rss_idle_mib, 1)
    );
    let _ = writeln!(
        s,
        "| RSS after create_flow_run load | {} MiB |",
        fmt_opt(r.rss_after_create_mib, 1)
    );
    let _ = writeln!(
        s,
        "| RSS at the end (after submissions) | {} MiB |",
        fmt_opt(r.rss_end_mib, 1)
    );
    let _ = writeln!(
        s,
        "| ECS base job template (ecs:push default) | {} bytes |",
        r.template_bytes
    );
    let _ = writeln!(
        s,
        "\n### create_flow_run ({} requests per row, after {WARMUP} warm-up; ECS pool, scheduled +1 h)\n",
        args.requests
    );
    let _ = writeln!(
        s,
        "| clients | ok | errors | attempts/s | ok/s | p50 ms | p90 ms | p99 ms | max ms | server CPU s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for l in &r.loads {
        let errors = if l.errors.is_empty() {
            "0".to_owned()
        } else {
            l.errors
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
            l.clients,
            l.ok,
            errors,
            l.attempts_per_s(),
            l.ok_per_s(),
            fmt_opt(l.ms(0.50), 2),
            fmt_opt(l.ms(0.90), 2),
            fmt_opt(l.ms(0.99), 2),
            fmt_opt(l.max_ms(), 2),
            fmt_opt(l.server_cpu_s, 2),
        );
    }
    if let Some(sub) = &r.submissions {
        let _ = writeln!(
            s,
            "\n### submission latency (process provider; run created → process started)\n"
        );
        let _ = writeln!(
            s,
            "| runs created | matched | p50 ms | p90 ms | max ms | COMPLETED | final states | all settled after |\n|---|---|---|---|---|---|---|---|"
        );
        let states = sub
            .final_states
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
            sub.created,
            if sub.create_errors > 0 {
                format!(" ({} failed)", sub.create_errors)
            } else {
                String::new()
            },
            sub.latencies_ms.len(),
            fmt_opt(sub.pct(50.0), 1),
            fmt_opt(sub.pct(90.0), 1),
            fmt_opt(sub.pct(100.0), 1),
            sub.completed,
            states,
            sub.settle.map_or_else(
                || "not within 90 s".into(),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
        );
    }
    s
}

/// The report as JSON.
fn render_json(args: &Args, server_bin: &Path, r: &Report) -> Value {
    json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "cpus": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "server_bin": server_bin.display().to_string(),
        "args": {"requests": args.requests, "concurrency": args.concurrency,
                 "submissions": args.submissions, "warmup": WARMUP},
        "startup_ms": r.startup.map(|d| round(d.as_secs_f64() * 1e3, 1)),
        "rss_idle_mib": r.rss_idle_mib.map(|v| round(v, 1)),
        "rss_after_create_mib": r.rss_after_create_mib.map(|v| round(v, 1)),
        "rss_end_mib": r.rss_end_mib.map(|v| round(v, 1)),
        "ecs_template_bytes": r.template_bytes,
        "create_flow_run": r.loads.iter().map(LoadResult::to_json).collect::<Vec<_>>(),
        "submission": r.submissions.as_ref().map(SubmissionResult::to_json),
    })
}
