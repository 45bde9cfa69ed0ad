//! The in-memory read model: every key, projected from the event stream in sequence order.
//!
//! It is rebuilt from the events at start (`ReadModel::apply` over `read_events`), and kept current
//! by applying each committed unit's events in order. `trent replay --verify` builds a second one
//! from the events alone and compares it with the first.

use std::collections::{BTreeMap, HashMap};

use crate::store::StoredEvent;

use super::events::KeyEvent;
use super::key::KeySnapshot;

/// An event that cannot be applied: the stream is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The payload does not decode.
    #[error("event {sequence}: undecodable payload: {message}")]
    Undecodable {
        /// The event's sequence.
        sequence: i64,
        /// The decoder's message.
        message: String,
    },
    /// The event refers to a key that does not exist, or creates one twice.
    #[error("event {sequence}: {message}")]
    Inconsistent {
        /// The event's sequence.
        sequence: i64,
        /// What is wrong.
        message: String,
    },
}

/// All keys, indexed for lookup by id and for listing per account and region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadModel {
    keys: HashMap<String, KeySnapshot>,
    listing: BTreeMap<(String, String, String), ()>,
    last_sequence: i64,
}

impl ReadModel {
    /// The sequence of the last applied event (0 when empty).
    pub fn last_sequence(&self) -> i64 {
        self.last_sequence
    }

    /// A key by id.
    pub fn key(&self, key_id: &str) -> Option<&KeySnapshot> {
        self.keys.get(key_id)
    }

    /// Every key, in no particular order.
    pub fn all_keys(&self) -> impl Iterator<Item = &KeySnapshot> {
        self.keys.values()
    }

    /// How many keys exist.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Keys of one account and region ordered by key id, starting after `after` (exclusive).
    pub fn keys_in<'a>(
        &'a self,
        account: &'a str,
        region: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = &'a KeySnapshot> + 'a {
        let start = (
            account.to_string(),
            region.to_string(),
            after.unwrap_or("").to_string(),
        );
        self.listing
            .range(start..)
            .map(|(k, _)| k)
            .take_while(move |(a, r, _)| a == account && r == region)
            .filter(move |(_, _, id)| Some(id.as_str()) != after)
            .filter_map(|(_, _, id)| self.keys.get(id))
    }

    /// Apply one stored event. Events must arrive in sequence order; older ones are ignored.
    pub fn apply(&mut self, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.sequence <= self.last_sequence {
            return Ok(());
        }
        let decoded =
            KeyEvent::from_payload(&event.payload).map_err(|e| ProjectionError::Undecodable {
                sequence: event.sequence,
                message: e.to_string(),
            })?;
        let inconsistent = |message: String| ProjectionError::Inconsistent {
            sequence: event.sequence,
            message,
        };
        match decoded {
            KeyEvent::KeyCreated(created) => {
                if self.keys.contains_key(&created.key_id) {
                    return Err(inconsistent(format!(
                        "key {} created twice",
                        created.key_id
                    )));
                }
                let key = KeySnapshot::from_created(&created, event.version);
                self.listing.insert(
                    (key.account.clone(), key.region.clone(), key.key_id.clone()),
                    (),
                );
                self.keys.insert(key.key_id.clone(), key);
            }
            KeyEvent::KeyPolicyPut { policy, .. } => {
                let key = self.key_for_stream(&event.stream).ok_or_else(|| {
                    inconsistent(format!("policy put on unknown stream {}", event.stream))
                })?;
                key.policy = policy;
                key.stream_version = event.version;
            }
        }
        self.last_sequence = event.sequence;
        Ok(())
    }

    fn key_for_stream(&mut self, stream: &str) -> Option<&mut KeySnapshot> {
        let id = stream.strip_prefix("key/")?;
        self.keys.get_mut(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::MaterialInfo;
    use chrono::Utc;

    fn created(seq: i64, id: &str, account: &str) -> StoredEvent {
        let e = KeyEvent::KeyCreated(Box::new(crate::domain::events::KeyCreated {
            schema: 1,
            key_id: id.into(),
            account: account.into(),
            region: "us-east-1".into(),
            description: String::new(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            policy: "{}".into(),
            tags: vec![],
            multi_region: false,
            material: MaterialInfo {
                version: 1,
                material_id: "00".into(),
                created_at: Utc::now(),
            },
            created_at: Utc::now(),
        }));
        StoredEvent {
            sequence: seq,
            stream: KeyEvent::stream_for(id),
            version: 1,
            event_type: e.type_name().into(),
            payload: serde_json::to_value(&e).unwrap(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn listing_is_per_account_and_region_and_resumes_after_a_marker() {
        let mut m = ReadModel::default();
        for (i, (id, acct)) in [("b", "1"), ("a", "1"), ("c", "2"), ("d", "1")]
            .iter()
            .enumerate()
        {
            m.apply(&created(i as i64 + 1, id, acct)).unwrap();
        }
        let ids = |after| -> Vec<String> {
            m.keys_in("1", "us-east-1", after)
                .map(|k| k.key_id.clone())
                .collect()
        };
        assert_eq!(ids(None), ["a", "b", "d"]);
        assert_eq!(ids(Some("a")), ["b", "d"]);
        assert_eq!(ids(Some("d")), Vec::<String>::new());
        assert_eq!(m.keys_in("1", "eu-west-1", None).count(), 0);
        assert_eq!(m.last_sequence(), 4);
    }

    #[test]
    fn duplicate_creation_is_inconsistent() {
        let mut m = ReadModel::default();
        m.apply(&created(1, "a", "1")).unwrap();
        assert!(matches!(
            m.apply(&created(2, "a", "1")),
            Err(ProjectionError::Inconsistent { .. })
        ));
    }
}
