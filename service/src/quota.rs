//! Request quotas, as AWS KMS applies them: per account and region, one token bucket per
//! operation class (cryptographic operations share one; the rest are grouped as AWS documents them).
//! A call over quota is refused with `ThrottlingException` before it touches a key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::rules::is_cryptographic;
use crate::protocol::Operation;

/// The quota classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaClass {
    /// Encrypt, Decrypt, Sign, GenerateDataKey... (shared, as AWS's "cryptographic operations").
    Cryptographic,
    /// GenerateRandom.
    GenerateRandom,
    /// Everything else (management and read operations).
    Management,
}

impl QuotaClass {
    /// The class of an operation.
    pub fn of(op: Operation) -> Self {
        if op == Operation::GenerateRandom {
            Self::GenerateRandom
        } else if is_cryptographic(op) {
            Self::Cryptographic
        } else {
            Self::Management
        }
    }

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cryptographic => "cryptographic",
            Self::GenerateRandom => "generate_random",
            Self::Management => "management",
        }
    }
}

/// Requests per second allowed per account and region, by class (0 = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct QuotaLimits {
    /// Cryptographic operations.
    pub cryptographic: u32,
    /// GenerateRandom.
    pub generate_random: u32,
    /// Everything else.
    pub management: u32,
}

impl QuotaLimits {
    fn rate(&self, class: QuotaClass) -> u32 {
        match class {
            QuotaClass::Cryptographic => self.cryptographic,
            QuotaClass::GenerateRandom => self.generate_random,
            QuotaClass::Management => self.management,
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Token buckets per (account, region, class); a bucket holds one second of requests.
pub struct Quotas {
    limits: QuotaLimits,
    buckets: Mutex<HashMap<(String, String, QuotaClass), Bucket>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Quotas {
    /// Quotas with these limits.
    pub fn new(limits: QuotaLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request from the bucket; `false` means over quota.
    pub fn admit(&self, account: &str, region: &str, op: Operation) -> bool {
        let class = QuotaClass::of(op);
        let rate = self.limits.rate(class);
        if rate == 0 {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        let bucket = buckets
            .entry((account.to_string(), region.to_string(), class))
            .or_insert(Bucket {
                tokens: rate as f64,
                refilled: now,
            });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate as f64).min(rate as f64);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_rate_is_refused_per_class_and_account() {
        let q = Quotas::new(QuotaLimits {
            cryptographic: 3,
            generate_random: 0,
            management: 100,
        });
        let admitted = (0..10)
            .filter(|_| q.admit("1", "us-east-1", Operation::Encrypt))
            .count();
        assert_eq!(admitted, 3);
        assert!(
            q.admit("2", "us-east-1", Operation::Decrypt),
            "another account has its own bucket"
        );
        assert!(
            q.admit("1", "us-east-1", Operation::DescribeKey),
            "another class too"
        );
        assert!(
            (0..100).all(|_| q.admit("1", "us-east-1", Operation::GenerateRandom)),
            "0 is unlimited"
        );
    }
}
