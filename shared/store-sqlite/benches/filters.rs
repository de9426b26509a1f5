//! The flow run filter bench: what a filter costs as the embedded store grows.
//!
//! For each size in `FILTER_BENCH_SIZES` (default 1,000, 100,000 and 1,000,000 runs) it seeds a fresh
//! SQLite file through the store port (`Store::create_flow_run` and `update_flow_run`, as the
//! server writes them: 20 deployments over 4 work pools, 90 % COMPLETED, 4 % FAILED, 2 %
//! RUNNING, 4 % SCHEDULED, 10 % tagged `nightly`, 0.01 % tagged `rare`, expected start times a
//! minute apart), then times each listed filter body (`FILTER_BENCH_ITERATIONS` times, default 100, after 5 warm-ups)
//! and prints p50/p99 in milliseconds, with bytes stored per run (`page_count × page_size /
//! runs`, after a checkpoint). The bodies are those the Prefect UI and CLI send most: the
//! dashboard list, runs by state, by deployment, by work pool, by tag, by time window, and a
//! count; plus a tag no run has, which no index serves (a full scan: the known worst case).
//!
//! ```text
//! cargo bench -p pushpool-store-sqlite --bench filters
//! FILTER_BENCH_SIZES=1000,100000 FILTER_BENCH_ITERATIONS=50 cargo bench -p pushpool-store-sqlite --bench filters
//! ```
//!
//! It lives beside the store (not in the `pushpool` binary's crate) so that an optimised
//! build of it compiles SQLite and serde only, not the cloud SDKs.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use pushpool_core::filter::{FlowRunFilter, FlowRunSort};
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::{FlowRunQuery, Page, Store};
use pushpool_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Settings, from the environment (`cargo bench` passes its own arguments).
struct Args {
    sizes: Vec<usize>,
    iterations: usize,
}

impl Args {
    fn from_env() -> AnyResult<Self> {
        let sizes = match std::env::var("FILTER_BENCH_SIZES") {
            Ok(v) => v
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()?,
            Err(_) => vec![1_000, 100_000, 1_000_000],
        };
        let iterations = match std::env::var("FILTER_BENCH_ITERATIONS") {
            Ok(v) => v.parse()?,
            Err(_) => 100,
        };
        Ok(Self { sizes, iterations })
    }
}

const DEPLOYMENTS: usize = 20;
const POOLS: usize = 4;

/// The filter bodies timed, with a name.
fn bodies(deployment: Uuid) -> Vec<(&'static str, FlowRunQuery, bool)> {
    let q = |body: serde_json::Value, sort: FlowRunSort| FlowRunQuery {
        filter: serde_json::from_value::<FlowRunFilter>(body).expect("filter body"),
        sort,
        page: Page {
            offset: 0,
            limit: Some(200),
        },
        ..FlowRunQuery::default()
    };
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    vec![
        (
            "dashboard: {} EXPECTED_START_TIME_DESC",
            q(json!({}), FlowRunSort::ExpectedStartTimeDesc),
            false,
        ),
        (
            "default: {} ID_DESC",
            q(json!({}), FlowRunSort::IdDesc),
            false,
        ),
        (
            "state RUNNING|PENDING, EXPECTED_START_TIME_DESC",
            q(
                json!({"state": {"type": {"any_": ["RUNNING", "PENDING"]}}}),
                FlowRunSort::ExpectedStartTimeDesc,
            ),
            false,
        ),
        (
            "deployment_id, EXPECTED_START_TIME_DESC",
            q(
                json!({"deployment_id": {"any_": [deployment]}}),
                FlowRunSort::ExpectedStartTimeDesc,
            ),
            false,
        ),
        (
            "work pool pool-1, EXPECTED_START_TIME_DESC",
            FlowRunQuery {
                work_pool_names: Some(vec!["pool-1".into()]),
                ..q(json!({}), FlowRunSort::ExpectedStartTimeDesc)
            },
            false,
        ),
        (
            "expected_start_time 1 day window, ASC",
            q(
                json!({"expected_start_time": {"after_": (base + Duration::days(1)).to_rfc3339(), "before_": (base + Duration::days(2)).to_rfc3339()}}),
                FlowRunSort::ExpectedStartTimeAsc,
            ),
            false,
        ),
        (
            "tags any nightly (10 %)",
            q(json!({"tags": {"any_": ["nightly"]}}), FlowRunSort::IdDesc),
            false,
        ),
        (
            "count state COMPLETED",
            q(
                json!({"state": {"type": {"any_": ["COMPLETED"]}}}),
                FlowRunSort::IdDesc,
            ),
            true,
        ),
        (
            "tags any never-used (full scan)",
            q(
                json!({"tags": {"any_": ["never-used"]}}),
                FlowRunSort::IdDesc,
            ),
            false,
        ),
    ]
}

/// Seeds `n` runs; returns a deployment id that has runs.
async fn seed(store: &SqliteStore, n: usize) -> AnyResult<Uuid> {
    let flow = Uuid::new_v4();
    let deployments: Vec<Uuid> = (0..DEPLOYMENTS).map(|_| Uuid::new_v4()).collect();
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for i in 0..n {
        let at = base + Duration::minutes(i as i64);
        let id = Uuid::new_v4();
        let mut run = FlowRun::new(id, flow, format!("run-{i}"), at);
        run.deployment_id = Some(deployments[i % DEPLOYMENTS]);
        run.work_pool_name = Some(format!("pool-{}", i % POOLS));
        run.work_queue_name = Some("default".into());
        run.tags = match i % 10_000 {
            0 => vec!["rare".into()],
            x if x % 10 == 0 => vec!["nightly".into()],
            _ => vec![],
        };
        let mut scheduled = State::new(StateType::Scheduled, at);
        scheduled.state_details.flow_run_id = Some(id);
        scheduled.state_details.scheduled_time = Some(at);
        apply_state(&mut run, scheduled, at);
        let (mut run, _) = store.create_flow_run(&run).await?;
        let end = match i % 100 {
            0..=3 => None,
            4 | 5 => Some(StateType::Running),
            6..=9 => Some(StateType::Failed),
            _ => Some(StateType::Completed),
        };
        if let Some(t) = end {
            let now = at + Duration::seconds(30);
            apply_state(&mut run, State::new(t, now), now);
            store.update_flow_run(&run).await?;
        }
        if i > 0 && i % 100_000 == 0 {
            eprintln!("  seeded {i} runs");
        }
    }
    Ok(deployments[1])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn bytes_per_run(path: &std::path::Path, n: usize) -> AnyResult<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok((pages * size) as f64 / n as f64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> AnyResult<()> {
    let args = Args::from_env()?;
    let mut table: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut sizes_line = Vec::new();
    for &n in &args.sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bench.db");
        let store = SqliteStore::open(&path)?;
        let started = Instant::now();
        eprintln!("seeding {n} runs");
        let deployment = seed(&store, n).await?;
        let seeded = started.elapsed();
        let store: Arc<dyn Store> = Arc::new(store);
        let bytes = bytes_per_run(&path, n)?;
        sizes_line.push(format!(
            "{n} runs: seeded in {:.1} s, {bytes:.0} bytes per run",
            seeded.as_secs_f64()
        ));
        for (i, (name, query, count)) in bodies(deployment).into_iter().enumerate() {
            let mut times = Vec::with_capacity(args.iterations);
            for round in 0..(args.iterations + 5) {
                let t = Instant::now();
                if count {
                    store.count_flow_runs(&query).await?;
                } else {
                    store.list_flow_runs(&query).await?;
                }
                if round >= 5 {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            times.sort_by(f64::total_cmp);
            if table.len() <= i {
                table.push((name.to_owned(), Vec::new()));
            }
            table[i]
                .1
                .push((percentile(&times, 0.5), percentile(&times, 0.99)));
        }
    }
    println!(
        "| filter body (limit 200) | {} |",
        args.sizes
            .iter()
            .map(|n| format!("{n} runs: p50 / p99 ms"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(args.sizes.len()));
    for (name, cells) in table {
        println!(
            "| {name} | {} |",
            cells
                .iter()
                .map(|(p50, p99)| format!("{p50:.2} / {p99:.2}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    println!();
    for line in sizes_line {
        println!("- {line}");
    }
    Ok(())
}
