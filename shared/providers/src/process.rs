//! The local `process` pool type: each job is a child process of pushpool itself, started
//! with the job's command (`prefect flow-run execute` by default) and the job's environment
//! over pushpool's own, in `working_dir` when set.
//!
//! - infrastructure pid: `<hostname>:<pid>`, as Prefect's process worker reports it;
//! - idempotency: a key already submitted returns the first pid and starts nothing;
//! - status: from the child's exit status (a signal death has no exit code: `Failed`);
//!   a pid this process did not start (pushpool restarted) is `Missing`;
//! - cancel: SIGTERM, then SIGKILL after [`ProcessProvider::grace`].

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;

use crate::{Job, JobStatus, Provider, ProviderError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Running,
    Code(i32),
    Signal(i32),
    WaitFailed,
}

#[derive(Default)]
struct Children {
    by_key: HashMap<String, String>,
    by_pid: HashMap<String, (u32, watch::Receiver<Exit>)>,
}

/// The process provider.
#[derive(Clone)]
pub struct ProcessProvider {
    children: Arc<Mutex<Children>>,
    hostname: String,
    grace: Duration,
}

impl std::fmt::Debug for ProcessProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessProvider")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessProvider {
    /// A provider with a 10-second SIGTERM grace period.
    pub fn new() -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Self {
            children: Arc::default(),
            hostname,
            grace: Duration::from_secs(10),
        }
    }

    /// Sets the time between SIGTERM and SIGKILL on cancel.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn lookup(&self, pid: &str) -> Option<(u32, watch::Receiver<Exit>)> {
        self.children
            .lock()
            .ok()
            .and_then(|c| c.by_pid.get(pid).cloned())
    }
}

#[async_trait]
impl Provider for ProcessProvider {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        if let Some(pid) = self
            .children
            .lock()
            .ok()
            .and_then(|c| c.by_key.get(&job.idempotency_key).cloned())
        {
            return Ok(pid);
        }
        let args = job.command_args()?;
        let mut command = Command::new(&args[0]);
        command
            .args(&args[1..])
            .envs(job.env())
            .stdin(Stdio::null());
        if let Some(dir) = job.str_field("working_dir") {
            if !std::path::Path::new(dir).is_dir() {
                return Err(ProviderError::invalid(
                    "working_dir",
                    format!("{dir} is not a directory"),
                ));
            }
            command.current_dir(dir);
        }
        let quiet = job
            .configuration
            .get("stream_output")
            .and_then(serde_json::Value::as_bool)
            == Some(false);
        if quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let mut child = command.spawn().map_err(|e| {
            ProviderError::permanent(format!("Failed to start command {:?}: {e}", args[0]))
        })?;
        let os_pid = child.id().unwrap_or_default();
        let pid = format!("{}:{os_pid}", self.hostname);
        let (tx, rx) = watch::channel(Exit::Running);
        tokio::spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let exit = match child.wait().await {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(sig)) => Exit::Signal(sig),
                    _ => Exit::WaitFailed,
                },
                Err(_) => Exit::WaitFailed,
            };
            let _ = tx.send(exit);
        });
        if let Ok(mut c) = self.children.lock() {
            c.by_key.insert(job.idempotency_key.clone(), pid.clone());
            c.by_pid.insert(pid.clone(), (os_pid, rx));
        }
        tracing::info!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, "process started");
        Ok(pid)
    }

    async fn status(&self, _job: &Job, pid: &str) -> Result<JobStatus, ProviderError> {
        let Some((_, rx)) = self.lookup(pid) else {
            return Ok(JobStatus::Missing {
                reason: format!(
                    "Process {pid} is not a child of this pushpool server (was it restarted?)"
                ),
            });
        };
        let exit = *rx.borrow();
        Ok(match exit {
            Exit::Running => JobStatus::Running,
            Exit::Code(code) => JobStatus::Exited {
                exit_code: i64::from(code),
                detail: String::new(),
            },
            Exit::Signal(sig) => JobStatus::Failed {
                reason: format!(
                    "Process was killed by signal {}",
                    Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string())
                ),
            },
            Exit::WaitFailed => JobStatus::Failed {
                reason: "Could not read the process's exit status".into(),
            },
        })
    }

    async fn cancel(&self, _job: &Job, pid: &str) -> Result<(), ProviderError> {
        let Some((os_pid, mut rx)) = self.lookup(pid) else {
            return Ok(());
        };
        let running = *rx.borrow() == Exit::Running;
        if !running {
            return Ok(());
        }
        let target = Pid::from_raw(os_pid as i32);
        let _ = kill(target, Signal::SIGTERM);
        let ended = tokio::time::timeout(self.grace, rx.wait_for(|e| *e != Exit::Running))
            .await
            .is_ok();
        if !ended {
            let _ = kill(target, Signal::SIGKILL);
            let _ended =
                tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|e| *e != Exit::Running))
                    .await
                    .is_ok();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn job(command: &str, key: &str) -> Job {
        Job {
            flow_run_id: Uuid::new_v4(),
            flow_run_name: "quiet-otter".into(),
            pool_type: "process".into(),
            configuration:
                json!({"command": command, "env": {"GREETING": "hi there"}, "stream_output": false})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            idempotency_key: key.into(),
        }
    }

    async fn wait_done(p: &ProcessProvider, j: &Job, pid: &str) -> JobStatus {
        for _ in 0..200 {
            let s = p.status(j, pid).await.unwrap();
            if s != JobStatus::Running {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("process did not end");
    }

    #[tokio::test]
    async fn exit_code_and_env_reach_the_status() {
        let p = ProcessProvider::new();
        let j = job("sh -c 'test \"$GREETING\" = \"hi there\" && exit 3'", "k1");
        let pid = p.submit(&j).await.unwrap();
        assert!(pid.ends_with(&format!(":{}", pid.rsplit(':').next().unwrap())));
        assert_eq!(
            wait_done(&p, &j, &pid).await,
            JobStatus::Exited {
                exit_code: 3,
                detail: String::new()
            }
        );
    }

    #[tokio::test]
    async fn same_key_starts_one_process() {
        let p = ProcessProvider::new();
        let j = job("sleep 5", "same");
        let a = p.submit(&j).await.unwrap();
        let b = p.submit(&j).await.unwrap();
        assert_eq!(a, b);
        p.cancel(&j, &a).await.unwrap();
        assert_eq!(
            wait_done(&p, &j, &a).await,
            JobStatus::Failed {
                reason: "Process was killed by signal SIGTERM".into()
            }
        );
    }

    #[tokio::test]
    async fn sigkill_after_grace_when_sigterm_is_ignored() {
        let p = ProcessProvider::new().grace(Duration::from_millis(300));
        let j = job("sh -c 'trap \"\" TERM; sleep 30'", "stubborn");
        let pid = p.submit(&j).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        p.cancel(&j, &pid).await.unwrap();
        assert_eq!(
            wait_done(&p, &j, &pid).await,
            JobStatus::Failed {
                reason: "Process was killed by signal SIGKILL".into()
            }
        );
    }

    #[tokio::test]
    async fn unknown_pid_is_missing_and_bad_command_is_named() {
        let p = ProcessProvider::new();
        let j = job("true", "x");
        assert!(matches!(
            p.status(&j, "elsewhere:1").await.unwrap(),
            JobStatus::Missing { .. }
        ));
        let bad = job("echo 'unterminated", "y");
        match p.submit(&bad).await {
            Err(ProviderError::InvalidConfiguration { field, .. }) => assert_eq!(field, "command"),
            other => panic!("{other:?}"),
        }
        let missing = job("/nonexistent/binary", "z");
        match p.submit(&missing).await {
            Err(ProviderError::Permanent { message, .. }) => assert_eq!(
                message,
                "Failed to start command \"/nonexistent/binary\": No such file or directory (os error 2)"
            ),
            other => panic!("{other:?}"),
        }
    }
}
