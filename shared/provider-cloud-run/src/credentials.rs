//! Google credentials of a job: the resolved `gcp-credentials` block (prefect-gcp 0.6.22's
//! `GcpCredentials` data: `service_account_info`, `service_account_file`, `project`) turned
//! into a `gcp_auth` token provider, cached per block.

use std::sync::Arc;
use std::time::Duration;

use gcp_auth::{CustomServiceAccount, TokenProvider};
use serde_json::{Map, Value};

use pushpool_providers::{Job, ProviderError};

/// What Prefect shows instead of a secret when a block is read without `include_secrets`.
const OBFUSCATED: &str = "********";

/// The OAuth scope pushpool asks for (what prefect-gcp's `GcpCredentials` asks for).
pub(super) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The cache key of a credentials block: a SHA-256 digest of the key JSON, never the key.
pub(super) type CredentialsKey = [u8; 32];

/// The parts of a resolved `gcp-credentials` block pushpool uses.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct GcpCredentialsBlock {
    /// The service account key JSON (text), when the block has one.
    key_json: Option<String>,
    /// `client_email` of the key (an identifier, not a secret: used in messages).
    pub client_email: Option<String>,
    /// `project_id` of the key.
    pub key_project: Option<String>,
    /// The block's `project`.
    pub project: Option<String>,
}

impl std::fmt::Debug for GcpCredentialsBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpCredentialsBlock")
            .field(
                "service_account_info",
                &self.key_json.as_ref().map(|_| "<redacted>"),
            )
            .field("client_email", &self.client_email)
            .field("key_project", &self.key_project)
            .field("project", &self.project)
            .finish()
    }
}

impl GcpCredentialsBlock {
    /// The job's `credentials` (an empty block when there are none: then application default
    /// credentials apply).
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming the field for what pushpool cannot use:
    /// a `service_account_file` (a path on the machine that saved the block), a
    /// `service_account_info` that is not a JSON object (or a string holding one), a key
    /// without `client_email`/`private_key`/`token_uri`, or a value that is Prefect's
    /// obfuscation mask. No message holds a secret.
    pub fn from_configuration(job: &Job) -> Result<Self, ProviderError> {
        let mut block = Self {
            key_json: None,
            client_email: None,
            key_project: None,
            project: None,
        };
        let creds = match job.configuration.get("credentials") {
            None | Some(Value::Null) => return Ok(block),
            Some(Value::String(s)) if s.is_empty() => return Ok(block),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ProviderError::invalid(
                    "credentials",
                    "must be a gcp-credentials block (an object)",
                ));
            }
        };
        block.project = match creds.get("project") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ProviderError::invalid(
                    "credentials.project",
                    "must be a string",
                ));
            }
        };
        match creds.get("service_account_file") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(_) => {
                return Err(ProviderError::invalid(
                    "credentials.service_account_file",
                    "a key file path is not available to pushpool: save the key's contents as service_account_info instead",
                ));
            }
        }
        let info: Map<String, Value> = match creds.get("service_account_info") {
            None | Some(Value::Null) => return Ok(block),
            Some(Value::Object(map)) if map.is_empty() => return Ok(block),
            Some(Value::Object(map)) => map.clone(),
            // prefect-gcp accepts the key as a JSON string too.
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(block),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(ProviderError::invalid(
                        "credentials.service_account_info",
                        "is a string that does not hold a JSON object (a service account key)",
                    ));
                }
            },
            Some(_) => {
                return Err(ProviderError::invalid(
                    "credentials.service_account_info",
                    "must be a service account key (a JSON object)",
                ));
            }
        };
        for (key, value) in &info {
            if value.as_str() == Some(OBFUSCATED) {
                return Err(ProviderError::invalid(
                    format!("credentials.service_account_info.{key}"),
                    "is Prefect's obfuscation mask, not the key: the block was read without its secrets",
                ));
            }
        }
        for required in ["client_email", "private_key", "token_uri"] {
            if !matches!(info.get(required), Some(Value::String(s)) if !s.is_empty()) {
                return Err(ProviderError::invalid(
                    format!("credentials.service_account_info.{required}"),
                    "is missing: a service account key needs client_email, private_key and token_uri",
                ));
            }
        }
        block.client_email = info
            .get("client_email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        block.key_project = info
            .get("project_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        block.key_json = Some(Value::Object(info).to_string());
        Ok(block)
    }

    /// Whether the block has a service account key (else application default credentials).
    pub fn has_key(&self) -> bool {
        self.key_json.is_some()
    }

    /// The cache key: a digest of the key JSON.
    pub fn key(&self) -> CredentialsKey {
        use sha2::Digest;
        sha2::Sha256::digest(self.key_json.as_deref().unwrap_or_default().as_bytes()).into()
    }

    /// A token provider for the block's key (`CustomServiceAccount::from_json`).
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming `credentials.service_account_info` when
    /// `gcp_auth` cannot use the key (malformed JSON, a private key that is not an RSA PEM);
    /// the message is gcp_auth's static description, never the key.
    pub fn token_provider(&self) -> Result<Arc<dyn TokenProvider>, ProviderError> {
        let json = self.key_json.as_deref().unwrap_or_default();
        CustomServiceAccount::from_json(json)
            .map(|p| Arc::new(p) as Arc<dyn TokenProvider>)
            .map_err(|e| {
                ProviderError::invalid(
                    "credentials.service_account_info",
                    format!("is not a usable service account key: {}", describe(&e)),
                )
            })
    }
}

/// A description of a gcp_auth error that cannot hold a secret: its static text only
/// (serde_json's messages can quote values).
fn describe(err: &gcp_auth::Error) -> String {
    match err {
        gcp_auth::Error::NoAuthMethod(..) => "no available authentication method found".into(),
        gcp_auth::Error::Http(what, _)
        | gcp_auth::Error::Io(what, _)
        | gcp_auth::Error::Json(what, _)
        | gcp_auth::Error::Other(what, _)
        | gcp_auth::Error::Str(what) => (*what).to_owned(),
    }
}

/// An access token for `scope` from `provider`, within `timeout`.
///
/// # Errors
/// A token endpoint that refuses the key (gcp_auth's "token request failed": `invalid_grant`
/// for a deleted or disabled key, a wrong `token_uri`; gcp_auth has already tried it five
/// times) and missing application default credentials are permanent; connection failures,
/// unreadable answers and timeouts are transient. Messages name the service account, never
/// the key or a token.
pub(super) async fn access_token(
    provider: &dyn TokenProvider,
    account: Option<&str>,
    timeout: Duration,
) -> Result<Arc<gcp_auth::Token>, ProviderError> {
    let who = account.map_or_else(
        || "application default credentials".to_owned(),
        |a| format!("service account {a}"),
    );
    match tokio::time::timeout(timeout, provider.token(&[SCOPE])).await {
        Err(_) => Err(ProviderError::transient(format!(
            "Google OAuth token request for {who} timed out after {} s",
            timeout.as_secs()
        ))),
        Ok(Ok(token)) => Ok(token),
        Ok(Err(err)) => Err(token_error(&who, &err).capped()),
    }
}

/// Classifies a token failure.
pub(super) fn token_error(who: &str, err: &gcp_auth::Error) -> ProviderError {
    let what = describe(err);
    match err {
        gcp_auth::Error::Str(_) | gcp_auth::Error::NoAuthMethod(..) | gcp_auth::Error::Io(..) => {
            ProviderError::permanent(format!(
                "Google OAuth token request for {who} failed: {what} (the token endpoint refused the credentials: check that the key exists, is enabled and belongs to the project)"
            ))
        }
        gcp_auth::Error::Http(..) | gcp_auth::Error::Json(..) | gcp_auth::Error::Other(..) => {
            ProviderError::transient(format!(
                "Google OAuth token request for {who} failed: {what}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(creds: Value) -> Job {
        let Value::Object(configuration) = json!({"credentials": creds}) else {
            unreachable!()
        };
        Job {
            flow_run_id: uuid::Uuid::nil(),
            flow_run_name: "r".into(),
            pool_type: "cloud-run-v2:push".into(),
            configuration,
            idempotency_key: "k".into(),
        }
    }

    fn key() -> Value {
        json!({"type": "service_account", "project_id": "p1", "private_key_id": "abc",
            "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
            "client_email": "sa@p1.iam.gserviceaccount.com", "token_uri": "http://127.0.0.1:9/token"})
    }

    #[test]
    fn reads_object_and_string_keys_alike() {
        let a = GcpCredentialsBlock::from_configuration(&job(
            json!({"service_account_info": key(), "project": "p2"}),
        ))
        .unwrap();
        let b = GcpCredentialsBlock::from_configuration(&job(
            json!({"service_account_info": key().to_string(), "project": "p2"}),
        ))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert!(a.has_key());
        assert_eq!(a.project.as_deref(), Some("p2"));
        assert_eq!(a.key_project.as_deref(), Some("p1"));
        assert_eq!(
            a.client_email.as_deref(),
            Some("sa@p1.iam.gserviceaccount.com")
        );
        let debug = format!("{a:?}");
        assert!(!debug.contains("not-a-real-key"), "{debug}");
    }

    #[test]
    fn no_block_means_default_credentials() {
        for creds in [
            Value::Null,
            json!({}),
            json!({"service_account_info": null, "project": null}),
        ] {
            let block = GcpCredentialsBlock::from_configuration(&job(creds)).unwrap();
            assert!(!block.has_key());
        }
    }

    #[test]
    fn unusable_blocks_are_named_without_secrets() {
        let mut masked = key();
        masked["private_key"] = json!("********");
        let mut no_uri = key();
        no_uri.as_object_mut().unwrap().remove("token_uri");
        for (creds, field) in [
            (
                json!({"service_account_info": masked}),
                "credentials.service_account_info.private_key",
            ),
            (
                json!({"service_account_info": no_uri}),
                "credentials.service_account_info.token_uri",
            ),
            (
                json!({"service_account_info": "{not json"}),
                "credentials.service_account_info",
            ),
            (
                json!({"service_account_file": "/home/me/key.json"}),
                "credentials.service_account_file",
            ),
        ] {
            match GcpCredentialsBlock::from_configuration(&job(creds)) {
                Err(ProviderError::InvalidConfiguration { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
        // A key gcp_auth cannot parse: named, without the key.
        let block =
            GcpCredentialsBlock::from_configuration(&job(json!({"service_account_info": key()})))
                .unwrap();
        let err = block.token_provider().err().unwrap();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("not-a-real-key"), "{text}");
        assert!(text.contains("credentials.service_account_info"), "{text}");
    }
}
