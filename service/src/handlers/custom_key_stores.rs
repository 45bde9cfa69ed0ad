//! External key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
//! ConnectCustomKeyStore, DisconnectCustomKeyStore and DeleteCustomKeyStore. A store is a stream
//! of events (`cks/{id}`); its proxy credential's secret is sealed under the root key in the
//! keystore, never in an event or record. Creating, connecting and updating a store call the
//! proxy's GetHealthStatus, as AWS does. CloudHSM key stores and VPC endpoint connectivity
//! answer UnsupportedOperationException.

use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::pagination::{decode_marker, page};
use super::{authorize_account, CallContext, Outcome};
use crate::crypto::random_public;
use crate::domain::custom_key_store::{
    credential_owner, ConnectionState, CustomKeyStore, CustomKeyStoreEvent,
};
use crate::domain::key::epoch_seconds;
use crate::protocol::wire::{decode, set};
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::{SealedMaterial, StreamAppend};
use crate::xks::{
    ProxyCredential, ProxyEndpoint, RequestMetadata, XksClient, XksError, CALL_TIMEOUT,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireCredential {
    access_key_id: String,
    raw_secret_access_key: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    custom_key_store_name: String,
    cloud_hsm_cluster_id: Option<String>,
    custom_key_store_type: Option<String>,
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_authentication_credential: Option<WireCredential>,
    xks_proxy_connectivity: Option<String>,
}

/// Refuse what Trent does not offer, saying so.
fn offered(store_type: Option<&str>, connectivity: Option<&str>) -> Result<(), KmsError> {
    if store_type != Some("EXTERNAL_KEY_STORE") {
        return Err(KmsError::UnsupportedOperation(
            "AWS CloudHSM key stores are not supported by this server; use CustomKeyStoreType EXTERNAL_KEY_STORE."
                .into(),
        ));
    }
    if connectivity == Some("VPC_ENDPOINT_SERVICE") {
        return Err(KmsError::UnsupportedOperation(
            "XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by this server (there is no Amazon VPC here); use PUBLIC_ENDPOINT."
                .into(),
        ));
    }
    Ok(())
}

/// An endpoint this server accepts: `https://host` as AWS does (the model's pattern), or, with
/// `--xks-allow-http` (tests only), `http://host[:port]`.
fn check_endpoint(state: &AppState, endpoint: &str) -> Result<(), KmsError> {
    let host_and_port = |rest: &str| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
    };
    if let Some(rest) = endpoint.strip_prefix("https://") {
        if rest.contains(':') && !(state.xks_allow_http && host_and_port(rest)) {
            return Err(KmsError::Validation(format!(
                "XksProxyUriEndpoint {endpoint} must not name a port (a server started with --xks-allow-http accepts one, for tests)."
            )));
        }
        if state.xks_tls.is_none() {
            return Err(KmsError::XksProxyInvalidConfiguration(
                "This server has no CA bundle to verify XKS proxies' certificates with (start it with --xks-ca-bundle).".into(),
            ));
        }
        return Ok(());
    }
    if let Some(rest) = endpoint.strip_prefix("http://") {
        if state.xks_allow_http && host_and_port(rest) {
            return Ok(());
        }
        return Err(KmsError::Validation(format!(
            "XksProxyUriEndpoint {endpoint} must use https:// (plain HTTP is accepted only by a server started with --xks-allow-http, for tests)."
        )));
    }
    Ok(())
}

/// The path prefix of an `XksProxyUriPath` (which ends with `/kms/xks/v1` or another version).
fn path_prefix(uri_path: &str) -> Result<String, KmsError> {
    uri_path
        .rsplit_once("/kms/xks/v")
        .map(|(prefix, _)| prefix.to_string())
        .ok_or_else(|| {
            KmsError::Validation(format!(
                "XksProxyUriPath {uri_path} must end with /kms/xks/v1."
            ))
        })
}

/// A client for the given settings.
fn client(
    state: &AppState,
    ctx: &CallContext,
    endpoint: &str,
    uri_path: &str,
    credential: ProxyCredential,
) -> Result<XksClient, KmsError> {
    XksClient::new(
        ProxyEndpoint {
            uri_endpoint: endpoint.to_string(),
            path_prefix: path_prefix(uri_path)?,
        },
        credential,
        &ctx.region,
        CALL_TIMEOUT,
        state.xks_tls.clone(),
    )
    .map(|c| c.with_metrics(state.metrics.clone()))
    .map_err(|e| KmsError::KmsInternal(format!("The XKS proxy client could not be made: {e}")))
}

fn request_metadata(ctx: &CallContext) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some(ctx.principal.arn.clone()),
        kms_key_arn: None,
        kms_operation: ctx.op.name().to_string(),
        kms_request_id: ctx.request_id.clone(),
    }
}

/// The KMS error for a health check that failed while creating or updating a store.
fn setting_error(e: XksError) -> KmsError {
    match e {
        XksError::AuthenticationFailed => KmsError::XksProxyIncorrectAuthenticationCredential(
            "The external key store proxy rejected the request because of an invalid authentication credential."
                .into(),
        ),
        XksError::Unreachable(_) => KmsError::XksProxyUriUnreachable(
            "KMS was unable to communicate with the external key store proxy at the specified URI."
                .into(),
        ),
        XksError::Tls(_) => KmsError::XksProxyUriUnreachable(
            "KMS was unable to communicate with the external key store proxy: its TLS certificate does not verify against this server's CA bundle."
                .into(),
        ),
        XksError::InvalidUriPath | XksError::AccessDenied => KmsError::XksProxyInvalidConfiguration(
            format!("The external key store proxy refused the request: {e}."),
        ),
        other => KmsError::XksProxyInvalidResponse(format!(
            "The external key store proxy did not answer as the XKS Proxy API specifies: {other}."
        )),
    }
}

/// AWS's `ConnectionErrorCode` for a failed connection attempt.
fn connection_error_code(e: &XksError) -> &'static str {
    match e {
        XksError::AuthenticationFailed => "INVALID_CREDENTIALS",
        XksError::AccessDenied => "XKS_PROXY_ACCESS_DENIED",
        XksError::Unreachable(m) if m.contains("timed out") => "XKS_PROXY_TIMED_OUT",
        XksError::Unreachable(_) => "XKS_PROXY_NOT_REACHABLE",
        XksError::Tls(_) => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        XksError::InvalidUriPath => "XKS_PROXY_INVALID_CONFIGURATION",
        XksError::Malformed(_) => "XKS_PROXY_INVALID_RESPONSE",
        _ => "INTERNAL_ERROR",
    }
}

/// The proxy answers GetHealthStatus with at least one active external key manager (AWS treats
/// a proxy whose every key manager instance is unavailable as unreachable).
async fn healthy(client: &XksClient, ctx: &CallContext) -> Result<(), XksError> {
    let health = client.health(&request_metadata(ctx)).await?;
    if health.is_active() {
        Ok(())
    } else {
        Err(XksError::Unreachable(
            "no external key manager instance is active".into(),
        ))
    }
}

fn not_found(what: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!("Custom key store {what} does not exist."))
}

/// The caller's store with this id.
fn store_of(state: &AppState, ctx: &CallContext, id: &str) -> Result<CustomKeyStore, KmsError> {
    state
        .read_model()?
        .custom_key_store(id)
        .filter(|s| s.account == ctx.principal.account && s.region == ctx.region)
        .cloned()
        .ok_or_else(|| not_found(id))
}

/// Refuse a name or proxy URI another store of the account and region already has.
fn check_unique(
    state: &AppState,
    ctx: &CallContext,
    except: Option<&str>,
    name: Option<&str>,
    uri: Option<(&str, &str)>,
) -> Result<(), KmsError> {
    let model = state.read_model()?;
    for other in model
        .custom_key_stores_in(&ctx.principal.account, &ctx.region)
        .filter(|s| Some(s.id.as_str()) != except)
    {
        if name == Some(other.name.as_str()) {
            return Err(KmsError::CustomKeyStoreNameInUse(format!(
                "The custom key store name {} is already in use.",
                other.name
            )));
        }
        if uri == Some((other.uri_endpoint.as_str(), other.uri_path.as_str())) {
            return Err(KmsError::XksProxyUriInUse(format!(
                "The external key store proxy URI {}{} is already in use by custom key store {}.",
                other.uri_endpoint, other.uri_path, other.id
            )));
        }
    }
    Ok(())
}

fn event_append(
    store_id: &str,
    version: i64,
    event: CustomKeyStoreEvent,
) -> Result<StreamAppend, KmsError> {
    let encoded = event
        .to_new_event()
        .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    Ok(StreamAppend {
        stream: CustomKeyStoreEvent::stream_for(store_id),
        expected_version: version,
        events: vec![encoded],
    })
}

/// The credential's secret sealed under the root key, as keystore row (`cks/{id}`, version).
fn sealed_credential(
    state: &AppState,
    store_id: &str,
    version: i32,
    secret: &str,
) -> Result<SealedMaterial, KmsError> {
    let owner = credential_owner(store_id);
    let secret = crate::crypto::secret::SecretBytes::new(secret.as_bytes().to_vec());
    let sealed = state
        .root_key
        .seal(&owner, version, &secret)
        .map_err(|_| KmsError::KmsInternal("Sealing the proxy credential failed.".into()))?;
    Ok(SealedMaterial {
        key_id: owner,
        version,
        sealed,
    })
}

/// CreateCustomKeyStore: an external key store, checked against its proxy, DISCONNECTED.
pub async fn create_custom_key_store(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: CreateRequest = decode(body)?;
    authorize_account(state, ctx)?;
    if req.cloud_hsm_cluster_id.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "AWS CloudHSM key stores are not supported by this server.".into(),
        ));
    }
    offered(
        req.custom_key_store_type.as_deref(),
        req.xks_proxy_connectivity.as_deref(),
    )?;
    if req.xks_proxy_vpc_endpoint_service_name.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "XksProxyVpcEndpointServiceName is not supported by this server.".into(),
        ));
    }
    let missing = |member: &str| {
        KmsError::Validation(format!(
            "{member} is required for a custom key store of type EXTERNAL_KEY_STORE."
        ))
    };
    let connectivity = req
        .xks_proxy_connectivity
        .ok_or_else(|| missing("XksProxyConnectivity"))?;
    let endpoint = req
        .xks_proxy_uri_endpoint
        .ok_or_else(|| missing("XksProxyUriEndpoint"))?;
    let uri_path = req
        .xks_proxy_uri_path
        .ok_or_else(|| missing("XksProxyUriPath"))?;
    let credential = req
        .xks_proxy_authentication_credential
        .ok_or_else(|| missing("XksProxyAuthenticationCredential"))?;
    check_endpoint(state, &endpoint)?;
    check_unique(
        state,
        ctx,
        None,
        Some(&req.custom_key_store_name),
        Some((&endpoint, &uri_path)),
    )?;
    let proxy = client(
        state,
        ctx,
        &endpoint,
        &uri_path,
        ProxyCredential {
            access_key_id: credential.access_key_id.clone(),
            secret: credential.raw_secret_access_key.clone(),
        },
    )?;
    healthy(&proxy, ctx).await.map_err(setting_error)?;
    let random =
        random_public(9).map_err(|_| KmsError::KmsInternal("Randomness failed.".into()))?;
    let id = format!("cks-{}", &hex::encode(random)[..17]);
    let event = CustomKeyStoreEvent::CustomKeyStoreCreated {
        schema: 1,
        id: id.clone(),
        account: ctx.principal.account.clone(),
        region: ctx.region.clone(),
        name: req.custom_key_store_name,
        uri_endpoint: endpoint,
        uri_path,
        connectivity,
        access_key_id: credential.access_key_id,
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(json!({ "CustomKeyStoreId": id }));
    outcome.response_elements = Some(json!({ "customKeyStoreId": id }));
    outcome.unit.materials.push(sealed_credential(
        state,
        &id,
        1,
        &credential.raw_secret_access_key,
    )?);
    outcome.unit.appends.push(event_append(&id, 0, event)?);
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    custom_key_store_id: Option<String>,
    custom_key_store_name: Option<String>,
    limit: Option<usize>,
    marker: Option<String>,
}

fn entry(s: &CustomKeyStore) -> Value {
    let mut e = json!({
        "CustomKeyStoreId": s.id,
        "CustomKeyStoreName": s.name,
        "ConnectionState": s.state.as_str(),
        "CreationDate": epoch_seconds(s.created_at),
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConfiguration": {
            "Connectivity": s.connectivity,
            "AccessKeyId": s.access_key_id,
            "UriEndpoint": s.uri_endpoint,
            "UriPath": s.uri_path,
        },
    });
    if let Some(code) = &s.connection_error {
        set(&mut e, "ConnectionErrorCode", json!(code));
    }
    e
}

/// DescribeCustomKeyStores: one store by id or name, or every store of the account and region.
pub fn describe_custom_key_stores(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DescribeRequest = decode(body)?;
    authorize_account(state, ctx)?;
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let model = state.read_model()?;
    let stores: Vec<&CustomKeyStore> = model
        .custom_key_stores_in(&ctx.principal.account, &ctx.region)
        .filter(|s| {
            req.custom_key_store_id
                .as_ref()
                .is_none_or(|id| s.id == *id)
        })
        .filter(|s| {
            req.custom_key_store_name
                .as_ref()
                .is_none_or(|n| s.name == *n)
        })
        .collect();
    if stores.is_empty() {
        if let Some(what) = req
            .custom_key_store_id
            .as_ref()
            .or(req.custom_key_store_name.as_ref())
        {
            return Err(not_found(what));
        }
    }
    let body = page(
        stores
            .into_iter()
            .filter(|s| after.as_deref().is_none_or(|a| s.id.as_str() > a)),
        req.limit.unwrap_or(1000),
        "CustomKeyStores",
        |s| s.id.clone(),
        |s| entry(s),
    );
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoreOnly {
    custom_key_store_id: String,
}

/// The store's proxy client, with its sealed credential opened.
async fn store_client(
    state: &AppState,
    ctx: &CallContext,
    store: &CustomKeyStore,
) -> Result<XksClient, KmsError> {
    let secret = state
        .open_material(&store.credential_owner(), store.credential_version)
        .await?;
    let secret = String::from_utf8(secret.as_slice().to_vec())
        .map_err(|_| KmsError::KmsInternal("The stored proxy credential is unreadable.".into()))?;
    client(
        state,
        ctx,
        &store.uri_endpoint,
        &store.uri_path,
        ProxyCredential {
            access_key_id: store.access_key_id.clone(),
            secret: Zeroizing::new(secret),
        },
    )
}

/// ConnectCustomKeyStore: check the proxy's health and record CONNECTED, or FAILED with AWS's
/// ConnectionErrorCode (the call succeeds either way, as AWS's does; DescribeCustomKeyStores
/// tells). A failed store must be disconnected before it connects again.
pub async fn connect_custom_key_store(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: StoreOnly = decode(body)?;
    authorize_account(state, ctx)?;
    let store = store_of(state, ctx, &req.custom_key_store_id)?;
    match store.state {
        ConnectionState::Connected => return Ok(Outcome::reply(json!({}))),
        ConnectionState::Failed => {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {} is in the FAILED state; disconnect it before connecting it again.",
            store.id
        )))
        }
        ConnectionState::Disconnected => {}
    }
    let proxy = store_client(state, ctx, &store).await?;
    let error = healthy(&proxy, ctx)
        .await
        .err()
        .map(|e| connection_error_code(&e).to_string());
    let event = CustomKeyStoreEvent::CustomKeyStoreConnected {
        schema: 1,
        error,
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(json!({}));
    outcome
        .unit
        .appends
        .push(event_append(&store.id, store.stream_version, event)?);
    Ok(outcome)
}

/// DisconnectCustomKeyStore.
pub fn disconnect_custom_key_store(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: StoreOnly = decode(body)?;
    authorize_account(state, ctx)?;
    let store = store_of(state, ctx, &req.custom_key_store_id)?;
    let mut outcome = Outcome::reply(json!({}));
    if store.state != ConnectionState::Disconnected {
        let event = CustomKeyStoreEvent::CustomKeyStoreDisconnected {
            schema: 1,
            at: state.clock.now(),
        };
        outcome
            .unit
            .appends
            .push(event_append(&store.id, store.stream_version, event)?);
    }
    Ok(outcome)
}

/// DeleteCustomKeyStore: only a disconnected store, and its sealed credential goes with it.
pub fn delete_custom_key_store(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: StoreOnly = decode(body)?;
    authorize_account(state, ctx)?;
    let store = store_of(state, ctx, &req.custom_key_store_id)?;
    let holds_keys = state
        .read_model()?
        .all_keys()
        .any(|k| k.is_live() && k.custom_key_store_id.as_deref() == Some(store.id.as_str()));
    if holds_keys {
        return Err(KmsError::CustomKeyStoreHasCmks(format!(
            "Custom key store {} still holds KMS keys; delete them (ScheduleKeyDeletion) first.",
            store.id
        )));
    }
    if store.state != ConnectionState::Disconnected {
        return Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {} is {}; disconnect it before deleting it.",
            store.id,
            store.state.as_str()
        )));
    }
    let event = CustomKeyStoreEvent::CustomKeyStoreDeleted {
        schema: 1,
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(json!({}));
    outcome
        .unit
        .appends
        .push(event_append(&store.id, store.stream_version, event)?);
    outcome
        .unit
        .destroy_materials
        .push(store.credential_owner());
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRequest {
    custom_key_store_id: String,
    new_custom_key_store_name: Option<String>,
    key_store_password: Option<String>,
    cloud_hsm_cluster_id: Option<String>,
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_authentication_credential: Option<WireCredential>,
    xks_proxy_connectivity: Option<String>,
}

/// UpdateCustomKeyStore: the name and the credential in any state; the endpoint, path and
/// connectivity only while disconnected. New proxy settings are checked against the proxy.
pub async fn update_custom_key_store(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: UpdateRequest = decode(body)?;
    authorize_account(state, ctx)?;
    if req.key_store_password.is_some() || req.cloud_hsm_cluster_id.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "AWS CloudHSM key stores are not supported by this server.".into(),
        ));
    }
    if req.xks_proxy_vpc_endpoint_service_name.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "XksProxyVpcEndpointServiceName is not supported by this server.".into(),
        ));
    }
    offered(
        Some("EXTERNAL_KEY_STORE"),
        req.xks_proxy_connectivity.as_deref(),
    )?;
    let store = store_of(state, ctx, &req.custom_key_store_id)?;
    let moves = req.xks_proxy_uri_endpoint.is_some()
        || req.xks_proxy_uri_path.is_some()
        || req.xks_proxy_connectivity.is_some();
    if moves && store.state != ConnectionState::Disconnected {
        return Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {} is {}; disconnect it before changing its proxy URI or connectivity.",
            store.id,
            store.state.as_str()
        )));
    }
    let endpoint = req
        .xks_proxy_uri_endpoint
        .clone()
        .unwrap_or_else(|| store.uri_endpoint.clone());
    let uri_path = req
        .xks_proxy_uri_path
        .clone()
        .unwrap_or_else(|| store.uri_path.clone());
    check_endpoint(state, &endpoint)?;
    check_unique(
        state,
        ctx,
        Some(&store.id),
        req.new_custom_key_store_name.as_deref(),
        moves.then_some((endpoint.as_str(), uri_path.as_str())),
    )?;
    let credential_version = store.credential_version + 1;
    let mut outcome = Outcome::reply(json!({}));
    if moves || req.xks_proxy_authentication_credential.is_some() {
        let credential = match &req.xks_proxy_authentication_credential {
            Some(c) => ProxyCredential {
                access_key_id: c.access_key_id.clone(),
                secret: c.raw_secret_access_key.clone(),
            },
            None => {
                let secret = state
                    .open_material(&store.credential_owner(), store.credential_version)
                    .await?;
                ProxyCredential {
                    access_key_id: store.access_key_id.clone(),
                    secret: Zeroizing::new(String::from_utf8(secret.as_slice().to_vec()).map_err(
                        |_| {
                            KmsError::KmsInternal(
                                "The stored proxy credential is unreadable.".into(),
                            )
                        },
                    )?),
                }
            }
        };
        let proxy = client(state, ctx, &endpoint, &uri_path, credential.clone())?;
        healthy(&proxy, ctx).await.map_err(setting_error)?;
        if req.xks_proxy_authentication_credential.is_some() {
            outcome.unit.materials.push(sealed_credential(
                state,
                &store.id,
                credential_version,
                &credential.secret,
            )?);
        }
    }
    let new_credential = req.xks_proxy_authentication_credential.as_ref();
    let event = CustomKeyStoreEvent::CustomKeyStoreUpdated {
        schema: 1,
        name: req.new_custom_key_store_name,
        uri_endpoint: req.xks_proxy_uri_endpoint,
        uri_path: req.xks_proxy_uri_path,
        connectivity: req.xks_proxy_connectivity,
        access_key_id: new_credential.map(|c| c.access_key_id.clone()),
        credential_version: new_credential.map(|_| credential_version),
        at: state.clock.now(),
    };
    outcome
        .unit
        .appends
        .push(event_append(&store.id, store.stream_version, event)?);
    Ok(outcome)
}

/// The periodic health check of every connected external key store (run by the scheduler): the
/// ids of those whose proxy failed, also published as `trent_xks_unhealthy_key_stores`. A store
/// stays CONNECTED, as in AWS; its keys' calls fail until the proxy answers again.
pub async fn check_connected_stores(state: &AppState) -> Vec<String> {
    let connected: Vec<CustomKeyStore> = match state.read_model() {
        Ok(model) => model
            .all_custom_key_stores()
            .filter(|s| s.state == ConnectionState::Connected)
            .cloned()
            .collect(),
        Err(_) => return Vec::new(),
    };
    let mut unhealthy = Vec::new();
    for store in connected {
        let ok = match periodic_client(state, &store).await {
            Ok(client) => {
                let metadata = RequestMetadata {
                    aws_principal_arn: None,
                    kms_key_arn: None,
                    kms_operation: "KmsHealthCheck".into(),
                    kms_request_id: uuid::Uuid::new_v4().to_string(),
                };
                client.health(&metadata).await.is_ok_and(|h| h.is_active())
            }
            Err(_) => false,
        };
        if !ok {
            tracing::warn!(custom_key_store_id = %store.id, "external key store proxy failed its health check");
            unhealthy.push(store.id.clone());
        }
    }
    state
        .metrics
        .xks_unhealthy_stores
        .set(unhealthy.len() as i64);
    unhealthy
}

/// A store's client outside a call (the scheduler's health checks).
async fn periodic_client(state: &AppState, store: &CustomKeyStore) -> Result<XksClient, KmsError> {
    let secret = state
        .open_material(&store.credential_owner(), store.credential_version)
        .await?;
    let secret = String::from_utf8(secret.as_slice().to_vec())
        .map_err(|_| KmsError::KmsInternal("The stored proxy credential is unreadable.".into()))?;
    XksClient::new(
        ProxyEndpoint {
            uri_endpoint: store.uri_endpoint.clone(),
            path_prefix: path_prefix(&store.uri_path)?,
        },
        ProxyCredential {
            access_key_id: store.access_key_id.clone(),
            secret: Zeroizing::new(secret),
        },
        &store.region,
        CALL_TIMEOUT,
        state.xks_tls.clone(),
    )
    .map(|c| c.with_metrics(state.metrics.clone()))
    .map_err(|e| KmsError::KmsInternal(format!("The XKS proxy client could not be made: {e}")))
}

/// CreateKey in an external key store: the store is the caller's and CONNECTED, no other key of
/// it uses the external key, and the proxy says the key is an enabled AES-256 key that encrypts
/// and decrypts (AWS's checks and errors).
pub async fn check_external_key(
    state: &AppState,
    ctx: &CallContext,
    store_id: &str,
    xks_key_id: &str,
) -> Result<(), KmsError> {
    let store = store_of(state, ctx, store_id)?;
    if store.state != ConnectionState::Connected {
        return Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {} is {}; connect it before creating keys in it.",
            store.id,
            store.state.as_str()
        )));
    }
    let in_use = state.read_model()?.all_keys().any(|k| {
        k.is_live()
            && k.custom_key_store_id.as_deref() == Some(store_id)
            && k.xks_key_id.as_deref() == Some(xks_key_id)
    });
    if in_use {
        return Err(KmsError::XksKeyAlreadyInUse(format!(
            "External key {xks_key_id} is already associated with a KMS key in custom key store {store_id}."
        )));
    }
    let proxy = store_client(state, ctx, &store).await?;
    let metadata = proxy
        .key_metadata(xks_key_id, &request_metadata(ctx))
        .await
        .map_err(|e| match e {
            XksError::KeyNotFound => KmsError::XksKeyNotFound(format!(
                "The external key store proxy could not find external key {xks_key_id}."
            )),
            other => setting_error(other),
        })?;
    if !metadata.usable_by_kms() {
        return Err(KmsError::XksKeyInvalidConfiguration(format!(
            "External key {xks_key_id} is {} with usage {:?} and status {}: a KMS key needs an enabled AES_256 key that can ENCRYPT and DECRYPT.",
            metadata.key_spec, metadata.key_usage, metadata.key_status
        )));
    }
    Ok(())
}

/// The client of the store a key is in, for one of its cryptographic calls: the store must be
/// CONNECTED (its keys are Unavailable otherwise, as in AWS).
async fn key_client(
    state: &AppState,
    ctx: &CallContext,
    key: &crate::domain::key::KeySnapshot,
) -> Result<(XksClient, String, RequestMetadata), KmsError> {
    let unavailable = || KmsError::KmsInvalidState(format!("{} is unavailable.", key.arn()));
    let (Some(store_id), Some(xks_key)) = (&key.custom_key_store_id, &key.xks_key_id) else {
        return Err(unavailable());
    };
    let store = state
        .read_model()?
        .custom_key_store(store_id)
        .cloned()
        .ok_or_else(unavailable)?;
    if store.state != ConnectionState::Connected {
        return Err(unavailable());
    }
    let client = store_client(state, ctx, &store).await?;
    let metadata = RequestMetadata {
        aws_principal_arn: Some(ctx.principal.arn.clone()),
        kms_key_arn: Some(key.arn()),
        kms_operation: ctx.op.name().to_string(),
        kms_request_id: ctx.request_id.clone(),
    };
    // The record names the store and the external key the call used.
    if let Ok(mut used) = ctx.external_key_store.lock() {
        *used = Some(json!({ "customKeyStoreId": store.id, "xksKeyId": xks_key }));
    }
    Ok((client, xks_key.clone(), metadata))
}

/// AWS's answer to an external key store failing a cryptographic call: KMSInvalidStateException,
/// its "general failure" for keys in custom key stores, with the cause in the message.
fn crypto_error(key: &crate::domain::key::KeySnapshot, e: XksError) -> KmsError {
    match e {
        XksError::InvalidCiphertext => KmsError::InvalidCiphertext(String::new()),
        other => KmsError::KmsInvalidState(format!(
            "{} cannot be used: its external key store failed: {other}.",
            key.arn()
        )),
    }
}

/// The external layer of a key's double encryption: `inner` (the version-2 blob) encrypted by
/// the key's external key, authenticating `aad`.
pub async fn external_encrypt(
    state: &AppState,
    ctx: &CallContext,
    key: &crate::domain::key::KeySnapshot,
    inner: &crate::crypto::secret::SecretBytes,
    aad: &[u8],
) -> Result<crate::crypto::ciphertext::ExternalLayer, KmsError> {
    let (client, xks_key, metadata) = key_client(state, ctx, key).await?;
    let sealed = client
        .encrypt(&xks_key, inner, aad, &metadata)
        .await
        .map_err(|e| crypto_error(key, e))?;
    Ok(crate::crypto::ciphertext::ExternalLayer {
        iv: sealed.iv,
        tag: sealed.tag,
        metadata: sealed.metadata.unwrap_or_default(),
        ciphertext: sealed.ciphertext,
    })
}

/// Open a key's external layer: the version-2 blob inside.
pub async fn external_decrypt(
    state: &AppState,
    ctx: &CallContext,
    key: &crate::domain::key::KeySnapshot,
    layer: &crate::crypto::ciphertext::ExternalLayer,
    aad: &[u8],
) -> Result<crate::crypto::secret::SecretBytes, KmsError> {
    let (client, xks_key, metadata) = key_client(state, ctx, key).await?;
    let sealed = crate::xks::XksCiphertext {
        ciphertext: layer.ciphertext.clone(),
        iv: layer.iv.clone(),
        tag: layer.tag.clone(),
        metadata: (!layer.metadata.is_empty()).then(|| layer.metadata.clone()),
    };
    client
        .decrypt(&xks_key, &sealed, aad, &metadata)
        .await
        .map_err(|e| crypto_error(key, e))
}
