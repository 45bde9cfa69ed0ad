//! The one request pipeline (issue 11): STS and CloudTrail calls have quotas like KMS calls, every
//! refusal is audited and answered in its own protocol's shape (an oversize STS request gets STS's
//! XML, not KMS's JSON), and a burst of unauthenticated requests through a one-wide lane still
//! leaves one record per request.

use std::time::SystemTime;

use crate::common;

use common::db::Db;
use common::{signed_post, StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};

/// Records of `server` with this error code and event source.
async fn records_with(server: &TestServer, code: &str, source: &str) -> Vec<serde_json::Value> {
    Db::open(server)
        .await
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["errorCode"] == code && r["eventSource"] == source)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_and_cloudtrail_calls_have_quotas_and_audited_refusals() {
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &["--quota-sts", "2", "--quota-cloudtrail", "2"],
    );
    let endpoint = server.endpoint();
    let mut sts_throttled = 0;
    for _ in 0..8 {
        let (status, xml) = common::sts::call(
            &endpoint,
            &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
            (ACCESS_KEY, SECRET_KEY, None),
            REGION,
        )
        .await;
        if status != 200 {
            assert_eq!(status, 400, "{xml}");
            assert_eq!(
                common::sts::element(&xml, "Code").as_deref(),
                Some("Throttling")
            );
            assert_eq!(
                common::sts::element(&xml, "Type").as_deref(),
                Some("Sender")
            );
            sts_throttled += 1;
        }
    }
    assert!(
        sts_throttled >= 4,
        "only {sts_throttled} of 8 STS calls throttled at 2/s"
    );

    let mut lookups_throttled = 0;
    for _ in 0..8 {
        let resp = signed_post(
            &endpoint,
            vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target".into(),
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".into(),
                ),
            ],
            b"{}",
            Some((ACCESS_KEY, SECRET_KEY, None)),
            REGION,
            "cloudtrail",
            SystemTime::now(),
        )
        .await;
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        if status != 200 {
            assert_eq!(
                (status, body["__type"].as_str()),
                (400, Some("ThrottlingException")),
                "{body}"
            );
            lookups_throttled += 1;
        }
    }
    assert!(
        lookups_throttled >= 4,
        "only {lookups_throttled} of 8 lookups throttled at 2/s"
    );
    // KMS calls draw on buckets of their own.
    let key = server.client().create_key().send().await;
    assert!(key.is_ok(), "{key:?}");

    let sts = records_with(&server, "Throttling", "sts.amazonaws.com").await;
    assert_eq!(sts.len(), sts_throttled);
    assert!(sts.iter().all(|r| r["eventName"] == "GetCallerIdentity"
        && r["userIdentity"]["accountId"] == common::ACCOUNT));
    let lookups = records_with(&server, "ThrottlingException", "cloudtrail.amazonaws.com").await;
    assert_eq!(lookups.len(), lookups_throttled);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_sts_request_gets_an_sts_error_and_a_record() {
    let server = TestServer::start(StoreKind::Sqlite);
    let mut body = b"Action=GetCallerIdentity&Version=2011-06-15&Pad=".to_vec();
    body.resize(2 * 1024 * 1024, b'x');
    let resp = common::http()
        .post(format!("{}/", server.endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("an answer, not a reset connection");
    assert_eq!(resp.status().as_u16(), 413);
    let request_id = resp.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(resp.headers()["content-type"], "text/xml");
    let xml = resp.text().await.unwrap();
    assert_eq!(
        common::sts::element(&xml, "Code").as_deref(),
        Some("RequestEntityTooLargeException"),
        "{xml}"
    );
    assert_eq!(
        common::sts::element(&xml, "RequestId").as_deref(),
        Some(request_id.as_str())
    );
    let records = records_with(
        &server,
        "RequestEntityTooLargeException",
        "sts.amazonaws.com",
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["requestID"], request_id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_refusals_through_a_narrow_lane_each_have_a_record() {
    let server = TestServer::start_with(StoreKind::Sqlite, &["--unauthenticated-in-flight", "1"]);
    let endpoint = server.endpoint();
    let calls = (0..24).map(|_| {
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let resp = common::http()
                .post(format!("{endpoint}/"))
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", "TrentService.ListKeys")
                .body("{}")
                .send()
                .await
                .unwrap();
            let id = resp.headers()["x-amzn-requestid"]
                .to_str()
                .unwrap()
                .to_string();
            let body: serde_json::Value = resp.json().await.unwrap();
            (body["__type"].as_str().unwrap_or_default().to_string(), id)
        })
    });
    let mut ids = Vec::new();
    for call in calls {
        let (code, id) = call.await.unwrap();
        assert_eq!(code, "MissingAuthenticationTokenException");
        ids.push(id);
    }
    let records = records_with(
        &server,
        "MissingAuthenticationTokenException",
        "kms.amazonaws.com",
    )
    .await;
    for id in &ids {
        assert_eq!(
            records
                .iter()
                .filter(|r| r["requestID"] == id.as_str())
                .count(),
            1,
            "request {id} has exactly one record"
        );
    }
    // A signed caller is answered meanwhile as always.
    assert!(server.client().list_keys().send().await.is_ok());
}
