//! Flow run states: the nine state types Prefect uses, their default names, and the state
//! record (`State`) with its `state_details`, serialised exactly as Prefect 3.9.1 sends it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Prefect's `StateType` enum (OpenAPI `StateType`), serialised in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    /// Waiting for its scheduled time.
    Scheduled,
    /// Claimed; infrastructure is being started.
    Pending,
    /// The flow is executing.
    Running,
    /// Finished successfully (terminal).
    Completed,
    /// The flow raised (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
    /// The infrastructure failed or the run never reported (terminal).
    Crashed,
    /// Paused or suspended.
    Paused,
    /// Cancellation requested; infrastructure is being stopped.
    Cancelling,
}

impl StateType {
    /// All nine state types, in Prefect's order.
    pub const ALL: [StateType; 9] = [
        Self::Scheduled,
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Crashed,
        Self::Paused,
        Self::Cancelling,
    ];

    /// The upper-case wire name (`"SCHEDULED"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Crashed => "CRASHED",
            Self::Paused => "PAUSED",
            Self::Cancelling => "CANCELLING",
        }
    }

    /// Parses the wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Prefect's default state name for the type (`"Scheduled"`, `"Crashed"`, ...).
    pub fn default_name(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Crashed => "Crashed",
            Self::Paused => "Paused",
            Self::Cancelling => "Cancelling",
        }
    }

    /// COMPLETED, FAILED, CANCELLED and CRASHED (Prefect's `TERMINAL_STATES`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Crashed
        )
    }
}

impl std::fmt::Display for StateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prefect's `StateDetails`; every field is sent, `null` when unset (`deferred` is `false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateDetails {
    /// The flow run the state belongs to.
    pub flow_run_id: Option<Uuid>,
    /// Unused for flow runs.
    pub task_run_id: Option<Uuid>,
    /// Unused for flow runs.
    pub child_flow_run_id: Option<Uuid>,
    /// When a SCHEDULED run is due (UTC).
    pub scheduled_time: Option<DateTime<Utc>>,
    /// Result cache key.
    pub cache_key: Option<String>,
    /// Result cache expiry.
    pub cache_expiration: Option<DateTime<Utc>>,
    /// Deferred run.
    pub deferred: Option<bool>,
    /// Whether the result cannot be tracked.
    pub untrackable_result: bool,
    /// When a pause times out (UTC). Read from an RFC 3339 string or, as Prefect 3.9.1's
    /// client sends it (`Paused(timeout_seconds=...)` serialises its deadline as a number),
    /// a Unix timestamp, which Prefect's server (pydantic) reads in seconds, or in
    /// milliseconds above 2e10; written back as RFC 3339.
    #[serde(deserialize_with = "lenient_datetime")]
    pub pause_timeout: Option<DateTime<Utc>>,
    /// Whether a pause reschedules.
    pub pause_reschedule: bool,
    /// Pause key.
    pub pause_key: Option<String>,
    /// Run input keyset.
    pub run_input_keyset: Option<serde_json::Value>,
    /// Refresh cache.
    pub refresh_cache: Option<bool>,
    /// Retriable.
    pub retriable: Option<bool>,
    /// Client transition id; a repeated id is a duplicate proposal.
    pub transition_id: Option<Uuid>,
    /// Task parameters id.
    pub task_parameters_id: Option<Uuid>,
    /// W3C traceparent.
    pub traceparent: Option<String>,
    /// Deployment concurrency lease.
    pub deployment_concurrency_lease_id: Option<Uuid>,
}

/// An optional date and time given as an RFC 3339 string or a Unix timestamp (pydantic's
/// reading: seconds, or milliseconds when its magnitude is above 2e10).
fn lenient_datetime<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| D::Error::custom(format!("invalid date and time {s:?}: {e}"))),
        Some(serde_json::Value::Number(n)) => {
            let secs = n
                .as_f64()
                .ok_or_else(|| D::Error::custom("invalid timestamp"))?;
            let micros = if secs.abs() > 2e10 {
                secs * 1e3
            } else {
                secs * 1e6
            };
            DateTime::from_timestamp_micros(micros.round() as i64)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("timestamp {n} is out of range")))
        }
        Some(other) => Err(D::Error::custom(format!(
            "expected a date and time or a timestamp, got {other}"
        ))),
    }
}

impl Default for StateDetails {
    fn default() -> Self {
        Self {
            flow_run_id: None,
            task_run_id: None,
            child_flow_run_id: None,
            scheduled_time: None,
            cache_key: None,
            cache_expiration: None,
            deferred: Some(false),
            untrackable_result: false,
            pause_timeout: None,
            pause_reschedule: false,
            pause_key: None,
            run_input_keyset: None,
            refresh_cache: None,
            retriable: None,
            transition_id: None,
            task_parameters_id: None,
            traceparent: None,
            deployment_concurrency_lease_id: None,
        }
    }
}

/// A state as stored and returned (`{id, type, name, timestamp, message, data, state_details}`).
/// State ids are UUIDv7, as Prefect's are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// UUIDv7 of the state.
    pub id: Uuid,
    /// State type.
    pub r#type: StateType,
    /// Display name (`"Late"`, `"AwaitingRetry"`, or the default name).
    pub name: String,
    /// When the state was entered (UTC).
    pub timestamp: DateTime<Utc>,
    /// Why the run is in this state; carries provider reasons for CRASHED.
    pub message: Option<String>,
    /// Result record, as the client sent it.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// Details.
    #[serde(default)]
    pub state_details: StateDetails,
}

impl State {
    /// A new state of `type` with its default name, entered at `now`.
    pub fn new(r#type: StateType, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            r#type,
            name: r#type.default_name().to_owned(),
            timestamp: now,
            message: None,
            data: None,
            state_details: StateDetails::default(),
        }
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// A proposed state as a client sends it (`StateCreate`): `type` required, the rest optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCreate {
    /// Proposed state type.
    pub r#type: StateType,
    /// Proposed name; the type's default name when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Result record.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// Details.
    #[serde(default)]
    pub state_details: Option<StateDetails>,
}

impl StateCreate {
    /// Turns the proposal into a state entered at `now`, for flow run `flow_run_id`.
    pub fn into_state(self, flow_run_id: Uuid, now: DateTime<Utc>) -> State {
        let mut details = self.state_details.unwrap_or_default();
        details.flow_run_id = Some(flow_run_id);
        if self.r#type == StateType::Scheduled && details.scheduled_time.is_none() {
            details.scheduled_time = Some(now);
        }
        State {
            id: Uuid::now_v7(),
            r#type: self.r#type,
            name: self
                .name
                .unwrap_or_else(|| self.r#type.default_name().to_owned()),
            timestamp: now,
            message: self.message,
            data: self.data,
            state_details: details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_timeout_reads_rfc3339_and_unix_timestamps() {
        let read = |v: serde_json::Value| {
            serde_json::from_value::<StateDetails>(serde_json::json!({ "pause_timeout": v }))
                .map(|d| d.pause_timeout)
        };
        let at = DateTime::parse_from_rfc3339("2026-11-30T13:25:48.442451Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            read(serde_json::json!("2026-11-30T13:25:48.442451Z")).unwrap(),
            Some(at)
        );
        // What Prefect's client sends for `Paused(timeout_seconds=...)`.
        assert_eq!(
            read(serde_json::json!(1796045148.442451)).unwrap(),
            Some(at)
        );
        assert_eq!(
            read(serde_json::json!(1796045148442.451)).unwrap(),
            Some(at)
        );
        assert_eq!(read(serde_json::Value::Null).unwrap(), None);
        assert!(read(serde_json::json!(true)).is_err());
    }
}
