//! The web console: its files are served under `/console/`, its "what changes" operation
//! (`SimulateKeyPolicyChange`) is authorised and audited like any call on both stores, and the
//! whole console runs in a real browser (`tests/console/scenario.mjs`, Debian's Chromium driven
//! by playwright-core) against a real `trent serve`; screenshots of each page are left in
//! `target/console-screenshots/`.

use crate::common;

use common::{browser, StoreKind, TestServer, ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY};
use serde_json::{json, Value};

const ALICE: (&str, &str) = (
    "AKIAALICEEXAMPLE0001",
    "aliceSecretKeyExample000000000000000001",
);
const BOB_ARN: &str = "arn:aws:iam::111122223333:user/bob";
const ALICE_ARN: &str = "arn:aws:iam::111122223333:user/alice";
const SIMULATE: &str = "TrentPolicySimulator_20261201.SimulateKeyPolicyChange";

/// Root, alice (who may list keys and aliases, and nothing else by her own policies) and bob.
const IDENTITIES: &str = r#"
[[accounts]]
id = "111122223333"
root_access_keys = [
  { access_key_id = "AKIAIOSFODNN7EXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
]

[[accounts.users]]
name = "alice"
access_keys = [
  { access_key_id = "AKIAALICEEXAMPLE0001", secret_access_key = "aliceSecretKeyExample000000000000000001" },
]
policies = [
  { name = "list-keys", document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:ListKeys","kms:ListAliases"],"Resource":"*"}]}' },
]

[[accounts.users]]
name = "bob"
access_keys = [
  { access_key_id = "AKIABOBEXAMPLE000002", secret_access_key = "bobSecretKeyExample0000000000000000002" },
]
"#;

/// A key policy: the account's root may do everything, `extra` statements added.
fn policy(extra: &[Value]) -> String {
    let mut statements = vec![json!({
        "Sid": "Root", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
        "Action": "kms:*", "Resource": "*"
    })];
    statements.extend(extra.iter().cloned());
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn start(store: StoreKind) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("identities.toml");
    std::fs::write(&config, IDENTITIES).expect("write identities");
    let server = TestServer::start_with(store, &["--config", config.to_str().expect("utf-8")]);
    (server, dir)
}

async fn call(
    server: &TestServer,
    target: &str,
    body: Value,
    who: (&str, &str),
) -> common::RawResponse {
    common::raw_call(
        &server.endpoint(),
        target,
        body.to_string().as_bytes(),
        Some(who),
        REGION,
    )
    .await
}

async fn create_key(server: &TestServer, key_policy: String) -> String {
    let made = call(
        server,
        "TrentService.CreateKey",
        json!({"Policy": key_policy, "Description": "console test"}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    made.body["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string()
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_content_policy() {
    let server = TestServer::start(StoreKind::Sqlite);
    let http = common::http();
    let page = http
        .get(format!("{}/console/", server.endpoint()))
        .send()
        .await
        .expect("GET /console/");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(page.text().await.expect("body").contains("console.js"));
    for (file, content_type) in [
        ("console.js", "text/javascript"),
        ("console.css", "text/css"),
    ] {
        let resp = http
            .get(format!("{}/console/{file}", server.endpoint()))
            .send()
            .await
            .expect("GET asset");
        assert_eq!(resp.status(), 200, "{file}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with(content_type));
    }
    let missing = http
        .get(format!("{}/console/nothing.js", server.endpoint()))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status(), 404);
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/console", server.endpoint()))
        .send()
        .await
        .expect("GET /console");
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/console/");
}

/// The bundle embedded in the binary is what its sources build to (and they type-check):
/// nobody can change `service/console/src` and forget `npm run build`, or edit `dist/` by hand.
#[test]
fn the_committed_console_is_built_from_its_sources() {
    let built = browser::build_console();
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service/console/dist");
    for file in ["index.html", "console.js", "console.css"] {
        let fresh = std::fs::read(built.join(file)).expect("built file");
        let kept = std::fs::read(committed.join(file)).expect("committed file");
        assert!(
            fresh == kept,
            "service/console/dist/{file} is not what its sources build to: run npm run build in service/console"
        );
    }
}

async fn what_changes_is_authorised_and_audited(store: StoreKind) {
    let (server, _dir) = start(store);
    let key = create_key(&server, policy(&[])).await;
    let candidate = policy(&[json!({
        "Sid": "BobDecrypts", "Effect": "Allow", "Principal": {"AWS": BOB_ARN},
        "Action": "kms:Decrypt", "Resource": "*"
    })]);

    let answer = call(
        &server,
        SIMULATE,
        json!({"KeyId": key, "Policy": candidate}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let changes = answer.body["Changes"].as_array().expect("changes");
    assert_eq!(
        changes,
        &vec![json!({
            "Principal": BOB_ARN, "Action": "kms:Decrypt",
            "Before": "implicitDeny", "After": "allowed",
            "DecidingStatements": ["BobDecrypts"]
        })],
        "only bob gains, and only Decrypt"
    );
    assert_eq!(answer.body["CallerKeepsPutKeyPolicy"], true);
    let principals = answer.body["Principals"].as_array().expect("principals");
    assert!(principals.contains(&json!(ALICE_ARN)) && principals.contains(&json!(BOB_ARN)));

    // A policy that locks the caller out says so; nothing was changed by asking.
    let lockout = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": BOB_ARN}, "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    let answer = call(
        &server,
        SIMULATE,
        json!({"KeyId": key, "Policy": lockout}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(
        answer.body["CallerKeepsPutKeyPolicy"], false,
        "{:?}",
        answer.body
    );
    let root_loses = answer.body["Changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| {
            c["Principal"] == json!(format!("arn:aws:iam::{ACCOUNT}:root"))
                && c["After"] == "implicitDeny"
        });
    assert!(root_loses, "{:?}", answer.body);
    let stored = call(
        &server,
        "TrentService.GetKeyPolicy",
        json!({"KeyId": key}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(stored.body["Policy"], json!(policy(&[])));

    // Alice may not read or change the key's policy, so she may not ask.
    let denied = call(
        &server,
        SIMULATE,
        json!({"KeyId": key, "Policy": policy(&[])}),
        ALICE,
    )
    .await;
    assert_eq!(
        (denied.status, denied.error_type()),
        (400, "AccessDeniedException")
    );
    assert!(denied.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("kms:GetKeyPolicy"));

    // Bad input gets AWS-style errors.
    let malformed = call(
        &server,
        SIMULATE,
        json!({"KeyId": key, "Policy": "{not json"}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(malformed.error_type(), "MalformedPolicyDocumentException");
    let missing = call(
        &server,
        SIMULATE,
        json!({"KeyId": key}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(
        (missing.status, missing.error_type()),
        (400, "ValidationException")
    );
    let unknown_key = call(
        &server,
        SIMULATE,
        json!({"KeyId": "11111111-2222-3333-4444-555555555555", "Policy": policy(&[])}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(unknown_key.error_type(), "NotFoundException");
    let other = call(
        &server,
        "TrentPolicySimulator_20261201.Nothing",
        json!({}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(other.error_type(), "UnknownOperationException");

    // Each question is audited, the denied one too, without the candidate policy's text.
    let found = common::signed_post(
        &server.endpoint(),
        vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            (
                "x-amz-target".into(),
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".into(),
            ),
        ],
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "SimulateKeyPolicyChange"}]})
            .to_string()
            .as_bytes(),
        Some((ACCESS_KEY, SECRET_KEY, None)),
        REGION,
        "cloudtrail",
        std::time::SystemTime::now(),
    )
    .await;
    let found: Value = found.json().await.expect("LookupEvents answers JSON");
    let records: Vec<Value> = found["Events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            serde_json::from_str(e["CloudTrailEvent"].as_str().expect("record")).expect("json")
        })
        .collect();
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(records.iter().any(
        |r| r["errorCode"] == "AccessDeniedException" && r["userIdentity"]["arn"] == ALICE_ARN
    ));
    assert!(records.iter().all(|r| r["readOnly"] == true
        && r["eventSource"] == "kms.amazonaws.com"
        && !r.to_string().contains("BobDecrypts")));
}

#[tokio::test]
async fn what_changes_is_authorised_and_audited_sqlite() {
    what_changes_is_authorised_and_audited(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn what_changes_is_authorised_and_audited_postgres() {
    what_changes_is_authorised_and_audited(StoreKind::Postgres).await;
}

/// The whole console in Chromium: alice sees only the keys she may describe; root creates a
/// key, tags it, schedules and cancels its deletion; the "what changes" view names bob gaining
/// Decrypt; the audit page finds an Encrypt by request id; sign-out leaves no credential. Then
/// the server's state and the trail show that the console's calls were real, audited calls.
#[tokio::test]
async fn the_console_in_a_real_browser() {
    let (server, _dir) = start(StoreKind::Sqlite);
    let visible = create_key(
        &server,
        policy(&[json!({
            "Sid": "AliceDescribes", "Effect": "Allow", "Principal": {"AWS": ALICE_ARN},
            "Action": "kms:DescribeKey", "Resource": "*"
        })]),
    )
    .await;
    let hidden = create_key(&server, policy(&[])).await;
    let encrypted = call(
        &server,
        "TrentService.Encrypt",
        json!({"KeyId": visible, "Plaintext": "aGVsbG8="}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(encrypted.status, 200);
    let request_id = encrypted.request_id.expect("request id");
    let screenshots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");

    let facts = tokio::task::spawn_blocking({
        let env = vec![
            ("TRENT_URL", server.endpoint()),
            ("SCREENSHOTS", screenshots.display().to_string()),
            ("ROOT_AK", ACCESS_KEY.to_string()),
            ("ROOT_SK", SECRET_KEY.to_string()),
            ("ALICE_AK", ALICE.0.to_string()),
            ("ALICE_SK", ALICE.1.to_string()),
            ("KEY_VISIBLE", visible.clone()),
            ("KEY_HIDDEN", hidden.clone()),
            ("ENCRYPT_REQUEST_ID", request_id.clone()),
            ("BOB_ARN", BOB_ARN.to_string()),
        ];
        move || browser::run_scenario("scenario.mjs", &env)
    })
    .await
    .expect("the scenario ran");

    // What the browser did happened on the server.
    let created = facts["createdKey"].as_str().expect("created key id");
    let described = call(
        &server,
        "TrentService.DescribeKey",
        json!({"KeyId": created}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(
        described.body["KeyMetadata"]["KeyState"], "Disabled",
        "cancelled deletion"
    );
    let tags = call(
        &server,
        "TrentService.ListResourceTags",
        json!({"KeyId": created}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(
        tags.body["Tags"],
        json!([{"TagKey": "team", "TagValue": "payments"}])
    );
    let saved = call(
        &server,
        "TrentService.GetKeyPolicy",
        json!({"KeyId": visible}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert!(saved.body["Policy"]
        .as_str()
        .unwrap_or_default()
        .contains("BobDecrypts"));

    // The console's calls are audited like any other, naming the console's user agent.
    let records = common::sqlite_audit_records(&server.data_dir);
    let by_console = |name: &str, who: &str| {
        records.iter().any(|r| {
            r["eventName"] == name
                && r["userIdentity"]["arn"] == who
                && r["userAgent"].as_str().is_some_and(|ua| {
                    ua.contains("trent-console/") && ua.contains("HeadlessChrome")
                })
        })
    };
    let root_arn = format!("arn:aws:iam::{ACCOUNT}:root");
    for name in [
        "CreateKey",
        "TagResource",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "PutKeyPolicy",
        "SimulateKeyPolicyChange",
        "LookupEvents",
        "GetCallerIdentity",
    ] {
        assert!(
            by_console(name, &root_arn),
            "{name} by root through the console"
        );
    }
    assert!(by_console("ListKeys", ALICE_ARN));
    assert!(records.iter().any(|r| r["eventName"] == "DescribeKey"
        && r["userIdentity"]["arn"] == ALICE_ARN
        && r["errorCode"] == "AccessDeniedException"
        && r["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.contains("trent-console/"))));

    assert_screenshots(
        &screenshots,
        &[
            "01-sign-in",
            "02-keys-as-alice",
            "05-key-detail",
            "06-policy-what-changes",
            "08-audit",
            "09-key-usage",
            "10-keys-phone",
        ],
    );
}

/// The console from the keyboard alone, with slow calls held at a gate in the browser, more
/// keys than a page and a time window on the audit page (`tests/console/navigation.mjs`). Then
/// the server shows that what was typed and pressed happened, through audited console calls.
#[tokio::test]
async fn the_console_from_the_keyboard_with_slow_calls_and_many_keys() {
    const KEYS: usize = 25;
    const ENCRYPTS: usize = 3;
    let (server, _dir) = start(StoreKind::Sqlite);
    let mut keys = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        keys.push(create_key(&server, policy(&[])).await);
    }
    let key = keys[0].clone();
    let epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    };
    let calls_from = epoch() - 1;
    for _ in 0..ENCRYPTS {
        let encrypted = call(
            &server,
            "TrentService.Encrypt",
            json!({"KeyId": key, "Plaintext": "aGVsbG8="}),
            (ACCESS_KEY, SECRET_KEY),
        )
        .await;
        assert_eq!(encrypted.status, 200, "{:?}", encrypted.body);
    }
    let calls_to = epoch() + 1;
    let screenshots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");

    let facts = tokio::task::spawn_blocking({
        let env = vec![
            ("TRENT_URL", server.endpoint()),
            ("SCREENSHOTS", screenshots.display().to_string()),
            ("ROOT_AK", ACCESS_KEY.to_string()),
            ("ROOT_SK", SECRET_KEY.to_string()),
            ("KEYS", json!(keys).to_string()),
            ("KEY", key.clone()),
            ("ENCRYPTS", ENCRYPTS.to_string()),
            ("CALLS_FROM", calls_from.to_string()),
            ("CALLS_TO", calls_to.to_string()),
        ];
        move || browser::run_scenario("navigation.mjs", &env)
    })
    .await
    .expect("the scenario ran");
    for page in [
        "keysPage",
        "keyPage",
        "policyPage",
        "auditPage",
        "usagePage",
    ] {
        assert_eq!(facts[page]["missing"], json!([]), "{page}: {facts}");
        assert!(facts[page]["count"].as_u64().unwrap_or(0) > 0, "{page}");
    }

    // What was pressed and typed happened on the server.
    let described = call(
        &server,
        "TrentService.DescribeKey",
        json!({"KeyId": key}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert_eq!(described.body["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(
        described.body["KeyMetadata"]["Description"],
        "typed on a keyboard"
    );
    let tags = call(
        &server,
        "TrentService.ListResourceTags",
        json!({"KeyId": key}),
        (ACCESS_KEY, SECRET_KEY),
    )
    .await;
    assert!(
        tags.body["Tags"]
            .as_array()
            .expect("tags")
            .contains(&json!({"TagKey": "owner", "TagValue": "keyboard"})),
        "{:?}",
        tags.body
    );
    let records = common::sqlite_audit_records(&server.data_dir);
    for name in [
        "DisableKey",
        "EnableKey",
        "UpdateKeyDescription",
        "TagResource",
    ] {
        assert!(
            records.iter().any(|r| r["eventName"] == name
                && r["errorCode"].is_null()
                && r["userAgent"]
                    .as_str()
                    .is_some_and(|ua| ua.contains("trent-console/"))),
            "{name} through the console"
        );
    }
    assert_screenshots(
        &screenshots,
        &[
            "11-signing-in",
            "12-loading-keys",
            "13-keys-page-2",
            "14-loading-key",
            "15-working",
            "16-section-error",
            "17-audit-window",
            "18-key-phone",
            "19-audit-phone",
        ],
    );
}

/// Each named screenshot was saved and holds a picture (more than an empty page's bytes).
fn assert_screenshots(dir: &std::path::Path, pages: &[&str]) {
    for page in pages {
        let shot = dir.join(format!("{page}.png"));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "screenshot {} ({size} bytes)",
            shot.display()
        );
    }
}
