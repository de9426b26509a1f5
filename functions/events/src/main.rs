//! pushpool's events Lambda.
//!
//! - **Triggers**: the API Gateway WebSocket API's `$connect`, `$default` and `$disconnect`
//!   routes (Lambda proxy integration), and the table's DynamoDB stream (event source
//!   mapping in `infra/`, filtered to the `INSERT`s of event items and of log items).
//! - **Environment**: `PUSHPOOL_TABLE`, `PUSHPOOL_PUBLIC_URL`,
//!   `PUSHPOOL_EVENT_RETENTION_DAYS` (as every function: `FunctionConfig`),
//!   `PUSHPOOL_WEBSOCKET_ENDPOINT` (the stage's `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
//!   the Management API's endpoint); the AWS SDK's own.
//! - **IAM**: `dynamodb:GetItem/PutItem/UpdateItem/DeleteItem/Query/TransactWriteItems` on
//!   the table, the stream read actions, and `execute-api:ManageConnections` on the
//!   WebSocket API's stage.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use pushpool_events_function::EventsFunction;
use pushpool_service::{FunctionConfig, Service};
use pushpool_store_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushpool_telemetry::init(pushpool_telemetry::lambda_options())?;
    let config = FunctionConfig::from_lookup(|k| std::env::var(k).ok())?;
    let endpoint = std::env::var("PUSHPOOL_WEBSOCKET_ENDPOINT")
        .ok()
        .filter(|e| e.starts_with("https://") || e.starts_with("http://"))
        .ok_or("environment variable PUSHPOOL_WEBSOCKET_ENDPOINT is required (an https URL)")?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table,
    ));
    let service = Service::new(
        store.clone(),
        pushpool_providers::Providers::new(),
        config.service_config(),
    );
    let management = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    let function = &EventsFunction::new(service, store, management);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function.handle(event.payload).await.map_err(Error::from)
        },
    ))
    .await
}
