//! Capacity accounting for benches and tests: what the store's DynamoDB calls read and wrote,
//! in items, bytes and capacity units computed by DynamoDB's documented rules, beside what
//! the endpoint reported (`ReturnConsumedCapacity`).
//!
//! Why compute: moto (5.x) reports fixed figures whatever the item sizes (0.5 per `Query`,
//! 1 per `GetItem`, one per key of a `BatchGetItem`, 2 per item of a transaction), so its
//! `ConsumedCapacity` says how many calls were made, not what they would cost on AWS. The
//! rules applied here (DynamoDB developer guide, "Read/write capacity mode" and "Item
//! sizes"):
//! - an item's size is the sum, over its attributes, of the name's UTF-8 length plus the
//!   value's size (a string: its UTF-8 length; a number: 1 byte per 2 significant digits,
//!   plus 1);
//! - `GetItem` / `BatchGetItem`: per item, its size rounded up to 4 KB, 1 unit per 4 KB
//!   strongly consistent (0.5 eventually); missing items are not counted (the store reads
//!   items it was told exist);
//! - `Query`: the sum of the sizes of the items it *read* (before a `FilterExpression`),
//!   rounded up to 4 KB once per call, 1 unit per 4 KB strongly consistent (table), 0.5
//!   eventually (index; an index item is the index keys, the table keys and the projected
//!   attributes). Calls with a filter or a projection return fewer bytes than they read:
//!   [`Usage::understated_reads`] counts them, and their units are a lower bound;
//! - writes: per item, its size rounded up to 1 KB, 1 unit per KB, 2 in a transaction;
//!   deletes and the outbox counter's `UpdateItem` count 1 (items under 1 KB). Writes to
//!   global secondary indexes are not included (they depend on the old item too): the
//!   bench works them out from the item before and after each write.

use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};

use crate::item::Item;

/// What a metered store consumed since it was made or last [`reset`](crate::DynamoStore::reset_usage).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Read calls (`GetItem`, `Query` pages, `BatchGetItem`).
    pub read_calls: u64,
    /// Items read: what queries scanned (`ScannedCount`) plus the items gets returned.
    pub items_read: u64,
    /// Bytes of the items read (DynamoDB's item size rules).
    pub bytes_read: u64,
    /// Read capacity units by DynamoDB's rules.
    pub read_units: f64,
    /// Read capacity units as the endpoint reported them.
    pub reported_read_units: f64,
    /// Query calls with a filter or a projection: their `read_units` are a lower bound.
    pub understated_reads: u64,
    /// Write calls (transactions, `UpdateItem`, `BatchWriteItem`).
    pub write_calls: u64,
    /// Items written (puts, deletes, updates).
    pub items_written: u64,
    /// Bytes of the items put (DynamoDB's item size rules).
    pub bytes_written: u64,
    /// Write capacity units of the table by DynamoDB's rules (indexes excluded).
    pub write_units: f64,
    /// Write capacity units as the endpoint reported them.
    pub reported_write_units: f64,
}

/// One read, as the meter sees it.
pub(crate) enum Read<'a> {
    /// Items returned by `GetItem` / `BatchGetItem`.
    Items {
        consistent: bool,
        items: Vec<&'a Item>,
    },
    /// A query page.
    Query {
        consistent: bool,
        scanned: u64,
        items: Vec<&'a Item>,
        filtered: bool,
    },
}

/// The accumulator a metered store shares between its clones.
#[derive(Debug, Default)]
pub(crate) struct Meter(Mutex<Usage>);

/// The size of an attribute value by DynamoDB's rules.
pub fn value_size(v: &AttributeValue) -> u64 {
    match v {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => {
            let digits = n
                .trim_start_matches('-')
                .replace('.', "")
                .trim_start_matches('0')
                .trim_end_matches('0')
                .len()
                .max(1) as u64;
            digits.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(|s| s.len() as u64).sum::<u64>() + 3,
        AttributeValue::L(v) => 3 + v.iter().map(|x| value_size(x) + 1).sum::<u64>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| k.len() as u64 + value_size(x) + 1)
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// The size of an item by DynamoDB's rules: attribute names plus values.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(k, v)| k.len() as u64 + value_size(v))
        .sum()
}

fn units(bytes: u64, block: u64) -> f64 {
    bytes.div_ceil(block).max(1) as f64
}

impl Meter {
    pub(crate) fn usage(&self) -> Usage {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn reset(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Usage::default();
    }

    pub(crate) fn read(&self, read: Read<'_>, reported: Option<&ConsumedCapacity>) {
        let mut u = self.0.lock().unwrap_or_else(|e| e.into_inner());
        u.read_calls += 1;
        u.reported_read_units += reported
            .and_then(ConsumedCapacity::capacity_units)
            .unwrap_or(0.0);
        match read {
            Read::Items { consistent, items } => {
                let factor = if consistent { 1.0 } else { 0.5 };
                for item in items {
                    let size = item_size(item);
                    u.items_read += 1;
                    u.bytes_read += size;
                    u.read_units += factor * units(size, 4096);
                }
            }
            Read::Query {
                consistent,
                scanned,
                items,
                filtered,
            } => {
                let factor = if consistent { 1.0 } else { 0.5 };
                let size: u64 = items.iter().map(|i| item_size(i)).sum();
                u.items_read += scanned;
                u.bytes_read += size;
                u.read_units += factor * units(size, 4096);
                if filtered {
                    u.understated_reads += 1;
                }
            }
        }
    }

    pub(crate) fn write(
        &self,
        puts: &[&Item],
        others: u64,
        transactional: bool,
        reported: Option<&ConsumedCapacity>,
    ) {
        let mut u = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let factor = if transactional { 2.0 } else { 1.0 };
        u.write_calls += 1;
        u.reported_write_units += reported
            .and_then(ConsumedCapacity::capacity_units)
            .unwrap_or(0.0);
        for item in puts {
            let size = item_size(item);
            u.items_written += 1;
            u.bytes_written += size;
            u.write_units += factor * units(size, 1024);
        }
        u.items_written += others;
        u.write_units += factor * others as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(value_size(&AttributeValue::S("abc".into())), 3);
        assert_eq!(value_size(&AttributeValue::N("7".into())), 2);
        assert_eq!(value_size(&AttributeValue::N("1234".into())), 3);
        assert_eq!(value_size(&AttributeValue::N("100".into())), 2);
        let item = Item::from([
            ("pk".to_owned(), AttributeValue::S("RUN#1".into())),
            ("version".to_owned(), AttributeValue::N("12".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 5 + 7 + 2);
        assert_eq!(units(1024, 1024), 1.0);
        assert_eq!(units(1025, 1024), 2.0);
        assert_eq!(units(0, 4096), 1.0);
    }
}
