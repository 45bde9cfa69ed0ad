//! Trent's symmetric ciphertext blob, format version 1 (documented in `docs/ciphertext-format.md`):
//!
//! ```text
//! 0      1      2            18                 22          34
//! | 0x54 | 0x01 | key id (16) | material ver (4) | nonce (12) | AES-256-GCM ciphertext || tag (16) |
//! ```
//!
//! The associated data is the 22-byte header followed by the canonical encoding of the encryption
//! context, so the key, the material version and the context are all authenticated.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use uuid::Uuid;

use super::secret::SecretBytes;
use super::{random_public, CryptoError};

/// The first byte of every Trent ciphertext.
pub const MAGIC: u8 = 0x54;
/// The format version this code writes.
pub const FORMAT_VERSION: u8 = 0x01;
const HEADER_LEN: usize = 22;
const TAG_LEN: usize = 16;
/// Bytes a ciphertext adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The readable header of a ciphertext: which key and material version produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextHeader {
    /// The key id.
    pub key_id: Uuid,
    /// The material version.
    pub material_version: u32,
}

/// Why a blob is not a valid ciphertext (all map to `InvalidCiphertextException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiphertextError {
    /// Too short, wrong magic or unknown version.
    #[error("not a ciphertext of this service")]
    Malformed,
    /// Authentication failed: wrong context, altered bytes, or wrong material.
    #[error("ciphertext authentication failed")]
    Authentication,
}

/// The canonical encoding of an encryption context: count, then each (key, value) sorted by key
/// bytes, every field as a 4-byte big-endian length followed by its UTF-8 bytes.
pub fn canonical_context(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        for field in [k, v] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
    }
    out
}

/// Read the header of a blob without decrypting it.
pub fn parse_header(blob: &[u8]) -> Result<CiphertextHeader, CiphertextError> {
    if blob.len() < OVERHEAD || blob[0] != MAGIC || blob[1] != FORMAT_VERSION {
        return Err(CiphertextError::Malformed);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&blob[2..18]);
    let mut ver = [0u8; 4];
    ver.copy_from_slice(&blob[18..22]);
    Ok(CiphertextHeader {
        key_id: Uuid::from_bytes(id),
        material_version: u32::from_be_bytes(ver),
    })
}

fn aead_key(material: &SecretBytes) -> Result<LessSafeKey, CryptoError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, material.as_slice()).map_err(|_| CryptoError::Seal)?;
    Ok(LessSafeKey::new(unbound))
}

fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&canonical_context(context));
    aad
}

/// Encrypt `plaintext` under `material` (32 bytes) of the given key and version.
pub fn encrypt(
    header: CiphertextHeader,
    material: &SecretBytes,
    plaintext: &SecretBytes,
    context: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CryptoError> {
    let mut blob = Vec::with_capacity(plaintext.len() + OVERHEAD);
    blob.push(MAGIC);
    blob.push(FORMAT_VERSION);
    blob.extend_from_slice(header.key_id.as_bytes());
    blob.extend_from_slice(&header.material_version.to_be_bytes());
    let nonce_bytes = random_public(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| CryptoError::Seal)?;
    let mut body = SecretBytes::new(plaintext.as_slice().to_vec());
    let mut sealed = body.as_slice().to_vec();
    aead_key(material)?
        .seal_in_place_append_tag(nonce, Aad::from(aad(&blob, context)), &mut sealed)
        .map_err(|_| CryptoError::Seal)?;
    zeroize::Zeroize::zeroize(body.as_mut_slice());
    blob.extend_from_slice(&nonce_bytes);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Decrypt a blob whose header was parsed with `parse_header`, under the material it names.
pub fn decrypt(
    blob: &[u8],
    material: &SecretBytes,
    context: &BTreeMap<String, String>,
) -> Result<SecretBytes, CiphertextError> {
    parse_header(blob)?;
    let (header, rest) = blob.split_at(HEADER_LEN);
    let (nonce_bytes, body) = rest.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CiphertextError::Malformed)?;
    let key = aead_key(material).map_err(|_| CiphertextError::Authentication)?;
    let mut buf = SecretBytes::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad(header, context)), buf.as_mut_slice())
        .map_err(|_| CiphertextError::Authentication)?
        .len();
    Ok(SecretBytes::new(buf.as_slice()[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn header() -> CiphertextHeader {
        CiphertextHeader {
            key_id: Uuid::from_u128(0x1234),
            material_version: 3,
        }
    }

    #[test]
    fn round_trip_and_header() {
        let m = SecretBytes::new(vec![9; 32]);
        let p = SecretBytes::new(b"hello".to_vec());
        let blob = encrypt(header(), &m, &p, &ctx(&[("a", "1")])).unwrap();
        assert_eq!(blob.len(), 5 + OVERHEAD);
        assert_eq!(parse_header(&blob).unwrap(), header());
        assert_eq!(decrypt(&blob, &m, &ctx(&[("a", "1")])).unwrap(), p);
    }

    #[test]
    fn context_key_material_and_every_byte_are_bound() {
        let m = SecretBytes::new(vec![9; 32]);
        let p = SecretBytes::new(b"hello".to_vec());
        let c = ctx(&[("a", "1")]);
        let blob = encrypt(header(), &m, &p, &c).unwrap();
        assert_eq!(
            decrypt(&blob, &m, &ctx(&[("a", "2")])),
            Err(CiphertextError::Authentication)
        );
        assert_eq!(
            decrypt(&blob, &m, &ctx(&[])),
            Err(CiphertextError::Authentication)
        );
        let other = SecretBytes::new(vec![8; 32]);
        assert_eq!(
            decrypt(&blob, &other, &c),
            Err(CiphertextError::Authentication)
        );
        for i in 2..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 1;
            assert!(
                decrypt(&t, &m, &c).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn canonical_context_is_unambiguous() {
        assert_ne!(
            canonical_context(&ctx(&[("ab", "c")])),
            canonical_context(&ctx(&[("a", "bc")]))
        );
        assert_eq!(canonical_context(&ctx(&[])), vec![0, 0, 0, 0]);
    }

    #[test]
    fn malformed_blobs_are_refused() {
        assert_eq!(parse_header(&[]), Err(CiphertextError::Malformed));
        assert_eq!(parse_header(&[0u8; 64]), Err(CiphertextError::Malformed));
    }
}
