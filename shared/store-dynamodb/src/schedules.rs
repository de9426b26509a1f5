//! Scheduler marks ([`ScheduleMark`]): one item per deployment schedule in a single
//! partition, so a scheduler tick reads them all with one paged `Query`.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | schedule mark | `SCHEDMARKS` | `<deployment id>#<schedule id>` | `body` (the mark's JSON) |
//!
//! A mark is small (about 250 bytes): 10,000 schedules are 2.5 MB, three 1 MB query pages.
//! Writes are plain `PutItem`s (last writer wins): two schedulers that race write the same
//! mark, since the runs they made are the same (idempotency keys).

use pushpool_store::ScheduleMark;
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::{DynamoError, sdk};
use crate::item::{BODY, Expr, Item, PK, SK, decode, encode, key, s};
use crate::ops::{Query, key_of};

/// The partition of every mark.
const MARKS_PK: &str = "SCHEDMARKS";

fn mark_sk(deployment_id: Uuid, schedule_id: Uuid) -> String {
    format!("{deployment_id}#{schedule_id}")
}

impl DynamoStore {
    /// Every mark (one strongly consistent `Query`, paged).
    pub(crate) async fn list_marks(&self) -> Result<Vec<ScheduleMark>, DynamoError> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(MARKS_PK)));
        let query = Query {
            key_condition,
            expr,
            ..Query::default()
        };
        self.query(&query, None)
            .await?
            .iter()
            .map(|item| decode(item, BODY))
            .collect()
    }

    /// `PutItem` of the mark.
    pub(crate) async fn put_mark(&self, mark: &ScheduleMark) -> Result<(), DynamoError> {
        let mut item: Item = key(MARKS_PK, mark_sk(mark.deployment_id, mark.schedule_id));
        item.insert(BODY.into(), s(encode(mark, "schedule mark")?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    /// Deletes the marks of one deployment: a `Query` of its `sk` prefix, then batch deletes.
    pub(crate) async fn delete_marks(&self, deployment_id: Uuid) -> Result<(), DynamoError> {
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name(PK),
            expr.value(s(MARKS_PK)),
            expr.name(SK),
            expr.value(s(format!("{deployment_id}#")))
        );
        let query = Query {
            key_condition,
            projection: Some(format!("{}, {}", expr.name(PK), expr.name(SK))),
            expr,
            ..Query::default()
        };
        let keys: Vec<Item> = self.query(&query, None).await?.iter().map(key_of).collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.batch_delete(keys).await
    }
}
