//! RSA Encrypt and Decrypt with RSAES-OAEP (SHA-1 or SHA-256, MGF1 with the same hash, no
//! label), and AWS's plaintext limit per key size and algorithm: k - 2 * hLen - 2 bytes.

use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};

use super::material::{rsa_key_size, PrivateKeyMaterial};
use super::spec::{EncryptionAlgorithm, KeySpec, KeyUsage};
use super::KeyError;
use crate::secret::SecretBytes;
use crate::CryptoError;

/// The aws-lc-rs OAEP algorithm and hash length of an RSA encryption algorithm, after checking
/// that the key spec allows it.
fn oaep(
    spec: KeySpec,
    algorithm: EncryptionAlgorithm,
) -> Result<(&'static OaepAlgorithm, usize, usize), KeyError> {
    let allowed = spec.algorithms(KeyUsage::EncryptDecrypt).encryption;
    let (oaep, hash_len) = match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 if allowed.contains(&algorithm) => {
            (&OAEP_SHA1_MGF1SHA1, 20)
        }
        EncryptionAlgorithm::RsaesOaepSha256 if allowed.contains(&algorithm) => {
            (&OAEP_SHA256_MGF1SHA256, 32)
        }
        _ => {
            return Err(KeyError::IncompatibleAlgorithm {
                algorithm: algorithm.as_str(),
                spec,
            })
        }
    };
    let (_, bits) = rsa_key_size(spec).ok_or(KeyError::IncompatibleAlgorithm {
        algorithm: algorithm.as_str(),
        spec,
    })?;
    Ok((oaep, hash_len, bits / 8))
}

/// The largest plaintext Encrypt takes for this RSA key spec and algorithm (RSA_2048 with
/// RSAES_OAEP_SHA_1: 214 bytes; with RSAES_OAEP_SHA_256: 190 bytes).
pub fn rsa_max_plaintext_len(
    spec: KeySpec,
    algorithm: EncryptionAlgorithm,
) -> Result<usize, KeyError> {
    let (_, hash_len, modulus_len) = oaep(spec, algorithm)?;
    Ok(modulus_len - 2 * hash_len - 2)
}

fn load(spec: KeySpec, material: &PrivateKeyMaterial) -> Result<PrivateDecryptingKey, KeyError> {
    if !spec.is_offered() {
        return Err(KeyError::UnsupportedKeySpec(spec));
    }
    let key = PrivateDecryptingKey::from_pkcs8(material.as_bytes())
        .map_err(|_| KeyError::CorruptKeyMaterial { spec })?;
    match rsa_key_size(spec) {
        Some((_, bits)) if key.key_size_bits() == bits => Ok(key),
        _ => Err(KeyError::CorruptKeyMaterial { spec }),
    }
}

/// Encrypt with an RSA key: the OAEP ciphertext (as long as the modulus) of `plaintext`.
pub fn rsa_encrypt(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let (oaep, _, _) = oaep(spec, algorithm)?;
    let max = rsa_max_plaintext_len(spec, algorithm)?;
    if plaintext.len() > max {
        return Err(KeyError::PlaintextTooLong {
            algorithm,
            spec,
            max,
        });
    }
    let failed = |_| KeyError::Crypto(CryptoError::Seal);
    let key = OaepPublicEncryptingKey::new(load(spec, material)?.public_key()).map_err(failed)?;
    let mut ciphertext = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(oaep, plaintext, &mut ciphertext, None)
        .map_err(failed)?
        .len();
    ciphertext.truncate(len);
    Ok(ciphertext)
}

/// Decrypt with an RSA key; a ciphertext that does not decrypt is `InvalidCiphertext`.
pub fn rsa_decrypt(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, KeyError> {
    let (oaep, _, modulus_len) = oaep(spec, algorithm)?;
    if ciphertext.len() != modulus_len {
        return Err(KeyError::InvalidCiphertext);
    }
    let key = OaepPrivateDecryptingKey::new(load(spec, material)?)
        .map_err(|_| KeyError::Crypto(CryptoError::Open))?;
    let mut buffer = SecretBytes::zeroed(key.min_output_size());
    let plaintext = key
        .decrypt(oaep, ciphertext, buffer.as_mut_slice(), None)
        .map_err(|_| KeyError::InvalidCiphertext)?;
    Ok(SecretBytes::new(plaintext.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use EncryptionAlgorithm::*;

    #[test]
    fn aws_plaintext_limits() {
        let rows = [
            (KeySpec::Rsa2048, RsaesOaepSha1, 214),
            (KeySpec::Rsa2048, RsaesOaepSha256, 190),
            (KeySpec::Rsa3072, RsaesOaepSha1, 342),
            (KeySpec::Rsa3072, RsaesOaepSha256, 318),
            (KeySpec::Rsa4096, RsaesOaepSha1, 470),
            (KeySpec::Rsa4096, RsaesOaepSha256, 446),
        ];
        for (spec, algorithm, max) in rows {
            assert_eq!(
                rsa_max_plaintext_len(spec, algorithm).unwrap(),
                max,
                "{spec} {algorithm}"
            );
        }
    }

    #[test]
    fn round_trips_at_the_limit_and_refuses_one_byte_more() {
        for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
            let material = generate(spec).unwrap();
            for algorithm in [RsaesOaepSha1, RsaesOaepSha256] {
                let max = rsa_max_plaintext_len(spec, algorithm).unwrap();
                for len in [0, 1, max] {
                    let plaintext = vec![0x5a; len];
                    let ciphertext = rsa_encrypt(spec, &material, algorithm, &plaintext).unwrap();
                    assert_eq!(ciphertext.len(), rsa_key_size(spec).unwrap().1 / 8);
                    let decrypted = rsa_decrypt(spec, &material, algorithm, &ciphertext).unwrap();
                    assert_eq!(decrypted.as_slice(), &plaintext[..]);
                }
                let err = rsa_encrypt(spec, &material, algorithm, &vec![0; max + 1]).unwrap_err();
                assert_eq!(err.kind(), crate::keys::KeyErrorKind::Validation);
                assert_eq!(
                    err.to_string(),
                    format!("Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {max} bytes.")
                );
            }
        }
    }

    #[test]
    fn wrong_algorithm_key_or_ciphertext_is_refused() {
        let material = generate(KeySpec::Rsa2048).unwrap();
        let other = generate(KeySpec::Rsa2048).unwrap();
        let ciphertext =
            rsa_encrypt(KeySpec::Rsa2048, &material, RsaesOaepSha256, b"secret").unwrap();
        for (key, algorithm, ciphertext) in [
            (&other, RsaesOaepSha256, ciphertext.clone()),
            (&material, RsaesOaepSha1, ciphertext.clone()),
            (&material, RsaesOaepSha256, ciphertext[1..].to_vec()),
            (&material, RsaesOaepSha256, vec![0; 256]),
        ] {
            let err = rsa_decrypt(KeySpec::Rsa2048, key, algorithm, &ciphertext).unwrap_err();
            assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidCiphertext);
        }
        let err = rsa_encrypt(KeySpec::Rsa2048, &material, SymmetricDefault, b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
        );
        let p256 = generate(KeySpec::EccNistP256).unwrap();
        let err = rsa_encrypt(KeySpec::EccNistP256, &p256, RsaesOaepSha1, b"x").unwrap_err();
        assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidKeyUsage);
    }
}
