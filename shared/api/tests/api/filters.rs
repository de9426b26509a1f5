//! Prefect's filter routes, criterion by criterion: every criterion of Prefect 3.9.1's filter
//! bodies (listed from its OpenAPI document, `fixtures/openapi-filters.json`) is either
//! answered exactly (a case below with the exact expected rows) or refused with a 422 that
//! names it. [`every_prefect_criterion_has_a_case`] fails when Prefect defines a criterion
//! that no case below sends.
//!
//! The data set (times in UTC; "now" is when the test runs):
//!
//! | run | flow | deployment | pool | tags | state | expected start | start | end | other |
//! |---|---|---|---|---|---|---|---|---|---|
//! | alpha-one | etl | etl/nightly | alpha | nightly, prod | COMPLETED | 2026-01-01 01:00 | now | now | |
//! | alpha-two | etl | etl/nightly | alpha | nightly, prod, big | SCHEDULED | 2099-01-01 | – | – | next scheduled 2099-01-01, idempotency key `k2` |
//! | beta-one | report | report/weekly | beta | – | FAILED | 2026-01-01 02:00 | now¹ | now | |
//! | adhoc | orphan | – | – | adhoc | PENDING | now | – | – | flow version 1.0, parent task run P (a task run of alpha-one) |
//!
//! ¹ A run that ends without having run gets its end time as start time too (Prefect's
//! `SetEndTime`). Each "now" is later than the one before it in the table's order of events:
//! adhoc is created, then alpha-one is forced RUNNING and COMPLETED, then beta-one FAILED.
//!
//! Deployments: `etl/nightly` (pool alpha, tags nightly+prod, concurrency limit 2, queue
//! `default`), `report/weekly` (pool beta, paused, no tags, no limit, queue `default`).
//! Flows: `etl` (tag team-a), `report`, `orphan` (no deployment). Pools: `alpha`, `beta`
//! (process), `gamma` (docker). Block types `Alpha Creds` (`alpha-creds`) and `Beta Store`
//! (`beta-store`), one schema each (versions 1.0 / 2.0, capabilities `get-credentials` /
//! `read-path`, `write-path`); documents `one` (alpha-creds), `two` (beta-store) and an
//! anonymous one (alpha-creds).

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{app, detail, send};

/// What a case expects.
enum Expect {
    /// These names, in any order (the default sort orders by random ids).
    Names(&'static [&'static str]),
    /// These names, in this order.
    Ordered(&'static [&'static str]),
    /// A count.
    Count(u64),
    /// A 422 with this detail.
    Invalid(&'static str),
}

use Expect::{Count, Invalid, Names, Ordered};

/// One request of a filter route.
struct Case {
    route: &'static str,
    body: Value,
    expect: Expect,
}

fn case(route: &'static str, body: Value, expect: Expect) -> Case {
    Case {
        route,
        body,
        expect,
    }
}

/// Ids of the seeded resources, for criteria that take ids.
#[derive(Default)]
struct Seeded {
    ids: BTreeMap<&'static str, String>,
    /// Every id is the nil UUID (to list the paths the cases send, with no data).
    placeholders: bool,
}

impl Seeded {
    fn id(&self, name: &str) -> String {
        if self.placeholders {
            return uuid::Uuid::nil().to_string();
        }
        self.ids
            .get(name)
            .unwrap_or_else(|| panic!("no seeded {name}"))
            .clone()
    }
}

const PARENT_TASK_RUN: &str = "7d0b7a1e-0000-4000-8000-000000000001";

async fn ok(app: &Router, method: &str, path: &str, body: Value) -> Value {
    let (status, value) = send(app, method, path, Some(body)).await;
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

async fn force(app: &Router, run: &str, state: &str) {
    ok(
        app,
        "POST",
        &format!("/api/flow_runs/{run}/set_state"),
        json!({"state": {"type": state}, "force": true}),
    )
    .await;
}

async fn seed(app: &Router) -> Seeded {
    let mut s = Seeded::default();
    for (name, kind) in [
        ("alpha", "process"),
        ("beta", "process"),
        ("gamma", "docker"),
    ] {
        let pool = ok(
            app,
            "POST",
            "/api/work_pools/",
            json!({"name": name, "type": kind}),
        )
        .await;
        s.ids.insert(name, pool["id"].as_str().unwrap().to_owned());
    }
    for (name, tags) in [
        ("etl", json!(["team-a"])),
        ("report", json!([])),
        ("orphan", json!([])),
    ] {
        let flow = ok(
            app,
            "POST",
            "/api/flows/",
            json!({"name": name, "tags": tags}),
        )
        .await;
        s.ids.insert(name, flow["id"].as_str().unwrap().to_owned());
    }
    let nightly = ok(
        app,
        "POST",
        "/api/deployments/",
        json!({"name": "nightly", "flow_id": s.id("etl"), "work_pool_name": "alpha",
               "work_queue_name": "default", "tags": ["nightly", "prod"], "concurrency_limit": 2}),
    )
    .await;
    s.ids
        .insert("nightly", nightly["id"].as_str().unwrap().to_owned());
    let weekly = ok(
        app,
        "POST",
        "/api/deployments/",
        json!({"name": "weekly", "flow_id": s.id("report"), "work_pool_name": "beta",
               "work_queue_name": "default", "paused": true}),
    )
    .await;
    s.ids
        .insert("weekly", weekly["id"].as_str().unwrap().to_owned());

    let runs = [
        (
            "alpha-one",
            "nightly",
            json!([]),
            "2026-01-01T01:00:00Z",
            None,
        ),
        (
            "alpha-two",
            "nightly",
            json!(["big"]),
            "2099-01-01T00:00:00Z",
            Some("k2"),
        ),
        (
            "beta-one",
            "weekly",
            json!([]),
            "2026-01-01T02:00:00Z",
            None,
        ),
    ];
    for (name, deployment, tags, at, key) in runs {
        let run = ok(
            app,
            "POST",
            &format!("/api/deployments/{}/create_flow_run", s.id(deployment)),
            json!({"name": name, "tags": tags, "idempotency_key": key,
                   "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": at}}}),
        )
        .await;
        s.ids.insert(name, run["id"].as_str().unwrap().to_owned());
    }
    let adhoc = ok(
        app,
        "POST",
        "/api/flow_runs/",
        json!({"name": "adhoc", "flow_id": s.id("orphan"), "tags": ["adhoc"],
               "flow_version": "1.0", "parent_task_run_id": PARENT_TASK_RUN}),
    )
    .await;
    s.ids
        .insert("adhoc", adhoc["id"].as_str().unwrap().to_owned());
    // adhoc's parent task run P belongs to alpha-one (as a subflow's tracking task run).
    ok(
        app,
        "POST",
        "/api/task_runs/",
        json!({"id": PARENT_TASK_RUN, "flow_run_id": s.id("alpha-one"), "task_key": "child",
               "dynamic_key": "0", "name": "child-0"}),
    )
    .await;
    force(app, &s.id("alpha-one"), "RUNNING").await;
    force(app, &s.id("alpha-one"), "COMPLETED").await;
    force(app, &s.id("beta-one"), "FAILED").await;

    for (name, slug, version, capabilities) in [
        (
            "Alpha Creds",
            "alpha-creds",
            "1.0",
            json!(["get-credentials"]),
        ),
        (
            "Beta Store",
            "beta-store",
            "2.0",
            json!(["read-path", "write-path"]),
        ),
    ] {
        let block_type = ok(
            app,
            "POST",
            "/api/block_types/",
            json!({"name": name, "slug": slug}),
        )
        .await;
        let type_id = block_type["id"].as_str().unwrap().to_owned();
        let schema = ok(
            app,
            "POST",
            "/api/block_schemas/",
            json!({"block_type_id": type_id, "capabilities": capabilities, "version": version,
                   "fields": {"title": name, "type": "object", "properties": {"value": {"type": "string"}},
                              "block_type_slug": slug, "secret_fields": [], "block_schema_references": {}}}),
        )
        .await;
        s.ids.insert(slug, type_id);
        s.ids.insert(
            if slug == "alpha-creds" {
                "schema-1.0"
            } else {
                "schema-2.0"
            },
            schema["id"].as_str().unwrap().to_owned(),
        );
    }
    for (name, slug, schema, anonymous) in [
        (Some("one"), "alpha-creds", "schema-1.0", false),
        (Some("two"), "beta-store", "schema-2.0", false),
        (None, "alpha-creds", "schema-1.0", true),
    ] {
        let doc = ok(
            app,
            "POST",
            "/api/block_documents/",
            json!({"name": name, "block_type_id": s.id(slug), "block_schema_id": s.id(schema),
                   "is_anonymous": anonymous, "data": {"value": "x"}}),
        )
        .await;
        s.ids.insert(
            match name {
                Some("one") => "doc-one",
                Some(_) => "doc-two",
                None => "doc-anonymous",
            },
            doc["id"].as_str().unwrap().to_owned(),
        );
    }
    s
}

const RUNS: &str = "/api/flow_runs/filter";
const RUNS_COUNT: &str = "/api/flow_runs/count";
const RUNS_PAGES: &str = "/api/flow_runs/paginate";
const FLOWS: &str = "/api/flows/filter";
const FLOWS_COUNT: &str = "/api/flows/count";
const FLOWS_PAGES: &str = "/api/flows/paginate";
const DEPLOYMENTS: &str = "/api/deployments/filter";
const DEPLOYMENTS_COUNT: &str = "/api/deployments/count";
const DEPLOYMENTS_PAGES: &str = "/api/deployments/paginate";
const POOLS: &str = "/api/work_pools/filter";
const POOLS_COUNT: &str = "/api/work_pools/count";
const DOCS: &str = "/api/block_documents/filter";
const DOCS_COUNT: &str = "/api/block_documents/count";
const TYPES: &str = "/api/block_types/filter";
const SCHEMAS: &str = "/api/block_schemas/filter";

const ALL_RUNS: &[&str] = &["alpha-one", "alpha-two", "beta-one", "adhoc"];
const NO_TASK_RUNS: &str = "task_runs: filtering by task runs is not supported by pushpool yet";

fn cases(s: &Seeded) -> Vec<Case> {
    let id = |n: &str| s.id(n);
    vec![
        // -- flow_runs: FlowRunFilter
        case(RUNS, json!({}), Names(ALL_RUNS)),
        case(
            RUNS,
            json!({"flow_runs": {"id": {"any_": [id("alpha-one"), id("adhoc")]}}}),
            Names(&["alpha-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"id": {"not_any_": [id("alpha-one")]}}}),
            Names(&["alpha-two", "beta-one", "adhoc"]),
        ),
        case(RUNS, json!({"flow_runs": {"id": {"any_": []}}}), Names(&[])),
        case(
            RUNS,
            json!({"flow_runs": {"name": {"any_": ["adhoc", "nobody"]}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"name": {"like_": "ALPHA"}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"name": {"like_": "a_o"}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"all_": ["nightly", "big"]}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"any_": ["big", "adhoc"]}}}),
            Names(&["alpha-two", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"is_null_": true}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"operator": "or_", "is_null_": true, "any_": ["adhoc"]}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"deployment_id": {"any_": [id("weekly")]}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"deployment_id": {"is_null_": true}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"deployment_id": {"operator": "or_", "is_null_": true, "any_": [id("weekly")]}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"work_queue_name": {"any_": ["default"]}}}),
            Names(&["alpha-one", "alpha-two", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"work_queue_name": {"operator": "and_", "is_null_": true}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED", "PENDING"]}}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"name": {"any_": ["Scheduled"]}}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"name": {"not_any_": ["Completed"]}, "type": {"any_": ["COMPLETED", "PENDING"]}}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"operator": "or_", "name": {"any_": ["Failed"]}, "type": {"any_": ["PENDING"]}}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"state": {"type": {"any_": ["LATE"]}}}}),
            Invalid(
                "flow_runs.state.type.any_[0]: unknown variant `LATE`, expected one of `SCHEDULED`, `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `CRASHED`, `PAUSED`, `CANCELLING`",
            ),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"flow_version": {"any_": ["1.0"]}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"start_time": {"before_": "2026-01-01T01:30:00Z"}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"start_time": {"after_": "2098-12-31T00:00:00Z"}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"start_time": {"is_null_": false}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"end_time": {"is_null_": true}}}),
            Names(&["alpha-two", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"end_time": {"after_": "2026-01-02T00:00:00Z", "before_": "2098-01-01T00:00:00Z"}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"expected_start_time": {"after_": "2026-01-01T01:00:00Z", "before_": "2026-01-01T02:00:00Z"}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"expected_start_time": {"before_": "2026-01-01T01:59:59+00:00"}}}),
            Names(&["alpha-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"next_scheduled_start_time": {"after_": "2098-01-01T00:00:00Z"}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"next_scheduled_start_time": {"before_": "2098-01-01T00:00:00Z"}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"parent_flow_run_id": {"operator": "and_", "any_": [id("alpha-one")]}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"operator": "or_", "parent_flow_run_id": {"any_": [id("beta-one")]}, "name": {"any_": ["beta-one"]}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"parent_flow_run_id": {"any_": []}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"parent_task_run_id": {"any_": [PARENT_TASK_RUN]}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"parent_task_run_id": {"operator": "or_", "is_null_": false}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"idempotency_key": {"any_": ["k2"]}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"idempotency_key": {"not_any_": ["other"]}}}),
            Names(&["alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"created_by": {"operator": "and_", "id_": [id("nightly")], "type_": ["DEPLOYMENT"]}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"created_by": {"is_null_": true}}}),
            Names(ALL_RUNS),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"operator": "or_", "name": {"any_": ["adhoc"]}, "tags": {"all_": ["big"]}}}),
            Names(&["alpha-two", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"operator": "or_", "id": {}, "name": {"any_": ["nobody"]}}}),
            Names(ALL_RUNS),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"any_": ["nightly"], "none_": ["x"]}}}),
            Invalid(
                "flow_runs.tags.none_: unknown field `none_`, expected one of `operator`, `all_`, `any_`, `is_null_`",
            ),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"tags": {"any_": "nightly"}}}),
            Invalid("flow_runs.tags.any_: invalid type: string \"nightly\", expected a sequence"),
        ),
        case(
            RUNS,
            json!({"flow_runs": {"expected_start_time": {"before_": "yesterday"}}}),
            Invalid("flow_runs.expected_start_time.before_: input contains invalid characters"),
        ),
        // -- flow_runs: the related filters
        case(
            RUNS,
            json!({"flows": {"name": {"any_": ["report", "orphan"]}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flows": {"id": {"any_": [id("etl")]}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flows": {"id": {"not_any_": [id("etl")]}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flows": {"name": {"like_": "rep"}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"flows": {"tags": {"all_": ["team-a"]}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"flows": {"tags": {"operator": "and_", "is_null_": true}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"flows": {"deployment": {"operator": "and_", "is_null_": true}}}),
            Names(&["adhoc"]),
        ),
        case(
            RUNS,
            json!({"flows": {"operator": "or_", "deployment": {"is_null_": true}, "name": {"any_": ["report"]}}}),
            Names(&["beta-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"id": {"any_": [id("nightly")]}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"id": {"not_any_": [id("nightly")]}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"name": {"any_": ["weekly"]}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"name": {"like_": "NIGHT"}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"flow_or_deployment_name": {"like_": "repo"}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"paused": {"eq_": true}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"tags": {"all_": ["prod"]}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"tags": {"any_": ["none-such"]}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"deployments": {"tags": {"operator": "or_", "is_null_": true}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"work_queue_name": {"any_": ["default"]}}}),
            Names(&["alpha-one", "alpha-two", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"concurrency_limit": {"ge_": 1, "le_": 2}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"concurrency_limit": {"is_null_": true}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"deployments": {"operator": "or_", "paused": {"eq_": true}, "name": {"any_": ["nightly"]}}}),
            Names(&["alpha-one", "alpha-two", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"work_pools": {"name": {"any_": ["beta"]}}}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"work_pools": {"id": {"any_": [id("alpha")]}}}),
            Names(&["alpha-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"work_pools": {"type": {"any_": ["docker"]}}}),
            Names(&[]),
        ),
        case(
            RUNS,
            json!({"work_pools": {"operator": "or_", "type": {"any_": ["docker"]}, "name": {"any_": ["beta"]}}}),
            Names(&["beta-one"]),
        ),
        // Prefect joins runs to their work queue; `adhoc` has none.
        case(
            RUNS,
            json!({"work_pool_queues": {"name": {"any_": ["default"]}}}),
            Names(&["alpha-one", "alpha-two", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"work_pool_queues": {"name": {"startswith_": ["DEF"]}}, "work_pools": {"name": {"any_": ["beta"]}}, "limit": 1}),
            Names(&["beta-one"]),
        ),
        case(
            RUNS,
            json!({"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}),
            Invalid(NO_TASK_RUNS),
        ),
        case(
            RUNS,
            json!({"task_runs": null, "work_pool_queues": null, "flows": null, "sort": null, "limit": null, "offset": null}),
            Names(ALL_RUNS),
        ),
        case(
            RUNS,
            json!({"colour": "blue"}),
            Invalid(
                "colour: not a key of this route's body (Prefect's server would ignore it; pushpool refuses it)",
            ),
        ),
        case(
            FLOWS,
            // What `prefect flow-run ls` sends (the client's `read_flows` adds `work_queues`).
            json!({"flows": null, "flow_runs": {"id": {"any_": []}}, "task_runs": null, "deployments": null, "work_pools": null, "work_queues": null, "sort": null, "limit": null, "offset": 0}),
            Ordered(&[]),
        ),
        case(
            FLOWS,
            json!({"work_queues": {"name": {"any_": ["default"]}}}),
            Invalid(
                "work_queues: not a key of this route's body (Prefect's server would ignore it; pushpool refuses it)",
            ),
        ),
        // -- flow_runs: sorts, limit, offset
        case(
            RUNS,
            json!({"sort": "NAME_ASC"}),
            Ordered(&["adhoc", "alpha-one", "alpha-two", "beta-one"]),
        ),
        case(
            RUNS,
            json!({"sort": "NAME_DESC"}),
            Ordered(&["beta-one", "alpha-two", "alpha-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"sort": "EXPECTED_START_TIME_ASC"}),
            Ordered(&["alpha-one", "beta-one", "adhoc", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"sort": "EXPECTED_START_TIME_DESC"}),
            Ordered(&["alpha-two", "adhoc", "beta-one", "alpha-one"]),
        ),
        // adhoc was created (expected now) before alpha-one started, before beta-one failed.
        case(
            RUNS,
            json!({"sort": "START_TIME_ASC"}),
            Ordered(&["adhoc", "alpha-one", "beta-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"sort": "START_TIME_DESC"}),
            Ordered(&["alpha-two", "beta-one", "alpha-one", "adhoc"]),
        ),
        case(
            RUNS,
            json!({"sort": "NEXT_SCHEDULED_START_TIME_ASC", "flow_runs": {"name": {"any_": ["alpha-two", "beta-one"]}}}),
            Ordered(&["beta-one", "alpha-two"]),
        ),
        case(
            RUNS,
            json!({"sort": "END_TIME_DESC", "flow_runs": {"end_time": {"is_null_": false}}}),
            Names(&["alpha-one", "beta-one"]),
        ),
        case(RUNS, json!({"sort": "ID_DESC"}), Names(ALL_RUNS)),
        case(
            RUNS,
            json!({"sort": "OLDEST_FIRST"}),
            Invalid(
                "sort: unknown variant `OLDEST_FIRST`, expected one of `ID_DESC`, `START_TIME_ASC`, `START_TIME_DESC`, `EXPECTED_START_TIME_ASC`, `EXPECTED_START_TIME_DESC`, `NAME_ASC`, `NAME_DESC`, `NEXT_SCHEDULED_START_TIME_ASC`, `END_TIME_DESC`",
            ),
        ),
        case(
            RUNS,
            json!({"sort": "NAME_ASC", "limit": 2, "offset": 1}),
            Ordered(&["alpha-one", "alpha-two"]),
        ),
        case(RUNS, json!({"limit": 0}), Ordered(&[])),
        case(
            RUNS,
            json!({"limit": 201}),
            Invalid("Invalid limit: must be less than or equal to 200."),
        ),
        case(
            RUNS,
            json!({"limit": -1}),
            Invalid("Invalid limit: must be greater than or equal to 0."),
        ),
        case(
            RUNS,
            json!({"limit": 2.5}),
            Invalid("limit: 2.5 is not an integer"),
        ),
        case(
            RUNS,
            json!({"limit": "10"}),
            Invalid("limit: \"10\" is not an integer"),
        ),
        case(
            RUNS,
            json!({"offset": 9_223_372_036_854_775_808u64}),
            Invalid("offset: 9223372036854775808 is not an integer between -2^63 and 2^63 - 1"),
        ),
        case(
            RUNS,
            json!({"offset": -1}),
            Invalid("offset: must be greater than or equal to 0"),
        ),
        case(
            RUNS,
            json!({"offset": 9_223_372_036_854_775_807u64}),
            Ordered(&[]),
        ),
        case(
            RUNS,
            json!({"page": 2}),
            Invalid(
                "page: this route does not take this key (Prefect's body for it has no such field)",
            ),
        ),
        // -- count and paginate
        case(RUNS_COUNT, json!({}), Count(4)),
        case(
            RUNS_COUNT,
            json!({"flow_runs": {"tags": {"any_": ["nightly"]}}, "deployments": {"name": {"any_": ["nightly"]}}, "flows": {"name": {"any_": ["etl"]}}, "work_pools": {"name": {"any_": ["alpha"]}}}),
            Count(2),
        ),
        case(RUNS_COUNT, json!({"task_runs": {}}), Invalid(NO_TASK_RUNS)),
        case(RUNS_COUNT, json!({"work_pool_queues": {}}), Count(3)),
        case(
            RUNS_COUNT,
            json!({"work_pool_queues": {"name": {"any_": ["nope"]}}}),
            Count(0),
        ),
        // Prefect's UI sends its list's paging and sort with a count: the total is the same.
        case(
            RUNS_COUNT,
            json!({"limit": 1, "offset": 1, "sort": "NAME_ASC"}),
            Count(4),
        ),
        case(
            RUNS_PAGES,
            json!({"sort": "NAME_ASC", "limit": 3, "page": 2, "flows": {}, "flow_runs": {}, "deployments": null, "work_pools": null, "task_runs": null, "work_pool_queues": null}),
            Ordered(&["beta-one"]),
        ),
        case(
            RUNS_PAGES,
            json!({"page": 0}),
            Invalid("page: must be greater than or equal to 1"),
        ),
        case(
            RUNS_PAGES,
            json!({"offset": 0}),
            Invalid(
                "offset: this route does not take this key (Prefect's body for it has no such field)",
            ),
        ),
        // -- flows
        case(FLOWS, json!({}), Ordered(&["etl", "orphan", "report"])),
        case(
            FLOWS,
            json!({"sort": "NAME_DESC"}),
            Ordered(&["report", "orphan", "etl"]),
        ),
        case(
            FLOWS,
            json!({"sort": "CREATED_DESC"}),
            Ordered(&["orphan", "report", "etl"]),
        ),
        case(
            FLOWS,
            json!({"sort": "UPDATED_DESC"}),
            Ordered(&["orphan", "report", "etl"]),
        ),
        case(
            FLOWS,
            json!({"flows": {"deployment": {"is_null_": false}}}),
            Ordered(&["etl", "report"]),
        ),
        case(
            FLOWS,
            json!({"flow_runs": {"state": {"type": {"any_": ["FAILED", "PENDING"]}}}}),
            Ordered(&["orphan", "report"]),
        ),
        case(
            FLOWS,
            json!({"deployments": {"paused": {"eq_": false}}}),
            Ordered(&["etl"]),
        ),
        case(
            FLOWS,
            json!({"work_pools": {"name": {"any_": ["beta"]}}}),
            Ordered(&["report"]),
        ),
        case(
            FLOWS,
            json!({"deployments": {"name": {"any_": ["nightly"]}}, "work_pools": {"name": {"any_": ["beta"]}}}),
            Ordered(&[]),
        ),
        case(FLOWS, json!({"task_runs": {}}), Invalid(NO_TASK_RUNS)),
        case(
            FLOWS,
            json!({"work_pool_queues": {}}),
            Invalid(
                "work_pool_queues: this route does not take this key (Prefect's body for it has no such field)",
            ),
        ),
        case(
            FLOWS,
            json!({"limit": 1, "offset": 1}),
            Ordered(&["orphan"]),
        ),
        case(
            FLOWS_COUNT,
            json!({"flows": {"name": {"like_": "r"}}}),
            Count(2),
        ),
        case(
            FLOWS_PAGES,
            json!({"limit": 2, "page": 2}),
            Ordered(&["report"]),
        ),
        // -- deployments
        case(DEPLOYMENTS, json!({}), Ordered(&["nightly", "weekly"])),
        case(
            DEPLOYMENTS,
            json!({"sort": "NAME_DESC"}),
            Ordered(&["weekly", "nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"sort": "CREATED_DESC"}),
            Ordered(&["weekly", "nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"sort": "UPDATED_DESC"}),
            Ordered(&["weekly", "nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"flows": {"name": {"any_": ["report"]}}}),
            Ordered(&["weekly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}),
            Ordered(&["nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"work_pools": {"name": {"any_": ["alpha"]}}}),
            Ordered(&["nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"work_pool_queues": {"name": {"any_": ["default"]}}, "work_pools": {"name": {"any_": ["alpha"]}}}),
            Ordered(&["nightly"]),
        ),
        case(
            DEPLOYMENTS,
            json!({"work_pool_queues": {"name": {"any_": ["nope"]}}}),
            Ordered(&[]),
        ),
        case(DEPLOYMENTS, json!({"task_runs": {}}), Invalid(NO_TASK_RUNS)),
        case(DEPLOYMENTS, json!({"offset": 1}), Ordered(&["weekly"])),
        case(
            DEPLOYMENTS_COUNT,
            json!({"deployments": {"tags": {"is_null_": false}}}),
            Count(1),
        ),
        case(
            DEPLOYMENTS_PAGES,
            json!({"limit": 1, "page": 1}),
            Ordered(&["nightly"]),
        ),
        // -- work pools
        case(POOLS, json!({}), Ordered(&["alpha", "beta", "gamma"])),
        case(
            POOLS,
            json!({"work_pools": {"type": {"any_": ["process"]}}, "offset": 1, "limit": 5}),
            Ordered(&["beta"]),
        ),
        case(
            POOLS,
            json!({"work_pools": {"operator": "or_", "id": {"any_": [id("gamma")]}, "name": {"any_": ["alpha"]}}}),
            Ordered(&["alpha", "gamma"]),
        ),
        case(
            POOLS,
            json!({"work_pools": {"name": {"like_": "a"}}}),
            Invalid("work_pools.name.like_: unknown field `like_`, expected `any_`"),
        ),
        case(
            POOLS_COUNT,
            json!({"work_pools": {"type": {"any_": ["docker"]}}}),
            Count(1),
        ),
        case(
            POOLS_COUNT,
            json!({"offset": 0}),
            Invalid(
                "offset: this route does not take this key (Prefect's body for it has no such field)",
            ),
        ),
        // -- block documents, types, schemas
        case(DOCS, json!({}), Ordered(&["one", "two"])),
        case(
            DOCS,
            json!({"block_documents": {"is_anonymous": null}}),
            Ordered(&["<anonymous>", "one", "two"]),
        ),
        case(
            DOCS,
            json!({"block_documents": {"is_anonymous": {"eq_": true}}}),
            Ordered(&["<anonymous>"]),
        ),
        case(
            DOCS,
            json!({"block_documents": {"id": {"any_": [id("doc-two")]}}}),
            Ordered(&["two"]),
        ),
        case(
            DOCS,
            json!({"block_documents": {"block_type_id": {"any_": [id("alpha-creds")]}}}),
            Ordered(&["one"]),
        ),
        case(
            DOCS,
            json!({"block_documents": {"operator": "or_", "name": {"any_": ["two"]}, "id": {"any_": [id("doc-one")]}}}),
            Ordered(&["one", "two"]),
        ),
        case(
            DOCS,
            json!({"block_documents": {"name": {"like_": "N"}}}),
            Ordered(&["one"]),
        ),
        case(
            DOCS,
            json!({"block_types": {"slug": {"any_": ["beta-store"]}}}),
            Ordered(&["two"]),
        ),
        case(
            DOCS,
            json!({"block_types": {"name": {"like_": "alpha"}}}),
            Ordered(&["one"]),
        ),
        case(
            DOCS,
            json!({"block_schemas": {"operator": "and_", "block_capabilities": {"all_": ["read-path"]}}}),
            Ordered(&["two"]),
        ),
        case(
            DOCS,
            json!({"block_schemas": {"version": {"any_": ["1.0"]}}}),
            Ordered(&["one"]),
        ),
        case(
            DOCS,
            json!({"block_schemas": {"id": {"any_": [id("schema-2.0")]}}}),
            Ordered(&["two"]),
        ),
        case(
            DOCS,
            json!({"block_schemas": {"block_type_id": {"any_": [id("beta-store")]}}}),
            Ordered(&["two"]),
        ),
        case(DOCS, json!({"sort": "NAME_DESC"}), Ordered(&["two", "one"])),
        case(
            DOCS,
            json!({"sort": "BLOCK_TYPE_AND_NAME_ASC", "block_documents": {"is_anonymous": null}}),
            Ordered(&["<anonymous>", "one", "two"]),
        ),
        case(
            DOCS,
            json!({"sort": "NAME_ASC", "offset": 1, "limit": 1, "include_secrets": true}),
            Ordered(&["two"]),
        ),
        case(
            DOCS_COUNT,
            json!({"block_documents": {"is_anonymous": null}}),
            Count(3),
        ),
        case(
            DOCS_COUNT,
            json!({"include_secrets": false, "offset": 0, "sort": "NAME_ASC"}),
            Count(2),
        ),
        case(TYPES, json!({}), Ordered(&["Alpha Creds", "Beta Store"])),
        case(
            TYPES,
            json!({"block_types": {"slug": {"any_": ["beta-store"]}}}),
            Ordered(&["Beta Store"]),
        ),
        case(
            TYPES,
            json!({"block_types": {"name": {"like_": "creds"}}}),
            Ordered(&["Alpha Creds"]),
        ),
        case(
            TYPES,
            json!({"block_schemas": {"block_capabilities": {"all_": ["write-path"]}}, "offset": 0, "limit": 10}),
            Ordered(&["Beta Store"]),
        ),
        case(
            SCHEMAS,
            json!({"block_schemas": {"version": {"any_": ["2.0"]}}, "offset": 0, "limit": 10}),
            Ordered(&["2.0"]),
        ),
        case(SCHEMAS, json!({}), Ordered(&["2.0", "1.0"])),
    ]
}

/// The name a row is known by in the cases.
fn name_of(route: &str, row: &Value) -> String {
    let field = |f: &str| row[f].as_str().map(str::to_owned);
    if route == SCHEMAS {
        return field("version").unwrap_or_default();
    }
    if route == DOCS && row["is_anonymous"] == json!(true) {
        return "<anonymous>".into();
    }
    field("name").unwrap_or_default()
}

#[tokio::test]
async fn every_case_answers_exactly() {
    let app = app();
    let seeded = seed(&app).await;
    let mut failures = Vec::new();
    for c in cases(&seeded) {
        let (status, body) = send(&app, "POST", c.route, Some(c.body.clone())).await;
        let got = match (&c.expect, status) {
            (Invalid(_), StatusCode::UNPROCESSABLE_ENTITY) => Some(detail(&body).to_owned()),
            (Count(_), StatusCode::OK) => Some(body.to_string()),
            (Names(_) | Ordered(_), StatusCode::OK) => {
                let rows = body.get("results").unwrap_or(&body);
                let mut names: Vec<String> = rows
                    .as_array()
                    .unwrap_or_else(|| panic!("{} {}: not a list: {body}", c.route, c.body))
                    .iter()
                    .map(|r| name_of(c.route, r))
                    .collect();
                if matches!(c.expect, Names(_)) {
                    names.sort();
                }
                Some(format!("{names:?}"))
            }
            _ => None,
        };
        let want = match &c.expect {
            Invalid(d) => (*d).to_owned(),
            Count(n) => n.to_string(),
            Names(n) => {
                let mut n: Vec<String> = n.iter().map(|s| (*s).to_owned()).collect();
                n.sort();
                format!("{n:?}")
            }
            Ordered(n) => format!(
                "{:?}",
                n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
            ),
        };
        if got.as_deref() != Some(want.as_str()) {
            failures.push(format!(
                "{} {}\n    want: {want}\n    got:  {status} {}",
                c.route,
                c.body,
                got.unwrap_or_else(|| body.to_string())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn paginate_answers_prefects_envelope() {
    let app = app();
    seed(&app).await;
    let (status, body) = send(
        &app,
        "POST",
        RUNS_PAGES,
        Some(json!({"sort": "NAME_ASC", "limit": 3, "page": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 4);
    assert_eq!(body["limit"], 3);
    assert_eq!(body["pages"], 2);
    assert_eq!(body["page"], 2);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    let (_, body) = send(&app, "POST", FLOWS_PAGES, Some(json!({"limit": 0}))).await;
    assert_eq!(
        body,
        json!({"results": [], "count": 3, "limit": 0, "pages": 0, "page": 1})
    );
}

/// Every leaf criterion path Prefect's OpenAPI document defines for the filter routes
/// (`flow_runs.tags.all_`, `sort`, `limit`, ...), by route.
fn prefect_criteria() -> BTreeMap<String, BTreeSet<String>> {
    let doc: Value =
        serde_json::from_str(include_str!("../fixtures/openapi-filters.json")).unwrap();
    let schemas = &doc["components"]["schemas"];
    fn schema_ref(v: &Value) -> Option<String> {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            return Some(r.rsplit('/').next().unwrap().to_owned());
        }
        v.get("anyOf")?.as_array()?.iter().find_map(schema_ref)
    }
    fn walk(schemas: &Value, name: &str, prefix: &str, out: &mut BTreeSet<String>) {
        let props = schemas[name]["properties"].as_object();
        for (key, prop) in props.into_iter().flatten() {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match schema_ref(prop) {
                Some(r) if schemas[&r]["properties"].is_object() => walk(schemas, &r, &path, out),
                _ => {
                    out.insert(path);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (route, body) in doc["paths"].as_object().unwrap() {
        let mut leaves = BTreeSet::new();
        walk(schemas, body.as_str().unwrap(), "", &mut leaves);
        out.insert(format!("/api{route}"), leaves);
    }
    out
}

/// The leaf paths a body sends (an object sent empty counts for everything under it: it is
/// refused or matched as a whole).
fn sent_paths(body: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match body.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                sent_paths(v, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn every_prefect_criterion_has_a_case() {
    let seeded = Seeded {
        placeholders: true,
        ..Seeded::default()
    };
    let mut sent: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut refused_whole: BTreeSet<String> = BTreeSet::new();
    for c in cases(&seeded) {
        let mut paths = BTreeSet::new();
        sent_paths(&c.body, "", &mut paths);
        if let Invalid(d) = c.expect {
            // A 422 naming a path (`task_runs: ...`, `work_pool_queues: ...`)
            // covers every criterion under it: it is refused as a whole.
            if let Some((key, _)) = d.split_once(": ") {
                if paths
                    .iter()
                    .any(|p| p == key || p.starts_with(&format!("{key}.")))
                {
                    refused_whole.insert(key.to_owned());
                }
            }
        }
        sent.entry(c.route).or_default().extend(paths);
    }
    let union: BTreeSet<String> = sent.values().flatten().cloned().collect();
    let mut missing = Vec::new();
    for (route, leaves) in prefect_criteria() {
        // Every route has cases of its own; the criteria of a filter model shared by several
        // routes (one parser, `ListBody`) may be covered through any of them.
        if !sent.contains_key(route.as_str()) {
            missing.push(format!("{route}: no case at all"));
        }
        for leaf in leaves {
            let refused = refused_whole
                .iter()
                .any(|k| leaf == *k || leaf.starts_with(&format!("{k}.")));
            if !(refused || union.contains(&leaf)) {
                missing.push(format!("{route} {leaf}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "criteria with no case:\n{}",
        missing.join("\n")
    );
}
