//! The table's DynamoDB stream, as the submitter function reads it: the item layout of the
//! change feed (outbox items, `pk = OUTBOX`, written with every flow run write, whose new
//! image carries `flow_run_id` and `state_type`) decoded here, beside the code that writes
//! it, so that no other crate knows the table's attribute names.

use pushpool_core::state::StateType;
use serde::Deserialize;
use uuid::Uuid;

use crate::item::OUTBOX;

/// The attributes of an outbox item's new image that the submitter reads.
#[derive(Debug, Deserialize)]
struct OutboxImage {
    pk: String,
    flow_run_id: Option<String>,
    state_type: Option<String>,
}

/// A change-feed item decoded: the run and its state after the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxChange {
    /// The run.
    pub flow_run_id: Uuid,
    /// Its state type after the write (`None` when unset or not a Prefect state type).
    pub state_type: Option<StateType>,
}

/// Decodes the new image of a stream record (an `INSERT`'s `NewImage`): `None` for an item
/// that is not an outbox item, or whose `flow_run_id` is missing or not a UUID.
pub fn decode_outbox_image(new_image: serde_dynamo::Item) -> Option<OutboxChange> {
    let image: OutboxImage = serde_dynamo::from_item(new_image).ok()?;
    if image.pk != OUTBOX {
        return None;
    }
    Some(OutboxChange {
        flow_run_id: image.flow_run_id?.parse().ok()?,
        state_type: image.state_type.as_deref().and_then(StateType::parse),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: serde_json::Value) -> serde_dynamo::Item {
        serde_dynamo::to_item(v).unwrap()
    }

    #[test]
    fn an_outbox_image_decodes_to_its_run_and_state() {
        let id = Uuid::new_v4();
        assert_eq!(
            decode_outbox_image(item(json!({
                "pk": "OUTBOX", "sk": "00000000000000000001",
                "flow_run_id": id.to_string(), "state_type": "CANCELLING"
            }))),
            Some(OutboxChange {
                flow_run_id: id,
                state_type: Some(StateType::Cancelling)
            })
        );
        assert_eq!(
            decode_outbox_image(item(json!({"pk": "OUTBOX", "flow_run_id": id.to_string()}))),
            Some(OutboxChange {
                flow_run_id: id,
                state_type: None
            })
        );
    }

    #[test]
    fn other_items_and_bad_ids_are_not_changes() {
        let id = Uuid::new_v4().to_string();
        assert_eq!(
            decode_outbox_image(item(json!({"pk": "RUN#x", "flow_run_id": id}))),
            None
        );
        assert_eq!(
            decode_outbox_image(item(json!({"pk": "OUTBOX", "flow_run_id": "nope"}))),
            None
        );
        assert_eq!(decode_outbox_image(item(json!({"pk": "OUTBOX"}))), None);
    }
}
