//! The group-commit writer: one task takes every call's `CommitUnit` (events, sealed material and
//! its audit record), commits as many as are waiting in one store transaction, applies the committed
//! events to the read model in sequence order, and only then answers each caller. A call's response
//! therefore never leaves before its record is durable, and an unwritable record fails the call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::read_model::ReadModel;
use crate::materials::MaterialCache;
use crate::metrics::Metrics;
use crate::store::{CommitReceipt, CommitUnit, SharedStore, StoreError};

/// The most units committed in one transaction.
pub const MAX_BATCH: usize = 256;

struct Pending {
    unit: CommitUnit,
    reply: oneshot::Sender<Result<CommitReceipt, StoreError>>,
}

/// A handle to submit units to the writer task; the task ends when every handle is dropped, after
/// committing what was already submitted.
#[derive(Clone)]
pub struct CommitWriter {
    tx: mpsc::Sender<Pending>,
    metrics: Arc<Metrics>,
    /// Whether the last batch committed without a storage error (readiness).
    last_batch_ok: Arc<AtomicBool>,
}

impl CommitWriter {
    /// Start the writer task over `store`, applying committed events to `model`.
    pub fn start(
        store: SharedStore,
        model: Arc<RwLock<ReadModel>>,
        metrics: Arc<Metrics>,
        materials: Arc<MaterialCache>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let last_batch_ok = Arc::new(AtomicBool::new(true));
        let followers = Followers {
            materials,
            last_batch_ok: last_batch_ok.clone(),
        };
        let handle = tokio::spawn(run(store, model, metrics.clone(), followers, rx));
        (
            Self {
                tx,
                metrics,
                last_batch_ok,
            },
            handle,
        )
    }

    /// Whether the writer task still takes units (for readiness).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Whether the last batch committed without a storage error (a lost race is not one).
    pub fn last_batch_ok(&self) -> bool {
        self.last_batch_ok.load(Ordering::Relaxed)
    }

    /// Record that the store takes writes again (a readiness probe write succeeded).
    pub fn mark_store_writable(&self) {
        self.last_batch_ok.store(true, Ordering::Relaxed);
    }

    /// Commit one unit; returns once it is durable (or failed).
    pub async fn commit(&self, unit: CommitUnit) -> Result<CommitReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.metrics.audit_queue_depth.inc();
        self.tx
            .send(Pending { unit, reply })
            .await
            .map_err(|_| StoreError::Database("the audit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the audit writer dropped the request".into()))?
    }
}

/// What the writer keeps current besides the read model, after each commit.
struct Followers {
    /// The sealed-material cache (forgets destroyed material).
    materials: Arc<MaterialCache>,
    /// Whether the last batch committed without a storage error.
    last_batch_ok: Arc<AtomicBool>,
}

async fn run(
    store: SharedStore,
    model: Arc<RwLock<ReadModel>>,
    metrics: Arc<Metrics>,
    followers: Followers,
    mut rx: mpsc::Receiver<Pending>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (units, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.unit, p.reply)).unzip();
        metrics.audit_queue_depth.sub(units.len() as i64);
        metrics.audit_batch_size.observe(units.len() as f64);
        let started = std::time::Instant::now();
        let committed = store.commit(units).await;
        metrics
            .audit_commit_duration
            .observe(started.elapsed().as_secs_f64());
        let healthy = committed.as_ref().is_ok_and(|results| {
            results
                .iter()
                .all(|r| matches!(r, Ok(_) | Err(StoreError::VersionConflict { .. })))
        });
        followers.last_batch_ok.store(healthy, Ordering::Relaxed);
        match committed {
            Ok(results) => {
                apply_committed(&store, &model, &followers.materials, &results).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; failing the calls of the batch");
                metrics.store_errors.with_label_values(&["commit"]).inc();
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Database(message.clone())));
                }
            }
        }
    }
}

/// Apply the batch's committed events in sequence order. Events other processes committed before
/// them (several servers may share one PostgreSQL database) are read from the store first, so the
/// model never skips a sequence.
async fn apply_committed(
    store: &SharedStore,
    model: &RwLock<ReadModel>,
    materials: &MaterialCache,
    results: &[Result<CommitReceipt, StoreError>],
) {
    let mut events: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|r| r.events.iter().cloned())
        .collect();
    if events.is_empty() {
        return;
    }
    events.sort_by_key(|e| e.sequence);
    let last = model.read().map(|m| m.last_sequence()).unwrap_or(0);
    let Some(first) = events.first().map(|e| e.sequence) else {
        return;
    };
    if first > last + 1 {
        match store.read_events(last, first - 1 - last).await {
            Ok(mut missing) => {
                missing.append(&mut events);
                events = missing;
            }
            Err(e) => tracing::error!(error = %e, "cannot read the events of other writers"),
        }
    }
    let Ok(mut model) = model.write() else {
        tracing::error!("read model lock poisoned");
        return;
    };
    for event in &events {
        if event.sequence != model.last_sequence() + 1 {
            continue;
        }
        if let Err(e) = model.apply(event) {
            tracing::error!(error = %e, "committed event does not apply to the read model");
        }
        materials.follow(event);
    }
}
