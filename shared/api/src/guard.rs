//! Checks every request passes before any handler (or the API key check) sees it, against a
//! web page in the user's browser reaching the API:
//!
//! - **Host** (open mode only, [`crate::auth::AuthMode::Open`]): a page on another site can make
//!   its own name resolve to 127.0.0.1 (DNS rebinding) and then talk to a server on loopback
//!   as if it were same-origin; its requests still carry the page's `Host`. So without API keys
//!   only loopback hosts (`127.0.0.1`, `localhost`, `[::1]`, with any port) and the hosts the
//!   operator allowed ([`crate::AppState::allow_host`]: `pushpool serve` allows its
//!   `--public-url` host and a specific bound address) are answered; any other `Host` gets a
//!   403 naming it and saying how to allow it. A request with no `Host` at all (HTTP/1.0,
//!   in-process tests) passes: browsers always send one. With API keys required, every host is
//!   answered (the key is the protection; API Gateway's host is not known in advance).
//! - **Content type**: a browser sends a cross-site "simple" POST without asking first when its
//!   body is `text/plain`, a form, or a blob with no type. So a `POST`, `PUT`, `PATCH` or
//!   `DELETE` that carries a body must say `Content-Type: application/json` (or
//!   `application/<anything>+json`, as Prefect's FastAPI server reads it); anything else, and a
//!   body with no content type, is a 415. Requests without a body (Prefect's UI sends some
//!   POSTs with none) pass whatever their headers.

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthMode;
use crate::{ApiError, AppState};

/// The hosts open mode always answers (any port).
pub const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// The host part of an authority (`Host` header or URL): `[::1]` of `[::1]:4200`, `localhost`
/// of `localhost:4200`, lowercased. `None` when it does not parse.
pub(crate) fn host_of(authority: &str) -> Option<String> {
    authority
        .parse::<axum::http::uri::Authority>()
        .ok()
        .map(|a| a.host().to_ascii_lowercase())
}

/// The host of a URL (`https://pp.example.com:8443/api` → `pp.example.com`), lowercased.
pub(crate) fn url_host(url: &str) -> Option<String> {
    url.parse::<axum::http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
}

fn check_host(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if state.auth != AuthMode::Open {
        return Ok(());
    }
    let Some(value) = req.headers().get(header::HOST) else {
        return Ok(());
    };
    let shown = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let allowed = value.to_str().ok().and_then(host_of).is_some_and(|host| {
        LOOPBACK_HOSTS.contains(&host.as_str()) || state.allowed_hosts.contains(&host)
    });
    if allowed {
        return Ok(());
    }
    let mut hosts: Vec<&str> = LOOPBACK_HOSTS.to_vec();
    hosts.extend(state.allowed_hosts.iter().map(String::as_str));
    Err(ApiError::Forbidden(format!(
        "Host {shown:?} is not allowed: without API keys this server only answers the hosts {}. \
         To reach it under another name, start it with --public-url (PUSHPOOL_PUBLIC_URL) set \
         to the URL clients use, or require API keys (--require-api-key).",
        hosts.join(", ")
    )))
}

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Ok(());
    }
    // An exact size hint of 0 is an empty body (`Content-Length: 0`, or none on a POST);
    // a chunked body of unknown size counts as a body.
    if req.body().size_hint().upper() == Some(0) {
        return Ok(());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = content_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let json = essence.as_deref().is_some_and(|e| {
        e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
    });
    if json {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(match content_type {
        Some(ct) => format!(
            "Content-Type {ct:?} is not accepted: a {} request with a body must send \
             'Content-Type: application/json'.",
            req.method()
        ),
        None => format!(
            "Content-Type is missing: a {} request with a body must send \
             'Content-Type: application/json'.",
            req.method()
        ),
    }))
}

/// The middleware: the `Host` check, then the content type check.
pub(crate) async fn check_request(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(e) = check_host(&state, &req).and_then(|()| check_content_type(&req)) {
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_without_port_and_case() {
        assert_eq!(host_of("LocalHost:4200").as_deref(), Some("localhost"));
        assert_eq!(host_of("[::1]:4200").as_deref(), Some("[::1]"));
        assert_eq!(host_of("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("a b"), None);
        assert_eq!(
            url_host("https://PP.example.com:8443/api").as_deref(),
            Some("pp.example.com")
        );
        assert_eq!(url_host("http://[::1]:4200").as_deref(), Some("[::1]"));
    }
}
