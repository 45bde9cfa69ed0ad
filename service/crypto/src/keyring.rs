//! The root keys a process can use: one active key that seals everything new, and, while a root
//! key rotation is under way, the others it still opens. A format-2 blob is opened by the key it
//! names; a format-1 blob (which names none) by whichever key opens it. The ring can be replaced
//! at run time when a rotation starts or ends (`root_binding::load_ring`), so replicas pick up a
//! new root key without a restart.

use std::sync::{Arc, RwLock};

use super::root_key::{RootKey, SealPurpose};
use super::secret::SecretBytes;
use super::CryptoError;

/// The root keys in use, the active one first.
pub struct RootKeyring {
    keys: RwLock<Vec<Arc<RootKey>>>,
}

impl std::fmt::Debug for RootKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKeyring({:?})", self.ids())
    }
}

impl RootKeyring {
    /// A ring of one key.
    pub fn single(key: RootKey) -> Self {
        Self {
            keys: RwLock::new(vec![Arc::new(key)]),
        }
    }

    /// A ring whose first key is the active one (None when `keys` is empty).
    pub fn new(keys: Vec<RootKey>) -> Option<Self> {
        (!keys.is_empty()).then(|| Self {
            keys: RwLock::new(keys.into_iter().map(Arc::new).collect()),
        })
    }

    /// Replace the ring's keys (the first is the active one); false if `keys` is empty or the
    /// ids are the ones already held.
    pub fn replace(&self, keys: Vec<RootKey>) -> bool {
        if keys.is_empty() {
            return false;
        }
        let ids: Vec<String> = keys.iter().map(|k| k.id().to_string()).collect();
        if ids == self.ids() {
            return false;
        }
        match self.keys.write() {
            Ok(mut held) => {
                *held = keys.into_iter().map(Arc::new).collect();
                true
            }
            Err(_) => false,
        }
    }

    /// The ids of the keys, the active one first.
    pub fn ids(&self) -> Vec<String> {
        self.keys
            .read()
            .map(|k| k.iter().map(|k| k.id().to_string()).collect())
            .unwrap_or_default()
    }

    /// The active key (the one new seals use).
    pub fn active(&self) -> Result<Arc<RootKey>, CryptoError> {
        self.keys
            .read()
            .ok()
            .and_then(|k| k.first().cloned())
            .ok_or(CryptoError::Seal)
    }

    /// Every key held, the active one first.
    pub fn all(&self) -> Vec<Arc<RootKey>> {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// The keys that may open `sealed`: the one it names, or (format 1) all of them.
    fn candidates(&self, sealed: &[u8]) -> Vec<Arc<RootKey>> {
        let all = self.all();
        match RootKey::sealed_by(sealed) {
            Some(id) => {
                let named: Vec<_> = all.iter().filter(|k| k.id() == id).cloned().collect();
                // A format-1 nonce can look like a format-2 header naming no key of ours.
                if named.is_empty() {
                    all
                } else {
                    named
                }
            }
            None => all,
        }
    }

    /// Seal key material with the active key.
    pub fn seal(
        &self,
        key_id: &str,
        version: i32,
        material: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        self.active()?.seal(key_id, version, material)
    }

    /// Open sealed key material with the key that sealed it.
    pub fn open(
        &self,
        key_id: &str,
        version: i32,
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        self.candidates(sealed)
            .iter()
            .find_map(|k| k.open(key_id, version, sealed).ok())
            .ok_or(CryptoError::Open)
    }

    /// Seal a token's secret with the active key.
    pub fn seal_token(
        &self,
        purpose: SealPurpose,
        bound_to: &str,
        plaintext: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        self.active()?.seal_token(purpose, bound_to, plaintext)
    }

    /// Open a token's secret with the key that sealed it.
    pub fn open_token(
        &self,
        purpose: SealPurpose,
        bound_to: &str,
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        self.candidates(sealed)
            .iter()
            .find_map(|k| k.open_token(purpose, bound_to, sealed).ok())
            .ok_or(CryptoError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RootKey {
        RootKey::from_bytes(&SecretBytes::new(vec![byte; 32])).unwrap()
    }

    #[test]
    fn the_active_key_seals_and_every_key_opens_its_own() {
        let material = SecretBytes::new(vec![5; 32]);
        let old = RootKeyring::single(key(1));
        let sealed_old = old.seal("k", 1, &material).unwrap();
        let ring = RootKeyring::new(vec![key(2), key(1)]).unwrap();
        let sealed_new = ring.seal("k", 1, &material).unwrap();
        assert_eq!(RootKey::sealed_by(&sealed_new).unwrap(), key(2).id());
        assert_eq!(ring.open("k", 1, &sealed_old).unwrap(), material);
        assert_eq!(ring.open("k", 1, &sealed_new).unwrap(), material);
        assert!(old.open("k", 1, &sealed_new).is_err());
        assert!(ring.replace(vec![key(2)]));
        assert!(!ring.replace(vec![key(2)]), "same ids: no change");
        assert!(
            ring.open("k", 1, &sealed_old).is_err(),
            "a retired key opens nothing"
        );
    }

    #[test]
    fn wraps_carry_a_root_key_to_holders_of_another() {
        let (a, b) = (key(1), key(2));
        let wrapped = a.wrap(&b).unwrap();
        assert_eq!(a.unwrap(b.id(), &wrapped).unwrap().id(), b.id());
        assert!(b.unwrap(b.id(), &wrapped).is_err());
        assert!(
            a.unwrap(a.id(), &wrapped).is_err(),
            "bound to the wrapped key's id"
        );
    }
}
