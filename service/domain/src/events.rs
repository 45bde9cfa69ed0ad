//! Domain events: the source of truth. Payloads are versioned JSON (`schema`), and an event written
//! by any earlier version must stay readable. No event ever holds key material or plaintext.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use trent_store::NewEvent;

/// A tag on a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
}

/// Public facts about one version of a key's material (never the material itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// The material version (1 for the first).
    pub version: i32,
    /// The id AWS calls KeyMaterialId (64 hex characters, random, reveals nothing).
    pub material_id: String,
    /// When the material was created.
    pub created_at: DateTime<Utc>,
    /// How it came to be: None for a key's first material, `AUTOMATIC` or `ON_DEMAND` for a
    /// rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<String>,
}

/// The payload of `KeyEvent::KeyCreated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCreated {
    /// Payload schema version.
    pub schema: u32,
    /// The key id (a UUID).
    pub key_id: String,
    /// The owning account.
    pub account: String,
    /// The region the key lives in.
    pub region: String,
    /// The description.
    pub description: String,
    /// The KeySpec.
    pub key_spec: String,
    /// The KeyUsage.
    pub key_usage: String,
    /// The Origin.
    pub origin: String,
    /// The key policy document.
    pub policy: String,
    /// Tags given at creation.
    pub tags: Vec<Tag>,
    /// Whether it is a multi-Region key.
    pub multi_region: bool,
    /// For a multi-Region key, the Region of its primary key: the key's own Region for a
    /// primary, another for a replica (which takes its material from the primary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// The first material (None for a key of Origin EXTERNAL, which waits for imported material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<MaterialInfo>,
    /// For a key of Origin EXTERNAL_KEY_STORE: its custom key store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    /// For a key of Origin EXTERNAL_KEY_STORE: the external key's id in the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl GrantRecord {
    /// Who may use the grant: its grantee principal's ARN or its service principal's name.
    pub fn grantee(&self) -> &str {
        self.grantee_service_principal
            .as_deref()
            .unwrap_or(&self.grantee_principal)
    }

    /// Who may retire it besides the grantee and the issuing account.
    pub fn retiring(&self) -> Option<&str> {
        self.retiring_service_principal
            .as_deref()
            .or(self.retiring_principal.as_deref())
    }
}

impl KeyCreated {
    /// Whether this creates a replica of a multi-Region key.
    pub fn is_replica(&self) -> bool {
        self.primary_region
            .as_deref()
            .is_some_and(|p| p != self.region)
    }
}

/// Every event of a key's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KeyEvent {
    /// A key was created with its first material.
    KeyCreated(Box<KeyCreated>),
    /// The key policy was replaced.
    KeyPolicyPut {
        /// Payload schema version.
        schema: u32,
        /// The policy name (always `default` in AWS KMS).
        policy_name: String,
        /// The new document.
        policy: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key was enabled.
    KeyEnabled {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key was disabled.
    KeyDisabled {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The description changed.
    DescriptionUpdated {
        /// Payload schema version.
        schema: u32,
        /// The new description.
        description: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Tags were added or their values replaced.
    TagsSet {
        /// Payload schema version.
        schema: u32,
        /// The tags.
        tags: Vec<Tag>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Tags were removed.
    TagsRemoved {
        /// Payload schema version.
        schema: u32,
        /// The removed tag keys.
        keys: Vec<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key was scheduled for deletion.
    KeyDeletionScheduled {
        /// Payload schema version.
        schema: u32,
        /// When the service deletes it.
        deletion_date: DateTime<Utc>,
        /// The waiting period.
        pending_window_days: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// A multi-Region primary key with replicas was scheduled for deletion: it waits in
    /// PendingReplicaDeletion until its replicas are deleted, then its waiting period starts.
    KeyDeletionAwaitingReplicas {
        /// Payload schema version.
        schema: u32,
        /// The waiting period that starts once the replicas are gone.
        pending_window_days: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The primary Region of a multi-Region key changed (written on the streams of the old and
    /// the new primary; both are Updating until `MultiRegionKeySynchronized`).
    PrimaryRegionUpdated {
        /// Payload schema version.
        schema: u32,
        /// The Region of the new primary key.
        primary_region: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A multi-Region key's transient state ended: a new replica is ready (Creating ends), or a
    /// change of primary Region is complete (Updating ends).
    MultiRegionKeySynchronized {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A scheduled deletion was cancelled (the key becomes Disabled).
    KeyDeletionCancelled {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The service deleted the key at the end of its waiting period.
    KeyDeleted {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key's sealed material was destroyed (crypto-shredding done).
    KeyMaterialDestroyed {
        /// Payload schema version.
        schema: u32,
        /// How many material versions were destroyed.
        versions: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Automatic rotation was enabled (or its period changed).
    KeyRotationEnabled {
        /// Payload schema version.
        schema: u32,
        /// The rotation period.
        rotation_period_days: i64,
        /// When the next automatic rotation is due.
        next_rotation_date: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Automatic rotation was disabled.
    KeyRotationDisabled {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A grant was created on the key.
    GrantCreated {
        /// Payload schema version.
        schema: u32,
        /// The grant.
        grant: GrantRecord,
    },
    /// A grant was retired (by its retiring principal, its grantee, or the account).
    GrantRetired {
        /// Payload schema version.
        schema: u32,
        /// The grant id.
        grant_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A grant was revoked by someone allowed kms:RevokeGrant on the key.
    GrantRevoked {
        /// Payload schema version.
        schema: u32,
        /// The grant id.
        grant_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// New material became current; older versions still decrypt.
    KeyMaterialRotated {
        /// Payload schema version.
        schema: u32,
        /// The new material (its `rotation_type` says automatic or on demand).
        material: MaterialInfo,
        /// The next automatic rotation, when automatic rotation is on.
        next_rotation_date: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Key material was imported into a key of Origin EXTERNAL (first import, or the same
    /// material again); the key becomes usable.
    KeyMaterialImported {
        /// Payload schema version.
        schema: u32,
        /// The material version (the same version again when the same material is re-imported).
        material: MaterialInfo,
        /// Hex SHA-256 of the material bound to the key id: compares a re-import with the
        /// first import without keeping the material (which deletion destroys).
        fingerprint: String,
        /// `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`.
        expiration_model: String,
        /// When the material expires (with `KEY_MATERIAL_EXPIRES`).
        valid_to: Option<DateTime<Utc>>,
        /// A new material version imported with ImportType `NEW_KEY_MATERIAL` into a key that
        /// already has material: it waits (`PENDING_ROTATION`) for RotateKeyOnDemand to make it
        /// current. Absent (false) in events written before on-demand rotation of imported keys.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pending: bool,
        /// The `KeyMaterialDescription` given with the import (None: keep the earlier one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Imported material was deleted (by DeleteImportedKeyMaterial, or by the service when it
    /// expired); the key waits for the same material again.
    ImportedKeyMaterialDeleted {
        /// Payload schema version.
        schema: u32,
        /// Whether the service deleted it at its ValidTo.
        expired: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A grant as recorded in its `GrantCreated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The grant id (64 hex characters).
    pub grant_id: String,
    /// The grant's name, if given (CreateGrant is idempotent on it).
    pub name: Option<String>,
    /// Who may use the grant (empty for a grant to a service principal).
    pub grantee_principal: String,
    /// The service principal that may use the grant, instead of `grantee_principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_service_principal: Option<String>,
    /// Who may retire it.
    pub retiring_principal: Option<String>,
    /// The service principal that may retire it, instead of `retiring_principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_service_principal: Option<String>,
    /// The operations it allows (AWS names).
    pub operations: Vec<String>,
    /// `EncryptionContextEquals` constraint.
    pub encryption_context_equals: Option<std::collections::BTreeMap<String, String>>,
    /// `EncryptionContextSubset` constraint.
    pub encryption_context_subset: Option<std::collections::BTreeMap<String, String>>,
    /// `SourceArn` constraint: the grant applies only to calls made on behalf of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    /// The account that created it.
    pub issuing_account: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Every event of an alias's stream (`alias/ACCOUNT/REGION/NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AliasEvent {
    /// The alias was created.
    AliasCreated {
        /// Payload schema version.
        schema: u32,
        /// The owning account.
        account: String,
        /// The region.
        region: String,
        /// The alias name (`alias/...`).
        name: String,
        /// The key it points to.
        target_key_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The alias now points to another key.
    AliasRetargeted {
        /// Payload schema version.
        schema: u32,
        /// The new target key.
        target_key_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The alias was deleted (by its owner, or with its key).
    AliasDeleted {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl AliasEvent {
    /// The event type name stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AliasCreated { .. } => "AliasCreated",
            Self::AliasRetargeted { .. } => "AliasRetargeted",
            Self::AliasDeleted { .. } => "AliasDeleted",
        }
    }

    /// The stream of an alias.
    pub fn stream_for(account: &str, region: &str, name: &str) -> String {
        format!("alias/{account}/{region}/{name}")
    }

    /// The (account, region, name) an alias stream belongs to: the inverse of `stream_for`
    /// (account ids and regions hold no `/`; the name may).
    pub fn parse_stream(stream: &str) -> Option<(String, String, String)> {
        let mut parts = stream.strip_prefix("alias/")?.splitn(3, '/');
        let (account, region, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some((account.to_string(), region.to_string(), name.to_string()))
    }

    /// Encode for the store.
    pub fn to_new_event(&self) -> Result<NewEvent, serde_json::Error> {
        Ok(NewEvent {
            event_type: self.type_name().to_string(),
            payload: serde_json::to_value(self)?,
        })
    }
}

impl KeyEvent {
    /// The event type name stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::KeyCreated { .. } => "KeyCreated",
            Self::KeyPolicyPut { .. } => "KeyPolicyPut",
            Self::KeyEnabled { .. } => "KeyEnabled",
            Self::KeyDisabled { .. } => "KeyDisabled",
            Self::DescriptionUpdated { .. } => "DescriptionUpdated",
            Self::TagsSet { .. } => "TagsSet",
            Self::TagsRemoved { .. } => "TagsRemoved",
            Self::KeyDeletionScheduled { .. } => "KeyDeletionScheduled",
            Self::KeyDeletionCancelled { .. } => "KeyDeletionCancelled",
            Self::KeyDeletionAwaitingReplicas { .. } => "KeyDeletionAwaitingReplicas",
            Self::PrimaryRegionUpdated { .. } => "PrimaryRegionUpdated",
            Self::MultiRegionKeySynchronized { .. } => "MultiRegionKeySynchronized",
            Self::KeyDeleted { .. } => "KeyDeleted",
            Self::KeyMaterialDestroyed { .. } => "KeyMaterialDestroyed",
            Self::KeyRotationEnabled { .. } => "KeyRotationEnabled",
            Self::KeyRotationDisabled { .. } => "KeyRotationDisabled",
            Self::KeyMaterialRotated { .. } => "KeyMaterialRotated",
            Self::KeyMaterialImported { .. } => "KeyMaterialImported",
            Self::ImportedKeyMaterialDeleted { .. } => "ImportedKeyMaterialDeleted",
            Self::GrantCreated { .. } => "GrantCreated",
            Self::GrantRetired { .. } => "GrantRetired",
            Self::GrantRevoked { .. } => "GrantRevoked",
        }
    }

    /// The stream of a key's events (`key/ID`, or `key/REGION/ID` for a multi-Region key).
    pub fn stream_for(region: &str, key_id: &str) -> String {
        format!("key/{}", crate::key::key_identity(region, key_id))
    }

    /// Whether the event changes a property every key of a multi-Region key shares: written on
    /// the primary's stream, applied to each of them.
    pub fn is_shared_by_replicas(&self) -> bool {
        matches!(
            self,
            Self::KeyMaterialRotated { .. }
                | Self::KeyRotationEnabled { .. }
                | Self::KeyRotationDisabled { .. }
                | Self::PrimaryRegionUpdated { .. }
        )
    }

    /// Encode for the store.
    pub fn to_new_event(&self) -> Result<NewEvent, serde_json::Error> {
        Ok(NewEvent {
            event_type: self.type_name().to_string(),
            payload: serde_json::to_value(self)?,
        })
    }

    /// Decode a stored payload.
    pub fn from_payload(payload: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_alias_stream_names_its_alias_even_with_slashes_in_the_name() {
        let stream = AliasEvent::stream_for("111122223333", "eu-west-1", "alias/team/app");
        assert_eq!(
            AliasEvent::parse_stream(&stream),
            Some((
                "111122223333".to_string(),
                "eu-west-1".to_string(),
                "alias/team/app".to_string()
            ))
        );
        assert_eq!(AliasEvent::parse_stream("key/abc"), None);
    }

    use super::*;

    #[test]
    fn events_round_trip_through_json() {
        let e = KeyEvent::KeyPolicyPut {
            schema: 1,
            policy_name: "default".into(),
            policy: "{}".into(),
            at: Utc::now(),
        };
        let stored = e.to_new_event().unwrap();
        assert_eq!(stored.event_type, "KeyPolicyPut");
        assert_eq!(KeyEvent::from_payload(&stored.payload).unwrap(), e);
    }

    #[test]
    fn an_import_event_without_pending_or_description_stays_readable() {
        let payload = serde_json::json!({
            "type": "KeyMaterialImported", "schema": 1,
            "material": {"version": 1, "material_id": "ab", "created_at": "2026-01-01T00:00:00Z"},
            "fingerprint": "00", "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE",
            "valid_to": null, "at": "2026-01-01T00:00:00Z"
        });
        match KeyEvent::from_payload(&payload).unwrap() {
            KeyEvent::KeyMaterialImported {
                pending,
                description,
                ..
            } => {
                assert!(!pending);
                assert_eq!(description, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_version_one_payload_stays_readable() {
        let payload = serde_json::json!({
            "type": "KeyCreated", "schema": 1, "key_id": "k", "account": "111122223333",
            "region": "us-east-1", "description": "", "key_spec": "SYMMETRIC_DEFAULT",
            "key_usage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS", "policy": "{}", "tags": [],
            "multi_region": false,
            "material": {"version": 1, "material_id": "ab", "created_at": "2026-01-01T00:00:00Z"},
            "created_at": "2026-01-01T00:00:00Z"
        });
        assert!(matches!(
            KeyEvent::from_payload(&payload),
            Ok(KeyEvent::KeyCreated { .. })
        ));
    }
}
