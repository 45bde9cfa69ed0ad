//! The root key: seals key material for the keystore table, STS session tokens and import
//! tokens, loaded from a file or an environment variable, or generated (0600, directory fsynced)
//! for an empty store. Its id and key-check value (HMAC of fixed labels) name it without
//! revealing it; `root_binding` checks them against the store.
//!
//! The root key itself encrypts nothing. Each seal derives a fresh AES-256-GCM key by HKDF-SHA256
//! from it, with the purpose (key material, session token, import token) and a random 32-byte
//! salt as info, so purposes have separate keys and no key sees more than one message; the
//! sealed blob names the root key it was sealed under (format 2, below). Blobs of format 1 (a
//! random nonce directly under the root key) still open.
//!
//! ```text
//! format 2: | 0x02 | root key id (8) | salt (32) | nonce (12) | AES-256-GCM ciphertext || tag |
//! format 1: | nonce (12) | AES-256-GCM ciphertext || tag |       (read only)
//! ```

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;
use base64::Engine;

use super::secret::SecretBytes;
use super::{random_public, random_secret, CryptoError};

const SEAL_CONTEXT: &[u8] = b"trent-keystore-v1";
/// The HKDF-Extract salt of format 2's derived keys.
const V2_EXTRACT_SALT: &[u8] = b"trent root key v2";
/// The first byte of a format-2 sealed blob.
const SEALED_V2: u8 = 0x02;
/// The salt of a format-2 seal.
const SALT_LEN: usize = 32;
/// Bytes before a format-2 ciphertext: format, root key id, salt, nonce.
const V2_HEADER_LEN: usize = 1 + 8 + SALT_LEN + NONCE_LEN;
/// The AES-GCM tag.
const TAG_LEN: usize = 16;

/// What a sealed blob protects; each purpose has keys of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPurpose {
    /// Key material in the keystore table.
    KeyMaterial,
    /// The claims of an STS session token.
    SessionToken,
    /// The wrapping private key inside an import token.
    ImportToken,
    /// Another root key (while a rotation is under way).
    RootKeyWrap,
    /// A read-model snapshot (sealed so that the store cannot alter what start-up trusts).
    ReadModelSnapshot,
}

impl SealPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::KeyMaterial => b"key material",
            Self::SessionToken => b"session token",
            Self::ImportToken => b"import token",
            Self::RootKeyWrap => b"root key",
            Self::ReadModelSnapshot => b"read model snapshot",
        }
    }
}

/// HMAC labels of the root key's public fingerprints.
const ID_LABEL: &[u8] = b"trent root key id v1";
const CHECK_LABEL: &[u8] = b"trent root key check value v1";

/// The key that seals all key material at rest.
pub struct RootKey {
    /// The key itself as AES-256-GCM: only to open format-1 blobs.
    legacy: LessSafeKey,
    /// The HKDF pseudo-random key every format-2 seal's key is expanded from.
    prk: hkdf::Prk,
    /// The id's 8 bytes, as format-2 blobs carry them.
    id_bytes: [u8; 8],
    /// The key's bytes, to seal it under another root key during a rotation.
    bytes: SecretBytes,
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

impl Clone for RootKey {
    fn clone(&self) -> Self {
        // The bytes were valid when this key was made from them.
        Self::from_bytes(&self.bytes).unwrap_or_else(|_| unreachable!())
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
        let fingerprint = |label: &[u8], len: usize| -> Vec<u8> {
            let tag = aws_lc_rs::hmac::sign(&mac, label);
            tag.as_ref().iter().take(len).copied().collect()
        };
        let mut id_bytes = [0u8; 8];
        id_bytes.copy_from_slice(&fingerprint(ID_LABEL, 8));
        Ok(Self {
            legacy: LessSafeKey::new(unbound),
            prk: hkdf::Salt::new(hkdf::HKDF_SHA256, V2_EXTRACT_SALT).extract(bytes.as_slice()),
            id_bytes,
            bytes: SecretBytes::new(bytes.as_slice().to_vec()),
            id: hex::encode(id_bytes),
            check_value: hex::encode(fingerprint(CHECK_LABEL, 32)),
        })
    }

    /// A new random root key (not written anywhere).
    pub fn random() -> Result<Self, CryptoError> {
        Self::from_bytes(&random_secret(32)?)
    }

    /// Write this key to a new file (base64, mode 0600, directory fsynced); refuses to overwrite.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        let text = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(self.bytes.as_slice()),
        );
        write_private(path, text.as_bytes())
            .map_err(|e| CryptoError::RootKey(format!("{}: {e}", path.display())))
    }

    /// Seal `other` under this key (a rotation's wrap, bound to `other`'s id).
    pub fn wrap(&self, other: &RootKey) -> Result<Vec<u8>, CryptoError> {
        self.seal_token(SealPurpose::RootKeyWrap, other.id(), &other.bytes)
    }

    /// Open a wrap made by `wrap` for the key `id`; the result must have that id.
    pub fn unwrap(&self, id: &str, sealed: &[u8]) -> Result<RootKey, CryptoError> {
        let bytes = self.open_token(SealPurpose::RootKeyWrap, id, sealed)?;
        let key = Self::from_bytes(&bytes)?;
        if key.id() != id {
            return Err(CryptoError::Open);
        }
        Ok(key)
    }

    /// The id of the root key a format-2 blob names (None for a format-1 blob).
    pub fn sealed_by(sealed: &[u8]) -> Option<String> {
        if sealed.len() < V2_HEADER_LEN + TAG_LEN || sealed.first() != Some(&SEALED_V2) {
            return None;
        }
        sealed.get(1..9).map(hex::encode)
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
        let key = Self::random()?;
        key.write_new_file(path)?;
        Ok(key)
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

    /// Seal key material of `key_id` version `version` (bound to both).
    pub fn seal(
        &self,
        key_id: &str,
        version: i32,
        material: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_v2(
            SealPurpose::KeyMaterial,
            &binding(key_id, version),
            material,
        )
    }

    /// Open material sealed by `seal` for the same key id and version (either format).
    pub fn open(
        &self,
        key_id: &str,
        version: i32,
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let bound = binding(key_id, version);
        self.open_either(SealPurpose::KeyMaterial, &bound, &bound, sealed)
    }

    /// Seal a token's secret part for `purpose`, bound to `bound_to` (what the token names
    /// in the clear: access key id, key id, expiry).
    pub fn seal_token(
        &self,
        purpose: SealPurpose,
        bound_to: &str,
        plaintext: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_v2(purpose, bound_to.as_bytes(), plaintext)
    }

    /// Open what `seal_token` sealed for the same purpose and binding (or a format-1 token,
    /// which sealed it as material version 0 of `bound_to`).
    pub fn open_token(
        &self,
        purpose: SealPurpose,
        bound_to: &str,
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        self.open_either(purpose, bound_to.as_bytes(), &binding(bound_to, 0), sealed)
    }

    /// The format-2 key of one seal.
    fn derived_key(&self, purpose: SealPurpose, salt: &[u8]) -> Result<LessSafeKey, CryptoError> {
        let info = [V2_EXTRACT_SALT, purpose.label(), salt];
        let okm = self
            .prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| CryptoError::Seal)?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }

    fn v2_aad(purpose: SealPurpose, bound_to: &[u8]) -> Vec<u8> {
        let mut aad = purpose.label().to_vec();
        aad.push(0);
        aad.extend_from_slice(bound_to);
        aad
    }

    fn seal_v2(
        &self,
        purpose: SealPurpose,
        bound_to: &[u8],
        plaintext: &SecretBytes,
    ) -> Result<Vec<u8>, CryptoError> {
        let salt = random_public(SALT_LEN)?;
        let key = self.derived_key(purpose, &salt)?;
        let nonce_bytes = random_public(NONCE_LEN)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| CryptoError::Seal)?;
        let mut body = plaintext.as_slice().to_vec();
        let aad = Self::v2_aad(purpose, bound_to);
        if key
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut body)
            .is_err()
        {
            zeroize::Zeroize::zeroize(&mut body);
            return Err(CryptoError::Seal);
        }
        let mut out = Vec::with_capacity(V2_HEADER_LEN + body.len());
        out.push(SEALED_V2);
        out.extend_from_slice(&self.id_bytes);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Open a format-2 blob of this root key, or else a format-1 blob (a format-1 nonce may
    /// happen to look like a format-2 header; authentication decides).
    fn open_either(
        &self,
        purpose: SealPurpose,
        bound_to: &[u8],
        legacy_aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let v2 = (sealed.len() >= V2_HEADER_LEN + TAG_LEN && sealed.first() == Some(&SEALED_V2))
            .then(|| {
                Some((
                    sealed.get(1..9)?,
                    sealed.get(9..9 + SALT_LEN)?,
                    sealed.get(9 + SALT_LEN..V2_HEADER_LEN)?,
                    sealed.get(V2_HEADER_LEN..)?,
                ))
            })
            .flatten();
        if let Some((_, salt, nonce_bytes, body)) = v2.filter(|(id, ..)| *id == self.id_bytes) {
            let key = self.derived_key(purpose, salt)?;
            let nonce =
                Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Open)?;
            let aad = Self::v2_aad(purpose, bound_to);
            let mut buf = SecretBytes::new(body.to_vec());
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(aad), buf.as_mut_slice()) {
                let len = plain.len();
                return Ok(buf.prefix(len));
            }
        }
        self.open_v1(legacy_aad, sealed)
    }

    /// Open a format-1 blob: nonce || ciphertext || tag directly under the root key.
    fn open_v1(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Open)?;
        let mut buf = SecretBytes::new(body.to_vec());
        let len = self
            .legacy
            .open_in_place(nonce, Aad::from(aad.to_vec()), buf.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        Ok(buf.prefix(len))
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

    /// A format-1 blob, as the first format sealed it (a random nonce under the root key).
    fn seal_v1(root: &RootKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_public(NONCE_LEN).unwrap();
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).unwrap();
        let mut body = plaintext.to_vec();
        root.legacy
            .seal_in_place_append_tag(nonce, Aad::from(aad.to_vec()), &mut body)
            .unwrap();
        let mut out = nonce_bytes;
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn format_2_names_the_root_key_and_format_1_still_opens() {
        let material = SecretBytes::new(vec![42u8; 32]);
        let sealed = key().seal("k1", 1, &material).unwrap();
        assert_eq!(sealed[0], SEALED_V2);
        assert_eq!(hex::encode(&sealed[1..9]), key().id());
        assert_ne!(
            key().seal("k1", 1, &material).unwrap()[9..41],
            sealed[9..41]
        );
        let old = seal_v1(&key(), &binding("k1", 1), material.as_slice());
        assert_eq!(key().open("k1", 1, &old).unwrap(), material);
        assert!(key().open("k1", 2, &old).is_err());
        let old_token = seal_v1(&key(), &binding("AKID|123", 0), b"claims");
        let opened = key().open_token(SealPurpose::SessionToken, "AKID|123", &old_token);
        assert_eq!(opened.unwrap().as_slice(), b"claims");
    }

    #[test]
    fn purposes_have_separate_keys() {
        let secret = SecretBytes::new(b"claims".to_vec());
        let token = key()
            .seal_token(SealPurpose::SessionToken, "bound", &secret)
            .unwrap();
        assert_eq!(
            key()
                .open_token(SealPurpose::SessionToken, "bound", &token)
                .unwrap(),
            secret
        );
        assert!(key()
            .open_token(SealPurpose::ImportToken, "bound", &token)
            .is_err());
        assert!(key()
            .open_token(SealPurpose::SessionToken, "other", &token)
            .is_err());
        // Material sealed for key "bound" version 0 is not a token bound to "bound".
        let material = key().seal("bound", 0, &secret).unwrap();
        assert!(key()
            .open_token(SealPurpose::SessionToken, "bound", &material)
            .is_err());
    }

    #[test]
    fn wrong_length_is_refused() {
        assert!(RootKey::from_bytes(&SecretBytes::new(vec![0; 16])).is_err());
        assert!(RootKey::from_base64("not base64!").is_err());
    }
}
