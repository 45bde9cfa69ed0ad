//! CloudTrail export and validation, black-box through the `trent` binary against a real
//! server's store: export and resume (every record exactly once), tampering of log files and
//! digests named by `trent trail validate`, a rewritten audit table refused by export, a crashed
//! export finished by the next one, and the export and validate throughput.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use aws_sdk_kms::primitives::Blob;
use common::db::Db;
use common::{StoreKind, TestServer, ACCESS_KEY, SECRET_KEY};

/// Run `trent trail export --out DIR` against the server's store.
fn export(server: &TestServer, dir: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["trail", "export", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    server.trent(&args)
}

/// Run `trent trail validate DIR` (no store).
fn validate(dir: &Path) -> (bool, String) {
    let out = Command::new(common::trent_bin())
        .args(["trail", "validate", dir.to_str().unwrap()])
        .env("TRENT_LOG", "warn")
        .output()
        .expect("trent runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every file under `dir` whose relative path contains `part`, as relative paths, sorted.
fn files(dir: &Path, part: &str) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|f| f.contains(part) && f.ends_with(".json.gz"));
    out.sort();
    out
}

fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The eventIDs of every record in every log file (a list: duplicates stay visible).
fn exported_event_ids(dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for f in files(dir, "/CloudTrail/") {
        let v: serde_json::Value = serde_json::from_slice(&gunzip(&dir.join(&f))).unwrap();
        for r in v["Records"].as_array().unwrap() {
            ids.push(r["eventID"].as_str().unwrap().to_string());
        }
    }
    ids
}

async fn table_event_ids(server: &TestServer) -> Vec<String> {
    Db::open(server)
        .await
        .audit_records()
        .await
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_string())
        .collect()
}

/// Some calls in two regions: a key and `n` encryptions in us-east-1, a key in eu-west-1.
async fn calls(server: &TestServer, n: usize) {
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    for i in 0..n {
        client
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(format!("call {i}").into_bytes()))
            .send()
            .await
            .unwrap();
    }
    let eu = server.client_as(ACCESS_KEY, SECRET_KEY, "eu-west-1");
    eu.create_key().send().await.unwrap();
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn assert_exactly_once(exported: &[String], table: &[String]) {
    let set: BTreeSet<_> = exported.iter().collect();
    assert_eq!(set.len(), exported.len(), "a record was exported twice");
    let table: BTreeSet<_> = table.iter().collect();
    assert_eq!(
        set, table,
        "the exported records differ from the audit table"
    );
}

async fn export_validate_and_resume(store: StoreKind) {
    let server = TestServer::start(store);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trail");
    calls(&server, 3).await;

    let (ok, out) = export(&server, &dir, &[]);
    assert!(ok, "export failed: {out}");
    let (ok, out) = validate(&dir);
    assert!(ok, "a fresh export does not validate: {out}");
    assert!(out.contains("VALID   digest AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/"));
    assert!(out.contains("VALID   log AWSLogs/111122223333/CloudTrail/us-east-1/"));
    assert_exactly_once(&exported_event_ids(&dir), &table_event_ids(&server).await);
    let key = files(&server.data_dir, "").len(); // the digest key is not a .json.gz
    assert_eq!(key, 0);
    assert!(server.data_dir.join("trail-digest.key").exists());

    // More calls: the second run writes only the new records, chained to the first digests.
    calls(&server, 2).await;
    let (ok, out) = export(&server, &dir, &[]);
    assert!(ok, "second export failed: {out}");
    let (ok, out) = validate(&dir);
    assert!(ok, "two runs do not validate: {out}");
    assert_eq!(files(&dir, "/CloudTrail-Digest/").len(), 4, "{out}");
    assert_exactly_once(&exported_event_ids(&dir), &table_event_ids(&server).await);

    // Nothing new: nothing written, still valid.
    let (ok, out) = export(&server, &dir, &[]);
    assert!(ok && out.contains("0 records"), "{out}");
    assert_eq!(files(&dir, "/CloudTrail-Digest/").len(), 4);
    assert!(validate(&dir).0);
}

on_both_stores!(export_validate_and_resume);

/// One tampering case: what it does to a copy of a valid export, and what validate must name.
struct Case {
    name: &'static str,
    tamper: fn(&Path) -> Vec<String>,
}

fn logs(dir: &Path) -> Vec<String> {
    files(dir, "/CloudTrail/")
}

fn digests(dir: &Path, region: &str) -> Vec<String> {
    files(dir, &format!("/CloudTrail-Digest/{region}/"))
}

const CASES: &[Case] = &[
    Case {
        name: "one byte of a log file changed",
        tamper: |d| {
            let f = logs(d)[1].clone();
            let mut bytes = std::fs::read(d.join(&f)).unwrap();
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
            std::fs::write(d.join(&f), bytes).unwrap();
            vec![f]
        },
    },
    Case {
        name: "a log file deleted",
        tamper: |d| {
            let f = logs(d)[0].clone();
            std::fs::remove_file(d.join(&f)).unwrap();
            vec![f]
        },
    },
    Case {
        name: "the first digest deleted (a gap in the chain)",
        tamper: |d| {
            let f = digests(d, "us-east-1")[0].clone();
            std::fs::remove_file(d.join(&f)).unwrap();
            std::fs::remove_file(d.join(format!("{f}.sig"))).unwrap();
            vec![f]
        },
    },
    Case {
        name: "the newest digest deleted",
        tamper: |d| {
            let f = digests(d, "us-east-1").last().unwrap().clone();
            std::fs::remove_file(d.join(&f)).unwrap();
            std::fs::remove_file(d.join(format!("{f}.sig"))).unwrap();
            vec![f]
        },
    },
    Case {
        name: "two log files' contents swapped",
        tamper: |d| {
            let l = logs(d);
            let (a, b) = (l[0].clone(), l[1].clone());
            let (ba, bb) = (
                std::fs::read(d.join(&a)).unwrap(),
                std::fs::read(d.join(&b)).unwrap(),
            );
            std::fs::write(d.join(&a), bb).unwrap();
            std::fs::write(d.join(&b), ba).unwrap();
            vec![a, b]
        },
    },
    Case {
        name: "two digests swapped",
        tamper: |d| {
            let l = digests(d, "us-east-1");
            let (a, b) = (l[0].clone(), l[1].clone());
            let (ba, bb) = (
                std::fs::read(d.join(&a)).unwrap(),
                std::fs::read(d.join(&b)).unwrap(),
            );
            std::fs::write(d.join(&a), bb).unwrap();
            std::fs::write(d.join(&b), ba).unwrap();
            vec![a, b]
        },
    },
    Case {
        name: "an extra log file added",
        tamper: |d| {
            let f = logs(d)[0].clone();
            let extra = f.replace(".json.gz", "0.json.gz");
            std::fs::copy(d.join(&f), d.join(&extra)).unwrap();
            vec![extra]
        },
    },
    Case {
        name: "one byte of a digest changed",
        tamper: |d| {
            let f = digests(d, "eu-west-1")[0].clone();
            let mut bytes = std::fs::read(d.join(&f)).unwrap();
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
            std::fs::write(d.join(&f), bytes).unwrap();
            vec![f]
        },
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn tampering_is_detected_and_named() {
    let server = TestServer::start(StoreKind::Sqlite);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trail");
    calls(&server, 4).await;
    assert!(export(&server, &dir, &["--max-records-per-file", "2"]).0);
    calls(&server, 2).await;
    assert!(export(&server, &dir, &["--max-records-per-file", "2"]).0);
    let (ok, out) = validate(&dir);
    assert!(ok, "{out}");
    assert!(logs(&dir).len() >= 4, "{out}");

    for (i, case) in CASES.iter().enumerate() {
        let copy = tmp.path().join(format!("case{i}"));
        copy_dir(&dir, &copy);
        let named = (case.tamper)(&copy);
        let (ok, out) = validate(&copy);
        assert!(!ok, "{}: validate passed:\n{out}", case.name);
        for f in named {
            assert!(
                out.lines()
                    .any(|l| l.starts_with("INVALID") && l.contains(&f)),
                "{}: {f} is not named INVALID:\n{out}",
                case.name
            );
        }
        println!("{}: detected", case.name);
    }
}

/// The chain hash of a record, computed independently of the server: hex SHA-256 of
/// `prev_hash`, a newline and the record text.
fn link(prev: &str, record: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(b"\n");
    ctx.update(record.as_bytes());
    hex::encode(ctx.finish().as_ref())
}

/// What a database administrator with full access does: switch the guard off, change record
/// `sequence`'s text, and (when `relink`) recompute the whole hash chain so it verifies again.
async fn rewrite_record(db: &Db, sequence: i64, relink: bool) {
    db.disable_audit_guard().await;
    let rows: Vec<(i64, String)> = match db {
        Db::Sqlite(c) => c
            .prepare("SELECT sequence, record FROM audit_records ORDER BY sequence")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect(),
        Db::Postgres(c) => c
            .query(
                "SELECT sequence, record FROM audit_records ORDER BY sequence",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect(),
    };
    let mut prev = "0".repeat(64);
    for (seq, mut record) in rows {
        if seq == sequence {
            record = record.replace("\"Encrypt\"", "\"Decrypt\"");
            db.execute(&format!(
                "UPDATE audit_records SET record = '{}' WHERE sequence = {seq}",
                record.replace('\'', "''")
            ))
            .await
            .unwrap();
        }
        let hash = link(&prev, &record);
        if relink && seq >= sequence {
            db.execute(&format!(
                "UPDATE audit_records SET prev_hash = '{prev}', hash = '{hash}' WHERE sequence = {seq}"
            ))
            .await
            .unwrap();
        }
        prev = hash;
    }
}

async fn rewritten_audit_table_never_validates(store: StoreKind) {
    let server = TestServer::start(store);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trail");
    calls(&server, 3).await;
    assert!(export(&server, &dir, &[]).0);
    calls(&server, 1).await;

    // Record 2 (an exported Encrypt) rewritten and the chain re-linked: export refuses.
    let db = Db::open(&server).await;
    rewrite_record(&db, 2, true).await;
    let (ok, out) = export(&server, &dir, &[]);
    assert!(!ok, "export continued over a rewritten audit table: {out}");
    assert!(validate(&dir).0, "the earlier export must stay valid");

    // Forcing it (the state file removed, so export starts from scratch into the same
    // directory): the rewritten record's file no longer matches the earlier digest.
    std::fs::remove_file(dir.join(".trent-export.json")).unwrap();
    let (ok, out) = export(&server, &dir, &[]);
    assert!(ok, "{out}");
    let (ok, out) = validate(&dir);
    assert!(!ok, "a re-exported rewritten record validates:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("INVALID log") && l.contains("does not match its SHA-256")),
        "{out}"
    );
    println!("rewritten and re-exported:\n{out}");
}

async fn altered_unexported_record_is_refused(store: StoreKind) {
    let server = TestServer::start(store);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trail");
    calls(&server, 2).await;
    assert!(export(&server, &dir, &[]).0);
    let db = Db::open(&server).await;
    let last = db
        .query_i64("SELECT MAX(sequence) FROM audit_records")
        .await;
    calls(&server, 2).await;
    // A record not exported yet, edited without re-linking: its hash no longer matches.
    rewrite_record(&db, last + 2, false).await;
    let (ok, out) = export(&server, &dir, &[]);
    assert!(!ok, "export wrote an altered record: {out}");
    assert!(validate(&dir).0);
}

mod tampered_store {
    use super::*;
    on_both_stores!(
        rewritten_audit_table_never_validates,
        altered_unexported_record_is_refused
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_export_is_finished_without_duplicates() {
    let server = TestServer::start(StoreKind::Sqlite);
    let tmp = tempfile::tempdir().unwrap();
    let done = tmp.path().join("done");
    calls(&server, 2).await;
    assert!(export(&server, &done, &[]).0);
    let before = tmp.path().join("before");
    copy_dir(&done, &before);
    calls(&server, 3).await;
    assert!(export(&server, &done, &[]).0);
    let new_logs: Vec<String> = logs(&done)
        .into_iter()
        .filter(|f| !before.join(f).exists())
        .collect();
    let new_digests: Vec<String> = files(&done, "/CloudTrail-Digest/")
        .into_iter()
        .filter(|f| !before.join(f).exists())
        .collect();

    // Crash while writing log files: some written, a temporary file left, no digest, no state.
    let crashed = tmp.path().join("crashed-in-logs");
    copy_dir(&before, &crashed);
    std::fs::copy(done.join(&new_logs[0]), crashed.join(&new_logs[0])).unwrap();
    std::fs::create_dir_all(crashed.join(".trent-tmp")).unwrap();
    std::fs::write(crashed.join(".trent-tmp/partial.tmp"), b"{\"Rec").unwrap();
    let (ok, out) = export(&server, &crashed, &[]);
    assert!(ok, "{out}");
    let (ok, out) = validate(&crashed);
    assert!(ok, "{out}");
    assert_exactly_once(
        &exported_event_ids(&crashed),
        &table_event_ids(&server).await,
    );

    // Crash after journaling the digests: the log files and the journal are there, the digests
    // not. The next run writes the journaled digests and exports nothing twice.
    let journaled = tmp.path().join("crashed-after-journal");
    copy_dir(&before, &journaled);
    for f in &new_logs {
        std::fs::copy(done.join(f), journaled.join(f)).unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(before.join(".trent-export.json")).unwrap()).unwrap();
    let next: serde_json::Value =
        serde_json::from_slice(&std::fs::read(done.join(".trent-export.json")).unwrap()).unwrap();
    let mut state = committed.clone();
    state["pending"] = serde_json::json!({
        "next": {
            "lastSequence": next["lastSequence"],
            "lastRecordHash": next["lastRecordHash"],
            "trails": next["trails"],
        },
        "digests": new_digests.iter().map(|d| serde_json::json!({
            "object": d,
            "content": String::from_utf8(gunzip(&done.join(d))).unwrap(),
            "signature": std::fs::read_to_string(done.join(format!("{d}.sig"))).unwrap().trim(),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        journaled.join(".trent-export.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let (ok, out) = export(&server, &journaled, &[]);
    assert!(
        ok && out.contains("finished the digests of an interrupted run"),
        "{out}"
    );
    assert!(out.contains(" 0 records"), "{out}");
    let (ok, out) = validate(&journaled);
    assert!(ok, "{out}");
    assert_exactly_once(
        &exported_event_ids(&journaled),
        &table_event_ids(&server).await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_and_validate_throughput() {
    const CALLS: usize = 4000;
    let server = TestServer::start(StoreKind::Sqlite);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trail");
    calls(&server, 1).await;
    assert!(export(&server, &dir, &[]).0); // creates the digest key

    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32 {
        let client = client.clone();
        let key_id = key_id.clone();
        tasks.spawn(async move {
            for i in 0..CALLS / 32 {
                client
                    .encrypt()
                    .key_id(&key_id)
                    .plaintext(Blob::new(format!("task {t} call {i}").into_bytes()))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    // TRAIL_BENCH_TRENT=target/release/trent times an optimised binary instead.
    let bin = std::env::var("TRAIL_BENCH_TRENT").unwrap_or_else(|_| common::trent_bin().into());
    let run = |args: Vec<String>| {
        let out = Command::new(&bin)
            .args(args)
            .env("TRENT_LOG", "warn")
            .output()
            .expect("trent runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let mut args: Vec<String> = ["trail", "export", "--out", dir.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    args.extend(server.store_args());
    let started = Instant::now();
    let (ok, out) = run(args);
    let export_secs = started.elapsed().as_secs_f64();
    assert!(ok, "{out}");
    let records: f64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("record count");
    assert!(records >= CALLS as f64, "{out}");

    let started = Instant::now();
    let (ok, vout) = run(vec![
        "trail".into(),
        "validate".into(),
        dir.display().to_string(),
    ]);
    let validate_secs = started.elapsed().as_secs_f64();
    assert!(ok, "{vout}");
    let total = exported_event_ids(&dir).len() as f64;
    let bytes: u64 = logs(&dir)
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    println!("binary: {bin}\nexport: {out}");
    println!(
        "export throughput: {records} records in {export_secs:.3} s = {:.0} records/s (whole process)",
        records / export_secs
    );
    println!(
        "validate throughput: {total} records in {validate_secs:.3} s = {:.0} records/s (whole process)",
        total / validate_secs
    );
    println!(
        "log file size: {bytes} bytes of gzip for {total} records = {:.1} bytes/record ({:.0} MB per million calls)",
        bytes as f64 / total,
        bytes as f64 / total
    );
    assert_exactly_once(&exported_event_ids(&dir), &table_event_ids(&server).await);
}

/// `trent serve --trail-export-dir` exports while serving and once more at shutdown: after a
/// SIGTERM the directory validates and holds every record exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn serve_exports_periodically_and_at_shutdown() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().display().to_string();
    let mut server = TestServer::start_with(
        StoreKind::Sqlite,
        &[
            "--trail-export-dir",
            &out_arg,
            "--trail-export-interval",
            "1",
        ],
    );
    calls(&server, 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    calls(&server, 5).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        (s, server)
    });
    let (status, server) = status.await.unwrap();
    assert!(status.success());
    let (ok, report) = validate(out.path());
    assert!(ok, "{report}");
    assert_exactly_once(
        &exported_event_ids(out.path()),
        &table_event_ids(&server).await,
    );
}

/// `trent trail usage KEY` summarises who used a key, how, and when, from the records.
#[tokio::test(flavor = "multi_thread")]
async fn usage_summarises_a_keys_past() {
    let server = TestServer::start(StoreKind::Sqlite);
    let client = server.client();
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    for _ in 0..3 {
        client
            .encrypt()
            .key_id(&key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"u".to_vec()))
            .send()
            .await
            .unwrap();
    }
    let _ = client
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(3)
        .send()
        .await
        .unwrap_err();
    let out = std::process::Command::new(common::trent_bin())
        .args(["trail", "usage", &key_id, "--format", "json"])
        .args(server.store_args())
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &report["principals"]["arn:aws:iam::111122223333:root"];
    assert_eq!(root["operations"]["Encrypt"], 3);
    assert_eq!(root["operations"]["CreateKey"], 1);
    assert_eq!(
        root["failed"], 0,
        "the refused ScheduleKeyDeletion has no key resource yet"
    );
    assert_eq!(report["lastSuccessfulUse"][0], "Encrypt");
    assert_eq!(report["totalCalls"], 4);
}
