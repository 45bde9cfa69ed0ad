//! Embedded SQLite backend: events, audit records and sealed key material in one database file, for
//! one process on one machine.
//!
//! It owns the SQLite schema (`migrations/sqlite/`, embedded at build time) and every SQL statement
//! run against it. rusqlite is synchronous, so the connection sits behind a mutex and every call runs
//! on tokio's blocking pool, except the audit writer's commits and syncs, which its own threads call
//! directly (`BlockingWrites`); writers are serialized by that mutex and by `BEGIN IMMEDIATE`. The file
//! runs in WAL mode; every write is durable (the WAL fsynced) before its method returns, except
//! `commit_visible`, whose batch is durable after the next `sync` (see `WalFile`).
//! It must never be shared by two server processes (there is no cross-process read-model follower
//! for SQLite; use PostgreSQL for replicas).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    BlockingWrites, CommitReceipt, CommitUnit, EventStore, KeyUse, LookupHit, LookupQuery,
    RootKeyBinding, RootKeyWrap, SealedMaterial, StoreError, StoredAuditRecord, StoredEvent,
    StoredSnapshot, ACCOUNT_ATTRIBUTE, GENESIS_HASH, SNAPSHOTS_KEPT,
};
use crate::plan::{self, BatchPlan, Tail};

/// The embedded migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "0002_root_key_binding",
        include_str!("../../../migrations/sqlite/0002_root_key_binding.sql"),
    ),
    (
        3,
        "0003_write_probe",
        include_str!("../../../migrations/sqlite/0003_write_probe.sql"),
    ),
    (
        4,
        "0004_root_key_rotation",
        include_str!("../../../migrations/sqlite/0004_root_key_rotation.sql"),
    ),
    (
        5,
        "0005_history_in_store",
        include_str!("../../../migrations/sqlite/0005_history_in_store.sql"),
    ),
    (
        6,
        "0006_read_model_snapshots",
        include_str!("../../../migrations/sqlite/0006_read_model_snapshots.sql"),
    ),
    (
        7,
        "0007_key_last_use_without_rowid",
        include_str!("../../../migrations/sqlite/0007_key_last_use_without_rowid.sql"),
    ),
];

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded store: one SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Set by the background checkpointer after a pass that found the WAL at least
    /// `restart_after` long: the writer then finishes the checkpoint itself right after its next
    /// commit, so that the WAL starts over (see `checkpoint_in_background`).
    restart_due: Arc<AtomicBool>,
    /// Query-only connections for the reads requests make (material, LookupEvents, last use,
    /// keys loaded on first use, following events): WAL lets them read while the writer's
    /// connection commits, and there are several so that a short read does not wait behind a
    /// long one (loading a 200 MB read-model snapshot at start, say).
    readers: Arc<[Mutex<Connection>]>,
    /// Which reader a read waits for when all are busy (round robin).
    next_reader: Arc<AtomicUsize>,
    wal: Arc<WalFile>,
}

/// Query-only connections beside the writer's.
const READERS: usize = 3;

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Start a thread that checkpoints the WAL (PASSIVE: it never waits for, nor blocks, the writer or
/// readers) on a connection of its own until the store's writer connection is dropped, so that
/// commits do not pay for copying pages into the database.
///
/// SQLite starts the WAL over from its beginning only when a write transaction begins with every
/// frame already copied, which under continuous commits never happens: each pass ends with newer
/// frames behind it, and the WAL grew by about 100 MB/s under load (filling the disk, and making
/// every commit extend the file: block allocation, zeroing, and a journal commit in each fsync).
/// So once a pass finds the WAL at least `restart_after` bytes long it sets `restart_due`, and
/// the writer, right after its next commit, runs a PASSIVE checkpoint itself: with nobody else
/// writing it copies only the few frames since the pass, and the next write transaction
/// restarts the WAL.
///
/// That finishing checkpoint holds up every commit behind it for two fsyncs (the WAL's, then the
/// database's): 2-33 ms under load on the development machine. Run after every pass (twice a
/// second) it put about 2% of Encrypt calls above 5 ms; run once the WAL holds
/// `restart_after` bytes it comes about once a second at full load on the development machine
/// with the default 64 MiB (less often with a longer length), and never when the load is light,
/// at the price of a WAL file of up to twice that length on disk.
fn checkpoint_in_background(
    path: &Path,
    writer: std::sync::Weak<Mutex<Connection>>,
    restart_due: Arc<AtomicBool>,
    restart_after: u64,
) -> Result<(), StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(db_err)?;
    // Each WAL frame is a page and a 24-byte header.
    let frame_size = page_size + 24;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while writer.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_INTERVAL);
                match checkpoint_passive(&conn) {
                    // The newest pass decides: a WAL SQLite has started over by itself since
                    // an earlier long one needs no finishing, and the first commit after an
                    // idle spell should not pay for one.
                    Ok(frames) => restart_due.store(
                        frames.saturating_mul(frame_size) >= restart_after,
                        Ordering::Relaxed,
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again")
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| StoreError::Database(format!("cannot start the checkpointer: {e}")))
}

/// How long the WAL grows (bytes) before the writer starts it over, unless the store is opened
/// with another length (`SqliteStore::open_with_wal_restart`).
pub const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;

/// One PASSIVE checkpoint: copy what it can of the WAL into the database, waiting for nobody.
/// Returns how many frames the WAL held when the pass began.
fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(1)
    })
    .map(|frames| u64::try_from(frames).unwrap_or(0))
}

/// On the writer's connection, between commits: copy the frames written since the background
/// pass, so that the next write transaction starts the WAL over. PASSIVE, so a reader holding an
/// older snapshot only postpones it to the next pass; a failure is logged and changes nothing.
fn finish_checkpoint(conn: &Connection) {
    if let Err(e) = checkpoint_passive(conn) {
        tracing::warn!(error = %e, "WAL checkpoint on the writer failed; it is tried again");
    }
}

/// The database's write-ahead log, opened by us only to fsync it. SQLite runs with
/// `synchronous=NORMAL` (a commit writes its WAL frames but does not fsync them); durability comes
/// from `WalFile::sync` after each commit, which need not hold the connection, so the next batch
/// writes while this one reaches the disk. A commit whose frames are in the WAL before an fsync
/// begins is durable when that fsync returns, exactly as with `synchronous=FULL`; checkpoints
/// fsync the WAL before copying it and the database after (SQLite's NORMAL rules).
struct WalFile {
    path: std::path::PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl WalFile {
    /// fsync the WAL (reopened if SQLite replaced the file, so an fsync never goes to a stale one).
    fn sync(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::MetadataExt;
        let mut file = self
            .file
            .lock()
            .map_err(|_| StoreError::Database("wal handle mutex poisoned".into()))?;
        let current = std::fs::metadata(&self.path).map_err(|e| {
            StoreError::Database(format!("cannot stat {}: {e}", self.path.display()))
        })?;
        let same = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.ino() == current.ino() && m.dev() == current.dev());
        if !same {
            *file = Some(std::fs::File::open(&self.path).map_err(|e| {
                StoreError::Database(format!("cannot open {}: {e}", self.path.display()))
            })?);
        }
        match file.as_ref() {
            Some(f) => f.sync_data().map_err(|e| {
                StoreError::Database(format!("cannot fsync {}: {e}", self.path.display()))
            }),
            None => Err(StoreError::Database(
                "the write-ahead log is not open".into(),
            )),
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`; blocking, call it at start-up.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with_wal_restart(path, WAL_RESTART_BYTES)
    }

    /// As `open`, with the WAL started over once it holds `restart_after` bytes (see
    /// `checkpoint_in_background`): larger means fewer commits held up by the restart's
    /// checkpoint, and more disk.
    pub fn open_with_wal_restart(
        path: &Path,
        restart_after: u64,
    ) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "cannot switch {} to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        // Checkpoints run on a connection of their own (`checkpoint_in_background`), never
        // inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(db_err)?;
        // When the WAL starts over, a file grown larger by a burst is cut back to this: twice
        // the restart length, so that under steady load the file keeps its blocks from one
        // round to the next (growing it means allocating and zeroing them again).
        let size_limit = i64::try_from(restart_after.saturating_mul(2)).unwrap_or(i64::MAX);
        conn.pragma_update(None, "journal_size_limit", size_limit)
            .map_err(db_err)?;
        // The writer's page cache is small on purpose: 4 MiB (SQLite's default is 2 MiB). A
        // page split that reorders sibling pages parks a page at the locking page's number
        // (page 262,145 with 4 KiB pages) for a moment, and at the end of that transaction
        // SQLite's cache then walks its whole hash table, one slot per cached page, to drop
        // pages beyond the end of the database. Random inserts (the lookup rows and last uses
        // of thousands of keys) split pages in most batches: with 32 MiB that walk was a quarter
        // of the writer's time over 10,000 keys, with 4 MiB it is 5%, and the pages it no longer
        // holds are read back from the OS's cache for less (ARCHITECTURE.md, "The commit
        // engine, measured"). A call touching one key keeps a few hot pages and is unaffected.
        conn.pragma_update(None, "cache_size", -4096)
            .map_err(db_err)?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(path).map_err(|e| {
                    StoreError::Database(format!("cannot open {}: {e}", path.display()))
                })?;
                reader.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
                reader
                    .pragma_update(None, "query_only", true)
                    .map_err(db_err)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let conn = Arc::new(Mutex::new(conn));
        let restart_due = Arc::new(AtomicBool::new(false));
        checkpoint_in_background(
            path,
            Arc::downgrade(&conn),
            Arc::clone(&restart_due),
            restart_after,
        )?;
        Ok(SqliteStore {
            conn,
            restart_due,
            readers: readers.into(),
            next_reader: Arc::new(AtomicUsize::new(0)),
            wal: Arc::new(WalFile {
                path: wal_path.into(),
                file: Mutex::new(None),
            }),
        })
    }

    /// As `with_conn` for a write: once `f` has committed, fsync the WAL (after releasing the
    /// connection), so the write is durable when this returns.
    async fn with_conn_durable<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let written = self.with_conn(f).await?;
        self.sync().await?;
        Ok(written)
    }

    /// Run `f` with the writer's connection on tokio's blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        Self::on(Arc::clone(&self.conn), f).await
    }

    /// Run the read `f` on tokio's blocking pool with a query-only connection: the first free
    /// one, or when all are busy, the next one in turn once it is free.
    async fn with_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let next = Arc::clone(&self.next_reader);
        tokio::task::spawn_blocking(move || {
            let free = readers.iter().find_map(|r| r.try_lock().ok());
            let mut guard = match free {
                Some(guard) => guard,
                None => readers
                    .get(next.fetch_add(1, Ordering::Relaxed) % readers.len().max(1))
                    .ok_or_else(|| StoreError::Database("no sqlite reader".into()))?
                    .lock()
                    .map_err(|_| StoreError::Database("sqlite connection mutex poisoned".into()))?,
            };
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Database(format!("sqlite task failed: {e}")))?
    }

    async fn on<T, F>(conn: Arc<Mutex<Connection>>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Database("sqlite connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Database(format!("sqlite task failed: {e}")))?
    }
}

impl BlockingWrites for SqliteStore {
    fn commit_visible_now(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Database("sqlite connection mutex poisoned".into()))?;
        let committed = commit_batch(&mut conn, units);
        if self.restart_due.swap(false, Ordering::Relaxed) {
            finish_checkpoint(&conn);
        }
        committed
    }

    fn sync_now(&self) -> Result<(), StoreError> {
        self.wal.sync()
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.with_conn_durable(migrate).await
    }

    async fn commit(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        self.with_conn_durable(move |conn| commit_batch(conn, units))
            .await
    }

    async fn commit_visible(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.commit_visible_now(units))
            .await
            .map_err(|e| StoreError::Database(format!("sqlite task failed: {e}")))?
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.sync_now())
            .await
            .map_err(|e| StoreError::Database(format!("sqlite task failed: {e}")))?
    }

    fn blocking_writes(&self) -> Option<&dyn BlockingWrites> {
        Some(self)
    }

    async fn read_events(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_reader(move |conn| {
            query_events(
                conn,
                "SELECT sequence, stream, version, event_type, payload, recorded_at FROM events \
                 WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
                params![after, limit.max(0)],
            )
        })
        .await
    }

    async fn last_event_sequence(&self) -> Result<i64, StoreError> {
        self.with_reader(|conn| {
            conn.query_row("SELECT COALESCE(MAX(sequence), 0) FROM events", [], |r| {
                r.get(0)
            })
            .map_err(db_err)
        })
        .await
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = stream.to_string();
        self.with_reader(move |conn| {
            query_events(
                conn,
                "SELECT sequence, stream, version, event_type, payload, recorded_at FROM events \
                 WHERE stream = ?1 ORDER BY version",
                params![stream],
            )
        })
        .await
    }

    async fn read_audit(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredAuditRecord>, StoreError> {
        self.with_reader(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT sequence, event_id, event_time, record, prev_hash, hash \
                     FROM audit_records WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![after, limit.max(0)], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (sequence, event_id, event_time, record, prev_hash, hash) =
                    row.map_err(db_err)?;
                out.push(StoredAuditRecord {
                    sequence,
                    event_id,
                    event_time: parse_time(&event_time)?,
                    record,
                    prev_hash,
                    hash,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn lookup_audit(&self, query: &LookupQuery) -> Result<Vec<LookupHit>, StoreError> {
        let query = query.clone();
        self.with_reader(move |conn| {
            let (attribute, value) = query
                .attribute
                .clone()
                .unwrap_or_else(|| (ACCOUNT_ATTRIBUTE.to_string(), String::new()));
            let (before_time, before_sequence) = query.before.unwrap_or((i64::MAX, i64::MAX));
            let mut stmt = conn
                .prepare_cached(
                    "SELECT l.event_time, l.sequence, a.record FROM audit_lookup l \
                     JOIN audit_records a ON a.sequence = l.sequence \
                     WHERE l.account = ?1 AND l.attribute = ?2 AND l.value = ?3 \
                     AND l.event_time >= ?4 AND l.event_time <= ?5 \
                     AND (l.event_time, l.sequence) < (?6, ?7) \
                     ORDER BY l.event_time DESC, l.sequence DESC LIMIT ?8",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![
                        query.account,
                        attribute,
                        value,
                        query.start.unwrap_or(i64::MIN),
                        query.end.unwrap_or(i64::MAX),
                        before_time,
                        before_sequence,
                        query.limit.max(0)
                    ],
                    |row| {
                        Ok(LookupHit {
                            event_time: row.get(0)?,
                            sequence: row.get(1)?,
                            record: row.get(2)?,
                        })
                    },
                )
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn key_last_use(&self, key_arn: &str) -> Result<Option<KeyUse>, StoreError> {
        let key_arn = key_arn.to_string();
        self.with_reader(move |conn| {
            let row: Option<(String, String, String, String)> = conn
                .prepare_cached(
                    "SELECT operation, used_at, event_id, request_id FROM key_last_use \
                     WHERE key_arn = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![key_arn], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            row.map(|(operation, used_at, event_id, request_id)| {
                Ok(KeyUse {
                    key_arn: key_arn.clone(),
                    operation,
                    used_at: parse_time(&used_at)?,
                    event_id,
                    request_id,
                })
            })
            .transpose()
        })
        .await
    }

    async fn first_audit_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.with_reader(|conn| {
            let first: Option<String> = conn
                .prepare_cached("SELECT event_time FROM audit_records ORDER BY sequence LIMIT 1")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
                .map_err(db_err)?;
            first.as_deref().map(parse_time).transpose()
        })
        .await
    }

    async fn put_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let snapshot = snapshot.clone();
        self.with_conn_durable(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO read_model_snapshots (sequence, taken_at, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sequence) DO NOTHING",
                params![
                    snapshot.sequence,
                    format_time(snapshot.taken_at),
                    snapshot.body
                ],
            )
            .map_err(db_err)?;
            tx.execute(
                "DELETE FROM read_model_snapshots WHERE sequence NOT IN \
                 (SELECT sequence FROM read_model_snapshots ORDER BY sequence DESC LIMIT ?1)",
                params![SNAPSHOTS_KEPT],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn newest_snapshot(&self, at_most: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        self.with_reader(move |conn| {
            let row = conn
                .query_row(
                    "SELECT sequence, taken_at, body FROM read_model_snapshots \
                     WHERE sequence <= ?1 ORDER BY sequence DESC LIMIT 1",
                    params![at_most],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(db_err)?;
            row.map(|(sequence, taken_at, body)| {
                Ok(StoredSnapshot {
                    sequence,
                    taken_at: parse_time(&taken_at)?,
                    body,
                })
            })
            .transpose()
        })
        .await
    }

    async fn latest_snapshots(&self) -> Result<Vec<StoredSnapshot>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT sequence, taken_at, body FROM read_model_snapshots \
                     ORDER BY sequence DESC",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (sequence, taken_at, body) = row.map_err(db_err)?;
                out.push(StoredSnapshot {
                    sequence,
                    taken_at: parse_time(&taken_at)?,
                    body,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn get_material(
        &self,
        key_id: &str,
        version: i32,
    ) -> Result<Option<SealedMaterial>, StoreError> {
        let key_id = key_id.to_string();
        self.with_reader(move |conn| {
            let sealed: Option<Vec<u8>> = conn
                .prepare_cached(
                    "SELECT sealed FROM key_materials WHERE key_id = ?1 AND version = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![key_id, version], |row| row.get(0))
                        .optional()
                })
                .map_err(db_err)?;
            Ok(sealed.map(|sealed| SealedMaterial {
                key_id,
                version,
                sealed,
            }))
        })
        .await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.with_conn_durable(|conn| {
            conn.execute(
                "INSERT INTO write_probe (id, probed_at) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
                params![format_time(Utc::now())],
            )
            .map(|_| ())
            .map_err(db_err)
        })
        .await
    }

    async fn holds_data(&self) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM audit_records) \
                 OR EXISTS (SELECT 1 FROM key_materials)",
                [],
                |row| row.get(0),
            )
            .map_err(db_err)
        })
        .await
    }

    async fn any_material(&self) -> Result<Option<SealedMaterial>, StoreError> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT key_id, version, sealed FROM key_materials LIMIT 1",
                [],
                |row| {
                    Ok(SealedMaterial {
                        key_id: row.get(0)?,
                        version: row.get(1)?,
                        sealed: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn root_key_bindings(&self) -> Result<Vec<RootKeyBinding>, StoreError> {
        self.with_conn(|conn| read_root_keys(conn)).await
    }

    async fn retired_root_keys(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM root_keys WHERE retired_at IS NOT NULL")
                .map_err(db_err)?;
            let rows = stmt.query_map([], |row| row.get(0)).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn root_key_wraps(&self) -> Result<Vec<RootKeyWrap>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT key_id, wrapped_under, sealed FROM root_key_wraps")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(RootKeyWrap {
                        key_id: row.get(0)?,
                        wrapped_under: row.get(1)?,
                        sealed: row.get(2)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn add_root_key(
        &self,
        binding: &RootKeyBinding,
        wraps: &[RootKeyWrap],
    ) -> Result<(), StoreError> {
        let binding = binding.clone();
        let wraps = wraps.to_vec();
        self.with_conn_durable(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO root_keys (id, check_value, created_at) VALUES (?1, ?2, ?3)",
                params![binding.id, binding.check_value, format_time(Utc::now())],
            )
            .map_err(db_err)?;
            for w in &wraps {
                tx.execute(
                    "INSERT INTO root_key_wraps (key_id, wrapped_under, sealed) VALUES (?1, ?2, ?3)",
                    params![w.key_id, w.wrapped_under, w.sealed],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn retire_root_key(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.with_conn_durable(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "UPDATE root_keys SET retired_at = ?2 WHERE id = ?1 AND retired_at IS NULL",
                params![id, format_time(Utc::now())],
            )
            .map_err(db_err)?;
            tx.execute(
                "DELETE FROM root_key_wraps WHERE key_id = ?1 OR wrapped_under = ?1",
                params![id],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn material_page(
        &self,
        after: Option<(String, i32)>,
        limit: i64,
    ) -> Result<Vec<SealedMaterial>, StoreError> {
        self.with_conn(move |conn| {
            let (key_id, version) = after.unwrap_or_else(|| (String::new(), i32::MIN));
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key_id, version, sealed FROM key_materials \
                     WHERE (key_id, version) > (?1, ?2) ORDER BY key_id, version LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![key_id, version, limit], |row| {
                    Ok(SealedMaterial {
                        key_id: row.get(0)?,
                        version: row.get(1)?,
                        sealed: row.get(2)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn reseal_materials(
        &self,
        rows: &[(SealedMaterial, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.with_conn_durable(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let mut replaced = 0;
            for (old, sealed) in &rows {
                replaced += tx
                    .prepare_cached(
                        "UPDATE key_materials SET sealed = ?4 \
                         WHERE key_id = ?1 AND version = ?2 AND sealed = ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![old.key_id, old.version, old.sealed, sealed])
                    })
                    .map_err(db_err)? as u64;
            }
            tx.commit().map_err(db_err)?;
            Ok(replaced)
        })
        .await
    }

    async fn bind_root_key(
        &self,
        binding: &RootKeyBinding,
    ) -> Result<Vec<RootKeyBinding>, StoreError> {
        let binding = binding.clone();
        self.with_conn_durable(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO root_keys (id, check_value, created_at) \
                 SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM root_keys)",
                params![binding.id, binding.check_value, format_time(Utc::now())],
            )
            .map_err(db_err)?;
            let bound = read_root_keys(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(bound)
        })
        .await
    }

    async fn destroy_materials(&self, key_id: &str) -> Result<u64, StoreError> {
        let key_id = key_id.to_string();
        self.with_conn_durable(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM key_materials WHERE key_id = ?1",
                    params![key_id],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }
}

/// Every root key binding, oldest first.
fn read_root_keys(conn: &Connection) -> Result<Vec<RootKeyBinding>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, check_value FROM root_keys WHERE retired_at IS NULL \
             ORDER BY created_at, id",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |row| {
            Ok(RootKeyBinding {
                id: row.get(0)?,
                check_value: row.get(1)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

/// Apply the pending migrations in one immediate transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let mig = |e: rusqlite::Error| StoreError::Migration(e.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(mig)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )
    .map_err(mig)?;
    for (version, name, sql) in MIGRATIONS {
        let applied: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                params![version],
                |row| row.get(0),
            )
            .optional()
            .map_err(mig)?;
        if applied.is_some() {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, format_time(Utc::now())],
        )
        .map_err(mig)?;
    }
    tx.commit().map_err(mig)
}

/// Commit a batch: planned in memory and written set by set in one immediate transaction. If
/// that fails for any reason but a lost race (which the plan handles), the batch is written again
/// unit by unit under savepoints, so one bad unit fails alone.
fn commit_batch(
    conn: &mut Connection,
    units: Vec<CommitUnit>,
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    match commit_planned(conn, &units) {
        Ok(results) => Ok(results),
        Err(e) => {
            tracing::warn!(error = %e, units = units.len(), "batch failed; committing its units one by one");
            commit_isolated(conn, &units)
        }
    }
}

/// The whole batch in one transaction, without savepoints.
fn commit_planned(
    conn: &mut Connection,
    units: &[CommitUnit],
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let now = Utc::now().trunc_subsecs(6);
    let tail = read_tail(&tx)?;
    let versions = stream_versions(&tx, &plan::streams_of(units))?;
    let planned = plan::plan(units, tail, versions, now);
    write_plan(&tx, &planned, now)?;
    tx.commit().map_err(db_err)?;
    Ok(planned.results)
}

/// Each unit under its own savepoint, so that a unit whose rows the database refuses writes
/// nothing and fails alone.
fn commit_isolated(
    conn: &mut Connection,
    units: &[CommitUnit],
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let now = Utc::now().trunc_subsecs(6);
    let mut results = Vec::with_capacity(units.len());
    for unit in units.chunks(1) {
        tx.execute_batch("SAVEPOINT unit").map_err(db_err)?;
        let written = read_tail(&tx).and_then(|tail| {
            let versions = stream_versions(&tx, &plan::streams_of(unit))?;
            let planned = plan::plan(unit, tail, versions, now);
            write_plan(&tx, &planned, now)?;
            Ok(planned.results)
        });
        match written {
            Ok(mut result) => {
                tx.execute_batch("RELEASE unit").map_err(db_err)?;
                results.append(&mut result);
            }
            Err(e) => {
                // If the rollback itself fails, the transaction is gone: the whole batch fails.
                tx.execute_batch("ROLLBACK TO unit; RELEASE unit")
                    .map_err(db_err)?;
                results.push(Err(e));
            }
        }
    }
    if tx.is_autocommit() {
        return Err(StoreError::Database(
            "sqlite rolled the batch transaction back".into(),
        ));
    }
    tx.commit().map_err(db_err)?;
    Ok(results)
}

/// The last event sequence and the last audit record's sequence and hash.
fn read_tail(conn: &Connection) -> Result<Tail, StoreError> {
    let event_sequence: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM events")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(db_err)?;
    let audit: Option<(i64, String)> = conn
        .prepare_cached("SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(db_err)?;
    let (audit_sequence, audit_hash) = audit.unwrap_or((0, GENESIS_HASH.to_string()));
    Ok(Tail {
        event_sequence,
        audit_sequence,
        audit_hash,
    })
}

/// The current version of each of `streams` that has events.
fn stream_versions(
    conn: &Connection,
    streams: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut versions = HashMap::with_capacity(streams.len());
    if streams.is_empty() {
        return Ok(versions);
    }
    let mut stmt = conn
        .prepare_cached("SELECT MAX(version) FROM events WHERE stream = ?1")
        .map_err(db_err)?;
    for stream in streams {
        let found: Option<i64> = stmt
            .query_row(params![stream], |row| row.get(0))
            .map_err(db_err)?;
        if let Some(found) = found {
            versions.insert(stream.clone(), found);
        }
    }
    Ok(versions)
}

/// Write a planned batch: each accepted unit's destroyed and new materials (in unit order), then
/// the events, the audit records, their lookup rows and the keys' last uses.
fn write_plan(
    conn: &Connection,
    plan: &BatchPlan<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let recorded_at = format_time(now);
    for unit in &plan.accepted {
        for key_id in &unit.destroy_materials {
            conn.prepare_cached("DELETE FROM key_materials WHERE key_id = ?1")
                .and_then(|mut stmt| stmt.execute(params![key_id]))
                .map_err(db_err)?;
        }
        for m in &unit.materials {
            conn.prepare_cached(
                "INSERT INTO key_materials (key_id, version, sealed, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![m.key_id, m.version, m.sealed, recorded_at]))
            .map_err(db_err)?;
        }
    }
    if !plan.events.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO events (sequence, stream, version, event_type, payload, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db_err)?;
        for e in &plan.events {
            let payload = serde_json::to_string(e.payload)
                .map_err(|err| StoreError::Database(format!("cannot encode payload: {err}")))?;
            stmt.execute(params![
                e.sequence,
                e.stream,
                e.version,
                e.event_type,
                payload,
                recorded_at
            ])
            .map_err(db_err)?;
        }
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit_records (sequence, event_id, event_time, record, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db_err)?;
    for a in &plan.audit {
        stmt.execute(params![
            a.sequence,
            a.event_id,
            format_time(a.event_time),
            a.record,
            a.prev_hash,
            a.hash
        ])
        .map_err(db_err)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit_lookup (account, attribute, value, event_time, sequence) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db_err)?;
    for l in &plan.lookup {
        stmt.execute(params![
            l.account,
            l.attribute,
            l.value,
            l.event_time,
            l.sequence
        ])
        .map_err(db_err)?;
    }
    if !plan.key_uses.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO key_last_use (key_arn, operation, used_at, event_id, request_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (key_arn) DO UPDATE SET operation = excluded.operation, \
                 used_at = excluded.used_at, event_id = excluded.event_id, \
                 request_id = excluded.request_id WHERE excluded.used_at > key_last_use.used_at",
            )
            .map_err(db_err)?;
        for u in &plan.key_uses {
            stmt.execute(params![
                u.key_arn,
                u.operation,
                format_time(u.used_at),
                u.event_id,
                u.request_id
            ])
            .map_err(db_err)?;
        }
    }
    Ok(())
}

/// Run an event query and decode its rows.
fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode_event(row)?);
    }
    Ok(out)
}

/// Decode one `events` row (columns in table order).
fn decode_event(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let payload: String = row.get(4).map_err(db_err)?;
    let recorded_at: String = row.get(5).map_err(db_err)?;
    let sequence: i64 = row.get(0).map_err(db_err)?;
    Ok(StoredEvent {
        sequence,
        stream: row.get(1).map_err(db_err)?,
        version: row.get(2).map_err(db_err)?,
        event_type: row.get(3).map_err(db_err)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("event {sequence}: payload: {e}")))?,
        recorded_at: parse_time(&recorded_at)?,
    })
}

/// The stored form of a time: RFC 3339, UTC, microseconds (fixed width, so it sorts as text).
fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parse a stored time.
fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time {s:?}: {e}")))
}

/// Map a SQLite error to the store's error, keeping SQLite's message.
fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new directory under the system's temporary directory, named for `what`.
    fn scratch_dir(what: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("trent-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A store at migration 6 keeps its recorded last uses through migration 7, and its
    /// `key_last_use` is then a WITHOUT ROWID table (one b-tree, one page per upsert).
    #[tokio::test(flavor = "multi_thread")]
    async fn migration_7_keeps_last_uses_in_a_table_without_rowids() {
        let dir = scratch_dir("mig7");
        let path = dir.join("trent.db");
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                 name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .unwrap();
            for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v <= 6) {
                tx.execute_batch(sql).unwrap();
                tx.execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, '2026-12-07T00:00:00Z')",
                    params![version, name],
                )
                .unwrap();
            }
            tx.execute(
                "INSERT INTO key_last_use VALUES (?1, 'Decrypt', '2026-12-07T01:02:03.000004Z', \
                 'event-1', 'request-1')",
                params![arn],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        store.migrate().await.unwrap();
        let used = store.key_last_use(arn).await.unwrap().expect("kept");
        assert_eq!(
            (
                used.operation.as_str(),
                used.event_id.as_str(),
                used.request_id.as_str()
            ),
            ("Decrypt", "event-1", "request-1")
        );
        assert_eq!(
            used.used_at,
            parse_time("2026-12-07T01:02:03.000004Z").unwrap()
        );
        let table: String = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'key_last_use'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(table.contains("WITHOUT ROWID"), "{table}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_does_not_wait_behind_a_long_one() {
        let dir = scratch_dir("readers");
        let store = SqliteStore::open(&dir.join("trent.db")).unwrap();
        store.migrate().await.unwrap();
        // A long read (a snapshot being loaded, say) holds one reader connection throughout.
        let (held, release) = (
            std::sync::mpsc::channel::<()>(),
            std::sync::mpsc::channel::<()>(),
        );
        let readers = Arc::clone(&store.readers);
        let (held_tx, held_rx) = held;
        let (release_tx, release_rx) = release;
        let holder = std::thread::spawn(move || {
            let _busy = readers.first().unwrap().lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        held_rx.recv().unwrap();
        let read = tokio::time::timeout(Duration::from_secs(10), store.last_event_sequence()).await;
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(read.expect("another reader answered").unwrap(), 0);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
