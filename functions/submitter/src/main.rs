//! pushpool's submitter Lambda.
//!
//! - **Trigger**: the table's DynamoDB stream (event source mapping in `infra/`, filtered to
//!   outbox inserts, `ReportBatchItemFailures`).
//! - **Environment**: `PUSHPOOL_TABLE`, `PUSHPOOL_PUBLIC_URL`, `PUSHPOOL_JOB_API_KEY`,
//!   `PUSHPOOL_PROVIDER_RETRY_BUDGET` (seconds provider calls are retried, default 75),
//!   `PUSHPOOL_DUE_TIMER_GROUP/_TARGET_ARN/_ROLE_ARN` (due timers, as the reconciler's); the
//!   AWS SDK's own (`AWS_REGION`, and `AWS_ENDPOINT_URL` for an emulator).
//! - **IAM**: `dynamodb:GetItem/PutItem/UpdateItem/Query/TransactWriteItems` on the table,
//!   the stream read actions, `ecs:RunTask/RegisterTaskDefinition/DescribeTaskDefinition`,
//!   `ec2:DescribeVpcs/DescribeSubnets/DescribeSecurityGroups`, and `iam:PassRole` on the
//!   task and execution roles the pools name; `scheduler:CreateSchedule/DeleteSchedule` on
//!   the due-timer group and `iam:PassRole` on the due-timer role.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use pushpool_reconciler::timer::{DUE_TIMER_WINDOW, SchedulerTimer, TimerTarget};
use pushpool_service::{FunctionConfig, Service};
use pushpool_store_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushpool_telemetry::init(pushpool_telemetry::lambda_options())?;
    let config = FunctionConfig::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    // Concurrent invocations share the table: ECS registrations of a family take its lease.
    let shared = Arc::new(store.clone());
    let timers = TimerTarget::from_lookup(|k| std::env::var(k).ok())?;
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let mut service = Service::new(
        shared.clone(),
        pushpool_push_providers::push_providers_with_leases(
            sdk,
            Arc::new(pushpool_service::StoreLeases(shared)),
        )?,
        config.service_config(),
    );
    if let Some(target) = timers {
        // A run created for a time before the reconciler's next sweep gets its timer here.
        service = service.with_due_timer(
            Arc::new(SchedulerTimer::new(scheduler, target)),
            DUE_TIMER_WINDOW,
        );
    }
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::dynamodb::Event>| async move {
            Ok::<_, Error>(pushpool_submitter::handle(service, event.payload).await)
        },
    ))
    .await
}
