//! The store conformance suite: every test below is written once, as an async function over a
//! `Fixture`, and the `conformance!` macro runs each one against both backends (modules `sqlite::`
//! and `postgres::`). PostgreSQL comes from `tests/it/common/pg.rs` (a throwaway cluster, or
//! `KMS_TEST_DATABASE_URL`); there is no silent skip.

use crate::common::pg;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;
use trent_store::chain::{self, ChainVerifier};
use trent_store::postgres::PostgresStore;
use trent_store::sqlite::SqliteStore;
use trent_store::{
    CommitReceipt, CommitUnit, KeyUse, LookupQuery, NewAuditRecord, NewEvent, SealedMaterial,
    SharedStore, StoreError, StoredAuditRecord, StreamAppend, GENESIS_HASH,
};

/// Runs each named suite function against SQLite and against PostgreSQL.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::sqlite()).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::postgres().await).await
                }
            )+
        }
    };
}

conformance!(
    append_and_read,
    version_conflict_is_per_unit,
    unit_is_all_or_nothing,
    audit_chain_links_across_batches_and_handles,
    database_refuses_changes_to_history,
    key_materials_get_and_destroy,
    material_of_a_conflicting_unit_is_not_written,
    migrate_is_idempotent,
    concurrent_handles_keep_one_chain,
    database_refuses_records_that_do_not_extend_the_chain,
    lookup_finds_records_by_attribute_newest_first_in_pages,
    key_last_use_keeps_the_latest_use,
    newest_snapshot_and_last_event_sequence_are_bounded_reads,
);

// ---------------------------------------------------------------------------------------------
// Fixture: one fresh database of one backend, plus raw SQL access to it.

/// Where a fixture's database lives.
enum Db {
    Sqlite { dir: PathBuf, path: PathBuf },
    Postgres { url: String },
}

/// One fresh database of one backend, for one test.
struct Fixture {
    db: Db,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Db::Sqlite { dir, .. } = &self.db {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = std::env::temp_dir().join(format!("trent-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trent.db");
        Fixture {
            db: Db::Sqlite { dir, path },
        }
    }

    async fn postgres() -> Fixture {
        let url = tokio::task::spawn_blocking(pg::require_database_url)
            .await
            .unwrap();
        Fixture {
            db: Db::Postgres { url },
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres { .. })
    }

    /// A new store handle on the fixture's database (its own connection or pool), not migrated.
    async fn handle(&self) -> SharedStore {
        match &self.db {
            Db::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).unwrap()),
            Db::Postgres { url } => Arc::new(PostgresStore::connect(url).await.unwrap()),
        }
    }

    /// A new, migrated store handle.
    async fn store(&self) -> SharedStore {
        let store = self.handle().await;
        store.migrate().await.unwrap();
        store
    }

    /// Run one statement on a raw connection (not through the store); the database's message on error.
    async fn raw_execute(&self, sql: &str) -> Result<u64, String> {
        match &self.db {
            Db::Sqlite { path, .. } => {
                let (path, sql) = (path.clone(), sql.to_string());
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
                    conn.execute(&sql, [])
                        .map(|n| n as u64)
                        .map_err(|e| e.to_string())
                })
                .await
                .unwrap()
            }
            Db::Postgres { url } => {
                let client = pg_client(url).await;
                client
                    .execute(sql, &[])
                    .await
                    .map_err(|e| match e.as_db_error() {
                        Some(db) => db.message().to_string(),
                        None => e.to_string(),
                    })
            }
        }
    }

    /// The single integer a raw query returns (for example a `COUNT(*)`).
    async fn raw_i64(&self, sql: &str) -> i64 {
        match &self.db {
            Db::Sqlite { path, .. } => {
                let (path, sql) = (path.clone(), sql.to_string());
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).unwrap();
                    conn.query_row(&sql, [], |row| row.get(0)).unwrap()
                })
                .await
                .unwrap()
            }
            Db::Postgres { url } => pg_client(url)
                .await
                .query_one(sql, &[])
                .await
                .unwrap()
                .get(0),
        }
    }
}

/// A raw PostgreSQL connection, outside the store.
async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

// ---------------------------------------------------------------------------------------------
// Builders and checks.

fn event(event_type: &str, n: i64) -> NewEvent {
    NewEvent {
        event_type: event_type.to_string(),
        payload: json!({"v": 1, "n": n, "nested": {"list": [1, 2.5, "drei", null], "ok": true}, "text": "clé ✓"}),
    }
}

fn append(stream: &str, expected_version: i64, count: i64) -> StreamAppend {
    StreamAppend {
        stream: stream.to_string(),
        expected_version,
        events: (1..=count).map(|n| event("KeyTagged", n)).collect(),
    }
}

fn audit(event_id: &str) -> NewAuditRecord {
    NewAuditRecord {
        event_id: event_id.to_string(),
        event_time: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
        record:
            json!({"eventVersion": "1.08", "eventID": event_id, "eventSource": "kms.amazonaws.com"})
                .to_string(),
        account: "111122223333".to_string(),
        lookup: vec![("EventId".to_string(), event_id.to_string())],
    }
}

fn unit(appends: Vec<StreamAppend>, event_id: Option<&str>) -> CommitUnit {
    CommitUnit {
        materials: Vec::new(),
        destroy_materials: Vec::new(),
        appends,
        audit: event_id.map(audit),
        audit_copies: Vec::new(),
        key_uses: Vec::new(),
    }
}

fn material(key_id: &str, version: i32) -> SealedMaterial {
    SealedMaterial {
        key_id: key_id.to_string(),
        version,
        sealed: format!("sealed:{key_id}:{version}:\u{0}\u{ff}").into_bytes(),
    }
}

/// Commit a batch whose units must all succeed.
async fn commit_ok(store: &SharedStore, units: Vec<CommitUnit>) -> Vec<CommitReceipt> {
    store
        .commit(units)
        .await
        .expect("batch commits")
        .into_iter()
        .map(|r| r.expect("unit commits"))
        .collect()
}

/// Read the whole audit trail in small pages and verify its chain; returns the records.
async fn verify_chain(store: &SharedStore) -> Vec<StoredAuditRecord> {
    let mut verifier = ChainVerifier::default();
    let mut all: Vec<StoredAuditRecord> = Vec::new();
    loop {
        let after = all.last().map_or(0, |r| r.sequence);
        let page = store.read_audit(after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        for record in &page {
            verifier
                .check(record)
                .unwrap_or_else(|e| panic!("chain broken: {e}"));
        }
        all.extend(page);
    }
    assert_eq!(verifier.verified(), all.len() as i64);
    all
}

fn sequences<T>(items: &[T], f: impl Fn(&T) -> i64) -> Vec<i64> {
    items.iter().map(f).collect()
}

// ---------------------------------------------------------------------------------------------
// The suite.

async fn append_and_read(fx: Fixture) {
    let store = fx.store().await;
    assert!(store.read_events(0, 100).await.unwrap().is_empty());
    let before = Utc::now() - chrono::Duration::seconds(1);

    let first = commit_ok(
        &store,
        vec![unit(
            vec![append("key/a", 0, 2), append("key/b", 0, 1)],
            Some("e1"),
        )],
    )
    .await;
    assert_eq!(first[0].audit_sequence, Some(1));
    let got: Vec<(i64, &str, i64)> = first[0]
        .events
        .iter()
        .map(|e| (e.sequence, e.stream.as_str(), e.version))
        .collect();
    assert_eq!(got, vec![(1, "key/a", 1), (2, "key/a", 2), (3, "key/b", 1)]);
    assert!(first[0].events[0].recorded_at >= before);

    let second = commit_ok(&store, vec![unit(vec![append("key/a", 2, 1)], None)]).await;
    assert_eq!(second[0].audit_sequence, None);
    assert_eq!(
        (second[0].events[0].sequence, second[0].events[0].version),
        (4, 3)
    );

    // What the store returns equals what the receipts said, payloads included.
    let all = store.read_events(0, 100).await.unwrap();
    let receipts: Vec<_> = first[0]
        .events
        .iter()
        .chain(&second[0].events)
        .cloned()
        .collect();
    assert_eq!(all, receipts);
    assert_eq!(all[0].payload, event("KeyTagged", 1).payload);

    let stream_a = store.read_stream("key/a").await.unwrap();
    assert_eq!(sequences(&stream_a, |e| e.version), vec![1, 2, 3]);
    assert_eq!(sequences(&stream_a, |e| e.sequence), vec![1, 2, 4]);
    assert!(store.read_stream("key/none").await.unwrap().is_empty());

    // Paging from a global position.
    let page = store.read_events(1, 2).await.unwrap();
    assert_eq!(sequences(&page, |e| e.sequence), vec![2, 3]);
    assert!(store.read_events(4, 10).await.unwrap().is_empty());
    assert!(store.read_events(0, 0).await.unwrap().is_empty());
}

async fn version_conflict_is_per_unit(fx: Fixture) {
    let store = fx.store().await;
    let results = store
        .commit(vec![
            unit(vec![append("key/1", 0, 1)], Some("a")),
            unit(vec![append("key/2", 5, 1)], Some("b")),
            // Conflicts with the first unit of the same batch.
            unit(vec![append("key/1", 0, 1)], Some("c")),
            unit(vec![append("key/3", 0, 2)], Some("d")),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let ok_a = results[0].as_ref().unwrap();
    match &results[1] {
        Err(StoreError::VersionConflict {
            stream,
            expected,
            found,
        }) => assert_eq!((stream.as_str(), *expected, *found), ("key/2", 5, 0)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    match &results[2] {
        Err(StoreError::VersionConflict {
            stream,
            expected,
            found,
        }) => assert_eq!((stream.as_str(), *expected, *found), ("key/1", 0, 1)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let ok_d = results[3].as_ref().unwrap();
    assert_eq!(sequences(&ok_a.events, |e| e.sequence), vec![1]);
    assert_eq!(sequences(&ok_d.events, |e| e.sequence), vec![2, 3]);
    assert_eq!(
        (ok_a.audit_sequence, ok_d.audit_sequence),
        (Some(1), Some(2))
    );

    let events = store.read_events(0, 100).await.unwrap();
    assert_eq!(sequences(&events, |e| e.sequence), vec![1, 2, 3]);
    assert!(store.read_stream("key/2").await.unwrap().is_empty());
    let trail = verify_chain(&store).await;
    let ids: Vec<_> = trail.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "d"]);

    // The stream moves on from where it is.
    let next = commit_ok(&store, vec![unit(vec![append("key/1", 1, 1)], Some("e"))]).await;
    assert_eq!(
        (next[0].events[0].version, next[0].events[0].sequence),
        (2, 4)
    );
}

async fn unit_is_all_or_nothing(fx: Fixture) {
    let store = fx.store().await;

    // The second append of the unit conflicts: its material, first append and audit go too.
    let mut doomed = unit(
        vec![append("key/ok", 0, 2), append("key/late", 3, 1)],
        Some("doomed"),
    );
    doomed.materials = vec![material("k-doomed", 1)];
    let results = store.commit(vec![doomed]).await.unwrap();
    assert!(matches!(
        results[0],
        Err(StoreError::VersionConflict { .. })
    ));
    assert_eq!(store.get_material("k-doomed", 1).await.unwrap(), None);
    assert!(store.read_stream("key/ok").await.unwrap().is_empty());
    assert!(store.read_events(0, 100).await.unwrap().is_empty());
    assert!(store.read_audit(0, 100).await.unwrap().is_empty());

    // A unit the database itself rejects (a material version that exists already) fails alone,
    // and leaves no trace.
    let mut first = unit(vec![], Some("first"));
    first.materials = vec![material("k-dup", 1)];
    commit_ok(&store, vec![first]).await;
    let mut rejected = unit(vec![append("key/rejected", 0, 1)], Some("rejected"));
    rejected.materials = vec![material("k-rejected", 1), material("k-dup", 1)];
    let results = store
        .commit(vec![
            rejected,
            unit(vec![append("key/fine", 0, 1)], Some("fine")),
        ])
        .await
        .unwrap();
    assert!(
        matches!(results[0], Err(StoreError::Database(_))),
        "{:?}",
        results[0]
    );
    let fine = results[1].as_ref().unwrap();
    assert_eq!(fine.audit_sequence, Some(2));
    assert_eq!(fine.events[0].sequence, 1);
    assert_eq!(store.get_material("k-rejected", 1).await.unwrap(), None);
    assert!(store.read_stream("key/rejected").await.unwrap().is_empty());
    let trail = verify_chain(&store).await;
    assert_eq!(trail.len(), 2);

    // A unit with nothing in it commits and gets nothing.
    let empty = commit_ok(&store, vec![CommitUnit::default()]).await;
    assert_eq!(
        empty[0],
        CommitReceipt {
            events: vec![],
            audit_sequence: None,
            copy_sequences: vec![],
        }
    );
    assert!(store.commit(vec![]).await.unwrap().is_empty());
}

async fn audit_chain_links_across_batches_and_handles(fx: Fixture) {
    let store = fx.store().await;
    let mut expected_ids = Vec::new();
    for batch in 0..3 {
        let units: Vec<CommitUnit> = (0..4)
            .map(|u| {
                let id = format!("b{batch}-u{u}");
                // Every other unit has no audit record.
                let with_audit = u % 2 == 0;
                if with_audit {
                    expected_ids.push(id.clone());
                }
                unit(
                    vec![append(&format!("key/{batch}-{u}"), 0, 1)],
                    with_audit.then_some(id.as_str()),
                )
            })
            .collect();
        let receipts = commit_ok(&store, units).await;
        let positions: Vec<_> = receipts.iter().map(|r| r.audit_sequence).collect();
        let base = batch * 2;
        assert_eq!(positions, vec![Some(base + 1), None, Some(base + 2), None]);
    }

    // Another handle (a new connection, as after a restart or from another replica) continues it.
    let other = fx.store().await;
    let receipts = commit_ok(&other, vec![unit(vec![], Some("other-handle"))]).await;
    assert_eq!(receipts[0].audit_sequence, Some(7));
    expected_ids.push("other-handle".into());

    let trail = verify_chain(&store).await;
    let ids: Vec<_> = trail.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids, expected_ids);
    assert_eq!(trail[0].prev_hash, GENESIS_HASH);
    assert_eq!(trail[0].hash, chain::link(GENESIS_HASH, &trail[0].record));
    let sent = audit("b0-u0");
    assert_eq!(
        (&trail[0].record, trail[0].event_time),
        (&sent.record, sent.event_time)
    );
    assert_eq!(store.read_audit(5, 10).await.unwrap().len(), 2);

    // A cross-account call's record and its copies take consecutive positions in the one chain,
    // in the same transaction as the call's events.
    let mut cross = unit(vec![append("key/cross", 0, 1)], Some("cross"));
    cross.audit_copies = vec![audit("cross-copy-1"), audit("cross-copy-2")];
    let plain = unit(vec![], Some("after"));
    let receipts = commit_ok(&store, vec![cross, plain]).await;
    assert_eq!(
        (
            receipts[0].audit_sequence,
            receipts[0].copy_sequences.clone()
        ),
        (Some(8), vec![9, 10])
    );
    assert_eq!(
        (
            receipts[1].audit_sequence,
            receipts[1].copy_sequences.clone()
        ),
        (Some(11), vec![])
    );
    let trail = verify_chain(&store).await;
    let tail: Vec<_> = trail[7..].iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(tail, ["cross", "cross-copy-1", "cross-copy-2", "after"]);
}

async fn database_refuses_changes_to_history(fx: Fixture) {
    let store = fx.store().await;
    commit_ok(
        &store,
        vec![
            unit(vec![append("key/x", 0, 2)], Some("r1")),
            unit(vec![append("key/y", 0, 1)], Some("r2")),
        ],
    )
    .await;

    let mut statements = vec![
        "UPDATE events SET event_type = 'Tampered'",
        "UPDATE events SET payload = '{}' WHERE sequence = 1",
        "DELETE FROM events WHERE sequence = 2",
        "DELETE FROM events",
        "UPDATE audit_records SET record = 'forged'",
        "DELETE FROM audit_records WHERE sequence = 1",
        "DELETE FROM audit_records",
        "UPDATE audit_lookup SET value = 'forged'",
        "DELETE FROM audit_lookup",
    ];
    if fx.is_postgres() {
        statements.extend([
            "TRUNCATE events",
            "TRUNCATE audit_records",
            "TRUNCATE events, audit_records",
            "TRUNCATE audit_lookup",
        ]);
    }
    for sql in statements {
        let err = fx
            .raw_execute(sql)
            .await
            .expect_err(&format!("{sql} must be refused"));
        assert!(err.contains("append-only"), "{sql}: unexpected error {err}");
    }

    assert_eq!(fx.raw_i64("SELECT COUNT(*) FROM events").await, 3);
    assert_eq!(fx.raw_i64("SELECT COUNT(*) FROM audit_records").await, 2);
    let events = store.read_events(0, 10).await.unwrap();
    assert!(events.iter().all(|e| e.event_type == "KeyTagged"));
    assert_eq!(verify_chain(&store).await.len(), 2);

    // Inserting stays possible for the store afterwards.
    commit_ok(&store, vec![unit(vec![append("key/x", 2, 1)], Some("r3"))]).await;
    assert_eq!(verify_chain(&store).await.len(), 3);
}

async fn key_materials_get_and_destroy(fx: Fixture) {
    let store = fx.store().await;
    let mut create = unit(vec![append("key/k1", 0, 1)], Some("create"));
    create.materials = vec![material("k1", 1), material("k1", 2), material("k2", 1)];
    commit_ok(&store, vec![create]).await;

    assert_eq!(
        store.get_material("k1", 2).await.unwrap(),
        Some(material("k1", 2))
    );
    assert_eq!(store.get_material("k1", 3).await.unwrap(), None);
    assert_eq!(store.get_material("nope", 1).await.unwrap(), None);

    // The same material version cannot be stored twice.
    let mut again = unit(vec![], Some("again"));
    again.materials = vec![material("k1", 1)];
    let results = store.commit(vec![again]).await.unwrap();
    assert!(matches!(results[0], Err(StoreError::Database(_))));

    assert_eq!(store.destroy_materials("k1").await.unwrap(), 2);
    assert_eq!(
        fx.raw_i64("SELECT COUNT(*) FROM key_materials WHERE key_id = 'k1'")
            .await,
        0
    );
    assert_eq!(store.get_material("k1", 1).await.unwrap(), None);
    assert_eq!(
        store.get_material("k2", 1).await.unwrap(),
        Some(material("k2", 1))
    );
    assert_eq!(store.destroy_materials("k1").await.unwrap(), 0);
    // The events that describe the key stay.
    assert_eq!(store.read_stream("key/k1").await.unwrap().len(), 1);
}

async fn material_of_a_conflicting_unit_is_not_written(fx: Fixture) {
    let store = fx.store().await;
    let mut create = unit(vec![append("key/r", 0, 1)], Some("create"));
    create.materials = vec![material("r", 1)];
    let mut winner = unit(vec![append("key/r", 1, 1)], Some("winner"));
    winner.materials = vec![material("r", 2)];
    commit_ok(&store, vec![create, winner]).await;

    // A rotation that read the same version loses: a version conflict, not a keystore clash,
    // and its material (another sealing of version 2) is not written.
    let mut loser = unit(vec![append("key/r", 1, 1)], Some("loser"));
    loser.materials = vec![SealedMaterial {
        key_id: "r".into(),
        version: 2,
        sealed: vec![0xEE; 40],
    }];
    let results = store.commit(vec![loser]).await.unwrap();
    assert!(
        matches!(results[0], Err(StoreError::VersionConflict { .. })),
        "{:?}",
        results[0]
    );
    assert_eq!(
        store.get_material("r", 2).await.unwrap(),
        Some(material("r", 2))
    );

    // Destruction in a unit happens with its events, and not at all when the unit conflicts.
    let mut stale = unit(vec![append("key/r", 1, 1)], Some("stale-destroy"));
    stale.destroy_materials = vec!["r".into()];
    let results = store.commit(vec![stale]).await.unwrap();
    assert!(matches!(
        results[0],
        Err(StoreError::VersionConflict { .. })
    ));
    assert!(store.get_material("r", 1).await.unwrap().is_some());
    let mut destroy = unit(vec![append("key/r", 2, 1)], Some("destroy"));
    destroy.destroy_materials = vec!["r".into()];
    commit_ok(&store, vec![destroy]).await;
    assert_eq!(store.get_material("r", 1).await.unwrap(), None);
    assert_eq!(store.get_material("r", 2).await.unwrap(), None);
}

impl Fixture {
    /// How many migrations this backend has (`migrations/{sqlite,postgres}/`).
    fn migration_count(&self) -> i64 {
        match self.db {
            Db::Sqlite { .. } => 7,
            Db::Postgres { .. } => 7,
        }
    }
}

async fn migrate_is_idempotent(fx: Fixture) {
    let store = fx.store().await;
    commit_ok(&store, vec![unit(vec![append("key/m", 0, 1)], Some("m1"))]).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    fx.store().await; // a second handle migrating the same database
    assert_eq!(
        fx.raw_i64("SELECT COUNT(*) FROM schema_migrations").await,
        fx.migration_count()
    );
    assert_eq!(store.read_events(0, 10).await.unwrap().len(), 1);
    commit_ok(&store, vec![unit(vec![append("key/m", 1, 1)], Some("m2"))]).await;
    assert_eq!(verify_chain(&store).await.len(), 2);

    if let Db::Postgres { .. } = fx.db {
        // The chain check probes the primary key, never a scan of the table (migration 0007).
        assert_eq!(
            fx.raw_i64(
                "SELECT COUNT(*) FROM pg_proc WHERE proname = 'trent_audit_extends_chain' \
                 AND 'enable_seqscan=off' = ANY(proconfig)"
            )
            .await,
            1
        );
    }

    // Two handles migrating a fresh database at once.
    let fresh = match &fx.db {
        Db::Sqlite { .. } => Fixture::sqlite(),
        Db::Postgres { .. } => Fixture::postgres().await,
    };
    let (a, b) = (fresh.handle().await, fresh.handle().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(
        fresh
            .raw_i64("SELECT COUNT(*) FROM schema_migrations")
            .await,
        fresh.migration_count()
    );
}

/// Rounds each writer runs in the concurrency test.
const ROUNDS: i64 = 12;

/// One writer of the concurrency test: own streams, plus a contested shared stream with retries.
/// Returns (events appended, audit records written).
async fn writer(name: &'static str, store: SharedStore) -> (i64, i64) {
    let (mut events, mut audits) = (0, 0);
    let mut own_versions = [0i64; 3];
    for round in 0..ROUNDS {
        // A batch of 1..=3 units on this writer's own streams.
        let width = (round % 3 + 1) as usize;
        let units: Vec<CommitUnit> = (0..width)
            .map(|u| {
                let id = format!("{name}-{round}-{u}");
                unit(
                    vec![append(&format!("key/{name}-{u}"), own_versions[u], 2)],
                    Some(id.as_str()),
                )
            })
            .collect();
        for receipt in commit_ok(&store, units).await {
            let stream = &receipt.events[0].stream;
            let u: usize = stream[stream.len() - 1..].parse().unwrap();
            own_versions[u] += 2;
            events += 2;
            audits += 1;
        }
        // One append to the shared stream, retried on conflict with the other writer.
        let mut attempt = 0;
        loop {
            attempt += 1;
            assert!(attempt < 100, "{name} never got its shared append in");
            let current = store.read_stream("key/shared").await.unwrap().len() as i64;
            let id = format!("{name}-{round}-shared-{attempt}");
            let mut results = store
                .commit(vec![unit(
                    vec![append("key/shared", current, 1)],
                    Some(id.as_str()),
                )])
                .await
                .unwrap();
            match results.remove(0) {
                Ok(_) => {
                    events += 1;
                    audits += 1;
                    break;
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    (events, audits)
}

async fn concurrent_handles_keep_one_chain(fx: Fixture) {
    let (a, b) = (fx.handle().await, fx.handle().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();

    let ta = tokio::spawn(writer("a", a));
    let tb = tokio::spawn(writer("b", b.clone()));
    let (ea, aa) = ta.await.unwrap();
    let (eb, ab) = tb.await.unwrap();

    let events = b.read_events(0, 10_000).await.unwrap();
    assert_eq!(
        sequences(&events, |e| e.sequence),
        (1..=ea + eb).collect::<Vec<_>>(),
        "global sequences are gap-free"
    );
    let trail = verify_chain(&b).await;
    assert_eq!(trail.len() as i64, aa + ab);
    let distinct: BTreeSet<_> = trail.iter().map(|r| r.prev_hash.clone()).collect();
    assert_eq!(
        distinct.len(),
        trail.len(),
        "no two records share a predecessor"
    );

    let shared = b.read_stream("key/shared").await.unwrap();
    assert_eq!(
        sequences(&shared, |e| e.version),
        (1..=2 * ROUNDS).collect::<Vec<_>>()
    );
    for name in ["a", "b"] {
        for u in 0..3 {
            let stream = b.read_stream(&format!("key/{name}-{u}")).await.unwrap();
            let versions = sequences(&stream, |e| e.version);
            assert_eq!(versions, (1..=stream.len() as i64).collect::<Vec<_>>());
        }
    }
    // The sequence order is the commit order: within each stream, versions rise with sequences.
    let mut last: std::collections::HashMap<&str, (i64, i64)> = Default::default();
    for e in &events {
        if let Some((seq, version)) = last.get(e.stream.as_str()) {
            assert!(e.sequence > *seq && e.version == version + 1);
        }
        last.insert(&e.stream, (e.sequence, e.version));
    }
}

async fn database_refuses_records_that_do_not_extend_the_chain(fx: Fixture) {
    let store = fx.store().await;
    commit_ok(
        &store,
        vec![unit(vec![], Some("r1")), unit(vec![], Some("r2"))],
    )
    .await;
    let trail = verify_chain(&store).await;
    let (first, second) = (&trail[0].hash, &trail[1].hash);
    let insert = |sequence: i64, prev: &str| {
        format!(
            "INSERT INTO audit_records (sequence, event_id, event_time, record, prev_hash, hash) \
             VALUES ({sequence}, 'forged', '2024-01-01T00:00:00.000000Z', 'forged', '{prev}', 'h')"
        )
    };
    for (what, sql) in [
        ("a fork (a second successor of record 1)", insert(3, first)),
        ("a gap (sequence 5 after 2)", insert(5, second)),
        ("a made-up predecessor", insert(3, &"ab".repeat(32))),
        ("a second genesis", insert(3, GENESIS_HASH)),
    ] {
        let err = fx
            .raw_execute(&sql)
            .await
            .expect_err(&format!("{what} must be refused"));
        assert!(
            err.contains("extend the chain"),
            "{what}: unexpected error {err}"
        );
    }
    // The store's own appends go on linking from the real tail.
    commit_ok(&store, vec![unit(vec![], Some("r3"))]).await;
    assert_eq!(verify_chain(&store).await.len(), 3);
}

/// A record of `account` at `second` seconds past a fixed time, with lookup attributes.
fn looked_up(id: &str, account: &str, second: u32, lookup: &[(&str, &str)]) -> CommitUnit {
    let mut record = audit(id);
    record.event_time = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, second).unwrap();
    record.account = account.to_string();
    record.lookup = lookup
        .iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect();
    CommitUnit {
        audit: Some(record),
        ..Default::default()
    }
}

async fn lookup_finds_records_by_attribute_newest_first_in_pages(fx: Fixture) {
    let store = fx.store().await;
    let k = ("ResourceType", "AWS::KMS::Key");
    commit_ok(
        &store,
        vec![
            looked_up("a", "1", 10, &[("EventName", "Encrypt"), k, k]),
            looked_up("b", "1", 20, &[("EventName", "Decrypt"), k]),
        ],
    )
    .await;
    commit_ok(
        &store,
        vec![
            // Same second as "b": the sequence breaks the tie.
            looked_up("c", "1", 20, &[("EventName", "Encrypt")]),
            looked_up("d", "2", 30, &[("EventName", "Encrypt")]),
        ],
    )
    .await;
    let base = 1_714_979_280; // 2024-05-06T07:08:00Z
    let query = |attribute: Option<(&str, &str)>| LookupQuery {
        account: "1".into(),
        attribute: attribute.map(|(a, v)| (a.into(), v.into())),
        start: None,
        end: None,
        before: None,
        limit: 50,
    };
    let ids = |hits: Vec<trent_store::LookupHit>| -> Vec<i64> {
        hits.iter().map(|h| h.sequence).collect()
    };
    let encrypts = store
        .lookup_audit(&query(Some(("EventName", "Encrypt"))))
        .await
        .unwrap();
    assert_eq!(encrypts[0].event_time, base + 20);
    assert!(encrypts[0].record.contains("\"c\""));
    assert_eq!(
        ids(encrypts),
        vec![3, 1],
        "account 2's record is not account 1's"
    );
    // A record whose attribute appears twice is found once.
    assert_eq!(
        ids(store.lookup_audit(&query(Some(k))).await.unwrap()),
        vec![2, 1]
    );
    // Without an attribute: every record of the account, newest first, in pages.
    let mut page = query(None);
    page.limit = 2;
    let first = store.lookup_audit(&page).await.unwrap();
    assert_eq!(ids(first.clone()), vec![3, 2]);
    page.before = first.last().map(|h| (h.event_time, h.sequence));
    assert_eq!(ids(store.lookup_audit(&page).await.unwrap()), vec![1]);
    // A time window, both ends inclusive.
    let mut window = query(None);
    window.start = Some(base + 10);
    window.end = Some(base + 19);
    assert_eq!(ids(store.lookup_audit(&window).await.unwrap()), vec![1]);
    window.end = Some(base + 20);
    assert_eq!(
        ids(store.lookup_audit(&window).await.unwrap()),
        vec![3, 2, 1]
    );
    // Another handle (another replica) sees the same at once.
    let other = fx.handle().await;
    let mut theirs = query(Some(("EventName", "Encrypt")));
    theirs.account = "2".into();
    assert_eq!(ids(other.lookup_audit(&theirs).await.unwrap()), vec![4]);
    assert!(store
        .lookup_audit(&query(Some(("EventName", "Sign"))))
        .await
        .unwrap()
        .is_empty());
}

/// Start-up's reads: the newest event's sequence, and the newest kept snapshot at or below a
/// sequence (one body, not every kept one).
async fn newest_snapshot_and_last_event_sequence_are_bounded_reads(fx: Fixture) {
    let store = fx.store().await;
    assert_eq!(store.last_event_sequence().await.unwrap(), 0);
    assert!(store.newest_snapshot(i64::MAX).await.unwrap().is_none());
    commit_ok(&store, vec![unit(vec![append("key/a", 0, 3)], None)]).await;
    commit_ok(&store, vec![unit(vec![append("key/b", 0, 2)], None)]).await;
    assert_eq!(store.last_event_sequence().await.unwrap(), 5);
    for sequence in [1, 3, 5] {
        store
            .put_snapshot(&trent_store::StoredSnapshot {
                sequence,
                taken_at: Utc::now(),
                body: vec![sequence as u8; 4],
            })
            .await
            .unwrap();
    }
    // Two are kept (3 and 5).
    let newest = |at_most: i64| {
        let store = store.clone();
        async move {
            store
                .newest_snapshot(at_most)
                .await
                .unwrap()
                .map(|s| (s.sequence, s.body))
        }
    };
    assert_eq!(newest(i64::MAX).await, Some((5, vec![5; 4])));
    assert_eq!(newest(5).await, Some((5, vec![5; 4])));
    assert_eq!(newest(4).await, Some((3, vec![3; 4])));
    assert_eq!(newest(2).await, None);
}

async fn key_last_use_keeps_the_latest_use(fx: Fixture) {
    let store = fx.store().await;
    assert_eq!(store.first_audit_time().await.unwrap(), None);
    let at = |second: u32| Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, second).unwrap();
    let used = |arn: &str, operation: &str, second: u32| {
        let mut u = unit(vec![], Some(&format!("{operation}-{second}")));
        u.key_uses = vec![KeyUse {
            key_arn: arn.to_string(),
            operation: operation.to_string(),
            used_at: at(second),
            event_id: format!("{operation}-{second}"),
            request_id: format!("req-{operation}-{second}"),
        }];
        u
    };
    commit_ok(
        &store,
        vec![
            used("arn:k1", "Encrypt", 10),
            // Same time in the same batch: the first stays.
            used("arn:k1", "Decrypt", 10),
            used("arn:k2", "Sign", 5),
        ],
    )
    .await;
    let k1 = store.key_last_use("arn:k1").await.unwrap().unwrap();
    assert_eq!((k1.operation.as_str(), k1.used_at), ("Encrypt", at(10)));
    assert_eq!(k1.request_id, "req-Encrypt-10");
    // Later batches: an older use does not replace a newer one; a newer one does.
    commit_ok(&store, vec![used("arn:k1", "GenerateMac", 9)]).await;
    commit_ok(&store, vec![used("arn:k2", "Verify", 6)]).await;
    let k1 = store.key_last_use("arn:k1").await.unwrap().unwrap();
    assert_eq!(k1.operation, "Encrypt");
    let k2 = store.key_last_use("arn:k2").await.unwrap().unwrap();
    assert_eq!((k2.operation.as_str(), k2.used_at), ("Verify", at(6)));
    assert_eq!(store.key_last_use("arn:none").await.unwrap(), None);
    // Tracking starts at the oldest record (audit() records carry a fixed time).
    assert_eq!(
        store.first_audit_time().await.unwrap(),
        Some(Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap())
    );
}

/// The WAL's checkpoint sequence number (bytes 12..16 of its header, big-endian), which SQLite
/// increments each time the WAL starts over from its beginning.
fn wal_restarts(wal: &std::path::Path) -> u32 {
    let bytes = std::fs::read(wal).expect("the WAL exists");
    u32::from_be_bytes(bytes[12..16].try_into().expect("a WAL header"))
}

/// A migrated SQLite store on a fresh file whose WAL starts over once it holds `restart_after`
/// bytes, and the path of that WAL.
async fn sqlite_with_wal_restart(fx: &Fixture, restart_after: u64) -> (SharedStore, PathBuf) {
    let Db::Sqlite { path, .. } = &fx.db else {
        unreachable!("a SQLite fixture")
    };
    let store: SharedStore =
        Arc::new(SqliteStore::open_with_wal_restart(path, restart_after).unwrap());
    store.migrate().await.unwrap();
    (store, path.with_file_name("trent.db-wal"))
}

/// On a fresh store whose WAL starts over at `restart_after` bytes: one commit, then
/// back-to-back single-record batches (the writer's `commit_visible`) for 2.6 s, five background
/// checkpoint intervals. Returns how many batches, how many times the WAL started over during
/// them, and the WAL's path.
async fn wal_restarts_under_back_to_back_commits(
    fx: &Fixture,
    restart_after: u64,
) -> (usize, u32, PathBuf) {
    let (store, wal) = sqlite_with_wal_restart(fx, restart_after).await;
    store
        .commit_visible(vec![unit(Vec::new(), Some("first"))])
        .await
        .unwrap();
    let before = wal_restarts(&wal);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(2600);
    let mut n = 0;
    while std::time::Instant::now() < deadline {
        let id = format!("record-{n}");
        let results = store
            .commit_visible(vec![unit(Vec::new(), Some(&id))])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        n += 1;
    }
    let restarts = wal_restarts(&wal) - before;
    (n, restarts, wal)
}

/// Under commits without a pause the WAL still starts over once it holds the restart length
/// (each background checkpoint pass that finds it so long is finished by the writer between two
/// commits), so it does not grow with every commit ever made: before, it grew by about 100 MB/s
/// under load until the disk was full.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_wal_starts_over_under_continuous_commits() {
    let fx = Fixture::sqlite();
    let (n, restarts, _) = wal_restarts_under_back_to_back_commits(&fx, 64 * 1024).await;
    assert!(
        restarts >= 2,
        "the WAL started over {restarts} times during {n} back-to-back commits"
    );
}

/// The same commits with a restart length they do not reach (1 GiB; the default is 64 MiB,
/// which this machine's debug build writes in about two seconds of back-to-back commits): the
/// writer does not start the WAL over (each such restart holds up the commits behind it for two
/// fsyncs, so it waits until the WAL is long), and every record is written.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_wal_is_not_started_over_while_shorter_than_the_restart_length() {
    let fx = Fixture::sqlite();
    let restart_after = 1 << 30;
    let (n, restarts, wal) = wal_restarts_under_back_to_back_commits(&fx, restart_after).await;
    // The file never shrinks without a restart, so its length is the most the WAL held.
    let wal_bytes = std::fs::metadata(&wal).unwrap().len();
    assert!(
        wal_bytes < restart_after,
        "{n} commits made a WAL of {wal_bytes} bytes, past the restart length: this machine \
         writes too fast for this test to tell anything"
    );
    // SQLite itself starts the WAL over when a background pass happens to copy everything
    // between two commits; the writer restarting it after each pass would do so about five times.
    assert!(
        restarts <= 1,
        "the WAL started over {restarts} times during {n} commits ({wal_bytes} bytes)"
    );
    assert_eq!(
        fx.raw_i64("SELECT COUNT(*) FROM audit_records").await,
        i64::try_from(n + 1).unwrap()
    );
}

/// PostgreSQL's `commit_visible` does not wait for the WAL flush (the writer's next batch goes
/// on meanwhile); `sync` then waits for the flush past everything committed before it, as the
/// writer relies on before it answers a batch's callers. (A sync that commits no WAL of its own,
/// such as a bare `SELECT txid_current()`, leaves the flush where it was: this test failed so.)
#[tokio::test(flavor = "multi_thread")]
async fn postgres_sync_flushes_every_commit_before_it() {
    let fx = Fixture::postgres().await;
    let store = fx.store().await;
    let Db::Postgres { url } = &fx.db else {
        unreachable!("a PostgreSQL fixture")
    };
    let raw = pg_client(url).await;
    for n in 0..3 {
        let results = store
            .commit_visible(vec![unit(
                vec![append("key/sync", n, 1)],
                Some(&format!("s{n}")),
            )])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        // Visible to every session at once.
        assert_eq!(fx.raw_i64("SELECT COUNT(*) FROM events").await, n + 1);
        let inserted: String = raw
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        store.sync().await.unwrap();
        let flushed: bool = raw
            .query_one(
                "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                &[&inserted],
            )
            .await
            .unwrap()
            .get(0);
        assert!(flushed, "after sync the WAL is flushed past {inserted}");
    }
}

/// A PostgreSQL writer that had the store to itself writes a batch of audit records in one round
/// trip on the tail its last batch left (`PostgresStore::guessed_batches`). When another writer
/// has moved the tail meanwhile, the database refuses the guess and the batch is planned again
/// from the tail read under the lock: every batch of two interleaving writers commits, the chain
/// has no gap and no record is lost or written twice.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_guessed_tails_fall_back_when_another_writer_moved_them() {
    let fx = Fixture::postgres().await;
    fx.store().await;
    let Db::Postgres { url } = &fx.db else {
        unreachable!("a PostgreSQL fixture")
    };
    let a = Arc::new(PostgresStore::connect(url).await.unwrap());
    let b = Arc::new(PostgresStore::connect(url).await.unwrap());
    let mut written = Vec::new();
    let mut batch = |writer: &str, n: usize| {
        (0..n)
            .map(|i| {
                let id = format!("{writer}-{}-{i}", written.len());
                written.push(id.clone());
                unit(Vec::new(), Some(&id))
            })
            .collect::<Vec<_>>()
    };
    // Alone: the first batches read the tail, then A guesses it.
    for _ in 0..4 {
        let units = batch("a", 3);
        commit_ok(&(a.clone() as SharedStore), units).await;
    }
    let (guessed, refused) = a.guessed_batches();
    assert!(
        guessed >= 2,
        "A guessed its tail once it was alone: {guessed}"
    );
    assert_eq!(refused, 0);
    // B moves the tail; A's next guess is refused and the batch still commits.
    for round in 0..3 {
        let units = batch("b", 2);
        commit_ok(&(b.clone() as SharedStore), units).await;
        let units = batch("a", 2);
        commit_ok(&(a.clone() as SharedStore), units).await;
        let (_, refused) = a.guessed_batches();
        assert!(refused >= 1, "round {round}: a stale guess was refused");
    }
    // A mix of events and records is never guessed: it needs the streams' versions.
    commit_ok(
        &(a.clone() as SharedStore),
        vec![unit(vec![append("key/guess", 0, 2)], Some("a-events"))],
    )
    .await;
    written.push("a-events".into());
    let store: SharedStore = a.clone();
    let records = verify_chain(&store).await;
    assert_eq!(
        sequences(&records, |r| r.sequence),
        (1..=written.len() as i64).collect::<Vec<_>>()
    );
    let mut ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
    ids.sort();
    written.sort();
    assert_eq!(ids, written, "every record once");
    assert_eq!(
        fx.raw_i64("SELECT COUNT(*) FROM audit_lookup WHERE attribute = 'EventId'")
            .await,
        written.len() as i64
    );
}

/// A TCP proxy in front of PostgreSQL that, once armed, lets the next `COMMIT` (a simple-query
/// message) through to the server and then closes the client's side without the server's
/// answer: the store sent COMMIT and cannot know whether it landed.
struct CommitCuttingProxy {
    port: u16,
    armed: Arc<std::sync::atomic::AtomicBool>,
    cuts: Arc<std::sync::atomic::AtomicUsize>,
}

/// The `Query` message `COMMIT`: type 'Q', length 4 + 7, the text and its NUL.
const COMMIT_MESSAGE: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

impl CommitCuttingProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (armed_in, cuts_in) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (armed, cuts) = (armed_in.clone(), cuts_in.clone());
                tokio::spawn(async move {
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    // Set before COMMIT goes to the server, so its answer is never relayed.
                    let cut = Arc::new(AtomicBool::new(false));
                    let cut_down = cut.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from_server.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if cut_down.load(Ordering::SeqCst) {
                                // The client's side closes without the answer; the server's
                                // side is read to its end, so it has COMMIT whole (no reset).
                                let _ = to_client.shutdown().await;
                                drop(to_client);
                                let mut sink = tokio::io::sink();
                                let _ = tokio::time::timeout(
                                    std::time::Duration::from_secs(2),
                                    tokio::io::copy(&mut from_server, &mut sink),
                                )
                                .await;
                                return;
                            }
                            if to_client.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from_client.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        let commits = chunk
                            .windows(COMMIT_MESSAGE.len())
                            .any(|w| w == COMMIT_MESSAGE);
                        let cutting = commits && armed.swap(false, Ordering::SeqCst);
                        if cutting {
                            cut.store(true, Ordering::SeqCst);
                            cuts.fetch_add(1, Ordering::SeqCst);
                        }
                        if to_server.write_all(chunk).await.is_err() || cutting {
                            break;
                        }
                    }
                });
            }
        });
        CommitCuttingProxy { port, armed, cuts }
    }

    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn cuts(&self) -> usize {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A connection that fails once COMMIT is on its way leaves the batch's fate unknown: the
/// batch fails closed (its callers get an error, never a success) and is not written a second
/// time, on the planned path and on the one-round-trip guess; the store goes on with a new
/// connection, and the chain holds every record once.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_connection_lost_during_commit_fails_closed_without_writing_twice() {
    let fx = Fixture::postgres().await;
    fx.store().await;
    let Db::Postgres { url } = &fx.db else {
        unreachable!("a PostgreSQL fixture")
    };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("this test needs PostgreSQL over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CommitCuttingProxy::start(upstream).await;
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or("postgres");
    let proxied = format!(
        "postgresql://{user}{password}@127.0.0.1:{}/{dbname}",
        proxy.port
    );
    let pg = Arc::new(PostgresStore::connect(&proxied).await.unwrap());
    let store: SharedStore = pg.clone();
    let count = |id: &str| format!("SELECT COUNT(*) FROM audit_records WHERE event_id = '{id}'");
    let mut written = Vec::new();

    // The planned path (three round trips): its first batch.
    commit_ok(&store, vec![unit(Vec::new(), Some("p1"))]).await;
    written.push("p1".to_string());
    proxy.arm();
    let lost = store.commit(vec![unit(Vec::new(), Some("p2"))]).await;
    assert_eq!(proxy.cuts(), 1, "the proxy cut a COMMIT");
    assert!(
        lost.is_err(),
        "a batch whose COMMIT got no answer must not be reported committed: {lost:?}"
    );
    // COMMIT reached the server: the record is there, once.
    assert_eq!(fx.raw_i64(&count("p2")).await, 1);
    written.push("p2".to_string());

    // Alone again, the writer goes on to guess its tail (one round trip), then loses one.
    for i in 3..=5 {
        let id = format!("p{i}");
        commit_ok(&store, vec![unit(Vec::new(), Some(&id))]).await;
        written.push(id);
    }
    let (guessed, _) = pg.guessed_batches();
    assert!(guessed >= 1, "the writer guessed its tail: {guessed}");
    proxy.arm();
    let lost = store.commit(vec![unit(Vec::new(), Some("g1"))]).await;
    assert_eq!(proxy.cuts(), 2);
    assert!(lost.is_err(), "a guessed batch without an answer: {lost:?}");
    assert_eq!(
        pg.guessed_batches().0,
        guessed,
        "the lost guess is not counted"
    );
    assert_eq!(fx.raw_i64(&count("g1")).await, 1);
    written.push("g1".to_string());

    // Later batches commit on a new connection and extend the same chain.
    commit_ok(&store, vec![unit(Vec::new(), Some("after"))]).await;
    written.push("after".to_string());
    let records = verify_chain(&store).await;
    let mut ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
    ids.sort();
    written.sort();
    assert_eq!(ids, written, "every record once, the lost batches included");
}
