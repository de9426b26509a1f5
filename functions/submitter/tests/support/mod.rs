//! Helpers of the AWS-shape end-to-end test: the stream-to-Lambda-event plumbing of the
//! submitter's trigger (the serialising proxy to moto is `pushpool_tests::serializing_proxy`).

pub mod stream;
