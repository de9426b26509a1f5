//! Calls of the Cloud Run Admin API v2 (JSON over HTTPS, `Authorization: Bearer`) and the
//! classification of their failures.
//!
//! Google's JSON APIs answer errors as `{"error": {"code", "message", "status", "details"}}`
//! (`reference/specs/gcp/SUMMARY.md`, "Error body"). A failure becomes:
//! - transient: HTTP 429 (with `Retry-After`, seconds or an HTTP date, as
//!   [`ProviderError::Transient::retry_after`](pushpool_providers::ProviderError)), HTTP 408 and 5xx,
//!   timeouts, connection failures and unreadable answers;
//! - permanent: every other 4xx, with Google's own status and message:
//!   `Cloud Run jobs.create failed: PERMISSION_DENIED: Permission 'run.jobs.create' denied ...`.
//!
//! The access token is only ever put in the `Authorization` header: never in a URL, an error
//! or a log line.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use pushpool_providers::ProviderError;

/// Google's error, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GoogleError {
    /// HTTP status.
    pub http: u16,
    /// `error.status` (`PERMISSION_DENIED`), or empty when the body had none.
    pub status: String,
    /// `error.message`, or the start of a non-JSON body.
    pub message: String,
    /// `Retry-After`, when the answer had one.
    pub retry_after: Option<Duration>,
}

/// Why a call failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// The service answered an error.
    Google(GoogleError),
    /// The call did not get an answer (connection refused, timeout, TLS).
    Transport(reqwest::Error),
    /// The answer was not the JSON it should be.
    Decode(String),
}

impl CallError {
    /// The HTTP status of a service error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CallError::Google(g) => Some(g.http),
            _ => None,
        }
    }

    /// Google's `error.status` of a service error.
    pub fn google_status(&self) -> Option<&str> {
        match self {
            CallError::Google(g) => Some(g.status.as_str()),
            _ => None,
        }
    }

    /// Classifies the failure of operation `op` (`jobs.create`).
    pub fn into_provider_error(self, op: &str) -> ProviderError {
        match self {
            CallError::Google(g) => {
                let said = if g.status.is_empty() {
                    format!("Cloud Run {op} failed: HTTP {}: {}", g.http, g.message)
                } else {
                    format!("Cloud Run {op} failed: {}: {}", g.status, g.message)
                };
                if g.http == 429 || g.http == 408 || g.http >= 500 {
                    ProviderError::throttled(pushpool_providers::cap_message(&said), g.retry_after)
                } else {
                    let message = match google_hint(&g.status) {
                        Some(hint) => format!("{} {hint}", sentence(&said)),
                        None => said,
                    };
                    ProviderError::permanent(pushpool_providers::cap_message(&message))
                }
            }
            CallError::Transport(e) => {
                let what = if e.is_timeout() {
                    "the call timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "the call failed"
                };
                let permanent = e.is_builder();
                let message =
                    pushpool_providers::cap_message(&format!("Cloud Run {op} failed: {what}: {e}"));
                let source: Option<Box<dyn std::error::Error + Send + Sync>> = Some(Box::new(e));
                if permanent {
                    ProviderError::Permanent { message, source }
                } else {
                    ProviderError::Transient {
                        message,
                        retry_after: None,
                        source,
                    }
                }
            }
            CallError::Decode(what) => {
                ProviderError::transient(format!("Cloud Run {op} failed: {what}"))
            }
        }
    }
}

/// What to do about a permanent Google error, by its `error.status`.
fn google_hint(status: &str) -> Option<&'static str> {
    Some(match status {
        "PERMISSION_DENIED" => {
            "The Google credentials pushpool used may not do this: grant their service account \
             the Cloud Run Developer role (roles/run.developer) on the project, and \
             iam.serviceAccounts.actAs on the job's service account."
        }
        "UNAUTHENTICATED" => {
            "Google rejected the credentials pushpool used: check the work pool's credentials \
             block (service account key), else the application default credentials."
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            "Cloud Run refused a value pushpool sent from the flow run's job configuration: fix \
             the job variable or base job template field it names."
        }
        _ => return None,
    })
}

/// `text` with final punctuation (a period added when it has none).
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?', ')']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// One authorised client of the API.
pub(super) struct Api<'a> {
    pub http: &'a reqwest::Client,
    /// `https://run.googleapis.com/` (ends with `/`).
    pub base: &'a Url,
    pub token: &'a str,
}

impl Api<'_> {
    /// The URL of `v2/<segments...>` (each segment percent-encoded as needed), with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v2");
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends one request and reads its JSON answer.
    ///
    /// # Errors
    /// [`CallError`] for an error answer, no answer, or a body that is not JSON.
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut request = self.http.request(method, url).bearer_auth(self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(CallError::Transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(CallError::Transport)?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                CallError::Decode(format!("the answer (HTTP {status}) is not JSON: {e}"))
            });
        }
        Err(CallError::Google(google_error(status, &bytes, retry_after)))
    }
}

/// Reads Google's error body (`{"error": {"code", "message", "status"}}`).
pub(super) fn google_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> GoogleError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut message = field("message");
    if message.is_empty() {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        message = if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text.chars().take(300).collect()
        };
    }
    GoogleError {
        http: status.as_u16(),
        status: field("status"),
        message,
        retry_after,
    }
}

/// `Retry-After`: delay seconds, or an HTTP date (RFC 9110 §10.2.3).
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_keep_status_and_message() {
        let body = br#"{"error": {"code": 403, "message": "Permission 'run.jobs.create' denied on resource 'projects/p/locations/us-central1/jobs/j' (or resource may not exist).", "status": "PERMISSION_DENIED"}}"#;
        let g = google_error(StatusCode::FORBIDDEN, body, None);
        let err = CallError::Google(g).into_provider_error("jobs.create");
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "Cloud Run jobs.create failed: PERMISSION_DENIED: Permission 'run.jobs.create' denied on \
             resource 'projects/p/locations/us-central1/jobs/j' (or resource may not exist). The \
             Google credentials pushpool used may not do this: grant their service account the \
             Cloud Run Developer role (roles/run.developer) on the project, and \
             iam.serviceAccounts.actAs on the job's service account."
        );
    }

    #[test]
    fn rejected_credentials_and_refused_values_say_what_to_do() {
        let body = br#"{"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}"#;
        let err = CallError::Google(google_error(StatusCode::UNAUTHORIZED, body, None))
            .into_provider_error("jobs.create");
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "Cloud Run jobs.create failed: UNAUTHENTICATED: Request had invalid authentication \
             credentials. Google rejected the credentials pushpool used: check the work pool's \
             credentials block (service account key), else the application default credentials."
        );
        let body = br#"{"error": {"code": 400, "message": "spec.template.spec.template.spec.containers[0].resources.limits.cpu: must be one of 1, 2, 4, 6, 8", "status": "INVALID_ARGUMENT"}}"#;
        let err = CallError::Google(google_error(StatusCode::BAD_REQUEST, body, None))
            .into_provider_error("jobs.create");
        assert_eq!(
            err.to_string(),
            "Cloud Run jobs.create failed: INVALID_ARGUMENT: \
             spec.template.spec.template.spec.containers[0].resources.limits.cpu: must be one of 1, \
             2, 4, 6, 8. Cloud Run refused a value pushpool sent from the flow run's job \
             configuration: fix the job variable or base job template field it names."
        );
        let long = format!(
            r#"{{"error": {{"code": 400, "message": "{}", "status": "NOT_FOUND"}}}}"#,
            "y".repeat(900)
        );
        let err = CallError::Google(google_error(StatusCode::NOT_FOUND, long.as_bytes(), None))
            .into_provider_error("jobs.get");
        assert_eq!(err.to_string().chars().count(), 500);
        assert!(err.to_string().ends_with("yy…"));
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        let body = br#"{"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}"#;
        let g = google_error(
            StatusCode::TOO_MANY_REQUESTS,
            body,
            Some(Duration::from_secs(7)),
        );
        let err = CallError::Google(g).into_provider_error("jobs.run");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            err.to_string(),
            "Cloud Run jobs.run failed: RESOURCE_EXHAUSTED: Quota exceeded."
        );
        let g = google_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None);
        let err = CallError::Google(g).into_provider_error("jobs.get");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "Cloud Run jobs.get failed: HTTP 502: <html>bad gateway</html>"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
