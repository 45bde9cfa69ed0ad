//! Authentication: SigV4 verification and the identities that may sign requests.

pub mod identity;
pub mod sigv4;
