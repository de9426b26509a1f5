//! Test harness for pushpool's end-to-end tests: starts the tools the tests drive (moto
//! server, the embedded `pushpool serve`, a spec-checked fake ECS) on free loopback ports and
//! stops them when dropped. Tools come from the project's virtualenv, which
//! `scripts/setup-test-tools.sh` creates; a missing tool fails the test with that instruction.

pub mod app;
pub mod fake_aci;
pub mod fake_cloud_run;
pub mod fake_ecs;
pub mod fake_registry;
pub mod moto;
pub mod python;
pub mod serializing_proxy;
pub mod tools;
