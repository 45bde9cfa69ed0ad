//! GetKeyPolicy, PutKeyPolicy and ListKeyPolicies (AWS KMS keys have one policy, `default`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::keys::check_new_key_policy;
use super::{authorize, check_key_state, resolve_key, CallContext, Outcome};
use crate::domain::events::KeyEvent;
use crate::protocol::wire::decode;
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::StreamAppend;

const DEFAULT_POLICY_NAME: &str = "default";

fn check_policy_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!(
            "Policy '{other}' does not exist. The only policy name is 'default'."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetKeyPolicyRequest {
    key_id: String,
    policy_name: Option<String>,
}

/// GetKeyPolicy.
pub fn get_key_policy(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: GetKeyPolicyRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    check_policy_name(req.policy_name.as_deref())?;
    Ok(Outcome::reply(
        json!({ "Policy": key.policy, "PolicyName": DEFAULT_POLICY_NAME }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutKeyPolicyRequest {
    key_id: String,
    policy_name: Option<String>,
    policy: String,
    bypass_policy_lockout_safety_check: Option<bool>,
}

/// PutKeyPolicy: replaces the key policy (an event on the key's stream).
pub fn put_key_policy(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: PutKeyPolicyRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    check_policy_name(req.policy_name.as_deref())?;
    check_key_state(ctx, &key)?;
    check_new_key_policy(
        state,
        ctx,
        &req.policy,
        Some(&key),
        req.bypass_policy_lockout_safety_check,
    )?;
    let event = KeyEvent::KeyPolicyPut {
        schema: 1,
        policy_name: DEFAULT_POLICY_NAME.into(),
        policy: req.policy,
        at: state.clock.now(),
    }
    .to_new_event()
    .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    let mut outcome = Outcome::reply(Value::Null);
    outcome.unit.appends.push(StreamAppend {
        stream: key.stream(),
        expected_version: key.stream_version,
        events: vec![event],
    });
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyPoliciesRequest {
    key_id: String,
}

/// ListKeyPolicies: always `["default"]`.
pub fn list_key_policies(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ListKeyPoliciesRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    Ok(Outcome::reply(
        json!({ "PolicyNames": [DEFAULT_POLICY_NAME], "Truncated": false }),
    ))
}
