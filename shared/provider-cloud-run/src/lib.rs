//! The `cloud-run-v2:push` provider: a flow run becomes a Google Cloud Run job and one
//! execution of it, through the Cloud Run Admin API v2 (`https://run.googleapis.com/v2/...`,
//! JSON over reqwest) with tokens from `gcp_auth`. It does for one run what prefect-gcp
//! 0.6.22's `CloudRunWorkerV2` does, without a worker process. Reference:
//! `reference/specs/gcp/run.v2.json` (discovery document) and its `SUMMARY.md`.
//!
//! # Credentials
//! The job configuration's `credentials` is the resolved `gcp-credentials` block
//! (prefect-gcp's `GcpCredentials` data). Its `service_account_info` (a JSON object, or a
//! string holding one) becomes a `gcp_auth::CustomServiceAccount` (`from_json`: a signed
//! RS256 JWT exchanged at the key's `token_uri`, scope `cloud-platform`); token providers are
//! cached per block under a SHA-256 digest of the key (at most 64 blocks before the cache
//! starts over), so each key fetches a token about once an hour. Without a key, application
//! default credentials are used (`gcp_auth::provider()`, found once per process: the
//! `GOOGLE_APPLICATION_CREDENTIALS` file, gcloud's ADC file, the metadata server, `gcloud`).
//! A `service_account_file` is refused by name (a path on the machine that saved the block).
//! The project is, in order: the configuration's `project` (a custom template may add it),
//! the block's `project`, the key's `project_id`, the default credentials' project. Keys and
//! tokens never appear in an error, a `Debug` output or a log line.
//!
//! # Submit
//! 1. **Configuration** (before any call; an [`ProviderError::InvalidConfiguration`] names
//!    the field): `job_body` is turned into the `jobs.create` body the way prefect-gcp's
//!    `prepare_for_flow_run` does: the job's environment appended to the container's `env` as
//!    `{name, value}` (`PREFECT_API_KEY`/`PREFECT_API_AUTH_STRING` replaced by
//!    `valueSource.secretKeyRef` when `prefect_api_key_secret`/`prefect_api_auth_string_secret`
//!    or `env_from_secrets` name a secret), labels merged at job and execution level
//!    (sanitised to Cloud Run's label rules; the job body's own labels win; plus
//!    `pushpool-submission: <idempotency key>`), Cloud SQL volumes for `cloudsql_instances`,
//!    `command`/`args` split like a shell when they are strings (the job's command when the
//!    container has none), the image defaulted to `docker.io/prefecthq/prefect:3-latest`,
//!    `timeout` as `"<seconds>s"`, an unset `vpcAccess` removed. cpu, memory (and their
//!    pairing), `timeout`, `maxRetries` and `region` are checked against [`limits`].
//! 2. **Job name**: [`job_id`]: the `name` (default: the flow run's name) sanitised to an
//!    RFC 1035 label, then `-` and 10 hex digits of the SHA-256 of the idempotency key: one
//!    job per submission attempt, the same name when the attempt is retried.
//! 3. **Image preflight**: the image's platforms are read from its registry ([`image`]); an
//!    image without `linux/amd64` fails permanently with a message that names the image, its
//!    platforms and how to rebuild it. A registry that cannot tell (unreachable, private,
//!    an error) only logs a warning.
//! 4. **`jobs.create`** (`POST v2/projects/{p}/locations/{region}/jobs?jobId=...`). HTTP 409
//!    `ALREADY_EXISTS` means an earlier try of this submission created it: go on. The
//!    create's long-running operation is not polled: pushpool polls `jobs.get` instead
//!    (every [`CloudRunSettings::ready_poll_interval`], at most
//!    [`CloudRunSettings::ready_polls`] times) until the job's `terminalCondition` `Ready` is
//!    `CONDITION_SUCCEEDED`, like prefect-gcp's `_wait_for_job_creation`; that `jobs.get`
//!    also says whether the job already has an execution. A `Ready` condition that failed
//!    (`CONTAINER_MISSING`: the image does not exist) ends the submission permanently with
//!    Google's reason, and the job is deleted unless `keep_job` (as prefect-gcp does); a job
//!    still not ready is a transient failure (the next try finds it through the 409).
//! 5. **`jobs.run`** (`POST v2/{job}:run`) is not idempotent: every call starts an execution.
//!    So if the `jobs.get` above shows a `latestCreatedExecution`, that execution is the
//!    submission's and no other is started; else `jobs.run` is called once, and the
//!    execution's full name comes from its operation's `metadata.name`. A `jobs.run` refused
//!    for good (a 403, say) deletes the job unless `keep_job`: the run ends CRASHED without a
//!    pid, so nothing would release it later.
//!
//! The infrastructure pid is the execution's full name,
//! `projects/<p>/locations/<region>/jobs/<job>/executions/<execution>`.
//!
//! # Status
//! `jobs.executions.get`. Finished when `completionTime` is set or the `Completed` condition
//! is `CONDITION_SUCCEEDED`/`CONDITION_FAILED` (prefect-gcp keys on `Completed`):
//! `succeededCount == taskCount` → [`JobStatus::Exited`] 0; `cancelledCount > 0` →
//! [`JobStatus::Failed`] "Cloud Run execution was cancelled: <message>"; `executionReason`
//! `NON_ZERO_EXIT_CODE` → [`JobStatus::Exited`] with the first failed task's
//! `lastAttemptResult.exitCode` (`jobs.executions.tasks.list`; 1 when no task says) and the
//! condition's message as detail; any other failure (an image that cannot be pulled, a task
//! timeout) → [`JobStatus::Failed`] with the condition's message. Not finished: running once
//! it has a `startTime` or running tasks, else pending. HTTP 404 → [`JobStatus::Missing`].
//!
//! # Cancel
//! `jobs.executions.cancel` (`POST v2/{execution}:cancel`). An execution that no longer
//! exists (404) or has already finished (`FAILED_PRECONDITION`, confirmed by
//! `executions.get`) is not an error.
//!
//! # Release
//! `jobs.delete` of the execution's job unless `keep_job` is true ([`Released::Kept`]); a
//! job already gone (404) is [`Released::Deleted`].
//!
//! # Errors
//! Google's JSON error bodies are read ([`api`]): HTTP 429 (with `Retry-After`), 408, 5xx,
//! timeouts and connection failures are transient; other 4xx are permanent with Google's
//! status and message, prefixed with the operation (`Cloud Run jobs.create failed:
//! PERMISSION_DENIED: ...`). A token endpoint that refuses the key is permanent.

pub use pushpool_providers::limits::cloud_run as limits;

mod api;
mod config;
mod credentials;
pub mod image;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gcp_auth::TokenProvider;
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use api::Api;
use config::ExecutionName;
use credentials::{CredentialsKey, GcpCredentialsBlock};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Released};

pub use config::{SUBMISSION_LABEL, job_id};

/// How many distinct credential blocks keep a cached token provider before the cache starts
/// over.
const MAX_CACHED_PROVIDERS: usize = 64;

/// Settings of a [`CloudRunProvider`].
#[derive(Clone)]
pub struct CloudRunSettings {
    /// The API's root URL: `https://run.googleapis.com/` (tests point it at a fake).
    pub endpoint: String,
    /// Connect timeout of every HTTP call: 10 s.
    pub connect_timeout: Duration,
    /// Timeout of one whole HTTP call (and of one token request): 60 s.
    pub request_timeout: Duration,
    /// Timeout of each registry request of the image preflight: 15 s.
    pub registry_timeout: Duration,
    /// Whether to read the image's platforms from its registry before creating the job:
    /// true.
    pub image_preflight: bool,
    /// Pause between two `jobs.get` while waiting for a new job to be ready: 1 s.
    pub ready_poll_interval: Duration,
    /// How many `jobs.get` to wait for a new job to be ready before the submission is
    /// retried later: 30.
    pub ready_polls: u32,
    /// The token provider of jobs without a service account key; `None` = application
    /// default credentials (`gcp_auth::provider()`), found on first use.
    pub default_credentials: Option<Arc<dyn TokenProvider>>,
}

impl Default for CloudRunSettings {
    fn default() -> Self {
        Self {
            endpoint: "https://run.googleapis.com/".into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            registry_timeout: Duration::from_secs(15),
            image_preflight: true,
            ready_poll_interval: Duration::from_secs(1),
            ready_polls: 30,
            default_credentials: None,
        }
    }
}

impl std::fmt::Debug for CloudRunSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudRunSettings")
            .field("endpoint", &self.endpoint)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("registry_timeout", &self.registry_timeout)
            .field("image_preflight", &self.image_preflight)
            .field("ready_poll_interval", &self.ready_poll_interval)
            .field("ready_polls", &self.ready_polls)
            .field(
                "default_credentials",
                &self.default_credentials.as_ref().map(|_| "<provider>"),
            )
            .finish()
    }
}

/// The `cloud-run-v2:push` provider. Cheap to share behind an `Arc`; see the module docs.
pub struct CloudRunProvider {
    settings: CloudRunSettings,
    base: Url,
    http: reqwest::Client,
    cache: Mutex<HashMap<CredentialsKey, Arc<dyn TokenProvider>>>,
    default_credentials: tokio::sync::OnceCell<Arc<dyn TokenProvider>>,
}

impl std::fmt::Debug for CloudRunProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("CloudRunProvider")
            .field("endpoint", &self.base.as_str())
            .field("cached_credential_sets", &cached)
            .finish_non_exhaustive()
    }
}

impl CloudRunProvider {
    /// A provider with `settings` ([`CloudRunSettings::default`] for Google's endpoints).
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming `endpoint` when it is not an absolute
    /// http(s) URL, or a permanent error when the HTTP client cannot be built (no TLS).
    pub fn new(settings: CloudRunSettings) -> Result<Self, ProviderError> {
        let mut base = Url::parse(&settings.endpoint).map_err(|e| {
            ProviderError::invalid(
                "endpoint",
                format!("{:?} is not a URL: {e}", settings.endpoint),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ProviderError::invalid(
                "endpoint",
                format!("{:?} is not an http(s) URL", settings.endpoint),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("pushpool/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Permanent {
                message: format!("cannot build the Cloud Run HTTP client: {e}"),
                source: Some(Box::new(e)),
            })?;
        Ok(Self {
            settings,
            base,
            http,
            cache: Mutex::new(HashMap::new()),
            default_credentials: tokio::sync::OnceCell::new(),
        })
    }

    /// The token provider of a job's credentials.
    async fn token_provider(
        &self,
        creds: &GcpCredentialsBlock,
    ) -> Result<Arc<dyn TokenProvider>, ProviderError> {
        if creds.has_key() {
            let key = creds.key();
            let mut cache = match self.cache.lock() {
                Ok(cache) => cache,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(provider) = cache.get(&key) {
                return Ok(provider.clone());
            }
            if cache.len() >= MAX_CACHED_PROVIDERS {
                cache.clear();
            }
            let provider = creds.token_provider()?;
            cache.insert(key, provider.clone());
            return Ok(provider);
        }
        if let Some(provider) = &self.settings.default_credentials {
            return Ok(provider.clone());
        }
        self.default_credentials
            .get_or_try_init(gcp_auth::provider)
            .await
            .cloned()
            .map_err(|e| {
                ProviderError::permanent(format!(
                    "no Google credentials: the job's credentials block has no service_account_info and pushpool found no application default credentials ({e})"
                ))
            })
    }

    /// An authorised API client for a job's credentials.
    async fn api_token(
        &self,
        creds: &GcpCredentialsBlock,
        provider: &dyn TokenProvider,
    ) -> Result<Arc<gcp_auth::Token>, ProviderError> {
        credentials::access_token(
            provider,
            creds.client_email.as_deref(),
            self.settings.request_timeout,
        )
        .await
    }

    fn api<'a>(&'a self, token: &'a gcp_auth::Token) -> Api<'a> {
        Api {
            http: &self.http,
            base: &self.base,
            token: token.as_str(),
        }
    }

    /// The project of a submission (see the module docs, "Credentials").
    async fn project(
        &self,
        configured: Option<&str>,
        creds: &GcpCredentialsBlock,
        provider: &dyn TokenProvider,
    ) -> Result<String, ProviderError> {
        let project = match configured
            .or(creds.project.as_deref())
            .or(creds.key_project.as_deref())
        {
            Some(p) => p.to_owned(),
            None => match provider.project_id().await {
                Ok(p) => p.to_string(),
                Err(_) => {
                    return Err(ProviderError::invalid(
                        "credentials.project",
                        "no Google Cloud project: set project in the gcp-credentials block",
                    ));
                }
            },
        };
        if project.is_empty()
            || project.contains(['/', '?', '#'])
            || project.contains(char::is_whitespace)
        {
            return Err(ProviderError::invalid(
                "credentials.project",
                format!("{project:?} is not a Google Cloud project id"),
            ));
        }
        Ok(project)
    }

    /// The image preflight (see [`image`]).
    async fn preflight(&self, job: &Job, image_ref: &str) -> Result<(), ProviderError> {
        if !self.settings.image_preflight {
            return Ok(());
        }
        match image::platforms(&self.http, image_ref, self.settings.registry_timeout).await {
            image::Preflight::Platforms(platforms) => {
                if platforms.iter().any(image::ImagePlatform::is_linux_amd64) {
                    Ok(())
                } else {
                    Err(ProviderError::permanent(image::not_amd64_message(
                        image_ref, &platforms,
                    )))
                }
            }
            image::Preflight::Unknown(why) => {
                warn!(flow_run_id = %job.flow_run_id, provider = "cloud-run", image = image_ref,
                    reason = %why,
                    "could not read the image's platforms from its registry; submitting anyway (Cloud Run runs linux/amd64 images only)");
                Ok(())
            }
        }
    }

    /// Polls `jobs.get` until the job is ready or has an execution.
    async fn wait_until_ready(
        &self,
        api: &Api<'_>,
        job: &Job,
        segments: &[&str],
        spec_job_id: &str,
        keep_job: bool,
    ) -> Result<Value, ProviderError> {
        let url = api.url(segments, &[]);
        let mut last = String::from("no Ready condition yet");
        for attempt in 0..self.settings.ready_polls.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.settings.ready_poll_interval).await;
            }
            let got = match api.call(Method::GET, url.clone(), None).await {
                Ok(got) => got,
                // Just created: not readable yet.
                Err(e) if e.http_status() == Some(404) => continue,
                Err(e) => return Err(e.into_provider_error("jobs.get")),
            };
            if latest_execution(&got).is_some() {
                return Ok(got);
            }
            let condition = got.get("terminalCondition");
            let field = |k: &str| {
                condition
                    .and_then(|c| c.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            if field("type") == "Ready" {
                match field("state").as_str() {
                    "CONDITION_SUCCEEDED" => return Ok(got),
                    "CONDITION_FAILED" => {
                        let reason = field("reason");
                        let message = field("message");
                        let why = match (reason.is_empty(), message.is_empty()) {
                            (false, false) => format!("{reason}: {message}"),
                            (false, true) => reason,
                            (true, _) => message,
                        };
                        if !keep_job {
                            delete_abandoned_job(
                                api,
                                url.clone(),
                                job,
                                spec_job_id,
                                "that could not become ready",
                            )
                            .await;
                        }
                        return Err(ProviderError::permanent(format!(
                            "Cloud Run job {spec_job_id} could not be created: {why}"
                        )));
                    }
                    state => {
                        last = format!("{state} {}", field("message")).trim().to_owned();
                    }
                }
            }
        }
        Err(ProviderError::transient(format!(
            "Cloud Run job {spec_job_id} is not ready yet ({last}); the submission will be retried"
        )))
    }
}

/// `latestCreatedExecution.name` of a job.
fn latest_execution(job: &Value) -> Option<String> {
    job.pointer("/latestCreatedExecution/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn execution_name(pid: &str) -> Result<ExecutionName, ProviderError> {
    ExecutionName::parse(pid).ok_or_else(|| {
        ProviderError::permanent(format!(
            "{pid:?} is not a Cloud Run execution name (projects/<project>/locations/<region>/jobs/<job>/executions/<execution>)"
        ))
    })
}

/// `segments` with `:verb` appended to the last one.
fn with_verb(segments: &[&str], verb: &str) -> Vec<String> {
    let mut out: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
    if let Some(last) = out.last_mut() {
        last.push(':');
        last.push_str(verb);
    }
    out
}

#[async_trait]
impl Provider for CloudRunProvider {
    async fn submit(&self, job: &Job) -> Result<String, ProviderError> {
        let spec = config::parse(job)?;
        let creds = GcpCredentialsBlock::from_configuration(job)?;
        let provider = self.token_provider(&creds).await?;
        let project = self
            .project(spec.project.as_deref(), &creds, provider.as_ref())
            .await?;
        self.preflight(job, &spec.image).await?;

        let token = self.api_token(&creds, provider.as_ref()).await?;
        let api = self.api(&token);
        let parent = ["projects", &project, "locations", &spec.region, "jobs"];
        let job_segments = [
            "projects",
            &project,
            "locations",
            &spec.region,
            "jobs",
            &spec.job_id,
        ];
        let create_url = api.url(&parent, &[("jobId", &spec.job_id)]);
        match api.call(Method::POST, create_url, Some(&spec.body)).await {
            Ok(_) => {
                info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", project = %project,
                    region = %spec.region, job = %spec.job_id, "created Cloud Run job");
            }
            Err(e)
                if e.http_status() == Some(409) && e.google_status() == Some("ALREADY_EXISTS") =>
            {
                info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", job = %spec.job_id,
                    "Cloud Run job already created by an earlier try of this submission");
            }
            Err(e) => return Err(e.into_provider_error("jobs.create")),
        }

        let got = self
            .wait_until_ready(&api, job, &job_segments, &spec.job_id, spec.keep_job)
            .await?;
        if let Some(execution) = latest_execution(&got) {
            info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", execution = %execution,
                "the Cloud Run job already has an execution; not starting another");
            return Ok(execution);
        }

        let run_segments = with_verb(&job_segments, "run");
        let run_segments: Vec<&str> = run_segments.iter().map(String::as_str).collect();
        let operation = match api
            .call(Method::POST, api.url(&run_segments, &[]), Some(&json!({})))
            .await
        {
            Ok(operation) => operation,
            Err(e) => {
                let error = e.into_provider_error("jobs.run");
                if !error.is_transient() && !spec.keep_job {
                    // The run ends CRASHED without a pid, so release would never find this
                    // job: delete it now, unless it is to be kept.
                    delete_abandoned_job(
                        &api,
                        api.url(&job_segments, &[]),
                        job,
                        &spec.job_id,
                        "whose run was refused",
                    )
                    .await;
                }
                return Err(error);
            }
        };
        let execution = operation
            .pointer("/metadata/name")
            .or_else(|| operation.pointer("/response/name"))
            .and_then(Value::as_str)
            .filter(|s| ExecutionName::parse(s).is_some())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::transient(
                    "Cloud Run jobs.run answered without the execution's name (metadata.name)",
                )
            })?;
        info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", execution = %execution,
            "started Cloud Run execution");
        Ok(execution)
    }

    async fn status(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<JobStatus, ProviderError> {
        let name = execution_name(infrastructure_pid)?;
        let creds = GcpCredentialsBlock::from_configuration(job)?;
        let provider = self.token_provider(&creds).await?;
        let token = self.api_token(&creds, provider.as_ref()).await?;
        let api = self.api(&token);
        let execution = match api
            .call(Method::GET, api.url(&name.segments(), &[]), None)
            .await
        {
            Ok(e) => e,
            Err(e) if e.http_status() == Some(404) => {
                let reason = match e.into_provider_error("jobs.executions.get") {
                    ProviderError::Permanent { message, .. } => message,
                    other => other.to_string(),
                };
                return Ok(JobStatus::Missing {
                    reason: format!(
                        "Cloud Run execution {infrastructure_pid} not found ({reason})"
                    ),
                });
            }
            Err(e) => return Err(e.into_provider_error("jobs.executions.get")),
        };
        match status::read_execution(&execution) {
            status::Reading::Status(s) => Ok(s),
            status::Reading::NonZeroExit { detail } => {
                let mut segments: Vec<&str> = name.segments().to_vec();
                segments.push("tasks");
                let exit_code = match api.call(Method::GET, api.url(&segments, &[]), None).await {
                    Ok(tasks) => status::failed_task_exit_code(&tasks).unwrap_or(1),
                    Err(e) => {
                        let e = e.into_provider_error("jobs.executions.tasks.list");
                        if e.is_transient() {
                            return Err(e);
                        }
                        warn!(flow_run_id = %job.flow_run_id, provider = "cloud-run", error = %e,
                            "cannot read the failed task's exit code; reporting 1");
                        1
                    }
                };
                Ok(JobStatus::Exited { exit_code, detail })
            }
        }
    }

    async fn cancel(&self, job: &Job, infrastructure_pid: &str) -> Result<(), ProviderError> {
        let name = execution_name(infrastructure_pid)?;
        let creds = GcpCredentialsBlock::from_configuration(job)?;
        let provider = self.token_provider(&creds).await?;
        let token = self.api_token(&creds, provider.as_ref()).await?;
        let api = self.api(&token);
        let segments = with_verb(&name.segments(), "cancel");
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match api
            .call(Method::POST, api.url(&segments, &[]), Some(&json!({})))
            .await
        {
            Ok(_) => {
                info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", execution = infrastructure_pid,
                    "cancelled Cloud Run execution");
                Ok(())
            }
            Err(e) if e.http_status() == Some(404) => {
                info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", execution = infrastructure_pid,
                    "Cloud Run execution to cancel no longer exists");
                Ok(())
            }
            Err(e) if e.google_status() == Some("FAILED_PRECONDITION") => {
                // Already finished? Then there is nothing to stop.
                let finished = match api
                    .call(Method::GET, api.url(&name.segments(), &[]), None)
                    .await
                {
                    Ok(execution) => matches!(
                        status::read_execution(&execution),
                        status::Reading::Status(
                            JobStatus::Exited { .. } | JobStatus::Failed { .. }
                        ) | status::Reading::NonZeroExit { .. }
                    ),
                    Err(_) => false,
                };
                if finished {
                    info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", execution = infrastructure_pid,
                        "Cloud Run execution to cancel has already finished");
                    Ok(())
                } else {
                    Err(e.into_provider_error("jobs.executions.cancel"))
                }
            }
            Err(e) => Err(e.into_provider_error("jobs.executions.cancel")),
        }
    }

    async fn release(
        &self,
        job: &Job,
        infrastructure_pid: &str,
    ) -> Result<Released, ProviderError> {
        if job.configuration.get("keep_job") == Some(&Value::Bool(true)) {
            return Ok(Released::Kept);
        }
        let name = execution_name(infrastructure_pid)?;
        let creds = GcpCredentialsBlock::from_configuration(job)?;
        let provider = self.token_provider(&creds).await?;
        let token = self.api_token(&creds, provider.as_ref()).await?;
        let api = self.api(&token);
        match api
            .call(Method::DELETE, api.url(&name.job_segments(), &[]), None)
            .await
        {
            Ok(_) => {
                info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", job = %name.job,
                    "deleted Cloud Run job");
                Ok(Released::Deleted)
            }
            Err(e) if e.http_status() == Some(404) => Ok(Released::Deleted),
            Err(e) => Err(e.into_provider_error("jobs.delete")),
        }
    }

    /// A Cloud Run job outlives its execution: [`Provider::release`] deletes it.
    fn leaves_resources(&self) -> bool {
        true
    }

    fn check_job_variables(&self, variables: &Map<String, Value>) -> Result<(), ProviderError> {
        limits::check_variables(variables)
    }
}

/// Deletes, best effort, a job this submission created but will not hand over as a pid
/// (nothing would release it later), and logs what happened; `which` completes "the Cloud
/// Run job ..." in the log line.
async fn delete_abandoned_job(api: &Api<'_>, url: Url, job: &Job, job_id: &str, which: &str) {
    match api.call(Method::DELETE, url, None).await {
        Ok(_) => info!(flow_run_id = %job.flow_run_id, provider = "cloud-run", job = job_id,
            "deleted the Cloud Run job {which}"),
        Err(e) => warn!(flow_run_id = %job.flow_run_id, provider = "cloud-run", job = job_id,
            error = %e.into_provider_error("jobs.delete"),
            "could not delete the Cloud Run job {which}"),
    }
}
