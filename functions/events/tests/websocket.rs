//! The events function offline: API Gateway WebSocket events (the fixtures in
//! `tests/fixtures`, in the shape Lambda delivers them) drive its handler over a DynamoDB
//! table in moto, and its posts go to a fake API Gateway Management API.
//!
//! The fake: moto 5's `apigatewaymanagementapi` accepts `PostToConnection` for any id (it
//! never answers 410 Gone) and offers no way to read what was posted, so the test serves
//! the published API's shape itself (Amazon API Gateway Management API reference:
//! `POST /@connections/{connectionId}` with the raw message as body, `DELETE
//! /@connections/{connectionId}`, 200 with an empty body; an unknown connection is 410 with
//! `x-amzn-ErrorType: GoneException`, restJson1), behind the stage path, and records every
//! call. The DynamoDB stream is moto's, read as Lambda's event source mapping would deliver
//! it (`functions/submitter/tests/support/stream.rs`) and filtered with the mapping's
//! `FilterCriteria` of `infra/template.yaml`.

#[allow(dead_code)]
#[path = "../../submitter/tests/support/stream.rs"]
mod stream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use chrono::{Duration, Utc};
use pushpool_api::auth::hash_key;
use pushpool_core::events::{Event, EventFilter};
use pushpool_core::logs::Log;
use pushpool_core::model::ApiKey;
use pushpool_core::state::StateType;
use pushpool_events_function::EventsFunction;
use pushpool_providers::Providers;
use pushpool_service::{Service, ServiceConfig};
use pushpool_store::Store;
use pushpool_store_dynamodb::{DynamoStore, EventSocket, SocketPhase};
use pushpool_tests::moto::{MotoServer, test_sdk_config};
use serde_json::{Value, json};
use uuid::Uuid;

const TABLE: &str = "pushpool-events";
const KEY: &str = "pp_0123456789abcdefghijklmnopqrstuvwxyzABCD";
/// The events function's `FilterCriteria` patterns in `infra/template.yaml` (a record
/// passes when it matches one): event items' and log items' `INSERT`s.
const STREAM_FILTERS: [&str; 2] = [
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"EVENT#"}]}}}}"#,
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"LOG#"}]}}}}"#,
];

/// One call to the fake Management API.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Post(String, Value),
    Delete(String),
}

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    gone: Arc<Mutex<HashSet<String>>>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

async fn management(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.contains("/us-east-1/execute-api/aws4_request") {
        fake.violations
            .lock()
            .unwrap()
            .push(format!("not signed for execute-api: {auth:?}"));
    }
    if fake.gone.lock().unwrap().contains(&id) {
        return (
            StatusCode::GONE,
            [("x-amzn-ErrorType", "GoneException")],
            r#"{"message":null}"#.into(),
        );
    }
    let call = match method {
        Method::POST => Call::Post(
            id,
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        ),
        Method::DELETE => Call::Delete(id),
        other => {
            fake.violations
                .lock()
                .unwrap()
                .push(format!("unexpected method {other}"));
            return (
                StatusCode::BAD_REQUEST,
                [("x-amzn-ErrorType", "BadRequestException")],
                "{}".into(),
            );
        }
    };
    fake.calls.lock().unwrap().push(call);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        String::new(),
    )
}

struct Harness {
    _moto: MotoServer,
    function: EventsFunction,
    store: Arc<DynamoStore>,
    service: Service,
    fake: Fake,
    feed: stream::StreamFeed,
}

async fn harness() -> Harness {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .expect("start moto");
    let aws = test_sdk_config(&moto.endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    DynamoStore::create_table(&dynamodb, TABLE)
        .await
        .expect("create the table");
    let store = Arc::new(DynamoStore::new(dynamodb, TABLE));
    store
        .create_api_key(&ApiKey {
            id: Uuid::new_v4(),
            name: "ci".into(),
            hash: hash_key(KEY),
            created: Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let fake = Fake::default();
    let app = Router::new()
        .route("/events/@connections/{id}", any(management))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let management = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&aws)
            .endpoint_url(format!("http://{addr}/events"))
            .build(),
    );
    let service = Service::new(store.clone(), Providers::new(), ServiceConfig::default());
    let feed = stream::StreamFeed::open(&aws, TABLE).await;
    Harness {
        _moto: moto,
        function: EventsFunction::new(service.clone(), store.clone(), management),
        store,
        service,
        fake,
        feed,
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn connect(id: &str, stream: &str, authorization: Option<&str>) -> Value {
    let mut e = fixture("connect");
    e["requestContext"]["connectionId"] = json!(id);
    e["queryStringParameters"] = json!({"stream": stream});
    e["multiValueQueryStringParameters"] = json!({"stream": [stream]});
    if let Some(a) = authorization {
        e["headers"]["Authorization"] = json!(a);
        e["multiValueHeaders"]["Authorization"] = json!([a]);
    }
    e
}

fn message(id: &str, body: &Value) -> Value {
    let mut e = fixture("default");
    e["requestContext"]["connectionId"] = json!(id);
    e["body"] = json!(body.to_string());
    e
}

fn disconnect(id: &str) -> Value {
    let mut e = fixture("disconnect");
    e["requestContext"]["connectionId"] = json!(id);
    e
}

fn ok() -> Value {
    json!({"statusCode": 200, "body": ""})
}

fn closed(id: &str, code: u16, reason: &str) -> Vec<Call> {
    vec![
        Call::Post(
            id.into(),
            json!({"type": "close", "code": code, "reason": reason}),
        ),
        Call::Delete(id.into()),
    ]
}

fn auth_success(id: &str) -> Call {
    Call::Post(id.into(), json!({"type": "auth_success"}))
}

/// A task run's `Running` event as Prefect's engine emits it
/// (`emit_task_run_state_change_event`), without a flow run.
fn task_run_event(task_run_id: Uuid, event_id: Uuid, occurred: chrono::DateTime<Utc>) -> Value {
    json!({
        "occurred": occurred.to_rfc3339(),
        "event": "prefect.task-run.Running",
        "resource": {"prefect.resource.id": format!("prefect.task-run.{task_run_id}"),
                     "prefect.resource.name": "add-0", "prefect.state-name": "Running",
                     "prefect.state-type": "RUNNING"},
        "related": [],
        "payload": {
            "intended": {"from": "PENDING", "to": "RUNNING"},
            "initial_state": {"type": "PENDING", "name": "Pending", "message": ""},
            "validated_state": {"type": "RUNNING", "name": "Running", "message": "",
                                "state_details": {}, "data": null},
            "task_run": {"name": "add-0", "task_key": "flows.add-4b1d", "dynamic_key": "0",
                         "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0,
                                              "retries": 0, "retry_delay": 0},
                         "tags": [], "labels": {}, "task_inputs": {},
                         "run_count": 1, "flow_run_run_count": 0,
                         "expected_start_time": occurred.to_rfc3339(),
                         "start_time": occurred.to_rfc3339(), "total_run_time": 0.0}
        },
        "id": event_id.to_string(),
        "follows": null,
    })
}

#[tokio::test]
async fn events_in_authenticates_stores_events_and_records_task_runs() {
    let h = harness().await;
    let f = &h.function;

    // `stream` names the socket; anything else is refused before a connection exists.
    assert_eq!(
        f.handle(connect("c0", "sideways", None)).await.unwrap(),
        json!({"statusCode": 400, "body": "stream: expected ?stream=in, ?stream=out or ?stream=logs"})
    );
    // A header is checked on the upgrade, as the HTTP API checks it.
    assert_eq!(
        f.handle(connect("c0", "in", Some("Bearer pp_wrong")))
            .await
            .unwrap(),
        json!({"statusCode": 401, "body": "Invalid API key."})
    );
    assert_eq!(h.store.read_ws_connection("c0").await.unwrap(), None);

    // Without a header, `/events/in` is refused on the upgrade (Prefect's events client sends
    // `Basic` of its auth string whenever it has one, and tolerates a refused upgrade).
    assert_eq!(
        f.handle(connect("c0", "in", None)).await.unwrap(),
        json!({"statusCode": 401, "body": "Missing API key: /events/in needs an Authorization header (PREFECT_API_AUTH_STRING)"})
    );
    assert_eq!(h.store.read_ws_connection("c0").await.unwrap(), None);

    // Prefect's subscriber (`/events/out`) sends no header and
    // `{"type":"auth","token":<auth string>}`.
    let connected = json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "prefect"}});
    for (id, token, reason) in [
        ("c1", Value::Null, "Auth required but no token provided"),
        ("c2", json!("pp_wrong"), "Invalid token"),
    ] {
        assert_eq!(f.handle(connect(id, "out", None)).await.unwrap(), connected);
        let c = h.store.read_ws_connection(id).await.unwrap().unwrap();
        assert_eq!((c.socket, c.phase), (EventSocket::Out, SocketPhase::Auth));
        let auth = json!({"type": "auth", "token": token});
        assert_eq!(f.handle(message(id, &auth)).await.unwrap(), ok());
        assert_eq!(h.fake.take(), closed(id, 1008, reason));
        assert_eq!(h.store.read_ws_connection(id).await.unwrap(), None);
    }
    // A first message that is not the auth message.
    f.handle(connect("c3", "out", None)).await.unwrap();
    f.handle(message("c3", &json!({"type": "filter"})))
        .await
        .unwrap();
    assert_eq!(h.fake.take(), closed("c3", 1008, "Expected 'auth' message"));
    // The key as the auth string, or `user:key`.
    for (id, token) in [("c7", KEY.to_owned()), ("c8", format!("admin:{KEY}"))] {
        f.handle(connect(id, "out", None)).await.unwrap();
        let auth = json!({"type": "auth", "token": token});
        f.handle(message(id, &auth)).await.unwrap();
        assert_eq!(h.fake.take(), vec![auth_success(id)]);
        let c = h.store.read_ws_connection(id).await.unwrap().unwrap();
        assert_eq!(c.phase, SocketPhase::Open);
    }

    // `/events/in` with the key as its `Basic` auth string, or `user:key`, then the auth
    // message with the same string.
    for (id, token) in [("c4", KEY.to_owned()), ("c5", format!("admin:{KEY}"))] {
        let basic = format!("Basic {}", base64_of(&token));
        f.handle(connect(id, "in", Some(&basic))).await.unwrap();
        let auth = json!({"type": "auth", "token": token});
        f.handle(message(id, &auth)).await.unwrap();
        assert_eq!(h.fake.take(), vec![auth_success(id)]);
        let c = h.store.read_ws_connection(id).await.unwrap().unwrap();
        assert_eq!((c.socket, c.phase), (EventSocket::In, SocketPhase::Open));
    }
    // An accepted `Authorization` header (Prefect's events client sends `Basic` of the auth
    // string) makes any auth message succeed.
    let basic = format!("Basic {}", base64_of(&format!("admin:{KEY}")));
    f.handle(connect("c6", "in", Some(&basic))).await.unwrap();
    assert_eq!(
        h.store
            .read_ws_connection("c6")
            .await
            .unwrap()
            .unwrap()
            .phase,
        SocketPhase::AuthByHeader
    );
    f.handle(message("c6", &json!({"type": "auth", "token": null})))
        .await
        .unwrap();
    assert_eq!(h.fake.take(), vec![auth_success("c6")]);

    // Events: stored as sent, with `received`; task runs recorded from theirs.
    let task_run_id = Uuid::new_v4();
    let event_id = Uuid::new_v4();
    let occurred = Utc::now() - Duration::seconds(5);
    let sent = task_run_event(task_run_id, event_id, occurred);
    let before = Utc::now();
    assert_eq!(f.handle(message("c4", &sent)).await.unwrap(), ok());
    assert_eq!(h.fake.take(), vec![]);
    let stored = h
        .service
        .read_events(&EventFilter::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert!(e.received >= before && e.received <= Utc::now());
    let mut expected = sent.clone();
    expected["received"] = json!(e.received);
    assert_eq!(
        serde_json::to_value(e).unwrap(),
        serde_json::to_value(serde_json::from_value::<Event>(expected).unwrap()).unwrap()
    );
    let run = h.store.read_task_run(task_run_id).await.unwrap();
    assert_eq!(run.name, "add-0");
    assert_eq!(run.task_key, "flows.add-4b1d");
    let state = run.state.unwrap();
    assert_eq!(
        (state.r#type, state.name.as_str()),
        (StateType::Running, "Running")
    );
    assert_eq!(state.id, event_id);

    // An invalid event closes as Prefect's server does (1007).
    let mut bad = task_run_event(Uuid::new_v4(), Uuid::new_v4(), occurred);
    bad["resource"] = json!({"prefect.resource.name": "x"});
    f.handle(message("c4", &bad)).await.unwrap();
    assert_eq!(
        h.fake.take(),
        closed(
            "c4",
            1007,
            "Invalid event: resource: Resources must include the prefect.resource.id label"
        )
    );

    // `$disconnect` forgets the connection; a message on an unknown one closes it.
    assert_eq!(f.handle(disconnect("c5")).await.unwrap(), ok());
    assert_eq!(h.store.read_ws_connection("c5").await.unwrap(), None);
    f.handle(message("c5", &sent)).await.unwrap();
    assert_eq!(h.fake.take(), closed("c5", 1008, "Unknown connection"));
    assert!(h.fake.violations.lock().unwrap().is_empty());
}

fn base64_of(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether a stream record passes an event filter pattern (nested objects; arrays of exact
/// values or `{"prefix": …}`), as Lambda's `FilterCriteria` does.
fn passes(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(k, sub)| record.get(k).is_some_and(|v| passes(sub, v))),
        Value::Array(allowed) => allowed.iter().any(|a| match a {
            Value::Object(o) if o.contains_key("prefix") => record
                .as_str()
                .zip(o["prefix"].as_str())
                .is_some_and(|(v, p)| v.starts_with(p)),
            exact => exact == record,
        }),
        other => panic!("unsupported pattern {other}"),
    }
}

/// Whether a stream record passes the mapping's `FilterCriteria` (any of its patterns), after
/// checking that the template has exactly these patterns.
fn passes_filters(record: &Value) -> bool {
    STREAM_FILTERS
        .iter()
        .any(|p| passes(&serde_json::from_str(p).unwrap(), record))
}

fn template_has_the_filters() {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    for f in STREAM_FILTERS {
        assert!(
            template.contains(&format!("- Pattern: '{f}'")),
            "the template's filter {f} is the one tested"
        );
    }
}

fn event(name: &str, resource: &str, occurred: chrono::DateTime<Utc>) -> Event {
    serde_json::from_value(json!({
        "occurred": occurred, "event": name,
        "resource": {"prefect.resource.id": resource},
        "related": [], "payload": {}, "id": Uuid::new_v4(), "follows": null,
        "received": occurred,
    }))
    .unwrap()
}

#[tokio::test]
async fn events_out_subscribes_backfills_and_gets_new_events_from_the_stream() {
    let mut h = harness().await;
    template_has_the_filters();
    let f = &h.function;
    let now = Utc::now();
    let old = event(
        "prefect.flow-run.Running",
        "prefect.flow-run.a",
        now - Duration::minutes(20),
    );
    let recent = event(
        "prefect.flow-run.Pending",
        "prefect.flow-run.a",
        now - Duration::minutes(2),
    );
    let other = event(
        "prefect.task-run.Running",
        "prefect.task-run.b",
        now - Duration::minutes(1),
    );
    h.service
        .write_events(&[old.clone(), recent.clone(), other.clone()])
        .await
        .unwrap();

    // Prefect's subscriber: auth, then the filter (`PrefectEventSubscriber._reconnect`).
    let auth = json!({"type": "auth", "token": KEY});
    let filter = json!({"type": "filter", "filter": {
        "occurred": {"since": (now - Duration::minutes(60)).to_rfc3339(),
                     "until": (now + Duration::days(365)).to_rfc3339()},
        "event": {"prefix": ["prefect.flow-run."]}}});
    for id in ["s1", "s2", "s3"] {
        f.handle(connect(id, "out", None)).await.unwrap();
        f.handle(message(id, &auth)).await.unwrap();
    }
    // A bad filter message closes as Prefect's server does (1002).
    f.handle(message(
        "s3",
        &json!({"type": "filter", "filter": {"nope": 1}}),
    ))
    .await
    .unwrap();
    let mut calls = h.fake.take();
    let s3: Vec<Call> = calls.split_off(2);
    assert_eq!(calls, vec![auth_success("s1"), auth_success("s2")]);
    assert_eq!(s3.len(), 3);
    assert_eq!(s3[0], auth_success("s3"));
    match &s3[1] {
        Call::Post(id, v) => {
            assert_eq!(id, "s3");
            assert_eq!(v["code"], 1002);
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("Invalid filter: unknown field `nope`"),
                "{v}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s3[2], Call::Delete("s3".into()));

    // The backfill: the matching events of the last 15 minutes, oldest first.
    f.handle(message("s1", &filter)).await.unwrap();
    assert_eq!(
        h.fake.take(),
        vec![Call::Post(
            "s1".into(),
            json!({"type": "event", "event": recent})
        )]
    );
    let mut no_backfill = filter.clone();
    no_backfill["backfill"] = json!(false);
    f.handle(message("s2", &no_backfill)).await.unwrap();
    assert_eq!(h.fake.take(), vec![]);
    let s1 = h.store.read_ws_connection("s1").await.unwrap().unwrap();
    assert_eq!(s1.phase, SocketPhase::Subscribed);
    // `since` is clamped to the last 15 minutes (`PREFECT_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL`).
    let since = s1.filter.unwrap().occurred.since.unwrap();
    assert!(since >= now - Duration::minutes(15) && since <= Utc::now() - Duration::minutes(15));

    // New events reach the subscribers whose filter they match, from the table's stream; a
    // gone subscriber (410) is forgotten.
    h.feed.read_new().await;
    h.fake.gone.lock().unwrap().insert("s2".into());
    let fresh = event("prefect.flow-run.Running", "prefect.flow-run.a", Utc::now());
    let task = event(
        "prefect.task-run.Completed",
        "prefect.task-run.b",
        Utc::now(),
    );
    h.service
        .write_events(&[fresh.clone(), task.clone()])
        .await
        .unwrap();
    let records: Vec<Value> = h
        .feed
        .read_new()
        .await
        .into_iter()
        .filter(passes_filters)
        .collect();
    assert_eq!(
        records.len(),
        2,
        "the two event inserts pass the filter: {records:#?}"
    );
    let answer = f.handle(json!({ "Records": records })).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(
        h.fake.take(),
        vec![Call::Post(
            "s1".into(),
            json!({"type": "event", "event": fresh})
        )]
    );
    assert_eq!(h.store.read_ws_connection("s2").await.unwrap(), None);
    assert!(h.store.read_ws_connection("s1").await.unwrap().is_some());
    // Connection writes are not events: nothing else passes the filter.
    f.handle(disconnect("s1")).await.unwrap();
    let later: Vec<Value> = h
        .feed
        .read_new()
        .await
        .into_iter()
        .filter(passes_filters)
        .collect();
    assert_eq!(later, Vec::<Value>::new());
    assert!(h.fake.violations.lock().unwrap().is_empty());
}

/// A log line of `flow_run_id` at `timestamp` (to the microsecond, as the stores keep it).
fn log_line(flow_run_id: Uuid, level: i64, message: &str) -> Log {
    let now = Utc::now();
    let now = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap();
    Log {
        id: Uuid::now_v7(),
        created: now,
        updated: now,
        name: "prefect.flow_runs".into(),
        level,
        message: message.into(),
        timestamp: now,
        flow_run_id: Some(flow_run_id),
        task_run_id: None,
    }
}

#[tokio::test]
async fn logs_out_subscribes_and_gets_new_lines_from_the_stream() {
    let mut h = harness().await;
    template_has_the_filters();
    let f = &h.function;
    let run_a = Uuid::new_v4();
    let run_b = Uuid::new_v4();

    // Prefect's `PrefectLogsSubscriber`: no header, the `prefect` subprotocol, the auth
    // message, then `{"type":"filter","filter":<LogFilter>}`.
    let connected = json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "prefect"}});
    for id in ["l1", "l2", "l3", "l4"] {
        assert_eq!(
            f.handle(connect(id, "logs", None)).await.unwrap(),
            connected
        );
        let c = h.store.read_ws_connection(id).await.unwrap().unwrap();
        assert_eq!((c.socket, c.phase), (EventSocket::Logs, SocketPhase::Auth));
    }
    f.handle(message("l4", &json!({"type": "auth", "token": null})))
        .await
        .unwrap();
    assert_eq!(
        h.fake.take(),
        closed("l4", 1008, "Auth required but no token provided")
    );
    let auth = json!({"type": "auth", "token": KEY});
    for id in ["l1", "l2", "l3"] {
        f.handle(message(id, &auth)).await.unwrap();
        assert_eq!(h.fake.take(), vec![auth_success(id)]);
    }
    let now = Utc::now();
    let by_run = json!({"type": "filter", "filter": {
        "operator": "and_", "level": null,
        "timestamp": {"before_": (now + Duration::days(365)).to_rfc3339(),
                      "after_": (now - Duration::minutes(1)).to_rfc3339()},
        "flow_run_id": {"any_": [run_a]}, "task_run_id": null, "text": null}});
    f.handle(message("l1", &by_run)).await.unwrap();
    // A criterion Prefect's own live stream ignores (`text`) is applied, as `/logs/filter`
    // applies it.
    let narrow = json!({"type": "filter", "filter": {
        "level": {"ge_": 30}, "text": {"query": "-skip"}}});
    f.handle(message("l2", &narrow)).await.unwrap();
    // No backfill: nothing is posted on subscribing.
    assert_eq!(h.fake.take(), vec![]);
    let l1 = h.store.read_ws_connection("l1").await.unwrap().unwrap();
    assert_eq!(l1.phase, SocketPhase::Subscribed);
    assert_eq!(l1.log_filter.unwrap().flow_run_ids(), Some(&[run_a][..]));
    // Bad filter messages close as Prefect's server does (1002).
    f.handle(message(
        "l3",
        &json!({"type": "filter", "filter": {"flow_run_id": {"like_": "x"}}}),
    ))
    .await
    .unwrap();
    assert_eq!(
        h.fake.take(),
        closed(
            "l3",
            1002,
            "Invalid filter: flow_run_id.like_: unknown field `like_`, expected `any_`"
        )
    );
    f.handle(connect("l5", "logs", None)).await.unwrap();
    f.handle(message("l5", &auth)).await.unwrap();
    f.handle(message("l5", &json!({"type": "event"})))
        .await
        .unwrap();
    let mut calls = vec![auth_success("l5")];
    calls.extend(closed("l5", 1002, "Expected 'filter' message"));
    assert_eq!(h.fake.take(), calls);

    // An `/events/out` subscriber of every event gets the event, not the lines. (Its
    // `occurred.until` is in the future: without it, Prefect's default `until` is the time of
    // subscribing, which no later event passes.)
    f.handle(connect("s1", "out", None)).await.unwrap();
    f.handle(message("s1", &auth)).await.unwrap();
    let until = (now + Duration::days(1)).to_rfc3339();
    f.handle(message(
        "s1",
        &json!({"type": "filter", "filter": {"occurred": {"until": until}}, "backfill": false}),
    ))
    .await
    .unwrap();
    assert_eq!(h.fake.take(), vec![auth_success("s1")]);

    // New lines reach the subscribers whose filter they pass, from the table's stream.
    h.feed.read_new().await;
    let a1 = log_line(run_a, 20, "a one");
    let b1 = log_line(run_b, 30, "b warns");
    let a2 = log_line(run_a, 40, "a fails, skip this");
    let a3 = log_line(run_a, 40, "a fails");
    h.service
        .write_logs(&[a1.clone(), b1.clone(), a2.clone()])
        .await
        .unwrap();
    h.service
        .write_logs(std::slice::from_ref(&a3))
        .await
        .unwrap();
    let fresh = event("prefect.flow-run.Running", "prefect.flow-run.a", Utc::now());
    h.service
        .write_events(std::slice::from_ref(&fresh))
        .await
        .unwrap();
    let records: Vec<Value> = h
        .feed
        .read_new()
        .await
        .into_iter()
        .filter(passes_filters)
        .collect();
    assert_eq!(records.len(), 5, "four lines and an event: {records:#?}");
    let answer = f.handle(json!({ "Records": records })).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let mut calls = h.fake.take();
    calls.sort_by_key(|c| match c {
        Call::Post(id, _) | Call::Delete(id) => id.clone(),
    });
    let log = |l: &Log| json!({"type": "log", "log": l});
    assert_eq!(
        calls,
        vec![
            Call::Post("l1".into(), log(&a1)),
            Call::Post("l1".into(), log(&a2)),
            Call::Post("l1".into(), log(&a3)),
            Call::Post("l2".into(), log(&b1)),
            Call::Post("l2".into(), log(&a3)),
            Call::Post("s1".into(), json!({"type": "event", "event": fresh})),
        ]
    );
    assert!(h.fake.violations.lock().unwrap().is_empty());
}
