//! The providers every pushpool registers, by pool type.

use std::sync::Arc;

use pushpool_providers::aci::{AciProvider, AciSettings};
use pushpool_providers::cloud_run::{CloudRunProvider, CloudRunSettings};
use pushpool_providers::ecs::EcsProvider;
use pushpool_providers::{Leases, ProviderError, Providers};
use pushpool_store::Store;

/// [`Leases`] over a store's leases ([`Store::try_acquire_lease`]): what makes the ECS
/// provider's one-registration-per-family hold across processes (concurrent Lambda
/// invocations share the DynamoDB table).
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

/// [`push_providers`] whose ECS provider holds a lease of the task definition family in
/// `store` while it registers (see [`EcsProvider::with_leases`]): what every host uses.
///
/// # Errors
/// As [`push_providers`].
pub fn push_providers_with_leases(
    aws: aws_config::SdkConfig,
    store: Arc<dyn Store>,
) -> Result<Providers, ProviderError> {
    providers(aws, Some(Arc::new(StoreLeases(store))))
}

/// The push providers with their real endpoints: `ecs:push` (over `aws`, the process's AWS
/// configuration), `cloud-run-v2:push` (`https://run.googleapis.com/`) and
/// `azure-container-instance:push` (`https://management.azure.com`). Credentials come from
/// each pool's credentials block, else from the platform's default chain. The embedded
/// binary adds `process`; the Lambda functions use exactly these.
///
/// # Errors
/// When an HTTP client cannot be built (no TLS backend).
pub fn push_providers(aws: aws_config::SdkConfig) -> Result<Providers, ProviderError> {
    providers(aws, None)
}

fn providers(
    aws: aws_config::SdkConfig,
    leases: Option<Arc<dyn Leases>>,
) -> Result<Providers, ProviderError> {
    let mut ecs = EcsProvider::new(aws);
    if let Some(leases) = leases {
        ecs = ecs.with_leases(leases);
    }
    Ok(Providers::new()
        .with("ecs:push", Arc::new(ecs))
        .with(
            "cloud-run-v2:push",
            Arc::new(CloudRunProvider::new(CloudRunSettings::default())?),
        )
        .with(
            "azure-container-instance:push",
            Arc::new(AciProvider::new(AciSettings::default())),
        ))
}
