//! pushpool's own lines in a flow run's log, written as a worker writes its lines for a run
//! (Prefect's `BaseWorker` logs through the run's logger, `prefect.flow_runs.worker`), so
//! that `prefect flow-run logs <id>` and the UI show why a run was submitted, where, how
//! many tries it took, what the provider said when the job ended, and which job variables
//! were ignored: with a push pool there is no worker terminal to look at.
//!
//! Writing a line never fails what pushpool was doing: a store error is logged (tracing) and
//! the line is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pushpool_core::logs::Log;
use pushpool_store::StoreError;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::Service;

/// The logger name of pushpool's lines (what Prefect's workers use for their flow run
/// lines).
pub const RUN_LOG_NAME: &str = "prefect.flow_runs.worker";

/// How many log lines a slow `WS /logs/out` subscriber may fall behind before it misses
/// some (Prefect's server drops a subscriber's lines past its `SUBSCRIPTION_BACKLOG` of 256;
/// pushpool keeps more, as an engine posts its lines in batches).
pub const LOG_FAN_OUT_CAPACITY: usize = 1024;

/// The level of one of pushpool's lines (Python's `logging` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLogLevel {
    /// 20.
    Info = 20,
    /// 30.
    Warning = 30,
    /// 40.
    Error = 40,
}

/// What a job of a pool type is called in pushpool's lines (`submitted to ECS task …`).
pub fn infrastructure_noun(pool_type: &str) -> &'static str {
    match pool_type {
        "ecs:push" => "ECS task",
        "cloud-run-v2:push" => "Cloud Run job",
        "azure-container-instance:push" => "Azure container group",
        "process" => "process",
        _ => "job",
    }
}

impl Service {
    /// How long log lines are kept ([`crate::ServiceConfig::log_retention`]).
    pub fn log_retention(&self) -> Duration {
        self.config.log_retention
    }

    /// Stores a batch of log lines (the API's `POST /logs/`, and pushpool's own lines:
    /// [`Service::log_run`]), kept for [`Service::log_retention`], then fans them out
    /// in-process to `WS /logs/out` subscribers ([`Service::subscribe_logs`]).
    ///
    /// # Errors
    /// The store's (nothing is fanned out then).
    pub async fn write_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store().create_logs(logs, self.log_retention()).await?;
        // Most processes have no subscriber (every Lambda invocation; an embedded server
        // nobody watches): then the lines are not copied at all.
        if self.events.logs_tx.receiver_count() > 0 {
            for log in logs {
                // A subscriber that left in the meantime is not an error.
                let _ = self.events.logs_tx.send(Arc::new(log.clone()));
            }
        }
        Ok(())
    }

    /// A receiver of every log line stored from now on by this process (the embedded
    /// server's `WS /logs/out`; on AWS every Lambda invocation is its own process, and the
    /// events function fans lines out from the table's stream instead). A receiver more than
    /// [`LOG_FAN_OUT_CAPACITY`] lines behind misses the oldest.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<Arc<Log>> {
        self.events.logs_tx.subscribe()
    }

    /// Deletes the lines stored longer ago than [`Service::log_retention`] (the embedded
    /// server's retention task; DynamoDB expires lines itself and deletes nothing here);
    /// returns how many were deleted.
    ///
    /// # Errors
    /// The store's.
    pub async fn delete_expired_logs(&self) -> Result<u64, StoreError> {
        let retention =
            chrono::Duration::from_std(self.log_retention()).unwrap_or(chrono::Duration::MAX);
        let cutoff = Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        self.store().delete_logs_created_before(cutoff).await
    }

    /// Writes one of pushpool's lines into `flow_run_id`'s log; never fails (see the
    /// module's docs).
    pub async fn log_run(&self, flow_run_id: Uuid, level: RunLogLevel, message: impl Into<String>) {
        let now = Utc::now();
        let now = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let log = Log {
            id: Uuid::now_v7(),
            created: now,
            updated: now,
            name: RUN_LOG_NAME.into(),
            level: level as i64,
            message: message.into(),
            timestamp: now,
            flow_run_id: Some(flow_run_id),
            task_run_id: None,
        };
        if let Err(e) = self.write_logs(std::slice::from_ref(&log)).await {
            tracing::warn!(flow_run_id = %flow_run_id, error = %e, "writing a line of the flow run's log failed; it is lost");
        }
    }
}

impl Service {
    /// The lines of a claim: the pool it is submitted to, and a warning per set of job
    /// variables the provider ignores.
    pub(crate) async fn log_claim(
        &self,
        flow_run_id: Uuid,
        pool: &pushpool_core::model::WorkPool,
        ignored: &[pushpool_providers::IgnoredVariables],
    ) {
        self.log_run(
            flow_run_id,
            RunLogLevel::Info,
            format!(
                "Submitting flow run to work pool '{}' ({})",
                pool.name, pool.r#type
            ),
        )
        .await;
        for note in ignored {
            self.log_run(flow_run_id, RunLogLevel::Warning, note.to_string())
                .await;
        }
    }

    /// The line of a started job: `Submitted to ECS task <arn>`, with the tries it took when
    /// the provider's transient errors were retried.
    pub(crate) async fn log_submitted(
        &self,
        flow_run_id: Uuid,
        pool_type: &str,
        pid: &str,
        tries: &crate::service::Tries,
    ) {
        let mut message = format!("Submitted to {} {pid}", infrastructure_noun(pool_type));
        if tries.attempts > 1 {
            message.push_str(&format!(
                " after {tries} (the provider's transient errors were retried)"
            ));
        }
        self.log_run(flow_run_id, RunLogLevel::Info, message).await;
    }

    /// The line of a state pushpool wrote for a run (CRASHED with the provider's reason,
    /// COMPLETED of a job that exited 0, CANCELLED): its message, at ERROR for CRASHED and
    /// FAILED, else INFO.
    pub(crate) async fn log_state(&self, flow_run_id: Uuid, state: &pushpool_core::state::State) {
        use pushpool_core::state::StateType;
        let Some(message) = state.message.as_deref().filter(|m| !m.is_empty()) else {
            return;
        };
        let level = match state.r#type {
            StateType::Crashed | StateType::Failed => RunLogLevel::Error,
            _ => RunLogLevel::Info,
        };
        self.log_run(flow_run_id, level, message.to_owned()).await;
    }
}

impl Service {
    /// The embedded server's retention task: every `every` (and once at its start) deletes
    /// the lines older than [`Service::log_retention`] and the events older than
    /// [`Service::event_retention`], until `stop` resolves. Failures are
    /// logged and retried at the next tick.
    pub async fn run_log_retention(
        &self,
        every: Duration,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            match self.delete_expired_logs().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted log lines past their retention"),
                Err(e) => {
                    tracing::warn!(error = %e, "deleting expired log lines failed; retrying at the next tick")
                }
            }
            match self.delete_expired_events().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted events past their retention"),
                Err(e) => {
                    tracing::warn!(error = %e, "deleting expired events failed; retrying at the next tick")
                }
            }
        }
    }
}
