//! Authorization, black-box, with the example identities (`examples/identities.toml`): a user the
//! key policy allows directly, one who relies on IAM delegation without an identity policy, an
//! explicit Deny, a cross-account user, the lockout safety check, unknown principals, and the audit
//! record of a denial.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use common::db::Db;
use common::{code_and_message, StoreKind, TestServer, ACCOUNT, REGION};

const ALICE: (&str, &str) = (
    "AKIAALICEEXAMPLE0001",
    "aliceSecretKeyExample000000000000000001",
);
const BOB: (&str, &str) = (
    "AKIABOBEXAMPLE000002",
    "bobSecretKeyExample0000000000000000002",
);
const CAROL: (&str, &str) = (
    "AKIACAROLEXAMPLE0003",
    "carolSecretKeyExample00000000000000003",
);

fn server(store: StoreKind) -> TestServer {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");
    TestServer::start_with(store, &["--config", config])
}

fn policy(extra_statements: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}{extra_statements}]}}"#
    )
}

async fn key_with_policy(server: &TestServer, text: &str) -> (String, String) {
    let created = server
        .client()
        .create_key()
        .policy(text)
        .send()
        .await
        .expect("create key with policy");
    let meta = created.key_metadata().unwrap();
    (meta.key_id().to_string(), meta.arn().unwrap().to_string())
}

async fn direct_allow_delegation_and_explicit_deny(store: StoreKind) {
    let server = server(store);
    let text = policy(&format!(
        r#",
        {{"Sid":"AliceUses","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}},
        {{"Sid":"NoSecretDecrypt","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:class":"secret"}}}}}}"#
    ));
    let (key, arn) = key_with_policy(&server, &text).await;
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let bob = server.client_as(BOB.0, BOB.1, REGION);

    // alice: allowed by the key policy directly.
    let enc = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"for alice".to_vec()))
        .encryption_context("class", "public")
        .send()
        .await
        .expect("alice encrypts");
    alice
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .encryption_context("class", "public")
        .send()
        .await
        .expect("alice decrypts");
    // The key policy delegates PutKeyPolicy to the account's IAM, and alice has no identity
    // policy: AWS names the missing identity-based allow.
    let (code, message) = code_and_message(
        &alice
            .put_key_policy()
            .key_id(&key)
            .policy(&text)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!("User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: kms:PutKeyPolicy on resource: {arn} because no identity-based policy allows the kms:PutKeyPolicy action")
    );

    // The explicit Deny wins over the Allow when its condition holds.
    let secret = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"secret".to_vec()))
        .encryption_context("class", "secret")
        .send()
        .await
        .expect("encrypting is allowed");
    let (code, message) = code_and_message(
        &alice
            .decrypt()
            .ciphertext_blob(secret.ciphertext_blob().unwrap().clone())
            .encryption_context("class", "secret")
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("with an explicit deny in a resource-based policy"),
        "{message}"
    );

    // bob: the key policy only delegates to the account, and bob has no identity policy.
    let (code, message) =
        code_and_message(&bob.describe_key().key_id(&key).send().await.unwrap_err());
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("user/bob"), "{message}");
    // A default key policy delegates to IAM: the root user may, bob may not.
    let default_key = server.client().create_key().send().await.unwrap();
    let default_id = default_key.key_metadata().unwrap().key_id().to_string();
    server
        .client()
        .describe_key()
        .key_id(&default_id)
        .send()
        .await
        .expect("root via delegation");
    let (code, message) = code_and_message(
        &bob.describe_key()
            .key_id(&default_id)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("because no identity-based policy allows the kms:DescribeKey action"),
        "{message}"
    );
    // Operations without a key are decided by identity policies: bob has none.
    let (code, _) = code_and_message(&bob.create_key().send().await.unwrap_err());
    assert_eq!(code, "AccessDeniedException");

    // A denial is audited with its error.
    let db = Db::open(&server).await;
    let records = db.audit_records().await;
    let denied = records
        .iter()
        .filter(|r| {
            r["errorCode"] == "AccessDeniedException" && r["userIdentity"]["userName"] == "bob"
        })
        .count();
    assert_eq!(denied, 3);
}

async fn grants_are_a_further_allow_path(store: StoreKind) {
    use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
    let server = server(store);
    let root = server.client();
    let bob = server.client_as(BOB.0, BOB.1, REGION);
    let key = root.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let bob_arn = format!("arn:aws:iam::{ACCOUNT}:user/bob");
    let encrypt_as_bob = |app: Option<&'static str>| {
        let bob = bob.clone();
        let key_id = key_id.clone();
        async move {
            let mut call = bob
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(b"g".to_vec()));
            if let Some(app) = app {
                call = call.encryption_context("app", app);
            }
            call.send().await
        }
    };
    assert!(
        encrypt_as_bob(Some("payroll")).await.is_err(),
        "no grant yet"
    );

    let grant = root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "payroll")
                .build(),
        )
        .name("payroll-bob")
        .send()
        .await
        .expect("create grant");
    let grant_id = grant.grant_id().unwrap().to_string();
    assert!(grant.grant_token().is_some());
    let again = root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::Encrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "payroll")
                .build(),
        )
        .name("payroll-bob")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.grant_id(),
        Some(grant_id.as_str()),
        "same name and parameters: same grant"
    );

    encrypt_as_bob(Some("payroll"))
        .await
        .expect("the grant allows Encrypt with its context");
    let (code, _) = code_and_message(&encrypt_as_bob(Some("other")).await.unwrap_err());
    assert_eq!(
        code, "AccessDeniedException",
        "the constraint does not hold"
    );
    let (code, _) = code_and_message(&encrypt_as_bob(None).await.unwrap_err());
    assert_eq!(code, "AccessDeniedException");
    let (code, _) = code_and_message(&bob.describe_key().key_id(&key_id).send().await.unwrap_err());
    assert_eq!(
        code, "AccessDeniedException",
        "the grant does not list DescribeKey"
    );

    let listed = root.list_grants().key_id(&key_id).send().await.unwrap();
    assert_eq!(listed.grants().len(), 1);
    assert_eq!(
        listed.grants()[0].grantee_principal(),
        Some(bob_arn.as_str())
    );
    // bob is the grantee but the grant does not include RetireGrant.
    let (code, _) = code_and_message(
        &bob.retire_grant()
            .grant_token(grant.grant_token().unwrap())
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    root.revoke_grant()
        .key_id(&key_id)
        .grant_id(&grant_id)
        .send()
        .await
        .expect("revoke");
    let (code, _) = code_and_message(&encrypt_as_bob(Some("payroll")).await.unwrap_err());
    assert_eq!(
        code, "AccessDeniedException",
        "a revoked grant allows nothing"
    );
    let (code, _) = code_and_message(
        &root
            .revoke_grant()
            .key_id(&key_id)
            .grant_id(&grant_id)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidGrantIdException");
}

async fn cross_account(store: StoreKind) {
    let server = server(store);
    let carol = server.client_as(CAROL.0, CAROL.1, REGION);
    let closed = server.client().create_key().send().await.unwrap();
    let closed_arn = closed.key_metadata().unwrap().arn().unwrap().to_string();
    let (code, _) = code_and_message(
        &carol
            .describe_key()
            .key_id(&closed_arn)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(
        code, "AccessDeniedException",
        "the key policy does not let carol's account in"
    );

    let text = policy(
        r#",
        {"Sid":"PartnerAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:ScheduleKeyDeletion"],"Resource":"*"}"#,
    );
    let (_, arn) = key_with_policy(&server, &text).await;
    carol
        .describe_key()
        .key_id(&arn)
        .send()
        .await
        .expect("both sides allow DescribeKey");
    let enc = carol
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"from carol".to_vec()))
        .send()
        .await
        .expect("carol encrypts with the key ARN");
    let dec = carol
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .key_id(&arn)
        .send()
        .await
        .expect("carol decrypts");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"from carol");
    // The key policy allows ScheduleKeyDeletion to her account, but her IAM policy does not.
    let (code, _) = code_and_message(
        &carol
            .schedule_key_deletion()
            .key_id(&arn)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(
        code, "AccessDeniedException",
        "cross-account needs both sides"
    );

    // The trail delivers each cross-account call to both accounts: two records, one per
    // recipient, with their own eventIDs and one sharedEventID.
    let records = Db::open(&server).await.audit_records().await;
    let copies = |name: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["eventName"] == name && r["userIdentity"]["accountId"] == "444455556666")
            .collect()
    };
    for name in ["Encrypt", "Decrypt", "ScheduleKeyDeletion"] {
        let found = copies(name);
        let mut recipients: Vec<&str> = found
            .iter()
            .map(|r| r["recipientAccountId"].as_str().unwrap())
            .collect();
        recipients.sort();
        assert_eq!(recipients, [ACCOUNT, "444455556666"], "{name}");
        assert_ne!(found[0]["eventID"], found[1]["eventID"]);
        assert!(found[0]["sharedEventID"].is_string());
        assert_eq!(found[0]["sharedEventID"], found[1]["sharedEventID"]);
        assert_eq!(found[0]["requestID"], found[1]["requestID"]);
    }
    // `trent trail usage` counts a cross-account call once.
    let (ok, out) = server.trent(&["trail", "usage", &arn, "--format", "json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let carol_use = &report["principals"]["arn:aws:iam::444455556666:user/carol"];
    assert_eq!(carol_use["operations"]["Encrypt"], 1, "{report}");
    assert_eq!(carol_use["operations"]["Decrypt"], 1, "{report}");
    // A call within one account has no copy and no sharedEventID.
    let own: Vec<_> = records
        .iter()
        .filter(|r| r["eventName"] == "CreateKey")
        .collect();
    assert!(own.iter().all(|r| r.get("sharedEventID").is_none()));
}

async fn lockout_check_and_unknown_principals(store: StoreKind) {
    let server = server(store);
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let alice_only = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    let (code, message) = code_and_message(
        &client
            .put_key_policy()
            .key_id(&key_id)
            .policy(&alice_only)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert!(
        message.contains("will not allow you to update the key policy"),
        "{message}"
    );
    client
        .put_key_policy()
        .key_id(&key_id)
        .policy(&alice_only)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .expect("the bypass lets it through");
    let stored = client.get_key_policy().key_id(&key_id).send().await;
    let (code, _) = code_and_message(&stored.unwrap_err());
    assert_eq!(
        code, "AccessDeniedException",
        "root is now locked out of this key"
    );
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let got = alice
        .get_key_policy()
        .key_id(&key_id)
        .send()
        .await
        .expect("alice can read it");
    assert_eq!(
        got.policy(),
        Some(alice_only.as_str()),
        "GetKeyPolicy returns the text byte for byte"
    );

    let unknown = policy(
        r#",
        {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/mallory"},"Action":"kms:*","Resource":"*"}"#,
    );
    let (code, message) = code_and_message(
        &client
            .create_key()
            .policy(unknown)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert!(message.contains("invalid principals"), "{message}");
    let bad_condition = policy(
        r#",
        {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"kms:RotationPeriodInDays":"ninety"}}}"#,
    );
    let (code, _) = code_and_message(
        &client
            .create_key()
            .policy(bad_condition)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "MalformedPolicyDocumentException");
}

/// A key policy can test the key's aliases (kms:ResourceAliases): alice may encrypt only once
/// the key carries the alias the statement names.
async fn conditions_on_the_keys_aliases(store: StoreKind) {
    let server = server(store);
    let text = policy(&format!(
        r#",
        {{"Sid":"PaymentsKeysOnly","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"kms:Encrypt","Resource":"*","Condition":{{"ForAnyValue:StringEquals":{{"kms:ResourceAliases":"alias/payments"}}}}}}"#
    ));
    let (key, _) = key_with_policy(&server, &text).await;
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let try_encrypt = || {
        alice
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"a".to_vec()))
            .send()
    };
    let (code, _) = code_and_message(&try_encrypt().await.unwrap_err());
    assert_eq!(code, "AccessDeniedException", "no alias yet");
    server
        .client()
        .create_alias()
        .alias_name("alias/payments")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    try_encrypt()
        .await
        .expect("the alias now matches the condition");
}

/// Condition keys the request itself carries: kms:GrantOperations, kms:GranteePrincipal,
/// kms:ScheduleKeyDeletionPendingWindowInDays, aws:RequestTag/* and aws:TagKeys, kms:MessageType,
/// kms:ReEncryptOnSameKey.
async fn conditions_on_the_request(store: StoreKind) {
    use aws_sdk_kms::types::{
        GrantOperation, KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec, Tag,
    };
    let server = server(store);
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let bob_arn = format!("arn:aws:iam::{ACCOUNT}:user/bob");
    let text = policy(&format!(
        r#",
        {{"Sid":"DecryptGrantsForBob","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:CreateGrant","Resource":"*",
          "Condition":{{"ForAllValues:StringEquals":{{"kms:GrantOperations":["Decrypt","Encrypt"]}},"StringEquals":{{"kms:GranteePrincipal":"{bob_arn}"}}}}}},
        {{"Sid":"LongWindows","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:ScheduleKeyDeletion","Resource":"*",
          "Condition":{{"NumericGreaterThanEquals":{{"kms:ScheduleKeyDeletionPendingWindowInDays":"20"}}}}}},
        {{"Sid":"TeamTagOnly","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:TagResource","Resource":"*",
          "Condition":{{"StringEquals":{{"aws:RequestTag/team":"payments"}},"ForAllValues:StringEquals":{{"aws:TagKeys":["team"]}}}}}},
        {{"Sid":"SameKeyOnly","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":["kms:ReEncrypt*","kms:Encrypt"],"Resource":"*",
          "Condition":{{"Bool":{{"kms:ReEncryptOnSameKey":"true"}}}}}},
        {{"Sid":"Encrypt","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:Encrypt","Resource":"*"}},
        {{"Sid":"NoProdTag","Effect":"Deny","Principal":"*","Action":"kms:TagResource","Resource":"*","Condition":{{"StringEquals":{{"aws:RequestTag/env":"prod"}}}}}}"#
    ));
    let (key, _) = key_with_policy(&server, &text).await;
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let denied = |code: String| assert_eq!(code, "AccessDeniedException");

    let grant = |ops: &[GrantOperation], grantee: &str| {
        let mut call = alice.create_grant().key_id(&key).grantee_principal(grantee);
        for op in ops {
            call = call.operations(op.clone());
        }
        call.send()
    };
    grant(&[GrantOperation::Decrypt], &bob_arn)
        .await
        .expect("a Decrypt grant for bob");
    denied(common::code(
        &grant(
            &[GrantOperation::Decrypt, GrantOperation::RetireGrant],
            &bob_arn,
        )
        .await
        .unwrap_err(),
    ));
    denied(common::code(
        &grant(&[GrantOperation::Decrypt], &alice_arn)
            .await
            .unwrap_err(),
    ));

    let tag = |k: &str, v: &str| {
        alice
            .tag_resource()
            .key_id(&key)
            .tags(Tag::builder().tag_key(k).tag_value(v).build().unwrap())
            .send()
    };
    tag("team", "payments").await.expect("the allowed tag");
    denied(common::code(&tag("team", "other").await.unwrap_err()));
    denied(common::code(&tag("owner", "payments").await.unwrap_err()));
    // Tag keys differing only in case are one condition key with both values (AWS compares key
    // names case-insensitively): the Deny on env=prod cannot be slipped past with Env=dev.
    let two_spellings = server
        .client()
        .tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key("env")
                .tag_value("prod")
                .build()
                .unwrap(),
        )
        .tags(
            Tag::builder()
                .tag_key("Env")
                .tag_value("dev")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    denied(common::code(&two_spellings));

    // ReEncrypt onto the same key is allowed, onto another key not (ReEncryptFrom is refused).
    let other = server.client().create_key().policy(policy(&format!(
        r#",{{"Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:ReEncrypt*","Resource":"*"}}"#
    ))).send().await.unwrap();
    let other = other.key_metadata().unwrap().key_id().to_string();
    let blob = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"r".to_vec()))
        .send()
        .await
        .unwrap();
    let blob = blob.ciphertext_blob().unwrap().clone();
    alice
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .destination_key_id(&key)
        .send()
        .await
        .expect("same key");
    denied(common::code(
        &alice
            .re_encrypt()
            .ciphertext_blob(blob)
            .destination_key_id(&other)
            .send()
            .await
            .unwrap_err(),
    ));

    let window = |days: i32| {
        alice
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(days)
            .send()
    };
    denied(common::code(&window(7).await.unwrap_err()));
    window(20).await.expect("a 20-day window");

    // kms:MessageType on an asymmetric key.
    let signing = server
        .client()
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .policy(policy(&format!(
            r#",{{"Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:Sign","Resource":"*","Condition":{{"StringEquals":{{"kms:MessageType":"RAW","kms:SigningAlgorithm":"ECDSA_SHA_256"}}}}}}"#
        )))
        .send()
        .await
        .unwrap();
    let signing = signing.key_metadata().unwrap().key_id().to_string();
    let sign = |message: Vec<u8>, kind: MessageType| {
        alice
            .sign()
            .key_id(&signing)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
    };
    sign(b"raw message".to_vec(), MessageType::Raw)
        .await
        .expect("a RAW message");
    denied(common::code(
        &sign(vec![7u8; 32], MessageType::Digest).await.unwrap_err(),
    ));
}

/// The global keys every request carries: aws:RequestedRegion, aws:CurrentTime, aws:EpochTime,
/// aws:UserAgent, aws:PrincipalIsAWSService and aws:ViaAWSService (the data-perimeter keys).
async fn global_condition_keys(store: StoreKind) {
    let server = server(store);
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let text = policy(&format!(
        r#",
        {{"Sid":"Perimeter","Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
          "Condition":{{"StringEquals":{{"aws:RequestedRegion":"{REGION}"}},
                        "Bool":{{"aws:PrincipalIsAWSService":"false","aws:ViaAWSService":"false"}},
                        "DateLessThan":{{"aws:CurrentTime":"2100-01-01T00:00:00Z"}},
                        "NumericGreaterThan":{{"aws:EpochTime":"1700000000"}},
                        "Null":{{"aws:UserAgent":"false"}}}}}},
        {{"Sid":"NoDecryptAfter2000","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
          "Condition":{{"DateGreaterThan":{{"aws:CurrentTime":"2000-01-01T00:00:00Z"}}}}}}"#
    ));
    let (key, _) = key_with_policy(&server, &text).await;
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let blob = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"g".to_vec()))
        .send()
        .await
        .expect("every global key the statement tests is present");
    let (code, message) = code_and_message(
        &alice
            .decrypt()
            .ciphertext_blob(blob.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("explicit deny"), "{message}");
}

on_both_stores!(
    global_condition_keys,
    conditions_on_the_request,
    conditions_on_the_keys_aliases,
    grants_are_a_further_allow_path,
    direct_allow_delegation_and_explicit_deny,
    cross_account,
    lockout_check_and_unknown_principals,
);
