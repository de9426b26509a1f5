//! The WebSocket connections of the AWS shape's events function (API Gateway WebSocket API:
//! `WS /events/in`, `WS /events/out`, `WS /logs/out`), one small item each, all in one
//! partition so that the fan-out of new events and log lines reads every subscriber with one
//! `Query`.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | connection | `WSCONN` | `<API Gateway connection id>` | `stream` (`in`/`out`/`logs`), `phase`, `filter` (JSON: the `EventFilter` of `/events/out` once subscribed), `log_filter` (JSON: the `LogFilter` of `/logs/out` once subscribed), `expires_at` (TTL) |
//!
//! - **Lifetime.** Written on `$connect`, rewritten as the socket's handshake moves on
//!   ([`SocketPhase`]), deleted on `$disconnect` and when API Gateway answers 410 Gone to a
//!   post. `expires_at` (API Gateway's two-hour connection limit plus a margin) removes
//!   what a lost `$disconnect` left behind.
//! - **Size.** About 100 bytes, and the filter of a subscriber (Prefect's subscribers send
//!   a few hundred bytes): one write unit per write, half a read unit per read.
//! - **Scale.** One partition holds every connection (DynamoDB serves 3,000 reads and
//!   1,000 writes a second per partition): ample for the engines and CLI subscribers of
//!   one pushpool.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use pushpool_core::events::EventFilter;
use pushpool_core::logs::LogFilter;
use pushpool_store::StoreError;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{EXPIRES_AT, Expr, Item, PK, SK, key, opt_str, req_str, s};
use crate::ops::Query;

const PARTITION: &str = "WSCONN";
const STREAM: &str = "stream";
const PHASE: &str = "phase";
const FILTER: &str = "filter";
const LOG_FILTER: &str = "log_filter";

/// Which of Prefect's sockets a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSocket {
    /// `WS /events/in`: the client sends events.
    In,
    /// `WS /events/out`: the client subscribes to events.
    Out,
    /// `WS /logs/out`: the client subscribes to log lines.
    Logs,
}

impl EventSocket {
    /// `in`, `out` or `logs` (the events function's `?stream=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Logs => "logs",
        }
    }

    /// The socket named `in`, `out` or `logs`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in" => Some(Self::In),
            "out" => Some(Self::Out),
            "logs" => Some(Self::Logs),
            _ => None,
        }
    }
}

/// Where a connection is in Prefect's socket handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketPhase {
    /// Waiting for `{"type":"auth",…}`; the upgrade carried no `Authorization` header.
    Auth,
    /// Waiting for the auth message; the upgrade's `Authorization` header was a valid key.
    AuthByHeader,
    /// Authenticated: events (`/events/in`) or the filter message (`/events/out`,
    /// `/logs/out`).
    Open,
    /// `/events/out` or `/logs/out` with its filter: events or log lines are posted to it.
    Subscribed,
}

impl SocketPhase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthByHeader => "auth-by-header",
            Self::Open => "open",
            Self::Subscribed => "subscribed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auth" => Self::Auth,
            "auth-by-header" => Self::AuthByHeader,
            "open" => Self::Open,
            "subscribed" => Self::Subscribed,
            _ => return None,
        })
    }
}

/// A stored WebSocket connection.
#[derive(Debug, Clone, PartialEq)]
pub struct WsConnection {
    /// API Gateway's connection id.
    pub id: String,
    /// Which socket.
    pub socket: EventSocket,
    /// Where its handshake is.
    pub phase: SocketPhase,
    /// The subscription's filter (`/events/out`, [`SocketPhase::Subscribed`]).
    pub filter: Option<EventFilter>,
    /// The subscription's filter (`/logs/out`, [`SocketPhase::Subscribed`]).
    pub log_filter: Option<LogFilter>,
    /// When DynamoDB's TTL removes it.
    pub expires_at: DateTime<Utc>,
}

fn malformed(attribute: &'static str, problem: &'static str) -> DynamoError {
    DynamoError::Malformed {
        pk: PARTITION.to_owned(),
        attribute,
        problem,
    }
}

fn connection_item(c: &WsConnection) -> Result<Item, DynamoError> {
    let mut item = key(PARTITION, c.id.clone());
    item.insert(STREAM.into(), s(c.socket.as_str()));
    item.insert(PHASE.into(), s(c.phase.as_str()));
    if let Some(f) = &c.filter {
        let json =
            serde_json::to_string(f).map_err(|_| malformed(FILTER, "could not be encoded"))?;
        item.insert(FILTER.into(), s(json));
    }
    if let Some(f) = &c.log_filter {
        let json =
            serde_json::to_string(f).map_err(|_| malformed(LOG_FILTER, "could not be encoded"))?;
        item.insert(LOG_FILTER.into(), s(json));
    }
    item.insert(
        EXPIRES_AT.into(),
        AttributeValue::N(c.expires_at.timestamp().to_string()),
    );
    Ok(item)
}

fn connection_from(item: &Item) -> Result<WsConnection, DynamoError> {
    let socket = EventSocket::parse(req_str(item, STREAM)?)
        .ok_or_else(|| malformed(STREAM, "is not in, out or logs"))?;
    let phase = SocketPhase::parse(req_str(item, PHASE)?)
        .ok_or_else(|| malformed(PHASE, "is not a socket phase"))?;
    let filter = opt_str(item, FILTER)?
        .map(serde_json::from_str::<EventFilter>)
        .transpose()
        .map_err(|_| malformed(FILTER, "is not an event filter"))?;
    let log_filter = opt_str(item, LOG_FILTER)?
        .map(serde_json::from_str::<LogFilter>)
        .transpose()
        .map_err(|_| malformed(LOG_FILTER, "is not a log filter"))?;
    let expires_at = match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        _ => None,
    }
    .ok_or_else(|| malformed(EXPIRES_AT, "is not epoch seconds"))?;
    Ok(WsConnection {
        id: req_str(item, SK)?.to_owned(),
        socket,
        phase,
        filter,
        log_filter,
        expires_at,
    })
}

impl DynamoStore {
    /// Writes `connection` (a new one, or its next phase).
    ///
    /// # Errors
    /// The store's.
    pub async fn put_ws_connection(&self, connection: &WsConnection) -> Result<(), StoreError> {
        self.put_items(vec![connection_item(connection)?]).await?;
        Ok(())
    }

    /// The connection `id`, if stored (and not yet expired: DynamoDB's TTL deletes lazily).
    ///
    /// # Errors
    /// The store's.
    pub async fn read_ws_connection(&self, id: &str) -> Result<Option<WsConnection>, StoreError> {
        let Some(item) = self.get(key(PARTITION, id)).await? else {
            return Ok(None);
        };
        let c = connection_from(&item)?;
        Ok((c.expires_at > Utc::now()).then_some(c))
    }

    /// Deletes the connection `id` (nothing when it is not stored).
    ///
    /// # Errors
    /// The store's.
    pub async fn delete_ws_connection(&self, id: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(PARTITION, id)))
            .set_return_consumed_capacity(self.capacity())
            .send()
            .await
            .map_err(|e| crate::error::sdk("DeleteItem", e))?;
        self.meter_write(&[], 1, false, out.consumed_capacity());
        Ok(())
    }

    /// Every subscribed `/events/out` and `/logs/out` connection not yet expired (the caller
    /// tells them apart by [`WsConnection::socket`]): one `Query` of the
    /// connections' partition, filtered to `phase = subscribed`.
    ///
    /// # Errors
    /// The store's.
    pub async fn ws_subscribers(&self) -> Result<Vec<WsConnection>, StoreError> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(PARTITION)));
        let filter = format!(
            "{} = {}",
            expr.name(PHASE),
            expr.value(s(SocketPhase::Subscribed.as_str()))
        );
        let q = Query {
            index: None,
            key_condition,
            filter: Some(filter),
            projection: None,
            expr,
            descending: false,
        };
        let now = Utc::now();
        let mut out = Vec::new();
        for item in self.query(&q, None).await? {
            let c = connection_from(&item)?;
            if c.expires_at > now {
                out.push(c);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_round_trips_through_its_item() {
        let c = WsConnection {
            id: "TWegAcC4EowCHnA=".into(),
            socket: EventSocket::Out,
            phase: SocketPhase::Subscribed,
            filter: Some(EventFilter::default()),
            log_filter: None,
            expires_at: DateTime::from_timestamp(1_767_866_400, 0).unwrap(),
        };
        let item = connection_item(&c).unwrap();
        assert_eq!(item[PK], s("WSCONN"));
        assert_eq!(item[SK], s("TWegAcC4EowCHnA="));
        assert_eq!(item[EXPIRES_AT], AttributeValue::N("1767866400".into()));
        assert_eq!(item[PHASE], s("subscribed"));
        assert_eq!(connection_from(&item).unwrap(), c);

        let logs = WsConnection {
            socket: EventSocket::Logs,
            filter: None,
            log_filter: Some(
                serde_json::from_str(
                    r#"{"operator":"or_","level":{"ge_":30,"le_":null},"timestamp":{"before_":"2027-01-01T00:00:00Z","after_":null},"flow_run_id":{"any_":["00000000-0000-0000-0000-000000000001"]},"task_run_id":{"any_":null,"is_null_":true},"text":{"query":"-skip"}}"#,
                )
                .unwrap(),
            ),
            ..c
        };
        let item = connection_item(&logs).unwrap();
        assert_eq!(item[STREAM], s("logs"));
        assert_eq!(connection_from(&item).unwrap(), logs);
    }
}
