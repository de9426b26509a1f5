//! A spec-checked fake of the Cloud Run Admin API v2 (jobs, executions, tasks, operations)
//! and of Google's OAuth token endpoint, on one free loopback port.
//!
//! Every API request is checked against the discovery document
//! (`tests/fixtures/gcp/run.v2.json`, loaded at run time): the path must match one of its
//! `flatPath` templates for that HTTP method, query parameters must be the method's, the
//! `Authorization: Bearer` token must be one the fake's token endpoint issued, and a request
//! body is walked against the method's request schema (unknown fields, output-only fields,
//! JSON types, enum values, `google-duration` and `int64` formats, and fields whose
//! description starts with "Required."). `jobs.create` is also held to what the discovery
//! document says only in prose: a valid `jobId` (RFC 1035 label, at most 63 characters), the
//! `limits` keys and cpu values of `GoogleCloudRunV2ResourceRequirements`, memory sizes,
//! label keys/values and namespaces, and env vars with a `value` or a `valueSource`. A
//! request that breaks them is answered like Google would (400 `INVALID_ARGUMENT`, 401
//! `UNAUTHENTICATED`, 404) **and** recorded in [`FakeCloudRun::violations`], which every
//! test asserts empty. So is a `jobs.run` on a job that is not ready yet (a correct client
//! waits for it).
//!
//! The token endpoint (`POST /token`, the `token_uri` of [`FakeCloudRun::service_account_info`])
//! checks what gcp_auth's `CustomServiceAccount` sends (`reference/specs/gcp/SUMMARY.md`):
//! form-encoded `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`, a
//! JWT with header `{"alg":"RS256","typ":"JWT"}`, claims `iss` = the key's `client_email`,
//! `aud` = the `token_uri`, `scope` with `cloud-platform`, `iat` now and `exp` at most an hour
//! later, and an RS256 signature that verifies with the throwaway key's public key.
//!
//! Behaviour, modelled on Cloud Run (messages marked "modelled" are plausible, not recorded):
//! - `jobs.create` answers a long-running operation; an existing `jobId` is HTTP 409
//!   `ALREADY_EXISTS` "Resource '<job>' already exists." (the message prefect-gcp #254
//!   shows). A new job reads `terminalCondition: Ready` `CONDITION_RECONCILING` on its first
//!   `jobs.get`, then `CONDITION_SUCCEEDED` (or, scripted with
//!   [`JobReadiness::ContainerMissing`], `CONDITION_FAILED` `CONTAINER_MISSING`).
//! - `jobs.run` starts an execution `<job>-<5 characters>`, answered in the operation's
//!   `metadata.name`; each `executions.get` moves it one step along its scripted
//!   [`ExecutionLifecycle`] (default [`ExecutionLifecycle::Succeeds`]).
//! - `executions.cancel` of a running execution ends it cancelled at the next step; of a
//!   finished one, 400 `FAILED_PRECONDITION` (modelled).
//! - `jobs.delete` deletes the job and its executions.
//! - [`FakeCloudRun::inject_error`] answers the next calls of an operation with a Google
//!   error (and `Retry-After`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

/// The project of the fake service account.
pub const PROJECT: &str = "pushpool-test-project";
/// The `client_email` of the fake service account.
pub const CLIENT_EMAIL: &str = "pushpool-runner@pushpool-test-project.iam.gserviceaccount.com";
/// The scope gcp_auth must ask for.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The JWT bearer grant type.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The throwaway test key (`tests/fixtures/gcp/throwaway-test-key.pem`).
pub fn throwaway_key_pem() -> String {
    let path = format!(
        "{}/fixtures/gcp/throwaway-test-key.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// How a job created by the fake becomes ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobReadiness {
    /// `CONDITION_RECONCILING` on the first `jobs.get`, then `CONDITION_SUCCEEDED`.
    Ready,
    /// `CONDITION_RECONCILING`, then `CONDITION_FAILED` with reason `CONTAINER_MISSING` and
    /// `message` (e.g. "Image 'x' not found.").
    ContainerMissing {
        /// The condition's message.
        message: String,
    },
}

/// How an execution started by the fake behaves, one step per `executions.get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionLifecycle {
    /// Pending → running → succeeded (`succeededCount: 1`).
    Succeeds,
    /// Pending → running → failed: `Completed` `CONDITION_FAILED`, `executionReason`
    /// `NON_ZERO_EXIT_CODE`, message "Task <execution>-task0 failed with message: The
    /// container exited with an error." (modelled), the task's
    /// `lastAttemptResult.exitCode` = `exit_code`.
    ExitsNonZero {
        /// The container's exit code.
        exit_code: i64,
    },
    /// Pending → failed without running: `Completed` `CONDITION_FAILED`, no
    /// `executionReason`, `message` (e.g. "Image '<image>' not found.").
    FailsToStart {
        /// The condition's message.
        message: String,
    },
    /// Pending → running, until cancelled.
    RunsUntilCancelled,
}

/// A request the fake accepted (spec-valid) or refused.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudRunCall {
    /// `jobs.create`, `jobs.executions.get`, ...
    pub op: String,
    /// `POST`.
    pub method: String,
    /// The path (`/v2/projects/...`).
    pub path: String,
    /// The raw query.
    pub query: String,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// A token request the fake received, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    /// The JWT header.
    pub header: Value,
    /// The JWT claims.
    pub claims: Value,
    /// Whether the RS256 signature verified with the throwaway key.
    pub signature_valid: bool,
}

/// A spec-checked fake Cloud Run Admin API v2; stopped when dropped.
pub struct FakeCloudRun {
    /// `http://127.0.0.1:<port>/`: [`CloudRunSettings::endpoint`](pushpool_provider_cloud_run::CloudRunSettings).
    pub endpoint: String,
    /// `http://127.0.0.1:<port>/token`: the fake token endpoint.
    pub token_uri: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeCloudRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloudRun")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeCloudRun {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Shared {
    spec: Arc<Spec>,
    token_uri: String,
    public_key: Vec<u8>,
    state: Mutex<FakeState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }
}

struct Injected {
    op: String,
    http: u16,
    status: String,
    message: String,
    retry_after: Option<String>,
    remaining: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Pending,
    Running,
    Succeeded,
    Exited(i64),
    FailedToStart(String),
    Cancelled,
}

impl Step {
    fn finished(&self) -> bool {
        !matches!(self, Step::Pending | Step::Running)
    }
}

struct FakeJob {
    body: Value,
    create_time: String,
    gets: usize,
    readiness: JobReadiness,
    executions: Vec<String>,
    uid: String,
}

struct FakeExecution {
    job: String,
    steps: Vec<Step>,
    step: usize,
    create_time: String,
    start_time: Option<String>,
    completion_time: Option<String>,
    uid: String,
    template: Value,
}

impl FakeExecution {
    fn current(&self) -> &Step {
        &self.steps[self.step.min(self.steps.len() - 1)]
    }
}

#[derive(Default)]
struct FakeState {
    violations: Vec<String>,
    calls: Vec<CloudRunCall>,
    token_requests: Vec<TokenRequest>,
    tokens: Vec<String>,
    token_failures: usize,
    jobs: BTreeMap<String, FakeJob>,
    executions: BTreeMap<String, FakeExecution>,
    operations: HashMap<String, Value>,
    job_scripts: VecDeque<JobReadiness>,
    execution_scripts: VecDeque<ExecutionLifecycle>,
    injected: VecDeque<Injected>,
    next_id: u64,
}

impl FakeState {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl FakeCloudRun {
    /// Starts the fake on a free loopback port.
    ///
    /// # Panics
    /// When the discovery document or the throwaway key cannot be read, or no port can be
    /// bound.
    pub async fn start() -> FakeCloudRun {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake Cloud Run");
        let addr = listener.local_addr().expect("the fake Cloud Run's address");
        let token_uri = format!("http://{addr}/token");
        let shared = Arc::new(Shared {
            spec: Spec::get(),
            token_uri: token_uri.clone(),
            public_key: public_key_der(&throwaway_key_pem()),
            state: Mutex::new(FakeState::default()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCloudRun {
            endpoint: format!("http://{addr}/"),
            token_uri,
            shared,
            server,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.lock()
    }

    /// A service account key JSON (the shape `gcloud iam service-accounts keys create`
    /// writes) with the throwaway key and `token_uri` at this fake.
    pub fn service_account_info(&self) -> Value {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "5f3c0e6f7d2a41b8a9e0c1d2e3f4a5b6c7d8e9f0",
            "private_key": throwaway_key_pem(),
            "client_email": CLIENT_EMAIL,
            "client_id": "104235678901234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/pushpool-runner%40pushpool-test-project.iam.gserviceaccount.com",
            "universe_domain": "googleapis.com"
        })
    }

    /// How the next job `jobs.create` makes becomes ready (in order; unscripted jobs
    /// [`JobReadiness::Ready`]).
    pub fn script_next_job(&self, readiness: JobReadiness) {
        self.state().job_scripts.push_back(readiness);
    }

    /// The lifecycle of the next execution `jobs.run` starts (in order; unscripted
    /// executions [`ExecutionLifecycle::Succeeds`]).
    pub fn script_next_execution(&self, lifecycle: ExecutionLifecycle) {
        self.state().execution_scripts.push_back(lifecycle);
    }

    /// Answers the next `times` calls of `op` (`jobs.create`) with HTTP `http` and
    /// `{"error": {"code", "message", "status"}}`, plus `Retry-After` when given (after the
    /// request was checked against the spec).
    pub fn inject_error(
        &self,
        op: &str,
        http: u16,
        status: &str,
        message: &str,
        retry_after: Option<&str>,
        times: usize,
    ) {
        self.state().injected.push_back(Injected {
            op: op.to_owned(),
            http,
            status: status.to_owned(),
            message: message.to_owned(),
            retry_after: retry_after.map(str::to_owned),
            remaining: times,
        });
    }

    /// Answers the next `times` token requests `400 {"error": "invalid_grant"}`.
    pub fn refuse_tokens(&self, times: usize) {
        self.state().token_failures = times;
    }

    /// Every API call so far, in order.
    pub fn calls(&self) -> Vec<CloudRunCall> {
        self.state().calls.clone()
    }

    /// The calls of `op`, in order.
    pub fn calls_of(&self, op: &str) -> Vec<CloudRunCall> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }

    /// The operations called so far, in order.
    pub fn ops(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.op).collect()
    }

    /// The token requests so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().token_requests.clone()
    }

    /// Breaches of the spec. Must be empty at the end of every test.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// The violations so far, cleared (for tests that break the spec on purpose).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state().violations)
    }

    /// Full names of the jobs that exist.
    pub fn job_names(&self) -> Vec<String> {
        self.state().jobs.keys().cloned().collect()
    }

    /// Full names of every execution started, in order of creation.
    pub fn execution_names(&self) -> Vec<String> {
        let state = self.state();
        let mut all: Vec<(&String, &FakeExecution)> = state.executions.iter().collect();
        all.sort_by(|a, b| a.1.create_time.cmp(&b.1.create_time).then(a.0.cmp(b.0)));
        all.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// Sends a raw request (for negative tests of the fake itself).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{}", self.endpoint, path.trim_start_matches('/'));
        let mut req = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the fake answers");
        let status = resp.status().as_u16();
        let value = resp.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    /// A token the fake accepts (as if its token endpoint had issued it).
    pub fn issue_token(&self) -> String {
        let mut state = self.state();
        let token = format!("ya29.fake-{}", state.next());
        state.tokens.push(token.clone());
        token
    }
}

/// The DER `RSAPublicKey` of a PKCS#8 PEM private key.
fn public_key_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("the throwaway key is base64");
    let pair = ring::rsa::KeyPair::from_pkcs8(&der).expect("the throwaway key is PKCS#8 RSA");
    pair.public().as_ref().to_vec()
}

fn google_error(http: u16, status: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST);
    (
        code,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        json!({"error": {"code": http, "message": message, "status": status}}).to_string(),
    )
        .into_response()
}

fn ok_json(value: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        value.to_string(),
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
    if uri.path() == "/token" {
        return token(&shared, &method, &headers, &body);
    }
    let mut state = shared.lock();
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let parsed_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                state
                    .violations
                    .push(format!("{method} {path}: body is not JSON: {e}"));
                return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
            }
        }
    };
    let Some((api_method, params)) = shared.spec.route(method.as_str(), &path) else {
        state.violations.push(format!(
            "{method} {path}: no Cloud Run v2 method has this URL template and HTTP method"
        ));
        return google_error(
            404,
            "NOT_FOUND",
            &format!("The requested URL {path} was not found on this server."),
        );
    };
    let op = api_method.op.clone();
    state.calls.push(CloudRunCall {
        op: op.clone(),
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: parsed_body.clone(),
    });
    let mut violations = Vec::new();
    // Authorization.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(t) if state.tokens.iter().any(|k| k == t) => {}
        Some(_) => violations.push(format!(
            "{op}: Authorization Bearer token not issued by the token endpoint"
        )),
        None => violations.push(format!("{op}: no Authorization: Bearer header")),
    }
    if violations.is_empty() {
        // Query parameters.
        let query_params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (k, _) in &query_params {
            let known = api_method
                .parameters
                .get(k)
                .and_then(|p| p.get("location"))
                .and_then(Value::as_str)
                == Some("query");
            if !known && !matches!(k.as_str(), "alt" | "prettyPrint" | "fields" | "$.xgafv") {
                violations.push(format!("{op}: unknown query parameter {k:?}"));
            }
        }
        // Body.
        match &api_method.request {
            Some(schema) => {
                if parsed_body.is_null() {
                    violations.push(format!("{op}: the request needs a {schema} body"));
                } else {
                    let ct = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if !ct.starts_with("application/json") {
                        violations
                            .push(format!("{op}: Content-Type {ct:?} is not application/json"));
                    }
                    shared.spec.check(
                        &json!({"$ref": schema}),
                        &parsed_body,
                        "body",
                        &mut violations,
                    );
                }
            }
            None => {
                if !parsed_body.is_null() {
                    violations.push(format!("{op}: {method} takes no body"));
                }
            }
        }
        if op == "jobs.create" {
            let job_id = query_params
                .iter()
                .find(|(k, _)| k == "jobId")
                .map(|(_, v)| v.clone());
            check_create(job_id.as_deref(), &parsed_body, &mut violations);
        }
    }
    if !violations.is_empty() {
        let unauthenticated = violations.iter().any(|v| v.contains("Bearer"));
        let message = violations.join("; ");
        state.violations.extend(violations);
        return if unauthenticated {
            google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            )
        } else {
            google_error(400, "INVALID_ARGUMENT", &message)
        };
    }
    // Injected errors.
    if let Some(pos) = state.injected.iter().position(|i| i.op == op) {
        let (http, status, message, retry_after, done) = {
            let i = &mut state.injected[pos];
            i.remaining = i.remaining.saturating_sub(1);
            (
                i.http,
                i.status.clone(),
                i.message.clone(),
                i.retry_after.clone(),
                i.remaining == 0,
            )
        };
        if done {
            state.injected.remove(pos);
        }
        let mut response = google_error(http, &status, &message);
        if let Some(ra) = retry_after.and_then(|r| r.parse().ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, ra);
        }
        return response;
    }
    let p = |k: &str| params.get(k).cloned().unwrap_or_default();
    let parent = format!(
        "projects/{}/locations/{}",
        p("projectsId"),
        p("locationsId")
    );
    match op.as_str() {
        "jobs.create" => {
            let job_id = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "jobId")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| "generated-job".into());
            let name = format!("{parent}/jobs/{job_id}");
            if state.jobs.contains_key(&name) {
                return google_error(
                    409,
                    "ALREADY_EXISTS",
                    &format!("Resource '{job_id}' already exists."),
                );
            }
            let readiness = state.job_scripts.pop_front().unwrap_or(JobReadiness::Ready);
            let uid = format!("00000000-0000-4000-8000-{:012}", state.next());
            state.jobs.insert(
                name.clone(),
                FakeJob {
                    body: parsed_body,
                    create_time: now_rfc3339(),
                    gets: 0,
                    readiness,
                    executions: Vec::new(),
                    uid,
                },
            );
            let job = job_json(&name, &state.jobs[&name], &state);
            operation(&mut state, &parent, "google.cloud.run.v2.Job", job, false)
        }
        "jobs.get" => {
            let name = format!("{parent}/jobs/{}", p("jobsId"));
            let Some(job) = state.jobs.get_mut(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            job.gets += 1;
            let json = job_json(&name, &state.jobs[&name], &state);
            ok_json(json)
        }
        "jobs.run" => {
            let job_id = p("jobsId");
            let job_id = job_id.trim_end_matches(":run").to_owned();
            let name = format!("{parent}/jobs/{job_id}");
            let Some(job) = state.jobs.get(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            if !job_ready(job) {
                state.violations.push(format!(
                    "jobs.run: {name} is not ready (a client waits for Ready)"
                ));
                return google_error(
                    400,
                    "FAILED_PRECONDITION",
                    &format!("Job {job_id} is not ready."),
                );
            }
            let template = job
                .body
                .pointer("/template/template")
                .cloned()
                .unwrap_or(Value::Null);
            let suffix: String = {
                let n = state.next();
                let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
                (0..5)
                    .map(|i| alphabet[((n * 7919 + i * 31) % 36) as usize] as char)
                    .collect()
            };
            let exec_name = format!("{name}/executions/{job_id}-{suffix}");
            let lifecycle = state
                .execution_scripts
                .pop_front()
                .unwrap_or(ExecutionLifecycle::Succeeds);
            let short = format!("{job_id}-{suffix}");
            let steps = match lifecycle {
                ExecutionLifecycle::Succeeds => vec![Step::Pending, Step::Running, Step::Succeeded],
                ExecutionLifecycle::ExitsNonZero { exit_code } => {
                    vec![Step::Pending, Step::Running, Step::Exited(exit_code)]
                }
                ExecutionLifecycle::FailsToStart { message } => {
                    vec![Step::Pending, Step::FailedToStart(message)]
                }
                ExecutionLifecycle::RunsUntilCancelled => vec![Step::Pending, Step::Running],
            };
            let uid = format!("00000000-0000-4000-9000-{:012}", state.next());
            state.executions.insert(
                exec_name.clone(),
                FakeExecution {
                    job: job_id.clone(),
                    steps,
                    step: 0,
                    create_time: now_rfc3339(),
                    start_time: None,
                    completion_time: None,
                    uid,
                    template,
                },
            );
            if let Some(job) = state.jobs.get_mut(&name) {
                job.executions.push(exec_name.clone());
            }
            let _ = short;
            let exec = execution_json(&exec_name, &state.executions[&exec_name]);
            operation(
                &mut state,
                &parent,
                "google.cloud.run.v2.Execution",
                exec,
                false,
            )
        }
        "jobs.delete" => {
            let name = format!("{parent}/jobs/{}", p("jobsId"));
            let Some(job) = state.jobs.remove(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            for e in &job.executions {
                state.executions.remove(e);
            }
            let mut json = job_json(&name, &job, &state);
            json["deleteTime"] = json!(now_rfc3339());
            operation(&mut state, &parent, "google.cloud.run.v2.Job", json, true)
        }
        "jobs.executions.get" => {
            let name = format!(
                "{parent}/jobs/{}/executions/{}",
                p("jobsId"),
                p("executionsId")
            );
            let Some(exec) = state.executions.get_mut(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            advance(exec);
            ok_json(execution_json(&name, exec))
        }
        "jobs.executions.cancel" => {
            let short = p("executionsId");
            let short = short.trim_end_matches(":cancel").to_owned();
            let name = format!("{parent}/jobs/{}/executions/{short}", p("jobsId"));
            let Some(exec) = state.executions.get_mut(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            if exec.current().finished() {
                return google_error(
                    400,
                    "FAILED_PRECONDITION",
                    &format!("Execution {short} has already completed."),
                );
            }
            let current = exec.step.min(exec.steps.len() - 1);
            exec.steps.truncate(current + 1);
            exec.steps.push(Step::Cancelled);
            let json = execution_json(&name, exec);
            operation(
                &mut state,
                &parent,
                "google.cloud.run.v2.Execution",
                json,
                false,
            )
        }
        "jobs.executions.tasks.list" => {
            let name = format!(
                "{parent}/jobs/{}/executions/{}",
                p("jobsId"),
                p("executionsId")
            );
            let Some(exec) = state.executions.get(&name) else {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Resource '{name}' was not found"),
                );
            };
            ok_json(json!({"tasks": [task_json(&name, exec)]}))
        }
        "operations.get" => {
            let name = format!("{parent}/operations/{}", p("operationsId"));
            match state.operations.get(&name) {
                Some(op) => {
                    let mut op = op.clone();
                    op["done"] = json!(true);
                    ok_json(op)
                }
                None => google_error(404, "NOT_FOUND", &format!("Operation '{name}' not found")),
            }
        }
        other => {
            state.violations.push(format!(
                "{other}: not used by pushpool (the fake does not implement it)"
            ));
            google_error(
                501,
                "UNIMPLEMENTED",
                &format!("{other} is not implemented by the fake"),
            )
        }
    }
}

fn job_ready(job: &FakeJob) -> bool {
    job.gets >= 2 && job.readiness == JobReadiness::Ready
}

fn advance(exec: &mut FakeExecution) {
    if exec.step + 1 < exec.steps.len() {
        exec.step += 1;
        let now = now_rfc3339();
        match exec.current().clone() {
            Step::Running => exec.start_time = Some(now),
            Step::Pending => {}
            _ => {
                if exec.start_time.is_none()
                    && matches!(exec.current(), Step::Succeeded | Step::Exited(_))
                {
                    exec.start_time = Some(now.clone());
                }
                exec.completion_time = Some(now);
            }
        }
    }
}

fn operation(
    state: &mut FakeState,
    parent: &str,
    kind: &str,
    resource: Value,
    done: bool,
) -> Response {
    let id = format!("7c1f0e2a-0000-4000-a000-{:012}", state.next());
    let name = format!("{parent}/operations/{id}");
    let mut metadata = resource.clone();
    if let Some(m) = metadata.as_object_mut() {
        let mut with_type = Map::new();
        with_type.insert("@type".into(), json!(format!("type.googleapis.com/{kind}")));
        with_type.extend(m.clone());
        *m = with_type;
    }
    let mut op = json!({"name": name, "metadata": metadata, "done": done});
    if done {
        op["response"] = metadata.clone();
    }
    state.operations.insert(name, op.clone());
    ok_json(op)
}

fn job_json(name: &str, job: &FakeJob, state: &FakeState) -> Value {
    let mut template = job.body.get("template").cloned().unwrap_or(json!({}));
    if template.get("taskCount").is_none() {
        template["taskCount"] = json!(1);
    }
    if template.get("parallelism").is_none() {
        template["parallelism"] = json!(1);
    }
    if template.pointer("/template/maxRetries").is_none() {
        template["template"]["maxRetries"] = json!(3);
    }
    if template.pointer("/template/timeout").is_none() {
        template["template"]["timeout"] = json!("600s");
    }
    let condition = if job.gets < 2 {
        json!({"type": "Ready", "state": "CONDITION_RECONCILING",
            "lastTransitionTime": job.create_time})
    } else {
        match &job.readiness {
            JobReadiness::Ready => json!({"type": "Ready", "state": "CONDITION_SUCCEEDED",
                "lastTransitionTime": job.create_time}),
            JobReadiness::ContainerMissing { message } => json!({"type": "Ready",
                "state": "CONDITION_FAILED", "reason": "CONTAINER_MISSING", "message": message,
                "lastTransitionTime": job.create_time}),
        }
    };
    let mut out = json!({
        "name": name,
        "uid": job.uid,
        "generation": "1",
        "labels": job.body.get("labels").cloned().unwrap_or(json!({})),
        "createTime": job.create_time,
        "updateTime": job.create_time,
        "creator": CLIENT_EMAIL,
        "lastModifier": CLIENT_EMAIL,
        "client": job.body.get("client").cloned().unwrap_or(Value::Null),
        "launchStage": job.body.get("launchStage").cloned().unwrap_or(json!("GA")),
        "template": template,
        "observedGeneration": "1",
        "terminalCondition": condition,
        "conditions": [],
        "reconciling": job.gets < 2,
        "etag": format!("\"{}\"", job.uid),
    });
    if let Some(m) = out.as_object_mut() {
        m.retain(|_, v| !v.is_null());
        if !job.executions.is_empty() {
            m.insert("executionCount".into(), json!(job.executions.len()));
        }
        if let Some(latest) = job.executions.last() {
            let status = state
                .executions
                .get(latest)
                .map_or("EXECUTION_PENDING", |e| match e.current() {
                    Step::Pending => "EXECUTION_PENDING",
                    Step::Running => "EXECUTION_RUNNING",
                    Step::Succeeded => "EXECUTION_SUCCEEDED",
                    Step::Cancelled => "EXECUTION_CANCELLED",
                    Step::Exited(_) | Step::FailedToStart(_) => "EXECUTION_FAILED",
                });
            let created = state
                .executions
                .get(latest)
                .map(|e| e.create_time.clone())
                .unwrap_or_default();
            m.insert(
                "latestCreatedExecution".into(),
                json!({"name": latest, "createTime": created, "completionStatus": status}),
            );
        }
    }
    out
}

fn execution_json(name: &str, exec: &FakeExecution) -> Value {
    let short = name.rsplit('/').next().unwrap_or_default();
    let step = exec.current();
    let (state, reason, message, counter) = match step {
        Step::Pending => ("CONDITION_PENDING", None, None, None),
        Step::Running => ("CONDITION_RECONCILING", None, None, Some("runningCount")),
        Step::Succeeded => (
            "CONDITION_SUCCEEDED",
            None,
            Some("Execution completed successfully.".to_owned()),
            Some("succeededCount"),
        ),
        Step::Exited(_) => (
            "CONDITION_FAILED",
            Some("NON_ZERO_EXIT_CODE"),
            Some(format!(
                "Task {short}-task0 failed with message: The container exited with an error."
            )),
            Some("failedCount"),
        ),
        Step::FailedToStart(m) => (
            "CONDITION_FAILED",
            None,
            Some(m.clone()),
            Some("failedCount"),
        ),
        Step::Cancelled => (
            "CONDITION_FAILED",
            Some("CANCELLED"),
            Some("The execution was cancelled.".to_owned()),
            Some("cancelledCount"),
        ),
    };
    let mut completed = json!({"type": "Completed", "state": state,
        "lastTransitionTime": exec.completion_time.clone().unwrap_or(exec.create_time.clone())});
    if let Some(r) = reason {
        completed["executionReason"] = json!(r);
    }
    if let Some(m) = message {
        completed["message"] = json!(m);
    }
    let mut out = json!({
        "name": name,
        "uid": exec.uid,
        "generation": "1",
        "createTime": exec.create_time,
        "launchStage": "GA",
        "job": exec.job,
        "parallelism": 1,
        "taskCount": 1,
        "template": {"taskCount": 1, "template": exec.template},
        "conditions": [
            {"type": "ResourcesAvailable", "state": if matches!(step, Step::Pending) { "CONDITION_RECONCILING" } else { "CONDITION_SUCCEEDED" },
                "lastTransitionTime": exec.create_time},
            completed
        ],
        "observedGeneration": "1",
        "logUri": format!("https://console.cloud.google.com/logs/viewer?project={PROJECT}&advancedFilter=resource.type%3D%22cloud_run_job%22%0Alabels.%22run.googleapis.com/execution_name%22%3D%22{short}%22"),
        "etag": format!("\"{}\"", exec.uid),
    });
    if let Some(c) = counter {
        out[c] = json!(1);
    }
    if let Some(t) = &exec.start_time {
        out["startTime"] = json!(t);
    }
    if let Some(t) = &exec.completion_time {
        out["completionTime"] = json!(t);
    }
    out
}

fn task_json(execution: &str, exec: &FakeExecution) -> Value {
    let short = execution.rsplit('/').next().unwrap_or_default();
    let mut task = json!({
        "name": format!("{execution}/tasks/{short}-task0"),
        "job": exec.job,
        "execution": short,
        "index": 0,
        "retried": 0,
    });
    match exec.current() {
        Step::Exited(code) => {
            task["lastAttemptResult"] = json!({"exitCode": code,
                "status": {"code": 2, "message": "The container exited with an error."}});
        }
        Step::Succeeded => task["lastAttemptResult"] = json!({"status": {}}),
        _ => {}
    }
    task
}

/// What the discovery document says only in prose about `jobs.create`.
fn check_create(job_id: Option<&str>, body: &Value, out: &mut Vec<String>) {
    match job_id {
        None => out.push("jobs.create: no jobId (pushpool must name its jobs)".into()),
        Some(id) => {
            let b = id.as_bytes();
            let valid = !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_lowercase()
                && b[b.len() - 1] != b'-'
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
            if !valid {
                out.push(format!(
                    "jobs.create: jobId {id:?} is not a lowercase RFC 1035 label of at most 63 characters"
                ));
            }
        }
    }
    let containers = body
        .pointer("/template/template/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        out.push("jobs.create: template.template.containers is empty".into());
    }
    for (i, c) in containers.iter().enumerate() {
        if let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) {
            for (k, v) in limits {
                let ok = match k.as_str() {
                    "cpu" => v.as_str().is_some_and(|s| {
                        [
                            "1", "2", "4", "6", "8", "1000m", "2000m", "4000m", "6000m", "8000m",
                        ]
                        .contains(&s)
                    }),
                    "memory" => v.as_str().is_some_and(|s| {
                        let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                        let unit = &s[digits.len()..];
                        !digits.is_empty()
                            && digits.bytes().all(|b| b.is_ascii_digit())
                            && ["Mi", "Gi", "M", "G"].contains(&unit)
                    }),
                    "nvidia.com/gpu" => v.as_str() == Some("1"),
                    _ => false,
                };
                if !ok {
                    out.push(format!(
                        "jobs.create: containers[{i}].resources.limits.{k} = {v} is not supported"
                    ));
                }
            }
        }
        for (j, e) in c
            .get("env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let has_value = e.get("value").is_some();
            let has_source = e.get("valueSource").is_some();
            if has_value && has_source {
                out.push(format!(
                    "jobs.create: containers[{i}].env[{j}] has both value and valueSource"
                ));
            }
        }
    }
    for pointer in ["/labels", "/template/labels"] {
        if let Some(labels) = body.pointer(pointer).and_then(Value::as_object) {
            if labels.len() > 64 {
                out.push(format!("jobs.create: {pointer} has more than 64 labels"));
            }
            for (k, v) in labels {
                let key_ok = k.len() <= 63
                    && k.starts_with(|c: char| c.is_ascii_lowercase())
                    && k.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                let value_ok = v.as_str().is_some_and(|s| {
                    s.len() <= 63
                        && s.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                        })
                });
                let reserved = [
                    "run.googleapis.com",
                    "cloud.googleapis.com",
                    "serving.knative.dev",
                    "autoscaling.knative.dev",
                ]
                .iter()
                .any(|ns| k.starts_with(ns));
                if !key_ok || !value_ok || reserved {
                    out.push(format!(
                        "jobs.create: label {k:?}: {v} breaks Cloud Run's label rules"
                    ));
                }
            }
        }
    }
}

fn token(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut state = shared.lock();
    let mut violations = Vec::new();
    if method != Method::POST {
        violations.push(format!("token endpoint: {method} instead of POST"));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct != "application/x-www-form-urlencoded" {
        violations.push(format!("token endpoint: Content-Type {ct:?}"));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some(GRANT_TYPE) {
        violations.push(format!(
            "token endpoint: grant_type {:?} is not the JWT bearer grant",
            form.get("grant_type")
        ));
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = assertion.split('.').collect();
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()
    };
    let (header_json, claims, signature_valid) = if parts.len() == 3 {
        let h: Value = decode(parts[0])
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let c: Value = decode(parts[1])
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        let valid = decode(parts[2]).is_some_and(|sig| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                &shared.public_key,
            )
            .verify(signing_input.as_bytes(), &sig)
            .is_ok()
        });
        (h, c, valid)
    } else {
        violations.push("token endpoint: the assertion is not a JWT".into());
        (Value::Null, Value::Null, false)
    };
    if header_json != json!({"alg": "RS256", "typ": "JWT"}) {
        violations.push(format!("token endpoint: JWT header {header_json}"));
    }
    if claims["iss"] != json!(CLIENT_EMAIL) {
        violations.push(format!("token endpoint: iss {}", claims["iss"]));
    }
    if claims["aud"] != json!(shared.token_uri) {
        violations.push(format!("token endpoint: aud {}", claims["aud"]));
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|x| x == CLOUD_PLATFORM))
    {
        violations.push(format!("token endpoint: scope {}", claims["scope"]));
    }
    let iat = claims["iat"].as_i64().unwrap_or_default();
    let exp = claims["exp"].as_i64().unwrap_or_default();
    if (iat - now_secs()).abs() > 300 || exp <= iat || exp - iat > 3600 {
        violations.push(format!("token endpoint: iat {iat} / exp {exp}"));
    }
    if !signature_valid {
        violations.push("token endpoint: the JWT signature does not verify".into());
    }
    state.token_requests.push(TokenRequest {
        header: header_json,
        claims,
        signature_valid,
    });
    if !violations.is_empty() {
        state.violations.extend(violations);
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "invalid_request", "error_description": "Invalid request."})
                .to_string(),
        )
            .into_response();
    }
    if state.token_failures > 0 {
        state.token_failures -= 1;
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                .to_string(),
        )
            .into_response();
    }
    let token = format!("ya29.fake-{}", state.next());
    state.tokens.push(token.clone());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
    )
        .into_response()
}

/// One API method of the discovery document.
struct ApiMethod {
    /// `jobs.create` (the method id without `run.projects.locations.`).
    op: String,
    http_method: String,
    /// `flatPath` split on `/`.
    template: Vec<String>,
    parameters: Map<String, Value>,
    /// The request schema's name.
    request: Option<String>,
}

/// The discovery document, parsed once.
struct Spec {
    methods: Vec<ApiMethod>,
    schemas: Map<String, Value>,
}

impl Spec {
    fn get() -> Arc<Spec> {
        static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = format!("{}/fixtures/gcp/run.v2.json", env!("CARGO_MANIFEST_DIR"));
            let text =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
            let doc: Value = serde_json::from_str(&text).expect("run.v2.json is JSON");
            let mut methods = Vec::new();
            collect_methods(&doc["resources"], &mut methods);
            Arc::new(Spec {
                methods,
                schemas: doc["schemas"].as_object().cloned().unwrap_or_default(),
            })
        })
        .clone()
    }

    /// The method whose template matches, and the path parameters.
    fn route(&self, method: &str, path: &str) -> Option<(&ApiMethod, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        'methods: for m in self.methods.iter().filter(|m| m.http_method == method) {
            if m.template.len() != segments.len() {
                continue;
            }
            let mut params = HashMap::new();
            for (t, s) in m.template.iter().zip(&segments) {
                if let Some(inner) = t.strip_prefix('{') {
                    let (name, verb) = match inner.split_once('}') {
                        Some((name, rest)) => (name, rest),
                        None => continue 'methods,
                    };
                    let value = if verb.is_empty() {
                        *s
                    } else {
                        match s.strip_suffix(verb) {
                            Some(v) => v,
                            None => continue 'methods,
                        }
                    };
                    if value.is_empty() || value.contains(':') {
                        continue 'methods;
                    }
                    params.insert(name.to_owned(), value.to_owned());
                } else if t != s {
                    continue 'methods;
                }
            }
            return Some((m, params));
        }
        None
    }

    /// Walks `value` against `schema`.
    fn check(&self, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match self.schemas.get(r) {
                Some(s) => s,
                None => return,
            },
            None => schema,
        };
        let kind = schema.get("type").and_then(Value::as_str).unwrap_or("any");
        match kind {
            "object" => {
                let Some(obj) = value.as_object() else {
                    out.push(format!("{path}: must be an object"));
                    return;
                };
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, v) in obj {
                        match props.get(k) {
                            None => out.push(format!("{path}.{k}: unknown field")),
                            Some(p) => {
                                let output_only = p.get("readOnly") == Some(&Value::Bool(true))
                                    || p.get("description")
                                        .and_then(Value::as_str)
                                        .is_some_and(|d| d.starts_with("Output only."));
                                if output_only {
                                    out.push(format!("{path}.{k}: output-only field in a request"));
                                } else {
                                    self.check(p, v, &format!("{path}.{k}"), out);
                                }
                            }
                        }
                    }
                    for (k, p) in props {
                        let required = p
                            .get("description")
                            .and_then(Value::as_str)
                            .is_some_and(|d| d.starts_with("Required."));
                        if required && !obj.contains_key(k) {
                            out.push(format!("{path}.{k}: required"));
                        }
                    }
                } else if let Some(items) = schema.get("additionalProperties") {
                    for (k, v) in obj {
                        self.check(items, v, &format!("{path}.{k}"), out);
                    }
                }
            }
            "array" => {
                let Some(items) = value.as_array() else {
                    out.push(format!("{path}: must be a list"));
                    return;
                };
                if let Some(item_schema) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item_schema, v, &format!("{path}[{i}]"), out);
                    }
                }
            }
            "string" => {
                let Some(s) = value.as_str() else {
                    out.push(format!("{path}: must be a string, not {value}"));
                    return;
                };
                if let Some(values) = schema.get("enum").and_then(Value::as_array) {
                    if !values.iter().any(|v| v.as_str() == Some(s)) {
                        out.push(format!("{path}: {s:?} is not one of its enum values"));
                    }
                }
                match schema.get("format").and_then(Value::as_str) {
                    Some("google-duration") => {
                        let ok = s.strip_suffix('s').is_some_and(|n| {
                            let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
                            !whole.is_empty()
                                && whole.bytes().all(|b| b.is_ascii_digit())
                                && frac.len() <= 9
                                && frac.bytes().all(|b| b.is_ascii_digit())
                        });
                        if !ok {
                            out.push(format!("{path}: {s:?} is not a duration (\"600s\")"));
                        }
                    }
                    Some("int64") if s.parse::<i64>().is_err() => {
                        out.push(format!("{path}: {s:?} is not an int64"));
                    }
                    _ => {}
                }
            }
            "integer" => {
                let ok = value.as_i64().is_some()
                    || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                if !ok {
                    out.push(format!("{path}: must be an integer, not {value}"));
                }
            }
            "number" if !value.is_number() => {
                out.push(format!("{path}: must be a number, not {value}"));
            }
            "boolean" if !value.is_boolean() => {
                out.push(format!("{path}: must be true or false, not {value}"));
            }
            _ => {}
        }
    }
}

fn collect_methods(resources: &Value, out: &mut Vec<ApiMethod>) {
    let Some(resources) = resources.as_object() else {
        return;
    };
    for resource in resources.values() {
        if let Some(methods) = resource.get("methods").and_then(Value::as_object) {
            for m in methods.values() {
                let id = m["id"].as_str().unwrap_or_default();
                let op = id.trim_start_matches("run.projects.locations.").to_owned();
                out.push(ApiMethod {
                    op,
                    http_method: m["httpMethod"].as_str().unwrap_or_default().to_owned(),
                    template: m["flatPath"]
                        .as_str()
                        .unwrap_or_default()
                        .split('/')
                        .map(str::to_owned)
                        .collect(),
                    parameters: m["parameters"].as_object().cloned().unwrap_or_default(),
                    request: m
                        .pointer("/request/$ref")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
        if let Some(children) = resource.get("resources") {
            collect_methods(children, out);
        }
    }
}
