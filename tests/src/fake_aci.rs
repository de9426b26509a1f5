//! A spec-checked fake Azure: Azure Resource Manager for `Microsoft.ContainerInstance`
//! container groups (and the resource group read pushpool needs for a location) plus an
//! Entra ID token endpoint, in one HTTP server on a free loopback port.
//!
//! **Entra ID** (`POST /{tenant}/oauth2/v2.0/token`): the OAuth 2.0 client-credentials request
//! of `azure_identity::ClientSecretCredential` (`specs/azure/SUMMARY.md`, "Entra ID
//! client-credentials token"): form-encoded `grant_type=client_credentials`, `client_id`,
//! `client_secret`, `scope=https://management.azure.com/.default`. A wrong secret is answered
//! like Entra (`401 invalid_client`, `AADSTS7000215`), an unknown tenant or client too. The
//! authority must be `https` for azure_identity, so tests reach this plain-HTTP server through
//! [`FakeAci::token_transport`], an azure_core transport that sends requests for
//! [`AUTHORITY_HOST`] here.
//!
//! **ARM**: every request is checked against the URL templates and methods of the model
//! (`tests/fixtures/azure/aci_models_from_python_sdk_2023-05-01.json`, `operations`),
//! `api-version=2023-05-01` (`2021-04-01` for the resource group read), `Authorization:
//! Bearer <a token this fake issued>`, and each `PUT` body against the `ContainerGroup` model:
//! required members (and `location`, which ARM requires), unknown members, read-only members,
//! JSON types, enum values, plus ACI's documented limits (≤ 4 vCPU and ≤ 16 GB on Linux) and
//! naming rules. A request that breaks them is refused as ARM would **and** recorded in
//! [`FakeAci::violations`], which every test asserts empty at its end. The fake's own `GET`
//! answers are checked against the model too.
//!
//! Behaviour, modelled on ARM and ACI:
//! - `PUT` of a new group answers `201` with `provisioningState: Creating`, an
//!   `Azure-AsyncOperation` URL and `Retry-After`; the operation answers `InProgress` for
//!   [`FakeAci::set_operation_in_progress_polls`] polls, then per the group's [`Lifecycle`];
//! - `PUT` of an existing group answers `200`; one whose containers have terminated is
//!   deployed as new (Azure docs, "Update containers in Azure Container Instances"), counted
//!   in [`FakeAci::redeployments`];
//! - each `GET` of a group moves it one step along its [`Lifecycle`] and answers it with its
//!   instance view; `secureValue`s and registry passwords are never answered;
//! - `POST .../stop` stops a live group (`204`); `DELETE` removes it (`200`, or `204` when
//!   absent); an unknown group is `404 ResourceNotFound`, an unknown resource group
//!   `404 ResourceGroupNotFound`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use azure_core::http::{AsyncRawResponse, HttpClient, Request, Transport};
use pushpool_provider_aci::AciSettings;
use serde_json::{Map, Value, json};

/// The tenant of the fake service principal.
pub const TENANT_ID: &str = "72f9a1b2-0c3d-4e5f-8a9b-0c1d2e3f4a5b";
/// The client (application) id of the fake service principal.
pub const CLIENT_ID: &str = "5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e";
/// The client secret of the fake service principal.
pub const CLIENT_SECRET: &str = "Fake~Aci.Client_Secret-0123456789abcdef";
/// The subscription the fake knows.
pub const SUBSCRIPTION_ID: &str = "00000000-1111-4222-8333-444444444444";
/// The resource group the fake knows from the start.
pub const RESOURCE_GROUP: &str = "prefect-rg";
/// Its location.
pub const LOCATION: &str = "eastus";
/// The host of the fake authority (served through [`FakeAci::token_transport`]).
pub const AUTHORITY_HOST: &str = "login.fake-entra.test";
/// The fake authority, as azure_identity wants it (`https`).
pub const AUTHORITY: &str = "https://login.fake-entra.test/";
/// The scope of an ARM token.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The api-version of Container Instances calls.
pub const ACI_API_VERSION: &str = "2023-05-01";
/// GA api-versions of `Microsoft.Resources` the fake accepts for the resource group read.
pub const RESOURCES_API_VERSIONS: &[&str] = &[
    "2019-10-01",
    "2020-06-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
];

/// Which call an injected error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// The Entra ID token request.
    Token,
    /// `GET /subscriptions/{s}/resourcegroups/{rg}`.
    ResourceGroupRead,
    /// `PUT {CG}` (ContainerGroups_CreateOrUpdate).
    Create,
    /// `GET {CG}` (ContainerGroups_Get).
    Read,
    /// `POST {CG}/stop`.
    Stop,
    /// `DELETE {CG}`.
    Delete,
    /// `GET` of an `Azure-AsyncOperation` URL.
    OperationStatus,
}

/// How a container group created by the fake behaves (one step per `GET` of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// Creating → running → terminated with exit code 0 (`Completed`); the group
    /// `Succeeded`.
    Completes,
    /// Creating → running → terminated with `exit_code` (`Error`); the group `Failed`.
    Exits {
        /// The container's exit code.
        exit_code: i64,
    },
    /// Creating → running, until stopped or deleted.
    Runs,
    /// The image cannot be pulled: the container waits with `Pulling`, then `Failed`
    /// ([`pull_failure_message`]) and `BackOff` events; the create operation stays
    /// `InProgress` (ACI retries the pull).
    ImagePullFails,
    /// The create operation ends `Failed` with this error; the group's `provisioningState`
    /// is `Failed` with the error as its last event.
    ProvisioningFails {
        /// ARM's error code (`InaccessibleImage`).
        code: String,
        /// ARM's message.
        message: String,
    },
}

/// The `Failed` event message of an image that cannot be pulled (the shape of the example
/// in the Azure docs, "Troubleshoot common issues in Azure Container Instances").
pub fn pull_failure_message(image: &str) -> String {
    format!(
        "Failed to pull image \"{image}\": rpc error: code 2 desc Error: image {image} not found"
    )
}

/// An accepted ARM request.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The URL path.
    pub path: String,
    /// The `api-version` query parameter.
    pub api_version: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// A spec-checked fake Azure (ARM + Entra ID); stopped when dropped.
pub struct FakeAci {
    /// `http://127.0.0.1:<port>`: the ARM endpoint, and where the fake authority is served.
    pub endpoint: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeAci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAci")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeAci {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAci {
    /// Starts the fake on a free loopback port, knowing [`SUBSCRIPTION_ID`],
    /// [`RESOURCE_GROUP`] in [`LOCATION`] and the service principal [`TENANT_ID`] /
    /// [`CLIENT_ID`] / [`CLIENT_SECRET`].
    ///
    /// # Panics
    /// When the model cannot be read or no port can be bound.
    pub async fn start() -> FakeAci {
        let mut state = FakeState {
            operation_in_progress_polls: 1,
            retry_after: Some(1),
            ..FakeState::default()
        };
        state
            .resource_groups
            .insert(RESOURCE_GROUP.to_ascii_lowercase(), LOCATION.to_owned());
        state.principals.insert(
            (TENANT_ID.to_owned(), CLIENT_ID.to_owned()),
            CLIENT_SECRET.to_owned(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake Azure");
        let addr = listener.local_addr().expect("the fake Azure's address");
        let shared = Arc::new(Shared {
            spec: Spec::get(),
            endpoint: format!("http://{addr}"),
            state: Mutex::new(state),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAci {
            endpoint: format!("http://{addr}"),
            addr,
            shared,
            server,
        }
    }

    /// Provider settings for this fake: ARM at [`FakeAci::endpoint`], the authority
    /// [`AUTHORITY`] through [`FakeAci::token_transport`], the create operation followed for at
    /// most 5 s, polls at most 1 s apart; other bounds as in production.
    pub fn settings(&self) -> AciSettings {
        AciSettings {
            arm_endpoint: self.endpoint.clone(),
            authority: AUTHORITY.into(),
            token_transport: Some(self.token_transport()),
            lro_wait: std::time::Duration::from_secs(5),
            lro_poll_interval: std::time::Duration::from_secs(1),
            lro_max_poll_interval: std::time::Duration::from_secs(1),
            ..AciSettings::default()
        }
    }

    /// An azure_core transport that sends requests for `https://`[`AUTHORITY_HOST`] to this
    /// fake over plain HTTP (every other request goes out unchanged).
    pub fn token_transport(&self) -> Transport {
        redirecting_transport(AUTHORITY_HOST, self.addr)
    }

    /// The `azure-container-instance-credentials` block data of the fake service principal.
    pub fn credentials_block() -> Value {
        json!({"client_id": CLIENT_ID, "tenant_id": TENANT_ID, "client_secret": CLIENT_SECRET,
               "credential_kwargs": {}})
    }

    /// Adds a resource group in `location`.
    pub fn add_resource_group(&self, name: &str, location: &str) {
        self.state()
            .resource_groups
            .insert(name.to_ascii_lowercase(), location.to_owned());
    }

    /// The lifecycle of the next container group a `PUT` creates (in order; unscripted
    /// groups [`Lifecycle::Completes`]).
    pub fn script_next_group(&self, lifecycle: Lifecycle) {
        self.state().scripts.push_back(lifecycle);
    }

    /// How many polls of a create operation answer `InProgress` before its end (1).
    pub fn set_operation_in_progress_polls(&self, polls: usize) {
        self.state().operation_in_progress_polls = polls;
    }

    /// The `Retry-After` (seconds) of `201` answers and `InProgress` polls (1; `None`: none).
    pub fn set_retry_after(&self, seconds: Option<u64>) {
        self.state().retry_after = seconds;
    }

    /// Answers the next `times` calls of `op` with HTTP `status` and ARM's error body
    /// `{"error": {"code", "message"}}` (Entra's `{"error", "error_description",
    /// "error_codes"}` for [`Op::Token`], with `code` as `error`), after checking them;
    /// `retry_after` adds a `Retry-After` header (seconds).
    pub fn inject_error(
        &self,
        op: Op,
        status: u16,
        code: &str,
        message: &str,
        times: usize,
        retry_after: Option<u64>,
    ) {
        self.state().injected.push_back(Injected {
            op,
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            remaining: times,
            retry_after,
        });
    }

    /// The accepted ARM requests, in order.
    pub fn requests(&self) -> Vec<ArmRequest> {
        self.state().requests.clone()
    }

    /// The accepted ARM requests as `"<METHOD> <path>"`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state()
            .requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The bodies of the accepted `PUT`s, in order.
    pub fn puts(&self) -> Vec<Value> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method == "PUT")
            .filter_map(|r| r.body.clone())
            .collect()
    }

    /// The token requests' form fields, in order.
    pub fn token_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.state().token_requests.clone()
    }

    /// The names of the container groups that exist now.
    pub fn group_names(&self) -> Vec<String> {
        self.state().groups.keys().cloned().collect()
    }

    /// How many times a `PUT` deployed an existing, terminated group anew.
    pub fn redeployments(&self) -> usize {
        self.state().redeployments
    }

    /// How many container groups `PUT` created (redeployments not counted).
    pub fn created(&self) -> usize {
        self.state().created
    }

    /// Breaches of the spec by a request (or by the fake's own answer). Must be empty at the
    /// end of every test.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// The violations so far, cleared (for tests that break the spec on purpose).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state().violations)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.lock()
    }
}

/// An azure_core transport that sends `https://<host>/...` requests to `http://<to>/...`
/// (others unchanged), through azure_core's default HTTP client.
pub fn redirecting_transport(host: &str, to: SocketAddr) -> Transport {
    Transport::new(Arc::new(Redirect {
        host: host.to_owned(),
        to,
        inner: azure_core::http::new_http_client(),
    }))
}

#[derive(Debug)]
struct Redirect {
    host: String,
    to: SocketAddr,
    inner: Arc<dyn HttpClient>,
}

#[async_trait]
impl HttpClient for Redirect {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        let url = request.url_mut();
        if url.scheme() == "https" && url.host_str() == Some(self.host.as_str()) {
            let _ = url.set_scheme("http");
            let _ = url.set_host(Some(&self.to.ip().to_string()));
            let _ = url.set_port(Some(self.to.port()));
        }
        self.inner.execute_request(&request).await
    }
}

struct Shared {
    spec: Arc<Spec>,
    endpoint: String,
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
    op: Op,
    status: u16,
    code: String,
    message: String,
    remaining: usize,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct FakeState {
    violations: Vec<String>,
    requests: Vec<ArmRequest>,
    token_requests: Vec<BTreeMap<String, String>>,
    /// (tenant, client id) → secret.
    principals: HashMap<(String, String), String>,
    /// Issued tokens.
    tokens: Vec<String>,
    /// Lowercased resource group name → location.
    resource_groups: HashMap<String, String>,
    groups: BTreeMap<String, Group>,
    /// Operation id → group name.
    operations: HashMap<String, String>,
    scripts: VecDeque<Lifecycle>,
    injected: VecDeque<Injected>,
    operation_in_progress_polls: usize,
    retry_after: Option<u64>,
    redeployments: usize,
    created: usize,
    next_id: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Creating,
    Pulling,
    PullFailed,
    Running,
    Terminated(i64),
    ProvisionFailed,
    Stopped,
}

struct Group {
    name: String,
    resource_group: String,
    /// The accepted `PUT` body.
    body: Value,
    lifecycle: Lifecycle,
    phases: Vec<Phase>,
    step: usize,
    operation: String,
    operation_polls: usize,
    stopped: bool,
    created_at: String,
}

impl Group {
    fn phases(lifecycle: &Lifecycle) -> Vec<Phase> {
        match lifecycle {
            Lifecycle::Completes => vec![Phase::Creating, Phase::Running, Phase::Terminated(0)],
            Lifecycle::Exits { exit_code } => {
                vec![
                    Phase::Creating,
                    Phase::Running,
                    Phase::Terminated(*exit_code),
                ]
            }
            Lifecycle::Runs => vec![Phase::Creating, Phase::Running],
            Lifecycle::ImagePullFails => vec![Phase::Pulling, Phase::Pulling, Phase::PullFailed],
            Lifecycle::ProvisioningFails { .. } => vec![Phase::ProvisionFailed],
        }
    }

    fn phase(&self) -> &Phase {
        if self.stopped {
            return &Phase::Stopped;
        }
        &self.phases[self.step.min(self.phases.len() - 1)]
    }

    fn advance(&mut self) {
        if self.step + 1 < self.phases.len() {
            self.step += 1;
        }
    }

    fn terminated(&self) -> bool {
        matches!(self.phase(), Phase::Terminated(_) | Phase::Stopped)
    }

    fn id(&self) -> String {
        format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}/providers/Microsoft.ContainerInstance/containerGroups/{}",
            self.resource_group, self.name
        )
    }

    fn image(&self) -> String {
        self.body
            .pointer("/properties/containers/0/properties/image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The resource as ARM answers it; `instance_view` for a `GET` of the group.
    fn to_json(&self, instance_view: bool) -> Value {
        let mut body = self.body.clone();
        let obj = body.as_object_mut().expect("a checked body is an object");
        obj.insert("id".into(), json!(self.id()));
        obj.insert("name".into(), json!(self.name));
        obj.insert(
            "type".into(),
            json!("Microsoft.ContainerInstance/containerGroups"),
        );
        if let Some(Value::Object(identity)) = obj.get_mut("identity") {
            identity.insert(
                "principalId".into(),
                json!("00000000-aaaa-4bbb-8ccc-000000000001"),
            );
            identity.insert("tenantId".into(), json!(TENANT_ID));
            if let Some(Value::Object(ids)) = identity.get_mut("userAssignedIdentities") {
                for v in ids.values_mut() {
                    *v = json!({"principalId": "00000000-aaaa-4bbb-8ccc-000000000002",
                                "clientId": "00000000-aaaa-4bbb-8ccc-000000000003"});
                }
            }
        }
        let phase = self.phase().clone();
        let props = obj
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .expect("a checked body has properties");
        let provisioning = match phase {
            Phase::Creating | Phase::Pulling | Phase::PullFailed => "Creating",
            Phase::Running | Phase::Terminated(_) | Phase::Stopped => "Succeeded",
            Phase::ProvisionFailed => "Failed",
        };
        props.insert("provisioningState".into(), json!(provisioning));
        // Secrets are never answered.
        if let Some(Value::Array(creds)) = props.get_mut("imageRegistryCredentials") {
            for c in creds.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("password");
            }
        }
        let image = self.image();
        if let Some(Value::Array(containers)) = props.get_mut("containers") {
            for (i, c) in containers.iter_mut().enumerate() {
                let Some(cp) = c.get_mut("properties").and_then(Value::as_object_mut) else {
                    continue;
                };
                if let Some(Value::Array(env)) = cp.get_mut("environmentVariables") {
                    for e in env.iter_mut().filter_map(Value::as_object_mut) {
                        e.remove("secureValue");
                    }
                }
                if instance_view && i == 0 {
                    cp.insert(
                        "instanceView".into(),
                        container_view(&phase, &image, &self.created_at),
                    );
                }
            }
        }
        if instance_view {
            let (state, events) = match &phase {
                Phase::Creating | Phase::Pulling | Phase::PullFailed => ("Pending", json!([])),
                Phase::Running => ("Running", json!([])),
                Phase::Terminated(0) => ("Succeeded", json!([])),
                Phase::Terminated(_) => ("Failed", json!([])),
                Phase::Stopped => ("Stopped", json!([])),
                Phase::ProvisionFailed => {
                    let (code, message) = match &self.lifecycle {
                        Lifecycle::ProvisioningFails { code, message } => {
                            (code.clone(), message.clone())
                        }
                        _ => (String::new(), String::new()),
                    };
                    (
                        "Pending",
                        json!([{"count": 1, "firstTimestamp": self.created_at,
                                "lastTimestamp": self.created_at, "name": code,
                                "message": message, "type": "Warning"}]),
                    )
                }
            };
            props.insert(
                "instanceView".into(),
                json!({"state": state, "events": events}),
            );
        }
        body
    }
}

fn event(name: &str, message: &str, kind: &str, at: &str) -> Value {
    json!({"count": 1, "firstTimestamp": at, "lastTimestamp": at, "name": name,
           "message": message, "type": kind})
}

fn container_view(phase: &Phase, image: &str, at: &str) -> Value {
    let pulling = event(
        "Pulling",
        &format!("pulling image \"{image}\""),
        "Normal",
        at,
    );
    let pulled = event(
        "Pulled",
        &format!("Successfully pulled image \"{image}\""),
        "Normal",
        at,
    );
    let started = event("Started", "Started container", "Normal", at);
    let (current, events) = match phase {
        Phase::Creating | Phase::Pulling | Phase::ProvisionFailed => (
            json!({"state": "Waiting", "detailStatus": ""}),
            json!([pulling]),
        ),
        Phase::PullFailed => (
            json!({"state": "Waiting", "detailStatus": ""}),
            json!([
                pulling,
                event("Failed", &pull_failure_message(image), "Warning", at),
                event(
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                    "Normal",
                    at
                ),
            ]),
        ),
        Phase::Running => (
            json!({"state": "Running", "startTime": at, "detailStatus": ""}),
            json!([pulling, pulled, started]),
        ),
        Phase::Terminated(code) => (
            json!({"state": "Terminated", "startTime": at, "finishTime": at, "exitCode": code,
                   "detailStatus": if *code == 0 { "Completed" } else { "Error" }}),
            json!([pulling, pulled, started]),
        ),
        Phase::Stopped => (
            json!({"state": "Terminated", "startTime": at, "finishTime": at, "detailStatus": "Stopped"}),
            json!([
                pulling,
                pulled,
                started,
                event("Killing", "Killing container", "Normal", at)
            ]),
        ),
    };
    json!({"restartCount": 0, "currentState": current, "events": events})
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An ARM error answer.
fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    arm_json(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[],
    )
}

fn arm_json(status: StatusCode, body: &Value, extra: &[(String, String)]) -> Response {
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (
                header::HeaderName::from_static("x-ms-request-id"),
                "00000000-0000-4000-8000-000000000000",
            ),
        ],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
        .into_response();
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            header::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn query_pairs(text: &str) -> Vec<(String, String)> {
    let uri: Uri = match format!("http://x/?{text}").parse() {
        Ok(uri) => uri,
        Err(_) => return Vec::new(),
    };
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    if segments.len() == 4 && segments[1..] == ["oauth2", "v2.0", "token"] {
        return token(&shared, segments[0], &method, &headers, &body);
    }
    arm(&shared, &method, &uri, &headers, &body)
}

/// Entra ID's answer to a client-credentials request.
fn token(
    shared: &Shared,
    tenant: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut problems = Vec::new();
    if method != Method::POST {
        problems.push(format!("token request: method {method}, not POST"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/x-www-form-urlencoded" {
        problems.push(format!(
            "token request: Content-Type {content_type:?}, not \"application/x-www-form-urlencoded\""
        ));
    }
    let fields: BTreeMap<String, String> = query_pairs(&String::from_utf8_lossy(body))
        .into_iter()
        .collect();
    for key in ["grant_type", "client_id", "client_secret", "scope"] {
        if !fields.contains_key(key) {
            problems.push(format!("token request: no {key} field"));
        }
    }
    for key in fields.keys() {
        if !["grant_type", "client_id", "client_secret", "scope"].contains(&key.as_str()) {
            problems.push(format!("token request: unexpected field {key}"));
        }
    }
    if fields
        .get("grant_type")
        .is_some_and(|g| g != "client_credentials")
    {
        problems.push("token request: grant_type is not client_credentials".into());
    }
    if fields.get("scope").is_some_and(|s| s != ARM_SCOPE) {
        problems.push(format!("token request: scope is not {ARM_SCOPE}"));
    }
    let entra = |status: StatusCode, error: &str, code: u32, description: String| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            json!({"error": error,
                   "error_description": format!("AADSTS{code}: {description} Trace ID: 0d1e2f30-4a5b-4c6d-8e7f-8091a2b3c4d5 Correlation ID: 1e2f3041-5b6c-4d7e-8f80-91a2b3c4d5e6 Timestamp: 2026-01-01 00:00:00Z"),
                   "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z",
                   "trace_id": "0d1e2f30-4a5b-4c6d-8e7f-8091a2b3c4d5",
                   "correlation_id": "1e2f3041-5b6c-4d7e-8f80-91a2b3c4d5e6",
                   "error_uri": format!("https://{AUTHORITY_HOST}/error?code={code}")})
            .to_string(),
        )
            .into_response()
    };
    let mut state = shared.lock();
    if !problems.is_empty() {
        state.violations.extend(problems.iter().cloned());
        return entra(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            problems.join("; "),
        );
    }
    state.token_requests.push(fields.clone());
    if let Some(i) = state
        .injected
        .iter()
        .position(|e| e.op == Op::Token && e.remaining > 0)
    {
        let injected = &mut state.injected[i];
        injected.remaining -= 1;
        let status = StatusCode::from_u16(injected.status).unwrap_or(StatusCode::BAD_REQUEST);
        let (error, message) = (injected.code.clone(), injected.message.clone());
        if injected.remaining == 0 {
            state.injected.remove(i);
        }
        return entra(status, &error, 50000, message);
    }
    let client_id = fields["client_id"].clone();
    let known_tenant = state.principals.keys().any(|(t, _)| t == tenant);
    if !known_tenant {
        return entra(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let Some(secret) = state
        .principals
        .get(&(tenant.to_owned(), client_id.clone()))
        .cloned()
    else {
        return entra(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    if fields["client_secret"] != secret {
        return entra(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        );
    }
    state.next_id += 1;
    let token = format!("fake-arm-token-{}", state.next_id);
    state.tokens.push(token.clone());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
               "access_token": token})
        .to_string(),
    )
        .into_response()
}

/// What an ARM URL addresses.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    ResourceGroup {
        subscription: String,
        resource_group: String,
    },
    ContainerGroup {
        subscription: String,
        resource_group: String,
        name: String,
        action: Option<String>,
    },
    Operation {
        subscription: String,
        id: String,
    },
}

fn route(path: &str) -> Option<Route> {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match s.as_slice() {
        [sub_kw, sub, rg_kw, rg] if eq(sub_kw, "subscriptions") && eq(rg_kw, "resourcegroups") => {
            Some(Route::ResourceGroup {
                subscription: (*sub).to_owned(),
                resource_group: (*rg).to_owned(),
            })
        }
        [sub_kw, sub, rg_kw, rg, p, ns, cg_kw, name, rest @ ..]
            if eq(sub_kw, "subscriptions")
                && eq(rg_kw, "resourcegroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ContainerInstance")
                && eq(cg_kw, "containerGroups")
                && rest.len() <= 1 =>
        {
            Some(Route::ContainerGroup {
                subscription: (*sub).to_owned(),
                resource_group: (*rg).to_owned(),
                name: (*name).to_owned(),
                action: rest.first().map(|a| (*a).to_owned()),
            })
        }
        [sub_kw, sub, p, ns, loc_kw, _loc, op_kw, id]
            if eq(sub_kw, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ContainerInstance")
                && eq(loc_kw, "locations")
                && eq(op_kw, "operations") =>
        {
            Some(Route::Operation {
                subscription: (*sub).to_owned(),
                id: (*id).to_owned(),
            })
        }
        _ => None,
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn container_group_name_ok(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn resource_group_name_ok(name: &str) -> bool {
    (1..=90).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.'))
        && !name.ends_with('.')
}

#[allow(clippy::too_many_lines)]
fn arm(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> = uri.query().map(query_pairs).unwrap_or_default();
    let api_version = query
        .iter()
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.clone());
    let mut state = shared.lock();
    let refuse = |state: &mut FakeState, status: StatusCode, code: &str, message: String| {
        state.violations.push(format!("{method} {path}: {message}"));
        arm_error(status, code, &message)
    };

    // Authorization: a bearer token this fake issued.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return refuse(
            &mut state,
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        );
    };
    if !state.tokens.iter().any(|t| t == token) {
        return refuse(
            &mut state,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
        );
    }
    let Some(route) = route(&path) else {
        return refuse(
            &mut state,
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            "no ARM operation of the fake matches this URL template".into(),
        );
    };
    let wanted_versions: &[&str] = match &route {
        Route::ResourceGroup { .. } => RESOURCES_API_VERSIONS,
        _ => &[ACI_API_VERSION],
    };
    match api_version.as_deref() {
        None => {
            return refuse(
                &mut state,
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests."
                    .into(),
            );
        }
        Some(v) if !wanted_versions.contains(&v) => {
            return refuse(
                &mut state,
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{v}' is invalid. The supported versions are '{}'.",
                    wanted_versions.join(",")
                ),
            );
        }
        Some(_) => {}
    }
    let (subscription, allowed): (&str, &[Method]) = match &route {
        Route::ResourceGroup { subscription, .. } => (subscription, &[Method::GET]),
        Route::ContainerGroup {
            subscription,
            action: None,
            ..
        } => (subscription, &[Method::GET, Method::PUT, Method::DELETE]),
        Route::ContainerGroup {
            subscription,
            action: Some(a),
            ..
        } if a == "stop" => (subscription, &[Method::POST]),
        Route::ContainerGroup { subscription, .. } => (subscription, &[]),
        Route::Operation { subscription, .. } => (subscription, &[Method::GET]),
    };
    if !allowed.contains(method) {
        return refuse(
            &mut state,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not an operation of the fake on this URL template"),
        );
    }
    if !is_guid(subscription) {
        return refuse(
            &mut state,
            StatusCode::BAD_REQUEST,
            "InvalidSubscriptionId",
            format!(
                "The provided subscription identifier '{subscription}' is malformed or invalid."
            ),
        );
    }
    let rg_name = match &route {
        Route::ResourceGroup { resource_group, .. }
        | Route::ContainerGroup { resource_group, .. } => Some(resource_group.clone()),
        Route::Operation { .. } => None,
    };
    if let Some(rg) = &rg_name {
        if !resource_group_name_ok(rg) {
            return refuse(
                &mut state,
                StatusCode::BAD_REQUEST,
                "InvalidResourceGroupName",
                format!("Resource group name '{rg}' is invalid."),
            );
        }
    }
    if let Route::ContainerGroup { name, .. } = &route {
        if !container_group_name_ok(name) {
            return refuse(
                &mut state,
                StatusCode::BAD_REQUEST,
                "ContainerGroupNameInvalid",
                format!(
                    "The container group name '{name}' is invalid: 1-63 lowercase letters, numbers and hyphens, not starting or ending with a hyphen, no consecutive hyphens."
                ),
            );
        }
    }
    let mut json_body = None;
    if *method == Method::PUT {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return refuse(
                &mut state,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "The content media type '{content_type}' is not supported. Only 'application/json' is supported."
                ),
            );
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    &mut state,
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    format!("The request content was invalid and could not be deserialized: {e}"),
                );
            }
        };
        let mut problems = Vec::new();
        shared
            .spec
            .check_model("ContainerGroup", &value, "body", true, &mut problems);
        check_container_group(&value, &mut problems);
        if !problems.is_empty() {
            let message = problems.join("; ");
            return refuse(
                &mut state,
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                message,
            );
        }
        json_body = Some(value);
    }
    state.requests.push(ArmRequest {
        method: method.to_string(),
        path: path.clone(),
        api_version: api_version.clone(),
        body: json_body.clone(),
    });

    let op = match (&route, method) {
        (Route::ResourceGroup { .. }, _) => Op::ResourceGroupRead,
        (Route::Operation { .. }, _) => Op::OperationStatus,
        (
            Route::ContainerGroup {
                action: Some(_), ..
            },
            _,
        ) => Op::Stop,
        (_, &Method::PUT) => Op::Create,
        (_, &Method::DELETE) => Op::Delete,
        _ => Op::Read,
    };
    if let Some(i) = state
        .injected
        .iter()
        .position(|e| e.op == op && e.remaining > 0)
    {
        let injected = &mut state.injected[i];
        injected.remaining -= 1;
        let status = StatusCode::from_u16(injected.status).unwrap_or(StatusCode::BAD_REQUEST);
        let (code, message, retry) = (
            injected.code.clone(),
            injected.message.clone(),
            injected.retry_after,
        );
        if injected.remaining == 0 {
            state.injected.remove(i);
        }
        let extra: Vec<(String, String)> = retry
            .map(|r| vec![("retry-after".to_owned(), r.to_string())])
            .unwrap_or_default();
        return arm_json(
            status,
            &json!({"error": {"code": code, "message": message}}),
            &extra,
        );
    }

    if subscription != SUBSCRIPTION_ID {
        return arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{subscription}' could not be found."),
        );
    }
    if let Some(rg) = &rg_name {
        if !state.resource_groups.contains_key(&rg.to_ascii_lowercase()) {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("Resource group '{rg}' could not be found."),
            );
        }
    }
    let endpoint = shared.endpoint.clone();
    let retry_after: Vec<(String, String)> = state
        .retry_after
        .map(|r| vec![("retry-after".to_owned(), r.to_string())])
        .unwrap_or_default();
    match route {
        Route::ResourceGroup { resource_group, .. } => {
            let location = state.resource_groups[&resource_group.to_ascii_lowercase()].clone();
            arm_json(
                StatusCode::OK,
                &json!({"id": format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{resource_group}"),
                        "name": resource_group, "type": "Microsoft.Resources/resourceGroups",
                        "location": location, "properties": {"provisioningState": "Succeeded"}}),
                &[],
            )
        }
        Route::Operation { id, .. } => {
            let Some(name) = state.operations.get(&id).cloned() else {
                return arm_error(
                    StatusCode::NOT_FOUND,
                    "OperationNotFound",
                    &format!("The operation '{id}' could not be found."),
                );
            };
            let in_progress = state.operation_in_progress_polls;
            let Some(group) = state.groups.get_mut(&name) else {
                return arm_json(
                    StatusCode::OK,
                    &json!({"id": id, "name": id, "status": "Canceled"}),
                    &[],
                );
            };
            group.operation_polls += 1;
            let status = if group.operation_polls <= in_progress {
                "InProgress"
            } else {
                match &group.lifecycle {
                    Lifecycle::ImagePullFails => "InProgress",
                    Lifecycle::ProvisioningFails { .. } => "Failed",
                    _ => "Succeeded",
                }
            };
            let mut answer = json!({"id": format!("/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.ContainerInstance/locations/{LOCATION}/operations/{id}"),
                                    "name": id, "status": status, "startTime": group.created_at});
            if let (Lifecycle::ProvisioningFails { code, message }, "Failed") =
                (&group.lifecycle, status)
            {
                answer["error"] = json!({"code": code, "message": message});
                answer["endTime"] = json!(now());
            }
            let extra = if status == "InProgress" {
                retry_after
            } else {
                Vec::new()
            };
            arm_json(StatusCode::OK, &answer, &extra)
        }
        Route::ContainerGroup {
            resource_group,
            name,
            action,
            ..
        } => {
            let missing = || {
                arm_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!(
                        "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
                    ),
                )
            };
            if action.is_some() {
                return match state.groups.get_mut(&name) {
                    Some(group) => {
                        if !group.terminated() {
                            group.stopped = true;
                        }
                        arm_json(StatusCode::NO_CONTENT, &Value::Null, &[])
                    }
                    None => missing(),
                };
            }
            match *method {
                Method::GET => match state.groups.get_mut(&name) {
                    Some(group) => {
                        group.advance();
                        let answer = group.to_json(true);
                        let mut problems = Vec::new();
                        shared.spec.check_model(
                            "ContainerGroup",
                            &answer,
                            "fake answer",
                            false,
                            &mut problems,
                        );
                        state.violations.extend(problems);
                        arm_json(StatusCode::OK, &answer, &[])
                    }
                    None => missing(),
                },
                Method::DELETE => match state.groups.remove(&name) {
                    Some(group) => arm_json(StatusCode::OK, &group.to_json(false), &[]),
                    None => arm_json(StatusCode::NO_CONTENT, &Value::Null, &[]),
                },
                _ => {
                    let body = json_body.expect("a PUT has a checked body");
                    let created_at = now();
                    if let Some(group) = state.groups.get_mut(&name) {
                        let redeploy = group.terminated() || group.body != body;
                        if group.terminated() {
                            group.phases = Group::phases(&group.lifecycle);
                            group.step = 0;
                            group.stopped = false;
                            group.operation_polls = 0;
                        }
                        group.body = body;
                        let answer = group.to_json(false);
                        if redeploy && group.step == 0 {
                            state.redeployments += 1;
                        }
                        return arm_json(StatusCode::OK, &answer, &[]);
                    }
                    let lifecycle = state.scripts.pop_front().unwrap_or(Lifecycle::Completes);
                    state.next_id += 1;
                    let operation = format!(
                        "{:08x}-0000-4000-8000-{:012x}",
                        state.next_id, state.next_id
                    );
                    let group = Group {
                        name: name.clone(),
                        resource_group: resource_group.clone(),
                        body,
                        phases: Group::phases(&lifecycle),
                        lifecycle,
                        step: 0,
                        operation: operation.clone(),
                        operation_polls: 0,
                        stopped: false,
                        created_at,
                    };
                    let answer = group.to_json(false);
                    state
                        .operations
                        .insert(group.operation.clone(), name.clone());
                    state.groups.insert(name, group);
                    state.created += 1;
                    let mut extra = vec![(
                        "azure-asyncoperation".to_owned(),
                        format!(
                            "{endpoint}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.ContainerInstance/locations/{LOCATION}/operations/{operation}?api-version={ACI_API_VERSION}"
                        ),
                    )];
                    extra.extend(retry_after);
                    arm_json(StatusCode::CREATED, &answer, &extra)
                }
            }
        }
    }
}

/// What ACI checks beyond the model (documented limits and ARM's required `location`).
fn check_container_group(body: &Value, problems: &mut Vec<String>) {
    if !body.get("location").is_some_and(Value::is_string) {
        problems.push("body.location: ARM requires a location (LocationRequired)".into());
    }
    let Some(containers) = body
        .pointer("/properties/containers")
        .and_then(Value::as_array)
    else {
        return;
    };
    let (mut cpu, mut memory) = (0.0, 0.0);
    for (i, c) in containers.iter().enumerate() {
        let requests = &c["properties"]["resources"]["requests"];
        cpu += requests["cpu"].as_f64().unwrap_or_default();
        memory += requests["memoryInGB"].as_f64().unwrap_or_default();
        if let Some(gpu) = requests.get("gpu") {
            // Azure docs, "Deploy container instances that use GPU resources": counts 1, 2
            // or 4; Linux container groups only. (The SKU enum is checked by the model.)
            if !gpu["count"]
                .as_i64()
                .is_some_and(|n| [1, 2, 4].contains(&n))
            {
                problems.push(format!(
                    "body.properties.containers[{i}].properties.resources.requests.gpu.count: {} is not 1, 2 or 4",
                    gpu["count"]
                ));
            }
            if body.pointer("/properties/osType").and_then(Value::as_str) != Some("Linux") {
                problems.push(format!(
                    "body.properties.containers[{i}]: GPU resources need a Linux container group"
                ));
            }
        }
        if c["properties"]["image"].as_str().is_some_and(str::is_empty) {
            problems.push(format!(
                "body.properties.containers[{i}].properties.image is empty"
            ));
        }
        if let Some(env) = c["properties"]["environmentVariables"].as_array() {
            for (j, e) in env.iter().enumerate() {
                if e.get("value").is_some() == e.get("secureValue").is_some() {
                    problems.push(format!(
                        "body.properties.containers[{i}].properties.environmentVariables[{j}]: exactly one of value and secureValue"
                    ));
                }
            }
        }
    }
    // Standard Linux and Windows container groups alike (Azure docs, "Resource availability
    // & quota limits for ACI").
    if cpu > 4.0 || cpu <= 0.0 {
        problems.push(format!(
            "the container group requests {cpu} vCPU: a standard group has more than 0 and 4 at most"
        ));
    }
    if memory > 16.0 || memory <= 0.0 {
        problems.push(format!(
            "the container group requests {memory} GB: a standard group has more than 0 and 16 at most"
        ));
    }
}

/// Model field → enum of its allowed values (the model file lists enums apart from fields;
/// the pairs come from the SDK models' docstrings).
const ENUM_FIELDS: &[(&str, &str, &str)] = &[
    (
        "ContainerGroup",
        "properties.osType",
        "OperatingSystemTypes",
    ),
    (
        "ContainerGroup",
        "properties.restartPolicy",
        "ContainerGroupRestartPolicy",
    ),
    ("ContainerGroup", "properties.sku", "ContainerGroupSku"),
    (
        "ContainerGroup",
        "properties.priority",
        "ContainerGroupPriority",
    ),
    ("ContainerGroupIdentity", "type", "ResourceIdentityType"),
    ("IpAddress", "type", "ContainerGroupIpAddressType"),
    (
        "IpAddress",
        "autoGeneratedDomainNameLabelScope",
        "DnsNameLabelReusePolicy",
    ),
    ("Port", "protocol", "ContainerGroupNetworkProtocol"),
    ("ContainerPort", "protocol", "ContainerNetworkProtocol"),
    ("GpuResource", "sku", "GpuSku"),
];

struct Attr {
    path: Vec<String>,
    ty: String,
    required: bool,
    readonly: bool,
}

/// The ContainerInstance model, loaded from the fixture.
pub struct Spec {
    models: HashMap<String, Vec<Attr>>,
    enums: HashMap<String, Vec<String>>,
    /// Operation name → (method, URL template).
    pub operations: BTreeMap<String, (String, String)>,
}

impl Spec {
    /// The model (`tests/fixtures/azure/aci_models_from_python_sdk_2023-05-01.json`), loaded
    /// once.
    ///
    /// # Panics
    /// When the fixture is missing or not the expected shape.
    pub fn get() -> Arc<Spec> {
        static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/azure/aci_models_from_python_sdk_2023-05-01.json");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let raw: Value = serde_json::from_str(&text).expect("the ACI model is JSON");
            Arc::new(Spec::from_value(&raw))
        })
        .clone()
    }

    fn from_value(raw: &Value) -> Spec {
        let mut models = HashMap::new();
        for (name, model) in raw["models"].as_object().expect("models") {
            let attrs = model["properties"]
                .as_object()
                .expect("model properties")
                .iter()
                .map(|(key, a)| Attr {
                    path: key.split('.').map(str::to_owned).collect(),
                    ty: a["type"].as_str().unwrap_or("object").to_owned(),
                    required: a["required"].as_bool().unwrap_or(false),
                    readonly: a["readonly"].as_bool().unwrap_or(false),
                })
                .collect();
            models.insert(name.clone(), attrs);
        }
        let enums = raw["enums"]
            .as_object()
            .expect("enums")
            .iter()
            .map(|(k, v)| {
                let values = v
                    .as_array()
                    .expect("enum values")
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect();
                (k.clone(), values)
            })
            .collect();
        let operations = raw["operations"]
            .as_object()
            .expect("operations")
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.clone(),
                    (
                        v["method"].as_str()?.to_owned(),
                        v["url"].as_str()?.to_owned(),
                    ),
                ))
            })
            .collect();
        Spec {
            models,
            enums,
            operations,
        }
    }

    /// Whether the model has `model` with the field `key` (`properties.osType`).
    pub fn has_field(&self, model: &str, key: &str) -> bool {
        self.models
            .get(model)
            .is_some_and(|attrs| attrs.iter().any(|a| a.path.join(".") == key))
    }

    /// Whether the model has the enum `name`.
    pub fn has_enum(&self, name: &str) -> bool {
        self.enums.contains_key(name)
    }

    /// Checks `value` against `model`; `request` refuses read-only members.
    pub fn check_model(
        &self,
        model: &str,
        value: &Value,
        path: &str,
        request: bool,
        problems: &mut Vec<String>,
    ) {
        let Some(attrs) = self.models.get(model) else {
            problems.push(format!("{path}: unknown model {model}"));
            return;
        };
        let Some(obj) = value.as_object() else {
            problems.push(format!("{path}: must be an object ({model})"));
            return;
        };
        self.check_level(model, attrs, obj, &[], path, request, problems);
        for attr in attrs.iter().filter(|a| a.required) {
            let mut cur = Some(value);
            for seg in &attr.path {
                cur = cur.and_then(|v| v.get(seg));
            }
            if cur.is_none_or(Value::is_null) {
                problems.push(format!(
                    "{path}.{}: required by {model}",
                    attr.path.join(".")
                ));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_level(
        &self,
        model: &str,
        attrs: &[Attr],
        obj: &Map<String, Value>,
        prefix: &[String],
        path: &str,
        request: bool,
        problems: &mut Vec<String>,
    ) {
        for (key, v) in obj {
            let mut full = prefix.to_vec();
            full.push(key.clone());
            let here = format!("{path}.{key}");
            if let Some(attr) = attrs.iter().find(|a| a.path == full) {
                if attr.readonly && request {
                    problems.push(format!(
                        "{here}: read-only in {model}, not accepted in a request"
                    ));
                }
                if !v.is_null() {
                    let key_path = full.join(".");
                    self.check_type(model, &key_path, &attr.ty, v, &here, request, problems);
                }
            } else if attrs
                .iter()
                .any(|a| a.path.len() > full.len() && a.path[..full.len()] == full[..])
            {
                match v.as_object() {
                    Some(inner) => {
                        self.check_level(model, attrs, inner, &full, &here, request, problems)
                    }
                    None => problems.push(format!("{here}: must be an object")),
                }
            } else {
                problems.push(format!("{here}: not a member of {model}"));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_type(
        &self,
        model: &str,
        key: &str,
        ty: &str,
        v: &Value,
        path: &str,
        request: bool,
        problems: &mut Vec<String>,
    ) {
        if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_type(
                            model,
                            key,
                            inner,
                            item,
                            &format!("{path}[{i}]"),
                            request,
                            problems,
                        );
                    }
                }
                None => problems.push(format!("{path}: must be an array")),
            }
            return;
        }
        if let Some(inner) = ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            match v.as_object() {
                Some(map) => {
                    for (k, item) in map {
                        self.check_type(
                            model,
                            key,
                            inner,
                            item,
                            &format!("{path}.{k}"),
                            request,
                            problems,
                        );
                    }
                }
                None => problems.push(format!("{path}: must be an object")),
            }
            return;
        }
        let ok = match ty {
            "str" | "iso-8601" => {
                if let (Some(s), Some((_, _, e))) = (
                    v.as_str(),
                    ENUM_FIELDS
                        .iter()
                        .find(|(m, k, _)| *m == model && *k == key),
                ) {
                    let values = self.enums.get(*e).cloned().unwrap_or_default();
                    if !values.iter().any(|x| x == s) {
                        problems.push(format!("{path}: {s:?} is not one of {e} {values:?}"));
                    }
                }
                v.is_string()
            }
            "float" => v.is_number(),
            "int" => v.is_i64() || v.is_u64(),
            "bool" => v.is_boolean(),
            "object" => true,
            other => {
                self.check_model(other, v, path, request, problems);
                true
            }
        };
        if !ok {
            problems.push(format!("{path}: must be of type {ty}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enum_table_names_fields_and_enums_of_the_model() {
        let spec = Spec::get();
        for (model, key, e) in ENUM_FIELDS {
            assert!(spec.has_field(model, key), "{model}.{key}");
            assert!(spec.has_enum(e), "{e}");
        }
    }

    #[test]
    fn routes_follow_the_models_url_templates() {
        let spec = Spec::get();
        for (op, (method, url)) in &spec.operations {
            let path = url
                .replace("{subscriptionId}", SUBSCRIPTION_ID)
                .replace("{resourceGroupName}", RESOURCE_GROUP)
                .replace("{containerGroupName}", "cg")
                .replace("{containerName}", "c");
            let r = route(&path);
            match op.as_str() {
                "build_create_or_update_request" | "build_get_request" | "build_delete_request" => {
                    assert!(
                        matches!(r, Some(Route::ContainerGroup { action: None, .. })),
                        "{op} {method}"
                    );
                }
                "build_stop_request" => {
                    assert_eq!(method, "POST");
                    assert!(
                        matches!(r, Some(Route::ContainerGroup { action: Some(ref a), .. }) if a == "stop")
                    );
                }
                _ => {}
            }
        }
    }
}
