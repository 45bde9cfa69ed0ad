//! Root key rotation (`trent root-key rotate` / `retire`), while servers keep serving: a new root
//! key is bound to the store with wraps (it sealed under each key in use, each sealed under it),
//! so every process opens both and the servers switch to sealing under it at their next follow;
//! then every sealed material row is re-sealed under it, a page per transaction, each row by
//! compare-and-swap (a row changed or destroyed meanwhile is left alone and seen again by the
//! next pass); last,
//! once no row is sealed under an old key, the old key is retired and its wraps destroyed. Each
//! step is an audited service event.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::audit::record::stored_record;
use crate::crypto::keyring::RootKeyring;
use crate::crypto::root_key::RootKey;
use crate::store::{
    CommitUnit, RootKeyBinding, RootKeyWrap, SealedMaterial, SharedStore, StoreError,
};

/// Rows read per page while re-sealing.
const PAGE: i64 = 500;
/// Passes over the keystore before giving up on rows that keep changing.
const MAX_PASSES: usize = 10;

/// Why a rotation step failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A cryptographic step failed (the message never holds key bytes).
    #[error("{0}")]
    Crypto(String),
    /// The key cannot be retired yet, or is not a key of the store.
    #[error("{0}")]
    Refused(String),
}

/// What a rotation did.
#[derive(Debug)]
pub struct RotationReport {
    /// The new root key's id.
    pub new_id: String,
    /// The ids of the keys it replaces.
    pub old_ids: Vec<String>,
    /// Rows re-sealed.
    pub resealed: u64,
    /// Passes over the keystore.
    pub passes: usize,
    /// Time spent re-sealing.
    pub reseal_time: Duration,
    /// Whether the old keys were retired.
    pub retired: bool,
}

/// Commit one audited service event about root keys.
async fn record(store: &SharedStore, name: &str, details: Value) -> Result<(), RotationError> {
    let at = chrono::Utc::now();
    let event_id = crate::audit::record::new_event_id(at);
    let record = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AWSService", "invokedBy": "kms.amazonaws.com"},
        "eventTime": crate::audit::record::cloudtrail_time(at),
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": "",
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "additionalEventData": details,
        "eventID": event_id,
        "readOnly": false,
        "resources": [],
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "eventCategory": "Management",
    });
    let unit = CommitUnit {
        audit: Some(stored_record(&record, at)),
        ..Default::default()
    };
    let results = store.commit(vec![unit]).await?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        None => Err(RotationError::Refused(
            "the audit record was not written".into(),
        )),
    }
}

/// Rotate: bind a new root key (written to `new_key_file`), wait `settle` for servers to seal
/// under it, re-seal every row, and retire the old keys when `retire`.
pub async fn rotate(
    store: &SharedStore,
    ring: &RootKeyring,
    new_key_file: &Path,
    settle: Duration,
    retire: bool,
) -> Result<RotationReport, RotationError> {
    let crypto = |e: crate::crypto::CryptoError| RotationError::Crypto(e.to_string());
    let old: Vec<RootKey> = ring.all().iter().map(|k| (**k).clone()).collect();
    let new = RootKey::random().map_err(crypto)?;
    new.write_new_file(new_key_file).map_err(crypto)?;
    let mut wraps = Vec::new();
    for k in &old {
        wraps.push(RootKeyWrap {
            key_id: new.id().to_string(),
            wrapped_under: k.id().to_string(),
            sealed: k.wrap(&new).map_err(crypto)?,
        });
        wraps.push(RootKeyWrap {
            key_id: k.id().to_string(),
            wrapped_under: new.id().to_string(),
            sealed: new.wrap(k).map_err(crypto)?,
        });
    }
    let binding = RootKeyBinding {
        id: new.id().to_string(),
        check_value: new.check_value().to_string(),
    };
    store.add_root_key(&binding, &wraps).await?;
    let old_ids: Vec<String> = old.iter().map(|k| k.id().to_string()).collect();
    record(
        store,
        "RootKeyRotationStarted",
        json!({ "rootKeyId": new.id(), "previousRootKeyIds": old_ids }),
    )
    .await?;
    let mut keys = vec![new.clone()];
    keys.extend(old.iter().cloned());
    let ring = RootKeyring::new(keys).ok_or(RotationError::Crypto("empty key ring".into()))?;
    tokio::time::sleep(settle).await;

    let started = Instant::now();
    let mut resealed = 0;
    let mut passes = 0;
    loop {
        passes += 1;
        let done = reseal_pass(store, &ring, &new).await?;
        resealed += done;
        if done == 0 {
            break;
        }
        if passes >= MAX_PASSES {
            return Err(RotationError::Refused(format!(
                "rows kept changing during {MAX_PASSES} passes; run the rotation's retire step \
                 later with `trent root-key retire`"
            )));
        }
    }
    let reseal_time = started.elapsed();
    record(
        store,
        "RootKeyMaterialResealed",
        json!({ "rootKeyId": new.id(), "rows": resealed, "passes": passes,
                "seconds": reseal_time.as_secs_f64() }),
    )
    .await?;
    if retire {
        for id in &old_ids {
            retire_key(store, &ring, id).await?;
        }
    }
    Ok(RotationReport {
        new_id: new.id().to_string(),
        old_ids,
        resealed,
        passes,
        reseal_time,
        retired: retire,
    })
}

/// One pass: re-seal under `new` every row sealed under another key; returns how many.
async fn reseal_pass(
    store: &SharedStore,
    ring: &RootKeyring,
    new: &RootKey,
) -> Result<u64, RotationError> {
    let mut after: Option<(String, i32)> = None;
    let mut resealed = 0;
    loop {
        let page = store.material_page(after.clone(), PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(resealed);
        };
        after = Some((last.key_id.clone(), last.version));
        let mut batch = Vec::with_capacity(page.len());
        for row in &page {
            if RootKey::sealed_by(&row.sealed).as_deref() == Some(new.id()) {
                continue;
            }
            let material = ring
                .open(&row.key_id, row.version, &row.sealed)
                .map_err(|_| {
                    RotationError::Crypto(format!(
                        "key {} material {} does not open under the store's root keys",
                        row.key_id, row.version
                    ))
                })?;
            let sealed = new
                .seal(&row.key_id, row.version, &material)
                .map_err(|e| RotationError::Crypto(e.to_string()))?;
            batch.push((row.clone(), sealed));
        }
        // One transaction per page: a page's rows cost one fsync, not one each.
        resealed += store.reseal_materials(&batch).await?;
    }
}

/// Whether any row is still sealed under `id` (format-1 rows count as the oldest key's).
async fn rows_under(
    store: &SharedStore,
    id: &str,
    oldest: bool,
) -> Result<Option<SealedMaterial>, RotationError> {
    let mut after = None;
    loop {
        let page = store.material_page(after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = Some((last.key_id.clone(), last.version));
        if let Some(row) = page.iter().find(|r| match RootKey::sealed_by(&r.sealed) {
            Some(by) => by == id,
            None => oldest,
        }) {
            return Ok(Some(row.clone()));
        }
    }
}

/// Retire root key `id` once no row is sealed under it; the active (newest) key cannot be
/// retired. Its wraps are destroyed, so nothing opens it from the store any more.
pub async fn retire_key(
    store: &SharedStore,
    ring: &RootKeyring,
    id: &str,
) -> Result<(), RotationError> {
    let bindings = store.root_key_bindings().await?;
    let Some(position) = bindings.iter().position(|b| b.id == id) else {
        return Err(RotationError::Refused(format!(
            "root key {id} is not a root key in use by this store"
        )));
    };
    if position + 1 == bindings.len() {
        return Err(RotationError::Refused(format!(
            "root key {id} is the store's active root key; rotate first"
        )));
    }
    if !ring.ids().iter().any(|k| k == id) {
        return Err(RotationError::Refused(format!(
            "root key {id} is not among the keys this command holds"
        )));
    }
    if let Some(row) = rows_under(store, id, position == 0).await? {
        return Err(RotationError::Refused(format!(
            "key {} material {} is still sealed under root key {id}; run `trent root-key \
             rotate` to completion first",
            row.key_id, row.version
        )));
    }
    store.retire_root_key(id).await?;
    record(store, "RootKeyRetired", json!({ "rootKeyId": id })).await
}
