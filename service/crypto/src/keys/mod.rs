//! The cryptography of every KMS key spec AWS offers, as pure functions over key material:
//! generation, public keys (DER SubjectPublicKeyInfo), Sign/Verify, RSA Encrypt/Decrypt,
//! GenerateMac/VerifyMac, DeriveSharedSecret, Encapsulate/Decapsulate and data key pairs, with
//! AWS's rules on key specs, usages, algorithms and message types.
//!
//! It owns the shape of private key material: PKCS#8 DER for every asymmetric spec (RSA, the
//! elliptic curves, Ed25519, ML-DSA in seed form, ML-KEM in seed form), the raw key for HMAC
//! and SYMMETRIC_DEFAULT. It never does I/O, never stores or logs anything, and never sees
//! key ids, policies or HTTP: callers pass material in and get bytes or typed errors back.
//! All cryptography is aws-lc-rs, except the three primitives in `ffi`, its only unsafe code.

mod agreement;
mod der;
mod ffi;
mod kem;
mod mac;
mod material;
mod rsa_encryption;
mod signing;
mod spec;

#[cfg(test)]
mod interop;

pub use agreement::derive_shared_secret;
pub use kem::{decapsulate, encapsulate, Encapsulated};
pub use mac::{hmac_generate, hmac_verify};
pub use material::{
    generate, generate_data_key_pair, import_private_key, public_key_der, DataKeyPair,
    PrivateKeyMaterial,
};
pub use rsa_encryption::{rsa_decrypt, rsa_encrypt, rsa_max_plaintext_len};
pub use signing::{sign, verify};
pub use spec::{
    validate_signing_input, validate_spec_usage, DataKeyPairSpec, EncapsulationAlgorithm,
    EncryptionAlgorithm, KeyAgreementAlgorithm, KeyAlgorithms, KeySpec, KeyUsage, MacAlgorithm,
    MessageType, SigningAlgorithm, UnknownName, EXTERNAL_MU_LEN, MAX_MESSAGE_LEN,
};

use super::CryptoError;

/// What went wrong in a key operation. Display is AWS's message; [`KeyError::kind`] says which
/// AWS error it answers with, for the one conversion that maps errors to responses.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key spec does not allow this key usage (CreateKey).
    #[error("KeyUsage {usage} is not compatible with KeySpec {spec}")]
    IncompatibleKeyUsage {
        /// The requested spec.
        spec: KeySpec,
        /// The requested usage.
        usage: KeyUsage,
    },
    /// The key spec exists but Trent does not offer it (SM2, China Regions only).
    #[error("KeySpec {0} is not supported in this Region")]
    UnsupportedKeySpec(KeySpec),
    /// The data key pair spec exists but Trent does not offer it (SM2).
    #[error("KeyPairSpec {0} is not supported in this Region")]
    UnsupportedKeyPairSpec(DataKeyPairSpec),
    /// The key spec has no such operation (e.g. a public key of a symmetric key).
    #[error("This operation is not supported for KMS keys with key spec {0}.")]
    UnsupportedOperation(KeySpec),
    /// The algorithm is not one of the key's algorithms.
    #[error("Algorithm {algorithm} is incompatible with key spec {spec}.")]
    IncompatibleAlgorithm {
        /// The AWS name of the requested algorithm.
        algorithm: &'static str,
        /// The key's spec.
        spec: KeySpec,
    },
    /// The message type cannot be used with keys of this spec.
    #[error("Message type {message_type} is incompatible with key spec {spec}.")]
    IncompatibleMessageTypeForSpec {
        /// The requested message type.
        message_type: MessageType,
        /// The key's spec.
        spec: KeySpec,
    },
    /// The message type cannot be used with this signing algorithm.
    #[error("Message type {message_type} is incompatible with algorithm {algorithm}.")]
    IncompatibleMessageTypeForAlgorithm {
        /// The requested message type.
        message_type: MessageType,
        /// The requested algorithm.
        algorithm: SigningAlgorithm,
    },
    /// A `DIGEST` message whose length is not the algorithm's hash length.
    #[error("Digest is invalid length for algorithm {algorithm}.")]
    InvalidDigestLength {
        /// The requested algorithm.
        algorithm: SigningAlgorithm,
    },
    /// An `EXTERNAL_MU` message that is not 64 bytes.
    #[error("External Mu is invalid length for algorithm {algorithm}.")]
    InvalidExternalMuLength {
        /// The requested algorithm.
        algorithm: SigningAlgorithm,
    },
    /// A message longer than 4096 bytes.
    #[error(
        "1 validation error detected: Value at 'message' failed to satisfy constraint: \
         Member must have length less than or equal to 4096"
    )]
    MessageTooLong {
        /// The message length.
        len: usize,
    },
    /// A plaintext longer than RSA-OAEP allows for this key size and hash.
    #[error(
        "Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {max} bytes."
    )]
    PlaintextTooLong {
        /// The requested algorithm.
        algorithm: EncryptionAlgorithm,
        /// The key's spec.
        spec: KeySpec,
        /// The largest plaintext allowed.
        max: usize,
    },
    /// An RSA or ML-KEM ciphertext that does not decrypt under this key.
    #[error("The ciphertext is invalid.")]
    InvalidCiphertext,
    /// The peer public key is not a DER SubjectPublicKeyInfo of a usable public key.
    #[error("The public key is not a valid DER-encoded SubjectPublicKeyInfo for key spec {spec}.")]
    InvalidPublicKey {
        /// The spec the key should have.
        spec: KeySpec,
    },
    /// The peer public key is on another curve than the KMS key.
    #[error("The public key's curve does not match the KMS key's key spec {spec}.")]
    PublicKeyCurveMismatch {
        /// The KMS key's spec.
        spec: KeySpec,
    },
    /// Key material to import does not parse as a key of the spec.
    #[error("The key material is not a valid private key for key spec {spec}.")]
    InvalidKeyMaterial {
        /// The spec the material should have.
        spec: KeySpec,
    },
    /// Stored key material that does not load: corruption or a bug, never the caller's fault.
    #[error("internal error: stored key material for {spec} does not load")]
    CorruptKeyMaterial {
        /// The key's spec.
        spec: KeySpec,
    },
    /// A failure of the cryptographic library or the random generator.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The kinds of answer a [`KeyError`] calls for, one per AWS error a key operation can end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyErrorKind {
    /// The input breaks a constraint (`ValidationException`).
    Validation,
    /// The key spec or operation is not supported (`UnsupportedOperationException`).
    UnsupportedOperation,
    /// The algorithm does not fit the key (`InvalidKeyUsageException`).
    InvalidKeyUsage,
    /// The ciphertext does not decrypt (`InvalidCiphertextException`).
    InvalidCiphertext,
    /// Material to import is not a key of the spec (`IncorrectKeyMaterialException`).
    IncorrectKeyMaterial,
    /// A failure inside the service, never the caller's fault (`KMSInternalException`).
    Internal,
}

impl KeyError {
    /// The kind of answer this error calls for (`trent-model` maps each kind to its AWS error).
    pub fn kind(&self) -> KeyErrorKind {
        match self {
            KeyError::IncompatibleKeyUsage { .. }
            | KeyError::IncompatibleMessageTypeForSpec { .. }
            | KeyError::IncompatibleMessageTypeForAlgorithm { .. }
            | KeyError::InvalidDigestLength { .. }
            | KeyError::InvalidExternalMuLength { .. }
            | KeyError::MessageTooLong { .. }
            | KeyError::PlaintextTooLong { .. }
            | KeyError::InvalidPublicKey { .. }
            | KeyError::PublicKeyCurveMismatch { .. } => KeyErrorKind::Validation,
            KeyError::UnsupportedKeySpec(_)
            | KeyError::UnsupportedKeyPairSpec(_)
            | KeyError::UnsupportedOperation(_) => KeyErrorKind::UnsupportedOperation,
            KeyError::IncompatibleAlgorithm { .. } => KeyErrorKind::InvalidKeyUsage,
            KeyError::InvalidCiphertext => KeyErrorKind::InvalidCiphertext,
            KeyError::InvalidKeyMaterial { .. } => KeyErrorKind::IncorrectKeyMaterial,
            KeyError::CorruptKeyMaterial { .. } | KeyError::Crypto(_) => KeyErrorKind::Internal,
        }
    }
}
