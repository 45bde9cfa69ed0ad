//! External key stores through aws-sdk-kms on both stores, against a real external key store
//! (AWS's XKS proxy over SoftHSMv2, started by `common::xks`): create with the proxy checked,
//! describe, connect, the connection states and their error codes, the rules of updates and of
//! deletion, and a proxy credential that never leaves the keystore.

use crate::common;

use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType,
    XksProxyAuthenticationCredentialType, XksProxyConnectivityType,
};
use common::xks::{XksProxy, ACCESS_KEY_ID, SECRET};
use common::{code, StoreKind, TestServer};

fn credential(secret: &str) -> XksProxyAuthenticationCredentialType {
    XksProxyAuthenticationCredentialType::builder()
        .access_key_id(ACCESS_KEY_ID)
        .raw_secret_access_key(secret)
        .build()
        .unwrap()
}

async fn state_of(
    client: &aws_sdk_kms::Client,
    id: &str,
) -> aws_sdk_kms::types::CustomKeyStoresListEntry {
    client
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("describe")
        .custom_key_stores()[0]
        .clone()
}

async fn external_key_stores(store: StoreKind) {
    let mut proxy = XksProxy::start(&["trent-key-1"]);
    let mut server = TestServer::start_with(store, &["--xks-allow-http"]);
    let client = server.client_without_retries();
    let create = |name: &str, endpoint: String, secret: &str| {
        client
            .create_custom_key_store()
            .custom_key_store_name(name)
            .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
            .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
            .xks_proxy_uri_endpoint(endpoint)
            .xks_proxy_uri_path("/kms/xks/v1")
            .xks_proxy_authentication_credential(credential(secret))
            .send()
    };

    // The proxy is checked at creation, as AWS does.
    let wrong = create("orders", proxy.uri_endpoint(), &SECRET.replace('x', "y")).await;
    assert_eq!(
        code(&wrong.unwrap_err()),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    let nowhere = create(
        "orders",
        format!("http://127.0.0.1:{}", common::free_port()),
        SECRET,
    )
    .await;
    assert_eq!(
        code(&nowhere.unwrap_err()),
        "XksProxyUriUnreachableException"
    );
    let cloudhsm = client
        .create_custom_key_store()
        .custom_key_store_name("hsm")
        .custom_key_store_type(CustomKeyStoreType::AwsCloudhsm)
        .send()
        .await;
    assert_eq!(
        code(&cloudhsm.unwrap_err()),
        "UnsupportedOperationException"
    );
    let vpc = client
        .create_custom_key_store()
        .custom_key_store_name("vpc")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::VpcEndpointService)
        .xks_proxy_uri_endpoint("https://xks.example.com")
        .xks_proxy_uri_path("/kms/xks/v1")
        .xks_proxy_vpc_endpoint_service_name("com.amazonaws.vpce.us-east-1.vpce-svc-example")
        .xks_proxy_authentication_credential(credential(SECRET))
        .send()
        .await;
    assert_eq!(code(&vpc.unwrap_err()), "UnsupportedOperationException");

    let id = create("orders", proxy.uri_endpoint(), SECRET)
        .await
        .expect("a store over the real proxy")
        .custom_key_store_id()
        .unwrap()
        .to_string();
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
    let entry = state_of(&client, &id).await;
    assert_eq!(
        entry.connection_state(),
        Some(&ConnectionStateType::Disconnected)
    );
    assert_eq!(
        entry.custom_key_store_type(),
        Some(&CustomKeyStoreType::ExternalKeyStore)
    );
    let config = entry.xks_proxy_configuration().unwrap();
    assert_eq!(config.access_key_id(), Some(ACCESS_KEY_ID));
    assert_eq!(config.uri_endpoint(), Some(proxy.uri_endpoint().as_str()));
    assert_eq!(config.uri_path(), Some("/kms/xks/v1"));
    assert_eq!(
        config.connectivity(),
        Some(&XksProxyConnectivityType::PublicEndpoint)
    );
    let again = create("orders", proxy.uri_endpoint(), SECRET).await;
    assert_eq!(
        code(&again.unwrap_err()),
        "CustomKeyStoreNameInUseException"
    );
    let same_uri = create("orders-2", proxy.uri_endpoint(), SECRET).await;
    assert_eq!(code(&same_uri.unwrap_err()), "XksProxyUriInUseException");

    // Connect; while connected the proxy URI cannot change and the store cannot be deleted.
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state_of(&client, &id).await.connection_state(),
        Some(&ConnectionStateType::Connected)
    );
    let moving = client
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_uri_path("/other/kms/xks/v1")
        .send()
        .await;
    assert_eq!(
        code(&moving.unwrap_err()),
        "CustomKeyStoreInvalidStateException"
    );
    client
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .new_custom_key_store_name("orders-eu")
        .send()
        .await
        .expect("a new name while connected");
    let deleting = client
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(
        code(&deleting.unwrap_err()),
        "CustomKeyStoreInvalidStateException"
    );
    let bad_credential = client
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_authentication_credential(credential(&SECRET.replace('x', "z")))
        .send()
        .await;
    assert_eq!(
        code(&bad_credential.unwrap_err()),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    client
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_authentication_credential(credential(SECRET))
        .send()
        .await
        .expect("the same credential again, as a new version");

    // The store and its sealed credential survive a restart.
    server.restart();
    let client = server.client_without_retries();
    let entry = state_of(&client, &id).await;
    assert_eq!(entry.custom_key_store_name(), Some("orders-eu"));
    assert_eq!(
        entry.connection_state(),
        Some(&ConnectionStateType::Connected)
    );

    // A proxy that stops answering: the next connection attempt FAILS with AWS's error code, a
    // failed store must be disconnected first, and connects again once the proxy is back.
    client
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    proxy.stop();
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let failed = state_of(&client, &id).await;
    assert_eq!(
        failed.connection_state(),
        Some(&ConnectionStateType::Failed)
    );
    assert!(
        matches!(
            failed.connection_error_code(),
            Some(
                ConnectionErrorCodeType::XksProxyNotReachable
                    | ConnectionErrorCodeType::XksProxyTimedOut
            )
        ),
        "{failed:?}"
    );
    let retry = client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(
        code(&retry.unwrap_err()),
        "CustomKeyStoreInvalidStateException"
    );
    client
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    proxy.restart();
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state_of(&client, &id).await.connection_state(),
        Some(&ConnectionStateType::Connected)
    );

    // Deleted once disconnected; then it is gone.
    client
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    client
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let gone = client
        .describe_custom_key_stores()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(code(&gone.unwrap_err()), "CustomKeyStoreNotFoundException");
    let listed = client.describe_custom_key_stores().send().await.unwrap();
    assert!(listed.custom_key_stores().is_empty());

    // The credential's secret is in no audit record.
    if store == StoreKind::Sqlite {
        let records = common::sqlite_audit_records(&server.data_dir);
        assert!(records
            .iter()
            .any(|r| r["eventName"] == "CreateCustomKeyStore"));
        assert!(records.iter().all(|r| !r.to_string().contains(SECRET)));
    }
    let (ok, report) = server.trent(&["replay", "--verify"]);
    assert!(ok, "{report}");
}

on_both_stores!(external_key_stores, keys_in_an_external_key_store);

/// An external key store over HTTPS: the proxy's certificate is verified against the CA bundle
/// the server was given; a server with another bundle cannot reach it.
#[tokio::test(flavor = "multi_thread")]
async fn an_external_key_store_over_https() {
    let proxy = XksProxy::start_tls(&["trent-key-1"]);
    let ca = proxy.ca_bundle.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let create = |server: &TestServer| {
        let client = server.client_without_retries();
        let endpoint = proxy.uri_endpoint();
        async move {
            client
                .create_custom_key_store()
                .custom_key_store_name("tls")
                .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
                .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
                .xks_proxy_uri_endpoint(endpoint)
                .xks_proxy_uri_path("/kms/xks/v1")
                .xks_proxy_authentication_credential(credential(SECRET))
                .send()
                .await
        }
    };
    let trusting = TestServer::start_with(
        StoreKind::Sqlite,
        &["--xks-allow-http", "--xks-ca-bundle", ca],
    );
    let id = create(&trusting)
        .await
        .expect("the proxy's certificate verifies");
    let id = id.custom_key_store_id().unwrap().to_string();
    let client = trusting.client_without_retries();
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state_of(&client, &id).await.connection_state(),
        Some(&ConnectionStateType::Connected)
    );

    // The system's CAs do not know the test CA: the certificate does not verify.
    let doubting = TestServer::start_with(StoreKind::Sqlite, &["--xks-allow-http"]);
    let refused = create(&doubting).await;
    let (c, m) = common::code_and_message(&refused.unwrap_err());
    assert_eq!(c, "XksProxyUriUnreachableException");
    assert!(m.contains("TLS certificate"), "{m}");

    // `trent xks check` verifies the same way.
    let out = std::process::Command::new(common::trent_bin())
        .args([
            "xks",
            "check",
            "--uri-endpoint",
            &proxy.uri_endpoint(),
            "--ca-bundle",
            ca,
        ])
        .args(["--access-key-id", ACCESS_KEY_ID, "--key-id", "trent-key-1"])
        .env("TRENT_XKS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The scheduler checks each connected store's proxy every pass: a stopped proxy makes the store
/// unhealthy (the store stays CONNECTED, as in AWS), counted in the metrics the dashboard and the
/// alert read, and healthy again once the proxy is back.
#[tokio::test(flavor = "multi_thread")]
async fn connected_stores_are_health_checked_and_counted() {
    let mut proxy = XksProxy::start(&["trent-key-1"]);
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &[
            "--xks-allow-http",
            "--test-clock",
            "--scheduler-interval",
            "3600",
            "--admin-listen",
            &admin,
        ],
    );
    let client = server.client_without_retries();
    let id = client
        .create_custom_key_store()
        .custom_key_store_name("watched")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(proxy.uri_endpoint())
        .xks_proxy_uri_path("/kms/xks/v1")
        .xks_proxy_authentication_credential(credential(SECRET))
        .send()
        .await
        .unwrap()
        .custom_key_store_id()
        .unwrap()
        .to_string();
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let metrics = || async {
        common::http()
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["unhealthy_key_stores"],
        serde_json::json!([]),
        "{report}"
    );
    assert!(metrics().await.contains("trent_xks_unhealthy_key_stores 0"));

    proxy.stop();
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["unhealthy_key_stores"],
        serde_json::json!([id.clone()]),
        "{report}"
    );
    let text = metrics().await;
    assert!(text.contains("trent_xks_unhealthy_key_stores 1"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(
            "trent_xks_proxy_requests_total{operation=\"health\",outcome=\"unreachable\"}"
        )),
        "{text}"
    );
    assert_eq!(
        state_of(&client, &id).await.connection_state(),
        Some(&ConnectionStateType::Connected)
    );

    proxy.restart();
    let report = server.scheduler_tick().await;
    assert_eq!(
        report["unhealthy_key_stores"],
        serde_json::json!([]),
        "{report}"
    );
    assert!(metrics().await.contains("trent_xks_unhealthy_key_stores 0"));
}

/// KMS keys in an external key store: created against the proxy's view of the external key
/// (AWS's errors for a missing, reused or unusable key and for a store that is not connected),
/// described with the store and the external key, and keeping their store from deletion.
async fn keys_in_an_external_key_store(store: StoreKind) {
    use aws_sdk_kms::primitives::Blob;
    use aws_sdk_kms::types::OriginType;
    let mut proxy = XksProxy::start(&["trent-key-1", "trent-key-2"]);
    let server = TestServer::start_with(
        store,
        &[
            "--xks-allow-http",
            "--test-clock",
            "--scheduler-interval",
            "3600",
        ],
    );
    let client = server.client_without_retries();
    let id = client
        .create_custom_key_store()
        .custom_key_store_name("keys")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(proxy.uri_endpoint())
        .xks_proxy_uri_path("/kms/xks/v1")
        .xks_proxy_authentication_credential(credential(SECRET))
        .send()
        .await
        .unwrap()
        .custom_key_store_id()
        .unwrap()
        .to_string();
    let create = |xks_key: &str| {
        client
            .create_key()
            .origin(OriginType::ExternalKeyStore)
            .custom_key_store_id(&id)
            .xks_key_id(xks_key)
            .send()
    };
    let disconnected = create("trent-key-1").await;
    assert_eq!(
        code(&disconnected.unwrap_err()),
        "CustomKeyStoreInvalidStateException"
    );
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();

    let key = create("trent-key-1")
        .await
        .expect("a key in the external key store");
    let meta = key.key_metadata().unwrap();
    assert_eq!(meta.origin(), Some(&OriginType::ExternalKeyStore));
    assert_eq!(meta.custom_key_store_id(), Some(id.as_str()));
    assert_eq!(
        meta.xks_key_configuration().unwrap().id(),
        Some("trent-key-1")
    );
    let key_id = meta.key_id().to_string();
    let described = client.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().custom_key_store_id(),
        Some(id.as_str())
    );

    let reused = create("trent-key-1").await;
    assert_eq!(code(&reused.unwrap_err()), "XksKeyAlreadyInUseException");
    let missing = create("absent-key").await;
    assert_eq!(code(&missing.unwrap_err()), "XksKeyNotFoundException");
    let spec = client
        .create_key()
        .origin(OriginType::ExternalKeyStore)
        .custom_key_store_id(&id)
        .xks_key_id("trent-key-2")
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await;
    assert_eq!(code(&spec.unwrap_err()), "UnsupportedOperationException");
    let without_store = client
        .create_key()
        .origin(OriginType::ExternalKeyStore)
        .send()
        .await;
    assert_eq!(code(&without_store.unwrap_err()), "ValidationException");

    // Double encryption: Trent's own material, then the external key through the proxy.
    let encrypted = client
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"held in the HSM".to_vec()))
        .encryption_context("app", "ledger")
        .send()
        .await
        .expect("encrypt with a key in an external key store");
    let blob = encrypted.ciphertext_blob().unwrap().clone();
    assert_eq!(
        blob.as_ref()[1],
        0x04,
        "format version 4: double encryption"
    );
    // The record names the store and the external key, and the proxy saw the call's request id.
    if store == StoreKind::Sqlite {
        let request_id = aws_sdk_kms::operation::RequestId::request_id(&encrypted)
            .unwrap()
            .to_string();
        let records = common::sqlite_audit_records(&server.data_dir);
        let record = records
            .iter()
            .find(|r| r["requestID"] == request_id.as_str())
            .expect("the Encrypt record");
        assert_eq!(
            record["additionalEventData"]["customKeyStoreId"],
            id.as_str()
        );
        assert_eq!(record["additionalEventData"]["xksKeyId"], "trent-key-1");
    }
    let decrypt = |blob: Blob| {
        client
            .decrypt()
            .ciphertext_blob(blob)
            .encryption_context("app", "ledger")
            .send()
    };
    let plain = decrypt(blob.clone()).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"held in the HSM");
    let wrong_context = client.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(
        code(&wrong_context.unwrap_err()),
        "InvalidCiphertextException"
    );
    let data_key = client
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("app", "ledger")
        .send()
        .await
        .unwrap();
    let opened = decrypt(data_key.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(opened.plaintext(), data_key.plaintext());
    let ordinary = client.create_key().send().await.unwrap();
    let ordinary = ordinary.key_metadata().unwrap().key_id().to_string();
    let moved = client
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("app", "ledger")
        .destination_key_id(&ordinary)
        .send()
        .await
        .expect("re-encrypt from the external key store");
    let back = client
        .re_encrypt()
        .ciphertext_blob(moved.ciphertext_blob().unwrap().clone())
        .destination_key_id(&key_id)
        .destination_encryption_context("app", "ledger")
        .send()
        .await
        .expect("re-encrypt into it");
    assert_eq!(
        decrypt(back.ciphertext_blob().unwrap().clone())
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"held in the HSM"
    );

    // Without its proxy, or with its store disconnected, the key cannot be used
    // (KMSInvalidStateException, AWS's general failure for keys in custom key stores).
    proxy.stop();
    assert_eq!(
        code(&decrypt(blob.clone()).await.unwrap_err()),
        "KMSInvalidStateException"
    );
    proxy.restart();
    decrypt(blob.clone()).await.expect("the proxy is back");
    client
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let (c, m) = common::code_and_message(&decrypt(blob.clone()).await.unwrap_err());
    assert_eq!(c, "KMSInvalidStateException");
    assert!(m.ends_with("is unavailable."), "{m}");
    let shown = client.describe_key().key_id(&key_id).send().await.unwrap();
    let shown = shown.key_metadata().unwrap();
    assert_eq!(
        shown.key_state(),
        Some(&aws_sdk_kms::types::KeyState::Unavailable)
    );
    assert!(!shown.enabled());
    client
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    decrypt(blob.clone()).await.expect("connected again");
    let shown = client.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        shown.key_metadata().unwrap().key_state(),
        Some(&aws_sdk_kms::types::KeyState::Enabled),
        "its own state returns with the connection"
    );
    // The external key removed from the HSM: nothing it protected opens any more.
    proxy.delete_key("trent-key-1");
    assert_eq!(
        code(&decrypt(blob.clone()).await.unwrap_err()),
        "KMSInvalidStateException"
    );

    // A store that holds keys is not deleted; once the key is, it is.
    client
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    let holding = client
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(
        code(&holding.unwrap_err()),
        "CustomKeyStoreHasCMKsException"
    );
    client
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    server.advance_clock(8 * 86_400).await;
    server.scheduler_tick().await;
    client
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
}
