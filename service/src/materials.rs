//! The cache of sealed key material: blobs read from the keystore, kept sealed (they are opened
//! per use by `AppState::open_material`) and forgotten when the material is destroyed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Sealed material by (key id, material version).
type SealedByVersion = HashMap<(String, i32), Arc<Vec<u8>>>;

/// Sealed material, cached after its first read from the keystore; opened (unsealed) per use and
/// zeroized after. Only committed material enters it: it is filled from the store, never by a
/// handler that has not committed yet, and it forgets a key's material when the event that
/// destroys it is applied (by this process's writer or when following other processes).
#[derive(Default)]
pub struct MaterialCache {
    sealed: RwLock<SealedByVersion>,
}

impl MaterialCache {
    /// Remember material read from the keystore.
    pub fn insert(&self, key_id: &str, version: i32, sealed: Vec<u8>) {
        if let Ok(mut m) = self.sealed.write() {
            m.insert((key_id.to_string(), version), Arc::new(sealed));
        }
    }

    /// Keep up with a committed event: material destroyed in the keystore is forgotten here.
    pub fn follow(&self, event: &crate::store::StoredEvent) {
        let destroys = matches!(
            event.event_type.as_str(),
            "KeyMaterialDestroyed" | "ImportedKeyMaterialDeleted"
        );
        // A deleted custom key store's sealed credential goes with it.
        if event.event_type == "CustomKeyStoreDeleted" {
            self.forget(&event.stream);
        }
        if let (true, Some(identity)) = (destroys, event.stream.strip_prefix("key/")) {
            // The material is kept under the key's identity or its bare id (a multi-Region
            // key's, shared by its Regions): forget both.
            self.forget(identity);
            if let Some((_, key_id)) = identity.split_once('/') {
                self.forget(key_id);
            }
        }
    }

    /// Forget everything (the root keys changed: cached blobs may be sealed under a retired key).
    pub fn clear(&self) {
        if let Ok(mut m) = self.sealed.write() {
            m.clear();
        }
    }

    /// Forget every version of a key (after crypto-shredding).
    pub fn forget(&self, key_id: &str) {
        if let Ok(mut m) = self.sealed.write() {
            m.retain(|(k, _), _| k != key_id);
        }
    }

    /// The sealed material of a key version, if cached.
    pub fn get(&self, key_id: &str, version: i32) -> Option<Arc<Vec<u8>>> {
        self.sealed
            .read()
            .ok()
            .and_then(|m| m.get(&(key_id.to_string(), version)).cloned())
    }
}
