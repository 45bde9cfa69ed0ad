//! The export's resume point, kept in `DIR/.trent-export.json`: the last exported audit record
//! (sequence and chain hash) and, per account and region, the head of the digest chain. A run
//! first journals its digests (`pending`), then writes them, then commits the new state, so a
//! crash at any point is finished or redone by the next run without a record written twice.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::{write_atomic, STATE_FILE};
use super::TrailError;
use crate::store::GENESIS_HASH;

/// Where exporting resumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportState {
    /// Format of this file.
    pub format_version: u32,
    /// The committed resume point.
    #[serde(flatten)]
    pub committed: Position,
    /// A run whose digests may not all be written yet; the next run finishes it first.
    pub pending: Option<PendingRun>,
}

/// What has been exported: everything up to `last_sequence`, and each trail's newest digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// The last audit sequence written to a log file (0: none).
    pub last_sequence: i64,
    /// The chain hash of that record (the genesis hash when none).
    pub last_record_hash: String,
    /// Newest digest per trail, keyed `ACCOUNT/REGION`.
    pub trails: BTreeMap<String, TrailHead>,
}

/// The newest digest of one trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailHead {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// The digest's bucket.
    pub digest_s3_bucket: String,
    /// The digest's object path.
    pub digest_s3_object: String,
    /// Its `digestEndTime`.
    pub digest_end_time: String,
    /// Hex SHA-256 of its uncompressed content.
    pub digest_hash_value: String,
    /// Its signature (hex).
    pub digest_signature: String,
}

/// A journaled run: the position it reaches and the digests it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRun {
    /// The position once the digests are written.
    pub next: Position,
    /// The digests, exactly as they are written.
    pub digests: Vec<PendingDigest>,
}

/// One digest to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDigest {
    /// Object path.
    pub object: String,
    /// Uncompressed JSON content.
    pub content: String,
    /// Signature (hex).
    pub signature: String,
}

impl Default for ExportState {
    fn default() -> Self {
        ExportState {
            format_version: 1,
            committed: Position {
                last_sequence: 0,
                last_record_hash: GENESIS_HASH.to_string(),
                trails: BTreeMap::new(),
            },
            pending: None,
        }
    }
}

impl ExportState {
    /// The state of `dir`, or a fresh one when nothing was exported there yet.
    pub fn load(dir: &Path) -> Result<Self, TrailError> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| TrailError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(TrailError::io(&path, e)),
        }
    }

    /// Replace the state file atomically.
    pub fn save(&self, dir: &Path) -> Result<(), TrailError> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| TrailError::Corrupt(format!("cannot encode the export state: {e}")))?;
        write_atomic(dir, STATE_FILE, &text)
    }
}
