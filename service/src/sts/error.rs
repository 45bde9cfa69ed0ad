//! STS errors and their wire shape: the query protocol's `ErrorResponse` XML, with STS's own codes
//! (`AccessDenied`, `ValidationError`, `InvalidClientTokenId`, ...) and HTTP statuses.

use actix_web::http::StatusCode;

use crate::auth::sigv4::{InvalidSignature, SigV4Error};

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
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status STS answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(SigV4Error::IncompleteSignature(_)) => StatusCode::BAD_REQUEST,
            Self::Auth(SigV4Error::InvalidSignature(InvalidSignature::BothQueryAndHeader)) => {
                StatusCode::BAD_REQUEST
            }
            Self::Auth(_) | Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `Sender` for the caller's faults, `Receiver` for the service's.
    pub fn fault(&self) -> &'static str {
        match self {
            Self::Internal(_) => "Receiver",
            _ => "Sender",
        }
    }
}
