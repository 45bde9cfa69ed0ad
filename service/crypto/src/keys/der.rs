//! The little DER this module needs and aws-lc-rs does not provide: the SubjectPublicKeyInfo and
//! PKCS#8 (seed form) of ML-KEM keys, and reading the algorithm of a peer's SPKI so that a key on
//! the wrong curve gets a precise error. Definite-length DER only; no I/O.

/// DER content of the OID id-ecPublicKey (1.2.840.10045.2.1).
pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER content of the OID prime256v1 / secp256r1 (1.2.840.10045.3.1.7).
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER content of the OID secp384r1 (1.3.132.0.34).
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER content of the OID secp521r1 (1.3.132.0.35).
pub const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// DER content of id-alg-ml-kem-{512,768,1024}: 2.16.840.1.101.3.4.4.{1,2,3} (FIPS 203 / IETF
/// LAMPS), indexed 0..3.
pub fn oid_ml_kem(index: u8) -> [u8; 9] {
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, index + 1]
}

/// DER content of id-ml-dsa-{44,65,87}: 2.16.840.1.101.3.4.3.{17,18,19} (FIPS 204 / RFC 9881),
/// indexed 0..3. (aws-lc-rs encodes ML-DSA SPKIs itself; tests check its OIDs with this.)
#[cfg(test)]
pub fn oid_ml_dsa(index: u8) -> [u8; 9] {
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11 + index]
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// Appends one TLV with a definite length.
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend(bytes.iter().skip(skip));
    }
    out.extend_from_slice(content);
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_tlv(&mut out, tag, content);
    out
}

/// `SubjectPublicKeyInfo { AlgorithmIdentifier { oid } (parameters absent), BIT STRING key }`.
pub fn spki_without_parameters(oid: &[u8], key: &[u8]) -> Vec<u8> {
    let algorithm = tlv(TAG_SEQUENCE, &tlv(TAG_OID, oid));
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut body = algorithm;
    push_tlv(&mut body, TAG_BIT_STRING, &bits);
    tlv(TAG_SEQUENCE, &body)
}

/// PKCS#8 v1 of an ML-KEM key in seed form:
/// `SEQUENCE { INTEGER 0, SEQUENCE { oid }, OCTET STRING { [0] IMPLICIT OCTET STRING seed } }`.
/// The caller puts the result in a `SecretBytes`; the intermediate buffers are zeroized here.
pub fn ml_kem_seed_pkcs8(oid: &[u8], seed: &[u8]) -> Vec<u8> {
    use zeroize::Zeroize;
    let mut inner = tlv(TAG_CONTEXT_0_PRIMITIVE, seed);
    let mut private_key = tlv(TAG_OCTET_STRING, &inner);
    inner.zeroize();
    let mut body = tlv(TAG_INTEGER, &[0]);
    push_tlv(&mut body, TAG_SEQUENCE, &tlv(TAG_OID, oid));
    body.extend_from_slice(&private_key);
    private_key.zeroize();
    let out = tlv(TAG_SEQUENCE, &body);
    body.zeroize();
    out
}

/// A reader over DER bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads one TLV with the expected tag and returns its content.
    fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&first, rest) = self.0.split_first()?;
        if first != tag {
            return None;
        }
        let (&len0, rest) = rest.split_first()?;
        let (len, rest) = if len0 < 0x80 {
            (usize::from(len0), rest)
        } else {
            let count = usize::from(len0 & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            let (digits, rest) = (rest.get(..count)?, rest.get(count..)?);
            if digits.first() == Some(&0) {
                return None;
            }
            let len = digits
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None; // not minimal
            }
            (len, rest)
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Some(content)
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a SubjectPublicKeyInfo says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpkiInfo<'a> {
    /// The content of the algorithm OID.
    pub algorithm: &'a [u8],
    /// The content of the parameters OID (the named curve of an EC key), if any.
    pub parameters: Option<&'a [u8]>,
    /// The public key bits (without the unused-bits byte).
    pub key: &'a [u8],
}

/// Parses a DER SubjectPublicKeyInfo, refusing trailing bytes.
pub fn parse_spki(der: &[u8]) -> Option<SpkiInfo<'_>> {
    let mut outer = Reader(der);
    let mut spki = Reader(outer.read(TAG_SEQUENCE)?);
    if !outer.is_empty() {
        return None;
    }
    let mut algorithm = Reader(spki.read(TAG_SEQUENCE)?);
    let oid = algorithm.read(TAG_OID)?;
    let parameters = match algorithm.peek_tag() {
        None => None,
        Some(TAG_OID) => Some(algorithm.read(TAG_OID)?),
        Some(0x05) => {
            algorithm.read(0x05)?; // NULL
            None
        }
        Some(_) => return None,
    };
    if !algorithm.is_empty() {
        return None;
    }
    let bits = spki.read(TAG_BIT_STRING)?;
    if !spki.is_empty() {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some(SpkiInfo {
        algorithm: oid,
        parameters,
        key,
    })
}

/// Reads the 64-byte seed out of an ML-KEM PKCS#8 in seed form made by [`ml_kem_seed_pkcs8`];
/// `None` for any other shape.
#[cfg(test)]
pub fn ml_kem_seed_of(pkcs8: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut outer = Reader(pkcs8);
    let mut body = Reader(outer.read(TAG_SEQUENCE)?);
    if body.read(TAG_INTEGER)? != [0] {
        return None;
    }
    let mut algorithm = Reader(body.read(TAG_SEQUENCE)?);
    let oid = algorithm.read(TAG_OID)?;
    let mut private_key = Reader(body.read(TAG_OCTET_STRING)?);
    let seed = private_key.read(TAG_CONTEXT_0_PRIMITIVE)?;
    Some((oid, seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode_the_registered_arcs() {
        // 2.16.840.1.101.3.4.4.2 and 2.16.840.1.101.3.4.3.18, as Python `cryptography` (OpenSSL
        // 4.0) writes them in SPKIs: 06 09 60 86 48 01 65 03 04 04 02 / ... 03 12.
        assert_eq!(hex::encode(oid_ml_kem(1)), "608648016503040402");
        assert_eq!(hex::encode(oid_ml_dsa(1)), "608648016503040312");
        assert_eq!(hex::encode(oid_ml_kem(0)), "608648016503040401");
        assert_eq!(hex::encode(oid_ml_dsa(2)), "608648016503040313");
    }

    #[test]
    fn long_lengths_round_trip_through_the_reader() {
        for len in [0usize, 1, 127, 128, 255, 256, 1568, 70_000] {
            let key = vec![0xab; len];
            let der = spki_without_parameters(&oid_ml_kem(2), &key);
            let info = parse_spki(&der).unwrap();
            assert_eq!(info.algorithm, oid_ml_kem(2));
            assert_eq!(info.parameters, None);
            assert_eq!(info.key, &key[..]);
        }
    }

    #[test]
    fn malformed_spkis_are_refused() {
        let good = spki_without_parameters(&oid_ml_kem(0), &[1, 2, 3]);
        assert!(parse_spki(&good).is_some());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_spki(&trailing).is_none());
        assert!(parse_spki(&good[..good.len() - 1]).is_none());
        assert!(parse_spki(&[]).is_none());
        assert!(
            parse_spki(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_none(),
            "non-minimal length"
        );
    }

    #[test]
    fn ml_kem_pkcs8_has_the_shape_openssl_writes() {
        let der = ml_kem_seed_pkcs8(&oid_ml_kem(1), &[0x11; 64]);
        // Python `cryptography` (OpenSSL 4.0): 3054020100300b0609608648016503040402044280 40 <seed>
        assert_eq!(
            hex::encode(&der[..24]),
            "3054020100300b060960864801650304040204428040".to_owned() + "1111"
        );
        let (oid, seed) = ml_kem_seed_of(&der).unwrap();
        assert_eq!(oid, oid_ml_kem(1));
        assert_eq!(seed, &[0x11; 64]);
    }
}
