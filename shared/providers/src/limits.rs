//! The documented limits of the push pool types' job variables, as pure checks (no SDK, no
//! I/O): [`ecs`] (Fargate task sizes, names), [`cloud_run`] (vCPU/memory pairs, timeouts,
//! regions) and [`aci`] (vCPU, memory, GPUs, Azure names). The adapters
//! (`pushpool-provider-ecs`, `pushpool-provider-cloud-run`, `pushpool-provider-aci`) check
//! the same rules again on the rendered job configuration; a host that only writes pools,
//! deployments and flow runs (the API Lambda function) registers [`limit_checks`] instead of
//! the adapters and links none of their SDKs.
//!
//! [`Unavailable`] stands for a pool type whose adapter a build left out (the embedded
//! binary's `ecs`, `cloud-run` and `aci` cargo features).

pub mod aci;
pub mod cloud_run;
pub mod ecs;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::{IgnoredVariables, Job, JobStatus, Provider, ProviderError, Providers};

/// The pool type of AWS ECS push pools.
pub const ECS_PUSH: &str = "ecs:push";
/// The pool type of Google Cloud Run v2 push pools.
pub const CLOUD_RUN_PUSH: &str = "cloud-run-v2:push";
/// The pool type of Azure Container Instances push pools.
pub const ACI_PUSH: &str = "azure-container-instance:push";

/// The job-variable checks of every push pool type ([`ECS_PUSH`], [`CLOUD_RUN_PUSH`],
/// [`ACI_PUSH`]), registered by pool type: [`Provider::check_job_variables`] and
/// [`Provider::ignored_job_variables`] answer as the real adapters do, while `submit`,
/// `status` and `cancel` fail permanently (a host that registers these submits nothing:
/// the API Lambda function, whose runs the submitter function submits).
pub fn limit_checks() -> Providers {
    Providers::new()
        .with(
            ECS_PUSH,
            Arc::new(LimitChecks {
                pool_type: ECS_PUSH,
                check: ecs::check_variables,
                ignored: ecs::ignored_variables,
            }),
        )
        .with(
            CLOUD_RUN_PUSH,
            Arc::new(LimitChecks {
                pool_type: CLOUD_RUN_PUSH,
                check: cloud_run::check_variables,
                ignored: |_| Vec::new(),
            }),
        )
        .with(
            ACI_PUSH,
            Arc::new(LimitChecks {
                pool_type: ACI_PUSH,
                check: aci::check_variables,
                ignored: aci::ignored_variables,
            }),
        )
}

type Check = fn(&Map<String, Value>) -> Result<(), ProviderError>;
type Ignored = fn(&Map<String, Value>) -> Vec<IgnoredVariables>;

/// A pool type's job-variable checks without its adapter (see [`limit_checks`]).
struct LimitChecks {
    pool_type: &'static str,
    check: Check,
    ignored: Ignored,
}

impl LimitChecks {
    fn refuse(&self) -> ProviderError {
        ProviderError::permanent(format!(
            "this pushpool process only checks {} job variables; it does not run their jobs",
            self.pool_type
        ))
    }
}

#[async_trait]
impl Provider for LimitChecks {
    async fn submit(&self, _job: &Job) -> Result<String, ProviderError> {
        Err(self.refuse())
    }

    async fn status(&self, _job: &Job, _pid: &str) -> Result<JobStatus, ProviderError> {
        Err(self.refuse())
    }

    async fn cancel(&self, _job: &Job, _pid: &str) -> Result<(), ProviderError> {
        Err(self.refuse())
    }

    fn check_job_variables(&self, variables: &Map<String, Value>) -> Result<(), ProviderError> {
        (self.check)(variables)
    }

    fn ignored_job_variables(&self, variables: &Map<String, Value>) -> Vec<IgnoredVariables> {
        (self.ignored)(variables)
    }
}

/// The provider of a pool type whose adapter this build left out (the embedded binary built
/// without its `ecs`, `cloud-run` or `aci` cargo feature). Every use is refused with a
/// message naming the pool type and the feature ([`Unavailable::reason`]): creating a work
/// pool of that type is a 422 (the API asks [`Provider::unavailable`]), so are deployments
/// and flow runs of an existing pool of that type ([`Provider::check_job_variables`]), and
/// a run that reaches submission anyway ends CRASHED with the same words.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pool_type: String,
    feature: String,
}

impl Unavailable {
    /// The stand-in for `pool_type`, whose adapter needs cargo feature `feature`.
    pub fn new(pool_type: &str, feature: &str) -> Self {
        Self {
            pool_type: pool_type.to_owned(),
            feature: feature.to_owned(),
        }
    }

    /// `work pool type "ecs:push" is not available: this pushpool was built without its
    /// "ecs" feature (cargo build -p pushpool --features ecs)`.
    pub fn reason(&self) -> String {
        format!(
            "work pool type {:?} is not available: this pushpool was built without its {:?} \
             feature (cargo build -p pushpool --features {})",
            self.pool_type, self.feature, self.feature
        )
    }
}

#[async_trait]
impl Provider for Unavailable {
    async fn submit(&self, _job: &Job) -> Result<String, ProviderError> {
        Err(ProviderError::permanent(self.reason()))
    }

    async fn status(&self, _job: &Job, _pid: &str) -> Result<JobStatus, ProviderError> {
        Err(ProviderError::permanent(self.reason()))
    }

    async fn cancel(&self, _job: &Job, _pid: &str) -> Result<(), ProviderError> {
        Err(ProviderError::permanent(self.reason()))
    }

    fn check_job_variables(&self, _variables: &Map<String, Value>) -> Result<(), ProviderError> {
        Err(ProviderError::permanent(self.reason()))
    }

    fn unavailable(&self) -> Option<String> {
        Some(self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn limit_checks_answer_as_the_adapters_do() {
        let checks = limit_checks();
        let ecs = checks.get(ECS_PUSH).unwrap();
        assert_eq!(
            ecs.check_job_variables(&vars(json!({"cpu": 1024, "memory": 1000})))
                .unwrap_err()
                .to_string(),
            "invalid job configuration: memory: Fargate does not allow memory 1000 MiB with cpu \
             1024; allowed memory with cpu 1024: 2048 to 8192 MiB in steps of 1024 MiB"
        );
        assert_eq!(
            ecs.ignored_job_variables(&vars(json!({"task_definition_arn": "arn:x", "image": "i"})))
                [0]
            .names,
            vec!["image".to_owned()]
        );
        let cloud_run = checks.get(CLOUD_RUN_PUSH).unwrap();
        assert!(
            cloud_run
                .check_job_variables(&vars(json!({"cpu": "3"})))
                .is_err()
        );
        let aci = checks.get(ACI_PUSH).unwrap();
        assert_eq!(
            aci.check_job_variables(&vars(json!({"cpu": 8})))
                .unwrap_err()
                .to_string()
                .split(" (")
                .next()
                .unwrap(),
            "invalid job configuration: cpu: 8 vCPU is outside 0.1–4 vCPU"
        );
        assert!(checks.get("process").is_none());
        assert!(ecs.unavailable().is_none());
    }

    #[tokio::test]
    async fn limit_checks_submit_nothing() {
        let job = Job {
            flow_run_id: uuid::Uuid::nil(),
            flow_run_name: "r".into(),
            pool_type: ECS_PUSH.into(),
            configuration: Map::new(),
            idempotency_key: "k".into(),
        };
        let err = limit_checks()
            .get(ECS_PUSH)
            .unwrap()
            .submit(&job)
            .await
            .unwrap_err();
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "this pushpool process only checks ecs:push job variables; it does not run their jobs"
        );
    }

    #[test]
    fn unavailable_names_the_pool_type_and_the_feature() {
        let p = Unavailable::new("cloud-run-v2:push", "cloud-run");
        let expected = "work pool type \"cloud-run-v2:push\" is not available: this pushpool was \
                        built without its \"cloud-run\" feature (cargo build -p pushpool \
                        --features cloud-run)";
        assert_eq!(p.unavailable().as_deref(), Some(expected));
        assert_eq!(
            p.check_job_variables(&Map::new()).unwrap_err().to_string(),
            expected
        );
    }

    #[test]
    fn usable_pool_types_leave_out_the_unavailable_ones() {
        let providers = crate::Providers::new().with_all(limit_checks()).with(
            "cloud-run-v2:push",
            std::sync::Arc::new(Unavailable::new("cloud-run-v2:push", "cloud-run")),
        );
        assert_eq!(
            providers.usable_pool_types(),
            ["azure-container-instance:push", "ecs:push"]
        );
    }
}
