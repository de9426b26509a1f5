//! Events ([`Store::create_events`](pushpool_store::Store::create_events) and friends): one
//! small item per event, in the partition of the UTC day it occurred, sorted by time.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | event | `EVENT#<yyyy-mm-dd of occurred>` | `<occurred>#<event id>` | `doc` (the event as JSON), `expires_at` (TTL) |
//!
//! - **Size.** An event is its keys (about 80 bytes) and its JSON: a flow run state event
//!   (resource labels, up to five related resources, the two states in the payload) is
//!   about 1 to 1.5 KB, one or two write capacity units.
//! - **Retention.** `expires_at` is `received` plus the retention time, in epoch seconds:
//!   DynamoDB's TTL deletes expired events. Reads are clamped by the service to the
//!   retention window, so they query at most retention-days + 1 partitions.
//! - **Writes.** One `PutItem` per event (the engine sends them one by one over
//!   `/events/in`).
//! - **Reads.** One `Query` per day of the filter's `occurred` range, the range in the key
//!   condition; the rest of the filter (resource ids included) is applied to what is read.
//!   Reads by resource id therefore cost as much as reads of the whole time range: a
//!   by-resource index is not kept, to keep each event at one item.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use pushpool_core::events::{Event, EventFilter};

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{EXPIRES_AT, Expr, Item, PK, SK, iso, req_str, s};
use crate::ops::Query;

pub(crate) const EVENT_PK_PREFIX: &str = "EVENT#";
const DOC: &str = "doc";

fn event_pk(day: NaiveDate) -> String {
    format!("{EVENT_PK_PREFIX}{}", day.format("%Y-%m-%d"))
}

/// The item of `event`, expiring `retention` after its `received`.
pub(crate) fn event_item(
    event: &Event,
    retention: std::time::Duration,
) -> Result<Item, DynamoError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(event_pk(event.occurred.date_naive())));
    item.insert(
        SK.into(),
        s(format!("{}#{}", iso(event.occurred), event.id)),
    );
    let doc = serde_json::to_string(event).map_err(|_| DynamoError::Malformed {
        pk: event_pk(event.occurred.date_naive()),
        attribute: DOC,
        problem: "could not be encoded as JSON",
    })?;
    item.insert(DOC.into(), s(doc));
    let expires = event
        .received
        .timestamp()
        .saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    item.insert(EXPIRES_AT.into(), AttributeValue::N(expires.to_string()));
    Ok(item)
}

fn event_from(item: &Item) -> Result<Event, DynamoError> {
    serde_json::from_str(req_str(item, DOC)?).map_err(|_| DynamoError::Malformed {
        pk: req_str(item, PK).unwrap_or("?").to_owned(),
        attribute: DOC,
        problem: "is not an event",
    })
}

impl DynamoStore {
    pub(crate) async fn put_events(
        &self,
        events: &[Event],
        retention: std::time::Duration,
    ) -> Result<(), DynamoError> {
        let items = events
            .iter()
            .map(|e| event_item(e, retention))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_items(items).await
    }

    pub(crate) async fn query_events(
        &self,
        filter: &EventFilter,
    ) -> Result<Vec<Event>, DynamoError> {
        let now = Utc::now();
        let since = filter.occurred.since.unwrap_or(now - Duration::days(7));
        let until = filter.occurred.until.unwrap_or(now);
        let mut out = Vec::new();
        if since > until {
            return Ok(out);
        }
        let mut day = since.date_naive();
        while day <= until.date_naive() {
            out.extend(self.day_events(day, since, until, filter).await?);
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        Ok(filter.finish(out))
    }

    async fn day_events(
        &self,
        day: NaiveDate,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        filter: &EventFilter,
    ) -> Result<Vec<Event>, DynamoError> {
        let mut expr = Expr::default();
        // `<until>$` sorts after every `<until>#<id>`.
        let key_condition = format!(
            "{} = {} AND {} BETWEEN {} AND {}",
            expr.name(PK),
            expr.value(s(event_pk(day))),
            expr.name(SK),
            expr.value(s(iso(since))),
            expr.value(s(format!("{}$", iso(until))))
        );
        let q = Query {
            index: None,
            key_condition,
            filter: None,
            projection: None,
            expr,
            descending: false,
        };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(&q, None, start.take()).await?;
            for item in &items {
                let event = event_from(item)?;
                if filter.matches(&event) {
                    out.push(event);
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_expires_retention_after_it_was_received() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = Event {
            occurred: t,
            event: "prefect.flow-run.Running".into(),
            resource: [(
                "prefect.resource.id".to_owned(),
                "prefect.flow-run.x".to_owned(),
            )]
            .into(),
            related: Vec::new(),
            payload: serde_json::Map::new(),
            id: uuid::Uuid::nil(),
            follows: None,
            received: t,
        };
        let item = event_item(&event, std::time::Duration::from_secs(7 * 86_400)).unwrap();
        // 2026-01-08T10:00:00Z
        assert_eq!(item[EXPIRES_AT], AttributeValue::N("1767866400".into()));
        assert_eq!(item[PK], s("EVENT#2026-01-01"));
        assert_eq!(
            item[SK],
            s("2026-01-01T10:00:00.000000Z#00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(event_from(&item).unwrap(), event);
    }
}
