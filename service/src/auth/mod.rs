//! Authentication: SigV4 verification, the identities that may sign requests, and the STS session
//! credentials that stand in for a role.

pub mod identity;
pub mod session;
pub mod sigv4;
