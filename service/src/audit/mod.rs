//! The audit trail: CloudTrail-format records, their hash chain, and the group-commit writer that
//! makes each call's events and record durable together before the response leaves.

pub mod chain;
pub mod record;
pub mod writer;
