//! Trent's symmetric ciphertext blob (documented in `docs/ciphertext-format.md`). Version 2,
//! which this code writes, never uses a key version's material directly: every encryption draws
//! a 32-byte salt and encrypts under a data key derived from the material by HKDF-SHA256 (the
//! header and the salt in its info), so the random-nonce bound of AES-GCM applies per call, not
//! per key. Version 1 (a random nonce directly under the material) stays readable.
//!
//! ```text
//! v2: | 0x54 | 0x02 | key id (16) | material ver (4) | salt (32) | nonce (12) | ciphertext || tag (16) |
//! v3: | 0x54 | 0x03 | mrk id (16)  | material ver (4) | salt (32) | nonce (12) | ciphertext || tag (16) |
//! v1: | 0x54 | 0x01 | key id (16) | material ver (4) | nonce (12) | ciphertext || tag (16) |
//! ```
//!
//! Version 3 is version 2 for a multi-Region key: its 16 id bytes are the 32 hex digits of an
//! `mrk-` id instead of a UUID's bytes (the version byte tells the two id forms apart).
//!
//! The associated data is the 22-byte header followed by the canonical encoding of the encryption
//! context, so the key, the material version and the context are all authenticated.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;
use uuid::Uuid;

use super::secret::SecretBytes;
use super::{fill_public, CryptoError};

/// The first byte of every Trent ciphertext.
pub const MAGIC: u8 = 0x54;
/// The format version this code writes.
pub const FORMAT_VERSION: u8 = 0x02;
/// The format version this code writes for a multi-Region key (`mrk-` id).
pub const FORMAT_VERSION_MRK: u8 = 0x03;
/// The first format version (read, never written).
pub const FORMAT_VERSION_1: u8 = 0x01;
/// The format version of a key in an external key store: a version-2 blob encrypted again by
/// the external key (double encryption).
pub const FORMAT_VERSION_XKS: u8 = 0x04;
/// The prefix of a multi-Region key id.
const MRK_PREFIX: &str = "mrk-";
const HEADER_LEN: usize = 22;
const TAG_LEN: usize = 16;
/// The per-encryption salt of version 2.
const SALT_LEN: usize = 32;
/// The HKDF-Extract salt that turns a key version's material into the pseudo-random key of
/// version 2's per-call data keys.
const V2_EXTRACT_SALT: &[u8] = b"trent ciphertext v2 data key";
/// Bytes a version-2 ciphertext adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + SALT_LEN + NONCE_LEN + TAG_LEN;
/// Bytes a version-1 ciphertext added to its plaintext.
const OVERHEAD_V1: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The readable header of a ciphertext: which key and material version produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiphertextHeader {
    /// The key id as AWS writes it: a hyphenated UUID, or `mrk-` and 32 hex digits.
    pub key_id: String,
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

/// The format version and the 16 id bytes of a key id (None: not a UUID or an `mrk-` id).
fn encode_key_id(key_id: &str) -> Option<(u8, [u8; 16])> {
    match key_id.strip_prefix(MRK_PREFIX) {
        Some(hex_digits) if hex_digits.len() == 32 => {
            let bytes = hex::decode(hex_digits).ok()?;
            Some((FORMAT_VERSION_MRK, bytes.try_into().ok()?))
        }
        Some(_) => None,
        None => Some((FORMAT_VERSION, *Uuid::try_parse(key_id).ok()?.as_bytes())),
    }
}

/// Read the header of a blob without decrypting it.
pub fn parse_header(blob: &[u8]) -> Result<CiphertextHeader, CiphertextError> {
    let minimum = match blob.get(1) {
        Some(&FORMAT_VERSION) | Some(&FORMAT_VERSION_MRK) => OVERHEAD,
        Some(&FORMAT_VERSION_XKS) => HEADER_LEN + 4,
        Some(&FORMAT_VERSION_1) => OVERHEAD_V1,
        _ => return Err(CiphertextError::Malformed),
    };
    if blob.len() < minimum || blob.first() != Some(&MAGIC) {
        return Err(CiphertextError::Malformed);
    }
    let id: [u8; 16] = blob
        .get(2..18)
        .and_then(|b| b.try_into().ok())
        .ok_or(CiphertextError::Malformed)?;
    let ver: [u8; 4] = blob
        .get(18..22)
        .and_then(|b| b.try_into().ok())
        .ok_or(CiphertextError::Malformed)?;
    let key_id = if blob.get(1) == Some(&FORMAT_VERSION_MRK) {
        format!("{MRK_PREFIX}{}", hex::encode(id))
    } else {
        Uuid::from_bytes(id).to_string()
    };
    Ok(CiphertextHeader {
        key_id,
        material_version: u32::from_be_bytes(ver),
    })
}

/// What an external key made of a version-2 blob: the outer layer of a version-4 blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLayer {
    /// The IV the XKS proxy chose.
    pub iv: Vec<u8>,
    /// The AES-GCM tag.
    pub tag: Vec<u8>,
    /// The proxy's ciphertext metadata (empty when it sends none).
    pub metadata: Vec<u8>,
    /// The external key's ciphertext of the inner (version-2) blob.
    pub ciphertext: Vec<u8>,
}

/// The 22-byte header of a version-4 blob for `header`'s key (a UUID id) and material version:
/// also what the external layer authenticates, with the encryption context.
pub fn external_header(header: &CiphertextHeader) -> Result<Vec<u8>, CryptoError> {
    let (version, id) = encode_key_id(&header.key_id).ok_or(CryptoError::Seal)?;
    if version != FORMAT_VERSION {
        return Err(CryptoError::Seal);
    }
    let mut out = vec![MAGIC, FORMAT_VERSION_XKS];
    out.extend_from_slice(&id);
    out.extend_from_slice(&header.material_version.to_be_bytes());
    Ok(out)
}

/// The associated data the external key authenticates: the version-4 header and the
/// encryption context.
pub fn external_aad(external_header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    aad(external_header, context)
}

/// A version-4 blob: the header, then the IV, the tag and the metadata, each length-prefixed,
/// then the external ciphertext.
pub fn wrap_external(
    external_header: &[u8],
    layer: &ExternalLayer,
) -> Result<Vec<u8>, CryptoError> {
    let (Ok(iv_len), Ok(tag_len), Ok(meta_len)) = (
        u8::try_from(layer.iv.len()),
        u8::try_from(layer.tag.len()),
        u16::try_from(layer.metadata.len()),
    ) else {
        return Err(CryptoError::Seal);
    };
    let mut out = external_header.to_vec();
    out.push(iv_len);
    out.extend_from_slice(&layer.iv);
    out.push(tag_len);
    out.extend_from_slice(&layer.tag);
    out.extend_from_slice(&meta_len.to_be_bytes());
    out.extend_from_slice(&layer.metadata);
    out.extend_from_slice(&layer.ciphertext);
    Ok(out)
}

/// The header and outer layer of a version-4 blob.
pub fn unwrap_external(blob: &[u8]) -> Result<(Vec<u8>, ExternalLayer), CiphertextError> {
    let malformed = CiphertextError::Malformed;
    if blob.get(1) != Some(&FORMAT_VERSION_XKS) {
        return Err(malformed);
    }
    parse_header(blob)?;
    let header = blob
        .get(..HEADER_LEN)
        .ok_or(CiphertextError::Malformed)?
        .to_vec();
    let mut rest = blob.get(HEADER_LEN..).ok_or(CiphertextError::Malformed)?;
    let mut take = |n: usize| -> Result<Vec<u8>, CiphertextError> {
        let (head, tail) = (rest.get(..n), rest.get(n..));
        match (head, tail) {
            (Some(h), Some(t)) => {
                rest = t;
                Ok(h.to_vec())
            }
            _ => Err(CiphertextError::Malformed),
        }
    };
    let iv_len = *take(1)?.first().ok_or(CiphertextError::Malformed)? as usize;
    let iv = take(iv_len)?;
    let tag_len = *take(1)?.first().ok_or(CiphertextError::Malformed)? as usize;
    let tag = take(tag_len)?;
    let meta_len = take(2)?;
    let meta_len = u16::from_be_bytes([
        *meta_len.first().ok_or(CiphertextError::Malformed)?,
        *meta_len.get(1).ok_or(CiphertextError::Malformed)?,
    ]) as usize;
    let metadata = take(meta_len)?;
    let ciphertext = rest.to_vec();
    if ciphertext.is_empty() {
        return Err(CiphertextError::Malformed);
    }
    Ok((
        header,
        ExternalLayer {
            iv,
            tag,
            metadata,
            ciphertext,
        },
    ))
}

/// The material itself as an AES-256-GCM key (version 1).
fn material_key(material: &SecretBytes) -> Result<LessSafeKey, CryptoError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, material.as_slice()).map_err(|_| CryptoError::Seal)?;
    Ok(LessSafeKey::new(unbound))
}

/// Version 2's data key for one ciphertext: HKDF-SHA256 over the material, with the header and
/// the ciphertext's salt as info.
fn data_key(
    material: &SecretBytes,
    header: &[u8],
    salt: &[u8],
) -> Result<LessSafeKey, CryptoError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, V2_EXTRACT_SALT).extract(material.as_slice());
    let info = [header, salt];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| CryptoError::Seal)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&canonical_context(context));
    aad
}

/// Encrypt `plaintext` under `material` (32 bytes) of the given key and version (format 2, or 3
/// for a multi-Region key).
pub fn encrypt(
    header: &CiphertextHeader,
    material: &SecretBytes,
    plaintext: &SecretBytes,
    context: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CryptoError> {
    let (version, id) = encode_key_id(&header.key_id).ok_or(CryptoError::Seal)?;
    let mut blob = Vec::with_capacity(plaintext.len() + OVERHEAD);
    blob.push(MAGIC);
    blob.push(version);
    blob.extend_from_slice(&id);
    blob.extend_from_slice(&header.material_version.to_be_bytes());
    // Salt and nonce, public, drawn together (one call into the generator per encryption).
    let mut salt_and_nonce = [0u8; SALT_LEN + NONCE_LEN];
    fill_public(&mut salt_and_nonce)?;
    let (salt, nonce_bytes) = salt_and_nonce.split_at(SALT_LEN);
    // `blob` is the header so far: the data key and the AAD are bound to it.
    let key = data_key(material, &blob, salt)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Seal)?;
    let aad = aad(&blob, context);
    blob.extend_from_slice(&salt_and_nonce);
    // Sealed where it lies: the plaintext is copied once, into the blob, and encrypted there.
    let body = blob.len();
    blob.extend_from_slice(plaintext.as_slice());
    let sealed = blob
        .get_mut(body..)
        .map(|area| key.seal_in_place_separate_tag(nonce, Aad::from(aad), area));
    match sealed {
        Some(Ok(tag)) => {
            blob.extend_from_slice(tag.as_ref());
            Ok(blob)
        }
        _ => {
            zeroize::Zeroize::zeroize(&mut blob);
            Err(CryptoError::Seal)
        }
    }
}

/// Decrypt a blob of either format under the material its header names.
pub fn decrypt(
    blob: &[u8],
    material: &SecretBytes,
    context: &BTreeMap<String, String>,
) -> Result<SecretBytes, CiphertextError> {
    parse_header(blob)?;
    // A version-4 blob is opened by its external key first (`unwrap_external`).
    if blob.get(1) == Some(&FORMAT_VERSION_XKS) {
        return Err(CiphertextError::Malformed);
    }
    let (header, rest) = blob.split_at(HEADER_LEN);
    let (key, rest) = if header.get(1) != Some(&FORMAT_VERSION_1) {
        let (salt, rest) = rest.split_at(SALT_LEN);
        let key = data_key(material, header, salt).map_err(|_| CiphertextError::Authentication)?;
        (key, rest)
    } else {
        let key = material_key(material).map_err(|_| CiphertextError::Authentication)?;
        (key, rest)
    };
    let (nonce_bytes, body) = rest.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CiphertextError::Malformed)?;
    let mut buf = SecretBytes::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad(header, context)), buf.as_mut_slice())
        .map_err(|_| CiphertextError::Authentication)?
        .len();
    Ok(buf.prefix(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random_public;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn header() -> CiphertextHeader {
        CiphertextHeader {
            key_id: Uuid::from_u128(0x1234).to_string(),
            material_version: 3,
        }
    }

    #[test]
    fn version_4_layers_round_trip_and_refuse_truncation() {
        let h = header();
        let outer = external_header(&h).unwrap();
        assert_eq!(outer[1], FORMAT_VERSION_XKS);
        let layer = ExternalLayer {
            iv: vec![1; 12],
            tag: vec![2; 16],
            metadata: vec![3; 5],
            ciphertext: vec![4; 100],
        };
        let blob = wrap_external(&outer, &layer).unwrap();
        assert_eq!(
            parse_header(&blob).unwrap(),
            h,
            "the header names key and version"
        );
        assert_eq!(unwrap_external(&blob).unwrap(), (outer.clone(), layer));
        for cut in [23, 30, 40, blob.len() - 100] {
            assert!(unwrap_external(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mrk = CiphertextHeader {
            key_id: "mrk-1234abcd12ab34cd56ef1234567890ab".into(),
            material_version: 1,
        };
        assert!(
            external_header(&mrk).is_err(),
            "keys in external key stores are single-Region"
        );
    }

    #[test]
    fn multi_region_key_ids_use_version_3_and_round_trip() {
        let m = SecretBytes::new(vec![9; 32]);
        let p = SecretBytes::new(b"hello".to_vec());
        let mrk = CiphertextHeader {
            key_id: "mrk-1234abcd12ab34cd56ef1234567890ab".into(),
            material_version: 2,
        };
        let blob = encrypt(&mrk, &m, &p, &ctx(&[])).unwrap();
        assert_eq!(blob[1], FORMAT_VERSION_MRK);
        assert_eq!(blob.len(), 5 + OVERHEAD);
        assert_eq!(parse_header(&blob).unwrap(), mrk);
        assert_eq!(decrypt(&blob, &m, &ctx(&[])).unwrap(), p);
        // The version byte is authenticated: the same bytes read as a UUID do not open.
        let mut as_uuid = blob.clone();
        as_uuid[1] = FORMAT_VERSION;
        assert!(decrypt(&as_uuid, &m, &ctx(&[])).is_err());
        for bad in [
            "mrk-1234",
            "mrk-1234abcd12ab34cd56ef1234567890zz",
            "not-a-key",
        ] {
            let h = CiphertextHeader {
                key_id: bad.into(),
                material_version: 1,
            };
            assert!(encrypt(&h, &m, &p, &ctx(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_and_header() {
        let m = SecretBytes::new(vec![9; 32]);
        let p = SecretBytes::new(b"hello".to_vec());
        let blob = encrypt(&header(), &m, &p, &ctx(&[("a", "1")])).unwrap();
        assert_eq!(blob.len(), 5 + OVERHEAD);
        assert_eq!(parse_header(&blob).unwrap(), header());
        assert_eq!(decrypt(&blob, &m, &ctx(&[("a", "1")])).unwrap(), p);
    }

    #[test]
    fn context_key_material_and_every_byte_are_bound() {
        let m = SecretBytes::new(vec![9; 32]);
        let p = SecretBytes::new(b"hello".to_vec());
        let c = ctx(&[("a", "1")]);
        let blob = encrypt(&header(), &m, &p, &c).unwrap();
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
        for i in 1..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 1;
            assert!(
                decrypt(&t, &m, &c).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    /// A version-1 blob, as the first format wrote it (random nonce under the material).
    fn encrypt_v1(m: &SecretBytes, p: &[u8], c: &BTreeMap<String, String>) -> Vec<u8> {
        let mut blob = vec![MAGIC, FORMAT_VERSION_1];
        blob.extend_from_slice(Uuid::from_u128(0x1234).as_bytes());
        blob.extend_from_slice(&header().material_version.to_be_bytes());
        let nonce_bytes = random_public(NONCE_LEN).unwrap();
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).unwrap();
        let mut body = p.to_vec();
        material_key(m)
            .unwrap()
            .seal_in_place_append_tag(nonce, Aad::from(aad(&blob, c)), &mut body)
            .unwrap();
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&body);
        blob
    }

    #[test]
    fn version_1_blobs_stay_readable_and_version_2_uses_a_data_key_per_call() {
        let m = SecretBytes::new(vec![9; 32]);
        let c = ctx(&[("a", "1")]);
        let old = encrypt_v1(&m, b"legacy", &c);
        assert_eq!(old.len(), 6 + OVERHEAD_V1);
        assert_eq!(parse_header(&old).unwrap(), header());
        assert_eq!(decrypt(&old, &m, &c).unwrap().as_slice(), b"legacy");
        let p = SecretBytes::new(b"legacy".to_vec());
        let (a, b) = (
            encrypt(&header(), &m, &p, &c).unwrap(),
            encrypt(&header(), &m, &p, &c).unwrap(),
        );
        assert_eq!(a[1], FORMAT_VERSION);
        assert_ne!(a[22..54], b[22..54], "a fresh salt per encryption");
        // A v2 body is not the material's own AES-GCM encryption: relabelled as v1 (without the
        // salt) it does not open under the material.
        let mut relabelled = a[..22].to_vec();
        relabelled[1] = FORMAT_VERSION_1;
        relabelled.extend_from_slice(&a[54..]);
        assert!(decrypt(&relabelled, &m, &c).is_err());
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
