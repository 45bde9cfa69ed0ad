//! Start-up benchmark: how long `trent serve` takes from launch to listening, to its first
//! answer (DescribeKey of one key: keys a call names load on first use) and to its full read
//! model (a ListKeys answered: lists wait for it), on an embedded store holding many keys and
//! audit records, and its RSS and CPU time once it has its full model.
//!
//! How the store is made (quickly, and said so in the output): a real server creates one key and
//! encrypts once through the API; the bench stops it and, with direct SQL on the SQLite file,
//! copies that key's events and sealed material under fresh key ids (the copies' material is
//! sealed for the original key id, so it would not open: start-up never opens material) and
//! that Encrypt's audit record under fresh event ids, each linked into the hash chain with its
//! lookup rows, as the writer would. Then it starts the server again and times it twice: first
//! replaying the copied events (the only snapshot is the one-key store's shutdown snapshot),
//! then, after a clean stop that writes a snapshot of every key, from that snapshot.
//!
//! `BENCH_STARTUP` lists the sizes as `keys:records` pairs (default `1000:10000,100000:1000000`).
//! Run with `cargo bench --bench startup`.

#[path = "../tests/it/common/mod.rs"]
mod common;
mod process;

use std::path::Path;
use std::time::Instant;

use aws_sdk_kms::primitives::Blob;
use common::{StoreKind, TestServer};
use process::{cpu_seconds, rss_mib};
use rusqlite::{params, Connection};

/// Copy key `template`'s events and material `keys - 1` times, and the audit record at
/// `record_seq` until the trail holds `records` records.
fn fill(db: &Path, template: &str, keys: usize, records: usize) -> String {
    let mut conn = Connection::open(db).expect("open the store");
    let tx = conn.transaction().expect("transaction");
    let stream = format!("key/{template}");
    let events: Vec<(i64, String, String, String)> = tx
        .prepare("SELECT version, event_type, payload, recorded_at FROM events WHERE stream = ?1")
        .unwrap()
        .query_map(params![stream], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let materials: Vec<(i64, Vec<u8>, String)> = tx
        .prepare("SELECT version, sealed, created_at FROM key_materials WHERE key_id = ?1")
        .unwrap()
        .query_map(params![template], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut last_copy = template.to_string();
    let mut sequence: i64 = tx
        .query_row("SELECT MAX(sequence) FROM events", [], |r| r.get(0))
        .unwrap();
    {
        let mut insert_event = tx
            .prepare(
                "INSERT INTO events (sequence, stream, version, event_type, payload, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .unwrap();
        let mut insert_material = tx
            .prepare(
                "INSERT INTO key_materials (key_id, version, sealed, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap();
        for _ in 1..keys {
            let id = uuid::Uuid::new_v4().to_string();
            last_copy = id.clone();
            for (version, event_type, payload, at) in &events {
                sequence += 1;
                insert_event
                    .execute(params![
                        sequence,
                        format!("key/{id}"),
                        version,
                        event_type,
                        payload.replace(template, &id),
                        at
                    ])
                    .unwrap();
            }
            for (version, sealed, at) in &materials {
                insert_material
                    .execute(params![id, version, sealed, at])
                    .unwrap();
            }
        }
    }
    let (template_seq, record, event_id, event_time): (i64, String, String, String) = tx
        .query_row(
            "SELECT sequence, record, event_id, event_time FROM audit_records \
             WHERE record LIKE '%\"eventName\":\"Encrypt\"%' ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let lookups: Vec<(String, String, String, i64)> = tx
        .prepare(
            "SELECT account, attribute, value, event_time FROM audit_lookup WHERE sequence = ?1",
        )
        .unwrap()
        .query_map(params![template_seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (mut audit_seq, mut hash): (i64, String) = tx
        .query_row(
            "SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    {
        let mut insert_record = tx
            .prepare(
                "INSERT INTO audit_records (sequence, event_id, event_time, record, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .unwrap();
        let mut insert_lookup = tx
            .prepare(
                "INSERT INTO audit_lookup (account, attribute, value, event_time, sequence) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        while (audit_seq as usize) < records {
            let id = uuid::Uuid::new_v4().to_string();
            let text = record.replace(&event_id, &id);
            let link = trent_store::chain::link(&hash, &text);
            audit_seq += 1;
            insert_record
                .execute(params![audit_seq, id, event_time, text, hash, link])
                .unwrap();
            for (account, attribute, value, t) in &lookups {
                let value = if attribute == "EventId" { &id } else { value };
                insert_lookup
                    .execute(params![account, attribute, value, t, audit_seq])
                    .unwrap();
            }
            hash = link;
        }
    }
    tx.commit().expect("commit");
    last_copy
}

/// What one start of the server measured.
#[derive(Clone, Copy)]
struct Start {
    listening: f64,
    answered: f64,
    /// Until the full read model was in place (a ListKeys answered: lists wait for it).
    complete: f64,
    rss_mib: f64,
    /// CPU seconds the server used up to its first answer.
    cpu: f64,
}

/// Start the stopped `server` again and time it to listening and to its first answer.
fn time_start(rt: &tokio::runtime::Runtime, server: &mut TestServer, copy: &str) -> Start {
    let started = Instant::now();
    server.start_again();
    let listening = started.elapsed().as_secs_f64();
    let answered = rt.block_on(async {
        // The last copy made: every key was loaded.
        let described = server
            .client()
            .describe_key()
            .key_id(copy)
            .send()
            .await
            .expect("describe key");
        assert_eq!(described.key_metadata().unwrap().key_id(), copy);
        let answered = started.elapsed().as_secs_f64();
        server
            .client()
            .list_keys()
            .limit(1)
            .send()
            .await
            .expect("list keys");
        (answered, started.elapsed().as_secs_f64())
    });
    let (answered, complete) = answered;
    Start {
        listening,
        answered,
        complete,
        rss_mib: rss_mib(server.pid()),
        cpu: cpu_seconds(server.pid()),
    }
}

fn main() {
    let sizes: Vec<(usize, usize)> = std::env::var("BENCH_STARTUP")
        .unwrap_or_else(|_| "1000:10000,100000:1000000".into())
        .split(',')
        .filter_map(|pair| {
            let (k, r) = pair.split_once(':')?;
            Some((k.trim().parse().ok()?, r.trim().parse().ok()?))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "trent start-up (SQLite; store filled by direct SQL copies of one real key and one real \
         Encrypt record, chained and indexed as the writer does)"
    );
    for (keys, records) in sizes {
        let mut server = TestServer::start(StoreKind::Sqlite);
        let key = rt.block_on(async {
            let client = server.client();
            let key = client.create_key().send().await.expect("create key");
            let id = key.key_metadata().unwrap().key_id().to_string();
            client
                .encrypt()
                .key_id(&id)
                .plaintext(Blob::new(vec![1; 64]))
                .send()
                .await
                .expect("encrypt");
            id
        });
        server.terminate();
        let filled = Instant::now();
        let copy = fill(&server.data_dir.join("trent.db"), &key, keys, records);
        let fill_time = filled.elapsed();
        // First start: the shutdown snapshot of the one-key store, then every copied event.
        let replayed = time_start(&rt, &mut server, &copy);
        // Second start: the snapshot this server wrote at shutdown covers every key.
        server.terminate();
        let from_snapshot = time_start(&rt, &mut server, &copy);
        println!(
            "{keys:>7} keys, {records:>8} audit records (store filled in {:.1} s):",
            fill_time.as_secs_f64()
        );
        for (how, s) in [
            ("replaying the events", replayed),
            ("from a snapshot", from_snapshot),
        ] {
            println!(
                "    {how:<22} listening after {:>6.3} s, first answer after {:>6.3} s, full model after {:>6.3} s, RSS {:>6.1} MiB, CPU {:.2} s",
                s.listening, s.answered, s.complete, s.rss_mib, s.cpu
            );
        }
    }
}
