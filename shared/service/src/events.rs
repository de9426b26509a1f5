//! Events: what the engine sends over `/events/in` and the event of every accepted flow run
//! transition (Prefect's server emits one for every accepted proposal, the clients' too:
//! `server/orchestration/instrumentation_policies.py`), stored for
//! [`Service::event_retention`] and fanned out in-process to `/events/out` subscribers
//! ([`Service::subscribe_events`]).
//!
//! The fan-out is a `tokio` broadcast channel: it reaches the subscribers connected to this
//! process (the embedded server). On AWS, where every Lambda invocation is its own process,
//! nothing subscribes to it; events are still stored.
//!
//! Storing the event of a transition never fails the transition (already committed): a
//! store error is logged (tracing) and the event is still fanned out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pushpool_core::events::{Event, EventFilter, FlowRunContext, flow_run_state_change_event};
use pushpool_core::model::FlowRun;
use pushpool_store::StoreError;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::Service;

/// How many events a slow `/events/out` subscriber may fall behind before it misses some.
pub const EVENT_FAN_OUT_CAPACITY: usize = 1024;

/// How many flow runs' related resource names are remembered (Prefect caches them too,
/// `PREFECT_API_EVENTS_RELATED_RESOURCE_CACHE_TTL`): the cache is emptied when it is full.
const CONTEXT_CACHE: usize = 1000;

/// The in-process fan-out and the related resource names of recent flow runs.
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// The in-process fan-out of stored log lines (`WS /logs/out`: [`Service::subscribe_logs`]).
    pub(crate) logs_tx: broadcast::Sender<Arc<pushpool_core::logs::Log>>,
    contexts: Arc<Mutex<HashMap<Uuid, FlowRunContext>>>,
    pub(crate) subscriptions: crate::event_subscriptions::Subscriptions,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(EVENT_FAN_OUT_CAPACITY).0,
            logs_tx: broadcast::channel(crate::run_log::LOG_FAN_OUT_CAPACITY).0,
            contexts: Arc::default(),
            subscriptions: crate::event_subscriptions::Subscriptions::default(),
        }
    }
}

impl Service {
    /// How long events are kept ([`crate::ServiceConfig::event_retention`]).
    pub fn event_retention(&self) -> Duration {
        self.config.event_retention
    }

    /// A receiver of every event stored (or emitted) from now on, in this process.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.tx.subscribe()
    }

    /// Stores `events` (the API's `/events/in`), kept for [`Service::event_retention`],
    /// then fans them out to subscribers.
    ///
    /// # Errors
    /// The store's (nothing is fanned out then).
    pub async fn write_events(&self, events: &[Event]) -> Result<(), StoreError> {
        self.store()
            .create_events(events, self.event_retention())
            .await?;
        self.publish(events);
        Ok(())
    }

    fn publish(&self, events: &[Event]) {
        for e in events {
            // No subscriber is not an error.
            let _ = self.events.tx.send(Arc::new(e.clone()));
        }
    }

    /// The stored events that pass `filter`, in its order. Absent `occurred` bounds take
    /// Prefect's defaults; `since` is moved up to the retention window (older events are
    /// gone, or about to be).
    ///
    /// # Errors
    /// The store's.
    pub async fn read_events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let now = Utc::now();
        let mut filter = filter.clone();
        filter.resolve(now);
        let earliest = now
            - chrono::Duration::from_std(self.event_retention())
                .unwrap_or(chrono::Duration::MAX / 2);
        if filter.occurred.since.is_some_and(|s| s < earliest) {
            filter.occurred.since = Some(earliest);
        }
        self.store().read_events(&filter).await
    }

    /// Deletes the events received longer ago than [`Service::event_retention`] (the
    /// embedded server's retention task; DynamoDB expires them itself); returns how many.
    ///
    /// # Errors
    /// The store's.
    pub async fn delete_expired_events(&self) -> Result<u64, StoreError> {
        let retention =
            chrono::Duration::from_std(self.event_retention()).unwrap_or(chrono::Duration::MAX);
        let cutoff = Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        self.store().delete_events_received_before(cutoff).await
    }

    /// The names of the run's flow, deployment and work pool type (read once per run and
    /// remembered; a failed read leaves the name out).
    async fn flow_run_context(&self, run: &FlowRun) -> FlowRunContext {
        if let Some(c) = self
            .events
            .contexts
            .lock()
            .ok()
            .and_then(|m| m.get(&run.id).cloned())
        {
            return c;
        }
        let mut ctx = FlowRunContext {
            flow_name: self
                .store()
                .read_flow(run.flow_id)
                .await
                .ok()
                .map(|f| f.name),
            ..FlowRunContext::default()
        };
        if let Some(d) = run.deployment_id {
            ctx.deployment_name = self.store().read_deployment(d).await.ok().map(|d| d.name);
        }
        if let Some(p) = &run.work_pool_name {
            ctx.work_pool_type = self.store().read_work_pool(p).await.ok().map(|p| p.r#type);
        }
        if let Ok(mut m) = self.events.contexts.lock() {
            if m.len() >= CONTEXT_CACHE {
                m.clear();
            }
            m.insert(run.id, ctx.clone());
        }
        ctx
    }

    /// Emits the state change event of `written` when its state is not `read`'s (every
    /// accepted transition; other writes of a run emit nothing). Never fails (see the
    /// module's docs).
    pub(crate) async fn flow_run_written(&self, read: Option<&FlowRun>, written: &FlowRun) {
        let Some(to) = &written.state else { return };
        let from = read.and_then(|r| r.state.as_ref());
        if from.is_some_and(|f| f.id == to.id) {
            return;
        }
        let ctx = self.flow_run_context(written).await;
        let event = flow_run_state_change_event(written, from, to, &ctx, Utc::now());
        let events = [event];
        if let Err(e) = self
            .store()
            .create_events(&events, self.event_retention())
            .await
        {
            tracing::warn!(flow_run_id = %written.id, error = %e, "storing the flow run's state event failed");
        }
        self.publish(&events);
    }
}
