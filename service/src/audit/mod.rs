//! The audit trail: CloudTrail-format records, their hash chain, and the group-commit writer that
//! makes each call's events and record durable together before the response leaves.

pub mod record;
pub mod writer;

/// The hash chain of audit records (kept by the store, in `trent-store`).
pub use trent_store::chain;
