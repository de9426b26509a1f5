//! [`StoreLeases`]: the providers' [`Leases`] port over the store's leases.

use std::sync::Arc;

use pushpool_providers::Leases;
use pushpool_store::Store;

/// [`Leases`] over a store's leases ([`Store::try_acquire_lease`]): what makes the ECS
/// provider's one-registration-per-family hold across processes (concurrent Lambda
/// invocations share the DynamoDB table). Hosts pass it to
/// `pushpool_push_providers::push_providers_with_leases`.
pub struct StoreLeases(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl Leases for StoreLeases {
    async fn try_acquire(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.try_acquire_lease(key, holder, ttl).await?)
    }

    async fn release(
        &self,
        key: &str,
        holder: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.release_lease(key, holder).await?)
    }
}
