//! CloudTrail-format audit records (eventVersion 1.08) and their canonical JSON text.
//!
//! `requestParameters` are derived from the request with every blob member (plaintexts,
//! ciphertexts) removed, so no secret can reach a record.

use crate::protocol::wire::set;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::protocol::json_out::{self, Members};

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
    /// The caller's `userIdentity` element (shared: a call's attempts and its copies reuse it).
    pub user_identity: std::sync::Arc<Value>,
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
        lookup: lookup_rows(&crate::lookup::Searchable::of(json), event_time),
    }
}

/// The LookupEvents rows of a record stored at `event_time`, as the store takes them.
fn lookup_rows(
    record: &crate::lookup::Searchable<'_>,
    event_time: DateTime<Utc>,
) -> Vec<(String, String)> {
    crate::lookup::attributes(record, event_time.timestamp())
        .into_iter()
        .map(|(attribute, value)| (attribute.to_string(), value))
        .collect()
}

/// One top-level member of a call's record, borrowed from its `CallRecord`.
enum Member<'a> {
    /// A string.
    Text(&'a str),
    /// A boolean.
    Flag(bool),
    /// A JSON value.
    Json(&'a Value),
    /// The `resources` list, from the ARNs.
    Resources(&'a [String]),
}

impl Member<'_> {
    /// The member as a JSON value (copied).
    fn to_json(&self) -> Value {
        match self {
            Member::Text(text) => Value::from(*text),
            Member::Flag(flag) => Value::Bool(*flag),
            Member::Json(value) => (*value).clone(),
            Member::Resources(arns) => Value::Array(
                arns.iter()
                    .map(|arn| {
                        json!({
                            "accountId": resource_account(arn),
                            "type": resource_type(arn),
                            "ARN": arn,
                        })
                    })
                    .collect(),
            ),
        }
    }

    /// Append the member's canonical text.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Member::Text(text) => json_out::write_str(out, text),
            Member::Flag(true) => out.extend_from_slice(b"true"),
            Member::Flag(false) => out.extend_from_slice(b"false"),
            Member::Json(value) => json_out::write_value(out, value, Members::Sorted),
            Member::Resources(arns) => {
                out.push(b'[');
                for (i, arn) in arns.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Members in canonical order: "ARN" sorts before the lower-case names.
                    out.extend_from_slice(b"{\"ARN\":");
                    json_out::write_str(out, arn);
                    out.extend_from_slice(b",\"accountId\":");
                    json_out::write_str(out, resource_account(arn));
                    out.extend_from_slice(b",\"type\":");
                    json_out::write_str(out, resource_type(arn));
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
    }
}

/// The account of an ARN (its fifth element), empty when it has none.
fn resource_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

impl CallRecord {
    /// The record as stored, and its copies for the other accounts the call concerns that
    /// `deliver_to` accepts (`cross_account_copies`), in canonical JSON. A record with no copies
    /// (nearly every call) is written straight from its parts, without a JSON tree.
    pub fn stored(
        self,
        deliver_to: &dyn Fn(&str) -> bool,
    ) -> (
        crate::store::NewAuditRecord,
        Vec<crate::store::NewAuditRecord>,
    ) {
        if !self.has_copies(deliver_to) {
            return (self.stored_alone(), Vec::new());
        }
        let event_time = self.event_time;
        let mut json = self.into_json();
        let mut copies = cross_account_copies(&mut json, event_time, deliver_to);
        copies.extend(replica_region_record(&json, event_time));
        let stored = |json: &Value| stored_record(json, event_time);
        (stored(&json), copies.iter().map(stored).collect())
    }

    /// Whether the call leaves records beyond its own: copies for other accounts
    /// (`cross_account_copies`) or a ReplicateKey's record in the replica's Region
    /// (`replica_region_record`).
    fn has_copies(&self, deliver_to: &dyn Fn(&str) -> bool) -> bool {
        let caller = self.recipient_account.as_deref().unwrap_or_default();
        let other_owner = || {
            self.resources
                .iter()
                .map(|arn| resource_account(arn))
                .any(|a| !a.is_empty() && a != caller && deliver_to(a))
        };
        self.event_name == "ReplicateKey" || (!caller.is_empty() && other_owner())
    }

    /// The record as stored, written from its parts: the same text and attributes
    /// `stored_record` makes of `into_json`.
    fn stored_alone(self) -> crate::store::NewAuditRecord {
        let time = cloudtrail_time(self.event_time);
        let mut text = Vec::with_capacity(1024);
        text.push(b'{');
        for (i, (name, member)) in self.members(&time).iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            json_out::write_str(&mut text, name);
            text.push(b':');
            member.write_canonical(&mut text);
        }
        text.push(b'}');
        let searchable = crate::lookup::Searchable {
            event_id: Some(&self.event_id),
            event_name: Some(&self.event_name),
            read_only: Some(self.read_only),
            user_identity: &self.user_identity,
            event_source: Some(self.event_source),
            resources: self
                .resources
                .iter()
                .map(|arn| (Some(resource_type(arn)), Some(arn.as_str())))
                .collect(),
        };
        let lookup = lookup_rows(&searchable, self.event_time);
        crate::store::NewAuditRecord {
            // Only whole UTF-8 strings and ASCII were written.
            record: String::from_utf8(text).unwrap_or_default(),
            lookup,
            account: self.recipient_account.unwrap_or_default(),
            event_id: self.event_id,
            event_time: self.event_time,
        }
    }

    /// The record's top-level members in canonical order (keys sorted bytewise), those it does
    /// not have left out; `time` is its `eventTime` text.
    fn members<'a>(&'a self, time: &'a str) -> Vec<(&'static str, Member<'a>)> {
        let mut members = Vec::with_capacity(21);
        let mut put = |name: &'static str, member: Option<Member<'a>>| {
            if let Some(member) = member {
                members.push((name, member));
            }
        };
        let text = |s: &'a str| Some(Member::Text(s));
        put(
            "additionalEventData",
            (!self.additional_event_data.is_null())
                .then_some(Member::Json(&self.additional_event_data)),
        );
        put("awsRegion", text(&self.region));
        put("errorCode", self.error_code.as_deref().map(Member::Text));
        put(
            "errorMessage",
            self.error_message.as_deref().map(Member::Text),
        );
        put("eventCategory", text("Management"));
        put("eventID", text(&self.event_id));
        put("eventName", text(&self.event_name));
        put("eventSource", text(self.event_source));
        put("eventTime", text(time));
        put("eventType", text("AwsApiCall"));
        put("eventVersion", text("1.08"));
        put("managementEvent", Some(Member::Flag(true)));
        put("readOnly", Some(Member::Flag(self.read_only)));
        put(
            "recipientAccountId",
            self.recipient_account.as_deref().map(Member::Text),
        );
        put("requestID", text(&self.request_id));
        put(
            "requestParameters",
            Some(Member::Json(&self.request_parameters)),
        );
        put(
            "resources",
            (!self.resources.is_empty()).then_some(Member::Resources(&self.resources)),
        );
        put(
            "responseElements",
            Some(Member::Json(&self.response_elements)),
        );
        put("sourceIPAddress", text(&self.source_ip));
        put("userAgent", text(&self.user_agent));
        put("userIdentity", Some(Member::Json(&self.user_identity)));
        members
    }

    /// The record as CloudTrail JSON.
    pub fn into_json(self) -> Value {
        let time = cloudtrail_time(self.event_time);
        Value::Object(
            self.members(&time)
                .iter()
                .map(|(name, member)| (name.to_string(), member.to_json()))
                .collect(),
        )
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

/// Canonical JSON text: object members sorted by key, no insignificant whitespace, strings
/// escaped exactly as serde_json escapes them.
pub fn canonical_json(v: &Value) -> String {
    json_out::to_text(v, Members::Sorted)
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
            user_identity: std::sync::Arc::new(
                json!({"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"}),
            ),
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
    fn records_written_from_their_parts_equal_their_json_trees() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T05:10:11.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let base = CallRecord {
            user_identity: std::sync::Arc::new(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/r/sess\u{1}", "accessKeyId": "ASIA", "z": [1, {"b": null, "a": 2.5}]}),
            ),
            user_agent: "ua \"quoted\" \\ é".into(),
            request_parameters: json!({"keyId": "k", "encryptionContext": {"b": "2", "a": "1"}}),
            ..encrypt_record(at, "arn:aws:kms:eu-west-1:111122223333:key/k")
        };
        let mut variants = vec![base.clone()];
        variants.push(CallRecord {
            read_only: false,
            recipient_account: None,
            resources: vec![],
            user_identity: std::sync::Arc::new(json!({"type": "Unknown"})),
            error_code: Some("AccessDeniedException".into()),
            error_message: Some("no\nway".into()),
            additional_event_data: json!({"customKeyStoreId": "cks-1"}),
            response_elements: json!({"keyMetadata": {"KeyId": "k"}}),
            request_parameters: Value::Null,
            ..base.clone()
        });
        variants.push(CallRecord {
            resources: vec![
                "arn:aws:iam::111122223333:role/admin".into(),
                "not-an-arn".into(),
                "arn:aws:kms:eu-west-1:111122223333:alias/a".into(),
            ],
            user_identity: std::sync::Arc::new(json!({"type": "Root"})),
            ..base.clone()
        });
        variants.push(CallRecord {
            event_id: "3f1c3d8e-0000-4000-8000-000000000000".into(),
            user_identity: std::sync::Arc::new(json!({"type": "IAMUser", "userName": "alice"})),
            ..base
        });
        for record in variants {
            let event_time = record.event_time;
            let (direct, copies) = record.clone().stored(&|_| true);
            assert!(copies.is_empty());
            let from_tree = stored_record(&record.into_json(), event_time);
            assert_eq!(direct.record, from_tree.record);
            assert_eq!(direct.lookup, from_tree.lookup);
            assert_eq!(direct.account, from_tree.account);
            assert_eq!(direct.event_id, from_tree.event_id);
        }
    }

    /// An Encrypt by alice of account 111122223333 on the key `arn`, at `at`.
    fn encrypt_record(at: DateTime<Utc>, arn: &str) -> CallRecord {
        CallRecord {
            event_id: new_event_id(at),
            event_time: at,
            event_name: "Encrypt".into(),
            event_source: "kms.amazonaws.com",
            read_only: true,
            region: "eu-west-1".into(),
            user_identity: std::sync::Arc::new(json!({"type": "IAMUser", "userName": "alice"})),
            recipient_account: Some("111122223333".into()),
            source_ip: "192.0.2.1".into(),
            user_agent: "ua".into(),
            request_parameters: Value::Null,
            response_elements: Value::Null,
            request_id: "r".into(),
            resources: vec![arn.into()],
            additional_event_data: Value::Null,
            error_code: None,
            error_message: None,
        }
    }

    #[test]
    fn cross_account_and_replica_records_still_have_their_copies() {
        let record = encrypt_record(Utc::now(), "arn:aws:kms:eu-west-1:444455556666:key/k");
        let (own, copies) = record.clone().stored(&|a| a == "444455556666");
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].account, "444455556666");
        assert!(own.record.contains("sharedEventID"));
        // An owner outside this deployment gets no copy.
        assert!(record.stored(&|_| false).1.is_empty());
        // A ReplicateKey leaves a CreateKey in the replica's Region.
        let replicate = CallRecord {
            event_name: "ReplicateKey".into(),
            read_only: false,
            request_parameters: json!({"replicaRegion": "us-west-2"}),
            resources: vec![
                "arn:aws:kms:eu-west-1:111122223333:key/mrk-1".into(),
                "arn:aws:kms:us-west-2:111122223333:key/mrk-1".into(),
            ],
            ..encrypt_record(Utc::now(), "unused")
        };
        let (_, copies) = replicate.stored(&|_| true);
        assert_eq!(copies.len(), 1);
        assert!(copies[0].record.contains(r#""eventName":"CreateKey""#));
        assert!(copies[0].record.contains(r#""awsRegion":"us-west-2""#));
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
