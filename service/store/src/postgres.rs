//! PostgreSQL backend: events, audit records and sealed key material in one database that several
//! server replicas may share.
//!
//! It owns the PostgreSQL schema (`migrations/postgres/`, embedded at build time) and every SQL
//! statement run against it. All writers, in every process, take one transaction-scoped advisory lock
//! before writing, so global event sequences and audit chain positions are assigned (max + 1) in
//! commit order, without gaps, and the chain cannot fork. Each committing transaction also sends a
//! `NOTIFY` on [`EVENTS_CHANNEL`] carrying the last event sequence, for replicas following the table.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use super::{
    CommitReceipt, CommitUnit, EventStore, KeyUse, LookupHit, LookupQuery, RootKeyBinding,
    RootKeyWrap, SealedMaterial, StoreError, StoredAuditRecord, StoredEvent, StoredSnapshot,
    ACCOUNT_ATTRIBUTE, GENESIS_HASH, SNAPSHOTS_KEPT,
};
use crate::plan::{self, BatchPlan, Tail};

/// The embedded migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "0002_root_key_binding",
        include_str!("../../../migrations/postgres/0002_root_key_binding.sql"),
    ),
    (
        3,
        "0003_write_probe",
        include_str!("../../../migrations/postgres/0003_write_probe.sql"),
    ),
    (
        4,
        "0004_root_key_rotation",
        include_str!("../../../migrations/postgres/0004_root_key_rotation.sql"),
    ),
    (
        5,
        "0005_history_in_store",
        include_str!("../../../migrations/postgres/0005_history_in_store.sql"),
    ),
    (
        6,
        "0006_read_model_snapshots",
        include_str!("../../../migrations/postgres/0006_read_model_snapshots.sql"),
    ),
    (
        7,
        "0007_chain_check_by_primary_key",
        include_str!("../../../migrations/postgres/0007_chain_check_by_primary_key.sql"),
    ),
];

/// Advisory lock key held by every writing transaction ("trent" in ASCII, then 1).
const WRITE_LOCK: i64 = 0x7472_656e_7401;

/// Advisory lock key held while migrations run ("trent" in ASCII, then 2).
const MIGRATION_LOCK: i64 = 0x7472_656e_7402;

/// The most connections one store handle opens.
const POOL_SIZE: usize = 16;

/// How long opening a new connection may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for a free pooled connection before it fails (fail closed, never hang).
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The channel on which each commit that appended events notifies its last event sequence.
pub const EVENTS_CHANNEL: &str = "trent_events";

/// The shared store: a connection pool on one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The connection settings, for the dedicated LISTEN connection.
    config: tokio_postgres::Config,
    /// Where this process's last batch left the store (see [`commit_on_guess`]).
    last_batch: std::sync::Arc<std::sync::Mutex<Option<LastBatch>>>,
    /// Batches committed on a guessed tail, and guesses the database refused.
    guesses: std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

/// Where a batch of this process left the store.
#[derive(Debug, Clone)]
struct LastBatch {
    /// The tail after it.
    tail: Tail,
    /// Whether nobody else had written since the batch before it (the tail read under the lock
    /// was where that batch had left the store): the next batch may guess the tail.
    alone: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Build a pool for the database at `url` (URL or key=value form) and check that it answers.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build pool: {e}")))?;
        let store = PostgresStore {
            pool,
            config,
            last_batch: Default::default(),
            guesses: Default::default(),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// Commit a batch planned in one transaction, or unit by unit if the database refuses it.
    async fn commit_batch(
        &self,
        units: Vec<CommitUnit>,
        durability: Durability,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        let mut client = self.client().await?;
        let last = self.last_batch();
        if let Some(tail) = last.as_ref().filter(|l| l.alone).map(|l| l.tail.clone()) {
            if only_records(&units) {
                match commit_on_guess(&client, &units, durability, tail).await {
                    Ok((results, after)) => {
                        self.set_last_batch(Some(LastBatch {
                            tail: after,
                            alone: true,
                        }));
                        self.guesses.0.fetch_add(1, Ordering::Relaxed);
                        return Ok(results);
                    }
                    Err(TxFailure::NotCommitted(e)) => {
                        self.guesses.1.fetch_add(1, Ordering::Relaxed);
                        // Another writer got there first: the pipelined COMMIT rolled everything
                        // back. Plan from the tail instead.
                        tracing::debug!(error = %e, "the guessed tail was stale; reading it");
                        if client.batch_execute("ROLLBACK").await.is_err() {
                            drop(deadpool_postgres::Object::take(client));
                            client = self.client().await?;
                        }
                    }
                    Err(TxFailure::Unknown(e)) => return Err(self.unknown_outcome(client, e)),
                }
            }
        }
        match commit_planned(&client, &units, durability).await {
            Ok((results, found, after)) => {
                let alone = last.is_some_and(|l| same_tail(&l.tail, &found));
                self.set_last_batch(Some(LastBatch { tail: after, alone }));
                Ok(results)
            }
            Err(TxFailure::Unknown(e)) => Err(self.unknown_outcome(client, e)),
            Err(TxFailure::NotCommitted(e)) => {
                self.set_last_batch(None);
                // The planned transaction is still open (or never began: then this only warns).
                if client.batch_execute("ROLLBACK").await.is_err() {
                    // A connection that cannot roll back must not go back to the pool.
                    drop(deadpool_postgres::Object::take(client));
                    client = self.client().await?;
                }
                tracing::warn!(error = %e, units = units.len(), "batch failed; committing its units one by one");
                commit_isolated(&mut client, &units, durability).await
            }
        }
    }

    /// How many batches this handle committed on a guessed tail in one round trip, and how many
    /// guesses the database refused because another writer had moved the tail.
    pub fn guessed_batches(&self) -> (u64, u64) {
        (
            self.guesses.0.load(Ordering::Relaxed),
            self.guesses.1.load(Ordering::Relaxed),
        )
    }

    /// A batch whose COMMIT may or may not have landed (the connection failed once it was sent):
    /// the connection leaves the pool, nothing is known of where the store is, and the batch
    /// fails closed rather than being written a second time.
    fn unknown_outcome(&self, client: deadpool_postgres::Client, e: StoreError) -> StoreError {
        self.set_last_batch(None);
        drop(deadpool_postgres::Object::take(client));
        tracing::error!(error = %e, "the connection failed during COMMIT; the batch fails closed");
        e
    }

    /// Where this process's last batch left the store, if known.
    fn last_batch(&self) -> Option<LastBatch> {
        self.last_batch.lock().ok().and_then(|l| l.clone())
    }

    fn set_last_batch(&self, last: Option<LastBatch>) {
        if let Ok(mut slot) = self.last_batch.lock() {
            *slot = last;
        }
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Database(format!("cannot get a connection: {}", with_causes(&e)))
        })
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mig = |e: tokio_postgres::Error| StoreError::Migration(pg_message(&e));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(mig)?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(mig)?;
        for (version, name, sql) in MIGRATIONS {
            let applied = tx
                .query_opt(
                    "SELECT version FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(mig)?;
            if applied.is_some() {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Migration(format!("{name}: {}", pg_message(&e))))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(mig)?;
        }
        tx.commit().await.map_err(mig)
    }

    /// A dedicated connection (outside the pool) that LISTENs on [`EVENTS_CHANNEL`]; the channel
    /// closes when that connection ends, and the caller subscribes again.
    async fn subscribe_to_appends(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await.map_err(db_err)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        // The connection lives while its client does: the driving task keeps the client (sent
        // once LISTEN has run) until the follower drops its receiver or the connection fails.
        let (keep, kept) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
        tokio::spawn(async move {
            let _client = kept;
            // Notifications arrive as the connection's asynchronous messages. A full channel
            // already has a wake-up pending, so further ones are dropped (coalesced).
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                            tx.try_send(())
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the LISTEN connection failed");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
            .await
            .map_err(db_err)?;
        let _ = keep.send(client);
        Ok(Some(rx))
    }

    async fn commit(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        self.commit_batch(units, Durability::AtCommit).await
    }

    /// Commits with `synchronous_commit = off`: the transaction, and with it the write lock,
    /// ends once its commit record is in PostgreSQL's WAL buffers, without waiting for the
    /// flush, so the next batch (of this replica or another) is written while this one reaches
    /// the disk. `sync` then waits for that flush.
    async fn commit_visible(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        self.commit_batch(units, Durability::AtSync).await
    }

    /// Commits a small write in the session's own `synchronous_commit` (the deployment's), so
    /// its commit waits for the WAL to be flushed up to its commit record. WAL is one sequence:
    /// every transaction that committed before this one began, of any session, is then durable
    /// too. It must write a row: PostgreSQL does not flush at the commit of a transaction that
    /// wrote no WAL of its own (a bare `txid_current()` is not enough). The row is the
    /// connection's own in `write_probe` (keyed by its backend pid), so concurrent syncs of
    /// several connections and replicas never wait on one row lock.
    async fn sync(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(
                "INSERT INTO write_probe (id, probed_at) VALUES (pg_backend_pid(), now()) \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
            )
            .await
            .map_err(db_err)
    }

    async fn lookup_audit(&self, query: &LookupQuery) -> Result<Vec<LookupHit>, StoreError> {
        let client = self.client().await?;
        let (attribute, value) = query
            .attribute
            .clone()
            .unwrap_or_else(|| (ACCOUNT_ATTRIBUTE.to_string(), String::new()));
        let (before_time, before_sequence) = query.before.unwrap_or((i64::MAX, i64::MAX));
        let stmt = client
            .prepare_cached(
                "SELECT l.event_time, l.sequence, a.record FROM audit_lookup l \
                 JOIN audit_records a ON a.sequence = l.sequence \
                 WHERE l.account = $1 AND l.attribute = $2 AND l.value = $3 \
                 AND l.event_time >= $4 AND l.event_time <= $5 \
                 AND (l.event_time, l.sequence) < ($6, $7) \
                 ORDER BY l.event_time DESC, l.sequence DESC LIMIT $8",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(
                &stmt,
                &[
                    &query.account,
                    &attribute,
                    &value,
                    &query.start.unwrap_or(i64::MIN),
                    &query.end.unwrap_or(i64::MAX),
                    &before_time,
                    &before_sequence,
                    &query.limit.max(0),
                ],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(LookupHit {
                    event_time: row.try_get(0).map_err(corrupt)?,
                    sequence: row.try_get(1).map_err(corrupt)?,
                    record: row.try_get(2).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn key_last_use(&self, key_arn: &str) -> Result<Option<KeyUse>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT operation, used_at, event_id, request_id FROM key_last_use \
                 WHERE key_arn = $1",
                &[&key_arn],
            )
            .await
            .map_err(db_err)?;
        row.map(|row| {
            Ok(KeyUse {
                key_arn: key_arn.to_string(),
                operation: row.try_get(0).map_err(corrupt)?,
                used_at: row.try_get(1).map_err(corrupt)?,
                event_id: row.try_get(2).map_err(corrupt)?,
                request_id: row.try_get(3).map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn first_audit_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT event_time FROM audit_records ORDER BY sequence LIMIT 1",
                &[],
            )
            .await
            .map_err(db_err)?;
        row.map(|row| row.try_get(0).map_err(corrupt)).transpose()
    }

    async fn put_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO read_model_snapshots (sequence, taken_at, body) VALUES ($1, $2, $3) \
             ON CONFLICT (sequence) DO NOTHING",
            &[&snapshot.sequence, &snapshot.taken_at, &snapshot.body],
        )
        .await
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM read_model_snapshots WHERE sequence NOT IN \
             (SELECT sequence FROM read_model_snapshots ORDER BY sequence DESC LIMIT $1)",
            &[&SNAPSHOTS_KEPT],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn newest_snapshot(&self, at_most: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT sequence, taken_at, body FROM read_model_snapshots \
                 WHERE sequence <= $1 ORDER BY sequence DESC LIMIT 1",
                &[&at_most],
            )
            .await
            .map_err(db_err)?;
        row.map(|row| {
            Ok(StoredSnapshot {
                sequence: row.try_get(0).map_err(corrupt)?,
                taken_at: row.try_get(1).map_err(corrupt)?,
                body: row.try_get(2).map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn latest_snapshots(&self) -> Result<Vec<StoredSnapshot>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT sequence, taken_at, body FROM read_model_snapshots ORDER BY sequence DESC",
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(StoredSnapshot {
                    sequence: row.try_get(0).map_err(corrupt)?,
                    taken_at: row.try_get(1).map_err(corrupt)?,
                    body: row.try_get(2).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn read_events(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT sequence, stream, version, event_type, payload, recorded_at FROM events \
                 WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&after, &limit.max(0)])
            .await
            .map_err(db_err)?;
        rows.iter().map(decode_event).collect()
    }

    async fn last_event_sequence(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT COALESCE(MAX(sequence), 0)::BIGINT FROM events", &[])
            .await
            .map_err(db_err)?;
        row.try_get(0).map_err(db_err)
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT sequence, stream, version, event_type, payload, recorded_at FROM events \
                 WHERE stream = $1 ORDER BY version",
            )
            .await
            .map_err(db_err)?;
        let rows = client.query(&stmt, &[&stream]).await.map_err(db_err)?;
        rows.iter().map(decode_event).collect()
    }

    async fn read_audit(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredAuditRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT sequence, event_id, event_time, record, prev_hash, hash \
                 FROM audit_records WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&after, &limit.max(0)])
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(StoredAuditRecord {
                    sequence: row.try_get(0).map_err(corrupt)?,
                    event_id: row.try_get(1).map_err(corrupt)?,
                    event_time: row.try_get(2).map_err(corrupt)?,
                    record: row.try_get(3).map_err(corrupt)?,
                    prev_hash: row.try_get(4).map_err(corrupt)?,
                    hash: row.try_get(5).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn get_material(
        &self,
        key_id: &str,
        version: i32,
    ) -> Result<Option<SealedMaterial>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT sealed FROM key_materials WHERE key_id = $1 AND version = $2")
            .await
            .map_err(db_err)?;
        let row = client
            .query_opt(&stmt, &[&key_id, &version])
            .await
            .map_err(db_err)?;
        row.map(|row| {
            Ok(SealedMaterial {
                key_id: key_id.to_string(),
                version,
                sealed: row.try_get(0).map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO write_probe (id, probed_at) VALUES (1, now()) \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
                &[],
            )
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn holds_data(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM audit_records) \
                 OR EXISTS (SELECT 1 FROM key_materials)",
                &[],
            )
            .await
            .map_err(db_err)?;
        row.try_get(0).map_err(corrupt)
    }

    async fn any_material(&self) -> Result<Option<SealedMaterial>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT key_id, version, sealed FROM key_materials LIMIT 1",
                &[],
            )
            .await
            .map_err(db_err)?;
        row.map(|row| {
            Ok(SealedMaterial {
                key_id: row.try_get(0).map_err(corrupt)?,
                version: row.try_get(1).map_err(corrupt)?,
                sealed: row.try_get(2).map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn root_key_bindings(&self) -> Result<Vec<RootKeyBinding>, StoreError> {
        let client = self.client().await?;
        read_root_keys(&client).await
    }

    async fn retired_root_keys(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id FROM root_keys WHERE retired_at IS NOT NULL", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| r.try_get(0).map_err(corrupt)).collect()
    }

    async fn root_key_wraps(&self) -> Result<Vec<RootKeyWrap>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_id, wrapped_under, sealed FROM root_key_wraps",
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(RootKeyWrap {
                    key_id: r.try_get(0).map_err(corrupt)?,
                    wrapped_under: r.try_get(1).map_err(corrupt)?,
                    sealed: r.try_get(2).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn add_root_key(
        &self,
        binding: &RootKeyBinding,
        wraps: &[RootKeyWrap],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO root_keys (id, check_value) VALUES ($1, $2)",
            &[&binding.id, &binding.check_value],
        )
        .await
        .map_err(db_err)?;
        for w in wraps {
            tx.execute(
                "INSERT INTO root_key_wraps (key_id, wrapped_under, sealed) VALUES ($1, $2, $3)",
                &[&w.key_id, &w.wrapped_under, &w.sealed],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn retire_root_key(&self, id: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute(
            "UPDATE root_keys SET retired_at = now() WHERE id = $1 AND retired_at IS NULL",
            &[&id],
        )
        .await
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM root_key_wraps WHERE key_id = $1 OR wrapped_under = $1",
            &[&id],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn material_page(
        &self,
        after: Option<(String, i32)>,
        limit: i64,
    ) -> Result<Vec<SealedMaterial>, StoreError> {
        let client = self.client().await?;
        let (key_id, version) = after.unwrap_or_else(|| (String::new(), i32::MIN));
        let rows = client
            .query(
                "SELECT key_id, version, sealed FROM key_materials \
                 WHERE (key_id, version) > ($1, $2) ORDER BY key_id, version LIMIT $3",
                &[&key_id, &version, &limit],
            )
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SealedMaterial {
                    key_id: r.try_get(0).map_err(corrupt)?,
                    version: r.try_get(1).map_err(corrupt)?,
                    sealed: r.try_get(2).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn reseal_materials(
        &self,
        rows: &[(SealedMaterial, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE key_materials SET sealed = $4 \
                 WHERE key_id = $1 AND version = $2 AND sealed = $3",
            )
            .await
            .map_err(db_err)?;
        let mut replaced = 0;
        for (old, sealed) in rows {
            replaced += tx
                .execute(&stmt, &[&old.key_id, &old.version, &old.sealed, sealed])
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(replaced)
    }

    async fn bind_root_key(
        &self,
        binding: &RootKeyBinding,
    ) -> Result<Vec<RootKeyBinding>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))
            .await
            .map_err(db_err)?;
        tx.execute(
            "INSERT INTO root_keys (id, check_value) \
             SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM root_keys)",
            &[&binding.id, &binding.check_value],
        )
        .await
        .map_err(db_err)?;
        let bound = read_root_keys(&tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(bound)
    }

    async fn destroy_materials(&self, key_id: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM key_materials WHERE key_id = $1", &[&key_id])
            .await
            .map_err(db_err)
    }
}

/// When a batch's transaction is durable: when its COMMIT returns, or after the next `sync`.
#[derive(Debug, Clone, Copy)]
enum Durability {
    AtCommit,
    AtSync,
}

impl Durability {
    /// The statements that open a batch's transaction: its durability, then the write lock
    /// that keeps sequences gap-free and the chain linked in commit order across replicas.
    fn begin(self) -> String {
        let lock = format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})");
        match self {
            Durability::AtCommit => lock,
            Durability::AtSync => format!("SET LOCAL synchronous_commit TO OFF; {lock}"),
        }
    }
}

/// The whole batch in one transaction, without savepoints, in three round trips: BEGIN with its
/// durability and the lock, the tail and the streams' versions (pipelined: sent together, run in
/// order); then one multi-row statement per table (pipelined); then COMMIT. The transaction is
/// driven by hand rather than through `Client::transaction`, whose BEGIN would be a round trip of
/// its own: on failure the caller rolls it back (`PostgresStore::commit_batch`).
/// Returns each unit's outcome, the tail it read under the lock and the tail after the batch.
async fn commit_planned(
    conn: &deadpool_postgres::Client,
    units: &[CommitUnit],
    durability: Durability,
) -> Result<(Vec<Result<CommitReceipt, StoreError>>, Tail, Tail), TxFailure> {
    let now = Utc::now().trunc_subsecs(6);
    let streams = plan::streams_of(units);
    let begin = format!("BEGIN; {}", durability.begin());
    let (_, tail, versions) = tokio::try_join!(
        biased;
        async { conn.batch_execute(&begin).await.map_err(db_err) },
        read_tail(conn),
        stream_versions(conn, &streams),
    )?;
    let found = tail.clone();
    let planned = plan::plan(units, tail, versions, now);
    write_plan(conn, &planned, now).await?;
    conn.batch_execute("COMMIT").await.map_err(|e| {
        if e.as_db_error().is_some() {
            TxFailure::NotCommitted(db_err(e))
        } else {
            TxFailure::Unknown(db_err(e))
        }
    })?;
    Ok((planned.results, found, planned.tail))
}

/// Whether a batch only adds audit records (with their lookup rows and last uses): no events,
/// no materials. Such a batch needs no stream versions, only the chain's tail.
fn only_records(units: &[CommitUnit]) -> bool {
    units.iter().all(|u| {
        u.appends.is_empty()
            && u.materials.is_empty()
            && u.destroy_materials.is_empty()
            && u.audit.is_some()
    })
}

/// Whether two tails name the same position of the store.
fn same_tail(a: &Tail, b: &Tail) -> bool {
    a.event_sequence == b.event_sequence
        && a.audit_sequence == b.audit_sequence
        && a.audit_hash == b.audit_hash
}

/// A batch of audit records only, written in one round trip on a guess: that the store's tail is
/// still where this process's last batch left it, which holds while no other replica writes
/// (after a batch that found the tail where the previous one had left it). BEGIN with the lock,
/// the three inserts and COMMIT are sent together, the statements prepared beforehand so that
/// nothing waits in between. The database checks the guess: a record at a sequence another
/// writer took violates the primary key, one that does not name the record before it fails the
/// chain trigger, and either error aborts the transaction, which the pipelined COMMIT then rolls
/// back, so nothing of the batch is written and the caller plans it from the tail read under
/// the lock. Returns each unit's outcome and the tail after the batch.
async fn commit_on_guess(
    conn: &deadpool_postgres::Client,
    units: &[CommitUnit],
    durability: Durability,
    tail: Tail,
) -> Result<(Vec<Result<CommitReceipt, StoreError>>, Tail), TxFailure> {
    let now = Utc::now().trunc_subsecs(6);
    let planned = plan::plan(units, tail, HashMap::new(), now);
    let (audit, lookup, uses) = record_statements(conn).await.map_err(db_err)?;
    let begin = format!("BEGIN; {}", durability.begin());
    // Polled in this order (`biased`), each future sends its statement before it first waits,
    // so the server receives BEGIN, the inserts and COMMIT in this order; the first error in
    // that order is the one that counts.
    tokio::try_join!(
        biased;
        conn.batch_execute(&begin),
        execute_audit(conn, &audit, &planned),
        execute_lookup(conn, &lookup, &planned),
        execute_key_uses(conn, &uses, &planned),
        conn.batch_execute("COMMIT"),
    )
    .map_err(|e| {
        if e.as_db_error().is_some() {
            TxFailure::NotCommitted(db_err(e))
        } else {
            // COMMIT went with everything else: the batch may be in the store.
            TxFailure::Unknown(db_err(e))
        }
    })?;
    Ok((planned.results, planned.tail))
}

/// How a batch's transaction failed.
#[derive(Debug)]
enum TxFailure {
    /// Nothing of it was committed: the database refused a statement (which aborts the
    /// transaction), or the connection failed before COMMIT was sent (the server rolls back).
    /// Writing the batch again is safe.
    NotCommitted(StoreError),
    /// The connection failed once COMMIT was on its way: the batch may or may not be in the
    /// store, and writing it again could record its calls twice, so it fails (closed).
    Unknown(StoreError),
}

impl From<StoreError> for TxFailure {
    fn from(e: StoreError) -> Self {
        TxFailure::NotCommitted(e)
    }
}

/// Each unit under its own savepoint, so that a unit whose rows the database refuses writes
/// nothing and fails alone.
async fn commit_isolated(
    client: &mut deadpool_postgres::Client,
    units: &[CommitUnit],
    durability: Durability,
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    tx.batch_execute(&durability.begin())
        .await
        .map_err(db_err)?;
    let now = Utc::now().trunc_subsecs(6);
    let mut results = Vec::with_capacity(units.len());
    for unit in units.chunks(1) {
        tx.batch_execute("SAVEPOINT unit").await.map_err(db_err)?;
        let written = async {
            let streams = plan::streams_of(unit);
            let (tail, versions) =
                tokio::try_join!(read_tail(&tx), stream_versions(&tx, &streams))?;
            let planned = plan::plan(unit, tail, versions, now);
            write_plan(&tx, &planned, now).await?;
            Ok::<_, StoreError>(planned.results)
        }
        .await;
        match written {
            Ok(mut result) => {
                tx.batch_execute("RELEASE SAVEPOINT unit")
                    .await
                    .map_err(db_err)?;
                results.append(&mut result);
            }
            Err(e) => {
                // If the rollback itself fails, the transaction is gone: the whole batch fails.
                tx.batch_execute("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit")
                    .await
                    .map_err(db_err)?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

/// The last event sequence and the last audit record's sequence and hash (read under the lock).
async fn read_tail(tx: &impl GenericClient) -> Result<Tail, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT (SELECT COALESCE(MAX(sequence), 0) FROM events), a.sequence, a.hash \
             FROM (SELECT 1) one LEFT JOIN LATERAL \
             (SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1) a ON true",
        )
        .await
        .map_err(db_err)?;
    let row = tx.query_one(&stmt, &[]).await.map_err(db_err)?;
    let event_sequence: i64 = row.try_get(0).map_err(corrupt)?;
    let audit_sequence: Option<i64> = row.try_get(1).map_err(corrupt)?;
    let audit_hash: Option<String> = row.try_get(2).map_err(corrupt)?;
    Ok(Tail {
        event_sequence,
        audit_sequence: audit_sequence.unwrap_or(0),
        audit_hash: audit_hash.unwrap_or_else(|| GENESIS_HASH.to_string()),
    })
}

/// The current version of each of `streams` that has events, in one query.
async fn stream_versions(
    tx: &impl GenericClient,
    streams: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    if streams.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT stream, MAX(version) FROM events WHERE stream = ANY($1) GROUP BY stream",
        )
        .await
        .map_err(db_err)?;
    let rows = tx.query(&stmt, &[&streams]).await.map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(corrupt)?,
                row.try_get(1).map_err(corrupt)?,
            ))
        })
        .collect()
}

/// Write a planned batch: each accepted unit's destroyed and new materials (in unit order), then
/// one statement each for the events, the audit records, their lookup rows and the keys' last
/// uses, sent together (pipelined) on the transaction's connection.
async fn write_plan(
    tx: &impl GenericClient,
    plan: &BatchPlan<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for unit in &plan.accepted {
        write_materials(tx, unit, now).await?;
    }
    let (audit, lookup, uses) = record_statements(tx).await.map_err(db_err)?;
    tokio::try_join!(insert_events(tx, plan, now), async {
        tokio::try_join!(
            execute_audit(tx, &audit, plan),
            execute_lookup(tx, &lookup, plan),
            execute_key_uses(tx, &uses, plan),
        )
        .map_err(db_err)
    },)?;
    if let Some(last) = plan.events.last() {
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&EVENTS_CHANNEL, &last.sequence.to_string()],
        )
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Destroy the materials the unit shreds, then insert its new sealed materials.
async fn write_materials(
    tx: &impl GenericClient,
    unit: &CommitUnit,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for key_id in &unit.destroy_materials {
        tx.execute("DELETE FROM key_materials WHERE key_id = $1", &[key_id])
            .await
            .map_err(db_err)?;
    }
    if !unit.materials.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO key_materials (key_id, version, sealed, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(db_err)?;
        for m in &unit.materials {
            tx.execute(&stmt, &[&m.key_id, &m.version, &m.sealed, &now])
                .await
                .map_err(db_err)?;
        }
    }
    Ok(())
}

async fn insert_events(
    tx: &impl GenericClient,
    plan: &BatchPlan<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if plan.events.is_empty() {
        return Ok(());
    }
    let sequences: Vec<i64> = plan.events.iter().map(|e| e.sequence).collect();
    let streams: Vec<&str> = plan.events.iter().map(|e| e.stream).collect();
    let versions: Vec<i64> = plan.events.iter().map(|e| e.version).collect();
    let types: Vec<&str> = plan.events.iter().map(|e| e.event_type).collect();
    let payloads: Vec<&serde_json::Value> = plan.events.iter().map(|e| e.payload).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO events (sequence, stream, version, event_type, payload, recorded_at) \
             SELECT s, st, v, t, p, $6 \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[]) \
             AS u(s, st, v, t, p)",
        )
        .await
        .map_err(db_err)?;
    tx.execute(
        &stmt,
        &[&sequences, &streams, &versions, &types, &payloads, &now],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// One statement for a batch's audit records.
const INSERT_AUDIT: &str =
    "INSERT INTO audit_records (sequence, event_id, event_time, record, prev_hash, hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], \
     $5::text[], $6::text[])";

/// One statement for a batch's lookup rows.
const INSERT_LOOKUP: &str =
    "INSERT INTO audit_lookup (account, attribute, value, event_time, sequence) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])";

/// One statement for the latest use of each key a batch used.
const UPSERT_KEY_USES: &str =
    "INSERT INTO key_last_use (key_arn, operation, used_at, event_id, request_id) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], \
     $5::text[]) \
     ON CONFLICT (key_arn) DO UPDATE SET operation = excluded.operation, \
     used_at = excluded.used_at, event_id = excluded.event_id, \
     request_id = excluded.request_id WHERE excluded.used_at > key_last_use.used_at";

/// The three statements of a batch's records, prepared on (and cached by) this connection.
async fn record_statements(
    tx: &impl GenericClient,
) -> Result<
    (
        tokio_postgres::Statement,
        tokio_postgres::Statement,
        tokio_postgres::Statement,
    ),
    tokio_postgres::Error,
> {
    tokio::try_join!(
        tx.prepare_cached(INSERT_AUDIT),
        tx.prepare_cached(INSERT_LOOKUP),
        tx.prepare_cached(UPSERT_KEY_USES),
    )
}

async fn execute_audit(
    tx: &impl GenericClient,
    stmt: &tokio_postgres::Statement,
    plan: &BatchPlan<'_>,
) -> Result<(), tokio_postgres::Error> {
    if plan.audit.is_empty() {
        return Ok(());
    }
    let sequences: Vec<i64> = plan.audit.iter().map(|a| a.sequence).collect();
    let ids: Vec<&str> = plan.audit.iter().map(|a| a.event_id).collect();
    let times: Vec<DateTime<Utc>> = plan.audit.iter().map(|a| a.event_time).collect();
    let records: Vec<&str> = plan.audit.iter().map(|a| a.record).collect();
    let prevs: Vec<&str> = plan.audit.iter().map(|a| a.prev_hash.as_str()).collect();
    let hashes: Vec<&str> = plan.audit.iter().map(|a| a.hash.as_str()).collect();
    tx.execute(stmt, &[&sequences, &ids, &times, &records, &prevs, &hashes])
        .await?;
    Ok(())
}

async fn execute_lookup(
    tx: &impl GenericClient,
    stmt: &tokio_postgres::Statement,
    plan: &BatchPlan<'_>,
) -> Result<(), tokio_postgres::Error> {
    if plan.lookup.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = plan.lookup.iter().map(|l| l.account).collect();
    let attributes: Vec<&str> = plan.lookup.iter().map(|l| l.attribute).collect();
    let values: Vec<&str> = plan.lookup.iter().map(|l| l.value).collect();
    let times: Vec<i64> = plan.lookup.iter().map(|l| l.event_time).collect();
    let sequences: Vec<i64> = plan.lookup.iter().map(|l| l.sequence).collect();
    tx.execute(stmt, &[&accounts, &attributes, &values, &times, &sequences])
        .await?;
    Ok(())
}

async fn execute_key_uses(
    tx: &impl GenericClient,
    stmt: &tokio_postgres::Statement,
    plan: &BatchPlan<'_>,
) -> Result<(), tokio_postgres::Error> {
    if plan.key_uses.is_empty() {
        return Ok(());
    }
    let arns: Vec<&str> = plan.key_uses.iter().map(|u| u.key_arn.as_str()).collect();
    let operations: Vec<&str> = plan.key_uses.iter().map(|u| u.operation.as_str()).collect();
    let times: Vec<DateTime<Utc>> = plan.key_uses.iter().map(|u| u.used_at).collect();
    let ids: Vec<&str> = plan.key_uses.iter().map(|u| u.event_id.as_str()).collect();
    let requests: Vec<&str> = plan
        .key_uses
        .iter()
        .map(|u| u.request_id.as_str())
        .collect();
    tx.execute(stmt, &[&arns, &operations, &times, &ids, &requests])
        .await?;
    Ok(())
}

/// An error and its causes, outermost first ("error connecting to server: Connection refused").
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Every root key binding, oldest first.
async fn read_root_keys(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<Vec<RootKeyBinding>, StoreError> {
    let rows = client
        .query(
            "SELECT id, check_value FROM root_keys WHERE retired_at IS NULL \
             ORDER BY created_at, id",
            &[],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(RootKeyBinding {
                id: row.try_get(0).map_err(corrupt)?,
                check_value: row.try_get(1).map_err(corrupt)?,
            })
        })
        .collect()
}

/// Decode one `events` row (columns in table order).
fn decode_event(row: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        sequence: row.try_get(0).map_err(corrupt)?,
        stream: row.try_get(1).map_err(corrupt)?,
        version: row.try_get(2).map_err(corrupt)?,
        event_type: row.try_get(3).map_err(corrupt)?,
        payload: row.try_get(4).map_err(corrupt)?,
        recorded_at: row.try_get(5).map_err(corrupt)?,
    })
}

/// The server's own message when there is one (tokio-postgres' Display says only "db error").
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}

/// Map a PostgreSQL error to the store's error, keeping the server's message.
fn db_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(pg_message(&e))
}

/// Map a column decoding failure to `Corrupt`.
fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt(pg_message(&e))
}
