//! The DynamoDB cost bench: what a flow run listing reads, and what one run costs to store and
//! to take from creation to COMPLETED, on moto (started like the tests start it).
//!
//! 1. **Listings**: for each size in `DYNAMO_BENCH_SIZES` (default 1,000 and 50,000 runs) a
//!    fresh table is seeded with `DynamoStore::bulk_load_flow_runs` (pre-encoded run items
//!    and tag entries by `BatchWriteItem`, 4 loaders at once: `create_flow_run` would take
//!    minutes per 10,000 runs on moto), then each common filter body (pages of
//!    `DYNAMO_BENCH_LIMIT`, default 200) is run once to warm up and once metered: items
//!    read (`ScannedCount` of each query page plus the items of each get), read capacity
//!    units by DynamoDB's rules, and the calls made.
//! 2. **One run's life** through the `Store` calls the service makes: `create_flow_run`
//!    (SCHEDULED, by the API), then `read_flow_run` + `update_flow_run` for PENDING (the
//!    submitter's claim), the infrastructure pid, RUNNING and COMPLETED (the engine's
//!    `set_state`s): write and read units per call by DynamoDB's rules, the writes to the
//!    global secondary indexes worked out from the run item before and after each write
//!    and the table's index definitions, and the bytes stored at the end.
//! 3. **One run's log**: pushpool's two submission lines (one `PutItem` each, as the
//!    submitter writes them) and the engine's lines of a small flow in two batches (as its
//!    `APILogHandler` sends them, every 2 s), then the read `prefect flow-run logs` makes
//!    (the run's lines, a page of 200): write and read units, bytes per line item.
//! 4. **One run's events**: pushpool's state change events of a run's four transitions
//!    (SCHEDULED, PENDING, RUNNING, COMPLETED) and the engine's events of a one-task flow
//!    (three `prefect.task-run.*` events with the task run in their payload, the pull step),
//!    one `PutItem` each as `/events/in` writes them, then a `/events/filter` read of the
//!    run's events (one `Query` of the day): write and read units, bytes per event item.
//! 5. **One run's task runs and event sockets** (the AWS path of `/events/in`): the task run
//!    recorder's writes for the three `prefect.task-run.*` events of one task
//!    (`Service::record_task_run_events`, as `/events/in` calls it), and the events
//!    function's own items: one engine connection (`$connect`, the auth message, a
//!    connection read per event message, `$disconnect`) and one fan-out batch (the query of
//!    the subscribers).
//!
//! ```text
//! cargo bench -p pushpool-store-dynamodb --bench costs
//! DYNAMO_BENCH_SIZES=1000,5000 cargo bench -p pushpool-store-dynamodb --bench costs
//! ```
//!
//! moto reports `ConsumedCapacity`, but fixed per call (0.5 per query, 1 per get, 1 per key
//! of a batch get, 2 per item of a transaction), not by size: its figures are printed beside
//! the computed ones (the "reported" columns) to show it, and the computed ones are what AWS
//! would charge.

#[path = "../tests/common/runs.rs"]
mod runs;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use pushpool_core::model::FlowRun;
use pushpool_core::orchestration::apply_state;
use pushpool_core::state::{State, StateType};
use pushpool_store::Store;
use pushpool_store_dynamodb::{DynamoStore, Usage, item_size};
use pushpool_tests::moto::MotoServer;
use serde_json::json;
use uuid::Uuid;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;
type Item = HashMap<String, AttributeValue>;

fn sizes() -> AnyResult<Vec<usize>> {
    Ok(match std::env::var("DYNAMO_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()?,
        Err(_) => vec![1_000, 50_000],
    })
}

fn limit() -> AnyResult<usize> {
    Ok(match std::env::var("DYNAMO_BENCH_LIMIT") {
        Ok(v) => v.parse()?,
        Err(_) => 200,
    })
}

async fn fresh(client: &aws_sdk_dynamodb::Client) -> AnyResult<DynamoStore> {
    let table = format!("pushpool-bench-{}", Uuid::new_v4());
    DynamoStore::create_table(client, &table).await?;
    Ok(DynamoStore::new(client.clone(), table))
}

/// A global secondary index: its key attributes and projected attributes.
struct Index {
    name: String,
    keys: Vec<String>,
    projected: Vec<String>,
}

async fn indexes(client: &aws_sdk_dynamodb::Client, table: &str) -> AnyResult<Vec<Index>> {
    let described = client.describe_table().table_name(table).send().await?;
    let t = described.table().ok_or("no table")?;
    Ok(t.global_secondary_indexes()
        .iter()
        .map(|g| Index {
            name: g.index_name().unwrap_or_default().to_owned(),
            keys: g
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect(),
            projected: g
                .projection()
                .map(|p| p.non_key_attributes().to_vec())
                .unwrap_or_default(),
        })
        .collect())
}

/// The index item `item` makes in `index`, if it is in it.
fn index_item(index: &Index, item: &Item) -> Option<Item> {
    if !index.keys.iter().all(|k| item.contains_key(k)) {
        return None;
    }
    let wanted = ["pk", "sk"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(index.keys.iter().cloned())
        .chain(index.projected.iter().cloned());
    Some(
        wanted
            .filter_map(|k| item.get(&k).map(|v| (k, v.clone())))
            .collect(),
    )
}

/// Write units the indexes take when the item goes from `before` to `after` (DynamoDB: a
/// new entry is a put, a removed one a delete, a changed key both, a changed projected
/// attribute a put; each 1 unit per KB of the index item).
fn index_writes(
    indexes: &[Index],
    before: Option<&Item>,
    after: Option<&Item>,
) -> (f64, Vec<String>) {
    let units = |i: &Item| (item_size(i).div_ceil(1024)).max(1) as f64;
    let mut total = 0.0;
    let mut touched = Vec::new();
    for index in indexes {
        let old = before.and_then(|b| index_item(index, b));
        let new = after.and_then(|a| index_item(index, a));
        let cost = match (&old, &new) {
            (None, None) => 0.0,
            (None, Some(n)) => units(n),
            (Some(o), None) => units(o),
            (Some(o), Some(n)) => {
                let key_changed = index.keys.iter().any(|k| o.get(k) != n.get(k));
                if key_changed {
                    units(o) + units(n)
                } else if o != n {
                    units(n)
                } else {
                    0.0
                }
            }
        };
        if cost > 0.0 {
            touched.push(format!("{} {cost}", index.name));
        }
        total += cost;
    }
    (total, touched)
}

async fn raw_run(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: Uuid,
) -> AnyResult<Option<Item>> {
    Ok(client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("RUN#{id}")))
        .key("sk", AttributeValue::S("RUN".into()))
        .consistent_read(true)
        .send()
        .await?
        .item)
}

async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> AnyResult<Vec<Item>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(out)
}

/// A typical run: a deployment's, in a pool and queue, one tag, small parameters.
fn typical_run() -> FlowRun {
    let at = Utc::now();
    let id = Uuid::now_v7();
    let mut run = FlowRun::new(id, Uuid::now_v7(), "crimson-otter".into(), at);
    run.deployment_id = Some(Uuid::now_v7());
    run.work_pool_name = Some("ecs-pool".into());
    run.work_queue_name = Some("default".into());
    run.tags = vec!["nightly".into()];
    run.parameters = json!({"day": "2026-11-30", "limit": 100})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut scheduled = State::new(StateType::Scheduled, at);
    scheduled.state_details.flow_run_id = Some(id);
    scheduled.state_details.scheduled_time = Some(at);
    apply_state(&mut run, scheduled, at);
    run
}

fn line(step: &str, u: &Usage, gsi: f64, touched: &[String]) -> String {
    format!(
        "| {step} | {} | {} | {:.1} | {gsi:.0} ({}) | {:.1} | {:.1} / {:.1} |",
        u.write_calls,
        u.items_written,
        u.write_units,
        if touched.is_empty() {
            "none".to_owned()
        } else {
            touched.join(", ")
        },
        u.read_units,
        u.reported_write_units,
        u.reported_read_units,
    )
}

async fn lifecycle(client: &aws_sdk_dynamodb::Client) -> AnyResult<()> {
    let store = fresh(client).await?.with_metering();
    let table = store.table().to_owned();
    let indexes = indexes(client, &table).await?;
    let run = typical_run();
    let id = run.id;
    println!(
        "\n| step (Store calls) | write calls | items written | table WCU | index WCU | RCU | moto-reported WCU / RCU |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut totals = (0.0, 0.0, 0.0, 0u64);
    let mut before: Option<Item> = None;
    let mut record = |step: &str, u: Usage, after: Option<Item>, before: &mut Option<Item>| {
        let (gsi, touched) = index_writes(&indexes, before.as_ref(), after.as_ref());
        println!("{}", line(step, &u, gsi, &touched));
        totals.0 += u.write_units;
        totals.1 += gsi;
        totals.2 += u.read_units;
        totals.3 += u.items_written;
        *before = after;
    };
    store.reset_usage();
    let (mut current, _) = store.create_flow_run(&run).await?;
    let after = raw_run(client, &table, id).await?;
    record("create (SCHEDULED)", store.usage(), after, &mut before);
    let steps: [(&str, Option<StateType>); 4] = [
        ("read + update: PENDING (claim)", Some(StateType::Pending)),
        ("read + update: infrastructure pid", None),
        ("read + update: RUNNING", Some(StateType::Running)),
        ("read + update: COMPLETED", Some(StateType::Completed)),
    ];
    for (step, to) in steps {
        store.reset_usage();
        let mut next = store.read_flow_run(id).await?;
        let now = Utc::now();
        match to {
            Some(t) => apply_state(&mut next, State::new(t, now), now),
            None => next.infrastructure_pid = Some(
                "arn:aws:ecs:us-east-1:123456789012:task/pushpool/0123456789abcdef0123456789abcdef"
                    .into(),
            ),
        }
        current = store.update_flow_run(&next).await?;
        let after = raw_run(client, &table, id).await?;
        record(step, store.usage(), after, &mut before);
    }
    let _ = current;
    println!(
        "| **total** | | {} | **{:.0}** | **{:.0}** | **{:.0}** | |",
        totals.3, totals.0, totals.1, totals.2
    );
    // Bytes stored.
    let items = scan(client, &table).await?;
    let mut by_kind: Vec<(String, usize, u64)> = Vec::new();
    for item in &items {
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let sk = item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let kind = match (
            pk.split('#').next().unwrap_or(""),
            sk.split('#').next().unwrap_or(""),
        ) {
            ("RUN", "RUN") => "run item",
            ("RUN", "STATE") => "state history item",
            ("STATE", _) => "state pointer",
            ("RUNTAG", _) => "tag listing entry",
            ("OUTBOX", _) => "outbox entry (7-day TTL)",
            ("COUNTER", _) | ("META", _) => continue,
            _ => "other",
        };
        match by_kind.iter_mut().find(|(k, _, _)| k == kind) {
            Some(e) => {
                e.1 += 1;
                e.2 += item_size(item);
            }
            None => by_kind.push((kind.to_owned(), 1, item_size(item))),
        }
    }
    let run_item = raw_run(client, &table, id).await?.ok_or("run")?;
    let mut index_bytes = 0;
    let mut index_count = 0;
    for index in &indexes {
        if let Some(i) = index_item(index, &run_item) {
            index_bytes += item_size(&i);
            index_count += 1;
        }
    }
    by_kind.push((
        "index entries of the run item".into(),
        index_count,
        index_bytes,
    ));
    println!("\n| stored for one COMPLETED run | items | bytes (DynamoDB item size) |");
    println!("|---|---|---|");
    let mut total = (0, 0);
    for (kind, count, bytes) in &by_kind {
        println!("| {kind} | {count} | {bytes} |");
        total.0 += count;
        total.1 += bytes;
    }
    println!("| **total** | {} | **{}** |", total.0, total.1);
    let body = run_item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .map_or(0, String::len);
    println!(
        "\nrun item: {} bytes, of which body {body}",
        item_size(&run_item)
    );
    if std::env::var("DYNAMO_BENCH_SHOW_ITEM").is_ok() {
        eprintln!("{run_item:#?}");
    }
    Ok(())
}

/// A run's log as the engine and pushpool write it: a small flow of one task (the lines the
/// engine of Prefect 3.9.1 sent for such a run in the team's recorded exchanges, plus the
/// flow's own `get_run_logger()` line).
fn run_log_batches(
    run: Uuid,
    task: Uuid,
) -> (
    Vec<pushpool_core::logs::Log>,
    Vec<Vec<pushpool_core::logs::Log>>,
) {
    let now = Utc::now();
    let mut at = 0;
    let mut line = |name: &str, level: i64, message: &str, task_run: Option<Uuid>| {
        at += 1;
        let t = now + Duration::milliseconds(at * 37);
        pushpool_core::logs::Log {
            id: Uuid::now_v7(),
            created: t,
            updated: t,
            name: name.into(),
            level,
            message: message.into(),
            timestamp: t,
            flow_run_id: Some(run),
            task_run_id: task_run,
        }
    };
    let pushpool = vec![
        line(
            "prefect.flow_runs.worker",
            20,
            "Submitting flow run to work pool 'ecs-pool' (ecs:push)",
            None,
        ),
        line(
            "prefect.flow_runs.worker",
            20,
            "Submitted to ECS task arn:aws:ecs:us-east-1:123456789012:task/pushpool/0123456789abcdef0123456789abcdef",
            None,
        ),
    ];
    let first = vec![
        line(
            "prefect.flow_runs",
            20,
            "Running 1 deployment pull step(s)",
            None,
        ),
        line(
            "prefect.flow_runs",
            20,
            "Executing deployment step: set_working_directory",
            None,
        ),
        line(
            "prefect.flow_runs",
            20,
            "Deployment step 'set_working_directory' completed successfully",
            None,
        ),
        line(
            "prefect.flow_runs",
            20,
            "All deployment steps completed successfully",
            None,
        ),
        line(
            "prefect.flow_runs",
            20,
            "Beginning flow run 'quiet-otter' for flow 'my-flow'",
            None,
        ),
    ];
    let second = vec![
        line(
            "prefect.flow_runs",
            20,
            "hello from pushpool: 41 + 1 = 42",
            None,
        ),
        line(
            "prefect.task_runs",
            20,
            "Finished in state Completed()",
            Some(task),
        ),
        line(
            "prefect.flow_runs",
            20,
            "Finished in state Completed()",
            None,
        ),
    ];
    (pushpool, vec![first, second])
}

async fn log_costs(client: &aws_sdk_dynamodb::Client) -> AnyResult<()> {
    let store = fresh(client).await?.with_metering();
    let retention = std::time::Duration::from_secs(30 * 86_400);
    let (run, task) = (Uuid::now_v7(), Uuid::now_v7());
    let (pushpool, batches) = run_log_batches(run, task);
    println!(
        "\n| one run's log (Store calls) | write calls | items written | WCU | RCU | bytes per item (min–max) |"
    );
    println!("|---|---|---|---|---|---|");
    let sizes = |lines: &[pushpool_core::logs::Log]| {
        let s: Vec<u64> = lines
            .iter()
            .map(|l| item_size(&pushpool_store_dynamodb::log_item_for_bench(l, retention)))
            .collect();
        format!(
            "{}–{}",
            s.iter().min().unwrap_or(&0),
            s.iter().max().unwrap_or(&0)
        )
    };
    let mut total = (0u64, 0u64, 0.0f64, 0.0f64);
    let mut row = |step: &str, u: Usage, bytes: String| {
        println!(
            "| {step} | {} | {} | {:.1} | {:.1} | {bytes} |",
            u.write_calls, u.items_written, u.write_units, u.read_units
        );
        total.0 += u.write_calls;
        total.1 += u.items_written;
        total.2 += u.write_units;
        total.3 += u.read_units;
    };
    store.reset_usage();
    for l in &pushpool {
        store
            .create_logs(std::slice::from_ref(l), retention)
            .await?;
    }
    row(
        "pushpool's 2 lines (`PutItem` each)",
        store.usage(),
        sizes(&pushpool),
    );
    for (i, batch) in batches.iter().enumerate() {
        store.reset_usage();
        store.create_logs(batch, retention).await?;
        row(
            &format!(
                "engine batch {} ({} lines, `BatchWriteItem`)",
                i + 1,
                batch.len()
            ),
            store.usage(),
            sizes(batch),
        );
    }
    store.reset_usage();
    let query = pushpool_store::LogQuery {
        filter: pushpool_core::logs::LogFilter {
            flow_run_id: Some(pushpool_core::logs::FlowRunIdFilter {
                any_: Some(vec![run]),
            }),
            ..Default::default()
        },
        page: pushpool_store::Page {
            offset: 0,
            limit: Some(200),
        },
        ..Default::default()
    };
    let read = store.read_logs(&query).await?;
    assert_eq!(read.len(), 10);
    row(
        "`prefect flow-run logs`: read the run's 10 lines (one `Query`)",
        store.usage(),
        String::new(),
    );
    println!(
        "| **total** | {} | {} | **{:.0}** | **{:.1}** | |",
        total.0, total.1, total.2, total.3
    );
    Ok(())
}

/// The events of one typical run: pushpool's four state change events and the engine's
/// four (three task run events shaped as Prefect 3.9.1's engine sends them, the pull step).
fn run_events() -> Vec<pushpool_core::events::Event> {
    use pushpool_core::events::{FlowRunContext, IncomingEvent, flow_run_state_change_event};
    let mut run = typical_run();
    let ctx = FlowRunContext {
        flow_name: Some("etl".into()),
        deployment_name: Some("etl-nightly".into()),
        work_pool_type: Some("ecs:push".into()),
    };
    run.work_pool_id = Some(Uuid::now_v7());
    run.work_queue_id = Some(Uuid::now_v7());
    let now = Utc::now();
    let mut out = Vec::new();
    let mut from = run.state.clone();
    out.push(flow_run_state_change_event(
        &run,
        None,
        from.as_ref().unwrap(),
        &ctx,
        now,
    ));
    for t in [StateType::Pending, StateType::Running, StateType::Completed] {
        let mut s = State::new(t, now);
        s.state_details.flow_run_id = Some(run.id);
        apply_state(&mut run, s.clone(), now);
        out.push(flow_run_state_change_event(
            &run,
            from.as_ref(),
            &s,
            &ctx,
            now,
        ));
        from = Some(s);
    }
    let task = Uuid::now_v7();
    let flow_run = format!("prefect.flow-run.{}", run.id);
    for (i, (name, ty)) in [
        ("Pending", "PENDING"),
        ("Running", "RUNNING"),
        ("Completed", "COMPLETED"),
    ]
    .into_iter()
    .enumerate()
    {
        let event = json!({
            "occurred": now.to_rfc3339(), "event": format!("prefect.task-run.{name}"),
            "id": Uuid::now_v7(), "follows": null,
            "resource": {"prefect.resource.id": format!("prefect.task-run.{task}"),
                "prefect.resource.name": "add-0b1", "prefect.run-count": if i == 0 { "0" } else { "1" },
                "prefect.state-message": "", "prefect.state-name": name,
                "prefect.state-timestamp": now.to_rfc3339(), "prefect.state-type": ty,
                "prefect.orchestration": "client"},
            "related": [
                {"prefect.resource.id": flow_run, "prefect.resource.role": "flow-run", "prefect.resource.name": "crimson-otter"},
                {"prefect.resource.id": format!("prefect.flow.{}", run.flow_id), "prefect.resource.role": "flow", "prefect.resource.name": "etl"},
                {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"}],
            "payload": {"intended": {"from": null, "to": ty},
                "initial_state": null,
                "validated_state": {"type": ty, "name": name, "message": "", "state_details": {}, "data": null},
                "task_run": {"name": "add-0b1", "task_key": "add-2b3c4d5e", "dynamic_key": "0",
                    "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0, "retry_delay": 0},
                    "tags": [], "labels": {}, "task_inputs": {"a": [], "b": []}, "run_count": i.min(1),
                    "flow_run_run_count": 1, "expected_start_time": now.to_rfc3339(),
                    "start_time": null, "end_time": null, "total_run_time": 0.0, "estimated_run_time": 0.0,
                    "estimated_start_time_delta": 0.0}}
        });
        let e: IncomingEvent = serde_json::from_value(event).unwrap();
        out.push(e.receive(now).unwrap());
    }
    let pull = json!({
        "occurred": now.to_rfc3339(), "event": "prefect.flow-run.pull-step.executed", "id": Uuid::now_v7(),
        "resource": {"prefect.resource.id": flow_run},
        "related": [], "payload": {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/etl"}}
    });
    let e: IncomingEvent = serde_json::from_value(pull).unwrap();
    out.push(e.receive(now).unwrap());
    out
}

async fn event_costs(client: &aws_sdk_dynamodb::Client) -> AnyResult<()> {
    let store = fresh(client).await?.with_metering();
    let retention = pushpool_store::DEFAULT_EVENT_RETENTION;
    let events = run_events();
    let sizes: Vec<u64> = events
        .iter()
        .map(|e| {
            pushpool_store_dynamodb::event_item_for_bench(e, retention)
                .map(|i| item_size(&i))
                .unwrap_or(0)
        })
        .collect();
    println!(
        "\n| one run's events (Store calls) | write calls | items written | WCU | RCU | bytes per item (min–max) |"
    );
    println!("|---|---|---|---|---|---|");
    let range = |s: &[u64]| {
        format!(
            "{}–{}",
            s.iter().min().unwrap_or(&0),
            s.iter().max().unwrap_or(&0)
        )
    };
    store.reset_usage();
    for e in &events[..4] {
        store
            .create_events(std::slice::from_ref(e), retention)
            .await?;
    }
    let a = store.usage();
    println!(
        "| pushpool's 4 state change events (`PutItem` each) | {} | {} | {:.1} | {:.1} | {} |",
        a.write_calls,
        a.items_written,
        a.write_units,
        a.read_units,
        range(&sizes[..4])
    );
    store.reset_usage();
    for e in &events[4..] {
        store
            .create_events(std::slice::from_ref(e), retention)
            .await?;
    }
    let b = store.usage();
    println!(
        "| the engine's 4 events (3 task run, pull step; `PutItem` each) | {} | {} | {:.1} | {:.1} | {} |",
        b.write_calls,
        b.items_written,
        b.write_units,
        b.read_units,
        range(&sizes[4..])
    );
    store.reset_usage();
    let mut filter = pushpool_core::events::EventFilter {
        any_resource: Some(pushpool_core::events::OneOrList::One(
            pushpool_core::events::AnyResourceFilter {
                id: Some(vec![events[0].resource_id().to_owned()]),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let now = Utc::now();
    filter.occurred.since = Some(now - Duration::hours(1));
    filter.occurred.until = Some(now + Duration::minutes(1));
    let read = store.read_events(&filter).await?;
    assert_eq!(read.len(), 8);
    let c = store.usage();
    println!(
        "| `/events/filter` of the run, last hour (one `Query` per day) | {} | {} | {:.1} | {:.1} | |",
        c.write_calls, c.items_written, c.write_units, c.read_units
    );
    println!(
        "| **total** | {} | {} | **{:.0}** | **{:.1}** | |",
        a.write_calls + b.write_calls + c.write_calls,
        a.items_written + b.items_written,
        a.write_units + b.write_units,
        a.read_units + b.read_units + c.read_units
    );
    Ok(())
}

async fn task_run_and_socket_costs(client: &aws_sdk_dynamodb::Client) -> AnyResult<()> {
    use pushpool_store_dynamodb::{EventSocket, SocketPhase, WsConnection};
    let store = fresh(client).await?.with_metering();
    let service = pushpool_service::Service::new(
        std::sync::Arc::new(store.clone()),
        pushpool_providers::Providers::new(),
        pushpool_service::ServiceConfig::default(),
    );
    let events = run_events();
    println!(
        "\n| one run's task runs and event socket (Store calls) | write calls | items written | WCU | read calls | RCU |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, u: &Usage| {
        println!(
            "| {name} | {} | {} | {:.1} | {} | {:.1} |",
            u.write_calls, u.items_written, u.write_units, u.read_calls, u.read_units
        );
    };
    store.reset_usage();
    for e in &events[4..7] {
        let raw = serde_json::to_value(e)?;
        assert_eq!(service.record_task_run_events(&[raw]).await, 1);
    }
    let t = store.usage();
    row(
        "task run recorder: 3 `prefect.task-run.*` events of one task",
        &t,
    );
    store.reset_usage();
    let mut c = WsConnection {
        id: "TWegAcC4EowCHnA=".into(),
        socket: EventSocket::In,
        phase: SocketPhase::Auth,
        filter: None,
        log_filter: None,
        expires_at: Utc::now() + Duration::minutes(130),
    };
    store.put_ws_connection(&c).await?;
    store.read_ws_connection(&c.id).await?;
    c.phase = SocketPhase::Open;
    store.put_ws_connection(&c).await?;
    for _ in 0..4 {
        store.read_ws_connection(&c.id).await?;
    }
    store.delete_ws_connection(&c.id).await?;
    let w = store.usage();
    row(
        "events function: one engine connection (`$connect`, auth, 4 events, `$disconnect`)",
        &w,
    );
    store.reset_usage();
    store.ws_subscribers().await?;
    let f = store.usage();
    row(
        "events function: one fan-out batch (subscribers query, none subscribed)",
        &f,
    );
    println!(
        "| **total** | {} | {} | **{:.0}** | {} | **{:.1}** |",
        t.write_calls + w.write_calls + f.write_calls,
        t.items_written + w.items_written + f.items_written,
        t.write_units + w.write_units + f.write_units,
        t.read_calls + w.read_calls + f.read_calls,
        t.read_units + w.read_units + f.read_units
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> AnyResult<()> {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let limit = limit()?;
    lifecycle(&client).await?;
    log_costs(&client).await?;
    event_costs(&client).await?;
    task_run_and_socket_costs(&client).await?;
    let deployments: Vec<Uuid> = (0..runs::DEPLOYMENTS).map(|_| Uuid::now_v7()).collect();
    let sizes = sizes()?;
    let mut table: Vec<(String, Vec<Usage>)> = Vec::new();
    for &n in &sizes {
        let store = fresh(&client).await?;
        let started = std::time::Instant::now();
        let all = runs::seeded_runs(n, &deployments);
        let mut loads = tokio::task::JoinSet::new();
        for chunk in all.chunks(n.div_ceil(4)) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            loads.spawn(async move { store.bulk_load_flow_runs(&chunk).await });
        }
        while let Some(done) = loads.join_next().await {
            done??;
        }
        eprintln!(
            "{n} runs seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let store = store.with_metering();
        for (i, (name, q, count)) in runs::bodies(deployments[1], limit).into_iter().enumerate() {
            let run = |store: DynamoStore, q: pushpool_store::FlowRunQuery| async move {
                if count {
                    store.count_flow_runs(&q).await.map(|_| ())
                } else {
                    store.list_flow_runs(&q).await.map(|_| ())
                }
            };
            run(store.clone(), q.clone()).await?;
            store.reset_usage();
            run(store.clone(), q).await?;
            if table.len() <= i {
                table.push((name.to_owned(), Vec::new()));
            }
            table[i].1.push(store.usage());
        }
    }
    println!(
        "\n| filter body (limit {limit}) | {} |",
        sizes
            .iter()
            .map(|n| format!("{n} runs: items read / RCU / calls (moto-reported RCU)"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(sizes.len()));
    for (name, cells) in table {
        println!(
            "| {name} | {} |",
            cells
                .iter()
                .map(|u| format!(
                    "{} / {:.1} / {} ({:.1})",
                    u.items_read, u.read_units, u.read_calls, u.reported_read_units
                ))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let _ = Duration::zero();
    Ok(())
}
