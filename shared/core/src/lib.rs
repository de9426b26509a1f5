//! pushpool's domain: the resources of a push work pool control plane and their rules.
//!
//! This crate holds what pushpool *is*, with no I/O: the Prefect-shaped resources (work
//! pools, block types / schemas / documents, flows, deployments, flow runs and their states,
//! task runs ([`task_run`])), the server-side orchestration of proposed flow run states
//! ([`orchestration`]) and task run states ([`task_orchestration`]), job template
//! rendering and job variable validation ([`template`]), block schema checksums and secret
//! obfuscation ([`blocks`]).
//!
//! It must not depend on AWS, Google, Azure, SQLite, HTTP or Lambda crates: adapters convert
//! their wire types into these types at their own boundary.
//!
//! ```
//! use pushpool_core::state::{StateType, State};
//! let s = State::new(StateType::Scheduled, chrono::Utc::now());
//! assert_eq!(s.name, "Scheduled");
//! assert!(!s.r#type.is_terminal());
//! ```

pub mod blocks;
pub mod concurrency;
pub mod error;
pub mod events;
pub mod filter;
pub mod logs;
pub mod model;
pub mod names;
pub mod orchestration;
pub mod pool_types;
pub mod run_input;
pub mod schedule;
pub mod state;
pub mod task_orchestration;
pub mod task_run;
pub mod template;

pub use error::CoreError;
