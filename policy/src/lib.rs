//! `trent-policy`: AWS IAM-style JSON policy documents (key policies and identity policies).
//!
//! This crate depends on nothing in the service. Today it parses and validates documents, with
//! errors that say what is wrong and where; compilation to Cedar and evaluation build on the typed
//! `PolicyDocument` it produces.

mod document;

pub use document::{
    Effect, PolicyDocument, PolicyError, PolicyKind, Statement, StringOrList, MAX_KEY_POLICY_BYTES,
};
