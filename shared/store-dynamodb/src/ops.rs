//! The DynamoDB calls the store is made of: strongly consistent gets, paged queries, batch
//! reads and deletes with their unprocessed-key loops, transactions with their cancellation
//! reasons, and the outbox counter.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    ReturnConsumedCapacity, ReturnValue, TransactWriteItem, WriteRequest,
};

use crate::DynamoStore;
use crate::error::{DynamoError, TRANSIENT_REASONS, sdk};
use crate::item::{Cond, Expr, Item, PK, SEQ, SK, counter_key, n, req_u64};
use crate::meter::Read;

/// Attempts of an operation whose writers collide (`TransactionConflict`, unprocessed batch
/// keys, a resource changed between its read and its conditional write).
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Items per `BatchGetItem`.
const BATCH_GET: usize = 100;
/// Items per `BatchWriteItem`.
const BATCH_WRITE: usize = 25;

/// Sleeps before attempt `attempt + 1`: 10 ms doubling, capped at 640 ms, with jitter.
pub(crate) async fn backoff(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// The outcome of a transaction.
#[derive(Debug)]
pub(crate) enum Tx {
    /// Written.
    Committed,
    /// Cancelled because the conditions of these items (by position) failed.
    Failed(Vec<bool>),
    /// Cancelled because a concurrent transaction touched the same items: retry.
    Conflicted,
}

impl Tx {
    /// Whether the condition of item `i` failed.
    pub fn failed_at(failed: &[bool], i: usize) -> bool {
        failed.get(i).copied().unwrap_or(false)
    }
}

/// A query: a key condition (and optionally a filter and a projection) over the table or an
/// index.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub index: Option<&'static str>,
    pub key_condition: String,
    pub filter: Option<String>,
    pub projection: Option<String>,
    pub expr: Expr,
    pub descending: bool,
}

/// The key of an item (its `pk` and `sk` attributes).
pub(crate) fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| k.as_str() == PK || k.as_str() == SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `pk` + `sk` as one string, to match batch results with requests.
pub(crate) fn key_string(item: &Item) -> String {
    let part = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "",
    };
    format!("{}\u{1}{}", part(PK), part(SK))
}

impl DynamoStore {
    /// A strongly consistent `GetItem`.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .set_return_consumed_capacity(self.capacity())
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        self.meter_read(
            Read::Items {
                consistent: true,
                items: out.item.iter().collect(),
            },
            out.consumed_capacity(),
        );
        Ok(out.item)
    }

    /// One page of `query`: at most `limit` items (DynamoDB's `Limit`: items read, before
    /// any filter) from `start`; returns the items and where the next page starts (`None`
    /// at the end). Table queries are strongly consistent; index queries cannot be.
    pub(crate) async fn query_page(
        &self,
        query: &Query,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), DynamoError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.map(str::to_owned))
            .key_condition_expression(&query.key_condition)
            .set_filter_expression(query.filter.clone())
            .set_projection_expression(query.projection.clone())
            .set_expression_attribute_names(query.expr.names())
            .set_expression_attribute_values(query.expr.values())
            .scan_index_forward(!query.descending)
            .set_consistent_read(query.index.is_none().then_some(true))
            .set_limit(limit.map(|l| i32::try_from(l.clamp(1, 1000)).unwrap_or(1000)))
            .set_exclusive_start_key(start)
            .set_return_consumed_capacity(self.capacity())
            .send()
            .await
            .map_err(|e| sdk("Query", e))?;
        let items = page.items.clone().unwrap_or_default();
        self.meter_read(
            Read::Query {
                consistent: query.index.is_none(),
                scanned: u64::try_from(page.scanned_count()).unwrap_or(0),
                items: items.iter().collect(),
                filtered: query.filter.is_some() || query.projection.is_some(),
            },
            page.consumed_capacity(),
        );
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((items, next))
    }

    /// Runs `query` page by page until `max` items were collected (all when `None`).
    pub(crate) async fn query(
        &self,
        query: &Query,
        max: Option<usize>,
    ) -> Result<Vec<Item>, DynamoError> {
        let mut out: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = max.map(|m| m.saturating_sub(out.len()));
            if remaining == Some(0) {
                break;
            }
            // Without a filter, `Limit` is exactly what is wanted; with one, it would count
            // the items read before filtering, so pages are left at DynamoDB's 1 MB.
            let limit = match (remaining, &query.filter) {
                (Some(r), None) => Some(r.min(1000)),
                _ => None,
            };
            let (items, next) = self.query_page(query, limit, start.take()).await?;
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        if let Some(m) = max {
            out.truncate(m);
        }
        Ok(out)
    }

    /// Strongly consistent `BatchGetItem` of `keys`; returns the items found, keyed by
    /// [`key_string`].
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
    ) -> Result<HashMap<String, Item>, DynamoError> {
        let mut found = HashMap::new();
        let mut unique: Vec<Item> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            if seen.insert(key_string(&k)) {
                unique.push(k);
            }
        }
        for chunk in unique.chunks(BATCH_GET) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .set_return_consumed_capacity(self.capacity())
                    .send()
                    .await
                    .map_err(|e| sdk("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    let items = responses.remove(&self.table).unwrap_or_default();
                    self.meter_read(
                        Read::Items {
                            consistent: true,
                            items: items.iter().collect(),
                        },
                        out.consumed_capacity.as_deref().and_then(|c| c.first()),
                    );
                    for item in items {
                        found.insert(key_string(&item), item);
                    }
                }
                if let Some(mut unprocessed) = out.unprocessed_keys {
                    if let Some(rest) = unprocessed.remove(&self.table) {
                        pending = rest.keys;
                    }
                }
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(DynamoError::Contended {
                            operation: "BatchGetItem",
                            attempts: attempt,
                        });
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// `BatchWriteItem` deletes of `keys`, retrying unprocessed ones.
    pub(crate) async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), DynamoError> {
        for chunk in keys.chunks(BATCH_WRITE) {
            let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for k in chunk {
                pending.push(
                    WriteRequest::builder()
                        .delete_request(DeleteRequest::builder().set_key(Some(k.clone())).build()?)
                        .build(),
                );
            }
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .set_return_consumed_capacity(self.capacity())
                    .send()
                    .await
                    .map_err(|e| sdk("BatchWriteItem", e))?;
                // A delete is charged by the size of the item it removes, which is not
                // known here: 1 unit each (items up to 1 KB).
                self.meter_write(
                    &[],
                    chunk.len() as u64,
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

    /// `BatchWriteItem` puts of `items` (no conditions), retrying unprocessed ones: the bulk
    /// load of benches and upgrades, never a port write.
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> Result<(), DynamoError> {
        for chunk in items.chunks(BATCH_WRITE) {
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
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| sdk("BatchWriteItem", e))?;
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

    /// Unconditional `PutItem`s of `items`, one call each (the Lambdas' roles have
    /// `PutItem` but not all of them `BatchWriteItem`; a run has few tags).
    pub(crate) async fn put_items(&self, items: Vec<Item>) -> Result<(), DynamoError> {
        for item in items {
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .set_return_consumed_capacity(self.capacity())
                .send()
                .await
                .map_err(|e| sdk("PutItem", e))?;
            self.meter_write(&[&item], 0, false, out.consumed_capacity());
        }
        Ok(())
    }

    /// `ReturnConsumedCapacity` for a call: `INDEXES` when the store is metered.
    pub(crate) fn capacity(&self) -> Option<ReturnConsumedCapacity> {
        self.meter
            .is_some()
            .then_some(ReturnConsumedCapacity::Indexes)
    }

    pub(crate) fn meter_read(&self, read: Read<'_>, reported: Option<&ConsumedCapacity>) {
        if let Some(meter) = &self.meter {
            meter.read(read, reported);
        }
    }

    pub(crate) fn meter_write(
        &self,
        puts: &[&Item],
        others: u64,
        transactional: bool,
        reported: Option<&ConsumedCapacity>,
    ) {
        if let Some(meter) = &self.meter {
            meter.write(puts, others, transactional, reported);
        }
    }

    /// A transaction `Put` of `item`, on `cond` if given.
    pub(crate) fn put(
        &self,
        item: Item,
        cond: Option<Cond>,
    ) -> Result<TransactWriteItem, DynamoError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = cond {
            put = put
                .condition_expression(c.text)
                .set_expression_attribute_names(c.expr.names())
                .set_expression_attribute_values(c.expr.values());
        }
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    /// A transaction `Delete` of `key`, on `cond` if given.
    pub(crate) fn delete(
        &self,
        key: Item,
        cond: Option<Cond>,
    ) -> Result<TransactWriteItem, DynamoError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(c) = cond {
            delete = delete
                .condition_expression(c.text)
                .set_expression_attribute_names(c.expr.names())
                .set_expression_attribute_values(c.expr.values());
        }
        Ok(TransactWriteItem::builder().delete(delete.build()?).build())
    }

    /// Runs a `TransactWriteItems`, telling failed conditions and conflicts apart.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Tx, DynamoError> {
        let count = items.len();
        let metered = self.meter.is_some().then(|| {
            let puts: Vec<Item> = items
                .iter()
                .filter_map(|i| i.put().map(|p| p.item().clone()))
                .collect();
            (
                puts,
                (count - items.iter().filter(|i| i.put().is_some()).count()) as u64,
            )
        });
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_return_consumed_capacity(self.capacity())
            .send()
            .await;
        let err = match result {
            Ok(out) => {
                if let Some((puts, others)) = metered {
                    let refs: Vec<&Item> = puts.iter().collect();
                    self.meter_write(
                        &refs,
                        others,
                        true,
                        out.consumed_capacity.as_deref().and_then(|c| c.first()),
                    );
                }
                return Ok(Tx::Committed);
            }
            Err(e) => e,
        };
        let reasons: Vec<String> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(tc)) => tc
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
            _ => return Err(sdk("TransactWriteItems", err)),
        };
        let failed: Vec<bool> = (0..count)
            .map(|i| {
                reasons
                    .get(i)
                    .is_some_and(|c| c == "ConditionalCheckFailed")
            })
            .collect();
        if failed.iter().any(|f| *f) {
            return Ok(Tx::Failed(failed));
        }
        if reasons.iter().any(|c| c == "TransactionConflict") {
            tracing::debug!("DynamoDB transaction conflicted with a concurrent one");
            return Ok(Tx::Conflicted);
        }
        Err(DynamoError::Cancelled {
            operation: "TransactWriteItems",
            transient: reasons
                .iter()
                .any(|c| TRANSIENT_REASONS.contains(&c.as_str())),
            codes: reasons.join(", "),
        })
    }

    /// The next outbox sequence number (`ADD seq :one` on the counter item).
    pub(crate) async fn next_seq(&self) -> Result<u64, DynamoError> {
        let mut expr = Expr::default();
        let update = format!("ADD {} {}", expr.name(SEQ), expr.value(n(1)));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key()))
            .update_expression(update)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::UpdatedNew)
            .set_return_consumed_capacity(self.capacity())
            .send()
            .await
            .map_err(|e| sdk("UpdateItem", e))?;
        // The counter item is under 1 KB: 1 unit.
        self.meter_write(&[], 1, false, out.consumed_capacity());
        let attributes = out.attributes.unwrap_or_default();
        req_u64(&attributes, SEQ)
    }
}
