//! Encapsulate and Decapsulate with ML-KEM-512/768/1024 (FIPS 203). Encapsulation takes the
//! key's DER SubjectPublicKeyInfo; the shared secret is 32 bytes.

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey};

use super::der;
use super::material::{ml_kem_algorithm, ml_kem_index, LoadedKey, PrivateKeyMaterial};
use super::spec::{EncapsulationAlgorithm, KeySpec, KeyUsage};
use super::KeyError;
use crate::secret::SecretBytes;
use crate::CryptoError;

/// The result of Encapsulate.
#[derive(Debug)]
pub struct Encapsulated {
    /// `SharedSecretCiphertextBlob`: 768, 1088 or 1568 bytes.
    pub ciphertext: Vec<u8>,
    /// `SharedSecret`: 32 bytes.
    pub shared_secret: SecretBytes,
}

fn index(spec: KeySpec, algorithm: EncapsulationAlgorithm) -> Result<u8, KeyError> {
    let allowed = spec
        .algorithms(KeyUsage::EncapsulateDecapsulate)
        .encapsulation
        .contains(&algorithm);
    ml_kem_index(spec)
        .filter(|_| allowed)
        .ok_or(KeyError::IncompatibleAlgorithm {
            algorithm: algorithm.as_str(),
            spec,
        })
}

/// The ciphertext length of an ML-KEM parameter-set index (FIPS 203, table 3).
fn ciphertext_len(index: u8) -> usize {
    match index {
        0 => 768,
        1 => 1088,
        _ => 1568,
    }
}

/// Encapsulate: a fresh shared secret and its ciphertext under the public key `public_der`
/// (DER SPKI, as `public_key_der` returns it).
pub fn encapsulate(
    spec: KeySpec,
    algorithm: EncapsulationAlgorithm,
    public_der: &[u8],
) -> Result<Encapsulated, KeyError> {
    let index = index(spec, algorithm)?;
    let info = der::parse_spki(public_der).ok_or(KeyError::InvalidPublicKey { spec })?;
    if info.algorithm != der::oid_ml_kem(index) || info.parameters.is_some() {
        return Err(KeyError::InvalidPublicKey { spec });
    }
    let key = EncapsulationKey::new(ml_kem_algorithm(index), info.key)
        .map_err(|_| KeyError::InvalidPublicKey { spec })?;
    let (ciphertext, shared_secret) = key
        .encapsulate()
        .map_err(|_| KeyError::Crypto(CryptoError::Seal))?;
    Ok(Encapsulated {
        ciphertext: ciphertext.as_ref().to_vec(),
        shared_secret: SecretBytes::new(shared_secret.as_ref().to_vec()),
    })
}

/// Decapsulate: the shared secret in `ciphertext`. A ciphertext of the wrong length is
/// `InvalidCiphertext`; a well-formed but foreign one yields an unrelated secret (ML-KEM's
/// implicit rejection), as in AWS.
pub fn decapsulate(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: EncapsulationAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, KeyError> {
    let index = index(spec, algorithm)?;
    if ciphertext.len() != ciphertext_len(index) {
        return Err(KeyError::InvalidCiphertext);
    }
    let LoadedKey::MlKem(private_key, _, _) = LoadedKey::load(spec, material)? else {
        return Err(KeyError::CorruptKeyMaterial { spec });
    };
    let key = DecapsulationKey::new(ml_kem_algorithm(index), private_key.as_slice())
        .map_err(|_| KeyError::CorruptKeyMaterial { spec })?;
    let secret = key
        .decapsulate(Ciphertext::from(ciphertext))
        .map_err(|_| KeyError::InvalidCiphertext)?;
    Ok(SecretBytes::new(secret.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, public_key_der};
    use EncapsulationAlgorithm::MlKem;

    #[test]
    fn round_trip_for_every_parameter_set() {
        for (spec, ct_len) in [
            (KeySpec::MlKem512, 768),
            (KeySpec::MlKem768, 1088),
            (KeySpec::MlKem1024, 1568),
        ] {
            let material = generate(spec).unwrap();
            let public = public_key_der(spec, &material).unwrap();
            let sent = encapsulate(spec, MlKem, &public).unwrap();
            assert_eq!(sent.ciphertext.len(), ct_len);
            assert_eq!(sent.shared_secret.len(), 32);
            let received = decapsulate(spec, &material, MlKem, &sent.ciphertext).unwrap();
            assert_eq!(received, sent.shared_secret, "{spec}");
            let again = encapsulate(spec, MlKem, &public).unwrap();
            assert_ne!(again.shared_secret, sent.shared_secret);
            let mut altered = sent.ciphertext.clone();
            altered[0] ^= 1;
            let rejected = decapsulate(spec, &material, MlKem, &altered).unwrap();
            assert_ne!(rejected, sent.shared_secret, "implicit rejection");
            let err = decapsulate(spec, &material, MlKem, &sent.ciphertext[1..]).unwrap_err();
            assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidCiphertext);
        }
    }

    #[test]
    fn public_keys_of_other_parameter_sets_or_kinds_are_refused() {
        let k512 =
            public_key_der(KeySpec::MlKem512, &generate(KeySpec::MlKem512).unwrap()).unwrap();
        let p256 = public_key_der(
            KeySpec::EccNistP256,
            &generate(KeySpec::EccNistP256).unwrap(),
        )
        .unwrap();
        for peer in [&k512[..], &p256[..], &k512[..100], b""] {
            let err = encapsulate(KeySpec::MlKem768, MlKem, peer).unwrap_err();
            assert_eq!(err.kind(), crate::keys::KeyErrorKind::Validation);
        }
        let err = encapsulate(KeySpec::EccNistP256, MlKem, &p256).unwrap_err();
        assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidKeyUsage);
    }
}
