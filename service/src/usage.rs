//! Past usage of keys: the last successful cryptographic use of each key (GetKeyLastUsage),
//! kept in memory so that recording it costs a map update and answering it costs a lookup. At
//! start it is rebuilt from the audit records, which are the source of truth; tracking starts at
//! the oldest audit record.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::protocol::Operation;

/// The operations GetKeyLastUsage tracks (the API model's `KeyLastUsageTrackingOperation`).
pub fn is_tracked(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        Decrypt
            | DeriveSharedSecret
            | Encrypt
            | GenerateDataKey
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | GenerateDataKeyWithoutPlaintext
            | GenerateMac
            | ReEncrypt
            | Sign
            | Verify
            | VerifyMac
            | Encapsulate
            | Decapsulate
    )
}

/// One use of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    /// The operation.
    pub operation: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The CloudTrail eventID of its record.
    pub event_id: String,
    /// Its request id.
    pub request_id: String,
}

/// The last use of every key that has been used, by key ARN.
#[derive(Debug, Default)]
pub struct KeyUsage {
    last: RwLock<HashMap<String, LastUse>>,
    tracking_start: RwLock<Option<DateTime<Utc>>>,
}

impl KeyUsage {
    /// Record a successful use (later uses replace earlier ones; on equal times the first stays,
    /// so a cross-account copy, stored after its original, does not replace it).
    pub fn record(&self, key_arn: &str, used: LastUse) {
        if let Ok(mut m) = self.last.write() {
            match m.get(key_arn) {
                Some(existing) if existing.at >= used.at => {}
                _ => {
                    m.insert(key_arn.to_string(), used);
                }
            }
        }
    }

    /// The last use of a key.
    pub fn last_use(&self, key_arn: &str) -> Option<LastUse> {
        self.last.read().ok().and_then(|m| m.get(key_arn).cloned())
    }

    /// When tracking started (the oldest audit record), if any record exists.
    pub fn tracking_start(&self) -> Option<DateTime<Utc>> {
        self.tracking_start.read().ok().and_then(|t| *t)
    }

    /// Set when tracking started (the first audit record, or the first call after an empty store).
    pub fn start_tracking(&self, at: DateTime<Utc>) {
        if let Ok(mut t) = self.tracking_start.write() {
            if t.is_none_or(|existing| at < existing) {
                *t = Some(at);
            }
        }
    }

    /// Feed one CloudTrail record (as stored): a successful tracked call updates its keys.
    pub fn observe_record(&self, record: &serde_json::Value) {
        let Some(time) = record["eventTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            return;
        };
        self.start_tracking(time);
        if record.get("errorCode").is_some() || record["eventType"] != "AwsApiCall" {
            return;
        }
        let Some(op) = record["eventName"].as_str().and_then(Operation::from_name) else {
            return;
        };
        if !is_tracked(op) {
            return;
        }
        for resource in record["resources"].as_array().into_iter().flatten() {
            if let Some(arn) = resource["ARN"].as_str() {
                self.record(
                    arn,
                    LastUse {
                        operation: op.name().to_string(),
                        at: time,
                        event_id: record["eventID"].as_str().unwrap_or_default().to_string(),
                        request_id: record["requestID"].as_str().unwrap_or_default().to_string(),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, time: &str, error: bool) -> serde_json::Value {
        let mut r = json!({
            "eventTime": time, "eventType": "AwsApiCall", "eventName": name,
            "eventID": format!("e-{name}-{time}"), "requestID": "r",
            "resources": [{"ARN": "arn:aws:kms:us-east-1:111122223333:key/k"}],
        });
        if error {
            r["errorCode"] = json!("AccessDeniedException");
        }
        r
    }

    #[test]
    fn only_successful_tracked_calls_count_and_the_latest_wins() {
        let u = KeyUsage::default();
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k";
        u.observe_record(&record("Encrypt", "2026-01-01T00:00:00Z", false));
        u.observe_record(&record("Decrypt", "2026-01-02T00:00:00Z", true));
        u.observe_record(&record("DescribeKey", "2026-01-03T00:00:00Z", false));
        let last = u.last_use(arn).unwrap();
        assert_eq!(last.operation, "Encrypt");
        u.observe_record(&record("Sign", "2026-01-04T00:00:00Z", false));
        assert_eq!(u.last_use(arn).unwrap().operation, "Sign");
        assert_eq!(
            u.tracking_start().unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
    }
}
