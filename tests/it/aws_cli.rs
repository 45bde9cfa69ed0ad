//! The real AWS CLI (from PyPI) against a real server through --endpoint-url, on both stores.

use crate::common;

use std::process::Command;

use base64::Engine;
use common::{awscli, StoreKind, TestServer};
use serde_json::Value;

/// Run `aws ARGS` against `server` with the development identity and nothing from the host's
/// AWS configuration.
fn run(server: &TestServer, args: &[&str]) -> std::process::Output {
    awscli::command(&server.endpoint(), (common::ACCESS_KEY, common::SECRET_KEY))
        .args(args)
        .output()
        .expect("aws runs")
}

/// Run a command that must succeed; its JSON output (Null when it prints nothing).
fn aws(server: &TestServer, args: &[&str]) -> Value {
    let out = run(server, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }
}

/// Run a command that must fail (non-zero exit); its stderr.
fn aws_err(server: &TestServer, args: &[&str]) -> String {
    let out = run(server, args);
    assert!(
        !out.status.success(),
        "aws {args:?} succeeded but should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn round_trip(store: StoreKind) {
    let server = TestServer::start(store);
    let created = aws(&server, &["kms", "create-key", "--description", "cli key"]);
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_string();
    assert_eq!(created["KeyMetadata"]["Description"], "cli key");

    let described = aws(&server, &["kms", "describe-key", "--key-id", &key_id]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");

    let listed = aws(&server, &["kms", "list-keys"]);
    assert!(listed["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["KeyId"] == key_id.as_str()));

    // The CLI base64-encodes fileb:// input itself; the plaintext comes back base64.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("plain.txt");
    std::fs::write(&input, b"hello from the aws cli").unwrap();
    let encrypted = aws(
        &server,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key_id,
            "--plaintext",
            &format!("fileb://{}", input.display()),
            "--encryption-context",
            "app=cli",
        ],
    );
    let blob_b64 = encrypted["CiphertextBlob"].as_str().unwrap().to_string();
    let blob_file = tmp.path().join("blob.bin");
    std::fs::write(
        &blob_file,
        base64::engine::general_purpose::STANDARD
            .decode(&blob_b64)
            .unwrap(),
    )
    .unwrap();
    let blob_arg = format!("fileb://{}", blob_file.display());
    let decrypted = aws(
        &server,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &blob_arg,
            "--encryption-context",
            "app=cli",
        ],
    );
    let plain = base64::engine::general_purpose::STANDARD
        .decode(decrypted["Plaintext"].as_str().unwrap())
        .unwrap();
    assert_eq!(plain, b"hello from the aws cli");

    let second = aws(&server, &["kms", "create-key"]);
    let second_id = second["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let re = aws(
        &server,
        &[
            "kms",
            "re-encrypt",
            "--ciphertext-blob",
            &blob_arg,
            "--source-encryption-context",
            "app=cli",
            "--destination-key-id",
            &second_id,
        ],
    );
    assert!(re["KeyId"].as_str().unwrap().ends_with(&second_id));

    let dk = aws(
        &server,
        &[
            "kms",
            "generate-data-key",
            "--key-id",
            &key_id,
            "--key-spec",
            "AES_256",
        ],
    );
    let dk_plain = base64::engine::general_purpose::STANDARD
        .decode(dk["Plaintext"].as_str().unwrap())
        .unwrap();
    assert_eq!(dk_plain.len(), 32);
}

#[test]
fn aws_cli_round_trip_sqlite() {
    round_trip(StoreKind::Sqlite);
}

#[test]
fn aws_cli_round_trip_postgres() {
    round_trip(StoreKind::Postgres);
}

/// A timestamp as the CLI prints it (epoch seconds as the service sent them, or ISO 8601 if the
/// CLI was told to reformat) in epoch seconds.
fn epoch_seconds(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("a timestamp number"),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("timestamp {s:?}: {e}"))
            .timestamp() as f64,
        other => panic!("not a timestamp: {other}"),
    }
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const DAY: f64 = 86_400.0;

/// `aws kms encrypt` of `plain` under `key_id`; the raw ciphertext blob.
fn cli_encrypt(server: &TestServer, dir: &std::path::Path, key_id: &str, plain: &[u8]) -> Vec<u8> {
    let input = dir.join(format!("plain-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&input, plain).unwrap();
    let out = aws(
        server,
        &[
            "kms",
            "encrypt",
            "--key-id",
            key_id,
            "--plaintext",
            &format!("fileb://{}", input.display()),
        ],
    );
    base64::engine::general_purpose::STANDARD
        .decode(out["CiphertextBlob"].as_str().expect("CiphertextBlob"))
        .unwrap()
}

/// `aws kms decrypt` of a raw ciphertext blob; (plaintext, KeyId the service reported).
fn cli_decrypt(server: &TestServer, dir: &std::path::Path, blob: &[u8]) -> (Vec<u8>, String) {
    let file = dir.join(format!("blob-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&file, blob).unwrap();
    let out = aws(
        server,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", file.display()),
        ],
    );
    let plain = base64::engine::general_purpose::STANDARD
        .decode(out["Plaintext"].as_str().expect("Plaintext"))
        .unwrap();
    (plain, out["KeyId"].as_str().expect("KeyId").to_string())
}

/// Aliases, tags, deletion scheduling and cancelling, and rotation, all through the real CLI.
fn lifecycle(store: StoreKind) {
    let server = TestServer::start(store);
    let tmp = tempfile::tempdir().unwrap();
    let created = aws(
        &server,
        &["kms", "create-key", "--description", "lifecycle"],
    );
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_string();
    let key_arn = created["KeyMetadata"]["Arn"]
        .as_str()
        .expect("Arn")
        .to_string();
    assert_eq!(
        key_arn,
        format!(
            "arn:aws:kms:{}:{}:key/{key_id}",
            common::REGION,
            common::ACCOUNT
        )
    );

    // --- Aliases.
    let out = aws(
        &server,
        &[
            "kms",
            "create-alias",
            "--alias-name",
            "alias/cli-test",
            "--target-key-id",
            &key_id,
        ],
    );
    assert_eq!(out, Value::Null, "CreateAlias has an empty response");
    let alias_arn = format!(
        "arn:aws:kms:{}:{}:alias/cli-test",
        common::REGION,
        common::ACCOUNT
    );
    let all = aws(&server, &["kms", "list-aliases"]);
    let ours: Vec<&Value> = all["Aliases"]
        .as_array()
        .expect("Aliases")
        .iter()
        .filter(|a| a["AliasName"] == "alias/cli-test")
        .collect();
    assert_eq!(ours.len(), 1, "alias/cli-test listed once: {all}");
    assert_eq!(ours[0]["TargetKeyId"], key_id.as_str());
    assert_eq!(ours[0]["AliasArn"], alias_arn.as_str());
    let by_key = aws(&server, &["kms", "list-aliases", "--key-id", &key_id]);
    let by_key = by_key["Aliases"].as_array().expect("Aliases");
    assert_eq!(
        by_key.len(),
        1,
        "only our alias points at the key: {by_key:?}"
    );
    assert_eq!(by_key[0]["AliasName"], "alias/cli-test");
    assert_eq!(by_key[0]["TargetKeyId"], key_id.as_str());

    // A reserved alias name is refused by the service, and the CLI exits non-zero.
    let err = aws_err(
        &server,
        &[
            "kms",
            "create-alias",
            "--alias-name",
            "alias/aws/reserved",
            "--target-key-id",
            &key_id,
        ],
    );
    assert!(
        err.contains("InvalidAliasNameException"),
        "reserved alias error: {err}"
    );
    let by_key = aws(&server, &["kms", "list-aliases", "--key-id", &key_id]);
    assert_eq!(
        by_key["Aliases"].as_array().unwrap().len(),
        1,
        "the refused alias was not created: {by_key}"
    );

    // Encrypt through the alias; decrypt needs no key id and names the key behind the alias.
    let blob = cli_encrypt(&server, tmp.path(), "alias/cli-test", b"via the alias");
    let (plain, decrypted_by) = cli_decrypt(&server, tmp.path(), &blob);
    assert_eq!(plain, b"via the alias");
    assert_eq!(decrypted_by, key_arn);

    // --- Tags.
    let out = aws(
        &server,
        &[
            "kms",
            "tag-resource",
            "--key-id",
            &key_id,
            "--tags",
            "TagKey=team,TagValue=payments",
        ],
    );
    assert_eq!(out, Value::Null, "TagResource has an empty response");
    // --no-paginate: the CLI's paginator would drop the service's Truncated flag.
    let tags = aws(
        &server,
        &[
            "kms",
            "list-resource-tags",
            "--key-id",
            &key_id,
            "--no-paginate",
        ],
    );
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{ "TagKey": "team", "TagValue": "payments" }]),
        "tags: {tags}"
    );
    assert_eq!(tags["Truncated"], false);

    // --- Scheduling deletion and cancelling it.
    let before = now_epoch();
    let scheduled = aws(
        &server,
        &[
            "kms",
            "schedule-key-deletion",
            "--key-id",
            &key_id,
            "--pending-window-in-days",
            "7",
        ],
    );
    assert_eq!(scheduled["KeyId"], key_arn.as_str(), "{scheduled}");
    assert_eq!(scheduled["KeyState"], "PendingDeletion", "{scheduled}");
    assert_eq!(scheduled["PendingWindowInDays"], 7, "{scheduled}");
    let deletion = epoch_seconds(&scheduled["DeletionDate"]);
    assert!(
        deletion >= before + 7.0 * DAY - 60.0 && deletion <= now_epoch() + 8.0 * DAY,
        "DeletionDate {deletion} is about 7 days after {before}"
    );
    let described = aws(&server, &["kms", "describe-key", "--key-id", &key_id]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion");
    assert_eq!(described["KeyMetadata"]["Enabled"], false);
    assert_eq!(
        epoch_seconds(&described["KeyMetadata"]["DeletionDate"]),
        deletion,
        "DescribeKey reports the same DeletionDate: {described}"
    );

    let cancelled = aws(
        &server,
        &["kms", "cancel-key-deletion", "--key-id", &key_id],
    );
    assert_eq!(cancelled["KeyId"], key_arn.as_str(), "{cancelled}");
    let described = aws(&server, &["kms", "describe-key", "--key-id", &key_id]);
    assert_eq!(
        described["KeyMetadata"]["KeyState"], "Disabled",
        "a cancelled deletion leaves the key Disabled: {described}"
    );
    assert_eq!(described["KeyMetadata"]["Enabled"], false);
    assert!(
        described["KeyMetadata"].get("DeletionDate").is_none(),
        "no DeletionDate after cancelling: {described}"
    );

    let out = aws(&server, &["kms", "enable-key", "--key-id", &key_id]);
    assert_eq!(out, Value::Null, "EnableKey has an empty response");
    let described = aws(&server, &["kms", "describe-key", "--key-id", &key_id]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(described["KeyMetadata"]["Enabled"], true);

    // --- Rotation.
    let status = aws(
        &server,
        &["kms", "get-key-rotation-status", "--key-id", &key_id],
    );
    assert_eq!(status["KeyRotationEnabled"], false, "{status}");
    let before = now_epoch();
    let out = aws(
        &server,
        &[
            "kms",
            "enable-key-rotation",
            "--key-id",
            &key_id,
            "--rotation-period-in-days",
            "90",
        ],
    );
    assert_eq!(out, Value::Null, "EnableKeyRotation has an empty response");
    let status = aws(
        &server,
        &["kms", "get-key-rotation-status", "--key-id", &key_id],
    );
    assert_eq!(status["KeyRotationEnabled"], true, "{status}");
    assert_eq!(status["RotationPeriodInDays"], 90, "{status}");
    let next = epoch_seconds(&status["NextRotationDate"]);
    assert!(
        next >= before + 90.0 * DAY - 60.0 && next <= now_epoch() + 91.0 * DAY,
        "NextRotationDate {next} is about 90 days after {before}"
    );

    let old_blob = cli_encrypt(&server, tmp.path(), &key_id, b"before the rotation");
    let rotated = aws(
        &server,
        &["kms", "rotate-key-on-demand", "--key-id", &key_id],
    );
    assert_eq!(rotated["KeyId"], key_arn.as_str(), "{rotated}");

    let rotations = aws(&server, &["kms", "list-key-rotations", "--key-id", &key_id]);
    let rotations = rotations["Rotations"].as_array().expect("Rotations");
    assert_eq!(rotations.len(), 1, "one completed rotation: {rotations:?}");
    assert_eq!(rotations[0]["KeyId"], key_arn.as_str());
    assert_eq!(rotations[0]["RotationType"], "ON_DEMAND");
    let rotation_date = epoch_seconds(&rotations[0]["RotationDate"]);
    assert!(
        rotation_date >= before - 60.0 && rotation_date <= now_epoch() + 60.0,
        "RotationDate {rotation_date} is now"
    );
    let rotated_material = rotations[0]["KeyMaterialId"]
        .as_str()
        .expect("KeyMaterialId")
        .to_string();

    let all = aws(
        &server,
        &[
            "kms",
            "list-key-rotations",
            "--key-id",
            &key_id,
            "--include-key-material",
            "ALL_KEY_MATERIAL",
        ],
    );
    let all = all["Rotations"].as_array().expect("Rotations");
    assert_eq!(all.len(), 2, "first material and one rotation: {all:?}");
    let current: Vec<&Value> = all
        .iter()
        .filter(|r| r["KeyMaterialState"] == "CURRENT")
        .collect();
    assert_eq!(current.len(), 1, "exactly one CURRENT material: {all:?}");
    assert_eq!(
        current[0]["KeyMaterialId"],
        rotated_material.as_str(),
        "the rotated material is the current one: {all:?}"
    );
    assert_eq!(current[0]["RotationType"], "ON_DEMAND");
    let first: Vec<&Value> = all
        .iter()
        .filter(|r| r["KeyMaterialState"] == "NON_CURRENT")
        .collect();
    assert_eq!(first.len(), 1, "the first material is NON_CURRENT: {all:?}");
    assert!(
        first[0].get("RotationType").is_none() && first[0].get("RotationDate").is_none(),
        "the first material has no rotation fields: {all:?}"
    );
    assert_ne!(first[0]["KeyMaterialId"], rotated_material.as_str());

    // On-demand rotation leaves the automatic schedule alone.
    let status = aws(
        &server,
        &["kms", "get-key-rotation-status", "--key-id", &key_id],
    );
    assert_eq!(status["KeyRotationEnabled"], true, "{status}");
    assert_eq!(status["RotationPeriodInDays"], 90, "{status}");
    assert_eq!(epoch_seconds(&status["NextRotationDate"]), next, "{status}");

    // Ciphertexts from before the rotation still decrypt; new ones do too.
    let (plain, by) = cli_decrypt(&server, tmp.path(), &old_blob);
    assert_eq!(plain, b"before the rotation");
    assert_eq!(by, key_arn);
    let (plain, _) = cli_decrypt(&server, tmp.path(), &blob);
    assert_eq!(plain, b"via the alias");
    let new_blob = cli_encrypt(&server, tmp.path(), "alias/cli-test", b"after the rotation");
    let (plain, by) = cli_decrypt(&server, tmp.path(), &new_blob);
    assert_eq!(plain, b"after the rotation");
    assert_eq!(by, key_arn);
}

#[test]
fn aws_cli_lifecycle_sqlite() {
    lifecycle(StoreKind::Sqlite);
}

#[test]
fn aws_cli_lifecycle_postgres() {
    lifecycle(StoreKind::Postgres);
}

/// Run the CLI as another identity; returns (success, stdout JSON or Null, stderr).
fn run_as(server: &TestServer, creds: (&str, &str), args: &[&str]) -> (bool, Value, String) {
    let out = awscli::command(&server.endpoint(), creds)
        .args(args)
        .output()
        .expect("aws runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asymmetric and HMAC keys through the real CLI: create-key with a spec, get-public-key, sign,
/// verify (and a tampered signature), generate-mac and verify-mac.
#[test]
fn aws_cli_asymmetric_keys() {
    let server = TestServer::start(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"release v1.2.3").unwrap();
    let msg_arg = format!("fileb://{}", msg.display());

    let created = aws(
        &server,
        &[
            "kms",
            "create-key",
            "--key-spec",
            "ECC_NIST_P256",
            "--key-usage",
            "SIGN_VERIFY",
        ],
    );
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        created["KeyMetadata"]["SigningAlgorithms"],
        serde_json::json!(["ECDSA_SHA_256"])
    );
    let public = aws(&server, &["kms", "get-public-key", "--key-id", &key]);
    assert_eq!(public["KeySpec"], "ECC_NIST_P256");
    assert!(public["PublicKey"].as_str().is_some_and(|p| !p.is_empty()));

    let signed = aws(
        &server,
        &[
            "kms",
            "sign",
            "--key-id",
            &key,
            "--message",
            &msg_arg,
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signed["Signature"].as_str().unwrap())
        .unwrap();
    let sig = dir.path().join("sig");
    std::fs::write(&sig, &signature).unwrap();
    let sig_arg = format!("fileb://{}", sig.display());
    let verified = aws(
        &server,
        &[
            "kms",
            "verify",
            "--key-id",
            &key,
            "--message",
            &msg_arg,
            "--signature",
            &sig_arg,
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    assert_eq!(verified["SignatureValid"], true);
    let mut bad = signature.clone();
    let n = bad.len() - 3;
    bad[n] ^= 1;
    std::fs::write(&sig, &bad).unwrap();
    let err = aws_err(
        &server,
        &[
            "kms",
            "verify",
            "--key-id",
            &key,
            "--message",
            &msg_arg,
            "--signature",
            &sig_arg,
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    assert!(err.contains("KMSInvalidSignatureException"), "{err}");

    let mac_key = aws(
        &server,
        &[
            "kms",
            "create-key",
            "--key-spec",
            "HMAC_256",
            "--key-usage",
            "GENERATE_VERIFY_MAC",
        ],
    );
    let mac_key = mac_key["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let mac = aws(
        &server,
        &[
            "kms",
            "generate-mac",
            "--key-id",
            &mac_key,
            "--message",
            &msg_arg,
            "--mac-algorithm",
            "HMAC_SHA_256",
        ],
    );
    let mac_file = dir.path().join("mac");
    std::fs::write(
        &mac_file,
        base64::engine::general_purpose::STANDARD
            .decode(mac["Mac"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let ok = aws(
        &server,
        &[
            "kms",
            "verify-mac",
            "--key-id",
            &mac_key,
            "--message",
            &msg_arg,
            "--mac",
            &format!("fileb://{}", mac_file.display()),
            "--mac-algorithm",
            "HMAC_SHA_256",
        ],
    );
    assert_eq!(ok["MacValid"], true);
}

/// Authorization through the real CLI with the example identities: bob is denied by a default key
/// policy (no identity policy), alice is allowed where the key policy names her.
#[test]
fn aws_cli_authorization_with_example_identities() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");
    let server = TestServer::start_with(StoreKind::Sqlite, &["--config", config]);
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"Alice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:DescribeKey","Resource":"*"}]}"#;
    let created = aws(&server, &["kms", "create-key", "--policy", policy]);
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let alice = (
        "AKIAALICEEXAMPLE0001",
        "aliceSecretKeyExample000000000000000001",
    );
    let bob = (
        "AKIABOBEXAMPLE000002",
        "bobSecretKeyExample0000000000000000002",
    );
    let (ok, described, stderr) =
        run_as(&server, alice, &["kms", "describe-key", "--key-id", &key]);
    assert!(ok, "alice: {stderr}");
    assert_eq!(described["KeyMetadata"]["KeyId"], key.as_str());
    let (ok, _, stderr) = run_as(&server, bob, &["kms", "describe-key", "--key-id", &key]);
    assert!(!ok);
    assert!(stderr.contains("AccessDeniedException"), "{stderr}");
    assert!(
        stderr.contains("user/bob is not authorized to perform: kms:DescribeKey"),
        "{stderr}"
    );
}

/// The import flow through the real CLI: create-key --origin EXTERNAL, get-parameters-for-import,
/// material wrapped outside Trent by the openssl command line, import-key-material, use, and
/// delete-imported-key-material.
#[test]
fn aws_cli_import_flow() {
    let server = TestServer::start(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let created = aws(&server, &["kms", "create-key", "--origin", "EXTERNAL"]);
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["KeyMetadata"]["KeyState"], "PendingImport");

    let params = aws(
        &server,
        &[
            "kms",
            "get-parameters-for-import",
            "--key-id",
            &key,
            "--wrapping-algorithm",
            "RSAES_OAEP_SHA_256",
            "--wrapping-key-spec",
            "RSA_2048",
        ],
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(
        file("wrapping.der"),
        b64.decode(params["PublicKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        file("token.bin"),
        b64.decode(params["ImportToken"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let material: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::write(file("material.bin"), &material).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        &file("wrapping.der"),
        "-out",
        &file("wrapping.pem"),
    ]);
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &file("wrapping.pem"),
        "-in",
        &file("material.bin"),
        "-out",
        &file("wrapped.bin"),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    aws(
        &server,
        &[
            "kms",
            "import-key-material",
            "--key-id",
            &key,
            "--encrypted-key-material",
            &format!("fileb://{}", file("wrapped.bin")),
            "--import-token",
            &format!("fileb://{}", file("token.bin")),
            "--expiration-model",
            "KEY_MATERIAL_DOES_NOT_EXPIRE",
        ],
    );
    let described = aws(&server, &["kms", "describe-key", "--key-id", &key]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(described["KeyMetadata"]["Origin"], "EXTERNAL");

    let blob = cli_encrypt(&server, dir.path(), &key, b"imported");
    let (plain, _) = cli_decrypt(&server, dir.path(), &blob);
    assert_eq!(plain, b"imported");

    aws(
        &server,
        &["kms", "delete-imported-key-material", "--key-id", &key],
    );
    let described = aws(&server, &["kms", "describe-key", "--key-id", &key]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "PendingImport");
    let blob_file = dir.path().join("after-delete.bin");
    std::fs::write(&blob_file, &blob).unwrap();
    let err = aws_err(
        &server,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", blob_file.display()),
        ],
    );
    assert!(err.contains("KMSInvalidStateException"), "{err}");
}

/// `aws --region REGION kms describe-key` until the key leaves its transient state; its metadata.
fn settled_in(server: &TestServer, region: &str, key_id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = aws(
            server,
            &[
                "--region",
                region,
                "kms",
                "describe-key",
                "--key-id",
                key_id,
            ],
        );
        let meta = out["KeyMetadata"].clone();
        if !matches!(meta["KeyState"].as_str(), Some("Creating" | "Updating")) {
            return meta;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key_id} in {region}: {meta}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The README's multi-Region walkthrough, command by command: create a multi-Region key,
/// replicate it, decrypt in the other Region, move the primary, and find both Regions' records.
fn multi_region_walkthrough(store: StoreKind) {
    let server = TestServer::start(store);
    let dir = tempfile::tempdir().unwrap();
    let created = aws(
        &server,
        &[
            "kms",
            "create-key",
            "--multi-region",
            "--description",
            "orders",
        ],
    );
    let id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("mrk-"), "{created}");
    assert_eq!(
        created["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );
    let blob = cli_encrypt(&server, dir.path(), &id, b"order 42");

    let replica = aws(
        &server,
        &[
            "kms",
            "replicate-key",
            "--key-id",
            &id,
            "--replica-region",
            "eu-west-1",
            "--description",
            "orders (Dublin)",
        ],
    );
    let west_arn = format!("arn:aws:kms:eu-west-1:{}:key/{id}", common::ACCOUNT);
    assert_eq!(replica["ReplicaKeyMetadata"]["Arn"], west_arn.as_str());
    assert_eq!(replica["ReplicaKeyMetadata"]["KeyState"], "Creating");
    let meta = settled_in(&server, "eu-west-1", &id);
    assert_eq!(meta["KeyState"], "Enabled");
    assert_eq!(
        meta["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "REPLICA"
    );

    let file = dir.path().join("order.bin");
    std::fs::write(&file, &blob).unwrap();
    let decrypted = aws(
        &server,
        &[
            "--region",
            "eu-west-1",
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", file.display()),
        ],
    );
    assert_eq!(decrypted["KeyId"], west_arn.as_str());
    let plain = base64::engine::general_purpose::STANDARD
        .decode(decrypted["Plaintext"].as_str().unwrap())
        .unwrap();
    assert_eq!(plain, b"order 42");

    let moved = aws(
        &server,
        &[
            "kms",
            "update-primary-region",
            "--key-id",
            &id,
            "--primary-region",
            "eu-west-1",
        ],
    );
    assert_eq!(moved, Value::Null);
    let west = settled_in(&server, "eu-west-1", &id);
    assert_eq!(
        west["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );
    let east = settled_in(&server, common::REGION, &id);
    assert_eq!(
        east["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "REPLICA"
    );
    assert_eq!(
        east["MultiRegionConfiguration"]["PrimaryKey"]["Region"],
        "eu-west-1"
    );

    // CloudTrail: ReplicateKey in the primary's Region, CreateKey in the replica's, one request.
    let record_of = |region: &str, name: &str| {
        let found = aws(
            &server,
            &[
                "--region",
                region,
                "cloudtrail",
                "lookup-events",
                "--lookup-attributes",
                &format!("AttributeKey=EventName,AttributeValue={name}"),
            ],
        );
        let event = found["Events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["Resources"].to_string().contains(&id))
            .unwrap_or_else(|| panic!("no {name} of {id} in {region}: {found}"))
            .clone();
        let record: Value =
            serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(record["awsRegion"], region);
        record
    };
    let replicated = record_of(common::REGION, "ReplicateKey");
    let created = record_of("eu-west-1", "CreateKey");
    assert_eq!(replicated["requestID"], created["requestID"]);
    assert_eq!(
        created["resources"].as_array().unwrap().len(),
        1,
        "{created}"
    );
    let synchronized = record_of("eu-west-1", "SynchronizeMultiRegionKey");
    assert_eq!(synchronized["eventType"], "AwsServiceEvent");
}

#[test]
fn aws_cli_multi_region_walkthrough_sqlite() {
    multi_region_walkthrough(StoreKind::Sqlite);
}

#[test]
fn aws_cli_multi_region_walkthrough_postgres() {
    multi_region_walkthrough(StoreKind::Postgres);
}

/// docs/external-key-store.md through the real AWS CLI: an external key store over AWS's XKS
/// proxy and SoftHSMv2, connected, a key in it, and a round trip through the HSM.
#[test]
fn aws_cli_external_key_store() {
    let proxy = common::xks::XksProxy::start(&["cli-key"]);
    let server = TestServer::start_with(StoreKind::Sqlite, &["--xks-allow-http"]);
    let dir = tempfile::tempdir().unwrap();
    // As JSON: AWS CLI v1 fetches any parameter value that starts with http:// or https://
    // (cli_follow_urlparam), which an endpoint given as an option would be.
    let create = |secret: &str| {
        let input = serde_json::json!({
            "CustomKeyStoreName": "cli",
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyConnectivity": "PUBLIC_ENDPOINT",
            "XksProxyUriEndpoint": proxy.uri_endpoint(),
            "XksProxyUriPath": "/kms/xks/v1",
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": common::xks::ACCESS_KEY_ID,
                "RawSecretAccessKey": secret,
            },
        });
        run(
            &server,
            &[
                "kms",
                "create-custom-key-store",
                "--cli-input-json",
                &input.to_string(),
            ],
        )
    };
    let wrong = create(&common::xks::SECRET.replace('x', "y"));
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("XksProxyIncorrectAuthenticationCredentialException"),
        "{stderr}"
    );
    let created = create(common::xks::SECRET);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let store = created["CustomKeyStoreId"].as_str().unwrap().to_string();
    aws(
        &server,
        &[
            "kms",
            "connect-custom-key-store",
            "--custom-key-store-id",
            &store,
        ],
    );
    let described = aws(
        &server,
        &[
            "kms",
            "describe-custom-key-stores",
            "--custom-key-store-id",
            &store,
        ],
    );
    assert_eq!(
        described["CustomKeyStores"][0]["ConnectionState"],
        "CONNECTED"
    );
    let key = aws(
        &server,
        &[
            "kms",
            "create-key",
            "--origin",
            "EXTERNAL_KEY_STORE",
            "--custom-key-store-id",
            &store,
            "--xks-key-id",
            "cli-key",
        ],
    );
    assert_eq!(key["KeyMetadata"]["XksKeyConfiguration"]["Id"], "cli-key");
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let blob = cli_encrypt(&server, dir.path(), &key_id, b"through the HSM");
    assert_eq!(blob[1], 0x04);
    let (plain, by) = cli_decrypt(&server, dir.path(), &blob);
    assert_eq!(plain, b"through the HSM");
    assert!(by.ends_with(&key_id));
}
