//! The `azure-container-instance:push` provider against the spec-checked fake Azure
//! (`pushpool_tests::fake_aci`): the exact token request and container group body, the
//! long-running create operation, status for each scripted instance view, cancel, release,
//! error classification and bounds, and no secret anywhere. Every test ends with no
//! violation of the spec recorded by the fake.

use std::time::{Duration, Instant};

use pushpool_core::pool_types::pool_type;
use pushpool_core::template::{BaseJobTemplate, merge_job_variables, render};
use pushpool_provider_aci::{AciProvider, AciSettings};
use pushpool_providers::{Job, JobStatus, Provider, ProviderError, Released};
use pushpool_tests::fake_aci::{
    AUTHORITY, AUTHORITY_HOST, CLIENT_ID, CLIENT_SECRET, FakeAci, LOCATION, Lifecycle, Op,
    RESOURCE_GROUP, SUBSCRIPTION_ID, TENANT_ID, pull_failure_message, redirecting_transport,
};
use serde_json::{Map, Value, json};

const RUN_ID: &str = "6f1d2c3b-4a5e-4f60-8172-8394a5b6c7d8";
const FLOW_ID: &str = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9";
const API_URL: &str = "http://127.0.0.1:4200/api";
const API_KEY: &str = "pnu_job-api-key-secret-0123456789";
const DB_PASSWORD: &str = "hunter2-db-password";
/// `container_group_name("elegant-caribou", "pushpool-6f1d2c3b-4a5e-4f60-8172-8394a5b6c7d8-1")`.
const GROUP: &str = "elegant-caribou-8dcc72f1";

fn group_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    )
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// The job the service builds for the default `azure-container-instance:push` template and
/// `variables` (as `pushpool_service::job::build_job` does: rendered template, the flow run
/// environment under the rendered `env`, the default command, the run's name).
fn job_with(variables: Value) -> Job {
    let template = BaseJobTemplate::parse(
        &pool_type("azure-container-instance:push")
            .expect("pool type")
            .default_base_job_template(),
    )
    .expect("template");
    let defaults = template.defaults();
    let variables = obj(variables);
    let values = merge_job_variables(&[&defaults, &variables]);
    let mut configuration = render(template.job_configuration(), &values);
    let mut env = obj(json!({
        "PREFECT_API_URL": API_URL,
        "PREFECT_API_KEY": API_KEY,
        "PREFECT__FLOW_RUN_ID": RUN_ID,
        "PREFECT__FLOW_ID": FLOW_ID,
    }));
    if let Some(Value::Object(rendered)) = configuration.get("env") {
        env.extend(rendered.clone());
    }
    configuration.insert("env".into(), Value::Object(env));
    configuration
        .entry("command")
        .or_insert_with(|| json!("prefect flow-run execute"));
    configuration
        .entry("name")
        .or_insert_with(|| json!("elegant-caribou"));
    Job {
        flow_run_id: RUN_ID.parse().unwrap(),
        flow_run_name: "elegant-caribou".into(),
        pool_type: "azure-container-instance:push".into(),
        configuration,
        idempotency_key: format!("pushpool-{RUN_ID}-1"),
    }
}

/// Typical variables of a deployment.
fn typical() -> Value {
    json!({
        "image": "prefecthq/prefect:3-latest",
        "subscription_id": SUBSCRIPTION_ID,
        "resource_group_name": RESOURCE_GROUP,
        "aci_credentials": FakeAci::credentials_block(),
        "cpu": 1.5,
        "memory": 2.0,
        "env": {"EXTRA_PIP_PACKAGES": "pandas", "DB_PASSWORD": DB_PASSWORD},
    })
}

fn with(extra: Value) -> Value {
    let mut v = typical();
    for (k, x) in obj(extra) {
        v[k] = x;
    }
    v
}

fn provider(fake: &FakeAci) -> AciProvider {
    AciProvider::new(fake.settings())
}

fn no_secret(text: &str) {
    for secret in [CLIENT_SECRET, API_KEY, DB_PASSWORD, "fake-arm-token-"] {
        assert!(!text.contains(secret), "{secret} leaked in: {text}");
    }
}

/// The body pushpool sends for [`typical`] variables.
fn expected_body() -> Value {
    json!({
        "location": LOCATION,
        "properties": {
            "containers": [{
                "name": GROUP,
                "properties": {
                    "image": "prefecthq/prefect:3-latest",
                    "command": ["/opt/prefect/entrypoint.sh", "prefect", "flow-run", "execute"],
                    "resources": {"requests": {"cpu": 1.5, "memoryInGB": 2.0}},
                    "environmentVariables": [
                        {"name": "PREFECT_API_URL", "value": API_URL},
                        {"name": "PREFECT_API_KEY", "secureValue": API_KEY},
                        {"name": "PREFECT__FLOW_RUN_ID", "value": RUN_ID},
                        {"name": "PREFECT__FLOW_ID", "value": FLOW_ID},
                        {"name": "EXTRA_PIP_PACKAGES", "value": "pandas"},
                        {"name": "DB_PASSWORD", "secureValue": DB_PASSWORD},
                    ],
                },
            }],
            "osType": "Linux",
            "restartPolicy": "Never",
        },
    })
}

#[tokio::test]
async fn submit_puts_the_exact_container_group_and_follows_the_create_operation() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let job = job_with(typical());

    let pid = provider.submit(&job).await.expect("submitted");
    assert_eq!(pid, group_path(GROUP));

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        serde_json::to_value(&tokens[0]).unwrap(),
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "grant_type": "client_credentials", "scope": "https://management.azure.com/.default"})
    );
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{RESOURCE_GROUP}");
    let operation = format!(
        "/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.ContainerInstance/locations/{LOCATION}/operations/00000002-0000-4000-8000-000000000002"
    );
    assert_eq!(
        fake.calls(),
        [
            format!("GET {}", group_path(GROUP)),
            format!("GET {rg}"),
            format!("PUT {}", group_path(GROUP)),
            format!("GET {operation}"),
            format!("GET {operation}"),
        ]
    );
    let versions: Vec<Option<String>> =
        fake.requests().into_iter().map(|r| r.api_version).collect();
    let aci = Some("2023-05-01".to_owned());
    assert_eq!(
        versions,
        [
            aci.clone(),
            Some("2021-04-01".into()),
            aci.clone(),
            aci.clone(),
            aci
        ]
    );
    assert_eq!(fake.puts(), [expected_body()]);
    assert_eq!(fake.created(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn gpu_variables_become_the_containers_gpu_request() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let job = job_with(with(json!({"gpu_count": 1, "gpu_sku": "V100"})));
    provider.submit(&job).await.expect("submitted");
    let mut expected = expected_body();
    expected["properties"]["containers"][0]["properties"]["resources"]["requests"] =
        json!({"cpu": 1.5, "memoryInGB": 2.0, "gpu": {"count": 1, "sku": "V100"}});
    assert_eq!(fake.puts(), [expected]);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_gpu_count_without_a_sku_is_refused_before_any_call() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let err = provider
        .submit(&job_with(with(json!({"gpu_count": 2}))))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid job configuration: gpu_sku: gpu_count asks for GPUs but gpu_sku names none: set \
         gpu_sku to one of K80, P100, V100"
    );
    let err = provider
        .check_job_variables(&obj(json!({"gpu_count": 2, "gpu_sku": null})))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid job configuration: gpu_sku: gpu_count asks for GPUs but gpu_sku names none: set \
         gpu_sku to one of K80, P100, V100"
    );
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn template_options_become_identity_registry_subnets_and_dns() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let identity = format!(
        "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/prefect"
    );
    let subnet = format!(
        "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    );
    let job = job_with(with(json!({
        "identities": [identity],
        "image_registry": {"registry_url": "myregistry.azurecr.io", "identity": identity},
        "subnet_ids": [subnet],
        "dns_servers": ["10.0.0.4", "10.0.0.5"],
        "entrypoint": null,
        "command": "python -m my_flow --flag 'a b'",
        "env": {},
        "name": "My Nightly ETL!",
    })));
    let pid = provider.submit(&job).await.expect("submitted");
    let name = "my-nightly-etl-8dcc72f1";
    assert_eq!(pid, group_path(name));
    let put = &fake.puts()[0];
    assert_eq!(
        put["identity"],
        json!({"type": "UserAssigned", "userAssignedIdentities": {identity.clone(): {}}})
    );
    assert_eq!(
        put["properties"]["imageRegistryCredentials"],
        json!([{"server": "myregistry.azurecr.io", "identity": identity}])
    );
    assert_eq!(put["properties"]["subnetIds"], json!([{"id": subnet}]));
    assert_eq!(
        put["properties"]["dnsConfig"],
        json!({"nameServers": ["10.0.0.4", "10.0.0.5"]})
    );
    assert_eq!(
        put["properties"]["containers"][0]["properties"]["command"],
        json!(["python", "-m", "my_flow", "--flag", "a b"])
    );
    assert_eq!(put["properties"]["containers"][0]["name"], json!(name));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn secrets_go_as_secure_values_and_never_into_errors_or_debug_output() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let registry_password = "registry-password-s3cr3t";
    let job = job_with(with(json!({
        "image_registry": {"registry_url": "docker.io", "username": "me",
                           "password": registry_password, "reauth": true},
    })));
    // ARM echoing a secure value and the registry password in an error.
    fake.inject_error(
        Op::Create,
        400,
        "InvalidRequestContent",
        &format!("bad values '{DB_PASSWORD}' '{API_KEY}' '{registry_password}'"),
        1,
        None,
    );
    let err = provider.submit(&job).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "ACI container group create failed: InvalidRequestContent: bad values '<redacted>' \
         '<redacted>' '<redacted>'. ACI refused a value pushpool sent from the flow run's job \
         configuration: fix the job variable or ARM template field it names."
    );
    let put = &fake.puts()[0];
    assert_eq!(
        put["properties"]["imageRegistryCredentials"],
        json!([{"server": "docker.io", "username": "me", "password": registry_password}])
    );
    let pid = provider.submit(&job).await.expect("submitted");
    // What ARM answers holds no secret either.
    fake.set_retry_after(None);
    let status = provider.status(&job, &pid).await.unwrap();
    assert_eq!(status, JobStatus::Running);
    for text in [
        format!("{err} {err:?}"),
        format!("{provider:?}"),
        format!("{:?}", fake.settings()),
        format!("{job:?}"),
        format!("{status:?}"),
    ] {
        no_secret(&text);
        assert!(!text.contains(registry_password), "{text}");
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_retried_submit_sends_the_same_put_returns_the_same_pid_and_never_redeploys() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let job = job_with(typical());
    fake.inject_error(
        Op::Create,
        503,
        "ServiceUnavailable",
        "The service is temporarily unavailable.",
        1,
        None,
    );
    let err = provider.submit(&job).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ACI container group create failed: ServiceUnavailable: The service is temporarily unavailable."
    );
    let pid = provider.submit(&job).await.expect("the retry submits");
    assert_eq!(pid, group_path(GROUP));
    let puts = fake.puts();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0], puts[1]);
    assert_eq!(puts[0], expected_body());

    // The group runs to completion; a resubmission (a crashed submitter) finds it and sends
    // no PUT, which would deploy a terminated group anew.
    assert_eq!(
        provider.status(&job, &pid).await.unwrap(),
        JobStatus::Running
    );
    assert_eq!(
        provider.status(&job, &pid).await.unwrap(),
        JobStatus::Exited {
            exit_code: 0,
            detail: "Completed".into()
        }
    );
    let before = fake.calls().len();
    assert_eq!(provider.submit(&job).await.unwrap(), pid);
    assert_eq!(
        fake.calls()[before..],
        [format!("GET {}", group_path(GROUP))]
    );
    assert_eq!(fake.puts().len(), 2);
    assert_eq!(fake.created(), 1);
    assert_eq!(fake.redeployments(), 0);
    // One credential, one token for all of it.
    assert_eq!(fake.token_requests().len(), 1);
    assert_eq!(provider.cached_credentials(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

const INACCESSIBLE: &str = "The image 'prefecthq/prefect:3-latest' in container group 'elegant-caribou-8dcc72f1' is not accessible. Please check the image and registry credential.";

#[tokio::test]
async fn a_failed_create_operation_is_permanent_with_arms_message_and_the_group_is_deleted() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    fake.script_next_group(Lifecycle::ProvisioningFails {
        code: "InaccessibleImage".into(),
        message: INACCESSIBLE.into(),
    });
    let err = provider.submit(&job_with(typical())).await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("ACI container group create failed: InaccessibleImage: {INACCESSIBLE}")
    );
    assert_eq!(
        fake.calls().last().cloned(),
        Some(format!("DELETE {}", group_path(GROUP)))
    );
    assert_eq!(fake.group_names(), Vec::<String>::new());
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_kept_failed_group_stays_and_reads_failed_with_arms_reason() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    fake.script_next_group(Lifecycle::ProvisioningFails {
        code: "InaccessibleImage".into(),
        message: INACCESSIBLE.into(),
    });
    let job = job_with(with(json!({"keep_container_group": true})));
    let err = provider.submit(&job).await.unwrap_err();
    assert!(!err.is_transient());
    assert!(!fake.calls().iter().any(|c| c.starts_with("DELETE")));
    assert_eq!(
        provider.status(&job, &group_path(GROUP)).await.unwrap(),
        JobStatus::Failed {
            reason: format!(
                "ACI container group provisioning failed: InaccessibleImage: {INACCESSIBLE}"
            )
        }
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn status_follows_each_scripted_instance_view() {
    let fake = FakeAci::start().await;
    fake.set_retry_after(None);
    let provider = provider(&fake);
    let cases: Vec<(Lifecycle, Vec<JobStatus>)> = vec![
        (
            Lifecycle::Completes,
            vec![
                JobStatus::Running,
                JobStatus::Exited {
                    exit_code: 0,
                    detail: "Completed".into(),
                },
            ],
        ),
        (
            Lifecycle::Exits { exit_code: 1 },
            vec![
                JobStatus::Running,
                JobStatus::Exited {
                    exit_code: 1,
                    detail: "Error".into(),
                },
            ],
        ),
        (
            Lifecycle::ImagePullFails,
            vec![
                JobStatus::Pending,
                JobStatus::Failed {
                    reason: pull_failure_message("prefecthq/prefect:3-latest"),
                },
            ],
        ),
        (
            Lifecycle::Runs,
            vec![JobStatus::Running, JobStatus::Running],
        ),
    ];
    for (i, (lifecycle, statuses)) in cases.into_iter().enumerate() {
        fake.script_next_group(lifecycle.clone());
        let mut job = job_with(typical());
        job.idempotency_key = format!("pushpool-{RUN_ID}-{}", i + 10);
        let pid = provider.submit(&job).await.expect("submitted");
        let mut seen = Vec::new();
        for _ in &statuses {
            seen.push(provider.status(&job, &pid).await.unwrap());
        }
        assert_eq!(seen, statuses, "{lifecycle:?}");
    }
    assert_eq!(
        pull_failure_message("prefecthq/prefect:3-latest"),
        "Failed to pull image \"prefecthq/prefect:3-latest\": rpc error: code 2 desc Error: image prefecthq/prefect:3-latest not found"
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn cancel_stops_the_group_and_a_missing_group_is_fine() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    fake.script_next_group(Lifecycle::Runs);
    let job = job_with(typical());
    let pid = provider.submit(&job).await.unwrap();
    assert_eq!(
        provider.status(&job, &pid).await.unwrap(),
        JobStatus::Running
    );
    provider.cancel(&job, &pid).await.expect("stopped");
    assert_eq!(
        fake.calls().last().cloned(),
        Some(format!("POST {}/stop", group_path(GROUP)))
    );
    assert_eq!(
        provider.status(&job, &pid).await.unwrap(),
        JobStatus::Failed {
            reason: format!("ACI container {GROUP} terminated without an exit code: Stopped")
        }
    );
    assert_eq!(
        provider.release(&job, &pid).await.unwrap(),
        Released::Deleted
    );
    provider
        .cancel(&job, &pid)
        .await
        .expect("a missing group is stopped");
    assert_eq!(
        provider.status(&job, &pid).await.unwrap(),
        JobStatus::Missing {
            reason: format!(
                "ACI container group {GROUP} not found: ResourceNotFound: The Resource 'Microsoft.ContainerInstance/containerGroups/{GROUP}' under resource group '{RESOURCE_GROUP}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
        }
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn release_deletes_unless_keep_container_group() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let job = job_with(typical());
    let pid = provider.submit(&job).await.unwrap();
    assert_eq!(
        provider.release(&job, &pid).await.unwrap(),
        Released::Deleted
    );
    assert_eq!(
        fake.calls().last().cloned(),
        Some(format!("DELETE {}", group_path(GROUP)))
    );
    assert_eq!(fake.group_names(), Vec::<String>::new());
    // Already gone: still deleted.
    assert_eq!(
        provider.release(&job, &pid).await.unwrap(),
        Released::Deleted
    );

    let kept = job_with(with(json!({"keep_container_group": true})));
    let mut kept_job = kept.clone();
    kept_job.idempotency_key = format!("pushpool-{RUN_ID}-2");
    let pid = provider.submit(&kept_job).await.unwrap();
    let calls = fake.calls().len();
    assert_eq!(
        provider.release(&kept_job, &pid).await.unwrap(),
        Released::Kept
    );
    assert_eq!(fake.calls().len(), calls, "no call for a kept group");
    assert_eq!(fake.group_names().len(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn throttling_is_transient_with_arms_retry_after() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    fake.inject_error(
        Op::Create,
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00.",
        1,
        Some(17),
    );
    let err = provider.submit(&job_with(typical())).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));
    assert_eq!(
        err.to_string(),
        "ACI container group create failed: TooManyRequests: The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00."
    );
    fake.inject_error(Op::Read, 500, "InternalServerError", "boom", 1, None);
    let err = provider
        .status(&job_with(typical()), &group_path(GROUP))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "ACI container group read failed: InternalServerError: boom"
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn arm_refusals_are_permanent_with_arms_code_and_message() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let err = provider
        .submit(&job_with(with(
            json!({"resource_group_name": "missing-rg"}),
        )))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ACI container group create failed: ResourceGroupNotFound: Resource group 'missing-rg' could \
         not be found. Create the resource group, or set resource_group_name to an existing one."
    );
    let other = "11111111-2222-4333-8444-555555555555";
    let err = provider
        .submit(&job_with(with(json!({"subscription_id": other}))))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ACI container group create failed: SubscriptionNotFound: The subscription '{other}' could \
             not be found. Check subscription_id: the service principal must see that subscription."
        )
    );
    fake.inject_error(
        Op::Create,
        403,
        "AuthorizationFailed",
        "The client does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write'.",
        1,
        None,
    );
    let err = provider.submit(&job_with(typical())).await.unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "ACI container group create failed: AuthorizationFailed: The client does not have \
         authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write'. The \
         service principal of the work pool's aci_credentials may not do this: give it a role with \
         Microsoft.ContainerInstance/containerGroups/* on the resource group (for example \
         Contributor)."
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_unreachable_authority_is_transient_within_the_bound() {
    let fake = FakeAci::start().await;
    // A black hole: connections are accepted by the kernel, nothing ever answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = AciSettings {
        token_transport: Some(redirecting_transport(
            AUTHORITY_HOST,
            hole.local_addr().unwrap(),
        )),
        ..fake.settings()
    };
    assert_eq!(settings.token_timeout, Duration::from_secs(20));
    let provider = AciProvider::new(settings);
    let started = Instant::now();
    let err = provider.submit(&job_with(typical())).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert!(elapsed >= Duration::from_secs(19), "{elapsed:?}");
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("Entra ID token request timed out after 20 s ({AUTHORITY})")
    );

    // Refused connections: a few quick retries, then transient.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let provider = AciProvider::new(AciSettings {
        token_transport: Some(redirecting_transport(AUTHORITY_HOST, closed)),
        ..fake.settings()
    });
    let started = Instant::now();
    let err = provider.submit(&job_with(typical())).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .starts_with("Entra ID token request failed: the authority could not be reached: "),
        "{err}"
    );
    no_secret(&format!("{err} {err:?}"));
    assert!(fake.requests().is_empty());
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_wrong_secret_is_permanent_with_entras_reason_and_without_the_secret() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let wrong = "Wrong~Secret.Value-0000000000";
    let job = job_with(with(json!({"aci_credentials": {
        "client_id": CLIENT_ID, "tenant_id": TENANT_ID, "client_secret": wrong}})));
    let err = provider.submit(&job).await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Entra ID token request failed (HTTP 401, error codes 7000215): AADSTS7000215: Invalid client secret provided. \
             Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret \
             added to app '{CLIENT_ID}'. Trace ID: 0d1e2f30-4a5b-4c6d-8e7f-8091a2b3c4d5 Correlation ID: \
             1e2f3041-5b6c-4d7e-8f80-91a2b3c4d5e6 Timestamp: 2026-01-01 00:00:00Z"
        )
    );
    let text = format!("{err} {err:?} {provider:?}");
    assert!(!text.contains(wrong), "{text}");
    assert!(fake.requests().is_empty(), "no ARM call without a token");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn check_job_variables_refuses_bad_cpu_and_memory_by_name() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let merged = |extra: Value| {
        let mut v = obj(typical());
        v.extend(obj(extra));
        v
    };
    provider
        .check_job_variables(&merged(json!({})))
        .expect("typical variables pass");
    for (extra, field, message) in [
        (
            json!({"cpu": 8}),
            "cpu",
            "8 vCPU is outside 0.1–4 vCPU (Azure docs, Resource availability & quota limits for ACI \
             (articles/container-instances/container-instances-resource-and-quota-limits.md), Standard Container \
             Resources, Linux Container Groups: Max CPU 4)",
        ),
        (
            json!({"memory": 32.0}),
            "memory",
            "32 GB is outside 0.1–16 GB (Azure docs, Resource availability & quota limits for ACI \
             (articles/container-instances/container-instances-resource-and-quota-limits.md), Standard Container \
             Resources, Linux Container Groups: Max Memory (GB) 16)",
        ),
        (json!({"cpu": "two"}), "cpu", "\"two\" is not a number"),
        (
            json!({"subscription_id": "not-a-guid"}),
            "subscription_id",
            "an Azure subscription id is a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        ),
    ] {
        match provider.check_job_variables(&merged(extra.clone())) {
            Err(ProviderError::InvalidConfiguration {
                field: f,
                message: m,
            }) => {
                assert_eq!((f.as_str(), m.as_str()), (field, message), "{extra}");
            }
            other => panic!("{extra}: {other:?}"),
        }
    }
    // The same limits in submit, naming the field of the rendered configuration, before any
    // call to Azure.
    match provider.submit(&job_with(with(json!({"cpu": 8})))).await {
        Err(ProviderError::InvalidConfiguration { field, .. }) => assert_eq!(
            field,
            "arm_template.resources[0].properties.containers[0].properties.resources.requests.cpu"
        ),
        other => panic!("{other:?}"),
    }
    match provider
        .submit(&job_with(with(json!({"resource_group_name": "bad/name"}))))
        .await
    {
        Err(ProviderError::InvalidConfiguration { field, .. }) => {
            assert_eq!(field, "resource_group_name")
        }
        other => panic!("{other:?}"),
    }
    let mut no_creds = job_with(typical());
    no_creds.configuration.remove("aci_credentials");
    match provider.submit(&no_creds).await {
        Err(ProviderError::InvalidConfiguration { field, .. }) => {
            assert_eq!(field, "aci_credentials")
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.requests().is_empty());
    assert!(fake.token_requests().is_empty());
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn template_expressions_pushpool_cannot_evaluate_are_refused_by_path() {
    let fake = FakeAci::start().await;
    let provider = provider(&fake);
    let mut job = job_with(typical());
    job.configuration["arm_template"]["resources"][0]["tags"] =
        json!({"owner": "[parameters('owner')]"});
    match provider.submit(&job).await {
        Err(ProviderError::InvalidConfiguration { field, .. }) => {
            assert_eq!(field, "arm_template.resources[0].tags.owner")
        }
        other => panic!("{other:?}"),
    }
    // A literal location skips the resource group read.
    let mut job = job_with(typical());
    job.configuration["arm_template"]["parameters"]["location"]["defaultValue"] =
        json!("westeurope");
    provider.submit(&job).await.unwrap();
    assert_eq!(fake.puts()[0]["location"], json!("westeurope"));
    assert!(!fake.calls().iter().any(|c| c.contains("/resourcegroups/")));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_fake_flags_requests_the_real_services_would_refuse() {
    let fake = FakeAci::start().await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/{TENANT_ID}/oauth2/v2.0/token", fake.endpoint);
    // A token request without its scope.
    let resp = http
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(fake.take_violations(), ["token request: no scope field"]);
    let resp: Value = http
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = resp["access_token"].as_str().unwrap().to_owned();
    assert_eq!(fake.violations(), Vec::<String>::new());

    let url = |path: &str, version: &str| format!("{}{path}?api-version={version}", fake.endpoint);
    let path = group_path("flagged");
    // No bearer token.
    let resp = http.get(url(&path, "2023-05-01")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Another api-version.
    let resp = http
        .get(url(&path, "2021-09-01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A PUT without location, with a read-only member, an unknown member, a bad enum value,
    // no container resources, too much memory.
    let body = json!({
        "properties": {
            "provisioningState": "Succeeded",
            "osType": "Plan9",
            "restartPolicy": "Never",
            "colour": "blue",
            "containers": [{"name": "flagged", "properties": {"image": "busybox"}}],
        }
    });
    let resp = http
        .put(url(&path, "2023-05-01"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "InvalidRequestContent");
    // A POST that is not an operation, a bad container group name.
    let resp = http
        .post(url(&format!("{path}/explode"), "2023-05-01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = http
        .get(url(&group_path("Bad--Name"), "2023-05-01"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let p = format!("GET {path}");
    let put = format!("PUT {path}");
    assert_eq!(
        fake.take_violations(),
        [
            format!("{p}: Authentication failed. The 'Authorization' header is missing."),
            format!(
                "{p}: The api-version '2021-09-01' is invalid. The supported versions are '2023-05-01'."
            ),
            format!(
                "{put}: body.properties.provisioningState: read-only in ContainerGroup, not accepted in a request; \
                 body.properties.osType: \"Plan9\" is not one of OperatingSystemTypes [\"Windows\", \"Linux\"]; \
                 body.properties.colour: not a member of ContainerGroup; \
                 body.properties.containers[0].properties.resources: required by Container; \
                 body.location: ARM requires a location (LocationRequired); \
                 the container group requests 0 vCPU: a standard group has more than 0 and 4 at most; \
                 the container group requests 0 GB: a standard group has more than 0 and 16 at most"
            ),
            format!(
                "POST {path}/explode: POST is not an operation of the fake on this URL template"
            ),
            format!(
                "GET {}: The container group name 'Bad--Name' is invalid: 1-63 lowercase letters, numbers and hyphens, \
                 not starting or ending with a hyphen, no consecutive hyphens.",
                group_path("Bad--Name")
            ),
        ]
    );
    assert!(
        fake.requests().is_empty(),
        "refused requests are not accepted"
    );
}

#[tokio::test]
async fn the_fake_checks_gpu_requests_against_the_model_and_the_docs() {
    let fake = FakeAci::start().await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", fake.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = group_path("gpus");
    let body = json!({
        "location": LOCATION,
        "properties": {
            "osType": "Windows",
            "restartPolicy": "Never",
            "containers": [{"name": "gpus", "properties": {"image": "busybox",
                "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0,
                    "gpu": {"count": 3, "sku": "A100"}}}}}],
        }
    });
    let resp = http
        .put(format!("{}{path}?api-version=2023-05-01", fake.endpoint))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        fake.take_violations(),
        [format!(
            "PUT {path}: body.properties.containers[0].properties.resources.requests.gpu.sku: \
             \"A100\" is not one of GpuSku [\"K80\", \"P100\", \"V100\"]; \
             body.properties.containers[0].properties.resources.requests.gpu.count: 3 is not 1, 2 or 4; \
             body.properties.containers[0]: GPU resources need a Linux container group"
        )]
    );
}
