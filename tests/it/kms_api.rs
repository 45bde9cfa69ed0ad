//! The KMS API through aws-sdk-kms against a real server, on both stores.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState, Tag};
use common::{code, StoreKind, TestServer};

async fn create_key(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string()
}

async fn create_describe_and_list(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let created = client
        .create_key()
        .description("payments")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("pay")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create");
    let meta = created.key_metadata().unwrap();
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.description(), Some("payments"));
    assert_eq!(meta.aws_account_id(), Some(common::ACCOUNT));
    let arn = meta.arn().unwrap().to_string();
    assert_eq!(
        arn,
        format!(
            "arn:aws:kms:us-east-1:{}:key/{}",
            common::ACCOUNT,
            meta.key_id()
        )
    );
    for id in [meta.key_id().to_string(), arn.clone()] {
        let d = client
            .describe_key()
            .key_id(&id)
            .send()
            .await
            .expect("describe");
        assert_eq!(d.key_metadata().unwrap().arn(), Some(arn.as_str()));
    }
    for _ in 0..4 {
        create_key(&client).await;
    }
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list");
        assert!(page.keys().len() <= 2);
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_string);
        assert!(marker.is_some(), "truncated page without a marker");
    }
    assert_eq!(seen.len(), 5);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 5, "pagination repeated a key");

    // Keys are per region: the same account in another region sees none of them.
    let eu = server.client_as(common::ACCESS_KEY, common::SECRET_KEY, "eu-west-1");
    let listed = eu.list_keys().send().await.expect("list eu");
    assert!(listed.keys().is_empty());
    let err = eu
        .describe_key()
        .key_id(meta.key_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

async fn encrypt_decrypt_and_context(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = create_key(&client).await;
    let other = create_key(&client).await;
    let enc = client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"attack at dawn".to_vec()))
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("encrypt");
    assert!(enc.key_id().unwrap().ends_with(&key));
    let blob = enc.ciphertext_blob().unwrap().clone();

    // Decrypt without KeyId: the ciphertext names its key.
    let dec = client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("decrypt");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert!(dec.key_id().unwrap().ends_with(&key));

    let wrong_context = client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong_context), "InvalidCiphertextException");
    let no_context = client
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_context), "InvalidCiphertextException");

    let mut tampered = blob.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = client
        .decrypt()
        .ciphertext_blob(Blob::new(tampered))
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");

    let err = client
        .decrypt()
        .key_id(&other)
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "IncorrectKeyException");

    // ReEncrypt moves the ciphertext to another key and context without exposing the plaintext.
    let re = client
        .re_encrypt()
        .ciphertext_blob(blob)
        .source_encryption_context("purpose", "test")
        .destination_key_id(&other)
        .destination_encryption_context("purpose", "moved")
        .send()
        .await
        .expect("re-encrypt");
    assert!(re.source_key_id().unwrap().ends_with(&key));
    assert!(re.key_id().unwrap().ends_with(&other));
    let dec = client
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
        .encryption_context("purpose", "moved")
        .send()
        .await
        .expect("decrypt re-encrypted");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert!(dec.key_id().unwrap().ends_with(&other));

    // 4096 bytes is the limit.
    client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(vec![7u8; 4096]))
        .send()
        .await
        .expect("4096 bytes encrypt");
    let err = client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(vec![7u8; 4097]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
}

async fn data_keys_and_random(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = create_key(&client).await;
    let dk = client
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("k", "v")
        .send()
        .await
        .expect("data key");
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let dec = client
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .expect("decrypt data key");
    assert_eq!(dec.plaintext().unwrap().as_ref(), plain.as_slice());

    let without = client
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .number_of_bytes(16)
        .send()
        .await
        .expect("without plaintext");
    let dec = client
        .decrypt()
        .ciphertext_blob(without.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(dec.plaintext().unwrap().as_ref().len(), 16);

    let err = client
        .generate_data_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    let r1 = client
        .generate_random()
        .number_of_bytes(64)
        .send()
        .await
        .expect("random");
    let r2 = client
        .generate_random()
        .number_of_bytes(64)
        .send()
        .await
        .expect("random");
    assert_eq!(r1.plaintext().unwrap().as_ref().len(), 64);
    assert_ne!(
        r1.plaintext().unwrap().as_ref(),
        r2.plaintext().unwrap().as_ref()
    );
    let err = client
        .generate_random()
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
}

async fn key_policies(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = create_key(&client).await;
    let got = client
        .get_key_policy()
        .key_id(&key)
        .send()
        .await
        .expect("get policy");
    assert_eq!(got.policy_name(), Some("default"));
    let default: serde_json::Value = serde_json::from_str(got.policy().unwrap()).unwrap();
    assert_eq!(
        default["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{}:root", common::ACCOUNT)
    );
    let listed = client
        .list_key_policies()
        .key_id(&key)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.policy_names(), ["default"]);

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
    client
        .put_key_policy()
        .key_id(&key)
        .policy(policy)
        .send()
        .await
        .expect("put policy");
    let got = client
        .get_key_policy()
        .key_id(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(got.policy(), Some(policy));

    let err = client
        .put_key_policy()
        .key_id(&key)
        .policy(r#"{"Statement":[{"Effect":"Perhaps"}]}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "MalformedPolicyDocumentException");
    let err = client
        .get_key_policy()
        .key_id(&key)
        .policy_name("other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");

    // Policies survive a restart: the read model is rebuilt from the events.
    let mut server = server;
    server.restart();
    let client = server.client();
    let got = client
        .get_key_policy()
        .key_id(&key)
        .send()
        .await
        .expect("get after restart");
    assert_eq!(got.policy(), Some(policy));
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "replay --verify failed: {out}");
}

async fn unimplemented_operations_say_so(store: StoreKind) {
    let server = TestServer::start(store);
    let client = server.client();
    let key = create_key(&client).await;
    let err = client
        .get_parameters_for_import()
        .key_id(&key)
        .wrapping_algorithm(aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(aws_sdk_kms::types::WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let err = client
        .create_key()
        .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
}

async fn key_last_usage(store: StoreKind) {
    let mut server = TestServer::start(store);
    let client = server.client();
    let key = create_key(&client).await;
    let fresh = client
        .get_key_last_usage()
        .key_id(&key)
        .send()
        .await
        .expect("last usage");
    assert!(fresh.key_last_usage().is_none(), "a new key has no use");
    assert!(fresh.tracking_start_date().is_some());
    let enc = client
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"u".to_vec()))
        .send()
        .await
        .unwrap();
    let request_id = aws_sdk_kms::operation::RequestId::request_id(&enc)
        .unwrap()
        .to_string();
    client.describe_key().key_id(&key).send().await.unwrap();
    let _ = client
        .decrypt()
        .ciphertext_blob(Blob::new(vec![0u8; 80]))
        .send()
        .await
        .unwrap_err();
    let check = |out: aws_sdk_kms::operation::get_key_last_usage::GetKeyLastUsageOutput| {
        let last = out.key_last_usage().expect("a use").clone();
        assert_eq!(
            last.operation().map(|o| o.as_str()),
            Some("Encrypt"),
            "DescribeKey and failures do not count"
        );
        assert_eq!(last.kms_request_id(), Some(request_id.as_str()));
        assert!(last.cloud_trail_event_id().is_some());
    };
    check(
        client
            .get_key_last_usage()
            .key_id(&key)
            .send()
            .await
            .unwrap(),
    );
    // Read from the store after a restart (the use was committed with its record).
    server.restart();
    check(
        server
            .client()
            .get_key_last_usage()
            .key_id(&key)
            .send()
            .await
            .unwrap(),
    );
}

on_both_stores!(
    key_last_usage,
    create_describe_and_list,
    encrypt_decrypt_and_context,
    data_keys_and_random,
    key_policies,
    unimplemented_operations_say_so,
);
