//! The submitter function's handler: one batch of the table's DynamoDB stream.
//!
//! The stream's event source mapping (in `infra/`) passes only the change-feed records —
//! `INSERT`s of outbox items (`pk = OUTBOX`), whose new image carries `flow_run_id` and
//! `state_type` — so each record is "flow run X was written and is now in state S". For each
//! distinct run of the batch whose state may need work (SCHEDULED: submit when due;
//! CANCELLING: stop its job; a final state: release what its job left behind, and submit the
//! runs waiting for the concurrency slots it gave back; PAUSED: the same slots),
//! [`Service::handle_change`] does the work, for all of the batch's runs at once; everything
//! else in the batch is acknowledged.
//!
//! Delivery is at least once and the handler is idempotent: a claim is a conditional write
//! and the provider call carries the run's idempotency key, so a redelivered record submits
//! nothing twice. A record whose handling failed with a retryable error (the store
//! throttled) is reported in `batchItemFailures` (the `ReportBatchItemFailures` contract), so
//! Lambda retries from it without blocking or re-submitting the others; a record that cannot
//! be decoded is logged and acknowledged (retrying would not help).

use std::collections::HashSet;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use pushpool_core::state::StateType;
use pushpool_service::Service;
use uuid::Uuid;

/// A decoded change: the run and its state after the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The stream sequence number (the batch item identifier).
    pub sequence_number: String,
    /// The run.
    pub flow_run_id: Uuid,
    /// Its state type after the write.
    pub state_type: Option<StateType>,
}

/// Decodes a stream record into a change; `None` for records that are not outbox inserts (the
/// item layout is the DynamoDB adapter's: `pushpool_store_dynamodb::stream`).
pub fn decode(record: &EventRecord) -> Option<ChangeRecord> {
    if record.event_name != "INSERT" {
        return None;
    }
    let change =
        pushpool_store_dynamodb::stream::decode_outbox_image(record.change.new_image.clone())?;
    Some(ChangeRecord {
        sequence_number: record.change.sequence_number.clone()?,
        flow_run_id: change.flow_run_id,
        state_type: change.state_type,
    })
}

/// Handles one batch; returns the records to retry. The batch's runs are handled at once
/// (a release waits up to `release_grace` for a job to end, which must not hold up the
/// submissions of the same batch).
pub async fn handle(service: &Service, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut seen = HashSet::new();
    let mut work = tokio::task::JoinSet::new();
    for record in &event.records {
        let Some(change) = decode(record) else {
            tracing::debug!(event_id = %record.event_id, "not a change-feed record; skipped");
            continue;
        };
        // A final or PAUSED run gave its concurrency slots back: the runs waiting for one
        // are submitted on its change (`Service::handle_change`).
        let wanted = matches!(
            change.state_type,
            Some(StateType::Scheduled | StateType::Cancelling)
        ) || service.is_release_change(change.state_type)
            || pushpool_service::concurrency_slots::frees_slots(change.state_type);
        if !wanted || !seen.insert(change.flow_run_id) {
            continue;
        }
        let service = service.clone();
        work.spawn(async move {
            let result = service.handle_change(change.flow_run_id).await;
            (change, result)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = work.join_next().await {
        let (change, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "a change handler panicked");
                continue;
            }
        };
        match result {
            Ok(outcome) => {
                tracing::info!(flow_run_id = %change.flow_run_id, ?outcome, "change handled");
            }
            Err(e) => {
                tracing::warn!(flow_run_id = %change.flow_run_id, error = %e, "change failed; reported for retry");
                failed.push(change.sequence_number);
            }
        }
    }
    // Lambda retries from the lowest reported sequence number; report them in stream order.
    failed.sort_by_key(|seq| seq.parse::<u128>().unwrap_or(u128::MAX));
    for seq in failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(seq);
        response.batch_item_failures.push(failure);
    }
    response
}
