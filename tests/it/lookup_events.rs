//! CloudTrail's LookupEvents through the real AWS CLI (`aws cloudtrail lookup-events
//! --endpoint-url`): each lookup attribute, a time window, pagination, authorization by the
//! caller's identity policy, and never another account's records.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use common::{awscli, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::Value;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");
const CAROL: (&str, &str) = (
    "AKIACAROLEXAMPLE0003",
    "carolSecretKeyExample00000000000000003",
);

fn lookup(server: &TestServer, creds: (&str, &str), args: &[&str]) -> Result<Value, String> {
    let out = awscli::command(&server.endpoint(), creds)
        .args(["cloudtrail", "lookup-events", "--no-paginate"])
        .args(args)
        .output()
        .expect("aws runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn names(v: &Value) -> Vec<String> {
    v["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_events_by_attribute_window_and_page() {
    let server = TestServer::start_with(StoreKind::Sqlite, &["--config", CONFIG]);
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let enc = client
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"l".to_vec()))
        .send()
        .await
        .unwrap();
    client
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    client.describe_key().key_id(&arn).send().await.unwrap();
    // carol (another account) makes a call of her own, which must never show up for
    // 111122223333, and tries 111122223333's key, which its owner sees (a cross-account event is
    // delivered to both accounts).
    let carol = server.client_as(CAROL.0, CAROL.1, REGION);
    let _ = carol.list_keys().send().await;
    let _ = carol.describe_key().key_id(&arn).send().await;

    let root = (ACCESS_KEY, SECRET_KEY);
    let as_root = |args: Vec<String>| {
        let server_endpoint = &server;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        lookup(server_endpoint, root, &refs)
    };
    let all = as_root(vec![]).unwrap();
    let all_names = names(&all);
    assert_eq!(
        all_names.first().map(String::as_str),
        Some("DescribeKey"),
        "newest first"
    );
    assert_eq!(
        all_names,
        [
            "DescribeKey",
            "DescribeKey",
            "Decrypt",
            "Encrypt",
            "CreateKey"
        ]
    );
    let records: Vec<Value> = all["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect();
    assert!(records
        .iter()
        .all(|r| r["recipientAccountId"] == "111122223333"));
    assert_eq!(records[0]["userIdentity"]["accountId"], "444455556666");
    assert_eq!(records[0]["errorCode"], "AccessDeniedException");
    assert!(records[0]["sharedEventID"].is_string());

    // Every lookup is itself audited (cloudtrail.amazonaws.com), so the counts below are of KMS
    // events, and the lookups made so far are counted at the end.
    let mut lookups = 1;
    let cases: &[(&str, &str, usize)] = &[
        ("EventName", "Encrypt", 1),
        ("ReadOnly", "false", 1),
        // Dense values (no index rows; read in time order and matched): lookup.rs DENSE.
        ("ReadOnly", "true", 4),
        ("Username", "root", 4),
        ("ResourceName", &arn, 5),
        ("ResourceType", "AWS::KMS::Key", 5),
        ("EventSource", "kms.amazonaws.com", 5),
        ("AccessKeyId", ACCESS_KEY, 4),
        ("EventName", "RevokeGrant", 0),
    ];
    for (attr, value, expected) in cases {
        let got = as_root(vec![
            "--lookup-attributes".into(),
            format!("AttributeKey={attr},AttributeValue={value}"),
        ])
        .unwrap();
        lookups += 1;
        let kms_events = got["Events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["EventSource"] == "kms.amazonaws.com")
            .count();
        assert_eq!(kms_events, *expected, "{attr}={value}");
    }
    let audited = as_root(vec![
        "--lookup-attributes".into(),
        "AttributeKey=EventSource,AttributeValue=cloudtrail.amazonaws.com".into(),
    ])
    .unwrap();
    assert_eq!(
        names(&audited).len(),
        lookups,
        "each earlier lookup has its record"
    );
    let record: Value =
        serde_json::from_str(audited["Events"][0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["eventName"], "LookupEvents");
    assert_eq!(record["readOnly"], true);
    assert_eq!(
        record["requestParameters"]["LookupAttributes"][0]["AttributeValue"],
        "RevokeGrant"
    );
    let encrypt_id = as_root(vec![
        "--lookup-attributes".into(),
        "AttributeKey=EventName,AttributeValue=Encrypt".into(),
    ])
    .unwrap()["Events"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = as_root(vec![
        "--lookup-attributes".into(),
        format!("AttributeKey=EventId,AttributeValue={encrypt_id}"),
    ])
    .unwrap();
    assert_eq!(names(&by_id), ["Encrypt"]);

    // A window in the past holds nothing; pagination walks the KMS events once.
    let none = as_root(vec![
        "--start-time".into(),
        "2001-01-01T00:00:00Z".into(),
        "--end-time".into(),
        "2001-01-02T00:00:00Z".into(),
    ])
    .unwrap();
    assert!(names(&none).is_empty());
    let kms_only = || {
        vec![
            "--lookup-attributes".to_string(),
            "AttributeKey=EventSource,AttributeValue=kms.amazonaws.com".to_string(),
            "--max-results".to_string(),
            "3".to_string(),
        ]
    };
    let first = as_root(kms_only()).unwrap();
    assert_eq!(names(&first).len(), 3);
    let token = first["NextToken"]
        .as_str()
        .expect("a next token")
        .to_string();
    let second = as_root([kms_only(), vec!["--next-token".into(), token]].concat()).unwrap();
    assert_eq!(names(&second), ["Encrypt", "CreateKey"]);
    assert!(second.get("NextToken").is_none());

    let err = as_root(vec![
        "--start-time".into(),
        "2030-01-02T00:00:00Z".into(),
        "--end-time".into(),
        "2030-01-01T00:00:00Z".into(),
    ])
    .unwrap_err();
    assert!(err.contains("InvalidTimeRangeException"), "{err}");

    // carol's identity policy does not allow cloudtrail:LookupEvents.
    let err = lookup(&server, CAROL, &[]).unwrap_err();
    assert!(err.contains("AccessDeniedException"), "{err}");
}

/// History lives in the shared store: a call through one replica is found by LookupEvents and
/// counted by GetKeyLastUsage through another at once, with no catch-up and no restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_through_one_replica_is_found_through_another_at_once() {
    let a = TestServer::start(StoreKind::Postgres);
    let b = a.another_on_same_store();
    let key = a.client().create_key().send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let encrypted = a
        .client()
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"r".to_vec()))
        .send()
        .await
        .unwrap();
    let request_id = aws_sdk_kms::operation::RequestId::request_id(&encrypted)
        .unwrap()
        .to_string();
    let last = b
        .client()
        .get_key_last_usage()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    let last = last.key_last_usage().expect("the use through A");
    assert_eq!(last.kms_request_id(), Some(request_id.as_str()));
    let found = lookup(
        &b,
        (ACCESS_KEY, SECRET_KEY),
        &[
            "--lookup-attributes",
            &format!("AttributeKey=ResourceName,AttributeValue={arn}"),
        ],
    )
    .unwrap();
    assert_eq!(
        names(&found),
        vec!["GetKeyLastUsage", "Encrypt", "CreateKey"],
        "B's own call, then A's"
    );
    let record: Value =
        serde_json::from_str(found["Events"][1]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["requestID"], request_id.as_str());
    assert_eq!(
        found["Events"][1]["EventId"].as_str(),
        last.cloud_trail_event_id()
    );
}

/// CloudTrail's event history is per Region: a lookup in one Region pages through that
/// Region's records only, whatever the other Regions hold between them.
#[tokio::test(flavor = "multi_thread")]
async fn lookup_events_are_per_region() {
    let server = TestServer::start(StoreKind::Sqlite);
    let east = server.client();
    let west = server.client_as(ACCESS_KEY, SECRET_KEY, "eu-west-1");
    let mut west_arns = Vec::new();
    for _ in 0..3 {
        east.create_key().send().await.unwrap();
        let key = west.create_key().send().await.unwrap();
        west_arns.push(key.key_metadata().unwrap().arn().unwrap().to_string());
        east.create_key().send().await.unwrap();
    }
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut args = vec![
            "--region",
            "eu-west-1",
            "--max-results",
            "1",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateKey",
        ];
        if let Some(t) = &token {
            args.extend(["--next-token", t.as_str()]);
        }
        let page = lookup(&server, (ACCESS_KEY, SECRET_KEY), &args).unwrap();
        for event in page["Events"].as_array().unwrap() {
            let record: Value =
                serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap();
            assert_eq!(record["awsRegion"], "eu-west-1", "{record}");
            seen.push(
                event["Resources"][0]["ResourceName"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        token = page["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    west_arns.reverse();
    assert_eq!(
        seen, west_arns,
        "newest first, one page each, none of us-east-1"
    );
    let east_page = lookup(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        &[
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateKey",
        ],
    )
    .unwrap();
    assert_eq!(east_page["Events"].as_array().unwrap().len(), 6);
}
