//! The adapter's own error type, and the one place where SDK errors become [`StoreError`]s.
//!
//! Nothing here may carry an item's content: block documents hold secrets, and the SDK's
//! error values can hold whole items (`ReturnValuesOnConditionCheckFailure`, raw response
//! bodies). So a service error keeps only its code, the service's message and the HTTP
//! status, and a JSON decoding error keeps only its category and position.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use pushpool_store::StoreError;

/// What went wrong talking to DynamoDB, or with what it returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoError {
    /// DynamoDB answered with an error.
    #[error("DynamoDB {operation} failed with HTTP {status}: {code}: {message}")]
    Service {
        /// The API operation (`TransactWriteItems`).
        operation: &'static str,
        /// The error code (`ValidationException`).
        code: String,
        /// The service's message (DynamoDB's messages name attributes, never their values).
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// No usable answer: a timeout, a connection failure, a request that could not be sent.
    #[error("DynamoDB {operation}: no usable response")]
    Transport {
        /// The API operation.
        operation: &'static str,
        /// The SDK's error (only kinds that hold no response body are kept).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response arrived but could not be read.
    #[error("DynamoDB {operation}: unreadable response (HTTP {status})")]
    Response {
        /// The API operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// A request could not be built (a bug in this adapter).
    #[error("cannot build a DynamoDB request")]
    Build(#[from] BuildError),
    /// A transaction was cancelled for reasons this adapter does not handle.
    #[error("DynamoDB {operation}: transaction cancelled ({codes})")]
    Cancelled {
        /// The API operation.
        operation: &'static str,
        /// The cancellation reason codes, in item order.
        codes: String,
        /// Whether a reason was throttling (retry later).
        transient: bool,
    },
    /// Writers kept colliding on the same items; the caller may retry later.
    #[error("DynamoDB {operation}: still conflicting after {attempts} attempts")]
    Contended {
        /// What was attempted.
        operation: &'static str,
        /// How many times.
        attempts: u32,
    },
    /// A table did not become `ACTIVE` in time.
    #[error("table {table} did not become ACTIVE in time")]
    NotActive {
        /// The table.
        table: String,
    },
    /// A stored item lacks an attribute or holds the wrong type.
    #[error("item {pk}: attribute {attribute} {problem}")]
    Malformed {
        /// The item's partition key.
        pk: String,
        /// The attribute.
        attribute: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A stored JSON body does not decode.
    #[error(
        "item {pk}: its {what} does not decode ({category} error at line {line}, column {column})"
    )]
    Decode {
        /// The item's partition key.
        pk: String,
        /// What was being decoded.
        what: &'static str,
        /// serde_json's category (`data`, `syntax`, ...).
        category: &'static str,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode a {what} as JSON")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// serde_json's error (encoding errors name types, not values).
        #[source]
        source: serde_json::Error,
    },
}

impl DynamoError {
    /// A decoding error of `what` in the item `pk`, without serde_json's message (which can
    /// quote the stored value).
    pub(crate) fn decode(pk: &str, what: &'static str, e: &serde_json::Error) -> Self {
        let category = match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        };
        Self::Decode {
            pk: pk.to_owned(),
            what,
            category,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Error codes that mean "retry later".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Transaction cancellation reason codes that mean "retry later".
pub(crate) const TRANSIENT_REASONS: &[&str] = &[
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "TransactionConflict",
];

/// Whether a service error code means "retry later".
pub(crate) fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// The error code, and the transaction cancellation reason, of a write that would grow an item
/// collection (the items of one partition key, on a table with a local secondary index) past
/// DynamoDB's 10 GB: the store is full for that partition.
const FULL_CODE: &str = "ItemCollectionSizeLimitExceededException";
const FULL_REASON: &str = "ItemCollectionSizeLimitExceeded";

impl From<DynamoError> for StoreError {
    /// Throttling (`ProvisionedThroughputExceededException`, `RequestLimitExceeded`,
    /// `ThrottlingException`), 5xx answers, timeouts and contention are
    /// [`StoreError::Transient`] (a 503 the client retries); a full item collection is
    /// [`StoreError::Full`] (a 507); anything else is [`StoreError::Backend`].
    fn from(e: DynamoError) -> Self {
        let full = match &e {
            DynamoError::Service { code, .. } => code == FULL_CODE,
            DynamoError::Cancelled { codes, .. } => codes.split(", ").any(|c| c == FULL_REASON),
            _ => false,
        };
        if full {
            return StoreError::Full(Box::new(e));
        }
        let transient = match &e {
            DynamoError::Service { code, status, .. } => is_transient_code(code) || *status >= 500,
            DynamoError::Response { status, .. } => *status >= 500,
            DynamoError::Cancelled { transient, .. } => *transient,
            DynamoError::Contended { .. } | DynamoError::NotActive { .. } => true,
            DynamoError::Transport { source, .. } => transport_is_transient(source.as_ref()),
            _ => false,
        };
        if transient {
            StoreError::Transient(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// Timeouts and I/O failures are transient; a request that could not be constructed is not.
fn transport_is_transient(source: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    source
        .downcast_ref::<TransportKind>()
        .is_some_and(|k| k.transient)
}

/// The kind of a transport failure, kept as the source's first link so the classification
/// survives boxing.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct TransportKind {
    what: &'static str,
    transient: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Converts an SDK error of `operation` into the adapter's error, dropping anything that can
/// hold a response body.
pub(crate) fn sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (what, transient) = match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            return DynamoError::Service {
                operation,
                code: e.code().unwrap_or("Unknown").to_owned(),
                message: e.message().unwrap_or("").to_owned(),
                status: ctx.raw().status().as_u16(),
            };
        }
        SdkError::ResponseError(ctx) => {
            return DynamoError::Response {
                operation,
                status: ctx.raw().status().as_u16(),
            };
        }
        SdkError::TimeoutError(_) => ("timed out", true),
        SdkError::DispatchFailure(f) if f.is_timeout() => ("timed out", true),
        SdkError::DispatchFailure(f) if f.is_io() => ("connection failed", true),
        SdkError::DispatchFailure(_) => ("dispatch failed", false),
        SdkError::ConstructionFailure(_) => ("request could not be constructed", false),
        _ => ("failed", false),
    };
    DynamoError::Transport {
        operation,
        source: Box::new(TransportKind {
            what,
            transient,
            source: Box::new(err),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        let throttled = DynamoError::Service {
            operation: "PutItem",
            code: "ProvisionedThroughputExceededException".into(),
            message: "slow down".into(),
            status: 400,
        };
        assert!(matches!(
            StoreError::from(throttled),
            StoreError::Transient(_)
        ));
        let server = DynamoError::Service {
            operation: "PutItem",
            code: "Whatever".into(),
            message: String::new(),
            status: 503,
        };
        assert!(matches!(StoreError::from(server), StoreError::Transient(_)));
        let invalid = DynamoError::Service {
            operation: "PutItem",
            code: "ValidationException".into(),
            message: "bad".into(),
            status: 400,
        };
        assert!(matches!(StoreError::from(invalid), StoreError::Backend(_)));
    }

    #[test]
    fn a_full_item_collection_is_full_and_throttling_is_transient() {
        let full = DynamoError::Service {
            operation: "PutItem",
            code: "ItemCollectionSizeLimitExceededException".into(),
            message: "Item collection size limit exceeded".into(),
            status: 400,
        };
        assert!(matches!(StoreError::from(full), StoreError::Full(_)));
        let cancelled = DynamoError::Cancelled {
            operation: "TransactWriteItems",
            codes: "None, ItemCollectionSizeLimitExceeded".into(),
            transient: false,
        };
        assert!(matches!(StoreError::from(cancelled), StoreError::Full(_)));
        for code in ["RequestLimitExceeded", "ThrottlingException"] {
            let throttled = DynamoError::Service {
                operation: "PutItem",
                code: code.into(),
                message: String::new(),
                status: 400,
            };
            assert!(
                matches!(StoreError::from(throttled), StoreError::Transient(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn decode_errors_do_not_quote_the_stored_value() {
        let err = serde_json::from_str::<u32>("\"hunter2\"").unwrap_err();
        assert!(err.to_string().contains("hunter2"));
        let ours = DynamoError::decode("BLOCKDOC#1", "body", &err).to_string();
        assert!(!ours.contains("hunter2"), "{ours}");
        assert_eq!(
            ours,
            "item BLOCKDOC#1: its body does not decode (data error at line 1, column 9)"
        );
    }
}
