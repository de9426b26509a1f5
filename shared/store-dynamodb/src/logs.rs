//! Log lines ([`Store::create_logs`](pushpool_store::Store::create_logs) and friends): one
//! small item per line, in its flow run's partition, sorted by time.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | log line | `LOG#<flow run id>` (`LOG#NONE` without one) | `<timestamp>#<log id>` | `name`, `level` (N), `message`, `task_run_id` (when set), `created`, `expires_at` (TTL) |
//!
//! - **Size.** A line is its keys (about 100 bytes), its logger name, message and a few
//!   short attributes: a line of an INFO message under about 800 bytes is one write capacity
//!   unit. The API refuses lines whose message is over its limit before they get here.
//! - **Retention.** `expires_at` is `created` plus the retention time, in epoch seconds:
//!   DynamoDB's TTL deletes expired lines (within days of expiry, at no write cost); reads
//!   do not hide expired lines that are not deleted yet, as Prefect's server keeps every line.
//! - **Writes.** One line is a `PutItem` (the submitter and reconciler write pushpool's own
//!   lines one at a time, and their roles have no `BatchWriteItem`); a batch is
//!   `BatchWriteItem`s of 25, unprocessed items retried.
//! - **Reads.** With the filter's `and_` flow run ids, each run's partition is queried in
//!   the sort's direction (the timestamp criterion in the key condition) until `offset +
//!   limit` lines passed the rest of the filter, then the runs' lines are merged, sorted and
//!   paged; without them (no flow run criterion, or `or_`) the table is scanned for log
//!   items: a cost that grows with every line kept, for queries Prefect's UI and CLI do not
//!   make.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use pushpool_core::logs::{Log, LogSort};
use pushpool_store::{LogQuery, Result};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::{DynamoError, sdk};
use crate::item::{EXPIRES_AT, Expr, Item, PK, SK, iso, opt_str, req_str, s};
use crate::meter::Read;
use crate::ops::{MAX_ATTEMPTS, Query, backoff};

pub(crate) const LOG_PK_PREFIX: &str = "LOG#";
const NAME: &str = "name";
const LEVEL: &str = "level";
const MESSAGE: &str = "message";
const TASK_RUN_ID: &str = "task_run_id";
const CREATED: &str = "created";

fn log_pk(flow_run_id: Option<Uuid>) -> String {
    match flow_run_id {
        Some(id) => format!("{LOG_PK_PREFIX}{id}"),
        None => format!("{LOG_PK_PREFIX}NONE"),
    }
}

fn malformed(item: &Item, attribute: &'static str, problem: &'static str) -> DynamoError {
    let pk = match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => "?".into(),
    };
    DynamoError::Malformed {
        pk,
        attribute,
        problem,
    }
}

/// The item of `log`, expiring `retention` after its `created`.
pub(crate) fn log_item(log: &Log, retention: std::time::Duration) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(log_pk(log.flow_run_id)));
    item.insert(SK.into(), s(format!("{}#{}", iso(log.timestamp), log.id)));
    item.insert(NAME.into(), s(log.name.clone()));
    item.insert(LEVEL.into(), AttributeValue::N(log.level.to_string()));
    item.insert(MESSAGE.into(), s(log.message.clone()));
    if let Some(task) = log.task_run_id {
        item.insert(TASK_RUN_ID.into(), s(task.to_string()));
    }
    item.insert(CREATED.into(), s(iso(log.created)));
    let expires = log
        .created
        .timestamp()
        .saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    item.insert(EXPIRES_AT.into(), AttributeValue::N(expires.to_string()));
    item
}

fn time(item: &Item, attribute: &'static str, raw: &str) -> Result<DateTime<Utc>, DynamoError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| malformed(item, attribute, "is not an ISO 8601 time"))
}

pub(crate) fn log_from(item: &Item) -> Result<Log, DynamoError> {
    let pk = req_str(item, PK)?;
    let run = pk
        .strip_prefix(LOG_PK_PREFIX)
        .ok_or_else(|| malformed(item, PK, "is not a log partition"))?;
    let flow_run_id = match run {
        "NONE" => None,
        id => Some(Uuid::parse_str(id).map_err(|_| malformed(item, PK, "has no flow run id"))?),
    };
    let sk = req_str(item, SK)?;
    let (timestamp, id) = sk
        .rsplit_once('#')
        .ok_or_else(|| malformed(item, SK, "is not <timestamp>#<id>"))?;
    let level = match item.get(LEVEL) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| malformed(item, LEVEL, "is not an integer"))?,
        _ => return Err(malformed(item, LEVEL, "is not a number")),
    };
    let created = time(item, CREATED, req_str(item, CREATED)?)?;
    Ok(Log {
        id: Uuid::parse_str(id).map_err(|_| malformed(item, SK, "has no log id"))?,
        created,
        updated: created,
        name: req_str(item, NAME)?.to_owned(),
        level,
        message: req_str(item, MESSAGE)?.to_owned(),
        timestamp: time(item, SK, timestamp)?,
        flow_run_id,
        task_run_id: opt_str(item, TASK_RUN_ID)?
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| malformed(item, TASK_RUN_ID, "is not a UUID"))?,
    })
}

impl DynamoStore {
    pub(crate) async fn put_logs(
        &self,
        logs: &[Log],
        retention: std::time::Duration,
    ) -> Result<(), DynamoError> {
        let items: Vec<Item> = logs.iter().map(|l| log_item(l, retention)).collect();
        if items.len() == 1 {
            return self.put_items(items).await;
        }
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for item in chunk {
                pending.push(
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                        .build(),
                );
            }
            let mut attempt = 0;
            while !pending.is_empty() {
                let sent: Vec<Item> = pending
                    .iter()
                    .filter_map(|w| w.put_request().map(|p| p.item().clone()))
                    .collect();
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .set_return_consumed_capacity(self.capacity())
                    .send()
                    .await
                    .map_err(|e| sdk("BatchWriteItem", e))?;
                self.meter_write(
                    &sent.iter().collect::<Vec<_>>(),
                    0,
                    false,
                    out.consumed_capacity.as_deref().and_then(|c| c.first()),
                );
                if let Some(mut unprocessed) = out.unprocessed_items {
                    pending = unprocessed.remove(&self.table).unwrap_or_default();
                }
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(DynamoError::Contended {
                            operation: "BatchWriteItem",
                            attempts: attempt,
                        });
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn query_logs(&self, query: &LogQuery) -> Result<Vec<Log>, DynamoError> {
        let wanted = query
            .page
            .limit
            .map(|l| l.saturating_add(query.page.offset));
        let mut found = Vec::new();
        match query.filter.flow_run_ids() {
            Some(runs) => {
                let mut seen = std::collections::HashSet::new();
                for run in runs.iter().filter(|r| seen.insert(**r)) {
                    found.extend(self.run_logs(*run, query, wanted).await?);
                }
            }
            None => found = self.scan_logs(query).await?,
        }
        Ok(query.finish(found))
    }

    /// The lines of `run` that pass `query`, in its order, at most `wanted`.
    async fn run_logs(
        &self,
        run: Uuid,
        query: &LogQuery,
        wanted: Option<usize>,
    ) -> Result<Vec<Log>, DynamoError> {
        let mut expr = Expr::default();
        let mut key_condition = format!("{} = {}", expr.name(PK), expr.value(s(log_pk(Some(run)))));
        let range = query.filter.timestamp.as_ref();
        let lo = range.and_then(|r| r.after_).map(iso);
        // `<timestamp>$` sorts after every `<timestamp>#<id>` of that timestamp.
        let hi = range
            .and_then(|r| r.before_)
            .map(|t| format!("{}$", iso(t)));
        match (lo, hi) {
            (Some(lo), Some(hi)) => {
                key_condition = format!(
                    "{key_condition} AND {} BETWEEN {} AND {}",
                    expr.name(SK),
                    expr.value(s(lo)),
                    expr.value(s(hi))
                );
            }
            (Some(lo), None) => {
                key_condition = format!(
                    "{key_condition} AND {} >= {}",
                    expr.name(SK),
                    expr.value(s(lo))
                );
            }
            (None, Some(hi)) => {
                key_condition = format!(
                    "{key_condition} AND {} <= {}",
                    expr.name(SK),
                    expr.value(s(hi))
                );
            }
            (None, None) => {}
        }
        let q = Query {
            index: None,
            key_condition,
            filter: None,
            projection: None,
            expr,
            descending: query.sort == LogSort::TimestampDesc,
        };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            if wanted.is_some_and(|w| out.len() >= w) {
                break;
            }
            let limit = wanted.map(|w| (w - out.len()).clamp(1, 1000));
            let (items, next) = self.query_page(&q, limit, start.take()).await?;
            for item in &items {
                let log = log_from(item)?;
                if query.matches(&log) {
                    out.push(log);
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(out)
    }

    /// Every log line of the table that passes `query` (a `Scan`).
    async fn scan_logs(&self, query: &LogQuery) -> Result<Vec<Log>, DynamoError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut expr = Expr::default();
            let filter = format!(
                "begins_with({}, {})",
                expr.name(PK),
                expr.value(s(LOG_PK_PREFIX))
            );
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(self.capacity())
                .send()
                .await
                .map_err(|e| sdk("Scan", e))?;
            let items = page.items.clone().unwrap_or_default();
            self.meter_read(
                Read::Query {
                    consistent: true,
                    scanned: u64::try_from(page.scanned_count()).unwrap_or(0),
                    items: items.iter().collect(),
                    filtered: true,
                },
                page.consumed_capacity(),
            );
            for item in &items {
                let log = log_from(item)?;
                if query.matches(&log) {
                    out.push(log);
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
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
    fn a_line_expires_retention_after_it_was_stored() {
        let created = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let log = Log {
            id: Uuid::nil(),
            created,
            updated: created,
            name: "prefect.flow_runs".into(),
            level: 20,
            message: "hello".into(),
            timestamp: created,
            flow_run_id: Some(Uuid::nil()),
            task_run_id: None,
        };
        let item = log_item(&log, std::time::Duration::from_secs(30 * 86_400));
        // 2026-01-31T00:00:00Z
        assert_eq!(item[EXPIRES_AT], AttributeValue::N("1769817600".into()));
        assert_eq!(
            item[SK],
            s("2026-01-01T00:00:00.000000Z#00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(log_from(&item).unwrap(), log);
    }
}
