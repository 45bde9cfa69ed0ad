//! Durability and tamper evidence: an acknowledged call's record survives SIGKILL, the chain
//! verifies, a hand-edited audit row is named by `trent trail verify`, and the database itself
//! refuses UPDATE on the event table.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use common::db::Db;
use common::{StoreKind, TestServer};

async fn acknowledged_calls_survive_sigkill_and_tampering_is_named(store: StoreKind) {
    let mut server = TestServer::start(store);
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let enc = client
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"durable".to_vec()))
        .send()
        .await
        .unwrap();
    let request_id = aws_sdk_kms::operation::RequestId::request_id(&enc)
        .expect("request id")
        .to_string();
    server.kill9();

    let db = Db::open(&server).await;
    let sequence = db
        .audit_sequence_of(&request_id)
        .await
        .expect("the acknowledged Encrypt has its audit record after SIGKILL");

    server.restart();
    let client = server.client();
    let dec = client
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect("the key survived the crash");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"durable");
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "trail verify failed on an intact chain: {out}");
    assert!(out.contains("hash chain intact"), "{out}");

    // The database refuses to rewrite events and audit records.
    let refused = db.execute("UPDATE events SET event_type = 'Forged'").await;
    assert!(refused.is_err(), "UPDATE on events was accepted");
    assert!(
        db.execute("DELETE FROM events").await.is_err(),
        "DELETE on events was accepted"
    );
    assert!(db
        .execute("UPDATE audit_records SET record = 'x'")
        .await
        .is_err());
    server.kill9();

    // A DBA who switches the guard off and edits a record is caught at that record.
    db.disable_audit_guard().await;
    let changed = db
        .execute(&format!(
            "UPDATE audit_records SET record = replace(record, '\"eventName\":\"Encrypt\"', '\"eventName\":\"Decrypt\"') WHERE sequence = {sequence}"
        ))
        .await
        .expect("the edit");
    assert_eq!(changed, 1);
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(!ok, "trail verify passed a tampered chain: {out}");
    assert!(
        out.contains(&format!("BROKEN at audit record {sequence}")),
        "verify did not name record {sequence}: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_durability() {
    acknowledged_calls_survive_sigkill_and_tampering_is_named(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_durability() {
    acknowledged_calls_survive_sigkill_and_tampering_is_named(StoreKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_exits_cleanly() {
    let mut server = TestServer::start(StoreKind::Sqlite);
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    // Calls in flight while the signal arrives either complete (and are recorded) or are refused
    // before they start; none is acknowledged without its record.
    let mut calls = Vec::new();
    for _ in 0..20 {
        let c = client.clone();
        let k = key_id.clone();
        calls.push(tokio::spawn(async move {
            c.encrypt()
                .key_id(k)
                .plaintext(Blob::new(vec![1u8; 64]))
                .send()
                .await
                .ok()
                .and_then(|r| aws_sdk_kms::operation::RequestId::request_id(&r).map(str::to_string))
        }));
    }
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        (s, server)
    });
    let mut acknowledged = Vec::new();
    for c in calls {
        if let Some(id) = c.await.unwrap() {
            acknowledged.push(id);
        }
    }
    let (status, server) = status.await.unwrap();
    assert!(status.success(), "trent exited with {status}");
    let records = common::sqlite_audit_records(&server.data_dir);
    for id in &acknowledged {
        assert!(
            records.iter().any(|r| r["requestID"] == id.as_str()),
            "acknowledged call {id} has no record after shutdown"
        );
    }
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "{out}");
}
