//! CloudTrail-format audit records (eventVersion 1.08) and their canonical JSON text.
//!
//! `requestParameters` are derived from the request with every blob member (plaintexts,
//! ciphertexts) removed, so no secret can reach a record.

use crate::protocol::wire::set;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Everything a record says about one call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The CloudTrail eventID.
    pub event_id: String,
    /// When the call was received.
    pub event_time: DateTime<Utc>,
    /// The operation name (as sent, for unknown operations).
    pub event_name: String,
    /// The service that answered (`kms.amazonaws.com`, `sts.amazonaws.com`).
    pub event_source: &'static str,
    /// Whether the call only reads (`readOnly`).
    pub read_only: bool,
    /// The region of the request (its credential scope), or the service's default.
    pub region: String,
    /// The caller's `userIdentity` element.
    pub user_identity: Value,
    /// The caller's account, when known (`recipientAccountId`).
    pub recipient_account: Option<String>,
    /// The client address.
    pub source_ip: String,
    /// The client's User-Agent.
    pub user_agent: String,
    /// `requestParameters` (already stripped of blobs), or null.
    pub request_parameters: Value,
    /// `responseElements`, or null.
    pub response_elements: Value,
    /// The request id, equal to the `x-amzn-RequestId` response header.
    pub request_id: String,
    /// Key ARNs the call touched (`resources`).
    pub resources: Vec<String>,
    /// `additionalEventData`, or null (an external key store the call used).
    pub additional_event_data: Value,
    /// The AWS error code when the call failed.
    pub error_code: Option<String>,
    /// The error message when the call failed.
    pub error_message: Option<String>,
}

/// The CloudTrail resource type of an ARN Trent records: a role or a KMS key.
fn resource_type(arn: &str) -> &'static str {
    if arn.starts_with("arn:aws:iam::") && arn.contains(":role/") {
        "AWS::IAM::Role"
    } else {
        "AWS::KMS::Key"
    }
}

/// The copies of a call's record for the other accounts that own its resources: AWS delivers a
/// cross-account event to the caller's account and to the resource owner's, each copy with its
/// own `eventID` and `recipientAccountId` and both with the same `sharedEventID` (added to
/// `record` here), for the owners `deliver_to` accepts (accounts of this deployment). Empty when
/// the call concerned only the caller's account.
pub fn cross_account_copies(
    record: &mut Value,
    event_time: DateTime<Utc>,
    deliver_to: &dyn Fn(&str) -> bool,
) -> Vec<Value> {
    let caller = record["recipientAccountId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut owners: Vec<String> = record["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|res| res["accountId"].as_str())
                .filter(|a| !a.is_empty() && *a != caller && deliver_to(a))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    owners.sort();
    owners.dedup();
    if owners.is_empty() || caller.is_empty() {
        return Vec::new();
    }
    record["sharedEventID"] = json!(uuid::Uuid::new_v4().to_string());
    owners
        .into_iter()
        .map(|owner| {
            let mut copy = record.clone();
            set(&mut copy, "recipientAccountId", json!(owner));
            set(&mut copy, "eventID", json!(new_event_id(event_time)));
            copy
        })
        .collect()
}

pub use crate::clock::cloudtrail_time;

/// The record a successful ReplicateKey also leaves in the replica's Region: CloudTrail shows
/// ReplicateKey in the primary key's Region and CreateKey in the replica's, with the same request
/// id. It names the replica key only.
pub fn replica_region_record(record: &Value, event_time: DateTime<Utc>) -> Option<Value> {
    if record.get("eventName").and_then(Value::as_str) != Some("ReplicateKey")
        || record.get("errorCode").is_some()
    {
        return None;
    }
    let region = record
        .get("requestParameters")
        .and_then(|p| p.get("replicaRegion"))
        .and_then(Value::as_str)?;
    let mut copy = record.clone();
    set(&mut copy, "eventName", json!("CreateKey"));
    set(&mut copy, "awsRegion", json!(region));
    set(&mut copy, "eventID", json!(new_event_id(event_time)));
    let in_region = format!("arn:aws:kms:{region}:");
    if let Some(resources) = copy.get_mut("resources").and_then(Value::as_array_mut) {
        resources.retain(|r| {
            r.get("ARN")
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with(&in_region))
        });
    }
    Some(copy)
}

/// A new CloudTrail `eventID` for a record whose `eventTime` is `event_time`: a UUID, as AWS's
/// are, of version 7 carrying that time (to the millisecond) in its first 48 bits. LookupEvents
/// finds such an id through the record's time (`lookup::time_of_event_id`), so it needs no index
/// row of its own.
pub fn new_event_id(event_time: DateTime<Utc>) -> String {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        event_time.timestamp().max(0) as u64,
        event_time.timestamp_subsec_nanos(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// A CloudTrail record as the store takes it: its canonical text (what the chain hashes), the
/// account it is delivered to and its LookupEvents attributes, all computed here on the request's
/// task so that the writer only links and writes.
pub fn stored_record(json: &Value, event_time: DateTime<Utc>) -> crate::store::NewAuditRecord {
    crate::store::NewAuditRecord {
        event_id: json["eventID"].as_str().unwrap_or_default().to_string(),
        event_time,
        record: canonical_json(json),
        account: json["recipientAccountId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        lookup: crate::lookup::attributes(json, event_time.timestamp())
            .into_iter()
            .map(|(attribute, value)| (attribute.to_string(), value))
            .collect(),
    }
}

impl CallRecord {
    /// The record as stored, and its copies for the other accounts the call concerns that
    /// `deliver_to` accepts (`cross_account_copies`), in canonical JSON.
    pub fn stored(
        self,
        deliver_to: &dyn Fn(&str) -> bool,
    ) -> (
        crate::store::NewAuditRecord,
        Vec<crate::store::NewAuditRecord>,
    ) {
        let event_time = self.event_time;
        let mut json = self.into_json();
        let mut copies = cross_account_copies(&mut json, event_time, deliver_to);
        copies.extend(replica_region_record(&json, event_time));
        let stored = |json: &Value| stored_record(json, event_time);
        (stored(&json), copies.iter().map(stored).collect())
    }

    /// The record as CloudTrail JSON (its parts moved, not copied).
    pub fn into_json(self) -> Value {
        let mut r = Map::with_capacity(22);
        let mut put = |name: &str, value: Value| {
            r.insert(name.to_string(), value);
        };
        put("eventVersion", Value::from("1.08"));
        put("userIdentity", self.user_identity);
        put("eventTime", Value::String(cloudtrail_time(self.event_time)));
        put("eventSource", Value::from(self.event_source));
        put("eventName", Value::String(self.event_name));
        put("awsRegion", Value::String(self.region));
        put("sourceIPAddress", Value::String(self.source_ip));
        put("userAgent", Value::String(self.user_agent));
        put("requestParameters", self.request_parameters);
        put("responseElements", self.response_elements);
        put("requestID", Value::String(self.request_id));
        put("eventID", Value::String(self.event_id));
        put("readOnly", Value::Bool(self.read_only));
        put("eventType", Value::from("AwsApiCall"));
        put("managementEvent", Value::Bool(true));
        put("eventCategory", Value::from("Management"));
        if !self.additional_event_data.is_null() {
            put("additionalEventData", self.additional_event_data);
        }
        if !self.resources.is_empty() {
            let resources = self
                .resources
                .into_iter()
                .map(|arn| {
                    let mut resource = Map::with_capacity(3);
                    let account = arn.split(':').nth(4).unwrap_or_default().to_string();
                    resource.insert("accountId".into(), Value::String(account));
                    resource.insert("type".into(), Value::from(resource_type(&arn)));
                    resource.insert("ARN".into(), Value::String(arn));
                    Value::Object(resource)
                })
                .collect();
            put("resources", Value::Array(resources));
        }
        if let Some(account) = self.recipient_account {
            put("recipientAccountId", Value::String(account));
        }
        if let Some(code) = self.error_code {
            put("errorCode", Value::String(code));
        }
        if let Some(message) = self.error_message {
            put("errorMessage", Value::String(message));
        }
        Value::Object(r)
    }
}

/// A record of an action the service took by itself (`eventType` `AwsServiceEvent`), such as
/// deleting a key at the end of its waiting period (`DeleteKey`) or rotating it (`RotateKey`).
pub fn service_event(
    event_id: &str,
    event_name: &str,
    event_time: DateTime<Utc>,
    key_arn: &str,
    additional: Option<Value>,
) -> Value {
    let mut parts = key_arn.split(':');
    let region = parts.nth(3).unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let mut r = json!({
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": "kms.amazonaws.com"},
        "eventTime": cloudtrail_time(event_time),
        "eventSource": "kms.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "eventID": event_id,
        "readOnly": false,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    if let Some(a) = additional {
        set(&mut r, "additionalEventData", a);
    }
    r
}

/// `requestParameters` for a request body: top-level members in lower camel case, minus `blob_members`.
pub fn request_parameters(body: &Value, blob_members: &[&str]) -> Value {
    let Value::Object(obj) = body else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if blob_members.contains(&k.as_str()) {
            continue;
        }
        out.insert(lower_camel(k), v.clone());
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// `KeyMetadata` -> `keyMetadata`.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Recursively rename the members of a response structure to CloudTrail's lower camel case.
pub fn lower_camel_value(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (lower_camel(k), lower_camel_value(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_camel_value).collect()),
        other => other.clone(),
    }
}

/// Canonical JSON text: object members sorted by key, no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = Vec::with_capacity(1024);
    write_canonical(v, &mut out);
    // serde_json writes UTF-8 only; the fallback cannot happen.
    String::from_utf8(out).unwrap_or_default()
}

/// Append `v` in canonical form, escaping strings exactly as serde_json does, with no
/// allocation per member or scalar.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(o) => {
            let mut members: Vec<(&String, &Value)> = o.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_never_reach_request_parameters() {
        let body = json!({"KeyId": "k", "Plaintext": "c2VjcmV0", "EncryptionContext": {"a": "b"}});
        let p = request_parameters(&body, &["Plaintext"]);
        assert_eq!(p, json!({"keyId": "k", "encryptionContext": {"a": "b"}}));
    }

    #[test]
    fn service_events_name_the_key_and_the_service() {
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/k";
        let r = service_event("e", "DeleteKey", Utc::now(), arn, None);
        assert_eq!(r["eventType"], "AwsServiceEvent");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["recipientAccountId"], "111122223333");
        assert_eq!(r["resources"][0]["ARN"], arn);
        assert_eq!(r["userIdentity"]["invokedBy"], "kms.amazonaws.com");
    }

    #[test]
    fn records_read_as_cloudtrail_writes_them() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T05:10:11Z")
            .unwrap()
            .with_timezone(&Utc);
        let arn = "arn:aws:kms:eu-west-1:444455556666:key/k";
        let record = CallRecord {
            event_id: "e".into(),
            event_time: at,
            event_name: "Encrypt".into(),
            event_source: "kms.amazonaws.com",
            read_only: true,
            region: "eu-west-1".into(),
            user_identity: json!({"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"}),
            recipient_account: Some("111122223333".into()),
            source_ip: "192.0.2.1".into(),
            user_agent: "aws-cli/2".into(),
            request_parameters: json!({"keyId": "k", "encryptionContext": {"b": "2", "a": "1"}}),
            response_elements: Value::Null,
            request_id: "r".into(),
            resources: vec![arn.into()],
            additional_event_data: json!({"customKeyStoreId": "cks-1"}),
            error_code: Some("AccessDeniedException".into()),
            error_message: Some("no \"way\"".into()),
        };
        let expected = json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"},
            "eventTime": "2026-12-07T05:10:11Z",
            "eventSource": "kms.amazonaws.com",
            "eventName": "Encrypt",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "192.0.2.1",
            "userAgent": "aws-cli/2",
            "requestParameters": {"keyId": "k", "encryptionContext": {"a": "1", "b": "2"}},
            "responseElements": null,
            "requestID": "r",
            "eventID": "e",
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "eventCategory": "Management",
            "additionalEventData": {"customKeyStoreId": "cks-1"},
            "resources": [{"accountId": "444455556666", "type": "AWS::KMS::Key", "ARN": arn}],
            "recipientAccountId": "111122223333",
            "errorCode": "AccessDeniedException",
            "errorMessage": "no \"way\"",
        });
        let json = record.clone().into_json();
        assert_eq!(json, expected);
        let (stored, copies) = record.stored(&|_| false);
        assert_eq!(stored.record, canonical_json(&expected));
        assert!(copies.is_empty());
    }

    #[test]
    fn canonical_json_sorts_members() {
        let v = json!({"b": 1, "a": {"d": [1, {"f": null, "e": "x"}], "c": true}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":true,"d":[1,{"e":"x","f":null}]},"b":1}"#
        );
        // Strings and numbers are written exactly as serde_json writes them.
        let odd = "quote \" back \\ tab \t nul \u{0} é \u{2028} 🔑";
        let v = json!({ odd: [odd, 1.5, -7, 18446744073709551615u64] });
        let expected = format!(
            "{{{}:[{},1.5,-7,18446744073709551615]}}",
            serde_json::to_string(odd).unwrap(),
            serde_json::to_string(odd).unwrap()
        );
        assert_eq!(canonical_json(&v), expected);
    }
}
