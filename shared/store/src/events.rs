//! The event part of the port: what [`crate::Store::create_events`],
//! [`crate::Store::read_events`] and [`crate::Store::delete_events_received_before`] take.

/// How long a stored event is kept by default: 7 days after the server received it
/// (Prefect's `PREFECT_EVENTS_RETENTION_PERIOD` default).
pub const DEFAULT_EVENT_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 60 * 60);
