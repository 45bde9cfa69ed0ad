//! boto3 and the AWS Encryption SDK for Python, unchanged but for the endpoint, against a real
//! Trent process on both stores: `tests/python/sdk_interop.py` runs in a harness-made virtualenv
//! (pinned boto3 and aws-encryption-sdk from PyPI) and reports what it saw as JSON.

use crate::common;

use std::process::Command;

use common::{StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};

/// The packages the script runs with.
const PACKAGES: &[&str] = &["boto3==1.44.8", "aws-encryption-sdk==4.0.7"];

async fn boto3_and_the_encryption_sdk(store: StoreKind) {
    let python = common::venv::ensure("sdk-venv", PACKAGES).join("python");
    let server = TestServer::start(store);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_interop.py");
    let out = Command::new(python)
        .arg(script)
        .env("TRENT_ENDPOINT", server.endpoint())
        .env("AWS_ENDPOINT_URL_KMS", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the interop script failed:\n{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON from the script; stderr:\n{stderr}"));
    assert_eq!(seen["without_context"], "InvalidCiphertextException");
    assert_eq!(seen["without_context_status"], 400);
    assert_eq!(seen["unknown_alias"], "NotFoundException");
    assert_eq!(seen["paged_keys"], 3, "boto3's paginator walks every key");
    assert_eq!(seen["data_key_bytes"], 32);
    assert_eq!(
        seen["esdk_algorithm"],
        "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
    );
    let edks = seen["esdk_encrypted_data_keys"].as_array().unwrap();
    assert_eq!(edks.len(), 1);
    assert!(edks[0]
        .as_str()
        .unwrap()
        .starts_with(&format!("arn:aws:kms:{REGION}:")));
    assert_eq!(seen["esdk_stream_round_trip"], true);
    assert_eq!(seen["esdk_disabled_key"], "DecryptKeyError");
}

on_both_stores!(boto3_and_the_encryption_sdk);
