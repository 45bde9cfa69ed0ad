//! Every response field of the API model, checked against what Trent returns (issue 13, part 3):
//! a scenario calls every operation Trent implements, with the variants that make conditional
//! fields appear (a truncated page, a key pending deletion, imported material, a rotation), and
//! collects the members each answer and each KeyMetadata carry. A member the model defines and
//! Trent never returns must be listed in `NOT_YET` (and in the README), a listed member that
//! appears fails the test (the list stays honest), and a member outside the model fails too.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{json, Value};

use crate::common;

use common::{raw_call, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};

/// What the model defines and Trent does not return, by operation (`KeyMetadata` for the key
/// metadata structure), with why: features not built yet, and members for situations that never
/// arise in Trent. The README's list of response members not returned says the same.
const NOT_YET: &[(&str, &str, &str)] = &[
    // Nitro Enclaves attestation (Recipient) is not supported: the request is refused.
    (
        "Decrypt",
        "CiphertextForRecipient",
        "Recipient is unsupported",
    ),
    (
        "DeriveSharedSecret",
        "CiphertextForRecipient",
        "Recipient is unsupported",
    ),
    (
        "GenerateDataKey",
        "CiphertextForRecipient",
        "Recipient is unsupported",
    ),
    (
        "GenerateDataKeyPair",
        "CiphertextForRecipient",
        "Recipient is unsupported",
    ),
    (
        "GenerateRandom",
        "CiphertextForRecipient",
        "Recipient is unsupported",
    ),
    // CloudHSM key stores are not offered; keys in external key stores need a real XKS proxy,
    // so `tests/it/xks_stores.rs` checks their CustomKeyStoreId and XksKeyConfiguration.
    ("KeyMetadata", "CloudHsmClusterId", "no CloudHSM key stores"),
    (
        "KeyMetadata",
        "CustomKeyStoreId",
        "checked in xks_stores.rs",
    ),
    (
        "KeyMetadata",
        "XksKeyConfiguration",
        "checked in xks_stores.rs",
    ),
    // Members that describe a situation Trent never is in (as AWS would omit them there too).
    (
        "GetKeyRotationStatus",
        "OnDemandRotationStartDate",
        "an on-demand rotation completes within its call, so none is ever in progress",
    ),
    (
        "ListKeyPolicies",
        "NextMarker",
        "a key has one policy, so the list is never truncated",
    ),
];

/// Operations this scenario does not call: custom key stores need a real XKS proxy, so
/// `tests/it/xks_stores.rs` exercises them.
const UNSUPPORTED: &[&str] = &[
    "ConnectCustomKeyStore",
    "CreateCustomKeyStore",
    "DeleteCustomKeyStore",
    "DescribeCustomKeyStores",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
];

/// The model's output members of each operation, and of KeyMetadata.
fn model_members() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/service/model/kms-model.json"
    ))
    .expect("the API model");
    let model: Value = serde_json::from_str(&text).expect("model JSON");
    let members = |shape: &str| -> BTreeSet<String> {
        model["shapes"][shape]["members"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = model["operations"]
        .as_object()
        .expect("operations")
        .iter()
        .map(|(name, op)| {
            let output = op["output"].as_str().unwrap_or_default();
            (name.clone(), members(output))
        })
        .collect();
    for shape in ["KeyMetadata", "GrantConstraints"]
        .into_iter()
        .chain(LIST_ENTRIES.iter().map(|(_, shape)| *shape))
    {
        out.insert(shape.into(), members(shape));
    }
    out
}

/// List members whose entries are checked too, with the entry's shape. (RotationsListEntry is
/// left out: its import members appear only for imported material, which this scenario does not
/// rotate.)
const LIST_ENTRIES: &[(&str, &str)] = &[
    ("Grants", "GrantListEntry"),
    ("Aliases", "AliasListEntry"),
    ("Keys", "KeyListEntry"),
];

/// Calls the scenario makes, and the members their answers carried.
struct Seen {
    server: TestServer,
    members: BTreeMap<String, BTreeSet<String>>,
}

impl Seen {
    /// Call `operation` (it must succeed) and note its answer's members and any key metadata.
    async fn ok(&mut self, operation: &str, body: Value) -> Value {
        let target = format!("TrentService.{operation}");
        let text = body.to_string();
        let resp = raw_call(
            &self.server.endpoint(),
            &target,
            text.as_bytes(),
            Some((ACCESS_KEY, SECRET_KEY)),
            REGION,
        )
        .await;
        assert_eq!(resp.status, 200, "{operation} {body}: {}", resp.body);
        let answer = resp.body.clone();
        let entry = self.members.entry(operation.to_string()).or_default();
        if let Some(fields) = answer.as_object() {
            entry.extend(fields.keys().cloned());
        }
        let mut nested: Vec<(&str, &Value)> = Vec::new();
        for member in ["KeyMetadata", "ReplicaKeyMetadata"] {
            if let Some(meta) = answer.get(member) {
                nested.push(("KeyMetadata", meta));
            }
        }
        for (member, shape) in LIST_ENTRIES {
            for entry in answer[*member].as_array().into_iter().flatten() {
                nested.push((shape, entry));
                if let Some(constraints) = entry.get("Constraints") {
                    nested.push(("GrantConstraints", constraints));
                }
            }
        }
        for (shape, value) in nested {
            if let Some(fields) = value.as_object() {
                let entry = self.members.entry(shape.to_string()).or_default();
                entry.extend(fields.keys().cloned());
            }
        }
        answer
    }

    /// CreateKey with `body`; the new key's id.
    async fn key(&mut self, body: Value) -> String {
        let created = self.ok("CreateKey", body).await;
        created["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("key id")
            .to_string()
    }
}

/// Wait until the key of `region` leaves its transient multi-Region state.
async fn wait_until_settled(server: &TestServer, key: &str, region: &str) {
    let body = json!({ "KeyId": key }).to_string();
    for _ in 0..500 {
        let resp = raw_call(
            &server.endpoint(),
            "TrentService.DescribeKey",
            body.as_bytes(),
            Some((ACCESS_KEY, SECRET_KEY)),
            region,
        )
        .await;
        let state = resp.body["KeyMetadata"]["KeyState"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if state != "Creating" && state != "Updating" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{key} in {region} stayed in a transient state");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64_decode(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("base64 text"))
        .expect("base64")
}

/// Every operation Trent implements, with the variants that bring out conditional members.
async fn run_scenario(s: &mut Seen) {
    let root = format!("arn:aws:iam::{}:root", common::ACCOUNT);
    let sym = s
        .key(json!({"Description": "fields", "Tags": [{"TagKey": "a", "TagValue": "1"}]}))
        .await;
    let other = s.key(json!({})).await;
    let rsa = s
        .key(json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}))
        .await;
    let ecc = s
        .key(json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}))
        .await;
    let hmac = s
        .key(json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}))
        .await;
    let agree = s
        .key(json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}))
        .await;
    let peer = s
        .key(json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}))
        .await;
    let kem = s
        .key(json!({"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"}))
        .await;

    s.ok("DescribeKey", json!({"KeyId": sym})).await;
    // A multi-Region key: its configuration, a replica, and a change of primary Region once the
    // replica is ready.
    let mrk = s.key(json!({"MultiRegion": true})).await;
    s.ok(
        "ReplicateKey",
        json!({"KeyId": mrk, "ReplicaRegion": "eu-west-1", "Tags": [{"TagKey": "r", "TagValue": "1"}]}),
    )
    .await;
    wait_until_settled(&s.server, &mrk, "eu-west-1").await;
    s.ok("DescribeKey", json!({"KeyId": mrk})).await;
    s.ok(
        "UpdatePrimaryRegion",
        json!({"KeyId": mrk, "PrimaryRegion": "eu-west-1"}),
    )
    .await;
    s.ok(
        "UpdateKeyDescription",
        json!({"KeyId": sym, "Description": "d"}),
    )
    .await;
    s.ok("DisableKey", json!({"KeyId": other})).await;
    s.ok("EnableKey", json!({"KeyId": other})).await;
    // Lists, each once truncated (NextMarker) and once whole.
    s.ok("ListKeys", json!({"Limit": 1})).await;
    s.ok("ListKeys", json!({})).await;
    s.ok(
        "CreateAlias",
        json!({"AliasName": "alias/fields", "TargetKeyId": sym}),
    )
    .await;
    s.ok(
        "CreateAlias",
        json!({"AliasName": "alias/fields-2", "TargetKeyId": sym}),
    )
    .await;
    s.ok(
        "UpdateAlias",
        json!({"AliasName": "alias/fields-2", "TargetKeyId": other}),
    )
    .await;
    s.ok("ListAliases", json!({"Limit": 1})).await;
    s.ok("ListAliases", json!({})).await;
    s.ok("DeleteAlias", json!({"AliasName": "alias/fields-2"}))
        .await;
    s.ok(
        "TagResource",
        json!({"KeyId": sym, "Tags": [{"TagKey": "b", "TagValue": "2"}]}),
    )
    .await;
    s.ok("ListResourceTags", json!({"KeyId": sym, "Limit": 1}))
        .await;
    s.ok("ListResourceTags", json!({"KeyId": sym})).await;
    s.ok("UntagResource", json!({"KeyId": sym, "TagKeys": ["b"]}))
        .await;
    s.ok("GetKeyPolicy", json!({"KeyId": sym})).await;
    let policy = s
        .ok(
            "GetKeyPolicy",
            json!({"KeyId": sym, "PolicyName": "default"}),
        )
        .await;
    s.ok(
        "PutKeyPolicy",
        json!({"KeyId": sym, "Policy": policy["Policy"]}),
    )
    .await;
    s.ok("ListKeyPolicies", json!({"KeyId": sym})).await;

    // Rotation: status while enabled, on demand, the list.
    s.ok("EnableKeyRotation", json!({"KeyId": sym})).await;
    s.ok("RotateKeyOnDemand", json!({"KeyId": sym})).await;
    s.ok("GetKeyRotationStatus", json!({"KeyId": sym})).await;
    s.ok("RotateKeyOnDemand", json!({"KeyId": sym})).await;
    s.ok("ListKeyRotations", json!({"KeyId": sym, "Limit": 1}))
        .await;
    s.ok("ListKeyRotations", json!({"KeyId": sym})).await;
    s.ok("DisableKeyRotation", json!({"KeyId": sym})).await;
    s.ok("GetKeyRotationStatus", json!({"KeyId": sym})).await;

    // Symmetric cryptography.
    let pt = b64(b"fields");
    let enc = s
        .ok("Encrypt", json!({"KeyId": sym, "Plaintext": pt}))
        .await;
    s.ok("Decrypt", json!({"CiphertextBlob": enc["CiphertextBlob"]}))
        .await;
    s.ok(
        "ReEncrypt",
        json!({"CiphertextBlob": enc["CiphertextBlob"], "DestinationKeyId": other}),
    )
    .await;
    s.ok(
        "GenerateDataKey",
        json!({"KeyId": sym, "KeySpec": "AES_256"}),
    )
    .await;
    s.ok(
        "GenerateDataKeyWithoutPlaintext",
        json!({"KeyId": sym, "NumberOfBytes": 32}),
    )
    .await;
    s.ok(
        "GenerateDataKeyPair",
        json!({"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"}),
    )
    .await;
    s.ok(
        "GenerateDataKeyPairWithoutPlaintext",
        json!({"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"}),
    )
    .await;
    s.ok("GenerateRandom", json!({"NumberOfBytes": 16})).await;
    s.ok("GetKeyLastUsage", json!({"KeyId": sym})).await;

    // Asymmetric keys.
    let rsa_enc = s
        .ok(
            "Encrypt",
            json!({"KeyId": rsa, "Plaintext": pt, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    s.ok(
        "Decrypt",
        json!({"KeyId": rsa, "CiphertextBlob": rsa_enc["CiphertextBlob"],
               "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    )
    .await;
    for key in [&rsa, &ecc, &agree, &kem] {
        s.ok("GetPublicKey", json!({"KeyId": key})).await;
    }
    let signed = s
        .ok(
            "Sign",
            json!({"KeyId": ecc, "Message": pt, "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    s.ok(
        "Verify",
        json!({"KeyId": ecc, "Message": pt, "Signature": signed["Signature"],
               "SigningAlgorithm": "ECDSA_SHA_256"}),
    )
    .await;
    let mac = s
        .ok(
            "GenerateMac",
            json!({"KeyId": hmac, "Message": pt, "MacAlgorithm": "HMAC_SHA_256"}),
        )
        .await;
    s.ok(
        "VerifyMac",
        json!({"KeyId": hmac, "Message": pt, "Mac": mac["Mac"], "MacAlgorithm": "HMAC_SHA_256"}),
    )
    .await;
    let peer_public = s.ok("GetPublicKey", json!({"KeyId": peer})).await;
    s.ok(
        "DeriveSharedSecret",
        json!({"KeyId": agree, "KeyAgreementAlgorithm": "ECDH",
               "PublicKey": peer_public["PublicKey"]}),
    )
    .await;
    let encapsulated = s
        .ok(
            "Encapsulate",
            json!({"KeyId": kem, "EncapsulationAlgorithm": "ML_KEM"}),
        )
        .await;
    s.ok(
        "Decapsulate",
        json!({"KeyId": kem, "EncapsulationAlgorithm": "ML_KEM",
               "SharedSecretCiphertextBlob": encapsulated["SharedSecretCiphertextBlob"]}),
    )
    .await;

    // Grants: one retirable by root.
    let grant = s
        .ok(
            "CreateGrant",
            json!({"KeyId": sym, "GranteePrincipal": root, "RetiringPrincipal": root,
                   "Name": "fields", "Operations": ["Encrypt", "Decrypt"],
                   "Constraints": {"EncryptionContextSubset": {"app": "x"}}}),
        )
        .await;
    s.ok(
        "CreateGrant",
        json!({"KeyId": sym, "GranteePrincipal": root, "RetiringPrincipal": root,
               "Operations": ["Decrypt"],
               "Constraints": {"EncryptionContextEquals": {"app": "y"}}}),
    )
    .await;
    // A grant to a service principal, for one source resource.
    s.ok(
        "CreateGrant",
        json!({"KeyId": sym, "GranteeServicePrincipal": "logs.amazonaws.com",
               "RetiringServicePrincipal": "logs.amazonaws.com", "Operations": ["Encrypt"],
               "Constraints": {"SourceArn": "arn:aws:logs:us-east-1:111122223333:log-group:app"}}),
    )
    .await;
    s.ok(
        "ListRetirableGrants",
        json!({"RetiringServicePrincipal": "logs.amazonaws.com"}),
    )
    .await;
    s.ok("ListGrants", json!({"KeyId": sym, "Limit": 1})).await;
    s.ok("ListGrants", json!({"KeyId": sym})).await;
    s.ok(
        "ListRetirableGrants",
        json!({"RetiringPrincipal": root, "Limit": 1}),
    )
    .await;
    s.ok("ListRetirableGrants", json!({"RetiringPrincipal": root}))
        .await;
    s.ok(
        "RetireGrant",
        json!({"KeyId": sym, "GrantId": grant["GrantId"]}),
    )
    .await;
    let second = s.ok("ListGrants", json!({"KeyId": sym})).await;
    s.ok(
        "RevokeGrant",
        json!({"KeyId": sym, "GrantId": second["Grants"][0]["GrantId"]}),
    )
    .await;

    // Imported material with an expiry (ExpirationModel, ValidTo), then deleted.
    let external = s.key(json!({"Origin": "EXTERNAL"})).await;
    let params = s
        .ok(
            "GetParametersForImport",
            json!({"KeyId": external, "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                   "WrappingKeySpec": "RSA_2048"}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let wrapped = crate::import::wrap(
        dir.path(),
        &b64_decode(&params["PublicKey"]),
        &[0x42; 32],
        &aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256,
    );
    s.ok(
        "ImportKeyMaterial",
        json!({"KeyId": external, "ImportToken": params["ImportToken"],
               "EncryptedKeyMaterial": b64(&wrapped),
               "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 4102444800u64}),
    )
    .await;
    s.ok("DescribeKey", json!({"KeyId": external})).await;
    s.ok("DeleteImportedKeyMaterial", json!({"KeyId": external}))
        .await;

    // Deletion scheduled (DeletionDate, PendingDeletionWindowInDays) and cancelled.
    s.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": other, "PendingWindowInDays": 7}),
    )
    .await;
    s.ok("DescribeKey", json!({"KeyId": other})).await;
    s.ok("CancelKeyDeletion", json!({"KeyId": other})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_model_response_field_is_returned_or_listed_as_not_yet() {
    let mut seen = Seen {
        server: TestServer::start(StoreKind::Sqlite),
        members: BTreeMap::new(),
    };
    run_scenario(&mut seen).await;
    let model = model_members();
    let mut problems = Vec::new();
    for (operation, defined) in &model {
        if UNSUPPORTED.contains(&operation.as_str()) {
            continue;
        }
        let Some(returned) = seen.members.get(operation) else {
            // Operations with an empty output are called only for their effect.
            if !defined.is_empty() {
                problems.push(format!("{operation}: never called by the scenario"));
            }
            continue;
        };
        let listed: BTreeSet<String> = NOT_YET
            .iter()
            .filter(|(op, _, _)| op == operation)
            .map(|(_, member, _)| member.to_string())
            .collect();
        for member in defined {
            match (returned.contains(member), listed.contains(member)) {
                (false, false) => problems.push(format!(
                    "{operation}.{member}: in the model, never returned, not listed as not yet"
                )),
                (true, true) => problems.push(format!(
                    "{operation}.{member}: listed as not yet but returned"
                )),
                _ => {}
            }
        }
        for member in returned.difference(defined) {
            problems.push(format!(
                "{operation}.{member}: returned but not in the model"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
