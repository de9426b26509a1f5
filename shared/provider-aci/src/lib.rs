//! The `azure-container-instance:push` provider: a flow run becomes an Azure Container
//! Instances container group, created through Azure Resource Manager (`Microsoft.ContainerInstance`,
//! api-version `2023-05-01`) with an Entra ID token of the job's service principal. It does
//! what prefect-azure 0.4.13's `AzureContainerWorker` does for one run, without a worker.
//!
//! Spec: `shared/reference/specs/azure/` (`SUMMARY.md`; the model of
//! azure-mgmt-containerinstance 10.1.0; the official 2025-09-01 examples).
//!
//! # Submit
//! 1. **Configuration.** The job configuration is Prefect's rendered ACI job configuration
//!    (the `job_configuration` of the `azure-container-instance:push` template). It is read
//!    and checked before any call (`config`), with an
//!    [`ProviderError::InvalidConfiguration`] naming the field: `subscription_id` (a GUID),
//!    `resource_group_name` (ARM's rules), `image`, the `arm_template` (its one
//!    `Microsoft.ContainerInstance/containerGroups` resource becomes the request body, as
//!    prefect-azure's `prepare_for_flow_run` prepares it: see `config`), the CPU (vCPU) and
//!    memory (GB) requests against [`limits`], the GPU request (`gpu_count` and `gpu_sku`
//!    together, [`limits::check_gpu`]: sent as the flow container's `resources.requests.gpu`
//!    `{count, sku}`, which prefect-azure 0.4.13 never sends, so a GPU flow would run on CPU),
//!    `aci_credentials` (client id, tenant id and
//!    client secret: all three are needed).
//! 2. **Name.** The container group is named after the job's `name` (the flow run's name)
//!    plus 8 hex digits of SHA-256 of the submission's idempotency key
//!    ([`container_group_name`]): 1–63 lowercase letters, digits and single hyphens
//!    ([`limits::CONTAINER_GROUP_NAME`]). prefect-azure uses `<flow name>-<flow run id>`;
//!    the hash keeps the name short and distinct per submission attempt.
//! 3. **Already there?** `GET` the container group first: if it exists, this submission
//!    already created it (a retry after a lost answer, or a resubmission after a crashed
//!    submitter) and its resource id is returned without a second `PUT`. This matters on
//!    ACI: a `PUT` on a group whose containers have *terminated* deploys it anew (Azure docs,
//!    "Update containers in Azure Container Instances": "Once a container group has stopped
//!    (is in the Terminated state) or has been deleted, the group is deployed as new"), which
//!    would run the flow twice. A missing resource group (`ResourceGroupNotFound`) fails here.
//! 4. **Location.** A literal `location` in the template is used; Prefect's default
//!    `[resourceGroup().location]` is the resource group's (Resource Groups - Get,
//!    api-version 2021-04-01; cached per resource group).
//! 5. **`PUT`** `.../containerGroups/{name}?api-version=2023-05-01` with the body. ARM's
//!    create is idempotent for the same name and body: a submit retried after a transient
//!    failure sends the very same body.
//! 6. **Long-running operation.** ARM answers `201` with an `Azure-AsyncOperation` URL
//!    (`SUMMARY.md`, "ARM long-running operations"). pushpool follows it for at most
//!    [`AciSettings::lro_wait`], polling at the `Retry-After` ARM asks for (bounded by
//!    [`AciSettings::lro_max_poll_interval`]): a `Failed` or `Canceled` operation is a
//!    permanent failure with ARM's code and message (the failed group is deleted first,
//!    unless `keep_container_group`, as prefect-azure deletes it in its `finally`); a
//!    `Succeeded` one, an operation still running at the bound, or a poll that fails, returns
//!    the resource id: provisioning that takes longer (a large image) is then observed by
//!    [`Provider::status`], which reads `provisioningState`. The token is only ever sent to
//!    the ARM endpoint: an `Azure-AsyncOperation` URL elsewhere is not followed.
//!
//! The infrastructure pid is the container group's resource id
//! (`/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}`).
//!
//! # Status, cancel, release
//! [`Provider::status`] reads the group (`GET`) and maps its instance view (see `status`); a
//! `404` is [`JobStatus::Missing`]. [`Provider::cancel`] stops the group
//! (`POST .../stop`, `204`): its containers are killed and the group, its events and logs
//! stay for inspection until [`Provider::release`], which deletes it (`DELETE`, `200`/`202`/
//! `204`; the deletion is not awaited) unless `keep_container_group` ([`Released::Kept`]).
//! prefect-azure deletes on cancellation directly; stop + release ends the same way while
//! keeping the final state readable. `404` answers are success for both.
//!
//! # Errors
//! ARM's `CloudError` is parsed: 429 (with its `Retry-After`), 408, 5xx, ARM's retryable
//! codes, timeouts and connection failures are transient; other refusals are permanent with
//! ARM's code and message, prefixed with the operation:
//! `ACI container group create failed: ResourceGroupNotFound: Resource group 'x' could not be found.`
//!
//! # Credentials and secrets
//! Tokens come from `azure_identity::ClientSecretCredential` (bounded: a few quick retries,
//! the whole request within [`AciSettings::token_timeout`]), cached per credentials block
//! under a SHA-256 digest. Entra's refusals (`AADSTS7000215` for a wrong secret, ...) are
//! permanent with Entra's codes and description. The client secret, access tokens,
//! `secureValue` environment values (prefect-azure's `PREFECT_API_KEY` and
//! `PREFECT_API_AUTH_STRING`, and any variable whose name looks secret:
//! [`SECRET_NAME_PARTS`]) and registry passwords never appear in an error, a `Debug` output
//! or a log line; ARM and Entra messages are scrubbed of them before they are quoted.
//!
//! # Not supported (yet)
//! prefect-azure's `DefaultAzureCredential` fallback (an empty credentials block),
//! `stream_output` (logs stay in ACI; reported as ignored in the run's submission message,
//! with `task_start_timeout_seconds` and `task_watch_poll_interval` when changed), and ARM
//! templates with more than the container group resource or with
//! template expressions other than `[resourceGroup().location]` and `[parameters('...')]`.

mod arm;
mod config;
mod credentials;
pub use pushpool_providers::limits::aci as limits;
mod redact;
mod status;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use arm::{ACI_API_VERSION, Arm, RESOURCES_API_VERSION};
use config::{AciJobConfig, Location, Target};
use credentials::{AciCredentialsBlock, TokenSource};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Released};
use redact::Redactor;

pub use config::{PREFECT_ENV_SECRETS, SECRET_NAME_PARTS, container_group_name, is_secret_env};
pub use credentials::{ARM_SCOPE, MAX_CACHED_CREDENTIALS};

/// How many resource group locations are remembered before the cache starts over.
const MAX_CACHED_LOCATIONS: usize = 256;

/// The shortest wait between two polls of a long-running operation.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Where the provider reaches Azure, and its bounds.
#[derive(Clone)]
pub struct AciSettings {
    /// Azure Resource Manager (`https://management.azure.com`).
    pub arm_endpoint: String,
    /// The Entra ID authority host (`https://login.microsoftonline.com/`); azure_identity
    /// requires `https`.
    pub authority: String,
    /// The HTTP transport of token requests; `None` = azure_core's default (reqwest with
    /// rustls). Tests inject one that reaches a local fake.
    pub token_transport: Option<azure_core::http::Transport>,
    /// Bound of one token acquisition, retries included (20 s).
    pub token_timeout: Duration,
    /// Bound of one ARM request (30 s; connecting: at most 10 s of it).
    pub http_timeout: Duration,
    /// How long `submit` follows the create operation before leaving it to `status` (30 s).
    pub lro_wait: Duration,
    /// Poll interval of the create operation when ARM gives no `Retry-After` (5 s).
    pub lro_poll_interval: Duration,
    /// The longest `Retry-After` honoured between two polls (10 s).
    pub lro_max_poll_interval: Duration,
}

impl Default for AciSettings {
    fn default() -> Self {
        Self {
            arm_endpoint: "https://management.azure.com".into(),
            authority: "https://login.microsoftonline.com/".into(),
            token_transport: None,
            token_timeout: Duration::from_secs(20),
            http_timeout: Duration::from_secs(30),
            lro_wait: Duration::from_secs(30),
            lro_poll_interval: Duration::from_secs(5),
            lro_max_poll_interval: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for AciSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AciSettings")
            .field("arm_endpoint", &self.arm_endpoint)
            .field("authority", &self.authority)
            .field("custom_token_transport", &self.token_transport.is_some())
            .field("token_timeout", &self.token_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("lro_wait", &self.lro_wait)
            .field("lro_poll_interval", &self.lro_poll_interval)
            .field("lro_max_poll_interval", &self.lro_max_poll_interval)
            .finish()
    }
}

/// The `azure-container-instance:push` provider. Cheap to share behind an `Arc`; see the
/// module docs for the mapping from a job configuration to ARM calls.
pub struct AciProvider {
    settings: AciSettings,
    arm: Arm,
    tokens: TokenSource,
    locations: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for AciProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AciProvider")
            .field("settings", &self.settings)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl AciProvider {
    /// A provider reaching Azure as `settings` say.
    pub fn new(settings: AciSettings) -> Self {
        Self {
            arm: Arm::new(&settings.arm_endpoint, settings.http_timeout),
            tokens: TokenSource::new(
                settings.authority.clone(),
                settings.token_transport.clone(),
                settings.token_timeout,
            ),
            settings,
            locations: Mutex::new(HashMap::new()),
        }
    }

    /// How many credential blocks have cached credentials.
    pub fn cached_credentials(&self) -> usize {
        self.tokens.cached()
    }

    /// The credentials and a token of a job.
    async fn token(&self, job: &Job) -> Result<(AciCredentialsBlock, String), ProviderError> {
        let creds = AciCredentialsBlock::from_configuration(job)?;
        let token = self.tokens.token(&creds).await?;
        Ok((creds, token))
    }

    /// The location of the target's resource group (cached).
    async fn resource_group_location(
        &self,
        op: &str,
        target: &Target,
        token: &str,
        redactor: &Redactor,
    ) -> Result<String, ProviderError> {
        let id = target.resource_group_id();
        let key = id.to_ascii_lowercase();
        if let Some(l) = self
            .locations
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(l);
        }
        let url = self.arm.url(&id, RESOURCES_API_VERSION);
        let resp = self.arm.send(op, Method::GET, &url, token, None).await?;
        if !resp.is_success() {
            return Err(arm::classify(op, &resp, redactor));
        }
        let Some(location) = resp.body["location"].as_str().map(str::to_owned) else {
            return Err(ProviderError::transient(format!(
                "{op} failed: the resource group {} was answered without a location",
                target.resource_group
            )));
        };
        if let Ok(mut cache) = self.locations.lock() {
            if cache.len() >= MAX_CACHED_LOCATIONS {
                cache.clear();
            }
            cache.insert(key, location.clone());
        }
        Ok(location)
    }

    fn poll_interval(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .map(|d| d.min(self.settings.lro_max_poll_interval))
            .unwrap_or(self.settings.lro_poll_interval)
            .max(MIN_POLL_INTERVAL)
    }

    /// Follows the create operation (see the module docs, Submit 6).
    #[allow(clippy::too_many_arguments)]
    async fn follow_create(
        &self,
        job: &Job,
        cfg: &AciJobConfig,
        operation_url: &str,
        first_retry_after: Option<Duration>,
        token: &str,
        redactor: &Redactor,
        op: &str,
    ) -> Result<(), ProviderError> {
        let pid = cfg.target.resource_id();
        let deadline = tokio::time::Instant::now() + self.settings.lro_wait;
        let mut wait = self.poll_interval(first_retry_after);
        loop {
            if tokio::time::Instant::now() + wait > deadline {
                info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    "the container group is still being created; its status will follow");
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            let poll = match self
                .arm
                .send(op, Method::GET, operation_url, token, None)
                .await
            {
                Ok(poll) if poll.is_success() => poll,
                Ok(poll) => {
                    let err = arm::classify(op, &poll, redactor);
                    warn!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                        error = %err, "cannot read the create operation; its status will follow");
                    return Ok(());
                }
                Err(err) => {
                    warn!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                        error = %err, "cannot read the create operation; its status will follow");
                    return Ok(());
                }
            };
            match poll.body["status"].as_str().unwrap_or_default() {
                "Succeeded" => return Ok(()),
                status @ ("Failed" | "Canceled") => {
                    let (code, message) = poll.error();
                    let reason = match (code, message) {
                        (Some(c), Some(m)) if !m.is_empty() => format!("{c}: {m}"),
                        (Some(c), _) => c.to_owned(),
                        _ => format!("the operation ended {status}"),
                    };
                    if !cfg.keep_container_group {
                        self.delete_quietly(job, &pid, token).await;
                    }
                    return Err(ProviderError::permanent(
                        redactor.apply(&format!("{op} failed: {reason}")),
                    ));
                }
                _ => wait = self.poll_interval(poll.retry_after()),
            }
        }
    }

    /// Deletes a failed group, logging (not returning) a failure.
    async fn delete_quietly(&self, job: &Job, pid: &str, token: &str) {
        let url = self.arm.url(pid, ACI_API_VERSION);
        let op = "ACI container group delete";
        match self.arm.send(op, Method::DELETE, &url, token, None).await {
            Ok(resp) if resp.is_success() || resp.status == 404 => {
                info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    "deleted the container group that failed to provision");
            }
            Ok(resp) => {
                let (code, _) = resp.error();
                warn!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    status = resp.status, code = code.unwrap_or_default(),
                    "could not delete the container group that failed to provision");
            }
            Err(err) => {
                warn!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    error = %err, "could not delete the container group that failed to provision");
            }
        }
    }
}

#[async_trait]
impl Provider for AciProvider {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        let op = "ACI container group create";
        let creds = AciCredentialsBlock::from_configuration(job)?;
        // Every check of the configuration happens here, before the first Azure call.
        let cfg = AciJobConfig::parse(job)?;
        let mut redactor = cfg.redactor.clone();
        redactor.add(&creds.client_secret);
        let token = self.tokens.token(&creds).await?;
        let pid = cfg.target.resource_id();
        let url = self.arm.url(&pid, ACI_API_VERSION);

        let existing = self.arm.send(op, Method::GET, &url, &token, None).await?;
        match (existing.status, existing.error().0) {
            (200, _) => {
                info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    "the container group of this submission already exists");
                return Ok(pid);
            }
            (404, None | Some("ResourceNotFound")) => {}
            _ => return Err(arm::classify(op, &existing, &redactor)),
        }

        let location = match &cfg.location {
            Location::Given(l) => l.clone(),
            Location::OfResourceGroup => {
                self.resource_group_location(op, &cfg.target, &token, &redactor)
                    .await?
            }
        };
        let mut body = Map::new();
        body.insert("location".into(), json!(location));
        body.extend(cfg.body.clone());
        let body = Value::Object(body);

        let resp = self
            .arm
            .send(op, Method::PUT, &url, &token, Some(&body))
            .await?;
        if !resp.is_success() {
            return Err(arm::classify(op, &resp, &redactor));
        }
        info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
            container = %cfg.container_name, status = resp.status, "created ACI container group");
        match resp.header("azure-asyncoperation") {
            Some(operation) if self.arm.owns(operation) => {
                let operation = operation.to_owned();
                self.follow_create(
                    job,
                    &cfg,
                    &operation,
                    resp.retry_after(),
                    &token,
                    &redactor,
                    op,
                )
                .await?;
            }
            Some(_) => {
                warn!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = %pid,
                    "the create operation's status URL is not on the ARM endpoint; not following it");
            }
            None => {}
        }
        Ok(pid)
    }

    async fn status(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<JobStatus, ProviderError> {
        let target = Target::from_resource_id(infrastructure_pid)?;
        let (creds, token) = self.token(job).await?;
        let redactor = Redactor::new([creds.client_secret.as_str()]);
        let op = "ACI container group read";
        let url = self.arm.url(&target.resource_id(), ACI_API_VERSION);
        let resp = self.arm.send(op, Method::GET, &url, &token, None).await?;
        match resp.status {
            200 => Ok(status::job_status(&resp.body)),
            404 => {
                let (code, message) = resp.error();
                let mut reason = format!("ACI container group {} not found", target.name);
                if let Some(code) = code {
                    reason.push_str(&format!(": {code}"));
                }
                if let Some(message) = message.filter(|m| !m.is_empty()) {
                    reason.push_str(&format!(": {message}"));
                }
                Ok(JobStatus::Missing {
                    reason: redactor.apply(&reason),
                })
            }
            _ => Err(arm::classify(op, &resp, &redactor)),
        }
    }

    async fn cancel(&self, job: &Job, infrastructure_pid: &str) -> Result<(), ProviderError> {
        let target = Target::from_resource_id(infrastructure_pid)?;
        let (creds, token) = self.token(job).await?;
        let redactor = Redactor::new([creds.client_secret.as_str()]);
        let op = "ACI container group stop";
        let url = self
            .arm
            .url(&format!("{}/stop", target.resource_id()), ACI_API_VERSION);
        let resp = self.arm.send(op, Method::POST, &url, &token, None).await?;
        if resp.is_success() || resp.status == 404 {
            info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = infrastructure_pid,
                status = resp.status, "stopped ACI container group");
            return Ok(());
        }
        Err(arm::classify(op, &resp, &redactor))
    }

    async fn release(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<Released, ProviderError> {
        if job.configuration.get("keep_container_group") == Some(&Value::Bool(true)) {
            return Ok(Released::Kept);
        }
        let target = Target::from_resource_id(infrastructure_pid)?;
        let (creds, token) = self.token(job).await?;
        let redactor = Redactor::new([creds.client_secret.as_str()]);
        let op = "ACI container group delete";
        let url = self.arm.url(&target.resource_id(), ACI_API_VERSION);
        let resp = self
            .arm
            .send(op, Method::DELETE, &url, &token, None)
            .await?;
        if resp.is_success() || resp.status == 404 {
            info!(flow_run_id = %job.flow_run_id, provider = "aci", container_group = infrastructure_pid,
                status = resp.status, "deleted ACI container group");
            return Ok(Released::Deleted);
        }
        Err(arm::classify(op, &resp, &redactor))
    }

    /// A container group stays after its containers end (until [`Provider::release`]).
    fn leaves_resources(&self) -> bool {
        true
    }

    fn check_job_variables(&self, variables: &Map<String, Value>) -> Result<(), ProviderError> {
        limits::check_variables(variables)
    }

    /// `stream_output`, `task_start_timeout_seconds`, `task_watch_poll_interval` when changed
    /// from the template's defaults (`config::ignored_variables`).
    fn ignored_job_variables(
        &self,
        variables: &Map<String, Value>,
    ) -> Vec<pushpool_providers::IgnoredVariables> {
        limits::ignored_variables(variables)
    }
}
