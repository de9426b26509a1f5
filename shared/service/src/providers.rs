//! The providers every pushpool registers, by pool type.

use std::sync::Arc;

use pushpool_providers::aci::{AciProvider, AciSettings};
use pushpool_providers::cloud_run::{CloudRunProvider, CloudRunSettings};
use pushpool_providers::ecs::EcsProvider;
use pushpool_providers::{ProviderError, Providers};

/// The push providers with their real endpoints: `ecs:push` (over `aws`, the process's AWS
/// configuration), `cloud-run-v2:push` (`https://run.googleapis.com/`) and
/// `azure-container-instance:push` (`https://management.azure.com`). Credentials come from
/// each pool's credentials block, else from the platform's default chain. The embedded
/// binary adds `process`; the Lambda functions use exactly these.
///
/// # Errors
/// When an HTTP client cannot be built (no TLS backend).
pub fn push_providers(aws: aws_config::SdkConfig) -> Result<Providers, ProviderError> {
    Ok(Providers::new()
        .with("ecs:push", Arc::new(EcsProvider::new(aws)))
        .with(
            "cloud-run-v2:push",
            Arc::new(CloudRunProvider::new(CloudRunSettings::default())?),
        )
        .with(
            "azure-container-instance:push",
            Arc::new(AciProvider::new(AciSettings::default())),
        ))
}
