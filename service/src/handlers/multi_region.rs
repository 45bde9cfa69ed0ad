//! Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, new `mrk-` key ids, and the
//! `MultiRegionConfiguration` of a multi-Region key's metadata.
//!
//! A multi-Region key is one key per Region sharing the key id and the key material (see
//! ARCHITECTURE.md, "Multi-Region keys"): each Region's key has its own stream, policy,
//! description, tags, grants, aliases and state; the shared properties (material versions,
//! automatic rotation, the primary Region) are changed on the primary's stream and reach every
//! Region's key in the same commit. The transient states (`Creating`, `Updating`) are ended by
//! the scheduler right after the commit that starts them.

use serde::Deserialize;
use serde_json::{json, Value};

use super::keys::{check_new_key_policy, default_key_policy, key_metadata};
use super::{authorize, authorize_as, check_key_state, resolve_key, CallContext, Outcome};
use crate::audit::record::lower_camel_value;
use crate::crypto::random_public;
use crate::domain::events::{KeyCreated, KeyEvent};
use crate::domain::key::{key_arn, KeySnapshot};
use crate::domain::read_model::ReadModel;
use crate::protocol::wire::decode;
use crate::protocol::{KmsError, Operation};
use crate::state::AppState;
use crate::store::StreamAppend;

/// A new multi-Region key id: `mrk-` and 32 random lowercase hex digits.
pub fn new_key_id() -> Result<String, KmsError> {
    let bytes = random_public(16).map_err(|_| KmsError::KmsInternal("Key id failed.".into()))?;
    Ok(format!("mrk-{}", hex::encode(bytes)))
}

/// The `MultiRegionConfiguration` of a multi-Region key (None for a single-Region key): its
/// type, the primary key and every live replica, in Region order. `extra` is a replica being
/// created, not yet in the model.
pub fn configuration(
    model: &ReadModel,
    key: &KeySnapshot,
    extra: Option<&KeySnapshot>,
) -> Option<Value> {
    let primary_region = key.primary_region.as_deref()?;
    let entry = |region: &str| json!({ "Arn": key_arn(region, &key.account, &key.key_id), "Region": region });
    let mut replicas: Vec<String> = model
        .multi_region_keys(&key.key_id)
        .filter(|k| k.is_live() && k.account == key.account && k.region != primary_region)
        .map(|k| k.region.clone())
        .chain(extra.map(|k| k.region.clone()))
        .collect();
    replicas.sort();
    replicas.dedup();
    Some(json!({
        "MultiRegionKeyType": if key.is_replica() { "REPLICA" } else { "PRIMARY" },
        "PrimaryKey": entry(primary_region),
        "ReplicaKeys": replicas.iter().map(|r| entry(r)).collect::<Vec<_>>(),
    }))
}

/// The metadata of `key` with its multi-Region configuration read from the model.
pub fn metadata(state: &AppState, key: &KeySnapshot) -> Result<Value, KmsError> {
    let model = state.read_model()?;
    let mut metadata = key_metadata(key, configuration(&model, key, None));
    // A key in an external key store that is not connected is Unavailable, as AWS shows it
    // (its stored state, Enabled or Disabled, returns when the store connects again).
    let disconnected = key.custom_key_store_id.as_deref().is_some_and(|id| {
        model
            .custom_key_store(id)
            .is_none_or(|s| s.state != crate::domain::custom_key_store::ConnectionState::Connected)
    });
    let usable_states = [
        crate::domain::key::KeyState::Enabled,
        crate::domain::key::KeyState::Disabled,
    ];
    if disconnected && usable_states.contains(&key.state) {
        crate::protocol::wire::set(&mut metadata, "KeyState", json!("Unavailable"));
        crate::protocol::wire::set(&mut metadata, "Enabled", json!(false));
    }
    Ok(metadata)
}

/// Refuse a key that is not a multi-Region primary key (ReplicateKey and UpdatePrimaryRegion
/// take only those).
fn check_primary(key: &KeySnapshot) -> Result<(), KmsError> {
    if !key.multi_region {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is not a multi-Region key.",
            key.arn()
        )));
    }
    if key.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is not a multi-Region primary key. Its primary key is in {}.",
            key.arn(),
            key.primary_region.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicateKeyRequest {
    key_id: String,
    replica_region: String,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    description: Option<String>,
    tags: Option<Vec<super::tags::WireTag>>,
}

/// ReplicateKey: a replica of a multi-Region primary key in another served Region of the same
/// account, with its own policy, description and tags and the primary's material. It is
/// `Creating` until the scheduler ends that state (right after this commit).
pub fn replicate_key(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ReplicateKeyRequest = decode(body)?;
    let primary = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &primary)?;
    check_primary(&primary)?;
    check_key_state(ctx, &primary)?;
    let region = req.replica_region;
    if region == primary.region {
        return Err(KmsError::Validation(format!(
            "The replica Region {region} is the Region of the primary key {}.",
            primary.arn()
        )));
    }
    if !state.regions.serves(&region) {
        return Err(KmsError::UnsupportedOperation(format!(
            "Region {region} is not served by this server."
        )));
    }
    // The replica Region's IAM policies must allow kms:CreateKey (and kms:TagResource for tags).
    super::authorize_account_action(state, ctx, "kms:CreateKey")?;
    if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        super::authorize_account_action(state, ctx, "kms:TagResource")?;
    }
    let policy = match req.policy {
        Some(p) => {
            check_new_key_policy(state, ctx, &p, None, req.bypass_policy_lockout_safety_check)?;
            p
        }
        None => default_key_policy(&primary.account),
    };
    let tags = super::tags::check_new_tags(&[], req.tags.as_deref().unwrap_or_default())?;
    let model = state.read_model()?;
    // A Region's earlier replica that has been deleted leaves its stream, which goes on.
    let identity = crate::domain::key::key_identity(&region, &primary.key_id);
    let earlier = model.key(&identity);
    if earlier.is_some_and(KeySnapshot::is_live) {
        return Err(KmsError::AlreadyExists(format!(
            "A replica of {} already exists in {region}.",
            primary.arn()
        )));
    }
    let expected_version = earlier.map_or(0, |k| k.stream_version);
    let created = KeyCreated {
        schema: 1,
        key_id: primary.key_id.clone(),
        account: primary.account.clone(),
        region: region.clone(),
        description: req.description.unwrap_or_default(),
        key_spec: primary.key_spec.clone(),
        key_usage: primary.key_usage.clone(),
        origin: primary.origin.clone(),
        policy,
        tags,
        multi_region: true,
        primary_region: Some(primary.region.clone()),
        custom_key_store_id: None,
        xks_key_id: None,
        material: None,
        created_at: state.clock.now(),
    };
    let replica = KeySnapshot::replica_of(&primary, &created, expected_version + 1);
    let metadata = key_metadata(&replica, configuration(&model, &replica, Some(&replica)));
    drop(model);
    ctx.touch(replica.arn());
    let wire_tags: Vec<Value> = replica
        .tags
        .iter()
        .map(|t| json!({ "TagKey": t.key, "TagValue": t.value }))
        .collect();
    let body = json!({
        "ReplicaKeyMetadata": metadata,
        "ReplicaPolicy": replica.policy,
        "ReplicaTags": wire_tags,
    });
    let event = KeyEvent::KeyCreated(Box::new(created))
        .to_new_event()
        .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    let mut outcome = Outcome::reply(body);
    outcome.response_elements = Some(json!({
        "replicaKeyMetadata": lower_camel_value(&metadata),
        "replicaTags": lower_camel_value(&json!(wire_tags)),
    }));
    outcome.unit.appends.push(StreamAppend {
        stream: replica.stream(),
        expected_version,
        events: vec![event],
    });
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdatePrimaryRegionRequest {
    key_id: String,
    primary_region: String,
}

/// UpdatePrimaryRegion: the replica in `PrimaryRegion` becomes the primary key and the primary
/// becomes a replica; both are `Updating` until the scheduler ends that state.
pub fn update_primary_region(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: UpdatePrimaryRegionRequest = decode(body)?;
    let primary = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &primary)?;
    check_primary(&primary)?;
    check_key_state(ctx, &primary)?;
    let region = req.primary_region;
    if region == primary.region {
        return Err(KmsError::Validation(format!(
            "{} is already the primary key in {region}.",
            primary.arn()
        )));
    }
    let replica = state
        .read_model()?
        .live_key_shared(&region, &primary.key_id)
        .filter(|k| k.account == primary.account)
        .ok_or_else(|| {
            KmsError::NotFound(format!(
                "Key '{}' does not exist",
                key_arn(&region, &primary.account, &primary.key_id)
            ))
        })?;
    ctx.touch(replica.arn());
    // The replica's own key policy must allow the change too.
    authorize_as(state, ctx, &replica, "kms:UpdatePrimaryRegion", None, None)?;
    crate::domain::rules::check_state(Operation::UpdatePrimaryRegion, &replica)?;
    let now = state.clock.now();
    let moved = || KeyEvent::PrimaryRegionUpdated {
        schema: 1,
        primary_region: region.clone(),
        at: now,
    };
    let mut outcome = Outcome::reply(Value::Null);
    for key in [&primary, &replica] {
        let event = moved()
            .to_new_event()
            .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
        outcome.unit.appends.push(StreamAppend {
            stream: key.stream(),
            expected_version: key.stream_version,
            events: vec![event],
        });
    }
    Ok(outcome)
}
