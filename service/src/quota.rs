//! Request quotas, as AWS KMS applies them: per account and region, one token bucket per
//! operation class (cryptographic operations share one; the rest are grouped as AWS documents them).
//! STS and CloudTrail calls have buckets of their own. A call over quota is refused with
//! `ThrottlingException` before it touches a key or writes anything but its audit record.
//!
//! Refusals of callers that could not be authenticated have no account to charge: they take a
//! lane of their own (`unauthenticated_lane`), which bounds how many of their records wait for the
//! writer at once.

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
    /// STS calls (AssumeRole, GetSessionToken, GetCallerIdentity).
    Sts,
    /// CloudTrail's LookupEvents.
    CloudTrail,
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
            Self::Sts => "sts",
            Self::CloudTrail => "cloudtrail",
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
    /// STS calls.
    pub sts: u32,
    /// CloudTrail's LookupEvents.
    pub cloudtrail: u32,
    /// Refusals of unauthenticated requests whose records may wait for the writer at once.
    pub unauthenticated_in_flight: usize,
}

impl QuotaLimits {
    fn rate(&self, class: QuotaClass) -> u32 {
        match class {
            QuotaClass::Cryptographic => self.cryptographic,
            QuotaClass::GenerateRandom => self.generate_random,
            QuotaClass::Management => self.management,
            QuotaClass::Sts => self.sts,
            QuotaClass::CloudTrail => self.cloudtrail,
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
    unauthenticated: tokio::sync::Semaphore,
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
            unauthenticated: tokio::sync::Semaphore::new(limits.unauthenticated_in_flight.max(1)),
        }
    }

    /// The lane refusals of unauthenticated requests wait in for their record's commit.
    pub fn unauthenticated_lane(&self) -> &tokio::sync::Semaphore {
        &self.unauthenticated
    }

    /// Take one request of `class` from the bucket; `false` means over quota.
    pub fn admit(&self, account: &str, region: &str, class: QuotaClass) -> bool {
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
            sts: 0,
            cloudtrail: 1,
            unauthenticated_in_flight: 4,
        });
        let admit =
            |account: &str, op: Operation| q.admit(account, "us-east-1", QuotaClass::of(op));
        let admitted = (0..10).filter(|_| admit("1", Operation::Encrypt)).count();
        assert_eq!(admitted, 3);
        assert!(
            admit("2", Operation::Decrypt),
            "another account has its own bucket"
        );
        assert!(admit("1", Operation::DescribeKey), "another class too");
        assert!(
            (0..100).all(|_| admit("1", Operation::GenerateRandom)),
            "0 is unlimited"
        );
        assert!(q.admit("1", "us-east-1", QuotaClass::CloudTrail));
        assert!(
            !q.admit("1", "us-east-1", QuotaClass::CloudTrail),
            "CloudTrail has its own bucket"
        );
        assert!((0..100).all(|_| q.admit("1", "us-east-1", QuotaClass::Sts)));
        assert_eq!(q.unauthenticated_lane().available_permits(), 4);
    }
}
