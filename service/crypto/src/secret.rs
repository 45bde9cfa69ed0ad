//! Types for secrets (key material, plaintexts): zeroized on drop, never printed, never serialized.

use zeroize::Zeroizing;

/// Secret bytes: key material or plaintext. `Debug` shows only the length; no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Take ownership of bytes as a secret.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` zero bytes, to be filled in place.
    pub fn zeroed(len: usize) -> Self {
        Self(Zeroizing::new(vec![0u8; len]))
    }

    /// Borrow the secret bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Borrow the secret bytes mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `len` bytes (all of them when there are fewer), as a secret of their own: the
    /// plaintext part of a buffer an in-place decryption left a tag behind in.
    pub fn prefix(&self, len: usize) -> SecretBytes {
        SecretBytes::new(self.0.iter().take(len).copied().collect())
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "SecretBytes(7 bytes)");
    }

    #[test]
    fn prefix_takes_at_most_what_there_is() {
        let s = SecretBytes::new(vec![1, 2, 3]);
        assert_eq!(s.prefix(2).as_slice(), &[1, 2]);
        assert_eq!(s.prefix(9).as_slice(), &[1, 2, 3]);
        assert!(s.prefix(0).is_empty());
    }
}
