//! The errors clients see. `AwsError` is what every protocol on the listener renders (KMS and
//! CloudTrail as JSON, STS as XML): AWS's code, the HTTP status, the message or none. `KmsError` is
//! the KMS API's error, one variant per code; each layer's own typed error converts into it by
//! variant (`From`), and `KmsError` into `AwsError` in one place. Messages never carry key
//! material, plaintext or secrets.

/// An error as the client sees it: one variant per AWS error code Trent answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// Input broke a constraint of the API model.
    #[error("{0}")]
    Validation(String),
    /// The body is not JSON or a value has the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// The X-Amz-Target names no KMS operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// No SigV4 authentication was supplied.
    #[error("{0}")]
    MissingAuthenticationToken(String),
    /// The Authorization header is malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature does not match, or is expired.
    #[error("{0}")]
    InvalidSignature(String),
    /// The access key is unknown.
    #[error("{0}")]
    UnrecognizedClient(String),
    /// The session credentials (STS) have expired.
    #[error("{0}")]
    ExpiredToken(String),
    /// The caller is not allowed to perform the operation.
    #[error("{0}")]
    AccessDenied(String),
    /// The key, alias or other resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The key is disabled.
    #[error("{0}")]
    Disabled(String),
    /// The key's state does not allow the operation.
    #[error("{0}")]
    KmsInvalidState(String),
    /// The KeyUsage or algorithm does not fit the key.
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// The ciphertext is not valid for the key or context given.
    #[error("{0}")]
    InvalidCiphertext(String),
    /// The ciphertext was produced under another key than the one named.
    #[error("{0}")]
    IncorrectKey(String),
    /// An alias name breaks AWS's rules.
    #[error("{0}")]
    InvalidAliasName(String),
    /// An ARN is malformed.
    #[error("{0}")]
    InvalidArn(String),
    /// A pagination marker is invalid.
    #[error("{0}")]
    InvalidMarker(String),
    /// A signature did not verify.
    #[error("{0}")]
    KmsInvalidSignature(String),
    /// A MAC did not verify.
    #[error("{0}")]
    KmsInvalidMac(String),
    /// Imported key material is not valid for the key.
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// An import token that is not valid for the key (forged, tampered, or another key's).
    #[error("{0}")]
    InvalidImportToken(String),
    /// An import token older than 24 hours.
    #[error("{0}")]
    ExpiredImportToken(String),
    /// A grant token is not valid.
    #[error("{0}")]
    InvalidGrantToken(String),
    /// A grant id does not name a grant of the key.
    #[error("{0}")]
    InvalidGrantId(String),
    /// A key policy document is malformed.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// A tag is invalid.
    #[error("{0}")]
    Tag(String),
    /// A limit was exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The resource already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The operation or a parameter value is not supported by Trent (or by KMS for this key).
    #[error("{0}")]
    UnsupportedOperation(String),
    /// DryRun was set and the request would have succeeded.
    #[error("{0}")]
    DryRunOperation(String),
    /// The request body is larger than the server accepts.
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// The caller is over its request quota (or lost every retry of a race on one key).
    #[error("{0}")]
    Throttling(String),
    /// A rotation of the key is in progress (RotateKeyOnDemand racing another rotation).
    #[error("{0}")]
    Conflict(String),
    /// Another custom key store of the account and region has the name.
    #[error("{0}")]
    CustomKeyStoreNameInUse(String),
    /// No custom key store has the id or name.
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    /// The custom key store's connection state does not allow the operation.
    #[error("{0}")]
    CustomKeyStoreInvalidState(String),
    /// The custom key store still holds KMS keys.
    #[error("{0}")]
    CustomKeyStoreHasCmks(String),
    /// Another external key store uses the proxy endpoint and path.
    #[error("{0}")]
    XksProxyUriInUse(String),
    /// Another external key store uses the proxy endpoint.
    #[error("{0}")]
    XksProxyUriEndpointInUse(String),
    /// The proxy refused the authentication credential.
    #[error("{0}")]
    XksProxyIncorrectAuthenticationCredential(String),
    /// The proxy did not answer.
    #[error("{0}")]
    XksProxyUriUnreachable(String),
    /// The proxy's answer is not the XKS Proxy API's.
    #[error("{0}")]
    XksProxyInvalidResponse(String),
    /// The proxy's configuration does not fit the store.
    #[error("{0}")]
    XksProxyInvalidConfiguration(String),
    /// Another KMS key of the store uses the external key.
    #[error("{0}")]
    XksKeyAlreadyInUse(String),
    /// The proxy cannot find the external key.
    #[error("{0}")]
    XksKeyNotFound(String),
    /// The external key is not an enabled AES-256 key that encrypts and decrypts.
    #[error("{0}")]
    XksKeyInvalidConfiguration(String),
    /// Something failed inside the service (storage unavailable, audit not durable).
    #[error("{0}")]
    KmsInternal(String),
    /// Internal, never a client's answer: the call reached something the warming read model
    /// does not hold (an alias's new target, the key's aliases). The KMS protocol waits for the
    /// full model and runs the call again; should it ever escape, it is an internal error.
    #[error("The service is still loading its keys.")]
    NeedsFullModel,
}

impl KmsError {
    /// The `__type` AWS puts in the error body.
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::UnrecognizedClient(_) => "UnrecognizedClientException",
            Self::ExpiredToken(_) => "ExpiredTokenException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::NotFound(_) => "NotFoundException",
            Self::Disabled(_) => "DisabledException",
            Self::KmsInvalidState(_) => "KMSInvalidStateException",
            Self::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            Self::InvalidCiphertext(_) => "InvalidCiphertextException",
            Self::IncorrectKey(_) => "IncorrectKeyException",
            Self::InvalidAliasName(_) => "InvalidAliasNameException",
            Self::InvalidArn(_) => "InvalidArnException",
            Self::InvalidMarker(_) => "InvalidMarkerException",
            Self::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            Self::InvalidGrantToken(_) => "InvalidGrantTokenException",
            Self::InvalidGrantId(_) => "InvalidGrantIdException",
            Self::KmsInvalidSignature(_) => "KMSInvalidSignatureException",
            Self::KmsInvalidMac(_) => "KMSInvalidMacException",
            Self::IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            Self::InvalidImportToken(_) => "InvalidImportTokenException",
            Self::ExpiredImportToken(_) => "ExpiredImportTokenException",
            Self::Tag(_) => "TagException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::AlreadyExists(_) => "AlreadyExistsException",
            Self::UnsupportedOperation(_) => "UnsupportedOperationException",
            Self::DryRunOperation(_) => "DryRunOperationException",
            Self::RequestEntityTooLarge(_) => "RequestEntityTooLargeException",
            Self::Throttling(_) => "ThrottlingException",
            Self::Conflict(_) => "ConflictException",
            Self::CustomKeyStoreNameInUse(_) => "CustomKeyStoreNameInUseException",
            Self::CustomKeyStoreNotFound(_) => "CustomKeyStoreNotFoundException",
            Self::CustomKeyStoreInvalidState(_) => "CustomKeyStoreInvalidStateException",
            Self::CustomKeyStoreHasCmks(_) => "CustomKeyStoreHasCMKsException",
            Self::XksProxyUriInUse(_) => "XksProxyUriInUseException",
            Self::XksProxyUriEndpointInUse(_) => "XksProxyUriEndpointInUseException",
            Self::XksProxyIncorrectAuthenticationCredential(_) => {
                "XksProxyIncorrectAuthenticationCredentialException"
            }
            Self::XksProxyUriUnreachable(_) => "XksProxyUriUnreachableException",
            Self::XksProxyInvalidResponse(_) => "XksProxyInvalidResponseException",
            Self::XksProxyInvalidConfiguration(_) => "XksProxyInvalidConfigurationException",
            Self::XksKeyAlreadyInUse(_) => "XksKeyAlreadyInUseException",
            Self::XksKeyNotFound(_) => "XksKeyNotFoundException",
            Self::XksKeyInvalidConfiguration(_) => "XksKeyInvalidConfigurationException",
            Self::KmsInternal(_) | Self::NeedsFullModel => "KMSInternalException",
        }
    }

    /// The HTTP status AWS answers this error with. JSON-protocol services such as KMS answer client
    /// errors, authentication failures included, with 400; DryRunOperationException too (the API
    /// reference says 412, AWS's live service answers 400).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::KmsInternal(_) | Self::NeedsFullModel => 500,
            Self::RequestEntityTooLarge(_) => 413,
            _ => 400,
        }
    }

    /// The message AWS puts in the error body.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The JSON body of the error response.
    pub fn body(&self) -> serde_json::Value {
        AwsError::from(self).json_body()
    }
}

/// An error as a client sees it, whatever the protocol: AWS's code, the HTTP status, and the
/// message (`None` where AWS sends none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The error code (`__type` in JSON, `Code` in XML).
    pub code: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The message, if the error has one.
    pub message: Option<String>,
}

impl AwsError {
    /// An error with a message.
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: Some(message.into()),
        }
    }

    /// Whether the service, not the caller, is at fault (a 5xx status).
    pub fn is_server_fault(&self) -> bool {
        self.status >= 500
    }

    /// The message, or the empty string.
    pub fn message_text(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }

    /// The body of the AWS JSON protocols: `__type` and, if there is one, `message`.
    pub fn json_body(&self) -> serde_json::Value {
        match &self.message {
            Some(m) => serde_json::json!({ "__type": self.code, "message": m }),
            None => serde_json::json!({ "__type": self.code }),
        }
    }
}

impl From<&KmsError> for AwsError {
    fn from(e: &KmsError) -> Self {
        // AWS sends a failed Verify or VerifyMac, and a ciphertext that does not open, without
        // any message member (its recorded answers carry none).
        let message = match e {
            KmsError::KmsInvalidSignature(_) | KmsError::KmsInvalidMac(_) => None,
            KmsError::InvalidCiphertext(m) if m.is_empty() => None,
            _ => Some(e.message()),
        };
        Self {
            code: e.aws_type(),
            status: e.http_status(),
            message,
        }
    }
}

impl From<KmsError> for AwsError {
    fn from(e: KmsError) -> Self {
        Self::from(&e)
    }
}
