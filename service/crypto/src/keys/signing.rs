//! Sign and Verify for RSA (PSS and PKCS#1 v1.5), ECDSA (DER signatures), Ed25519 and Ed25519ph,
//! and ML-DSA, with AWS's message types: RAW (the message), DIGEST (the message's hash, signed as
//! a pre-hashed message, so the signature verifies as one over the message; for Ed25519ph AWS
//! hashes the digest once more) and EXTERNAL_MU (ML-DSA's 64-byte mu).

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaEncoding, UnparsedPublicKey, VerificationAlgorithm};

use super::ffi;
use super::material::{ed25519_seed, LoadedKey, PrivateKeyMaterial};
use super::spec::{validate_signing_input, KeySpec, MessageType, SigningAlgorithm};
use super::KeyError;
use crate::CryptoError;

/// The aws-lc-rs RSA padding, verification parameters and hash of an RSA signing algorithm.
fn rsa_scheme(
    algorithm: SigningAlgorithm,
) -> (
    &'static dyn RsaEncoding,
    &'static signature::RsaParameters,
    &'static digest::Algorithm,
) {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 => (
            &signature::RSA_PSS_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
            &digest::SHA256,
        ),
        RsassaPssSha384 => (
            &signature::RSA_PSS_SHA384,
            &signature::RSA_PSS_2048_8192_SHA384,
            &digest::SHA384,
        ),
        RsassaPssSha512 => (
            &signature::RSA_PSS_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
            &digest::SHA512,
        ),
        RsassaPkcs1V15Sha256 => (
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &digest::SHA256,
        ),
        RsassaPkcs1V15Sha384 => (
            &signature::RSA_PKCS1_SHA384,
            &signature::RSA_PKCS1_2048_8192_SHA384,
            &digest::SHA384,
        ),
        _ => (
            &signature::RSA_PKCS1_SHA512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
            &digest::SHA512,
        ),
    }
}

/// The aws-lc-rs ECDSA verification algorithm (DER signatures) and hash of an ECDSA spec.
fn ecdsa_verification(
    spec: KeySpec,
) -> (
    &'static signature::EcdsaVerificationAlgorithm,
    &'static digest::Algorithm,
) {
    match spec {
        KeySpec::EccNistP384 => (&signature::ECDSA_P384_SHA384_ASN1, &digest::SHA384),
        KeySpec::EccNistP521 => (&signature::ECDSA_P521_SHA512_ASN1, &digest::SHA512),
        KeySpec::EccSecgP256k1 => (&signature::ECDSA_P256K1_SHA256_ASN1, &digest::SHA256),
        _ => (&signature::ECDSA_P256_SHA256_ASN1, &digest::SHA256),
    }
}

/// The aws-lc-rs ML-DSA verification algorithm of a parameter-set index.
fn ml_dsa_verification(index: u8) -> &'static signature::PqdsaVerificationAlgorithm {
    match index {
        0 => &signature::ML_DSA_44,
        1 => &signature::ML_DSA_65,
        _ => &signature::ML_DSA_87,
    }
}

fn failure<E>(_: E) -> KeyError {
    KeyError::Crypto(CryptoError::Seal)
}

/// Imports a digest given by the caller; its length was checked by `validate_signing_input`.
fn imported_digest(
    message: &[u8],
    algorithm: &'static digest::Algorithm,
) -> Result<Digest, KeyError> {
    Digest::import_less_safe(message, algorithm).map_err(failure)
}

/// Sign: the signature of `message` (read as `message_type`) with `algorithm`, as AWS returns it
/// (DER for ECDSA, raw for the others).
pub fn sign(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, KeyError> {
    validate_signing_input(spec, algorithm, message_type, message)?;
    let rng = SystemRandom::new();
    match LoadedKey::load(spec, material)? {
        LoadedKey::Rsa(key) => {
            let (encoding, _, hash) = rsa_scheme(algorithm);
            let mut signature = vec![0u8; key.public_modulus_len()];
            match message_type {
                MessageType::Digest => key
                    .sign_digest(encoding, &imported_digest(message, hash)?, &mut signature)
                    .map_err(failure)?,
                _ => key
                    .sign(encoding, &rng, message, &mut signature)
                    .map_err(failure)?,
            }
            Ok(signature)
        }
        LoadedKey::Ecdsa(key) => {
            let (_, hash) = ecdsa_verification(spec);
            let signature = match message_type {
                MessageType::Digest => key
                    .sign_digest(&imported_digest(message, hash)?)
                    .map_err(failure)?,
                _ => key.sign(&rng, message).map_err(failure)?,
            };
            Ok(signature.as_ref().to_vec())
        }
        LoadedKey::Ed25519(key) => match algorithm {
            SigningAlgorithm::Ed25519PhSha512 => {
                let seed = ed25519_seed(&key)?;
                let public_key: &[u8; 32] =
                    key.public_key().as_ref().try_into().map_err(failure)?;
                let signature = ffi::ed25519ph_sign(&seed, public_key, message)
                    .ok_or(KeyError::Crypto(CryptoError::Seal))?;
                Ok(signature.to_vec())
            }
            _ => Ok(key.sign(message).as_ref().to_vec()),
        },
        LoadedKey::MlDsa(key, index) => match message_type {
            MessageType::ExternalMu => {
                ffi::ml_dsa_sign_mu(material.as_bytes(), ffi::ml_dsa_nid(index), message)
                    .ok_or(KeyError::Crypto(CryptoError::Seal))
            }
            _ => {
                let mut signature = vec![0u8; key.algorithm().signature_len()];
                let len = key.sign(message, &mut signature).map_err(failure)?;
                signature.truncate(len);
                Ok(signature)
            }
        },
        LoadedKey::MlKem(..) | LoadedKey::Symmetric => Err(KeyError::IncompatibleAlgorithm {
            algorithm: algorithm.as_str(),
            spec,
        }),
    }
}

/// Verify: whether `signature` is a valid signature of `message` (read as `message_type`) with
/// `algorithm`. Invalid input (wrong algorithm, digest length, ...) is an error; a signature
/// that does not verify is `Ok(false)` (KMSInvalidSignatureException for the caller).
pub fn verify(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, KeyError> {
    validate_signing_input(spec, algorithm, message_type, message)?;
    let digest_of = |hash| imported_digest(message, hash);
    let valid = match LoadedKey::load(spec, material)? {
        LoadedKey::Rsa(key) => {
            let (_, parameters, hash) = rsa_scheme(algorithm);
            check(
                parameters,
                key.public_key().as_ref(),
                message_type,
                digest_of(hash),
                message,
                signature,
            )
        }
        LoadedKey::Ecdsa(key) => {
            let (parameters, hash) = ecdsa_verification(spec);
            check(
                parameters,
                key.public_key().as_ref(),
                message_type,
                digest_of(hash),
                message,
                signature,
            )
        }
        LoadedKey::Ed25519(key) => {
            let public_key: &[u8; 32] = key.public_key().as_ref().try_into().map_err(failure)?;
            match algorithm {
                SigningAlgorithm::Ed25519PhSha512 => {
                    ffi::ed25519ph_verify(public_key, message, signature)
                }
                _ => UnparsedPublicKey::new(&signature::ED25519, public_key)
                    .verify(message, signature)
                    .is_ok(),
            }
        }
        LoadedKey::MlDsa(key, index) => match message_type {
            MessageType::ExternalMu => ffi::ml_dsa_verify_mu(
                ffi::ml_dsa_nid(index),
                key.public_key().as_ref(),
                message,
                signature,
            ),
            _ => UnparsedPublicKey::new(ml_dsa_verification(index), key.public_key().as_ref())
                .verify(message, signature)
                .is_ok(),
        },
        LoadedKey::MlKem(..) | LoadedKey::Symmetric => {
            return Err(KeyError::IncompatibleAlgorithm {
                algorithm: algorithm.as_str(),
                spec,
            })
        }
    };
    Ok(valid)
}

/// Verifies with aws-lc-rs, over the message or over the imported digest.
fn check(
    algorithm: &'static dyn VerificationAlgorithm,
    public_key: &[u8],
    message_type: MessageType,
    digest: Result<Digest, KeyError>,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let key = UnparsedPublicKey::new(algorithm, public_key);
    match message_type {
        MessageType::Digest => digest.is_ok_and(|d| key.verify_digest(&d, signature).is_ok()),
        _ => key.verify(message, signature).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use SigningAlgorithm as S;

    fn hash(algorithm: S, message: &[u8]) -> Vec<u8> {
        let hash = match algorithm.digest_len() {
            Some(32) => &digest::SHA256,
            Some(48) => &digest::SHA384,
            _ => &digest::SHA512,
        };
        digest::digest(hash, message).as_ref().to_vec()
    }

    /// Every (spec, algorithm): RAW round trip, DIGEST signature verifies as RAW and vice versa,
    /// and altered messages or signatures fail.
    #[test]
    fn every_signing_algorithm_round_trips() {
        let message = b"Trent signs this";
        for spec in KeySpec::ALL.iter().copied().filter(|s| {
            s.is_offered()
                && s.usages().contains(&super::super::KeyUsage::SignVerify)
                && *s != KeySpec::Rsa4096
        }) {
            let material = generate(spec).unwrap();
            for algorithm in spec.algorithms(super::super::KeyUsage::SignVerify).signing {
                let algorithm = *algorithm;
                let (message_type, input) = match algorithm {
                    S::Ed25519PhSha512 => (MessageType::Digest, hash(algorithm, message)),
                    _ => (MessageType::Raw, message.to_vec()),
                };
                let signature = sign(spec, &material, algorithm, message_type, &input).unwrap();
                assert!(
                    verify(spec, &material, algorithm, message_type, &input, &signature).unwrap()
                );
                let mut altered = signature.clone();
                let last = altered.len() - 1;
                altered[last] ^= 1;
                assert!(
                    !verify(spec, &material, algorithm, message_type, &input, &altered).unwrap()
                );
                let mut other = input.clone();
                other[0] ^= 1;
                assert!(
                    !verify(spec, &material, algorithm, message_type, &other, &signature).unwrap()
                );
                if let Some(len) = algorithm
                    .digest_len()
                    .filter(|_| algorithm != S::Ed25519PhSha512)
                {
                    let digest = hash(algorithm, message);
                    assert_eq!(digest.len(), len);
                    let over_digest =
                        sign(spec, &material, algorithm, MessageType::Digest, &digest).unwrap();
                    assert!(
                        verify(
                            spec,
                            &material,
                            algorithm,
                            MessageType::Raw,
                            message,
                            &over_digest
                        )
                        .unwrap(),
                        "{spec} {algorithm}: DIGEST signature verifies over the message"
                    );
                    assert!(
                        verify(
                            spec,
                            &material,
                            algorithm,
                            MessageType::Digest,
                            &digest,
                            &signature
                        )
                        .unwrap(),
                        "{spec} {algorithm}: RAW signature verifies over the digest"
                    );
                }
            }
        }
    }

    #[test]
    fn ml_dsa_external_mu_equals_raw() {
        for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
            let material = generate(spec).unwrap();
            let message = b"a long message, hashed outside KMS";
            let public_key = crate::keys::public_key_der(spec, &material).unwrap();
            let raw_public_key = &super::super::der::parse_spki(&public_key)
                .unwrap()
                .key
                .to_vec();
            let mu = external_mu(raw_public_key, message);
            let signature = sign(
                spec,
                &material,
                S::MlDsaShake256,
                MessageType::ExternalMu,
                &mu,
            )
            .unwrap();
            assert!(verify(
                spec,
                &material,
                S::MlDsaShake256,
                MessageType::Raw,
                message,
                &signature
            )
            .unwrap());
            let raw = sign(spec, &material, S::MlDsaShake256, MessageType::Raw, message).unwrap();
            assert!(verify(
                spec,
                &material,
                S::MlDsaShake256,
                MessageType::ExternalMu,
                &mu,
                &raw
            )
            .unwrap());
            let mut wrong = mu.clone();
            wrong[5] ^= 1;
            assert!(!verify(
                spec,
                &material,
                S::MlDsaShake256,
                MessageType::ExternalMu,
                &wrong,
                &raw
            )
            .unwrap());
        }
    }

    /// mu = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64) (FIPS 204, empty context).
    pub(crate) fn external_mu(public_key: &[u8], message: &[u8]) -> Vec<u8> {
        use sha3_shake::shake256;
        let tr = shake256(&[public_key], 64);
        shake256(&[&tr, &[0, 0], message], 64)
    }

    /// SHAKE-256 for tests, computed by Python's hashlib (an independent implementation; the
    /// aws-lc-rs SHAKE API needs its `unstable` feature, which Trent does not enable).
    mod sha3_shake {
        pub fn shake256(parts: &[&[u8]], len: usize) -> Vec<u8> {
            use std::io::Write;
            let mut child = std::process::Command::new("python3")
                .args([
                    "-c",
                    &format!(
                        "import sys,hashlib;sys.stdout.write(hashlib.shake_256(sys.stdin.buffer.read()).hexdigest({len}))"
                    ),
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3 is required to compute SHAKE-256 in this test");
            let mut stdin = child.stdin.take().unwrap();
            for part in parts {
                stdin.write_all(part).unwrap();
            }
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "python3 hashlib failed");
            hex::decode(String::from_utf8(out.stdout).unwrap()).unwrap()
        }
    }

    #[test]
    fn validation_errors_come_before_the_key_is_loaded() {
        let material = generate(KeySpec::EccNistP256).unwrap();
        let err = sign(
            KeySpec::EccNistP256,
            &material,
            S::EcdsaSha256,
            MessageType::Digest,
            &[0; 31],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Digest is invalid length for algorithm ECDSA_SHA_256."
        );
        let err = verify(
            KeySpec::EccNistP256,
            &material,
            S::RsassaPssSha256,
            MessageType::Raw,
            b"m",
            &[0; 64],
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidKeyUsage);
        let err = sign(
            KeySpec::EccNistP256,
            &material,
            S::EcdsaSha256,
            MessageType::Raw,
            &[0; 4097],
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::keys::KeyErrorKind::Validation);
    }

    #[test]
    fn garbage_signatures_do_not_verify() {
        for spec in [
            KeySpec::Rsa2048,
            KeySpec::EccNistP521,
            KeySpec::EccNistEdwards25519,
            KeySpec::MlDsa44,
        ] {
            let material = generate(spec).unwrap();
            let algorithm = spec.algorithms(super::super::KeyUsage::SignVerify).signing[0];
            for signature in [&[][..], &[0u8; 7][..], &[0xff; 4000][..]] {
                assert!(!verify(
                    spec,
                    &material,
                    algorithm,
                    MessageType::Raw,
                    b"m",
                    signature
                )
                .unwrap());
            }
        }
    }
}
