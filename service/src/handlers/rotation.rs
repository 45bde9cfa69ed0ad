//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand and
//! ListKeyRotations. New material becomes current for new encryptions; every older version keeps
//! decrypting the ciphertexts that name it.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::pagination::{decode_marker, page};
use super::{authorize, check_key_state, key_change, resolve_key, CallContext, KeyOnly, Outcome};
use crate::crypto::{random_public, random_secret};
use crate::domain::events::{KeyEvent, MaterialInfo};
use crate::domain::key::{epoch_seconds, KeySnapshot};
use crate::protocol::wire::decode;
use crate::protocol::wire::set;
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::SealedMaterial;

/// The rotation period AWS uses when none is given.
pub const DEFAULT_ROTATION_PERIOD_DAYS: i64 = 365;
/// How many on-demand rotations AWS allows per key (25 in AWS's current developer guide; older API
/// reference pages say 10).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;

/// Refuse rotation for keys AWS does not rotate (asymmetric, HMAC, imported, custom key stores).
pub fn check_rotatable(key: &KeySnapshot) -> Result<(), KmsError> {
    if key.key_spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} has key spec {}; only symmetric encryption keys support key rotation.",
            key.arn(),
            key.key_spec
        )));
    }
    if key.origin != "AWS_KMS" {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} has origin {}; automatic rotation is not supported for it.",
            key.arn(),
            key.origin
        )));
    }
    Ok(())
}

/// Resolve and authorise a key for a rotation operation; AWS refuses keys that cannot rotate
/// before it looks at their state.
fn rotatable_key(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
) -> Result<std::sync::Arc<KeySnapshot>, KmsError> {
    rotatable_key_with(state, ctx, key_id, false)
}

/// `rotatable_key`, also accepting symmetric keys of Origin EXTERNAL when `imported` (they
/// rotate on demand to imported material and list their material versions).
fn rotatable_key_with(
    state: &AppState,
    ctx: &CallContext,
    key_id: &str,
    imported: bool,
) -> Result<std::sync::Arc<KeySnapshot>, KmsError> {
    let key = resolve_key(state, ctx, key_id)?;
    authorize(state, ctx, &key)?;
    // As AWS: the key's state is checked before its spec (a disabled RSA key is
    // DisabledException, not UnsupportedOperationException).
    check_key_state(ctx, &key)?;
    if !(imported && key.origin == "EXTERNAL" && key.key_spec == "SYMMETRIC_DEFAULT") {
        check_rotatable(&key)?;
    }
    // Rotation is a shared property of a multi-Region key: it is changed on the primary only
    // (a replica reports the primary's status and lists its rotations).
    let reads = matches!(
        ctx.op,
        crate::protocol::Operation::GetKeyRotationStatus
            | crate::protocol::Operation::ListKeyRotations
    );
    if key.is_replica() && !reads {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is a multi-Region replica key. Use {} on its primary key in {}.",
            key.arn(),
            ctx.op.name(),
            key.primary_region.as_deref().unwrap_or_default()
        )));
    }
    Ok(key)
}

/// An outcome that gives `key` a new material version (sealed into the same commit).
pub fn rotation_outcome(
    state: &AppState,
    key: &KeySnapshot,
    rotation_type: &str,
    next_rotation_date: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(Outcome, MaterialInfo), KmsError> {
    let internal = |_| KmsError::KmsInternal("Key material generation failed.".into());
    let version = key.current_material().map(|m| m.version).unwrap_or(0) + 1;
    let material = random_secret(32).map_err(internal)?;
    let sealed = state
        .root_key
        .seal(&key.key_id, version, &material)
        .map_err(internal)?;
    let info = MaterialInfo {
        version,
        material_id: hex::encode(random_public(32).map_err(internal)?),
        created_at: now,
        rotation_type: Some(rotation_type.to_string()),
    };
    let event = KeyEvent::KeyMaterialRotated {
        schema: 1,
        material: info.clone(),
        next_rotation_date,
        at: now,
    };
    let mut outcome = key_change(key, vec![event], Value::Null)?;
    outcome.unit.materials.push(SealedMaterial {
        key_id: key.key_id.clone(),
        version,
        sealed,
    });
    Ok((outcome, info))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnableKeyRotationRequest {
    key_id: String,
    rotation_period_in_days: Option<i64>,
}

/// EnableKeyRotation (or change the period of an enabled rotation).
pub fn enable_key_rotation(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: EnableKeyRotationRequest = decode(body)?;
    let key = rotatable_key(state, ctx, &req.key_id)?;
    let period = req
        .rotation_period_in_days
        .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
    let now = state.clock.now();
    // A changed period counts from the last rotation; a fresh enablement counts from now.
    let base = match &key.rotation {
        Some(_) => key.current_material().map(|m| m.created_at).unwrap_or(now),
        None => now,
    };
    let event = KeyEvent::KeyRotationEnabled {
        schema: 1,
        rotation_period_days: period,
        next_rotation_date: base + Duration::days(period),
        at: now,
    };
    key_change(&key, vec![event], Value::Null)
}

/// DisableKeyRotation.
pub fn disable_key_rotation(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = rotatable_key(state, ctx, &req.key_id)?;
    let events = match key.rotation {
        Some(_) => vec![KeyEvent::KeyRotationDisabled {
            schema: 1,
            at: state.clock.now(),
        }],
        None => vec![],
    };
    key_change(&key, events, Value::Null)
}

/// GetKeyRotationStatus.
pub fn get_key_rotation_status(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = rotatable_key(state, ctx, &req.key_id)?;
    let mut body = json!({ "KeyId": key.arn(), "KeyRotationEnabled": key.rotation.is_some() });
    if let Some(r) = &key.rotation {
        set(&mut body, "RotationPeriodInDays", json!(r.period_days));
        set(
            &mut body,
            "NextRotationDate",
            json!(epoch_seconds(r.next_rotation_date)),
        );
    }
    Ok(Outcome::reply(body))
}

/// RotateKeyOnDemand: new material now, at most `MAX_ON_DEMAND_ROTATIONS` times per key; the
/// automatic schedule stays.
/// An imported key's new material is its material pending rotation.
pub fn rotate_key_on_demand(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = rotatable_key_with(state, ctx, &req.key_id, true)?;
    if key.on_demand_rotations() >= MAX_ON_DEMAND_ROTATIONS {
        return Err(KmsError::LimitExceeded(format!(
            "{} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations.",
            key.arn()
        )));
    }
    let mut outcome = if key.origin == "EXTERNAL" {
        check_replicas_hold_pending_material(state, &key)?;
        imported_rotation(&key, state.clock.now())?
    } else {
        rotation_outcome(state, &key, "ON_DEMAND", None, state.clock.now())?.0
    };
    outcome.body = json!({ "KeyId": key.arn() });
    outcome.response_elements = Some(json!({ "keyId": key.arn() }));
    Ok(outcome)
}

/// A multi-Region key with imported material rotates once every replica holds the material
/// pending rotation (each imports it with EXISTING_KEY_MATERIAL), as AWS requires; the rotation
/// then reaches every Region.
fn check_replicas_hold_pending_material(
    state: &AppState,
    key: &KeySnapshot,
) -> Result<(), KmsError> {
    let Some(pending) = key.imported.as_ref().and_then(|i| i.pending.as_ref()) else {
        return Ok(());
    };
    if !key.multi_region {
        return Ok(());
    }
    let model = state.read_model()?;
    let missing: Vec<String> = model
        .multi_region_keys(&key.key_id)
        .filter(|k| k.region != key.region && k.is_live())
        .filter(|k| {
            k.imported
                .as_ref()
                .and_then(|i| i.pending.as_ref())
                .is_none_or(|p| p.material.version != pending.material.version)
        })
        .map(|k| k.region.clone())
        .collect();
    if !missing.is_empty() {
        return Err(KmsError::KmsInvalidState(format!(
            "{} cannot rotate yet: import the key material pending rotation ({}) into its \
             replicas in {} first.",
            key.arn(),
            pending.material.material_id,
            missing.join(", ")
        )));
    }
    Ok(())
}

/// On-demand rotation of an imported key: its material pending rotation (imported with
/// `NEW_KEY_MATERIAL`, already sealed) becomes current. Without one, AWS refuses.
fn imported_rotation(key: &KeySnapshot, now: DateTime<Utc>) -> Result<Outcome, KmsError> {
    let pending = key
        .imported
        .as_ref()
        .and_then(|i| i.pending.as_ref())
        .ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "{} has no imported key material in state PENDING_ROTATION; import new key \
                 material with ImportType NEW_KEY_MATERIAL before rotating it on demand.",
                key.arn()
            ))
        })?;
    let material = MaterialInfo {
        created_at: now,
        rotation_type: Some("ON_DEMAND".to_string()),
        ..pending.material.clone()
    };
    let event = KeyEvent::KeyMaterialRotated {
        schema: 1,
        material,
        next_rotation_date: None,
        at: now,
    };
    key_change(key, vec![event], Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyRotationsRequest {
    key_id: String,
    include_key_material: Option<String>,
    limit: Option<usize>,
    marker: Option<String>,
}

/// ListKeyRotations: completed rotations, oldest first; with `ALL_KEY_MATERIAL` the key's first
/// material and imported material pending rotation too, each with its KeyMaterialId and state
/// (CURRENT, NON_CURRENT or PENDING_ROTATION); imported keys add ImportState, the
/// KeyMaterialDescription and the expiry of the current (or pending) material.
pub fn list_key_rotations(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ListKeyRotationsRequest = decode(body)?;
    let key = rotatable_key_with(state, ctx, &req.key_id, true)?;
    let all = req.include_key_material.as_deref() == Some("ALL_KEY_MATERIAL");
    let limit = req.limit.unwrap_or(100);
    let after: Option<i32> = match req.marker.as_deref().map(decode_marker).transpose()? {
        Some(m) => Some(m.parse().map_err(|_| {
            KmsError::InvalidMarker(format!(
                "Invalid marker '{}'",
                req.marker.as_deref().unwrap_or("")
            ))
        })?),
        None => None,
    };
    let current = key.current_material().map(|m| m.version);
    let imported = key.imported.as_ref();
    let pending = imported.and_then(|i| i.pending.as_ref());
    let entries = key
        .materials
        .iter()
        .map(|m| {
            let state = if Some(m.version) == current {
                "CURRENT"
            } else {
                "NON_CURRENT"
            };
            (m, state)
        })
        .chain(pending.map(|p| (&p.material, "PENDING_ROTATION")))
        .filter(|(m, _)| all || m.rotation_type.is_some())
        .filter(|(m, _)| after.is_none_or(|a| m.version > a));
    let body = page(
        entries,
        limit,
        "Rotations",
        |(m, _)| m.version.to_string(),
        |(m, material_state)| {
            let mut e = json!({
                "KeyId": key.arn(),
                "KeyMaterialId": m.material_id,
                "KeyMaterialState": material_state,
            });
            if let Some(t) = &m.rotation_type {
                set(&mut e, "RotationDate", json!(epoch_seconds(m.created_at)));
                set(&mut e, "RotationType", json!(t));
            }
            if let Some(imported) = imported {
                describe_import(&mut e, imported, m);
            }
            e
        },
    );
    Ok(Outcome::reply(body))
}

/// The import fields of one ListKeyRotations entry: whether the version's material is imported
/// (or pending rotation), its description and expiry.
fn describe_import(
    e: &mut Value,
    imported: &crate::domain::key::ImportedMaterial,
    m: &crate::domain::events::MaterialInfo,
) {
    let pending = imported.pending.as_ref();
    let (present, description, expiry) = match pending {
        Some(p) if p.material.version == m.version => (
            true,
            p.description.as_ref(),
            Some((&p.expiration_model, p.valid_to)),
        ),
        _ => {
            let v = imported.versions.get(&m.version);
            let is_current = imported.version == m.version;
            (
                v.map_or(is_current && imported.present, |v| v.present),
                v.and_then(|v| v.description.as_ref()),
                is_current.then_some((&imported.expiration_model, imported.valid_to)),
            )
        }
    };
    set(
        e,
        "ImportState",
        json!(if present {
            "IMPORTED"
        } else {
            "PENDING_IMPORT"
        }),
    );
    if let Some(d) = description {
        set(e, "KeyMaterialDescription", json!(d));
    }
    if let Some((model, valid_to)) = expiry {
        set(e, "ExpirationModel", json!(model));
        if let Some(t) = valid_to.filter(|_| present) {
            set(e, "ValidTo", json!(epoch_seconds(t)));
        }
    }
}
