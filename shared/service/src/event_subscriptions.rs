//! What `/events/out` subscribers asked for and were sent, in this process: the filter of
//! each websocket subscription and the events delivered to it (diagnostics; the
//! end-to-end tests use it to show that an engine's cancellation observer got its run's
//! `prefect.flow-run.Cancelling` over the websocket rather than by polling).
//!
//! Bounded: the [`KEPT_SUBSCRIPTIONS`] most recent subscriptions (open or closed) and, for
//! each, the [`KEPT_DELIVERIES`] most recent deliveries. Nothing here is persisted; on AWS
//! (no websocket in the API function) it stays empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use pushpool_core::events::Event;
use serde_json::Value;

use crate::Service;

/// How many subscriptions are remembered (the oldest go first).
pub const KEPT_SUBSCRIPTIONS: usize = 64;

/// How many deliveries are remembered per subscription (the oldest go first).
pub const KEPT_DELIVERIES: usize = 256;

/// One event sent to a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event's name (`prefect.flow-run.Cancelling`).
    pub event: String,
    /// Its resource's `prefect.resource.id` (`prefect.flow-run.<id>`).
    pub resource_id: String,
    /// When it was sent.
    pub at: DateTime<Utc>,
}

/// One `/events/out` subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Its number in this process (from 1).
    pub number: u64,
    /// The filter as the subscriber sent it (the `filter` of its `{"type": "filter"}`
    /// message; `{}` when it sent none).
    pub filter: Value,
    /// When the filter was accepted.
    pub opened: DateTime<Utc>,
    /// When the websocket closed; `None` while it is open.
    pub closed: Option<DateTime<Utc>>,
    /// The most recent events sent to it, oldest first.
    pub delivered: VecDeque<Delivery>,
}

/// The remembered subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscriptions {
    inner: Arc<Mutex<(u64, VecDeque<Subscription>)>>,
}

/// A subscription being served: records its deliveries, and its close when dropped.
#[derive(Debug)]
pub struct SubscriptionRecord {
    registry: Subscriptions,
    number: u64,
}

impl Subscriptions {
    fn with<T>(&self, f: impl FnOnce(&mut (u64, VecDeque<Subscription>)) -> T) -> T {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    fn edit(&self, number: u64, f: impl FnOnce(&mut Subscription)) {
        self.with(|(_, subs)| {
            if let Some(s) = subs.iter_mut().find(|s| s.number == number) {
                f(s);
            }
        });
    }
}

impl SubscriptionRecord {
    /// Records that `event` was sent to this subscriber.
    pub fn delivered(&self, event: &Event) {
        let delivery = Delivery {
            event: event.event.clone(),
            resource_id: event
                .resource
                .get("prefect.resource.id")
                .cloned()
                .unwrap_or_default(),
            at: Utc::now(),
        };
        self.registry.edit(self.number, |s| {
            if s.delivered.len() == KEPT_DELIVERIES {
                s.delivered.pop_front();
            }
            s.delivered.push_back(delivery);
        });
    }
}

impl Drop for SubscriptionRecord {
    fn drop(&mut self) {
        self.registry
            .edit(self.number, |s| s.closed = Some(Utc::now()));
    }
}

impl Service {
    /// Remembers a new `/events/out` subscription with `filter` (what the subscriber sent);
    /// the record notes its deliveries and, when dropped, its close.
    pub fn record_subscription(&self, filter: Value) -> SubscriptionRecord {
        let registry = self.events.subscriptions.clone();
        let number = registry.with(|(next, subs)| {
            *next += 1;
            if subs.len() == KEPT_SUBSCRIPTIONS {
                subs.pop_front();
            }
            subs.push_back(Subscription {
                number: *next,
                filter,
                opened: Utc::now(),
                closed: None,
                delivered: VecDeque::new(),
            });
            *next
        });
        SubscriptionRecord { registry, number }
    }

    /// The remembered `/events/out` subscriptions, oldest first.
    pub fn event_subscriptions(&self) -> Vec<Subscription> {
        self.events
            .subscriptions
            .with(|(_, subs)| subs.iter().cloned().collect())
    }
}
