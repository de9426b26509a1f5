//! ECS task state change events (EventBridge, `source: aws.ecs`, `detail-type: ECS Task State
//! Change`) of the tasks this provider started: which flow run a task is, read from the
//! event's detail (the task's `startedBy` and its `PREFECT__FLOW_RUN_ID` container override,
//! both set by `submit`). The reconciler function only uses them as a trigger: the run's state
//! still comes from `DescribeTasks`.

use serde_json::Value;
use uuid::Uuid;

use crate::STARTED_BY;

/// The event's `source`.
pub const SOURCE: &str = "aws.ecs";
/// The event's `detail-type`.
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";

/// A state change of a task pushpool started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStateChange {
    /// The task ARN (the run's infrastructure pid).
    pub task_arn: String,
    /// The run, from the task's `PREFECT__FLOW_RUN_ID` container override.
    pub flow_run_id: Uuid,
    /// The task's `lastStatus` in the event (empty when absent).
    pub last_status: String,
}

/// Reads the `detail` of an ECS Task State Change event.
///
/// # Errors
/// Why the event is not about a task pushpool started, in words: `task not started by
/// pushpool`, `event without taskArn`, `task without PREFECT__FLOW_RUN_ID`.
pub fn parse_task_state_change(detail: &Value) -> Result<TaskStateChange, &'static str> {
    if detail["startedBy"] != STARTED_BY {
        return Err("task not started by pushpool");
    }
    let Some(task_arn) = detail["taskArn"].as_str() else {
        return Err("event without taskArn");
    };
    let run_id = detail["overrides"]["containerOverrides"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["environment"].as_array().into_iter().flatten())
        .find(|kv| kv["name"] == "PREFECT__FLOW_RUN_ID")
        .and_then(|kv| kv["value"].as_str())
        .and_then(|v| v.parse().ok());
    match run_id {
        Some(flow_run_id) => Ok(TaskStateChange {
            task_arn: task_arn.to_owned(),
            flow_run_id,
            last_status: detail["lastStatus"].as_str().unwrap_or("").to_owned(),
        }),
        None => Err("task without PREFECT__FLOW_RUN_ID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pushpool_task_names_its_run() {
        let id = Uuid::new_v4();
        let detail = json!({
            "startedBy": STARTED_BY,
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc",
            "lastStatus": "STOPPED",
            "overrides": {"containerOverrides": [
                {"name": "sidecar"},
                {"name": "prefect", "environment": [
                    {"name": "OTHER", "value": "x"},
                    {"name": "PREFECT__FLOW_RUN_ID", "value": id.to_string()}
                ]}
            ]}
        });
        assert_eq!(
            parse_task_state_change(&detail),
            Ok(TaskStateChange {
                task_arn: "arn:aws:ecs:us-east-1:123456789012:task/c/abc".into(),
                flow_run_id: id,
                last_status: "STOPPED".into(),
            })
        );
    }

    #[test]
    fn other_tasks_are_refused_with_the_reason() {
        assert_eq!(
            parse_task_state_change(&json!({"startedBy": "ecs-svc/1", "taskArn": "t"})),
            Err("task not started by pushpool")
        );
        assert_eq!(
            parse_task_state_change(&json!({"startedBy": STARTED_BY})),
            Err("event without taskArn")
        );
        assert_eq!(
            parse_task_state_change(&json!({"startedBy": STARTED_BY, "taskArn": "t"})),
            Err("task without PREFECT__FLOW_RUN_ID")
        );
    }
}
