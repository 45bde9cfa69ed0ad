//! The service's digest key: an RSA-2048 key pair (SHA256withRSA, as CloudTrail signs digests),
//! created on the first export and kept as PKCS#8 DER in a 0600 file; its public half is
//! published as PEM named by its fingerprint. Signing and verifying go through aws-lc-rs only.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;

use super::layout::sha256_hex;
use super::TrailError;

/// The `digestSignatureAlgorithm` of every digest Trent signs.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// The private digest key. Its `Debug` shows the fingerprint only.
pub struct DigestKey {
    pair: KeyPair,
    public_der: Vec<u8>,
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestKey({})", self.fingerprint())
    }
}

impl DigestKey {
    /// Load the key at `path`, or create it there (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, TrailError> {
        match std::fs::read(path) {
            Ok(der) => {
                let der = zeroize::Zeroizing::new(der);
                let pair = KeyPair::from_pkcs8(&der).map_err(|e| {
                    TrailError::Corrupt(format!("{}: not a PKCS#8 RSA key: {e}", path.display()))
                })?;
                Self::from_pair(pair)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pair = KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| TrailError::Signing("cannot generate an RSA key".into()))?;
                let der: Pkcs8V1Der = pair
                    .as_der()
                    .map_err(|_| TrailError::Signing("cannot encode the key".into()))?;
                write_private(path, der.as_ref()).map_err(|e| TrailError::io(path, e))?;
                Self::from_pair(pair)
            }
            Err(e) => Err(TrailError::io(path, e)),
        }
    }

    fn from_pair(pair: KeyPair) -> Result<Self, TrailError> {
        let public: PublicKeyX509Der = pair
            .public_key()
            .as_der()
            .map_err(|_| TrailError::Signing("cannot encode the public key".into()))?;
        Ok(DigestKey {
            public_der: public.as_ref().to_vec(),
            pair,
        })
    }

    /// `digestPublicKeyFingerprint`: see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_der)
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, X.509 SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.public_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// Sign `message` (SHA-256, RSA PKCS#1 v1.5); the signature in hex.
    pub fn sign_hex(&self, message: &[u8]) -> Result<String, TrailError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| TrailError::Signing("RSA signing failed".into()))?;
        Ok(hex::encode(sig))
    }
}

/// A key's fingerprint: hex of the first 16 bytes of SHA-256 over its DER SubjectPublicKeyInfo
/// (32 hex digits, the length of CloudTrail's fingerprints).
pub fn fingerprint(public_der: &[u8]) -> String {
    sha256_hex(public_der)[..32].to_string()
}

/// The DER inside a `PUBLIC KEY` PEM text.
pub fn parse_public_pem(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Whether `signature_hex` is a valid SHA256withRSA signature of `message` by `public_der`.
pub fn verify_hex(public_der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_der)
        .verify(message, &sig)
        .is_ok()
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_through_the_published_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digest.key");
        let key = DigestKey::load_or_create(&path).unwrap();
        let again = DigestKey::load_or_create(&path).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint());
        let der = parse_public_pem(&key.public_pem()).unwrap();
        assert_eq!(fingerprint(&der), key.fingerprint());
        let sig = key.sign_hex(b"message").unwrap();
        assert!(verify_hex(&der, b"message", &sig));
        assert!(!verify_hex(&der, b"messagE", &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
