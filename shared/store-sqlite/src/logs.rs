//! Log lines in the `logs` table (schema version 5).
//!
//! A read narrows by SQL on what the filter's `and_` criteria index (flow run ids, task run
//! ids, level, timestamp), in `(timestamp, id)` order, then applies the whole filter in
//! memory ([`LogQuery::matches`]: the text search, `or_` filters). When SQL alone decides
//! (`and_` and no text search), the page is cut in SQL too.

use chrono::{DateTime, Utc};
use pushpool_core::filter::Operator;
use pushpool_core::logs::{Log, LogSort};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use uuid::Uuid;

use super::query::ts;
use super::sql;
use pushpool_store::{LogQuery, Result, StoreError};

fn time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Backend(Box::new(e)))
}

fn uuid(raw: Option<String>) -> Result<Option<Uuid>> {
    raw.map(|r| Uuid::parse_str(&r).map_err(|e| StoreError::Backend(Box::new(e))))
        .transpose()
}

pub(super) fn insert(conn: &mut Connection, logs: &[Log]) -> Result<()> {
    let tx = conn.transaction().map_err(sql)?;
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp, created)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .map_err(sql)?;
        for log in logs {
            stmt.execute(params![
                log.id.to_string(),
                log.flow_run_id.map(|i| i.to_string()),
                log.task_run_id.map(|i| i.to_string()),
                log.name,
                log.level,
                log.message,
                ts(log.timestamp),
                ts(log.created),
            ])
            .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(super) fn read(conn: &Connection, query: &LogQuery) -> Result<Vec<Log>> {
    let f = &query.filter;
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let text = f.text.as_ref().is_some_and(|t| !t.query.trim().is_empty());
    let and = f.operator == Operator::And;
    if and {
        if let Some(ids) = f.flow_run_id.as_ref().and_then(|c| c.any_.as_ref()) {
            clauses.push(format!("flow_run_id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().map(|i| Value::Text(i.to_string())));
        }
        if let Some(c) = &f.task_run_id {
            if let Some(ids) = &c.any_ {
                clauses.push(format!("task_run_id IN ({})", placeholders(ids.len())));
                args.extend(ids.iter().map(|i| Value::Text(i.to_string())));
            }
            if let Some(null) = c.is_null_ {
                clauses.push(format!(
                    "task_run_id IS {}NULL",
                    if null { "" } else { "NOT " }
                ));
            }
        }
        if let Some(c) = &f.level {
            if let Some(ge) = c.ge_ {
                clauses.push("level >= ?".into());
                args.push(Value::Integer(ge));
            }
            if let Some(le) = c.le_ {
                clauses.push("level <= ?".into());
                args.push(Value::Integer(le));
            }
        }
        if let Some(c) = &f.timestamp {
            if let Some(before) = c.before_ {
                clauses.push("timestamp <= ?".into());
                args.push(Value::Text(ts(before)));
            }
            if let Some(after) = c.after_ {
                clauses.push("timestamp >= ?".into());
                args.push(Value::Text(ts(after)));
            }
        }
    }
    let mut sql_text = String::from(
        "SELECT id, flow_run_id, task_run_id, name, level, message, timestamp, created FROM logs",
    );
    if !clauses.is_empty() {
        sql_text.push_str(" WHERE ");
        sql_text.push_str(&clauses.join(" AND "));
    }
    sql_text.push_str(match query.sort {
        LogSort::TimestampAsc => " ORDER BY timestamp ASC, id ASC",
        LogSort::TimestampDesc => " ORDER BY timestamp DESC, id DESC",
    });
    let exact = and && !text;
    if exact {
        sql_text.push_str(" LIMIT ? OFFSET ?");
        let limit = query
            .page
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        args.push(Value::Integer(limit));
        args.push(Value::Integer(
            i64::try_from(query.page.offset).unwrap_or(i64::MAX),
        ));
    }
    let mut stmt = conn.prepare(&sql_text).map_err(sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, flow_run_id, task_run_id, name, level, message, timestamp, created) =
            row.map_err(sql)?;
        let created = time(&created)?;
        let log = Log {
            id: uuid(Some(id))?.unwrap_or_default(),
            created,
            updated: created,
            name,
            level,
            message,
            timestamp: time(&timestamp)?,
            flow_run_id: uuid(flow_run_id)?,
            task_run_id: uuid(task_run_id)?,
        };
        if exact || query.matches(&log) {
            out.push(log);
        }
    }
    Ok(if exact { out } else { query.finish(out) })
}

pub(super) fn delete_created_before(conn: &Connection, cutoff: DateTime<Utc>) -> Result<u64> {
    let n = conn
        .execute("DELETE FROM logs WHERE created < ?", params![ts(cutoff)])
        .map_err(sql)?;
    Ok(n as u64)
}
