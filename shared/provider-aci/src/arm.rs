//! Azure Resource Manager calls over reqwest (bounded by [`super::AciSettings::http_timeout`]),
//! with `Authorization: Bearer <token>`, and ARM's answers classified into
//! [`ProviderError`]s.
//!
//! Error bodies are ARM's `CloudError` (`{"error": {"code", "message", "target", "details"}}`,
//! `specs/azure/SUMMARY.md` "Error shape"). 429 (with `Retry-After`), 408 and 5xx answers,
//! codes that ARM documents as retryable, timeouts and connection failures are transient;
//! every other refusal is permanent and keeps ARM's own code and message:
//! `ACI container group create failed: ResourceGroupNotFound: Resource group 'x' could not be found.`

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::redact::Redactor;
use pushpool_providers::ProviderError;

/// The api-version of every `Microsoft.ContainerInstance` call (what azure-mgmt-containerinstance
/// 10.1.0 pins; `specs/azure/aci_models_from_python_sdk_2023-05-01.json`).
pub const ACI_API_VERSION: &str = "2023-05-01";

/// The api-version of the `Microsoft.Resources` resource group read (Resource Groups - Get).
pub const RESOURCES_API_VERSION: &str = "2021-04-01";

/// Error codes that mean "try again later", whatever their HTTP status (ARM answers a
/// concurrent operation on the same resource with 409).
const TRANSIENT_CODES: &[&str] = &[
    "AnotherOperationInProgress",
    "OperationNotAllowed.Transient",
    "ContainerGroupTransitioning",
    "RetryableError",
    "ServerTimeout",
    "InternalServerError",
    "ServiceUnavailable",
    "GatewayTimeout",
    "TooManyRequests",
    "ResourceRequestsThrottled",
];

/// An answer from ARM.
pub(super) struct ArmResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
}

impl ArmResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// ARM's `error.code` and `error.message`, if the body is a `CloudError`.
    pub fn error(&self) -> (Option<&str>, Option<&str>) {
        let e = &self.body["error"];
        (e["code"].as_str(), e["message"].as_str())
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by ARM).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The ARM client: one reqwest client and the endpoint (`https://management.azure.com`).
#[derive(Clone)]
pub(super) struct Arm {
    http: reqwest::Client,
    endpoint: String,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Arm {
    pub fn new(endpoint: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of a path (`/subscriptions/...`) with `api-version`.
    pub fn url(&self, path: &str, api_version: &str) -> String {
        format!("{}{path}?api-version={api_version}", self.endpoint)
    }

    /// Whether `url` is on the ARM endpoint (only there is the token sent).
    pub fn owns(&self, url: &str) -> bool {
        url.strip_prefix(self.endpoint.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Sends one request.
    ///
    /// # Errors
    /// A transient [`ProviderError`] (`<op> failed: ...`) when no answer came (timeout,
    /// connection failure).
    pub async fn send(
        &self,
        op: &str,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, ProviderError> {
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.map_err(|e| network_error(op, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| network_error(op, &e))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(ArmResponse {
            status,
            headers,
            body,
        })
    }
}

/// A request that got no answer: transient.
fn network_error(op: &str, err: &reqwest::Error) -> ProviderError {
    let what = if err.is_timeout() {
        "the request timed out".to_owned()
    } else if err.is_connect() {
        "could not connect to Azure Resource Manager".to_owned()
    } else {
        // reqwest's Display holds the URL (ids and names, no secrets) and the cause.
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };
    ProviderError::transient(format!("{op} failed: {what}"))
}

/// A non-success answer → [`ProviderError`]: `<op> failed: <code>: <message>`.
pub(super) fn classify(op: &str, resp: &ArmResponse, redactor: &Redactor) -> ProviderError {
    let (code, message) = resp.error();
    let status = resp.status;
    let text = match (code, message) {
        (Some(code), Some(message)) if !message.is_empty() => {
            format!("{op} failed: {code}: {message}")
        }
        (Some(code), _) => format!("{op} failed: {code} (HTTP {status})"),
        (None, _) => format!("{op} failed: HTTP {status}"),
    };
    let text = redactor.apply(&text);
    let transient = status == 408
        || status == 429
        || status >= 500
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
    if transient {
        ProviderError::throttled(pushpool_providers::cap_message(&text), resp.retry_after())
    } else {
        let text = match code.and_then(arm_hint) {
            Some(hint) => format!("{} {hint}", sentence(&text)),
            None => text,
        };
        ProviderError::permanent(pushpool_providers::cap_message(&text))
    }
}

/// What to do about a permanent ARM error, by its code.
fn arm_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthorizationFailed" | "LinkedAuthorizationFailed" => {
            "The service principal of the work pool's aci_credentials may not do this: give it a \
             role with Microsoft.ContainerInstance/containerGroups/* on the resource group (for \
             example Contributor)."
        }
        "InvalidAuthenticationToken"
        | "InvalidAuthenticationTokenTenant"
        | "ExpiredAuthenticationToken"
        | "AuthenticationFailed" => {
            "Azure rejected the token of the work pool's aci_credentials: check its tenant id, \
             client id and client secret."
        }
        "ResourceGroupNotFound" => {
            "Create the resource group, or set resource_group_name to an existing one."
        }
        "SubscriptionNotFound" | "InvalidSubscriptionId" => {
            "Check subscription_id: the service principal must see that subscription."
        }
        "InvalidRequestContent"
        | "InvalidContainerGroupName"
        | "InvalidResourceName"
        | "InvalidParameter" => {
            "ACI refused a value pushpool sent from the flow run's job configuration: fix the \
             job variable or ARM template field it names."
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

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn resp(status: u16, body: Value, retry: Option<&str>) -> ArmResponse {
        let mut headers = HeaderMap::new();
        if let Some(r) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        ArmResponse {
            status,
            headers,
            body,
        }
    }

    #[test]
    fn permanent_errors_keep_arms_code_and_message() {
        let r = resp(
            404,
            json!({"error": {"code": "ResourceGroupNotFound",
                "message": "Resource group 'x' could not be found."}}),
            None,
        );
        let e = classify("ACI container group create", &r, &Redactor::default());
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "ACI container group create failed: ResourceGroupNotFound: Resource group 'x' could not \
             be found. Create the resource group, or set resource_group_name to an existing one."
        );
    }

    #[test]
    fn throttling_server_errors_and_conflicts_are_transient() {
        let r = resp(
            429,
            json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            Some("7"),
        );
        let e = classify("op", &r, &Redactor::default());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.to_string(), "op failed: TooManyRequests: slow down");
        assert!(classify("op", &resp(503, Value::Null, None), &Redactor::default()).is_transient());
        let busy = resp(
            409,
            json!({"error": {"code": "AnotherOperationInProgress", "message": "busy"}}),
            None,
        );
        assert!(classify("op", &busy, &Redactor::default()).is_transient());
        assert_eq!(
            classify("op", &resp(400, Value::Null, None), &Redactor::default()).to_string(),
            "op failed: HTTP 400"
        );
    }

    #[test]
    fn secrets_echoed_by_arm_are_blanked() {
        let r = resp(
            400,
            json!({"error": {"code": "InvalidRequestContent", "message": "bad value 'hunter2'"}}),
            None,
        );
        let e = classify("op", &r, &Redactor::new(["hunter2"]));
        assert_eq!(
            e.to_string(),
            "op failed: InvalidRequestContent: bad value '<redacted>'. ACI refused a value pushpool \
             sent from the flow run's job configuration: fix the job variable or ARM template field \
             it names."
        );
    }

    #[test]
    fn only_urls_on_the_endpoint_are_owned() {
        let arm = Arm::new("https://management.azure.com/", Duration::from_secs(1));
        assert!(arm.owns("https://management.azure.com/subscriptions/x"));
        assert!(!arm.owns("https://management.azure.com.evil.example/x"));
        assert!(!arm.owns("https://elsewhere/x"));
        assert_eq!(
            arm.url("/subscriptions/s", ACI_API_VERSION),
            "https://management.azure.com/subscriptions/s?api-version=2023-05-01"
        );
    }
}
