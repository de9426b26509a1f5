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
//! - `GET /flow_runs/{id}/logs/download` (Prefect's `download_logs`, what the UI's
//!   "Download" button of a run's logs calls): every line of the run, oldest first (read in
//!   pages of [`LOG_DOWNLOAD_PAGE_SIZE`], as Prefect does), as CSV ([`csv_row`]: Python's
//!   `csv.writer` with its default dialect) under the header row
//!   `timestamp,level,flow_run_id,task_run_id,message`; `Content-Type: text/csv;
//!   charset=utf-8` and `Content-Disposition: attachment; filename="flow-run-logs.csv";
//!   filename*=UTF-8''<percent-encoded "<run name>-logs.csv">`. An unknown run (or an id that
//!   is not a UUID) is a 404 `Flow run not found` (`Not Found`). Prefect streams the body;
//!   pushpool builds it in memory (on AWS, API Gateway's 6 MB response limit bounds it
//!   anyway).
//! - `WS /logs/out` (subprotocol `prefect`; Prefect's `stream_logs_out`): the auth message
//!   of the event sockets (`{"type":"auth","token":…}` answered `{"type":"auth_success"}`;
//!   with keys required the token must be a valid key or `user:key`, unless the upgrade
//!   carried an accepted `Authorization` header: `routes/events.rs`), then
//!   `{"type":"filter","filter":{…LogFilter…}}` (anything else closes with 1002 `Expected
//!   'filter' message`, an invalid filter with 1002 `Invalid filter: …` naming the field:
//!   [`pushpool_service::log_sockets::log_subscription`]). From then on every line stored by
//!   this server (`POST /logs/`, and pushpool's own lines for a run) that passes every
//!   criterion of the filter, as `POST /logs/filter` applies it, is sent as
//!   `{"type":"log","log":{…}}`; no stored line is sent (no backfill, as in Prefect). A
//!   subscriber more than [`pushpool_service::run_log::LOG_FAN_OUT_CAPACITY`] lines behind
//!   misses the oldest.

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// How many lines one read of `GET /flow_runs/{id}/logs/download` takes (Prefect's
/// `FLOW_RUN_LOGS_DOWNLOAD_PAGE_LIMIT`).
pub const LOG_DOWNLOAD_PAGE_SIZE: usize = 1000;

/// A time as Python's `str(datetime)` writes an aware UTC one (what Prefect's CSV holds):
/// `2026-11-30 10:00:00.123456+00:00`, the fraction left out when it is zero.
fn python_time(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%d %H:%M:%S"))
    }
}

/// One CSV row as Python's `csv.writer` (dialect `excel`, `QUOTE_MINIMAL`) writes it: fields
/// joined by `,`, a field quoted with `"` (inner `"` doubled) when it holds `,`, `"`, `\r`
/// or `\n`, the row ended by `\r\n`.
pub fn csv_row(fields: &[&str]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
    out
}

/// Percent-encodes `s` as Python's `urllib.parse.quote(s, safe="")`: every byte of its
/// UTF-8 but ASCII letters, digits and `_.-~`.
fn quote(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /flow_runs/{id}/logs/download` → the run's lines as CSV (see the module's docs).
pub(crate) async fn download(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let id = super::parse_id("id", &id)?;
    let run = match state.store().read_flow_run(id).await {
        Ok(run) => run,
        Err(pushpool_store::StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound("Flow run not found".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let mut body = csv_row(&[
        "timestamp",
        "level",
        "flow_run_id",
        "task_run_id",
        "message",
    ]);
    let mut offset = 0;
    loop {
        let query = LogQuery {
            filter: LogFilter {
                flow_run_id: Some(pushpool_core::logs::FlowRunIdFilter {
                    any_: Some(vec![id]),
                }),
                ..LogFilter::default()
            },
            sort: LogSort::TimestampAsc,
            page: Page {
                offset,
                limit: Some(LOG_DOWNLOAD_PAGE_SIZE),
            },
        };
        let logs = state.store().read_logs(&query).await?;
        if logs.is_empty() {
            break;
        }
        offset += LOG_DOWNLOAD_PAGE_SIZE;
        for log in &logs {
            let flow_run_id = log.flow_run_id.map(|u| u.to_string()).unwrap_or_default();
            let task_run_id = log.task_run_id.map(|u| u.to_string()).unwrap_or_default();
            body.push_str(&csv_row(&[
                &python_time(log.timestamp),
                &log.level.to_string(),
                &flow_run_id,
                &task_run_id,
                &log.message,
            ]));
        }
    }
    let disposition = format!(
        "attachment; filename=\"flow-run-logs.csv\"; filename*=UTF-8''{}",
        quote(&format!("{}-logs.csv", run.name))
    );
    Ok((
        StatusCode::OK,
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `WS /logs/out`: live log lines (see the module's docs).
pub(crate) async fn logs_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    use super::events::{auth, close, header_checked};
    use pushpool_service::log_sockets;
    use tokio::sync::broadcast::error::RecvError;

    let header_checked = header_checked(&headers);
    ws.protocols(["prefect"])
        .on_upgrade(move |mut socket| async move {
            if !auth(&mut socket, &state, header_checked).await {
                return;
            }
            let text = match socket.recv().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {
                    let _ = socket.send(close(1002, "Expected 'filter' message")).await;
                    return;
                }
            };
            let filter = match log_sockets::log_subscription(text.as_str()) {
                Ok(f) => f,
                Err(reason) => {
                    let _ = socket.send(close(1002, &reason)).await;
                    return;
                }
            };
            let mut live = state.service.subscribe_logs();
            loop {
                tokio::select! {
                    got = live.recv() => match got {
                        Ok(log) => {
                            if !filter.matches(&log) {
                                continue;
                            }
                            let msg = log_sockets::log_message(&log);
                            if socket.send(Message::Text(msg.into())).await.is_err() {
                                return;
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "a /logs/out subscriber fell behind");
                        }
                        Err(RecvError::Closed) => return,
                    },
                    msg = socket.recv() => match msg {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                        // Later messages are not read (as on Prefect's server).
                        Some(Ok(_)) => {}
                    },
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_and_times_are_pythons() {
        assert_eq!(
            csv_row(&["a", "", "b, c", "say \"hi\"", "x\ny", "r\rs", " sp"]),
            "a,,\"b, c\",\"say \"\"hi\"\"\",\"x\ny\",\"r\rs\", sp\r\n"
        );
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            python_time(t("2026-11-30T10:00:00.000120Z")),
            "2026-11-30 10:00:00.000120+00:00"
        );
        assert_eq!(
            python_time(t("2026-11-30T10:00:00Z")),
            "2026-11-30 10:00:00+00:00"
        );
        assert_eq!(quote("my run/é-logs.csv"), "my%20run%2F%C3%A9-logs.csv");
    }

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
