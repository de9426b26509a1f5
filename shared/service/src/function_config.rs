//! The configuration every Lambda function of the AWS shape reads, parsed once in its `main`
//! (`FunctionConfig::from_lookup(|k| std::env::var(k).ok())`), failing with the name of the
//! missing variable.

/// A missing or invalid environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// The variable is set to something unusable.
    #[error("environment variable {name}: {message}")]
    Invalid {
        /// Its name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Settings of the API, submitter and reconciler functions.
#[derive(Clone)]
pub struct FunctionConfig {
    /// `PUSHPOOL_TABLE`: the DynamoDB table.
    pub table: String,
    /// `PUSHPOOL_PUBLIC_URL`: the API's public base URL; jobs get it (with `/api`) as
    /// `PREFECT_API_URL`.
    pub api_url: String,
    /// `PUSHPOOL_JOB_API_KEY`: the key jobs get as `PREFECT_API_KEY`.
    pub job_api_key: Option<String>,
}

impl std::fmt::Debug for FunctionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionConfig")
            .field("table", &self.table)
            .field("api_url", &self.api_url)
            .field(
                "job_api_key",
                &self.job_api_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl FunctionConfig {
    /// The submission settings of a function: jobs get [`Self::api_url`] and
    /// [`Self::job_api_key`]; deadlines and retries keep their defaults.
    pub fn service_config(&self) -> crate::ServiceConfig {
        crate::ServiceConfig {
            api_url: self.api_url.clone(),
            api_key: self.job_api_key.clone(),
            ..crate::ServiceConfig::default()
        }
    }

    /// Reads the settings through `lookup` (the process environment in `main`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = lookup("PUSHPOOL_TABLE")
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::Missing("PUSHPOOL_TABLE"))?;
        let public = lookup("PUSHPOOL_PUBLIC_URL")
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::Missing("PUSHPOOL_PUBLIC_URL"))?;
        if !(public.starts_with("https://") || public.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "PUSHPOOL_PUBLIC_URL",
                message: format!("{public:?} is not an http(s) URL"),
            });
        }
        let base = public.trim_end_matches('/');
        let api_url = if base.ends_with("/api") {
            base.to_owned()
        } else {
            format!("{base}/api")
        };
        Ok(Self {
            table,
            api_url,
            job_api_key: lookup("PUSHPOOL_JOB_API_KEY").filter(|k| !k.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_names_missing_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let c = FunctionConfig::from_lookup(env(&[
            ("PUSHPOOL_TABLE", "pushpool"),
            (
                "PUSHPOOL_PUBLIC_URL",
                "https://abc.execute-api.us-east-1.amazonaws.com/",
            ),
            ("PUSHPOOL_JOB_API_KEY", "pp_x"),
        ]))
        .unwrap();
        assert_eq!(
            c.api_url,
            "https://abc.execute-api.us-east-1.amazonaws.com/api"
        );
        assert!(!format!("{c:?}").contains("pp_x"));
        let e = FunctionConfig::from_lookup(env(&[("PUSHPOOL_TABLE", "t")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PUSHPOOL_PUBLIC_URL is required"
        );
        let e = FunctionConfig::from_lookup(env(&[
            ("PUSHPOOL_TABLE", "t"),
            ("PUSHPOOL_PUBLIC_URL", "ftp://x"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PUSHPOOL_PUBLIC_URL: \"ftp://x\" is not an http(s) URL"
        );
    }
}
