//! Operations per second of bare aws-lc-rs with the key already parsed, and of
//! `trent_service::crypto::keys` (which loads the key from its PKCS#8 on every call), for the
//! same operations. Run: `cargo bench -p trent-service --bench key_primitives`.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, UnparsedPublicKey};
use aws_lc_rs::{hmac, kem};

use trent_service::crypto::keys::*;

/// Runs `op` for about `budget` and returns operations per second.
fn rate(mut op: impl FnMut()) -> f64 {
    let budget = Duration::from_millis(1500);
    op();
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget {
        for _ in 0..8 {
            op();
        }
        count += 8;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn report(name: &str, bare: f64, module: f64) {
    println!("{name:<28} bare aws-lc-rs {bare:>10.0}/s   crypto::keys {module:>10.0}/s");
}

fn main() {
    let message = [0x42u8; 256];
    let rng = SystemRandom::new();
    let algorithm = |spec: KeySpec| spec.algorithms(KeyUsage::SignVerify).signing[0];

    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::MlDsa65] {
        let material = generate(spec).unwrap();
        let alg = match spec {
            KeySpec::Rsa2048 => SigningAlgorithm::RsassaPssSha256,
            _ => algorithm(spec),
        };
        let signature = sign(spec, &material, alg, MessageType::Raw, &message).unwrap();
        let (bare_sign, bare_verify) = match spec {
            KeySpec::Rsa2048 => {
                let key = signature::RsaKeyPair::from_pkcs8(material.as_bytes()).unwrap();
                let public = key.public_key().as_ref().to_vec();
                let mut out = vec![0; key.public_modulus_len()];
                (
                    rate(|| {
                        key.sign(&signature::RSA_PSS_SHA256, &rng, &message, &mut out)
                            .unwrap()
                    }),
                    rate(|| {
                        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &public)
                            .verify(&message, &signature)
                            .unwrap()
                    }),
                )
            }
            KeySpec::EccNistP256 => {
                let key = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    material.as_bytes(),
                )
                .unwrap();
                let public = key.public_key().as_ref().to_vec();
                (
                    rate(|| {
                        key.sign(&rng, &message).unwrap();
                    }),
                    rate(|| {
                        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &public)
                            .verify(&message, &signature)
                            .unwrap()
                    }),
                )
            }
            _ => {
                let key = signature::PqdsaKeyPair::from_pkcs8(
                    &signature::ML_DSA_65_SIGNING,
                    material.as_bytes(),
                )
                .unwrap();
                let public = key.public_key().as_ref().to_vec();
                let mut out = vec![0; signature::ML_DSA_65_SIGNING.signature_len()];
                (
                    rate(|| {
                        key.sign(&message, &mut out).unwrap();
                    }),
                    rate(|| {
                        UnparsedPublicKey::new(&signature::ML_DSA_65, &public)
                            .verify(&message, &signature)
                            .unwrap()
                    }),
                )
            }
        };
        report(
            &format!("{spec} sign"),
            bare_sign,
            rate(|| {
                sign(spec, &material, alg, MessageType::Raw, &message).unwrap();
            }),
        );
        report(
            &format!("{spec} verify"),
            bare_verify,
            rate(|| {
                assert!(
                    verify(spec, &material, alg, MessageType::Raw, &message, &signature).unwrap()
                );
            }),
        );
    }

    let material = generate(KeySpec::MlKem768).unwrap();
    let public = public_key_der(KeySpec::MlKem768, &material).unwrap();
    // The SPKI's BIT STRING ends with the 1184-byte ML-KEM-768 encapsulation key.
    let raw = public[public.len() - 1184..].to_vec();
    let key = kem::EncapsulationKey::new(&kem::ML_KEM_768, &raw).unwrap();
    report(
        "ML_KEM_768 encapsulate",
        rate(|| {
            key.encapsulate().unwrap();
        }),
        rate(|| {
            encapsulate(KeySpec::MlKem768, EncapsulationAlgorithm::MlKem, &public).unwrap();
        }),
    );

    let material = generate(KeySpec::Hmac256).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, material.as_bytes());
    report(
        "HMAC_256 generate (256 B)",
        rate(|| {
            let _ = hmac::sign(&key, &message);
        }),
        rate(|| {
            hmac_generate(
                KeySpec::Hmac256,
                &material,
                MacAlgorithm::HmacSha256,
                &message,
            )
            .unwrap();
        }),
    );
}
