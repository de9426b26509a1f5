//! Global concurrency limits and leases in SQLite: `documents` rows of kind
//! `concurrency_limit` (key1: the unique name) and `concurrency_lease` (key1: the id). A
//! limit's write version is the `version` of its JSON body; a [`ConcurrencyWrite`] checks
//! every condition and writes in one SQL transaction.

use pushpool_core::concurrency::{ConcurrencyLease, ConcurrencyLimit};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStore, from_json, is_unique_violation, sql, to_json};
use pushpool_store::concurrency::{ConcurrencyWrite, LEASE_NOT_FOUND, LIMIT_NOT_FOUND, LeaseWrite};
use pushpool_store::{Page, Result, StoreError};

const LIMIT: &str = "concurrency_limit";
const LEASE: &str = "concurrency_lease";

fn taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "A concurrency limit with the name '{name}' already exists."
    ))
}

/// The stored version and name of limit `id`, if it exists.
fn stored(tx: &rusqlite::Transaction<'_>, id: Uuid) -> Result<Option<(u64, String)>> {
    let body: Option<String> = tx
        .query_row(
            "SELECT body FROM documents WHERE kind = ?1 AND id = ?2",
            params![LIMIT, id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    body.map(|b| from_json::<ConcurrencyLimit>(&b).map(|l| (l.version, l.name)))
        .transpose()
}

impl SqliteStore {
    pub(super) async fn cl_create(&self, limit: &ConcurrencyLimit) -> Result<()> {
        self.insert_doc(
            LIMIT,
            limit.id,
            Some(limit.name.clone()),
            None,
            limit,
            taken(&limit.name).to_string(),
        )
        .await
    }

    pub(super) async fn cl_read(&self, id: Uuid) -> Result<ConcurrencyLimit> {
        self.get_by_id(LIMIT, id, LIMIT_NOT_FOUND.into()).await
    }

    pub(super) async fn cl_read_by_name(&self, name: &str) -> Result<ConcurrencyLimit> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'concurrency_limit' AND key1 = ?1",
            vec![name.into()],
            LIMIT_NOT_FOUND.into(),
        )
        .await
    }

    pub(super) async fn cl_list(&self) -> Result<Vec<ConcurrencyLimit>> {
        self.list_docs(LIMIT, Page::default()).await
    }

    pub(super) async fn cl_update(&self, limit: &ConcurrencyLimit) -> Result<()> {
        let mut next = limit.clone();
        next.version = limit.version + 1;
        let body = to_json(&next)?;
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            match stored(&tx, next.id)? {
                None => return Err(StoreError::NotFound(LIMIT_NOT_FOUND.into())),
                Some((v, _)) if v + 1 != next.version => {
                    return Err(StoreError::VersionConflict(next.id));
                }
                Some(_) => {}
            }
            tx.execute(
                "UPDATE documents SET key1 = ?3, body = ?4 WHERE kind = ?1 AND id = ?2",
                params![LIMIT, next.id.to_string(), next.name, body],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    taken(&next.name)
                } else {
                    sql(e)
                }
            })?;
            tx.commit().map_err(sql)
        })
        .await
    }

    pub(super) async fn cl_delete(&self, id: Uuid) -> Result<()> {
        self.delete_doc(LIMIT, "id", id.to_string(), LIMIT_NOT_FOUND.into())
            .await
    }

    pub(super) async fn cl_commit(&self, write: &ConcurrencyWrite) -> Result<()> {
        write.check()?;
        let mut limits = Vec::with_capacity(write.limits.len());
        for limit in &write.limits {
            let mut next = limit.clone();
            next.version = limit.version + 1;
            limits.push((limit.version, to_json(&next)?, next));
        }
        let mut leases = Vec::with_capacity(write.leases.len());
        for lease in &write.leases {
            let (LeaseWrite::Create(l) | LeaseWrite::Renew(l) | LeaseWrite::Delete(l)) = lease;
            leases.push((lease.clone(), to_json(l)?));
        }
        self.with(move |c| {
            // Dropping the transaction on an error rolls everything back.
            let tx = c.transaction().map_err(sql)?;
            for (expected, body, next) in &limits {
                match stored(&tx, next.id)? {
                    Some((v, name)) if v == *expected && name == next.name => {}
                    _ => return Err(StoreError::VersionConflict(next.id)),
                }
                tx.execute(
                    "UPDATE documents SET body = ?3 WHERE kind = ?1 AND id = ?2",
                    params![LIMIT, next.id.to_string(), body],
                )
                .map_err(sql)?;
            }
            for (lease, body) in &leases {
                let id = lease.id().to_string();
                let n = match lease {
                    LeaseWrite::Create(_) => tx
                        .execute(
                            "INSERT OR IGNORE INTO documents (kind, id, key1, key2, body) \
                             VALUES (?1, ?2, ?2, '', ?3)",
                            params![LEASE, id, body],
                        )
                        .map_err(sql)?,
                    LeaseWrite::Renew(_) => tx
                        .execute(
                            "UPDATE documents SET body = ?3 WHERE kind = ?1 AND id = ?2",
                            params![LEASE, id, body],
                        )
                        .map_err(sql)?,
                    LeaseWrite::Delete(_) => tx
                        .execute(
                            "DELETE FROM documents WHERE kind = ?1 AND id = ?2 AND body = ?3",
                            params![LEASE, id, body],
                        )
                        .map_err(sql)?,
                };
                if n == 0 {
                    return Err(StoreError::VersionConflict(lease.id()));
                }
            }
            tx.commit().map_err(sql)
        })
        .await
    }

    pub(super) async fn cl_read_lease(&self, id: Uuid) -> Result<ConcurrencyLease> {
        self.get_by_id(LEASE, id, LEASE_NOT_FOUND.into()).await
    }

    pub(super) async fn cl_list_leases(&self) -> Result<Vec<ConcurrencyLease>> {
        self.list_docs(LEASE, Page::default()).await
    }
}
