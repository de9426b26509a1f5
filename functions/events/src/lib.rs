//! The events function's handler: Prefect's event sockets (`WS /events/in`,
//! `WS /events/out`, `prefect/server/api/events.py`) and its log socket (`WS /logs/out`,
//! `prefect/server/api/logs.py`) on an API Gateway WebSocket API, and the fan-out of new
//! events to `/events/out` subscribers and of new log lines to `/logs/out` subscribers from
//! the table's DynamoDB stream.
//!
//! # The WebSocket API (`$connect`, `$default`, `$disconnect`)
//!
//! API Gateway accepts WebSocket connections only at its stage URL; the socket is named by
//! the query string: `?stream=in`, `?stream=out` or `?stream=logs` (CloudFront rewrites the
//! clients' `<PREFECT_API_URL>/events/in`, `/events/out` and `/logs/out` to it:
//! `infra/README.md`). Each
//! connection is an item of the table ([`pushpool_store_dynamodb::WsConnection`]) that
//! follows Prefect's handshake ([`SocketPhase`]):
//!
//! - `$connect`: `stream` must be `in`, `out` or `logs` (else 400). An `Authorization` header
//!   (`Bearer <key>`, or `Basic` of `[user:]key`: what Prefect's events client sends from
//!   `PREFECT_API_AUTH_STRING`) must be a valid, unrevoked key (else 401). Without one,
//!   `/events/in` is a 401 (Prefect's events client sends the header whenever it has a
//!   credential, and tolerates a refused upgrade) and `/events/out` and `/logs/out` are
//!   checked on the auth message. When the client offers the `prefect` subprotocol,
//!   it is selected (`Sec-WebSocket-Protocol: prefect`).
//! - `$default`, first message: `{"type":"auth","token":…}` (Prefect's
//!   `accept_prefect_socket`): the token must be a valid key or `user:key` unless the header
//!   was; it is answered `{"type":"auth_success"}`.
//! - `/events/in`, later messages: one event each, stored and recorded as on the embedded
//!   server ([`Service::accept_event_message`]: the task run recorder included).
//! - `/events/out`, second message: the filter
//!   ([`pushpool_service::event_sockets::subscription`]), stored on the connection; then
//!   the stored matching events are posted (unless `backfill` is false), and from then on
//!   the fan-out posts every new matching event as `{"type":"event","event":…}`.
//! - `/logs/out`, second message: the filter
//!   ([`pushpool_service::log_sockets::log_subscription`], Prefect's `LogFilter`), stored
//!   on the connection; nothing stored is posted (no backfill, as on Prefect's server), and
//!   from then on the fan-out posts every new line that passes every criterion of the filter
//!   (as `POST /logs/filter` applies it) as `{"type":"log","log":…}`.
//!
//! API Gateway cannot close a socket with a code and a reason: where Prefect's server closes
//! (1008 for auth, 1007 for an invalid event, 1002 for a bad filter, 1011 for a store
//! failure), this function posts `{"type":"close","code":…,"reason":…}` and then deletes
//! the connection (`DeleteConnection`). Prefect's clients read the auth answer's `reason`
//! into their error ("Unable to authenticate to the event stream… Reason: Invalid token").
//!
//! # The fan-out (the table's stream)
//!
//! The same function consumes the table's stream, its event source mapping filtered to the
//! `INSERT`s of event items (whoever wrote them: the API and submitter functions'
//! flow run transitions, the reconciler's, this function's `/events/in`) and of log items
//! (the engine's `POST /logs/` through the API function, and pushpool's own lines for a run
//! from the submitter and reconciler). Each batch's events are posted, in stream order, to
//! every `/events/out` subscriber whose filter they match, and its lines to every
//! `/logs/out` subscriber whose filter they pass; a connection API Gateway answers 410 Gone
//! is deleted. A batch of lines with no `/logs/out` subscriber costs one `Query` of the
//! connections. Delivery is at least once:
//! an event written while a subscriber's backfill was read may reach it twice, which
//! Prefect's subscriber drops (it remembers the ids it saw).

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use chrono::{Duration, Utc};
use pushpool_core::events::Event;
use pushpool_core::logs::Log;
use pushpool_service::Service;
use pushpool_service::event_sockets::{self, AuthMessageError, EventMessageError};
use pushpool_store::StoreError;
use pushpool_store_dynamodb::{DynamoStore, EventSocket, SocketPhase, WsConnection};
use serde_json::{Value, json};

/// How long a connection item lives: API Gateway's two-hour limit on a connection, and a
/// margin for a `$disconnect` that never came.
pub const CONNECTION_TTL: Duration = Duration::minutes(130);

/// The events function: the service (events, task runs), the store (connections) and the
/// API Gateway Management API of the WebSocket API's stage.
#[derive(Clone)]
pub struct EventsFunction {
    service: Service,
    store: Arc<DynamoStore>,
    management: aws_sdk_apigatewaymanagement::Client,
}

impl std::fmt::Debug for EventsFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsFunction").finish_non_exhaustive()
    }
}

/// What posting to a connection came to.
#[derive(Debug, PartialEq, Eq)]
enum Posted {
    Sent,
    /// 410: the client is gone.
    Gone,
    Failed,
}

fn response(status: u16, body: &str) -> Value {
    json!({"statusCode": status, "body": body})
}

impl EventsFunction {
    /// The function over `service` (whose store is `store`) and the Management API client
    /// `management` (its endpoint the stage's `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
    pub fn new(
        service: Service,
        store: Arc<DynamoStore>,
        management: aws_sdk_apigatewaymanagement::Client,
    ) -> Self {
        Self {
            service,
            store,
            management,
        }
    }

    /// One invocation: a DynamoDB stream batch (it has `Records`) or a WebSocket event.
    ///
    /// # Errors
    /// A payload that is neither; a stream batch whose subscribers could not be read (Lambda
    /// retries the batch).
    pub async fn handle(&self, payload: Value) -> Result<Value, String> {
        if payload.get("Records").is_some() {
            let batch: StreamEvent =
                serde_json::from_value(payload).map_err(|e| format!("stream batch: {e}"))?;
            let out = self.fan_out(&batch).await.map_err(|e| e.to_string())?;
            return serde_json::to_value(out).map_err(|e| e.to_string());
        }
        let request: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(payload).map_err(|e| format!("WebSocket event: {e}"))?;
        Ok(self.websocket(request).await)
    }

    /// A WebSocket event of the API: `$connect`, `$default` or `$disconnect`; the answer
    /// (`statusCode`, and for `$connect` the selected subprotocol).
    pub async fn websocket(&self, request: ApiGatewayWebsocketProxyRequest) -> Value {
        let ctx = &request.request_context;
        let Some(id) = ctx.connection_id.clone() else {
            return response(400, "connectionId: missing");
        };
        match ctx.route_key.as_deref() {
            Some("$connect") => self.connect(&id, &request).await,
            Some("$disconnect") => {
                if let Err(e) = self.store.delete_ws_connection(&id).await {
                    tracing::warn!(error = %e, "deleting a connection failed (its TTL removes it)");
                }
                response(200, "")
            }
            Some("$default") => {
                let body = request.body.as_deref().unwrap_or("");
                if request.is_base64_encoded {
                    // A binary frame: Prefect's sockets carry text.
                    self.refuse(&id, 1003, "Expected a text message").await;
                } else {
                    self.message(&id, body).await;
                }
                response(200, "")
            }
            other => response(
                400,
                &format!("routeKey: {other:?} is not a route of this API"),
            ),
        }
    }

    async fn connect(&self, id: &str, request: &ApiGatewayWebsocketProxyRequest) -> Value {
        let socket = request
            .query_string_parameters
            .first("stream")
            .and_then(EventSocket::parse);
        let Some(socket) = socket else {
            return response(
                400,
                "stream: expected ?stream=in, ?stream=out or ?stream=logs",
            );
        };
        let phase = match request.headers.get("authorization") {
            // Prefect's events client sends `Authorization: Basic …` on `/events/in` whenever
            // it has `PREFECT_API_AUTH_STRING`; without one it would send a null token. A 401
            // on the upgrade is what it tolerates (it logs and carries on without events, as
            // before this socket existed); an auth message refused later is fatal to
            // `flow.serve()`'s runner. Only `/events/out` and `/logs/out` (whose subscribers
            // never send a header) are authenticated by their auth message.
            None if socket == EventSocket::In => {
                return response(
                    401,
                    "Missing API key: /events/in needs an Authorization header (PREFECT_API_AUTH_STRING)",
                );
            }
            None => SocketPhase::Auth,
            Some(value) => {
                let Some(key) = value.to_str().ok().and_then(pushpool_api::auth::key_of) else {
                    return response(401, "Malformed Authorization header");
                };
                match pushpool_api::auth::key_is_valid(self.service.store().as_ref(), &key).await {
                    Ok(true) => SocketPhase::AuthByHeader,
                    Ok(false) => return response(401, "Invalid API key."),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading an API key failed");
                        return response(503, "The API key could not be checked");
                    }
                }
            }
        };
        let connection = WsConnection {
            id: id.to_owned(),
            socket,
            phase,
            filter: None,
            log_filter: None,
            expires_at: Utc::now() + CONNECTION_TTL,
        };
        if let Err(e) = self.store.put_ws_connection(&connection).await {
            tracing::warn!(error = %e, "storing a connection failed");
            return response(503, "The connection could not be stored");
        }
        let offers_prefect = request
            .headers
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == "prefect");
        if offers_prefect {
            json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "prefect"}})
        } else {
            response(200, "")
        }
    }

    async fn message(&self, id: &str, text: &str) {
        let connection = match self.store.read_ws_connection(id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                // Gone from the table (expired, or a lost race with `$disconnect`).
                self.refuse(id, 1008, "Unknown connection").await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading a connection failed");
                self.refuse(id, 1011, "The connection could not be read")
                    .await;
                return;
            }
        };
        match (connection.phase, connection.socket) {
            (SocketPhase::Auth | SocketPhase::AuthByHeader, _) => {
                self.auth(connection, text).await;
            }
            (SocketPhase::Open, EventSocket::In) => {
                match self.service.accept_event_message(text).await {
                    Ok(_) => {}
                    Err(e @ EventMessageError::Invalid(_)) => {
                        self.refuse(id, 1007, &e.to_string()).await;
                    }
                    Err(e @ EventMessageError::Store(_)) => {
                        tracing::warn!(error = ?e, "storing an event failed");
                        self.refuse(id, 1011, &e.to_string()).await;
                    }
                }
            }
            (SocketPhase::Open, EventSocket::Out) => self.subscribe(connection, text).await,
            (SocketPhase::Open, EventSocket::Logs) => {
                self.subscribe_logs(connection, text).await;
            }
            // A subscriber's later messages are not read (as on Prefect's server).
            (SocketPhase::Subscribed, _) => {}
        }
    }

    async fn auth(&self, mut connection: WsConnection, text: &str) {
        let by_header = connection.phase == SocketPhase::AuthByHeader;
        let checked = match event_sockets::auth_token(text) {
            Err(e) => Err(e),
            Ok(_) if by_header => Ok(()),
            Ok(None) => Err(AuthMessageError::NoToken),
            Ok(Some(token)) => {
                let key = event_sockets::key_of_auth_string(&token);
                match pushpool_api::auth::key_is_valid(self.service.store().as_ref(), key).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(AuthMessageError::Invalid),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading an API key failed");
                        self.refuse(&connection.id, 1011, "The API key could not be checked")
                            .await;
                        return;
                    }
                }
            }
        };
        if let Err(e) = checked {
            self.refuse(&connection.id, 1008, &e.to_string()).await;
            return;
        }
        connection.phase = SocketPhase::Open;
        if let Err(e) = self.store.put_ws_connection(&connection).await {
            tracing::warn!(error = %e, "storing a connection failed");
            self.refuse(&connection.id, 1011, "The connection could not be stored")
                .await;
            return;
        }
        self.post(&connection.id, event_sockets::auth_success())
            .await;
    }

    async fn subscribe(&self, mut connection: WsConnection, text: &str) {
        let subscription = match event_sockets::subscription(text, Utc::now()) {
            Ok(s) => s,
            Err(reason) => {
                self.refuse(&connection.id, 1002, &reason).await;
                return;
            }
        };
        // Stored before the backfill is read, so that an event written meanwhile is posted
        // by the fan-out if not by the backfill (or by both: the client drops repeats).
        connection.phase = SocketPhase::Subscribed;
        connection.filter = Some(subscription.filter.clone());
        if let Err(e) = self.store.put_ws_connection(&connection).await {
            tracing::warn!(error = %e, "storing a subscription failed");
            self.refuse(&connection.id, 1011, "The subscription could not be stored")
                .await;
            return;
        }
        if !subscription.backfill {
            return;
        }
        match self.service.read_events(&subscription.filter).await {
            Ok(events) => {
                for e in &events {
                    if self
                        .post(&connection.id, event_sockets::event_message(e))
                        .await
                        != Posted::Sent
                    {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the backfill failed");
                self.refuse(&connection.id, 1011, "The backfill could not be read")
                    .await;
            }
        }
    }

    /// A `/logs/out` filter message: the filter is stored on the connection, from which the
    /// fan-out posts new lines; nothing is posted now (no backfill, as on Prefect's server).
    async fn subscribe_logs(&self, mut connection: WsConnection, text: &str) {
        let filter = match pushpool_service::log_sockets::log_subscription(text) {
            Ok(f) => f,
            Err(reason) => {
                self.refuse(&connection.id, 1002, &reason).await;
                return;
            }
        };
        connection.phase = SocketPhase::Subscribed;
        connection.log_filter = Some(filter);
        if let Err(e) = self.store.put_ws_connection(&connection).await {
            tracing::warn!(error = %e, "storing a subscription failed");
            self.refuse(&connection.id, 1011, "The subscription could not be stored")
                .await;
        }
    }

    /// Posts `data` to the connection; a gone connection's item is deleted.
    async fn post(&self, id: &str, data: String) -> Posted {
        let sent = self
            .management
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new(data.into_bytes()))
            .send()
            .await;
        match sent {
            Ok(_) => Posted::Sent,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                if let Err(e) = self.store.delete_ws_connection(id).await {
                    tracing::warn!(error = %e, "deleting a gone connection failed (its TTL removes it)");
                }
                Posted::Gone
            }
            Err(e) => {
                tracing::warn!(error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "posting to a connection failed");
                Posted::Failed
            }
        }
    }

    /// Ends a connection where Prefect's server would close it with `code` and `reason`:
    /// posts `{"type":"close","code":…,"reason":…}`, then `DeleteConnection`.
    async fn refuse(&self, id: &str, code: u16, reason: &str) {
        tracing::info!(code, reason, "closing a WebSocket connection");
        let msg = json!({"type": "close", "code": code, "reason": reason}).to_string();
        if self.post(id, msg).await == Posted::Gone {
            return;
        }
        if let Err(e) = self
            .management
            .delete_connection()
            .connection_id(id)
            .send()
            .await
            && !e.as_service_error().is_some_and(|e| e.is_gone_exception())
        {
            tracing::warn!(error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "closing a connection failed");
        }
        if let Err(e) = self.store.delete_ws_connection(id).await {
            tracing::warn!(error = %e, "deleting a connection failed (its TTL removes it)");
        }
    }

    /// One batch of the table's stream: its events (the `INSERT`s of event items) are
    /// posted to the `/events/out` subscribers whose filter they match, and its log lines
    /// (the `INSERT`s of log items) to the `/logs/out` subscribers whose filter they pass,
    /// each subscriber's in stream order.
    /// Posting failures are logged, not retried (a retry would repeat the batch to every
    /// other subscriber).
    ///
    /// # Errors
    /// Reading the subscribers failed: Lambda retries the batch.
    pub async fn fan_out(&self, batch: &StreamEvent) -> Result<DynamoDbEventResponse, StoreError> {
        let events: Vec<Event> = batch
            .records
            .iter()
            .filter_map(pushpool_store_dynamodb::events_stream::stream_event)
            .collect();
        let logs: Vec<Log> = batch
            .records
            .iter()
            .filter_map(pushpool_store_dynamodb::events_stream::stream_log)
            .collect();
        if events.is_empty() && logs.is_empty() {
            return Ok(DynamoDbEventResponse::default());
        }
        let subscribers = self.store.ws_subscribers().await?;
        let events = Arc::new(events);
        let logs = Arc::new(logs);
        let mut work = tokio::task::JoinSet::new();
        for subscriber in subscribers {
            let messages: Vec<String> = match (
                subscriber.socket,
                &subscriber.filter,
                &subscriber.log_filter,
            ) {
                (EventSocket::Out, Some(filter), _) => events
                    .iter()
                    .filter(|e| filter.matches(e))
                    .map(event_sockets::event_message)
                    .collect(),
                (EventSocket::Logs, _, Some(filter)) => logs
                    .iter()
                    .filter(|l| filter.matches(l))
                    .map(pushpool_service::log_sockets::log_message)
                    .collect(),
                _ => continue,
            };
            if messages.is_empty() {
                continue;
            }
            let this = self.clone();
            work.spawn(async move {
                for m in messages {
                    if this.post(&subscriber.id, m).await != Posted::Sent {
                        break;
                    }
                }
            });
        }
        while work.join_next().await.is_some() {}
        Ok(DynamoDbEventResponse::default())
    }
}
