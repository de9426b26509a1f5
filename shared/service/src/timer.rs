//! Due timers: a run scheduled for later is submitted at its time, not at the reconciler's
//! next tick.
//!
//! The reconciler ticks every few seconds (embedded) or every minute (AWS); a run whose
//! slot falls between two ticks would otherwise start up to a tick late. So the reconciler
//! arms a timer for each SCHEDULED run due before its next tick ([`Service::arm_due_runs`]),
//! and the submitter arms one for a run it finds not yet due but due within that window (a
//! run created between ticks). Only runs due within the window get a timer, so the number
//! of live timers stays small whatever the number of future runs (on AWS, EventBridge
//! Scheduler's schedule quota is per account); the reconciler remains the safety net for a
//! timer that fails or is lost.
//!
//! - **Embedded** ([`Service::with_local_timers`]): a Tokio task per armed run sleeps until
//!   the run's time and submits it (one task per run at a time).
//! - **AWS** ([`Service::with_due_timer`]): a [`DueTimer`] adapter (an EventBridge Scheduler
//!   one-time schedule per run, named after the run, so arming twice is one schedule) whose
//!   target submits the run; nothing runs between runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushpool_core::filter::{FlowRunFilter, TimeRange};
use pushpool_core::state::StateType;
use pushpool_store::FlowRunQuery;
use tracing::warn;
use uuid::Uuid;

use crate::{Outcome, Service, ServiceError};

/// A timer service that wakes the submission of one flow run at a time (the port of the
/// AWS adapter).
#[async_trait]
pub trait DueTimer: Send + Sync + 'static {
    /// Arms (or re-arms, idempotently) the wake-up of run `flow_run_id` at `at`.
    ///
    /// # Errors
    /// The timer service's failure (the reconciler still submits the run on a later tick).
    async fn arm(&self, flow_run_id: Uuid, at: DateTime<Utc>) -> Result<(), TimerError>;
    /// Removes the wake-up of run `flow_run_id` (none: `Ok`).
    ///
    /// # Errors
    /// The timer service's failure.
    async fn disarm(&self, flow_run_id: Uuid) -> Result<(), TimerError>;
}

/// A timer service failed; the message never holds credentials.
#[derive(Debug, thiserror::Error)]
#[error("due timer: {0}")]
pub struct TimerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// How the service arms due timers.
#[derive(Clone, Default)]
pub(crate) enum Timers {
    /// No timers: due runs wait for the reconciler.
    #[default]
    Off,
    /// In-process Tokio timers (embedded).
    Local {
        window: Duration,
        armed: Arc<Mutex<HashSet<Uuid>>>,
    },
    /// A timer service (AWS).
    Remote {
        window: Duration,
        timer: Arc<dyn DueTimer>,
    },
}

impl Timers {
    fn window(&self) -> Option<Duration> {
        match self {
            Self::Off => None,
            Self::Local { window, .. } | Self::Remote { window, .. } => Some(*window),
        }
    }
}

impl Service {
    /// Submits runs at their time with in-process timers, arming those due within `window`
    /// (the reconciler's interval; see the module docs).
    #[must_use]
    pub fn with_local_timers(mut self, window: Duration) -> Self {
        self.timers = Timers::Local {
            window,
            armed: Arc::default(),
        };
        self
    }

    /// Submits runs at their time through `timer`, arming those due within `window` (the
    /// reconciler's schedule period).
    #[must_use]
    pub fn with_due_timer(mut self, timer: Arc<dyn DueTimer>, window: Duration) -> Self {
        self.timers = Timers::Remote { window, timer };
        self
    }

    /// Whether a run due at `at` gets a timer when seen at `now`: it is due within the
    /// window.
    pub(crate) fn wants_timer(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.timers.window().is_some_and(|w| {
            at > now && at <= now + chrono::Duration::from_std(w).unwrap_or_default()
        })
    }

    /// Arms the timer of run `id` due at `at` (failures are logged: the reconciler is the
    /// safety net).
    pub(crate) async fn arm(&self, id: Uuid, at: DateTime<Utc>) {
        match &self.timers {
            Timers::Off => {}
            Timers::Local { .. } => self.arm_local(id, at),
            Timers::Remote { timer, .. } => {
                if let Err(e) = timer.arm(id, at).await {
                    warn!(flow_run_id = %id, error = %e, "arming the run's due timer failed; the reconciler submits it");
                }
            }
        }
    }

    /// Removes the timer of run `id` (a claimed or deleted run); failures are logged.
    pub(crate) async fn disarm(&self, id: Uuid) {
        if let Timers::Remote { timer, .. } = &self.timers {
            if let Err(e) = timer.disarm(id).await {
                warn!(flow_run_id = %id, error = %e, "removing the run's due timer failed");
            }
        }
    }

    fn arm_local(&self, id: Uuid, at: DateTime<Utc>) {
        let Timers::Local { armed, .. } = &self.timers else {
            return;
        };
        if !armed.lock().is_ok_and(|mut a| a.insert(id)) {
            return;
        }
        let service = self.clone();
        let armed = Arc::clone(armed);
        tokio::spawn(async move {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            if let Ok(mut a) = armed.lock() {
                a.remove(&id);
            }
            match service.handle_change(id).await {
                // Woken a little early (clocks): arm again for the rest.
                Ok(Outcome::NotDue(at)) => service.arm_local(id, at),
                Ok(_) => {}
                Err(e) => {
                    warn!(flow_run_id = %id, error = %e, "submitting a run at its time failed; the reconciler retries it");
                }
            }
        });
    }

    /// Arms a timer for every SCHEDULED run due after `now` and within the window (the
    /// reconciler's step before its next tick). Returns how many were armed.
    ///
    /// # Errors
    /// Store failures of the scan.
    pub async fn arm_due_runs(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let Some(window) = self.timers.window() else {
            return Ok(0);
        };
        let mut filter = FlowRunFilter::state_types(&[StateType::Scheduled]);
        filter.next_scheduled_start_time = Some(TimeRange {
            after_: Some(now),
            before_: Some(now + chrono::Duration::from_std(window).unwrap_or_default()),
        });
        let runs = self
            .store()
            .list_flow_runs(&FlowRunQuery::new(filter))
            .await?;
        let mut armed = 0;
        for run in runs {
            if let Some(at) = run.scheduled_time().filter(|at| *at > now) {
                self.arm(run.id, at).await;
                armed += 1;
            }
        }
        Ok(armed)
    }
}
