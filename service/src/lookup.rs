//! CloudTrail's LookupEvents over the audit records: an in-memory index from each lookup attribute
//! (EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId)
//! and each account to the records' chain positions, so a query reads only the records it returns.
//! The index is rebuilt from the audit records at start and extended by the writer after every
//! commit; the records themselves stay in the store.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::protocol::wire::field;
use crate::protocol::wire::set;
use crate::store::{SharedStore, StoreError};

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

/// An index entry: (event time in epoch seconds, chain sequence).
type Entry = (i64, i64);

/// (account, attribute, value): the key of an attribute's postings.
type AttributeKey = (String, &'static str, String);

/// The lookup index.
#[derive(Debug, Default)]
pub struct AuditIndex {
    by_attribute: RwLock<HashMap<AttributeKey, Vec<Entry>>>,
    by_account: RwLock<HashMap<String, Vec<Entry>>>,
}

/// The attribute values of one record, as LookupEvents reports them.
pub fn attributes(record: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let s = |v: &Value| v.as_str().map(str::to_string);
    if let Some(v) = s(&record["eventID"]) {
        out.push(("EventId", v));
    }
    if let Some(v) = s(&record["eventName"]) {
        out.push(("EventName", v));
    }
    if let Some(v) = record["readOnly"].as_bool() {
        out.push(("ReadOnly", v.to_string()));
    }
    if let Some(v) = username(record) {
        out.push(("Username", v));
    }
    if let Some(v) = s(&record["eventSource"]) {
        out.push(("EventSource", v));
    }
    if let Some(v) = s(field(record, &["userIdentity", "accessKeyId"])) {
        out.push(("AccessKeyId", v));
    }
    for r in record["resources"].as_array().into_iter().flatten() {
        if let Some(t) = s(&r["type"]) {
            out.push(("ResourceType", t));
        }
        if let Some(n) = s(&r["ARN"]) {
            out.push(("ResourceName", n));
        }
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

impl AuditIndex {
    /// Index one record at chain position `sequence`.
    pub fn observe(&self, sequence: i64, record: &Value) {
        let Some(account) = record["recipientAccountId"].as_str() else {
            return;
        };
        let Some(time) = event_time(record) else {
            return;
        };
        if let Ok(mut m) = self.by_account.write() {
            m.entry(account.to_string())
                .or_default()
                .push((time, sequence));
        }
        if let Ok(mut m) = self.by_attribute.write() {
            for (attr, value) in attributes(record) {
                m.entry((account.to_string(), attr, value))
                    .or_default()
                    .push((time, sequence));
            }
        }
    }

    /// Chain positions of `account`'s records matching the filter, most recent first, at most
    /// `max`, starting after `after`; and the position to continue from, if more match.
    pub fn query(
        &self,
        account: &str,
        attribute: Option<(&str, &str)>,
        start: Option<i64>,
        end: Option<i64>,
        max: usize,
        after: Option<Entry>,
    ) -> (Vec<i64>, Option<Entry>) {
        let entries: Vec<Entry> = match attribute {
            Some((attr, value)) => {
                let Some(attr) = ATTRIBUTES.iter().find(|a| **a == attr) else {
                    return (Vec::new(), None);
                };
                self.by_attribute
                    .read()
                    .ok()
                    .and_then(|m| {
                        m.get(&(account.to_string(), *attr, value.to_string()))
                            .cloned()
                    })
                    .unwrap_or_default()
            }
            None => self
                .by_account
                .read()
                .ok()
                .and_then(|m| m.get(account).cloned())
                .unwrap_or_default(),
        };
        let mut matching: Vec<Entry> = entries
            .into_iter()
            .filter(|(t, _)| start.is_none_or(|s| *t >= s) && end.is_none_or(|e| *t <= e))
            .filter(|e| after.is_none_or(|a| *e < a))
            .collect();
        matching.sort_by(|a, b| b.cmp(a));
        let more = matching.len() > max;
        matching.truncate(max);
        let next = if more { matching.last().copied() } else { None };
        (matching.into_iter().map(|(_, s)| s).collect(), next)
    }
}

/// Rebuild the index from every audit record.
pub async fn rebuild(store: &SharedStore) -> Result<AuditIndex, StoreError> {
    let index = AuditIndex::default();
    let mut after = 0;
    loop {
        let records = store.read_audit(after, 1000).await?;
        let Some(last) = records.last() else {
            return Ok(index);
        };
        after = last.sequence;
        for r in &records {
            if let Ok(json) = serde_json::from_str::<Value>(&r.record) {
                index.observe(r.sequence, &json);
            }
        }
    }
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

/// One stored record as LookupEvents lists it (None when it is not JSON).
fn lookup_event(text: String) -> Option<Value> {
    let record = serde_json::from_str::<Value>(&text).ok()?;
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

/// Answer a LookupEvents call for `account`.
pub async fn lookup_events(
    index: &AuditIndex,
    store: &SharedStore,
    account: &str,
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
    let (sequences, next) = index.query(account, attribute, start, end, max as usize, after);
    let mut events = Vec::with_capacity(sequences.len());
    for seq in sequences {
        let Some(stored) = store.read_audit(seq - 1, 1).await?.into_iter().next() else {
            continue;
        };
        if let Some(event) = lookup_event(stored.record) {
            events.push(event);
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

    fn rec(id: &str, name: &str, account: &str, time: &str) -> Value {
        json!({"eventID": id, "eventName": name, "recipientAccountId": account, "eventTime": time,
               "readOnly": true, "eventSource": "kms.amazonaws.com",
               "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AK"},
               "resources": [{"type": "AWS::KMS::Key", "ARN": "arn:k"}]})
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

    #[test]
    fn queries_filter_by_attribute_account_and_time_newest_first_with_pages() {
        let idx = AuditIndex::default();
        idx.observe(1, &rec("a", "Encrypt", "1", "2026-01-01T00:00:00Z"));
        idx.observe(2, &rec("b", "Decrypt", "1", "2026-01-02T00:00:00Z"));
        idx.observe(3, &rec("c", "Encrypt", "1", "2026-01-03T00:00:00Z"));
        idx.observe(4, &rec("d", "Encrypt", "2", "2026-01-04T00:00:00Z"));
        let (seqs, next) = idx.query("1", Some(("EventName", "Encrypt")), None, None, 50, None);
        assert_eq!((seqs, next), (vec![3, 1], None));
        let (page, next) = idx.query("1", None, None, None, 2, None);
        assert_eq!(page, vec![3, 2]);
        let (rest, none) = idx.query("1", None, None, None, 2, next);
        assert_eq!((rest, none), (vec![1], None));
        let day2 = chrono::DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
            .unwrap()
            .timestamp();
        let (window, _) = idx.query("1", None, Some(day2), Some(day2), 50, None);
        assert_eq!(window, vec![2]);
        let (other, _) = idx.query("2", Some(("Username", "alice")), None, None, 50, None);
        assert_eq!(other, vec![4]);
    }
}
