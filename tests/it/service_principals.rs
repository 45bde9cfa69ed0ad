//! Grants to service principals, black-box on both stores: a service of the deployment
//! (`backup.example.com` in `examples/identities.toml`) is granted a key for one source resource
//! (the SourceArn constraint), uses it only when its signed `X-Amz-Source-Arn` names that
//! resource, is found by the grant filters, is audited as `AWSService`, and retires its grant.

use crate::common;

use base64::Engine;
use common::{code_and_message, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");
const SERVICE: &str = "backup.example.com";
const BACKUP: (&str, &str) = (
    "AKIABACKUPEXAMPLE004",
    "backupSecretKeyExample0000000000000004",
);
const SOURCE: &str = "arn:aws:backup:us-east-1:111122223333:backup-vault:prod";

/// A KMS call as the backup service, on behalf of `source` (the signed X-Amz-Source-Arn).
async fn as_service(
    server: &TestServer,
    operation: &str,
    body: &Value,
    source: Option<&str>,
) -> (u16, Value) {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        (
            "x-amz-target".to_string(),
            format!("TrentService.{operation}"),
        ),
    ];
    if let Some(s) = source {
        headers.push(("x-amz-source-arn".to_string(), s.to_string()));
        headers.push((
            "x-amz-source-account".to_string(),
            common::ACCOUNT.to_string(),
        ));
    }
    let text = body.to_string();
    let resp = common::signed_post(
        &server.endpoint(),
        headers,
        text.as_bytes(),
        Some((BACKUP.0, BACKUP.1, None)),
        REGION,
        "kms",
        std::time::SystemTime::now(),
    )
    .await;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn grants_to_service_principals(store: StoreKind) {
    let server = TestServer::start_with(store, &["--config", CONFIG]);
    let root = server.client_as(ACCESS_KEY, SECRET_KEY, REGION);
    let key = root.create_key().send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();

    // AWS's rules for a grant to a service principal.
    let refused = |r: Result<_, aws_sdk_kms::error::SdkError<_, _>>| {
        code_and_message(&r.expect_err("refused"))
    };
    let constraints = aws_sdk_kms::types::GrantConstraints::builder()
        .source_arn(SOURCE)
        .build();
    let op = aws_sdk_kms::types::GrantOperation::Encrypt;
    let (c, m) = refused(
        root.create_grant()
            .key_id(&arn)
            .grantee_service_principal(SERVICE)
            .retiring_service_principal(SERVICE)
            .operations(op.clone())
            .send()
            .await,
    );
    assert_eq!(c, "ValidationException");
    assert!(m.contains("SourceArn"), "{m}");
    let (c, m) = refused(
        root.create_grant()
            .key_id(&arn)
            .grantee_service_principal(SERVICE)
            .constraints(constraints.clone())
            .operations(op.clone())
            .send()
            .await,
    );
    assert_eq!(c, "ValidationException");
    assert!(
        m.contains("RetiringPrincipal or a RetiringServicePrincipal"),
        "{m}"
    );
    let (c, _) = refused(
        root.create_grant()
            .key_id(&arn)
            .grantee_service_principal(SERVICE)
            .grantee_principal(format!("arn:aws:iam::{}:user/alice", common::ACCOUNT))
            .retiring_service_principal(SERVICE)
            .constraints(constraints.clone())
            .operations(op.clone())
            .send()
            .await,
    );
    assert_eq!(c, "ValidationException");
    let (c, _) = refused(
        root.create_grant()
            .key_id(&arn)
            .grantee_service_principal("nobody.example.com")
            .retiring_service_principal(SERVICE)
            .constraints(constraints.clone())
            .operations(op.clone())
            .send()
            .await,
    );
    assert_eq!(c, "ValidationException");

    let grant = root
        .create_grant()
        .key_id(&arn)
        .grantee_service_principal(SERVICE)
        .retiring_service_principal(SERVICE)
        .constraints(constraints.clone())
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .expect("a grant to the service");
    let grant_id = grant.grant_id().unwrap().to_string();

    let listed = root.list_grants().key_id(&arn).send().await.unwrap();
    let entry = &listed.grants()[0];
    assert_eq!(entry.grantee_service_principal(), Some(SERVICE));
    assert_eq!(entry.grantee_principal(), None);
    assert_eq!(entry.retiring_service_principal(), Some(SERVICE));
    assert_eq!(entry.constraints().unwrap().source_arn(), Some(SOURCE));
    let by_service = root
        .list_grants()
        .key_id(&arn)
        .grantee_service_principal(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(by_service.grants().len(), 1);
    let by_other = root
        .list_grants()
        .key_id(&arn)
        .grantee_service_principal("other.example.com")
        .send()
        .await
        .unwrap();
    assert!(by_other.grants().is_empty());
    let retirable = root
        .list_retirable_grants()
        .retiring_service_principal(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);

    // The service uses the key for the grant's source only.
    let encrypt = json!({"KeyId": arn, "Plaintext": b64(b"nightly backup")});
    let (status, body) = as_service(&server, "Encrypt", &encrypt, Some(SOURCE)).await;
    assert_eq!(status, 200, "{body}");
    let blob = body["CiphertextBlob"].clone();
    let (status, body) = as_service(
        &server,
        "Decrypt",
        &json!({"CiphertextBlob": blob}),
        Some(SOURCE),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Plaintext"], b64(b"nightly backup"));
    let (status, body) = as_service(
        &server,
        "Encrypt",
        &encrypt,
        Some("arn:aws:backup:us-east-1:111122223333:backup-vault:other"),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("AccessDeniedException")),
        "{body}"
    );
    let (status, body) = as_service(&server, "Encrypt", &encrypt, None).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("AccessDeniedException")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(SERVICE), "{message}");

    // A user cannot borrow the grant by naming the source: the header counts only for services.
    let alice = server.client_as(
        "AKIAALICEEXAMPLE0001",
        "aliceSecretKeyExample000000000000000001",
        REGION,
    );
    let denied = alice
        .encrypt()
        .key_id(&arn)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
        .send()
        .await;
    assert_eq!(common::code(&denied.unwrap_err()), "AccessDeniedException");

    // CloudTrail names the service as the caller.
    if store == StoreKind::Sqlite {
        let records = common::sqlite_audit_records(&server.data_dir);
        let used = records
            .iter()
            .find(|r| r["eventName"] == "Encrypt" && r["userIdentity"]["type"] == "AWSService")
            .expect("the service's Encrypt is audited");
        assert_eq!(used["userIdentity"]["invokedBy"], SERVICE);
    }

    // A key policy can name the service too, with aws:SourceArn and aws:SourceAccount.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
  {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},
  {{"Effect":"Allow","Principal":{{"Service":"{SERVICE}"}},"Action":"kms:Encrypt","Resource":"*",
    "Condition":{{"ArnEquals":{{"aws:SourceArn":"{SOURCE}"}},"StringEquals":{{"aws:SourceAccount":"{account}"}}}}}}
]}}"#,
        account = common::ACCOUNT
    );
    let by_policy = root
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("policy naming a service");
    let by_policy = by_policy.key_metadata().unwrap().arn().unwrap().to_string();
    let encrypt_other = json!({"KeyId": by_policy, "Plaintext": b64(b"x")});
    let (status, body) = as_service(&server, "Encrypt", &encrypt_other, Some(SOURCE)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = as_service(&server, "Encrypt", &encrypt_other, None).await;
    assert_eq!(status, 400);

    // The service retires its grant, and the key is closed to it again.
    let (status, body) = as_service(
        &server,
        "RetireGrant",
        &json!({"KeyId": arn, "GrantId": grant_id}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = as_service(&server, "Encrypt", &encrypt, Some(SOURCE)).await;
    assert_eq!(status, 400);
    let listed = root.list_grants().key_id(&arn).send().await.unwrap();
    assert!(listed.grants().is_empty());
}

on_both_stores!(grants_to_service_principals);
