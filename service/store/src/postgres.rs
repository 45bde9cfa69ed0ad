//! PostgreSQL backend: events, audit records and sealed key material in one database that several
//! server replicas may share.
//!
//! It owns the PostgreSQL schema (`migrations/postgres/`, embedded at build time) and every SQL
//! statement run against it. All writers, in every process, take one transaction-scoped advisory lock
//! before writing, so global event sequences and audit chain positions are assigned (max + 1) in
//! commit order, without gaps, and the chain cannot fork. Each committing transaction also sends a
//! `NOTIFY` on [`EVENTS_CHANNEL`] carrying the last event sequence, for replicas following the table.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use super::{
    receipt_sequences, CommitReceipt, CommitUnit, EventStore, RootKeyBinding, RootKeyWrap,
    SealedMaterial, StoreError, StoredAuditRecord, StoredEvent, GENESIS_HASH,
};
use crate::chain;

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
        let store = PostgresStore { pool, config };
        drop(store.client().await?);
        Ok(store)
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))
            .await
            .map_err(db_err)?;
        let now = Utc::now().trunc_subsecs(6);
        let mut tail = read_tail(&tx).await?;
        let first_event = tail.event_sequence;
        let mut results = Vec::with_capacity(units.len());
        for unit in &units {
            tx.batch_execute("SAVEPOINT unit").await.map_err(db_err)?;
            let mut unit_tail = tail.clone();
            match apply_unit(&tx, unit, now, &mut unit_tail).await {
                Ok(receipt) => {
                    tx.batch_execute("RELEASE SAVEPOINT unit")
                        .await
                        .map_err(db_err)?;
                    tail = unit_tail;
                    results.push(Ok(receipt));
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
        if tail.event_sequence > first_event {
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&EVENTS_CHANNEL, &tail.event_sequence.to_string()],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(results)
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

/// Where the batch's writes have got to: the last event sequence and the chain's tail.
#[derive(Clone)]
struct Tail {
    event_sequence: i64,
    audit_sequence: i64,
    audit_hash: String,
}

/// The last event sequence and the last audit record's sequence and hash (read under the lock).
async fn read_tail(tx: &deadpool_postgres::Transaction<'_>) -> Result<Tail, StoreError> {
    let row = tx
        .query_one("SELECT COALESCE(MAX(sequence), 0) FROM events", &[])
        .await
        .map_err(db_err)?;
    let event_sequence: i64 = row.try_get(0).map_err(corrupt)?;
    let audit = tx
        .query_opt(
            "SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(db_err)?;
    let (audit_sequence, audit_hash) = match audit {
        Some(row) => (
            row.try_get(0).map_err(corrupt)?,
            row.try_get(1).map_err(corrupt)?,
        ),
        None => (0, GENESIS_HASH.to_string()),
    };
    Ok(Tail {
        event_sequence,
        audit_sequence,
        audit_hash,
    })
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

/// Write one unit: version checks, destroyed and new materials, events, audit record; advances
/// `tail`.
async fn apply_unit(
    tx: &deadpool_postgres::Transaction<'_>,
    unit: &CommitUnit,
    now: DateTime<Utc>,
    tail: &mut Tail,
) -> Result<CommitReceipt, StoreError> {
    // Every version check comes first: a unit that lost a race writes nothing, and reports the
    // conflict (not a keystore primary-key clash from material it would have inserted).
    let found_versions = check_versions(tx, unit).await?;
    write_materials(tx, unit, now).await?;
    let events = append_events(tx, unit, &found_versions, now, tail).await?;
    let sequences = append_audit(tx, unit, tail).await?;
    let (audit_sequence, copy_sequences) = receipt_sequences(unit, sequences);
    Ok(CommitReceipt {
        events,
        audit_sequence,
        copy_sequences,
    })
}

/// The version each append's stream is at, or the conflict of the first that is not where the
/// unit expects it.
async fn check_versions(
    tx: &deadpool_postgres::Transaction<'_>,
    unit: &CommitUnit,
) -> Result<Vec<i64>, StoreError> {
    let mut found_versions = Vec::with_capacity(unit.appends.len());
    if !unit.appends.is_empty() {
        let current = tx
            .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = $1")
            .await
            .map_err(db_err)?;
        for append in &unit.appends {
            let row = tx
                .query_one(&current, &[&append.stream])
                .await
                .map_err(db_err)?;
            let found: i64 = row.try_get(0).map_err(corrupt)?;
            if found != append.expected_version {
                return Err(StoreError::VersionConflict {
                    stream: append.stream.clone(),
                    expected: append.expected_version,
                    found,
                });
            }
            found_versions.push(found);
        }
    }
    Ok(found_versions)
}

/// Destroy the materials the unit shreds, then insert its new sealed materials.
async fn write_materials(
    tx: &deadpool_postgres::Transaction<'_>,
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

/// Insert the unit's events at the next sequences and versions (`found_versions`: each
/// stream's version before the unit).
async fn append_events(
    tx: &deadpool_postgres::Transaction<'_>,
    unit: &CommitUnit,
    found_versions: &[i64],
    now: DateTime<Utc>,
    tail: &mut Tail,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    if !unit.appends.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO events (sequence, stream, version, event_type, payload, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(db_err)?;
        for (append, &found) in unit.appends.iter().zip(found_versions) {
            for (i, event) in append.events.iter().enumerate() {
                tail.event_sequence += 1;
                let version = found + 1 + i as i64;
                tx.execute(
                    &insert,
                    &[
                        &tail.event_sequence,
                        &append.stream,
                        &version,
                        &event.event_type,
                        &event.payload,
                        &now,
                    ],
                )
                .await
                .map_err(db_err)?;
                events.push(StoredEvent {
                    sequence: tail.event_sequence,
                    stream: append.stream.clone(),
                    version,
                    event_type: event.event_type.clone(),
                    payload: event.payload.clone(),
                    recorded_at: now,
                });
            }
        }
    }
    Ok(events)
}

/// Insert the unit's audit record and its copies, each linked to the one before in the chain;
/// their sequences.
async fn append_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    unit: &CommitUnit,
    tail: &mut Tail,
) -> Result<Vec<i64>, StoreError> {
    let mut sequences = Vec::new();
    for audit in unit.audit.iter().chain(&unit.audit_copies) {
        let sequence = tail.audit_sequence + 1;
        let hash = chain::link(&tail.audit_hash, &audit.record);
        let stmt = tx
            .prepare_cached(
                "INSERT INTO audit_records \
                 (sequence, event_id, event_time, record, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(db_err)?;
        tx.execute(
            &stmt,
            &[
                &sequence,
                &audit.event_id,
                &audit.event_time,
                &audit.record,
                &tail.audit_hash,
                &hash,
            ],
        )
        .await
        .map_err(db_err)?;
        tail.audit_sequence = sequence;
        tail.audit_hash = hash;
        sequences.push(sequence);
    }
    Ok(sequences)
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
