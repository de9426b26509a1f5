//! `/events/…`: Prefect 3.9.1's events API (`prefect/server/api/events.py`), the embedded
//! shape's in-process fan-out included.
//!
//! - `WS /events/in` (subprotocol `prefect`): `{"type":"auth","token":...}` is answered
//!   `{"type":"auth_success"}` (with keys required, the token must be a valid key unless the
//!   upgrade carried an accepted `Authorization` header: see `auth` below); then
//!   every text message is one event (Prefect's `Event`), stored (kept
//!   [`pushpool_service::ServiceConfig::event_retention`]) and fanned out. An event that is
//!   not valid closes the socket with 1007 and a reason naming the field (Prefect's server
//!   closes it on a validation error too); a store failure closes it with 1011 (the client
//!   reconnects and sends its unconfirmed events again).
//! - `WS /events/out`: after the auth message, a `{"type":"filter","filter":{...},
//!   "backfill":true}` message (anything else closes with 1002 `Expected 'filter' message`,
//!   an invalid filter with 1002 `Invalid filter: ...`). `since` is clamped to the last 15
//!   minutes (`PREFECT_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL`), the order is `ASC`; the stored
//!   matching events are sent first (unless `backfill` is false), then every new matching
//!   event as `{"type":"event","event":{...}}`. A subscriber more than
//!   [`pushpool_service::events::EVENT_FAN_OUT_CAPACITY`] events behind misses the oldest.
//! - `POST /events/filter` (`filter`, `limit` 0–50, default 50) → Prefect's `EventPage`
//!   (`events`, `total`, `next_page`: a URL of `GET /events/filter/next?page-token=…`, or
//!   `null`). Every `EventFilter` criterion is honoured; unknown keys are a 422 naming them.
//! - `GET /events/filter/next?page-token=…` → the next page; a token that does not parse is a
//!   403, as in Prefect.
//! - `POST /events/count-by/{day|time|event|resource}` (`filter`, `time_unit`,
//!   `time_interval`) → Prefect's `EventCount`s.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use chrono::Utc;
use pushpool_core::events::{Countable, Event, EventCount, EventFilter, TimeUnit, count_events};
use pushpool_service::event_sockets::{self, AuthMessageError, EventMessageError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::filters::{FilterBody, no_other_keys};
use crate::auth::AuthMode;
use crate::{ApiError, AppState};

/// The most events of one `/events/filter` page (Prefect's `INTERACTIVE_PAGE_SIZE`).
pub const EVENT_PAGE_SIZE: u64 = 50;

/// A close frame with `code` and `reason` (cut to the 123 bytes a close reason may have).
pub(crate) fn close(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Reads the auth message and answers it; `false` when the socket ended or was refused
/// (also `WS /logs/out`'s handshake: `routes/logs.rs`).
///
/// With keys required, the upgrade request passes the key check without an `Authorization`
/// header (Prefect's self-hosted clients send none on `/events/out`, and on `/events/in`
/// only with `PREFECT_API_AUTH_STRING`): the message's `token` must then be a valid,
/// unrevoked key, or `user:key` (Prefect's `accept_prefect_socket` compares it with
/// `PREFECT_SERVER_API_AUTH_STRING`). A refusal closes with 1008 and Prefect's reason
/// (`Auth required but no token provided`, `Invalid token`, `Expected 'auth' message`).
pub(crate) async fn auth(socket: &mut WebSocket, state: &AppState, header_checked: bool) -> bool {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => {
                let checked = match event_sockets::auth_token(text.as_str()) {
                    Err(e) => Err(e.to_string()),
                    Ok(_) if header_checked || state.auth == AuthMode::Open => Ok(()),
                    Ok(None) => Err(AuthMessageError::NoToken.to_string()),
                    Ok(Some(token)) => {
                        match crate::auth::key_is_valid(
                            state.store().as_ref(),
                            event_sockets::key_of_auth_string(&token),
                        )
                        .await
                        {
                            Ok(true) => Ok(()),
                            Ok(false) => Err(AuthMessageError::Invalid.to_string()),
                            Err(e) => {
                                tracing::warn!(error = %e, "reading an API key failed");
                                let _ = socket
                                    .send(close(1011, "The API key could not be checked"))
                                    .await;
                                return false;
                            }
                        }
                    }
                };
                if let Err(reason) = checked {
                    let _ = socket.send(close(1008, &reason)).await;
                    return false;
                }
                let reply = event_sockets::auth_success();
                return socket.send(Message::Text(reply.into())).await.is_ok();
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return false,
        }
    }
}

/// Whether the upgrade request carried an `Authorization` header, which the key check
/// (`crate::auth::require_key`) has then accepted.
pub(crate) fn header_checked(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::AUTHORIZATION)
}

/// `WS /events/in`.
pub(crate) async fn events_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let header_checked = header_checked(&headers);
    ws.protocols(["prefect"])
        .on_upgrade(move |mut socket| async move {
            if !auth(&mut socket, &state, header_checked).await {
                return;
            }
            let mut stored = 0u64;
            while let Some(Ok(msg)) = socket.recv().await {
                let text = match msg {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                match state.service.accept_event_message(text.as_str()).await {
                    Ok(_) => stored += 1,
                    Err(e @ EventMessageError::Invalid(_)) => {
                        tracing::warn!(reason = %e, "invalid event on /events/in; closing");
                        let _ = socket.send(close(1007, &e.to_string())).await;
                        break;
                    }
                    Err(e @ EventMessageError::Store(_)) => {
                        tracing::warn!(error = ?e, "storing an event failed; closing /events/in");
                        let _ = socket.send(close(1011, &e.to_string())).await;
                        break;
                    }
                }
            }
            tracing::debug!(stored, "events stream closed");
        })
}

async fn send_event(socket: &mut WebSocket, event: &Event) -> bool {
    let msg = event_sockets::event_message(event);
    socket.send(Message::Text(msg.into())).await.is_ok()
}

/// `WS /events/out`.
pub(crate) async fn events_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let header_checked = header_checked(&headers);
    ws.protocols(["prefect"])
        .on_upgrade(move |mut socket| async move {
            if !auth(&mut socket, &state, header_checked).await {
                return;
            }
            let text = match socket.recv().await {
                Some(Ok(Message::Text(t))) => t,
                _ => return,
            };
            let subscription = match event_sockets::subscription(text.as_str(), Utc::now()) {
                Ok(s) => s,
                Err(reason) => {
                    let _ = socket.send(close(1002, &reason)).await;
                    return;
                }
            };
            // Remembered with what it asked for and what it is sent (diagnostics).
            let record = state.service.record_subscription(subscription.requested);
            let filter = subscription.filter;
            // Subscribe first so that nothing is missed between the backfill and the stream.
            let mut live = state.service.subscribe_events();
            let mut backfilled = std::collections::HashSet::new();
            if subscription.backfill {
                match state.service.read_events(&filter).await {
                    Ok(events) => {
                        for e in &events {
                            backfilled.insert(e.id);
                            if !send_event(&mut socket, e).await {
                                return;
                            }
                            record.delivered(e);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the backfill of /events/out failed");
                        let _ = socket
                            .send(close(1011, "The backfill could not be read"))
                            .await;
                        return;
                    }
                }
            }
            loop {
                tokio::select! {
                    got = live.recv() => match got {
                        Ok(e) => {
                            if backfilled.remove(&e.id) || !filter.matches(&e) {
                                continue;
                            }
                            if !send_event(&mut socket, &e).await {
                                return;
                            }
                            record.delivered(&e);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "an /events/out subscriber fell behind");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    msg = socket.recv() => match msg {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                }
            }
        })
}

/// `POST /events/filter`'s body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FilterRequest {
    #[serde(default)]
    filter: Option<EventFilter>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Prefect's `EventPage`.
#[derive(Debug, Serialize)]
pub(crate) struct EventPage {
    events: Vec<Event>,
    total: usize,
    next_page: Option<String>,
}

/// What a page token holds (base64 of its JSON, as Prefect's): the filter with its bounds
/// fixed, the page size and the offset of the page.
#[derive(Debug, Serialize, Deserialize)]
struct PageToken {
    filter: EventFilter,
    page_size: usize,
    offset: usize,
}

/// The `next_page` link: `<PREFECT_API_URL>/events/filter/next?page-token=…`. Prefect builds
/// it from the request's URL; pushpool uses its public API URL, because behind CloudFront the
/// request's `Host` is API Gateway's own and would send the client around the distribution.
fn next_link(api_url: &str, token: &PageToken) -> Option<String> {
    let json = serde_json::to_vec(token).ok()?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    let encoded: String = url_encode(&encoded);
    Some(format!(
        "{}/events/filter/next?page-token={encoded}",
        api_url.trim_end_matches('/')
    ))
}

fn url_encode(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            '=' => "%3D".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

async fn page(state: &AppState, token: PageToken) -> Result<EventPage, ApiError> {
    let all = state.service.read_events(&token.filter).await?;
    let total = all.len();
    let events: Vec<Event> = all
        .into_iter()
        .skip(token.offset)
        .take(token.page_size)
        .collect();
    let next = token.offset + token.page_size;
    let next_page = (token.page_size > 0 && next < total)
        .then(|| {
            next_link(
                state.service.api_url(),
                &PageToken {
                    offset: next,
                    ..token
                },
            )
        })
        .flatten();
    Ok(EventPage {
        events,
        total,
        next_page,
    })
}

/// `POST /events/filter` → the first page.
pub(crate) async fn filter(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<FilterRequest>,
) -> Result<axum::Json<EventPage>, ApiError> {
    no_other_keys(&body.other)?;
    let limit = match body.limit {
        None | Some(Value::Null) => EVENT_PAGE_SIZE,
        Some(v) => match v.as_u64() {
            Some(n) if n <= EVENT_PAGE_SIZE => n,
            _ => {
                return Err(ApiError::Invalid(format!(
                    "limit: Input should be an integer from 0 to {EVENT_PAGE_SIZE} (got {v})"
                )));
            }
        },
    };
    let mut filter = body.filter.unwrap_or_default();
    filter.validate().map_err(ApiError::Invalid)?;
    filter.resolve(Utc::now());
    let token = PageToken {
        filter,
        page_size: usize::try_from(limit).unwrap_or(50),
        offset: 0,
    };
    Ok(axum::Json(page(&state, token).await?))
}

/// `GET /events/filter/next`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    #[serde(rename = "page-token")]
    page_token: String,
}

/// `GET /events/filter/next?page-token=…` → the next page; 403 for a token that does not
/// parse.
pub(crate) async fn filter_next(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Result<axum::Json<EventPage>, ApiError> {
    let forbidden = || ApiError::Forbidden("Forbidden".into());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(q.page_token.trim())
        .map_err(|_| forbidden())?;
    let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| forbidden())?;
    Ok(axum::Json(page(&state, token).await?))
}

/// `POST /events/count-by/{countable}`'s body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CountRequest {
    #[serde(default)]
    filter: Option<EventFilter>,
    #[serde(default)]
    time_unit: Option<TimeUnit>,
    #[serde(default)]
    time_interval: Option<f64>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// `POST /events/count-by/{countable}` → the counts.
pub(crate) async fn count_by(
    State(state): State<AppState>,
    Path(countable): Path<String>,
    FilterBody(body): FilterBody<CountRequest>,
) -> Result<axum::Json<Vec<EventCount>>, ApiError> {
    let countable: Countable = serde_json::from_value(Value::String(countable.clone()))
        .map_err(|_| {
            ApiError::Invalid(format!(
                "countable: Input should be 'day', 'time', 'event' or 'resource' (got '{countable}')"
            ))
        })?;
    no_other_keys(&body.other)?;
    let Some(mut filter) = body.filter else {
        return Err(ApiError::Invalid("filter: Field required".into()));
    };
    let interval = body.time_interval.unwrap_or(1.0);
    if interval < 0.01 {
        return Err(ApiError::Invalid(
            "time_interval: Input should be greater than or equal to 0.01".into(),
        ));
    }
    filter.validate().map_err(ApiError::Invalid)?;
    let now = Utc::now();
    filter.resolve(now);
    let events = state.service.read_events(&filter).await?;
    count_events(
        &events,
        &filter,
        countable,
        body.time_unit.unwrap_or_default(),
        interval,
        now,
    )
    .map(axum::Json)
    .map_err(ApiError::Invalid)
}
