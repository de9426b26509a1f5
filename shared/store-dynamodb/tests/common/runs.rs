//! The flow runs the cost bench and the flatness test seed, and the filter bodies they
//! measure (the common bodies of `docs/benchmarks.md` §3, on a mix where each fills a page
//! of 200 from 1,000 runs on).

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use pushpool_core::filter::{FlowRunFilter, FlowRunSort};
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::{FlowRunQuery, Page};
use serde_json::json;
use uuid::Uuid;

/// Deployments of the seeded runs (each has a quarter of them).
pub const DEPLOYMENTS: usize = 4;
/// Work pools `pool-0` .. `pool-3` (each has a quarter of the runs).
pub const POOLS: usize = 4;

/// The first run's expected start time; the others follow a minute apart.
pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// The seeded set: `n` runs of one flow, expected start times a minute apart, over
/// [`DEPLOYMENTS`] deployments and [`POOLS`] pools; 50 % COMPLETED, 25 % RUNNING, 10 %
/// PENDING, 5 % FAILED, 10 % SCHEDULED; 25 % tagged `nightly`; ids UUIDv7 in creation
/// order (as the server makes them). States are applied in memory as the service would.
pub fn seeded_runs(n: usize, deployments: &[Uuid]) -> Vec<FlowRun> {
    let flow = Uuid::from_u128(0xf10f);
    (0..n)
        .map(|i| {
            let at = base() + Duration::minutes(i as i64);
            let id = Uuid::now_v7();
            let mut run = FlowRun::new(id, flow, format!("run-{i}"), at);
            run.deployment_id = Some(deployments[i % deployments.len()]);
            run.work_pool_name = Some(format!("pool-{}", (i / 3) % POOLS));
            run.work_queue_name = Some("default".into());
            if i % 4 == 1 {
                run.tags = vec!["nightly".into()];
            }
            let mut scheduled = State::new(StateType::Scheduled, at);
            scheduled.state_details.flow_run_id = Some(id);
            scheduled.state_details.scheduled_time = Some(at);
            apply_state(&mut run, scheduled, at);
            let end = match i % 20 {
                0..=9 => Some(StateType::Completed),
                10..=14 => Some(StateType::Running),
                15 | 16 => Some(StateType::Pending),
                17 => Some(StateType::Failed),
                _ => None,
            };
            if let Some(t) = end {
                let now = at + Duration::seconds(30);
                apply_state(&mut run, State::new(t, now), now);
            }
            run
        })
        .collect()
}

/// A query of `body` sorted by `sort`, first page of `limit`.
pub fn query(body: serde_json::Value, sort: FlowRunSort, limit: usize) -> FlowRunQuery {
    FlowRunQuery {
        filter: serde_json::from_value::<FlowRunFilter>(body).expect("filter body"),
        sort,
        page: Page {
            offset: 0,
            limit: Some(limit),
        },
        ..FlowRunQuery::default()
    }
}

/// The measured bodies: name, query, whether it is a count.
pub fn bodies(deployment: Uuid, limit: usize) -> Vec<(&'static str, FlowRunQuery, bool)> {
    let window = json!({
        "expected_start_time": {
            "after_": (base() + Duration::hours(2)).to_rfc3339(),
            "before_": (base() + Duration::hours(8)).to_rfc3339(),
        }
    });
    vec![
        (
            "dashboard: {} EXPECTED_START_TIME_DESC",
            query(json!({}), FlowRunSort::ExpectedStartTimeDesc, limit),
            false,
        ),
        (
            "default: {} ID_DESC",
            query(json!({}), FlowRunSort::IdDesc, limit),
            false,
        ),
        (
            "state RUNNING|PENDING, EXPECTED_START_TIME_DESC",
            query(
                json!({"state": {"type": {"any_": ["RUNNING", "PENDING"]}}}),
                FlowRunSort::ExpectedStartTimeDesc,
                limit,
            ),
            false,
        ),
        (
            "deployment_id, EXPECTED_START_TIME_DESC",
            query(
                json!({"deployment_id": {"any_": [deployment]}}),
                FlowRunSort::ExpectedStartTimeDesc,
                limit,
            ),
            false,
        ),
        (
            "work pool pool-1, EXPECTED_START_TIME_DESC",
            FlowRunQuery {
                work_pool_names: Some(vec!["pool-1".into()]),
                ..query(json!({}), FlowRunSort::ExpectedStartTimeDesc, limit)
            },
            false,
        ),
        (
            "expected_start_time 6 h window, ASC",
            query(window, FlowRunSort::ExpectedStartTimeAsc, limit),
            false,
        ),
        (
            "tags any nightly (25 %), ID_DESC",
            query(
                json!({"tags": {"any_": ["nightly"]}}),
                FlowRunSort::IdDesc,
                limit,
            ),
            false,
        ),
        (
            "tags any never-used, ID_DESC",
            query(
                json!({"tags": {"any_": ["never-used"]}}),
                FlowRunSort::IdDesc,
                limit,
            ),
            false,
        ),
        (
            "count state COMPLETED",
            query(
                json!({"state": {"type": {"any_": ["COMPLETED"]}}}),
                FlowRunSort::IdDesc,
                limit,
            ),
            true,
        ),
    ]
}
