//! CloudTrail's LookupEvents over the audit records. Each record's lookup attributes (EventId,
//! EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId) are
//! computed here when the record is made (`attributes`) and written by the store into its lookup
//! index in the same transaction as the record, so a query reads only the records it returns,
//! memory does not grow with the trail, and every replica sees every replica's calls at once.
//! Values most records share (`DENSE`) are not indexed: a search for one reads records in time
//! order and keeps the matching ones.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::protocol::wire::field;
use crate::protocol::wire::set;
use crate::store::{LookupQuery, SharedStore, StoreError};

/// The attributes LookupEvents can filter on.
pub const ATTRIBUTES: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

/// Attribute values most records have (every KMS call's EventSource and ResourceType, and
/// ReadOnly true for the cryptographic calls that make up most of a trail). They get no index
/// row: a search for one reads the account's records in time order and keeps those that match,
/// which finds a match within a few records because most records match. The rarer values of the
/// same attributes (ReadOnly false, another service, another resource type) stay indexed, so
/// "every write" is still an index search. Three fewer index rows per record is a third less
/// of the writer's index work.
const DENSE: [(&str, &str); 3] = [
    ("ReadOnly", "true"),
    ("EventSource", "kms.amazonaws.com"),
    ("ResourceType", "AWS::KMS::Key"),
];

/// Whether `attribute = value` is answered by reading records in time order (see [`DENSE`]).
fn is_dense(attribute: &str, value: &str) -> bool {
    DENSE.iter().any(|(a, v)| *a == attribute && *v == value)
}

/// The attribute values of one record that go into the lookup index: every value LookupEvents
/// reports, but the [`DENSE`] ones.
pub fn attributes(record: &Value) -> Vec<(&'static str, String)> {
    reported_attributes(record, |a, v| !is_dense(a, v))
}

/// Whether `record` has `attribute = value`, as LookupEvents matches it.
fn has_attribute(record: &Value, attribute: &str, value: &str) -> bool {
    !reported_attributes(record, |a, v| a == attribute && v == value).is_empty()
}

/// The attribute values of one record, as LookupEvents reports them, that `keep` accepts (it
/// is asked before a value is copied).
fn reported_attributes(
    record: &Value,
    keep: impl Fn(&str, &str) -> bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| keep(name, v)) {
            out.push((name, v.to_string()));
        }
    };
    push("EventId", record["eventID"].as_str());
    push("EventName", record["eventName"].as_str());
    push(
        "ReadOnly",
        record["readOnly"]
            .as_bool()
            .map(|b| if b { "true" } else { "false" }),
    );
    push("Username", username(record).as_deref());
    push("EventSource", record["eventSource"].as_str());
    push(
        "AccessKeyId",
        field(record, &["userIdentity", "accessKeyId"]).as_str(),
    );
    for r in record["resources"].as_array().into_iter().flatten() {
        push("ResourceType", r["type"].as_str());
        push("ResourceName", r["ARN"].as_str());
    }
    out
}

/// The `Username` CloudTrail shows: `root`, the IAM user's name, or a role session's name.
fn username(record: &Value) -> Option<String> {
    let identity = &record["userIdentity"];
    match identity["type"].as_str() {
        Some("Root") => Some("root".to_string()),
        Some("AssumedRole") => identity["arn"]
            .as_str()
            .and_then(|arn| arn.rsplit_once('/'))
            .map(|(_, session)| session.to_string()),
        _ => identity["userName"].as_str().map(str::to_string),
    }
}

fn event_time(record: &Value) -> Option<i64> {
    record["eventTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
}

/// Errors of LookupEvents, each one of CloudTrail's error shapes (mapped in `cloudtrail`).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// More than one attribute, or an unknown one.
    #[error("{0}")]
    InvalidLookupAttributes(String),
    /// StartTime after EndTime.
    #[error("{0}")]
    InvalidTimeRange(String),
    /// MaxResults out of 1..=50.
    #[error("{0}")]
    InvalidMaxResults(String),
    /// A NextToken this server did not issue.
    #[error("{0}")]
    InvalidNextToken(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_key: String,
    attribute_value: String,
}

/// The LookupEvents request body.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupRequest {
    #[serde(default)]
    lookup_attributes: Vec<Attribute>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The position a NextToken this server issued names.
fn decode_next_token(token: &str) -> Result<(i64, i64), LookupError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .ok_or_else(|| LookupError::InvalidNextToken("The NextToken is not valid.".into()))
}

/// One stored record as LookupEvents lists it (None when it is not JSON, of another Region, or
/// without the `wanted` attribute value).
fn lookup_event(text: String, region: &str, wanted: Option<(&str, &str)>) -> Option<Value> {
    let record = serde_json::from_str::<Value>(&text).ok()?;
    if field(&record, &["awsRegion"]).as_str() != Some(region) {
        return None;
    }
    if let Some((attribute, value)) = wanted {
        if !has_attribute(&record, attribute, value) {
            return None;
        }
    }
    let resources: Vec<Value> = field(&record, &["resources"])
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"ResourceType": r["type"], "ResourceName": r["ARN"]}))
        .collect();
    Some(json!({
        "EventId": field(&record, &["eventID"]),
        "EventName": field(&record, &["eventName"]),
        "ReadOnly": field(&record, &["readOnly"]).as_bool().map(|b| b.to_string()),
        "AccessKeyId": field(&record, &["userIdentity", "accessKeyId"]),
        "EventTime": event_time(&record),
        "EventSource": field(&record, &["eventSource"]),
        "Username": username(&record),
        "Resources": resources,
        "CloudTrailEvent": text,
    }))
}

/// How many store pages one LookupEvents call reads at most while it skips other Regions'
/// records; past that it answers the events found so far with a NextToken, as CloudTrail may.
const MAX_SCAN_PAGES: usize = 20;

/// Answer a LookupEvents call for `account` in `region` (CloudTrail's event history is per
/// Region: records of other Regions are skipped).
pub async fn lookup_events(
    store: &SharedStore,
    account: &str,
    region: &str,
    req: &LookupRequest,
) -> Result<Value, LookupError> {
    if req.lookup_attributes.len() > 1 {
        return Err(LookupError::InvalidLookupAttributes(
            "You can only specify one lookup attribute.".into(),
        ));
    }
    let attribute = match req.lookup_attributes.first() {
        Some(a) if ATTRIBUTES.contains(&a.attribute_key.as_str()) => {
            Some((a.attribute_key.as_str(), a.attribute_value.as_str()))
        }
        Some(a) => {
            return Err(LookupError::InvalidLookupAttributes(format!(
                "'{}' is not a lookup attribute.",
                a.attribute_key
            )))
        }
        None => None,
    };
    let (start, end) = (
        req.start_time.map(|t| t as i64),
        req.end_time.map(|t| t as i64),
    );
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(LookupError::InvalidTimeRange(
                "The start time must be earlier than the end time.".into(),
            ));
        }
    }
    let max = req.max_results.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(LookupError::InvalidMaxResults(
            "MaxResults must be between 1 and 50.".into(),
        ));
    }
    let after = req
        .next_token
        .as_deref()
        .map(decode_next_token)
        .transpose()?;
    // A dense value has no index rows: read the account's records and keep those that match.
    let (indexed, scanned) = match attribute {
        Some((a, v)) if is_dense(a, v) => (None, Some((a, v))),
        other => (other, None),
    };
    let mut query = LookupQuery {
        account: account.to_string(),
        attribute: indexed.map(|(a, v)| (a.to_string(), v.to_string())),
        start,
        end,
        before: after,
        // One more than asked for tells whether there is a next page.
        limit: max + 1,
    };
    let wanted = max as usize;
    let mut events: Vec<Value> = Vec::new();
    let mut next = None;
    'pages: for page in 0..MAX_SCAN_PAGES {
        let hits = store.lookup_audit(&query).await?;
        let more = hits.len() as i64 == query.limit;
        for hit in hits {
            if events.len() == wanted {
                // Full, and the store holds more: go on after the last record returned.
                next = query.before;
                break 'pages;
            }
            query.before = Some((hit.event_time, hit.sequence));
            if let Some(event) = lookup_event(hit.record, region, scanned) {
                events.push(event);
            }
        }
        if !more {
            break;
        }
        if page + 1 == MAX_SCAN_PAGES {
            next = query.before;
        }
    }
    let mut body = json!({ "Events": events });
    if let Some((t, s)) = next {
        set(
            &mut body,
            "NextToken",
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{t}:{s}"))),
        );
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_values_are_matched_but_not_indexed() {
        let record = |read_only: bool, source: &str, kind: &str| {
            json!({
                "eventID": "e1", "eventName": "Encrypt", "readOnly": read_only,
                "eventSource": source,
                "userIdentity": {"type": "Root", "accessKeyId": "AKIA1"},
                "resources": [{"type": kind, "ARN": "arn:aws:kms:us-east-1:111122223333:key/k"}],
            })
        };
        let encrypt = record(true, "kms.amazonaws.com", "AWS::KMS::Key");
        let names: Vec<_> = attributes(&encrypt).into_iter().map(|(a, _)| a).collect();
        assert_eq!(
            names,
            [
                "EventId",
                "EventName",
                "Username",
                "AccessKeyId",
                "ResourceName"
            ]
        );
        for (a, v) in DENSE {
            assert!(has_attribute(&encrypt, a, v), "{a}={v} still matches");
        }
        // The rarer values of the same attributes keep their index rows.
        let write = record(false, "cloudtrail.amazonaws.com", "AWS::KMS::Alias");
        let indexed = attributes(&write);
        for pair in [
            ("ReadOnly", "false"),
            ("EventSource", "cloudtrail.amazonaws.com"),
            ("ResourceType", "AWS::KMS::Alias"),
        ] {
            assert!(
                indexed.contains(&(pair.0, pair.1.to_string())),
                "{pair:?} is indexed"
            );
        }
        assert!(!has_attribute(&write, "ReadOnly", "true"));
    }

    #[test]
    fn usernames_are_the_ones_cloudtrail_shows() {
        let name = |identity: Value| username(&json!({ "userIdentity": identity }));
        assert_eq!(name(json!({"type": "Root"})).as_deref(), Some("root"));
        assert_eq!(
            name(json!({"type": "IAMUser", "userName": "alice"})).as_deref(),
            Some("alice")
        );
        assert_eq!(
            name(json!({"type": "AssumedRole",
                        "arn": "arn:aws:sts::111122223333:assumed-role/auditor/audit-1"}))
            .as_deref(),
            Some("audit-1")
        );
        assert_eq!(name(json!({"type": "Unknown"})), None);
    }
}
