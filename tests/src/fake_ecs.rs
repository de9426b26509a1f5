//! A spec-checked fake ECS: an HTTP server on a free loopback port that speaks ECS's
//! awsJson1_1 protocol (`POST /`, `Content-Type: application/x-amz-json-1.1`,
//! `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`) for the five operations pushpool
//! uses: `RegisterTaskDefinition`, `DescribeTaskDefinition`, `RunTask`, `DescribeTasks`,
//! `StopTask`.
//!
//! Every request body is checked against the operation's input shape in the ECS API model
//! (`tests/fixtures/ecs/service-2.json`, loaded at run time): required members, unknown
//! members, JSON types, enum values, `min`/`max`, `pattern`, plus the constraints the model
//! states only in its documentation ([`DOCUMENTED`]). A request that breaks them is answered
//! `400 ValidationException` **and** recorded in [`FakeEcs::violations`], which every test
//! asserts empty at its end. The fake's own answers are checked against the output shapes
//! the same way, so the SDK is fed what ECS would send.
//!
//! Behaviour, modelled on ECS:
//! - task definitions get revisions per family, ECS's registration defaults (`essential`,
//!   container `cpu` 0, empty lists, `networkMode` `bridge`) and `status: ACTIVE`;
//! - `RunTask` checks what ECS checks (the task definition exists, awsvpc needs a network
//!   configuration, Fargate needs a Fargate-compatible definition, overrides name existing
//!   containers) and honours `clientToken`: the same token with the same parameters answers
//!   the same task, with other parameters `ConflictException{resourceIds}`;
//! - each task follows a scripted [`Lifecycle`] (default [`Lifecycle::Runs`]): `RunTask`
//!   answers in `PROVISIONING`, and each `DescribeTasks` of it moves it one step on;
//! - `StopTask` on a live task: one step in `STOPPING`, then `STOPPED` with stopCode
//!   `UserInitiated`, `stoppedReason` = the request's reason, and the containers' exit code
//!   143 (SIGTERM) if they were running, none if they never ran;
//! - an unknown task in `DescribeTasks` is a `MISSING` failure; in `StopTask`, an
//!   `InvalidParameterException` "The referenced task was not found.";
//! - any cluster name is accepted (cluster ARNs are derived from it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::moto::{TEST_REGION, test_sdk_config};

/// The awsJson1_1 target prefix of ECS (`metadata.targetPrefix` in the model).
const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// The content type of awsJson1_1.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The account of every ARN the fake makes.
const ACCOUNT: &str = "123456789012";
/// The operations the fake implements.
const OPERATIONS: &[&str] = &[
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "RunTask",
    "DescribeTasks",
    "StopTask",
];

/// How a task started by the fake behaves, step by step (one step per `DescribeTasks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// `PROVISIONING` → `PENDING` → `RUNNING`, until `StopTask`.
    Runs,
    /// `PROVISIONING` → `PENDING` → `RUNNING` → `STOPPED` with stopCode
    /// `EssentialContainerExited`, stoppedReason "Essential container in task exited", and
    /// the flow's (first essential) container exited with `exit_code` and `reason` (none
    /// when empty); other containers exit 143.
    Exits {
        /// The container's exit code.
        exit_code: i32,
        /// The container's `reason` (e.g. "OutOfMemoryError: Container killed due to memory
        /// usage"); empty for none.
        reason: String,
    },
    /// `PROVISIONING` → `PENDING` → `STOPPED` with stopCode `TaskFailedToStart`,
    /// stoppedReason `reason` and no containers.
    FailedToStart {
        /// The task's `stoppedReason` (e.g. "CannotPullContainerError: ...").
        reason: String,
    },
    /// `RunTask` starts nothing and answers HTTP 200 with `failures: [{arn, reason,
    /// detail}]` (placement or capacity failures); `detail` empty for none.
    RunTaskFailure {
        /// The failure's `reason`.
        reason: String,
        /// The failure's `detail`.
        detail: String,
    },
}

/// A spec-checked fake ECS; stopped when dropped.
pub struct FakeEcs {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeEcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEcs")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeEcs {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeEcs {
    /// Starts the fake on a free loopback port.
    ///
    /// # Panics
    /// When the model cannot be read from `tests/fixtures/ecs/service-2.json` or no port
    /// can be bound.
    pub async fn start() -> FakeEcs {
        let shared = Arc::new(Shared {
            spec: Spec::get(),
            state: Mutex::new(FakeState::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake ECS");
        let addr = listener.local_addr().expect("the fake ECS's address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeEcs {
            endpoint: format!("http://{addr}"),
            shared,
            server,
        }
    }

    /// An `SdkConfig` for the fake: `us-east-1`, static test credentials, this endpoint, and
    /// no SDK retries (every call the provider makes reaches the fake exactly once).
    pub async fn sdk_config(&self) -> SdkConfig {
        test_sdk_config(&self.endpoint)
            .await
            .into_builder()
            .retry_config(RetryConfig::disabled())
            .build()
    }

    /// The lifecycle of the next task `RunTask` starts (in order; unscripted tasks
    /// [`Lifecycle::Runs`]).
    pub fn script_next_task(&self, lifecycle: Lifecycle) {
        self.state().scripts.push_back(lifecycle);
    }

    /// Answers the next `times` calls of `op` with an error (after checking them against
    /// the model): HTTP `status`, `{"__type": code, "message": message}`.
    pub fn inject_error(&self, op: &str, status: u16, code: &str, message: &str, times: usize) {
        self.state().injected.push_back(Injected {
            op: op.to_owned(),
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            remaining: times,
        });
    }

    /// The bodies of the accepted (spec-valid) requests of `op`, in order.
    pub fn requests(&self, op: &str) -> Vec<Value> {
        self.state()
            .requests
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Every accepted request as `(operation, body)`, in order.
    pub fn all_requests(&self) -> Vec<(String, Value)> {
        self.state().requests.clone()
    }

    /// Breaches of the ECS model (by a request, or by the fake's own answer) and of the
    /// protocol. Must be empty at the end of every test.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// The violations so far, cleared (for tests that break the model on purpose).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state().violations)
    }

    /// The ARNs of the tasks started so far, in order.
    pub fn task_arns(&self) -> Vec<String> {
        self.state().tasks.iter().map(|t| t.arn.clone()).collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.lock()
    }
}

struct Shared {
    spec: Arc<Spec>,
    state: Mutex<FakeState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

struct Injected {
    op: String,
    status: u16,
    code: String,
    message: String,
    remaining: usize,
}

#[derive(Default)]
struct FakeState {
    violations: Vec<String>,
    requests: Vec<(String, Value)>,
    /// Described task definitions by family, revision `i + 1` at `i`.
    families: BTreeMap<String, Vec<Value>>,
    tasks: Vec<FakeTask>,
    /// clientToken → (the request without it, the tasks it started).
    tokens: HashMap<String, (Value, Vec<String>)>,
    scripts: VecDeque<Lifecycle>,
    injected: VecDeque<Injected>,
    next_id: u64,
}

/// How a stopped task ended for its containers.
#[derive(Debug, Clone, PartialEq)]
enum ContainersEnd {
    /// The task never got containers (`TaskFailedToStart`).
    None,
    /// Containers exist but never ran: no exit code.
    NeverRan,
    /// The flow's container exited with this code and reason; others 143.
    Exited(i32, Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Provisioning,
    Pending,
    Running,
    Stopping,
    Stopped {
        code: &'static str,
        reason: String,
        containers: ContainersEnd,
    },
}

impl Phase {
    fn last_status(&self) -> &'static str {
        match self {
            Phase::Provisioning => "PROVISIONING",
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Stopping => "STOPPING",
            Phase::Stopped { .. } => "STOPPED",
        }
    }
}

struct FakeTask {
    arn: String,
    id: String,
    cluster: String,
    task_definition: Value,
    request: Value,
    phases: Vec<Phase>,
    step: usize,
    created_at: f64,
    started_at: Option<f64>,
    stopping_at: Option<f64>,
    stopped_at: Option<f64>,
    stop_requested: bool,
    version: i64,
}

impl FakeTask {
    fn phase(&self) -> &Phase {
        let i = self.step.min(self.phases.len() - 1);
        &self.phases[i]
    }

    /// One step on (a `DescribeTasks`).
    fn advance(&mut self) {
        if self.step + 1 < self.phases.len() {
            self.step += 1;
            self.version += 1;
            let now = now();
            match self.phase() {
                Phase::Running => self.started_at = Some(now),
                Phase::Stopping => self.stopping_at = Some(now),
                Phase::Stopped { .. } => {
                    self.stopping_at.get_or_insert(now);
                    self.stopped_at = Some(now);
                }
                Phase::Provisioning | Phase::Pending => {}
            }
        }
    }

    fn stop(&mut self, reason: String) {
        if matches!(self.phase(), Phase::Stopped { .. }) {
            return;
        }
        let current = self.step.min(self.phases.len() - 1);
        let was_running = matches!(self.phases[current], Phase::Running | Phase::Stopping);
        self.phases.truncate(current + 1);
        self.step = current;
        if self.phases[current] != Phase::Stopping {
            self.phases.push(Phase::Stopping);
        }
        self.phases.push(Phase::Stopped {
            code: "UserInitiated",
            reason,
            containers: if was_running {
                ContainersEnd::Exited(143, None)
            } else {
                ContainersEnd::NeverRan
            },
        });
        self.stop_requested = true;
        self.version += 1;
    }

    fn to_json(&self) -> Value {
        let phase = self.phase();
        let td = &self.task_definition;
        let family = td["family"].as_str().unwrap_or_default();
        let stopped = matches!(phase, Phase::Stopped { .. });
        let desired = if stopped || self.stop_requested || *phase == Phase::Stopping {
            "STOPPED"
        } else {
            "RUNNING"
        };
        let mut task = json!({
            "taskArn": self.arn,
            "clusterArn": cluster_arn(&self.cluster),
            "taskDefinitionArn": td["taskDefinitionArn"],
            "lastStatus": phase.last_status(),
            "desiredStatus": desired,
            "createdAt": self.created_at,
            "group": format!("family:{family}"),
            "version": self.version,
            "availabilityZone": format!("{TEST_REGION}a"),
            "tags": self.request.get("tags").cloned().unwrap_or_else(|| json!([])),
            "overrides": self.request.get("overrides").cloned()
                .unwrap_or_else(|| json!({"containerOverrides": []})),
            "containers": self.containers_json(phase),
            "attachments": self.attachments_json(phase),
        });
        let obj = task.as_object_mut().expect("a task is an object");
        for (key, value) in [
            ("startedBy", self.request.get("startedBy")),
            ("launchType", self.request.get("launchType")),
            (
                "cpu",
                self.request.pointer("/overrides/cpu").or(td.get("cpu")),
            ),
            (
                "memory",
                self.request
                    .pointer("/overrides/memory")
                    .or(td.get("memory")),
            ),
        ] {
            if let Some(v) = value {
                obj.insert(key.into(), v.clone());
            }
        }
        if let Some(cp) = self
            .request
            .pointer("/capacityProviderStrategy/0/capacityProvider")
        {
            obj.insert("capacityProviderName".into(), cp.clone());
        }
        let fargate = self.request.get("launchType") == Some(&json!("FARGATE"))
            || obj.contains_key("capacityProviderName");
        if fargate {
            obj.insert("platformVersion".into(), json!("1.4.0"));
        }
        for (key, at) in [
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
        ] {
            if let Some(at) = at {
                obj.insert(key.into(), json!(at));
            }
        }
        if let Phase::Stopped { code, reason, .. } = phase {
            obj.insert("stopCode".into(), json!(code));
            obj.insert("stoppedReason".into(), json!(reason));
            if let Some(at) = self.stopped_at {
                obj.insert("executionStoppedAt".into(), json!(at));
            }
        }
        task
    }

    fn containers_json(&self, phase: &Phase) -> Value {
        let defs = self.task_definition["containerDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let flow = defs
            .iter()
            .position(|d| d.get("essential") != Some(&json!(false)))
            .unwrap_or(0);
        let mut out = Vec::new();
        for (i, def) in defs.iter().enumerate() {
            let name = def["name"].as_str().unwrap_or_default();
            let mut c = json!({
                "containerArn": format!(
                    "arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:container/{}/{}/{:032x}",
                    self.cluster, self.id, i + 1
                ),
                "taskArn": self.arn,
                "name": name,
                "image": def["image"],
                "lastStatus": match phase {
                    Phase::Provisioning | Phase::Pending => "PENDING",
                    Phase::Running | Phase::Stopping => "RUNNING",
                    Phase::Stopped { .. } => "STOPPED",
                },
                "networkBindings": [],
                "networkInterfaces": [],
                "cpu": def.get("cpu").map_or_else(|| "0".to_owned(), |c| c.to_string()),
            });
            if let Some(memory) = def.get("memory") {
                c["memory"] = json!(memory.to_string());
            }
            if let Phase::Stopped { containers, .. } = phase {
                match containers {
                    ContainersEnd::None => return json!([]),
                    ContainersEnd::NeverRan => {}
                    ContainersEnd::Exited(code, reason) => {
                        if i == flow {
                            c["exitCode"] = json!(code);
                            if let Some(reason) = reason {
                                c["reason"] = json!(reason);
                            }
                        } else {
                            c["exitCode"] = json!(143);
                        }
                    }
                }
            }
            out.push(c);
        }
        Value::Array(out)
    }

    fn attachments_json(&self, phase: &Phase) -> Value {
        let Some(subnet) = self
            .request
            .pointer("/networkConfiguration/awsvpcConfiguration/subnets/0")
        else {
            return json!([]);
        };
        let status = match phase {
            Phase::Provisioning => "PRECREATED",
            Phase::Pending | Phase::Running => "ATTACHED",
            Phase::Stopping => "DETACHING",
            Phase::Stopped { .. } => "DELETED",
        };
        json!([{
            "id": format!("attachment-{}", self.id),
            "type": "ElasticNetworkInterface",
            "status": status,
            "details": [
                {"name": "subnetId", "value": subnet},
                {"name": "networkInterfaceId", "value": format!("eni-{}", &self.id[16..])},
            ],
        }])
    }
}

fn now() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

fn cluster_arn(cluster: &str) -> String {
    format!("arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:cluster/{cluster}")
}

/// A cluster name or ARN → its name.
fn cluster_name(value: Option<&Value>) -> String {
    let s = value.and_then(Value::as_str).unwrap_or("default");
    s.rsplit_once(":cluster/")
        .map_or(s, |(_, name)| name)
        .to_owned()
}

/// An awsJson error answer.
struct ServiceError {
    status: StatusCode,
    code: String,
    message: String,
    extra: Vec<(String, Value)>,
}

impl ServiceError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn client(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn into_response(self) -> Response {
        let mut body: Map<String, Value> = self.extra.into_iter().collect();
        body.insert("__type".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        awsjson(self.status, &Value::Object(body))
    }
}

fn awsjson(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                "00000000-0000-4000-8000-000000000000",
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut problems = Vec::new();
    if method != Method::POST || uri.path() != "/" {
        problems.push(format!(
            "awsJson1_1 requests are POST /, not {method} {}",
            uri.path()
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != CONTENT_TYPE {
        problems.push(format!(
            "Content-Type is {content_type:?}, not {CONTENT_TYPE:?}"
        ));
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some(op) = target.strip_prefix(TARGET_PREFIX).map(str::to_owned) else {
        let message = format!("X-Amz-Target {target:?} does not start with {TARGET_PREFIX:?}");
        shared.lock().violations.push(message.clone());
        return ServiceError::client("UnknownOperationException", message).into_response();
    };
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let message = format!("{op}: the body is not JSON: {e}");
            shared.lock().violations.push(message.clone());
            return ServiceError::client("SerializationException", message).into_response();
        }
    };
    let spec = shared.spec.clone();
    let Some(input_shape) = spec.input_shape(&op) else {
        let message = format!("{op} is not an operation of the ECS model");
        shared.lock().violations.push(message.clone());
        return ServiceError::client("UnknownOperationException", message).into_response();
    };
    spec.check(input_shape, &input, &op, &mut problems);
    if !OPERATIONS.contains(&op.as_str()) {
        problems.push(format!("{op} is not implemented by the fake ECS"));
    }
    let mut state = shared.lock();
    if !problems.is_empty() {
        state.violations.extend(problems.iter().cloned());
        return ServiceError::client("ValidationException", problems.join("; ")).into_response();
    }
    state.requests.push((op.clone(), input.clone()));

    if let Some(i) = state
        .injected
        .iter()
        .position(|e| e.op == op && e.remaining > 0)
    {
        let injected = &mut state.injected[i];
        injected.remaining -= 1;
        let status = StatusCode::from_u16(injected.status).unwrap_or(StatusCode::BAD_REQUEST);
        let error = ServiceError::new(status, &injected.code, injected.message.clone());
        if injected.remaining == 0 {
            state.injected.remove(i);
        }
        return error.into_response();
    }

    let result = match op.as_str() {
        "RegisterTaskDefinition" => register_task_definition(&mut state, &input),
        "DescribeTaskDefinition" => describe_task_definition(&state, &input),
        "RunTask" => run_task(&mut state, &input),
        "DescribeTasks" => describe_tasks(&mut state, &input),
        "StopTask" => stop_task(&mut state, &input),
        _ => Err(ServiceError::client(
            "UnknownOperationException",
            op.clone(),
        )),
    };
    match result {
        Ok(output) => {
            let mut answer_problems = Vec::new();
            if let Some(output_shape) = spec.output_shape(&op) {
                spec.check(
                    output_shape,
                    &output,
                    &format!("fake answer to {op}"),
                    &mut answer_problems,
                );
            }
            state.violations.extend(answer_problems);
            awsjson(StatusCode::OK, &output)
        }
        Err(error) => error.into_response(),
    }
}

fn register_task_definition(state: &mut FakeState, input: &Value) -> Result<Value, ServiceError> {
    let family = input["family"].as_str().unwrap_or_default().to_owned();
    let requires: Vec<&str> = input["requiresCompatibilities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if requires.contains(&"FARGATE") {
        if input.get("networkMode").and_then(Value::as_str) != Some("awsvpc") {
            return Err(ServiceError::client(
                "ClientException",
                "Fargate only supports network mode 'awsvpc'.",
            ));
        }
        for field in ["cpu", "memory"] {
            if input.get(field).is_none() {
                return Err(ServiceError::client(
                    "ClientException",
                    format!("Fargate requires that '{field}' be defined at the task level."),
                ));
            }
        }
    }
    let revisions = state.families.entry(family.clone()).or_default();
    let revision = revisions.len() + 1;
    let mut td = input.clone();
    let obj = td
        .as_object_mut()
        .expect("the model checked it is an object");
    obj.remove("tags");
    if let Some(Value::Array(containers)) = obj.get_mut("containerDefinitions") {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            c.entry("essential").or_insert(json!(true));
            c.entry("cpu").or_insert(json!(0));
            for list in [
                "portMappings",
                "environment",
                "mountPoints",
                "volumesFrom",
                "systemControls",
            ] {
                c.entry(list).or_insert(json!([]));
            }
        }
    }
    obj.entry("networkMode").or_insert(json!("bridge"));
    let compatibilities = if requires.contains(&"FARGATE") {
        json!(["EC2", "FARGATE"])
    } else {
        json!(["EC2"])
    };
    for (key, value) in [
        (
            "taskDefinitionArn",
            json!(format!(
                "arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:task-definition/{family}:{revision}"
            )),
        ),
        ("revision", json!(revision)),
        ("status", json!("ACTIVE")),
        ("compatibilities", compatibilities),
        ("requiresAttributes", json!([])),
        ("placementConstraints", json!([])),
        ("volumes", json!([])),
        ("registeredAt", json!(now())),
        (
            "registeredBy",
            json!(format!("arn:aws:iam::{ACCOUNT}:user/pushpool-tests")),
        ),
    ] {
        obj.insert(key.into(), value);
    }
    revisions.push(td.clone());
    Ok(json!({"taskDefinition": td}))
}

/// `family`, `family:revision` or a task definition ARN → the described definition (the
/// latest ACTIVE revision for a bare family).
fn find_task_definition<'a>(state: &'a FakeState, reference: &str) -> Option<&'a Value> {
    let reference = reference
        .rsplit_once(":task-definition/")
        .map_or(reference, |(_, r)| r);
    let (family, revision) = match reference.rsplit_once(':') {
        Some((family, revision)) => (family, Some(revision.parse::<usize>().ok()?)),
        None => (reference, None),
    };
    let revisions = state.families.get(family)?;
    match revision {
        Some(r) => revisions.get(r.checked_sub(1)?),
        None => revisions
            .iter()
            .rev()
            .find(|td| td["status"] == json!("ACTIVE")),
    }
}

fn describe_task_definition(state: &FakeState, input: &Value) -> Result<Value, ServiceError> {
    let reference = input["taskDefinition"].as_str().unwrap_or_default();
    match find_task_definition(state, reference) {
        Some(td) => Ok(json!({"taskDefinition": td})),
        None => Err(ServiceError::client(
            "ClientException",
            "Unable to describe task definition.",
        )),
    }
}

fn run_task(state: &mut FakeState, input: &Value) -> Result<Value, ServiceError> {
    let invalid = |m: String| ServiceError::client("InvalidParameterException", m);
    let cluster = cluster_name(input.get("cluster"));
    let reference = input["taskDefinition"].as_str().unwrap_or_default();
    let td = find_task_definition(state, reference)
        .cloned()
        .ok_or_else(|| ServiceError::client("ClientException", "TaskDefinition not found."))?;

    if input.get("launchType").is_some() && input.get("capacityProviderStrategy").is_some() {
        return Err(invalid(
            "Specify either Launch Type or Capacity Provider Strategy, but not both.".into(),
        ));
    }
    if td["networkMode"] == json!("awsvpc")
        && input
            .pointer("/networkConfiguration/awsvpcConfiguration")
            .is_none()
    {
        return Err(invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.".into(),
        ));
    }
    let fargate = input.get("launchType") == Some(&json!("FARGATE"))
        || input
            .pointer("/capacityProviderStrategy/0/capacityProvider")
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with("FARGATE"));
    let compatible = td["compatibilities"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("FARGATE")));
    if fargate && !compatible {
        return Err(invalid(
            "Task definition does not support launch_type FARGATE.".into(),
        ));
    }
    let names: Vec<&str> = td["containerDefinitions"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    for o in input
        .pointer("/overrides/containerOverrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = o["name"].as_str().unwrap_or_default();
        if !names.contains(&name) {
            return Err(invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }

    let mut params = input.clone();
    let token = params
        .as_object_mut()
        .and_then(|o| o.remove("clientToken"))
        .and_then(|t| t.as_str().map(str::to_owned));
    if let Some(token) = &token {
        if let Some((earlier, arns)) = state.tokens.get(token) {
            if *earlier != params {
                let mut error = ServiceError::client(
                    "ConflictException",
                    "The specified client token has already been used with different parameters.",
                );
                error.extra.push(("resourceIds".into(), json!(arns)));
                return Err(error);
            }
            let tasks: Vec<Value> = state
                .tasks
                .iter()
                .filter(|t| arns.contains(&t.arn))
                .map(FakeTask::to_json)
                .collect();
            return Ok(json!({"tasks": tasks, "failures": []}));
        }
    }

    let count = input.get("count").and_then(Value::as_u64).unwrap_or(1);
    let mut started = Vec::new();
    for _ in 0..count {
        let lifecycle = state.scripts.pop_front().unwrap_or(Lifecycle::Runs);
        let phases = match lifecycle {
            Lifecycle::RunTaskFailure { reason, detail } => {
                let mut failure = json!({
                    "arn": cluster_arn(&cluster),
                    "reason": reason,
                });
                if !detail.is_empty() {
                    failure["detail"] = json!(detail);
                }
                return Ok(json!({"tasks": [], "failures": [failure]}));
            }
            Lifecycle::Runs => vec![Phase::Provisioning, Phase::Pending, Phase::Running],
            Lifecycle::Exits { exit_code, reason } => vec![
                Phase::Provisioning,
                Phase::Pending,
                Phase::Running,
                Phase::Stopped {
                    code: "EssentialContainerExited",
                    reason: "Essential container in task exited".into(),
                    containers: ContainersEnd::Exited(
                        exit_code,
                        (!reason.is_empty()).then_some(reason),
                    ),
                },
            ],
            Lifecycle::FailedToStart { reason } => vec![
                Phase::Provisioning,
                Phase::Pending,
                Phase::Stopped {
                    code: "TaskFailedToStart",
                    reason,
                    containers: ContainersEnd::None,
                },
            ],
        };
        state.next_id += 1;
        let id = format!("{:032x}", state.next_id);
        let task = FakeTask {
            arn: format!("arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:task/{cluster}/{id}"),
            id,
            cluster: cluster.clone(),
            task_definition: td.clone(),
            request: input.clone(),
            phases,
            step: 0,
            created_at: now(),
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            stop_requested: false,
            version: 1,
        };
        started.push(task.to_json());
        state.tasks.push(task);
    }
    let arns: Vec<String> = started
        .iter()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_owned))
        .collect();
    if let Some(token) = token {
        state.tokens.insert(token, (params, arns));
    }
    Ok(json!({"tasks": started, "failures": []}))
}

fn find_task<'a>(
    state: &'a mut FakeState,
    cluster: &str,
    reference: &str,
) -> Option<&'a mut FakeTask> {
    state
        .tasks
        .iter_mut()
        .find(|t| t.cluster == cluster && (t.arn == reference || t.id == reference))
}

fn describe_tasks(state: &mut FakeState, input: &Value) -> Result<Value, ServiceError> {
    let cluster = cluster_name(input.get("cluster"));
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for reference in input["tasks"].as_array().into_iter().flatten() {
        let reference = reference.as_str().unwrap_or_default();
        match find_task(state, &cluster, reference) {
            Some(task) => {
                task.advance();
                tasks.push(task.to_json());
            }
            None => failures.push(json!({"arn": reference, "reason": "MISSING"})),
        }
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

fn stop_task(state: &mut FakeState, input: &Value) -> Result<Value, ServiceError> {
    let cluster = cluster_name(input.get("cluster"));
    let reference = input["task"].as_str().unwrap_or_default();
    let reason = input
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("Task stopped by user")
        .to_owned();
    match find_task(state, &cluster, reference) {
        Some(task) => {
            task.stop(reason);
            Ok(json!({"task": task.to_json()}))
        }
        None => Err(ServiceError::client(
            "InvalidParameterException",
            "The referenced task was not found.",
        )),
    }
}

/// The job pushpool would submit for a flow run of an `ecs:push` pool with the default
/// base job template and these job variables: the template rendered with its defaults
/// under `job_variables`, then the flow run environment, the default command and the
/// Prefect labels added the way the service's `build_job` adds them (`PREFECT_API_URL`
/// `http://127.0.0.1:4200/api`, pool `ecs-pool`, flow run name `elegant-caribou`).
///
/// # Panics
/// When `job_variables` is not an object or the template does not parse.
pub fn ecs_push_job(
    job_variables: Value,
    flow_run_id: uuid::Uuid,
    attempt: u32,
) -> pushpool_providers::Job {
    use pushpool_core::template::{BaseJobTemplate, merge_job_variables, render};
    let pool = pushpool_core::pool_types::pool_type("ecs:push").expect("the ecs:push pool type");
    let template = BaseJobTemplate::parse(&pool.default_base_job_template())
        .expect("the default ecs:push template parses");
    let Value::Object(vars) = job_variables else {
        panic!("job variables must be an object");
    };
    let defaults = template.defaults();
    let values = merge_job_variables(&[&defaults, &vars]);
    let mut configuration = render(template.job_configuration(), &values);

    let flow_id = uuid::Uuid::from_u128(0xf10f);
    let mut env = Map::new();
    env.insert("PREFECT_API_URL".into(), json!("http://127.0.0.1:4200/api"));
    env.insert(
        "PREFECT__FLOW_RUN_ID".into(),
        json!(flow_run_id.to_string()),
    );
    env.insert("PREFECT__FLOW_ID".into(), json!(flow_id.to_string()));
    if let Some(Value::Object(rendered)) = configuration.get("env") {
        for (k, v) in rendered {
            env.insert(k.clone(), v.clone());
        }
    }
    env.retain(|_, v| !v.is_null());
    configuration.insert("env".into(), Value::Object(env));
    if !matches!(configuration.get("command"), Some(Value::String(s)) if !s.trim().is_empty()) {
        configuration.insert("command".into(), json!("prefect flow-run execute"));
    }
    if !matches!(configuration.get("name"), Some(Value::String(s)) if !s.is_empty()) {
        configuration.insert("name".into(), json!("elegant-caribou"));
    }
    let mut labels = match configuration.remove("labels") {
        Some(Value::Object(l)) => l,
        _ => Map::new(),
    };
    labels.insert(
        "prefect.io/flow-run-id".into(),
        json!(flow_run_id.to_string()),
    );
    labels.insert("prefect.io/flow-run-name".into(), json!("elegant-caribou"));
    labels.insert("prefect.io/work-pool-name".into(), json!("ecs-pool"));
    configuration.insert("labels".into(), Value::Object(labels));

    pushpool_providers::Job {
        flow_run_id,
        flow_run_name: "elegant-caribou".into(),
        pool_type: "ecs:push".into(),
        configuration,
        idempotency_key: format!("pushpool-{flow_run_id}-{attempt}"),
    }
}

/// A constraint the ECS model states only in a member's documentation text.
pub struct Documented {
    /// The structure shape.
    pub shape: &'static str,
    /// The member.
    pub member: &'static str,
    /// What it requires.
    pub rule: Rule,
    /// The documentation's words.
    pub quote: &'static str,
}

/// A documented constraint.
pub enum Rule {
    /// A string of at most `max` characters, each accepted by `allowed`.
    Chars {
        /// Maximum length.
        max: usize,
        /// Accepted characters.
        allowed: fn(char) -> bool,
    },
    /// A list of at most `max` items.
    Items {
        /// Maximum length.
        max: usize,
    },
    /// An integer in `min..=max`.
    Range {
        /// Minimum.
        min: i64,
        /// Maximum.
        max: i64,
    },
    /// The member must not be given together with the other member.
    ExclusiveWith(&'static str),
}

fn ascii_33_to_126(c: char) -> bool {
    ('!'..='~').contains(&c)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn started_by_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '/'
}

/// The constraints of the model's documentation text that the fake enforces (botocore
/// 1.44.8 `ecs/2014-11-13/service-2.json`, the member's `documentation`).
pub const DOCUMENTED: &[Documented] = &[
    Documented {
        shape: "RunTaskRequest",
        member: "clientToken",
        rule: Rule::Chars {
            max: 64,
            allowed: ascii_33_to_126,
        },
        quote: "Up to 64 characters are allowed. The valid characters are characters in the range of 33-126, inclusive.",
    },
    Documented {
        shape: "RunTaskRequest",
        member: "startedBy",
        rule: Rule::Chars {
            max: 128,
            allowed: started_by_char,
        },
        quote: "Up to 128 letters (uppercase and lowercase), numbers, hyphens (-), forward slash (/), and underscores (_) are allowed.",
    },
    Documented {
        shape: "RunTaskRequest",
        member: "count",
        rule: Rule::Range { min: 1, max: 10 },
        quote: "You can specify up to 10 tasks for each call.",
    },
    Documented {
        shape: "RunTaskRequest",
        member: "capacityProviderStrategy",
        rule: Rule::ExclusiveWith("launchType"),
        quote: "If a capacityProviderStrategy is specified, the launchType parameter must be omitted.",
    },
    Documented {
        shape: "DescribeTasksRequest",
        member: "tasks",
        rule: Rule::Items { max: 100 },
        quote: "A list of up to 100 task IDs or full ARN entries.",
    },
    Documented {
        shape: "RegisterTaskDefinitionRequest",
        member: "family",
        rule: Rule::Chars {
            max: 255,
            allowed: name_char,
        },
        quote: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.",
    },
    Documented {
        shape: "ContainerDefinition",
        member: "name",
        rule: Rule::Chars {
            max: 255,
            allowed: name_char,
        },
        quote: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.",
    },
];

/// The ECS API model, read once per test process.
struct Spec {
    shapes: Map<String, Value>,
    operations: Map<String, Value>,
}

impl Spec {
    fn get() -> Arc<Spec> {
        static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = crate::tools::workspace_root().join("tests/fixtures/ecs/service-2.json");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read the ECS model {}: {e}", path.display()));
            let mut model: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("the ECS model {} is not JSON: {e}", path.display()));
            let take = |model: &mut Value, key: &str| match model.get_mut(key).map(Value::take) {
                Some(Value::Object(map)) => map,
                _ => panic!("the ECS model has no {key}"),
            };
            let shapes = take(&mut model, "shapes");
            let operations = take(&mut model, "operations");
            Arc::new(Spec { shapes, operations })
        })
        .clone()
    }

    fn input_shape(&self, op: &str) -> Option<&str> {
        self.operations.get(op)?.pointer("/input/shape")?.as_str()
    }

    fn output_shape(&self, op: &str) -> Option<&str> {
        self.operations.get(op)?.pointer("/output/shape")?.as_str()
    }

    /// Checks `value` against shape `name`; each breach is pushed as `<path>: <what>`.
    fn check(&self, name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
        let Some(shape) = self.shapes.get(name) else {
            out.push(format!("{path}: the model has no shape {name}"));
            return;
        };
        let kind = shape["type"].as_str().unwrap_or_default();
        let min = shape.get("min").and_then(Value::as_f64);
        let max = shape.get("max").and_then(Value::as_f64);
        match kind {
            "structure" => {
                let Value::Object(map) = value else {
                    out.push(format!("{path}: {name} must be an object, got {value}"));
                    return;
                };
                let members = shape["members"].as_object().cloned().unwrap_or_default();
                for required in shape["required"].as_array().into_iter().flatten() {
                    let required = required.as_str().unwrap_or_default();
                    if !map.contains_key(required) {
                        out.push(format!(
                            "{path}: required member {required} of {name} is missing"
                        ));
                    }
                }
                for (key, v) in map {
                    let member_path = format!("{path}.{key}");
                    let Some(member) = members.get(key) else {
                        out.push(format!("{member_path}: {name} has no member {key}"));
                        continue;
                    };
                    let member_shape = member["shape"].as_str().unwrap_or_default();
                    self.check(member_shape, v, &member_path, out);
                    for doc in DOCUMENTED
                        .iter()
                        .filter(|d| d.shape == name && d.member == key)
                    {
                        check_documented(doc, v, map, &member_path, out);
                    }
                }
            }
            "list" => {
                let Value::Array(items) = value else {
                    out.push(format!("{path}: {name} must be a list, got {value}"));
                    return;
                };
                check_bounds(items.len() as f64, min, max, "items", path, out);
                let member = shape
                    .pointer("/member/shape")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    self.check(member, item, &format!("{path}[{i}]"), out);
                }
            }
            "map" => {
                let Value::Object(map) = value else {
                    out.push(format!("{path}: {name} must be an object, got {value}"));
                    return;
                };
                let key_shape = shape
                    .pointer("/key/shape")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let value_shape = shape
                    .pointer("/value/shape")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for (k, v) in map {
                    self.check(
                        key_shape,
                        &Value::String(k.clone()),
                        &format!("{path}.<key {k}>"),
                        out,
                    );
                    self.check(value_shape, v, &format!("{path}.{k}"), out);
                }
            }
            "string" => {
                let Value::String(s) = value else {
                    out.push(format!("{path}: {name} must be a string, got {value}"));
                    return;
                };
                if let Some(allowed) = shape.get("enum").and_then(Value::as_array) {
                    if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                        out.push(format!("{path}: {s:?} is not a value of enum {name}"));
                    }
                }
                check_bounds(s.chars().count() as f64, min, max, "characters", path, out);
                if let Some(pattern) = shape.get("pattern").and_then(Value::as_str) {
                    match class_star_matches(pattern, s) {
                        Some(true) => {}
                        Some(false) => out.push(format!("{path}: {s:?} does not match {pattern}")),
                        None => out.push(format!(
                            "{path}: the fake cannot check pattern {pattern} of {name}: extend class_star_matches"
                        )),
                    }
                }
            }
            "integer" | "long" => {
                let Some(n) = value.as_i64() else {
                    out.push(format!("{path}: {name} must be an integer, got {value}"));
                    return;
                };
                check_bounds(n as f64, min, max, "", path, out);
            }
            "double" | "float" => {
                if !value.is_number() {
                    out.push(format!("{path}: {name} must be a number, got {value}"));
                }
            }
            "boolean" => {
                if !value.is_boolean() {
                    out.push(format!("{path}: {name} must be true or false, got {value}"));
                }
            }
            // awsJson timestamps are epoch seconds.
            "timestamp" => {
                if !value.is_number() {
                    out.push(format!("{path}: {name} must be epoch seconds, got {value}"));
                }
            }
            "blob" => {
                if !value.is_string() {
                    out.push(format!("{path}: {name} must be base64 text, got {value}"));
                }
            }
            other => out.push(format!("{path}: the fake cannot check shape type {other}")),
        }
    }
}

fn check_bounds(
    n: f64,
    min: Option<f64>,
    max: Option<f64>,
    unit: &str,
    path: &str,
    out: &mut Vec<String>,
) {
    if let Some(min) = min {
        if n < min {
            out.push(format!("{path}: {n} {unit} is below the model's min {min}"));
        }
    }
    if let Some(max) = max {
        if n > max {
            out.push(format!("{path}: {n} {unit} is above the model's max {max}"));
        }
    }
}

fn check_documented(
    doc: &Documented,
    value: &Value,
    parent: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let broken = match &doc.rule {
        Rule::Chars { max, allowed } => value
            .as_str()
            .is_some_and(|s| s.is_empty() || s.chars().count() > *max || !s.chars().all(allowed)),
        Rule::Items { max } => value.as_array().is_some_and(|a| a.len() > *max),
        Rule::Range { min, max } => value.as_i64().is_some_and(|n| n < *min || n > *max),
        Rule::ExclusiveWith(other) => parent.contains_key(*other),
    };
    if broken {
        out.push(format!(
            "{path}: {value} breaks the model's documented rule \"{}\"",
            doc.quote
        ));
    }
}

/// Matches the model's character-class patterns (`([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`, the only
/// kind reachable from the five operations); `None` for any other form.
fn class_star_matches(pattern: &str, s: &str) -> Option<bool> {
    let p = pattern
        .strip_prefix('(')
        .and_then(|p| p.strip_suffix(')'))
        .unwrap_or(pattern);
    let p = p.strip_prefix('^').unwrap_or(p);
    let p = p.strip_suffix('$').unwrap_or(p);
    let (inner, non_empty) = match p.strip_suffix("]*") {
        Some(inner) => (inner, false),
        None => (p.strip_suffix("]+")?, true),
    };
    let inner = inner.strip_prefix('[')?;
    enum Item {
        Prop(char),
        Char(char),
        Range(char, char),
    }
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        let item = if c == '\\' {
            match chars.next()? {
                'p' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let class = chars.next()?;
                    if chars.next()? != '}' {
                        return None;
                    }
                    Item::Prop(class)
                }
                escaped => Item::Char(escaped),
            }
        } else if chars.peek() == Some(&'-') {
            chars.next();
            match chars.next() {
                Some(end) => Item::Range(c, end),
                None => {
                    items.push(Item::Char(c));
                    Item::Char('-')
                }
            }
        } else {
            Item::Char(c)
        };
        items.push(item);
    }
    for item in &items {
        if let Item::Prop(p) = item {
            if !matches!(p, 'L' | 'N' | 'Z') {
                return None;
            }
        }
    }
    let matches = |c: char| {
        items.iter().any(|item| match *item {
            Item::Prop('L') => c.is_alphabetic(),
            Item::Prop('N') => c.is_numeric(),
            Item::Prop(_) => c.is_whitespace() && !c.is_control(),
            Item::Char(x) => c == x,
            Item::Range(a, b) => (a..=b).contains(&c),
        })
    };
    Some((!non_empty || !s.is_empty()) && s.chars().all(matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_patterns_are_checked() {
        let p = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)";
        assert_eq!(class_star_matches(p, "prefect.io/flow-run-id"), Some(true));
        assert_eq!(class_star_matches(p, "a b@c+d=e"), Some(true));
        assert_eq!(class_star_matches(p, ""), Some(true));
        assert_eq!(class_star_matches(p, "bad*"), Some(false));
        assert_eq!(class_star_matches(r"^[a-z0-9]+$", "abc"), Some(true));
        assert_eq!(class_star_matches(r"^[a-z0-9]+$", ""), Some(false));
        assert_eq!(class_star_matches(r"(a|b)", "a"), None);
    }
}
