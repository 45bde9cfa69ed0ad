//! Errors exactly as AWS answers them (issue 13, part 1, first cases): one table of request,
//! expected `__type`, HTTP status and message, where "no message" means the body has no
//! `message` member at all, as AWS sends a failed Verify or VerifyMac.

use serde_json::{json, Value};

use crate::common;

use common::{raw_call, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};

const CREDS: Option<(&str, &str)> = Some((ACCESS_KEY, SECRET_KEY));

/// The message a case expects.
enum Message {
    /// No `message` member.
    Absent,
    /// Exactly this text (possibly empty).
    Exactly(&'static str),
}

struct Case {
    name: &'static str,
    target: &'static str,
    body: Value,
    expected: &'static str,
    status: u16,
    message: Message,
}

/// A signed call of `target` (for example `TrentService.Encrypt`) as the development user.
pub(crate) async fn call(server: &TestServer, target: &str, body: &Value) -> common::RawResponse {
    call_in(server, REGION, target, body).await
}

/// `call` in another Region.
pub(crate) async fn call_in(
    server: &TestServer,
    region: &str,
    target: &str,
    body: &Value,
) -> common::RawResponse {
    let text = body.to_string();
    raw_call(&server.endpoint(), target, text.as_bytes(), CREDS, region).await
}

/// CreateKey with `body`; the new key's id.
pub(crate) async fn key_id(server: &TestServer, body: Value) -> String {
    let created = call(server, "TrentService.CreateKey", &body).await;
    created.body["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("a key")
        .to_string()
}

async fn error_answers_match_aws(store: StoreKind) {
    let server = TestServer::start(store);
    let symmetric = key_id(&server, json!({})).await;
    let signing = key_id(
        &server,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await;
    let hmac = key_id(
        &server,
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await;
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let cases = [
        Case {
            name: "Verify with a wrong signature",
            target: "TrentService.Verify",
            body: json!({"KeyId": signing, "Message": b64(b"m"), "Signature": b64(&[48, 6, 2, 1, 1, 2, 1, 1]),
                         "SigningAlgorithm": "ECDSA_SHA_256"}),
            expected: "KMSInvalidSignatureException",
            status: 400,
            message: Message::Absent,
        },
        Case {
            name: "VerifyMac with a wrong MAC",
            target: "TrentService.VerifyMac",
            body: json!({"KeyId": hmac, "Message": b64(b"m"), "Mac": b64(&[0; 32]),
                         "MacAlgorithm": "HMAC_SHA_256"}),
            expected: "KMSInvalidMacException",
            status: 400,
            message: Message::Absent,
        },
        Case {
            name: "Decrypt of bytes that are no ciphertext",
            target: "TrentService.Decrypt",
            body: json!({"CiphertextBlob": b64(&[1; 80])}),
            expected: "InvalidCiphertextException",
            status: 400,
            message: Message::Absent,
        },
        Case {
            name: "DryRun that would succeed",
            target: "TrentService.Encrypt",
            body: json!({"KeyId": symmetric, "Plaintext": b64(b"x"), "DryRun": true}),
            expected: "DryRunOperationException",
            status: 400,
            message: Message::Exactly(
                "The request would have succeeded, but the DryRun option is set.",
            ),
        },
        Case {
            name: "reserved tag key in another case",
            target: "TrentService.TagResource",
            body: json!({"KeyId": symmetric, "Tags": [{"TagKey": "AWS:key1", "TagValue": "v"}]}),
            expected: "TagException",
            status: 400,
            message: Message::Exactly("Tag keys beginning with 'aws:' are reserved: 'AWS:key1'."),
        },
        Case {
            name: "duplicate tag keys",
            target: "TrentService.TagResource",
            body: json!({"KeyId": symmetric, "Tags": [
                {"TagKey": "team", "TagValue": "a"}, {"TagKey": "team", "TagValue": "b"}]}),
            expected: "TagException",
            status: 400,
            message: Message::Exactly("Duplicate tag keys"),
        },
        Case {
            name: "alias name without the prefix",
            target: "TrentService.CreateAlias",
            body: json!({"AliasName": "noprefix", "TargetKeyId": symmetric}),
            expected: "ValidationException",
            status: 400,
            message: Message::Exactly(
                "Alias must start with the prefix \"alias/\". Please see \
                 https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
            ),
        },
    ];
    for case in &cases {
        let resp = call(&server, case.target, &case.body).await;
        assert_eq!(
            (resp.error_type(), resp.status),
            (case.expected, case.status),
            "{}: {}",
            case.name,
            resp.body
        );
        match case.message {
            Message::Absent => assert!(
                resp.body.get("message").is_none(),
                "{}: AWS sends no message, got {}",
                case.name,
                resp.body
            ),
            Message::Exactly(text) => {
                assert_eq!(resp.body["message"], text, "{}", case.name)
            }
        }
    }
    // The key state is checked before the key spec: a disabled RSA key cannot be rotated
    // because it is disabled.
    let rsa = key_id(
        &server,
        json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let arn = format!("arn:aws:kms:{REGION}:{}:key/{rsa}", common::ACCOUNT);
    call(&server, "TrentService.DisableKey", &json!({"KeyId": rsa})).await;
    let resp = call(
        &server,
        "TrentService.RotateKeyOnDemand",
        &json!({"KeyId": rsa}),
    )
    .await;
    assert_eq!(
        (resp.error_type(), resp.body["message"].as_str()),
        (
            "DisabledException",
            Some(format!("{arn} is disabled.").as_str())
        ),
        "{}",
        resp.body
    );
    // CurrentKeyMaterialId is in the metadata of symmetric encryption keys only.
    for (key, expected) in [
        (&symmetric, true),
        (&signing, false),
        (&hmac, false),
        (&rsa, false),
    ] {
        let meta = call(&server, "TrentService.DescribeKey", &json!({"KeyId": key})).await;
        assert_eq!(
            meta.body["KeyMetadata"]
                .get("CurrentKeyMaterialId")
                .is_some(),
            expected,
            "{}",
            meta.body
        );
    }
    // ImportKeyMaterial's ExpirationModel defaults to KEY_MATERIAL_EXPIRES, which needs ValidTo.
    let external = key_id(&server, json!({"Origin": "EXTERNAL"})).await;
    let resp = call(
        &server,
        "TrentService.ImportKeyMaterial",
        &json!({"KeyId": external, "ImportToken": b64(&[7; 64]),
                "EncryptedKeyMaterial": b64(&[7; 256])}),
    )
    .await;
    assert_eq!(
        (resp.error_type(), resp.body["message"].as_str()),
        (
            "ValidationException",
            Some("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
        ),
        "{}",
        resp.body
    );
    // A tag key that only contains "aws:" further on is an ordinary tag.
    let ok = call(
        &server,
        "TrentService.TagResource",
        &json!({"KeyId": symmetric, "Tags": [{"TagKey": "x-aws:y", "TagValue": "v"}]}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

/// `DryRunModifiers: ["IGNORE_CIPHERTEXT"]` on Decrypt and ReEncrypt: with DryRun, only the named
/// key, its state and usage and the caller's permission (with the request's encryption context)
/// are checked, never the ciphertext; without DryRun the modifier changes nothing.
async fn dry_runs_that_ignore_the_ciphertext_check_key_and_permission_only(store: StoreKind) {
    let server = TestServer::start(store);
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Owner", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{}:root", common::ACCOUNT)},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "NotForBlocked", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": ["kms:Decrypt", "kms:ReEncryptFrom"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:app": "blocked"}}}]})
    .to_string();
    let key = key_id(&server, json!({"Policy": policy})).await;
    let other = key_id(&server, json!({})).await;
    let disabled = key_id(&server, json!({})).await;
    call(
        &server,
        "TrentService.DisableKey",
        &json!({"KeyId": disabled}),
    )
    .await;
    let signing = key_id(
        &server,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await;
    let garbage = "bm90IGEgY2lwaGVydGV4dA=="; // "not a ciphertext"
    let ignore = json!(["IGNORE_CIPHERTEXT"]);
    let cases = [
        (
            "Decrypt: the permission holds, the ciphertext is not read",
            "TrentService.Decrypt",
            json!({"KeyId": key, "CiphertextBlob": garbage, "DryRun": true,
                   "DryRunModifiers": ignore, "EncryptionContext": {"app": "web"}}),
            "DryRunOperationException",
        ),
        (
            "Decrypt: a dry run without the modifier reads the ciphertext",
            "TrentService.Decrypt",
            json!({"KeyId": key, "CiphertextBlob": garbage, "DryRun": true}),
            "InvalidCiphertextException",
        ),
        (
            "Decrypt: the modifier without DryRun changes nothing",
            "TrentService.Decrypt",
            json!({"KeyId": key, "CiphertextBlob": garbage, "DryRunModifiers": ignore}),
            "InvalidCiphertextException",
        ),
        (
            "Decrypt: the policy's condition on the context still decides",
            "TrentService.Decrypt",
            json!({"KeyId": key, "CiphertextBlob": garbage, "DryRun": true,
                   "DryRunModifiers": ignore, "EncryptionContext": {"app": "blocked"}}),
            "AccessDeniedException",
        ),
        (
            "Decrypt: without the ciphertext the key must be named",
            "TrentService.Decrypt",
            json!({"CiphertextBlob": garbage, "DryRun": true, "DryRunModifiers": ignore}),
            "ValidationException",
        ),
        (
            "Decrypt: the key's state is checked",
            "TrentService.Decrypt",
            json!({"KeyId": disabled, "CiphertextBlob": garbage, "DryRun": true,
                   "DryRunModifiers": ignore}),
            "DisabledException",
        ),
        (
            "Decrypt: the key's usage is checked",
            "TrentService.Decrypt",
            json!({"KeyId": signing, "CiphertextBlob": garbage, "DryRun": true,
                   "DryRunModifiers": ignore}),
            "InvalidKeyUsageException",
        ),
        (
            "ReEncrypt: both permissions hold",
            "TrentService.ReEncrypt",
            json!({"SourceKeyId": key, "DestinationKeyId": other, "CiphertextBlob": garbage,
                   "DryRun": true, "DryRunModifiers": ignore}),
            "DryRunOperationException",
        ),
        (
            "ReEncrypt: the source side's condition decides",
            "TrentService.ReEncrypt",
            json!({"SourceKeyId": key, "DestinationKeyId": other, "CiphertextBlob": garbage,
                   "SourceEncryptionContext": {"app": "blocked"},
                   "DryRun": true, "DryRunModifiers": ignore}),
            "AccessDeniedException",
        ),
        (
            "ReEncrypt: the destination's state is checked",
            "TrentService.ReEncrypt",
            json!({"SourceKeyId": key, "DestinationKeyId": disabled, "CiphertextBlob": garbage,
                   "DryRun": true, "DryRunModifiers": ignore}),
            "DisabledException",
        ),
        (
            "ReEncrypt: without the ciphertext the source key must be named",
            "TrentService.ReEncrypt",
            json!({"DestinationKeyId": other, "CiphertextBlob": garbage,
                   "DryRun": true, "DryRunModifiers": ignore}),
            "ValidationException",
        ),
        (
            "an unknown modifier is refused by the model",
            "TrentService.Decrypt",
            json!({"KeyId": key, "CiphertextBlob": garbage, "DryRun": true,
                   "DryRunModifiers": ["IGNORE_EVERYTHING"]}),
            "ValidationException",
        ),
    ];
    for (name, target, body, expected) in cases {
        let resp = call(&server, target, &body).await;
        assert_eq!(resp.error_type(), expected, "{name}: {}", resp.body);
        assert_eq!(resp.status, 400, "{name}: {}", resp.body);
    }
}

/// ListKeys' `ResourceOwners`: SELF (the default) lists the caller's keys; keys shared by other
/// accounts through AWS RAM do not exist here, so OTHER_ACCOUNTS_VIA_RAM alone lists none; an
/// unknown owner is refused by the model.
async fn list_keys_by_resource_owner(store: StoreKind) {
    let server = TestServer::start(store);
    let key = key_id(&server, json!({})).await;
    let ids = |v: &Value| -> Vec<String> {
        v["Keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| k["KeyId"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (body, expected) in [
        (json!({}), vec![key.clone()]),
        (json!({"ResourceOwners": ["SELF"]}), vec![key.clone()]),
        (
            json!({"ResourceOwners": ["SELF", "OTHER_ACCOUNTS_VIA_RAM"]}),
            vec![key.clone()],
        ),
        (
            json!({"ResourceOwners": ["OTHER_ACCOUNTS_VIA_RAM"]}),
            vec![],
        ),
    ] {
        let resp = call(&server, "TrentService.ListKeys", &body).await;
        assert_eq!(resp.status, 200, "{body}: {}", resp.body);
        assert_eq!(ids(&resp.body), expected, "{body}");
    }
    let bad = call(
        &server,
        "TrentService.ListKeys",
        &json!({"ResourceOwners": ["EVERYONE"]}),
    )
    .await;
    assert_eq!(bad.error_type(), "ValidationException", "{}", bad.body);
}

/// AWS's answers as recorded against real AWS (LocalStack's snapshot tests; the table is in
/// docs/dev/aws-recorded-errors.md): `__type`, status 400 and the message, with the key ARN where
/// AWS names it.
async fn recorded_aws_error_answers(store: StoreKind) {
    let server = TestServer::start(store);
    let arn = |id: &str| format!("arn:aws:kms:{REGION}:{}:key/{id}", common::ACCOUNT);
    let sym = key_id(&server, json!({})).await;
    let hmac224 = key_id(
        &server,
        json!({"KeySpec": "HMAC_224", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await;
    let hmac256 = key_id(
        &server,
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await;
    let rsa_enc = key_id(
        &server,
        json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let rsa_sign = key_id(
        &server,
        json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await;
    let ecc = key_id(
        &server,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await;
    let external = key_id(&server, json!({"Origin": "EXTERNAL"})).await;
    let spec = |spec: &str, usage: &str| json!({"KeySpec": spec, "KeyUsage": usage});
    let rsa3072 = key_id(&server, spec("RSA_3072", "ENCRYPT_DECRYPT")).await;
    let rsa4096 = key_id(&server, spec("RSA_4096", "ENCRYPT_DECRYPT")).await;
    let rsa4096_sign = key_id(&server, spec("RSA_4096", "SIGN_VERIFY")).await;
    let k1 = key_id(&server, spec("ECC_SECG_P256K1", "SIGN_VERIFY")).await;
    let p384 = key_id(&server, spec("ECC_NIST_P384", "SIGN_VERIFY")).await;
    let elsewhere = call_in(
        &server,
        "ap-southeast-1",
        "TrentService.CreateKey",
        &json!({}),
    )
    .await;
    let elsewhere = elsewhere.body["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let mrk = key_id(&server, json!({"MultiRegion": true})).await;
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let enc = call(
        &server,
        "TrentService.Encrypt",
        &json!({"KeyId": sym, "Plaintext": b64(b"x")}),
    )
    .await;
    let blob = enc.body["CiphertextBlob"].clone();
    let context = json!({"context-key": "context-value"});
    let with_context = |call_body: Value| {
        let mut b = call_body;
        b["EncryptionContext"] = context.clone();
        b
    };
    let enc = call(
        &server,
        "TrentService.Encrypt",
        &with_context(json!({"KeyId": sym, "Plaintext": b64(b"x")})),
    )
    .await;
    let blob_with_context = enc.body["CiphertextBlob"].clone();
    let gdk = call(
        &server,
        "TrentService.GenerateDataKey",
        &with_context(json!({"KeyId": sym, "KeySpec": "AES_256"})),
    )
    .await;
    let gdk_wo = call(
        &server,
        "TrentService.GenerateDataKeyWithoutPlaintext",
        &with_context(json!({"KeyId": sym, "KeySpec": "AES_256"})),
    )
    .await;
    let pair = call(
        &server,
        "TrentService.GenerateDataKeyPair",
        &with_context(json!({"KeyId": sym, "KeyPairSpec": "RSA_2048"})),
    )
    .await;
    let pair_wo = call(
        &server,
        "TrentService.GenerateDataKeyPairWithoutPlaintext",
        &with_context(json!({"KeyId": sym, "KeyPairSpec": "RSA_2048"})),
    )
    .await;
    let signed = call(
        &server,
        "TrentService.Sign",
        &json!({"KeyId": ecc, "Message": b64(b"bad"), "SigningAlgorithm": "ECDSA_SHA_256"}),
    )
    .await;
    let mac = call(&server, "TrentService.GenerateMac", &json!({"KeyId": hmac256, "Message": b64(b"some different important message"), "MacAlgorithm": "HMAC_SHA_256"})).await;
    let missing = "134f2428-cec1-4b25-a1ae-9048164dba47";
    let cases: Vec<(&str, Value, &str, String)> = vec![
        ("GenerateRandom", json!({}), "ValidationException", "NumberOfBytes is required.".into()),
        ("GenerateRandom", json!({"NumberOfBytes": 0}), "ValidationException", "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1".into()),
        ("GenerateRandom", json!({"NumberOfBytes": 1025}), "ValidationException", "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024".into()),
        ("Encrypt", json!({"KeyId": rsa_enc, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.".into()),
        ("Encrypt", json!({"KeyId": rsa_enc, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.".into()),
        ("Encrypt", json!({"KeyId": sym, "Plaintext": b64(&[1; 4200])}), "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096".into()),
        ("DescribeKey", json!({"KeyId": missing}), "NotFoundException", format!("Key '{}' does not exist", arn(missing))),
        ("DescribeKey", json!({"KeyId": arn(missing)}), "NotFoundException", format!("Key '{}' does not exist", arn(missing))),
        ("DescribeKey", json!({"KeyId": "fake-key-id"}), "NotFoundException", "Invalid keyId 'fake-key-id'".into()),
        ("DescribeKey", json!({"KeyId": "134f2428cec14b25a1ae9048164dba47"}), "NotFoundException", "Invalid keyId '134f2428cec14b25a1ae9048164dba47'".into()),
        ("DescribeKey", json!({"KeyId": "mrk-fake-key-id"}), "NotFoundException", "Invalid keyId 'mrk-fake-key-id'".into()),
        ("DescribeKey", json!({"KeyId": "mrk-d3b95762d3b95762d3b95762d3b95762"}), "NotFoundException", format!("Key '{}' does not exist", arn("mrk-d3b95762d3b95762d3b95762d3b95762"))),
        ("DescribeKey", json!({"KeyId": format!("arn:aws:kms:ap-southeast-1:{}:key/{sym}", common::ACCOUNT)}), "NotFoundException", "Invalid arn ap-southeast-1".into()),
        ("CreateKey", json!({"KeySpec": "HMAC_256"}), "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into()),
        ("Sign", json!({"KeyId": rsa_sign, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}), "ValidationException", "Digest is invalid length for algorithm RSASSA_PSS_SHA_256.".into()),
        ("Sign", json!({"KeyId": ecc, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}), "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.".into()),
        ("GenerateMac", json!({"KeyId": "key_id", "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"}), "NotFoundException", "Invalid keyId 'key_id'".into()),
        ("GenerateMac", json!({"KeyId": hmac224, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"}), "InvalidKeyUsageException", "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.".into()),
        ("VerifyMac", json!({"KeyId": hmac256, "Message": b64(b"m"), "Mac": b64(&[0; 32]), "MacAlgorithm": "HMAC_SHA_512"}), "InvalidKeyUsageException", "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.".into()),
        ("GenerateMac", json!({"KeyId": sym, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_224"}), "InvalidKeyUsageException", format!("{} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.", arn(&sym))),
        ("Sign", json!({"KeyId": hmac224, "Message": b64(b"m"), "SigningAlgorithm": "RSASSA_PSS_SHA_256"}), "InvalidKeyUsageException", format!("{} key usage is GENERATE_VERIFY_MAC which is not valid for Sign.", arn(&hmac224))),
        ("Verify", json!({"KeyId": sym, "Message": b64(b"m"), "Signature": b64(&[1; 64]), "SigningAlgorithm": "ECDSA_SHA_256"}), "InvalidKeyUsageException", format!("{} key usage is ENCRYPT_DECRYPT which is not valid for Verify.", arn(&sym))),
        ("Encrypt", json!({"KeyId": rsa_sign, "Plaintext": b64(b"m")}), "InvalidKeyUsageException", format!("{} key usage is SIGN_VERIFY which is not valid for Encrypt.", arn(&rsa_sign))),
        ("Decrypt", json!({"KeyId": hmac224, "CiphertextBlob": blob}), "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.".into()),
        ("Encrypt", json!({"KeyId": external, "Plaintext": b64(b"m")}), "KMSInvalidStateException", format!("{} is pending import.", arn(&external))),
        ("GetParametersForImport", json!({"KeyId": sym, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_4096"}), "UnsupportedOperationException", format!("{} origin is AWS_KMS which is not valid for this operation.", arn(&sym))),
        // The other RSA sizes' plaintext limits.
        ("Encrypt", json!({"KeyId": rsa3072, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_3072 cannot encrypt data larger than 342 bytes.".into()),
        ("Encrypt", json!({"KeyId": rsa3072, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_3072 cannot encrypt data larger than 318 bytes.".into()),
        ("Encrypt", json!({"KeyId": rsa4096, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_4096 cannot encrypt data larger than 470 bytes.".into()),
        ("Encrypt", json!({"KeyId": rsa4096, "Plaintext": b64(&[1; 880]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}), "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_4096 cannot encrypt data larger than 446 bytes.".into()),
        // The other digest lengths.
        ("Sign", json!({"KeyId": rsa_sign, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "RSASSA_PSS_SHA_384"}), "ValidationException", "Digest is invalid length for algorithm RSASSA_PSS_SHA_384.".into()),
        ("Sign", json!({"KeyId": rsa_sign, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "RSASSA_PSS_SHA_512"}), "ValidationException", "Digest is invalid length for algorithm RSASSA_PSS_SHA_512.".into()),
        ("Sign", json!({"KeyId": rsa4096_sign, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}), "ValidationException", "Digest is invalid length for algorithm RSASSA_PKCS1_V1_5_SHA_256.".into()),
        ("Sign", json!({"KeyId": rsa4096_sign, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_512"}), "ValidationException", "Digest is invalid length for algorithm RSASSA_PKCS1_V1_5_SHA_512.".into()),
        ("Sign", json!({"KeyId": k1, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}), "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.".into()),
        ("Sign", json!({"KeyId": p384, "Message": b64(&[1; 28]), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_384"}), "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_384.".into()),
        // Signatures and MACs that do not verify: no message.
        ("Verify", json!({"KeyId": ecc, "Message": b64(b"the real message"), "Signature": signed.body["Signature"], "SigningAlgorithm": "ECDSA_SHA_256"}), "KMSInvalidSignatureException", "(none)".into()),
        ("VerifyMac", json!({"KeyId": hmac256, "Message": b64(b"some important message"), "Mac": mac.body["Mac"], "MacAlgorithm": "HMAC_SHA_256"}), "KMSInvalidMacException", "(none)".into()),
        ("VerifyMac", json!({"KeyId": "key_id", "Message": b64(b"m"), "Mac": b64(&[0; 32]), "MacAlgorithm": "HMAC_SHA_256"}), "NotFoundException", "Invalid keyId 'key_id'".into()),
        // An unknown MAC algorithm, listed in AWS's order.
        ("GenerateMac", json!({"KeyId": hmac256, "Message": b64(b"m"), "MacAlgorithm": "INVALID"}), "ValidationException", "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]".into()),
        ("VerifyMac", json!({"KeyId": hmac256, "Message": b64(b"m"), "Mac": b64(&[0; 32]), "MacAlgorithm": "INVALID"}), "ValidationException", "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]".into()),
        // A key of another Region named by its bare id; a multi-Region key before replication.
        ("DescribeKey", json!({"KeyId": elsewhere}), "NotFoundException", format!("Key '{}' does not exist", arn(&elsewhere))),
        // Ciphertexts made with an encryption context, decrypted without it: no message.
        ("Decrypt", json!({"CiphertextBlob": blob_with_context}), "InvalidCiphertextException", "(none)".into()),
        ("Decrypt", json!({"CiphertextBlob": gdk.body["CiphertextBlob"]}), "InvalidCiphertextException", "(none)".into()),
        ("Decrypt", json!({"CiphertextBlob": gdk_wo.body["CiphertextBlob"]}), "InvalidCiphertextException", "(none)".into()),
        ("Decrypt", json!({"CiphertextBlob": pair.body["PrivateKeyCiphertextBlob"]}), "InvalidCiphertextException", "(none)".into()),
        ("Decrypt", json!({"CiphertextBlob": pair_wo.body["PrivateKeyCiphertextBlob"]}), "InvalidCiphertextException", "(none)".into()),
    ];
    let mut wrong = Vec::new();
    for (op, body, expected, message) in cases {
        let resp = call(&server, &format!("TrentService.{op}"), &body).await;
        let got = (
            resp.error_type().to_string(),
            resp.status,
            resp.body["message"]
                .as_str()
                .unwrap_or("(none)")
                .to_string(),
        );
        if got != (expected.to_string(), 400, message.clone()) {
            wrong.push(format!(
                "{op} {body}:\n  AWS:   {expected} 400 {message}\n  Trent: {} {} {}",
                got.0, got.1, got.2
            ));
        }
    }
    // A multi-Region primary's id in a Region it has no replica in.
    let resp = call_in(
        &server,
        "ap-southeast-1",
        "TrentService.DescribeKey",
        &json!({"KeyId": mrk}),
    )
    .await;
    let expected = format!(
        "Key 'arn:aws:kms:ap-southeast-1:{}:key/{mrk}' does not exist",
        common::ACCOUNT
    );
    if (resp.error_type(), resp.body["message"].as_str())
        != ("NotFoundException", Some(expected.as_str()))
    {
        wrong.push(format!(
            "DescribeKey {mrk} in ap-southeast-1: {} {}",
            resp.error_type(),
            resp.body
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

on_both_stores!(
    error_answers_match_aws,
    dry_runs_that_ignore_the_ciphertext_check_key_and_permission_only,
    list_keys_by_resource_owner,
    recorded_aws_error_answers,
);
