//! The flow run listings that read in index order: exact (the reference predicate and sort,
//! every page, ties included) and flat (the same items and capacity units at 1,000 and
//! 5,000 runs).

mod common;
#[path = "common/runs.rs"]
mod runs;

use chrono::Duration;
use pushpool_core::filter::FlowRunSort;
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::conformance::flow_run;
use pushpool_store::{FlowRunQuery, Page, Store};
use pushpool_store_dynamodb::DynamoStore;
use serde_json::json;
use uuid::Uuid;

/// The reference answer: `matches` then `compare`, paged.
fn reference(all: &[FlowRun], q: &FlowRunQuery) -> Vec<Uuid> {
    let mut want: Vec<&FlowRun> = all.iter().filter(|r| q.matches(r)).collect();
    want.sort_by(|a, b| q.sort.compare(a, b));
    want.iter()
        .skip(q.page.offset)
        .take(q.page.limit.unwrap_or(usize::MAX))
        .map(|r| r.id)
        .collect()
}

#[tokio::test]
async fn the_common_bodies_answer_as_the_reference_on_every_page_with_ties() {
    let (store, _) = common::fresh_store_and_client().await;
    let deployments: Vec<Uuid> = (0..runs::DEPLOYMENTS).map(|_| Uuid::new_v4()).collect();
    let mut all = runs::seeded_runs(150, &deployments);
    // Three runs per expected start time: ties the sorts break by id, descending.
    for (i, run) in all.iter_mut().enumerate() {
        run.expected_start_time = Some(runs::base() + Duration::minutes((i / 3) as i64));
    }
    // One run without an expected start time (first ascending, last descending).
    all[7].expected_start_time = None;
    store.bulk_load_flow_runs(&all).await.unwrap();
    let sorts = [
        FlowRunSort::ExpectedStartTimeDesc,
        FlowRunSort::ExpectedStartTimeAsc,
        FlowRunSort::IdDesc,
        FlowRunSort::StartTimeDesc,
        FlowRunSort::NameAsc,
    ];
    let pages = [(0, 1), (0, 7), (2, 5), (4, 3), (0, 200)];
    let mut extra = runs::bodies(deployments[1], 200);
    extra.push((
        "deployments and a state",
        runs::query(
            json!({"deployment_id": {"any_": [deployments[0], deployments[2]]}, "state": {"type": {"any_": ["COMPLETED"]}}}),
            FlowRunSort::IdDesc,
            200,
        ),
        false,
    ));
    extra.push((
        "tags all_ and a window",
        runs::query(
            json!({"tags": {"all_": ["nightly"]}, "expected_start_time": {"before_": (runs::base() + Duration::minutes(20)).to_rfc3339()}}),
            FlowRunSort::IdDesc,
            200,
        ),
        false,
    ));
    for (name, body, _) in extra {
        for sort in sorts {
            for (offset, limit) in pages {
                let q = FlowRunQuery {
                    sort,
                    page: Page {
                        offset,
                        limit: Some(limit),
                    },
                    ..body.clone()
                };
                let got: Vec<Uuid> = store
                    .list_flow_runs(&q)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect();
                assert_eq!(got, reference(&all, &q), "{name} {sort:?} {offset}+{limit}");
            }
            let q = FlowRunQuery {
                sort,
                page: Page::default(),
                ..body.clone()
            };
            assert_eq!(
                store.count_flow_runs(&q).await.unwrap(),
                reference(&all, &q).len() as u64,
                "count {name}"
            );
        }
    }
}

/// Tags added and removed by an update, and a deleted run, leave the tag listing as the
/// runs are.
#[tokio::test]
async fn tag_listing_entries_follow_updates_and_deletes() {
    let (store, _) = common::fresh_store_and_client().await;
    let flow = Uuid::new_v4();
    let mut a = flow_run(flow, None);
    a.tags = vec!["x".into(), "y".into()];
    let (mut a, _) = store.create_flow_run(&a).await.unwrap();
    let mut b = flow_run(flow, None);
    b.tags = vec!["y".into()];
    let (b, _) = store.create_flow_run(&b).await.unwrap();
    let tagged = |tag: &str| runs::query(json!({"tags": {"any_": [tag]}}), FlowRunSort::IdDesc, 10);
    let ids = |runs: Vec<FlowRun>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    let desc = |mut v: Vec<Uuid>| {
        v.sort_by(|x, y| y.cmp(x));
        v
    };
    assert_eq!(
        ids(store.list_flow_runs(&tagged("x")).await.unwrap()),
        [a.id]
    );
    assert_eq!(
        ids(store.list_flow_runs(&tagged("y")).await.unwrap()),
        desc(vec![a.id, b.id])
    );
    a.tags = vec!["z".into(), "y".into()];
    let now = chrono::Utc::now();
    apply_state(&mut a, State::new(StateType::Running, now), now);
    store.update_flow_run(&a).await.unwrap();
    assert_eq!(
        ids(store.list_flow_runs(&tagged("x")).await.unwrap()),
        Vec::<Uuid>::new()
    );
    assert_eq!(
        ids(store.list_flow_runs(&tagged("z")).await.unwrap()),
        [a.id]
    );
    assert_eq!(
        ids(store.list_flow_runs(&tagged("y")).await.unwrap()),
        desc(vec![a.id, b.id])
    );
    store.delete_flow_run(b.id).await.unwrap();
    assert_eq!(
        ids(store.list_flow_runs(&tagged("y")).await.unwrap()),
        [a.id]
    );

    // More tags than a DynamoDB transaction has items: the entries are not in it.
    let mut many = flow_run(flow, None);
    many.tags = (0..150).map(|i| format!("t{i}")).collect();
    let (many, _) = store.create_flow_run(&many).await.unwrap();
    assert_eq!(
        ids(store.list_flow_runs(&tagged("t149")).await.unwrap()),
        [many.id]
    );
    let mut fewer = many.clone();
    fewer.tags = vec!["t0".into()];
    store.update_flow_run(&fewer).await.unwrap();
    assert_eq!(
        ids(store.list_flow_runs(&tagged("t149")).await.unwrap()),
        Vec::<Uuid>::new()
    );
    assert_eq!(
        ids(store.list_flow_runs(&tagged("t0")).await.unwrap()),
        [many.id]
    );
}

/// What one listed query read: (items read, read capacity units by DynamoDB's rules, read
/// calls).
async fn cost(store: &DynamoStore, q: &FlowRunQuery, count: bool) -> (u64, f64, u64) {
    // Warm: the first listing of a store reads the table's format item once.
    store
        .list_flow_runs(&runs::query(json!({}), FlowRunSort::IdDesc, 1))
        .await
        .unwrap();
    store.reset_usage();
    if count {
        store.count_flow_runs(q).await.unwrap();
    } else {
        let page = store.list_flow_runs(q).await.unwrap();
        let tag = q.filter.tags.as_ref().and_then(|t| t.any_.clone());
        if tag != Some(vec!["never-used".to_owned()]) {
            assert_eq!(page.len(), q.page.limit.unwrap(), "a full page");
        }
    }
    let u = store.usage();
    (u.items_read, u.read_units, u.read_calls)
}

async fn seeded(n: usize, deployments: &[Uuid]) -> DynamoStore {
    let (store, _) = common::fresh_store_and_client().await;
    let runs = runs::seeded_runs(n, deployments);
    let mut loads = tokio::task::JoinSet::new();
    for chunk in runs.chunks(n.div_ceil(4)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        loads.spawn(async move { store.bulk_load_flow_runs(&chunk).await });
    }
    while let Some(done) = loads.join_next().await {
        done.unwrap().unwrap();
    }
    store.with_metering()
}

/// The common bodies read the same number of items and capacity units at 1,000 runs as at
/// 5,000 (pages of 50); the count reads every matching run (as SQLite and Prefect do), so
/// it grows, and says so here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_common_bodies_read_as_much_at_5k_runs_as_at_1k() {
    let deployments: Vec<Uuid> = (0..runs::DEPLOYMENTS).map(|_| Uuid::new_v4()).collect();
    let mut figures = Vec::new();
    for n in [1_000, 5_000] {
        let store = seeded(n, &deployments).await;
        let mut row = Vec::new();
        for (name, q, count) in runs::bodies(deployments[1], 50) {
            row.push((name, cost(&store, &q, count).await, count));
        }
        figures.push(row);
    }
    for ((name, small, count), (_, large, _)) in figures[0].iter().zip(&figures[1]) {
        eprintln!("{name}: 1k {small:?}, 5k {large:?}");
        if *count {
            assert!(large.0 > 4 * small.0, "{name}: a count reads every match");
            continue;
        }
        assert_eq!(small, large, "{name}: (items, RCU, calls) at 1k vs 5k");
        // A page of 50 reads at most ~2 × 51 index entries and 51 runs per partition.
        assert!(small.0 <= 2 * 2 * 51 + 2 * 51, "{name}: {small:?}");
    }
}

/// A pool name that cannot be an index key (empty, or over 1 KB) is left off the run item:
/// the run is still found by that pool, through another source.
#[tokio::test]
async fn runs_of_a_pool_whose_name_cannot_be_a_key_are_found() {
    let (store, _) = common::fresh_store_and_client().await;
    let flow = Uuid::new_v4();
    let long = "p".repeat(1100);
    let mut found = Vec::new();
    for name in ["", long.as_str()] {
        let run = flow_run(flow, Some(name));
        let (run, _) = store.create_flow_run(&run).await.unwrap();
        found.push(run.id);
        store
            .create_flow_run(&flow_run(flow, Some("other")))
            .await
            .unwrap();
    }
    for (name, id) in ["", long.as_str()].into_iter().zip(found) {
        for sort in [FlowRunSort::ExpectedStartTimeDesc, FlowRunSort::IdDesc] {
            let q = FlowRunQuery {
                work_pool_names: Some(vec![name.to_owned()]),
                ..runs::query(json!({}), sort, 10)
            };
            let got: Vec<Uuid> = store
                .list_flow_runs(&q)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(got, [id], "pool of {} bytes, {sort:?}", name.len());
            assert_eq!(store.count_flow_runs(&q).await.unwrap(), 1);
        }
    }
}
