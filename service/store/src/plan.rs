//! The in-memory plan of a group commit, shared by both backends: given a batch of units, the
//! chain's tail and each stream's current version (read once for the whole batch), it decides
//! which units conflict, assigns event sequences and stream versions, links the audit records
//! into the chain and lists every row to write. The backend then writes the rows set by set, with
//! no savepoints and no per-unit queries; a conflicting unit simply contributes no rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::{chain, CommitReceipt, CommitUnit, KeyUse, StoreError, StoredEvent, ACCOUNT_ATTRIBUTE};

/// Where the store's writes have got to: the last event sequence and the chain's tail.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    /// The last event sequence.
    pub event_sequence: i64,
    /// The last audit record's sequence.
    pub audit_sequence: i64,
    /// The last audit record's link.
    pub audit_hash: String,
}

/// An event row to insert.
#[derive(Debug)]
pub(crate) struct EventRow<'a> {
    pub sequence: i64,
    pub stream: &'a str,
    pub version: i64,
    pub event_type: &'a str,
    pub payload: &'a serde_json::Value,
}

/// An audit record row to insert.
#[derive(Debug)]
pub(crate) struct AuditRow<'a> {
    pub sequence: i64,
    pub event_id: &'a str,
    pub event_time: DateTime<Utc>,
    pub record: &'a str,
    pub prev_hash: String,
    pub hash: String,
}

/// A row of the LookupEvents index.
#[derive(Debug)]
pub(crate) struct LookupRow<'a> {
    pub account: &'a str,
    pub attribute: &'a str,
    pub value: &'a str,
    pub event_time: i64,
    pub sequence: i64,
}

/// Everything a batch writes, in the order the rows must be written.
#[derive(Debug)]
pub(crate) struct BatchPlan<'a> {
    /// Each unit's outcome, in submission order.
    pub results: Vec<Result<CommitReceipt, StoreError>>,
    /// The units that commit, in submission order (their materials are written per unit).
    pub accepted: Vec<&'a CommitUnit>,
    pub events: Vec<EventRow<'a>>,
    pub audit: Vec<AuditRow<'a>>,
    pub lookup: Vec<LookupRow<'a>>,
    /// The latest use of each key in the batch (one row per key).
    pub key_uses: Vec<&'a KeyUse>,
    /// The tail after the batch.
    pub tail: Tail,
}

/// Every stream a batch appends to (each once), for the backend's version query.
pub(crate) fn streams_of(units: &[CommitUnit]) -> Vec<String> {
    let mut streams: Vec<String> = units
        .iter()
        .flat_map(|u| u.appends.iter().map(|a| a.stream.clone()))
        .collect();
    streams.sort();
    streams.dedup();
    streams
}

/// Plan the batch. `versions` holds the current version of the batch's streams (a stream
/// missing from it has none: version 0); `now` is the events' recorded time.
pub(crate) fn plan<'a>(
    units: &'a [CommitUnit],
    mut tail: Tail,
    mut versions: HashMap<String, i64>,
    now: DateTime<Utc>,
) -> BatchPlan<'a> {
    let mut plan = BatchPlan {
        results: Vec::with_capacity(units.len()),
        accepted: Vec::with_capacity(units.len()),
        events: Vec::new(),
        audit: Vec::with_capacity(units.len()),
        lookup: Vec::new(),
        key_uses: Vec::new(),
        tail: tail.clone(),
    };
    let mut latest_use: HashMap<&str, usize> = HashMap::new();
    for unit in units {
        if let Some(conflict) = conflict(unit, &versions) {
            plan.results.push(Err(conflict));
            continue;
        }
        let mut stored = Vec::new();
        for append in &unit.appends {
            let found = versions.get(&append.stream).copied().unwrap_or(0);
            for (i, event) in append.events.iter().enumerate() {
                tail.event_sequence += 1;
                let version = found + 1 + i as i64;
                plan.events.push(EventRow {
                    sequence: tail.event_sequence,
                    stream: &append.stream,
                    version,
                    event_type: &event.event_type,
                    payload: &event.payload,
                });
                stored.push(StoredEvent {
                    sequence: tail.event_sequence,
                    stream: append.stream.clone(),
                    version,
                    event_type: event.event_type.clone(),
                    payload: event.payload.clone(),
                    recorded_at: now,
                });
            }
            versions.insert(append.stream.clone(), found + append.events.len() as i64);
        }
        let mut sequences = Vec::new();
        for record in unit.audit.iter().chain(&unit.audit_copies) {
            let sequence = tail.audit_sequence + 1;
            let hash = chain::link(&tail.audit_hash, &record.record);
            let prev_hash = std::mem::replace(&mut tail.audit_hash, hash.clone());
            tail.audit_sequence = sequence;
            plan.audit.push(AuditRow {
                sequence,
                event_id: &record.event_id,
                event_time: record.event_time,
                record: &record.record,
                prev_hash,
                hash,
            });
            let event_time = record.event_time.timestamp();
            let mut attributes: Vec<(&str, &str)> = record
                .lookup
                .iter()
                .map(|(a, v)| (a.as_str(), v.as_str()))
                .chain(std::iter::once((ACCOUNT_ATTRIBUTE, "")))
                .collect();
            attributes.sort_unstable();
            attributes.dedup();
            plan.lookup
                .extend(attributes.into_iter().map(|(attribute, value)| LookupRow {
                    account: &record.account,
                    attribute,
                    value,
                    event_time,
                    sequence,
                }));
            sequences.push(sequence);
        }
        for used in &unit.key_uses {
            match latest_use.get(used.key_arn.as_str()) {
                Some(&i) => {
                    // Later uses replace earlier ones; on equal times the first stays.
                    if let Some(slot) = plan.key_uses.get_mut(i) {
                        if used.used_at > slot.used_at {
                            *slot = used;
                        }
                    }
                }
                None => {
                    latest_use.insert(&used.key_arn, plan.key_uses.len());
                    plan.key_uses.push(used);
                }
            }
        }
        let (audit_sequence, copy_sequences) = crate::receipt_sequences(unit, sequences);
        plan.results.push(Ok(CommitReceipt {
            events: stored,
            audit_sequence,
            copy_sequences,
        }));
        plan.accepted.push(unit);
    }
    plan.tail = tail;
    plan
}

/// The conflict of the first append whose stream is not at the version the unit expects.
fn conflict(unit: &CommitUnit, versions: &HashMap<String, i64>) -> Option<StoreError> {
    unit.appends.iter().find_map(|append| {
        let found = versions.get(&append.stream).copied().unwrap_or(0);
        (found != append.expected_version).then(|| StoreError::VersionConflict {
            stream: append.stream.clone(),
            expected: append.expected_version,
            found,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewAuditRecord, NewEvent, StreamAppend, GENESIS_HASH};

    fn unit(stream: &str, expected: i64, record: &str) -> CommitUnit {
        CommitUnit {
            appends: vec![StreamAppend {
                stream: stream.into(),
                expected_version: expected,
                events: vec![NewEvent {
                    event_type: "E".into(),
                    payload: serde_json::json!({}),
                }],
            }],
            audit: Some(NewAuditRecord {
                event_id: record.into(),
                event_time: Utc::now(),
                record: record.into(),
                account: "1".into(),
                lookup: vec![
                    ("EventName".into(), "X".into()),
                    ("ResourceType".into(), "K".into()),
                    ("ResourceType".into(), "K".into()),
                ],
            }),
            ..Default::default()
        }
    }

    fn genesis() -> Tail {
        Tail {
            event_sequence: 10,
            audit_sequence: 0,
            audit_hash: GENESIS_HASH.into(),
        }
    }

    #[test]
    fn a_conflicting_unit_writes_nothing_and_the_others_chain_without_it() {
        let units = vec![unit("a", 0, "r1"), unit("a", 0, "r2"), unit("a", 1, "r3")];
        let plan = plan(&units, genesis(), HashMap::new(), Utc::now());
        assert!(plan.results[0].is_ok());
        assert!(matches!(
            plan.results[1],
            Err(StoreError::VersionConflict {
                expected: 0,
                found: 1,
                ..
            })
        ));
        assert!(plan.results[2].is_ok());
        assert_eq!(plan.accepted.len(), 2);
        let versions: Vec<_> = plan
            .events
            .iter()
            .map(|e| (e.sequence, e.version))
            .collect();
        assert_eq!(versions, vec![(11, 1), (12, 2)]);
        assert_eq!(plan.audit.len(), 2);
        assert_eq!(plan.audit[0].prev_hash, GENESIS_HASH);
        assert_eq!(plan.audit[0].hash, chain::link(GENESIS_HASH, "r1"));
        assert_eq!(plan.audit[1].prev_hash, plan.audit[0].hash);
        assert_eq!(plan.audit[1].sequence, 2);
        assert_eq!(plan.tail.audit_hash, plan.audit[1].hash);
        // EventName, ResourceType once, and the account row, per record.
        assert_eq!(plan.lookup.len(), 6);
    }

    #[test]
    fn the_store_version_is_the_starting_point() {
        let units = vec![unit("a", 0, "r1"), unit("a", 4, "r2")];
        let versions = HashMap::from([("a".to_string(), 4)]);
        let plan = plan(&units, genesis(), versions, Utc::now());
        assert!(plan.results[0].is_err());
        assert_eq!(plan.events[0].version, 5);
    }

    #[test]
    fn the_latest_use_of_a_key_wins_and_ties_keep_the_first() {
        let t = Utc::now();
        let used = |op: &str, at| KeyUse {
            key_arn: "k".into(),
            operation: op.into(),
            used_at: at,
            event_id: String::new(),
            request_id: String::new(),
        };
        let units: Vec<CommitUnit> = [
            ("Encrypt", t),
            ("Decrypt", t),
            ("Sign", t + chrono::Duration::seconds(1)),
        ]
        .into_iter()
        .map(|(op, at)| CommitUnit {
            key_uses: vec![used(op, at)],
            ..Default::default()
        })
        .collect();
        let plan = plan(&units[..2], genesis(), HashMap::new(), t);
        assert_eq!(plan.key_uses.len(), 1);
        assert_eq!(plan.key_uses[0].operation, "Encrypt");
        let all = super::plan(&units, genesis(), HashMap::new(), t);
        assert_eq!(all.key_uses[0].operation, "Sign");
    }
}
