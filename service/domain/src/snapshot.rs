//! The read model's snapshot image: every key and alias as of one event sequence, in a versioned
//! serde form that holds each distinct key policy text once. Mapping model <-> bytes is all this
//! module does; sealing, storing and choosing when to take one is the service's job.
//!
//! Loading an image compiles policies and grants again (identical texts compile once), so a
//! model loaded from an image equals the model the same events project.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::key::{compile_grants, compile_stored_policy, KeySnapshot};
use super::policy::SharedPolicy;
use super::read_model::{AliasEntry, ReadModel};

/// The image format this build writes and reads.
pub const IMAGE_FORMAT: u32 = 1;

/// An image that cannot be read into a model.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes do not decode as an image.
    #[error("undecodable read-model image: {0}")]
    Undecodable(String),
    /// An image of another format.
    #[error("read-model image format {0} (this build reads format {IMAGE_FORMAT})")]
    Format(u32),
    /// A key refers to a policy the image does not hold.
    #[error("key {0} refers to a policy the image does not hold")]
    MissingPolicy(String),
    /// The model is still warming up: it holds only the keys loaded so far.
    #[error("the read model is still warming up")]
    Warming,
}

/// An image as written, borrowing from the model.
#[derive(Serialize)]
struct ImageRef<'a> {
    format: u32,
    last_sequence: i64,
    policies: Vec<&'a str>,
    keys: Vec<KeyRef<'a>>,
    aliases: Vec<&'a AliasEntry>,
    alias_versions: Vec<(&'a str, i64)>,
    custom_key_stores: Vec<&'a super::custom_key_store::CustomKeyStore>,
}

#[derive(Serialize)]
struct KeyRef<'a> {
    policy: usize,
    key: &'a KeySnapshot,
}

/// An image as read.
#[derive(Deserialize)]
struct Image {
    format: u32,
    last_sequence: i64,
    policies: Vec<String>,
    keys: Vec<KeyOwned>,
    aliases: Vec<AliasEntry>,
    alias_versions: Vec<(String, i64)>,
    /// Absent in images written before custom key stores.
    #[serde(default)]
    custom_key_stores: Vec<super::custom_key_store::CustomKeyStore>,
}

#[derive(Deserialize)]
struct KeyOwned {
    policy: usize,
    key: KeySnapshot,
}

/// Only the format, read first so that another format is named rather than misread.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

impl ReadModel {
    /// The model as image bytes (keys in id order, so equal models give equal bytes).
    pub fn to_image(&self) -> Result<Vec<u8>, ImageError> {
        if !self.is_complete() {
            return Err(ImageError::Warming);
        }
        let mut policy_index: HashMap<&str, usize> = HashMap::new();
        let mut policies = Vec::new();
        let mut keys: Vec<&KeySnapshot> = self.keys.values().map(Arc::as_ref).collect();
        keys.sort_unstable_by(|a, b| (&a.key_id, &a.region).cmp(&(&b.key_id, &b.region)));
        let keys = keys
            .into_iter()
            .map(|key| {
                let policy = *policy_index.entry(key.policy.as_str()).or_insert_with(|| {
                    policies.push(key.policy.as_str());
                    policies.len() - 1
                });
                KeyRef { policy, key }
            })
            .collect();
        let mut alias_versions: Vec<(&str, i64)> = self
            .alias_versions
            .iter()
            .map(|(stream, version)| (stream.as_str(), *version))
            .collect();
        alias_versions.sort_unstable();
        let image = ImageRef {
            format: IMAGE_FORMAT,
            last_sequence: self.last_sequence,
            policies,
            keys,
            aliases: self.aliases.values().collect(),
            alias_versions,
            custom_key_stores: self.custom_key_stores.values().collect(),
        };
        serde_json::to_vec(&image).map_err(|e| ImageError::Undecodable(e.to_string()))
    }

    /// A model from image bytes, with policies and grants compiled again.
    pub fn from_image(bytes: &[u8]) -> Result<ReadModel, ImageError> {
        let image: Image = serde_json::from_slice(bytes).map_err(|e| {
            // Another format is named rather than reported as a parse error.
            match serde_json::from_slice::<FormatOnly>(bytes) {
                Ok(other) if other.format != IMAGE_FORMAT => ImageError::Format(other.format),
                _ => ImageError::Undecodable(e.to_string()),
            }
        })?;
        if image.format != IMAGE_FORMAT {
            return Err(ImageError::Format(image.format));
        }
        let mut model = ReadModel {
            last_sequence: image.last_sequence,
            alias_versions: image.alias_versions.into_iter().collect(),
            custom_key_stores: image
                .custom_key_stores
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect(),
            ..ReadModel::default()
        };
        for alias in image.aliases {
            let at = (
                alias.account.clone(),
                alias.region.clone(),
                alias.name.clone(),
            );
            model.aliases.insert(at, alias);
        }
        model.keys.reserve(image.keys.len());
        // Each distinct text compiles once, not once per key that holds it.
        let mut compiled: Vec<Option<Option<SharedPolicy>>> = vec![None; image.policies.len()];
        for KeyOwned { policy, mut key } in image.keys {
            let (Some(text), Some(slot)) = (image.policies.get(policy), compiled.get_mut(policy))
            else {
                return Err(ImageError::MissingPolicy(key.key_id.clone()));
            };
            key.policy = text.clone();
            key.compiled_policy = slot
                .get_or_insert_with(|| compile_stored_policy(&key.key_id, text))
                .clone();
            key.compiled_grants = compile_grants(&key.key_id, &key.grants);
            model.listing.insert(
                (key.account.clone(), key.region.clone(), key.key_id.clone()),
                (),
            );
            if key.multi_region {
                model
                    .mrk_regions
                    .entry(key.key_id.clone())
                    .or_default()
                    .insert(key.region.clone());
            }
            model.keys.insert(key.identity(), Arc::new(key));
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AliasEvent, GrantRecord, KeyCreated, KeyEvent, MaterialInfo, Tag};
    use chrono::Utc;
    use trent_store::StoredEvent;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

    fn stored(
        sequence: i64,
        stream: String,
        version: i64,
        payload: serde_json::Value,
    ) -> StoredEvent {
        StoredEvent {
            sequence,
            stream,
            version,
            event_type: String::new(),
            payload,
            recorded_at: Utc::now(),
        }
    }

    /// A history of creations, tags, a policy change, a grant and aliases over three keys.
    fn history() -> Vec<StoredEvent> {
        let mut events = Vec::new();
        let mut seq = 0;
        let mut push = |stream: String, version: i64, payload: serde_json::Value| {
            seq += 1;
            events.push(stored(seq, stream, version, payload));
        };
        for (i, id) in ["k1", "k2", "k3"].iter().enumerate() {
            let created = KeyEvent::KeyCreated(Box::new(KeyCreated {
                schema: 1,
                key_id: id.to_string(),
                account: "111122223333".into(),
                region: "us-east-1".into(),
                description: format!("key {i}"),
                key_spec: "SYMMETRIC_DEFAULT".into(),
                key_usage: "ENCRYPT_DECRYPT".into(),
                origin: "AWS_KMS".into(),
                policy: POLICY.into(),
                tags: vec![],
                multi_region: false,
                primary_region: None,
                custom_key_store_id: None,
                xks_key_id: None,
                material: Some(MaterialInfo {
                    version: 1,
                    material_id: format!("{i:064}"),
                    created_at: Utc::now(),
                    rotation_type: None,
                }),
                created_at: Utc::now(),
            }));
            push(
                KeyEvent::stream_for("us-east-1", id),
                1,
                serde_json::to_value(&created).unwrap(),
            );
        }
        let tagged = KeyEvent::TagsSet {
            schema: 1,
            tags: vec![Tag {
                key: "team".into(),
                value: "blue".into(),
            }],
            at: Utc::now(),
        };
        push(
            KeyEvent::stream_for("us-east-1", "k1"),
            2,
            serde_json::to_value(&tagged).unwrap(),
        );
        let policy = KeyEvent::KeyPolicyPut {
            schema: 1,
            policy_name: "default".into(),
            policy: POLICY.replace("\"S\"", "\"T\""),
            at: Utc::now(),
        };
        push(
            KeyEvent::stream_for("us-east-1", "k2"),
            2,
            serde_json::to_value(&policy).unwrap(),
        );
        let grant = KeyEvent::GrantCreated {
            schema: 1,
            grant: GrantRecord {
                grant_id: "g1".into(),
                name: None,
                grantee_principal: "arn:aws:iam::111122223333:user/bob".into(),
                grantee_service_principal: None,
                retiring_principal: None,
                retiring_service_principal: None,
                operations: vec!["Decrypt".into()],
                encryption_context_equals: None,
                encryption_context_subset: None,
                source_arn: None,
                issuing_account: "111122223333".into(),
                created_at: Utc::now(),
            },
        };
        push(
            KeyEvent::stream_for("us-east-1", "k3"),
            2,
            serde_json::to_value(&grant).unwrap(),
        );
        let alias = AliasEvent::AliasCreated {
            schema: 1,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "alias/a".into(),
            target_key_id: "k1".into(),
            at: Utc::now(),
        };
        push(
            AliasEvent::stream_for("111122223333", "us-east-1", "alias/a"),
            1,
            serde_json::to_value(&alias).unwrap(),
        );
        events
    }

    #[test]
    fn an_image_at_any_point_plus_the_later_events_equals_the_full_replay() {
        let events = history();
        let mut full = ReadModel::default();
        for e in &events {
            full.apply(e).unwrap();
        }
        for cut in 0..=events.len() {
            let mut partial = ReadModel::default();
            for e in events.iter().take(cut) {
                partial.apply(e).unwrap();
            }
            let mut loaded = ReadModel::from_image(&partial.to_image().unwrap()).unwrap();
            assert_eq!(loaded, partial, "image at {cut}");
            for e in events.iter().skip(cut) {
                loaded.apply(e).unwrap();
            }
            assert_eq!(loaded, full, "image at {cut} plus later events");
        }
        // Policies and grants are compiled again on load; one text is held once in the image.
        let loaded = ReadModel::from_image(&full.to_image().unwrap()).unwrap();
        assert!(loaded.key("k1").unwrap().compiled_policy.is_some());
        assert!(loaded.key("k3").unwrap().compiled_grants.is_some());
        let image = String::from_utf8(full.to_image().unwrap()).unwrap();
        assert_eq!(image.matches("\"Sid\\\":\\\"S\\\"").count(), 1, "{image}");
    }

    #[test]
    fn another_format_or_garbage_is_refused_by_name() {
        assert!(matches!(
            ReadModel::from_image(br#"{"format":99}"#),
            Err(ImageError::Format(99))
        ));
        assert!(matches!(
            ReadModel::from_image(b"not json"),
            Err(ImageError::Undecodable(_))
        ));
    }
}
