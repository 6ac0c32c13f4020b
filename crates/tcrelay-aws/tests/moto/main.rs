//! Integration tests of the AWS adapters over the real AWS wire protocol against moto's server.
//!
//! `scripts/test.sh` starts moto and exports `TCRELAY_TEST_MOTO_URL`; without it these tests
//! fail (never skip). Every test creates its own queues, bucket and table (UUID names), so they
//! run in parallel against one moto. `dedupe_batch_faults` and `tls` serve their own loopback
//! endpoints instead and need no moto.

mod claim_check;
mod common;
mod conformance;
mod cursor;
mod dedupe;
mod dedupe_batch_faults;
mod late_answers;
mod redrive;
mod secrets;
mod sqs;
mod tls;
mod unreachable;
