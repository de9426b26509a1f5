//! A container group (`ContainerGroups_Get`, with its instance view) → [`JobStatus`].
//!
//! States (`specs/azure/SUMMARY.md` "States to map"; Azure docs "Container states"): the
//! flow's container is the group's first (prefect-azure's `_get_container`). Its
//! `instanceView.currentState.state` `Terminated` → [`JobStatus::Exited`] with `exitCode` and
//! `detailStatus` (`Completed`, `Error`), or [`JobStatus::Failed`] without an exit code. A
//! container `Waiting` on its image — `detailStatus` `ErrImagePull`/`ImagePullBackOff`/
//! `InvalidImageName`, or a `Failed` event "Failed to pull image ..." (Azure docs,
//! "Troubleshoot common issues", "Unable to pull image") → [`JobStatus::Failed`] with the
//! event's message: ACI keeps retrying for a while, but the run cannot start. Then
//! `provisioningState` `Failed` → [`JobStatus::Failed`] (the last event of the container or
//! the group as reason); a group `instanceView.state` `Succeeded`/`Failed`/`Stopped` without
//! a terminated container → [`JobStatus::Failed`]; a `Running` container →
//! [`JobStatus::Running`]; anything else (`Creating`, `Pending`, `Waiting`) →
//! [`JobStatus::Pending`].

use serde_json::Value;

use pushpool_providers::JobStatus;

/// `detailStatus` values of a container waiting on an image it cannot pull.
const PULL_FAILURES: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// The status of a container group (the body of a `GET`).
pub(super) fn job_status(group: &Value) -> JobStatus {
    let props = &group["properties"];
    let container = &props["containers"][0];
    let name = container["name"].as_str().unwrap_or("?");
    let view = &container["properties"]["instanceView"];
    let current = &view["currentState"];
    let state = current["state"].as_str().unwrap_or_default();
    let detail = current["detailStatus"].as_str().unwrap_or_default();

    if state.eq_ignore_ascii_case("Terminated") {
        return match current["exitCode"].as_i64() {
            Some(exit_code) => JobStatus::Exited {
                exit_code,
                detail: detail.to_owned(),
            },
            None => JobStatus::Failed {
                reason: join(
                    &format!("ACI container {name} terminated without an exit code"),
                    detail,
                ),
            },
        };
    }
    if let Some(reason) = pull_failure(view, state, detail) {
        return JobStatus::Failed { reason };
    }
    let provisioning = props["provisioningState"].as_str().unwrap_or_default();
    if provisioning.eq_ignore_ascii_case("Failed") {
        let event = last_event(&view["events"], true)
            .or_else(|| last_event(&props["instanceView"]["events"], false));
        return JobStatus::Failed {
            reason: join(
                "ACI container group provisioning failed",
                &event.unwrap_or_default(),
            ),
        };
    }
    let group_state = props["instanceView"]["state"].as_str().unwrap_or_default();
    if ["Succeeded", "Failed", "Stopped"]
        .iter()
        .any(|s| group_state.eq_ignore_ascii_case(s))
    {
        let event = last_event(&props["instanceView"]["events"], false);
        return JobStatus::Failed {
            reason: join(
                &format!(
                    "ACI container group is {group_state} but container {name} has no exit code"
                ),
                &event.unwrap_or_default(),
            ),
        };
    }
    if state.eq_ignore_ascii_case("Running") {
        JobStatus::Running
    } else {
        JobStatus::Pending
    }
}

/// The reason of an image pull failure, if the container is waiting on one.
fn pull_failure(view: &Value, state: &str, detail: &str) -> Option<String> {
    if !state.eq_ignore_ascii_case("Waiting") {
        return None;
    }
    let event = view["events"].as_array().and_then(|events| {
        events.iter().rev().find_map(|e| {
            let message = e["message"].as_str()?;
            (e["name"].as_str() == Some("Failed") && message.starts_with("Failed to pull image"))
                .then(|| message.to_owned())
        })
    });
    match event {
        Some(message) => Some(message),
        None if PULL_FAILURES.iter().any(|p| detail.eq_ignore_ascii_case(p)) => {
            Some(detail.to_owned())
        }
        None => None,
    }
}

/// `<name>: <message>` of the last event (of type `Warning` only when `warnings_only`).
fn last_event(events: &Value, warnings_only: bool) -> Option<String> {
    events.as_array()?.iter().rev().find_map(|e| {
        if warnings_only && e["type"].as_str() != Some("Warning") {
            return None;
        }
        let message = e["message"].as_str().unwrap_or_default();
        match e["name"].as_str() {
            Some(name) if !message.is_empty() => Some(format!("{name}: {message}")),
            Some(name) => Some(name.to_owned()),
            None if !message.is_empty() => Some(message.to_owned()),
            None => None,
        }
    })
}

fn join(head: &str, tail: &str) -> String {
    if tail.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(provisioning: &str, group_state: Option<&str>, view: Value) -> Value {
        let mut g = json!({
            "properties": {
                "provisioningState": provisioning,
                "containers": [{"name": "flow", "properties": {"image": "i", "instanceView": view}}],
            }
        });
        if let Some(s) = group_state {
            g["properties"]["instanceView"] = json!({"state": s, "events": []});
        }
        g
    }

    #[test]
    fn each_state_maps() {
        assert_eq!(
            job_status(&group("Creating", None, Value::Null)),
            JobStatus::Pending
        );
        assert_eq!(
            job_status(&group(
                "Succeeded",
                Some("Running"),
                json!({"currentState": {"state": "Running", "detailStatus": ""}})
            )),
            JobStatus::Running
        );
        assert_eq!(
            job_status(&group(
                "Succeeded",
                Some("Succeeded"),
                json!({"currentState": {"state": "Terminated", "exitCode": 0, "detailStatus": "Completed"}})
            )),
            JobStatus::Exited {
                exit_code: 0,
                detail: "Completed".into()
            }
        );
        assert_eq!(
            job_status(&group(
                "Succeeded",
                Some("Stopped"),
                json!({"currentState": {"state": "Waiting"}})
            )),
            JobStatus::Failed {
                reason: "ACI container group is Stopped but container flow has no exit code".into()
            }
        );
    }

    #[test]
    fn image_pull_failures_fail_with_the_event() {
        let view = json!({
            "currentState": {"state": "Waiting", "detailStatus": ""},
            "events": [
                {"name": "Pulling", "type": "Normal", "message": "pulling image \"x\""},
                {"name": "Failed", "type": "Warning", "message": "Failed to pull image \"x\": not found"},
                {"name": "BackOff", "type": "Normal", "message": "Back-off pulling image \"x\""},
            ],
        });
        assert_eq!(
            job_status(&group("Creating", Some("Pending"), view)),
            JobStatus::Failed {
                reason: "Failed to pull image \"x\": not found".into()
            }
        );
        let view = json!({"currentState": {"state": "Waiting", "detailStatus": "ErrImagePull"}});
        assert_eq!(
            job_status(&group("Creating", Some("Pending"), view)),
            JobStatus::Failed {
                reason: "ErrImagePull".into()
            }
        );
    }

    #[test]
    fn the_official_failed_example_fails_with_its_event() {
        // specs/azure/examples-2025-09-01/ContainerGroupsGet_Failed.json (trimmed).
        let g = json!({"properties": {
            "provisioningState": "Failed",
            "containers": [{"name": "demo1", "properties": {"instanceView": {
                "restartCount": 0,
                "currentState": {"state": "Waiting", "startTime": "2017-08-08T00:09:10Z", "detailStatus": ""},
                "events": [{"count": 1, "message": "pulling image \"nginx\"", "name": "Pulling", "type": "Normal"}]
            }}}],
            "instanceView": {"events": [{"count": 1, "message": "Output: mount error(2): Permission denied",
                "name": "FailedMount", "type": "Normal"}], "state": "Pending"}
        }});
        assert_eq!(
            job_status(&g),
            JobStatus::Failed {
                reason: "ACI container group provisioning failed: FailedMount: Output: mount error(2): Permission denied"
                    .into()
            }
        );
    }
}
