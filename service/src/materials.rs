//! The cache of key material: read from the keystore and opened under the root key once, then
//! kept opened (zeroized when forgotten) and forgotten when the material is destroyed.
//!
//! Opening per use (HKDF and AES-GCM under the root key) was about a tenth of an Encrypt's
//! instructions. Keeping the material opened exposes nothing the process did not already hold:
//! the root keys that open every blob of the store live in the same memory.

use std::collections::HashMap;
use std::sync::RwLock;

use trent_crypto::secret::SecretBytes;

/// Opened material by key id, then material version.
type OpenedByKey = HashMap<String, HashMap<i32, SecretBytes>>;

/// Key material, cached after its first read from the keystore and its first opening; every use
/// takes a copy that is zeroized after it. Only committed material enters it: it is filled from
/// the store, never by a handler that has not committed yet, and it forgets a key's material when
/// the event that destroys it is applied (by this process's writer or when following other
/// processes).
#[derive(Default)]
pub struct MaterialCache {
    opened: RwLock<OpenedByKey>,
}

impl MaterialCache {
    /// Remember material read from the keystore and opened.
    pub fn insert(&self, key_id: &str, version: i32, opened: SecretBytes) {
        if let Ok(mut m) = self.opened.write() {
            m.entry(key_id.to_string())
                .or_default()
                .insert(version, opened);
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

    /// Forget everything (the root keys changed: the store is read again under the new ones).
    pub fn clear(&self) {
        if let Ok(mut m) = self.opened.write() {
            m.clear();
        }
    }

    /// Forget every version of a key (after crypto-shredding).
    pub fn forget(&self, key_id: &str) {
        if let Ok(mut m) = self.opened.write() {
            m.remove(key_id);
        }
    }

    /// A copy of the opened material of a key version, if cached.
    pub fn get(&self, key_id: &str, version: i32) -> Option<SecretBytes> {
        self.opened
            .read()
            .ok()
            .and_then(|m| m.get(key_id).and_then(|v| v.get(&version)).cloned())
    }
}
