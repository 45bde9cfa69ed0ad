//! Pure rules: whether a key's state and usage allow an operation. One table decides the state
//! rule for every operation (`state_rule`), so no handler checks states on its own.

use crate::protocol::Operation;

use super::key::{KeySnapshot, KeyState};

/// Why a rule refuses an operation on a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The key is disabled (`DisabledException`).
    #[error("{arn} is disabled.")]
    Disabled {
        /// The key ARN.
        arn: String,
    },
    /// The key's state does not allow the operation (`KMSInvalidStateException`).
    #[error("{arn} is {state_words}.")]
    InvalidState {
        /// The key ARN.
        arn: String,
        /// The state in AWS's words, for example `pending deletion`.
        state_words: &'static str,
    },
    /// The key's usage or spec does not fit the operation (`InvalidKeyUsageException`).
    #[error("{0}")]
    InvalidKeyUsage(String),
}

/// What a key state means for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRule {
    /// The operation may run.
    Allowed,
    /// Refused with `DisabledException`.
    Disabled,
    /// Refused with `KMSInvalidStateException`.
    InvalidState,
}

/// Operations that use the key's material (cryptographic operations).
pub fn is_cryptographic(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        Encrypt
            | Decrypt
            | ReEncrypt
            | GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | Sign
            | Verify
            | GenerateMac
            | VerifyMac
            | DeriveSharedSecret
            | Encapsulate
            | Decapsulate
            | GetPublicKey
    )
}

/// The key state table: what `state` means for `op`.
pub fn state_rule(op: Operation, state: KeyState) -> StateRule {
    use KeyState::*;
    match (is_cryptographic(op), state) {
        (_, Enabled) => StateRule::Allowed,
        (true, Disabled) => StateRule::Disabled,
        (true, _) => StateRule::InvalidState,
        // Management operations: reading works in every state, and so do policy changes,
        // except while the key waits for deletion.
        (false, PendingDeletion) if op == Operation::PutKeyPolicy => StateRule::InvalidState,
        (false, _) => StateRule::Allowed,
    }
}

/// Check `op` against the key's state, with AWS's error and message when refused.
pub fn check_state(op: Operation, key: &KeySnapshot) -> Result<(), RuleError> {
    match state_rule(op, key.state) {
        StateRule::Allowed => Ok(()),
        StateRule::Disabled => Err(RuleError::Disabled { arn: key.arn() }),
        StateRule::InvalidState => Err(RuleError::InvalidState {
            arn: key.arn(),
            state_words: match key.state {
                KeyState::PendingDeletion => "pending deletion",
                KeyState::PendingImport => "pending import",
                KeyState::Unavailable => "unavailable",
                KeyState::Disabled => "disabled",
                KeyState::Enabled => "enabled",
            },
        }),
    }
}

/// Check that a key can encrypt and decrypt with the symmetric algorithm.
pub fn check_symmetric_encryption(
    op: Operation,
    key: &KeySnapshot,
    algorithm: Option<&str>,
) -> Result<(), RuleError> {
    if key.key_usage != "ENCRYPT_DECRYPT" {
        return Err(RuleError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            key.arn(),
            key.key_usage,
            op.name()
        )));
    }
    match algorithm {
        None | Some("SYMMETRIC_DEFAULT") if key.key_spec == "SYMMETRIC_DEFAULT" => Ok(()),
        Some(alg) => Err(RuleError::InvalidKeyUsage(format!(
            "The encryption algorithm {alg} is not valid for key {} with key spec {}.",
            key.arn(),
            key.key_spec
        ))),
        None => Err(RuleError::InvalidKeyUsage(format!(
            "{} has key spec {}, which {} does not support yet.",
            key.arn(),
            key.key_spec,
            op.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_table_answers_as_aws() {
        use KeyState::*;
        use Operation::*;
        let rows = [
            (Encrypt, Enabled, StateRule::Allowed),
            (Decrypt, Disabled, StateRule::Disabled),
            (GenerateDataKey, PendingImport, StateRule::InvalidState),
            (ReEncrypt, Unavailable, StateRule::InvalidState),
            (DescribeKey, Disabled, StateRule::Allowed),
            (GetKeyPolicy, PendingDeletion, StateRule::Allowed),
            (PutKeyPolicy, Disabled, StateRule::Allowed),
            (PutKeyPolicy, PendingDeletion, StateRule::InvalidState),
        ];
        for (op, state, expected) in rows {
            assert_eq!(state_rule(op, state), expected, "{op:?} in {state:?}");
        }
        assert_eq!(
            state_rule(Operation::Encrypt, KeyState::Disabled),
            StateRule::Disabled
        );
        assert_eq!(
            state_rule(Operation::Decrypt, KeyState::PendingDeletion),
            StateRule::InvalidState
        );
        assert_eq!(
            state_rule(Operation::DescribeKey, KeyState::PendingDeletion),
            StateRule::Allowed
        );
    }
}
