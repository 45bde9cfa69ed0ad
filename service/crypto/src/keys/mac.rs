//! GenerateMac and VerifyMac: HMAC with SHA-224/256/384/512, each key spec with its own hash;
//! verification is constant-time (aws-lc-rs `hmac::verify`).

use aws_lc_rs::hmac;

use super::material::PrivateKeyMaterial;
use super::spec::{KeySpec, KeyUsage, MacAlgorithm};
use super::KeyError;

fn key(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: MacAlgorithm,
) -> Result<hmac::Key, KeyError> {
    if !spec
        .algorithms(KeyUsage::GenerateVerifyMac)
        .mac
        .contains(&algorithm)
    {
        return Err(KeyError::IncompatibleAlgorithm {
            algorithm: algorithm.as_str(),
            spec,
        });
    }
    if material.as_bytes().is_empty() {
        return Err(KeyError::CorruptKeyMaterial { spec });
    }
    let hash = match algorithm {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    Ok(hmac::Key::new(hash, material.as_bytes()))
}

/// GenerateMac: the HMAC tag of `message`.
pub fn hmac_generate(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(hmac::sign(&key(spec, material, algorithm)?, message)
        .as_ref()
        .to_vec())
}

/// VerifyMac: whether `tag` is the HMAC of `message`, compared in constant time; `Ok(false)`
/// is KMSInvalidMacException for the caller.
pub fn hmac_verify(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: MacAlgorithm,
    message: &[u8],
    tag: &[u8],
) -> Result<bool, KeyError> {
    Ok(hmac::verify(&key(spec, material, algorithm)?, message, tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use crate::secret::SecretBytes;

    /// RFC 4231, test case 2 (key "Jefe").
    #[test]
    fn rfc4231_known_answers() {
        let material = PrivateKeyMaterial::from_secret(SecretBytes::new(b"Jefe".to_vec()));
        let message = b"what do ya want for nothing?";
        let rows = [
            (KeySpec::Hmac224, MacAlgorithm::HmacSha224, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
            (KeySpec::Hmac256, MacAlgorithm::HmacSha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (KeySpec::Hmac384, MacAlgorithm::HmacSha384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
            (KeySpec::Hmac512, MacAlgorithm::HmacSha512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        ];
        for (spec, algorithm, expected) in rows {
            let tag = hmac_generate(spec, &material, algorithm, message).unwrap();
            assert_eq!(hex::encode(&tag), expected);
            assert!(hmac_verify(spec, &material, algorithm, message, &tag).unwrap());
        }
    }

    #[test]
    fn altered_tags_messages_and_wrong_algorithms_fail() {
        for spec in [
            KeySpec::Hmac224,
            KeySpec::Hmac256,
            KeySpec::Hmac384,
            KeySpec::Hmac512,
        ] {
            let material = generate(spec).unwrap();
            let algorithm = spec.algorithms(KeyUsage::GenerateVerifyMac).mac[0];
            let tag = hmac_generate(spec, &material, algorithm, b"m").unwrap();
            let mut altered = tag.clone();
            altered[0] ^= 0x80;
            assert!(!hmac_verify(spec, &material, algorithm, b"m", &altered).unwrap());
            assert!(!hmac_verify(spec, &material, algorithm, b"n", &tag).unwrap());
            assert!(!hmac_verify(spec, &material, algorithm, b"m", &tag[..tag.len() - 1]).unwrap());
            for other in MacAlgorithm::ALL.iter().filter(|a| **a != algorithm) {
                let err = hmac_generate(spec, &material, *other, b"m").unwrap_err();
                assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidKeyUsage);
                assert_eq!(
                    err.to_string(),
                    format!("Algorithm {other} is incompatible with key spec {spec}.")
                );
            }
        }
        let rsa = generate(KeySpec::EccNistP256).unwrap();
        assert!(hmac_generate(KeySpec::EccNistP256, &rsa, MacAlgorithm::HmacSha256, b"m").is_err());
    }
}
