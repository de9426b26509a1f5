//! The providers every pushpool registers, by pool type: the hosts' wiring (the submitter and
//! reconciler Lambda functions and the embedded binary call [`push_providers`] in their `main`
//! with the process's one `SdkConfig`). It lives in its own crate, beside the adapters it
//! builds, so that the service layer holds no provider SDK configuration and the API Lambda
//! function (which only checks job variables, with `pushpool_providers::limit_checks`) links
//! none of them.
//!
//! Each adapter is behind a cargo feature, all on by default: `ecs`
//! (`pushpool-provider-ecs`), `cloud-run` (`pushpool-provider-cloud-run`) and `aci`
//! (`pushpool-provider-aci`). A pool type whose feature is off is registered as
//! [`pushpool_providers::Unavailable`], which refuses it with a message naming the pool type
//! and the feature.

use std::sync::Arc;

#[cfg(feature = "aci")]
use pushpool_provider_aci::{AciProvider, AciSettings};
#[cfg(feature = "cloud-run")]
use pushpool_provider_cloud_run::{CloudRunProvider, CloudRunSettings};
#[cfg(feature = "ecs")]
use pushpool_provider_ecs::EcsProvider;
#[cfg(not(all(feature = "ecs", feature = "cloud-run", feature = "aci")))]
use pushpool_providers::Unavailable;
use pushpool_providers::limits::{ACI_PUSH, CLOUD_RUN_PUSH, ECS_PUSH};
use pushpool_providers::{Leases, ProviderError, Providers};

/// [`push_providers`] whose ECS provider holds a lease of the task definition family while
/// it registers (see `EcsProvider::with_leases`; `pushpool_service::StoreLeases` takes the
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
/// binary adds `process`; the submitter and reconciler functions use exactly these. A pool
/// type whose cargo feature is off gets [`pushpool_providers::Unavailable`].
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
    let providers = Providers::new();

    #[cfg(feature = "ecs")]
    let providers = {
        let mut ecs = EcsProvider::new(aws);
        if let Some(leases) = leases {
            ecs = ecs.with_leases(leases);
        }
        providers.with(ECS_PUSH, Arc::new(ecs))
    };
    #[cfg(not(feature = "ecs"))]
    let providers = {
        let _ = (aws, leases);
        providers.with(ECS_PUSH, Arc::new(Unavailable::new(ECS_PUSH, "ecs")))
    };

    #[cfg(feature = "cloud-run")]
    let providers = providers.with(
        CLOUD_RUN_PUSH,
        Arc::new(CloudRunProvider::new(CloudRunSettings::default())?),
    );
    #[cfg(not(feature = "cloud-run"))]
    let providers = providers.with(
        CLOUD_RUN_PUSH,
        Arc::new(Unavailable::new(CLOUD_RUN_PUSH, "cloud-run")),
    );

    #[cfg(feature = "aci")]
    let providers = providers.with(ACI_PUSH, Arc::new(AciProvider::new(AciSettings::default())));
    #[cfg(not(feature = "aci"))]
    let providers = providers.with(ACI_PUSH, Arc::new(Unavailable::new(ACI_PUSH, "aci")));

    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every push pool type has a provider; those of the features this build left out say
    /// why they cannot be used.
    #[test]
    fn every_push_pool_type_is_registered_and_only_the_compiled_out_ones_are_unavailable() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let providers = push_providers(sdk).unwrap();
        for (pool_type, feature, on) in [
            (ECS_PUSH, "ecs", cfg!(feature = "ecs")),
            (CLOUD_RUN_PUSH, "cloud-run", cfg!(feature = "cloud-run")),
            (ACI_PUSH, "aci", cfg!(feature = "aci")),
        ] {
            assert!(providers.get(pool_type).is_some(), "{pool_type}");
            let expected = (!on).then(|| {
                format!(
                    "work pool type {pool_type:?} is not available: this pushpool was built \
                     without its {feature:?} feature (cargo build -p pushpool --features {feature})"
                )
            });
            assert_eq!(providers.unavailable(pool_type), expected, "{pool_type}");
        }
        assert!(providers.get("process").is_none());
    }
}
