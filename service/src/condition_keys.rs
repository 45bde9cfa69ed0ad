//! The request-specific condition keys of each KMS operation (`kms:SigningAlgorithm`,
//! `kms:GrantOperations`, `aws:RequestTag/*`, ...), read once from the validated request body.
//!
//! Keys that describe the key itself (`kms:KeySpec`, `aws:ResourceTag/*`, ...) come from the key's
//! snapshot in `authorize::key_request`; the encryption context and algorithm travel with the
//! cryptographic handlers; `kms:ReEncryptOnSameKey` is added by ReEncrypt once it knows both keys.
//! Where the request leaves a parameter out, the key carries the value the operation applies
//! (`MessageType` RAW, a 30-day deletion window, a 365-day rotation period, `CreateKey`'s
//! defaults), so a condition tests what the call will do.

use serde_json::Value;
use trent_policy::ContextValue;

use crate::protocol::Operation;

/// One condition key and its values (several for multi-valued keys).
pub type ConditionKey = (String, Vec<ContextValue>);

fn one(name: &str, value: impl Into<ContextValue>) -> ConditionKey {
    (name.to_string(), vec![value.into()])
}

/// The string member `field` of the request, or `default`.
fn text<'a>(body: &'a Value, field: &str, default: Option<&'a str>) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str).or(default)
}

/// The boolean member `field` (false when absent, the operations' default).
fn flag(body: &Value, field: &str) -> bool {
    body.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// The integer member `field`, or `default`.
fn long(body: &Value, field: &str, default: Option<i64>) -> Option<i64> {
    body.get(field).and_then(Value::as_i64).or(default)
}

/// The strings of the array member `field` (an absent or empty array gives none).
fn strings(body: &Value, field: &str) -> Vec<ContextValue> {
    body.get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(ContextValue::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A multi-valued key, when it has values.
fn several(out: &mut Vec<ConditionKey>, name: &str, values: Vec<ContextValue>) {
    if !values.is_empty() {
        out.push((name.to_string(), values));
    }
}

/// `aws:RequestTag/KEY` for each tag and `aws:TagKeys` for all of them.
fn request_tags(body: &Value, out: &mut Vec<ConditionKey>) {
    let Some(tags) = body.get("Tags").and_then(Value::as_array) else {
        return;
    };
    let mut keys = Vec::new();
    for tag in tags {
        if let (Some(k), Some(v)) = (
            tag.get("TagKey").and_then(Value::as_str),
            tag.get("TagValue").and_then(Value::as_str),
        ) {
            out.push(one(&format!("aws:RequestTag/{k}"), v));
            keys.push(ContextValue::from(k));
        }
    }
    several(out, "aws:TagKeys", keys);
}

/// The condition keys `op`'s request `body` carries.
pub fn from_request(op: Operation, body: &Value) -> Vec<ConditionKey> {
    use Operation::*;
    let mut out = Vec::new();
    let push_text = |out: &mut Vec<ConditionKey>, key: &str, field: &str, default| {
        if let Some(v) = text(body, field, default) {
            out.push(one(key, v));
        }
    };
    match op {
        CreateKey => create_key_keys(body, &mut out),
        PutKeyPolicy => {
            let bypass = flag(body, "BypassPolicyLockoutSafetyCheck");
            out.push(one("kms:BypassPolicyLockoutSafetyCheck", bypass));
        }
        TagResource => request_tags(body, &mut out),
        UntagResource => several(&mut out, "aws:TagKeys", strings(body, "TagKeys")),
        Sign | Verify => {
            push_text(&mut out, "kms:SigningAlgorithm", "SigningAlgorithm", None);
            push_text(&mut out, "kms:MessageType", "MessageType", Some("RAW"));
        }
        GenerateMac | VerifyMac => push_text(&mut out, "kms:MacAlgorithm", "MacAlgorithm", None),
        DeriveSharedSecret => push_text(
            &mut out,
            "kms:KeyAgreementAlgorithm",
            "KeyAgreementAlgorithm",
            None,
        ),
        GenerateDataKeyPair | GenerateDataKeyPairWithoutPlaintext => {
            push_text(&mut out, "kms:DataKeyPairSpec", "KeyPairSpec", None)
        }
        GetParametersForImport => {
            push_text(&mut out, "kms:WrappingAlgorithm", "WrappingAlgorithm", None);
            push_text(&mut out, "kms:WrappingKeySpec", "WrappingKeySpec", None);
        }
        ImportKeyMaterial => import_keys(body, &mut out),
        EnableKeyRotation => {
            if let Some(days) = long(body, "RotationPeriodInDays", Some(365)) {
                out.push(one("kms:RotationPeriodInDays", days));
            }
        }
        ScheduleKeyDeletion => {
            if let Some(days) = long(body, "PendingWindowInDays", Some(30)) {
                out.push(one("kms:ScheduleKeyDeletionPendingWindowInDays", days));
            }
        }
        CreateGrant => create_grant_keys(body, &mut out),
        ListGrants | RevokeGrant => out.push(one("kms:GrantIsForAWSResource", false)),
        ReplicateKey => {
            push_text(&mut out, "kms:ReplicaRegion", "ReplicaRegion", None);
            let bypass = flag(body, "BypassPolicyLockoutSafetyCheck");
            out.push(one("kms:BypassPolicyLockoutSafetyCheck", bypass));
            request_tags(body, &mut out);
        }
        UpdatePrimaryRegion => push_text(&mut out, "kms:PrimaryRegion", "PrimaryRegion", None),
        _ => {}
    }
    out
}

/// Push `key` with the text of member `field` (or `default` when absent).
fn push_member(
    out: &mut Vec<ConditionKey>,
    body: &Value,
    key: &str,
    field: &str,
    default: Option<&str>,
) {
    if let Some(v) = text(body, field, default) {
        out.push(one(key, v));
    }
}

/// CreateKey's condition keys: the key's spec, usage, origin, Multi-Region flag, the lockout
/// bypass and the request's tags.
fn create_key_keys(body: &Value, out: &mut Vec<ConditionKey>) {
    let spec = text(body, "KeySpec", None)
        .or(text(body, "CustomerMasterKeySpec", None))
        .unwrap_or("SYMMETRIC_DEFAULT");
    out.push(one("kms:KeySpec", spec));
    push_member(
        out,
        body,
        "kms:KeyUsage",
        "KeyUsage",
        Some("ENCRYPT_DECRYPT"),
    );
    push_member(out, body, "kms:KeyOrigin", "Origin", Some("AWS_KMS"));
    out.push(one("kms:MultiRegion", flag(body, "MultiRegion")));
    let bypass = flag(body, "BypassPolicyLockoutSafetyCheck");
    out.push(one("kms:BypassPolicyLockoutSafetyCheck", bypass));
    request_tags(body, out);
}

/// ImportKeyMaterial's condition keys: the expiration model (AWS's default follows ValidTo) and
/// ValidTo in epoch seconds.
fn import_keys(body: &Value, out: &mut Vec<ConditionKey>) {
    let valid_to = body.get("ValidTo").and_then(Value::as_f64);
    let model = if valid_to.is_some() {
        "KEY_MATERIAL_EXPIRES"
    } else {
        "KEY_MATERIAL_DOES_NOT_EXPIRE"
    };
    push_member(
        out,
        body,
        "kms:ExpirationModel",
        "ExpirationModel",
        Some(model),
    );
    // Epoch seconds, as AWS documents the key (NumericLessThanEquals); it reads as a date
    // too.
    if let Some(secs) = valid_to.filter(|s| s.is_finite()) {
        out.push(one("kms:ValidTo", ContextValue::Long(secs as i64)));
    }
}

/// CreateGrant's condition keys: operations, principals and constraint types.
fn create_grant_keys(body: &Value, out: &mut Vec<ConditionKey>) {
    several(out, "kms:GrantOperations", strings(body, "Operations"));
    push_member(out, body, "kms:GranteePrincipal", "GranteePrincipal", None);
    push_member(
        out,
        body,
        "kms:RetiringPrincipal",
        "RetiringPrincipal",
        None,
    );
    if let Some(constraints) = body.get("Constraints").and_then(Value::as_object) {
        let kinds: Vec<ContextValue> = ["EncryptionContextEquals", "EncryptionContextSubset"]
            .into_iter()
            .filter(|k| constraints.contains_key(*k))
            .map(ContextValue::from)
            .collect();
        several(out, "kms:GrantConstraintType", kinds);
    }
    out.push(one("kms:GrantIsForAWSResource", false));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Condition keys with their values as text.
    type Texts = Vec<(String, Vec<String>)>;

    fn keys(op: Operation, body: Value) -> Texts {
        from_request(op, &body)
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(ContextValue::as_text).collect()))
            .collect()
    }

    fn pairs(expected: &[(&str, &[&str])]) -> Texts {
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn each_operation_carries_its_documented_keys() {
        let cases: Vec<(Operation, Value, Texts)> = vec![
            (
                Operation::CreateKey,
                json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "Tags": [{"TagKey": "team", "TagValue": "payments"}]}),
                pairs(&[
                    ("kms:KeySpec", &["ECC_NIST_P256"]),
                    ("kms:KeyUsage", &["SIGN_VERIFY"]),
                    ("kms:KeyOrigin", &["AWS_KMS"]),
                    ("kms:MultiRegion", &["false"]),
                    ("kms:BypassPolicyLockoutSafetyCheck", &["false"]),
                    ("aws:RequestTag/team", &["payments"]),
                    ("aws:TagKeys", &["team"]),
                ]),
            ),
            (
                Operation::Sign,
                json!({"SigningAlgorithm": "ECDSA_SHA_256"}),
                pairs(&[
                    ("kms:SigningAlgorithm", &["ECDSA_SHA_256"]),
                    ("kms:MessageType", &["RAW"]),
                ]),
            ),
            (
                Operation::CreateGrant,
                json!({"Operations": ["Decrypt", "Encrypt"], "GranteePrincipal": "arn:aws:iam::111122223333:user/bob",
                       "Constraints": {"EncryptionContextSubset": {"a": "b"}}}),
                pairs(&[
                    ("kms:GrantOperations", &["Decrypt", "Encrypt"]),
                    (
                        "kms:GranteePrincipal",
                        &["arn:aws:iam::111122223333:user/bob"],
                    ),
                    ("kms:GrantConstraintType", &["EncryptionContextSubset"]),
                    ("kms:GrantIsForAWSResource", &["false"]),
                ]),
            ),
            (
                Operation::ScheduleKeyDeletion,
                json!({}),
                pairs(&[("kms:ScheduleKeyDeletionPendingWindowInDays", &["30"])]),
            ),
            (
                Operation::EnableKeyRotation,
                json!({"RotationPeriodInDays": 90}),
                pairs(&[("kms:RotationPeriodInDays", &["90"])]),
            ),
            (
                Operation::ImportKeyMaterial,
                json!({"ValidTo": 1798761600}),
                pairs(&[
                    ("kms:ExpirationModel", &["KEY_MATERIAL_EXPIRES"]),
                    ("kms:ValidTo", &["1798761600"]),
                ]),
            ),
            (
                Operation::UntagResource,
                json!({"TagKeys": ["a", "b"]}),
                pairs(&[("aws:TagKeys", &["a", "b"])]),
            ),
            (
                Operation::GetParametersForImport,
                json!({"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_4096"}),
                pairs(&[
                    ("kms:WrappingAlgorithm", &["RSAES_OAEP_SHA_256"]),
                    ("kms:WrappingKeySpec", &["RSA_4096"]),
                ]),
            ),
            (
                Operation::GenerateDataKeyPair,
                json!({"KeyPairSpec": "RSA_2048"}),
                pairs(&[("kms:DataKeyPairSpec", &["RSA_2048"])]),
            ),
            (Operation::DescribeKey, json!({"KeyId": "k"}), Vec::new()),
        ];
        for (op, body, expected) in cases {
            assert_eq!(keys(op, body), expected, "{op:?}");
        }
    }
}
