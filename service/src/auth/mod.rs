//! Authentication: SigV4 verification, the identities that may sign requests, and the STS session
//! credentials that stand in for a role.

pub mod identity;
pub mod session;

/// SigV4 verification (its own crate, `trent-sigv4`).
pub use trent_sigv4 as sigv4;
