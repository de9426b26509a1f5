//! The messages of Prefect's event sockets (`WS /events/in`, `WS /events/out`,
//! `prefect/server/api/events.py`), read the same way by the embedded server's routes
//! (`pushpool_api`) and the AWS shape's events function (API Gateway WebSocket API), so both
//! store, record and filter alike.
//!
//! - The first message of either socket is `{"type":"auth","token":…}` (Prefect's
//!   `accept_prefect_socket`): [`auth_token`] reads it. The token is what Prefect's clients
//!   send from `PREFECT_API_AUTH_STRING`; pushpool takes it as an API key, or `user:key`
//!   ([`key_of_auth_string`]), the same text Prefect's UI login form sends as HTTP Basic.
//! - `/events/in`: every later message is one event ([`Service::accept_event_message`]).
//! - `/events/out`: the second message is `{"type":"filter","filter":{…},"backfill":true}`
//!   ([`subscription`]).

use chrono::{DateTime, Duration, Utc};
use pushpool_core::events::{Event, EventFilter, EventOrder, IncomingEvent};
use pushpool_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Service;

/// How far back `/events/out` backfills (`PREFECT_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL`).
pub const MAX_BACKFILL: Duration = Duration::minutes(15);

/// Why the first message of a socket is refused (Prefect closes with 1008 and this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthMessageError {
    /// The message is not `{"type":"auth",…}`.
    #[error("Expected 'auth' message")]
    NotAuth,
    /// `token` is absent, `null` or empty (and the key is required).
    #[error("Auth required but no token provided")]
    NoToken,
    /// The token is not a valid, unrevoked key.
    #[error("Invalid token")]
    Invalid,
}

/// The token of an auth message: `Ok(None)` when it has none.
///
/// # Errors
/// [`AuthMessageError::NotAuth`] when `text` is not an auth message.
pub fn auth_token(text: &str) -> Result<Option<String>, AuthMessageError> {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if v["type"] != "auth" {
        return Err(AuthMessageError::NotAuth);
    }
    Ok(v["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}

/// The API key in an auth string: the text itself, or the part after the first `:` of
/// `user:key` (`key:` is the key), as Prefect's UI login form and `Basic` headers carry it.
pub fn key_of_auth_string(text: &str) -> &str {
    match text.split_once(':') {
        Some((key, "")) => key,
        Some((_, key)) => key,
        None => text,
    }
}

/// The answer to an accepted auth message.
pub fn auth_success() -> String {
    json!({"type": "auth_success"}).to_string()
}

/// The message of one event on `/events/out` (Prefect's `{"type":"event","event":…}`).
pub fn event_message(event: &Event) -> String {
    json!({"type": "event", "event": event}).to_string()
}

/// Why an `/events/in` message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum EventMessageError {
    /// Not a valid event (Prefect closes with 1007): a sentence naming the field.
    #[error("Invalid event: {0}")]
    Invalid(String),
    /// The store failed (the embedded server closes with 1011; the client resends).
    #[error("The event could not be stored")]
    Store(#[from] StoreError),
}

impl Service {
    /// One `/events/in` message: the event is checked, stamped `received` now, stored (kept
    /// [`Service::event_retention`]) and fanned out in-process; a `prefect.task-run.*`
    /// event also records its task run (Prefect's task run recorder, read from the event as
    /// the engine sent it).
    ///
    /// # Errors
    /// [`EventMessageError`].
    pub async fn accept_event_message(&self, text: &str) -> Result<Event, EventMessageError> {
        let event = serde_json::from_str::<IncomingEvent>(text)
            .map_err(|e| {
                let m = e.to_string();
                m.rsplit_once(" at line ")
                    .map_or(m.clone(), |(m, _)| m.to_owned())
            })
            .and_then(|e| e.receive(Utc::now()))
            .map_err(EventMessageError::Invalid)?;
        self.write_events(std::slice::from_ref(&event)).await?;
        if let Ok(raw) = serde_json::from_str::<Value>(text) {
            self.record_task_run_events(&[raw]).await;
        }
        Ok(event)
    }
}

/// The `/events/out` filter message.
#[derive(Debug, Deserialize)]
struct FilterMessage {
    r#type: String,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default = "yes")]
    backfill: bool,
}

fn yes() -> bool {
    true
}

/// A subscription read from an `/events/out` filter message.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The filter, its bounds fixed at `now` with `since` no earlier than
    /// [`MAX_BACKFILL`] before it, in ascending order.
    pub filter: EventFilter,
    /// Whether the stored matching events are sent first.
    pub backfill: bool,
    /// The filter as the subscriber sent it (`{}` when it sent none), for the diagnostics
    /// record of [`crate::event_subscriptions`].
    pub requested: Value,
}

/// Reads an `/events/out` filter message at `now`.
///
/// # Errors
/// Prefect's close reasons (code 1002): `Expected 'filter' message`, `Invalid filter: …`.
pub fn subscription(text: &str, now: DateTime<Utc>) -> Result<Subscription, String> {
    let message = serde_json::from_str::<FilterMessage>(text)
        .ok()
        .filter(|m| m.r#type == "filter")
        .ok_or_else(|| "Expected 'filter' message".to_owned())?;
    let requested = message.filter.unwrap_or_else(|| json!({}));
    let mut filter = serde_json::from_value::<EventFilter>(requested.clone())
        .map_err(|e| e.to_string())
        .and_then(|f| f.validate().map(|()| f))
        .map_err(|e| format!("Invalid filter: {e}"))?;
    filter.resolve(now);
    let earliest = now - MAX_BACKFILL;
    if filter.occurred.since.is_none_or(|s| s < earliest) {
        filter.occurred.since = Some(earliest);
    }
    filter.order = EventOrder::Asc;
    Ok(Subscription {
        filter,
        backfill: message.backfill,
        requested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_messages_and_strings() {
        assert_eq!(
            auth_token(r#"{"type":"auth","token":"pp_x"}"#),
            Ok(Some("pp_x".into()))
        );
        assert_eq!(auth_token(r#"{"type":"auth","token":null}"#), Ok(None));
        assert_eq!(auth_token(r#"{"type":"auth","token":""}"#), Ok(None));
        assert_eq!(
            auth_token(r#"{"type":"filter"}"#),
            Err(AuthMessageError::NotAuth)
        );
        assert_eq!(auth_token("nope"), Err(AuthMessageError::NotAuth));
        assert_eq!(key_of_auth_string("pp_x"), "pp_x");
        assert_eq!(key_of_auth_string("admin:pp_x"), "pp_x");
        assert_eq!(key_of_auth_string("pp_x:"), "pp_x");
    }

    #[test]
    fn filter_messages() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let s = subscription(
            r#"{"type":"filter","filter":{"event":{"prefix":["prefect.flow-run."]}},"backfill":false}"#,
            now,
        )
        .unwrap();
        assert!(!s.backfill);
        assert_eq!(s.filter.occurred.since, Some(now - MAX_BACKFILL));
        assert_eq!(s.filter.occurred.until, Some(now));
        assert_eq!(s.filter.order, EventOrder::Asc);
        assert_eq!(
            subscription(r#"{"type":"auth"}"#, now).unwrap_err(),
            "Expected 'filter' message"
        );
        assert!(
            subscription(r#"{"type":"filter","filter":{"nope":1}}"#, now)
                .unwrap_err()
                .starts_with("Invalid filter: unknown field `nope`")
        );
    }
}
