//! A fake OCI registry on a free loopback port: the read side of the OCI distribution API
//! that pushpool's Cloud Run image preflight uses (`GET /v2/<repository>/manifests/<ref>`,
//! `GET /v2/<repository>/blobs/<digest>`), answering with stored manifests (their media type
//! as `Content-Type`, the `Docker-Content-Digest` header) and the OCI error body
//! `{"errors": [{"code": "MANIFEST_UNKNOWN", ...}]}` for unknown ones.
//!
//! With [`FakeRegistry::require_token`] it behaves like Docker Hub for anonymous pulls: a
//! request without a token is answered `401` with
//! `WWW-Authenticate: Bearer realm="<this registry>/token",service="fake-registry",scope="repository:<repo>:pull"`,
//! and `GET /token?service=...&scope=...` hands out a pull token (Docker's token
//! authentication specification).
//!
//! Checked and recorded in [`FakeRegistry::violations`]: a manifest request whose `Accept`
//! lacks one of the four manifest media types a multi-platform-aware client must accept, a
//! token request with the wrong `service`/`scope`, an unknown token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The media types a manifest request must accept.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A request the registry received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    /// `GET`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether it carried a Bearer token.
    pub authorised: bool,
}

/// A fake registry; stopped when dropped.
pub struct FakeRegistry {
    /// `127.0.0.1:<port>`: the host part of image references (`127.0.0.1:5000/team/flows:1`).
    pub host: String,
    shared: Arc<Mutex<RegistryState>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
struct RegistryState {
    host: String,
    /// (repository, tag or digest) → (media type, body).
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    /// (repository, digest) → body.
    blobs: HashMap<(String, String), Vec<u8>>,
    require_token: bool,
    tokens: Vec<String>,
    requests: Vec<RegistryRequest>,
    violations: Vec<String>,
}

/// `tests/fixtures/gcp/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/gcp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

impl FakeRegistry {
    /// Starts the registry on a free loopback port.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake registry");
        let host = listener
            .local_addr()
            .expect("the fake registry's address")
            .to_string();
        let shared = Arc::new(Mutex::new(RegistryState {
            host: host.clone(),
            ..RegistryState::default()
        }));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRegistry {
            host,
            shared,
            server,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        match self.shared.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Serves `body` as the manifest `repository:reference` with `media_type`.
    pub fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, body: &[u8]) {
        self.state().manifests.insert(
            (repository.to_owned(), reference.to_owned()),
            (media_type.to_owned(), body.to_vec()),
        );
    }

    /// Serves `body` as the blob `digest` of `repository`.
    pub fn put_blob(&self, repository: &str, digest: &str, body: &[u8]) {
        self.state()
            .blobs
            .insert((repository.to_owned(), digest.to_owned()), body.to_vec());
    }

    /// Serves the multi-platform index fixture (`python-3.12-slim.index.json`) as
    /// `repository:tag`.
    pub fn put_multi_platform(&self, repository: &str, tag: &str) {
        self.put_manifest(
            repository,
            tag,
            MANIFEST_TYPES[0],
            &fixture("python-3.12-slim.index.json"),
        );
    }

    /// Serves the arm64-only index fixture as `repository:tag`.
    pub fn put_arm64_only(&self, repository: &str, tag: &str) {
        self.put_manifest(
            repository,
            tag,
            MANIFEST_TYPES[0],
            &fixture("arm64-only.index.json"),
        );
    }

    /// Serves the single-platform Docker manifest fixture (and its config blob) as
    /// `repository:tag`.
    pub fn put_single_amd64(&self, repository: &str, tag: &str) {
        let manifest = fixture("amd64.docker-manifest.json");
        let parsed: Value = serde_json::from_slice(&manifest).expect("fixture is JSON");
        let digest = parsed["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_owned();
        self.put_manifest(repository, tag, MANIFEST_TYPES[3], &manifest);
        self.put_blob(repository, &digest, &fixture("amd64.config.json"));
    }

    /// Asks for a Bearer token like Docker Hub does for anonymous pulls.
    pub fn require_token(&self) {
        self.state().require_token = true;
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<RegistryRequest> {
        self.state().requests.clone()
    }

    /// Breaches of the protocol (see the module docs). Must be empty at the end of a test.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }
}

fn oci_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string(),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Arc<Mutex<RegistryState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut state = match shared.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    state.requests.push(RegistryRequest {
        method: method.to_string(),
        path: if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        },
        authorised: bearer.is_some(),
    });
    if method != Method::GET {
        state
            .violations
            .push(format!("{method} {path}: the preflight only reads"));
        return oci_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "read only");
    }
    if path == "/token" {
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if params.get("service").map(String::as_str) != Some("fake-registry") {
            state.violations.push(format!(
                "token request without service=fake-registry: {query}"
            ));
        }
        if !params
            .get("scope")
            .is_some_and(|s| s.starts_with("repository:") && s.ends_with(":pull"))
        {
            state
                .violations
                .push(format!("token request without a pull scope: {query}"));
        }
        let token = format!("registry-token-{}", state.tokens.len() + 1);
        state.tokens.push(token.clone());
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
        )
            .into_response();
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return oci_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "not a registry path");
    };
    let (repository, kind, reference) = if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
        (repo.to_owned(), "manifests", r.to_owned())
    } else if let Some((repo, r)) = rest.rsplit_once("/blobs/") {
        (repo.to_owned(), "blobs", r.to_owned())
    } else {
        return oci_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "not a registry path");
    };
    if state.require_token {
        let known = bearer.as_ref().is_some_and(|t| state.tokens.contains(t));
        if bearer.is_some() && !known {
            state
                .violations
                .push(format!("{path}: a token this registry never issued"));
        }
        if !known {
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"fake-registry\",scope=\"repository:{repository}:pull\"",
                state.host
            );
            let mut response = oci_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            if let Ok(v) = challenge.parse() {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return response;
        }
    }
    if kind == "manifests" {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for wanted in MANIFEST_TYPES {
            if !accept.split(',').any(|a| a.trim() == *wanted) {
                state.violations.push(format!(
                    "{path}: Accept {accept:?} does not include {wanted}"
                ));
            }
        }
        return match state.manifests.get(&(repository, reference)) {
            Some((media_type, body)) => {
                use sha2::Digest;
                let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)));
                (
                    StatusCode::OK,
                    [
                        (header::CONTENT_TYPE, media_type.clone()),
                        (
                            header::HeaderName::from_static("docker-content-digest"),
                            digest,
                        ),
                    ],
                    body.clone(),
                )
                    .into_response()
            }
            None => oci_error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ),
        };
    }
    match state.blobs.get(&(repository, reference)) {
        Some(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            body.clone(),
        )
            .into_response(),
        None => oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
    }
}
