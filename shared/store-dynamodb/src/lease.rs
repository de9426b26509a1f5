//! Leases (the port's `try_acquire_lease` / `release_lease`): one item per key,
//! `LEASE#<key>` / `LEASE`, with `holder`, `until_ms` (epoch milliseconds) and `expires_at`
//! (the table's TTL, a day after the lease ends, so that leases of families no longer used
//! go away). Taking one is a conditional `PutItem` (the item is absent, expired, or the
//! holder's); giving it up is a conditional `UpdateItem` that ends it now (the Lambdas' IAM
//! policies have no `DeleteItem`).

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::Utc;
use pushpool_store::Result;

use crate::DynamoStore;
use crate::error::sdk;
use crate::item::{EXPIRES_AT, Expr, PK, escape, key, s};

const HOLDER: &str = "holder";
const UNTIL_MS: &str = "until_ms";

fn lease_key(lease: &str) -> crate::item::Item {
    key(format!("LEASE#{}", escape(lease)), "LEASE")
}

fn number(v: i64) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())
}

impl DynamoStore {
    pub(crate) async fn acquire_lease(
        &self,
        lease: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let now = Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let mut item = lease_key(lease);
        item.insert(HOLDER.into(), s(holder));
        item.insert(UNTIL_MS.into(), number(until));
        item.insert(EXPIRES_AT.into(), number(until / 1000 + 86_400));
        let mut expr = Expr::default();
        let condition = format!(
            "attribute_not_exists({}) OR {} < {} OR {} = {}",
            expr.name(PK),
            expr.name(UNTIL_MS),
            expr.value(number(now)),
            expr.name(HOLDER),
            expr.value(s(holder)),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk("PutItem", e).into()),
        }
    }

    pub(crate) async fn give_up_lease(&self, lease: &str, holder: &str) -> Result<()> {
        let mut expr = Expr::default();
        let update = format!("SET {} = {}", expr.name(UNTIL_MS), expr.value(number(0)));
        let condition = format!(
            "attribute_exists({}) AND {} = {}",
            expr.name(PK),
            expr.name(HOLDER),
            expr.value(s(holder)),
        );
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(lease)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::None)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk("UpdateItem", e).into()),
        }
    }
}
