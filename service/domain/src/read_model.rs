//! The in-memory read model: every key and alias, projected from the event stream in sequence order.
//!
//! It is rebuilt from the events at start (`ReadModel::apply` over `read_events`), and kept current
//! by applying each committed unit's events in order. `trent replay --verify` builds a second one
//! from the events alone and compares it with the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use trent_store::StoredEvent;

use super::events::{AliasEvent, KeyEvent};
use super::key::{
    ImportedMaterial, ImportedVersion, KeySnapshot, KeyState, PendingMaterial, RotationSchedule,
};

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
    /// The event refers to something that does not exist, or creates it twice.
    #[error("event {sequence}: {message}")]
    Inconsistent {
        /// The event's sequence.
        sequence: i64,
        /// What is wrong.
        message: String,
    },
}

/// An alias as the read model holds it (and as a snapshot holds it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AliasEntry {
    /// The owning account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The alias name (`alias/...`).
    pub name: String,
    /// The key it points to.
    pub target_key_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl AliasEntry {
    /// The alias ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account, self.name)
    }
}

pub(crate) type AliasKey = (String, String, String);

/// All keys and aliases, indexed for lookup and for listing per account and region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadModel {
    /// Each key's current snapshot by its identity (`KeySnapshot::identity`), shared: a request
    /// clones the pointer, and applying an event copies the snapshot only while a request still
    /// holds the old one.
    pub(crate) keys: HashMap<String, Arc<KeySnapshot>>,
    /// The Regions of every multi-Region key id (deleted keys included).
    pub(crate) mrk_regions: HashMap<String, BTreeSet<String>>,
    /// Custom key stores by id.
    pub(crate) custom_key_stores: BTreeMap<String, super::custom_key_store::CustomKeyStore>,
    pub(crate) listing: BTreeMap<(String, String, String), ()>,
    pub(crate) aliases: BTreeMap<AliasKey, AliasEntry>,
    /// Current version of every alias stream ever written (deleted aliases included), so a name
    /// can be created again with the right expected version.
    pub(crate) alias_versions: HashMap<String, i64>,
    pub(crate) last_sequence: i64,
    /// Set while the model warms up (`warming.rs`): it holds only the keys and aliases loaded on
    /// first use. None once the model holds everything.
    pub(crate) warming: Option<super::warming::Warming>,
}

impl ReadModel {
    /// The sequence of the last applied event (0 when empty).
    pub fn last_sequence(&self) -> i64 {
        self.last_sequence
    }

    /// A key by its identity (`KeySnapshot::identity`), deleted ones included (for the scheduler
    /// and replay).
    pub fn key(&self, identity: &str) -> Option<&KeySnapshot> {
        self.keys.get(identity).map(Arc::as_ref)
    }

    /// A key by Region and id, if it still exists for API callers.
    pub fn live_key(&self, region: &str, key_id: &str) -> Option<&KeySnapshot> {
        self.keys
            .get(&super::key::key_identity(region, key_id))
            .map(Arc::as_ref)
            .filter(|k| k.is_live() && k.region == region)
    }

    /// A shared handle on the key of one Region and id, if it still exists for API callers (a
    /// pointer copy: the snapshot does not change under the holder).
    pub fn live_key_shared(&self, region: &str, key_id: &str) -> Option<Arc<KeySnapshot>> {
        self.keys
            .get(&super::key::key_identity(region, key_id))
            .filter(|k| k.is_live() && k.region == region)
            .cloned()
    }

    /// Every key of a multi-Region key id, one per Region (deleted ones included), in Region
    /// order; empty for a single-Region id.
    pub fn multi_region_keys<'a>(
        &'a self,
        key_id: &'a str,
    ) -> impl Iterator<Item = &'a KeySnapshot> + 'a {
        self.mrk_regions
            .get(key_id)
            .into_iter()
            .flatten()
            .filter_map(move |region| self.key(&super::key::key_identity(region, key_id)))
    }

    /// Any key that holds the material of `key_id` (the key itself, or for a multi-Region key
    /// one of its Regions' keys: they share their material).
    pub fn material_holder<'a>(&'a self, key_id: &'a str) -> Option<&'a KeySnapshot> {
        self.key(key_id)
            .or_else(|| self.multi_region_keys(key_id).next())
    }

    /// Every key, deleted ones included, in no particular order.
    pub fn all_keys(&self) -> impl Iterator<Item = &KeySnapshot> {
        self.keys.values().map(Arc::as_ref)
    }

    /// How many keys exist (deleted ones included).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Live keys of one account and region ordered by key id, starting after `after`.
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
            .filter_map(move |(_, _, id)| self.live_key(region, id))
    }

    /// An alias by name in an account and region.
    pub fn alias(&self, account: &str, region: &str, name: &str) -> Option<&AliasEntry> {
        self.aliases
            .get(&(account.to_string(), region.to_string(), name.to_string()))
    }

    /// The current version of an alias stream (0 if it was never written).
    pub fn alias_stream_version(&self, stream: &str) -> i64 {
        self.alias_versions.get(stream).copied().unwrap_or(0)
    }

    /// Aliases of one account and region ordered by name, starting after `after`.
    pub fn aliases_in<'a>(
        &'a self,
        account: &'a str,
        region: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = &'a AliasEntry> + 'a {
        let start = (
            account.to_string(),
            region.to_string(),
            after.unwrap_or("").to_string(),
        );
        self.aliases
            .range(start..)
            .take_while(move |((a, r, _), _)| a == account && r == region)
            .filter(move |((_, _, n), _)| Some(n.as_str()) != after)
            .map(|(_, e)| e)
    }

    /// Aliases that point at a key (aliases are per Region: a multi-Region key's replicas have
    /// their own).
    pub fn aliases_of<'a>(
        &'a self,
        key: &'a KeySnapshot,
    ) -> impl Iterator<Item = &'a AliasEntry> + 'a {
        self.aliases.values().filter(move |a| {
            a.target_key_id == key.key_id && a.region == key.region && a.account == key.account
        })
    }

    /// Apply one stored event. Events must arrive in sequence order; older ones are ignored.
    pub fn apply(&mut self, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.sequence <= self.last_sequence {
            return Ok(());
        }
        if self.warming.is_some() {
            let applied = self.apply_while_warming(event);
            self.last_sequence = event.sequence;
            return applied;
        }
        if event.stream.starts_with("alias/") {
            self.apply_alias(event)?;
        } else if let Some(id) = event.stream.strip_prefix("cks/") {
            self.apply_custom_key_store(id, event)?;
        } else {
            self.apply_key(event)?;
        }
        self.last_sequence = event.sequence;
        Ok(())
    }

    fn apply_custom_key_store(
        &mut self,
        id: &str,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let decoded: super::custom_key_store::CustomKeyStoreEvent =
            serde_json::from_value(event.payload.clone()).map_err(|e| {
                ProjectionError::Undecodable {
                    sequence: event.sequence,
                    message: e.to_string(),
                }
            })?;
        let entry = self.custom_key_stores.remove(id);
        match super::custom_key_store::apply(entry, decoded, event.version) {
            Ok(Some(store)) => {
                self.custom_key_stores.insert(id.to_string(), store);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(message) => Err(ProjectionError::Inconsistent {
                sequence: event.sequence,
                message,
            }),
        }
    }

    /// A custom key store by id.
    pub fn custom_key_store(&self, id: &str) -> Option<&super::custom_key_store::CustomKeyStore> {
        self.custom_key_stores.get(id)
    }

    /// Every custom key store, by id.
    pub fn all_custom_key_stores(
        &self,
    ) -> impl Iterator<Item = &super::custom_key_store::CustomKeyStore> {
        self.custom_key_stores.values()
    }

    /// The custom key stores of one account and region, by id.
    pub fn custom_key_stores_in<'a>(
        &'a self,
        account: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = &'a super::custom_key_store::CustomKeyStore> + 'a {
        self.custom_key_stores
            .values()
            .filter(move |s| s.account == account && s.region == region)
    }

    pub(crate) fn apply_alias(&mut self, event: &StoredEvent) -> Result<(), ProjectionError> {
        let decoded: AliasEvent = serde_json::from_value(event.payload.clone()).map_err(|e| {
            ProjectionError::Undecodable {
                sequence: event.sequence,
                message: e.to_string(),
            }
        })?;
        let inconsistent = |message: String| ProjectionError::Inconsistent {
            sequence: event.sequence,
            message,
        };
        self.alias_versions
            .insert(event.stream.clone(), event.version);
        let position =
            AliasEvent::parse_stream(&event.stream).filter(|k| self.aliases.contains_key(k));
        match decoded {
            AliasEvent::AliasCreated {
                account,
                region,
                name,
                target_key_id,
                at,
                ..
            } => {
                let key = (account.clone(), region.clone(), name.clone());
                if self.aliases.contains_key(&key) {
                    return Err(inconsistent(format!("alias {name} created twice")));
                }
                self.aliases.insert(
                    key,
                    AliasEntry {
                        account,
                        region,
                        name,
                        target_key_id,
                        created_at: at,
                        updated_at: at,
                    },
                );
            }
            AliasEvent::AliasRetargeted {
                target_key_id, at, ..
            } => {
                let entry = position
                    .and_then(|k| self.aliases.get_mut(&k))
                    .ok_or_else(|| inconsistent(format!("no alias for {}", event.stream)))?;
                entry.target_key_id = target_key_id;
                entry.updated_at = at;
            }
            AliasEvent::AliasDeleted { .. } => {
                let key = position
                    .ok_or_else(|| inconsistent(format!("no alias for {}", event.stream)))?;
                self.aliases.remove(&key);
            }
        }
        Ok(())
    }

    pub(crate) fn apply_key(&mut self, event: &StoredEvent) -> Result<(), ProjectionError> {
        let decoded =
            KeyEvent::from_payload(&event.payload).map_err(|e| ProjectionError::Undecodable {
                sequence: event.sequence,
                message: e.to_string(),
            })?;
        let inconsistent = |message: String| ProjectionError::Inconsistent {
            sequence: event.sequence,
            message,
        };
        if let KeyEvent::KeyCreated(created) = &decoded {
            let identity = super::key::key_identity(&created.region, &created.key_id);
            // A Region whose replica was deleted may take a new replica of the same key id: its
            // stream goes on, and the new key replaces the deleted one.
            let replaces_deleted =
                created.is_replica() && self.keys.get(&identity).is_some_and(|k| !k.is_live());
            if self.keys.contains_key(&identity) && !replaces_deleted {
                return Err(inconsistent(format!(
                    "key {} created twice",
                    created.key_id
                )));
            }
            let key = if created.is_replica() {
                let primary_region = created.primary_region.as_deref().unwrap_or_default();
                let primary = self
                    .key(&super::key::key_identity(primary_region, &created.key_id))
                    .ok_or_else(|| {
                        inconsistent(format!(
                            "replica of {} without its primary in {primary_region}",
                            created.key_id
                        ))
                    })?;
                KeySnapshot::replica_of(primary, created, event.version)
            } else {
                KeySnapshot::from_created(created, event.version)
            };
            if key.multi_region {
                self.mrk_regions
                    .entry(key.key_id.clone())
                    .or_default()
                    .insert(key.region.clone());
            }
            self.listing.insert(
                (key.account.clone(), key.region.clone(), key.key_id.clone()),
                (),
            );
            self.keys.insert(identity, Arc::new(key));
            return Ok(());
        }
        let shared = decoded.is_shared_by_replicas().then(|| decoded.clone());
        let key = event
            .stream
            .strip_prefix("key/")
            .and_then(|identity| self.keys.get_mut(identity))
            .map(Arc::make_mut)
            .ok_or_else(|| inconsistent(format!("event on unknown stream {}", event.stream)))?;
        key.stream_version = event.version;
        let (key_id, region) = (key.key_id.clone(), key.region.clone());
        apply_to_key(key, decoded);
        // What every key of a multi-Region key shares reaches the other Regions' keys.
        if let Some(shared) = shared {
            let others: Vec<String> = self
                .mrk_regions
                .get(&key_id)
                .into_iter()
                .flatten()
                .filter(|r| **r != region)
                .map(|r| super::key::key_identity(r, &key_id))
                .collect();
            for identity in others {
                if let Some(other) = self.keys.get_mut(&identity).filter(|k| k.is_live()) {
                    apply_shared(Arc::make_mut(other), shared.clone());
                }
            }
        }
        Ok(())
    }
}

/// A shared property's change on another Region's key of the same multi-Region key.
fn apply_shared(key: &mut KeySnapshot, event: KeyEvent) {
    match event {
        KeyEvent::PrimaryRegionUpdated { primary_region, .. } => {
            key.primary_region = Some(primary_region)
        }
        other => apply_to_key(key, other),
    }
}

/// Whether a stored event leaves a key in a transient multi-Region state (a new replica is
/// Creating; a change of primary Region makes two keys Updating) that the scheduler must end.
pub fn starts_transient_state(event: &StoredEvent) -> bool {
    match event.event_type.as_str() {
        "PrimaryRegionUpdated" => true,
        "KeyCreated" => {
            let region = event.payload.get("region").and_then(|r| r.as_str());
            let primary = event.payload.get("primary_region").and_then(|r| r.as_str());
            primary.is_some() && primary != region
        }
        _ => false,
    }
}

/// Compile the key policies `events` will set, before the caller takes the model's write lock.
///
/// Compiled policies are shared by text (held weakly), so while the caller holds what this returns,
/// applying the same events finds each policy compiled and requests never wait on Cedar
/// compilation behind the write lock. A text that does not compile is left for `apply` to report.
pub fn compile_policies_ahead(events: &[StoredEvent]) -> Vec<crate::policy::SharedPolicy> {
    events
        .iter()
        .filter(|e| e.stream.starts_with("key/"))
        .filter(|e| {
            matches!(
                e.payload.get("type").and_then(|t| t.as_str()),
                Some("KeyCreated" | "KeyPolicyPut")
            )
        })
        .filter_map(|e| e.payload.get("policy").and_then(|p| p.as_str()))
        .filter_map(|text| crate::policy::compile_key_policy(text).ok())
        .collect()
}

/// Apply one event (other than its creation) to a key's snapshot.
fn apply_to_key(key: &mut KeySnapshot, event: KeyEvent) {
    match event {
        KeyEvent::KeyCreated(_) => {}
        KeyEvent::KeyPolicyPut { policy, .. } => {
            key.compiled_policy = super::key::compile_stored_policy(&key.key_id, &policy);
            key.policy = policy;
        }
        KeyEvent::KeyEnabled { .. } => key.state = KeyState::Enabled,
        KeyEvent::KeyDisabled { .. } => key.state = KeyState::Disabled,
        KeyEvent::DescriptionUpdated { description, .. } => key.description = description,
        KeyEvent::TagsSet { tags, .. } => {
            for tag in tags {
                match key.tags.iter_mut().find(|t| t.key == tag.key) {
                    Some(existing) => existing.value = tag.value,
                    None => key.tags.push(tag),
                }
            }
        }
        KeyEvent::TagsRemoved { keys, .. } => key.tags.retain(|t| !keys.contains(&t.key)),
        KeyEvent::KeyDeletionScheduled {
            deletion_date,
            pending_window_days,
            ..
        } => {
            key.state = KeyState::PendingDeletion;
            key.deletion_date = Some(deletion_date);
            key.pending_window_days = Some(pending_window_days);
        }
        KeyEvent::KeyDeletionCancelled { .. } => {
            // A key without material goes back to waiting for it, as in AWS.
            key.state = if key.has_material() {
                KeyState::Disabled
            } else {
                KeyState::PendingImport
            };
            key.deletion_date = None;
            key.pending_window_days = None;
        }
        KeyEvent::KeyDeletionAwaitingReplicas {
            pending_window_days,
            ..
        } => {
            key.state = KeyState::PendingReplicaDeletion;
            key.deletion_date = None;
            key.pending_window_days = Some(pending_window_days);
        }
        KeyEvent::PrimaryRegionUpdated { primary_region, .. } => {
            key.primary_region = Some(primary_region);
            if key.state != KeyState::Updating {
                key.state_before_update = Some(key.state);
                key.state = KeyState::Updating;
            }
        }
        KeyEvent::MultiRegionKeySynchronized { .. } => match key.state {
            KeyState::Creating => {
                key.state = if key.has_material() {
                    KeyState::Enabled
                } else {
                    KeyState::PendingImport
                }
            }
            KeyState::Updating => {
                key.state = key.state_before_update.take().unwrap_or(KeyState::Enabled)
            }
            _ => {}
        },
        KeyEvent::KeyDeleted { at, .. } => key.deleted_at = Some(at),
        KeyEvent::KeyMaterialDestroyed { .. } => key.materials_destroyed = true,
        KeyEvent::KeyRotationEnabled {
            rotation_period_days,
            next_rotation_date,
            ..
        } => {
            key.rotation = Some(RotationSchedule {
                period_days: rotation_period_days,
                next_rotation_date,
            })
        }
        KeyEvent::KeyRotationDisabled { .. } => key.rotation = None,
        KeyEvent::KeyMaterialImported {
            material,
            fingerprint,
            expiration_model,
            valid_to,
            pending,
            description,
            ..
        } => {
            let import = PendingMaterial {
                material,
                fingerprint,
                expiration_model,
                valid_to,
                description,
            };
            if pending {
                stage_pending_material(key, import);
            } else {
                apply_imported_material(key, import);
            }
        }
        KeyEvent::ImportedKeyMaterialDeleted { .. } => apply_imported_material_deleted(key),
        KeyEvent::GrantCreated { grant, .. } => {
            key.grants.push(grant);
            key.compiled_grants = super::key::compile_grants(&key.key_id, &key.grants);
        }
        KeyEvent::GrantRetired { grant_id, .. } | KeyEvent::GrantRevoked { grant_id, .. } => {
            key.grants.retain(|g| g.grant_id != grant_id);
            key.compiled_grants = super::key::compile_grants(&key.key_id, &key.grants);
        }
        KeyEvent::KeyMaterialRotated {
            material,
            next_rotation_date,
            ..
        } => apply_rotation(key, material, next_rotation_date),
    }
}

/// NEW_KEY_MATERIAL into a key with material: PENDING_ROTATION until RotateKeyOnDemand; the
/// current material and the key state do not change. A re-import of the same pending version
/// without a description keeps the one given before.
fn stage_pending_material(key: &mut KeySnapshot, mut import: PendingMaterial) {
    if import.description.is_none() {
        import.description = key
            .imported
            .as_ref()
            .and_then(|i| i.pending.as_ref())
            .filter(|p| p.material.version == import.material.version)
            .and_then(|p| p.description.clone());
    }
    if let Some(imported) = key.imported.as_mut() {
        imported.pending = Some(import);
    }
}

/// Imported material for a version of its own (the first import, a re-import, or material for
/// a version rotation already created): present again; current when it is the current version.
fn apply_imported_material(key: &mut KeySnapshot, import: PendingMaterial) {
    let PendingMaterial {
        material,
        fingerprint,
        expiration_model,
        valid_to,
        description,
    } = import;
    let version = material.version;
    if key.material(version).is_none() {
        // A replica may import an earlier version after a later one: keep versions in order.
        key.materials.push(material);
        key.materials.sort_by_key(|m| m.version);
    }
    let current = key.current_material().map(|m| m.version);
    let imported = key.imported.get_or_insert_with(|| ImportedMaterial {
        version,
        fingerprint: fingerprint.clone(),
        present: false,
        expiration_model: expiration_model.clone(),
        valid_to,
        versions: Default::default(),
        pending: None,
    });
    let entry = imported
        .versions
        .entry(version)
        .or_insert_with(|| ImportedVersion {
            fingerprint: fingerprint.clone(),
            present: true,
            description: None,
        });
    entry.present = true;
    if description.is_some() {
        entry.description = description;
    }
    key.materials_destroyed = false;
    if Some(version) == current {
        imported.version = version;
        imported.fingerprint = fingerprint;
        imported.present = true;
        imported.expiration_model = expiration_model;
        imported.valid_to = valid_to;
        if key.state == KeyState::PendingImport {
            key.state = KeyState::Enabled;
        }
    }
}

/// DeleteImportedKeyMaterial: every version is gone (and material pending rotation); the key
/// waits for material again unless it is pending deletion.
fn apply_imported_material_deleted(key: &mut KeySnapshot) {
    if let Some(imported) = key.imported.as_mut() {
        imported.present = false;
        imported.valid_to = None;
        imported.pending = None;
        for v in imported.versions.values_mut() {
            v.present = false;
        }
    }
    if key.state != KeyState::PendingDeletion {
        key.state = KeyState::PendingImport;
    }
}

/// A new material version; for an imported key, its pending material becomes current.
fn apply_rotation(
    key: &mut KeySnapshot,
    material: super::events::MaterialInfo,
    next_rotation_date: Option<DateTime<Utc>>,
) {
    if let Some(imported) = key.imported.as_mut() {
        if let Some(p) = imported
            .pending
            .take_if(|p| p.material.version == material.version)
        {
            imported.version = p.material.version;
            imported.fingerprint = p.fingerprint.clone();
            imported.present = true;
            imported.expiration_model = p.expiration_model;
            imported.valid_to = p.valid_to;
            imported.versions.insert(
                p.material.version,
                ImportedVersion {
                    fingerprint: p.fingerprint,
                    present: true,
                    description: p.description,
                },
            );
        }
    }
    key.materials.push(material);
    if let (Some(schedule), Some(next)) = (key.rotation.as_mut(), next_rotation_date) {
        schedule.next_rotation_date = next;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::{KeyCreated, MaterialInfo};
    use chrono::Utc;

    pub(crate) fn stored(
        seq: i64,
        stream: &str,
        version: i64,
        payload: serde_json::Value,
    ) -> StoredEvent {
        StoredEvent {
            sequence: seq,
            stream: stream.into(),
            version,
            event_type: String::new(),
            payload,
            recorded_at: Utc::now(),
        }
    }

    pub(crate) fn created(seq: i64, id: &str, account: &str) -> StoredEvent {
        let e = KeyEvent::KeyCreated(Box::new(KeyCreated {
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
            primary_region: None,
            custom_key_store_id: None,
            xks_key_id: None,
            material: Some(MaterialInfo {
                version: 1,
                material_id: "00".into(),
                created_at: Utc::now(),
                rotation_type: None,
            }),
            created_at: Utc::now(),
        }));
        stored(
            seq,
            &KeyEvent::stream_for("us-east-1", id),
            1,
            serde_json::to_value(&e).unwrap(),
        )
    }

    fn created_in(seq: i64, id: &str, region: &str, primary_region: &str) -> StoredEvent {
        let mut e = created(seq, id, "1");
        e.stream = KeyEvent::stream_for(region, id);
        e.payload["region"] = region.into();
        e.payload["multi_region"] = true.into();
        e.payload["primary_region"] = primary_region.into();
        if region != primary_region {
            e.payload["material"] = serde_json::Value::Null;
        }
        e
    }

    #[test]
    fn a_multi_region_key_shares_material_and_rotation_but_not_its_state() {
        let id = "mrk-1234abcd12ab34cd56ef1234567890ab";
        let mut m = ReadModel::default();
        m.apply(&created_in(1, id, "us-east-1", "us-east-1"))
            .unwrap();
        m.apply(&created_in(2, id, "eu-west-1", "us-east-1"))
            .unwrap();
        let primary = m.live_key("us-east-1", id).unwrap();
        let replica = m.live_key("eu-west-1", id).unwrap();
        assert!(primary.is_primary() && replica.is_replica());
        assert_eq!(primary.state, KeyState::Enabled);
        assert_eq!(replica.state, KeyState::Creating);
        assert_eq!(
            replica.materials, primary.materials,
            "the replica has the primary's material"
        );
        assert_eq!(replica.stream(), format!("key/eu-west-1/{id}"));
        assert_eq!(m.multi_region_keys(id).count(), 2);
        assert!(m.live_key("ap-south-1", id).is_none());

        let on = |seq: i64, region: &str, version: i64, e: KeyEvent| {
            stored(
                seq,
                &KeyEvent::stream_for(region, id),
                version,
                serde_json::to_value(e).unwrap(),
            )
        };
        let at = Utc::now();
        m.apply(&on(
            3,
            "eu-west-1",
            2,
            KeyEvent::MultiRegionKeySynchronized { schema: 1, at },
        ))
        .unwrap();
        m.apply(&on(
            4,
            "eu-west-1",
            3,
            KeyEvent::KeyDisabled { schema: 1, at },
        ))
        .unwrap();
        let rotated = KeyEvent::KeyMaterialRotated {
            schema: 1,
            material: MaterialInfo {
                version: 2,
                material_id: "02".into(),
                created_at: at,
                rotation_type: Some("ON_DEMAND".into()),
            },
            next_rotation_date: None,
            at,
        };
        m.apply(&on(5, "us-east-1", 2, rotated)).unwrap();
        let primary = m.live_key("us-east-1", id).unwrap();
        let replica = m.live_key("eu-west-1", id).unwrap();
        assert_eq!(
            replica.materials.len(),
            2,
            "rotation of the primary reaches the replica"
        );
        assert_eq!(replica.state, KeyState::Disabled, "states are not shared");
        assert_eq!(primary.state, KeyState::Enabled);
        assert_eq!((primary.stream_version, replica.stream_version), (2, 3));

        let moved = |seq, region, version| {
            on(
                seq,
                region,
                version,
                KeyEvent::PrimaryRegionUpdated {
                    schema: 1,
                    primary_region: "eu-west-1".into(),
                    at,
                },
            )
        };
        m.apply(&moved(6, "us-east-1", 3)).unwrap();
        m.apply(&moved(7, "eu-west-1", 4)).unwrap();
        let (p, r) = (
            m.live_key("us-east-1", id).unwrap(),
            m.live_key("eu-west-1", id).unwrap(),
        );
        assert!(p.is_replica() && r.is_primary());
        assert_eq!((p.state, r.state), (KeyState::Updating, KeyState::Updating));
        m.apply(&on(
            8,
            "us-east-1",
            4,
            KeyEvent::MultiRegionKeySynchronized { schema: 1, at },
        ))
        .unwrap();
        m.apply(&on(
            9,
            "eu-west-1",
            5,
            KeyEvent::MultiRegionKeySynchronized { schema: 1, at },
        ))
        .unwrap();
        let (p, r) = (
            m.live_key("us-east-1", id).unwrap(),
            m.live_key("eu-west-1", id).unwrap(),
        );
        assert_eq!((p.state, r.state), (KeyState::Enabled, KeyState::Disabled));

        // The image holds both Regions' keys and loads into the same model.
        let image = m.to_image().unwrap();
        assert_eq!(ReadModel::from_image(&image).unwrap(), m);
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
    fn policies_compiled_ahead_are_the_ones_the_model_applies() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ahead","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let put = KeyEvent::KeyPolicyPut {
            schema: 1,
            policy_name: "default".into(),
            policy: text.into(),
            at: Utc::now(),
        };
        let events = [
            created(1, "a", "1"),
            stored(
                2,
                &KeyEvent::stream_for("us-east-1", "a"),
                2,
                serde_json::to_value(&put).unwrap(),
            ),
        ];
        let ahead = compile_policies_ahead(&events);
        assert_eq!(
            ahead.len(),
            1,
            "the put's policy (the creation's `{{}}` is no policy and is left to apply)"
        );
        let mut m = ReadModel::default();
        for e in &events {
            m.apply(e).unwrap();
        }
        let applied = m.keys["a"].compiled_policy.clone().expect("compiles");
        assert!(
            ahead.iter().any(|p| Arc::ptr_eq(&p.0, &applied.0)),
            "apply shares the policy compiled ahead instead of compiling again"
        );
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

    #[test]
    fn lifecycle_events_move_the_key_through_its_states() {
        let mut m = ReadModel::default();
        m.apply(&created(1, "k", "1")).unwrap();
        let at = Utc::now();
        let ev =
            |seq: i64, e: KeyEvent| stored(seq, "key/k", seq, serde_json::to_value(e).unwrap());
        m.apply(&ev(2, KeyEvent::KeyDisabled { schema: 1, at }))
            .unwrap();
        assert_eq!(m.key("k").unwrap().state, KeyState::Disabled);
        m.apply(&ev(
            3,
            KeyEvent::KeyDeletionScheduled {
                schema: 1,
                deletion_date: at,
                pending_window_days: 7,
                at,
            },
        ))
        .unwrap();
        assert_eq!(m.key("k").unwrap().state, KeyState::PendingDeletion);
        m.apply(&ev(4, KeyEvent::KeyDeletionCancelled { schema: 1, at }))
            .unwrap();
        let k = m.key("k").unwrap();
        assert_eq!((k.state, k.deletion_date), (KeyState::Disabled, None));
        m.apply(&ev(5, KeyEvent::KeyDeleted { schema: 1, at }))
            .unwrap();
        assert!(m.live_key("us-east-1", "k").is_none());
        assert!(m.key("k").is_some());
        assert_eq!(m.keys_in("1", "us-east-1", None).count(), 0);
        assert_eq!(m.key("k").unwrap().stream_version, 5);
    }

    #[test]
    fn aliases_are_created_retargeted_deleted_and_recreated() {
        let mut m = ReadModel::default();
        let at = Utc::now();
        let stream = AliasEvent::stream_for("1", "us-east-1", "alias/a");
        let ev = |seq: i64, v: i64, e: AliasEvent| {
            stored(seq, &stream, v, serde_json::to_value(e).unwrap())
        };
        let create = |target: &str| AliasEvent::AliasCreated {
            schema: 1,
            account: "1".into(),
            region: "us-east-1".into(),
            name: "alias/a".into(),
            target_key_id: target.into(),
            at,
        };
        m.apply(&ev(1, 1, create("k1"))).unwrap();
        m.apply(&ev(
            2,
            2,
            AliasEvent::AliasRetargeted {
                schema: 1,
                target_key_id: "k2".into(),
                at,
            },
        ))
        .unwrap();
        assert_eq!(
            m.alias("1", "us-east-1", "alias/a").unwrap().target_key_id,
            "k2"
        );
        assert_eq!(
            m.aliases_in("1", "us-east-1", None)
                .filter(|a| a.target_key_id == "k2")
                .count(),
            1
        );
        m.apply(&ev(3, 3, AliasEvent::AliasDeleted { schema: 1, at }))
            .unwrap();
        assert!(m.alias("1", "us-east-1", "alias/a").is_none());
        assert_eq!(m.alias_stream_version(&stream), 3);
        m.apply(&ev(4, 4, create("k3"))).unwrap();
        assert_eq!(
            m.alias("1", "us-east-1", "alias/a").unwrap().target_key_id,
            "k3"
        );
    }
}
