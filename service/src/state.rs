//! The service's shared state: store, writer, read model, identities, clock, regions, root key and
//! the cache of sealed key material (`materials`). Built once at start; every request borrows it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use regex::Regex;

use crate::audit::writer::CommitWriter;
use crate::auth::identity::Identities;
use crate::clock::Clock;
use crate::crypto::keyring::RootKeyring;
use crate::crypto::secret::SecretBytes;
use crate::domain::read_model::ReadModel;
pub use crate::materials::MaterialCache;
use crate::protocol::KmsError;
use crate::store::SharedStore;

/// Which AWS region names the server answers for.
#[derive(Debug, Clone)]
pub struct RegionSet {
    only: Option<Vec<String>>,
    pattern: Regex,
}

impl RegionSet {
    /// Every well-formed region name (`us-east-1`, `eu-central-2`, `us-gov-west-1`...), or only
    /// the listed ones.
    pub fn new(only: Option<Vec<String>>) -> Self {
        let pattern =
            Regex::new(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$").unwrap_or_else(|_| unreachable!());
        Self { only, pattern }
    }

    /// Whether `region` is served.
    pub fn serves(&self, region: &str) -> bool {
        match &self.only {
            Some(list) => list.iter().any(|r| r == region),
            None => self.pattern.is_match(region),
        }
    }

    /// The region used for records of calls whose region is unknown (failed authentication).
    pub fn default_region(&self) -> String {
        self.only
            .as_ref()
            .and_then(|l| l.first().cloned())
            .unwrap_or_else(|| "us-east-1".to_string())
    }
}

/// Everything a request needs.
pub struct AppState {
    /// The event store.
    pub store: SharedStore,
    /// The group-commit writer.
    pub writer: CommitWriter,
    /// The read model, kept current by the writer.
    pub model: Arc<RwLock<ReadModel>>,
    /// Who may sign requests.
    pub identities: Identities,
    /// The clock of the domain (deletion dates, rotation schedules, record times).
    pub clock: Arc<dyn Clock>,
    /// The clock SigV4 checks signing times against: always the wall clock, so a test that moves
    /// the domain clock forward keeps its clients' signatures valid.
    pub wall_clock: Arc<dyn Clock>,
    /// The movable clock, when the server runs with `--test-clock` (test endpoints enabled).
    pub test_clock: Option<Arc<crate::clock::ManualClock>>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Served regions.
    pub regions: RegionSet,
    /// Whether the API listener serves HTTPS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Whether external key stores may name a plain-HTTP proxy or an explicit port
    /// (`--xks-allow-http`, for tests).
    pub xks_allow_http: bool,
    /// How XKS proxies' HTTPS certificates are verified (`--xks-ca-bundle`, by default the
    /// system's CA bundle when there is one); None: no HTTPS proxy can be used.
    pub xks_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The root keys sealing key material and tokens (more than one during a rotation).
    pub root_key: Arc<RootKeyring>,
    /// Cached sealed material (shared with the writer, which forgets destroyed material).
    pub materials: Arc<MaterialCache>,
    /// Per account, the compiled "delegate to IAM" policy for operations that take no key.
    pub account_policies: RwLock<HashMap<String, crate::authorize::SharedPolicy>>,
    /// Request quotas per account, region and operation class.
    pub quotas: crate::quota::Quotas,
    /// Takes read-model snapshots (from the scheduler and at shutdown).
    pub snapshots: Arc<crate::snapshots::Snapshotter>,
    /// Whether the full read model is in place yet (`warm_up`).
    pub warm_up: Arc<crate::warm_up::WarmUp>,
}

impl AppState {
    /// The unsealed material of a key version (zeroized when dropped), read through the
    /// opened-material cache.
    pub async fn open_material(&self, key_id: &str, version: i32) -> Result<SecretBytes, KmsError> {
        let cache = &self.materials;
        if let Some(material) = cache.get(key_id, version) {
            return Ok(material);
        }
        let sealed = self.stored_material(key_id, version).await?;
        if let Ok(material) = self.root_key.open(key_id, version, &sealed) {
            cache.insert(key_id, version, material.clone());
            return Ok(material);
        }
        // Sealed under a root key this process has not loaded yet (a rotation under way): follow
        // the store's root keys, read again, retry once.
        crate::root_binding::refresh(&self.store, &self.root_key, cache).await;
        let sealed = self.stored_material(key_id, version).await?;
        let material = self.root_key.open(key_id, version, &sealed).map_err(|_| {
            tracing::error!(
                key_id,
                version,
                "sealed key material does not open under the root key"
            );
            KmsError::KmsInternal("The key material could not be unsealed.".into())
        })?;
        cache.insert(key_id, version, material.clone());
        Ok(material)
    }

    /// The sealed material of a key version, read from the keystore.
    async fn stored_material(&self, key_id: &str, version: i32) -> Result<Vec<u8>, KmsError> {
        let stored = self
            .store
            .get_material(key_id, version)
            .await
            .map_err(|e| {
                self.metrics
                    .store_errors
                    .with_label_values(&["keystore"])
                    .inc();
                tracing::error!(error = %e, "keystore read failed");
                KmsError::KmsInternal("The key material could not be read.".into())
            })?
            .ok_or_else(|| KmsError::KmsInternal("The key material is not available.".into()))?;
        Ok(stored.sealed)
    }

    /// The compiled account-delegation policy of `account` (compiled on first use).
    pub fn account_policy(
        &self,
        account: &str,
    ) -> Result<crate::authorize::SharedPolicy, KmsError> {
        if let Some(p) = self
            .account_policies
            .read()
            .ok()
            .and_then(|m| m.get(account).cloned())
        {
            return Ok(p);
        }
        let policy = crate::authorize::account_delegation(account)?;
        if let Ok(mut m) = self.account_policies.write() {
            m.insert(account.to_string(), policy.clone());
        }
        Ok(policy)
    }

    /// Read access to the read model.
    pub fn read_model(&self) -> Result<RwLockReadGuard<'_, ReadModel>, KmsError> {
        self.model
            .read()
            .map_err(|_| KmsError::KmsInternal("The service state is unavailable.".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_well_formed_names_or_the_configured_list() {
        let all = RegionSet::new(None);
        for r in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-10",
        ] {
            assert!(all.serves(r), "{r}");
        }
        for r in ["", "us-east", "US-EAST-1", "us_east_1", "mars"] {
            assert!(!all.serves(r), "{r}");
        }
        let some = RegionSet::new(Some(vec!["eu-west-1".into()]));
        assert!(some.serves("eu-west-1"));
        assert!(!some.serves("us-east-1"));
        assert_eq!(some.default_region(), "eu-west-1");
    }
}
