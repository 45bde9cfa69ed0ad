//! External key stores: the client of the XKS Proxy API (AWS's published interface between KMS and
//! an external key manager's proxy). Requests are JSON over HTTPS to
//! `{endpoint}{path}/kms/xks/v1/...`, signed with SigV4 under the service name `kms-xks-proxy`
//! with the store's proxy authentication credential, and carry `requestMetadata` naming the KMS
//! call they serve. Each call has the spec's 250 ms budget.
//!
//! This module owns the wire protocol and its errors only; which store and key a call uses, and
//! what a failure means for a KMS request, belong to the callers.

mod client;

pub use client::{
    tls_config, HealthStatus, KeyMetadata, ProxyCredential, ProxyEndpoint, RequestMetadata,
    XksCiphertext, XksClient, XksError, CALL_TIMEOUT, SIGNING_SERVICE,
};
