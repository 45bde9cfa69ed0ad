//! Typed decoding of request bodies and encoding of blobs (base64, as the AWS JSON protocol sends
//! them). Secret blobs decode straight into `SecretBytes`.

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::KmsError;
use trent_crypto::secret::SecretBytes;

/// Decode a validated body into a typed request.
pub fn decode<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, KmsError> {
    T::deserialize(body).map_err(|e| KmsError::Serialization(e.to_string()))
}

/// Base64 text of bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Deserialize a base64 blob that is a secret (plaintext, key material).
pub fn secret_blob<'de, D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
    let text = zeroize::Zeroizing::new(String::deserialize(d)?);
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(SecretBytes::new)
        .map_err(|_| serde::de::Error::custom("invalid base64 blob"))
}

/// Deserialize a base64 blob that is not secret (ciphertexts, public keys).
pub fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|_| serde::de::Error::custom("invalid base64 blob"))
}

/// Deserialize an optional non-secret blob.
pub fn opt_blob<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t.as_bytes())
            .map_err(|_| serde::de::Error::custom("invalid base64 blob"))
    })
    .transpose()
}
