//! The one logging setup of every pushpool binary (`pushpool serve` and the three Lambda
//! functions): a `tracing` subscriber whose filter the user chooses (`RUST_LOG`, Lambda's
//! `AWS_LAMBDA_LOG_LEVEL`), under caps on the targets that log secrets, which no filter can
//! lift.
//!
//! Why the caps: at `trace`, the AWS SDK logs every request it sends whole
//! (`aws_smithy_runtime`: "transmitting request", with the `x-amz-security-token` header of a
//! credentials block's session token; "read HTTP response body", with DynamoDB items that hold
//! block secrets) and `aws_sigv4` logs the canonical request it signs (the same headers). The
//! transport crates below them (`hyper`, `h2`, `rustls`, `reqwest`) and the Google and Azure
//! credential crates log wire-level detail at `debug`/`trace`. Secrets must never reach the
//! log, whatever the level, so each of these targets is capped ([`SECRET_BEARING_TARGETS`]):
//! `RUST_LOG=trace` still shows everything else at trace.
//!
//! Only a binary's `main` calls [`init`]; libraries only emit events.
//!
//! ```no_run
//! pushpool_telemetry::init(pushpool_telemetry::Options {
//!     filter: pushpool_telemetry::cli_filter(std::env::var("RUST_LOG").ok().as_deref(), "info"),
//!     json: false,
//!     ansi: false,
//!     time: true,
//!     writer: pushpool_telemetry::Writer::Stderr,
//! })
//! .expect("no other subscriber is installed");
//! ```

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

/// The targets (prefixes of module paths, as `tracing` and the `log` bridge name them) whose
/// events can carry credentials or request/response content, and the most verbose level each
/// may log at, whatever the filter asks for.
///
/// - `aws_sigv4` logs the canonical request and string to sign at `trace`: capped at `info`.
/// - `aws_smithy_*` (the SDK runtime and its HTTP client), `aws_runtime`, `aws_config`,
///   `aws_credential_types` and the generated `aws_sdk_*` clients log whole requests and
///   responses at `trace`; their `debug` events (retry decisions, timeouts, which credential
///   provider answered) carry no content: capped at `debug`.
/// - the HTTP and TLS stacks (`hyper*`, `h2`, `rustls`, `tokio_rustls`, `reqwest`) and the
///   Google and Azure credential and HTTP crates (`gcp_auth`, `azure_core`, `azure_identity`,
///   `typespec_client_core`) log headers, frames or token exchanges below `info`: capped at
///   `info`.
pub const SECRET_BEARING_TARGETS: &[(&str, LevelFilter)] = &[
    ("aws_sigv4", LevelFilter::INFO),
    ("aws_smithy_", LevelFilter::DEBUG),
    ("aws_runtime", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
    ("aws_credential_types", LevelFilter::DEBUG),
    ("aws_sdk_", LevelFilter::DEBUG),
    ("hyper", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
    ("tokio_rustls", LevelFilter::INFO),
    ("reqwest", LevelFilter::INFO),
    ("gcp_auth", LevelFilter::INFO),
    ("azure_core", LevelFilter::INFO),
    ("azure_identity", LevelFilter::INFO),
    ("typespec_client_core", LevelFilter::INFO),
];

/// The caps of [`SECRET_BEARING_TARGETS`] as a filter: every other target passes at any level
/// (the user's filter decides).
pub fn secret_caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(SECRET_BEARING_TARGETS.iter().copied())
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Standard output (Lambda: CloudWatch reads it).
    Stdout,
    /// Standard error (`pushpool serve`: keeps stdout for command output).
    Stderr,
}

/// How [`init`] formats and filters.
#[derive(Debug)]
pub struct Options {
    /// The user's filter ([`cli_filter`], [`lambda_filter`]).
    pub filter: EnvFilter,
    /// One JSON object per line (Lambda's `AWS_LAMBDA_LOG_FORMAT=JSON`) instead of text.
    pub json: bool,
    /// ANSI colours (a terminal).
    pub ansi: bool,
    /// A timestamp on each line (Lambda: CloudWatch adds its own).
    pub time: bool,
    /// Where lines go.
    pub writer: Writer,
}

/// `pushpool serve`'s filter: `rust_log` (the value of `RUST_LOG`) when set and valid, else
/// `default`.
pub fn cli_filter(rust_log: Option<&str>, default: &str) -> EnvFilter {
    rust_log
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default))
}

/// A Lambda function's filter, as `lambda_runtime`'s default subscriber reads it: the level of
/// `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) or else of `RUST_LOG`, `info`
/// when neither is a level, as the default directive; then the directives of `RUST_LOG`.
pub fn lambda_filter(lambda_log_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    let level = lambda_log_level
        .or(rust_log)
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(rust_log.unwrap_or_default())
}

/// A Lambda function's options, from Lambda's advanced logging controls as
/// `lambda_runtime::tracing::init_default_subscriber` reads them: [`lambda_filter`] of
/// `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`; JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`;
/// no timestamp (CloudWatch adds one), no colours, standard output.
pub fn lambda_options() -> Options {
    let var = |k: &str| std::env::var(k).ok();
    Options {
        filter: lambda_filter(
            var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
            var("RUST_LOG").as_deref(),
        ),
        json: var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
        ansi: false,
        time: false,
        writer: Writer::Stdout,
    }
}

/// Installs the process's subscriber: `options.filter` under [`secret_caps`], and the `log`
/// crate's records (`rustls` logs through it) bridged to the same filters.
///
/// # Errors
/// When a subscriber or a `log` logger is already installed.
pub fn init(options: Options) -> Result<(), TryInitError> {
    match options.writer {
        Writer::Stdout => subscriber(options, std::io::stdout).try_init(),
        Writer::Stderr => subscriber(options, std::io::stderr).try_init(),
    }
}

/// The subscriber [`init`] installs, writing to `writer`.
fn subscriber<W>(options: Options, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let l = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(options.ansi)
        .with_writer(writer);
    let layer = match (options.json, options.time) {
        (false, true) => l.boxed(),
        (false, false) => l.without_time().boxed(),
        (true, true) => l.json().boxed(),
        (true, false) => l.json().without_time().boxed(),
    };
    tracing_subscriber::registry()
        .with(options.filter)
        .with(secret_caps())
        .with(layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(filter: EnvFilter, json: bool) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let options = Options {
            filter,
            json,
            ansi: false,
            time: false,
            writer: Writer::Stderr,
        };
        tracing::subscriber::with_default(subscriber(options, move || sink.clone()), || {
            tracing::trace!(target: "aws_sigv4::http_request::sign", "canonical request SIGV4-SECRET");
            tracing::debug!(target: "aws_sigv4::http_request::sign", "signing SIGV4-DEBUG");
            tracing::info!(target: "aws_sigv4::http_request::sign", "signed SIGV4-INFO");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "transmitting request SMITHY-SECRET");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "retry SMITHY-DEBUG");
            tracing::trace!(target: "aws_sdk_ecs::operation", "SDK-SECRET");
            tracing::debug!(target: "h2::codec", "frame H2-SECRET");
            tracing::debug!(target: "hyper_util::client", "headers HYPER-SECRET");
            tracing::trace!(target: "pushpool_service::service", "OURS-TRACE");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn trace_everywhere_still_caps_the_secret_bearing_targets() {
        for json in [false, true] {
            let text = logged(cli_filter(Some("trace"), "info"), json);
            for shown in ["SIGV4-INFO", "SMITHY-DEBUG", "OURS-TRACE"] {
                assert!(text.contains(shown), "{shown} missing from {text}");
            }
            for hidden in [
                "SIGV4-SECRET",
                "SIGV4-DEBUG",
                "SMITHY-SECRET",
                "SDK-SECRET",
                "H2-SECRET",
                "HYPER-SECRET",
            ] {
                assert!(!text.contains(hidden), "{hidden} logged: {text}");
            }
        }
        // Asking for the target by name does not lift the cap either.
        let text = logged(
            cli_filter(
                Some("aws_sigv4=trace,aws_smithy_runtime::client=trace,h2=trace"),
                "info",
            ),
            false,
        );
        assert!(text.contains("SIGV4-INFO"), "{text}");
        for hidden in ["SIGV4-SECRET", "SMITHY-SECRET", "H2-SECRET"] {
            assert!(!text.contains(hidden), "{hidden} logged: {text}");
        }
    }

    #[test]
    fn filters_read_the_variables_as_lambda_runtime_does() {
        let text = logged(lambda_filter(Some("DEBUG"), None), false);
        assert!(
            text.contains("SMITHY-DEBUG") && !text.contains("OURS-TRACE"),
            "{text}"
        );
        let text = logged(lambda_filter(None, Some("warn")), false);
        assert_eq!(text, "");
        let text = logged(lambda_filter(None, None), false);
        assert!(
            text.contains("SIGV4-INFO") && !text.contains("SMITHY-DEBUG"),
            "{text}"
        );
        let text = logged(cli_filter(Some("not a [filter"), "warn"), false);
        assert_eq!(text, "");
    }
}
