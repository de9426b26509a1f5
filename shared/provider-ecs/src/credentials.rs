//! AWS clients per credentials: the process's own, or those of a job's resolved
//! `aws-credentials` block (prefect-aws's `AwsCredentials` data).

use aws_credential_types::Credentials;
use serde_json::Value;

use super::config::Obj;
use pushpool_providers::{Job, ProviderError};

/// What Prefect shows instead of a secret when a block is read without `include_secrets`.
const OBFUSCATED: &str = "********";

/// The cache key of a credentials block: a SHA-256 digest, never the secret itself.
pub(super) type CredentialsKey = [u8; 32];

/// The AWS clients of one set of credentials.
#[derive(Clone)]
pub(super) struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub region: Option<String>,
}

impl Clients {
    /// Clients of the process's own configuration.
    pub fn from_base(base: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(base),
            ec2: aws_sdk_ec2::Client::new(base),
            region: base.region().map(|r| r.as_ref().to_owned()),
        }
    }

    /// Clients of the process's configuration with what `block` sets replaced.
    pub fn from_block(base: &aws_config::SdkConfig, block: &AwsCredentialsBlock) -> Self {
        let mut ecs = aws_sdk_ecs::config::Builder::from(base);
        let mut ec2 = aws_sdk_ec2::config::Builder::from(base);
        if let (Some(id), Some(secret)) = (&block.access_key_id, &block.secret_access_key) {
            let creds = Credentials::new(
                id,
                secret,
                block.session_token.clone(),
                None,
                "pushpool-aws-credentials-block",
            );
            ecs = ecs.credentials_provider(creds.clone());
            ec2 = ec2.credentials_provider(creds);
        }
        if let Some(region) = &block.region {
            ecs = ecs.region(aws_sdk_ecs::config::Region::new(region.clone()));
            ec2 = ec2.region(aws_sdk_ec2::config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &block.endpoint_url {
            ecs = ecs.endpoint_url(endpoint);
            ec2 = ec2.endpoint_url(endpoint);
        }
        Self {
            ecs: aws_sdk_ecs::Client::from_conf(ecs.build()),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            region: block
                .region
                .clone()
                .or_else(|| base.region().map(|r| r.as_ref().to_owned())),
        }
    }
}

/// The parts of a resolved `aws-credentials` block pushpool uses.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct AwsCredentialsBlock {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
}

impl std::fmt::Debug for AwsCredentialsBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentialsBlock")
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

impl AwsCredentialsBlock {
    /// The job's `aws_credentials`, if it has any.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] for what pushpool cannot use: a named profile,
    /// role assumption, half a key pair, or a secret that is Prefect's obfuscation mask. The
    /// message never holds a secret.
    pub fn from_configuration(job: &Job) -> Result<Option<Self>, ProviderError> {
        let root = Obj::root(&job.configuration);
        let Some(block) = root.obj("aws_credentials")? else {
            return Ok(None);
        };
        if block.str("profile_name")?.is_some() {
            return Err(ProviderError::invalid(
                "aws_credentials.profile_name",
                "named AWS profiles are not available to pushpool: give access keys, or leave the block empty to use pushpool's own AWS identity",
            ));
        }
        if block.str("assume_role_arn")?.is_some() {
            return Err(ProviderError::invalid(
                "aws_credentials.assume_role_arn",
                "role assumption is not supported yet: give access keys, or leave the block empty to use pushpool's own AWS identity",
            ));
        }
        let secret = |key: &str| -> Result<Option<String>, ProviderError> {
            match block.value(key) {
                None => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) if s == OBFUSCATED => Err(ProviderError::invalid(
                    format!("aws_credentials.{key}"),
                    "is Prefect's obfuscation mask, not the secret: the block was read without its secrets",
                )),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ProviderError::invalid(
                    format!("aws_credentials.{key}"),
                    "must be a string",
                )),
            }
        };
        let access_key_id = block.str("aws_access_key_id")?;
        let secret_access_key = secret("aws_secret_access_key")?;
        let session_token = secret("aws_session_token")?;
        match (&access_key_id, &secret_access_key) {
            (Some(_), None) => {
                return Err(ProviderError::invalid(
                    "aws_credentials.aws_secret_access_key",
                    "an access key id needs its secret access key",
                ));
            }
            (None, Some(_)) => {
                return Err(ProviderError::invalid(
                    "aws_credentials.aws_access_key_id",
                    "a secret access key needs its access key id",
                ));
            }
            _ => {}
        }
        let endpoint_url = match block.obj("aws_client_parameters")? {
            Some(params) => params.str("endpoint_url")?,
            None => None,
        };
        Ok(Some(Self {
            access_key_id,
            secret_access_key,
            session_token,
            region: block.str("region_name")?,
            endpoint_url,
        }))
    }

    /// Whether the block sets nothing (then the process's own configuration applies).
    pub fn is_empty(&self) -> bool {
        self.access_key_id.is_none()
            && self.secret_access_key.is_none()
            && self.session_token.is_none()
            && self.region.is_none()
            && self.endpoint_url.is_none()
    }

    /// The cache key: a digest of every field, unambiguous (length-prefixed).
    pub fn key(&self) -> CredentialsKey {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for field in [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
            &self.region,
            &self.endpoint_url,
        ] {
            match field {
                None => hasher.update([0u8]),
                Some(s) => {
                    hasher.update([1u8]);
                    hasher.update((s.len() as u64).to_be_bytes());
                    hasher.update(s.as_bytes());
                }
            }
        }
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(creds: Value) -> Job {
        let Value::Object(configuration) = json!({"aws_credentials": creds}) else {
            unreachable!()
        };
        Job {
            flow_run_id: uuid::Uuid::nil(),
            flow_run_name: "r".into(),
            pool_type: "ecs:push".into(),
            configuration,
            idempotency_key: "k".into(),
        }
    }

    #[test]
    fn debug_and_errors_never_show_secrets() {
        let block = AwsCredentialsBlock::from_configuration(&job(json!({
            "aws_access_key_id": "AKIAEXAMPLE",
            "aws_secret_access_key": "very-secret-key",
            "aws_session_token": "very-secret-token",
            "region_name": "eu-west-1",
        })))
        .unwrap()
        .unwrap();
        let debug = format!("{block:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(!debug.contains("AKIAEXAMPLE"), "{debug}");

        let err = AwsCredentialsBlock::from_configuration(&job(json!({
            "aws_secret_access_key": "very-secret-key",
        })))
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("very-secret"));
    }

    #[test]
    fn an_empty_block_means_the_process_identity() {
        let block = AwsCredentialsBlock::from_configuration(&job(json!({
            "aws_access_key_id": null,
            "aws_client_parameters": {"use_ssl": true, "verify": null},
        })))
        .unwrap()
        .unwrap();
        assert!(block.is_empty());
    }

    #[test]
    fn keys_differ_per_credentials() {
        let a = AwsCredentialsBlock::from_configuration(&job(json!({
            "aws_access_key_id": "A", "aws_secret_access_key": "s1"})))
        .unwrap()
        .unwrap();
        let b = AwsCredentialsBlock::from_configuration(&job(json!({
            "aws_access_key_id": "A", "aws_secret_access_key": "s2"})))
        .unwrap()
        .unwrap();
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), a.clone().key());
    }

    #[test]
    fn masks_profiles_and_roles_are_refused() {
        for (creds, field) in [
            (
                json!({"aws_access_key_id": "A", "aws_secret_access_key": "********"}),
                "aws_credentials.aws_secret_access_key",
            ),
            (
                json!({"profile_name": "dev"}),
                "aws_credentials.profile_name",
            ),
            (
                json!({"assume_role_arn": "arn:aws:iam::1:role/r"}),
                "aws_credentials.assume_role_arn",
            ),
        ] {
            match AwsCredentialsBlock::from_configuration(&job(creds)) {
                Err(ProviderError::InvalidConfiguration { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
