//! The AWS shape end to end, in process: the API Lambda's router, the submitter Lambda fed
//! by the table's DynamoDB stream, and the reconciler Lambda's schedule, over one DynamoDB
//! table in moto, pushing to the spec-checked fake ECS.
//!
//! 1. moto (behind a proxy that runs one request at a time: see `pushpool_tests::serializing_proxy`) and the
//!    fake ECS start; `DynamoStore::create_table` makes the table.
//! 2. Through the router, with an API key as on AWS and the Prefect client's JSON bodies:
//!    an `ecs:push` pool, a flow, a deployment with Fargate job variables, then the flow runs
//!    ([`runs`]: 50 by default, `PUSHPOOL_E2E_RUNS=200` for the acceptance figure)
//!    (`POST /api/deployments/{id}/create_flow_run`, 8 clients at once).
//! 3. 10 submitters "die" between the claim and the pid write: their runs are claimed
//!    (SCHEDULED → PENDING, attempt 1, no pid) exactly as the service claims, ten minutes
//!    ago; for 5 of them the ECS task was already started with the run's idempotency key.
//! 4. The stream is read from moto (`aws-sdk-dynamodbstreams`), turned into Lambda's
//!    DynamoDB event JSON, filtered with the trigger's `FilterCriteria` (outbox inserts), cut
//!    into batches of 25, and every batch is delivered **twice at once** to
//!    `pushpool_submitter::handle` (an at-least-once redelivery racing the first delivery).
//!    The records the submitter's own writes add to the stream are delivered the same way.
//! 5. The reconciler gets two scheduled EventBridge events: the first finishes the 10 dead
//!    claims with their original keys, the second finds nothing to do.
//! 6. Exactly one ECS task exists per run, each run PENDING with its own task as
//!    infrastructure pid; every `RunTask` carried its run's idempotency key; no batch item
//!    failures; no breach of the ECS model.
//!
//! Time: about 40 s with 50 runs and 6–8 minutes with 200 on 2 cores, nearly all in moto. moto 5.2.5's
//! `TransactWriteItems` deep-copies the whole table, stream records included, once per item
//! of the transaction (its rollback snapshot), so each run write costs O(table size): about
//! 0.2 s per copy once the table holds the 200 runs. The flow makes about 600 such writes
//! (plus the claims that lose a race and are cancelled). The wall time of each phase is
//! printed (`--nocapture`).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use pushpool_api::auth::{AuthMode, generate_key, hash_key};
use pushpool_api::{AppState, router};
use pushpool_core::model::{ApiKey, FlowRun, WorkPool};
use pushpool_core::orchestration::{Decision, apply_state, orchestrate};
use pushpool_core::state::{State, StateType};
use pushpool_core::template::BaseJobTemplate;
use pushpool_provider_ecs::EcsProvider;
use pushpool_providers::{Provider, Providers};
use pushpool_service::{Service, ServiceConfig, build_job};
use pushpool_store::Store;
use pushpool_store_dynamodb::DynamoStore;
use pushpool_tests::fake_ecs::FakeEcs;
use pushpool_tests::moto::{MotoServer, test_sdk_config};
use serde_json::{Value, json};
use support::stream::{StreamFeed, submitter_batches};
use tower::ServiceExt;
use uuid::Uuid;

const TABLE: &str = "pushpool";
const POOL: &str = "ecs-pool";
/// Flow runs created: `PUSHPOOL_E2E_RUNS` (a multiple of 10), 50 by default. The issue's
/// acceptance figure is 200 (`PUSHPOOL_E2E_RUNS=200`, about 6½ minutes here: moto copies the
/// whole table for every transaction item, so the time grows with the square of the runs);
/// the default keeps the suite fast while exercising the same races.
fn runs() -> usize {
    std::env::var("PUSHPOOL_E2E_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n >= DEAD_CLAIMS && n % DEAD_CLAIMS == 0)
        .unwrap_or(50)
}
/// Runs whose submitter dies between the claim and the pid write (every 20th run).
const DEAD_CLAIMS: usize = 10;
/// Of those, how many had already started their ECS task.
const DEAD_AFTER_RUN_TASK: usize = 5;
/// API clients creating runs at once.
const API_CONCURRENCY: usize = 8;
/// The public URL the functions hand to jobs (`PUSHPOOL_PUBLIC_URL`).
const API_URL: &str = "https://pushpool.example.com/api";
const IMAGE: &str = "prefecthq/prefect:3-latest";
const SUBNET: &str = "subnet-0a1b2c3d4e5f60001";
const SECURITY_GROUP: &str = "sg-0a1b2c3d4e5f60001";
const CLAIM_MESSAGE: &str = "Submitting to work pool 'ecs-pool' (ecs:push)";

/// The API as a Prefect client reaches it: JSON bodies, the client's headers, a bearer key.
#[derive(Clone)]
struct Api {
    app: Router,
    key: String,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "prefect/3.9.1 (API 0.8.4)")
            .header("X-PREFECT-API-VERSION", "0.8.4")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("response body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.send("POST", path, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {value}");
        value
    }
}

/// The functions' `ServiceConfig` (`PUSHPOOL_PUBLIC_URL`, `PUSHPOOL_JOB_API_KEY`).
fn service_config(job_api_key: &str) -> ServiceConfig {
    ServiceConfig {
        api_url: API_URL.into(),
        api_key: Some(job_api_key.to_owned()),
        ..ServiceConfig::default()
    }
}

/// What a submitter that dies between its claim and its pid write leaves behind: the run
/// claimed at `at` exactly as `Service::submit` claims it (SCHEDULED → PENDING through the
/// orchestration rules, attempt + 1, no pid), written through the store.
async fn claim_then_die(
    store: &dyn Store,
    run: FlowRun,
    pool: &WorkPool,
    at: chrono::DateTime<Utc>,
) -> FlowRun {
    let mut claim = State::new(StateType::Pending, at).with_message(format!(
        "Submitting to work pool '{}' ({})",
        pool.name, pool.r#type
    ));
    claim.state_details.flow_run_id = Some(run.id);
    let mut claimed = run;
    claimed.submission_attempt += 1;
    claimed.infrastructure_pid = None;
    let Decision::Accept(state) = orchestrate(&claimed, claim, false, at) else {
        panic!("the claim of {} is not accepted", claimed.id);
    };
    apply_state(&mut claimed, state, at);
    store.update_flow_run(&claimed).await.expect("claim")
}

/// A scheduled EventBridge event, as the reconciler's rule delivers it.
fn tick() -> EventBridgeEvent<Value> {
    serde_json::from_value(json!({
        "version": "0",
        "id": Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/pushpool-reconciler-tick"],
        "detail": {}
    }))
    .expect("a scheduled event")
}

/// Delivery statistics of one drain of the stream.
#[derive(Debug, Default)]
struct Delivered {
    stream_records: usize,
    filtered_records: usize,
    batches: usize,
    invocations: usize,
    failures: Vec<String>,
}

/// Reads what the stream got since the last drain and delivers it to the submitter as its
/// event source mapping would, each batch twice at once.
async fn drain_to_submitter(feed: &mut StreamFeed, submitter: &Service) -> Delivered {
    let records = feed.read_new().await;
    let batches = submitter_batches(&records);
    let mut delivered = Delivered {
        stream_records: records.len(),
        ..Delivered::default()
    };
    for batch in batches {
        assert!(
            batch
                .records
                .iter()
                .all(|r| r.event_source_arn.as_deref() == Some(feed.arn())),
            "records name their stream"
        );
        delivered.batches += 1;
        delivered.filtered_records += batch.records.len();
        let (first, second) = tokio::join!(
            pushpool_submitter::handle(submitter, batch.clone()),
            pushpool_submitter::handle(submitter, batch),
        );
        for response in [first, second] {
            delivered.invocations += 1;
            delivered.failures.extend(
                response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier.unwrap_or_default()),
            );
        }
    }
    delivered
}

fn env_of(task: &aws_sdk_ecs::types::Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_through_api_stream_submitter_and_reconciler_starts_exactly_one_task() {
    let started = Instant::now();
    let mut phases: Vec<(&str, Duration)> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |name: &'static str, phases: &mut Vec<(&str, Duration)>| {
        phases.push((name, lap.elapsed()));
        lap = Instant::now();
    };

    // 1. moto, the fake ECS, the table.
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .expect("start moto");
    let fake = FakeEcs::start().await;
    let endpoint = pushpool_tests::serializing_proxy::serializing_proxy(&moto.endpoint).await;
    let aws = test_sdk_config(&endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    DynamoStore::create_table(&dynamodb, TABLE)
        .await
        .expect("create the table");
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb, TABLE));
    let mut feed = StreamFeed::open(&aws, TABLE).await;
    mark("setup", &mut phases);

    // 2. The three functions, wired as their `main`s wire them.
    let job_api_key = generate_key();
    let api_key = generate_key();
    store
        .create_api_key(&ApiKey {
            id: Uuid::new_v4(),
            name: "e2e".into(),
            hash: hash_key(&api_key),
            created: Utc::now(),
            revoked: false,
        })
        .await
        .expect("create the API key");
    let api = Api {
        app: router(
            AppState::new(Service::new(
                Arc::clone(&store),
                Providers::new(),
                service_config(&job_api_key),
            ))
            .with_auth(AuthMode::Required),
        ),
        key: api_key,
    };
    let function = |store: &Arc<dyn Store>, ecs: Arc<EcsProvider>| {
        Service::new(
            Arc::clone(store),
            Providers::new().with("ecs:push", ecs),
            service_config(&job_api_key),
        )
    };
    let submitter = function(&store, Arc::new(EcsProvider::new(fake.sdk_config().await)));
    let reconciler = function(&store, Arc::new(EcsProvider::new(fake.sdk_config().await)));

    // Unauthenticated requests are refused, as on AWS.
    let anonymous = Api {
        key: "pp_not-a-key".into(),
        ..api.clone()
    };
    let (status, _) = anonymous
        .send("POST", "/api/flows/", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // 3. Pool, flow, deployment and 200 runs through the API.
    let template = pushpool_core::pool_types::pool_type("ecs:push")
        .expect("the ecs:push pool type")
        .default_base_job_template();
    let pool = api
        .create(
            "/api/work_pools/",
            json!({"name": POOL, "type": "ecs:push", "base_job_template": template}),
        )
        .await;
    assert_eq!(pool["type"], "ecs:push");
    let flow = api
        .create(
            "/api/flows/",
            json!({"name": "etl", "tags": [], "labels": {}}),
        )
        .await;
    let deployment = api
        .create(
            "/api/deployments/",
            json!({
                "name": "nightly",
                "flow_id": flow["id"],
                "paused": false,
                "schedules": [],
                "concurrency_limit": null,
                "concurrency_options": null,
                "enforce_parameter_schema": true,
                "parameter_openapi_schema": {"title": "Parameters", "type": "object", "properties": {
                    "x": {"default": 1, "position": 0, "title": "x", "type": "integer"}
                }},
                "parameters": {"x": 1},
                "tags": [],
                "labels": {},
                "pull_steps": [],
                "work_queue_name": null,
                "work_pool_name": POOL,
                "storage_document_id": null,
                "infrastructure_document_id": null,
                "description": null,
                "path": ".",
                "entrypoint": "flows/etl.py:etl",
                "job_variables": {
                    "image": IMAGE,
                    "cluster": "flows",
                    "cpu": 256,
                    "memory": 512,
                    "network_configuration": {
                        "subnets": [SUBNET],
                        "securityGroups": [SECURITY_GROUP],
                        "assignPublicIp": "DISABLED"
                    }
                },
                "version": "8cdc90c1971aa48af4305d523b95c6c9",
                "version_info": {"type": "prefect:simple", "version": "8cdc90c1971aa48af4305d523b95c6c9"}
            }),
        )
        .await;
    let deployment_id: Uuid = deployment["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the deployment's id");
    mark("api: pool, flow, deployment", &mut phases);

    let limit = Arc::new(tokio::sync::Semaphore::new(API_CONCURRENCY));
    let mut creating = tokio::task::JoinSet::new();
    for x in 0..runs() {
        let api = api.clone();
        let limit = Arc::clone(&limit);
        creating.spawn(async move {
            let _turn = limit.acquire_owned().await.expect("semaphore");
            let scheduled = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            let run = api
                .create(
                    &format!("/api/deployments/{deployment_id}/create_flow_run"),
                    json!({
                        "state": {"type": "SCHEDULED", "name": "Scheduled", "message": null,
                            "state_details": {"scheduled_time": scheduled, "traceparent": null},
                            "data": null},
                        "name": null,
                        "parameters": {"x": x},
                        "context": {},
                        "tags": [],
                        "idempotency_key": null,
                        "parent_task_run_id": null,
                        "job_variables": {},
                        "labels": {}
                    }),
                )
                .await;
            assert_eq!(run["state_type"], "SCHEDULED");
            assert_eq!(run["work_pool_name"], POOL);
            (
                x,
                run["id"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .expect("the run's id"),
            )
        });
    }
    let mut ids = vec![Uuid::nil(); runs()];
    while let Some(created) = creating.join_next().await {
        let (x, id) = created.expect("create a run");
        ids[x] = id;
    }
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), runs());
    mark("api: flow runs", &mut phases);

    // 4. Submitters that died between the claim and the pid write.
    let pool = store.read_work_pool(POOL).await.expect("the pool");
    let template = BaseJobTemplate::parse(&pool.base_job_template).expect("the template");
    let deployment = store
        .read_deployment(deployment_id)
        .await
        .expect("the deployment");
    let long_ago = Utc::now() - chrono::Duration::minutes(10);
    assert!(
        Utc::now() - long_ago
            > chrono::Duration::from_std(ServiceConfig::default().claim_deadline).unwrap()
    );
    let dead: Vec<Uuid> = ids.iter().step_by(runs() / DEAD_CLAIMS).copied().collect();
    assert_eq!(dead.len(), DEAD_CLAIMS);
    let crash_ecs = EcsProvider::new(fake.sdk_config().await);
    let mut started_before_dying: BTreeMap<Uuid, String> = BTreeMap::new();
    for (i, id) in dead.iter().enumerate() {
        let run = store.read_flow_run(*id).await.expect("read the run");
        let claimed = claim_then_die(store.as_ref(), run, &pool, long_ago).await;
        assert_eq!(claimed.submission_attempt, 1);
        assert_eq!(claimed.infrastructure_pid, None);
        if i < DEAD_AFTER_RUN_TASK {
            let job = build_job(
                store.as_ref(),
                &pool,
                &template,
                Some(&deployment),
                &claimed,
                API_URL,
                Some(&job_api_key),
            )
            .await
            .expect("the job the service would build");
            assert_eq!(job.idempotency_key, format!("pushpool-{id}-1"));
            let arn = crash_ecs.submit(&job).await.expect("RunTask before dying");
            started_before_dying.insert(*id, arn);
        }
    }
    assert_eq!(fake.task_arns().len(), DEAD_AFTER_RUN_TASK);
    mark("dead claims", &mut phases);

    // 5. The stream, to the submitter: every batch twice at once.
    let creations = drain_to_submitter(&mut feed, &submitter).await;
    // One outbox insert per run write: 200 creations and the 10 dead claims.
    assert_eq!(creations.filtered_records, runs() + DEAD_CLAIMS);
    assert_eq!(creations.batches, (runs() + DEAD_CLAIMS).div_ceil(25));
    assert_eq!(creations.invocations, 2 * creations.batches);
    assert_eq!(creations.failures, Vec::<String>::new());
    assert_eq!(
        fake.task_arns().len(),
        runs() - DEAD_CLAIMS + DEAD_AFTER_RUN_TASK
    );
    mark("stream -> submitter (creations)", &mut phases);

    // The submitter's own writes (claim and pid of 190 runs) come back through the stream;
    // they ask for nothing.
    let own_writes = drain_to_submitter(&mut feed, &submitter).await;
    assert_eq!(own_writes.filtered_records, 2 * (runs() - DEAD_CLAIMS));
    assert_eq!(own_writes.failures, Vec::<String>::new());
    assert_eq!(
        fake.task_arns().len(),
        runs() - DEAD_CLAIMS + DEAD_AFTER_RUN_TASK
    );
    mark("stream -> submitter (its own writes)", &mut phases);

    // 6. The reconciler's schedule: the dead claims are finished with their own keys.
    let first = pushpool_reconciler::handle(&reconciler, tick())
        .await
        .expect("first tick");
    assert_eq!(first.acted, DEAD_CLAIMS, "{first:?}");
    let second = pushpool_reconciler::handle(&reconciler, tick())
        .await
        .expect("second tick");
    assert_eq!(second.acted, 0, "{second:?}");
    let after_reconciler = drain_to_submitter(&mut feed, &submitter).await;
    assert_eq!(after_reconciler.filtered_records, DEAD_CLAIMS);
    assert_eq!(after_reconciler.failures, Vec::<String>::new());
    mark("reconciler x2 + stream", &mut phases);

    // 7. Exactly one task per run.
    let tasks = fake.task_arns();
    assert_eq!(tasks.len(), runs());
    let mut pid_of: HashMap<Uuid, String> = HashMap::new();
    for id in &ids {
        let run = store.read_flow_run(*id).await.expect("read the run");
        assert_eq!(run.state_type, Some(StateType::Pending), "run {id}");
        assert_eq!(run.state_name.as_deref(), Some("Pending"), "run {id}");
        assert_eq!(
            run.state.as_ref().and_then(|s| s.message.as_deref()),
            Some(CLAIM_MESSAGE),
            "run {id}"
        );
        assert_eq!(run.submission_attempt, 1, "run {id}");
        assert_eq!(run.submission_key(), format!("pushpool-{id}-1"));
        let pid = run
            .infrastructure_pid
            .unwrap_or_else(|| panic!("run {id} has no infrastructure pid"));
        assert!(
            pid.starts_with("arn:aws:ecs:us-east-1:123456789012:task/flows/"),
            "run {id}: {pid}"
        );
        pid_of.insert(*id, pid);
    }
    let pids: BTreeSet<&String> = pid_of.values().collect();
    assert_eq!(pids.len(), runs(), "every run has its own task");
    assert_eq!(pids, tasks.iter().collect::<BTreeSet<_>>());
    for (id, arn) in &started_before_dying {
        assert_eq!(
            &pid_of[id], arn,
            "run {id} kept the task it started before dying"
        );
    }

    // Every RunTask carried its run's key: 190 by the submitter, 5 before dying, 10 by the
    // reconciler (5 of them answered with the task the key had already started).
    let run_tasks = fake.requests("RunTask");
    assert_eq!(run_tasks.len(), runs() + DEAD_AFTER_RUN_TASK);
    let mut by_token: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for request in &run_tasks {
        let token = request["clientToken"]
            .as_str()
            .expect("every RunTask has a clientToken");
        by_token.entry(token.to_owned()).or_default().push(request);
    }
    let expected_tokens: BTreeSet<String> =
        ids.iter().map(|id| format!("pushpool-{id}-1")).collect();
    assert_eq!(
        by_token.keys().cloned().collect::<BTreeSet<_>>(),
        expected_tokens
    );
    for (token, requests) in &by_token {
        let id = token
            .strip_prefix("pushpool-")
            .and_then(|t| t.strip_suffix("-1"))
            .and_then(|t| t.parse::<Uuid>().ok())
            .expect("a token names its run");
        let expected = if started_before_dying.contains_key(&id) {
            2
        } else {
            1
        };
        assert_eq!(requests.len(), expected, "RunTask calls with {token}");
        assert!(
            requests.windows(2).all(|w| w[0] == w[1]),
            "a retry sends the same request"
        );
        let request = requests[0];
        assert_eq!(request["cluster"], "flows");
        assert_eq!(request["launchType"], "FARGATE");
        assert_eq!(request["startedBy"], "pushpool");
        assert_eq!(
            request["networkConfiguration"],
            json!({"awsvpcConfiguration": {
                "subnets": [SUBNET], "securityGroups": [SECURITY_GROUP], "assignPublicIp": "DISABLED"
            }})
        );
        assert_eq!(request["overrides"]["cpu"], "256");
        assert_eq!(request["overrides"]["memory"], "512");
    }
    assert_eq!(
        fake.requests("RegisterTaskDefinition").len(),
        1,
        "one revision, reused"
    );

    // Each run's pid is the task started for that run.
    let ecs = aws_sdk_ecs::Client::new(&fake.sdk_config().await);
    let mut described = 0;
    for chunk in ids.chunks(100) {
        let out = ecs
            .describe_tasks()
            .cluster("flows")
            .set_tasks(Some(chunk.iter().map(|id| pid_of[id].clone()).collect()))
            .send()
            .await
            .expect("DescribeTasks");
        assert_eq!(out.failures(), &[]);
        for task in out.tasks() {
            let arn = task.task_arn().expect("a task ARN");
            let run = chunk
                .iter()
                .find(|id| pid_of[*id] == arn)
                .expect("a described task is one asked for");
            assert_eq!(env_of(task, "PREFECT__FLOW_RUN_ID"), Some(run.to_string()));
            assert_eq!(env_of(task, "PREFECT_API_URL").as_deref(), Some(API_URL));
            assert_eq!(task.started_by(), Some("pushpool"));
            described += 1;
        }
    }
    assert_eq!(described, runs());
    assert_eq!(fake.violations(), Vec::<String>::new());
    mark("assertions", &mut phases);

    let total = started.elapsed();
    for (name, took) in &phases {
        eprintln!("aws_shape_e2e: {name:<40} {took:>10.2?}");
    }
    eprintln!(
        "aws_shape_e2e: whole flow ({} runs, {} stream records read) took {total:.2?}",
        runs(),
        creations.stream_records + own_writes.stream_records + after_reconciler.stream_records
    );
    drop(moto);
}
