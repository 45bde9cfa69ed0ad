//! Nothing lost under races and misconfiguration (issue 10): concurrent rotations of one key leave
//! every acknowledged ciphertext decryptable after a restart and through another replica, and
//! every call (the losers included) has its audit record.

use crate::common;

use aws_sdk_kms::primitives::Blob;
use common::db::Db;
use common::{code, StoreKind, TestServer};

/// Concurrent RotateKeyOnDemand calls per round.
const RACERS: usize = 8;
/// Rounds (a fresh key each): the race is lost in most rounds, not all.
const ROUNDS: usize = 3;
/// Ciphertexts made after each round's rotations.
const CIPHERTEXTS: usize = 20;

async fn concurrent_rotations_lose_no_ciphertext(store: StoreKind) {
    let mut server = TestServer::start(store);
    // Without the SDK's retries: each racer's own answer is what the test judges.
    let client = server.client_without_retries();
    let mut ciphertexts = Vec::new();
    let mut succeeded = 0;
    for _ in 0..ROUNDS {
        let key_id = client
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let client = client.clone();
                let key_id = key_id.clone();
                tokio::spawn(
                    async move { client.rotate_key_on_demand().key_id(key_id).send().await },
                )
            })
            .collect();
        let mut round_ok = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => round_ok += 1,
                Err(e) => assert_eq!(
                    code(&e),
                    "ConflictException",
                    "a rotation that lost the race answers ConflictException: {e:?}"
                ),
            }
        }
        assert!(round_ok >= 1, "at least one rotation succeeds");
        let rotations = client
            .list_key_rotations()
            .key_id(&key_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            rotations.rotations().len(),
            round_ok,
            "every acknowledged rotation, and only those, is listed"
        );
        succeeded += round_ok;
        for i in 0..CIPHERTEXTS {
            let plaintext = format!("round ciphertext {i}").into_bytes();
            let blob = client
                .encrypt()
                .key_id(&key_id)
                .plaintext(Blob::new(plaintext.clone()))
                .send()
                .await
                .unwrap()
                .ciphertext_blob()
                .unwrap()
                .clone();
            ciphertexts.push((plaintext, blob));
        }
    }

    // Every call has its record, the refused ones included.
    let records = Db::open(&server).await.audit_records().await;
    let rotation_records: Vec<_> = records
        .iter()
        .filter(|r| r["eventName"] == "RotateKeyOnDemand")
        .collect();
    assert_eq!(rotation_records.len(), RACERS * ROUNDS);
    let conflicts = rotation_records
        .iter()
        .filter(|r| r["errorCode"] == "ConflictException")
        .count();
    assert_eq!(conflicts, RACERS * ROUNDS - succeeded);

    // A second replica on the same PostgreSQL database decrypts every acknowledged ciphertext...
    if store == StoreKind::Postgres {
        let replica = server.another_on_same_store();
        let replica_client = replica.client();
        for (plaintext, blob) in &ciphertexts {
            let out = replica_client
                .decrypt()
                .ciphertext_blob(blob.clone())
                .send()
                .await
                .expect("another replica decrypts an acknowledged ciphertext");
            assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
        }
    }
    // ...and so does the same server after a restart.
    server.restart();
    let client = server.client();
    for (plaintext, blob) in &ciphertexts {
        let out = client
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .expect("an acknowledged ciphertext decrypts after a restart");
        assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
    }
    server.kill9();
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(ok, "replay --verify after concurrent rotations: {out}");
}

/// A key policy whose conditions compile to native predicates (`StringLike`, `ArnLike`).
const PATTERN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Owner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},
   "Action":"kms:*","Resource":"*"},
  {"Sid":"WebOnly","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*",
   "Condition":{"StringLike":{"kms:EncryptionContext:app":"web-*"},
                "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:*"}}}]}"#;

async fn replay_verify_accepts_pattern_conditions(store: StoreKind) {
    let mut server = TestServer::start(store);
    let client = server.client();
    for _ in 0..2 {
        client
            .create_key()
            .policy(PATTERN_POLICY)
            .send()
            .await
            .unwrap();
    }
    server.kill9();
    let (ok, out) = server.trent(&["replay", "--verify"]);
    assert!(
        ok,
        "replay --verify on StringLike/ArnLike key policies: {out}"
    );
    assert!(out.contains("agree"), "{out}");
}

/// A valid root key that is not the store's (32 bytes of 7, base64).
const FOREIGN_ROOT_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

fn refused(out: &common::Exited, expected: &str) {
    assert!(
        matches!(out.status, Some(s) if !s.success()),
        "the command must refuse to start; it printed: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(expected),
        "the refusal says {expected:?}: {}",
        out.stderr
    );
}

async fn a_store_refuses_a_missing_or_foreign_root_key(store: StoreKind) {
    let mut server = TestServer::start(store);
    let client = server.client();
    let key_id = client
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let blob = client
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"bound".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    server.kill9();
    let key_file = server.data_dir.join("root.key");
    let saved = std::fs::read(&key_file).unwrap();
    let args = server.store_args();

    // The key file is gone: refuse, say where it was looked for, and generate nothing.
    std::fs::remove_file(&key_file).unwrap();
    let out = server.serve_until_exit(&args, &[]);
    refused(&out, "no root key was found");
    assert!(
        out.stderr.contains(&key_file.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Restore the root key"),
        "{}",
        out.stderr
    );
    assert!(
        !key_file.exists(),
        "no key is generated for a store that holds data"
    );
    let mut replay = vec!["replay".to_string(), "--verify".into()];
    replay.extend(args.iter().cloned());
    refused(
        &common::run_trent_until_exit(&replay, &[]),
        "no root key was found",
    );
    assert!(!key_file.exists());

    // Another key, from the environment or the file: refuse, naming both key ids.
    let out = server.serve_until_exit(&args, &[("TRENT_ROOT_KEY", FOREIGN_ROOT_KEY)]);
    refused(&out, "is not the root key of");
    std::fs::write(&key_file, FOREIGN_ROOT_KEY).unwrap();
    refused(
        &server.serve_until_exit(&args, &[]),
        "is not the root key of",
    );
    refused(
        &common::run_trent_until_exit(&replay, &[]),
        "is not the root key of",
    );

    // The store's own key: everything still opens.
    std::fs::write(&key_file, &saved).unwrap();
    server.start_again();
    let plain = server
        .client()
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"bound");
}

async fn a_root_key_is_generated_only_for_an_empty_store(store: StoreKind) {
    let server = TestServer::start(store);
    // A fresh store (a new database, a new data directory) gets a new key, announced once with
    // its path. The listen address is taken, so serve stops right after, naming the address.
    let fresh = tempfile::tempdir().unwrap();
    let data_dir = fresh.path().join("data");
    let mut args = vec!["--data-dir".to_string(), data_dir.display().to_string()];
    if store == StoreKind::Postgres {
        args.push("--database-url".into());
        args.push(common::pg::require_database_url());
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let mut serve = vec![
        "serve".to_string(),
        "--listen".into(),
        taken_addr.clone(),
        "--admin-listen".into(),
        format!("127.0.0.1:{}", common::free_port()),
    ];
    serve.extend(args.iter().cloned());
    let out = common::run_trent_until_exit(&serve, &[]);
    refused(&out, &taken_addr);
    let key_file = data_dir.join("root.key");
    assert!(
        key_file.exists(),
        "an empty store gets a root key: {}",
        out.stderr
    );
    assert!(out.stderr.contains("back this file up"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&key_file.display().to_string()),
        "{}",
        out.stderr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(server);
}

async fn oversize_bodies_get_an_audited_aws_error(store: StoreKind) {
    let server = TestServer::start(store);
    let body = vec![b' '; 2 * 1024 * 1024];
    let resp = common::http()
        .post(format!("{}/", server.endpoint()))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "TrentService.Encrypt")
        .body(body)
        .send()
        .await
        .expect("an answer, not a reset connection");
    assert_eq!(resp.status().as_u16(), 413);
    let request_id = resp
        .headers()
        .get("x-amzn-requestid")
        .expect("a request id")
        .to_str()
        .unwrap()
        .to_string();
    assert!(resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-amz-json-1.1"));
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["__type"], "RequestEntityTooLargeException");
    let records = Db::open(&server).await.audit_records().await;
    let record = records
        .iter()
        .find(|r| r["requestID"] == request_id.as_str())
        .expect("the refused call has its audit record");
    assert_eq!(record["errorCode"], "RequestEntityTooLargeException");
    assert_eq!(record["eventName"], "Encrypt");

    // Requests no handler answers carry a request id too.
    let resp = common::http()
        .get(format!("{}/nothing-here", server.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
}

/// Statements that make every write fail, as a full disk does: audit records and the probe row.
fn writes_fail_sql(store: StoreKind) -> &'static [&'static str] {
    match store {
        StoreKind::Sqlite => &[
            "CREATE TRIGGER full_audit BEFORE INSERT ON audit_records \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
            "CREATE TRIGGER full_probe_insert BEFORE INSERT ON write_probe \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
            "CREATE TRIGGER full_probe_update BEFORE UPDATE ON write_probe \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
        ],
        StoreKind::Postgres => &[
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
            "CREATE TRIGGER full_audit BEFORE INSERT ON audit_records \
             FOR EACH ROW EXECUTE FUNCTION disk_full()",
            "CREATE TRIGGER full_probe BEFORE INSERT OR UPDATE ON write_probe \
             FOR EACH ROW EXECUTE FUNCTION disk_full()",
        ],
    }
}

/// Statements that undo `writes_fail_sql`.
fn writes_recover_sql(store: StoreKind) -> &'static [&'static str] {
    match store {
        StoreKind::Sqlite => &[
            "DROP TRIGGER full_audit",
            "DROP TRIGGER full_probe_insert",
            "DROP TRIGGER full_probe_update",
        ],
        StoreKind::Postgres => &[
            "DROP TRIGGER full_audit ON audit_records",
            "DROP TRIGGER full_probe ON write_probe",
        ],
    }
}

async fn readiness_follows_failed_commits(store: StoreKind) {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(store, &["--admin-listen", &admin]);
    let client = server.client();
    let ready = || async {
        common::http()
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    client.create_key().send().await.unwrap();
    assert_eq!(ready().await, 200);

    let db = Db::open(&server).await;
    for sql in writes_fail_sql(store) {
        db.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let err = client.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "KMSInternalException", "fails closed");
    assert_eq!(ready().await, 503, "not ready while commits fail");

    for sql in writes_recover_sql(store) {
        db.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(
        ready().await,
        200,
        "ready again once the store takes writes"
    );
    client.create_key().send().await.unwrap();
}

async fn root_key_rotation_while_serving(store: StoreKind) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut server = TestServer::start(store);
    let client = server.client();
    let mut blobs = Vec::new();
    let mut keys = Vec::new();
    for i in 0..5 {
        let key = client.create_key().send().await.unwrap();
        let key_id = key.key_metadata().unwrap().key_id().to_string();
        if i == 0 {
            client
                .rotate_key_on_demand()
                .key_id(&key_id)
                .send()
                .await
                .unwrap();
        }
        let blob = client
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(format!("before {i}").into_bytes()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone();
        blobs.push((format!("before {i}"), blob));
        keys.push(key_id);
    }

    // Calls go on during the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (client, key, stop) = (client.clone(), keys[1].clone(), stop.clone());
        let (served, failed) = (served.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let created = client.create_key().send().await;
                let encrypted = client
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(b"during".to_vec()))
                    .send()
                    .await;
                let decrypted = match &encrypted {
                    Ok(out) => client
                        .decrypt()
                        .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
                        .send()
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if created.is_ok() && decrypted {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let next = tempfile::tempdir().unwrap();
    let new_key_file = next.path().join("root-next.key");
    let mut args = vec![
        "root-key".to_string(),
        "rotate".into(),
        "--new-key-file".into(),
        new_key_file.display().to_string(),
        "--retire".into(),
        "--settle-seconds".into(),
        "2".into(),
    ];
    args.extend(server.store_args());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::trent_bin())
            .args(&args)
            .env("TRENT_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "rotate: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-sealed"), "{stdout}");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no call failed during the rotation"
    );
    assert!(served.load(Ordering::Relaxed) > 0);
    let new_id = stdout
        .split("new root key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();

    // Every sealed row, those written during the rotation included, names the new root key.
    let db = Db::open(&server).await;
    let rows: Vec<Vec<u8>> = match &db {
        Db::Sqlite(c) => c
            .prepare("SELECT sealed FROM key_materials")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect(),
        Db::Postgres(c) => c
            .query("SELECT sealed FROM key_materials", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    };
    assert!(rows.len() > keys.len());
    for sealed in &rows {
        assert_eq!(sealed[0], 0x02);
        assert_eq!(
            hex::encode(&sealed[1..9]),
            new_id,
            "a row left under the old key"
        );
    }
    let events: Vec<String> = db
        .audit_records()
        .await
        .iter()
        .filter_map(|r| r["eventName"].as_str().map(str::to_string))
        .filter(|n| n.starts_with("RootKey"))
        .collect();
    assert_eq!(
        events,
        [
            "RootKeyRotationStarted",
            "RootKeyMaterialResealed",
            "RootKeyRetired"
        ]
    );

    // The retired key no longer starts anything; the new one opens everything.
    server.kill9();
    refused(
        &server.serve_until_exit(&server.store_args(), &[]),
        "was retired",
    );
    server.set_env(
        "TRENT_ROOT_KEY_FILE",
        Some(&new_key_file.display().to_string()),
    );
    server.start_again();
    let client = server.client();
    for (plaintext, blob) in &blobs {
        let out = client
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_bytes());
    }
    let (ok, out) = server.trent(&["trail", "verify"]);
    assert!(ok, "{out}");
}

/// Concurrent TagResource calls per round on one key (each adds a tag of its own).
const TAGGERS: usize = 12;

/// The sum of a Prometheus counter's series in `text`.
fn counter_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Units of one batch that append to the same key conflict: the batch commits the winner and the
/// others, and each loser runs again on the new state until it commits. No caller sees the race
/// (every call succeeds without the SDK's retries), no change is lost (every tag is there), and
/// each call leaves exactly one audit record however often it ran.
async fn a_call_that_loses_a_commit_race_runs_again(store: StoreKind) {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(store, &["--admin-listen", &admin]);
    let client = server.client_without_retries();
    let conflicts = || async {
        let text = common::http()
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        counter_total(&text, "trent_commit_conflicts_total")
    };
    let mut rounds = 0;
    let mut calls = 0;
    // Until a round has lost at least one race (almost always the first).
    while conflicts().await == 0.0 {
        rounds += 1;
        assert!(
            rounds <= 5,
            "no commit race in five rounds of {TAGGERS} taggers"
        );
        let key_id = client
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        let taggers: Vec<_> = (0..TAGGERS)
            .map(|i| {
                let (client, key_id) = (client.clone(), key_id.clone());
                tokio::spawn(async move {
                    let tag = aws_sdk_kms::types::Tag::builder()
                        .tag_key(format!("t{i}"))
                        .tag_value("v")
                        .build()
                        .unwrap();
                    client.tag_resource().key_id(key_id).tags(tag).send().await
                })
            })
            .collect();
        for tagger in taggers {
            tagger
                .await
                .unwrap()
                .expect("a tagger that lost a race ran again and succeeded");
            calls += 1;
        }
        let tags = client
            .list_resource_tags()
            .key_id(&key_id)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<_> = tags
            .tags()
            .iter()
            .map(|t| t.tag_key().to_string())
            .collect();
        keys.sort();
        let mut expected: Vec<_> = (0..TAGGERS).map(|i| format!("t{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected, "every concurrent tag is kept");
    }
    let records = Db::open(&server).await.audit_records().await;
    let tag_records: Vec<_> = records
        .iter()
        .filter(|r| r["eventName"] == "TagResource")
        .collect();
    assert_eq!(
        tag_records.len(),
        calls,
        "one record per call, not per attempt"
    );
    assert!(tag_records.iter().all(|r| r.get("errorCode").is_none()));
}

on_both_stores!(
    a_call_that_loses_a_commit_race_runs_again,
    root_key_rotation_while_serving,
    oversize_bodies_get_an_audited_aws_error,
    readiness_follows_failed_commits,
    concurrent_rotations_lose_no_ciphertext,
    replay_verify_accepts_pattern_conditions,
    a_store_refuses_a_missing_or_foreign_root_key,
    a_root_key_is_generated_only_for_an_empty_store
);

/// The example identity file (not the development identity, which only loopback accepts).
const IDENTITIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/identities.toml");

#[test]
fn off_loopback_listeners_need_tls_or_a_token() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data").display().to_string();
    let serve = |listen: String, admin: String, extra: &[&str]| {
        let mut args = vec![
            "serve".to_string(),
            "--config".into(),
            IDENTITIES.into(),
            "--data-dir".into(),
            dir.clone(),
            "--listen".into(),
            listen,
            "--admin-listen".into(),
            admin,
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        common::run_trent_until_exit(&args, &[])
    };
    let local = || format!("127.0.0.1:{}", common::free_port());
    let anywhere = || format!("0.0.0.0:{}", common::free_port());
    refused(&serve(anywhere(), local(), &[]), "refusing plain HTTP");
    refused(
        &serve(local(), anywhere(), &[]),
        "refusing an unprotected admin listener",
    );
    assert!(
        !std::path::Path::new(&dir).exists(),
        "a refused start creates no store"
    );
    // With --insecure-http and an admin token, the same addresses start (and are then stopped
    // by a taken port, so the test needs no network).
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let out = serve(
        taken.local_addr().unwrap().to_string(),
        anywhere(),
        &["--insecure-http", "--admin-token", "s3cret"],
    );
    refused(&out, "cannot listen on");
    assert!(
        out.stderr.contains("--insecure-http"),
        "warned: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_token_guards_simulate_and_metrics() {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &["--admin-listen", &admin, "--admin-token", "s3cret"],
    );
    let http = common::http();
    let key = server.client().create_key().send().await.unwrap();
    let simulate = serde_json::json!({
        "principal": "arn:aws:iam::111122223333:root",
        "action": "kms:Decrypt",
        "key": key.key_metadata().unwrap().arn().unwrap(),
    });
    let status = |r: reqwest::Response| r.status().as_u16();
    let url = |path: &str| format!("http://{admin}{path}");
    assert_eq!(status(http.get(url("/metrics")).send().await.unwrap()), 401);
    let wrong = http
        .post(url("/simulate"))
        .bearer_auth("guess")
        .json(&simulate)
        .send()
        .await
        .unwrap();
    assert_eq!(status(wrong), 401);
    let right = http
        .post(url("/simulate"))
        .bearer_auth("s3cret")
        .json(&simulate)
        .send()
        .await
        .unwrap();
    assert_eq!(status(right), 200);
    let metrics = http
        .get(url("/metrics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(status(metrics), 200);
    assert_eq!(
        status(http.get(url("/readyz")).send().await.unwrap()),
        200,
        "probes stay open"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_amz_header_is_signed_and_the_target_is_single() {
    let server = TestServer::start(StoreKind::Sqlite);
    let target = || {
        vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                "TrentService.ListKeys".to_string(),
            ),
        ]
    };
    let endpoint = server.endpoint();
    let post = || common::SignedPost {
        endpoint: &endpoint,
        body: b"{}",
        signer: Some((common::ACCESS_KEY, common::SECRET_KEY, None)),
        region: common::REGION,
        service: "kms",
        signing_time: std::time::SystemTime::now(),
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let json: serde_json::Value = r.json().await.unwrap();
        (
            status,
            json["__type"].as_str().unwrap_or("").to_string(),
            json,
        )
    };
    let ok = common::signed_post_with_unsigned(post(), target(), vec![]).await;
    assert_eq!(answer(ok).await.0, 200);
    let extra = vec![("x-amz-meta-note".to_string(), "added".to_string())];
    let (status, kind, json) =
        answer(common::signed_post_with_unsigned(post(), target(), extra).await).await;
    assert_eq!(
        (status, kind.as_str()),
        (400, "InvalidSignatureException"),
        "{json}"
    );
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("x-amz-meta-note"),
        "{json}"
    );
    let second = vec![(
        "x-amz-target".to_string(),
        "TrentService.ScheduleKeyDeletion".to_string(),
    )];
    let (status, kind, json) =
        answer(common::signed_post_with_unsigned(post(), target(), second).await).await;
    assert_eq!(
        (status, kind.as_str()),
        (400, "UnknownOperationException"),
        "{json}"
    );
    assert!(
        json["message"].as_str().unwrap().contains("more than one"),
        "{json}"
    );
}

#[test]
fn one_server_per_sqlite_data_dir_and_its_files_are_private() {
    let server = TestServer::start(StoreKind::Sqlite);
    let out = server.serve_until_exit(&server.store_args(), &[]);
    refused(&out, "is in use by another trent process");
    assert!(
        out.stderr.contains(&format!("pid {}", server.pid())),
        "names the lock holder: {}",
        out.stderr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            let path = server.data_dir.join(name);
            std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(""), 0o700, "the data directory");
        for file in [
            "trent.db",
            "trent.db-wal",
            "trent.db-shm",
            "root.key",
            "trent.lock",
        ] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
}

#[test]
fn first_use_errors_say_where_and_why() {
    // A store command run where there is no store creates nothing and says where it looked.
    let cwd = tempfile::tempdir().unwrap();
    let missing = cwd.path().join("trent-data");
    let args = vec![
        "trail".to_string(),
        "verify".into(),
        "--data-dir".into(),
        missing.display().to_string(),
    ];
    let out = common::run_trent_until_exit(&args, &[]);
    refused(&out, "no store at");
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(!missing.exists(), "nothing was created");

    // A PostgreSQL that does not answer: the message names the server and the cause.
    let port = common::free_port();
    let url = format!("postgresql://trent@127.0.0.1:{port}/kms");
    let args = vec![
        "replay".to_string(),
        "--database-url".into(),
        url,
        "--data-dir".into(),
        missing.display().to_string(),
    ];
    let out = common::run_trent_until_exit(&args, &[]);
    refused(&out, &format!("127.0.0.1:{port}/kms"));
    assert!(
        out.stderr.to_lowercase().contains("refused"),
        "{}",
        out.stderr
    );

    // Logs written to a pipe or a file have no colour codes.
    assert!(
        !out.stderr.contains('\u{1b}'),
        "ANSI codes in piped logs: {:?}",
        out.stderr
    );
}
