//! CloudTrail log files and signed digest files, made from the store's audit records.
//!
//! `export` turns the hash-chained audit records into gzip log files in CloudTrail's bucket
//! layout, one signed digest per account and region per export run, and keeps its resume point in
//! the export directory; `validate` checks such a directory with nothing but its files and the
//! published public key (like `aws cloudtrail validate-logs`); `usage` summarises the past usage
//! of one key from the records. Layout and formats:
//! `docs/cloudtrail-export.md`.
//!
//! This module never writes to the store and never changes a file a digest already lists.

pub mod digest;
pub mod export;
pub mod layout;
pub mod signing;
pub mod state;
pub mod usage;
pub mod validate;

/// What can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// A file of the export directory or the key could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be read.
    #[error("cannot read the audit records: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The store's records no longer continue what was already exported.
    #[error("refusing to export: {0}")]
    Diverged(String),
    /// The export state or the digest key is unreadable.
    #[error("{0}")]
    Corrupt(String),
    /// The digest key could not sign.
    #[error("the digest key failed: {0}")]
    Signing(String),
}

impl TrailError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TrailError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
