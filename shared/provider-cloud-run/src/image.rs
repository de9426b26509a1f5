//! The image architecture preflight: which platforms an image offers, read from its
//! registry with the OCI distribution API, before any Cloud Run job exists.
//!
//! Cloud Run runs `linux/amd64` images only; an image built on an ARM laptop (Apple
//! silicon) is accepted by `jobs.create` and only fails when the execution starts, with a
//! message that does not say why. pushpool reads the image's manifest first:
//! 1. The reference is parsed with `oci-spec`'s `distribution::Reference` (Docker's grammar:
//!    `python:3.12-slim` is `docker.io/library/python:3.12-slim`; Docker Hub's API host is
//!    `index.docker.io`). Registries are reached over HTTPS, except `localhost`,
//!    `127.0.0.1` and `[::1]` (with any port), which are reached over plain HTTP: Docker's
//!    own default for local registries (it treats `127.0.0.0/8` as insecure).
//! 2. `GET /v2/<repository>/manifests/<tag or digest>` with `Accept` for an OCI index, an
//!    OCI manifest, a Docker manifest list v2 and a Docker manifest v2 (OCI distribution
//!    spec, "Pulling manifests"). A `401` with `WWW-Authenticate: Bearer realm=...,
//!    service=...,scope=...` is answered with an anonymous token from the realm (Docker's
//!    token authentication specification) and the request is sent again.
//! 3. An index or manifest list lists its platforms (`manifests[].platform`), attestation
//!    entries (`unknown/unknown`, `vnd.docker.reference.type: attestation-manifest`) left
//!    out. A single-platform manifest's platform is its config blob's `os`/`architecture`
//!    (`GET /v2/<repository>/blobs/<config digest>`).
//!
//! The preflight never blocks a submission it cannot decide: a registry that cannot be
//! reached, asks for credentials, or answers an error yields [`Preflight::Unknown`] and the
//! submission goes on (the provider logs a warning).

use std::time::Duration;

use oci_spec::distribution::Reference;
use oci_spec::image::{ImageIndex, ImageManifest};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::Value;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One platform an image offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlatform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub architecture: String,
    /// `v8`, `v7`, when given.
    pub variant: Option<String>,
}

impl ImagePlatform {
    /// Whether Cloud Run can run it.
    pub fn is_linux_amd64(&self) -> bool {
        self.os == "linux" && self.architecture == "amd64"
    }
}

impl std::fmt::Display for ImagePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What the preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// The image offers these platforms (at least one).
    Platforms(Vec<ImagePlatform>),
    /// The registry could not tell; the reason, for the warning.
    Unknown(String),
}

/// Whether `host` (`name[:port]`) is a loopback registry reached over plain HTTP.
pub fn is_local_registry(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().map_or(host, |inner| inner)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// The registry base URL of a reference's host (`https://index.docker.io`).
fn registry_base(host: &str) -> String {
    let scheme = if is_local_registry(host) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// Reads the platforms `image` offers.
pub async fn platforms(http: &reqwest::Client, image: &str, timeout: Duration) -> Preflight {
    match read_platforms(http, image, timeout).await {
        Ok(p) if !p.is_empty() => Preflight::Platforms(p),
        Ok(_) => Preflight::Unknown("the registry's manifest names no platform".into()),
        Err(why) => Preflight::Unknown(why),
    }
}

struct Registry<'a> {
    http: &'a reqwest::Client,
    timeout: Duration,
    token: Option<String>,
}

impl Registry<'_> {
    /// GET `url`; answers a Bearer challenge once. Returns the content type and body.
    async fn get(&mut self, url: &str, accept: &str) -> Result<(String, Vec<u8>), String> {
        for _ in 0..2 {
            let mut request = self
                .http
                .get(url)
                .header(ACCEPT, accept)
                .timeout(self.timeout);
            if let Some(token) = &self.token {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("registry unreachable: {e}"))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                self.token = Some(self.anonymous_token(&challenge).await?);
                continue;
            }
            if !status.is_success() {
                return Err(format!("{url} answered HTTP {status}"));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
                .unwrap_or_default();
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("reading {url} failed: {e}"))?;
            return Ok((content_type, body.to_vec()));
        }
        Err(format!(
            "{url} answered HTTP 401 even with an anonymous token (the image may be private)"
        ))
    }

    /// An anonymous pull token from a `Bearer realm=...,service=...,scope=...` challenge.
    async fn anonymous_token(&self, challenge: &str) -> Result<String, String> {
        let params = parse_bearer_challenge(challenge).ok_or_else(|| {
            format!("the registry asks for credentials ({challenge:?}); pushpool pulls anonymously")
        })?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or("the registry's Bearer challenge has no realm")?;
        let mut url = reqwest::Url::parse(&realm)
            .map_err(|e| format!("the registry's token realm {realm:?} is not a URL: {e}"))?;
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &params {
                if k == "service" || k == "scope" {
                    query.append_pair(k, v);
                }
            }
        }
        let response = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("the registry's token service is unreachable: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the registry's token service answered HTTP {status} (the image may be private)"
            ));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the registry's token answer is not JSON: {e}"))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "the registry's token answer has no token".into())
    }
}

async fn read_platforms(
    http: &reqwest::Client,
    image: &str,
    timeout: Duration,
) -> Result<Vec<ImagePlatform>, String> {
    let reference: Reference = image
        .parse()
        .map_err(|e| format!("cannot parse the image reference: {e}"))?;
    let base = registry_base(reference.resolve_registry());
    let repository = reference.repository();
    let wanted = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_owned();
    let mut registry = Registry {
        http,
        timeout,
        token: None,
    };
    let accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
    let url = format!("{base}/v2/{repository}/manifests/{wanted}");
    let (content_type, body) = registry.get(&url, &accept).await?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("the manifest at {url} is not JSON: {e}"))?;
    let media_type = if content_type.is_empty() || content_type == "application/json" {
        json.get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    } else {
        content_type
    };
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || (media_type.is_empty() && json.get("manifests").is_some());
    if is_index {
        let index: ImageIndex = serde_json::from_value(json)
            .map_err(|e| format!("the index at {url} is malformed: {e}"))?;
        return Ok(index
            .manifests()
            .iter()
            .filter(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get("vnd.docker.reference.type"))
                    .is_none_or(|t| t != "attestation-manifest")
            })
            .filter_map(|d| d.platform().as_ref())
            .map(|p| ImagePlatform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            })
            .filter(|p| p.os != "unknown" && p.architecture != "unknown")
            .collect());
    }
    let manifest: ImageManifest = serde_json::from_value(json).map_err(|e| {
        format!("the manifest at {url} ({media_type}) is not an image manifest: {e}")
    })?;
    let config_url = format!(
        "{base}/v2/{repository}/blobs/{}",
        manifest.config().digest()
    );
    let (_, config) = registry.get(&config_url, "*/*").await?;
    let config: Value = serde_json::from_slice(&config)
        .map_err(|e| format!("the image config at {config_url} is not JSON: {e}"))?;
    let field = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_owned);
    match (field("os"), field("architecture")) {
        (Some(os), Some(architecture)) => Ok(vec![ImagePlatform {
            os,
            architecture,
            variant: field("variant"),
        }]),
        _ => Err(format!(
            "the image config at {config_url} names no os/architecture"
        )),
    }
}

/// `Bearer realm="...",service="...",scope="..."` → its parameters (quoted values may hold
/// commas).
pub fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim();
    let (scheme, rest) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value));
    }
    Some(params)
}

/// The message of an image Cloud Run cannot run.
pub fn not_amd64_message(image: &str, platforms: &[ImagePlatform]) -> String {
    let list = platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Image '{image}' offers only {list}; Cloud Run runs linux/amd64 images only: rebuild it with platform=\"linux/amd64\" (docker build --platform linux/amd64)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_registries_use_http() {
        for local in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_local_registry(local), "{local}");
        }
        for remote in [
            "index.docker.io",
            "us-docker.pkg.dev",
            "localhost.example.com:5000",
            "127.0.0.2:5000",
        ] {
            assert!(!is_local_registry(remote), "{remote}");
        }
        assert_eq!(registry_base("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(registry_base("index.docker.io"), "https://index.docker.io");
    }

    #[test]
    fn challenges_are_parsed() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push""#
            ),
            Some(vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/python:pull,push".into()),
            ])
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
    }

    #[test]
    fn docker_hub_references_resolve() {
        let r: Reference = "python:3.12-slim".parse().unwrap();
        assert_eq!(r.resolve_registry(), "index.docker.io");
        assert_eq!(r.repository(), "library/python");
        let r: Reference = "127.0.0.1:5000/team/flows:1".parse().unwrap();
        assert_eq!(r.resolve_registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/flows");
        assert_eq!(r.tag(), Some("1"));
    }

    #[test]
    fn message_names_image_and_platforms() {
        let p = ImagePlatform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(
            not_amd64_message("me/flows:1", &[p]),
            "Image 'me/flows:1' offers only linux/arm64/v8; Cloud Run runs linux/amd64 images only: rebuild it with platform=\"linux/amd64\" (docker build --platform linux/amd64)"
        );
    }
}
