//! The scheduler: the actions the service takes by itself, driven by the clock. Each tick it
//! (1) catches the read model up with events other processes wrote, (2) deletes keys whose waiting
//! period has passed (KeyDeleted, aliases removed, a `DeleteKey` AwsServiceEvent record, all in one
//! commit) and then destroys their sealed material, (3) finishes crypto-shredding that a crash
//! interrupted, (4) rotates keys whose automatic rotation is due (`RotateKey` record), and (5)
//! destroys imported key material whose ValidTo has passed (`DeleteExpiredKeyMaterial` record),
//! (6) ends the transient states of multi-Region keys (a replica Creating, keys Updating after a
//! change of primary Region: `SynchronizeMultiRegionKey` record), and (7) starts the waiting period
//! of a primary key whose replicas are all deleted (PendingReplicaDeletion to PendingDeletion).
//! Besides its interval, a tick runs as soon as the writer commits an event that starts a
//! transient state, so those last about as long as a commit. Each pass also checks the health of
//! every connected external key store's proxy (`trent_xks_unhealthy_key_stores`).
//! After each tick it takes a read-model snapshot when enough events were applied since the last.
//!
//! Exactly once, even with several processes on one database: every action is an append with the
//! key's expected stream version, so of two processes racing for the same action one commits and the
//! other gets a version conflict and does nothing. After a restart the first tick catches up on
//! everything that fell due meanwhile.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::record::{service_event, stored_record};
use crate::domain::events::{AliasEvent, KeyEvent};
use crate::domain::key::{KeySnapshot, KeyState};
use crate::handlers::rotation::rotation_outcome;
use crate::state::AppState;
use crate::store::{CommitUnit, NewAuditRecord, StoreError, StreamAppend};

/// What one tick did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TickReport {
    /// Keys deleted at the end of their waiting period.
    pub deleted: Vec<String>,
    /// Keys whose sealed material was destroyed.
    pub shredded: Vec<String>,
    /// Keys rotated automatically.
    pub rotated: Vec<String>,
    /// Keys whose imported material expired and was destroyed.
    pub expired: Vec<String>,
    /// Multi-Region keys whose transient state (Creating, Updating) ended.
    pub synchronized: Vec<String>,
    /// Multi-Region primary keys whose waiting period started once their replicas were deleted.
    pub replicas_deleted: Vec<String>,
    /// Connected external key stores whose proxy failed this pass's health check.
    pub unhealthy_key_stores: Vec<String>,
}

/// Errors of a tick (logged by the background loop; the next tick tries again).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Building the action failed.
    #[error("{0}")]
    Action(String),
}

/// Where a test hook may crash the process (honoured only with the test clock).
pub const CRASH_AFTER_DELETION_EVENT: &str = "deletion-event";

/// Run the scheduler every `interval` until `stop` turns true.
pub fn spawn(
    state: std::sync::Arc<AppState>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let transient_states = state.writer.transient_states();
    tokio::spawn(async move {
        // Ticks go over every key: the first waits for the full model, or for the stop.
        tokio::select! {
            loaded = state.warm_up.wait() => if loaded.is_err() { return },
            _ = stop.changed() => return,
        }
        loop {
            if let Err(e) = tick(&state).await {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            if let Err(e) = state.snapshots.take_if_due().await {
                tracing::warn!(error = %e, "taking a read-model snapshot failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = transient_states.notified() => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Follow the events other processes write to a shared database, until `stop`: at once when the
/// store notifies an append (PostgreSQL LISTEN/NOTIFY), and every `interval` regardless.
pub fn spawn_follower(
    state: std::sync::Arc<AppState>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut appends = None;
        loop {
            if appends.is_none() {
                appends = match state.store.subscribe_to_appends().await {
                    Ok(channel) => channel,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for appends; polling only");
                        None
                    }
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                woke = next_append(&mut appends) => {
                    if !woke {
                        appends = None;
                    }
                }
                _ = stop.changed() => return,
            }
            if let Err(e) = catch_up(&state).await {
                tracing::warn!(error = %e, "following the event table failed");
            }
            crate::root_binding::refresh(&state.store, &state.root_key, &state.materials).await;
        }
    })
}

/// Wait for the next append notification: true when one came, false when the channel closed;
/// without a channel, never returns (the poll interval decides).
async fn next_append(appends: &mut Option<tokio::sync::mpsc::Receiver<()>>) -> bool {
    match appends {
        Some(rx) => rx.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// Bring the read model up to date with events written by other processes.
pub async fn catch_up(state: &AppState) -> Result<(), SchedulerError> {
    loop {
        let after = state
            .read_model()
            .map_err(|e| SchedulerError::Action(e.to_string()))?
            .last_sequence();
        let events = state.store.read_events(after, 1000).await?;
        if events.is_empty() {
            return Ok(());
        }
        // A writer's batch is visible before it is durable (its writer answers its callers only
        // after a sync): make what was read durable before the model shows it, so a crash of
        // the database can never take back an event some replica already applied.
        state.store.sync().await?;
        let Ok(mut model) = state.model.write() else {
            return Err(SchedulerError::Action("read model lock poisoned".into()));
        };
        let mut transient = false;
        for event in &events {
            if event.sequence == model.last_sequence() + 1 {
                if let Err(e) = model.apply(event) {
                    tracing::error!(error = %e, "event from the store does not apply");
                }
                state.materials.follow(event);
                transient |= crate::domain::read_model::starts_transient_state(event);
            }
        }
        if transient {
            state.writer.transient_states().notify_one();
        }
        // An event that does not apply would otherwise be read again forever.
        if model.last_sequence() == after {
            return Err(SchedulerError::Action(format!(
                "event {} does not apply to the read model",
                after + 1
            )));
        }
    }
}

/// One pass over every key.
pub async fn tick(state: &AppState) -> Result<TickReport, SchedulerError> {
    // Its passes go over every key: they wait for the full model.
    state
        .warm_up
        .wait()
        .await
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    catch_up(state).await?;
    let now = state.clock.now();
    let Due {
        deletion: due_deletion,
        unshredded,
        rotation: due_rotation,
    } = due_actions(state, now)?;
    let mut report = TickReport::default();
    for (key, aliases) in due_deletion {
        if delete_key(state, &key, &aliases, now).await? {
            report.deleted.push(key.key_id.clone());
            state
                .metrics
                .scheduler_actions
                .with_label_values(&["DeleteKey"])
                .inc();
            crash_hook(state, CRASH_AFTER_DELETION_EVENT);
            // A replica's material is its primary's, which outlives every replica.
            if key.owns_material() && shred(state, &key, now).await? {
                report.shredded.push(key.key_id.clone());
            }
        }
    }
    for key in unshredded {
        if shred(state, &key, now).await? {
            report.shredded.push(key.key_id.clone());
            state
                .metrics
                .scheduler_actions
                .with_label_values(&["ShredMaterial"])
                .inc();
        }
    }
    for key in due_rotation {
        if rotate(state, &key, now).await? {
            report.rotated.push(key.key_id.clone());
            state
                .metrics
                .scheduler_actions
                .with_label_values(&["RotateKey"])
                .inc();
        }
    }
    for key in due_expiry(state, now)? {
        if expire_imported_material(state, &key, now).await? {
            report.expired.push(key.key_id.clone());
            state
                .metrics
                .scheduler_actions
                .with_label_values(&["DeleteExpiredKeyMaterial"])
                .inc();
        }
    }
    for key in due_multi_region(state, |k| {
        matches!(k.state, KeyState::Creating | KeyState::Updating)
    })? {
        if synchronize(state, &key, now).await? {
            report.synchronized.push(key.arn());
            state
                .metrics
                .scheduler_actions
                .with_label_values(&["SynchronizeMultiRegionKey"])
                .inc();
        }
    }
    for key in primaries_without_replicas(state)? {
        if start_primary_deletion(state, &key, now).await? {
            report.replicas_deleted.push(key.arn());
        }
    }
    report.unhealthy_key_stores =
        crate::handlers::custom_key_stores::check_connected_stores(state).await;
    // An action lost to another process is visible once its events are read.
    catch_up(state).await?;
    Ok(report)
}

/// Keys whose scheduled action is due.
struct Due {
    /// Pending deletion past its date, with the (stream, version) of each of their aliases.
    deletion: Vec<(KeySnapshot, Vec<(String, i64)>)>,
    /// Deleted keys whose material is not destroyed yet.
    unshredded: Vec<KeySnapshot>,
    /// Enabled keys past their next automatic rotation.
    rotation: Vec<KeySnapshot>,
}

/// What the read model says is due at `now`.
fn due_actions(state: &AppState, now: DateTime<Utc>) -> Result<Due, SchedulerError> {
    let model = state
        .read_model()
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    let mut due_deletion = Vec::new();
    let mut unshredded = Vec::new();
    let mut due_rotation = Vec::new();
    for key in model.all_keys() {
        if !key.is_live() {
            // A replica's material is its primary's, which outlives every replica.
            if !key.materials_destroyed && key.owns_material() {
                unshredded.push(key.clone());
            }
        } else if key.state == KeyState::PendingDeletion
            && key.deletion_date.is_some_and(|d| d <= now)
        {
            let aliases: Vec<(String, i64)> = model
                .aliases_of(key)
                .map(|a| {
                    let stream = AliasEvent::stream_for(&a.account, &a.region, &a.name);
                    let version = model.alias_stream_version(&stream);
                    (stream, version)
                })
                .collect();
            due_deletion.push((key.clone(), aliases));
        } else if key.state == KeyState::Enabled
            && !key.is_replica()
            && key
                .rotation
                .as_ref()
                .is_some_and(|r| r.next_rotation_date <= now)
        {
            due_rotation.push(key.clone());
        }
    }
    Ok(Due {
        deletion: due_deletion,
        unshredded,
        rotation: due_rotation,
    })
}

fn crash_hook(state: &AppState, point: &str) {
    if state.test_clock.is_some() && std::env::var("TRENT_TEST_CRASH_AFTER").as_deref() == Ok(point)
    {
        tracing::warn!(point, "test hook: crashing now");
        std::process::abort();
    }
}

fn audit(
    event_name: &str,
    key: &KeySnapshot,
    at: DateTime<Utc>,
    extra: Option<serde_json::Value>,
) -> NewAuditRecord {
    let event_id = crate::audit::record::new_event_id(at);
    stored_record(
        &service_event(&event_id, event_name, at, &key.arn(), extra),
        at,
    )
}

fn encode(event: KeyEvent) -> Result<crate::store::NewEvent, SchedulerError> {
    event
        .to_new_event()
        .map_err(|e| SchedulerError::Action(e.to_string()))
}

/// Commit a unit; `Ok(false)` when another writer got there first.
async fn commit(state: &AppState, unit: CommitUnit) -> Result<bool, SchedulerError> {
    match state.writer.commit(unit).await {
        Ok(_) => Ok(true),
        Err(StoreError::VersionConflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn delete_key(
    state: &AppState,
    key: &KeySnapshot,
    aliases: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let mut unit = CommitUnit {
        appends: vec![StreamAppend {
            stream: key.stream(),
            expected_version: key.stream_version,
            events: vec![encode(KeyEvent::KeyDeleted { schema: 1, at: now })?],
        }],
        audit: Some(audit("DeleteKey", key, now, None)),
        ..Default::default()
    };
    for (stream, version) in aliases {
        let deleted = AliasEvent::AliasDeleted { schema: 1, at: now }
            .to_new_event()
            .map_err(|e| SchedulerError::Action(e.to_string()))?;
        unit.appends.push(StreamAppend {
            stream: stream.clone(),
            expected_version: *version,
            events: vec![deleted],
        });
    }
    let done = commit(state, unit).await?;
    if done {
        tracing::info!(key_id = %key.key_id, "key deleted at the end of its waiting period");
    }
    Ok(done)
}

/// Destroy a deleted key's sealed material and record that it is gone, in one commit (the
/// material is gone exactly when the event that says so is).
async fn shred(
    state: &AppState,
    key: &KeySnapshot,
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let (stream_version, versions) = state
        .read_model()
        .map_err(|e| SchedulerError::Action(e.to_string()))?
        .key(&key.identity())
        .map(|k| (k.stream_version, k.stored_material_versions()))
        .unwrap_or_default();
    let unit = CommitUnit {
        destroy_materials: vec![key.material_owner()],
        appends: vec![StreamAppend {
            stream: key.stream(),
            expected_version: stream_version,
            events: vec![encode(KeyEvent::KeyMaterialDestroyed {
                schema: 1,
                versions,
                at: now,
            })?],
        }],
        ..Default::default()
    };
    commit(state, unit).await
}

async fn rotate(
    state: &AppState,
    key: &KeySnapshot,
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let Some(schedule) = &key.rotation else {
        return Ok(false);
    };
    let period = Duration::days(schedule.period_days);
    // After downtime longer than a period the key rotates once, and the schedule restarts.
    let next = if schedule.next_rotation_date + period > now {
        schedule.next_rotation_date + period
    } else {
        now + period
    };
    let (outcome, info) = rotation_outcome(state, key, "AUTOMATIC", Some(next), now)
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    let mut unit = outcome.unit;
    unit.audit = Some(audit(
        "RotateKey",
        key,
        now,
        Some(serde_json::json!({ "keyMaterialId": info.material_id })),
    ));
    commit(state, unit).await
}

/// Live multi-Region keys that `pick` selects.
fn due_multi_region(
    state: &AppState,
    pick: impl Fn(&KeySnapshot) -> bool,
) -> Result<Vec<KeySnapshot>, SchedulerError> {
    let model = state
        .read_model()
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    Ok(model
        .all_keys()
        .filter(|k| k.is_live() && k.multi_region && pick(k))
        .cloned()
        .collect())
}

/// Primary keys in PendingReplicaDeletion whose replicas are all deleted.
fn primaries_without_replicas(state: &AppState) -> Result<Vec<KeySnapshot>, SchedulerError> {
    let model = state
        .read_model()
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    Ok(model
        .all_keys()
        .filter(|k| k.is_live() && k.state == KeyState::PendingReplicaDeletion)
        .filter(|k| {
            !model
                .multi_region_keys(&k.key_id)
                .any(|other| other.region != k.region && other.is_live())
        })
        .cloned()
        .collect())
}

/// End a multi-Region key's transient state, with a `SynchronizeMultiRegionKey` record (the
/// AwsServiceEvent CloudTrail shows when AWS KMS synchronizes related multi-Region keys).
async fn synchronize(
    state: &AppState,
    key: &KeySnapshot,
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let unit = CommitUnit {
        appends: vec![StreamAppend {
            stream: key.stream(),
            expected_version: key.stream_version,
            events: vec![encode(KeyEvent::MultiRegionKeySynchronized {
                schema: 1,
                at: now,
            })?],
        }],
        audit: Some(audit("SynchronizeMultiRegionKey", key, now, None)),
        ..Default::default()
    };
    commit(state, unit).await
}

/// The replicas of a primary pending deletion are gone: its own waiting period starts now.
async fn start_primary_deletion(
    state: &AppState,
    key: &KeySnapshot,
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let days = key.pending_window_days.unwrap_or(30);
    let unit = CommitUnit {
        appends: vec![StreamAppend {
            stream: key.stream(),
            expected_version: key.stream_version,
            events: vec![encode(KeyEvent::KeyDeletionScheduled {
                schema: 1,
                deletion_date: now + Duration::days(days),
                pending_window_days: days,
                at: now,
            })?],
        }],
        ..Default::default()
    };
    let done = commit(state, unit).await?;
    if done {
        tracing::info!(key_id = %key.key_id, region = %key.region, "replicas deleted; the primary key's waiting period starts");
    }
    Ok(done)
}

/// Live keys whose imported material is present and past its ValidTo.
fn due_expiry(state: &AppState, now: DateTime<Utc>) -> Result<Vec<KeySnapshot>, SchedulerError> {
    let model = state
        .read_model()
        .map_err(|e| SchedulerError::Action(e.to_string()))?;
    Ok(model
        .all_keys()
        .filter(|k| k.is_live())
        .filter(|k| {
            k.imported
                .as_ref()
                .is_some_and(|i| i.present && i.valid_to.is_some_and(|t| t <= now))
        })
        .cloned()
        .collect())
}

/// Destroy expired imported material (the key goes back to PendingImport) with a
/// `DeleteExpiredKeyMaterial` record, in one commit at the key's expected version: of two
/// processes only one destroys and records the expiry.
async fn expire_imported_material(
    state: &AppState,
    key: &KeySnapshot,
    now: DateTime<Utc>,
) -> Result<bool, SchedulerError> {
    let events = crate::handlers::import::destroy_imported_material(key, true, now);
    let unit = CommitUnit {
        destroy_materials: vec![key.material_owner()],
        appends: vec![StreamAppend {
            stream: key.stream(),
            expected_version: key.stream_version,
            events: events.into_iter().map(encode).collect::<Result<_, _>>()?,
        }],
        audit: Some(audit("DeleteExpiredKeyMaterial", key, now, None)),
        ..Default::default()
    };
    let done = commit(state, unit).await?;
    if done {
        tracing::info!(key_id = %key.key_id, "imported key material expired and was destroyed");
    }
    Ok(done)
}
