//! The XKS Proxy API client: GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt, each signed
//! with SigV4 (`kms-xks-proxy`), with the spec's error names mapped to typed errors.

use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::crypto::secret::SecretBytes;
use crate::protocol::wire::set;

/// The SigV4 service name of the XKS Proxy API.
pub const SIGNING_SERVICE: &str = "kms-xks-proxy";
/// How long KMS waits for an XKS proxy call (the XKS Proxy API specification's 250 ms).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A JSON body as the bytes a call sends.
fn json_text(body: &Value) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(body.to_string().into_bytes())
}

/// An answer's body as the spec's shape.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, XksError> {
    serde_json::from_slice(body).map_err(|e| XksError::Malformed(e.to_string()))
}

/// Where a proxy listens: its URI endpoint (`https://host[:port]`) and path prefix (empty or
/// `/...`), as a custom key store's `XksProxyUriEndpoint` and `XksProxyUriPath` give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEndpoint {
    /// `scheme://host[:port]`, without a trailing slash.
    pub uri_endpoint: String,
    /// The path prefix before `/kms/xks/v1` (AWS's `XksProxyUriPath` minus that suffix).
    pub path_prefix: String,
}

impl ProxyEndpoint {
    /// The URL of an API resource (`health`, `keys/{id}/encrypt`, ...).
    fn url(&self, resource: &str) -> String {
        format!(
            "{}{}/kms/xks/v1/{resource}",
            self.uri_endpoint.trim_end_matches('/'),
            self.path_prefix.trim_end_matches('/')
        )
    }
}

/// The proxy authentication credential (AWS's `XksProxyAuthenticationCredential`): a SigV4
/// access key id and secret the proxy knows. The secret is zeroized when dropped and never
/// printed.
#[derive(Clone)]
pub struct ProxyCredential {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `RawSecretAccessKey`.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for ProxyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyCredential({})", self.access_key_id)
    }
}

/// The `requestMetadata` every call carries: which KMS call it serves and for whom.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// The caller of the KMS operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    /// The KMS key the call uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The KMS operation (`Encrypt`, `CreateKey`, `ConnectCustomKeyStore`, ...).
    pub kms_operation: String,
    /// The KMS request id.
    pub kms_request_id: String,
}

/// Why an XKS proxy call failed: the spec's error names, and failures to reach the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksError {
    /// The proxy did not answer within the timeout, or could not be reached.
    #[error("the XKS proxy did not answer: {0}")]
    Unreachable(String),
    /// The proxy's TLS certificate does not verify against the CA bundle.
    #[error("the XKS proxy's TLS certificate does not verify: {0}")]
    Tls(String),
    /// The proxy refused the SigV4 signature (`AuthenticationFailedException`).
    #[error("the XKS proxy refused the authentication credential")]
    AuthenticationFailed,
    /// The proxy's authorization refused the call (`AccessDeniedException`).
    #[error("the XKS proxy denied access")]
    AccessDenied,
    /// No such external key (`KeyNotFoundException`).
    #[error("the external key does not exist in the external key manager")]
    KeyNotFound,
    /// The external key is not enabled (`InvalidStateException`).
    #[error("the external key is not enabled")]
    InvalidState,
    /// The external key cannot do this (`InvalidKeyUsageException`).
    #[error("the external key does not permit this operation")]
    InvalidKeyUsage,
    /// The ciphertext does not decrypt (`InvalidCiphertextException`).
    #[error("the external key manager could not decrypt the ciphertext")]
    InvalidCiphertext,
    /// The path prefix is not one the proxy serves (`InvalidUriPathException`).
    #[error("the XKS proxy does not serve this URI path")]
    InvalidUriPath,
    /// Any other error the proxy named (`ValidationException`, `InternalException`, ...).
    #[error("the XKS proxy answered {name}")]
    Proxy {
        /// The spec's error name.
        name: String,
    },
    /// The answer is not what the spec defines.
    #[error("the XKS proxy's answer is malformed: {0}")]
    Malformed(String),
}

/// GetHealthStatus's answer (the parts KMS reports).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// How many proxies serve this endpoint.
    pub xks_proxy_fleet_size: u32,
    /// The proxy's vendor.
    pub xks_proxy_vendor: String,
    /// The proxy's model.
    pub xks_proxy_model: String,
    /// The external key manager's vendor.
    pub ekm_vendor: String,
    /// Each external key manager instance and its health (`ACTIVE`, `DEGRADED`, `UNAVAILABLE`).
    #[serde(default)]
    pub ekm_fleet_details: Vec<EkmInstance>,
}

impl HealthStatus {
    /// Whether at least one external key manager instance is active.
    pub fn is_active(&self) -> bool {
        self.ekm_fleet_details
            .iter()
            .any(|e| e.health_status == "ACTIVE")
    }
}

/// One external key manager instance of a health report.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EkmInstance {
    /// Its id.
    pub id: String,
    /// Its model.
    pub model: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// GetKeyMetadata's answer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadata {
    /// `AES_256` for a key KMS can use.
    pub key_spec: String,
    /// What the key may do (`ENCRYPT`, `DECRYPT`, ...).
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

impl KeyMetadata {
    /// Whether KMS can use the key: AES-256, encrypt and decrypt, enabled.
    pub fn usable_by_kms(&self) -> bool {
        self.key_spec == "AES_256"
            && ["ENCRYPT", "DECRYPT"]
                .iter()
                .all(|u| self.key_usage.iter().any(|k| k == u))
            && self.key_status == "ENABLED"
    }
}

/// What the external key made of a plaintext (AES-GCM): everything Decrypt needs back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksCiphertext {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The IV the proxy chose.
    pub iv: Vec<u8>,
    /// The GCM tag.
    pub tag: Vec<u8>,
    /// Opaque metadata the proxy wants back at Decrypt (may be empty).
    pub metadata: Option<Vec<u8>>,
}

/// A client for one proxy endpoint and credential.
#[derive(Debug, Clone)]
pub struct XksClient {
    endpoint: ProxyEndpoint,
    credential: ProxyCredential,
    region: String,
    http: reqwest::Client,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl XksError {
    /// A short name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Tls(_) => "tls",
            Self::AuthenticationFailed => "authentication_failed",
            Self::AccessDenied => "access_denied",
            Self::KeyNotFound => "key_not_found",
            Self::InvalidState => "invalid_state",
            Self::InvalidKeyUsage => "invalid_key_usage",
            Self::InvalidCiphertext => "invalid_ciphertext",
            Self::InvalidUriPath => "invalid_uri_path",
            Self::Proxy { .. } => "proxy_error",
            Self::Malformed(_) => "malformed_response",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptAnswer {
    ciphertext: String,
    initialization_vector: String,
    authentication_tag: String,
    ciphertext_metadata: Option<String>,
    ciphertext_data_integrity_value: Option<String>,
}

/// The ciphertext data integrity value the XKS specification defines for SHA_256: the
/// Base64 of SHA-256 over AAD || ciphertext metadata || IV || ciphertext || tag.
fn integrity_value(aad: &[u8], sealed: &XksCiphertext) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(aad);
    ctx.update(sealed.metadata.as_deref().unwrap_or_default());
    ctx.update(&sealed.iv);
    ctx.update(&sealed.ciphertext);
    ctx.update(&sealed.tag);
    b64(ctx.finish().as_ref())
}

#[derive(Deserialize)]
struct DecryptAnswer {
    plaintext: Zeroizing<String>,
}

/// The TLS settings of proxy connections: the certificate authorities a proxy's certificate must
/// chain to (AWS requires a public CA; here a CA bundle the operator chooses), TLS 1.2 and 1.3
/// with aws-lc-rs.
pub fn tls_config(
    ca_bundle: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_bundle)
        .map_err(|e| format!("{}: {e}", ca_bundle.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_bundle.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_bundle.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no PEM certificate", ca_bundle.display()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// A TLS configuration that trusts no certificate authority (aws-lc-rs, like every other).
fn no_roots() -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

impl XksClient {
    /// A client for `endpoint` signing as `credential` in `region`, each call within `timeout`;
    /// `tls` verifies an `https://` proxy (without it only `http://` endpoints work).
    pub fn new(
        endpoint: ProxyEndpoint,
        credential: ProxyCredential,
        region: &str,
        timeout: Duration,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<Self, XksError> {
        // Without a CA bundle nothing verifies, so only plain-HTTP proxies can be used.
        let config = match tls {
            Some(config) => (*config).clone(),
            None => no_roots().map_err(XksError::Unreachable)?,
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .use_preconfigured_tls(config)
            .build()
            .map_err(|e| XksError::Unreachable(e.to_string()))?;
        Ok(Self {
            endpoint,
            credential,
            region: region.to_string(),
            http,
            metrics: None,
        })
    }

    /// Count each call and its latency in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// GetHealthStatus.
    pub async fn health(&self, metadata: &RequestMetadata) -> Result<HealthStatus, XksError> {
        let answer = self
            .call("health", json_text(&json!({ "requestMetadata": metadata })))
            .await?;
        parse(&answer)
    }

    /// GetKeyMetadata of the external key `key_id`.
    pub async fn key_metadata(
        &self,
        key_id: &str,
        metadata: &RequestMetadata,
    ) -> Result<KeyMetadata, XksError> {
        let answer = self
            .call(
                &format!("keys/{key_id}/metadata"),
                json_text(&json!({ "requestMetadata": metadata })),
            )
            .await?;
        parse(&answer)
    }

    /// Encrypt `plaintext` with the external key (AES-GCM), authenticating `aad`.
    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: &SecretBytes,
        aad: &[u8],
        metadata: &RequestMetadata,
    ) -> Result<XksCiphertext, XksError> {
        // The integrity value lets KMS check that what it keeps is what the key manager made.
        let mut body = json!({
            "requestMetadata": metadata,
            "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
        });
        if !aad.is_empty() {
            set(&mut body, "additionalAuthenticatedData", json!(b64(aad)));
        }
        // The plaintext goes into the text directly (base64 needs no escaping), so no copy of
        // it outlives the call unzeroized.
        let public = body.to_string();
        let encoded = Zeroizing::new(b64(plaintext.as_slice()));
        let mut text = Zeroizing::new(Vec::with_capacity(public.len() + encoded.len() + 16));
        text.extend_from_slice(
            public
                .get(..public.len() - 1)
                .unwrap_or_default()
                .as_bytes(),
        );
        text.extend_from_slice(b",\"plaintext\":\"");
        text.extend_from_slice(encoded.as_bytes());
        text.extend_from_slice(b"\"}");
        let answer = self.call(&format!("keys/{key_id}/encrypt"), text).await?;
        let parsed: EncryptAnswer = parse(&answer)?;
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| XksError::Malformed(e.to_string()))
        };
        let sealed = XksCiphertext {
            ciphertext: decode(&parsed.ciphertext)?,
            iv: decode(&parsed.initialization_vector)?,
            tag: decode(&parsed.authentication_tag)?,
            metadata: parsed
                .ciphertext_metadata
                .as_deref()
                .map(decode)
                .transpose()?,
        };
        if parsed.ciphertext_data_integrity_value.as_deref() != Some(&integrity_value(aad, &sealed))
        {
            return Err(XksError::Malformed(
                "the ciphertext data integrity value is missing or does not match".into(),
            ));
        }
        Ok(sealed)
    }

    /// Decrypt what `encrypt` made, with the same `aad`.
    pub async fn decrypt(
        &self,
        key_id: &str,
        sealed: &XksCiphertext,
        aad: &[u8],
        metadata: &RequestMetadata,
    ) -> Result<SecretBytes, XksError> {
        let mut body = json!({
            "requestMetadata": metadata,
            "ciphertext": b64(&sealed.ciphertext),
            "encryptionAlgorithm": "AES_GCM",
            "initializationVector": b64(&sealed.iv),
            "authenticationTag": b64(&sealed.tag),
        });
        if !aad.is_empty() {
            set(&mut body, "additionalAuthenticatedData", json!(b64(aad)));
        }
        if let Some(m) = &sealed.metadata {
            set(&mut body, "ciphertextMetadata", json!(b64(m)));
        }
        let answer = self
            .call(&format!("keys/{key_id}/decrypt"), json_text(&body))
            .await?;
        let parsed: DecryptAnswer = parse(&answer)?;
        let plaintext = base64::engine::general_purpose::STANDARD
            .decode(parsed.plaintext.as_bytes())
            .map_err(|e| XksError::Malformed(e.to_string()))?;
        Ok(SecretBytes::new(plaintext))
    }

    /// POST `payload` (JSON text) to `resource`, signed, counted and timed.
    async fn call(
        &self,
        resource: &str,
        payload: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, XksError> {
        let started = std::time::Instant::now();
        let result = self.send(resource, payload).await;
        if let Some(m) = &self.metrics {
            let operation = resource.rsplit('/').next().unwrap_or(resource);
            let outcome = result.as_ref().err().map_or("success", XksError::kind);
            m.xks_requests
                .with_label_values(&[operation, outcome])
                .inc();
            m.xks_duration
                .with_label_values(&[operation])
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }

    /// POST `payload` (JSON text) to `resource`, signed; the answer's body, or the proxy's error.
    async fn send(
        &self,
        resource: &str,
        payload: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, XksError> {
        let url = self.endpoint.url(resource);
        let headers = self.signed_headers(&url, &payload)?;
        let mut request = self.http.post(&url).body(payload.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            // rustls's verdict is deep in the source chain.
            let chain = format!("{:?}", e);
            let e = e.without_url();
            if chain.contains("InvalidCertificate") || chain.contains("UnknownIssuer") {
                XksError::Tls(e.to_string())
            } else {
                XksError::Unreachable(e.to_string())
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| XksError::Unreachable(e.without_url().to_string()))?;
        if status.is_success() {
            return Ok(Zeroizing::new(bytes.to_vec()));
        }
        let name = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error_name)
            .unwrap_or_else(|_| format!("HTTP {}", status.as_u16()));
        Err(match name.as_str() {
            "AuthenticationFailedException" => XksError::AuthenticationFailed,
            "AccessDeniedException" => XksError::AccessDenied,
            "KeyNotFoundException" => XksError::KeyNotFound,
            "InvalidStateException" => XksError::InvalidState,
            "InvalidKeyUsageException" => XksError::InvalidKeyUsage,
            "InvalidCiphertextException" => XksError::InvalidCiphertext,
            "InvalidUriPathException" => XksError::InvalidUriPath,
            _ => XksError::Proxy { name },
        })
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, ...) of a POST of `body` to `url`.
    fn signed_headers(&self, url: &str, body: &[u8]) -> Result<Vec<(String, String)>, XksError> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use aws_sigv4::sign::v4;
        let unsignable = |e: &dyn std::fmt::Display| XksError::Malformed(e.to_string());
        let identity = aws_credential_types::Credentials::new(
            self.credential.access_key_id.clone(),
            self.credential.secret.as_str().to_string(),
            None,
            None,
            "xks-proxy-credential",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| unsignable(&e))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| unsignable(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| unsignable(&e))?
            .into_parts();
        let mut out: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_endpoint_prefix_and_resource() {
        let e = ProxyEndpoint {
            uri_endpoint: "https://xks.example.com:8443/".into(),
            path_prefix: "/example/prefix".into(),
        };
        assert_eq!(
            e.url("keys/k1/encrypt"),
            "https://xks.example.com:8443/example/prefix/kms/xks/v1/keys/k1/encrypt"
        );
        let bare = ProxyEndpoint {
            uri_endpoint: "http://127.0.0.1:9000".into(),
            path_prefix: String::new(),
        };
        assert_eq!(
            bare.url("health"),
            "http://127.0.0.1:9000/kms/xks/v1/health"
        );
    }

    #[test]
    fn only_enabled_aes_keys_that_encrypt_and_decrypt_are_usable() {
        let m = |spec: &str, usage: &[&str], status: &str| KeyMetadata {
            key_spec: spec.into(),
            key_usage: usage.iter().map(|u| u.to_string()).collect(),
            key_status: status.into(),
        };
        assert!(m("AES_256", &["ENCRYPT", "DECRYPT", "WRAP"], "ENABLED").usable_by_kms());
        assert!(!m("AES_256", &["ENCRYPT"], "ENABLED").usable_by_kms());
        assert!(!m("AES_256", &["ENCRYPT", "DECRYPT"], "DISABLED").usable_by_kms());
        assert!(!m("RSA_2048", &["ENCRYPT", "DECRYPT"], "ENABLED").usable_by_kms());
    }

    #[test]
    fn the_integrity_value_covers_every_part_in_the_spec_order() {
        let sealed = XksCiphertext {
            ciphertext: b"ct".to_vec(),
            iv: b"iv".to_vec(),
            tag: b"tg".to_vec(),
            metadata: Some(b"md".to_vec()),
        };
        // SHA-256("aad" "md" "iv" "ct" "tg"), as `printf aadmdivcttg | sha256sum | xxd -r -p | base64`.
        let expected =
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"aadmdivcttg").as_ref());
        assert_eq!(integrity_value(b"aad", &sealed), expected);
        let mut moved = sealed.clone();
        moved.iv = b"ct".to_vec();
        moved.ciphertext = b"iv".to_vec();
        assert_ne!(
            integrity_value(b"aad", &moved),
            expected,
            "the order counts"
        );
    }

    #[test]
    fn the_credential_secret_is_never_printed() {
        let c = ProxyCredential {
            access_key_id: "AKIAXKS".into(),
            secret: Zeroizing::new("very secret value".into()),
        };
        assert!(!format!("{c:?}").contains("secret value"));
    }
}
