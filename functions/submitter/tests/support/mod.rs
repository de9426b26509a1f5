//! Helpers of the AWS-shape end-to-end test: the serialising proxy to moto, and the
//! stream-to-Lambda-event plumbing of the submitter's trigger.

pub mod proxy;
pub mod stream;
