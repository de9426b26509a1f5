//! A Cloud Run execution (`GoogleCloudRunV2Execution`) read as a [`JobStatus`].
//!
//! Google's JSON omits zero counters and empty fields (proto3 JSON), so an absent
//! `succeededCount` is 0 and an absent `taskCount` is taken as 1.

use serde_json::Value;

use pushpool_providers::JobStatus;

/// What the execution says, before the tasks are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reading {
    /// The status, final.
    Status(JobStatus),
    /// The execution failed because a task's container exited non-zero: the exit code is
    /// in the tasks (`executions.tasks.list`); `detail` is the `Completed` condition's message.
    NonZeroExit { detail: String },
}

/// The `Completed` condition (prefect-gcp 0.6.22 `ExecutionV2.condition_after_completion`).
fn completed_condition(execution: &Value) -> Option<&Value> {
    execution
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Completed"))
}

fn count(execution: &Value, key: &str) -> i64 {
    execution.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(value: Option<&'a Value>, key: &str) -> &'a str {
    value
        .and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Reads an execution (see the provider's module docs, "Status").
pub(super) fn read_execution(execution: &Value) -> Reading {
    let completed = completed_condition(execution);
    let state = text(completed, "state");
    let reason = text(completed, "executionReason");
    let message = text(completed, "message").trim().to_owned();
    let finished = execution
        .get("completionTime")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        || matches!(state, "CONDITION_SUCCEEDED" | "CONDITION_FAILED");
    if !finished {
        let started = execution
            .get("startTime")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty());
        return Reading::Status(if count(execution, "runningCount") > 0 || started {
            JobStatus::Running
        } else {
            JobStatus::Pending
        });
    }
    let tasks = execution
        .get("taskCount")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let succeeded = count(execution, "succeededCount");
    let failed = count(execution, "failedCount");
    let cancelled = count(execution, "cancelledCount");
    if succeeded == tasks {
        return Reading::Status(JobStatus::Exited {
            exit_code: 0,
            detail: String::new(),
        });
    }
    if cancelled > 0 || reason == "CANCELLED" {
        let reason = if message.is_empty() {
            "Cloud Run execution was cancelled".to_owned()
        } else {
            format!("Cloud Run execution was cancelled: {message}")
        };
        return Reading::Status(JobStatus::Failed { reason });
    }
    if reason == "NON_ZERO_EXIT_CODE" {
        return Reading::NonZeroExit { detail: message };
    }
    let reason = if message.is_empty() {
        format!("Cloud Run execution failed: {failed} of {tasks} tasks failed")
    } else {
        message
    };
    Reading::Status(JobStatus::Failed { reason })
}

/// The exit code of the first task whose last attempt failed (`executions.tasks.list`):
/// `lastAttemptResult.exitCode`, else 128 + `termSignal`, else `None`.
pub(super) fn failed_task_exit_code(tasks: &Value) -> Option<i64> {
    tasks
        .get("tasks")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|t| t.get("lastAttemptResult"))
        .find_map(|r| {
            let code = r.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
            let signal = r.get("termSignal").and_then(Value::as_i64).unwrap_or(0);
            if code != 0 {
                Some(code)
            } else if signal != 0 {
                Some(128 + signal)
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pending_running_and_success() {
        assert_eq!(
            read_execution(&json!({"taskCount": 1})),
            Reading::Status(JobStatus::Pending)
        );
        assert_eq!(
            read_execution(
                &json!({"taskCount": 1, "startTime": "2026-01-01T00:00:00Z", "runningCount": 1})
            ),
            Reading::Status(JobStatus::Running)
        );
        assert_eq!(
            read_execution(&json!({"taskCount": 1, "succeededCount": 1,
                "completionTime": "2026-01-01T00:01:00Z",
                "conditions": [{"type": "Completed", "state": "CONDITION_SUCCEEDED"}]})),
            Reading::Status(JobStatus::Exited {
                exit_code: 0,
                detail: String::new()
            })
        );
    }

    #[test]
    fn failures() {
        assert_eq!(
            read_execution(&json!({"taskCount": 1, "failedCount": 1,
                "completionTime": "2026-01-01T00:01:00Z",
                "conditions": [{"type": "Completed", "state": "CONDITION_FAILED",
                    "executionReason": "NON_ZERO_EXIT_CODE", "message": "Task failed."}]})),
            Reading::NonZeroExit {
                detail: "Task failed.".into()
            }
        );
        assert_eq!(
            read_execution(&json!({"taskCount": 1, "cancelledCount": 1,
                "completionTime": "2026-01-01T00:01:00Z",
                "conditions": [{"type": "Completed", "state": "CONDITION_FAILED",
                    "executionReason": "CANCELLED", "message": "The execution was cancelled."}]})),
            Reading::Status(JobStatus::Failed {
                reason: "Cloud Run execution was cancelled: The execution was cancelled.".into()
            })
        );
        assert_eq!(
            read_execution(&json!({"taskCount": 1, "failedCount": 1,
                "conditions": [{"type": "Completed", "state": "CONDITION_FAILED"}]})),
            Reading::Status(JobStatus::Failed {
                reason: "Cloud Run execution failed: 1 of 1 tasks failed".into()
            })
        );
    }

    #[test]
    fn exit_codes_from_tasks() {
        assert_eq!(
            failed_task_exit_code(&json!({"tasks": [
                {"lastAttemptResult": {"status": {}}},
                {"lastAttemptResult": {"exitCode": 3, "status": {"code": 2}}}]})),
            Some(3)
        );
        assert_eq!(
            failed_task_exit_code(&json!({"tasks": [{"lastAttemptResult": {"termSignal": 9}}]})),
            Some(137)
        );
        assert_eq!(failed_task_exit_code(&json!({})), None);
    }
}
