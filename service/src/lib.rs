//! Trent's server: the AWS KMS wire protocol over actix-web, SigV4 authentication, an event-sourced
//! store (embedded SQLite or PostgreSQL), and a hash-chained CloudTrail-format audit trail.
//!
//! Modules, in the order a request visits them: `server` (HTTP edge), `protocol` (decode and
//! validate), `caller` and `auth` (SigV4 -> principal), `sts` (AssumeRole, GetCallerIdentity on the
//! same listener), `handlers` (one per operation group), `domain` (key
//! rules, read model), `crypto` (aws-lc-rs), `audit` (records, chain, group-commit writer), `store`
//! (events, audit, keystore). `state` holds what requests share; `cli` is the binary.

pub mod audit;
pub mod auth;
pub mod authorize;
pub mod caller;
pub mod cli;
pub mod clock;
pub mod cloudtrail;
pub mod condition_keys;
pub mod data_dir;
pub mod edge;
pub mod handlers;
pub mod lookup;
pub mod metrics;
pub mod quota;
pub mod root_binding;
pub mod root_rotation;
pub mod scheduler;
pub mod server;
pub mod simulate;
pub mod state;
pub mod sts;
pub mod tls;
pub mod trail;
pub mod usage;

/// The cryptographic layer (its own crate, `trent-crypto`), under the name the service uses for it.
pub use trent_crypto as crypto;

/// The KMS API model and its error shapes (its own crate, `trent-model`).
pub use trent_model as protocol;

/// The event store (its own crate, `trent-store`).
pub use trent_store as store;

/// The domain: events, read model, rules, compiled policies (its own crate, `trent-domain`).
pub use trent_domain as domain;
