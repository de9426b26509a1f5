//! What the store keeps of global concurrency limits and their leases
//! ([`pushpool_core::concurrency`]), and the one atomic write slots go through
//! ([`ConcurrencyWrite`], [`crate::Store::commit_concurrency`]).

use pushpool_core::concurrency::{ConcurrencyLease, ConcurrencyLimit};

/// The message of a missing limit (Prefect's `Concurrency Limit not found`).
pub const LIMIT_NOT_FOUND: &str = "Concurrency Limit not found";

/// The message of a missing lease.
pub const LEASE_NOT_FOUND: &str = "Lease not found";

/// A lease change of a [`ConcurrencyWrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseWrite {
    /// Creates the lease (its id must be new).
    Create(ConcurrencyLease),
    /// Replaces the stored lease of the same id (a renewal), which must exist.
    Renew(ConcurrencyLease),
    /// Deletes the lease, only if the stored one still equals it (not renewed nor released
    /// since it was read).
    Delete(ConcurrencyLease),
}

impl LeaseWrite {
    /// The lease's id.
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Self::Create(l) | Self::Renew(l) | Self::Delete(l) => l.id,
        }
    }
}

/// Limit and lease writes made all at once, or not at all (one SQL transaction in SQLite,
/// one `TransactWriteItems` on DynamoDB): how slots are taken and given back atomically.
///
/// - `limits`: each is written only if the stored limit of its id still has its `version`
///   and its `name` (a write never renames: see [`crate::Store::update_concurrency_limit`]),
///   and is stored with `version + 1`.
/// - `leases`: as each [`LeaseWrite`] says.
///
/// Any condition that fails fails the whole write with [`crate::StoreError::VersionConflict`]
/// carrying the limit's or lease's id (deleted ones included): the caller reads again and
/// decides again. At most [`ConcurrencyWrite::MAX_ITEMS`] limits and leases together
/// (`Backend` otherwise), DynamoDB's `TransactWriteItems` limit; one id at most once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConcurrencyWrite {
    /// Limits, each conditioned on its version.
    pub limits: Vec<ConcurrencyLimit>,
    /// Lease changes.
    pub leases: Vec<LeaseWrite>,
}

impl ConcurrencyWrite {
    /// The most limits and leases one write may hold.
    pub const MAX_ITEMS: usize = 100;

    /// Checks the size and that no limit or lease appears twice.
    ///
    /// # Errors
    /// [`crate::StoreError::Backend`] saying which rule is broken.
    pub fn check(&self) -> crate::Result<()> {
        if self.limits.len() + self.leases.len() > Self::MAX_ITEMS {
            return Err(crate::StoreError::Backend(
                format!(
                    "a concurrency write of {} limits and {} leases is over the {} items allowed",
                    self.limits.len(),
                    self.leases.len(),
                    Self::MAX_ITEMS
                )
                .into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let ids = self
            .limits
            .iter()
            .map(|l| l.id)
            .chain(self.leases.iter().map(LeaseWrite::id));
        for id in ids {
            if !seen.insert(id) {
                return Err(crate::StoreError::Backend(
                    format!("a concurrency write names {id} twice").into(),
                ));
            }
        }
        Ok(())
    }
}
