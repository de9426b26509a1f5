//! The configuration every Lambda function of the AWS shape reads, parsed once in its `main`
//! (`FunctionConfig::from_lookup(|k| std::env::var(k).ok())`), failing with the name of the
//! missing variable.
//!
//! Variables: `PUSHPOOL_TABLE`, `PUSHPOOL_PUBLIC_URL` (required), `PUSHPOOL_JOB_API_KEY`,
//! `PUSHPOOL_PROVIDER_RETRY_BUDGET` (seconds, default 75, at most
//! [`MAX_FUNCTION_RETRY_BUDGET_SECS`]), `PUSHPOOL_LOG_RETENTION_DAYS` (days flow run log
//! lines are kept before DynamoDB's TTL deletes them, default 30, 1 to 36,500).

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
    /// Settings that do not fit together ([`crate::ServiceConfig::validate`]).
    #[error("{0}")]
    Timing(String),
}

/// The largest `PUSHPOOL_PROVIDER_RETRY_BUDGET` a function accepts (seconds): the submitter
/// and reconciler functions have a 300 s `Timeout` (`infra/template.yaml`), and one
/// invocation may wait for a job to end (`release_grace`, 60 s) and then retry a provider call
/// for the whole budget, whose last try may take up to [`crate::CLAIM_DEADLINE_MARGIN`]:
/// 60 + 180 + 60 = 300.
pub const MAX_FUNCTION_RETRY_BUDGET_SECS: u64 = 180;

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
    /// `PUSHPOOL_PROVIDER_RETRY_BUDGET`: seconds a provider call is retried on transient
    /// errors ([`crate::ServiceConfig::retry_budget`]); default
    /// [`crate::DEFAULT_RETRY_BUDGET`], 1 to [`MAX_FUNCTION_RETRY_BUDGET_SECS`].
    pub retry_budget: std::time::Duration,
    /// `PUSHPOOL_LOG_RETENTION_DAYS`: how long log lines are kept
    /// ([`crate::ServiceConfig::log_retention`]); default 30 days.
    pub log_retention: std::time::Duration,
    /// `PUSHPOOL_EVENT_RETENTION_DAYS`: how long events are kept
    /// ([`crate::ServiceConfig::event_retention`]); default 7 days.
    pub event_retention: std::time::Duration,
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
            .field("retry_budget", &self.retry_budget)
            .field("log_retention", &self.log_retention)
            .field("event_retention", &self.event_retention)
            .finish()
    }
}

impl FunctionConfig {
    /// The submission settings of a function: jobs get [`Self::api_url`] and
    /// [`Self::job_api_key`]; provider calls are retried for [`Self::retry_budget`] and the
    /// claim deadline follows from it ([`crate::ServiceConfig::with_retry_budget`]); the
    /// rest keeps its defaults.
    pub fn service_config(&self) -> crate::ServiceConfig {
        crate::ServiceConfig {
            api_url: self.api_url.clone(),
            api_key: self.job_api_key.clone(),
            log_retention: self.log_retention,
            event_retention: self.event_retention,
            ..crate::ServiceConfig::default()
        }
        .with_retry_budget(self.retry_budget)
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
        let retry_budget = match lookup("PUSHPOOL_PROVIDER_RETRY_BUDGET").filter(|v| !v.is_empty())
        {
            None => crate::DEFAULT_RETRY_BUDGET,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(secs) if (1..=MAX_FUNCTION_RETRY_BUDGET_SECS).contains(&secs) => {
                    std::time::Duration::from_secs(secs)
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "PUSHPOOL_PROVIDER_RETRY_BUDGET",
                        message: format!(
                            "{v:?} is not a whole number of seconds from 1 to {MAX_FUNCTION_RETRY_BUDGET_SECS} \
                             (the functions' 300 s timeout must hold a release wait, the whole budget and a last try)"
                        ),
                    });
                }
            },
        };
        let log_retention = match lookup("PUSHPOOL_LOG_RETENTION_DAYS").filter(|v| !v.is_empty()) {
            None => pushpool_store::DEFAULT_LOG_RETENTION,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(days) if (1..=36_500).contains(&days) => {
                    std::time::Duration::from_secs(days * 86_400)
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "PUSHPOOL_LOG_RETENTION_DAYS",
                        message: format!("{v:?} is not a whole number of days from 1 to 36500"),
                    });
                }
            },
        };
        let event_retention =
            match lookup("PUSHPOOL_EVENT_RETENTION_DAYS").filter(|v| !v.is_empty()) {
                None => pushpool_store::DEFAULT_EVENT_RETENTION,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(days) if (1..=36_500).contains(&days) => {
                        std::time::Duration::from_secs(days * 86_400)
                    }
                    _ => {
                        return Err(ConfigError::Invalid {
                            name: "PUSHPOOL_EVENT_RETENTION_DAYS",
                            message: format!("{v:?} is not a whole number of days from 1 to 36500"),
                        });
                    }
                },
            };
        Ok(Self {
            table,
            api_url,
            job_api_key: lookup("PUSHPOOL_JOB_API_KEY").filter(|k| !k.is_empty()),
            retry_budget,
            log_retention,
            event_retention,
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

    fn lookup(budget: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |k: &str| match k {
            "PUSHPOOL_TABLE" => Some("t".to_owned()),
            "PUSHPOOL_PUBLIC_URL" => Some("https://x.example".to_owned()),
            "PUSHPOOL_PROVIDER_RETRY_BUDGET" => budget.map(str::to_owned),
            _ => None,
        }
    }

    #[test]
    fn the_retry_budget_defaults_to_75_s_and_sets_the_claim_deadline() {
        let c = FunctionConfig::from_lookup(lookup(None)).unwrap();
        assert_eq!(c.retry_budget, std::time::Duration::from_secs(75));
        let s = c.service_config();
        assert_eq!(s.retry_budget, std::time::Duration::from_secs(75));
        assert_eq!(s.claim_deadline, std::time::Duration::from_secs(135));
        s.validate().unwrap();

        let c = FunctionConfig::from_lookup(lookup(Some("120"))).unwrap();
        let s = c.service_config();
        assert_eq!(s.retry_budget, std::time::Duration::from_secs(120));
        assert_eq!(s.claim_deadline, std::time::Duration::from_secs(180));
    }

    #[test]
    fn a_retry_budget_that_cannot_fit_the_function_timeout_is_refused() {
        for bad in ["0", "181", "1.5", "soon"] {
            let e = FunctionConfig::from_lookup(lookup(Some(bad))).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "environment variable PUSHPOOL_PROVIDER_RETRY_BUDGET: {bad:?} is not a whole number of seconds from 1 to 180 \
                     (the functions' 300 s timeout must hold a release wait, the whole budget and a last try)"
                )
            );
        }
    }

    #[test]
    fn log_retention_defaults_to_30_days_and_is_read_in_days() {
        let c = FunctionConfig::from_lookup(lookup(None)).unwrap();
        assert_eq!(c.log_retention, std::time::Duration::from_secs(30 * 86_400));
        let with = |v: &'static str| {
            move |k: &str| match k {
                "PUSHPOOL_LOG_RETENTION_DAYS" => Some(v.to_owned()),
                other => lookup(None)(other),
            }
        };
        let c = FunctionConfig::from_lookup(with("7")).unwrap();
        assert_eq!(
            c.service_config().log_retention,
            std::time::Duration::from_secs(7 * 86_400)
        );
        for bad in ["0", "36501", "1.5", "forever"] {
            let e = FunctionConfig::from_lookup(with(bad)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "environment variable PUSHPOOL_LOG_RETENTION_DAYS: {bad:?} is not a whole number of days from 1 to 36500"
                )
            );
        }
    }

    #[test]
    fn event_retention_defaults_to_7_days_and_is_read_in_days() {
        let c = FunctionConfig::from_lookup(lookup(None)).unwrap();
        assert_eq!(
            c.event_retention,
            std::time::Duration::from_secs(7 * 86_400)
        );
        let with = |v: &'static str| {
            move |k: &str| match k {
                "PUSHPOOL_EVENT_RETENTION_DAYS" => Some(v.to_owned()),
                other => lookup(None)(other),
            }
        };
        let c = FunctionConfig::from_lookup(with("3")).unwrap();
        assert_eq!(
            c.service_config().event_retention,
            std::time::Duration::from_secs(3 * 86_400)
        );
        let e = FunctionConfig::from_lookup(with("0")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PUSHPOOL_EVENT_RETENTION_DAYS: \"0\" is not a whole number of days from 1 to 36500"
        );
    }

    #[test]
    fn a_claim_deadline_shorter_than_the_budget_is_refused() {
        let s = crate::ServiceConfig {
            claim_deadline: std::time::Duration::from_secs(60),
            ..crate::ServiceConfig::default()
        };
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "the claim deadline (60 s) must be at least the provider retry budget (75 s) plus 60 s, \
             or the reconciler would resubmit runs whose submitter is still retrying; \
             lower the retry budget or raise the claim deadline"
        );
        crate::ServiceConfig::default().validate().unwrap();
    }
}
