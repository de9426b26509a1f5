//! An ECS task → [`JobStatus`] (see the module docs of `ecs` for the table).

use aws_sdk_ecs::types::{Container, Task, TaskStopCode};

use pushpool_providers::JobStatus;

/// Where a task is in its lifecycle (ECS "Task lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// `PROVISIONING`, `PENDING`, `ACTIVATING` (or no status yet).
    Pending,
    /// `RUNNING`, `DEACTIVATING`, `STOPPING`, `DEPROVISIONING`, or a status this code does
    /// not know (not terminal: the next look will tell).
    Running,
    /// `STOPPED` (or `DELETED`).
    Stopped,
}

pub(super) fn phase(task: &Task) -> Phase {
    match task.last_status() {
        None | Some("PROVISIONING" | "PENDING" | "ACTIVATING") => Phase::Pending,
        Some("STOPPED" | "DELETED") => Phase::Stopped,
        Some(_) => Phase::Running,
    }
}

/// `stopCode == TaskFailedToStart`.
pub(super) fn failed_to_start(task: &Task) -> bool {
    task.stop_code() == Some(&TaskStopCode::TaskFailedToStart)
}

/// The flow's container: the one named `name`, else the only one.
pub(super) fn main_container<'a>(task: &'a Task, name: Option<&str>) -> Option<&'a Container> {
    let containers = task.containers();
    if let Some(found) = name.and_then(|n| containers.iter().find(|c| c.name() == Some(n))) {
        return Some(found);
    }
    match containers {
        [only] => Some(only),
        _ => None,
    }
}

/// The job's status; `main` is the flow's container when the task has stopped.
pub(super) fn job_status(task: &Task, main: Option<&Container>) -> JobStatus {
    match phase(task) {
        Phase::Pending => return JobStatus::Pending,
        Phase::Running => return JobStatus::Running,
        Phase::Stopped => {}
    }
    let stopped_reason = task.stopped_reason().unwrap_or_default();
    let stop_code = task.stop_code().map(|c| c.as_str()).unwrap_or("none");
    if failed_to_start(task) {
        let reason = if stopped_reason.is_empty() {
            "ECS task failed to start (TaskFailedToStart) without a reason".to_owned()
        } else {
            stopped_reason.to_owned()
        };
        return JobStatus::Failed { reason };
    }
    let detail = detail(stopped_reason, main);
    match main.and_then(Container::exit_code) {
        Some(code) => JobStatus::Exited {
            exit_code: i64::from(code),
            detail,
        },
        None if detail.is_empty() => JobStatus::Failed {
            reason: format!("ECS task stopped without an exit code (stopCode {stop_code})"),
        },
        None => JobStatus::Failed { reason: detail },
    }
}

/// `stoppedReason`, then `container <name>: <reason>` when the container has a reason of
/// its own.
fn detail(stopped_reason: &str, main: Option<&Container>) -> String {
    let container_reason = main
        .and_then(|c| c.reason().map(|r| (c.name().unwrap_or("?"), r)))
        .filter(|(_, r)| !r.is_empty() && *r != stopped_reason);
    match (stopped_reason.is_empty(), container_reason) {
        (_, None) => stopped_reason.to_owned(),
        (true, Some((name, reason))) => format!("container {name}: {reason}"),
        (false, Some((name, reason))) => format!("{stopped_reason}; container {name}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(last: &str) -> aws_sdk_ecs::types::builders::TaskBuilder {
        Task::builder().task_arn("arn").last_status(last)
    }

    #[test]
    fn lifecycle_statuses_map_to_pending_and_running() {
        for s in ["PROVISIONING", "PENDING", "ACTIVATING"] {
            assert_eq!(
                job_status(&task(s).build(), None),
                JobStatus::Pending,
                "{s}"
            );
        }
        for s in ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"] {
            assert_eq!(
                job_status(&task(s).build(), None),
                JobStatus::Running,
                "{s}"
            );
        }
    }

    #[test]
    fn failed_to_start_is_failed_with_the_stopped_reason() {
        let t = task("STOPPED")
            .stop_code(TaskStopCode::TaskFailedToStart)
            .stopped_reason("CannotPullContainerError: pull access denied")
            .build();
        assert_eq!(
            job_status(&t, None),
            JobStatus::Failed {
                reason: "CannotPullContainerError: pull access denied".into()
            }
        );
    }

    #[test]
    fn exit_codes_are_exited_and_missing_ones_failed() {
        let c = Container::builder()
            .name("prefect")
            .exit_code(137)
            .reason("OutOfMemoryError: Container killed due to memory usage")
            .build();
        let t = task("STOPPED")
            .stop_code(TaskStopCode::EssentialContainerExited)
            .stopped_reason("Essential container in task exited")
            .containers(c)
            .build();
        assert_eq!(
            job_status(&t, main_container(&t, Some("prefect"))),
            JobStatus::Exited {
                exit_code: 137,
                detail: "Essential container in task exited; container prefect: OutOfMemoryError: Container killed due to memory usage".into()
            }
        );
        let t = task("STOPPED")
            .stop_code(TaskStopCode::UserInitiated)
            .stopped_reason("Task stopped by user")
            .containers(Container::builder().name("prefect").build())
            .build();
        assert_eq!(
            job_status(&t, main_container(&t, Some("prefect"))),
            JobStatus::Failed {
                reason: "Task stopped by user".into()
            }
        );
        let t = task("STOPPED").build();
        assert_eq!(
            job_status(&t, None),
            JobStatus::Failed {
                reason: "ECS task stopped without an exit code (stopCode none)".into()
            }
        );
    }

    #[test]
    fn the_main_container_is_the_named_one_or_the_only_one() {
        let t = task("STOPPED")
            .containers(Container::builder().name("sidecar").exit_code(0).build())
            .containers(Container::builder().name("flow").exit_code(3).build())
            .build();
        assert_eq!(
            main_container(&t, Some("flow")).and_then(|c| c.exit_code()),
            Some(3)
        );
        assert!(main_container(&t, Some("prefect")).is_none());
        let t = task("STOPPED")
            .containers(Container::builder().name("x").exit_code(1).build())
            .build();
        assert_eq!(
            main_container(&t, Some("prefect")).and_then(|c| c.exit_code()),
            Some(1)
        );
    }
}
