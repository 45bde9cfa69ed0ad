//! CreateAlias, UpdateAlias, DeleteAlias and ListAliases. An alias is its own event stream
//! (`alias/ACCOUNT/REGION/NAME`), so optimistic concurrency on that stream makes names unique per
//! account and region even with several writers.

use serde::Deserialize;
use serde_json::{json, Value};

use super::pagination::{decode_marker, page};
use super::{authorize, key_for, resolve_key, CallContext, Outcome};
use crate::domain::events::AliasEvent;
use crate::domain::key::epoch_seconds;
use crate::domain::read_model::AliasEntry;
use crate::protocol::wire::decode;
use crate::protocol::KmsError;
use crate::state::AppState;
use crate::store::StreamAppend;

/// Check an alias name against AWS's rules (the model's pattern is checked before this).
pub fn check_alias_name(name: &str) -> Result<(), KmsError> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see \
             https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
                .into(),
        ));
    };
    if rest.is_empty() {
        return Err(KmsError::InvalidAliasName(
            "Alias name must have characters after \"alias/\".".into(),
        ));
    }
    if rest.starts_with("aws/") {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias '{name}' uses the prefix \"alias/aws/\", which is reserved for AWS managed keys."
        )));
    }
    if rest.contains(':') {
        return Err(KmsError::InvalidAliasName(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    Ok(())
}

fn append(
    stream: String,
    expected_version: i64,
    event: AliasEvent,
) -> Result<StreamAppend, KmsError> {
    let encoded = event
        .to_new_event()
        .map_err(|_| KmsError::KmsInternal("Event encoding failed.".into()))?;
    Ok(StreamAppend {
        stream,
        expected_version,
        events: vec![encoded],
    })
}

fn alias_not_found(ctx: &CallContext, name: &str) -> KmsError {
    KmsError::NotFound(format!(
        "Alias arn:aws:kms:{}:{}:{name} is not found.",
        ctx.region, ctx.principal.account
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasRequest {
    alias_name: String,
    target_key_id: String,
}

/// CreateAlias: a new name for a key of the caller's account and region.
pub fn create_alias(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: AliasRequest = decode(body)?;
    check_alias_name(&req.alias_name)?;
    if req.target_key_id.starts_with("alias/") || req.target_key_id.contains(":alias/") {
        return Err(KmsError::Validation(
            "TargetKeyId must be a key ID or key ARN, not an alias.".into(),
        ));
    }
    let key = key_for(state, ctx, &req.target_key_id)?;
    if key.account != ctx.principal.account {
        return Err(KmsError::NotFound(format!(
            "Key '{}' does not exist",
            key.arn()
        )));
    }
    let stream = AliasEvent::stream_for(&ctx.principal.account, &ctx.region, &req.alias_name);
    let model = state.read_model()?;
    if model
        .alias(&ctx.principal.account, &ctx.region, &req.alias_name)
        .is_some()
    {
        return Err(KmsError::AlreadyExists(format!(
            "An alias with the name arn:aws:kms:{}:{}:{} already exists",
            ctx.region, ctx.principal.account, req.alias_name
        )));
    }
    let version = model.alias_stream_version(&stream);
    drop(model);
    let event = AliasEvent::AliasCreated {
        schema: 1,
        account: ctx.principal.account.clone(),
        region: ctx.region.clone(),
        name: req.alias_name,
        target_key_id: key.key_id.clone(),
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(Value::Null);
    outcome.unit.appends.push(append(stream, version, event)?);
    Ok(outcome)
}

/// UpdateAlias: point an existing alias at another key of the same account and region.
pub fn update_alias(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: AliasRequest = decode(body)?;
    check_alias_name(&req.alias_name)?;
    let current = state
        .read_model()?
        .alias(&ctx.principal.account, &ctx.region, &req.alias_name)
        .cloned()
        .ok_or_else(|| alias_not_found(ctx, &req.alias_name))?;
    // The caller needs the operation on both the key it leaves and the key it joins.
    if let Ok(old) = resolve_key(state, ctx, &current.target_key_id) {
        authorize(state, ctx, &old)?;
    }
    let key = key_for(state, ctx, &req.target_key_id)?;
    if let Some(old) = state
        .read_model()?
        .live_key(&current.region, &current.target_key_id)
    {
        if old.key_usage != key.key_usage
            || (old.key_spec == "SYMMETRIC_DEFAULT") != (key.key_spec == "SYMMETRIC_DEFAULT")
        {
            return Err(KmsError::Validation(format!(
                "Alias {} cannot be changed to a key of a different type or usage.",
                req.alias_name
            )));
        }
    }
    let stream = AliasEvent::stream_for(&ctx.principal.account, &ctx.region, &req.alias_name);
    let version = state.read_model()?.alias_stream_version(&stream);
    let event = AliasEvent::AliasRetargeted {
        schema: 1,
        target_key_id: key.key_id.clone(),
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(Value::Null);
    outcome.unit.appends.push(append(stream, version, event)?);
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteAliasRequest {
    alias_name: String,
}

/// DeleteAlias.
pub fn delete_alias(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: DeleteAliasRequest = decode(body)?;
    check_alias_name(&req.alias_name)?;
    let current = state
        .read_model()?
        .alias(&ctx.principal.account, &ctx.region, &req.alias_name)
        .cloned()
        .ok_or_else(|| alias_not_found(ctx, &req.alias_name))?;
    if let Ok(key) = resolve_key(state, ctx, &current.target_key_id) {
        authorize(state, ctx, &key)?;
    }
    let stream = AliasEvent::stream_for(&ctx.principal.account, &ctx.region, &req.alias_name);
    let version = state.read_model()?.alias_stream_version(&stream);
    let event = AliasEvent::AliasDeleted {
        schema: 1,
        at: state.clock.now(),
    };
    let mut outcome = Outcome::reply(Value::Null);
    outcome.unit.appends.push(append(stream, version, event)?);
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesRequest {
    key_id: Option<String>,
    limit: Option<usize>,
    marker: Option<String>,
}

fn alias_entry(a: &AliasEntry) -> Value {
    json!({
        "AliasName": a.name,
        "AliasArn": a.arn(),
        "TargetKeyId": a.target_key_id,
        "CreationDate": epoch_seconds(a.created_at),
        "LastUpdatedDate": epoch_seconds(a.updated_at),
    })
}

/// ListAliases, for the account and region or for one key, paginated by alias name.
pub fn list_aliases(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ListAliasesRequest = decode(body)?;
    let limit = req.limit.unwrap_or(50);
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let key_filter = match &req.key_id {
        Some(id) => {
            let key = resolve_key(state, ctx, id)?;
            authorize(state, ctx, &key)?;
            Some(key.key_id.clone())
        }
        None => {
            super::authorize_account(state, ctx)?;
            None
        }
    };
    let model = state.read_model()?;
    let aliases = model
        .aliases_in(&ctx.principal.account, &ctx.region, after.as_deref())
        .filter(|a| key_filter.as_deref().is_none_or(|k| a.target_key_id == k));
    let body = page(
        aliases,
        limit,
        "Aliases",
        |a| a.name.clone(),
        |a| alias_entry(a),
    );
    Ok(Outcome::reply(body))
}
