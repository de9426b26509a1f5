//! The Cloud Run v2 provider against the spec-checked fake Cloud Run Admin API v2 and fake
//! token endpoint (`pushpool_tests::fake_cloud_run`), and a fake OCI registry for the image
//! preflight: the exact requests it sends, its idempotency, how executions map to job
//! statuses, and its errors. Jobs are built by the service's own `build_job` from the real
//! cloud-run-v2 pool template. Every test ends with the fakes' violations asserted empty.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushpool_core::model::{FlowRun, WorkPool};
use pushpool_core::template::BaseJobTemplate;
use pushpool_provider_cloud_run::{CloudRunProvider, CloudRunSettings};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Released};
use pushpool_tests::fake_cloud_run::{
    CLIENT_EMAIL, CLOUD_PLATFORM, ExecutionLifecycle, FakeCloudRun, JobReadiness, PROJECT,
};
use pushpool_tests::fake_registry::FakeRegistry;
use serde_json::{Value, json};
use uuid::Uuid;

const RUN_ID: u128 = 0x1b9d3c1e_8a5e_4f2e_9c51_0c6f00000001;
const FLOW_ID: u128 = 0xf10f;

struct Setup {
    fake: FakeCloudRun,
    registry: FakeRegistry,
    provider: CloudRunProvider,
}

fn settings(fake: &FakeCloudRun) -> CloudRunSettings {
    CloudRunSettings {
        endpoint: fake.endpoint.clone(),
        ready_poll_interval: Duration::from_millis(10),
        registry_timeout: Duration::from_secs(5),
        ..CloudRunSettings::default()
    }
}

async fn setup() -> Setup {
    let fake = FakeCloudRun::start().await;
    let registry = FakeRegistry::start().await;
    registry.put_multi_platform("team/flows", "1");
    let provider = CloudRunProvider::new(settings(&fake)).expect("provider");
    Setup {
        fake,
        registry,
        provider,
    }
}

impl Setup {
    fn image(&self) -> String {
        format!("{}/team/flows:1", self.registry.host)
    }

    fn credentials(&self) -> Value {
        json!({
            "service_account_file": null,
            "service_account_info": self.fake.service_account_info(),
            "project": PROJECT,
        })
    }

    /// Typical job variables of a deployment.
    fn variables(&self) -> Value {
        json!({
            "credentials": self.credentials(),
            "image": self.image(),
            "region": "europe-west1",
            "cpu": "2",
            "memory": "4Gi",
            "max_retries": 1,
            "timeout": 3600,
            "service_account_name": "flows@pushpool-test-project.iam.gserviceaccount.com",
            "vpc_connector_name": "projects/pushpool-test-project/locations/europe-west1/connectors/flows",
            "env": {"TEAM": "data"},
            "labels": {"team": "Data Eng"},
        })
    }

    fn no_violations(&self) {
        assert_eq!(self.fake.violations(), Vec::<String>::new());
        assert_eq!(self.registry.violations(), Vec::<String>::new());
    }
}

fn with(mut vars: Value, key: &str, value: Value) -> Value {
    vars[key] = value;
    vars
}

/// The job the service builds for flow run `elegant-caribou` (attempt 1) in a
/// `cloud-run-v2:push` pool with the default template and `variables` as the run's job
/// variables.
async fn job(variables: Value) -> Job {
    job_for(variables, RUN_ID).await
}

async fn job_for(variables: Value, run_id: u128) -> Job {
    let template_value = pushpool_core::pool_types::pool_type("cloud-run-v2:push")
        .expect("the cloud-run-v2:push pool type")
        .default_base_job_template();
    let pool: WorkPool = serde_json::from_value(json!({
        "id": Uuid::from_u128(0x9001),
        "created": "2026-11-29T10:00:00Z",
        "updated": "2026-11-29T10:00:00Z",
        "name": "my-cloud-run-pool",
        "description": null,
        "type": "cloud-run-v2:push",
        "base_job_template": template_value,
        "is_paused": false,
        "concurrency_limit": null,
        "status": "READY",
        "default_queue_id": Uuid::from_u128(0x9002),
        "storage_configuration": {},
        "active_slots": null,
    }))
    .expect("a work pool");
    let template = BaseJobTemplate::parse(&pool.base_job_template).expect("template parses");
    let mut run = FlowRun::new(
        Uuid::from_u128(run_id),
        Uuid::from_u128(FLOW_ID),
        "elegant-caribou".into(),
        chrono::Utc::now(),
    );
    run.submission_attempt = 1;
    let Value::Object(vars) = variables else {
        panic!("job variables must be an object")
    };
    run.job_variables = vars;
    let store = pushpool_store_sqlite::SqliteStore::in_memory().expect("store");
    pushpool_service::build_job(
        &store,
        &pool,
        &template,
        None,
        &run,
        "http://127.0.0.1:4200/api",
        None,
    )
    .await
    .expect("the job builds")
}

/// Statuses until a terminal one (at most 10 looks).
async fn statuses(provider: &CloudRunProvider, job: &Job, pid: &str) -> Vec<JobStatus> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let status = provider.status(job, pid).await.expect("status");
        let terminal = !matches!(status, JobStatus::Pending | JobStatus::Running);
        seen.push(status);
        if terminal {
            break;
        }
    }
    seen
}

fn job_id() -> String {
    pushpool_provider_cloud_run::job_id(
        "elegant-caribou",
        &format!("pushpool-{}-1", Uuid::from_u128(RUN_ID)),
    )
}

#[tokio::test]
async fn the_default_template_becomes_this_jobs_create_body() {
    let s = setup().await;
    s.registry.require_token();
    let job = job(s.variables()).await;
    let pid = s.provider.submit(&job).await.expect("submitted");

    let job_id = job_id();
    assert!(job_id.starts_with("elegant-caribou-"), "{job_id}");
    assert_eq!(job_id.len(), "elegant-caribou-".len() + 10);
    let parent = format!("/v2/projects/{PROJECT}/locations/europe-west1/jobs");
    let executions = s.fake.execution_names();
    assert_eq!(executions.len(), 1);
    assert_eq!(pid, executions[0]);
    assert!(
        pid.starts_with(&format!(
            "projects/{PROJECT}/locations/europe-west1/jobs/{job_id}/executions/{job_id}-"
        )),
        "{pid}"
    );

    // The calls, in order: create, wait for Ready (reconciling, then ready), run.
    let calls = s.fake.calls();
    let summary: Vec<(String, String, String, String)> = calls
        .iter()
        .map(|c| {
            (
                c.op.clone(),
                c.method.clone(),
                c.path.clone(),
                c.query.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "jobs.create".into(),
                "POST".into(),
                parent.clone(),
                format!("jobId={job_id}")
            ),
            (
                "jobs.get".into(),
                "GET".into(),
                format!("{parent}/{job_id}"),
                String::new()
            ),
            (
                "jobs.get".into(),
                "GET".into(),
                format!("{parent}/{job_id}"),
                String::new()
            ),
            (
                "jobs.run".into(),
                "POST".into(),
                format!("{parent}/{job_id}:run"),
                String::new()
            ),
        ]
    );
    assert_eq!(calls[3].body, json!({}));

    let run_id = Uuid::from_u128(RUN_ID).to_string();
    let labels = json!({
        "team": "data-eng",
        "prefect-io-flow-run-id": run_id,
        "prefect-io-flow-run-name": "elegant-caribou",
        "prefect-io-work-pool-name": "my-cloud-run-pool",
        "pushpool-submission": format!("pushpool-{run_id}-1"),
    });
    assert_eq!(
        calls[0].body,
        json!({
            "client": "prefect",
            "launchStage": "BETA",
            "template": {
                "template": {
                    "containers": [{
                        "env": [
                            {"name": "PREFECT_API_URL", "value": "http://127.0.0.1:4200/api"},
                            {"name": "PREFECT__FLOW_RUN_ID", "value": run_id},
                            {"name": "PREFECT__FLOW_ID", "value": Uuid::from_u128(FLOW_ID).to_string()},
                            {"name": "TEAM", "value": "data"},
                        ],
                        "image": s.image(),
                        "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
                        "command": ["prefect", "flow-run", "execute"],
                    }],
                    "maxRetries": 1,
                    "serviceAccount": "flows@pushpool-test-project.iam.gserviceaccount.com",
                    "timeout": "3600s",
                    "vpcAccess": {"connector": "projects/pushpool-test-project/locations/europe-west1/connectors/flows"},
                },
                "labels": labels,
            },
            "labels": labels,
        })
    );

    // One token, asked the way gcp_auth's CustomServiceAccount asks, for every call.
    let tokens = s.fake.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].header, json!({"alg": "RS256", "typ": "JWT"}));
    assert_eq!(tokens[0].claims["iss"], json!(CLIENT_EMAIL));
    assert_eq!(tokens[0].claims["aud"], json!(s.fake.token_uri));
    assert_eq!(tokens[0].claims["scope"], json!(CLOUD_PLATFORM));
    assert!(tokens[0].signature_valid);

    // The registry was asked anonymously, then with the token it handed out.
    let registry: Vec<(String, bool)> = s
        .registry
        .requests()
        .into_iter()
        .map(|r| (r.path, r.authorised))
        .collect();
    assert_eq!(
        registry,
        vec![
            ("/v2/team/flows/manifests/1".to_owned(), false),
            (
                "/token?service=fake-registry&scope=repository%3Ateam%2Fflows%3Apull".to_owned(),
                false
            ),
            ("/v2/team/flows/manifests/1".to_owned(), true),
        ]
    );
    s.no_violations();
}

#[tokio::test]
async fn a_job_created_by_an_earlier_try_answers_409_and_is_run() {
    let s = setup().await;
    let job = job(s.variables()).await;
    s.fake.inject_error(
        "jobs.run",
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        None,
        1,
    );
    let err = s.provider.submit(&job).await.expect_err("jobs.run failed");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Cloud Run jobs.run failed: UNAVAILABLE: The service is currently unavailable."
    );
    assert_eq!(s.fake.execution_names(), Vec::<String>::new());

    let pid = s.provider.submit(&job).await.expect("submitted on retry");
    assert_eq!(s.fake.execution_names(), vec![pid]);
    assert_eq!(
        s.fake.ops(),
        [
            "jobs.create",
            "jobs.get",
            "jobs.get",
            "jobs.run",
            "jobs.create",
            "jobs.get",
            "jobs.run"
        ]
    );
    s.no_violations();
}

#[tokio::test]
async fn a_retried_submission_starts_no_second_execution() {
    let s = setup().await;
    let job = job(s.variables()).await;
    let first = s.provider.submit(&job).await.expect("submitted");
    let second = s.provider.submit(&job).await.expect("submitted again");
    let third = s.provider.submit(&job).await.expect("and again");
    assert_eq!(first, second);
    assert_eq!(first, third);
    assert_eq!(s.fake.calls_of("jobs.run").len(), 1);
    assert_eq!(s.fake.execution_names(), vec![first]);
    assert_eq!(s.fake.job_names().len(), 1);
    // A new attempt is a new job.
    let next = job_for(s.variables(), RUN_ID + 1).await;
    let other = s.provider.submit(&next).await.expect("another run");
    assert_ne!(other, third);
    assert_eq!(s.fake.calls_of("jobs.run").len(), 2);
    s.no_violations();
}

#[tokio::test]
async fn an_image_without_linux_amd64_is_refused_before_any_job() {
    let s = setup().await;
    s.registry.put_arm64_only("team/flows", "arm");
    let image = format!("{}/team/flows:arm", s.registry.host);
    let job = job(with(s.variables(), "image", json!(image))).await;
    let err = s.provider.submit(&job).await.expect_err("refused");
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Image '{image}' offers only linux/arm64; Cloud Run runs linux/amd64 images only: rebuild it with platform=\"linux/amd64\" (docker build --platform linux/amd64)"
        )
    );
    assert_eq!(s.fake.calls(), vec![]);
    s.no_violations();
}

#[tokio::test]
async fn a_single_platform_image_is_read_from_its_config_blob() {
    let s = setup().await;
    s.registry.put_single_amd64("team/single", "2");
    let image = format!("{}/team/single:2", s.registry.host);
    let job = job(with(s.variables(), "image", json!(image))).await;
    s.provider.submit(&job).await.expect("submitted");
    let paths: Vec<String> = s.registry.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/team/single/manifests/2",
            "/v2/team/single/blobs/sha256:9b0efe9eab113e85199446cd3b246395922633c80faf1233c8c5ce0b6a54d63e"
        ]
    );
    s.no_violations();
}

/// Log lines written while a test runs (its own subscriber, this thread only).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_registry_only_warns() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = setup().await;
    // Nothing listens on port 1.
    let image = "127.0.0.1:1/team/flows:1";
    let job = job(with(s.variables(), "image", json!(image))).await;
    let pid = s.provider.submit(&job).await.expect("submitted anyway");
    assert_eq!(s.fake.execution_names(), vec![pid]);
    assert_eq!(
        s.fake.calls_of("jobs.create")[0].body["template"]["template"]["containers"][0]["image"],
        json!(image)
    );
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split_once(" WARN ").map(|(_, w)| w))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "pushpool_provider_cloud_run: could not read the image's platforms from its registry; submitting anyway (Cloud Run runs linux/amd64 images only) flow_run_id={} provider=\"cloud-run\" image=\"{image}\" reason=registry unreachable: error sending request for url (http://{}/v2/team/flows/manifests/1)",
            Uuid::from_u128(RUN_ID),
            "127.0.0.1:1"
        )]
    );
    assert!(!logs.contains("BEGIN PRIVATE KEY"), "{logs}");
    assert!(!logs.contains("ya29."), "{logs}");
    s.no_violations();
}

#[tokio::test]
async fn executions_map_to_job_statuses() {
    let s = setup().await;
    let success = job_for(s.variables(), RUN_ID).await;
    let pid = s.provider.submit(&success).await.unwrap();
    assert_eq!(
        statuses(&s.provider, &success, &pid).await,
        vec![
            JobStatus::Running,
            JobStatus::Exited {
                exit_code: 0,
                detail: String::new()
            }
        ]
    );

    s.fake
        .script_next_execution(ExecutionLifecycle::ExitsNonZero { exit_code: 1 });
    let exits = job_for(s.variables(), RUN_ID + 1).await;
    let pid = s.provider.submit(&exits).await.unwrap();
    let short = pid.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        statuses(&s.provider, &exits, &pid).await,
        vec![
            JobStatus::Running,
            JobStatus::Exited {
                exit_code: 1,
                detail: format!(
                    "Task {short}-task0 failed with message: The container exited with an error."
                )
            }
        ]
    );
    assert_eq!(
        s.fake.calls_of("jobs.executions.tasks.list")[0].path,
        format!("/v2/{pid}/tasks")
    );

    let image_message = "Image 'us-docker.pkg.dev/pushpool-test-project/flows/etl:gone' not found.";
    s.fake
        .script_next_execution(ExecutionLifecycle::FailsToStart {
            message: image_message.into(),
        });
    let pull = job_for(s.variables(), RUN_ID + 2).await;
    let pid = s.provider.submit(&pull).await.unwrap();
    assert_eq!(
        statuses(&s.provider, &pull, &pid).await,
        vec![JobStatus::Failed {
            reason: image_message.into()
        }]
    );

    s.fake
        .script_next_execution(ExecutionLifecycle::RunsUntilCancelled);
    let cancelled = job_for(s.variables(), RUN_ID + 3).await;
    let pid = s.provider.submit(&cancelled).await.unwrap();
    assert_eq!(
        s.provider.status(&cancelled, &pid).await.unwrap(),
        JobStatus::Running
    );
    s.provider
        .cancel(&cancelled, &pid)
        .await
        .expect("cancelled");
    assert_eq!(
        s.provider.status(&cancelled, &pid).await.unwrap(),
        JobStatus::Failed {
            reason: "Cloud Run execution was cancelled: The execution was cancelled.".into()
        }
    );
    assert_eq!(
        s.fake.calls_of("jobs.executions.cancel")[0].path,
        format!("/v2/{pid}:cancel")
    );
    // Cancelling a finished execution, or one that is gone, is not an error.
    s.provider
        .cancel(&cancelled, &pid)
        .await
        .expect("already finished");
    let gone = format!(
        "projects/{PROJECT}/locations/europe-west1/jobs/{}/executions/nope-12345",
        job_id()
    );
    s.provider.cancel(&cancelled, &gone).await.expect("gone");

    assert_eq!(
        s.provider.status(&cancelled, &gone).await.unwrap(),
        JobStatus::Missing {
            reason: format!(
                "Cloud Run execution {gone} not found (Cloud Run jobs.executions.get failed: NOT_FOUND: Resource '{gone}' was not found)"
            )
        }
    );
    s.no_violations();
}

#[tokio::test]
async fn release_deletes_the_job_unless_keep_job() {
    let s = setup().await;
    let job = job(s.variables()).await;
    let pid = s.provider.submit(&job).await.unwrap();
    assert_eq!(s.fake.job_names().len(), 1);
    assert_eq!(
        s.provider.release(&job, &pid).await.unwrap(),
        Released::Deleted
    );
    assert_eq!(s.fake.job_names(), Vec::<String>::new());
    assert_eq!(
        s.fake.calls_of("jobs.delete")[0].path,
        format!(
            "/v2/projects/{PROJECT}/locations/europe-west1/jobs/{}",
            job_id()
        )
    );
    // Already gone: still deleted.
    assert_eq!(
        s.provider.release(&job, &pid).await.unwrap(),
        Released::Deleted
    );
    assert_eq!(s.fake.calls_of("jobs.delete").len(), 2);

    let kept = job_for(with(s.variables(), "keep_job", json!(true)), RUN_ID + 1).await;
    let pid = s.provider.submit(&kept).await.unwrap();
    assert_eq!(
        s.provider.release(&kept, &pid).await.unwrap(),
        Released::Kept
    );
    assert_eq!(s.fake.calls_of("jobs.delete").len(), 2);
    assert_eq!(s.fake.job_names().len(), 1);
    s.no_violations();
}

#[tokio::test]
async fn throttling_is_transient_with_retry_after() {
    let s = setup().await;
    let job = job(s.variables()).await;
    s.fake.inject_error(
        "jobs.create",
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Job create requests' and limit 'Job create requests per minute per region' of service 'run.googleapis.com'.",
        Some("30"),
        1,
    );
    let err = s.provider.submit(&job).await.expect_err("throttled");
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        err.to_string(),
        "Cloud Run jobs.create failed: RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Job create requests' and limit 'Job create requests per minute per region' of service 'run.googleapis.com'."
    );
    s.no_violations();
}

#[tokio::test]
async fn permission_denied_is_permanent_with_googles_message() {
    let s = setup().await;
    let job = job(s.variables()).await;
    let message = format!(
        "Permission 'run.jobs.create' denied on resource 'projects/{PROJECT}/locations/europe-west1/jobs/{}' (or resource may not exist).",
        job_id()
    );
    s.fake
        .inject_error("jobs.create", 403, "PERMISSION_DENIED", &message, None, 1);
    let err = s.provider.submit(&job).await.expect_err("denied");
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Cloud Run jobs.create failed: PERMISSION_DENIED: {message} The Google credentials pushpool \
             used may not do this: grant their service account the Cloud Run Developer role \
             (roles/run.developer) on the project, and iam.serviceAccounts.actAs on the job's \
             service account."
        )
    );
    s.no_violations();
}

#[tokio::test]
async fn a_run_refused_for_good_deletes_the_job_it_would_leave_behind() {
    let s = setup().await;
    let job = job(s.variables()).await;
    let message = format!(
        "Permission 'run.jobs.run' denied on resource 'projects/{PROJECT}/locations/europe-west1/jobs/{}' (or resource may not exist).",
        job_id()
    );
    s.fake
        .inject_error("jobs.run", 403, "PERMISSION_DENIED", &message, None, 1);
    let err = s.provider.submit(&job).await.expect_err("denied");
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Cloud Run jobs.run failed: PERMISSION_DENIED: {message} The Google credentials pushpool \
             used may not do this: grant their service account the Cloud Run Developer role \
             (roles/run.developer) on the project, and iam.serviceAccounts.actAs on the job's \
             service account."
        )
    );
    assert_eq!(
        s.fake.ops(),
        [
            "jobs.create",
            "jobs.get",
            "jobs.get",
            "jobs.run",
            "jobs.delete"
        ]
    );
    assert_eq!(s.fake.job_names(), Vec::<String>::new());
    s.no_violations();
}

#[tokio::test]
async fn a_missing_image_fails_the_job_and_deletes_it() {
    let s = setup().await;
    let message = format!("Image '{}' not found.", s.image());
    s.fake.script_next_job(JobReadiness::ContainerMissing {
        message: message.clone(),
    });
    let job = job(s.variables()).await;
    let err = s.provider.submit(&job).await.expect_err("not ready");
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Cloud Run job {} could not be created: CONTAINER_MISSING: {message}",
            job_id()
        )
    );
    assert_eq!(
        s.fake.ops(),
        ["jobs.create", "jobs.get", "jobs.get", "jobs.delete"]
    );
    assert_eq!(s.fake.job_names(), Vec::<String>::new());
    s.no_violations();
}

#[tokio::test]
async fn job_variables_are_checked_against_cloud_run_limits() {
    let s = setup().await;
    let vars = |v: Value| v.as_object().cloned().unwrap();
    s.provider
        .check_job_variables(&vars(s.variables()))
        .expect("typical variables pass");
    for (v, expected) in [
        (
            json!({"cpu": "500m", "memory": "512Mi"}),
            "invalid job configuration: cpu: \"500m\" is not a vCPU count Cloud Run jobs accept: use one of 1, 2, 4, 6, 8 (or the same in millicpu, e.g. \"1000m\")",
        ),
        (
            json!({"cpu": "1000m", "memory": "8Gi"}),
            "invalid job configuration: memory: \"8Gi\" does not fit 1 vCPU: Cloud Run jobs with 1 vCPU need 512Mi to 4Gi of memory",
        ),
        (
            json!({"memory": "64Gi"}),
            "invalid job configuration: memory: \"64Gi\" is outside what Cloud Run jobs accept: 512Mi to 32Gi",
        ),
        (
            json!({"memory": "2GB"}),
            "invalid job configuration: memory: \"2GB\" is not a memory size: use a whole number followed by Mi, Gi, M or G (e.g. \"512Mi\")",
        ),
        (
            json!({"timeout": 700000}),
            "invalid job configuration: timeout: 700000 s is outside what Cloud Run jobs accept: 1 to 604800 seconds (7 days)",
        ),
        (
            json!({"max_retries": 11}),
            "invalid job configuration: max_retries: 11 is outside what Cloud Run jobs accept: 0 to 10 retries",
        ),
        (
            json!({"region": "europe west1"}),
            "invalid job configuration: region: \"europe west1\" is not a Google Cloud region name (e.g. \"us-central1\", \"europe-west4\")",
        ),
    ] {
        let err = s.provider.check_job_variables(&vars(v)).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }

    // The same checks on the rendered configuration, naming its field, before any call.
    let job = job(with(s.variables(), "memory", json!("16Gi"))).await;
    match s.provider.submit(&job).await {
        Err(ProviderError::InvalidConfiguration { field, message }) => {
            assert_eq!(
                field,
                "job_body.template.template.containers[0].resources.limits.memory"
            );
            assert_eq!(
                message,
                "\"16Gi\" does not fit 2 vCPU: Cloud Run jobs with 2 vCPU need 512Mi to 8Gi of memory"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.fake.calls(), vec![]);
    assert_eq!(s.fake.token_requests(), vec![]);
    s.no_violations();
}

#[tokio::test]
async fn no_secret_in_errors_debug_or_logs() {
    let s = setup().await;
    let key = s.fake.service_account_info()["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_body = key.lines().nth(1).unwrap().to_owned();
    s.fake.refuse_tokens(10);
    let job = job(s.variables()).await;
    let err = s.provider.submit(&job).await.expect_err("refused key");
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Google OAuth token request for service account {CLIENT_EMAIL} failed: token request failed (the token endpoint refused the credentials: check that the key exists, is enabled and belongs to the project)"
        )
    );
    // gcp_auth tries five times; nothing reached Cloud Run.
    assert_eq!(s.fake.token_requests().len(), 5);
    assert_eq!(s.fake.calls(), vec![]);

    let masked = job_for(
        with(
            s.variables(),
            "credentials",
            json!({"service_account_info": {"private_key": "********", "client_email": "********"}, "project": PROJECT}),
        ),
        RUN_ID + 1,
    )
    .await;
    let masked_err = s.provider.submit(&masked).await.expect_err("masked");

    for text in [
        format!("{err} {err:?}"),
        format!("{masked_err} {masked_err:?}"),
        format!("{:?}", s.provider),
        format!("{job:?}"),
    ] {
        assert!(!text.contains(&key_body), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains("ya29."), "{text}");
    }
    s.no_violations();
}

#[tokio::test]
async fn without_a_key_the_default_credentials_are_used() {
    let fake = FakeCloudRun::start().await;
    let registry = FakeRegistry::start().await;
    registry.put_multi_platform("team/flows", "1");
    let ambient =
        gcp_auth::CustomServiceAccount::from_json(&fake.service_account_info().to_string())
            .expect("a key");
    let provider = CloudRunProvider::new(CloudRunSettings {
        default_credentials: Some(Arc::new(ambient)),
        ..settings(&fake)
    })
    .unwrap();
    let vars = json!({
        "credentials": {"service_account_info": null, "service_account_file": null, "project": "other-project"},
        "image": format!("{}/team/flows:1", registry.host),
    });
    let job = job(vars).await;
    let pid = provider.submit(&job).await.expect("submitted");
    assert!(
        pid.starts_with("projects/other-project/locations/us-central1/jobs/elegant-caribou-"),
        "{pid}"
    );
    assert_eq!(fake.token_requests().len(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_fake_flags_requests_cloud_run_would_refuse() {
    let fake = FakeCloudRun::start().await;
    let parent = format!("v2/projects/{PROJECT}/locations/us-central1/jobs");

    // No token.
    let (status, body) = fake
        .raw("GET", &format!("{parent}/some-job"), None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        fake.take_violations(),
        ["jobs.get: no Authorization: Bearer header"]
    );

    // A malformed job: output-only fields, a bad enum, no image, a bad jobId, a bad cpu, a
    // bad label, an unknown field, a duration that is a number.
    let token = fake.issue_token();
    let (status, body) = fake
        .raw(
            "POST",
            &format!("{parent}?jobId=Bad_Name"),
            Some(&token),
            Some(json!({
                "uid": "x",
                "launchStage": "SOMETIMES",
                "labels": {"Team": "data"},
                "template": {"template": {
                    "containers": [{"resources": {"limits": {"cpu": "3"}}}],
                    "timeout": 600,
                    "retries": 2
                }}
            })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        fake.take_violations(),
        [
            "body.uid: output-only field in a request",
            "body.launchStage: \"SOMETIMES\" is not one of its enum values",
            "body.template.template.containers[0].image: required",
            "body.template.template.timeout: must be a string, not 600",
            "body.template.template.retries: unknown field",
            "jobs.create: jobId \"Bad_Name\" is not a lowercase RFC 1035 label of at most 63 characters",
            "jobs.create: containers[0].resources.limits.cpu = \"3\" is not supported",
            "jobs.create: label \"Team\": \"data\" breaks Cloud Run's label rules",
        ]
    );

    // A URL no method has.
    let (status, _) = fake
        .raw(
            "POST",
            &format!("{parent}/some-job:start"),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        fake.take_violations(),
        [format!(
            "POST /{parent}/some-job:start: no Cloud Run v2 method has this URL template and HTTP method"
        )]
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}
