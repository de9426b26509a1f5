//! The local `process` pool type: each job is a child process of pushpool itself, started
//! with the job's command (`prefect flow-run execute` by default) and the job's environment
//! over pushpool's own, in `working_dir` when set.
//!
//! - infrastructure pid: `<hostname>:<pid>`, as Prefect's process worker reports it;
//! - a job is its own process group (the child starts a new one): what it starts stays in
//!   it unless it makes a session of its own, as `prefect flow-run execute` does for the
//!   engine (`python -m prefect.engine`);
//! - idempotency: a key already submitted returns the first pid and starts nothing. With a
//!   state directory ([`ProcessProvider::with_state_dir`], the embedded server's data dir)
//!   this survives a restart: each submission is written to a small file
//!   (`<key>.json`) *before* the spawn and completed with the pid right after; a restarted
//!   server that finds a file without pid looks for the job's live process by its
//!   environment (`PREFECT__FLOW_RUN_ID`) in `/proc` instead of starting a second one;
//! - status: from the child's exit status (a signal death has no exit code: `Failed`). A pid
//!   this process did not start (pushpool restarted) is read from `/proc`: `Running` while a
//!   live, non-zombie process with that pid carries the run's `PREFECT__FLOW_RUN_ID`,
//!   `Missing` once it is gone (its exit status cannot be known);
//! - cancel: the whole job is stopped, not only the child: its process group, its
//!   descendants (found through `/proc` parent links before anything is signalled) and any
//!   process carrying the run's `PREFECT__FLOW_RUN_ID` (an engine orphaned in a session of
//!   its own) get SIGTERM, SIGKILL after [`ProcessProvider::grace`], and `cancel` returns
//!   only once none of them is left, so nothing of the job can report a state after the run
//!   is marked CANCELLED. (The engine answers SIGTERM with a forced CRASHED, as under
//!   Prefect's process worker; the service writes CANCELLED over it once the job is gone,
//!   as Prefect's workers do.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::watch;

use pushpool_providers::{Job, JobStatus, Provider, ProviderError};

/// The environment variable that names a job's flow run (Prefect's own).
const FLOW_RUN_ID_ENV: &str = "PREFECT__FLOW_RUN_ID";

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

/// A submission as written to the state directory: before the spawn without `pid`, after
/// it with the infrastructure pid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    flow_run_id: String,
    pid: Option<String>,
}

/// The process provider.
#[derive(Clone)]
pub struct ProcessProvider {
    children: Arc<Mutex<Children>>,
    hostname: String,
    grace: Duration,
    state_dir: Option<PathBuf>,
}

impl std::fmt::Debug for ProcessProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessProvider")
            .field("hostname", &self.hostname)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessProvider {
    /// A provider with a 10-second SIGTERM grace period and no state directory (its
    /// submissions are remembered in memory only).
    pub fn new() -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Self {
            children: Arc::default(),
            hostname,
            grace: Duration::from_secs(10),
            state_dir: None,
        }
    }

    /// Sets the time between SIGTERM and SIGKILL on cancel.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Keeps each submission in a file under `dir` (created, mode 0700), so that a restarted
    /// server neither starts a job twice nor loses track of a live one (module docs).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        self.state_dir = Some(dir);
        self.prune_records(Duration::from_secs(24 * 3600));
        Ok(self)
    }

    /// Removes the records older than `age` whose job is no longer alive (a run finished by
    /// its engine is never read again, so its record is not removed by [`Provider::status`]).
    fn prune_records(&self, age: Duration) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age);
            if !old {
                continue;
            }
            let record: Option<Record> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let alive = record.is_some_and(|r| match r.pid.as_deref() {
                Some(pid) => self
                    .os_pid(pid)
                    .is_some_and(|n| is_job_process(n, &r.flow_run_id)),
                None => find_job_root(&r.flow_run_id).is_some(),
            });
            if !alive {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn lookup(&self, pid: &str) -> Option<(u32, watch::Receiver<Exit>)> {
        self.children
            .lock()
            .ok()
            .and_then(|c| c.by_pid.get(pid).cloned())
    }

    fn record_path(&self, key: &str) -> Option<PathBuf> {
        let name: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.state_dir
            .as_ref()
            .map(|d| d.join(format!("{name}.json")))
    }

    fn read_record(&self, key: &str) -> Option<Record> {
        let path = self.record_path(key)?;
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write_record(&self, key: &str, record: &Record) -> Result<(), ProviderError> {
        let Some(path) = self.record_path(key) else {
            return Ok(());
        };
        write_durably(&path, record).map_err(|e| {
            ProviderError::permanent(format!(
                "Cannot record the submission in {}: {e}",
                path.display()
            ))
        })
    }

    fn remove_record(&self, key: &str) {
        if let Some(path) = self.record_path(key) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The OS pid of an infrastructure pid of this host (`host:pid`).
    fn os_pid(&self, pid: &str) -> Option<i32> {
        let (host, n) = pid.rsplit_once(':')?;
        if host != self.hostname {
            return None;
        }
        n.parse().ok().filter(|n| *n > 0)
    }
}

/// Writes `record` to `path` through a temporary file, synced, then renamed.
fn write_durably(path: &Path, record: &Record) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What `/proc/<pid>/stat` says of a process: parent, process group, and whether it is a
/// zombie (ended, not yet reaped).
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    ppid: i32,
    pgid: i32,
    zombie: bool,
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcStat {
        ppid,
        pgid,
        zombie: state == "Z" || state == "X",
    })
}

/// Whether the process's initial environment has `FLOW_RUN_ID_ENV=flow_run_id`.
fn has_flow_run_id(pid: i32, flow_run_id: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{FLOW_RUN_ID_ENV}={flow_run_id}");
    environ
        .split(|b| *b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// Every live process: pid → stat.
fn all_processes() -> HashMap<i32, ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect()
}

/// Whether `pid` is alive (not a zombie) and belongs to flow run `flow_run_id`.
fn is_job_process(pid: i32, flow_run_id: &str) -> bool {
    proc_stat(pid).is_some_and(|s| !s.zombie) && has_flow_run_id(pid, flow_run_id)
}

/// The live processes of a job: the process group and descendants of `root` (when known),
/// and every process whose environment names the flow run. Never pushpool itself.
fn job_processes(root: Option<i32>, flow_run_id: &str) -> HashSet<i32> {
    let procs = all_processes();
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let mut found: HashSet<i32> = HashSet::new();
    if let Some(root) = root {
        found.insert(root);
        let mut grew = true;
        while grew {
            grew = false;
            for (pid, stat) in &procs {
                if !found.contains(pid) && (stat.pgid == root || found.contains(&stat.ppid)) {
                    found.insert(*pid);
                    grew = true;
                }
            }
        }
    }
    for pid in procs.keys() {
        if !found.contains(pid) && has_flow_run_id(*pid, flow_run_id) {
            found.insert(*pid);
        }
    }
    found.retain(|pid| *pid != me && procs.get(pid).is_some_and(|s| !s.zombie));
    found
}

/// The root process of a job whose spawn was not recorded: a live process of the flow run
/// whose parent is not one (the lowest such pid when there are several).
fn find_job_root(flow_run_id: &str) -> Option<i32> {
    let members = job_processes(None, flow_run_id);
    let procs = all_processes();
    members
        .iter()
        .copied()
        .filter(|pid| procs.get(pid).is_none_or(|s| !members.contains(&s.ppid)))
        .min()
}

fn signal_all(pids: &HashSet<i32>, root: Option<i32>, signal: Signal) {
    if let Some(root) = root {
        let _ = killpg(Pid::from_raw(root), signal);
    }
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), signal);
    }
}

#[async_trait]
impl Provider for ProcessProvider {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        let key = &job.idempotency_key;
        if let Some(pid) = self
            .children
            .lock()
            .ok()
            .and_then(|c| c.by_key.get(key).cloned())
        {
            return Ok(pid);
        }
        let flow_run_id = job.flow_run_id.to_string();
        match self.read_record(key) {
            Some(Record { pid: Some(pid), .. }) => {
                // Started by an earlier server: its status tells whether it still runs.
                tracing::info!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, "process already started for this submission");
                return Ok(pid);
            }
            Some(Record { pid: None, .. }) => {
                // Written before a spawn whose pid was never recorded: the job may be alive.
                if let Some(os_pid) = find_job_root(&flow_run_id) {
                    let pid = format!("{}:{os_pid}", self.hostname);
                    self.write_record(
                        key,
                        &Record {
                            flow_run_id,
                            pid: Some(pid.clone()),
                        },
                    )?;
                    tracing::info!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, "found the live process of an unrecorded submission");
                    return Ok(pid);
                }
            }
            None => {}
        }
        let args = job.command_args()?;
        let mut command = Command::new(&args[0]);
        command
            .args(&args[1..])
            .envs(job.env())
            .stdin(Stdio::null())
            .process_group(0);
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
        self.write_record(
            key,
            &Record {
                flow_run_id: flow_run_id.clone(),
                pid: None,
            },
        )?;
        let mut child = command.spawn().map_err(|e| {
            self.remove_record(key);
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
            c.by_key.insert(key.clone(), pid.clone());
            c.by_pid.insert(pid.clone(), (os_pid, rx));
        }
        if let Err(e) = self.write_record(
            key,
            &Record {
                flow_run_id,
                pid: Some(pid.clone()),
            },
        ) {
            // The job runs and this server knows it; only a restart would miss the pid (and
            // then find the process by its environment).
            tracing::warn!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, error = %e, "recording the process failed");
        }
        tracing::info!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, "process started");
        Ok(pid)
    }

    async fn status(&self, job: &Job, pid: &str) -> Result<JobStatus, ProviderError> {
        let Some((_, rx)) = self.lookup(pid) else {
            let flow_run_id = job.flow_run_id.to_string();
            if self
                .os_pid(pid)
                .is_some_and(|n| is_job_process(n, &flow_run_id))
            {
                return Ok(JobStatus::Running);
            }
            self.remove_record(&job.idempotency_key);
            return Ok(JobStatus::Missing {
                reason: format!(
                    "Process {pid} is not running, and it is not a child of this pushpool \
                     server (was it restarted?): its exit status is unknown"
                ),
            });
        };
        let exit = *rx.borrow();
        if exit != Exit::Running {
            self.remove_record(&job.idempotency_key);
        }
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

    async fn cancel(&self, job: &Job, pid: &str) -> Result<(), ProviderError> {
        let flow_run_id = job.flow_run_id.to_string();
        let child = self.lookup(pid);
        let root = match &child {
            Some((os_pid, rx)) => (*rx.borrow() == Exit::Running)
                .then(|| i32::try_from(*os_pid).ok())
                .flatten(),
            None => self
                .os_pid(pid)
                .filter(|n| is_job_process(*n, &flow_run_id)),
        };
        // Found before anything is signalled: once the root dies its descendants are
        // reparented and only their environment still ties them to the job.
        let mut targets = job_processes(root, &flow_run_id);
        if targets.is_empty() {
            return Ok(());
        }
        tracing::info!(flow_run_id = %job.flow_run_id, infrastructure_pid = %pid, processes = targets.len(), "stopping the job's processes");
        signal_all(&targets, root, Signal::SIGTERM);
        let poll = Duration::from_millis(50);
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            tokio::time::sleep(poll).await;
            targets = job_processes(root, &flow_run_id)
                .union(&targets)
                .copied()
                .filter(|p| proc_stat(*p).is_some_and(|s| !s.zombie))
                .collect();
            if targets.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        let killed_at = tokio::time::Instant::now();
        while !targets.is_empty() {
            signal_all(&targets, root, Signal::SIGKILL);
            if killed_at.elapsed() > Duration::from_secs(10) {
                return Err(ProviderError::transient(format!(
                    "{} process(es) of the job are still alive after SIGKILL",
                    targets.len()
                )));
            }
            tokio::time::sleep(poll).await;
            targets = job_processes(root, &flow_run_id)
                .union(&targets)
                .copied()
                .filter(|p| proc_stat(*p).is_some_and(|s| !s.zombie))
                .collect();
        }
        if let Some((_, mut rx)) = child {
            // Let the child's exit status be read (reaped) before returning.
            let _ =
                tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|e| *e != Exit::Running))
                    .await;
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
        let flow_run_id = Uuid::new_v4();
        Job {
            flow_run_id,
            flow_run_name: "quiet-otter".into(),
            pool_type: "process".into(),
            configuration: json!({"command": command, "stream_output": false,
                "env": {"GREETING": "hi there", "PREFECT__FLOW_RUN_ID": flow_run_id.to_string()}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
            idempotency_key: key.into(),
        }
    }

    /// The live processes of the job's flow run.
    fn alive(j: &Job) -> HashSet<i32> {
        job_processes(None, &j.flow_run_id.to_string())
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what} did not happen in 5 s");
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

    #[tokio::test]
    async fn cancel_stops_a_grandchild_in_its_own_session() {
        let p = ProcessProvider::new().grace(Duration::from_millis(500));
        let j = job("sh -c 'setsid sleep 300 & sleep 300'", "session");
        let pid = p.submit(&j).await.unwrap();
        let root: i32 = pid.rsplit(':').next().unwrap().parse().unwrap();
        let outside = |j: &Job| {
            alive(j)
                .into_iter()
                .find(|p| proc_stat(*p).is_some_and(|s| s.pgid != root))
        };
        // The grandchild is in a session (and process group) of its own.
        wait_until("the grandchild's own session", || outside(&j).is_some()).await;
        let escaped = outside(&j).unwrap();

        p.cancel(&j, &pid).await.unwrap();

        assert_eq!(alive(&j), HashSet::new());
        assert!(proc_stat(escaped).is_none_or(|s| s.zombie));
        assert_eq!(
            p.status(&j, &pid).await.unwrap(),
            JobStatus::Failed {
                reason: "Process was killed by signal SIGTERM".into()
            }
        );
    }

    #[tokio::test]
    async fn cancel_kills_an_orphan_that_ignores_sigterm_after_its_parent_exited() {
        let p = ProcessProvider::new().grace(Duration::from_millis(300));
        let j = job(
            "sh -c 'setsid sh -c \"trap \\\"\\\" TERM; sleep 300\" & sleep 0.3'",
            "orphan",
        );
        let pid = p.submit(&j).await.unwrap();
        assert_eq!(
            wait_done(&p, &j, &pid).await,
            JobStatus::Exited {
                exit_code: 0,
                detail: String::new()
            }
        );
        assert!(!alive(&j).is_empty(), "the orphan outlives its parent");

        p.cancel(&j, &pid).await.unwrap();

        assert_eq!(alive(&j), HashSet::new());
    }

    #[tokio::test]
    async fn a_restarted_provider_starts_nothing_twice_and_reads_the_live_job() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProcessProvider::new()
            .grace(Duration::from_millis(300))
            .with_state_dir(dir.path())
            .unwrap();
        let j = job("sleep 300", "pushpool-run-1");
        let pid = first.submit(&j).await.unwrap();
        wait_until("the process", || alive(&j).len() == 1).await;

        // A new server over the same data dir (the first one's memory is gone).
        let second = ProcessProvider::new()
            .grace(Duration::from_millis(300))
            .with_state_dir(dir.path())
            .unwrap();
        assert_eq!(second.submit(&j).await.unwrap(), pid);
        assert_eq!(alive(&j).len(), 1, "no second process");
        assert_eq!(second.status(&j, &pid).await.unwrap(), JobStatus::Running);
        // Another run's job with a reused pid is not this run's.
        let other = job("true", "pushpool-other-1");
        assert!(matches!(
            second.status(&other, &pid).await.unwrap(),
            JobStatus::Missing { .. }
        ));

        second.cancel(&j, &pid).await.unwrap();
        assert_eq!(alive(&j), HashSet::new());
        match second.status(&j, &pid).await.unwrap() {
            JobStatus::Missing { reason } => assert_eq!(
                reason,
                format!(
                    "Process {pid} is not running, and it is not a child of this pushpool \
                     server (was it restarted?): its exit status is unknown"
                )
            ),
            other => panic!("{other:?}"),
        }
        // The first provider reaps its child.
        assert!(matches!(
            wait_done(&first, &j, &pid).await,
            JobStatus::Failed { .. }
        ));
    }

    #[tokio::test]
    async fn a_spawn_whose_pid_was_not_recorded_is_found_by_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = ProcessProvider::new()
            .grace(Duration::from_millis(300))
            .with_state_dir(dir.path())
            .unwrap();
        let j = job("sleep 300", "pushpool-crashed-1");
        // What a server that died right after the spawn leaves: a record without pid, and
        // the job's process.
        p.write_record(
            &j.idempotency_key,
            &Record {
                flow_run_id: j.flow_run_id.to_string(),
                pid: None,
            },
        )
        .unwrap();
        let mut orphan = std::process::Command::new("sleep")
            .arg("300")
            .env("PREFECT__FLOW_RUN_ID", j.flow_run_id.to_string())
            .spawn()
            .unwrap();

        let pid = p.submit(&j).await.unwrap();

        assert_eq!(pid, format!("{}:{}", p.hostname, orphan.id()));
        assert_eq!(alive(&j).len(), 1, "no second process");
        assert_eq!(
            p.read_record(&j.idempotency_key),
            Some(Record {
                flow_run_id: j.flow_run_id.to_string(),
                pid: Some(pid.clone())
            })
        );
        p.cancel(&j, &pid).await.unwrap_or_default();
        let _ = orphan.kill();
        let _ = orphan.wait();
    }

    #[tokio::test]
    async fn old_records_of_ended_jobs_are_pruned_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = ProcessProvider::new()
            .grace(Duration::from_millis(300))
            .with_state_dir(dir.path())
            .unwrap();
        let live = job("sleep 300", "pushpool-live-1");
        let pid = p.submit(&live).await.unwrap();
        let ended = job("true", "pushpool-ended-1");
        let ended_pid = p.submit(&ended).await.unwrap();
        wait_done(&p, &ended, &ended_pid).await;
        // (status removed the ended job's record already; write it back as a restart would
        // find it)
        p.write_record(
            &ended.idempotency_key,
            &Record {
                flow_run_id: ended.flow_run_id.to_string(),
                pid: Some(ended_pid),
            },
        )
        .unwrap();

        p.prune_records(Duration::ZERO);

        assert_eq!(p.read_record(&ended.idempotency_key), None);
        assert_eq!(
            p.read_record(&live.idempotency_key).and_then(|r| r.pid),
            Some(pid.clone())
        );
        p.cancel(&live, &pid).await.unwrap();
    }
}
