//! All cryptography of the service, through aws-lc-rs: secrets that zeroize, the root key that seals
//! key material, the ciphertext blob format, and random bytes. Nothing here does I/O except loading
//! the root key at start.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod ciphertext;
pub mod keyring;
pub mod keys;
pub mod root_key;
pub mod secret;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use secret::SecretBytes;

/// Errors of the cryptographic layer.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The random generator failed.
    #[error("random generator failure")]
    Random,
    /// Sealing or encryption failed.
    #[error("encryption failure")]
    Seal,
    /// A sealed value or ciphertext did not authenticate.
    #[error("authentication of sealed data failed")]
    Open,
    /// The root key could not be loaded or created.
    #[error("root key: {0}")]
    RootKey(String),
}

/// `len` bytes from the system's secure random generator.
pub fn random_secret(len: usize) -> Result<SecretBytes, CryptoError> {
    let mut bytes = SecretBytes::zeroed(len);
    SystemRandom::new()
        .fill(bytes.as_mut_slice())
        .map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// Random bytes that are not secret (nonces, identifiers).
pub fn random_public(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut bytes = vec![0u8; len];
    fill_public(&mut bytes)?;
    Ok(bytes)
}

/// Fill `bytes` with random bytes that may be made public (nonces, salts).
pub fn fill_public(bytes: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(bytes)
        .map_err(|_| CryptoError::Random)
}
