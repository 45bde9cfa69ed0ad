//! The root key: seals key material for the keystore table (AES-256-GCM, the key id and material
//! version bound as associated data), loaded from a file or an environment variable, or
//! generated (0600, directory fsynced) for an empty store. Its id and key-check value (HMAC of
//! fixed labels) name it without revealing it; `root_binding` checks them against the store.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;

use super::secret::SecretBytes;
use super::{random_public, random_secret, CryptoError};

const SEAL_CONTEXT: &[u8] = b"trent-keystore-v1";

/// HMAC labels of the root key's public fingerprints.
const ID_LABEL: &[u8] = b"trent root key id v1";
const CHECK_LABEL: &[u8] = b"trent root key check value v1";

/// The key that seals all key material at rest.
pub struct RootKey {
    key: LessSafeKey,
    /// A short public name of the key (HMAC-derived, hex).
    id: String,
    /// The key-check value the store records at first use (HMAC-derived, hex).
    check_value: String,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    /// A root key from 32 raw bytes.
    pub fn from_bytes(bytes: &SecretBytes) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::RootKey(format!(
                "a root key is 32 bytes, got {}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_slice())
            .map_err(|_| CryptoError::RootKey("invalid key bytes".into()))?;
        let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes.as_slice());
        let fingerprint = |label: &[u8], len: usize| {
            hex::encode(&aws_lc_rs::hmac::sign(&mac, label).as_ref()[..len])
        };
        Ok(Self {
            key: LessSafeKey::new(unbound),
            id: fingerprint(ID_LABEL, 8),
            check_value: fingerprint(CHECK_LABEL, 32),
        })
    }

    /// The key's public id (16 hex digits), for messages and bindings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key-check value: proves which key this is without revealing it.
    pub fn check_value(&self) -> &str {
        &self.check_value
    }

    /// Generate a new root key file (32 random bytes, base64, mode 0600; the directory is
    /// fsynced so the file survives a crash). Refuses to overwrite an existing file.
    pub fn generate(path: &Path) -> Result<Self, CryptoError> {
        let bytes = random_secret(32)?;
        let text = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
        );
        write_private(path, text.as_bytes())
            .map_err(|e| CryptoError::RootKey(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// A root key from its base64 text (the `TRENT_ROOT_KEY` form and the file content).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::RootKey("not valid base64".into()))?;
        Self::from_bytes(&SecretBytes::new(bytes))
    }

    /// Load an existing root key file (never creates one).
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CryptoError::RootKey(format!("{}: {e}", path.display())))?,
        );
        Self::from_base64(&text)
    }

    /// Seal key material of `key_id` version `version`: nonce || ciphertext || tag.
    pub fn seal(
        &self,
        key_id: &str,
        version: i32,
        material: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = random_public(NONCE_LEN)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| CryptoError::Seal)?;
        let mut in_out = material.as_slice().to_vec();
        let sealed = self.key.seal_in_place_append_tag(
            nonce,
            Aad::from(binding(key_id, version)),
            &mut in_out,
        );
        if sealed.is_err() {
            zeroize::Zeroize::zeroize(&mut in_out);
            return Err(CryptoError::Seal);
        }
        let mut out = nonce_bytes;
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Open material sealed by `seal` for the same key id and version.
    pub fn open(
        &self,
        key_id: &str,
        version: i32,
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Open)?;
        let mut buf = SecretBytes::new(body.to_vec());
        let len = self
            .key
            .open_in_place(
                nonce,
                Aad::from(binding(key_id, version)),
                buf.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Open)?
            .len();
        Ok(SecretBytes::new(buf.as_slice()[..len].to_vec()))
    }
}

fn binding(key_id: &str, version: i32) -> Vec<u8> {
    let mut aad = SEAL_CONTEXT.to_vec();
    aad.push(0);
    aad.extend_from_slice(key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    // The new directory entry must be durable too, or a crash could lose the key whose material
    // is already committed.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RootKey {
        RootKey::from_bytes(&SecretBytes::new(vec![7u8; 32])).unwrap()
    }

    #[test]
    fn seal_round_trips_and_binds_key_and_version() {
        let material = SecretBytes::new(vec![42u8; 32]);
        let sealed = key().seal("k1", 1, &material).unwrap();
        assert_eq!(key().open("k1", 1, &sealed).unwrap(), material);
        assert!(key().open("k2", 1, &sealed).is_err());
        assert!(key().open("k1", 2, &sealed).is_err());
        let other = RootKey::from_bytes(&SecretBytes::new(vec![8u8; 32])).unwrap();
        assert!(other.open("k1", 1, &sealed).is_err());
        assert_ne!(other.id(), key().id());
        assert_eq!(key().id().len(), 16);
        assert_ne!(other.check_value(), key().check_value());
    }

    #[test]
    fn generated_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let first = RootKey::generate(&path).unwrap();
        let sealed = first.seal("k", 1, &SecretBytes::new(vec![1; 32])).unwrap();
        let again = RootKey::load(&path).unwrap();
        assert!(again.open("k", 1, &sealed).is_ok());
        assert_eq!(first.id(), again.id());
        assert_eq!(first.check_value(), again.check_value());
        assert!(
            RootKey::generate(&path).is_err(),
            "never overwrites a key file"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn wrong_length_is_refused() {
        assert!(RootKey::from_bytes(&SecretBytes::new(vec![0; 16])).is_err());
        assert!(RootKey::from_base64("not base64!").is_err());
    }
}
