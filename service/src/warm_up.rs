//! Serving while the read model warms up.
//!
//! A server listens as soon as its store is open. Its read model starts empty and warming
//! (`ReadModel::warming`, positioned after the store's newest event) while `complete` loads the
//! full model in the background (the newest snapshot plus the events after it, exactly what
//! start-up loaded before) and puts it in place once it has caught up. Meanwhile `prepare` runs
//! before each KMS call: a call that names its keys (the cryptographic operations, DescribeKey,
//! GetPublicKey) has each single-Region key and alias it names read from its own stream, so it
//! is answered at once with the same state the full model would give; every other call (lists,
//! key changes, multi-Region keys, custom key stores, calls whose policies test the key's
//! aliases) waits until the full model is in place. So start-up time no longer grows with the
//! number of keys, while no call ever sees a partial view it could get wrong.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use base64::Engine;
use serde_json::Value;

use crate::crypto::keyring::RootKeyring;
use crate::domain::read_model::ReadModel;
use crate::domain::warming::Adopted;
use crate::handlers::CallContext;
use crate::protocol::{KmsError, Operation};
use crate::snapshots::{SnapshotError, Snapshotter};
use crate::state::AppState;
use crate::store::SharedStore;

/// Loads of one stream before a call stops trying and waits for the full model (each retry
/// follows an event that changed the stream while it was read).
const LOAD_ATTEMPTS: usize = 8;

/// Where the warm-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The full model is loading.
    Warming,
    /// The full model is in place.
    Complete,
    /// The full model did not load (the server stops).
    Failed,
}

/// Whether the full read model is in place, for whoever must wait for it.
pub struct WarmUp {
    phase: tokio::sync::watch::Sender<Phase>,
    /// Testing only: while true, the full model, once loaded, waits before it catches up and
    /// takes the warming one's place (so tests can act while the model warms up).
    held: tokio::sync::watch::Sender<bool>,
}

impl WarmUp {
    /// A signal that is `complete` already (a model loaded before serving) or not yet.
    pub fn new(complete: bool) -> Self {
        let phase = if complete {
            Phase::Complete
        } else {
            Phase::Warming
        };
        Self {
            phase: tokio::sync::watch::Sender::new(phase),
            held: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Testing only: hold the warm-up (before it catches up) until `release`.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Testing only: let a held warm-up go on.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    async fn until_released(&self) {
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|h| !*h).await;
    }

    /// Whether the full model is in place.
    pub fn is_complete(&self) -> bool {
        *self.phase.borrow() == Phase::Complete
    }

    /// Whether the full model failed to load.
    pub fn has_failed(&self) -> bool {
        *self.phase.borrow() == Phase::Failed
    }

    /// Wait until the full model is in place; an internal error if it failed to load.
    pub async fn wait(&self) -> Result<(), KmsError> {
        let mut phase = self.phase.subscribe();
        let reached = phase.wait_for(|p| *p != Phase::Warming).await.map(|p| *p);
        match reached {
            Ok(Phase::Complete) => Ok(()),
            _ => Err(KmsError::KmsInternal(
                "The service could not load its keys.".into(),
            )),
        }
    }

    fn finish(&self) {
        self.phase.send_replace(Phase::Complete);
    }

    /// The full model did not load: wake every waiter with an error.
    pub fn fail(&self) {
        self.phase.send_if_modified(|p| {
            let warming = *p == Phase::Warming;
            if warming {
                *p = Phase::Failed;
            }
            warming
        });
    }
}

/// What a warm-up achieved (for the log line and the bench).
#[derive(Debug, Clone)]
pub struct Completed {
    /// Keys in the full model.
    pub keys: usize,
    /// The snapshot it started from (None: every event was replayed).
    pub snapshot: Option<i64>,
    /// Events applied after the snapshot, including those that arrived while loading.
    pub events_applied: i64,
    /// Seconds from the start of the warm-up until the full model was in place.
    pub seconds: f64,
}

/// Load the full model and put it in place of the warming one in `model`, then tell `warm_up`.
pub async fn complete(
    store: &SharedStore,
    root_key: &Arc<RootKeyring>,
    model: &Arc<RwLock<ReadModel>>,
    warm_up: &WarmUp,
    snapshots: &Snapshotter,
) -> Result<Completed, SnapshotError> {
    let started = Instant::now();
    let position = |model: &Arc<RwLock<ReadModel>>| {
        model
            .read()
            .map(|m| m.last_sequence())
            .map_err(|_| SnapshotError::Task("read model lock poisoned".into()))
    };
    let head = position(model)?;
    let loaded = crate::snapshots::load_until(store, root_key, head).await?;
    warm_up.until_released().await;
    let mut full = loaded.model;
    let mut events_applied = loaded.events_applied;
    loop {
        let live = position(model)?;
        if full.last_sequence() < live {
            events_applied += crate::snapshots::catch_up_until(store, &mut full, live).await?;
            continue;
        }
        {
            let mut warming = model
                .write()
                .map_err(|_| SnapshotError::Task("read model lock poisoned".into()))?;
            if warming.complete_with(&mut full) {
                break;
            }
        }
        // The events the live model is yet to apply are committed already: it gets there soon.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    if let Some(sequence) = loaded.snapshot {
        snapshots.loaded_from(sequence);
    }
    warm_up.finish();
    let keys = model.read().map(|m| m.key_count()).unwrap_or(0);
    Ok(Completed {
        keys,
        snapshot: loaded.snapshot,
        events_applied,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Before a KMS call runs: while the model warms up, load the keys and aliases the call names,
/// or wait for the full model when the call needs more than those (see the module comment).
pub async fn prepare(state: &AppState, ctx: &CallContext, input: &Value) -> Result<(), KmsError> {
    if state.warm_up.is_complete() {
        return Ok(());
    }
    let named = if crate::handlers::identity_policies_test_resource_aliases(&ctx.principal) {
        None
    } else {
        named_keys(ctx.op, input)
    };
    let mut ready = named.is_some();
    for name in named.into_iter().flatten() {
        if !ready {
            break;
        }
        ready = match target(ctx, &name) {
            None => true,
            Some(Target::Key(id)) => load_key(state, &id).await,
            Some(Target::Alias(stream)) => match load_alias(state, &stream).await {
                Loaded::Target(id) => load_key(state, &id).await,
                Loaded::Nothing => true,
                Loaded::Wait => false,
            },
        };
    }
    if !ready {
        state.warm_up.wait().await?;
    }
    Ok(())
}

/// The key names (KeyId members, and the key a ciphertext blob embeds) a call's work is limited
/// to, or None when it needs the full model.
fn named_keys(op: Operation, input: &Value) -> Option<Vec<String>> {
    use Operation::*;
    let member = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_string);
    let names = match op {
        Encrypt
        | GenerateDataKey
        | GenerateDataKeyWithoutPlaintext
        | GenerateDataKeyPair
        | GenerateDataKeyPairWithoutPlaintext
        | Sign
        | Verify
        | GenerateMac
        | VerifyMac
        | DescribeKey
        | GetPublicKey
        | DeriveSharedSecret
        | Encapsulate
        | Decapsulate => {
            vec![member("KeyId")?]
        }
        Decrypt => [member("KeyId"), embedded_key_id(input)]
            .into_iter()
            .flatten()
            .collect(),
        ReEncrypt => [
            member("SourceKeyId"),
            member("DestinationKeyId"),
            embedded_key_id(input),
        ]
        .into_iter()
        .flatten()
        .collect(),
        GenerateRandom if input.get("CustomKeyStoreId").is_none() => Vec::new(),
        _ => return None,
    };
    Some(names)
}

/// The key id a ciphertext blob of this service embeds, if the blob is one.
fn embedded_key_id(input: &Value) -> Option<String> {
    let text = input.get("CiphertextBlob")?.as_str()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    crate::crypto::ciphertext::parse_header(&blob)
        .ok()
        .map(|h| h.key_id)
}

/// What a key name refers to, as far as loading goes.
enum Target {
    /// A key id (single-Region, or a multi-Region one that only the full model has).
    Key(String),
    /// An alias's stream.
    Alias(String),
}

/// The key or alias a KeyId names in the caller's account and Region; None for a name the
/// handler refuses anyway (a malformed ARN, another Region), which needs nothing loaded.
fn target(ctx: &CallContext, name: &str) -> Option<Target> {
    use crate::domain::events::AliasEvent;
    if let Some(rest) = name.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [_, "kms", region, account, resource] = parts.as_slice() else {
            return None;
        };
        if *region != ctx.region {
            return None;
        }
        if resource.starts_with("alias/") {
            return Some(Target::Alias(AliasEvent::stream_for(
                account, region, resource,
            )));
        }
        return resource
            .strip_prefix("key/")
            .map(|id| Target::Key(id.to_string()));
    }
    if name.starts_with("alias/") {
        return Some(Target::Alias(AliasEvent::stream_for(
            &ctx.principal.account,
            &ctx.region,
            name,
        )));
    }
    Some(Target::Key(name.to_string()))
}

/// What loading an alias found.
enum Loaded {
    /// The alias exists and names this key.
    Target(String),
    /// No such alias: nothing to load.
    Nothing,
    /// It could not be loaded: wait for the full model.
    Wait,
}

/// Read a stream and hold what it makes in the warming model; false when the call must wait for
/// the full model instead (the stream kept changing while read, or the store failed: the call
/// is then answered, or refused, as the full model decides).
async fn load_stream(state: &AppState, stream: &str) -> bool {
    let position = || state.read_model().map(|m| m.last_sequence()).ok();
    for _ in 0..LOAD_ATTEMPTS {
        let Ok(holds) = state.read_model().map(|m| m.holds_stream(stream)) else {
            return false;
        };
        if holds {
            return true;
        }
        let events = match state.store.read_stream(stream).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, stream, "loading a key on first use failed; waiting for the full model");
                return false;
            }
        };
        // What was read may be committed but not yet applied here: bring the model up to it
        // first (the follower's catch-up, which syncs before it applies), so that a held key is
        // never ahead of the model and every call sees one point of the log.
        let newest = events.last().map_or(0, |e| e.sequence);
        if position().is_none_or(|at| newest > at) {
            if let Err(e) = crate::scheduler::catch_up(state).await {
                tracing::warn!(error = %e, "catching up before a load failed; waiting for the full model");
                return false;
            }
        }
        let adopted = match state.model.write() {
            Ok(mut model) => model.adopt_stream(stream, &events),
            Err(_) => return false,
        };
        match adopted {
            Ok(Adopted::Held) => return true,
            Ok(Adopted::Stale) => continue,
            Err(e) => {
                tracing::error!(error = %e, stream, "a stream does not load");
                return false;
            }
        }
    }
    false
}

/// Load a key by id; false when the call must wait for the full model.
async fn load_key(state: &AppState, key_id: &str) -> bool {
    // A multi-Region key shares events across its Regions' streams; ids with a '/' are not
    // ids at all (the handler refuses them) but must not name such a stream either.
    if key_id.starts_with("mrk-") || key_id.contains('/') || key_id.is_empty() {
        return false;
    }
    if !load_stream(state, &format!("key/{key_id}")).await {
        return false;
    }
    let Ok(model) = state.read_model() else {
        return false;
    };
    match model.key(key_id) {
        // What only the full model answers: the key's custom key store, or its aliases.
        Some(key) => {
            key.custom_key_store_id.is_none()
                && !key
                    .compiled_policy
                    .as_ref()
                    .is_some_and(|p| crate::handlers::tests_resource_aliases(&p.0))
        }
        None => true,
    }
}

/// Load an alias by stream.
async fn load_alias(state: &AppState, stream: &str) -> Loaded {
    if !load_stream(state, stream).await {
        return Loaded::Wait;
    }
    let Some((account, region, name)) = crate::domain::events::AliasEvent::parse_stream(stream)
    else {
        return Loaded::Nothing;
    };
    let Ok(model) = state.read_model() else {
        return Loaded::Wait;
    };
    match model.alias(&account, &region, &name) {
        Some(alias) => Loaded::Target(alias.target_key_id.clone()),
        None => Loaded::Nothing,
    }
}
