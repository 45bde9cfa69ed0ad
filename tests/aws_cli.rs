//! The real AWS CLI (from PyPI) against a real server through --endpoint-url, on both stores.

mod common;

use std::process::Command;

use base64::Engine;
use common::{awscli, StoreKind, TestServer};
use serde_json::Value;

fn aws(server: &TestServer, args: &[&str]) -> Value {
    let out = Command::new(awscli::aws())
        .args(args)
        .args(["--endpoint-url", &server.endpoint(), "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
        .env("AWS_DEFAULT_REGION", common::REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("aws runs");
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
