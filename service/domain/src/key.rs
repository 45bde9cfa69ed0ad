//! A key as the read model holds it (`KeySnapshot`), its state, and its `KeyMetadata` wire form.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::{GrantRecord, KeyCreated, MaterialInfo, Tag};
use crate::policy::SharedPolicy;

/// The KeyState values of AWS KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Disabled by its owner.
    Disabled,
    /// Scheduled for deletion.
    PendingDeletion,
    /// Waiting for imported material.
    PendingImport,
    /// Its custom key store is disconnected.
    Unavailable,
    /// A multi-Region primary key scheduled for deletion, waiting for its replicas to be deleted
    /// (its own waiting period starts then).
    PendingReplicaDeletion,
    /// A multi-Region replica key being created (transient).
    Creating,
    /// A multi-Region key whose primary Region is changing (transient).
    Updating,
}

impl KeyState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::PendingImport => "PendingImport",
            Self::Unavailable => "Unavailable",
            Self::PendingReplicaDeletion => "PendingReplicaDeletion",
            Self::Creating => "Creating",
            Self::Updating => "Updating",
        }
    }
}

/// Everything the service knows about a key, projected from its events. Its serde form is the
/// one read-model snapshots hold: without the compiled policy and grants (compiled again on
/// load) and without the policy text (a snapshot holds each distinct text once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySnapshot {
    /// The key id (UUID).
    pub key_id: String,
    /// The owning account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The description.
    pub description: String,
    /// The KeySpec.
    pub key_spec: String,
    /// The KeyUsage.
    pub key_usage: String,
    /// The Origin.
    pub origin: String,
    /// The key policy.
    #[serde(skip)]
    pub policy: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Multi-Region key.
    pub multi_region: bool,
    /// The Region of a multi-Region key's primary key (this key's own Region when it is the
    /// primary); None for a single-Region key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// The state.
    pub state: KeyState,
    /// The state a multi-Region key returns to when its transient `Updating` state ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before_update: Option<KeyState>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Every material version, oldest first.
    pub materials: Vec<MaterialInfo>,
    /// The stream version of the last applied event (for optimistic concurrency).
    pub stream_version: i64,
    /// When the service deletes the key, while it is PendingDeletion.
    pub deletion_date: Option<DateTime<Utc>>,
    /// The waiting period of the scheduled deletion.
    pub pending_window_days: Option<i64>,
    /// When the service deleted the key (it is then gone for every API call).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Whether the deleted key's sealed material has been destroyed.
    pub materials_destroyed: bool,
    /// Automatic rotation, when enabled.
    pub rotation: Option<RotationSchedule>,
    /// The key policy compiled to Cedar (None if the stored text no longer compiles: every
    /// request on the key is then denied).
    #[serde(skip)]
    pub compiled_policy: Option<SharedPolicy>,
    /// The key's live grants, in creation order.
    pub grants: Vec<GrantRecord>,
    /// The grants compiled for evaluation (rebuilt when a grant is created or removed).
    #[serde(skip)]
    pub compiled_grants: Option<SharedGrants>,
    /// Imported material of a key of Origin EXTERNAL (None until the first import).
    pub imported: Option<ImportedMaterial>,
    /// For a key in an external key store: the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    /// For a key in an external key store: the external key's id in the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
}

/// What the service knows about a key's imported material (never the material itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    /// The material version it is sealed under.
    pub version: i32,
    /// Hex SHA-256 of the material bound to the key id (re-imports must match it).
    pub fingerprint: String,
    /// Whether the material is in the keystore (false after deletion or expiry).
    pub present: bool,
    /// `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`.
    pub expiration_model: String,
    /// When the material expires, while it is present.
    pub valid_to: Option<DateTime<Utc>>,
    /// Every imported version that was current at some time (the current one included), by
    /// material version.
    pub versions: std::collections::BTreeMap<i32, ImportedVersion>,
    /// New material imported with `NEW_KEY_MATERIAL`, waiting for RotateKeyOnDemand.
    pub pending: Option<PendingMaterial>,
}

/// One imported material version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedVersion {
    /// Hex SHA-256 of the material bound to the key id.
    pub fingerprint: String,
    /// Whether its sealed material is in the keystore.
    pub present: bool,
    /// Its `KeyMaterialDescription`.
    pub description: Option<String>,
}

/// Imported material in state `PENDING_ROTATION` (sealed, not yet used to encrypt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMaterial {
    /// Its version (one more than the key's newest) and KeyMaterialId.
    pub material: MaterialInfo,
    /// Hex SHA-256 of the material bound to the key id.
    pub fingerprint: String,
    /// `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`, once it is current.
    pub expiration_model: String,
    /// When it expires, once it is current.
    pub valid_to: Option<DateTime<Utc>>,
    /// Its `KeyMaterialDescription`.
    pub description: Option<String>,
}

/// A compiled grant index shared between snapshots; equal when the same grants are indexed.
#[derive(Clone)]
pub struct SharedGrants(pub std::sync::Arc<trent_policy::GrantIndex>);

impl PartialEq for SharedGrants {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
    }
}

impl std::fmt::Debug for SharedGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedGrants({} grants)", self.0.len())
    }
}

/// Compile a key's grants for evaluation; grants that do not compile are left out (and logged),
/// which can only deny.
pub fn compile_grants(key_id: &str, grants: &[GrantRecord]) -> Option<SharedGrants> {
    if grants.is_empty() {
        return None;
    }
    let mut index = trent_policy::GrantIndex::new();
    for g in grants {
        let grant = trent_policy::Grant {
            grant_id: g.grant_id.clone(),
            grantee_principal: g.grantee().to_string(),
            operations: g
                .operations
                .iter()
                .filter_map(|o| trent_policy::GrantOperation::parse(o))
                .collect(),
            constraints: (g.encryption_context_equals.is_some()
                || g.encryption_context_subset.is_some()
                || g.source_arn.is_some())
            .then(|| trent_policy::GrantConstraints {
                encryption_context_equals: g.encryption_context_equals.clone(),
                encryption_context_subset: g.encryption_context_subset.clone(),
                source_arn: g.source_arn.clone(),
            }),
        };
        if let Err(e) = index.insert(grant) {
            tracing::error!(key_id, grant_id = %g.grant_id, error = %e, "grant does not compile");
        }
    }
    Some(SharedGrants(std::sync::Arc::new(index)))
}

/// Automatic rotation settings of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    /// The rotation period in days (90 to 2560).
    pub period_days: i64,
    /// When the next automatic rotation is due.
    pub next_rotation_date: DateTime<Utc>,
}

impl KeySnapshot {
    /// The snapshot of a key just created, at stream version `version`.
    pub fn from_created(created: &KeyCreated, version: i64) -> Self {
        Self {
            key_id: created.key_id.clone(),
            account: created.account.clone(),
            region: created.region.clone(),
            description: created.description.clone(),
            key_spec: created.key_spec.clone(),
            key_usage: created.key_usage.clone(),
            origin: created.origin.clone(),
            policy: created.policy.clone(),
            tags: created.tags.clone(),
            multi_region: created.multi_region,
            primary_region: created.primary_region.clone(),
            state: if created.is_replica() {
                KeyState::Creating
            } else if created.material.is_some() {
                KeyState::Enabled
            } else {
                KeyState::PendingImport
            },
            state_before_update: None,
            created_at: created.created_at,
            materials: created.material.iter().cloned().collect(),
            stream_version: version,
            deletion_date: None,
            pending_window_days: None,
            deleted_at: None,
            materials_destroyed: false,
            rotation: None,
            compiled_policy: compile_stored_policy(&created.key_id, &created.policy),
            grants: Vec::new(),
            compiled_grants: None,
            imported: None,
            custom_key_store_id: created.custom_key_store_id.clone(),
            xks_key_id: created.xks_key_id.clone(),
        }
    }

    /// The snapshot of a new replica of `primary` (at stream version `version`): the replica's
    /// own policy, description and tags from `created`; the shared properties (material
    /// versions, automatic rotation, imported material) from the primary.
    pub fn replica_of(primary: &KeySnapshot, created: &KeyCreated, version: i64) -> Self {
        let mut replica = Self::from_created(created, version);
        // A replica of a key with imported material has none until the same material is
        // imported into it.
        if primary.origin != "EXTERNAL" {
            replica.materials = primary.materials.clone();
            replica.rotation = primary.rotation.clone();
        }
        replica
    }

    /// The key ARN.
    pub fn arn(&self) -> String {
        key_arn(&self.region, &self.account, &self.key_id)
    }

    /// What identifies the key inside Trent (`key_identity`): its id, and for a multi-Region
    /// key, whose id its replicas share, its Region and id.
    pub fn identity(&self) -> String {
        key_identity(&self.region, &self.key_id)
    }

    /// The key's event stream.
    pub fn stream(&self) -> String {
        format!("key/{}", self.identity())
    }

    /// Whether this is the primary key of a multi-Region key.
    pub fn is_primary(&self) -> bool {
        self.primary_region.as_deref() == Some(self.region.as_str())
    }

    /// Whether this is a replica of a multi-Region key.
    pub fn is_replica(&self) -> bool {
        self.primary_region
            .as_deref()
            .is_some_and(|p| p != self.region)
    }

    /// Whether the key's sealed material is its own to destroy: a replica of a generated key
    /// shares its primary's, which outlives every replica; each Region's key of a multi-Region key
    /// with imported material holds its own copy.
    pub fn owns_material(&self) -> bool {
        !self.is_replica() || self.origin == "EXTERNAL"
    }

    /// Under which id the key's sealed material is kept: the key id, shared by every Region's
    /// key of a multi-Region key; for a multi-Region key with imported material, whose Regions
    /// import (and delete, and let expire) their copies separately, the key's identity.
    pub fn material_owner(&self) -> String {
        if self.multi_region && self.origin == "EXTERNAL" {
            self.identity()
        } else {
            self.key_id.clone()
        }
    }

    /// The material that new encryptions use.
    pub fn current_material(&self) -> Option<&MaterialInfo> {
        self.materials.last()
    }

    /// Whether the key has usable material (a key of Origin EXTERNAL only while imported
    /// material is present).
    pub fn has_material(&self) -> bool {
        match &self.imported {
            Some(imported) => imported.present,
            None => !self.materials.is_empty(),
        }
    }

    /// A stand-in for a key about to be created in `account` and `region` (to evaluate a policy
    /// proposed at CreateKey before the key exists).
    pub fn probe(account: &str, region: &str) -> Self {
        Self {
            key_id: "00000000-0000-0000-0000-000000000000".into(),
            account: account.into(),
            region: region.into(),
            description: String::new(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            policy: String::new(),
            tags: Vec::new(),
            multi_region: false,
            primary_region: None,
            state: KeyState::Enabled,
            state_before_update: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            materials: Vec::new(),
            stream_version: 0,
            deletion_date: None,
            pending_window_days: None,
            deleted_at: None,
            materials_destroyed: false,
            rotation: None,
            compiled_policy: None,
            grants: Vec::new(),
            compiled_grants: None,
            imported: None,
            custom_key_store_id: None,
            xks_key_id: None,
        }
    }

    /// Whether the key still exists for API callers (not deleted by the service).
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// How many sealed material versions the events say are in the keystore (what destroying
    /// the key's material removes).
    pub fn stored_material_versions(&self) -> u64 {
        if self.materials_destroyed {
            return 0;
        }
        match &self.imported {
            Some(imported) => {
                let present = imported.versions.values().filter(|v| v.present).count();
                (present + usize::from(imported.pending.is_some())) as u64
            }
            None => self.materials.len() as u64,
        }
    }

    /// How many rotations were made on demand.
    pub fn on_demand_rotations(&self) -> usize {
        self.materials
            .iter()
            .filter(|m| m.rotation_type.as_deref() == Some("ON_DEMAND"))
            .count()
    }

    /// One material version, if it exists.
    pub fn material(&self, version: i32) -> Option<&MaterialInfo> {
        self.materials.iter().find(|m| m.version == version)
    }
}

/// Compile a key policy read from the events; a failure is logged and leaves the key unusable.
pub fn compile_stored_policy(key_id: &str, policy: &str) -> Option<SharedPolicy> {
    match crate::policy::compile_key_policy(policy) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(key_id, error = %e, "stored key policy does not compile; the key denies every request");
            None
        }
    }
}

/// The internal identity of a key: its id for a single-Region key (ids are unique), `REGION/ID`
/// for a multi-Region key (`mrk-` ids, shared by the primary and its replicas).
pub fn key_identity(region: &str, key_id: &str) -> String {
    if key_id.starts_with("mrk-") {
        format!("{region}/{key_id}")
    } else {
        key_id.to_string()
    }
}

/// The ARN of a key.
pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

/// A timestamp as the AWS JSON protocol sends it: epoch seconds with a fraction.
pub fn epoch_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}
