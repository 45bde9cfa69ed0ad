//! DeriveSharedSecret: ECDH on the NIST curves between the KMS key and a peer public key given
//! as DER SubjectPublicKeyInfo. The shared secret is the raw x-coordinate, as AWS returns it.

use aws_lc_rs::agreement::{self, UnparsedPublicKey};

use super::der;
use super::material::PrivateKeyMaterial;
use super::spec::{KeyAgreementAlgorithm, KeySpec, KeyUsage};
use super::KeyError;
use crate::secret::SecretBytes;

/// The aws-lc-rs ECDH algorithm and curve OID of a key-agreement spec.
fn curve(spec: KeySpec) -> Option<(&'static agreement::Algorithm, &'static [u8])> {
    match spec {
        KeySpec::EccNistP256 => Some((&agreement::ECDH_P256, der::OID_P256)),
        KeySpec::EccNistP384 => Some((&agreement::ECDH_P384, der::OID_P384)),
        KeySpec::EccNistP521 => Some((&agreement::ECDH_P521, der::OID_P521)),
        _ => None,
    }
}

/// DeriveSharedSecret with `algorithm` (ECDH) between the key and the peer's DER SPKI. A peer
/// key that is not an EC SPKI, or not a valid point, is `InvalidPublicKey`; one on another
/// curve is `PublicKeyCurveMismatch`.
pub fn derive_shared_secret(
    spec: KeySpec,
    material: &PrivateKeyMaterial,
    algorithm: KeyAgreementAlgorithm,
    peer_spki_der: &[u8],
) -> Result<SecretBytes, KeyError> {
    let incompatible = || KeyError::IncompatibleAlgorithm {
        algorithm: algorithm.as_str(),
        spec,
    };
    if !spec.is_offered() {
        return Err(KeyError::UnsupportedKeySpec(spec));
    }
    if !spec
        .algorithms(KeyUsage::KeyAgreement)
        .key_agreement
        .contains(&algorithm)
    {
        return Err(incompatible());
    }
    let (ecdh, curve_oid) = curve(spec).ok_or_else(incompatible)?;
    let info = der::parse_spki(peer_spki_der).ok_or(KeyError::InvalidPublicKey { spec })?;
    if info.algorithm != der::OID_EC_PUBLIC_KEY {
        return Err(KeyError::InvalidPublicKey { spec });
    }
    match info.parameters {
        Some(oid) if oid == curve_oid => {}
        Some(_) => return Err(KeyError::PublicKeyCurveMismatch { spec }),
        None => return Err(KeyError::InvalidPublicKey { spec }),
    }
    let private_key = agreement::PrivateKey::from_private_key_der(ecdh, material.as_bytes())
        .map_err(|_| KeyError::CorruptKeyMaterial { spec })?;
    agreement::agree(
        &private_key,
        UnparsedPublicKey::new(ecdh, peer_spki_der),
        KeyError::InvalidPublicKey { spec },
        |secret| Ok(SecretBytes::new(secret.to_vec())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, public_key_der};

    #[test]
    fn both_sides_derive_the_same_secret() {
        for (spec, len) in [
            (KeySpec::EccNistP256, 32),
            (KeySpec::EccNistP384, 48),
            (KeySpec::EccNistP521, 66),
        ] {
            let alice = generate(spec).unwrap();
            let bob = generate(spec).unwrap();
            let alice_public = public_key_der(spec, &alice).unwrap();
            let bob_public = public_key_der(spec, &bob).unwrap();
            let ab = derive_shared_secret(spec, &alice, KeyAgreementAlgorithm::Ecdh, &bob_public)
                .unwrap();
            let ba = derive_shared_secret(spec, &bob, KeyAgreementAlgorithm::Ecdh, &alice_public)
                .unwrap();
            assert_eq!(ab, ba, "{spec}");
            assert_eq!(ab.len(), len, "{spec}");
        }
    }

    #[test]
    fn foreign_and_malformed_peer_keys_are_refused() {
        let p256 = generate(KeySpec::EccNistP256).unwrap();
        let p384_public = public_key_der(
            KeySpec::EccNistP384,
            &generate(KeySpec::EccNistP384).unwrap(),
        )
        .unwrap();
        let k1_public = public_key_der(
            KeySpec::EccSecgP256k1,
            &generate(KeySpec::EccSecgP256k1).unwrap(),
        )
        .unwrap();
        let ed_public = public_key_der(
            KeySpec::EccNistEdwards25519,
            &generate(KeySpec::EccNistEdwards25519).unwrap(),
        )
        .unwrap();
        let good = public_key_der(
            KeySpec::EccNistP256,
            &generate(KeySpec::EccNistP256).unwrap(),
        )
        .unwrap();
        let mut off_curve = good.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let raw_point = der::parse_spki(&good).unwrap().key.to_vec();
        let rows: &[(&[u8], &str)] = &[
            (&p384_public, "PublicKeyCurveMismatch"),
            (&k1_public, "PublicKeyCurveMismatch"),
            (&ed_public, "InvalidPublicKey"),
            (&off_curve, "InvalidPublicKey"),
            (&raw_point, "InvalidPublicKey"),
            (b"", "InvalidPublicKey"),
        ];
        for (peer, expected) in rows {
            let err = derive_shared_secret(
                KeySpec::EccNistP256,
                &p256,
                KeyAgreementAlgorithm::Ecdh,
                peer,
            )
            .unwrap_err();
            assert!(format!("{err:?}").starts_with(expected), "{err:?}");
            assert_eq!(err.kind(), crate::keys::KeyErrorKind::Validation);
        }
        let k1 = generate(KeySpec::EccSecgP256k1).unwrap();
        let err = derive_shared_secret(
            KeySpec::EccSecgP256k1,
            &k1,
            KeyAgreementAlgorithm::Ecdh,
            &k1_public,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::keys::KeyErrorKind::InvalidKeyUsage);
    }
}
