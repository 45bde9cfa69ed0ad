//! STS errors and their wire shape: the query protocol's `ErrorResponse` XML, with STS's own codes
//! (`AccessDenied`, `ValidationError`, `InvalidClientTokenId`, ...) and HTTP statuses.

use crate::auth::sigv4::{InvalidSignature, SigV4Error};
use crate::protocol::AwsError;

/// Why an STS call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// SigV4 verification failed.
    #[error("{0}")]
    Auth(SigV4Error),
    /// The caller may not assume the role (or the role does not exist).
    #[error("{0}")]
    AccessDenied(String),
    /// A parameter breaks a constraint.
    #[error("{0}")]
    Validation(String),
    /// A required parameter is absent.
    #[error("{0}")]
    MissingParameter(String),
    /// The Action names no STS operation of this API version.
    #[error("{0}")]
    InvalidAction(String),
    /// An STS operation or parameter Trent does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// The caller is over its request quota.
    #[error("{0}")]
    Throttling(String),
    /// The service could not record the call (nothing was issued).
    #[error("{0}")]
    Internal(String),
}

impl StsError {
    /// The `Code` element.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(SigV4Error::MissingAuthenticationToken) => "MissingAuthenticationToken",
            Self::Auth(SigV4Error::IncompleteSignature(_)) => "IncompleteSignature",
            Self::Auth(SigV4Error::InvalidSignature(_)) => "SignatureDoesNotMatch",
            Self::Auth(SigV4Error::UnrecognizedClient(_)) => "InvalidClientTokenId",
            Self::Auth(SigV4Error::ExpiredToken) => "ExpiredToken",
            Self::AccessDenied(_) => "AccessDenied",
            Self::Validation(_) => "ValidationError",
            Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidAction(_) => "InvalidAction",
            Self::Unsupported(_) => "UnsupportedOperationException",
            Self::Throttling(_) => "Throttling",
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status STS answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Auth(SigV4Error::IncompleteSignature(_)) => 400,
            Self::Auth(SigV4Error::InvalidSignature(InvalidSignature::BothQueryAndHeader)) => 400,
            Self::Auth(_) | Self::AccessDenied(_) => 403,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

impl From<StsError> for AwsError {
    fn from(e: StsError) -> Self {
        AwsError::new(e.code(), e.status(), e.to_string())
    }
}
