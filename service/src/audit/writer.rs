//! The group-commit writer, a two-stage pipeline. Stage one takes every call's `CommitUnit`
//! (events, sealed material and its audit record) and commits as many as are waiting in one
//! store transaction (`EventStore::commit_visible`); stage two makes what stage one committed
//! durable with one `sync`, applies its events to the read model in sequence order, and only
//! then answers each caller. Batch N+1 is written while batch N reaches the disk, and batch N+2
//! forms from what arrives meanwhile (`PIPELINE_DEPTH`); a call's response never leaves before
//! its record is durable, and an unwritable record fails the call.
//!
//! Each stage is a thread of its own, not a task: both spend their time in the store, and a
//! synchronous store (SQLite, `EventStore::blocking_writes`) is called directly on them, where a
//! task would hand every commit and every sync to the runtime's blocking pool and wait to be
//! woken again (four thread hand-offs per batch, measured as a tenth of the server's CPU at
//! c = 8). An asynchronous store's calls are driven on the stage's thread with the runtime's
//! handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;
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

/// A handle to submit units to the writer's threads; they end when every handle is dropped, after
/// committing what was already submitted.
#[derive(Clone)]
pub struct CommitWriter {
    tx: mpsc::Sender<Pending>,
    metrics: Arc<Metrics>,
    /// Whether the last batch committed without a storage error (readiness).
    last_batch_ok: Arc<AtomicBool>,
    /// Notified when a committed event leaves a multi-Region key in a transient state.
    transient_states: Arc<tokio::sync::Notify>,
}

impl CommitWriter {
    /// Start the writer's two stage threads over `store`, applying committed events to `model`.
    /// Must be called within a tokio runtime (an asynchronous store's calls run on its handle).
    /// The returned task ends when the writer has stopped (every handle dropped and what was
    /// submitted committed), and panics if a stage panicked.
    pub fn start(
        store: SharedStore,
        model: Arc<RwLock<ReadModel>>,
        metrics: Arc<Metrics>,
        materials: Arc<MaterialCache>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let last_batch_ok = Arc::new(AtomicBool::new(true));
        let transient_states = Arc::new(tokio::sync::Notify::new());
        let followers = Followers {
            materials,
            last_batch_ok: last_batch_ok.clone(),
            transient_states: transient_states.clone(),
        };
        let stages = Stages {
            store,
            runtime: Handle::current(),
            metrics: metrics.clone(),
        };
        // Both threads start here, so a server that cannot start them does not start at all.
        let (written_tx, written_rx) = std::sync::mpsc::sync_channel(PIPELINE_DEPTH);
        let finishing = stages.clone();
        let finisher = std::thread::Builder::new()
            .name("trent-sync".into())
            .spawn(move || sync_stage(finishing, model, followers, written_rx))?;
        let (stopped_tx, stopped) = oneshot::channel();
        // Should this spawn fail, `written_tx` is dropped with the closure and the sync thread
        // ends.
        std::thread::Builder::new()
            .name("trent-commit".into())
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    commit_stage(&stages, rx, &written_tx);
                    drop(written_tx);
                    if let Err(panic) = finisher.join() {
                        std::panic::resume_unwind(panic);
                    }
                }));
                let _ = stopped_tx.send(outcome);
            })?;
        let task = tokio::spawn(async move {
            if let Ok(Err(panic)) = stopped.await {
                std::panic::resume_unwind(panic);
            }
        });
        Ok((
            Self {
                tx,
                metrics,
                last_batch_ok,
                transient_states,
            },
            task,
        ))
    }

    /// Notified after a commit that left a multi-Region key in a transient state (Creating,
    /// Updating), which the scheduler then ends.
    pub fn transient_states(&self) -> Arc<tokio::sync::Notify> {
        self.transient_states.clone()
    }

    /// Whether the writer still takes units (for readiness).
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
    /// Notified after a batch that left a multi-Region key Creating or Updating (the scheduler
    /// ends those states).
    transient_states: Arc<tokio::sync::Notify>,
}

/// What both stage threads use: the store, called directly when it is synchronous and on the
/// runtime otherwise, and the metrics they report to.
#[derive(Clone)]
struct Stages {
    store: SharedStore,
    runtime: Handle,
    metrics: Arc<Metrics>,
}

impl Stages {
    /// `commit_visible` on this thread.
    fn commit_visible(
        &self,
        units: Vec<CommitUnit>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        match self.store.blocking_writes() {
            Some(store) => store.commit_visible_now(units),
            None => self.runtime.block_on(self.store.commit_visible(units)),
        }
    }

    /// `sync` on this thread.
    fn sync(&self) -> Result<(), StoreError> {
        match self.store.blocking_writes() {
            Some(store) => store.sync_now(),
            None => self.runtime.block_on(self.store.sync()),
        }
    }
}

/// How many committed batches may wait for their fsync besides the one being synced: none. Stage
/// one hands a batch over only when stage two takes it (a rendezvous), so while one sync runs
/// stage one commits one batch and then waits, and what arrives meanwhile forms the next batch
/// instead of a string of small ones. On SQLite a commit costs the writer about the same for one
/// unit as for several (it writes every page the batch dirtied, and one key's calls share their
/// pages), so fewer, larger commits per sync are cheaper per call: against a depth of 8, batches
/// at c = 32 went from about 3 units to 6-7 and the server's CPU per Encrypt fell 5-11% (see
/// ARCHITECTURE.md, sixth session). A caller waits no longer: its unit could not have joined the
/// running sync either way.
const PIPELINE_DEPTH: usize = 0;

/// A batch committed (visible) but perhaps not durable yet, and the callers waiting for it.
struct Written {
    results: Result<Vec<Result<CommitReceipt, StoreError>>, StoreError>,
    replies: Vec<oneshot::Sender<Result<CommitReceipt, StoreError>>>,
}

/// Stage one: form a batch from what is waiting, commit it, hand it to stage two, and go on with
/// the next batch while stage two makes this one durable. Returns once every handle is dropped
/// (or stage two has stopped).
fn commit_stage(
    stages: &Stages,
    mut rx: mpsc::Receiver<Pending>,
    written_tx: &std::sync::mpsc::SyncSender<Written>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (units, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.unit, p.reply)).unzip();
        let metrics = &stages.metrics;
        metrics.audit_queue_depth.sub(units.len() as i64);
        metrics.audit_batch_size.observe(units.len() as f64);
        let started = std::time::Instant::now();
        let results = stages.commit_visible(units);
        metrics
            .audit_commit_duration
            .observe(started.elapsed().as_secs_f64());
        if written_tx.send(Written { results, replies }).is_err() {
            break;
        }
    }
}

/// Stage two: one `sync` for every batch committed meanwhile, then, batch by batch in commit
/// order, apply the events to the read model and answer the callers. A caller is answered only
/// after a sync that began after its batch committed, so never before its record is durable.
fn sync_stage(
    stages: Stages,
    model: Arc<RwLock<ReadModel>>,
    followers: Followers,
    rx: std::sync::mpsc::Receiver<Written>,
) {
    while let Ok(first) = rx.recv() {
        let mut written = vec![first];
        while let Ok(more) = rx.try_recv() {
            written.push(more);
        }
        let started = std::time::Instant::now();
        let synced = if written.iter().any(|w| w.results.is_ok()) {
            stages.sync()
        } else {
            Ok(())
        };
        stages
            .metrics
            .audit_sync_duration
            .observe(started.elapsed().as_secs_f64());
        for w in written {
            deliver(&stages, &model, &followers, w, &synced);
        }
    }
}

/// Apply one batch's committed events and answer its callers (with the failure, if the batch or
/// the sync after it failed: fail closed).
fn deliver(
    stages: &Stages,
    model: &RwLock<ReadModel>,
    followers: &Followers,
    written: Written,
    synced: &Result<(), StoreError>,
) {
    let Written { results, replies } = written;
    let failure = match (&results, synced) {
        (Err(e), _) => Some(("commit", e.to_string())),
        (Ok(_), Err(e)) => Some(("sync", e.to_string())),
        (Ok(_), Ok(())) => None,
    };
    let healthy = failure.is_none()
        && results.as_ref().is_ok_and(|results| {
            results
                .iter()
                .all(|r| matches!(r, Ok(_) | Err(StoreError::VersionConflict { .. })))
        });
    followers.last_batch_ok.store(healthy, Ordering::Relaxed);
    let mut transient = false;
    if let Ok(results) = &results {
        // Committed is committed: the model follows the store even when the sync failed.
        transient = apply_committed(stages, model, &followers.materials, results);
    }
    match (results, failure) {
        (Ok(results), None) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        (_, failure) => {
            let (stage, message) =
                failure.unwrap_or(("commit", "the batch was not committed".to_string()));
            tracing::error!(error = %message, stage, "batch not durable; failing its calls");
            stages
                .metrics
                .store_errors
                .with_label_values(&[stage])
                .inc();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Database(message.clone())));
            }
        }
    }
    if transient {
        followers.transient_states.notify_one();
    }
}

/// Apply the batch's committed events in sequence order. Events other processes committed before
/// them (several servers may share one PostgreSQL database) are read from the store first, so the
/// model never skips a sequence. True when an applied event starts a transient state.
fn apply_committed(
    stages: &Stages,
    model: &RwLock<ReadModel>,
    materials: &MaterialCache,
    results: &[Result<CommitReceipt, StoreError>],
) -> bool {
    let mut events: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|r| r.events.iter().cloned())
        .collect();
    if events.is_empty() {
        return false;
    }
    events.sort_by_key(|e| e.sequence);
    let last = model.read().map(|m| m.last_sequence()).unwrap_or(0);
    let Some(first) = events.first().map(|e| e.sequence) else {
        return false;
    };
    if first > last + 1 {
        match stages
            .runtime
            .block_on(stages.store.read_events(last, first - 1 - last))
        {
            Ok(mut missing) => {
                missing.append(&mut events);
                events = missing;
            }
            Err(e) => tracing::error!(error = %e, "cannot read the events of other writers"),
        }
    }
    // Compiled before the write lock and held across it, so requests never wait on Cedar.
    let _compiled = crate::domain::read_model::compile_policies_ahead(&events);
    let Ok(mut model) = model.write() else {
        tracing::error!("read model lock poisoned");
        return false;
    };
    // Whoever applied them (this writer, or the follower that read them first), these events
    // were just committed: the scheduler must hear of a transient state they start.
    let transient = events
        .iter()
        .any(crate::domain::read_model::starts_transient_state);
    for event in &events {
        if event.sequence != model.last_sequence() + 1 {
            continue;
        }
        if let Err(e) = model.apply(event) {
            tracing::error!(error = %e, "committed event does not apply to the read model");
        }
        materials.follow(event);
    }
    transient
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize};
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        BlockingWrites, EventStore, KeyUse, LookupHit, LookupQuery, NewAuditRecord, RootKeyBinding,
        RootKeyWrap, SealedMaterial, StoredAuditRecord, StoredEvent, StoredSnapshot,
    };

    /// A store whose syncs take a while and say how far they made the trail durable: a sync
    /// covers the audit records committed before it began, and only once it has returned.
    /// `blocking` chooses which way the writer calls it (as SQLite, or as an asynchronous store).
    struct SlowCommits {
        inner: SqliteStore,
        blocking: bool,
        /// The newest audit sequence committed (visible).
        committed: AtomicI64,
        /// The newest audit sequence a finished sync covers.
        durable: Arc<AtomicI64>,
        /// Batches committed since the running sync began (none while no sync runs).
        commits_during_sync: AtomicUsize,
        /// Whether a sync is running.
        syncing: AtomicBool,
        /// The most batches committed while one sync ran.
        most_commits_during_a_sync: Arc<AtomicUsize>,
    }

    impl SlowCommits {
        fn new(
            inner: SqliteStore,
            blocking: bool,
            durable: Arc<AtomicI64>,
            most_commits_during_a_sync: Arc<AtomicUsize>,
        ) -> Self {
            Self {
                inner,
                blocking,
                committed: AtomicI64::new(0),
                durable,
                commits_during_sync: AtomicUsize::new(0),
                syncing: AtomicBool::new(false),
                most_commits_during_a_sync,
            }
        }

        fn committed(&self, results: &[Result<CommitReceipt, StoreError>]) {
            for sequence in results
                .iter()
                .filter_map(|r| r.as_ref().ok().and_then(|r| r.audit_sequence))
            {
                self.committed.fetch_max(sequence, Ordering::SeqCst);
            }
            if self.syncing.load(Ordering::SeqCst) {
                let n = self.commits_during_sync.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_commits_during_a_sync
                    .fetch_max(n, Ordering::SeqCst);
            }
        }

        fn sync_begins(&self) {
            self.commits_during_sync.store(0, Ordering::SeqCst);
            self.syncing.store(true, Ordering::SeqCst);
        }

        fn sync_ends(&self) {
            self.syncing.store(false, Ordering::SeqCst);
        }
    }

    impl BlockingWrites for SlowCommits {
        fn commit_visible_now(
            &self,
            units: Vec<CommitUnit>,
        ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
            let results = self.inner.commit_visible_now(units)?;
            self.committed(&results);
            Ok(results)
        }

        fn sync_now(&self) -> Result<(), StoreError> {
            let covered = self.committed.load(Ordering::SeqCst);
            self.sync_begins();
            std::thread::sleep(Duration::from_millis(150));
            self.inner.sync_now()?;
            self.durable.fetch_max(covered, Ordering::SeqCst);
            self.sync_ends();
            Ok(())
        }
    }

    #[async_trait]
    impl EventStore for SlowCommits {
        async fn migrate(&self) -> Result<(), StoreError> {
            self.inner.migrate().await
        }
        async fn commit(
            &self,
            units: Vec<CommitUnit>,
        ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
            self.inner.commit(units).await
        }
        async fn commit_visible(
            &self,
            units: Vec<CommitUnit>,
        ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
            let results = self.inner.commit_visible(units).await?;
            self.committed(&results);
            Ok(results)
        }
        async fn sync(&self) -> Result<(), StoreError> {
            let covered = self.committed.load(Ordering::SeqCst);
            self.sync_begins();
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.inner.sync().await?;
            self.durable.fetch_max(covered, Ordering::SeqCst);
            self.sync_ends();
            Ok(())
        }
        fn blocking_writes(&self) -> Option<&dyn BlockingWrites> {
            self.blocking.then_some(self as &dyn BlockingWrites)
        }
        async fn read_events(&self, a: i64, l: i64) -> Result<Vec<StoredEvent>, StoreError> {
            self.inner.read_events(a, l).await
        }
        async fn read_stream(&self, s: &str) -> Result<Vec<StoredEvent>, StoreError> {
            self.inner.read_stream(s).await
        }
        async fn last_event_sequence(&self) -> Result<i64, StoreError> {
            self.inner.last_event_sequence().await
        }
        async fn read_audit(&self, a: i64, l: i64) -> Result<Vec<StoredAuditRecord>, StoreError> {
            self.inner.read_audit(a, l).await
        }
        async fn lookup_audit(&self, q: &LookupQuery) -> Result<Vec<LookupHit>, StoreError> {
            self.inner.lookup_audit(q).await
        }
        async fn key_last_use(&self, k: &str) -> Result<Option<KeyUse>, StoreError> {
            self.inner.key_last_use(k).await
        }
        async fn put_snapshot(&self, s: &StoredSnapshot) -> Result<(), StoreError> {
            self.inner.put_snapshot(s).await
        }
        async fn latest_snapshots(&self) -> Result<Vec<StoredSnapshot>, StoreError> {
            self.inner.latest_snapshots().await
        }
        async fn newest_snapshot(&self, at: i64) -> Result<Option<StoredSnapshot>, StoreError> {
            self.inner.newest_snapshot(at).await
        }
        async fn first_audit_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
            self.inner.first_audit_time().await
        }
        async fn get_material(
            &self,
            k: &str,
            v: i32,
        ) -> Result<Option<SealedMaterial>, StoreError> {
            self.inner.get_material(k, v).await
        }
        async fn destroy_materials(&self, k: &str) -> Result<u64, StoreError> {
            self.inner.destroy_materials(k).await
        }
        async fn probe_write(&self) -> Result<(), StoreError> {
            self.inner.probe_write().await
        }
        async fn holds_data(&self) -> Result<bool, StoreError> {
            self.inner.holds_data().await
        }
        async fn any_material(&self) -> Result<Option<SealedMaterial>, StoreError> {
            self.inner.any_material().await
        }
        async fn root_key_bindings(&self) -> Result<Vec<RootKeyBinding>, StoreError> {
            self.inner.root_key_bindings().await
        }
        async fn retired_root_keys(&self) -> Result<Vec<String>, StoreError> {
            self.inner.retired_root_keys().await
        }
        async fn root_key_wraps(&self) -> Result<Vec<RootKeyWrap>, StoreError> {
            self.inner.root_key_wraps().await
        }
        async fn add_root_key(
            &self,
            b: &RootKeyBinding,
            w: &[RootKeyWrap],
        ) -> Result<(), StoreError> {
            self.inner.add_root_key(b, w).await
        }
        async fn retire_root_key(&self, id: &str) -> Result<(), StoreError> {
            self.inner.retire_root_key(id).await
        }
        async fn material_page(
            &self,
            a: Option<(String, i32)>,
            l: i64,
        ) -> Result<Vec<SealedMaterial>, StoreError> {
            self.inner.material_page(a, l).await
        }
        async fn reseal_materials(
            &self,
            r: &[(SealedMaterial, Vec<u8>)],
        ) -> Result<u64, StoreError> {
            self.inner.reseal_materials(r).await
        }
        async fn bind_root_key(
            &self,
            b: &RootKeyBinding,
        ) -> Result<Vec<RootKeyBinding>, StoreError> {
            self.inner.bind_root_key(b).await
        }
    }

    fn call(n: usize) -> CommitUnit {
        let at = Utc::now();
        CommitUnit {
            audit: Some(NewAuditRecord {
                event_id: format!("e{n}"),
                event_time: at,
                record: format!("{{\"n\":{n}}}"),
                account: "111122223333".into(),
                lookup: vec![("EventName".into(), "Encrypt".into())],
            }),
            ..Default::default()
        }
    }

    /// A writer over a fresh SQLite store wrapped in [`SlowCommits`] (`blocking` as there), with
    /// the directory that holds the store and the store itself, to read back.
    async fn slow_writer(
        blocking: bool,
        durable: Arc<AtomicI64>,
        most_commits_during_a_sync: Arc<AtomicUsize>,
    ) -> (tempfile::TempDir, SqliteStore, CommitWriter) {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteStore::open(&dir.path().join("trent.db")).unwrap();
        inner.migrate().await.unwrap();
        let store: SharedStore = Arc::new(SlowCommits::new(
            inner.clone(),
            blocking,
            durable,
            most_commits_during_a_sync,
        ));
        let (writer, _task) = CommitWriter::start(
            store,
            Arc::new(RwLock::new(ReadModel::default())),
            Arc::new(Metrics::new()),
            Arc::new(MaterialCache::default()),
        )
        .unwrap();
        (dir, inner, writer)
    }

    /// Twenty concurrent calls through a writer whose store syncs slowly: each caller hears back
    /// only once a sync that began after its record was committed has returned, and every
    /// record is in the store by then, in one gap-free chain.
    async fn no_caller_hears_back_before_a_sync_after_its_commit(blocking: bool) {
        let durable = Arc::new(AtomicI64::new(0));
        let (_dir, inner, writer) = slow_writer(blocking, durable.clone(), Arc::default()).await;
        let mut calls = Vec::new();
        for n in 0..20 {
            let writer = writer.clone();
            let durable = durable.clone();
            calls.push(tokio::spawn(async move {
                let receipt = writer.commit(call(n)).await.unwrap();
                let sequence = receipt.audit_sequence.unwrap();
                let covered = durable.load(Ordering::SeqCst);
                assert!(
                    sequence <= covered,
                    "record {sequence} answered when syncs covered only up to {covered}"
                );
                sequence
            }));
        }
        let mut sequences = Vec::new();
        for c in calls {
            let sequence = c.await.unwrap();
            let stored = inner.read_audit(sequence - 1, 1).await.unwrap();
            assert_eq!(
                stored.len(),
                1,
                "record {sequence} is durable when its caller hears"
            );
            sequences.push(sequence);
        }
        sequences.sort();
        assert_eq!(sequences, (1..=20).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_caller_hears_back_before_a_sync_after_its_commit_on_a_blocking_store() {
        no_caller_hears_back_before_a_sync_after_its_commit(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_caller_hears_back_before_a_sync_after_its_commit_on_an_async_store() {
        no_caller_hears_back_before_a_sync_after_its_commit(false).await;
    }

    /// Calls arriving one by one while a slow sync runs: the writer commits at most one batch
    /// during each sync and gathers the rest into the next one, rather than committing each call
    /// as it comes (a batch per call costs SQLite a page write per page it dirties).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_commits_at_most_one_batch_while_a_sync_runs() {
        let most = Arc::new(AtomicUsize::new(0));
        let (_dir, _inner, writer) = slow_writer(true, Arc::default(), most.clone()).await;
        let mut calls = Vec::new();
        for n in 0..30 {
            let writer = writer.clone();
            calls.push(tokio::spawn(async move { writer.commit(call(n)).await }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for c in calls {
            c.await.unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert_eq!(
            most, 1,
            "one batch is committed during a sync (and the 300 ms of calls span at least one sync)"
        );
    }
}
