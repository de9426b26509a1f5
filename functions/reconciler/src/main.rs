//! pushpool's reconciler Lambda.
//!
//! - **Triggers**: an EventBridge schedule (every minute), the EventBridge rule for ECS
//!   "Task State Change" events of tasks started by pushpool (both in `infra/`), and the
//!   one-time EventBridge Scheduler schedules of due runs (`timer`).
//! - **Environment**: `PUSHPOOL_TABLE`, `PUSHPOOL_PUBLIC_URL`, `PUSHPOOL_JOB_API_KEY`,
//!   `PUSHPOOL_PROVIDER_RETRY_BUDGET` (seconds provider calls are retried, default 75),
//!   `PUSHPOOL_DUE_TIMER_GROUP`, `PUSHPOOL_DUE_TIMER_TARGET_ARN`, `PUSHPOOL_DUE_TIMER_ROLE_ARN`
//!   (the schedule group, this function's ARN, the role the scheduler invokes it with); the
//!   AWS SDK's own (`AWS_REGION`, and `AWS_ENDPOINT_URL` for an emulator).
//! - **IAM**: `dynamodb:GetItem/PutItem/UpdateItem/Query/TransactWriteItems` on the table
//!   and its indexes, `dynamodb:Scan/DescribeTable` on the table (the one-time item upgrade), `ecs:RunTask/RegisterTaskDefinition/DescribeTaskDefinition/
//!   DescribeTasks/StopTask`, `ec2:DescribeVpcs/DescribeSubnets/DescribeSecurityGroups`, and
//!   `iam:PassRole` on the task and execution roles the pools name;
//!   `scheduler:CreateSchedule/DeleteSchedule` on the group's schedules and `iam:PassRole`
//!   on the due timer role.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use pushpool_reconciler::timer::{DUE_TIMER_WINDOW, SchedulerTimer, TimerTarget};
use pushpool_service::{FunctionConfig, Service};
use pushpool_store_dynamodb::DynamoStore;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pushpool_telemetry::init(pushpool_telemetry::lambda_options())?;
    let config = FunctionConfig::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    // Concurrent invocations share the table: ECS registrations of a family take its lease.
    let shared = Arc::new(store.clone());
    let upgrader = &store.clone();
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
        service = service.with_due_timer(
            Arc::new(SchedulerTimer::new(scheduler, target)),
            DUE_TIMER_WINDOW,
        );
    }
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
            // Once per table (then one read per cold start): flow run items of an older
            // release are rewritten at the current item format. In the handler, not at
            // init, whose 10 s would not do for a large table; an unfinished upgrade goes
            // on at the next event.
            if let Err(e) = upgrader.upgrade_items().await {
                tracing::warn!(error = %e, "upgrading the table's flow run items failed; retried at the next event");
            }
            pushpool_reconciler::handle(service, event.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
