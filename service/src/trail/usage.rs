//! Past usage of one key, from the audit records: who used it, with which operations, when first
//! and last, how often per day, and how many calls failed (`trent trail usage KEY`). The audit
//! records are the source of truth, so this answers for any period the store holds.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::protocol::wire::field;
use crate::store::{SharedStore, StoreError};

/// Calls of one principal on the key.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalUsage {
    /// Calls by operation name.
    pub operations: BTreeMap<String, u64>,
    /// First call (CloudTrail time).
    pub first_used: String,
    /// Last call (CloudTrail time).
    pub last_used: String,
    /// Calls that failed (any errorCode), included in `operations`.
    pub failed: u64,
}

/// The usage summary of one key.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsageReport {
    /// The key (as asked for).
    pub key: String,
    /// Every call that named the key.
    pub total_calls: u64,
    /// Calls by principal ARN (the service itself appears as `kms.amazonaws.com`).
    pub principals: BTreeMap<String, PrincipalUsage>,
    /// Calls per UTC day (`YYYY-MM-DD`).
    pub per_day: BTreeMap<String, u64>,
    /// The last successful call: operation, principal and time.
    pub last_successful_use: Option<(String, String, String)>,
}

/// Whether a record names `key` (a key id or key ARN) among its resources.
fn names_key(record: &serde_json::Value, key: &str) -> bool {
    let id = key.rsplit('/').next().unwrap_or(key);
    record["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["ARN"].as_str())
        .any(|arn| arn == key || arn.ends_with(&format!(":key/{id}")))
}

/// Summarise every audit record that names `key`.
pub async fn key_usage(store: &SharedStore, key: &str) -> Result<KeyUsageReport, StoreError> {
    let mut report = KeyUsageReport {
        key: key.to_string(),
        ..Default::default()
    };
    let mut after = 0;
    // A cross-account call has a record in each account, linked by sharedEventID: count it once.
    let mut shared_seen = std::collections::HashSet::new();
    loop {
        let records = store.read_audit(after, 1000).await?;
        let Some(last) = records.last() else {
            return Ok(report);
        };
        after = last.sequence;
        for stored in &records {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&stored.record) else {
                continue;
            };
            let first_copy = match field(&record, &["sharedEventID"]).as_str() {
                Some(shared) => shared_seen.insert(shared.to_string()),
                None => true,
            };
            if first_copy && names_key(&record, key) {
                add(&mut report, &record);
            }
        }
    }
}

fn add(report: &mut KeyUsageReport, record: &serde_json::Value) {
    let time = record["eventTime"].as_str().unwrap_or_default().to_string();
    let operation = record["eventName"].as_str().unwrap_or_default().to_string();
    let who = field(record, &["userIdentity", "arn"])
        .as_str()
        .or_else(|| field(record, &["userIdentity", "invokedBy"]).as_str())
        .unwrap_or("unknown")
        .to_string();
    let failed = record.get("errorCode").is_some();
    report.total_calls += 1;
    *report
        .per_day
        .entry(time.chars().take(10).collect())
        .or_default() += 1;
    let entry = report.principals.entry(who.clone()).or_default();
    *entry.operations.entry(operation.clone()).or_default() += 1;
    if entry.first_used.is_empty() || time < entry.first_used {
        entry.first_used = time.clone();
    }
    if time > entry.last_used {
        entry.last_used = time.clone();
    }
    if failed {
        entry.failed += 1;
    } else if report
        .last_successful_use
        .as_ref()
        .is_none_or(|(_, _, t)| time >= *t)
    {
        report.last_successful_use = Some((operation, who, time));
    }
}

impl std::fmt::Display for KeyUsageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "key {}: {} calls", self.key, self.total_calls)?;
        if let Some((op, who, at)) = &self.last_successful_use {
            writeln!(f, "last successful use: {op} by {who} at {at}")?;
        }
        for (who, u) in &self.principals {
            let ops: Vec<String> = u
                .operations
                .iter()
                .map(|(o, n)| format!("{o} x{n}"))
                .collect();
            writeln!(
                f,
                "  {who}: {} (failed {}), first {}, last {}",
                ops.join(", "),
                u.failed,
                u.first_used,
                u.last_used
            )?;
        }
        for (day, n) in &self.per_day {
            writeln!(f, "  {day}: {n} calls")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_grouped_by_principal_operation_and_day() {
        let mut r = KeyUsageReport::default();
        let rec = |who: &str, op: &str, t: &str, err: bool| {
            let mut v = json!({"eventTime": t, "eventName": op, "userIdentity": {"arn": who},
                "resources": [{"ARN": "arn:aws:kms:us-east-1:1:key/k"}]});
            if err {
                v["errorCode"] = json!("AccessDeniedException");
            }
            v
        };
        for v in [
            rec("alice", "Encrypt", "2026-01-01T10:00:00Z", false),
            rec("alice", "Decrypt", "2026-01-02T10:00:00Z", false),
            rec("bob", "Decrypt", "2026-01-02T11:00:00Z", true),
        ] {
            assert!(names_key(&v, "k"));
            add(&mut r, &v);
        }
        assert_eq!(r.total_calls, 3);
        assert_eq!(r.per_day["2026-01-02"], 2);
        assert_eq!(r.principals["alice"].operations["Decrypt"], 1);
        assert_eq!(r.principals["bob"].failed, 1);
        assert_eq!(
            r.last_successful_use,
            Some((
                "Decrypt".into(),
                "alice".into(),
                "2026-01-02T10:00:00Z".into()
            ))
        );
        assert!(!names_key(&rec("a", "Encrypt", "t", false), "other"));
    }
}
