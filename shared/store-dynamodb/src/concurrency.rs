//! Global concurrency limits and their leases in the table: each in one partition, read
//! whole with one paged `Query` (limits are a workspace's few; leases as many as the slots
//! held).
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | limit | `CONCLIMIT` | its name (unique by the key) | `id`, `version`, `body` (JSON) |
//! | lease | `CONCLEASE` | its id | `body` (JSON) |
//!
//! Every limit write is conditioned on the stored `version` and `id` (a limit deleted and
//! created again under the same name is another limit); a [`ConcurrencyWrite`] is one
//! `TransactWriteItems`.

use pushpool_core::concurrency::{ConcurrencyLease, ConcurrencyLimit};
use pushpool_store::StoreError;
use pushpool_store::concurrency::{ConcurrencyWrite, LEASE_NOT_FOUND, LIMIT_NOT_FOUND, LeaseWrite};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{BODY, Cond, Expr, ID, Item, PK, VERSION, decode, encode, key, n, s};
use crate::ops::{MAX_ATTEMPTS, Query, Tx, backoff};

type Result<T> = std::result::Result<T, StoreError>;

const LIMITS_PK: &str = "CONCLIMIT";
const LEASES_PK: &str = "CONCLEASE";

fn taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "A concurrency limit with the name '{name}' already exists."
    ))
}

fn contended(operation: &'static str) -> StoreError {
    DynamoError::Contended {
        operation,
        attempts: MAX_ATTEMPTS,
    }
    .into()
}

fn limit_item(limit: &ConcurrencyLimit) -> std::result::Result<Item, DynamoError> {
    let mut item = key(LIMITS_PK, limit.name.clone());
    item.insert(ID.into(), s(limit.id.to_string()));
    item.insert(VERSION.into(), n(limit.version));
    item.insert(BODY.into(), s(encode(limit, "concurrency limit")?));
    Ok(item)
}

fn lease_item(lease: &ConcurrencyLease) -> std::result::Result<Item, DynamoError> {
    let mut item = key(LEASES_PK, lease.id.to_string());
    item.insert(BODY.into(), s(encode(lease, "concurrency lease")?));
    Ok(item)
}

/// The stored limit is the one read: same id, same version.
fn unchanged(limit: &ConcurrencyLimit) -> Cond {
    Cond::equals(&[(ID, s(limit.id.to_string())), (VERSION, n(limit.version))])
}

impl DynamoStore {
    async fn all_bodies<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(pk)));
        let query = Query {
            key_condition,
            expr,
            ..Query::default()
        };
        Ok(self
            .query(&query, None)
            .await?
            .iter()
            .map(|item| decode(item, BODY))
            .collect::<std::result::Result<Vec<T>, _>>()?)
    }

    pub(crate) async fn cl_create(&self, limit: &ConcurrencyLimit) -> Result<()> {
        let items = vec![self.put(limit_item(limit)?, Some(Cond::absent()))?];
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(_) => return Err(taken(&limit.name)),
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("create concurrency limit"))
    }

    pub(crate) async fn cl_read_by_name(&self, name: &str) -> Result<ConcurrencyLimit> {
        match self.get(key(LIMITS_PK, name.to_owned())).await? {
            Some(item) => Ok(decode(&item, BODY)?),
            None => Err(StoreError::NotFound(LIMIT_NOT_FOUND.into())),
        }
    }

    pub(crate) async fn cl_list(&self) -> Result<Vec<ConcurrencyLimit>> {
        self.all_bodies(LIMITS_PK).await
    }

    pub(crate) async fn cl_read(&self, id: Uuid) -> Result<ConcurrencyLimit> {
        self.cl_list()
            .await?
            .into_iter()
            .find(|l| l.id == id)
            .ok_or_else(|| StoreError::NotFound(LIMIT_NOT_FOUND.into()))
    }

    pub(crate) async fn cl_update(&self, limit: &ConcurrencyLimit) -> Result<()> {
        let current = self.cl_read(limit.id).await?;
        if current.version != limit.version {
            return Err(StoreError::VersionConflict(limit.id));
        }
        let mut next = limit.clone();
        next.version = limit.version + 1;
        let renamed = current.name != next.name;
        let items = if renamed {
            vec![
                self.delete(key(LIMITS_PK, current.name.clone()), Some(unchanged(limit)))?,
                self.put(limit_item(&next)?, Some(Cond::absent()))?,
            ]
        } else {
            vec![self.put(limit_item(&next)?, Some(unchanged(limit)))?]
        };
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(failed) if renamed && Tx::failed_at(&failed, 1) => {
                    return Err(taken(&next.name));
                }
                Tx::Failed(_) => return Err(StoreError::VersionConflict(limit.id)),
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("update concurrency limit"))
    }

    pub(crate) async fn cl_delete(&self, id: Uuid) -> Result<()> {
        for attempt in 0..MAX_ATTEMPTS {
            let current = self.cl_read(id).await?;
            let cond = Cond::equals(&[(ID, s(id.to_string()))]);
            let items = vec![self.delete(key(LIMITS_PK, current.name.clone()), Some(cond))?];
            match self.transact(items).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(_) | Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("delete concurrency limit"))
    }

    pub(crate) async fn cl_commit(&self, write: &ConcurrencyWrite) -> Result<()> {
        write.check()?;
        if write.limits.is_empty() && write.leases.is_empty() {
            return Ok(());
        }
        let mut items = Vec::with_capacity(write.limits.len() + write.leases.len());
        let mut ids = Vec::with_capacity(items.capacity());
        for limit in &write.limits {
            let mut next = limit.clone();
            next.version = limit.version + 1;
            items.push(self.put(limit_item(&next)?, Some(unchanged(limit)))?);
            ids.push(limit.id);
        }
        for lease in &write.leases {
            let item = match lease {
                LeaseWrite::Create(l) => self.put(lease_item(l)?, Some(Cond::absent()))?,
                LeaseWrite::Renew(l) => self.put(lease_item(l)?, Some(Cond::equals(&[])))?,
                LeaseWrite::Delete(l) => self.delete(
                    key(LEASES_PK, l.id.to_string()),
                    Some(Cond::equals(&[(BODY, s(encode(l, "concurrency lease")?))])),
                )?,
            };
            items.push(item);
            ids.push(lease.id());
        }
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(failed) => {
                    let at = (0..ids.len())
                        .find(|i| Tx::failed_at(&failed, *i))
                        .unwrap_or(0);
                    return Err(StoreError::VersionConflict(ids[at]));
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("write concurrency slots"))
    }

    pub(crate) async fn cl_read_lease(&self, id: Uuid) -> Result<ConcurrencyLease> {
        match self.get(key(LEASES_PK, id.to_string())).await? {
            Some(item) => Ok(decode(&item, BODY)?),
            None => Err(StoreError::NotFound(LEASE_NOT_FOUND.into())),
        }
    }

    pub(crate) async fn cl_list_leases(&self) -> Result<Vec<ConcurrencyLease>> {
        self.all_bodies(LEASES_PK).await
    }
}
