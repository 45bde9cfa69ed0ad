//! The operation x key-state matrix, black-box, against both stores: every implemented operation
//! that takes a key is called on a key in each state the server can reach (Enabled, Disabled,
//! PendingDeletion), and the answer must be the one AWS documents. The expectations are written out
//! here, row by row, independently of the server's table.
//!
//! PendingImport and Unavailable arrive with imported key material and custom key stores; their
//! columns are covered by the unit test of the table itself until then.

use crate::common;

use base64::Engine;
use common::{raw_call, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};

const OK: &str = "OK";

/// (operation, [Enabled, Disabled, PendingDeletion]): "OK" or the AWS error code.
const MATRIX: &[(&str, [&str; 3])] = &[
    ("DescribeKey", [OK, OK, OK]),
    ("GetKeyPolicy", [OK, OK, OK]),
    ("ListKeyPolicies", [OK, OK, OK]),
    ("ListResourceTags", [OK, OK, OK]),
    ("ListAliases", [OK, OK, OK]),
    (
        "Encrypt",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    (
        "Decrypt",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    (
        "ReEncrypt",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    (
        "GenerateDataKey",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    (
        "GenerateDataKeyWithoutPlaintext",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    ("EnableKey", [OK, OK, "KMSInvalidStateException"]),
    ("DisableKey", [OK, OK, "KMSInvalidStateException"]),
    ("UpdateKeyDescription", [OK, OK, "KMSInvalidStateException"]),
    ("PutKeyPolicy", [OK, OK, OK]),
    ("TagResource", [OK, OK, "KMSInvalidStateException"]),
    ("UntagResource", [OK, OK, "KMSInvalidStateException"]),
    ("CreateAlias", [OK, OK, "KMSInvalidStateException"]),
    ("UpdateAlias", [OK, OK, "KMSInvalidStateException"]),
    ("ScheduleKeyDeletion", [OK, OK, "KMSInvalidStateException"]),
    (
        "CancelKeyDeletion",
        ["KMSInvalidStateException", "KMSInvalidStateException", OK],
    ),
    (
        "EnableKeyRotation",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    (
        "DisableKeyRotation",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    ("GetKeyRotationStatus", [OK, OK, OK]),
    (
        "RotateKeyOnDemand",
        [OK, "DisabledException", "KMSInvalidStateException"],
    ),
    ("ListKeyRotations", [OK, OK, OK]),
];

const STATES: [&str; 3] = ["Enabled", "Disabled", "PendingDeletion"];

async fn call(server: &TestServer, op: &str, body: Value) -> common::RawResponse {
    raw_call(
        &server.endpoint(),
        &format!("TrentService.{op}"),
        body.to_string().as_bytes(),
        Some((ACCESS_KEY, SECRET_KEY)),
        REGION,
    )
    .await
}

async fn ok(server: &TestServer, op: &str, body: Value) -> Value {
    let r = call(server, op, body).await;
    assert_eq!(r.status, 200, "{op} setup failed: {:?}", r.body);
    r.body
}

async fn new_key(server: &TestServer) -> String {
    ok(server, "CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A request for `op` on `key`; `ciphertext` was made under `key` while it was enabled, and
/// `other` is an enabled key that alias `alias/other-N` points at.
fn request(op: &str, key: &str, ciphertext: &str, other_alias: &str, n: usize) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#,
        common::ACCOUNT
    );
    match op {
        "Encrypt" => json!({"KeyId": key, "Plaintext": b64(b"m")}),
        "Decrypt" => json!({"CiphertextBlob": ciphertext}),
        "ReEncrypt" => json!({"CiphertextBlob": ciphertext, "DestinationKeyId": key}),
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            json!({"KeyId": key, "KeySpec": "AES_256"})
        }
        "PutKeyPolicy" => json!({"KeyId": key, "Policy": policy}),
        "UpdateKeyDescription" => json!({"KeyId": key, "Description": "d"}),
        "TagResource" => json!({"KeyId": key, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
        "UntagResource" => json!({"KeyId": key, "TagKeys": ["k"]}),
        "CreateAlias" => json!({"AliasName": format!("alias/matrix-{n}"), "TargetKeyId": key}),
        "UpdateAlias" => json!({"AliasName": other_alias, "TargetKeyId": key}),
        "ScheduleKeyDeletion" => json!({"KeyId": key, "PendingWindowInDays": 7}),
        "EnableKeyRotation" => json!({"KeyId": key, "RotationPeriodInDays": 90}),
        _ => json!({"KeyId": key}),
    }
}

async fn walk_the_matrix(store: StoreKind) {
    let server = TestServer::start(store);
    let mut failures = Vec::new();
    let mut n = 0;
    for (op, expected) in MATRIX {
        for (column, state) in STATES.iter().enumerate() {
            n += 1;
            let key = new_key(&server).await;
            let ciphertext = ok(
                &server,
                "Encrypt",
                json!({"KeyId": key, "Plaintext": "bWF0cml4"}),
            )
            .await["CiphertextBlob"]
                .as_str()
                .unwrap()
                .to_string();
            let other = new_key(&server).await;
            let other_alias = format!("alias/other-{n}");
            ok(
                &server,
                "CreateAlias",
                json!({"AliasName": other_alias, "TargetKeyId": other}),
            )
            .await;
            match *state {
                "Disabled" => {
                    ok(&server, "DisableKey", json!({"KeyId": key})).await;
                }
                "PendingDeletion" => {
                    ok(&server, "ScheduleKeyDeletion", json!({"KeyId": key})).await;
                }
                _ => {}
            }
            let r = call(&server, op, request(op, &key, &ciphertext, &other_alias, n)).await;
            let got = if r.status == 200 { OK } else { r.error_type() };
            if got != expected[column] {
                failures.push(format!(
                    "{op} on a {state} key: expected {}, got {got} ({})",
                    expected[column], r.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn operation_by_state_matrix_sqlite() {
    walk_the_matrix(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operation_by_state_matrix_postgres() {
    walk_the_matrix(StoreKind::Postgres).await;
}
