//! Negative cases at the protocol edge: each gets AWS's exact error type and an audit record.

use crate::common;

use base64::Engine;
use common::{raw_call, raw_call_at, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::json;

const CREDS: Option<(&str, &str)> = Some((ACCESS_KEY, SECRET_KEY));

async fn call(server: &TestServer, target: &str, body: serde_json::Value) -> common::RawResponse {
    raw_call(
        &server.endpoint(),
        target,
        body.to_string().as_bytes(),
        CREDS,
        REGION,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_request_gets_the_aws_error_type() {
    let server = TestServer::start(StoreKind::Sqlite);
    let endpoint = server.endpoint();
    let created = call(&server, "TrentService.CreateKey", json!({})).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let key_id = created.body["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    let enc = call(
        &server,
        "TrentService.Encrypt",
        json!({"KeyId": key_id, "Plaintext": b64(b"secret-plaintext-marker"), "EncryptionContext": {"a": "1"}}),
    )
    .await;
    assert_eq!(enc.status, 200);
    let blob = enc.body["CiphertextBlob"].as_str().unwrap().to_string();
    let mut tampered = base64::engine::general_purpose::STANDARD
        .decode(&blob)
        .unwrap();
    tampered[30] ^= 0x80;

    struct Case {
        name: &'static str,
        target: &'static str,
        body: Vec<u8>,
        creds: Option<(&'static str, &'static str)>,
        expected: &'static str,
    }
    let j = |v: serde_json::Value| v.to_string().into_bytes();
    let cases = vec![
        Case {
            name: "no signature",
            target: "TrentService.ListKeys",
            body: j(json!({})),
            creds: None,
            expected: "MissingAuthenticationTokenException",
        },
        Case {
            name: "wrong secret",
            target: "TrentService.ListKeys",
            body: j(json!({})),
            creds: Some((ACCESS_KEY, "not-the-secret-at-all-000000")),
            expected: "InvalidSignatureException",
        },
        Case {
            name: "unknown access key",
            target: "TrentService.ListKeys",
            body: j(json!({})),
            creds: Some(("AKIANOBODY0000000000", SECRET_KEY)),
            expected: "UnrecognizedClientException",
        },
        Case {
            name: "unknown key",
            target: "TrentService.DescribeKey",
            body: j(json!({"KeyId": "00000000-0000-4000-8000-000000000000"})),
            creds: CREDS,
            expected: "NotFoundException",
        },
        Case {
            name: "malformed JSON",
            target: "TrentService.ListKeys",
            body: b"{not json".to_vec(),
            creds: CREDS,
            expected: "SerializationException",
        },
        Case {
            name: "wrong JSON type",
            target: "TrentService.GenerateRandom",
            body: j(json!({"NumberOfBytes": "ten"})),
            creds: CREDS,
            expected: "SerializationException",
        },
        Case {
            name: "unknown target",
            target: "TrentService.MakeCoffee",
            body: j(json!({})),
            creds: CREDS,
            expected: "UnknownOperationException",
        },
        Case {
            name: "oversize plaintext",
            target: "TrentService.Encrypt",
            body: j(json!({"KeyId": key_id, "Plaintext": b64(&[0u8; 4097])})),
            creds: CREDS,
            expected: "ValidationException",
        },
        Case {
            name: "bad enum value",
            target: "TrentService.CreateKey",
            body: j(json!({"KeySpec": "AES_999"})),
            creds: CREDS,
            expected: "ValidationException",
        },
        Case {
            name: "missing required member",
            target: "TrentService.Encrypt",
            body: j(json!({"KeyId": key_id})),
            creds: CREDS,
            expected: "ValidationException",
        },
        Case {
            name: "tampered ciphertext",
            target: "TrentService.Decrypt",
            body: j(json!({"CiphertextBlob": b64(&tampered), "EncryptionContext": {"a": "1"}})),
            creds: CREDS,
            expected: "InvalidCiphertextException",
        },
        Case {
            name: "wrong encryption context",
            target: "TrentService.Decrypt",
            body: j(json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "2"}})),
            creds: CREDS,
            expected: "InvalidCiphertextException",
        },
        Case {
            name: "garbage ciphertext",
            target: "TrentService.Decrypt",
            body: j(json!({"CiphertextBlob": b64(b"short")})),
            creds: CREDS,
            expected: "InvalidCiphertextException",
        },
        Case {
            name: "unimplemented operation",
            target: "TrentService.GetParametersForImport",
            body: j(
                json!({"KeyId": key_id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
            ),
            creds: CREDS,
            expected: "UnsupportedOperationException",
        },
        Case {
            name: "alias not found",
            target: "TrentService.DescribeKey",
            body: j(json!({"KeyId": "alias/nope"})),
            creds: CREDS,
            expected: "NotFoundException",
        },
        Case {
            name: "dry run",
            target: "TrentService.Encrypt",
            body: j(json!({"KeyId": key_id, "Plaintext": b64(b"x"), "DryRun": true})),
            creds: CREDS,
            expected: "DryRunOperationException",
        },
    ];
    let mut request_ids = Vec::new();
    for case in &cases {
        let resp = raw_call(&endpoint, case.target, &case.body, case.creds, REGION).await;
        assert_eq!(
            resp.error_type(),
            case.expected,
            "{}: {:?}",
            case.name,
            resp.body
        );
        assert_eq!(resp.status, 400, "{}", case.name);
        // AWS answers a ciphertext that does not open without a message member; every other
        // error here carries one.
        if case.expected == "InvalidCiphertextException" {
            assert!(
                resp.body.get("message").is_none(),
                "{}: {:?}",
                case.name,
                resp.body
            );
        } else {
            assert!(
                resp.body["message"].is_string(),
                "{}: no message",
                case.name
            );
        }
        request_ids.push((
            case.name,
            case.expected,
            resp.request_id.expect("x-amzn-RequestId"),
        ));
    }

    // Every call, failed or not, has exactly one audit record with its request id, and no record
    // holds the plaintext.
    let records = common::sqlite_audit_records(&server.data_dir);
    for (name, expected, rid) in &request_ids {
        let matching: Vec<_> = records.iter().filter(|r| r["requestID"] == *rid).collect();
        assert_eq!(matching.len(), 1, "{name}: records with its request id");
        assert_eq!(matching[0]["errorCode"], *expected, "{name}");
        assert_eq!(matching[0]["eventSource"], "kms.amazonaws.com");
        assert_eq!(matching[0]["eventVersion"], "1.08");
    }
    let all_text: String = records.iter().map(|r| r.to_string()).collect();
    assert!(!all_text.contains(&b64(b"secret-plaintext-marker")));
    assert!(!all_text.contains("secret-plaintext-marker"));
    assert_eq!(records.len(), 2 + cases.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_outside_the_clock_skew_window_are_refused() {
    let server = TestServer::start(StoreKind::Sqlite);
    let endpoint = server.endpoint();
    let now = std::time::SystemTime::now();
    let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
    for (when, ok) in [
        (now - minutes(4), true),
        (now + minutes(4), true),
        (now - minutes(6), false),
        (now + minutes(6), false),
    ] {
        let resp = raw_call_at(
            &endpoint,
            "TrentService.ListKeys",
            b"{}",
            CREDS,
            REGION,
            when,
        )
        .await;
        if ok {
            assert_eq!(resp.status, 200, "{:?}", resp.body);
        } else {
            assert_eq!(
                resp.error_type(),
                "InvalidSignatureException",
                "{:?}",
                resp.body
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_configured_regions_are_served() {
    let server = TestServer::start_with(StoreKind::Sqlite, &["--regions", "eu-west-1"]);
    let endpoint = server.endpoint();
    let ok = raw_call(
        &endpoint,
        "TrentService.ListKeys",
        b"{}",
        CREDS,
        "eu-west-1",
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let refused = raw_call(
        &endpoint,
        "TrentService.ListKeys",
        b"{}",
        CREDS,
        "us-east-1",
    )
    .await;
    assert_eq!(
        refused.error_type(),
        "InvalidSignatureException",
        "{:?}",
        refused.body
    );
}

#[test]
fn development_identity_is_refused_off_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::trent_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("development identity"));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_quota_are_throttled_audited_and_counted() {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &["--quota-cryptographic", "3", "--admin-listen", &admin],
    );
    let created = call(&server, "TrentService.CreateKey", json!({})).await;
    let key_id = created.body["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut throttled = 0;
    for _ in 0..10 {
        let r = call(
            &server,
            "TrentService.Encrypt",
            json!({"KeyId": key_id, "Plaintext": "eA=="}),
        )
        .await;
        if r.status != 200 {
            assert_eq!(r.error_type(), "ThrottlingException", "{:?}", r.body);
            assert_eq!(r.status, 400);
            throttled += 1;
        }
    }
    assert!(
        throttled >= 5,
        "only {throttled} of 10 were throttled with a quota of 3/s"
    );
    // Management operations have their own quota.
    assert_eq!(
        call(
            &server,
            "TrentService.DescribeKey",
            json!({"KeyId": key_id})
        )
        .await
        .status,
        200
    );
    let records = common::sqlite_audit_records(&server.data_dir);
    let audited = records
        .iter()
        .filter(|r| r["errorCode"] == "ThrottlingException")
        .count();
    assert_eq!(audited, throttled);
    let metrics = common::http()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "trent_throttled_requests_total{{class=\"cryptographic\"}} {throttled}"
        )),
        "{metrics}"
    );
}
