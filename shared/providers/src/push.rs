//! The providers every pushpool registers, by pool type: the hosts' wiring (the Lambda
//! functions and the embedded binary call [`push_providers`] in their `main` with the
//! process's one `SdkConfig`). It lives here, beside the adapters it builds, so that the
//! service layer holds no provider SDK configuration.

use std::sync::Arc;

use crate::aci::{AciProvider, AciSettings};
use crate::cloud_run::{CloudRunProvider, CloudRunSettings};
use crate::ecs::EcsProvider;
use crate::{Leases, ProviderError, Providers};

/// [`push_providers`] whose ECS provider holds a lease of the task definition family while
/// it registers (see [`EcsProvider::with_leases`]; `pushpool_service::StoreLeases` takes the
/// leases in the store): what the Lambda functions use, whose concurrent invocations share
/// one table.
///
/// # Errors
/// As [`push_providers`].
pub fn push_providers_with_leases(
    aws: aws_config::SdkConfig,
    leases: Arc<dyn Leases>,
) -> Result<Providers, ProviderError> {
    providers(aws, Some(leases))
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
