//! Events in the `events` table (schema version 6).
//!
//! A read narrows by SQL on the `occurred` range and, when the filter gives them, the
//! primary resource ids; then applies the whole filter in memory
//! ([`EventFilter::matches`]) and orders ([`EventFilter::finish`]).

use chrono::{DateTime, Utc};
use pushpool_core::events::{Event, EventFilter};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::query::ts;
use super::sql;
use pushpool_store::{Result, StoreError};

pub(super) fn insert(conn: &mut Connection, events: &[Event]) -> Result<()> {
    let tx = conn.transaction().map_err(sql)?;
    {
        let mut stmt = tx
            .prepare(
                "INSERT OR REPLACE INTO events (id, occurred, event, resource_id, received, body)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .map_err(sql)?;
        for e in events {
            let body = serde_json::to_string(e).map_err(|e| StoreError::Backend(Box::new(e)))?;
            stmt.execute(params![
                e.id.to_string(),
                ts(e.occurred),
                e.event,
                e.resource_id(),
                ts(e.received),
                body,
            ])
            .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)
}

pub(super) fn read(conn: &Connection, filter: &EventFilter) -> Result<Vec<Event>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(since) = filter.occurred.since {
        clauses.push("occurred >= ?".into());
        args.push(Value::Text(ts(since)));
    }
    if let Some(until) = filter.occurred.until {
        clauses.push("occurred <= ?".into());
        args.push(Value::Text(ts(until)));
    }
    if let Some(ids) = filter
        .resource
        .as_ref()
        .and_then(|r| r.id.as_ref())
        .filter(|ids| !ids.is_empty())
    {
        clauses.push(format!(
            "resource_id IN ({})",
            vec!["?"; ids.len()].join(", ")
        ));
        args.extend(ids.iter().map(|i| Value::Text(i.clone())));
    }
    let mut text = String::from("SELECT body FROM events");
    if !clauses.is_empty() {
        text.push_str(" WHERE ");
        text.push_str(&clauses.join(" AND "));
    }
    let mut stmt = conn.prepare(&text).map_err(sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let body = row.map_err(sql)?;
        let event: Event =
            serde_json::from_str(&body).map_err(|e| StoreError::Backend(Box::new(e)))?;
        if filter.matches(&event) {
            out.push(event);
        }
    }
    Ok(filter.finish(out))
}

pub(super) fn delete_received_before(conn: &Connection, cutoff: DateTime<Utc>) -> Result<u64> {
    let n = conn
        .execute("DELETE FROM events WHERE received < ?", params![ts(cutoff)])
        .map_err(sql)?;
    Ok(n as u64)
}
