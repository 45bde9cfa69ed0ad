//! Prometheus metrics: what the service does, for operators and the shipped dashboards and alert
//! rules. Counters and histograms are updated on the request path (cheap atomic operations); gauges
//! over keys are computed from the read model when Prometheus scrapes. No metric carries key
//! material, plaintext or secrets, and labels never hold unbounded caller input (operation names
//! come from the fixed list of 56, outcomes from the fixed list of error codes).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::domain::read_model::ReadModel;

/// Every metric of the service, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Requests by operation and outcome (`success` or the AWS error code).
    pub requests: IntCounterVec,
    /// Request latency by operation, from receipt to response (audit commit included).
    pub request_duration: HistogramVec,
    /// Units per group commit.
    pub audit_batch_size: Histogram,
    /// Units waiting for the writer.
    pub audit_queue_depth: IntGauge,
    /// Duration of one group commit.
    pub audit_commit_duration: Histogram,
    /// Duration of one sync (fsync) making committed batches durable.
    pub audit_sync_duration: Histogram,
    /// Keys by state and key spec (set at scrape).
    pub keys: IntGaugeVec,
    /// Seconds until each key's imported material expires (set at scrape).
    pub material_expiry: IntGaugeVec,
    /// Attempts to use a key that is pending deletion (the classic alarm), by operation.
    pub pending_deletion_use: IntCounterVec,
    /// Requests refused over quota, by operation class.
    pub throttled: IntCounterVec,
    /// Authorization decisions by result (`allowed`, `explicitDeny`, `implicitDeny`).
    pub authorization_decisions: IntCounterVec,
    /// Store failures by kind.
    pub store_errors: IntCounterVec,
    /// Actions the scheduler took, by action (`DeleteKey`, `RotateKey`, `ShredMaterial`).
    pub scheduler_actions: IntCounterVec,
    /// Calls whose commit lost an optimistic-concurrency race (each then runs again), by operation.
    pub commit_conflicts: IntCounterVec,
    /// XKS proxy calls by XKS operation (`health`, `metadata`, `encrypt`, `decrypt`) and outcome.
    pub xks_requests: IntCounterVec,
    /// XKS proxy call latency by XKS operation.
    pub xks_duration: HistogramVec,
    /// Connected external key stores whose last periodic health check failed.
    pub xks_unhealthy_stores: IntGauge,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("{e}"))
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let m = Self {
            registry: Registry::new(),
            requests: counter(
                "trent_requests_total",
                "KMS API requests by operation and outcome (success or AWS error code).",
                &["operation", "outcome"],
            ),
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "trent_request_duration_seconds",
                    "KMS API request latency, audit commit included.",
                )
                .buckets(latency_buckets.clone()),
                &["operation"],
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            audit_batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "trent_audit_batch_size",
                    "Calls committed per group commit.",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            audit_queue_depth: IntGauge::new(
                "trent_audit_queue_depth",
                "Calls waiting for the audit writer.",
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            audit_commit_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "trent_audit_commit_duration_seconds",
                    "Duration of one group commit (events and audit records).",
                )
                .buckets(latency_buckets.clone()),
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            audit_sync_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "trent_audit_sync_duration_seconds",
                    "Duration of one sync making committed batches durable (SQLite: fsync of the WAL).",
                )
                .buckets(latency_buckets.clone()),
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            keys: IntGaugeVec::new(
                Opts::new("trent_keys", "Keys by state and key spec."),
                &["state", "key_spec"],
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            material_expiry: IntGaugeVec::new(
                Opts::new(
                    "trent_key_material_expires_in_seconds",
                    "Seconds until a key's imported material expires (keys whose material expires).",
                ),
                &["key_arn"],
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            pending_deletion_use: counter(
                "trent_pending_deletion_key_use_total",
                "Attempts to use a key that is pending deletion, by operation.",
                &["operation"],
            ),
            throttled: counter(
                "trent_throttled_requests_total",
                "Requests refused with ThrottlingException, by quota class.",
                &["class"],
            ),
            authorization_decisions: counter(
                "trent_authorization_decisions_total",
                "Authorization decisions by result.",
                &["result"],
            ),
            store_errors: counter(
                "trent_store_errors_total",
                "Store failures by kind.",
                &["kind"],
            ),
            scheduler_actions: counter(
                "trent_scheduler_actions_total",
                "Actions the service took by itself.",
                &["action"],
            ),
            commit_conflicts: counter(
                "trent_commit_conflicts_total",
                "Calls whose commit lost an optimistic-concurrency race and ran again, by operation.",
                &["operation"],
            ),
            xks_requests: counter(
                "trent_xks_proxy_requests_total",
                "Calls to external key store proxies by XKS operation and outcome (success or the error).",
                &["operation", "outcome"],
            ),
            xks_duration: HistogramVec::new(
                HistogramOpts::new(
                    "trent_xks_proxy_request_duration_seconds",
                    "Latency of calls to external key store proxies (the XKS budget is 250 ms).",
                )
                .buckets(latency_buckets.clone()),
                &["operation"],
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
            xks_unhealthy_stores: IntGauge::new(
                "trent_xks_unhealthy_key_stores",
                "Connected external key stores whose proxy failed its last periodic health check.",
            )
            .unwrap_or_else(|e| unreachable!("{e}")),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(m.request_duration.clone()),
            Box::new(m.audit_batch_size.clone()),
            Box::new(m.audit_queue_depth.clone()),
            Box::new(m.audit_commit_duration.clone()),
            Box::new(m.audit_sync_duration.clone()),
            Box::new(m.keys.clone()),
            Box::new(m.material_expiry.clone()),
            Box::new(m.pending_deletion_use.clone()),
            Box::new(m.throttled.clone()),
            Box::new(m.authorization_decisions.clone()),
            Box::new(m.store_errors.clone()),
            Box::new(m.scheduler_actions.clone()),
            Box::new(m.commit_conflicts.clone()),
            Box::new(m.xks_requests.clone()),
            Box::new(m.xks_duration.clone()),
            Box::new(m.xks_unhealthy_stores.clone()),
        ];
        for c in collectors {
            if let Err(e) = m.registry.register(c) {
                tracing::error!(error = %e, "metric registration failed");
            }
        }
        // Series with a fixed set of labels exist from the start, at zero, so that rates and
        // alerts over them have data before the first event.
        for result in ["allowed", "explicitDeny", "implicitDeny"] {
            m.authorization_decisions.with_label_values(&[result]);
        }
        for operation in ["health", "metadata", "encrypt", "decrypt"] {
            m.xks_requests.with_label_values(&[operation, "success"]);
            m.xks_duration.with_label_values(&[operation]);
        }
        for class in ["cryptographic", "generate_random", "management"] {
            m.throttled.with_label_values(&[class]);
        }
        for kind in ["commit", "call", "keystore"] {
            m.store_errors.with_label_values(&[kind]);
        }
        for action in ["DeleteKey", "RotateKey", "ShredMaterial"] {
            m.scheduler_actions.with_label_values(&[action]);
        }
        for op in crate::protocol::Operation::ALL {
            m.pending_deletion_use.with_label_values(&[op.name()]);
            m.commit_conflicts.with_label_values(&[op.name()]);
        }
        m
    }

    /// The Prometheus text exposition, with the key gauges refreshed from `model` at `now`.
    pub fn render(&self, model: &ReadModel, now: chrono::DateTime<chrono::Utc>) -> String {
        self.keys.reset();
        self.material_expiry.reset();
        for key in model.all_keys().filter(|k| k.is_live()) {
            self.keys
                .with_label_values(&[key.state.as_str(), key.key_spec.as_str()])
                .inc();
            if let Some(valid_to) = key
                .imported
                .as_ref()
                .filter(|i| i.present)
                .and_then(|i| i.valid_to)
            {
                self.material_expiry
                    .with_label_values(&[key.arn().as_str()])
                    .set((valid_to - now).num_seconds());
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_names_every_metric_family() {
        let m = Metrics::new();
        m.requests.with_label_values(&["Encrypt", "success"]).inc();
        m.pending_deletion_use.with_label_values(&["Decrypt"]).inc();
        let text = m.render(&ReadModel::default(), chrono::Utc::now());
        assert!(text.contains("trent_requests_total{operation=\"Encrypt\",outcome=\"success\"} 1"));
        assert!(text.contains("trent_pending_deletion_key_use_total{operation=\"Decrypt\"} 1"));
        assert!(text.contains("# TYPE trent_audit_queue_depth gauge"));
    }
}
