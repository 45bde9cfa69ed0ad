//! The domain: key events, the key read model that projects them, and the pure rules that decide
//! what an operation may do to a key. Nothing here does I/O.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod custom_key_store;
pub mod events;
pub mod key;
pub mod policy;
pub mod read_model;
pub mod rules;
pub mod snapshot;
pub mod warming;
