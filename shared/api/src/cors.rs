//! Cross-origin requests (CORS), for a UI or a tool served from another origin than the API
//! (issue 10 §3).
//!
//! **Off by default**: Prefect's UI served by `pushpool serve` (or behind the same
//! CloudFront distribution as the API) is same-origin and needs none, and a browser then
//! refuses every other site's page to read the API's answers or send it JSON. **On for an
//! allowlist** of origins from one setting, in both shapes: `--cors-allowed-origins` /
//! `PUSHPOOL_CORS_ALLOWED_ORIGINS` for `pushpool serve`, `PUSHPOOL_CORS_ALLOWED_ORIGINS` for
//! the API Lambda function (the stack's `CorsAllowedOrigins` parameter).
//!
//! The setting is a comma-separated list of origins as browsers send them
//! (`scheme://host[:port]`, `http` or `https`, no path). `*` is refused, unlike Prefect's
//! `PREFECT_SERVER_CORS_ALLOWED_ORIGINS` default: the API has state-changing routes, and
//! with `*` any page the user opens could drive them (in open mode on loopback, with no key
//! at all). An allowed origin gets, on a preflight (`OPTIONS` with
//! `Access-Control-Request-Method`), the methods the API uses, the request headers it asked
//! for (`Authorization`, `Content-Type`, ...) and a 10-minute `Access-Control-Max-Age`; on
//! an actual request, `Access-Control-Allow-Origin: <its origin>`. Credentials mode is not
//! enabled: the API is called with an `Authorization` header, never with cookies. Another
//! origin gets no CORS header, so the browser withholds the answer. The allowlist is a
//! browser rule only: API keys are still required when they are.

use std::time::Duration;

use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// The setting's name in the environment of `pushpool serve` and of the API Lambda function.
pub const ENV: &str = "PUSHPOOL_CORS_ALLOWED_ORIGINS";

/// How long a browser may cache a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Parses the setting: a comma-separated list of origins (spaces around the commas and an
/// empty setting allowed: no origin, CORS off). Each origin is returned as browsers send it:
/// lowercase scheme and host, no trailing `/`.
///
/// # Errors
/// A message naming the setting and the refused entry: `*` (any origin), a value that is not
/// `http://` or `https://` followed by a host and an optional port, or one with a path, query
/// or credentials.
pub fn parse_allowed_origins(setting: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" || entry.contains('*') {
            return Err(format!(
                "{ENV}: '*' is refused: the API has state-changing routes, so list the origins \
                 allowed to call it (e.g. https://ui.example.com)"
            ));
        }
        let shape = || {
            format!(
                "{ENV}: {entry:?} is not an origin: expected http(s)://host[:port] without a path"
            )
        };
        let (scheme, rest) = entry.split_once("://").ok_or_else(shape)?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if !matches!(scheme.as_str(), "http" | "https")
            || rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
        {
            return Err(shape());
        }
        let authority: axum::http::uri::Authority = rest.parse().map_err(|_| shape())?;
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        if HeaderValue::from_str(&origin).is_err() {
            return Err(shape());
        }
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The layer for `origins` (already checked by [`parse_allowed_origins`]); `None` when the
/// list is empty (CORS off).
pub(crate) fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .max_age(MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_a_list_of_origins_and_never_a_wildcard() {
        assert_eq!(parse_allowed_origins(""), Ok(vec![]));
        assert_eq!(parse_allowed_origins(" , "), Ok(vec![]));
        assert_eq!(
            parse_allowed_origins(
                "https://UI.example.com/, http://localhost:5173,https://ui.example.com"
            ),
            Ok(vec![
                "https://ui.example.com".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
        let star = "PUSHPOOL_CORS_ALLOWED_ORIGINS: '*' is refused: the API has state-changing \
                    routes, so list the origins allowed to call it (e.g. https://ui.example.com)";
        assert_eq!(parse_allowed_origins("*"), Err(star.to_owned()));
        assert_eq!(
            parse_allowed_origins("https://a.example.com, *"),
            Err(star.to_owned())
        );
        assert_eq!(
            parse_allowed_origins("https://*.example.com"),
            Err(star.to_owned())
        );
        for bad in [
            "ui.example.com",
            "ftp://ui.example.com",
            "https://ui.example.com/app",
            "https://user@ui.example.com",
            "https://",
            "https://ui.example.com?x=1",
        ] {
            assert_eq!(
                parse_allowed_origins(bad),
                Err(format!(
                    "PUSHPOOL_CORS_ALLOWED_ORIGINS: {bad:?} is not an origin: expected \
                     http(s)://host[:port] without a path"
                )),
                "{bad}"
            );
        }
    }

    mod routes {
        use axum::body::Body;
        use axum::http::{Request, StatusCode, header};
        use tower::ServiceExt;

        use crate::auth::AuthMode;
        use crate::{AppState, router};

        const UI: &str = "https://ui.example.com";

        fn app(origins: &[&str], auth: AuthMode) -> axum::Router {
            let store = pushpool_store_sqlite::SqliteStore::in_memory().unwrap();
            let service = pushpool_service::Service::new(
                std::sync::Arc::new(store),
                pushpool_providers::Providers::new(),
                pushpool_service::ServiceConfig::default(),
            );
            router(
                AppState::new(service)
                    .with_auth(auth)
                    .with_cors_origins(origins.iter().map(|o| (*o).to_owned()).collect()),
            )
        }

        async fn send(
            app: &axum::Router,
            req: Request<Body>,
        ) -> (StatusCode, Vec<(String, String)>) {
            let response = app.clone().oneshot(req).await.unwrap();
            let mut cors: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(n, _)| n.as_str().starts_with("access-control-") || *n == header::VARY)
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                .collect();
            cors.sort();
            (response.status(), cors)
        }

        fn preflight(origin: &str) -> Request<Body> {
            Request::options("/api/work_pools/filter")
                .header(header::HOST, "127.0.0.1:4200")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(
                    header::ACCESS_CONTROL_REQUEST_HEADERS,
                    "authorization,content-type",
                )
                .body(Body::empty())
                .unwrap()
        }

        fn filter(origin: &str) -> Request<Body> {
            Request::post("/api/work_pools/filter")
                .header(header::HOST, "127.0.0.1:4200")
                .header(header::ORIGIN, origin)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap()
        }

        fn vary() -> (String, String) {
            (
                "vary".into(),
                "origin, access-control-request-method, access-control-request-headers".into(),
            )
        }

        #[tokio::test]
        async fn an_allowed_origin_is_answered_preflight_and_actual_requests() {
            let app = app(&[UI, "http://localhost:5173"], AuthMode::Open);
            assert_eq!(
                send(&app, preflight(UI)).await,
                (
                    StatusCode::OK,
                    vec![
                        (
                            "access-control-allow-headers".into(),
                            "authorization,content-type".into()
                        ),
                        (
                            "access-control-allow-methods".into(),
                            "GET,HEAD,POST,PUT,PATCH,DELETE".into()
                        ),
                        ("access-control-allow-origin".into(), UI.into()),
                        ("access-control-max-age".into(), "600".into()),
                        vary(),
                    ]
                )
            );
            assert_eq!(
                send(&app, filter("http://localhost:5173")).await,
                (
                    StatusCode::OK,
                    vec![
                        (
                            "access-control-allow-origin".into(),
                            "http://localhost:5173".into()
                        ),
                        vary(),
                    ]
                )
            );
        }

        #[tokio::test]
        async fn another_origin_gets_no_cors_header_so_the_browser_withholds_the_answer() {
            let app = app(&[UI], AuthMode::Open);
            for other in [
                "https://evil.example.com",
                "https://ui.example.com:8443",
                "http://ui.example.com",
            ] {
                let (status, headers) = send(&app, preflight(other)).await;
                assert_eq!(status, StatusCode::OK, "{other}");
                assert!(
                    !headers
                        .iter()
                        .any(|(n, _)| n == "access-control-allow-origin"),
                    "{other}: {headers:?}"
                );
                let (status, headers) = send(&app, filter(other)).await;
                assert_eq!((status, headers), (StatusCode::OK, vec![vary()]), "{other}");
            }
        }

        #[tokio::test]
        async fn cors_is_off_by_default() {
            let app = app(&[], AuthMode::Open);
            assert_eq!(
                send(&app, preflight(UI)).await,
                (StatusCode::METHOD_NOT_ALLOWED, vec![])
            );
            assert_eq!(send(&app, filter(UI)).await, (StatusCode::OK, vec![]));
        }

        #[tokio::test]
        async fn with_keys_required_the_preflight_needs_no_key_and_a_401_is_readable() {
            let app = app(&[UI], AuthMode::Required);
            let (status, headers) = send(&app, preflight(UI)).await;
            assert_eq!(status, StatusCode::OK);
            assert!(headers.contains(&("access-control-allow-origin".into(), UI.into())));
            assert_eq!(
                send(&app, filter(UI)).await,
                (
                    StatusCode::UNAUTHORIZED,
                    vec![("access-control-allow-origin".into(), UI.into()), vary()]
                )
            );
        }
    }
}
