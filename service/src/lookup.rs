//! CloudTrail's LookupEvents over the audit records. Each record's lookup attributes (EventId,
//! EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId) are
//! computed here when the record is made (`attributes`) and written by the store into its lookup
//! index in the same transaction as the record, so a query reads only the records it returns,
//! memory does not grow with the trail, and every replica sees every replica's calls at once.
//! Values most records share (`DENSE`) are not indexed: a search for one reads records in time
//! order and keeps the matching ones. Nor are event ids that carry their record's time (the
//! UUIDv7 ids Trent makes): a search for one reads the records of that second.

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

/// What LookupEvents matches a record on, borrowed from the record (its JSON, or the call's
/// record before it is written: `audit::record::CallRecord`).
pub struct Searchable<'a> {
    /// `eventID`.
    pub event_id: Option<&'a str>,
    /// `eventName`.
    pub event_name: Option<&'a str>,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// `userIdentity` (null when absent).
    pub user_identity: &'a Value,
    /// `eventSource`.
    pub event_source: Option<&'a str>,
    /// `resources`, each as (`type`, `ARN`).
    pub resources: Vec<(Option<&'a str>, Option<&'a str>)>,
}

impl<'a> Searchable<'a> {
    /// The searchable parts of a record's JSON.
    pub fn of(record: &'a Value) -> Self {
        Self {
            event_id: record["eventID"].as_str(),
            event_name: record["eventName"].as_str(),
            read_only: record["readOnly"].as_bool(),
            user_identity: &record["userIdentity"],
            event_source: record["eventSource"].as_str(),
            resources: record["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["type"].as_str(), r["ARN"].as_str()))
                .collect(),
        }
    }
}

/// The attribute values of one record stored at `event_time` (epoch seconds) that go into the
/// lookup index: every value LookupEvents reports, but the [`DENSE`] ones and an event id that
/// names `event_time` ([`time_of_event_id`]).
pub fn attributes(record: &Searchable<'_>, event_time: i64) -> Vec<(&'static str, String)> {
    let time_found = |a: &str, v: &str| a == "EventId" && time_of_event_id(v) == Some(event_time);
    reported_attributes(record, |a, v| !(is_dense(a, v) || time_found(a, v)))
}

/// The second (epoch seconds) an event id carries: the timestamp of a version 7 UUID, which is
/// how Trent makes event ids (`audit::record::new_event_id`). None for any other id (older
/// records' random UUIDs), which is indexed instead.
pub fn time_of_event_id(id: &str) -> Option<i64> {
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (seconds, _) = uuid.get_timestamp()?.to_unix();
    i64::try_from(seconds).ok()
}

/// Whether `record` has `attribute = value`, as LookupEvents matches it.
fn has_attribute(record: &Value, attribute: &str, value: &str) -> bool {
    !reported_attributes(&Searchable::of(record), |a, v| a == attribute && v == value).is_empty()
}

/// The attribute values of one record, as LookupEvents reports them, that `keep` accepts (it
/// is asked before a value is copied).
fn reported_attributes(
    record: &Searchable<'_>,
    keep: impl Fn(&str, &str) -> bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| keep(name, v)) {
            out.push((name, v.to_string()));
        }
    };
    push("EventId", record.event_id);
    push("EventName", record.event_name);
    push(
        "ReadOnly",
        record.read_only.map(|b| if b { "true" } else { "false" }),
    );
    push("Username", username(record.user_identity));
    push("EventSource", record.event_source);
    push("AccessKeyId", record.user_identity["accessKeyId"].as_str());
    for (kind, arn) in &record.resources {
        push("ResourceType", *kind);
        push("ResourceName", *arn);
    }
    out
}

/// The `Username` CloudTrail shows for a `userIdentity`: `root`, the IAM user's name, or a role
/// session's name.
fn username(identity: &Value) -> Option<&str> {
    match identity["type"].as_str() {
        Some("Root") => Some("root"),
        Some("AssumedRole") => identity["arn"]
            .as_str()
            .and_then(|arn| arn.rsplit_once('/'))
            .map(|(_, session)| session),
        _ => identity["userName"].as_str(),
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
        "Username": username(field(&record, &["userIdentity"])),
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
    if events.is_empty() && next.is_none() && after.is_none() {
        if let Some(("EventId", id)) = attribute {
            events = records_of_the_second(store, &query, region, id).await?;
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

/// How many records one read of a second's records takes (a second may hold thousands).
const SECOND_PAGE: i64 = 500;

/// The record with event id `id` among the records of the second its id carries (within the
/// query's time window): where a search finds an event id that has no index row. Every record of
/// that second is read, so the answer is complete without a NextToken.
async fn records_of_the_second(
    store: &SharedStore,
    query: &LookupQuery,
    region: &str,
    id: &str,
) -> Result<Vec<Value>, LookupError> {
    let Some(second) = time_of_event_id(id) else {
        return Ok(Vec::new());
    };
    if query.start.is_some_and(|s| s > second) || query.end.is_some_and(|e| e < second) {
        return Ok(Vec::new());
    }
    let mut scan = LookupQuery {
        account: query.account.clone(),
        attribute: None,
        start: Some(second),
        end: Some(second),
        before: None,
        limit: SECOND_PAGE,
    };
    let mut found = Vec::new();
    loop {
        let hits = store.lookup_audit(&scan).await?;
        let more = hits.len() as i64 == scan.limit;
        for hit in hits {
            scan.before = Some((hit.event_time, hit.sequence));
            // Only a record whose text holds the id can be it: parse just those.
            if hit.record.contains(id) {
                found.extend(lookup_event(hit.record, region, Some(("EventId", id))));
            }
        }
        if !more || !found.is_empty() {
            return Ok(found);
        }
    }
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
        let names: Vec<_> = attributes(&Searchable::of(&encrypt), 0)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
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
        let indexed = attributes(&Searchable::of(&write), 0);
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
    fn event_ids_that_carry_their_records_second_are_not_indexed() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T04:30:15.750Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let id = crate::audit::record::new_event_id(at);
        assert_eq!(time_of_event_id(&id), Some(at.timestamp()));
        let record = json!({"eventID": id, "eventName": "Encrypt"});
        let indexed = |second: i64| -> Vec<&str> {
            attributes(&Searchable::of(&record), second)
                .into_iter()
                .map(|(a, _)| a)
                .collect()
        };
        assert_eq!(indexed(at.timestamp()), ["EventName"]);
        // Stored under another second (a record whose id was made at another time): indexed.
        assert_eq!(indexed(at.timestamp() - 1), ["EventId", "EventName"]);
        // Random (version 4) ids, as records made before carry, name no time.
        assert_eq!(time_of_event_id(&uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(time_of_event_id("not an id"), None);
        assert!(has_attribute(&record, "EventId", &id));
    }

    #[test]
    fn usernames_are_the_ones_cloudtrail_shows() {
        let name = |identity: Value| username(&identity).map(str::to_string);
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

    /// Event ids that carry their record's second (the UUIDv7 ids Trent makes) have no index row: a
    /// search for one reads the records of that second. Among 1,201 records of one second (more than
    /// one read of them) it finds exactly the one asked for, in a window that holds the second only;
    /// ids that name no time (random UUIDs) or another second are found through the index.
    #[tokio::test(flavor = "multi_thread")]
    async fn event_ids_are_found_through_the_second_they_carry() {
        use crate::audit::record::{cloudtrail_time, new_event_id, stored_record};
        use crate::store::sqlite::SqliteStore;
        use crate::store::{CommitUnit, SharedStore};
        use chrono::{Duration, TimeZone, Utc};
        use serde_json::json;

        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            std::sync::Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        store.migrate().await.unwrap();
        let second = Utc.with_ymd_and_hms(2026, 12, 7, 4, 30, 15).unwrap();
        let record = |name: String, id: String| {
            json!({"eventVersion": "1.08", "eventID": id, "eventName": name,
                   "eventTime": cloudtrail_time(second), "awsRegion": "us-east-1",
                   "eventSource": "kms.amazonaws.com", "readOnly": true,
                   "userIdentity": {"type": "Root", "accountId": "111122223333"},
                   "recipientAccountId": "111122223333"})
        };
        let mut ids = Vec::new();
        for batch in 0..12 {
            let units = (0..100)
                .map(|i| {
                    let n = batch * 100 + i;
                    let id = new_event_id(second + Duration::microseconds(n * 800));
                    ids.push(id.clone());
                    CommitUnit {
                        audit: Some(stored_record(&record(format!("Call{n}"), id), second)),
                        ..CommitUnit::default()
                    }
                })
                .collect();
            for r in store.commit(units).await.unwrap() {
                r.unwrap();
            }
        }
        let random_id = uuid::Uuid::new_v4().to_string();
        let elsewhere_id = new_event_id(second - Duration::seconds(5));
        let odd = vec![
            CommitUnit {
                audit: Some(stored_record(
                    &record("Random".into(), random_id.clone()),
                    second,
                )),
                ..CommitUnit::default()
            },
            CommitUnit {
                audit: Some(stored_record(
                    &record("Elsewhere".into(), elsewhere_id.clone()),
                    second,
                )),
                ..CommitUnit::default()
            },
        ];
        for r in store.commit(odd).await.unwrap() {
            r.unwrap();
        }
        assert!(stored_record(&record("x".into(), ids[0].clone()), second)
            .lookup
            .iter()
            .all(|(a, _)| a != "EventId"));

        let find = |id: &str, window: Option<(i64, i64)>| {
            let mut body =
                json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": id}]});
            if let Some((start, end)) = window {
                body["StartTime"] = json!(start);
                body["EndTime"] = json!(end);
            }
            let req: LookupRequest = serde_json::from_value(body).unwrap();
            let store = store.clone();
            async move {
                let got = lookup_events(&store, "111122223333", "us-east-1", &req)
                    .await
                    .unwrap();
                assert!(got.get("NextToken").is_none(), "{got}");
                got["Events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["EventName"].as_str().unwrap().to_string(),
                            e["EventId"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let t = second.timestamp();
        for n in [0usize, 417, 1199] {
            assert_eq!(
                find(&ids[n], None).await,
                [(format!("Call{n}"), ids[n].clone())]
            );
        }
        assert_eq!(find(&ids[600], Some((t, t))).await.len(), 1);
        assert!(find(&ids[600], Some((t - 60, t - 1))).await.is_empty());
        assert!(find(&ids[600], Some((t + 1, t + 60))).await.is_empty());
        assert!(
            find(&new_event_id(second), None).await.is_empty(),
            "an id no record has"
        );
        assert_eq!(
            find(&random_id, None).await,
            [("Random".to_string(), random_id.clone())]
        );
        assert_eq!(
            find(&elsewhere_id, None).await,
            [("Elsewhere".to_string(), elsewhere_id.clone())]
        );
        // Another account never sees them.
        let req: LookupRequest = serde_json::from_value(
            json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": ids[3]}]}),
        )
        .unwrap();
        let other = lookup_events(&store, "444455556666", "us-east-1", &req)
            .await
            .unwrap();
        assert!(other["Events"].as_array().unwrap().is_empty());
    }
}
