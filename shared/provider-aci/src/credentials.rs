//! Entra ID access tokens for ARM from a job's resolved `azure-container-instance-credentials`
//! block (prefect-azure's `AzureContainerInstanceCredentials`: `client_id`, `tenant_id`,
//! `client_secret`), through `azure_identity::ClientSecretCredential` (OAuth 2.0 client
//! credentials: `POST {authority}/{tenant}/oauth2/v2.0/token`, scope
//! `https://management.azure.com/.default`; spec: `specs/azure/SUMMARY.md`, "Entra ID
//! client-credentials token").
//!
//! Credentials are cached per block under a SHA-256 digest (with the authority), so their own
//! token cache is reused across calls; the cache starts over past [`MAX_CACHED_CREDENTIALS`].
//! Every token request is bounded: azure_core's retry policy is cut to a few quick retries,
//! and the whole acquisition to [`super::AciSettings::token_timeout`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use serde_json::Value;

use super::redact::Redactor;
use pushpool_providers::{Job, ProviderError};

/// The scope of an ARM token.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// How many distinct credential blocks keep cached credentials before the cache starts over.
pub const MAX_CACHED_CREDENTIALS: usize = 64;

/// What Prefect shows instead of a secret when a block is read without `include_secrets`.
const OBFUSCATED: &str = "********";

/// The cache key of a credentials block: a SHA-256 digest, never the secret itself.
type CredentialsKey = [u8; 32];

/// The service principal of a job's `aci_credentials`.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct AciCredentialsBlock {
    pub client_id: String,
    pub tenant_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AciCredentialsBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AciCredentialsBlock")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl AciCredentialsBlock {
    /// The job's `aci_credentials`.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming `aci_credentials` when it is missing or
    /// empty (pushpool has no `DefaultAzureCredential` chain: prefect-azure's fallback when
    /// the block sets nothing), or `aci_credentials.<field>` when a field is missing, not a
    /// string, or Prefect's obfuscation mask. Never holds the secret.
    pub fn from_configuration(job: &Job) -> Result<Self, ProviderError> {
        let block = match job.configuration.get("aci_credentials") {
            Some(Value::Object(block)) => block,
            None | Some(Value::Null) => {
                return Err(ProviderError::invalid(
                    "aci_credentials",
                    "no azure-container-instance-credentials block: set client_id, tenant_id and client_secret \
                     (pushpool has no DefaultAzureCredential chain)",
                ));
            }
            Some(_) => {
                return Err(ProviderError::invalid(
                    "aci_credentials",
                    "must be an azure-container-instance-credentials block (an object)",
                ));
            }
        };
        let field = |key: &str| -> Result<Option<String>, ProviderError> {
            match block.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) if s == OBFUSCATED => Err(ProviderError::invalid(
                    format!("aci_credentials.{key}"),
                    "is Prefect's obfuscation mask, not the value: the block was read without its secrets",
                )),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ProviderError::invalid(
                    format!("aci_credentials.{key}"),
                    "must be a string",
                )),
            }
        };
        let client_id = field("client_id")?;
        let tenant_id = field("tenant_id")?;
        let client_secret = field("client_secret")?;
        match (client_id, tenant_id, client_secret) {
            (Some(client_id), Some(tenant_id), Some(client_secret)) => Ok(Self {
                client_id,
                tenant_id,
                client_secret,
            }),
            (None, None, None) => Err(ProviderError::invalid(
                "aci_credentials",
                "the block sets none of client_id, tenant_id and client_secret: all three are needed \
                 (pushpool has no DefaultAzureCredential chain)",
            )),
            (client_id, tenant_id, _) => {
                let missing = if client_id.is_none() {
                    "client_id"
                } else if tenant_id.is_none() {
                    "tenant_id"
                } else {
                    "client_secret"
                };
                Err(ProviderError::invalid(
                    format!("aci_credentials.{missing}"),
                    "is missing: a service principal needs client_id, tenant_id and client_secret",
                ))
            }
        }
    }

    /// The cache key: a digest of every field and the authority, unambiguous
    /// (length-prefixed).
    fn key(&self, authority: &str) -> CredentialsKey {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for field in [
            &self.client_id,
            &self.tenant_id,
            &self.client_secret,
            authority,
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.finalize().into()
    }
}

/// Entra ID tokens, with credentials cached per block.
pub(super) struct TokenSource {
    authority: String,
    transport: Option<Transport>,
    timeout: Duration,
    cache: Mutex<HashMap<CredentialsKey, Arc<ClientSecretCredential>>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("TokenSource")
            .field("authority", &self.authority)
            .field("custom_transport", &self.transport.is_some())
            .field("timeout", &self.timeout)
            .field("cached_credentials", &cached)
            .finish()
    }
}

impl TokenSource {
    pub fn new(authority: String, transport: Option<Transport>, timeout: Duration) -> Self {
        Self {
            authority,
            transport,
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// How many credentials are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or_default()
    }

    fn credential(
        &self,
        block: &AciCredentialsBlock,
    ) -> Result<Arc<ClientSecretCredential>, ProviderError> {
        let key = block.key(&self.authority);
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(credential) = cache.get(&key) {
            return Ok(credential.clone());
        }
        if cache.len() >= MAX_CACHED_CREDENTIALS {
            cache.clear();
        }
        let mut custom = CustomConfiguration::default();
        custom.authority_host = self.authority.clone();
        let retry = ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: 2,
            max_total_elapsed: azure_core::time::Duration::seconds(5),
            max_delay: azure_core::time::Duration::seconds(1),
        };
        let client_options = ClientOptions {
            retry: RetryOptions::exponential(retry),
            transport: self.transport.clone(),
            cloud: Some(Arc::new(CloudConfiguration::from(custom))),
            ..Default::default()
        };
        let credential = ClientSecretCredential::new(
            &block.tenant_id,
            block.client_id.clone(),
            Secret::new(block.client_secret.clone()),
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map_err(|e| {
            let field = if e.to_string().contains("tenant") {
                "aci_credentials.tenant_id"
            } else {
                "aci_credentials"
            };
            let message = Redactor::new([block.client_secret.as_str()]).apply(&e.to_string());
            ProviderError::invalid(field, message)
        })?;
        cache.insert(key, credential.clone());
        Ok(credential)
    }

    /// An ARM access token for `block` (cached by the credential until shortly before it
    /// expires).
    ///
    /// # Errors
    /// Transient: the request timed out ("Entra ID token request timed out after N s"), the
    /// authority could not be reached, or answered 408/429/5xx. Permanent: Entra refused
    /// (`invalid_client`, `unauthorized_client`, unknown tenant), with its error codes and
    /// description. Never holds the secret.
    pub async fn token(&self, block: &AciCredentialsBlock) -> Result<String, ProviderError> {
        let credential = self.credential(block)?;
        let redactor = Redactor::new([block.client_secret.as_str()]);
        match tokio::time::timeout(self.timeout, credential.get_token(&[ARM_SCOPE], None)).await {
            Ok(Ok(token)) => Ok(token.token.secret().to_owned()),
            Ok(Err(err)) => Err(classify(&err, &redactor).capped()),
            Err(_) => Err(ProviderError::transient(format!(
                "Entra ID token request timed out after {} s ({})",
                self.timeout.as_secs_f64(),
                self.authority
            ))),
        }
    }
}

/// An azure_identity error → [`ProviderError`], from the innermost HTTP answer it holds.
fn classify(err: &azure_core::Error, redactor: &Redactor) -> ProviderError {
    // ClientSecretCredential wraps the pipeline's error in an `ErrorKind::Credential` one.
    let inner = err.downcast_ref::<azure_core::Error>().unwrap_or(err);
    let text = redactor.apply(&inner.to_string());
    match inner.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = u16::from(*status);
            let codes = error_code
                .as_deref()
                .map(|c| format!(", error codes {c}"))
                .unwrap_or_default();
            let message = format!("Entra ID token request failed (HTTP {code}{codes}): {text}");
            if code == 408 || code == 429 || code >= 500 {
                ProviderError::transient(message)
            } else {
                ProviderError::permanent(message)
            }
        }
        ErrorKind::Io => ProviderError::transient(format!(
            "Entra ID token request failed: the authority could not be reached: {}",
            redactor.apply(&error_chain(inner))
        )),
        ErrorKind::DataConversion => ProviderError::transient(format!(
            "Entra ID token request failed: unreadable answer: {text}"
        )),
        _ => ProviderError::permanent(format!(
            "Entra ID token request failed: {}",
            redactor.apply(&err.to_string())
        )),
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(creds: Value) -> Job {
        let Value::Object(configuration) = json!({"aci_credentials": creds}) else {
            unreachable!()
        };
        Job {
            flow_run_id: uuid::Uuid::nil(),
            flow_run_name: "r".into(),
            pool_type: "azure-container-instance:push".into(),
            configuration,
            idempotency_key: "k".into(),
        }
    }

    fn field_of(result: Result<AciCredentialsBlock, ProviderError>) -> String {
        match result {
            Err(ProviderError::InvalidConfiguration { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_block_is_read_and_its_debug_hides_the_secret() {
        let block = AciCredentialsBlock::from_configuration(&job(json!({
            "client_id": "app", "tenant_id": "tenant", "client_secret": "very-secret-value",
            "credential_kwargs": {},
        })))
        .unwrap();
        assert_eq!(block.client_id, "app");
        let debug = format!("{block:?}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
    }

    #[test]
    fn missing_partial_and_masked_blocks_are_refused_by_field() {
        let mut configuration = job(json!({})).configuration;
        configuration.remove("aci_credentials");
        let no_block = Job {
            configuration,
            ..job(json!({}))
        };
        assert_eq!(
            field_of(AciCredentialsBlock::from_configuration(&no_block)),
            "aci_credentials"
        );
        for (creds, field) in [
            (
                json!({"client_id": null, "tenant_id": null, "client_secret": null}),
                "aci_credentials",
            ),
            (
                json!({"client_id": "a", "tenant_id": "t"}),
                "aci_credentials.client_secret",
            ),
            (
                json!({"tenant_id": "t", "client_secret": "s3cret"}),
                "aci_credentials.client_id",
            ),
            (
                json!({"client_id": "a", "client_secret": "s3cret"}),
                "aci_credentials.tenant_id",
            ),
            (
                json!({"client_id": "a", "tenant_id": "t", "client_secret": "********"}),
                "aci_credentials.client_secret",
            ),
            (
                json!({"client_id": 1, "tenant_id": "t", "client_secret": "s"}),
                "aci_credentials.client_id",
            ),
        ] {
            let result = AciCredentialsBlock::from_configuration(&job(creds));
            if let Err(e) = &result {
                assert!(!format!("{e} {e:?}").contains("s3cret"));
            }
            assert_eq!(field_of(result), field);
        }
    }

    #[test]
    fn keys_differ_per_secret_and_authority() {
        let a = AciCredentialsBlock {
            client_id: "a".into(),
            tenant_id: "t".into(),
            client_secret: "s1".into(),
        };
        let b = AciCredentialsBlock {
            client_secret: "s2".into(),
            ..a.clone()
        };
        assert_ne!(a.key("https://x/"), b.key("https://x/"));
        assert_ne!(a.key("https://x/"), a.key("https://y/"));
        assert_eq!(a.key("https://x/"), a.clone().key("https://x/"));
    }
}
