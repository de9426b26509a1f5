//! [`Store::commit`](pushpool_store::Store::commit) on DynamoDB: one `TransactWriteItems`
//! holding every flow run update of the [`Transaction`] (each run `Put` on `version =
//! :expected`, with its history entry, state pointer and outbox item) and every counter
//! change (an `Update` with `ADD` on a bound condition).
//!
//! # Counter items
//!
//! | `pk` | `sk` | attributes |
//! |---|---|---|
//! | `COUNTER#<name, escaped>` | `COUNTER` | `count` (N) |
//!
//! One partition per counter (a concurrency slot count is written by every run of its pool,
//! never by the others). An increment under a limit is `ADD count :delta` on
//! `attribute_not_exists(count) OR count <= :limit - :delta`; a decrement is `ADD count
//! :delta` on `count >= -:delta` (a counter that was never written is 0, so it cannot go
//! lower).
//!
//! # Limits and failures
//!
//! `TransactWriteItems` takes at most 100 items ([`Transaction::MAX_ITEMS`], checked before
//! the call by [`Transaction::check`]; a run takes up to
//! [`Transaction::ITEMS_PER_FLOW_RUN`] items, a counter one) and refuses two actions on one
//! item (so a run or counter appears once). A `TransactionCanceledException` is read by its
//! cancellation reason codes only (never the items DynamoDB may echo back), item by item:
//! a failed run condition is `VersionConflict` (`NotFound` when a fresh read finds no run),
//! a failed counter condition `LimitReached` (a stale run takes precedence), a
//! `TransactionConflict` with a concurrent transaction is retried with backoff
//! ([`MAX_ATTEMPTS`] in all, then `Transient`), throttling is `Transient`.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use pushpool_core::model::FlowRun;
use pushpool_store::{CounterChange, Result, StoreError, Transaction};

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{Expr, Item, VERSION, escape, key, req_u64};
use crate::ops::{MAX_ATTEMPTS, Tx, backoff};

/// The number attribute of a counter item.
const COUNT: &str = "count";

/// The sk of counter items.
const COUNTER_SK: &str = "COUNTER";

/// The key of counter `name`.
fn counter_item_key(name: &str) -> Item {
    key(format!("COUNTER#{}", escape(name)), COUNTER_SK)
}

/// What an item of the transaction writes, to read its cancellation reason.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// The run item of `flow_runs[i]` (the conditional one).
    Run(usize),
    /// An unconditional item (history, pointer, outbox).
    Other,
    /// The item of `counters[i]`.
    Counter(usize),
}

impl DynamoStore {
    /// The `Update` of `change`: `ADD count :delta` on its bound (see the module docs).
    fn counter_update(&self, change: &CounterChange) -> Result<TransactWriteItem, DynamoError> {
        let mut expr = Expr::default();
        let count = expr.name(COUNT);
        let delta = expr.value(AttributeValue::N(change.delta.to_string()));
        let condition = if change.delta > 0 {
            change.limit.map(|limit| {
                let most = expr.value(AttributeValue::N(
                    limit.saturating_sub(change.delta).to_string(),
                ));
                format!("attribute_not_exists({count}) OR {count} <= {most}")
            })
        } else {
            let least = expr.value(AttributeValue::N(change.delta.saturating_neg().to_string()));
            Some(format!("{count} >= {least}"))
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counter_item_key(&change.name)))
            .update_expression(format!("ADD {count} {delta}"))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// [`Store::commit`](pushpool_store::Store::commit): see the module docs.
    pub(crate) async fn commit_transaction(&self, t: &Transaction) -> Result<Vec<FlowRun>> {
        t.check()?;
        // One outbox number per run write, kept across retries of the transaction.
        let mut seqs: Vec<Option<u64>> = vec![None; t.flow_runs.len()];
        for attempt in 0..MAX_ATTEMPTS {
            let mut items = Vec::new();
            let mut owners = Vec::new();
            let mut written = Vec::with_capacity(t.flow_runs.len());
            let mut dropped_tags = Vec::new();
            for (i, run) in t.flow_runs.iter().enumerate() {
                // The read tells whether the state changed (history item or not), and gives
                // `NotFound` and `VersionConflict` before any write. The `Put`'s condition is
                // what makes the write safe: versions only grow, so `version = :expected` at
                // commit means nothing was written since this read.
                let Some(current) = self.read_run_item(run.id).await? else {
                    return Err(StoreError::NotFound("Flow run not found".into()));
                };
                if req_u64(&current, VERSION)? != run.version {
                    return Err(StoreError::VersionConflict(run.id));
                }
                let seq = match seqs[i] {
                    Some(v) => v,
                    None => *seqs[i].insert(self.next_seq().await?),
                };
                let mut next = run.clone();
                next.version = run.version + 1;
                // Listing entries of new tags go first, outside the transaction (an entry is
                // a hint that listings re-check); those of dropped tags after it commits.
                let (added, dropped) = crate::runs::tag_changes(&current, &next)?;
                self.put_items(added).await?;
                dropped_tags.extend(dropped);
                for (j, item) in self
                    .run_update_items(&current, &next, seq)?
                    .into_iter()
                    .enumerate()
                {
                    owners.push(if j == 0 { Owner::Run(i) } else { Owner::Other });
                    items.push(item);
                }
                written.push(next);
            }
            for (i, change) in t.counters.iter().enumerate() {
                if change.delta == 0 {
                    continue;
                }
                if change.delta > 0 && change.limit.is_some_and(|l| l < change.delta) {
                    // No stored value can take this increment (nor 0).
                    return Err(StoreError::LimitReached(change.name.clone()));
                }
                items.push(self.counter_update(change)?);
                owners.push(Owner::Counter(i));
            }
            if items.is_empty() {
                return Ok(written);
            }
            match self.transact(items).await? {
                Tx::Committed => {
                    // Only clean-up: a stale entry is skipped when read, so a failure here
                    // does not fail the committed write.
                    if let Err(e) = self.batch_delete(dropped_tags).await {
                        tracing::warn!(error = %e, "deleting the listing entries of flow runs' dropped tags failed");
                    }
                    return Ok(written);
                }
                Tx::Conflicted => backoff(attempt).await,
                Tx::Failed(failed) => return Err(self.cancelled(t, &owners, &failed).await),
            }
        }
        Err(DynamoError::Contended {
            operation: "commit transaction",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The error of a transaction whose conditions `failed` (by item position): a stale or
    /// deleted run first, then a counter at its bound.
    async fn cancelled(&self, t: &Transaction, owners: &[Owner], failed: &[bool]) -> StoreError {
        let failed_owners = || {
            owners
                .iter()
                .enumerate()
                .filter(|(i, _)| Tx::failed_at(failed, *i))
                .map(|(_, o)| *o)
        };
        if let Some(i) = failed_owners().find_map(|o| match o {
            Owner::Run(i) => Some(i),
            _ => None,
        }) {
            let id = t.flow_runs[i].id;
            return match self.read_run_item(id).await {
                Ok(None) => StoreError::NotFound("Flow run not found".into()),
                Ok(Some(_)) => StoreError::VersionConflict(id),
                Err(e) => e,
            };
        }
        if let Some(i) = failed_owners().find_map(|o| match o {
            Owner::Counter(i) => Some(i),
            _ => None,
        }) {
            return StoreError::LimitReached(t.counters[i].name.clone());
        }
        DynamoError::Cancelled {
            operation: "commit transaction",
            codes: "ConditionalCheckFailed on an unconditional item".into(),
            transient: false,
        }
        .into()
    }

    /// [`Store::read_counter`](pushpool_store::Store::read_counter): strongly consistent.
    pub(crate) async fn counter_value(&self, name: &str) -> Result<i64> {
        let Some(item) = self.get(counter_item_key(name)).await? else {
            return Ok(0);
        };
        match item.get(COUNT) {
            None => Ok(0),
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
                StoreError::from(DynamoError::Malformed {
                    pk: "COUNTER".into(),
                    attribute: COUNT,
                    problem: "is not an integer",
                })
            }),
            Some(_) => Err(DynamoError::Malformed {
                pk: "COUNTER".into(),
                attribute: COUNT,
                problem: "is not a number",
            }
            .into()),
        }
    }
}
