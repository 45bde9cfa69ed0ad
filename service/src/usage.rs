//! Past usage of keys (GetKeyLastUsage): which operations count as a use. Each successful
//! tracked call's uses are committed with its audit record into the store's `key_last_use` table
//! (`CommitUnit::key_uses`), so every replica answers the same and start-up reads nothing;
//! tracking starts at the oldest audit record.

use crate::protocol::Operation;

/// The operations GetKeyLastUsage tracks (the API model's `KeyLastUsageTrackingOperation`).
pub fn is_tracked(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        Decrypt
            | DeriveSharedSecret
            | Encrypt
            | GenerateDataKey
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | GenerateDataKeyWithoutPlaintext
            | GenerateMac
            | ReEncrypt
            | Sign
            | Verify
            | VerifyMac
            | Encapsulate
            | Decapsulate
    )
}
