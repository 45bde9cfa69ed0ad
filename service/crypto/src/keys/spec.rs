//! The AWS names of key specs, key usages and algorithms, and the rules that tie them together:
//! which usage each key spec allows, which algorithms DescribeKey reports for each pair, and
//! which message types and digest lengths each signing algorithm takes. Pure tables, no I/O.

use super::KeyError;

/// A wire name that is not one of the values an AWS enum allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind}")]
pub struct UnknownName {
    /// The AWS enum, e.g. `KeySpec`.
    pub kind: &'static str,
    /// The value that was given.
    pub value: String,
}

/// Declares an enum whose variants are AWS wire names, with `as_str`, `FromStr`, `Display` and
/// `ALL` (in the order of the AWS model).
macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in the order of the AWS model.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The AWS wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(value: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|candidate| candidate.as_str() == value)
                    .ok_or_else(|| UnknownName { kind: stringify!($name), value: value.to_owned() })
            }
        }
    };
}

aws_enum!(
    /// The cryptographic configuration of a KMS key (`KeySpec`).
    KeySpec {
        /// RSA, 2048-bit modulus.
        Rsa2048 => "RSA_2048",
        /// RSA, 3072-bit modulus.
        Rsa3072 => "RSA_3072",
        /// RSA, 4096-bit modulus.
        Rsa4096 => "RSA_4096",
        /// NIST P-256 (secp256r1).
        EccNistP256 => "ECC_NIST_P256",
        /// NIST P-384 (secp384r1).
        EccNistP384 => "ECC_NIST_P384",
        /// NIST P-521 (secp521r1).
        EccNistP521 => "ECC_NIST_P521",
        /// secp256k1, the Koblitz curve of cryptocurrencies.
        EccSecgP256k1 => "ECC_SECG_P256K1",
        /// AES-256-GCM symmetric key.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        /// HMAC with SHA-224.
        Hmac224 => "HMAC_224",
        /// HMAC with SHA-256.
        Hmac256 => "HMAC_256",
        /// HMAC with SHA-384.
        Hmac384 => "HMAC_384",
        /// HMAC with SHA-512.
        Hmac512 => "HMAC_512",
        /// Chinese SM2 (China Regions only; refused by Trent).
        Sm2 => "SM2",
        /// ML-DSA-44 (FIPS 204).
        MlDsa44 => "ML_DSA_44",
        /// ML-DSA-65 (FIPS 204).
        MlDsa65 => "ML_DSA_65",
        /// ML-DSA-87 (FIPS 204).
        MlDsa87 => "ML_DSA_87",
        /// Ed25519 (RFC 8032).
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        /// ML-KEM-512 (FIPS 203).
        MlKem512 => "ML_KEM_512",
        /// ML-KEM-768 (FIPS 203).
        MlKem768 => "ML_KEM_768",
        /// ML-KEM-1024 (FIPS 203).
        MlKem1024 => "ML_KEM_1024",
    }
);

aws_enum!(
    /// The operations a KMS key may be used for (`KeyUsageType`).
    KeyUsage {
        /// Sign and Verify.
        SignVerify => "SIGN_VERIFY",
        /// Encrypt, Decrypt, ReEncrypt, data keys.
        EncryptDecrypt => "ENCRYPT_DECRYPT",
        /// GenerateMac and VerifyMac.
        GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        /// DeriveSharedSecret.
        KeyAgreement => "KEY_AGREEMENT",
        /// Encapsulate and Decapsulate.
        EncapsulateDecapsulate => "ENCAPSULATE_DECAPSULATE",
    }
);

aws_enum!(
    /// A signing algorithm (`SigningAlgorithmSpec`).
    SigningAlgorithm {
        /// RSASSA-PSS, SHA-256, MGF1 SHA-256, 32-byte salt.
        RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        /// RSASSA-PSS, SHA-384, MGF1 SHA-384, 48-byte salt.
        RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        /// RSASSA-PSS, SHA-512, MGF1 SHA-512, 64-byte salt.
        RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        /// ECDSA with SHA-256, DER signature.
        EcdsaSha256 => "ECDSA_SHA_256",
        /// ECDSA with SHA-384, DER signature.
        EcdsaSha384 => "ECDSA_SHA_384",
        /// ECDSA with SHA-512, DER signature.
        EcdsaSha512 => "ECDSA_SHA_512",
        /// SM2 signature (China Regions only).
        Sm2Dsa => "SM2DSA",
        /// ML-DSA (pure, empty context), message representative with SHAKE-256.
        MlDsaShake256 => "ML_DSA_SHAKE_256",
        /// Pure Ed25519.
        Ed25519Sha512 => "ED25519_SHA_512",
        /// Ed25519ph (HashEdDSA with SHA-512).
        Ed25519PhSha512 => "ED25519_PH_SHA_512",
    }
);

aws_enum!(
    /// An encryption algorithm (`EncryptionAlgorithmSpec`).
    EncryptionAlgorithm {
        /// AES-256-GCM with Trent's ciphertext blob.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        /// RSAES-OAEP with SHA-1 and MGF1 SHA-1, no label.
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        /// RSAES-OAEP with SHA-256 and MGF1 SHA-256, no label.
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        /// SM2 public-key encryption (China Regions only).
        Sm2Pke => "SM2PKE",
    }
);

aws_enum!(
    /// A MAC algorithm (`MacAlgorithmSpec`).
    MacAlgorithm {
        /// HMAC with SHA-224.
        HmacSha224 => "HMAC_SHA_224",
        /// HMAC with SHA-256.
        HmacSha256 => "HMAC_SHA_256",
        /// HMAC with SHA-384.
        HmacSha384 => "HMAC_SHA_384",
        /// HMAC with SHA-512.
        HmacSha512 => "HMAC_SHA_512",
    }
);

aws_enum!(
    /// A key agreement algorithm (`KeyAgreementAlgorithmSpec`).
    KeyAgreementAlgorithm {
        /// Elliptic-curve Diffie-Hellman; the shared secret is the raw x-coordinate.
        Ecdh => "ECDH",
    }
);

aws_enum!(
    /// A key encapsulation algorithm (`EncapsulationAlgorithmSpec`).
    EncapsulationAlgorithm {
        /// ML-KEM (FIPS 203).
        MlKem => "ML_KEM",
    }
);

aws_enum!(
    /// How Sign and Verify read their `Message` (`MessageType`).
    MessageType {
        /// The message itself, at most 4096 bytes.
        Raw => "RAW",
        /// A digest of the message, made with the algorithm's hash.
        Digest => "DIGEST",
        /// The 64-byte ML-DSA message representative mu (FIPS 204, section 6.2).
        ExternalMu => "EXTERNAL_MU",
    }
);

aws_enum!(
    /// The kind of key pair GenerateDataKeyPair makes (`DataKeyPairSpec`).
    DataKeyPairSpec {
        /// RSA, 2048-bit modulus.
        Rsa2048 => "RSA_2048",
        /// RSA, 3072-bit modulus.
        Rsa3072 => "RSA_3072",
        /// RSA, 4096-bit modulus.
        Rsa4096 => "RSA_4096",
        /// NIST P-256.
        EccNistP256 => "ECC_NIST_P256",
        /// NIST P-384.
        EccNistP384 => "ECC_NIST_P384",
        /// NIST P-521.
        EccNistP521 => "ECC_NIST_P521",
        /// secp256k1.
        EccSecgP256k1 => "ECC_SECG_P256K1",
        /// SM2 (China Regions only; refused by Trent).
        Sm2 => "SM2",
        /// Ed25519.
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        /// ML-KEM-512.
        MlKem512 => "ML_KEM_512",
        /// ML-KEM-768.
        MlKem768 => "ML_KEM_768",
        /// ML-KEM-1024.
        MlKem1024 => "ML_KEM_1024",
    }
);

/// The largest message Sign and Verify accept (the `Message` member of the AWS model).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The length of an ML-DSA external message representative mu.
pub const EXTERNAL_MU_LEN: usize = 64;

/// The algorithm lists DescribeKey and GetPublicKey report for a key spec and usage; the lists
/// that do not apply are empty (and are omitted from the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyAlgorithms {
    /// `EncryptionAlgorithms`.
    pub encryption: &'static [EncryptionAlgorithm],
    /// `SigningAlgorithms`.
    pub signing: &'static [SigningAlgorithm],
    /// `MacAlgorithms`.
    pub mac: &'static [MacAlgorithm],
    /// `KeyAgreementAlgorithms`.
    pub key_agreement: &'static [KeyAgreementAlgorithm],
    /// `EncapsulationAlgorithms`.
    pub encapsulation: &'static [EncapsulationAlgorithm],
}

const RSA_SIGNING: &[SigningAlgorithm] = &[
    SigningAlgorithm::RsassaPkcs1V15Sha256,
    SigningAlgorithm::RsassaPkcs1V15Sha384,
    SigningAlgorithm::RsassaPkcs1V15Sha512,
    SigningAlgorithm::RsassaPssSha256,
    SigningAlgorithm::RsassaPssSha384,
    SigningAlgorithm::RsassaPssSha512,
];
const RSA_ENCRYPTION: &[EncryptionAlgorithm] = &[
    EncryptionAlgorithm::RsaesOaepSha1,
    EncryptionAlgorithm::RsaesOaepSha256,
];

impl KeySpec {
    /// The key usages AWS allows for this spec (CreateKey `KeyUsage`).
    pub fn usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        use KeyUsage::*;
        match self {
            SymmetricDefault => &[EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[EncryptDecrypt, SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => &[SignVerify, KeyAgreement],
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => &[SignVerify],
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[GenerateVerifyMac],
            MlKem512 | MlKem768 | MlKem1024 => &[EncapsulateDecapsulate],
            Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
        }
    }

    /// The algorithms DescribeKey reports for this spec used with `usage` (all lists empty when
    /// the pair is not allowed).
    pub fn algorithms(self, usage: KeyUsage) -> KeyAlgorithms {
        use KeySpec::*;
        use SigningAlgorithm as S;
        if !self.usages().contains(&usage) {
            return KeyAlgorithms::default();
        }
        let none = KeyAlgorithms::default();
        match (self, usage) {
            (SymmetricDefault, _) => KeyAlgorithms {
                encryption: &[EncryptionAlgorithm::SymmetricDefault],
                ..none
            },
            (Rsa2048 | Rsa3072 | Rsa4096, KeyUsage::EncryptDecrypt) => KeyAlgorithms {
                encryption: RSA_ENCRYPTION,
                ..none
            },
            (Rsa2048 | Rsa3072 | Rsa4096, _) => KeyAlgorithms {
                signing: RSA_SIGNING,
                ..none
            },
            (EccNistP256 | EccNistP384 | EccNistP521 | Sm2, KeyUsage::KeyAgreement) => {
                KeyAlgorithms {
                    key_agreement: &[KeyAgreementAlgorithm::Ecdh],
                    ..none
                }
            }
            (EccNistP256 | EccSecgP256k1, _) => KeyAlgorithms {
                signing: &[S::EcdsaSha256],
                ..none
            },
            (EccNistP384, _) => KeyAlgorithms {
                signing: &[S::EcdsaSha384],
                ..none
            },
            (EccNistP521, _) => KeyAlgorithms {
                signing: &[S::EcdsaSha512],
                ..none
            },
            (EccNistEdwards25519, _) => KeyAlgorithms {
                signing: &[S::Ed25519Sha512, S::Ed25519PhSha512],
                ..none
            },
            (MlDsa44 | MlDsa65 | MlDsa87, _) => KeyAlgorithms {
                signing: &[S::MlDsaShake256],
                ..none
            },
            (Hmac224, _) => KeyAlgorithms {
                mac: &[MacAlgorithm::HmacSha224],
                ..none
            },
            (Hmac256, _) => KeyAlgorithms {
                mac: &[MacAlgorithm::HmacSha256],
                ..none
            },
            (Hmac384, _) => KeyAlgorithms {
                mac: &[MacAlgorithm::HmacSha384],
                ..none
            },
            (Hmac512, _) => KeyAlgorithms {
                mac: &[MacAlgorithm::HmacSha512],
                ..none
            },
            (MlKem512 | MlKem768 | MlKem1024, _) => KeyAlgorithms {
                encapsulation: &[EncapsulationAlgorithm::MlKem],
                ..none
            },
            (Sm2, KeyUsage::EncryptDecrypt) => KeyAlgorithms {
                encryption: &[EncryptionAlgorithm::Sm2Pke],
                ..none
            },
            (Sm2, _) => KeyAlgorithms {
                signing: &[S::Sm2Dsa],
                ..none
            },
        }
    }

    /// Whether Trent offers this spec (SM2 exists only in AWS China Regions).
    pub fn is_offered(self) -> bool {
        self != KeySpec::Sm2
    }

    /// Whether keys of this spec are asymmetric (have a public key).
    pub fn is_asymmetric(self) -> bool {
        !matches!(
            self,
            KeySpec::SymmetricDefault
                | KeySpec::Hmac224
                | KeySpec::Hmac256
                | KeySpec::Hmac384
                | KeySpec::Hmac512
        )
    }

    /// The key spec of the same key pair kind as a data key pair spec.
    pub fn from_data_key_pair_spec(spec: DataKeyPairSpec) -> KeySpec {
        match spec {
            DataKeyPairSpec::Rsa2048 => KeySpec::Rsa2048,
            DataKeyPairSpec::Rsa3072 => KeySpec::Rsa3072,
            DataKeyPairSpec::Rsa4096 => KeySpec::Rsa4096,
            DataKeyPairSpec::EccNistP256 => KeySpec::EccNistP256,
            DataKeyPairSpec::EccNistP384 => KeySpec::EccNistP384,
            DataKeyPairSpec::EccNistP521 => KeySpec::EccNistP521,
            DataKeyPairSpec::EccSecgP256k1 => KeySpec::EccSecgP256k1,
            DataKeyPairSpec::Sm2 => KeySpec::Sm2,
            DataKeyPairSpec::EccNistEdwards25519 => KeySpec::EccNistEdwards25519,
            DataKeyPairSpec::MlKem512 => KeySpec::MlKem512,
            DataKeyPairSpec::MlKem768 => KeySpec::MlKem768,
            DataKeyPairSpec::MlKem1024 => KeySpec::MlKem1024,
        }
    }
}

impl SigningAlgorithm {
    /// The digest length a `DIGEST` message must have, when the algorithm accepts digests.
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 | Sm2Dsa => Some(32),
            RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(48),
            RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519PhSha512 => Some(64),
            MlDsaShake256 | Ed25519Sha512 => None,
        }
    }
}

/// CreateKey's check of a (KeySpec, KeyUsage) pair, with AWS's error: SM2 is refused as not
/// offered (`UnsupportedOperationException`), other mismatches are a `ValidationException`.
pub fn validate_spec_usage(spec: KeySpec, usage: KeyUsage) -> Result<(), KeyError> {
    if !spec.is_offered() {
        return Err(KeyError::UnsupportedKeySpec(spec));
    }
    if spec.usages().contains(&usage) {
        Ok(())
    } else {
        Err(KeyError::IncompatibleKeyUsage { spec, usage })
    }
}

/// Sign/Verify's check of algorithm, message type and message length against the key spec,
/// in the order AWS applies them.
pub fn validate_signing_input(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<(), KeyError> {
    if !spec
        .algorithms(KeyUsage::SignVerify)
        .signing
        .contains(&algorithm)
    {
        return Err(KeyError::IncompatibleAlgorithm {
            algorithm: algorithm.as_str(),
            spec,
        });
    }
    if message.len() > MAX_MESSAGE_LEN {
        return Err(KeyError::MessageTooLong { len: message.len() });
    }
    match (algorithm, message_type) {
        (SigningAlgorithm::MlDsaShake256, MessageType::Raw) => Ok(()),
        (SigningAlgorithm::MlDsaShake256, MessageType::ExternalMu) => {
            if message.len() == EXTERNAL_MU_LEN {
                Ok(())
            } else {
                Err(KeyError::InvalidExternalMuLength { algorithm })
            }
        }
        (_, MessageType::ExternalMu) | (SigningAlgorithm::MlDsaShake256, _) => {
            Err(KeyError::IncompatibleMessageTypeForSpec { message_type, spec })
        }
        (SigningAlgorithm::Ed25519Sha512, MessageType::Digest)
        | (SigningAlgorithm::Ed25519PhSha512, MessageType::Raw) => {
            Err(KeyError::IncompatibleMessageTypeForAlgorithm {
                message_type,
                algorithm,
            })
        }
        (_, MessageType::Raw) => Ok(()),
        (_, MessageType::Digest) => {
            if Some(message.len()) == algorithm.digest_len() {
                Ok(())
            } else {
                Err(KeyError::InvalidDigestLength { algorithm })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_every_enum() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
            <T as std::str::FromStr>::Err: std::fmt::Debug,
        {
            for value in all {
                assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
            }
        }
        check(KeySpec::ALL);
        check(KeyUsage::ALL);
        check(SigningAlgorithm::ALL);
        check(EncryptionAlgorithm::ALL);
        check(MacAlgorithm::ALL);
        check(KeyAgreementAlgorithm::ALL);
        check(EncapsulationAlgorithm::ALL);
        check(MessageType::ALL);
        check(DataKeyPairSpec::ALL);
        let err = "RSA_1024".parse::<KeySpec>().unwrap_err();
        assert_eq!(err.to_string(), "'RSA_1024' is not a valid KeySpec");
    }

    /// The names match the AWS model shipped in the repository, value for value and in order.
    #[test]
    fn names_match_the_aws_model() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/kms-model.json");
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let names = |shape: &str| -> Vec<String> {
            model["shapes"][shape]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{shape} missing from the model"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        fn ours<T: std::fmt::Display>(all: &[T]) -> Vec<String> {
            all.iter().map(ToString::to_string).collect()
        }
        assert_eq!(names("KeySpec"), ours(KeySpec::ALL));
        assert_eq!(names("KeyUsageType"), ours(KeyUsage::ALL));
        assert_eq!(names("SigningAlgorithmSpec"), ours(SigningAlgorithm::ALL));
        assert_eq!(
            names("EncryptionAlgorithmSpec"),
            ours(EncryptionAlgorithm::ALL)
        );
        assert_eq!(names("MacAlgorithmSpec"), ours(MacAlgorithm::ALL));
        assert_eq!(
            names("KeyAgreementAlgorithmSpec"),
            ours(KeyAgreementAlgorithm::ALL)
        );
        assert_eq!(
            names("EncapsulationAlgorithmSpec"),
            ours(EncapsulationAlgorithm::ALL)
        );
        assert_eq!(names("MessageType"), ours(MessageType::ALL));
        assert_eq!(names("DataKeyPairSpec"), ours(DataKeyPairSpec::ALL));
    }

    /// The full spec x usage matrix, one row per spec: the usages AWS allows.
    #[test]
    fn spec_usage_matrix() {
        use KeyUsage::*;
        let table: &[(&str, &[KeyUsage])] = &[
            ("SYMMETRIC_DEFAULT", &[EncryptDecrypt]),
            ("RSA_2048", &[EncryptDecrypt, SignVerify]),
            ("RSA_3072", &[EncryptDecrypt, SignVerify]),
            ("RSA_4096", &[EncryptDecrypt, SignVerify]),
            ("ECC_NIST_P256", &[SignVerify, KeyAgreement]),
            ("ECC_NIST_P384", &[SignVerify, KeyAgreement]),
            ("ECC_NIST_P521", &[SignVerify, KeyAgreement]),
            ("ECC_SECG_P256K1", &[SignVerify]),
            ("ECC_NIST_EDWARDS25519", &[SignVerify]),
            ("ML_DSA_44", &[SignVerify]),
            ("ML_DSA_65", &[SignVerify]),
            ("ML_DSA_87", &[SignVerify]),
            ("HMAC_224", &[GenerateVerifyMac]),
            ("HMAC_256", &[GenerateVerifyMac]),
            ("HMAC_384", &[GenerateVerifyMac]),
            ("HMAC_512", &[GenerateVerifyMac]),
            ("ML_KEM_512", &[EncapsulateDecapsulate]),
            ("ML_KEM_768", &[EncapsulateDecapsulate]),
            ("ML_KEM_1024", &[EncapsulateDecapsulate]),
        ];
        assert_eq!(
            table.len() + 1,
            KeySpec::ALL.len(),
            "every spec but SM2 has a row"
        );
        for (name, allowed) in table {
            let spec: KeySpec = name.parse().unwrap();
            for usage in KeyUsage::ALL {
                let result = validate_spec_usage(spec, *usage);
                if allowed.contains(usage) {
                    assert!(result.is_ok(), "{spec} {usage}");
                } else {
                    let err = result.unwrap_err();
                    assert_eq!(err.kind(), crate::keys::KeyErrorKind::Validation);
                    assert_eq!(
                        err.to_string(),
                        format!("KeyUsage {usage} is not compatible with KeySpec {spec}")
                    );
                }
            }
        }
        let sm2 = validate_spec_usage(KeySpec::Sm2, SignVerify).unwrap_err();
        assert_eq!(sm2.kind(), crate::keys::KeyErrorKind::UnsupportedOperation);
        assert_eq!(
            sm2.to_string(),
            "KeySpec SM2 is not supported in this Region"
        );
    }

    /// The lists DescribeKey reports, as AWS reports them.
    #[test]
    fn describe_key_algorithm_lists() {
        let names =
            |list: &[SigningAlgorithm]| -> Vec<&str> { list.iter().map(|a| a.as_str()).collect() };
        let rsa_sign = KeySpec::Rsa3072.algorithms(KeyUsage::SignVerify);
        assert_eq!(
            names(rsa_sign.signing),
            [
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512"
            ]
        );
        assert!(rsa_sign.encryption.is_empty());
        let rsa_enc = KeySpec::Rsa2048.algorithms(KeyUsage::EncryptDecrypt);
        assert_eq!(rsa_enc.encryption, RSA_ENCRYPTION);
        assert!(rsa_enc.signing.is_empty());
        let rows: &[(KeySpec, KeyUsage, &[&str])] = &[
            (
                KeySpec::EccNistP256,
                KeyUsage::SignVerify,
                &["ECDSA_SHA_256"],
            ),
            (
                KeySpec::EccNistP384,
                KeyUsage::SignVerify,
                &["ECDSA_SHA_384"],
            ),
            (
                KeySpec::EccNistP521,
                KeyUsage::SignVerify,
                &["ECDSA_SHA_512"],
            ),
            (
                KeySpec::EccSecgP256k1,
                KeyUsage::SignVerify,
                &["ECDSA_SHA_256"],
            ),
            (
                KeySpec::EccNistEdwards25519,
                KeyUsage::SignVerify,
                &["ED25519_SHA_512", "ED25519_PH_SHA_512"],
            ),
            (
                KeySpec::MlDsa44,
                KeyUsage::SignVerify,
                &["ML_DSA_SHAKE_256"],
            ),
            (
                KeySpec::MlDsa87,
                KeyUsage::SignVerify,
                &["ML_DSA_SHAKE_256"],
            ),
        ];
        for (spec, usage, expected) in rows {
            assert_eq!(names(spec.algorithms(*usage).signing), *expected, "{spec}");
        }
        let agreement = KeySpec::EccNistP384.algorithms(KeyUsage::KeyAgreement);
        assert_eq!(agreement.key_agreement, &[KeyAgreementAlgorithm::Ecdh]);
        assert!(agreement.signing.is_empty());
        assert_eq!(
            KeySpec::Hmac384.algorithms(KeyUsage::GenerateVerifyMac).mac,
            &[MacAlgorithm::HmacSha384]
        );
        assert_eq!(
            KeySpec::MlKem512
                .algorithms(KeyUsage::EncapsulateDecapsulate)
                .encapsulation,
            &[EncapsulationAlgorithm::MlKem]
        );
        assert_eq!(
            KeySpec::SymmetricDefault
                .algorithms(KeyUsage::EncryptDecrypt)
                .encryption,
            &[EncryptionAlgorithm::SymmetricDefault]
        );
        assert_eq!(
            KeySpec::EccSecgP256k1.algorithms(KeyUsage::KeyAgreement),
            KeyAlgorithms::default()
        );
    }

    /// Sign input checks: one row per case, with AWS's error type and message.
    #[test]
    fn signing_input_rules() {
        use MessageType::*;
        use SigningAlgorithm as S;
        let ok = None;
        type Row = (
            KeySpec,
            S,
            MessageType,
            usize,
            Option<crate::keys::KeyErrorKind>,
            &'static str,
        );
        let rows: &[Row] = &[
            (KeySpec::Rsa2048, S::RsassaPssSha256, Raw, 4096, ok, ""),
            (KeySpec::Rsa2048, S::RsassaPssSha256, Raw, 4097, Some(crate::keys::KeyErrorKind::Validation),
             "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"),
            (KeySpec::Rsa2048, S::RsassaPkcs1V15Sha384, Digest, 48, ok, ""),
            (KeySpec::Rsa2048, S::RsassaPkcs1V15Sha384, Digest, 32, Some(crate::keys::KeyErrorKind::Validation),
             "Digest is invalid length for algorithm RSASSA_PKCS1_V1_5_SHA_384."),
            (KeySpec::Rsa2048, S::EcdsaSha256, Raw, 1, Some(crate::keys::KeyErrorKind::InvalidKeyUsage),
             "Algorithm ECDSA_SHA_256 is incompatible with key spec RSA_2048."),
            (KeySpec::EccNistP256, S::EcdsaSha384, Raw, 1, Some(crate::keys::KeyErrorKind::InvalidKeyUsage),
             "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256."),
            (KeySpec::EccNistP521, S::EcdsaSha512, Digest, 64, ok, ""),
            (KeySpec::EccNistP256, S::EcdsaSha256, ExternalMu, 64, Some(crate::keys::KeyErrorKind::Validation),
             "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_P256."),
            (KeySpec::EccNistEdwards25519, S::Ed25519Sha512, Digest, 64, Some(crate::keys::KeyErrorKind::Validation),
             "Message type DIGEST is incompatible with algorithm ED25519_SHA_512."),
            (KeySpec::EccNistEdwards25519, S::Ed25519PhSha512, Raw, 64, Some(crate::keys::KeyErrorKind::Validation),
             "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512."),
            (KeySpec::EccNistEdwards25519, S::Ed25519PhSha512, Digest, 20, Some(crate::keys::KeyErrorKind::Validation),
             "Digest is invalid length for algorithm ED25519_PH_SHA_512."),
            (KeySpec::EccNistEdwards25519, S::Ed25519PhSha512, Digest, 64, ok, ""),
            (KeySpec::MlDsa44, S::MlDsaShake256, Digest, 64, Some(crate::keys::KeyErrorKind::Validation),
             "Message type DIGEST is incompatible with key spec ML_DSA_44."),
            (KeySpec::MlDsa65, S::MlDsaShake256, ExternalMu, 63, Some(crate::keys::KeyErrorKind::Validation),
             "External Mu is invalid length for algorithm ML_DSA_SHAKE_256."),
            (KeySpec::MlDsa87, S::MlDsaShake256, ExternalMu, 64, ok, ""),
            (KeySpec::Hmac256, S::EcdsaSha256, Raw, 1, Some(crate::keys::KeyErrorKind::InvalidKeyUsage),
             "Algorithm ECDSA_SHA_256 is incompatible with key spec HMAC_256."),
        ];
        for (spec, algorithm, message_type, len, error_type, message) in rows {
            let result = validate_signing_input(*spec, *algorithm, *message_type, &vec![7; *len]);
            match result {
                Ok(()) => assert!(error_type.is_none(), "{spec} {algorithm} {message_type}"),
                Err(err) => {
                    assert_eq!(Some(err.kind()), *error_type, "{spec} {algorithm}");
                    assert_eq!(err.to_string(), *message);
                }
            }
        }
    }
}
