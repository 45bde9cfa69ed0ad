//! Operation handlers. Each handler has the same shape: decode its typed request, resolve the key,
//! authorise, check the domain rules, do the cryptography, and return an `Outcome` (response body
//! plus whatever must be committed). The HTTP edge (`server`) adds the audit record and commits.

mod crypto_ops;
mod key_policy;
mod keys;

use std::sync::Mutex;

use serde_json::Value;

use crate::auth::identity::Principal;
use crate::crypto::secret::SecretBytes;
use crate::domain::key::KeySnapshot;
use crate::protocol::{KmsError, Operation};
use crate::state::AppState;
use crate::store::CommitUnit;

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
    let account = &ctx.principal.account;
    let region = &ctx.region;
    let (want_account, want_region, id) = if let Some(rest) = key_id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "kms" {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        }
        let (arn_region, arn_account, resource) = (parts[2], parts[3], parts[4]);
        if let Some(alias) = resource.strip_prefix("alias/") {
            return Err(alias_not_found(arn_region, arn_account, alias));
        }
        let Some(id) = resource.strip_prefix("key/") else {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        };
        (
            arn_account.to_string(),
            arn_region.to_string(),
            id.to_string(),
        )
    } else if let Some(alias) = key_id.strip_prefix("alias/") {
        return Err(alias_not_found(region, account, alias));
    } else if uuid::Uuid::try_parse(key_id).is_ok() {
        (account.clone(), region.clone(), key_id.to_string())
    } else {
        return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")));
    };
    let arn = crate::domain::key::key_arn(&want_region, &want_account, &id);
    let found = state
        .read_model()?
        .key(&id)
        .filter(|k| k.account == want_account && k.region == want_region && want_region == *region)
        .cloned();
    match found {
        Some(key) => {
            ctx.touch(key.arn());
            Ok(key)
        }
        None => Err(KmsError::NotFound(format!("Key '{arn}' does not exist"))),
    }
}

fn alias_not_found(region: &str, account: &str, alias: &str) -> KmsError {
    KmsError::NotFound(format!(
        "Alias arn:aws:kms:{region}:{account}:alias/{alias} is not found."
    ))
}

/// Authorise the caller for `op` on `key`.
///
/// Interim rule until policy evaluation lands (issue 4): the caller must belong to the key's
/// account; calls from any other account are denied as AWS denies them when no policy allows.
pub fn authorize(ctx: &CallContext, key: &KeySnapshot) -> Result<(), KmsError> {
    if ctx.principal.account == key.account {
        return Ok(());
    }
    Err(KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{} on resource: {} because no resource-based policy allows the kms:{} action",
        ctx.principal.arn,
        ctx.op.name(),
        key.arn(),
        ctx.op.name()
    )))
}

/// The plaintext material of one key version (unsealed; zeroized when dropped).
pub async fn material(
    state: &AppState,
    key: &KeySnapshot,
    version: i32,
) -> Result<SecretBytes, KmsError> {
    state.materials.open(state, &key.key_id, version).await
}
