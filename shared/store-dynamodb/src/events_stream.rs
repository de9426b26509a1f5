//! The events and log lines of the table's DynamoDB stream: what the events function's
//! fan-out reads (its event source mapping, in `infra/template.yaml`, passes only the
//! `INSERT`s of event items, `pk` beginning with `EVENT#`, and of log items, `pk` beginning
//! with `LOG#`; see [`crate::events`] and `crate::logs` for the items).
//!
//! The stream's records carry the new image (`StreamViewType` `NEW_AND_OLD_IMAGES`); an
//! event item's `doc` attribute is the event's JSON; a log item is read as the store reads
//! it.

use aws_lambda_events::dynamodb::EventRecord;
use pushpool_core::events::Event;
use pushpool_core::logs::Log;

/// The event an event item's `INSERT` record carries; `None` for any other record (another
/// item, a `MODIFY` — the same event written again, which subscribers already had — a
/// `REMOVE`, or a `doc` that is not an event).
pub fn stream_event(record: &EventRecord) -> Option<Event> {
    if record.event_name != "INSERT" {
        return None;
    }
    let image = &record.change.new_image;
    match image.get("pk")? {
        serde_dynamo::AttributeValue::S(pk) if pk.starts_with(crate::events::EVENT_PK_PREFIX) => {}
        _ => return None,
    }
    match image.get("doc")? {
        serde_dynamo::AttributeValue::S(doc) => serde_json::from_str(doc).ok(),
        _ => None,
    }
}

/// The log line a log item's `INSERT` record carries; `None` for any other record (another
/// item, a `MODIFY`, a `REMOVE` — the table's TTL expiring a line — or an item that is not a
/// well-formed line).
pub fn stream_log(record: &EventRecord) -> Option<Log> {
    if record.event_name != "INSERT" {
        return None;
    }
    let image = &record.change.new_image;
    match image.get("pk")? {
        serde_dynamo::AttributeValue::S(pk) if pk.starts_with(crate::logs::LOG_PK_PREFIX) => {}
        _ => return None,
    }
    let item: crate::item::Item = image
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    crate::logs::log_from(&item).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `INSERT` record of an event item, in the shape Lambda delivers DynamoDB stream
    /// records (AWS's "DynamoDB Streams" Lambda event, `Records[].dynamodb.NewImage`).
    fn record(name: &str, pk: &str, doc: &str) -> EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1767866400,
                "Keys": {"pk": {"S": pk}, "sk": {"S": "x"}},
                "NewImage": {"pk": {"S": pk}, "sk": {"S": "x"}, "doc": {"S": doc}, "expires_at": {"N": "1767866400"}},
                "SequenceNumber": "100",
                "SizeBytes": 200,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/pushpool/stream/2026-01-01T00:00:00.000"
        }))
        .unwrap()
    }

    #[test]
    fn only_inserted_log_items_are_log_lines() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00.25Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let log = Log {
            id: uuid::Uuid::from_u128(3),
            created: t,
            updated: t,
            name: "prefect.flow_runs".into(),
            level: 20,
            message: "hello".into(),
            timestamp: t,
            flow_run_id: Some(uuid::Uuid::from_u128(1)),
            task_run_id: Some(uuid::Uuid::from_u128(2)),
        };
        let item = crate::logs::log_item(&log, std::time::Duration::from_secs(60));
        let image: serde_json::Map<String, serde_json::Value> = item
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => serde_json::json!({"S": s}),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => serde_json::json!({"N": n}),
                    other => panic!("{other:?}"),
                };
                (k, v)
            })
            .collect();
        let mut r = record("INSERT", "LOG#x", "{}");
        r.change.new_image = serde_json::from_value(serde_json::Value::Object(image)).unwrap();
        assert_eq!(stream_log(&r), Some(log));
        r.event_name = "MODIFY".into();
        assert_eq!(stream_log(&r), None);
        assert_eq!(
            stream_log(&record("INSERT", "EVENT#2026-01-01", "{}")),
            None
        );
    }

    #[test]
    fn only_inserted_event_items_are_events() {
        let doc = r#"{"occurred":"2026-01-01T10:00:00Z","event":"prefect.flow-run.Running","resource":{"prefect.resource.id":"prefect.flow-run.x"},"related":[],"payload":{},"id":"00000000-0000-0000-0000-000000000001","follows":null,"received":"2026-01-01T10:00:01Z"}"#;
        let e = stream_event(&record("INSERT", "EVENT#2026-01-01", doc)).unwrap();
        assert_eq!(e.event, "prefect.flow-run.Running");
        assert_eq!(e.id, uuid::Uuid::from_u128(1));
        assert_eq!(
            stream_event(&record("MODIFY", "EVENT#2026-01-01", doc)),
            None
        );
        assert_eq!(stream_event(&record("INSERT", "OUTBOX", doc)), None);
        assert_eq!(
            stream_event(&record("INSERT", "EVENT#2026-01-01", "{}")),
            None
        );
    }
}
