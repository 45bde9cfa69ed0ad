//! Roles and STS, black-box, with the example identities (`examples/identities.toml`): carol (account
//! 444455556666) assumes the `auditor` role of 111122223333 through the STS endpoint on the same
//! listener, and the session's temporary credentials work with aws-sdk-kms and the AWS CLI, under
//! the role's identity policies, key policies naming the role or the session, the trust policy's
//! refusals, AWS's validation errors, expiry by the clock, and the audit trail.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use common::db::Db;
use common::sts::{self, element, session_of, Session};
use common::{code_and_message, StoreKind, TestServer, ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");
const ROLE: &str = "arn:aws:iam::111122223333:role/auditor";
const CAROL: (&str, &str, Option<&str>) = (
    "AKIACAROLEXAMPLE0003",
    "carolSecretKeyExample00000000000000003",
    None,
);
const BOB: (&str, &str, Option<&str>) = (
    "AKIABOBEXAMPLE000002",
    "bobSecretKeyExample0000000000000000002",
    None,
);

fn server(store: StoreKind, extra: &[&str]) -> TestServer {
    let mut args = vec!["--config", CONFIG];
    args.extend_from_slice(extra);
    TestServer::start_with(store, &args)
}

/// carol assumes the auditor role; the answer's status and body.
async fn assume(
    server: &TestServer,
    who: (&str, &str, Option<&str>),
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut form = vec![
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE),
        ("RoleSessionName", "audit-1"),
    ];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        form.push((k, v));
    }
    sts::call(&server.endpoint(), &form, who, REGION).await
}

async fn session(server: &TestServer, name: &str) -> Session {
    let (status, body) = assume(server, CAROL, &[("RoleSessionName", name)]).await;
    assert_eq!(status, 200, "{body}");
    session_of(&body)
}

fn creds(s: &Session) -> (&str, &str, Option<&str>) {
    (
        &s.access_key_id,
        &s.secret_access_key,
        Some(&s.session_token),
    )
}

/// GetCallerIdentity as `who`: the status and body.
async fn who_am_i(server: &TestServer, who: (&str, &str, Option<&str>)) -> (u16, String) {
    let form = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    sts::call(&server.endpoint(), &form, who, REGION).await
}

/// The `Code` of an STS error document.
fn sts_code(body: &str) -> String {
    element(body, "Code").unwrap_or_default()
}

async fn assume_role_and_use_the_session(store: StoreKind) {
    let server = server(store, &[]);
    let endpoint = server.endpoint();

    // GetCallerIdentity for a user and for a session.
    let (status, body) = who_am_i(&server, CAROL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        element(&body, "Arn").as_deref(),
        Some("arn:aws:iam::444455556666:user/carol")
    );
    assert_eq!(element(&body, "Account").as_deref(), Some("444455556666"));
    assert!(element(&body, "UserId").unwrap().starts_with("AIDA"));

    let (status, body) = assume(&server, CAROL, &[("DurationSeconds", "900")]).await;
    assert_eq!(status, 200, "{body}");
    let audit1 = session_of(&body);
    assert!(audit1.access_key_id.starts_with("ASIA"), "{body}");
    let session_arn = "arn:aws:sts::111122223333:assumed-role/auditor/audit-1";
    assert_eq!(element(&body, "Arn").as_deref(), Some(session_arn));
    let assumed_id = element(&body, "AssumedRoleId").unwrap();
    assert!(
        assumed_id.starts_with("AROA") && assumed_id.ends_with(":audit-1"),
        "{assumed_id}"
    );
    assert!(element(&body, "Expiration").unwrap().ends_with('Z'));

    let (status, body) = who_am_i(&server, creds(&audit1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(element(&body, "Arn").as_deref(), Some(session_arn));
    assert_eq!(element(&body, "Account").as_deref(), Some(ACCOUNT));
    assert_eq!(element(&body, "UserId"), Some(assumed_id.clone()));

    // A key with the default policy delegates to the account's IAM: the role's identity policy
    // lets the session describe it, not use it.
    let root = server.client();
    let plain = root.create_key().send().await.expect("key");
    let plain_id = plain.key_metadata().unwrap().key_id().to_string();
    let plain_arn = plain.key_metadata().unwrap().arn().unwrap().to_string();
    let as_audit1 = sts::kms_client(&endpoint, &audit1, REGION);
    as_audit1
        .describe_key()
        .key_id(&plain_id)
        .send()
        .await
        .expect("the auditor describes keys");
    let (code, message) = code_and_message(
        &as_audit1
            .encrypt()
            .key_id(&plain_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!("User: {session_arn} is not authorized to perform: kms:Encrypt on resource: {plain_arn} because no identity-based policy allows the kms:Encrypt action")
    );

    // A key policy that names the role allows every session of it (sessions carry
    // aws:TokenIssueTime); one that names a session (by its ARN) matches that session only.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"AuditorsUse","Effect":"Allow","Principal":{{"AWS":"{ROLE}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{{"Null":{{"aws:TokenIssueTime":"false"}},"Bool":{{"aws:MultiFactorAuthPresent":"false"}}}}}},
        {{"Sid":"NotAudit2","Effect":"Deny","Principal":{{"AWS":"arn:aws:sts::{ACCOUNT}:assumed-role/auditor/audit-2"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let shared = root
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("key with policy");
    let shared_id = shared.key_metadata().unwrap().key_id().to_string();
    let ct = as_audit1
        .encrypt()
        .key_id(&shared_id)
        .plaintext(Blob::new(b"for auditors".to_vec()))
        .send()
        .await
        .expect("the role's session encrypts");
    let ct = ct.ciphertext_blob().unwrap().clone();
    let pt = as_audit1
        .decrypt()
        .ciphertext_blob(ct.clone())
        .send()
        .await
        .expect("and decrypts");
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"for auditors");
    let audit2 = session(&server, "audit-2").await;
    let as_audit2 = sts::kms_client(&endpoint, &audit2, REGION);
    as_audit2
        .encrypt()
        .key_id(&shared_id)
        .plaintext(Blob::new(b"y".to_vec()))
        .send()
        .await
        .expect("another session of the role encrypts");
    let (code, message) = code_and_message(
        &as_audit2
            .decrypt()
            .ciphertext_blob(ct)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.starts_with("User: arn:aws:sts::111122223333:assumed-role/auditor/audit-2 is not authorized to perform: kms:Decrypt")
            && message.contains("explicit deny"),
        "{message}"
    );

    // Policy simulation names sessions (and roles) as live calls see them.
    let simulate = |principal: &str| -> serde_json::Value {
        let out = std::process::Command::new(common::trent_bin())
            .args(["policy", "simulate", "--config", CONFIG])
            .args(server.store_args())
            .args([
                "--principal",
                principal,
                "--action",
                "kms:Decrypt",
                "--key",
                &shared_id,
            ])
            .env("TRENT_LOG", "warn")
            .output()
            .expect("trent runs");
        serde_json::from_slice(&out.stdout).expect("simulate prints JSON")
    };
    let denied = simulate("arn:aws:sts::111122223333:assumed-role/auditor/audit-2");
    assert_eq!(denied["decision"], "explicitDeny", "{denied}");
    assert_eq!(denied["denialMessage"], message.as_str());
    assert_eq!(simulate(session_arn)["decision"], "allowed");
    assert_eq!(simulate(ROLE)["decision"], "allowed");

    // A grant to the role reaches its sessions: the plain key, which the role's identity policy
    // does not let it use, encrypts for the session once the grant exists.
    root.create_grant()
        .key_id(&plain_id)
        .grantee_principal(ROLE)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .expect("a grant to the role");
    as_audit1
        .encrypt()
        .key_id(&plain_id)
        .plaintext(Blob::new(b"granted".to_vec()))
        .send()
        .await
        .expect("the grant allows the role's session");

    // The trail: the AssumeRole call as sts.amazonaws.com with the role as resource, the session's
    // KMS calls as an AssumedRole identity, and no secret or token anywhere.
    let records = Db::open(&server).await.audit_records().await;
    let assumed = records
        .iter()
        .find(|r| {
            r["eventName"] == "AssumeRole"
                && r["responseElements"]["credentials"]["accessKeyId"]
                    == audit1.access_key_id.as_str()
        })
        .expect("the AssumeRole record");
    assert_eq!(assumed["eventSource"], "sts.amazonaws.com");
    assert_eq!(
        assumed["userIdentity"]["arn"],
        "arn:aws:iam::444455556666:user/carol"
    );
    assert_eq!(assumed["requestParameters"]["roleArn"], ROLE);
    assert_eq!(assumed["requestParameters"]["durationSeconds"], 900);
    assert_eq!(assumed["resources"][0]["ARN"], ROLE);
    assert_eq!(assumed["resources"][0]["type"], "AWS::IAM::Role");
    assert_eq!(
        assumed["responseElements"]["assumedRoleUser"]["arn"],
        session_arn
    );
    let encrypt = records
        .iter()
        .find(|r| {
            r["eventName"] == "Encrypt"
                && r["userIdentity"]["accessKeyId"] == audit1.access_key_id.as_str()
                && r.get("errorCode").is_none()
        })
        .expect("the session's Encrypt record");
    let identity = &encrypt["userIdentity"];
    assert_eq!(identity["type"], "AssumedRole");
    assert_eq!(identity["arn"], session_arn);
    assert_eq!(identity["principalId"], assumed_id.as_str());
    assert_eq!(identity["sessionContext"]["sessionIssuer"]["arn"], ROLE);
    assert_eq!(
        identity["sessionContext"]["sessionIssuer"]["userName"],
        "auditor"
    );
    let all = serde_json::to_string(&records).unwrap();
    for secret in [
        &audit1.secret_access_key,
        &audit1.session_token,
        &audit2.secret_access_key,
        &audit2.session_token,
    ] {
        assert!(
            !all.contains(secret.as_str()),
            "a record carries session secrets"
        );
    }
}

on_both_stores!(assume_role_and_use_the_session);

#[tokio::test(flavor = "multi_thread")]
async fn the_trust_policy_and_the_callers_iam_decide_who_may_assume() {
    let server = server(StoreKind::Sqlite, &[]);
    let message = |body: &str| element(body, "Message").unwrap_or_default();

    // bob: not trusted by the role, no identity policy.
    let (status, body) = assume(&server, BOB, &[]).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    // One wording for every refusal, whether the role exists or why it refuses: no oracle.
    assert_eq!(
        message(&body),
        format!("User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: sts:AssumeRole on resource: {ROLE}")
    );
    // The account's root user may not assume roles at all.
    let (status, body) = assume(&server, (ACCESS_KEY, SECRET_KEY, None), &[]).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    assert_eq!(message(&body), "Roles may not be assumed by root accounts.");
    // A role that does not exist is an access denial, as in AWS (no existence oracle).
    let (status, body) = assume(
        &server,
        CAROL,
        &[("RoleArn", "arn:aws:iam::111122223333:role/nobody")],
    )
    .await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    assert_eq!(
        message(&body),
        "User: arn:aws:iam::444455556666:user/carol is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/nobody"
    );
    // A session of the auditor role is not carol: the trust policy does not let it chain.
    let audit = session(&server, "chain").await;
    let (status, body) = assume(&server, creds(&audit), &[("RoleSessionName", "again")]).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
}

/// Parameters to change, and the status, code and message STS answers.
type BadInput = (
    &'static [(&'static str, &'static str)],
    u16,
    &'static str,
    &'static str,
);

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_stss_errors() {
    let server = server(StoreKind::Sqlite, &[]);
    let cases: &[BadInput] = &[
        (&[("RoleSessionName", "a")], 400, "ValidationError", "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"),
        (&[("RoleSessionName", "bad name!")], 400, "ValidationError", "1 validation error detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
        (&[("DurationSeconds", "100")], 400, "ValidationError", "1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"),
        (&[("DurationSeconds", "7200")], 400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
        (&[("RoleArn", "short"), ("RoleSessionName", "x")], 400, "ValidationError", "2 validation errors detected: Value 'short' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20; Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"),
        (&[("Policy", "{}")], 400, "UnsupportedOperationException", "Trent's AssumeRole does not support the Policy parameter (session policies, session tags, MFA, source identity and provided contexts are not implemented)."),
        (&[("Tags.member.1.Key", "team")], 400, "UnsupportedOperationException", "Trent's AssumeRole does not support the Tags.member.1.Key parameter (session policies, session tags, MFA, source identity and provided contexts are not implemented)."),
        (
            &[("Action", "GetFederationToken")],
            400,
            "UnsupportedOperationException",
            "Trent's STS endpoint implements AssumeRole, GetSessionToken and GetCallerIdentity; GetFederationToken is not supported.",
        ),
        (&[("Action", "Frobnicate")], 400, "InvalidAction", "Could not find operation Frobnicate for version 2011-06-15"),
        (&[("Version", "2099-01-01")], 400, "InvalidAction", "Could not find operation AssumeRole for version 2099-01-01"),
    ];
    for (extra, status, code, message) in cases {
        let (got_status, body) = assume(&server, CAROL, extra).await;
        assert_eq!(
            (
                got_status,
                sts_code(&body),
                element(&body, "Message").unwrap_or_default()
            ),
            (*status, code.to_string(), message.to_string()),
            "{extra:?}"
        );
        assert!(body.contains("<RequestId>"), "{body}");
    }

    // Credentials that fail SigV4 get STS's codes.
    let (status, body) = assume(
        &server,
        (
            "AKIANOBODY0000000000",
            "nobodySecretKey0000000000000000000000000",
            None,
        ),
        &[],
    )
    .await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "InvalidClientTokenId"),
        "{body}"
    );
    let (status, body) = assume(
        &server,
        (CAROL.0, "wrongSecretKey000000000000000000000000000", None),
        &[],
    )
    .await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    // A session token that was tampered with, or a session key without its token, is refused by
    // every API on the listener.
    let good = session(&server, "tamper").await;
    let mut token = good.session_token.clone().into_bytes();
    let middle = token.len() / 2;
    token[middle] = if token[middle] == b'A' { b'B' } else { b'A' };
    let tampered = Session {
        session_token: String::from_utf8(token).unwrap(),
        ..good.clone()
    };
    let err = sts::kms_client(&server.endpoint(), &tampered, REGION)
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "UnrecognizedClientException");
    let without_token = server.client_as(&good.access_key_id, &good.secret_access_key, REGION);
    let err = without_token.list_keys().send().await.unwrap_err();
    assert_eq!(common::code(&err), "UnrecognizedClientException");
    let (status, body) = who_am_i(&server, creds(&tampered)).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "InvalidClientTokenId"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_by_the_clock_and_survive_restarts() {
    let mut server = server(
        StoreKind::Sqlite,
        &["--test-clock", "--scheduler-interval", "3600"],
    );
    let (status, body) = assume(&server, CAROL, &[("DurationSeconds", "900")]).await;
    assert_eq!(status, 200, "{body}");
    let s = session_of(&body);
    let key = server.client().create_key().send().await.expect("key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();

    // The token is self-contained: a restarted server (same root key) still accepts it.
    server.restart();
    let client = sts::kms_client(&server.endpoint(), &s, REGION);
    client
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("the session outlives a restart");

    server.advance_clock(899).await;
    client
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("valid for 900 s");
    server.advance_clock(1).await;
    let err = client
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ExpiredTokenException");
    let e = err.as_service_error().unwrap();
    assert_eq!(
        aws_sdk_kms::error::ProvideErrorMetadata::message(e),
        Some("The security token included in the request is expired")
    );
    let (status, body) = who_am_i(&server, creds(&s)).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "ExpiredToken"),
        "{body}"
    );
}

/// The AWS CLI, as the issue names it: `aws sts get-caller-identity`, `aws sts assume-role`, and
/// KMS commands with the session in `AWS_SESSION_TOKEN`.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_assumes_the_role() {
    let server = server(StoreKind::Sqlite, &[]);
    let endpoint = server.endpoint();
    let key = server.client().create_key().send().await.expect("key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let run = |mut cmd: std::process::Command| {
        let out = cmd.output().expect("aws runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let json =
        |text: &str| -> serde_json::Value { serde_json::from_str(text).expect("JSON output") };

    let mut cmd = common::awscli::command(&endpoint, (CAROL.0, CAROL.1));
    cmd.args(["sts", "get-caller-identity"]);
    let (ok, out, err) = run(cmd);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["Arn"], "arn:aws:iam::444455556666:user/carol");

    let mut cmd = common::awscli::command(&endpoint, (CAROL.0, CAROL.1));
    cmd.args([
        "sts",
        "assume-role",
        "--role-arn",
        ROLE,
        "--role-session-name",
        "cli-audit",
    ]);
    let (ok, out, err) = run(cmd);
    assert!(ok, "{err}");
    let answer = json(&out);
    let c = &answer["Credentials"];
    assert_eq!(
        answer["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::111122223333:assumed-role/auditor/cli-audit"
    );
    let (ak, sk, token) = (
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        c["SessionToken"].as_str().unwrap(),
    );

    let with_session = |args: &[&str]| {
        let mut cmd = common::awscli::command(&endpoint, (ak, sk));
        cmd.env("AWS_SESSION_TOKEN", token).args(args);
        run(cmd)
    };
    let (ok, out, err) = with_session(&["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    assert_eq!(
        json(&out)["Arn"],
        "arn:aws:sts::111122223333:assumed-role/auditor/cli-audit"
    );
    let (ok, out, err) = with_session(&["kms", "describe-key", "--key-id", &key_id]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["KeyMetadata"]["KeyId"], key_id.as_str());
    let (ok, _, err) =
        with_session(&["kms", "encrypt", "--key-id", &key_id, "--plaintext", "aGk="]);
    assert!(!ok);
    assert!(
        err.contains("AccessDeniedException") && err.contains("assumed-role/auditor/cli-audit"),
        "{err}"
    );

    // bob is refused, in the CLI's words.
    let mut cmd = common::awscli::command(&endpoint, (BOB.0, BOB.1));
    cmd.args([
        "sts",
        "assume-role",
        "--role-arn",
        ROLE,
        "--role-session-name",
        "bob",
    ]);
    let (ok, _, err) = run(cmd);
    assert!(!ok);
    assert!(
        err.contains("(AccessDenied) when calling the AssumeRole operation"),
        "{err}"
    );
}

/// Role chaining and self-assumption, with an identity file of its own: a session may assume its
/// own role again only when the trust policy names the role (not through the account's
/// delegation), and a chained session lasts at most an hour.
#[tokio::test(flavor = "multi_thread")]
async fn role_chaining_and_self_assumption() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("identities.toml");
    let assume_any =
        r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    std::fs::write(
        &config,
        format!(
            r#"
[[accounts]]
id = "111122223333"

[[accounts.users]]
name = "dave"
access_keys = [{{ access_key_id = "AKIADAVEEXAMPLE00004", secret_access_key = "daveSecretKeyExample00000000000000000004" }}]
policies = [{{ name = "assume", document = '{assume_any}' }}]

# Trusts the account (delegation to IAM), and may assume roles.
[[accounts.roles]]
name = "builder"
max_session_duration = 7200
trust_policy = '{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"sts:AssumeRole"}}]}}'
policies = [{{ name = "assume", document = '{assume_any}' }}]

# Names itself in its trust policy.
[[accounts.roles]]
name = "renewer"
max_session_duration = 7200
trust_policy = '{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:user/dave","arn:aws:iam::111122223333:role/renewer"]}},"Action":"sts:AssumeRole"}}]}}'
policies = [{{ name = "assume", document = '{assume_any}' }}]
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(StoreKind::Sqlite, &["--config", config.to_str().unwrap()]);
    let dave = (
        "AKIADAVEEXAMPLE00004",
        "daveSecretKeyExample00000000000000000004",
        None,
    );
    let builder_arn = "arn:aws:iam::111122223333:role/builder";
    let renewer_arn = "arn:aws:iam::111122223333:role/renewer";

    // dave reaches builder through the account's delegation; builder's session may not renew
    // itself that way.
    let (status, body) = assume(&server, dave, &[("RoleArn", builder_arn)]).await;
    assert_eq!(status, 200, "{body}");
    let builder = session_of(&body);
    let (status, body) = assume(&server, creds(&builder), &[("RoleArn", builder_arn)]).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );

    // renewer names itself: its session may assume it again, for an hour at most.
    let (status, body) = assume(
        &server,
        dave,
        &[("RoleArn", renewer_arn), ("DurationSeconds", "7200")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let renewer = session_of(&body);
    let (status, body) = assume(
        &server,
        creds(&renewer),
        &[("RoleArn", renewer_arn), ("DurationSeconds", "7200")],
    )
    .await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (400, "ValidationError"),
        "{body}"
    );
    assert!(body.contains("1 hour session limit"), "{body}");
    let (status, body) = assume(&server, creds(&renewer), &[("RoleArn", renewer_arn)]).await;
    assert_eq!(status, 200, "{body}");
    // Simulation gives the same answers, through the same evaluation.
    let simulate = |principal: &str, role: &str| -> String {
        let out = std::process::Command::new(common::trent_bin())
            .args(["policy", "simulate", "--config", config.to_str().unwrap()])
            .args(server.store_args())
            .args([
                "--principal",
                principal,
                "--action",
                "sts:AssumeRole",
                "--role",
                role,
            ])
            .env("TRENT_LOG", "warn")
            .output()
            .expect("trent runs");
        let answer: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("simulate prints JSON");
        answer["decision"].as_str().unwrap().to_string()
    };
    assert_eq!(
        simulate("arn:aws:iam::111122223333:user/dave", builder_arn),
        "allowed"
    );
    assert_eq!(
        simulate(
            "arn:aws:sts::111122223333:assumed-role/builder/chain",
            builder_arn
        ),
        "implicitDeny"
    );
    assert_eq!(
        simulate(
            "arn:aws:sts::111122223333:assumed-role/renewer/chain",
            renewer_arn
        ),
        "allowed"
    );

    // A candidate trust policy for renewer that names builder would let builder's sessions in.
    let candidate = dir.path().join("candidate-trust.json");
    std::fs::write(
        &candidate,
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/builder"},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::trent_bin())
        .args(["policy", "simulate", "--config", config.to_str().unwrap()])
        .args(server.store_args())
        .args([
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/builder/chain",
            "--action",
            "sts:AssumeRole",
            "--role",
            renewer_arn,
            "--trust-policy-file",
            candidate.to_str().unwrap(),
        ])
        .output()
        .expect("trent runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "allowed", "{answer}");

    // builder's session may chain to renewer? No: renewer's trust policy names neither builder
    // nor the account.
    let (status, _) = assume(&server, creds(&builder), &[("RoleArn", renewer_arn)]).await;
    assert_eq!(status, 403);
}

/// GetSessionToken: alice's own temporary credentials act as alice (with aws:TokenIssueTime), cannot
/// get more credentials, and root gets at most an hour.
#[tokio::test(flavor = "multi_thread")]
async fn get_session_token_gives_the_users_own_temporary_credentials() {
    let server = server(StoreKind::Sqlite, &[]);
    let endpoint = server.endpoint();
    let alice = (
        "AKIAALICEEXAMPLE0001",
        "aliceSecretKeyExample000000000000000001",
    );
    // A key alice may use only with temporary credentials.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"AliceTemporary","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"kms:Encrypt","Resource":"*","Condition":{{"Null":{{"aws:TokenIssueTime":"false"}}}}}}]}}"#
    );
    let key = server
        .client()
        .create_key()
        .policy(policy)
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();

    let mut cmd = common::awscli::command(&endpoint, alice);
    cmd.args(["sts", "get-session-token", "--duration-seconds", "900"]);
    let out = cmd.output().expect("aws runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &answer["Credentials"];
    let session = Session {
        access_key_id: c["AccessKeyId"].as_str().unwrap().to_string(),
        secret_access_key: c["SecretAccessKey"].as_str().unwrap().to_string(),
        session_token: c["SessionToken"].as_str().unwrap().to_string(),
    };
    assert!(session.access_key_id.starts_with("ASIA"));

    let (status, body) = who_am_i(&server, creds(&session)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        element(&body, "Arn").as_deref(),
        Some("arn:aws:iam::111122223333:user/alice")
    );
    let encrypt = |client: aws_sdk_kms::Client| {
        let key_id = key_id.clone();
        async move {
            client
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(b"t".to_vec()))
                .send()
                .await
        }
    };
    encrypt(sts::kms_client(&endpoint, &session, REGION))
        .await
        .expect("alice's temporary credentials carry aws:TokenIssueTime");
    let err = encrypt(server.client_as(alice.0, alice.1, REGION))
        .await
        .unwrap_err();
    assert_eq!(
        common::code(&err),
        "AccessDeniedException",
        "her own keys do not"
    );

    // No credentials from credentials; root gets an hour at most.
    let form = [("Action", "GetSessionToken"), ("Version", "2011-06-15")];
    let (status, body) = sts::call(&endpoint, &form, creds(&session), REGION).await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    let root_form = [
        ("Action", "GetSessionToken"),
        ("Version", "2011-06-15"),
        ("DurationSeconds", "7200"),
    ];
    let (status, body) = sts::call(
        &endpoint,
        &root_form,
        (ACCESS_KEY, SECRET_KEY, None),
        REGION,
    )
    .await;
    assert_eq!(
        (status, sts_code(&body).as_str()),
        (400, "ValidationError"),
        "{body}"
    );
    assert!(body.contains("less than or equal to 3600"), "{body}");

    // The trail shows alice's calls with the temporary key and a session context.
    let records = Db::open(&server).await.audit_records().await;
    let used = records
        .iter()
        .find(|r| r["userIdentity"]["accessKeyId"] == session.access_key_id.as_str())
        .expect("a record of the session");
    assert_eq!(used["userIdentity"]["type"], "IAMUser");
    assert_eq!(used["userIdentity"]["userName"], "alice");
    assert_eq!(
        used["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
        "false"
    );
}
