//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant. A grant is
//! an event on its key's stream; the key's snapshot holds its live grants and their compiled
//! index, which every authorization of the key consults as a further allow path.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::pagination::{decode_marker, page};
use super::{authorize, key_change, key_for, resolve_key, CallContext, Outcome};
use crate::crypto::random_public;
use crate::domain::events::{GrantRecord, KeyEvent};
use crate::domain::key::{epoch_seconds, KeySnapshot};
use crate::protocol::wire::decode;
use crate::protocol::wire::set;
use crate::protocol::KmsError;
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct WireConstraints {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
    source_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantRequest {
    key_id: String,
    grantee_principal: Option<String>,
    grantee_service_principal: Option<String>,
    retiring_principal: Option<String>,
    retiring_service_principal: Option<String>,
    operations: Vec<String>,
    constraints: Option<WireConstraints>,
    name: Option<String>,
    dry_run: Option<bool>,
}

/// A grant token: names the grant (so RetireGrant can find it) plus random bytes.
fn grant_token(grant_id: &str) -> Result<String, KmsError> {
    let nonce =
        random_public(16).map_err(|_| KmsError::KmsInternal("Randomness failed.".into()))?;
    let mut raw = grant_id.as_bytes().to_vec();
    raw.push(b'.');
    raw.extend_from_slice(&nonce);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The grant id a token names, if it is one of ours.
fn grant_id_of_token(token: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let dot = raw.iter().position(|b| *b == b'.')?;
    String::from_utf8(raw.get(..dot)?.to_vec()).ok()
}

/// A service principal a grant names: one of this deployment's, or an AWS service's.
fn check_service_principal(state: &AppState, name: &str, what: &str) -> Result<(), KmsError> {
    if !crate::auth::identity::is_service_principal_name(name)
        || !state.identities.principal_exists(name)
    {
        return Err(KmsError::Validation(format!(
            "Invalid {what} '{name}': it must name a service principal of this deployment."
        )));
    }
    Ok(())
}

/// Who a new grant is for and who may retire it.
struct GrantParties {
    /// The grantee principal's ARN (empty for a grant to a service principal).
    grantee: String,
    /// The grantee service principal.
    grantee_service: Option<String>,
    /// The retiring principal's ARN.
    retiring: Option<String>,
    /// The retiring service principal.
    retiring_service: Option<String>,
}

/// The parties of a new grant, with AWS's rules: exactly one grantee; a service grantee needs a
/// SourceArn constraint and a retiring principal of either kind; at most one retiring principal.
fn grant_parties(state: &AppState, req: &CreateGrantRequest) -> Result<GrantParties, KmsError> {
    let service = req.grantee_service_principal.clone();
    let grantee = match (&req.grantee_principal, &service) {
        (Some(p), None) => {
            check_principal(state, p, "grantee principal")?;
            p.clone()
        }
        (None, Some(s)) => {
            check_service_principal(state, s, "grantee service principal")?;
            String::new()
        }
        _ => return Err(KmsError::Validation(
            "You must specify either GranteePrincipal or GranteeServicePrincipal, but not both."
                .into(),
        )),
    };
    if req.retiring_principal.is_some() && req.retiring_service_principal.is_some() {
        return Err(KmsError::Validation(
            "You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
                .into(),
        ));
    }
    if let Some(r) = &req.retiring_principal {
        check_principal(state, r, "retiring principal")?;
    }
    if let Some(r) = &req.retiring_service_principal {
        check_service_principal(state, r, "retiring service principal")?;
    }
    if service.is_some() {
        let source = req.constraints.as_ref().and_then(|c| c.source_arn.as_ref());
        if source.is_none() {
            return Err(KmsError::Validation(
                "When you specify a GranteeServicePrincipal, you must also specify a SourceArn grant constraint."
                    .into(),
            ));
        }
        if req.retiring_principal.is_none() && req.retiring_service_principal.is_none() {
            return Err(KmsError::Validation(
                "When you specify a GranteeServicePrincipal, you must also specify a RetiringPrincipal or a RetiringServicePrincipal."
                    .into(),
            ));
        }
    }
    Ok(GrantParties {
        grantee,
        grantee_service: service,
        retiring: req.retiring_principal.clone(),
        retiring_service: req.retiring_service_principal.clone(),
    })
}

fn check_principal(state: &AppState, principal: &str, what: &str) -> Result<(), KmsError> {
    if !principal.starts_with("arn:") || !state.identities.principal_exists(principal) {
        return Err(KmsError::Validation(format!(
            "Invalid {what} '{principal}': it must be the ARN of an existing principal."
        )));
    }
    Ok(())
}

/// A grant's operations, each a grant operation, at least one; sorted, each once.
fn grant_operations(requested: &[String]) -> Result<Vec<String>, KmsError> {
    if requested.is_empty() {
        return Err(KmsError::Validation(
            "A grant must allow at least one operation.".into(),
        ));
    }
    for op in requested {
        if trent_policy::GrantOperation::parse(op).is_none() {
            return Err(KmsError::Validation(format!(
                "'{op}' is not a grant operation."
            )));
        }
    }
    let mut operations = requested.to_vec();
    operations.sort();
    operations.dedup();
    Ok(operations)
}

/// Grant constraints: encryption-context constraints on symmetric keys only; SourceArn on any.
fn check_constraints(constraints: &WireConstraints, key: &KeySnapshot) -> Result<(), KmsError> {
    let has_constraints = constraints.encryption_context_equals.is_some()
        || constraints.encryption_context_subset.is_some();
    if has_constraints && key.key_spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::Validation(
            "Encryption context grant constraints are only valid for symmetric encryption keys."
                .into(),
        ));
    }
    Ok(())
}

/// CreateGrant (idempotent on Name with the same parameters, as AWS).
pub fn create_grant(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: CreateGrantRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let GrantParties {
        grantee,
        grantee_service,
        retiring,
        retiring_service,
    } = grant_parties(state, &req)?;
    let operations = grant_operations(&req.operations)?;
    let constraints = req.constraints.unwrap_or_default();
    check_constraints(&constraints, &key)?;
    if let Some(name) = &req.name {
        if let Some(existing) = key.grants.iter().find(|g| g.name.as_deref() == Some(name)) {
            let same = existing.grantee_principal == grantee
                && existing.grantee_service_principal == grantee_service
                && existing.retiring_principal == retiring
                && existing.retiring_service_principal == retiring_service
                && existing.operations == operations
                && existing.encryption_context_equals == constraints.encryption_context_equals
                && existing.encryption_context_subset == constraints.encryption_context_subset
                && existing.source_arn == constraints.source_arn;
            if same {
                super::dry_run_check(req.dry_run)?;
                return Ok(Outcome::reply(json!({
                    "GrantId": existing.grant_id,
                    "GrantToken": grant_token(&existing.grant_id)?,
                })));
            }
        }
    }
    super::dry_run_check(req.dry_run)?;
    let grant_id = hex::encode(
        random_public(32).map_err(|_| KmsError::KmsInternal("Randomness failed.".into()))?,
    );
    let grant = GrantRecord {
        grant_id: grant_id.clone(),
        name: req.name,
        grantee_principal: grantee,
        grantee_service_principal: grantee_service,
        retiring_principal: retiring,
        retiring_service_principal: retiring_service,
        operations,
        encryption_context_equals: constraints.encryption_context_equals,
        encryption_context_subset: constraints.encryption_context_subset,
        source_arn: constraints.source_arn,
        issuing_account: format!("arn:aws:iam::{}:root", ctx.principal.account),
        created_at: state.clock.now(),
    };
    let token = grant_token(&grant_id)?;
    let body = json!({ "GrantId": grant_id, "GrantToken": token });
    let mut outcome = key_change(
        &key,
        vec![KeyEvent::GrantCreated { schema: 1, grant }],
        body,
    )?;
    outcome.response_elements = Some(json!({ "grantId": grant_id }));
    Ok(outcome)
}

fn grant_entry(key: &KeySnapshot, g: &GrantRecord) -> Value {
    let mut e = json!({
        "KeyId": key.arn(),
        "GrantId": g.grant_id,
        "IssuingAccount": g.issuing_account,
        "Operations": g.operations,
        "CreationDate": epoch_seconds(g.created_at),
    });
    match &g.grantee_service_principal {
        Some(s) => set(&mut e, "GranteeServicePrincipal", json!(s)),
        None => set(&mut e, "GranteePrincipal", json!(g.grantee_principal)),
    }
    if let Some(n) = &g.name {
        set(&mut e, "Name", json!(n));
    }
    if let Some(r) = &g.retiring_principal {
        set(&mut e, "RetiringPrincipal", json!(r));
    }
    if let Some(r) = &g.retiring_service_principal {
        set(&mut e, "RetiringServicePrincipal", json!(r));
    }
    let mut c = serde_json::Map::new();
    if let Some(eq) = &g.encryption_context_equals {
        c.insert("EncryptionContextEquals".into(), json!(eq));
    }
    if let Some(sub) = &g.encryption_context_subset {
        c.insert("EncryptionContextSubset".into(), json!(sub));
    }
    if let Some(source) = &g.source_arn {
        c.insert("SourceArn".into(), json!(source));
    }
    if !c.is_empty() {
        set(&mut e, "Constraints", Value::Object(c));
    }
    e
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsRequest {
    key_id: String,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    grantee_service_principal: Option<String>,
    limit: Option<usize>,
    marker: Option<String>,
}

/// ListGrants for one key, optionally filtered by grant id, grantee principal or grantee service
/// principal.
pub fn list_grants(state: &AppState, ctx: &CallContext, body: &Value) -> Result<Outcome, KmsError> {
    let req: ListGrantsRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let mut skipping = after.is_some();
    let grants = key.grants.iter().filter(|g| {
        if skipping {
            skipping = Some(g.grant_id.as_str()) != after.as_deref();
            return false;
        }
        req.grant_id.as_deref().is_none_or(|id| g.grant_id == id)
            && req
                .grantee_principal
                .as_deref()
                .is_none_or(|p| g.grantee_service_principal.is_none() && g.grantee_principal == p)
            && req
                .grantee_service_principal
                .as_deref()
                .is_none_or(|s| g.grantee_service_principal.as_deref() == Some(s))
    });
    let body = page(
        grants,
        req.limit.unwrap_or(50),
        "Grants",
        |g| g.grant_id.clone(),
        |g| grant_entry(&key, g),
    );
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRetirableGrantsRequest {
    retiring_principal: Option<String>,
    retiring_service_principal: Option<String>,
    limit: Option<usize>,
    marker: Option<String>,
}

/// ListRetirableGrants: grants of the caller's account and region whose retiring principal (or
/// retiring service principal) is the one named; without either the request is invalid.
pub fn list_retirable_grants(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ListRetirableGrantsRequest = decode(body)?;
    let (principal, service) = (req.retiring_principal, req.retiring_service_principal);
    if principal.is_none() && service.is_none() {
        return Err(KmsError::Validation("1 validation error detected: Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null".into()));
    }
    super::authorize_account(state, ctx)?;
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let model = state.read_model()?;
    let mut entries: Vec<(String, Value)> = model
        .keys_in(&ctx.principal.account, &ctx.region, None)
        .flat_map(|k| {
            k.grants
                .iter()
                .filter(|g| {
                    principal
                        .as_ref()
                        .is_none_or(|p| g.retiring_principal.as_ref() == Some(p))
                        && service
                            .as_ref()
                            .is_none_or(|s| g.retiring_service_principal.as_ref() == Some(s))
                })
                .map(move |g| (g.grant_id.clone(), grant_entry(k, g)))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let remaining = entries
        .into_iter()
        .filter(|(id, _)| after.as_deref().is_none_or(|a| id.as_str() > a));
    let body = page(
        remaining,
        req.limit.unwrap_or(50),
        "Grants",
        |(id, _)| id.clone(),
        |(_, e)| e.clone(),
    );
    Ok(Outcome::reply(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetireGrantRequest {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

/// RetireGrant, by token or by key and grant id. Allowed to the grant's retiring principal, to its
/// grantee when the grant includes RetireGrant, and to the root user of the account that issued it.
pub fn retire_grant(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: RetireGrantRequest = decode(body)?;
    let (key, grant_id) = match (&req.grant_token, &req.key_id, &req.grant_id) {
        (_, Some(key_id), Some(grant_id)) => (resolve_key(state, ctx, key_id)?, grant_id.clone()),
        (Some(token), _, _) => {
            let grant_id = grant_id_of_token(token).ok_or_else(|| {
                KmsError::InvalidGrantToken("The grant token is not valid.".into())
            })?;
            let model = state.read_model()?;
            let key = model
                .all_keys()
                .filter(|k| k.is_live() && k.region == ctx.region)
                .find(|k| k.grants.iter().any(|g| g.grant_id == grant_id))
                .and_then(|k| model.live_key_shared(&k.region, &k.key_id))
                .ok_or_else(|| KmsError::NotFound(format!("Grant {grant_id} does not exist.")))?;
            ctx.touch(key.arn());
            (key, grant_id)
        }
        _ => {
            return Err(KmsError::Validation(
                "Specify a GrantToken, or both a KeyId and a GrantId.".into(),
            ))
        }
    };
    let grant = key
        .grants
        .iter()
        .find(|g| g.grant_id == grant_id)
        .ok_or_else(|| {
            KmsError::InvalidGrantId(format!("Grant {grant_id} does not exist on {}.", key.arn()))
        })?;
    let caller = &ctx.principal.arn;
    let allowed = grant.retiring() == Some(caller.as_str())
        || (grant.grantee() == caller.as_str()
            && grant.operations.iter().any(|o| o == "RetireGrant"))
        || grant.issuing_account == *caller;
    if !allowed {
        return Err(KmsError::AccessDenied(format!(
            "User: {caller} is not authorized to perform: kms:RetireGrant on resource: {} because it is neither the grant's retiring principal, its grantee with RetireGrant, nor its issuing account",
            key.arn()
        )));
    }
    super::dry_run_check(req.dry_run)?;
    let event = KeyEvent::GrantRetired {
        schema: 1,
        grant_id,
        at: state.clock.now(),
    };
    key_change(&key, vec![event], Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeGrantRequest {
    key_id: String,
    grant_id: String,
    dry_run: Option<bool>,
}

/// RevokeGrant: by anyone the key's policies allow kms:RevokeGrant.
pub fn revoke_grant(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: RevokeGrantRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    if !key.grants.iter().any(|g| g.grant_id == req.grant_id) {
        return Err(KmsError::InvalidGrantId(format!(
            "Grant {} does not exist on {}.",
            req.grant_id,
            key.arn()
        )));
    }
    super::dry_run_check(req.dry_run)?;
    let event = KeyEvent::GrantRevoked {
        schema: 1,
        grant_id: req.grant_id,
        at: state.clock.now(),
    };
    key_change(&key, vec![event], Value::Null)
}
