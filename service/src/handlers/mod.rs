//! Operation handlers. Each handler has the same shape: decode its typed request, resolve the key,
//! authorise, check the domain rules, do the cryptography, and return an `Outcome` (response body
//! plus whatever must be committed). The HTTP edge (`server`) adds the audit record and commits.

mod aliases;
mod asymmetric;

pub use asymmetric::algorithm_lists;
mod crypto_ops;
pub mod custom_key_stores;
mod grants;
pub mod import;
mod key_policy;
pub(crate) mod keys;
mod lifecycle;
pub mod multi_region;
mod pagination;
pub mod rotation;
mod tags;

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::auth::identity::Principal;
use crate::authorize::{action_of, decide, key_request, CallFacts};
use crate::crypto::secret::SecretBytes;
use crate::domain::events::{AliasEvent, KeyEvent};
use crate::domain::key::KeySnapshot;
use crate::protocol::{KmsError, Operation};
use crate::state::AppState;
use crate::store::{CommitUnit, StreamAppend};

/// What one call knows about itself while it runs.
#[derive(Debug)]
pub struct CallContext {
    /// The operation.
    pub op: Operation,
    /// The authenticated caller (shared with the request's `Caller`).
    pub principal: std::sync::Arc<Principal>,
    /// The region selected by the request's credential scope.
    pub region: String,
    /// Key ARNs the call resolved (the audit record's `resources`).
    pub resources: Mutex<Vec<String>>,
    /// Metrics the call updates (authorization decisions, use of keys pending deletion).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Where and when the call comes from (the global condition keys).
    pub origin: crate::authorize::Origin,
    /// The alias the caller named the key by, if any (`kms:RequestAlias`).
    pub request_alias: Mutex<Option<String>>,
    /// The request's own condition keys (`condition_keys::from_request`, plus any a handler adds).
    pub condition_keys: Mutex<Vec<crate::condition_keys::ConditionKey>>,
    /// The request id (the record's `requestID`, and the XKS proxy's `kmsRequestId`).
    pub request_id: String,
    /// The external key store the call used (the record's `additionalEventData`).
    pub external_key_store: Mutex<Option<Value>>,
}

impl CallContext {
    /// Count an authorization decision by its simulator name.
    pub fn count_decision(&self, decision: &str) {
        self.metrics
            .authorization_decisions
            .with_label_values(&[decision])
            .inc();
    }

    /// Add a condition key the handler learned (e.g. `kms:ReEncryptOnSameKey`).
    pub fn add_condition_key(&self, name: &str, value: trent_policy::ContextValue) {
        if let Ok(mut keys) = self.condition_keys.lock() {
            keys.push((name.to_string(), vec![value]));
        }
    }

    /// The request's condition keys, as they stand.
    fn request_keys(&self) -> Vec<crate::condition_keys::ConditionKey> {
        self.condition_keys
            .lock()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// Remember a key ARN the call touched.
    pub fn touch(&self, arn: String) {
        if let Ok(mut r) = self.resources.lock() {
            if !r.contains(&arn) {
                r.push(arn);
            }
        }
    }
}

/// The result of a successful handler.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The response body.
    pub body: Value,
    /// Events and material to commit with the call's audit record.
    pub unit: CommitUnit,
    /// CloudTrail `responseElements` (null for most operations).
    pub response_elements: Option<Value>,
}

impl Outcome {
    /// A response with nothing to commit but the audit record.
    pub fn reply(body: Value) -> Self {
        Self {
            body,
            ..Self::default()
        }
    }
}

/// Run the handler of `op`.
pub async fn dispatch(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    use Operation::*;
    match ctx.op {
        CreateKey => keys::create_key(state, ctx, body).await,
        DescribeKey => keys::describe_key(state, ctx, body),
        ListKeys => keys::list_keys(state, ctx, body),
        GetKeyLastUsage => keys::get_key_last_usage(state, ctx, body).await,
        Encrypt => crypto_ops::encrypt(state, ctx, body).await,
        Decrypt => crypto_ops::decrypt(state, ctx, body).await,
        ReEncrypt => crypto_ops::re_encrypt(state, ctx, body).await,
        GenerateDataKey => crypto_ops::generate_data_key(state, ctx, body, true).await,
        GenerateDataKeyWithoutPlaintext => {
            crypto_ops::generate_data_key(state, ctx, body, false).await
        }
        GenerateRandom => crypto_ops::generate_random(state, ctx, body),
        EnableKey => lifecycle::enable_key(state, ctx, body),
        DisableKey => lifecycle::disable_key(state, ctx, body),
        UpdateKeyDescription => lifecycle::update_key_description(state, ctx, body),
        ScheduleKeyDeletion => lifecycle::schedule_key_deletion(state, ctx, body),
        CancelKeyDeletion => lifecycle::cancel_key_deletion(state, ctx, body),
        CreateAlias => aliases::create_alias(state, ctx, body),
        UpdateAlias => aliases::update_alias(state, ctx, body),
        DeleteAlias => aliases::delete_alias(state, ctx, body),
        ListAliases => aliases::list_aliases(state, ctx, body),
        TagResource => tags::tag_resource(state, ctx, body),
        UntagResource => tags::untag_resource(state, ctx, body),
        ListResourceTags => tags::list_resource_tags(state, ctx, body),
        EnableKeyRotation => rotation::enable_key_rotation(state, ctx, body),
        DisableKeyRotation => rotation::disable_key_rotation(state, ctx, body),
        GetKeyRotationStatus => rotation::get_key_rotation_status(state, ctx, body),
        RotateKeyOnDemand => rotation::rotate_key_on_demand(state, ctx, body),
        ListKeyRotations => rotation::list_key_rotations(state, ctx, body),
        GetPublicKey => asymmetric::get_public_key(state, ctx, body).await,
        Sign => asymmetric::sign(state, ctx, body).await,
        Verify => asymmetric::verify(state, ctx, body).await,
        GenerateMac => asymmetric::generate_mac(state, ctx, body).await,
        VerifyMac => asymmetric::verify_mac(state, ctx, body).await,
        DeriveSharedSecret => asymmetric::derive_shared_secret(state, ctx, body).await,
        Encapsulate => asymmetric::encapsulate(state, ctx, body).await,
        Decapsulate => asymmetric::decapsulate(state, ctx, body).await,
        GenerateDataKeyPair => asymmetric::generate_data_key_pair(state, ctx, body, true).await,
        GenerateDataKeyPairWithoutPlaintext => {
            asymmetric::generate_data_key_pair(state, ctx, body, false).await
        }
        CreateGrant => grants::create_grant(state, ctx, body),
        ListGrants => grants::list_grants(state, ctx, body),
        ListRetirableGrants => grants::list_retirable_grants(state, ctx, body),
        RetireGrant => grants::retire_grant(state, ctx, body),
        RevokeGrant => grants::revoke_grant(state, ctx, body),
        GetKeyPolicy => key_policy::get_key_policy(state, ctx, body),
        PutKeyPolicy => key_policy::put_key_policy(state, ctx, body),
        ListKeyPolicies => key_policy::list_key_policies(state, ctx, body),
        GetParametersForImport => import::get_parameters_for_import(state, ctx, body).await,
        ImportKeyMaterial => import::import_key_material(state, ctx, body).await,
        DeleteImportedKeyMaterial => import::delete_imported_key_material(state, ctx, body).await,
        ReplicateKey => multi_region::replicate_key(state, ctx, body),
        CreateCustomKeyStore => custom_key_stores::create_custom_key_store(state, ctx, body).await,
        DescribeCustomKeyStores => custom_key_stores::describe_custom_key_stores(state, ctx, body),
        UpdateCustomKeyStore => custom_key_stores::update_custom_key_store(state, ctx, body).await,
        ConnectCustomKeyStore => {
            custom_key_stores::connect_custom_key_store(state, ctx, body).await
        }
        DisconnectCustomKeyStore => {
            custom_key_stores::disconnect_custom_key_store(state, ctx, body)
        }
        DeleteCustomKeyStore => custom_key_stores::delete_custom_key_store(state, ctx, body),
        UpdatePrimaryRegion => multi_region::update_primary_region(state, ctx, body),
    }
}

/// A request whose only member that matters is `KeyId`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyOnly {
    /// The key.
    pub key_id: String,
}

/// Nitro Enclaves attestation (`Recipient`) is not offered: refuse it clearly.
pub(super) fn no_recipient(recipient: &Option<Value>) -> Result<(), KmsError> {
    if recipient.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by this server.".into(),
        ));
    }
    Ok(())
}

/// `DryRunOperationException` when DryRun is set (every check has passed by then).
pub fn dry_run_check(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        return Err(dry_run_succeeded());
    }
    Ok(())
}

/// The answer to a dry run whose every check passed.
pub fn dry_run_succeeded() -> KmsError {
    KmsError::DryRunOperation(
        "The request would have succeeded, but the DryRun option is set.".into(),
    )
}

/// The blob members of an operation's request, which never reach an audit record.
pub fn blob_members(op: Operation) -> &'static [&'static str] {
    use Operation::*;
    match op {
        Encrypt => &["Plaintext"],
        Decrypt => &["CiphertextBlob"],
        ReEncrypt => &["CiphertextBlob"],
        ImportKeyMaterial => &["EncryptedKeyMaterial", "ImportToken"],
        Sign => &["Message"],
        Verify => &["Message", "Signature"],
        GenerateMac => &["Message"],
        VerifyMac => &["Message", "Mac"],
        DeriveSharedSecret => &["PublicKey"],
        Decapsulate => &["SharedSecretCiphertextBlob"],
        // The proxy credential's secret never reaches a record.
        CreateCustomKeyStore | UpdateCustomKeyStore => &["XksProxyAuthenticationCredential"],
        _ => &[],
    }
}

/// Resolve a KeyId (key id, key ARN, alias name or alias ARN) to a key snapshot in the caller's
/// region, with AWS's errors.
pub fn resolve_key(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
) -> Result<Arc<KeySnapshot>, KmsError> {
    let model = state.read_model()?;
    let (account, region, id) = if let Some(rest) = key_id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [_, "kms", arn_region, arn_account, resource] = parts.as_slice() else {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        };
        let (arn_region, arn_account, resource) = (*arn_region, *arn_account, *resource);
        if arn_region != ctx.region {
            return Err(KmsError::NotFound(format!("Invalid arn {arn_region}")));
        }
        if resource.starts_with("alias/") {
            if let Ok(mut a) = ctx.request_alias.lock() {
                *a = Some(resource.to_string());
            }
            let alias = model
                .alias(arn_account, arn_region, resource)
                .ok_or_else(|| {
                    unless_unheld(
                        &model,
                        &AliasEvent::stream_for(arn_account, arn_region, resource),
                        alias_not_found(arn_region, arn_account, resource),
                    )
                })?;
            (
                arn_account.to_string(),
                arn_region.to_string(),
                alias.target_key_id.clone(),
            )
        } else if let Some(id) = resource.strip_prefix("key/") {
            (
                arn_account.to_string(),
                arn_region.to_string(),
                id.to_string(),
            )
        } else {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        }
    } else if key_id.starts_with("alias/") {
        if let Ok(mut a) = ctx.request_alias.lock() {
            *a = Some(key_id.to_string());
        }
        let alias = model
            .alias(&ctx.principal.account, &ctx.region, key_id)
            .ok_or_else(|| {
                unless_unheld(
                    &model,
                    &AliasEvent::stream_for(&ctx.principal.account, &ctx.region, key_id),
                    alias_not_found(&ctx.region, &ctx.principal.account, key_id),
                )
            })?;
        (
            ctx.principal.account.clone(),
            ctx.region.clone(),
            alias.target_key_id.clone(),
        )
    } else if is_well_formed_key_id(key_id) {
        (
            ctx.principal.account.clone(),
            ctx.region.clone(),
            key_id.to_string(),
        )
    } else {
        return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")));
    };
    let found = model
        .live_key_shared(&region, &id)
        .filter(|k| k.account == account);
    match found {
        Some(key) => {
            ctx.touch(key.arn());
            Ok(key)
        }
        None => Err(unless_unheld(
            &model,
            &KeyEvent::stream_for(&region, &id),
            KmsError::NotFound(format!(
                "Key '{}' does not exist",
                crate::domain::key::key_arn(&region, &account, &id)
            )),
        )),
    }
}

/// `error`, unless the model is warming up and does not hold `stream` (an alias retargeted, by
/// another replica, to a key not loaded yet): then the call needs the full model.
pub fn unless_unheld(
    model: &crate::domain::read_model::ReadModel,
    stream: &str,
    error: KmsError,
) -> KmsError {
    if model.holds_stream(stream) {
        error
    } else {
        KmsError::NeedsFullModel
    }
}

/// Whether a bare KeyId has the form of a key id: a hyphenated UUID, or `mrk-` and 32 lowercase
/// hex digits (a multi-Region key). Other strings answer "Invalid keyId", as AWS does.
fn is_well_formed_key_id(key_id: &str) -> bool {
    match key_id.strip_prefix("mrk-") {
        Some(hex) => {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => key_id.len() == 36 && uuid::Uuid::try_parse(key_id).is_ok(),
    }
}

fn alias_not_found(region: &str, account: &str, alias: &str) -> KmsError {
    KmsError::NotFound(format!(
        "Alias arn:aws:kms:{region}:{account}:{alias} is not found."
    ))
}

/// Whether a policy tests `kms:ResourceAliases` (authorizing then lists every alias of the key).
pub fn tests_resource_aliases(policy: &trent_policy::CompiledPolicy) -> bool {
    policy
        .context_keys()
        .any(|k| k.eq_ignore_ascii_case("kms:ResourceAliases"))
}

/// Whether any identity policy of the caller tests `kms:ResourceAliases`.
pub fn identity_policies_test_resource_aliases(
    principal: &crate::auth::identity::Principal,
) -> bool {
    principal
        .policies
        .iter()
        .any(|p| tests_resource_aliases(&p.compiled))
}

/// Authorise the caller for the call's operation on `key` (no encryption context).
pub fn authorize(state: &AppState, ctx: &CallContext, key: &KeySnapshot) -> Result<(), KmsError> {
    authorize_as(state, ctx, key, &action_of(ctx.op), None, None)
}

/// Authorise `action` on `key` with the key policy and the caller's identity policies, with the
/// request's condition keys (encryption context and algorithm for cryptographic operations).
pub fn authorize_as(
    state: &AppState,
    ctx: &CallContext,
    key: &KeySnapshot,
    action: &str,
    encryption_context: Option<&std::collections::BTreeMap<String, String>>,
    encryption_algorithm: Option<&str>,
) -> Result<(), KmsError> {
    let Some(policy) = &key.compiled_policy else {
        ctx.count_decision("explicitDeny");
        return Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {} because the key policy cannot be evaluated",
            ctx.principal.arn,
            key.arn()
        )));
    };
    let request_alias = ctx.request_alias.lock().ok().and_then(|a| a.clone());
    // Listing a key's aliases scans the alias table: do it only when a policy tests them.
    let resource_aliases: Vec<String> = if tests_resource_aliases(&policy.0)
        || identity_policies_test_resource_aliases(&ctx.principal)
    {
        let model = state.read_model()?;
        // Only the full model knows every alias of the key.
        if !model.is_complete() {
            return Err(KmsError::NeedsFullModel);
        }
        model.aliases_of(key).map(|a| a.name.clone()).collect()
    } else {
        Vec::new()
    };
    let facts = CallFacts {
        origin: ctx.origin.clone(),
        encryption_context,
        encryption_algorithm,
        request_alias: request_alias.as_deref(),
        resource_aliases,
        request_keys: ctx.request_keys(),
    };
    let request = key_request(&ctx.principal, action, key, &facts);
    let identity = ctx.principal.compiled_policies();
    let grants = key.compiled_grants.as_ref().map(|g| g.0.as_ref());
    let (decision, result) = decide(&request, policy, &identity, grants);
    ctx.count_decision(decision);
    result
}

/// Authorise an operation that takes no key (CreateKey, ListKeys, ListAliases, GenerateRandom):
/// the caller's identity policies decide (an account's root user is always allowed).
pub fn authorize_account(state: &AppState, ctx: &CallContext) -> Result<(), KmsError> {
    authorize_account_action(state, ctx, &action_of(ctx.op))
}

/// Authorise `action` on no particular key (`*`) with the caller's identity policies (ReplicateKey
/// needs kms:CreateKey this way, in the replica's Region).
pub fn authorize_account_action(
    state: &AppState,
    ctx: &CallContext,
    action: &str,
) -> Result<(), KmsError> {
    let policy = state.account_policy(&ctx.principal.account)?;
    let mut builder = crate::authorize::request_for(
        &ctx.principal,
        action,
        trent_policy::Resource::from_arn("*"),
        &ctx.origin,
    )
    .without_encryption_context();
    builder = crate::authorize::with_request_keys(builder, &ctx.request_keys());
    let request = builder.build();
    let identity = ctx.principal.compiled_policies();
    let (decision, result) = decide(&request, &policy, &identity, None);
    ctx.count_decision(decision);
    result
}

/// The start of every command on one key: resolve it, authorise the caller, and check the key
/// state table for the operation.
pub fn key_for(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
) -> Result<Arc<KeySnapshot>, KmsError> {
    let key = resolve_key(state, ctx, key_id)?;
    authorize(state, ctx, &key)?;
    check_key_state(ctx, &key)?;
    Ok(key)
}

/// The key state table for the call's operation; a refused use of a key pending deletion is
/// counted (the classic alarm: something still depends on a key about to disappear).
pub fn check_key_state(ctx: &CallContext, key: &KeySnapshot) -> Result<(), KmsError> {
    let checked = crate::domain::rules::check_state(ctx.op, key);
    if checked.is_err() && key.state == crate::domain::key::KeyState::PendingDeletion {
        ctx.metrics
            .pending_deletion_use
            .with_label_values(&[ctx.op.name()])
            .inc();
    }
    Ok(checked?)
}

/// An outcome that appends `events` to the key's stream (empty events: nothing to commit).
pub fn key_change(
    key: &KeySnapshot,
    events: Vec<KeyEvent>,
    body: Value,
) -> Result<Outcome, KmsError> {
    let mut outcome = Outcome::reply(body);
    if events.is_empty() {
        return Ok(outcome);
    }
    let encoded = events
        .iter()
        .map(KeyEvent::to_new_event)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    outcome.unit.appends.push(StreamAppend {
        stream: key.stream(),
        expected_version: key.stream_version,
        events: encoded,
    });
    Ok(outcome)
}

/// The plaintext material of one key version (unsealed; zeroized when dropped).
pub async fn material(
    state: &AppState,
    key: &KeySnapshot,
    version: i32,
) -> Result<SecretBytes, KmsError> {
    state.open_material(&key.material_owner(), version).await
}
