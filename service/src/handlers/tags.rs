//! TagResource, UntagResource and ListResourceTags, with AWS's tag rules.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{json, Value};

use super::pagination::{decode_marker, page};
use super::{authorize, key_change, key_for, resolve_key, CallContext, Outcome};
use crate::domain::events::{KeyEvent, Tag};
use crate::protocol::wire::decode;
use crate::protocol::KmsError;
use crate::state::AppState;

/// The most tags one key can carry.
pub const MAX_TAGS_PER_KEY: usize = 50;

/// A tag as the wire sends it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireTag {
    tag_key: String,
    tag_value: String,
}

/// Tag keys beginning with `aws:`, in any case, are AWS's own.
fn is_reserved_tag_key(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// Check tags to add to a key that has `existing` ones: no `aws:` prefix, no duplicate keys in
/// the request, at most 50 tags once applied.
pub fn check_new_tags(existing: &[Tag], tags: &[WireTag]) -> Result<Vec<Tag>, KmsError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        if is_reserved_tag_key(&t.tag_key) {
            return Err(KmsError::Tag(format!(
                "Tag keys beginning with 'aws:' are reserved: '{}'.",
                t.tag_key
            )));
        }
        if !seen.insert(t.tag_key.clone()) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
        out.push(Tag {
            key: t.tag_key.clone(),
            value: t.tag_value.clone(),
        });
    }
    let added = out
        .iter()
        .filter(|t| !existing.iter().any(|e| e.key == t.key))
        .count();
    if existing.len() + added > MAX_TAGS_PER_KEY {
        return Err(KmsError::Tag(format!(
            "A KMS key can have at most {MAX_TAGS_PER_KEY} tags."
        )));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    key_id: String,
    tags: Vec<WireTag>,
}

/// TagResource: add tags or replace their values.
pub fn tag_resource(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: TagResourceRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    let tags = check_new_tags(&key.tags, &req.tags)?;
    let event = KeyEvent::TagsSet {
        schema: 1,
        tags,
        at: state.clock.now(),
    };
    key_change(&key, vec![event], Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResourceRequest {
    key_id: String,
    tag_keys: Vec<String>,
}

/// UntagResource: remove tags by key (absent keys are ignored, as in AWS).
pub fn untag_resource(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: UntagResourceRequest = decode(body)?;
    let key = key_for(state, ctx, &req.key_id)?;
    if let Some(reserved) = req.tag_keys.iter().find(|k| is_reserved_tag_key(k)) {
        return Err(KmsError::Tag(format!(
            "Tag keys beginning with 'aws:' are reserved: '{reserved}'."
        )));
    }
    let event = KeyEvent::TagsRemoved {
        schema: 1,
        keys: req.tag_keys,
        at: state.clock.now(),
    };
    key_change(&key, vec![event], Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResourceTagsRequest {
    key_id: String,
    limit: Option<usize>,
    marker: Option<String>,
}

/// ListResourceTags, sorted by tag key, paginated.
pub fn list_resource_tags(
    state: &AppState,
    ctx: &CallContext,
    body: &Value,
) -> Result<Outcome, KmsError> {
    let req: ListResourceTagsRequest = decode(body)?;
    let key = resolve_key(state, ctx, &req.key_id)?;
    authorize(state, ctx, &key)?;
    let limit = req.limit.unwrap_or(50).min(50);
    let after = req.marker.as_deref().map(decode_marker).transpose()?;
    let mut tags: Vec<&Tag> = key.tags.iter().collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    let remaining = tags
        .into_iter()
        .filter(|t| after.as_deref().is_none_or(|a| t.key.as_str() > a));
    let body = page(
        remaining,
        limit,
        "Tags",
        |t| t.key.clone(),
        |t| json!({"TagKey": t.key, "TagValue": t.value}),
    );
    Ok(Outcome::reply(body))
}
