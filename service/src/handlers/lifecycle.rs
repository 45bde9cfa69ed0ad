//! EnableKey, DisableKey, UpdateKeyDescription, ScheduleKeyDeletion and CancelKeyDeletion.

use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{key_change, key_for, CallContext, KeyOnly, Outcome};
use crate::domain::events::KeyEvent;
use crate::domain::key::{epoch_seconds, KeySnapshot, KeyState};
use crate::protocol::wire::decode;
use crate::protocol::KmsError;
use crate::state::AppState;

/// EnableKey (enabling an enabled key changes nothing, as in AWS).
pub fn enable_key(state: &AppState, ctx: &CallContext, body: &Value) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let events = match key.state {
        KeyState::Enabled => vec![],
        _ => vec![KeyEvent::KeyEnabled {
            schema: 1,
            at: state.clock.now(),
        }],
    };
    key_change(&key, events, Value::Null)
}

/// DisableKey (disabling a disabled key changes nothing).
pub fn disable_key(state: &AppState, ctx: &CallContext, body: &Value) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let events = match key.state {
        KeyState::Disabled => vec![],
        _ => vec![KeyEvent::KeyDisabled {
            schema: 1,
            at: state.clock.now(),
        }],
    };
    key_change(&key, events, Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateKeyDescriptionRequest {
    key_id: String,
    description: String,
}

/// UpdateKeyDescription.
pub fn update_key_description(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: UpdateKeyDescriptionRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let event = KeyEvent::DescriptionUpdated {
        schema: 1,
        description: req.description,
        at: state.clock.now(),
    };
    key_change(&key, vec![event], Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleKeyDeletionRequest {
    key_id: String,
    pending_window_in_days: Option<i64>,
}

/// The shortest and longest waiting periods AWS KMS allows before deletion.
pub const PENDING_WINDOW_DAYS: std::ops::RangeInclusive<i64> = 7..=30;

/// ScheduleKeyDeletion: 7 to 30 days (default 30); the key becomes PendingDeletion.
pub fn schedule_key_deletion(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ScheduleKeyDeletionRequest = decode(body)?;
    let days = req.pending_window_in_days.unwrap_or(30);
    if !PENDING_WINDOW_DAYS.contains(&days) {
        let bound = if days < *PENDING_WINDOW_DAYS.start() {
            format!("greater than or equal to {}", PENDING_WINDOW_DAYS.start())
        } else {
            format!("less than or equal to {}", PENDING_WINDOW_DAYS.end())
        };
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value {bound}"
        )));
    }
    let key = key_for(state, ctx, &req.key_id)?;
    let now = state.clock.now();
    if key.is_primary() && has_live_replicas(state, &key)? {
        return awaiting_replicas(&key, days, now);
    }
    let deletion_date = now + Duration::days(days);
    let event = KeyEvent::KeyDeletionScheduled {
        schema: 1,
        deletion_date,
        pending_window_days: days,
        at: now,
    };
    let body = json!({
        "KeyId": key.arn(),
        "DeletionDate": epoch_seconds(deletion_date),
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days,
    });
    let mut outcome = key_change(&key, vec![event], body.clone())?;
    outcome.response_elements = Some(json!({
        "keyId": key.arn(),
        "deletionDate": crate::audit::record::cloudtrail_time(deletion_date),
        "keyState": "PendingDeletion",
        "pendingWindowInDays": days,
    }));
    Ok(outcome)
}

/// Whether a multi-Region primary key still has a replica that is not deleted.
fn has_live_replicas(state: &AppState, key: &KeySnapshot) -> Result<bool, KmsError> {
    Ok(state
        .read_model()?
        .multi_region_keys(&key.key_id)
        .any(|k| k.region != key.region && k.is_live()))
}

/// ScheduleKeyDeletion of a primary key with replicas: PendingReplicaDeletion, no deletion date
/// until the replicas are deleted (the scheduler then starts the waiting period).
fn awaiting_replicas(
    key: &KeySnapshot,
    days: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, KmsError> {
    let event = KeyEvent::KeyDeletionAwaitingReplicas {
        schema: 1,
        pending_window_days: days,
        at: now,
    };
    let body = json!({
        "KeyId": key.arn(),
        "KeyState": "PendingReplicaDeletion",
        "PendingWindowInDays": days,
    });
    let mut outcome = key_change(key, vec![event], body)?;
    outcome.response_elements = Some(json!({
        "keyId": key.arn(),
        "keyState": "PendingReplicaDeletion",
        "pendingWindowInDays": days,
    }));
    Ok(outcome)
}

/// CancelKeyDeletion: the key returns to Disabled, as in AWS.
pub fn cancel_key_deletion(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: KeyOnly = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let event = KeyEvent::KeyDeletionCancelled {
        schema: 1,
        at: state.clock.now(),
    };
    let mut outcome = key_change(&key, vec![event], json!({ "KeyId": key.arn() }))?;
    outcome.response_elements = Some(json!({ "keyId": key.arn() }));
    Ok(outcome)
}
