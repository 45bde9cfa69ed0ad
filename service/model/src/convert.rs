//! Conversions of the lower layers' errors into `KmsError`, by variant: a key operation's
//! `KeyError` (through its kind) and a SigV4 verification failure.

use trent_crypto::keys::{KeyError, KeyErrorKind};
use trent_sigv4::SigV4Error;

use crate::KmsError;

impl From<KeyError> for KmsError {
    fn from(e: KeyError) -> Self {
        let message = e.to_string();
        match e.kind() {
            KeyErrorKind::Validation => Self::Validation(message),
            KeyErrorKind::UnsupportedOperation => Self::UnsupportedOperation(message),
            KeyErrorKind::InvalidKeyUsage => Self::InvalidKeyUsage(message),
            KeyErrorKind::InvalidCiphertext => Self::InvalidCiphertext(message),
            KeyErrorKind::IncorrectKeyMaterial => Self::IncorrectKeyMaterial(message),
            KeyErrorKind::Internal => {
                tracing::error!(error = %message, "key operation failed");
                Self::KmsInternal("The cryptographic operation failed.".into())
            }
        }
    }
}

impl From<SigV4Error> for KmsError {
    fn from(e: SigV4Error) -> Self {
        let message = e.to_string();
        match e {
            SigV4Error::MissingAuthenticationToken => Self::MissingAuthenticationToken(message),
            SigV4Error::IncompleteSignature(_) => Self::IncompleteSignature(message),
            SigV4Error::InvalidSignature(_) => Self::InvalidSignature(message),
            SigV4Error::UnrecognizedClient(_) => Self::UnrecognizedClient(message),
            SigV4Error::ExpiredToken => Self::ExpiredToken(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use trent_crypto::keys::KeySpec;
    use trent_sigv4::{InvalidSignature, UnrecognizedClient};

    use super::*;

    #[test]
    fn key_errors_keep_their_message_and_internal_ones_hide_it() {
        let e = KmsError::from(KeyError::UnsupportedKeySpec(KeySpec::Rsa2048));
        assert_eq!(e.aws_type(), "UnsupportedOperationException");
        let e = KmsError::from(KeyError::CorruptKeyMaterial {
            spec: KeySpec::Rsa2048,
        });
        assert_eq!(e.aws_type(), "KMSInternalException");
        assert_eq!(e.message(), "The cryptographic operation failed.");
        let e = KmsError::from(KeyError::InvalidCiphertext);
        assert_eq!(
            (e.aws_type(), e.message().as_str()),
            ("InvalidCiphertextException", "The ciphertext is invalid.")
        );
    }

    #[test]
    fn sigv4_errors_map_to_the_kms_codes() {
        let cases = [
            (
                SigV4Error::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
            ),
            (SigV4Error::ExpiredToken, "ExpiredTokenException"),
            (
                SigV4Error::InvalidSignature(InvalidSignature::Mismatch),
                "InvalidSignatureException",
            ),
            (
                SigV4Error::UnrecognizedClient(UnrecognizedClient::UnknownAccessKey),
                "UnrecognizedClientException",
            ),
        ];
        for (e, code) in cases {
            let message = e.to_string();
            let kms = KmsError::from(e);
            assert_eq!((kms.aws_type(), kms.message()), (code, message));
        }
    }
}
