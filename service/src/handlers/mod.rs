//! Operation handlers. Each handler has the same shape: decode its typed request, resolve the key,
//! authorise, check the domain rules, do the cryptography, and return an `Outcome` (response body
//! plus whatever must be committed). The HTTP edge (`server`) adds the audit record and commits.

mod aliases;
mod crypto_ops;
mod key_policy;
mod keys;
mod lifecycle;
mod pagination;
pub mod rotation;
mod tags;

use std::sync::Mutex;

use serde_json::Value;

use crate::auth::identity::Principal;
use crate::crypto::secret::SecretBytes;
use crate::domain::events::KeyEvent;
use crate::domain::key::KeySnapshot;
use crate::protocol::{KmsError, Operation};
use crate::state::AppState;
use crate::store::{CommitUnit, StreamAppend};

/// What one call knows about itself while it runs.
#[derive(Debug)]
pub struct CallContext {
    /// The operation.
    pub op: Operation,
    /// The authenticated caller.
    pub principal: Principal,
    /// The region selected by the request's credential scope.
    pub region: String,
    /// Key ARNs the call resolved (the audit record's `resources`).
    pub resources: Mutex<Vec<String>>,
    /// Metrics the call updates (authorization decisions, use of keys pending deletion).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl CallContext {
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
        Encrypt => crypto_ops::encrypt(state, ctx, body).await,
        Decrypt => crypto_ops::decrypt(state, ctx, body).await,
        ReEncrypt => crypto_ops::re_encrypt(state, ctx, body).await,
        GenerateDataKey => crypto_ops::generate_data_key(state, ctx, body, true).await,
        GenerateDataKeyWithoutPlaintext => {
            crypto_ops::generate_data_key(state, ctx, body, false).await
        }
        GenerateRandom => crypto_ops::generate_random(body),
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
        GetKeyPolicy => key_policy::get_key_policy(state, ctx, body),
        PutKeyPolicy => key_policy::put_key_policy(state, ctx, body),
        ListKeyPolicies => key_policy::list_key_policies(state, ctx, body),
        other => Err(KmsError::UnsupportedOperation(format!(
            "{} is not supported by this server yet.",
            other.name()
        ))),
    }
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
        Decapsulate => &["Ciphertext"],
        _ => &[],
    }
}

/// Resolve a KeyId (key id, key ARN, alias name or alias ARN) to a key snapshot in the caller's
/// region, with AWS's errors.
pub fn resolve_key(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
) -> Result<KeySnapshot, KmsError> {
    let model = state.read_model()?;
    let (account, region, id) = if let Some(rest) = key_id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "kms" {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        }
        let (arn_region, arn_account, resource) = (parts[2], parts[3], parts[4]);
        if arn_region != ctx.region {
            return Err(KmsError::NotFound(format!(
                "Invalid arn {key_id}: the region is not {}",
                ctx.region
            )));
        }
        if resource.starts_with("alias/") {
            let alias = model
                .alias(arn_account, arn_region, resource)
                .ok_or_else(|| alias_not_found(arn_region, arn_account, resource))?;
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
        let alias = model
            .alias(&ctx.principal.account, &ctx.region, key_id)
            .ok_or_else(|| alias_not_found(&ctx.region, &ctx.principal.account, key_id))?;
        (
            ctx.principal.account.clone(),
            ctx.region.clone(),
            alias.target_key_id.clone(),
        )
    } else if uuid::Uuid::try_parse(key_id).is_ok() {
        (
            ctx.principal.account.clone(),
            ctx.region.clone(),
            key_id.to_string(),
        )
    } else {
        return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")));
    };
    let found = model
        .live_key(&id)
        .filter(|k| k.account == account && k.region == region)
        .cloned();
    match found {
        Some(key) => {
            ctx.touch(key.arn());
            Ok(key)
        }
        None => Err(KmsError::NotFound(format!(
            "Key '{}' does not exist",
            crate::domain::key::key_arn(&region, &account, &id)
        ))),
    }
}

fn alias_not_found(region: &str, account: &str, alias: &str) -> KmsError {
    KmsError::NotFound(format!(
        "Alias arn:aws:kms:{region}:{account}:{alias} is not found."
    ))
}

/// Authorise the caller for `op` on `key`.
///
/// Interim rule until policy evaluation lands (issue 4): the caller must belong to the key's
/// account; calls from any other account are denied as AWS denies them when no policy allows.
pub fn authorize(ctx: &CallContext, key: &KeySnapshot) -> Result<(), KmsError> {
    if ctx.principal.account == key.account {
        ctx.metrics
            .authorization_decisions
            .with_label_values(&["allowed"])
            .inc();
        return Ok(());
    }
    ctx.metrics
        .authorization_decisions
        .with_label_values(&["implicitDeny"])
        .inc();
    Err(KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{} on resource: {} because no resource-based policy allows the kms:{} action",
        ctx.principal.arn,
        ctx.op.name(),
        key.arn(),
        ctx.op.name()
    )))
}

/// The start of every command on one key: resolve it, authorise the caller, and check the key
/// state table for the operation.
pub fn key_for(state: &AppState, ctx: &CallContext, key_id: &str) -> Result<KeySnapshot, KmsError> {
    let key = resolve_key(state, ctx, key_id)?;
    authorize(ctx, &key)?;
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
        stream: KeyEvent::stream_for(&key.key_id),
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
    state.materials.open(state, &key.key_id, version).await
}
