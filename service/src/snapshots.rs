//! Read-model snapshots: loading the read model at start-up from the newest snapshot that opens
//! plus the events after it (or from every event when none does), and taking snapshots while the
//! service runs (every `every` events, from the scheduler) and at shutdown.
//!
//! A snapshot is the read model's image (`ReadModel::to_image`) sealed under the root key with
//! purpose `ReadModelSnapshot`, bound to the sequence it covers. Start-up trusts what it loads
//! (key policies decide authorization), so a snapshot the store could alter would be a way around
//! the append-only event log: sealing makes an altered, relabelled or foreign snapshot fail to
//! open, and start-up then falls back to the next one or to a full replay. Snapshots are a cache:
//! the event log stays the truth, and `trent replay --verify` checks that each kept snapshot
//! plus the events after it equals a replay of every event.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;

use crate::crypto::keyring::RootKeyring;
use crate::crypto::root_key::SealPurpose;
use crate::crypto::secret::SecretBytes;
use crate::domain::read_model::{ProjectionError, ReadModel};
use crate::domain::snapshot::ImageError;
use crate::store::{SharedStore, StoreError, StoredSnapshot};

/// Events between two snapshots taken while serving, unless configured otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: i64 = 10_000;

/// Events read from the store per page while loading.
const PAGE: i64 = 1000;

/// Why a read model could not be loaded or a snapshot taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An event does not apply.
    #[error("{0}")]
    Projection(#[from] ProjectionError),
    /// The model does not turn into an image.
    #[error("{0}")]
    Image(#[from] ImageError),
    /// Sealing failed (no active root key).
    #[error("sealing the snapshot failed")]
    Seal,
    /// The blocking task that built the snapshot did not finish.
    #[error("the snapshot task failed: {0}")]
    Task(String),
}

/// A read model as start-up loaded it.
#[derive(Debug)]
pub struct Loaded {
    /// The model, current with the store.
    pub model: ReadModel,
    /// The sequence of the snapshot it started from (None: every event was replayed).
    pub snapshot: Option<i64>,
    /// How many events were applied after the snapshot (or in all).
    pub events_applied: i64,
}

/// What the sealed snapshot of `sequence` is bound to.
fn binding(sequence: i64) -> String {
    format!("read-model-snapshot/{sequence}")
}

/// Apply every stored event after the model's last sequence; returns how many were applied.
pub async fn catch_up_from_store(
    store: &SharedStore,
    model: &mut ReadModel,
) -> Result<i64, SnapshotError> {
    catch_up_until(store, model, i64::MAX).await
}

/// Apply the stored events after the model's last sequence up to `until` (inclusive); returns
/// how many were applied.
pub async fn catch_up_until(
    store: &SharedStore,
    model: &mut ReadModel,
    until: i64,
) -> Result<i64, SnapshotError> {
    let mut applied = 0;
    loop {
        let limit = PAGE.min(until.saturating_sub(model.last_sequence()));
        if limit <= 0 {
            return Ok(applied);
        }
        let events = store.read_events(model.last_sequence(), limit).await?;
        if events.is_empty() {
            return Ok(applied);
        }
        for event in &events {
            model.apply(event)?;
        }
        applied += events.len() as i64;
    }
}

/// Project every stored event into a fresh read model (no snapshot).
pub async fn replay_all(store: &SharedStore) -> Result<ReadModel, SnapshotError> {
    let mut model = ReadModel::default();
    catch_up_from_store(store, &mut model).await?;
    Ok(model)
}

/// Open a stored snapshot into a model, or say why it does not open.
pub fn open(root_key: &RootKeyring, snapshot: &StoredSnapshot) -> Result<ReadModel, String> {
    let image = root_key
        .open_token(
            SealPurpose::ReadModelSnapshot,
            &binding(snapshot.sequence),
            &snapshot.body,
        )
        .map_err(|_| "it does not open under any current root key".to_string())?;
    let model = ReadModel::from_image(image.as_slice()).map_err(|e| e.to_string())?;
    if model.last_sequence() != snapshot.sequence {
        return Err(format!(
            "it says it covers sequence {}, not {}",
            model.last_sequence(),
            snapshot.sequence
        ));
    }
    Ok(model)
}

/// The newest stored snapshot that opens, with the events after it applied; a full replay when
/// none opens (each one passed over is logged with the reason).
pub async fn load(
    store: &SharedStore,
    root_key: &Arc<RootKeyring>,
) -> Result<Loaded, SnapshotError> {
    load_until(store, root_key, i64::MAX).await
}

/// `load`, as of sequence `until`: snapshots covering more are passed over, and no event after
/// it is applied.
pub async fn load_until(
    store: &SharedStore,
    root_key: &Arc<RootKeyring>,
    until: i64,
) -> Result<Loaded, SnapshotError> {
    let mut at_most = until;
    while let Some(snapshot) = store.newest_snapshot(at_most).await? {
        at_most = snapshot.sequence - 1;
        let opened = {
            let root_key = root_key.clone();
            tokio::task::spawn_blocking(move || {
                open(&root_key, &snapshot).map_err(|why| (snapshot.sequence, why))
            })
            .await
            .map_err(|e| SnapshotError::Task(e.to_string()))?
        };
        match opened {
            Ok(mut model) => {
                let from = model.last_sequence();
                let events_applied = catch_up_until(store, &mut model, until).await?;
                return Ok(Loaded {
                    model,
                    snapshot: Some(from),
                    events_applied,
                });
            }
            Err((sequence, why)) => {
                tracing::warn!(sequence, reason = %why, "read-model snapshot passed over");
            }
        }
    }
    let mut model = ReadModel::default();
    catch_up_until(store, &mut model, until).await?;
    let events_applied = model.last_sequence();
    Ok(Loaded {
        model,
        snapshot: None,
        events_applied,
    })
}

/// Takes snapshots of one process's read model.
pub struct Snapshotter {
    store: SharedStore,
    root_key: Arc<RootKeyring>,
    model: Arc<RwLock<ReadModel>>,
    /// Events between two snapshots taken while serving.
    every: i64,
    /// The sequence of the newest snapshot this process loaded or took.
    last: AtomicI64,
}

impl Snapshotter {
    /// A snapshotter for `model`, whose newest snapshot is at `last` (0: none).
    pub fn new(
        store: SharedStore,
        root_key: Arc<RootKeyring>,
        model: Arc<RwLock<ReadModel>>,
        every: i64,
        last: i64,
    ) -> Self {
        Self {
            store,
            root_key,
            model,
            every: every.max(1),
            last: AtomicI64::new(last),
        }
    }

    /// Note that the model in place was loaded from the snapshot at `sequence`.
    pub fn loaded_from(&self, sequence: i64) {
        self.last.fetch_max(sequence, Ordering::Relaxed);
    }

    /// Take a snapshot if at least `every` events were applied since the last one.
    pub async fn take_if_due(&self) -> Result<Option<i64>, SnapshotError> {
        let current = self.model.read().map(|m| m.last_sequence()).unwrap_or(0);
        if current - self.last.load(Ordering::Relaxed) < self.every {
            return Ok(None);
        }
        self.take().await
    }

    /// Take a snapshot of the model as it is now, unless it covers nothing newer than the last
    /// one; returns the sequence it covers.
    pub async fn take(&self) -> Result<Option<i64>, SnapshotError> {
        // A copy of the maps (the keys themselves are shared), so that requests and the writer
        // wait on the lock only for the copy, not for serialising and sealing.
        let model = match self.model.read() {
            // Only the keys loaded so far: the full model's snapshot comes once it is in place.
            Ok(m) if !m.is_complete() => return Ok(None),
            Ok(m) => m.clone(),
            Err(_) => return Err(SnapshotError::Task("read model lock poisoned".into())),
        };
        let sequence = model.last_sequence();
        if sequence == 0 || sequence <= self.last.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let root_key = self.root_key.clone();
        let body = tokio::task::spawn_blocking(move || {
            let image = SecretBytes::new(model.to_image()?);
            root_key
                .seal_token(SealPurpose::ReadModelSnapshot, &binding(sequence), &image)
                .map_err(|_| SnapshotError::Seal)
        })
        .await
        .map_err(|e| SnapshotError::Task(e.to_string()))??;
        self.store
            .put_snapshot(&StoredSnapshot {
                sequence,
                taken_at: Utc::now(),
                body,
            })
            .await?;
        self.last.fetch_max(sequence, Ordering::Relaxed);
        tracing::info!(sequence, "read-model snapshot taken");
        Ok(Some(sequence))
    }
}
