//! Trent's application, without HTTP: the one request pipeline of the listener's protocols
//! (`edge`: KMS, `cloudtrail`, `sts`), the operation handlers, authorization, the audit writer, the
//! scheduler, LookupEvents and trail export. The HTTP server and the command line are
//! `trent-server`; the layers below are crates of their own, re-exported here under their module
//! names: `protocol` (trent-model), `domain` (trent-domain), `store` (trent-store), `crypto`
//! (trent-crypto) and `auth::sigv4` (trent-sigv4).
//!
//! Modules, in the order a request visits them: `edge` (route, authenticate, quota, decode,
//! execute, commit, answer), `caller` and `auth` (SigV4 -> principal), `quota`, `handlers` (one per
//! operation group) with `authorize` and `condition_keys`, `audit` (records, group-commit writer).
//! `state` holds what requests share.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod audit;
pub mod auth;
pub mod authorize;
pub mod clock;
pub mod cloudtrail;
pub mod condition_keys;
pub mod data_dir;
pub mod edge;
pub mod handlers;
pub mod listener;
pub mod lookup;
pub mod materials;
pub mod metrics;
pub mod policy_change;
pub mod quota;
pub mod root_binding;
pub mod root_rotation;
pub mod scheduler;
pub mod simulate;
pub mod snapshots;
pub mod state;
pub mod sts;
pub mod trail;
pub mod usage;
pub mod warm_up;
pub mod xks;

/// The cryptographic layer (its own crate, `trent-crypto`), under the name the service uses for it.
pub use trent_crypto as crypto;

/// The KMS API model and its error shapes (its own crate, `trent-model`).
pub use trent_model as protocol;

/// The event store (its own crate, `trent-store`).
pub use trent_store as store;

/// The domain: events, read model, rules, compiled policies (its own crate, `trent-domain`).
pub use trent_domain as domain;
