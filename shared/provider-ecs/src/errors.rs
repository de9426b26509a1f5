//! AWS SDK errors → [`ProviderError`], as sentences a person reads: the service's own error
//! code and message, what pushpool tried, and what to do; never the SDK's `Debug` output, and
//! at most [`pushpool_providers::MAX_MESSAGE_CHARS`] characters.
//!
//! Classes (each has a golden message in the tests below and in `tests/tests/ecs_fake.rs`):
//! - **no credentials**: the identity resolver found none, or could not load them (a
//!   dispatch failure whose cause is a `CredentialsError` other than a timeout, or no
//!   identity for the auth scheme): permanent, the request was never sent;
//! - **rejected credentials** (`UnrecognizedClientException`, `InvalidSignatureException`,
//!   `ExpiredTokenException`, EC2's `AuthFailure`, ...) and **access denied**
//!   (`AccessDeniedException`, EC2's `UnauthorizedOperation`): permanent, naming the IAM action;
//! - **throttling and server errors** ([`TRANSIENT_CODES`], HTTP 5xx and 429) and ECS's
//!   "Too many concurrent attempts to create a new revision of the specified family"
//!   (a 400 `ClientException`): transient;
//! - **cannot reach the service** (connection refused, DNS, TLS: other dispatch failures) and
//!   timeouts: transient;
//! - every other service error (`ClusterNotFoundException`, `InvalidParameterException`,
//!   `ClientException`, ...): permanent with the service's words and a hint where one helps.
//!
//! The `SdkError` itself is not kept as a source: its raw HTTP response may echo a request
//! (and a `RunTask` echoes the container environment). The modeled service error is kept
//! (code, message and request id only).

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::types::Failure;

use pushpool_providers::ProviderError;
use pushpool_providers::cap_message;

/// Error codes that mean "try again later", whatever their HTTP status (ECS answers
/// throttling with 400).
pub(super) const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "EC2ThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServerException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// Codes that say AWS did not accept the credentials themselves.
const REJECTED_CREDENTIALS_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "AuthFailure",
    "MissingAuthenticationToken",
];

/// Codes that say the credentials may not call the operation.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnauthorizedException",
];

/// Whether `code` says the credentials may not call the operation.
pub(super) fn is_access_denied(code: &str) -> bool {
    ACCESS_DENIED_CODES.contains(&code)
}

/// ECS's words when two registrations of one family race (a 400 `ClientException`).
pub(super) const CONCURRENT_REVISIONS: &str =
    "Too many concurrent attempts to create a new revision of the specified family";

/// Where pushpool takes AWS credentials from, and what to do when they are missing.
const CREDENTIALS_HINT: &str = "pushpool uses the work pool's aws_credentials block when it \
     is set, else its own AWS configuration (environment variables, shared config files, the \
     container or instance role): give one of them credentials.";

/// Classifies a failed call of `service` `op` (`"ECS"`, `"RunTask"`).
pub(super) fn classify<E>(service: &str, op: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let error = ctx.into_err();
            let code = error.code().unwrap_or("UnknownError").to_owned();
            let said = match error.message() {
                Some(m) if !m.trim().is_empty() => format!("{code}: {}", sentence(m)),
                _ => format!("{code} (HTTP {status})."),
            };
            let concurrent_revisions = code == "ClientException"
                && error
                    .message()
                    .is_some_and(|m| m.contains(CONCURRENT_REVISIONS));
            let transient = TRANSIENT_CODES.contains(&code.as_str())
                || status >= 500
                || status == 429
                || concurrent_revisions;
            let hint = if transient {
                // The service says what to do when the retries run out.
                String::new()
            } else {
                service_hint(service, op, &code)
            };
            let message = cap_message(&join(&format!("{service} {op} failed: {said}"), &hint));
            let source: Option<Box<dyn std::error::Error + Send + Sync>> = Some(Box::new(error));
            if transient {
                ProviderError::Transient {
                    message,
                    retry_after: None,
                    source,
                }
            } else {
                ProviderError::Permanent { message, source }
            }
        }
        other => classify_unanswered(service, op, &other),
    }
}

/// A call that got no service error back: it timed out, was never sent, or its answer could
/// not be read.
fn classify_unanswered<E>(service: &str, op: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: std::error::Error + 'static,
{
    let causes = causes(err);
    match err {
        SdkError::TimeoutError(_) => ProviderError::transient(cap_message(&format!(
            "{service} {op} failed: the call timed out."
        ))),
        SdkError::DispatchFailure(failure) => {
            if let Some(reason) = missing_credentials(err) {
                return ProviderError::permanent(cap_message(&format!(
                    "{service} {op} was not sent: {reason} ({causes}). {CREDENTIALS_HINT}"
                )));
            }
            let message = cap_message(&format!(
                "{service} {op} failed: pushpool could not reach the {service} endpoint ({causes}). {}",
                if failure.is_user() {
                    "Check the region and AWS_ENDPOINT_URL of the AWS configuration pushpool uses."
                } else {
                    "If it lasts, check the region, AWS_ENDPOINT_URL and the network path to AWS."
                }
            ));
            if failure.is_user() {
                ProviderError::permanent(message)
            } else {
                ProviderError::transient(message)
            }
        }
        SdkError::ResponseError(_) => ProviderError::transient(cap_message(&format!(
            "{service} {op} failed: the answer could not be read ({causes})."
        ))),
        SdkError::ConstructionFailure(_) => ProviderError::permanent(cap_message(&format!(
            "{service} {op} failed: the request could not be built ({causes}). Check the job \
             configuration's values for {op}."
        ))),
        _ => ProviderError::transient(cap_message(&format!("{service} {op} failed: {causes}."))),
    }
}

/// What to do about a permanent service error, by code.
fn service_hint(service: &str, op: &str, code: &str) -> String {
    let action = format!("{}:{op}", service.to_ascii_lowercase());
    if REJECTED_CREDENTIALS_CODES.contains(&code) {
        return format!(
            "AWS rejected the credentials pushpool used (invalid, expired or for another \
             partition). {CREDENTIALS_HINT}"
        );
    }
    if ACCESS_DENIED_CODES.contains(&code) {
        return format!(
            "The AWS credentials pushpool used may not call {action}: allow it in their IAM \
             policy (infra/template.yaml lists every action pushpool needs)."
        );
    }
    match code {
        "ClusterNotFoundException" => "The cluster named by the cluster job variable (ECS's \
             default cluster when none is set) does not exist in the region pushpool uses: \
             create it, or set cluster to an existing one."
            .to_owned(),
        "InvalidParameterException" | "ClientException" | "InvalidParameterValue" => format!(
            "{service} refused a value pushpool sent from the flow run's job configuration: fix \
             the job variable or base job template field it names."
        ),
        "PlatformUnknownException" | "PlatformTaskDefinitionIncompatibilityException" => {
            "Check the platform version and the launch type of the job configuration.".to_owned()
        }
        "UnsupportedFeatureException" => {
            "The region or account does not offer this feature: change the job configuration."
                .to_owned()
        }
        "BlockedException" => "AWS blocked the account: contact AWS Support.".to_owned(),
        _ => String::new(),
    }
}

/// `text` ended as a sentence (a period added when it has no final punctuation).
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn join(said: &str, hint: &str) -> String {
    if hint.is_empty() {
        said.to_owned()
    } else {
        format!("{said} {hint}")
    }
}

/// The `Display` texts of an error's causes, outermost first, joined with `: `, skipping
/// repeats and the SDK's generic wrappers ("dispatch failure", "io error", "other"): what
/// `DisplayErrorContext` prints without its `Debug` dump.
pub(super) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        let text = text.trim();
        let generic = matches!(
            text,
            "" | "dispatch failure" | "io error" | "other" | "unhandled error" | "timeout"
        );
        if !generic && !parts.iter().any(|p| p.contains(text)) {
            parts.push(text.to_owned());
        }
        current = e.source();
    }
    if parts.is_empty() {
        "no further detail".to_owned()
    } else {
        parts.join(": ")
    }
}

/// Why no request was sent for lack of credentials, when that is the cause of a dispatch
/// failure: `None` for other causes (and for a credentials provider that timed out, which is
/// transient).
fn missing_credentials(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(creds) = e.downcast_ref::<CredentialsError>() {
            return match creds {
                CredentialsError::CredentialsNotLoaded(_) => Some("no AWS credentials were found"),
                CredentialsError::ProviderTimedOut(_) => None,
                CredentialsError::InvalidConfiguration(_) => {
                    Some("the AWS credentials configuration is invalid")
                }
                _ => Some("the AWS credentials could not be loaded"),
            };
        }
        let text = e.to_string();
        if text.contains("no auth scheme") || text.contains("identity resolver") {
            return Some("no AWS credentials were configured");
        }
        current = e.source();
    }
    None
}

/// The task a `ConflictException` names: the `clientToken` already started it (with other
/// parameters, e.g. a template changed between two attempts of one submission).
pub(super) fn conflicting_task(err: &SdkError<RunTaskError, HttpResponse>) -> Option<String> {
    match err.as_service_error() {
        Some(RunTaskError::ConflictException(conflict)) => conflict.resource_ids().first().cloned(),
        _ => None,
    }
}

/// Whether a `StopTask` error says the task (or its whole cluster) no longer exists.
pub(super) fn is_gone(err: &SdkError<StopTaskError, HttpResponse>) -> bool {
    match err.as_service_error() {
        Some(StopTaskError::ClusterNotFoundException(_)) => true,
        Some(StopTaskError::InvalidParameterException(e)) => e
            .message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("not found")),
        _ => false,
    }
}

/// `ECS <op> failed: <reason> (<arn>): <detail>`, at most [`pushpool_providers::MAX_MESSAGE_CHARS`].
pub(super) fn failure_message(op: &str, failure: &Failure) -> String {
    let mut message = format!(
        "ECS {op} failed: {}",
        failure.reason().unwrap_or("no reason given")
    );
    if let Some(arn) = failure.arn().filter(|a| !a.is_empty()) {
        message.push_str(&format!(" ({arn})"));
    }
    if let Some(detail) = failure.detail().filter(|d| !d.is_empty()) {
        message.push_str(&format!(": {detail}"));
    }
    cap_message(&message)
}

/// A `RunTask` answered with `failures[]` and no task: permanent, except the capacity
/// reasons AWS documents as momentary ("API failure reasons": `RESOURCE:*` on EC2, and
/// Fargate's "Capacity is unavailable at this time. Please try again later...").
pub(super) fn run_task_failure(failure: &Failure) -> ProviderError {
    let message = failure_message("RunTask", failure);
    let reason = failure.reason().unwrap_or_default();
    if reason.starts_with("RESOURCE:") || reason.contains("Capacity is unavailable") {
        ProviderError::transient(message)
    } else {
        ProviderError::permanent(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_like_the_service() {
        let f = Failure::builder()
            .arn("arn:aws:ecs:us-east-1:123456789012:container-instance/c/1")
            .reason("ATTRIBUTE")
            .detail("requires ecs.capability.task-eni")
            .build();
        assert_eq!(
            failure_message("RunTask", &f),
            "ECS RunTask failed: ATTRIBUTE (arn:aws:ecs:us-east-1:123456789012:container-instance/c/1): requires ecs.capability.task-eni"
        );
        assert!(!run_task_failure(&f).is_transient());
        let f = Failure::builder().reason("RESOURCE:MEMORY").build();
        assert!(run_task_failure(&f).is_transient());
        assert_eq!(
            failure_message("RunTask", &f),
            "ECS RunTask failed: RESOURCE:MEMORY"
        );
    }
}
