//! The messages of Prefect's log socket (`WS /logs/out`, `prefect/server/api/logs.py`
//! `stream_logs_out`), read the same way by the embedded server's route (`pushpool_api`) and
//! the AWS shape's events function (API Gateway WebSocket API, `?stream=logs`), so both
//! filter alike.
//!
//! - The first message is the auth message of the event sockets
//!   ([`crate::event_sockets::auth_token`], Prefect's `accept_prefect_socket`).
//! - The second is `{"type":"filter","filter":{…}}` ([`log_subscription`]): Prefect's
//!   `LogFilter`. Anything else closes the socket with 1002 and Prefect's reason.
//! - Then every new line that passes the filter is sent as `{"type":"log","log":{…}}`
//!   ([`log_message`]), the line as `POST /logs/filter` answers it. There is no backfill
//!   (Prefect's server has none either: its subscriber asks for the last minute's lines and
//!   gets only those that arrive from then on).
//!
//! Every criterion of the filter is honoured by [`LogFilter::matches`], the reference the
//! stores' `/logs/filter` answers are checked against. Prefect's own live stream
//! (`server/logs/stream.py` `log_matches_filter`) ignores `operator` and `text`; pushpool
//! applies them as `/logs/filter` does, so a subscriber gets exactly the lines a read with
//! the same filter would return.

use pushpool_core::logs::{Log, LogFilter, MAX_TEXT_QUERY_CHARS};
use serde_json::{Value, json};

/// The message of one log line on `/logs/out` (Prefect's `{"type":"log","log":…}`).
pub fn log_message(log: &Log) -> String {
    json!({"type": "log", "log": log}).to_string()
}

/// Reads a `/logs/out` filter message: `{"type":"filter","filter":{…LogFilter…}}`.
///
/// # Errors
/// Prefect's close reasons (code 1002): `Expected 'filter' message` when the message is not
/// a JSON object whose `type` is `filter`; `Invalid filter: …` naming the field when the
/// filter is absent, not a `LogFilter` (unknown keys included: Prefect's filters forbid
/// extras), or its `text.query` is over 200 characters.
pub fn log_subscription(text: &str) -> Result<LogFilter, String> {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .filter(|m| m["type"] == "filter")
        .ok_or_else(|| "Expected 'filter' message".to_owned())?;
    let Some(raw) = message.get("filter") else {
        return Err("Invalid filter: filter: Field required".to_owned());
    };
    let filter = serde_path_to_error::deserialize::<_, LogFilter>(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            format!("Invalid filter: {inner}")
        } else {
            format!("Invalid filter: {path}: {inner}")
        }
    })?;
    if let Some(t) = &filter.text {
        let chars = t.query.chars().count();
        if chars > MAX_TEXT_QUERY_CHARS {
            return Err(format!(
                "Invalid filter: text.query: String should have at most \
                 {MAX_TEXT_QUERY_CHARS} characters (got {chars})"
            ));
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn filter_messages() {
        let run = Uuid::from_u128(7);
        // What Prefect's `PrefectLogsSubscriber` sends (`LogFilter.model_dump(mode="json")`).
        let sent = json!({"type": "filter", "filter": {
            "operator": "and_", "level": null,
            "timestamp": {"before_": "2027-11-30T10:00:00Z", "after_": "2026-11-30T09:59:00Z"},
            "flow_run_id": {"any_": [run]}, "task_run_id": null, "text": null,
        }});
        let f = log_subscription(&sent.to_string()).unwrap();
        assert_eq!(f.flow_run_ids(), Some(&[run][..]));
        assert_eq!(
            log_subscription(r#"{"type":"auth","token":null}"#).unwrap_err(),
            "Expected 'filter' message"
        );
        assert_eq!(
            log_subscription("nope").unwrap_err(),
            "Expected 'filter' message"
        );
        assert_eq!(
            log_subscription(r#"{"type":"filter"}"#).unwrap_err(),
            "Invalid filter: filter: Field required"
        );
        assert_eq!(
            log_subscription(r#"{"type":"filter","filter":{"flow_run_id":{"all_":[]}}}"#)
                .unwrap_err(),
            "Invalid filter: flow_run_id.all_: unknown field `all_`, expected `any_`"
        );
        let long = json!({"type": "filter", "filter": {"text": {"query": "x".repeat(201)}}});
        assert_eq!(
            log_subscription(&long.to_string()).unwrap_err(),
            "Invalid filter: text.query: String should have at most 200 characters (got 201)"
        );
    }

    #[test]
    fn a_line_is_sent_as_prefects_log_message() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00.5Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let log = Log {
            id: Uuid::from_u128(1),
            created: t,
            updated: t,
            name: "prefect.flow_runs".into(),
            level: 20,
            message: "hello".into(),
            timestamp: t,
            flow_run_id: Some(Uuid::from_u128(2)),
            task_run_id: None,
        };
        let v: Value = serde_json::from_str(&log_message(&log)).unwrap();
        assert_eq!(
            v,
            json!({"type": "log", "log": {
                "id": "00000000-0000-0000-0000-000000000001",
                "created": "2026-11-30T10:00:00.500Z", "updated": "2026-11-30T10:00:00.500Z",
                "name": "prefect.flow_runs", "level": 20, "message": "hello",
                "timestamp": "2026-11-30T10:00:00.500Z",
                "flow_run_id": "00000000-0000-0000-0000-000000000002", "task_run_id": null,
            }})
        );
    }
}
