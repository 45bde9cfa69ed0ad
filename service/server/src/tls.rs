//! TLS for the API listener: a rustls server configuration (aws-lc-rs as its cryptography, TLS 1.2
//! and 1.3) from a PEM certificate chain and a PEM private key. With it, requests arrive over
//! HTTPS as they do at AWS, and policies see `aws:SecureTransport` true.
//!
//! Must never: put the private key, or anything read from its file, into an error or a log line.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built (messages name the file, never its content).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("TLS certificate {path}: {message}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key file is unreadable or holds no PEM private key.
    #[error("TLS private key {path}: cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    PrivateKey {
        /// The file.
        path: String,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported key...).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// aws-lc-rs with the hybrid post-quantum key exchange preferred: X25519MLKEM768 first, so a
/// client that sends its key share gets it even when it also offers X25519 (rustls's default
/// without its `prefer-post-quantum` feature would pick X25519); then X25519, P-256 and P-384
/// for clients without it. A client whose only key share is classical keeps it (no extra round
/// trip is forced).
pub fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::aws_lc_rs::kx_group;
    rustls::crypto::CryptoProvider {
        kx_groups: vec![
            kx_group::X25519MLKEM768,
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ],
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// The server configuration for `cert_path` (the chain, leaf first) and `key_path`.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let cert_error = |message: String| TlsError::Certificate {
        path: cert_path.display().to_string(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|_| TlsError::PrivateKey {
        path: key_path.display().to_string(),
    })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_files_are_named_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "SECRET-KEY-MATERIAL").unwrap();
        let err = server_config(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = server_config(&dir.path().join("absent.pem"), &key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.pem"), "{err}");
    }
}
