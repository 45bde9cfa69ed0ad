//! The audit hash chain: each record's link is SHA-256 over the previous link and the record's
//! canonical text. Stores call `link` inside their writing transaction; `trent trail verify` calls
//! `verify_links` over what the store returns.

use aws_lc_rs::digest;

use crate::{StoredAuditRecord, GENESIS_HASH};

/// The link of a record: hex SHA-256 of `prev_hash` (hex, ASCII), a newline, and the record text.
pub fn link(prev_hash: &str, record: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(record.as_bytes());
    hex::encode(ctx.finish().as_ref())
}

/// The first broken link found while walking a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// A record's sequence is not the one after its predecessor (a record is missing or reordered).
    #[error(
        "audit record {found}: expected sequence {expected} (a record is missing or out of order)"
    )]
    Gap {
        /// The sequence that should have come next.
        expected: i64,
        /// The sequence found instead.
        found: i64,
    },
    /// A record does not point at its predecessor's link.
    #[error("audit record {sequence}: prev_hash does not match the previous record's hash")]
    PrevMismatch {
        /// The record's chain sequence.
        sequence: i64,
    },
    /// A record's stored hash is not the hash of its content: the record was altered.
    #[error("audit record {sequence}: content does not match its hash (record altered)")]
    HashMismatch {
        /// The record's chain sequence.
        sequence: i64,
    },
}

/// Incremental chain verification, fed one record at a time in sequence order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_sequence: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_sequence: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    /// Check the next record; the first error names the first broken link.
    pub fn check(&mut self, record: &StoredAuditRecord) -> Result<(), ChainBreak> {
        if record.sequence != self.next_sequence {
            return Err(ChainBreak::Gap {
                expected: self.next_sequence,
                found: record.sequence,
            });
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevMismatch {
                sequence: record.sequence,
            });
        }
        if link(&record.prev_hash, &record.record) != record.hash {
            return Err(ChainBreak::HashMismatch {
                sequence: record.sequence,
            });
        }
        self.next_sequence += 1;
        self.prev_hash = record.hash.clone();
        Ok(())
    }

    /// How many records have been verified so far.
    pub fn verified(&self) -> i64 {
        self.next_sequence - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn chain(texts: &[&str]) -> Vec<StoredAuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let hash = link(&prev, t);
                let r = StoredAuditRecord {
                    sequence: i as i64 + 1,
                    event_id: format!("e{i}"),
                    event_time: Utc::now(),
                    record: t.to_string(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn first_break(records: &[StoredAuditRecord]) -> Option<ChainBreak> {
        let mut v = ChainVerifier::default();
        records.iter().find_map(|r| v.check(r).err())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(first_break(&chain(&["a", "b", "c"])), None);
    }

    #[test]
    fn altered_record_is_named() {
        let mut c = chain(&["a", "b", "c"]);
        c[1].record = "B".into();
        assert_eq!(
            first_break(&c),
            Some(ChainBreak::HashMismatch { sequence: 2 })
        );
    }

    #[test]
    fn removed_record_is_a_gap() {
        let mut c = chain(&["a", "b", "c"]);
        c.remove(1);
        assert_eq!(
            first_break(&c),
            Some(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn rehashed_record_breaks_the_next_link() {
        let mut c = chain(&["a", "b", "c"]);
        c[1].record = "B".into();
        c[1].hash = link(&c[1].prev_hash, "B");
        assert_eq!(
            first_break(&c),
            Some(ChainBreak::PrevMismatch { sequence: 3 })
        );
    }
}
