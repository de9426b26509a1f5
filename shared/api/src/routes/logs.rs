//! `/logs/…`: Prefect 3.9.1's logs API (`prefect/server/api/logs.py`, `models/logs.py`), in
//! both shapes. The engine's `APILogHandler` posts each flow run's log lines in batches;
//! `prefect flow-run logs <id>`, the SDK's `read_logs` and the UI read them back. pushpool
//! writes its own lines for a run into the same log (the submission, the provider's stop
//! reason, the retries it made: see `pushpool_service::run_log`).
//!
//! - `POST /logs/` → 201 `null`. The body is a list of Prefect's `LogCreate` (`name`,
//!   `level`, `message`, `timestamp`, `flow_run_id`, `task_run_id`; other keys are a 422,
//!   as `extra="forbid"` makes them). NUL characters are removed from `name` and `message`
//!   (Prefect's `_sanitize_log_strings`); timestamps are kept to the microsecond. Limits,
//!   which Prefect's server does not have:
//!   - a batch is at most [`MAX_LOG_BATCH_BYTES`] of JSON (the client's own batch limit,
//!     `PREFECT_LOGGING_TO_API_BATCH_SIZE`, is 4,000,000 bytes by default): 413 above it;
//!   - a line's `message` is at most [`MAX_LOG_MESSAGE_CHARS`] characters and its `name`
//!     at most [`MAX_LOG_NAME_CHARS`]: 422 naming the line (`[3].message`) otherwise, and
//!     nothing of the batch is stored. Set `PREFECT_LOGGING_TO_API_MAX_LOG_SIZE=25000` in
//!     a flow's environment to have the client cut longer lines itself (as it does for
//!     Prefect Cloud, whose limit is the same).
//!
//!   Lines are kept [`pushpool_service::ServiceConfig::log_retention`] after they were
//!   stored (30 days by default).
//! - `POST /logs/filter` takes `logs` (Prefect's `LogFilter`: `level`, `timestamp`,
//!   `flow_run_id`, `task_run_id`, `text`, `operator`), `sort` (`TIMESTAMP_ASC`, the
//!   default, or `TIMESTAMP_DESC`), `limit` (default and most 200) and `offset`, and answers
//!   the lines as Prefect's `Log` (`id`, `created`, `updated`, `name`, `level`, `message`,
//!   `timestamp`, `flow_run_id`, `task_run_id`). Unknown keys and values are a 422 naming
//!   them; a `text.query` over 200 characters too.
//! - `WS /logs/out` (live streaming) is not served: 404.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use pushpool_core::logs::{Log, LogFilter, LogSort, MAX_TEXT_QUERY_CHARS};
use pushpool_store::{LogQuery, Page};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::filters::{FilterBody, RawNumber, limit, no_other_keys, offset};
use crate::{ApiError, AppState};

/// The largest `POST /logs/` body, in bytes: 5 MiB, so that a batch of the client's default
/// size (4,000,000 bytes of lines) fits.
pub const MAX_LOG_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// The longest `message` of one line, in characters: Prefect Cloud's limit
/// (`PREFECT_CLOUD_MAX_LOG_SIZE`), which keeps a line a small DynamoDB item.
pub const MAX_LOG_MESSAGE_CHARS: usize = 25_000;
/// The longest logger `name` of one line, in characters.
pub const MAX_LOG_NAME_CHARS: usize = 1_000;

/// Prefect's `LogCreate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogCreate {
    name: String,
    level: i64,
    message: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    flow_run_id: Option<Uuid>,
    #[serde(default)]
    task_run_id: Option<Uuid>,
}

/// A time kept to the microsecond (what both stores hold, as Prefect's databases do).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The body of `POST /logs/`: JSON of at most [`MAX_LOG_BATCH_BYTES`].
pub(crate) struct LogBatch(Vec<LogCreate>);

impl<S: Send + Sync> FromRequest<S> for LogBatch {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if crate::extract::too_large(e.status(), &e.body_text()) {
                    ApiError::ContentTooLarge(format!(
                        "A log batch is at most {MAX_LOG_BATCH_BYTES} bytes (5 MiB) of JSON; \
                         send fewer lines per request (PREFECT_LOGGING_TO_API_BATCH_SIZE). \
                         Nothing was stored."
                    ))
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            if inner.is_syntax() || inner.is_eof() {
                ApiError::BadRequest(format!("Invalid request body: {inner}"))
            } else if path == "." {
                ApiError::Invalid(format!("Invalid request body: {message}"))
            } else {
                ApiError::Invalid(format!("{path}: {message}"))
            }
        })
    }
}

/// The stored lines of a batch, or a 422 naming the first line over a limit.
fn lines(batch: Vec<LogCreate>, now: DateTime<Utc>) -> Result<Vec<Log>, ApiError> {
    let now = micros(now);
    batch
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let name = l.name.replace('\0', "");
            let message = l.message.replace('\0', "");
            let chars = message.chars().count();
            if chars > MAX_LOG_MESSAGE_CHARS {
                return Err(ApiError::Invalid(format!(
                    "[{i}].message: the message is {chars} characters, over the \
                     {MAX_LOG_MESSAGE_CHARS} pushpool stores per log line; set \
                     PREFECT_LOGGING_TO_API_MAX_LOG_SIZE={MAX_LOG_MESSAGE_CHARS} to have the \
                     client cut long lines. Nothing of the batch was stored."
                )));
            }
            let chars = name.chars().count();
            if chars > MAX_LOG_NAME_CHARS {
                return Err(ApiError::Invalid(format!(
                    "[{i}].name: the logger name is {chars} characters, over the \
                     {MAX_LOG_NAME_CHARS} pushpool stores. Nothing of the batch was stored."
                )));
            }
            Ok(Log {
                id: Uuid::now_v7(),
                created: now,
                updated: now,
                name,
                level: l.level,
                message,
                timestamp: micros(l.timestamp),
                flow_run_id: l.flow_run_id,
                task_run_id: l.task_run_id,
            })
        })
        .collect()
}

/// `POST /logs/` → 201 `null`.
pub(crate) async fn create(
    State(state): State<AppState>,
    LogBatch(batch): LogBatch,
) -> Result<impl IntoResponse, ApiError> {
    let logs = lines(batch, Utc::now())?;
    if !logs.is_empty() {
        state.service.write_logs(&logs).await?;
    }
    Ok((StatusCode::CREATED, axum::Json(Value::Null)))
}

/// `POST /logs/filter`'s body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogsBody {
    #[serde(default)]
    logs: Option<LogFilter>,
    #[serde(default)]
    sort: Option<LogSort>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// `POST /logs/filter` → the lines, paged.
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<LogsBody>,
) -> Result<axum::Json<Vec<Log>>, ApiError> {
    no_other_keys(&body.other)?;
    let mut filter = body.logs.unwrap_or_default();
    if let Some(text) = &filter.text {
        let chars = text.query.chars().count();
        if chars > MAX_TEXT_QUERY_CHARS {
            return Err(ApiError::Invalid(format!(
                "logs.text.query: String should have at most {MAX_TEXT_QUERY_CHARS} characters \
                 (got {chars})"
            )));
        }
    }
    if let Some(t) = &mut filter.timestamp {
        t.before_ = t.before_.map(micros);
        t.after_ = t.after_.map(micros);
    }
    let query = LogQuery {
        filter,
        sort: body.sort.unwrap_or_default(),
        page: Page {
            offset: offset(&body.offset)?,
            limit: Some(limit(&body.limit)?),
        },
    };
    Ok(axum::Json(state.store().read_logs(&query).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_sanitised_and_limited() {
        let now = Utc::now();
        let create = |message: String| LogCreate {
            name: "a\0b".into(),
            level: 20,
            message,
            timestamp: now,
            flow_run_id: None,
            task_run_id: None,
        };
        let got = lines(vec![create("x\0y".into())], now).unwrap();
        assert_eq!(
            (got[0].name.as_str(), got[0].message.as_str()),
            ("ab", "xy")
        );
        let long = "é".repeat(MAX_LOG_MESSAGE_CHARS + 1);
        let err = lines(vec![create("ok".into()), create(long)], now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[1].message: the message is 25001 characters, over the 25000 pushpool stores per \
             log line; set PREFECT_LOGGING_TO_API_MAX_LOG_SIZE=25000 to have the client cut \
             long lines. Nothing of the batch was stored."
        );
        assert!(lines(vec![create("é".repeat(MAX_LOG_MESSAGE_CHARS))], now).is_ok());
    }
}
