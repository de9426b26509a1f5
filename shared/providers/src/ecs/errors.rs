//! AWS SDK errors → [`ProviderError`]: permanent with the service's own code and message,
//! transient for throttling, server errors, timeouts and dispatch failures.
//!
//! The `SdkError` itself is not kept as a source: its raw HTTP response may echo a request
//! (and a `RunTask` echoes the container environment). The modeled service error is kept
//! (code, message and request id only).

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::types::Failure;

use crate::ProviderError;

/// Error codes that mean "try again later", whatever their HTTP status (ECS answers
/// throttling with 400).
const TRANSIENT_CODES: &[&str] = &[
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
            let message = match error.message() {
                Some(m) if !m.is_empty() => format!("{service} {op} failed: {code}: {m}"),
                _ => format!("{service} {op} failed: {code} (HTTP {status})"),
            };
            let transient =
                TRANSIENT_CODES.contains(&code.as_str()) || status >= 500 || status == 429;
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
        SdkError::TimeoutError(_) => {
            ProviderError::transient(format!("{service} {op} failed: the call timed out"))
        }
        SdkError::DispatchFailure(ref failure) => {
            let message = format!(
                "{service} {op} failed: could not reach the service: {}",
                DisplayErrorContext(&err)
            );
            if failure.is_user() {
                ProviderError::permanent(message)
            } else {
                ProviderError::transient(message)
            }
        }
        SdkError::ResponseError(_) => ProviderError::transient(format!(
            "{service} {op} failed: unreadable response: {}",
            DisplayErrorContext(&err)
        )),
        SdkError::ConstructionFailure(_) => ProviderError::permanent(format!(
            "{service} {op} failed: the request could not be built: {}",
            DisplayErrorContext(&err)
        )),
        _ => ProviderError::transient(format!(
            "{service} {op} failed: {}",
            DisplayErrorContext(&err)
        )),
    }
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

/// `ECS <op> failed: <reason> (<arn>): <detail>`.
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
    message
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
