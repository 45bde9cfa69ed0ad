//! Policy simulation: `trent policy simulate` and the admin `/simulate` endpoint answer what live
//! calls do (they share the evaluation), name the deciding statements, list the context keys the
//! request lacked, and evaluate candidate policies without changing anything.

use crate::common;

use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use common::{free_port, trent_bin, StoreKind, TestServer, ACCOUNT, REGION};
use serde_json::{json, Value};

const ALICE: (&str, &str) = (
    "AKIAALICEEXAMPLE0001",
    "aliceSecretKeyExample000000000000000001",
);
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");

fn simulate_cli(server: &TestServer, args: &[&str]) -> (i32, Value) {
    let out = Command::new(trent_bin())
        .args(["policy", "simulate", "--config", CONFIG])
        .args(server.store_args())
        .args(args)
        .env("TRENT_LOG", "warn")
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let body = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "simulate printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn simulation_answers_as_live_calls_do() {
    let admin = format!("127.0.0.1:{}", free_port());
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &["--config", CONFIG, "--admin-listen", &admin],
    );
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"AliceUses","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}},
        {{"Sid":"NoSecretDecrypt","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:class":"secret"}}}}}}]}}"#
    );
    let created = server
        .client()
        .create_key()
        .policy(&policy)
        .send()
        .await
        .unwrap();
    let arn = created.key_metadata().unwrap().arn().unwrap().to_string();
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");

    // The live call: denied by the condition.
    let alice = server.client_as(ALICE.0, ALICE.1, REGION);
    let enc = alice
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_context("class", "secret")
        .send()
        .await
        .unwrap();
    let live = alice
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .encryption_context("class", "secret")
        .send()
        .await
        .unwrap_err();
    let live_message = live
        .as_service_error()
        .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::message(e))
        .unwrap()
        .to_string();

    // The simulation: the same decision, the same message, and the statement that decided.
    let (code, denied) = simulate_cli(
        &server,
        &[
            "--principal",
            &alice_arn,
            "--action",
            "kms:Decrypt",
            "--key",
            &arn,
            "--encryption-context",
            "class=secret",
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(denied["decision"], "explicitDeny");
    assert_eq!(denied["denialMessage"], live_message);
    assert!(
        denied["matchedStatements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["sid"] == "NoSecretDecrypt" && s["effect"] == "Deny"),
        "{denied}"
    );

    // Without the context the Deny does not apply; the simulator says which key was missing.
    let (code, allowed) = simulate_cli(
        &server,
        &[
            "--principal",
            &alice_arn,
            "--action",
            "kms:Decrypt",
            "--key",
            &arn,
        ],
    );
    assert_eq!(code, 0, "{allowed}");
    assert_eq!(allowed["decision"], "allowed");
    let missing: Vec<String> = allowed["missingContextKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        missing.contains(&"kms:encryptioncontext:class".to_string()),
        "{allowed}"
    );

    // A candidate key policy without alice: implicit deny, and nothing changed on the key.
    let candidate = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        candidate.path(),
        format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#),
    )
    .unwrap();
    let (code, proposed) = simulate_cli(
        &server,
        &[
            "--principal",
            &alice_arn,
            "--action",
            "kms:Encrypt",
            "--key",
            &arn,
            "--key-policy-file",
            candidate.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(proposed["decision"], "implicitDeny");
    alice
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"still allowed".to_vec()))
        .send()
        .await
        .expect("the candidate policy was only simulated");

    // The admin endpoint answers the same question the same way.
    let http: Value = common::http()
        .post(format!("http://{admin}/simulate"))
        .json(&json!({
            "principal": alice_arn,
            "action": "kms:Decrypt",
            "key": arn,
            "encryptionContext": {"class": "secret"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http, denied);

    // Further request keys: a candidate policy that lets alice create Decrypt-only grants.
    std::fs::write(
        candidate.path(),
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{alice_arn}"}},"Action":"kms:CreateGrant","Resource":"*","Condition":{{"ForAllValues:StringEquals":{{"kms:GrantOperations":"Decrypt"}},"Null":{{"kms:GrantOperations":"false"}}}}}}]}}"#
        ),
    )
    .unwrap();
    let grant = |ops: &[&str]| {
        let mut args = vec![
            "--principal",
            &alice_arn,
            "--action",
            "kms:CreateGrant",
            "--key",
            &arn,
            "--key-policy-file",
            candidate.path().to_str().unwrap(),
        ];
        for op in ops {
            args.extend(["--context", op]);
        }
        simulate_cli(&server, &args).1["decision"].clone()
    };
    assert_eq!(grant(&["kms:GrantOperations=Decrypt"]), "allowed");
    assert_eq!(
        grant(&["kms:GrantOperations=Decrypt", "kms:GrantOperations=Encrypt"]),
        "implicitDeny"
    );
    assert_eq!(grant(&[]), "implicitDeny");
}
