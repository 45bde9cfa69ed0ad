//! The event store: the one interface (`EventStore`) behind which both backends (embedded SQLite and
//! PostgreSQL) keep domain events, audit records and sealed key material.
//!
//! Invariants every backend keeps:
//! - events and audit records are append-only; the database itself refuses UPDATE, DELETE and
//!   TRUNCATE on their tables (triggers installed by the migrations);
//! - a `CommitUnit` is all-or-nothing: its sealed materials, its events and its audit record land in
//!   the same transaction, or none of them do;
//! - appends use optimistic concurrency on the stream version;
//! - audit records form one hash chain, linked inside the writing transaction (see `chain`),
//!   so that concurrent writers (several replicas on one PostgreSQL) cannot fork it.
//!
//! Nothing here knows about HTTP, KMS operations or plaintext key material: materials arrive sealed.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod chain;
mod plan;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The expected stream version did not match: another writer appended first.
    #[error("version conflict on stream {stream}: expected {expected}, found {found}")]
    VersionConflict {
        /// The stream that conflicted.
        stream: String,
        /// The version the writer expected the stream to be at.
        expected: i64,
        /// The version the stream is actually at.
        found: i64,
    },
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(String),
    /// A migration could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// An event to append (its sequence and version are assigned by the store).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event type name, for example `KeyCreated`.
    pub event_type: String,
    /// The versioned JSON payload (never holds key material or plaintext).
    pub payload: serde_json::Value,
}

/// Events appended to one stream, with the version the stream must be at before the append
/// (0 for a new stream).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// Stream name, for example `key/1234abcd-...`.
    pub stream: String,
    /// The stream version the writer saw; the append fails with `VersionConflict` otherwise.
    pub expected_version: i64,
    /// The events, in order; they get versions `expected_version + 1 ..`.
    pub events: Vec<NewEvent>,
}

/// Key material sealed under the root key, as stored in the keystore table.
#[derive(Clone, PartialEq)]
pub struct SealedMaterial {
    /// The key the material belongs to.
    pub key_id: String,
    /// The material version (1 for the first material, +1 for each rotation).
    pub version: i32,
    /// The sealed bytes (nonce and AES-GCM ciphertext); opaque to the store.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedMaterial")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// Everything one API call writes, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct CommitUnit {
    /// Sealed key material to insert.
    pub materials: Vec<SealedMaterial>,
    /// Keys whose every sealed material version is destroyed (crypto-shredding) in this unit,
    /// before `materials` are inserted.
    pub destroy_materials: Vec<String>,
    /// Event appends, each checked against its expected stream version.
    pub appends: Vec<StreamAppend>,
    /// The audit record (its JSON text), if the call produces one.
    pub audit: Option<NewAuditRecord>,
    /// Copies of the call's record for the other accounts it concerns (a cross-account call is
    /// delivered to the caller's and the key owner's account, as AWS does), chained right after
    /// `audit`.
    pub audit_copies: Vec<NewAuditRecord>,
    /// Successful cryptographic uses of keys by the call (GetKeyLastUsage), kept in the same
    /// transaction as its record; a later use replaces an earlier one.
    pub key_uses: Vec<KeyUse>,
}

/// A successful cryptographic use of a key, as GetKeyLastUsage reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    /// The key's ARN.
    pub key_arn: String,
    /// The operation name, for example `Encrypt`.
    pub operation: String,
    /// When (the record's event time).
    pub used_at: DateTime<Utc>,
    /// The CloudTrail eventID of the call's record.
    pub event_id: String,
    /// The call's request id.
    pub request_id: String,
}

/// A LookupEvents query: one account's records, optionally those with one attribute value, in
/// a time window, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupQuery {
    /// The account whose records are searched (`recipientAccountId`).
    pub account: String,
    /// The attribute name and value to match (None: every record of the account).
    pub attribute: Option<(String, String)>,
    /// The earliest event time, epoch seconds, inclusive.
    pub start: Option<i64>,
    /// The latest event time, epoch seconds, inclusive.
    pub end: Option<i64>,
    /// Only records strictly before this (event time, sequence) position (the next page).
    pub before: Option<(i64, i64)>,
    /// At most this many.
    pub limit: i64,
}

/// A record LookupEvents found: its (event time, sequence) position and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupHit {
    /// Event time, epoch seconds.
    pub event_time: i64,
    /// Chain sequence.
    pub sequence: i64,
    /// The canonical record text.
    pub record: String,
}

/// The pseudo-attribute under which every record is indexed for its account (a query without an
/// attribute).
pub const ACCOUNT_ATTRIBUTE: &str = "*";

/// An audit record to append; the store links it into the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditRecord {
    /// The CloudTrail `eventID`.
    pub event_id: String,
    /// The CloudTrail `eventTime`.
    pub event_time: DateTime<Utc>,
    /// The record in canonical JSON form (the exact text that is hashed).
    pub record: String,
    /// The account the record is delivered to (`recipientAccountId`), for LookupEvents.
    pub account: String,
    /// Its LookupEvents attributes (name, value), written with it into the lookup index.
    pub lookup: Vec<(String, String)>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global sequence number, strictly increasing across all streams.
    pub sequence: i64,
    /// The stream the event belongs to.
    pub stream: String,
    /// Its version within the stream (1, 2, ...).
    pub version: i64,
    /// The event type name.
    pub event_type: String,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// An audit record as stored, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAuditRecord {
    /// Position in the chain (1, 2, ...), gap-free.
    pub sequence: i64,
    /// The CloudTrail `eventID`.
    pub event_id: String,
    /// The CloudTrail `eventTime`.
    pub event_time: DateTime<Utc>,
    /// The canonical JSON text of the record.
    pub record: String,
    /// Hex SHA-256 of the previous record's link (64 zeros for the first record).
    pub prev_hash: String,
    /// Hex SHA-256 link of this record: `audit::chain::link(prev_hash, record)`.
    pub hash: String,
}

/// What a committed unit got from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitReceipt {
    /// The stored events of the unit, with their sequences and versions, in append order.
    pub events: Vec<StoredEvent>,
    /// The chain position of the unit's audit record, if it had one.
    pub audit_sequence: Option<i64>,
    /// The chain positions of its copies, in order.
    pub copy_sequences: Vec<i64>,
}

/// Split the chain positions a unit's records got into its record's and its copies'.
pub(crate) fn receipt_sequences(
    unit: &CommitUnit,
    mut sequences: Vec<i64>,
) -> (Option<i64>, Vec<i64>) {
    if unit.audit.is_some() && !sequences.is_empty() {
        let first = sequences.remove(0);
        (Some(first), sequences)
    } else {
        (None, sequences)
    }
}

/// The storage interface. Both backends pass the same conformance suite (`tests/it/store_conformance.rs`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Apply the backend's migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Commit a batch of units in as few transactions as possible (group commit). Each unit is
    /// all-or-nothing: a unit whose append conflicts gets `Err(VersionConflict)` and writes nothing,
    /// while the other units of the batch still commit. The outer `Err` means the batch as a whole
    /// could not be committed (nothing of it is durable). Returns when the committed data is durable.
    async fn commit(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError>;

    /// As `commit`, but it may return once the batch is committed and visible to readers, before
    /// it is durable: `sync` makes it durable. The writer uses the pair to write batch N+1 while
    /// batch N reaches the disk, and answers a batch's callers only after a `sync` that began
    /// after its commit. A backend whose commit is durable already (PostgreSQL) commits here.
    async fn commit_visible(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        self.commit(units).await
    }

    /// Make every batch `commit_visible` returned so far durable.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The same two writer calls run synchronously on the caller's thread, for a backend whose
    /// driver is synchronous anyway (SQLite): the audit writer, which owns threads of its own,
    /// then calls them directly instead of handing each commit and each sync to the runtime's
    /// blocking pool and back. None (the default) for an asynchronous backend.
    fn blocking_writes(&self) -> Option<&dyn BlockingWrites> {
        None
    }

    /// Events with a sequence greater than `after`, in sequence order, at most `limit`.
    async fn read_events(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError>;

    /// All events of one stream, in version order.
    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// The sequence of the newest event (0 when there is none).
    async fn last_event_sequence(&self) -> Result<i64, StoreError>;

    /// Audit records with a chain sequence greater than `after`, in order, at most `limit`.
    async fn read_audit(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredAuditRecord>, StoreError>;

    /// LookupEvents: the records matching `query`, newest first (by event time, then sequence).
    async fn lookup_audit(&self, query: &LookupQuery) -> Result<Vec<LookupHit>, StoreError>;

    /// The last recorded use of a key (GetKeyLastUsage), if any.
    async fn key_last_use(&self, key_arn: &str) -> Result<Option<KeyUse>, StoreError>;

    /// The event time of the oldest audit record (when usage tracking started), if any.
    async fn first_audit_time(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// The sealed material of one key version, if it exists (it does not once destroyed).
    async fn get_material(
        &self,
        key_id: &str,
        version: i32,
    ) -> Result<Option<SealedMaterial>, StoreError>;

    /// Delete every sealed material version of a key (crypto-shredding); returns how many rows went.
    async fn destroy_materials(&self, key_id: &str) -> Result<u64, StoreError>;

    /// Rewrite the one-row probe table: Ok when the store takes writes (readiness after a failed
    /// commit).
    async fn probe_write(&self) -> Result<(), StoreError>;

    /// Whether the store holds anything (events, audit records or sealed material): a root key
    /// may be generated only for a store that holds nothing.
    async fn holds_data(&self) -> Result<bool, StoreError>;

    /// One sealed material row, if there is any (to check a root key against existing data).
    async fn any_material(&self) -> Result<Option<SealedMaterial>, StoreError>;

    /// The root keys the store is bound to and that are not retired, oldest first (empty before
    /// first use).
    async fn root_key_bindings(&self) -> Result<Vec<RootKeyBinding>, StoreError>;

    /// The ids of retired root keys.
    async fn retired_root_keys(&self) -> Result<Vec<String>, StoreError>;

    /// Every root key sealed under another one (while a rotation is under way).
    async fn root_key_wraps(&self) -> Result<Vec<RootKeyWrap>, StoreError>;

    /// Bind the store to one more root key (a rotation), with its wraps, in one transaction.
    async fn add_root_key(
        &self,
        binding: &RootKeyBinding,
        wraps: &[RootKeyWrap],
    ) -> Result<(), StoreError>;

    /// Retire a root key: mark it and destroy every wrap that involves it.
    async fn retire_root_key(&self, id: &str) -> Result<(), StoreError>;

    /// Sealed material rows after `after` (key id, version), in that order, at most `limit`.
    async fn material_page(
        &self,
        after: Option<(String, i32)>,
        limit: i64,
    ) -> Result<Vec<SealedMaterial>, StoreError>;

    /// Replace rows' sealed material, each only if it is still the `old.sealed` given (a row
    /// changed or destroyed meanwhile is left alone), in one transaction; returns how many
    /// rows were replaced.
    async fn reseal_materials(&self, rows: &[(SealedMaterial, Vec<u8>)])
        -> Result<u64, StoreError>;

    /// Bind the store to `binding` if it is bound to no root key yet (atomically: of two
    /// processes binding a fresh store at once, one wins); returns the bindings after.
    async fn bind_root_key(
        &self,
        binding: &RootKeyBinding,
    ) -> Result<Vec<RootKeyBinding>, StoreError>;

    /// Keep a read-model snapshot, and prune all but the newest `SNAPSHOTS_KEPT` (a snapshot
    /// of a sequence already kept is left as it is: two replicas may take the same one).
    async fn put_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError>;

    /// The kept snapshots, newest first, without their bodies' contents checked.
    async fn latest_snapshots(&self) -> Result<Vec<StoredSnapshot>, StoreError>;

    /// The newest kept snapshot covering at most sequence `at_most`, if any (one body read, where
    /// `latest_snapshots` reads them all).
    async fn newest_snapshot(&self, at_most: i64) -> Result<Option<StoredSnapshot>, StoreError>;

    /// A channel that receives a message whenever any process may have appended events, for
    /// followers to catch up at once instead of at their next poll. `None` for a backend without
    /// notifications (SQLite: one process), which callers keep polling.
    async fn subscribe_to_appends(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        Ok(None)
    }
}

/// A root key the store's material is sealed under: its id and key-check value (both derived
/// from the key; neither reveals it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyBinding {
    /// The root key's id.
    pub id: String,
    /// The root key's key-check value.
    pub check_value: String,
}

/// A root key sealed under another root key (the wrap is sealed with purpose `RootKeyWrap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyWrap {
    /// The wrapped key's id.
    pub key_id: String,
    /// The id of the key it is sealed under.
    pub wrapped_under: String,
    /// The sealed key.
    pub sealed: Vec<u8>,
}

/// How many read-model snapshots a store keeps (the newest; one more than one, so that a
/// snapshot that no longer opens, e.g. sealed under a retired root key, still has an older one
/// behind it before a full replay).
pub const SNAPSHOTS_KEPT: i64 = 2;

/// A read-model snapshot as the store keeps it: the event sequence it covers and its body,
/// sealed by the service (the store neither reads nor checks it).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The sequence of the last event the snapshot includes.
    pub sequence: i64,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The sealed body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for StoredSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSnapshot")
            .field("sequence", &self.sequence)
            .field("taken_at", &self.taken_at)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A shared handle on whichever backend was configured.
pub type SharedStore = Arc<dyn EventStore>;

/// `EventStore::commit_visible` and `EventStore::sync` of a synchronous backend, called on a
/// thread that may block (never on a runtime worker).
pub trait BlockingWrites: Send + Sync {
    /// As `EventStore::commit_visible`, blocking the calling thread.
    fn commit_visible_now(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError>;

    /// As `EventStore::sync`, blocking the calling thread.
    fn sync_now(&self) -> Result<(), StoreError>;
}

/// The hash that precedes the first audit record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
