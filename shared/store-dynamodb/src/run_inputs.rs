//! Flow run inputs ([`FlowRunInput`]): one item per input, the inputs of a run in one
//! partition, so listing them is one `Query`.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | flow run input | `FRINPUT#<flow run id>` | `<key>` | `body` (the input's JSON) |
//!
//! Keys are lowercase letters, digits and dashes (the API checks them), so they need no
//! escaping. Creating is a `PutItem` on the condition that the item is absent (a second input
//! of one key is a conflict); deleting is a `DeleteItem` on the condition that it exists. The
//! listing is sorted by `created` here (the partition sorts by key).

use pushpool_core::run_input::FlowRunInput;
use pushpool_store::{Result, StoreError};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::sdk;
use crate::item::{BODY, Expr, Item, PK, decode, encode, key, s};
use crate::ops::Query;

const MISSING: &str = "Flow run input not found";

fn input_pk(flow_run_id: Uuid) -> String {
    format!("FRINPUT#{flow_run_id}")
}

impl DynamoStore {
    pub(crate) async fn put_run_input(&self, input: &FlowRunInput) -> Result<()> {
        let mut item: Item = key(input_pk(input.flow_run_id), input.key.clone());
        item.insert(BODY.into(), s(encode(input, "flow run input")?));
        let mut expr = Expr::default();
        let condition = format!("attribute_not_exists({})", expr.name(PK));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(
                    "A flow run input with this key already exists.".into(),
                ))
            }
            Err(e) => Err(sdk("PutItem", e).into()),
        }
    }

    pub(crate) async fn get_run_input(&self, flow_run_id: Uuid, k: &str) -> Result<FlowRunInput> {
        match self.get(key(input_pk(flow_run_id), k)).await? {
            Some(item) => Ok(decode(&item, BODY)?),
            None => Err(StoreError::NotFound(MISSING.into())),
        }
    }

    pub(crate) async fn run_inputs(&self, flow_run_id: Uuid) -> Result<Vec<FlowRunInput>> {
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {}",
            expr.name(PK),
            expr.value(s(input_pk(flow_run_id)))
        );
        let query = Query {
            key_condition,
            expr,
            ..Query::default()
        };
        let mut inputs = self
            .query(&query, None)
            .await?
            .iter()
            .map(|item| decode::<FlowRunInput>(item, BODY))
            .collect::<Result<Vec<_>, _>>()?;
        inputs.sort_by_key(|i| i.created);
        Ok(inputs)
    }

    pub(crate) async fn remove_run_input(&self, flow_run_id: Uuid, k: &str) -> Result<()> {
        let mut expr = Expr::default();
        let condition = format!("attribute_exists({})", expr.name(PK));
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(input_pk(flow_run_id), k)))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::NotFound(MISSING.into()))
            }
            Err(e) => Err(sdk("DeleteItem", e).into()),
        }
    }
}
