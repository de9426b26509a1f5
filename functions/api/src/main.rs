//! pushpool's API Lambda: the same axum Router as `pushpool serve`, behind API Gateway (HTTP
//! API, payload v2), with API keys required on every route but `/api/health`.
//!
//! - **Trigger**: API Gateway HTTP API, `$default` stage, route `ANY /{proxy+}`.
//! - **Environment**: `PUSHPOOL_TABLE`, `PUSHPOOL_PUBLIC_URL`, `PUSHPOOL_JOB_API_KEY`
//!   (unused here: the API does not submit); `AWS_REGION`; `PUSHPOOL_CORS_ALLOWED_ORIGINS`
//!   (the origins whose pages may call the API from a browser, [`pushpool_api::cors`]; unset
//!   or empty: CORS off; an invalid value or `*` fails the start).
//! - **IAM**: `dynamodb:GetItem/PutItem/UpdateItem/DeleteItem/Query/BatchGetItem/
//!   TransactWriteItems` on the table and its index.
//!
//! Expected failures are HTTP responses (4xx with `{"detail": ...}`), never a handler `Err`,
//! which API Gateway would turn into a 502.

use std::sync::Arc;

use pushpool_api::auth::AuthMode;
use pushpool_service::{FunctionConfig, Service};
use pushpool_store_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    pushpool_telemetry::init(pushpool_telemetry::lambda_options())?;
    let config = FunctionConfig::from_lookup(|k| std::env::var(k).ok())?;
    let cors_origins = pushpool_api::cors::parse_allowed_origins(
        &std::env::var(pushpool_api::cors::ENV).unwrap_or_default(),
    )?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    let shared = Arc::new(store);
    // The API never submits: its providers only check job variables against their limits
    // (no provider SDK is linked; the submitter and reconciler functions run the jobs).
    let providers = pushpool_providers::limit_checks();
    let service = Service::new(shared, providers, config.service_config());
    let app = pushpool_api::router(
        pushpool_api::AppState::new(service)
            .with_auth(AuthMode::Required)
            .with_cors_origins(cors_origins),
    );
    lambda_http::run(app).await
}
