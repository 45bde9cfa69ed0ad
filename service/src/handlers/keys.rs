//! CreateKey, DescribeKey and ListKeys.

use serde::Deserialize;
use serde_json::{json, Value};

use super::pagination::{decode_marker, page};
use super::{authorize, resolve_key, CallContext, Outcome};
use crate::audit::record::lower_camel_value;
use std::str::FromStr;

use crate::crypto::keys::{self, KeySpec, KeyUsage};
use crate::crypto::random_public;
use crate::domain::events::{KeyCreated, KeyEvent, MaterialInfo};
use crate::domain::key::KeySnapshot;
use crate::protocol::wire::decode;
use crate::protocol::wire::set;
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::{SealedMaterial, StreamAppend};

/// What kind of key CreateKey makes: the spec, usage and origin as named and the parsed spec.
struct KindOfKey {
    key_spec: String,
    key_usage: String,
    origin: String,
    spec: KeySpec,
}

/// The kind of key a CreateKey request asks for, with AWS's defaults, refused when the spec and
/// usage do not fit or Trent does not offer it.
fn kind_of_key(req: &CreateKeyRequest) -> Result<KindOfKey, KmsError> {
    if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
        return Err(KmsError::Validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
        ));
    }
    let key_spec = req
        .key_spec
        .clone()
        .or_else(|| req.customer_master_key_spec.clone())
        .unwrap_or_else(|| "SYMMETRIC_DEFAULT".into());
    let key_usage = req
        .key_usage
        .clone()
        .unwrap_or_else(|| "ENCRYPT_DECRYPT".into());
    let origin = req.origin.clone().unwrap_or_else(|| "AWS_KMS".into());
    let spec = KeySpec::from_str(&key_spec)
        .map_err(|_| KmsError::Validation(format!("KeySpec {key_spec} is not valid")))?;
    let usage = KeyUsage::from_str(&key_usage)
        .map_err(|_| KmsError::Validation(format!("KeyUsage {key_usage} is not valid")))?;
    if !spec.is_offered() {
        return Err(keys::KeyError::UnsupportedKeySpec(spec).into());
    }
    if let Err(e) = keys::validate_spec_usage(spec, usage) {
        // The default usage (ENCRYPT_DECRYPT) does not fit this spec: AWS names the missing member.
        if req.key_usage.is_none() {
            return Err(KmsError::Validation(
                "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
            ));
        }
        return Err(e.into());
    }
    if origin == "EXTERNAL_KEY_STORE" {
        if req.custom_key_store_id.is_none() || req.xks_key_id.is_none() {
            return Err(KmsError::Validation(
                "A key of Origin EXTERNAL_KEY_STORE needs a CustomKeyStoreId and an XksKeyId."
                    .into(),
            ));
        }
        if key_spec != "SYMMETRIC_DEFAULT" || req.multi_region == Some(true) {
            return Err(KmsError::UnsupportedOperation(
                "Keys in an external key store are single-Region symmetric encryption keys.".into(),
            ));
        }
    } else if req.custom_key_store_id.is_some() || req.xks_key_id.is_some() {
        return Err(KmsError::Validation(format!(
            "CustomKeyStoreId and XksKeyId are valid only with Origin EXTERNAL_KEY_STORE (not {origin})."
        )));
    }
    if origin != "AWS_KMS" && origin != "EXTERNAL" && origin != "EXTERNAL_KEY_STORE" {
        return Err(KmsError::UnsupportedOperation(format!(
            "Origin {origin} is not supported by this server yet."
        )));
    }
    Ok(KindOfKey {
        key_spec,
        key_usage,
        origin,
        spec,
    })
}

/// A new key's first material version: generated (off the request workers: RSA 4096 takes up to
/// a second) and sealed under the root key.
async fn first_material(
    state: &AppState,
    spec: KeySpec,
    key_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(MaterialInfo, Vec<u8>), KmsError> {
    let internal = |_| KmsError::KmsInternal("Key generation failed.".into());
    let material = tokio::task::spawn_blocking(move || keys::generate(spec))
        .await
        .map_err(|_| KmsError::KmsInternal("Key generation failed.".into()))??
        .into_secret();
    let sealed = state
        .root_key
        .seal(key_id, 1, &material)
        .map_err(internal)?;
    let material_info = MaterialInfo {
        version: 1,
        material_id: hex::encode(random_public(32).map_err(internal)?),
        created_at: now,
        rotation_type: None,
    };
    Ok((material_info, sealed))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyRequest {
    policy: Option<String>,
    description: Option<String>,
    key_usage: Option<String>,
    customer_master_key_spec: Option<String>,
    key_spec: Option<String>,
    origin: Option<String>,
    custom_key_store_id: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<super::tags::WireTag>>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

/// The key policy AWS KMS gives a key created without one: full access delegated to the account.
pub fn default_key_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// The lockout check: whether the caller of `ctx` would be allowed kms:PutKeyPolicy on `key`
/// if `policy` were its key policy (with the caller's identity policies, as a live call).
pub fn may_put_key_policy(
    ctx: &CallContext,
    key: &KeySnapshot,
    policy: &crate::authorize::SharedPolicy,
) -> bool {
    let request = crate::authorize::key_request(
        &ctx.principal,
        "kms:PutKeyPolicy",
        key,
        &crate::authorize::CallFacts {
            origin: ctx.origin.clone(),
            ..Default::default()
        },
    );
    let identity = ctx.principal.compiled_policies();
    crate::authorize::decide(&request, policy, &identity, None)
        .1
        .is_ok()
}

/// Check a new key policy as CreateKey and PutKeyPolicy do: it compiles, every principal it
/// names exists, and (unless the caller bypasses the check) it still lets the caller change the
/// key policy afterwards. `key` is the key being changed (None at CreateKey).
pub fn check_new_key_policy(
    state: &AppState,
    ctx: &CallContext,
    text: &str,
    key: Option<&KeySnapshot>,
    bypass_lockout_check: Option<bool>,
) -> Result<(), KmsError> {
    let compiled = crate::authorize::compile_key_policy(text)?;
    if let Some(unknown) = compiled
        .0
        .principals()
        .iter()
        .find(|p| !state.identities.principal_exists(p))
    {
        tracing::debug!(principal = %unknown, "key policy names an unknown principal");
        return Err(KmsError::MalformedPolicyDocument(
            "Policy contains a statement with one or more invalid principals.".into(),
        ));
    }
    if bypass_lockout_check == Some(true) {
        return Ok(());
    }
    // The caller must still be allowed PutKeyPolicy under the new policy.
    let probe = match key {
        Some(k) => k.clone(),
        None => KeySnapshot::probe(&ctx.principal.account, &ctx.region),
    };
    if !may_put_key_policy(ctx, &probe, &compiled) {
        return Err(KmsError::MalformedPolicyDocument(
            "The new key policy will not allow you to update the key policy in the future.".into(),
        ));
    }
    Ok(())
}

/// CreateKey: a new key with fresh material from aws-lc-rs, or (Origin EXTERNAL) a key that waits
/// in PendingImport for imported material.
pub async fn create_key(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: CreateKeyRequest = decode(body)?;
    super::authorize_account(state, ctx)?;
    let KindOfKey {
        key_spec,
        key_usage,
        origin,
        spec,
    } = kind_of_key(&req)?;
    let policy = match req.policy {
        Some(p) => {
            check_new_key_policy(state, ctx, &p, None, req.bypass_policy_lockout_safety_check)?;
            p
        }
        None => default_key_policy(&ctx.principal.account),
    };
    let tags = super::tags::check_new_tags(&[], req.tags.as_deref().unwrap_or_default())?;
    if let (Some(store_id), Some(xks_key_id)) = (&req.custom_key_store_id, &req.xks_key_id) {
        super::custom_key_stores::check_external_key(state, ctx, store_id, xks_key_id).await?;
    }

    let multi_region = req.multi_region == Some(true);
    let key_id = if multi_region {
        super::multi_region::new_key_id()?
    } else {
        uuid::Uuid::new_v4().to_string()
    };
    let now = state.clock.now();
    // A key of Origin EXTERNAL has no material until it is imported (PendingImport).
    let first = if origin == "EXTERNAL" {
        None
    } else {
        Some(first_material(state, spec, &key_id, now).await?)
    };
    let created = KeyCreated {
        schema: 1,
        key_id: key_id.clone(),
        account: ctx.principal.account.clone(),
        region: ctx.region.clone(),
        description: req.description.unwrap_or_default(),
        key_spec,
        key_usage,
        origin,
        policy,
        tags,
        multi_region,
        primary_region: multi_region.then(|| ctx.region.clone()),
        custom_key_store_id: req.custom_key_store_id.clone(),
        xks_key_id: req.xks_key_id.clone(),
        material: first.as_ref().map(|(info, _)| info.clone()),
        created_at: now,
    };
    let snapshot = KeySnapshot::from_created(&created, 1);
    let new_event = KeyEvent::KeyCreated(Box::new(created))
        .to_new_event()
        .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    ctx.touch(snapshot.arn());
    let configuration = super::multi_region::configuration(
        &crate::domain::read_model::ReadModel::default(),
        &snapshot,
        None,
    );
    let metadata = key_metadata(&snapshot, configuration);
    let mut outcome = Outcome::reply(json!({ "KeyMetadata": metadata }));
    outcome.response_elements = Some(json!({ "keyMetadata": lower_camel_value(&metadata) }));
    if let Some((_, sealed)) = first {
        outcome.unit.materials.push(SealedMaterial {
            key_id: key_id.clone(),
            version: 1,
            sealed,
        });
    }
    outcome.unit.appends.push(StreamAppend {
        stream: snapshot.stream(),
        expected_version: 0,
        events: vec![new_event],
    });
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyRequest {
    key_id: String,
}

/// DescribeKey.
pub fn describe_key(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DescribeKeyRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    let metadata = super::multi_region::metadata(state, &key)?;
    Ok(Outcome::reply(json!({ "KeyMetadata": metadata })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeysRequest {
    limit: Option<usize>,
    marker: Option<String>,
    resource_owners: Option<Vec<String>>,
}

/// ListKeys: the caller's keys in the region, paginated by key id. `ResourceOwners` chooses
/// whose keys: `SELF` (the default) the caller's account's; `OTHER_ACCOUNTS_VIA_RAM` the keys
/// other accounts share through AWS RAM, of which there are none here (Trent has no RAM), so a
/// request for those alone lists no key.
pub fn list_keys(state: &AppState, ctx: &CallContext, body: &Value) -> Result<Outcome, KmsError> {
    let req: ListKeysRequest = decode(body)?;
    super::authorize_account(state, ctx)?;
    let limit = req.limit.unwrap_or(100);
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let own_keys = req
        .resource_owners
        .as_ref()
        .is_none_or(|owners| owners.iter().any(|o| o == "SELF"));
    let model = state.read_model()?;
    let body = page(
        model
            .keys_in(&ctx.principal.account, &ctx.region, after.as_deref())
            .filter(|_| own_keys),
        limit,
        "Keys",
        |k| k.key_id.clone(),
        |k| json!({ "KeyId": k.key_id, "KeyArn": k.arn() }),
    );
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetKeyLastUsageRequest {
    key_id: String,
}

/// GetKeyLastUsage: the key's last successful cryptographic use since tracking started.
pub async fn get_key_last_usage(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: GetKeyLastUsageRequest = decode(body)?;
    let key = super::key_for(state, ctx, &req.key_id)?;
    let unreadable = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "cannot read key usage");
        KmsError::KmsInternal("The key's usage could not be read.".into())
    };
    let tracking_start = state.store.first_audit_time().await.map_err(unreadable)?;
    let last = state
        .store
        .key_last_use(&key.arn())
        .await
        .map_err(unreadable)?;
    let mut body = json!({
        "KeyId": key.arn(),
        "KeyCreationDate": crate::domain::key::epoch_seconds(key.created_at),
    });
    let start = tracking_start
        .map(|t| t.max(key.created_at))
        .unwrap_or(key.created_at);
    set(
        &mut body,
        "TrackingStartDate",
        json!(crate::domain::key::epoch_seconds(start)),
    );
    if let Some(last) = last {
        set(
            &mut body,
            "KeyLastUsage",
            json!({
                "Operation": last.operation,
                "Timestamp": crate::domain::key::epoch_seconds(last.used_at),
                "CloudTrailEventId": last.event_id,
                "KmsRequestId": last.request_id,
            }),
        );
    }
    Ok(Outcome::reply(body))
}

/// The `KeyMetadata` structure of DescribeKey, CreateKey and ReplicateKey, with the key's
/// `MultiRegionConfiguration` when it is a multi-Region key.
pub fn key_metadata(key: &KeySnapshot, multi_region: Option<Value>) -> Value {
    let mut m = json!({
        "AWSAccountId": key.account,
        "KeyId": key.key_id,
        "Arn": key.arn(),
        "CreationDate": crate::domain::key::epoch_seconds(key.created_at),
        "Enabled": key.state == crate::domain::key::KeyState::Enabled,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.state.as_str(),
        "Origin": key.origin,
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "MultiRegion": key.multi_region,
    });
    for (name, list) in super::asymmetric::algorithm_lists(&key.key_spec, &key.key_usage) {
        set(&mut m, name, list);
    }
    // As AWS: only symmetric encryption keys name their current material, and the id stays
    // after DeleteImportedKeyMaterial (the material it names is gone, the version is not).
    if let Some(material) = key
        .current_material()
        .filter(|_| key.key_spec == "SYMMETRIC_DEFAULT")
    {
        set(&mut m, "CurrentKeyMaterialId", json!(material.material_id));
    }
    if let Some(imported) = key.imported.as_ref().filter(|i| i.present) {
        set(&mut m, "ExpirationModel", json!(imported.expiration_model));
        if let Some(valid_to) = imported.valid_to {
            set(
                &mut m,
                "ValidTo",
                json!(crate::domain::key::epoch_seconds(valid_to)),
            );
        }
    }
    if let Some(date) = key.deletion_date {
        set(
            &mut m,
            "DeletionDate",
            json!(crate::domain::key::epoch_seconds(date)),
        );
    }
    // A primary waiting for its replicas has its window but no date yet.
    if let Some(days) = key.pending_window_days {
        set(&mut m, "PendingDeletionWindowInDays", json!(days));
    }
    if let Some(configuration) = multi_region {
        set(&mut m, "MultiRegionConfiguration", configuration);
    }
    if let (Some(store), Some(xks_key)) = (&key.custom_key_store_id, &key.xks_key_id) {
        set(&mut m, "CustomKeyStoreId", json!(store));
        set(&mut m, "XksKeyConfiguration", json!({ "Id": xks_key }));
    }
    m
}
