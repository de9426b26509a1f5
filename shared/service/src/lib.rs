//! The use cases behind pushpool's functions: **create** flow runs (both constructors, one
//! set of checks), **set their state** and **change** them ([`flow_runs`]), the same for task
//! runs, **submit** a due flow run to its pool's provider, **reconcile** runs with what their
//! infrastructure says, and **cancel** runs that were asked to stop. The API, the embedded
//! host and the Lambda functions call these; none of them holds logic of its own.
//!
//! Every read → decide → write of a run goes through one bounded optimistic-write
//! primitive ([`write`]: [`Service::modify_flow_run`] over [`pushpool_store::Store::commit`],
//! at most [`MAX_WRITE_ATTEMPTS`] tries, then [`KeptChanging`]).
//!
//! The rules (DESIGN §2):
//! - a claim is the orchestrated, conditional write SCHEDULED → PENDING; whoever loses the
//!   race (a redelivered change, a second submitter) gets `ABORT` or a version conflict and
//!   does nothing;
//! - the provider call carries the run's idempotency key, so a retried submission after a
//!   crash between "claimed" and "pid recorded" finds the job it already started;
//! - a submission that fails for good ends the run CRASHED with the provider's reason; a
//!   transient failure is retried with backoff within a time budget
//!   ([`ServiceConfig::retry_budget`]), then CRASHED with the tries and the time they took;
//! - a job that ended without the flow run reporting is finished from the provider's status,
//!   through the same orchestration rules, so a COMPLETED run is never moved back.
//!
//! This crate must not depend on HTTP or Lambda crates, nor configure provider SDKs: the
//! hosts build the providers (`pushpool_push_providers::push_providers`) and hand them in.

pub mod agent_queues;
pub mod concurrency_limits;
pub mod concurrency_slots;
pub mod deployment_limit;
mod error;
pub mod event_sockets;
pub mod event_subscriptions;
pub mod events;
pub mod flow_runs;
mod job;
mod leases;
pub mod log_sockets;
pub mod manual_schedule;
pub mod queries;
pub mod queues;
pub mod run_inputs;
pub mod run_log;
pub mod schedules;
mod service;
mod task_run_recorder;
mod task_runs;
pub mod timer;
pub mod write;

pub use error::{TaskRunError, UseCaseError};
pub use flow_runs::{
    DeploymentFlowRunCreate, FlowRunCreate, FlowRunTransition, FlowRunUpdate,
    MAX_RETRY_DELAY_SECONDS,
};
pub use job::{JobBuildError, build_job};
pub use leases::StoreLeases;
pub use run_inputs::{Resume, RunInputFilter};
pub use schedules::{DeploymentScheduleCreate, DeploymentScheduleUpdate, ScheduleTick};
pub use service::{
    CLAIM_DEADLINE_MARGIN, DEFAULT_RETRY_BUDGET, MAX_RETRY_DELAY, Outcome, Service, ServiceConfig,
    ServiceError, Tries,
};
pub use task_run_recorder::task_run_from_event;
pub use task_runs::TaskRunTransition;
pub use timer::{DueTimer, TimerError};
pub use write::{KeptChanging, MAX_WRITE_ATTEMPTS, Modified, Plan};

mod function_config;
pub use function_config::{ConfigError, FunctionConfig};
