//! Pure rules: whether a key's state and usage allow an operation. One table decides the state
//! rule for every operation (`state_rule`), so no handler checks states on its own. Nothing here
//! does I/O or knows about HTTP: `From<RuleError> for KmsError` below turns a refusal into AWS's error shape.

use trent_model::{KmsError, Operation};

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
        /// The state in AWS's words, for example `pending deletion` or `not pending deletion`.
        state_words: &'static str,
    },
    /// Every key that can be in this state is of a kind the operation does not support
    /// (`UnsupportedOperationException`).
    #[error("{arn} {reason}")]
    UnsupportedOperation {
        /// The key ARN.
        arn: String,
        /// What makes the key unfit, as a sentence that follows the ARN.
        reason: &'static str,
    },
    /// The key's usage or spec does not fit the operation (`InvalidKeyUsageException`).
    #[error("{0}")]
    InvalidKeyUsage(String),
}

/// A refused rule as the client sees it: one AWS error per kind of refusal.
impl From<RuleError> for KmsError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Disabled { .. } => Self::Disabled(e.to_string()),
            RuleError::InvalidState { .. } => Self::KmsInvalidState(e.to_string()),
            RuleError::UnsupportedOperation { .. } => Self::UnsupportedOperation(e.to_string()),
            RuleError::InvalidKeyUsage(m) => Self::InvalidKeyUsage(m),
        }
    }
}

/// What a key state means for one operation: one cell of AWS's key state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRule {
    /// The operation may run.
    Allowed,
    /// Refused with `DisabledException`.
    Disabled,
    /// Refused with `KMSInvalidStateException`.
    InvalidState,
    /// Refused with `UnsupportedOperationException`: only keys of a kind the operation does not
    /// support (imported material, a custom key store) can be in this state.
    UnsupportedOperation,
    /// The operation takes no existing key, so no key state applies (`check_state` is never
    /// needed for it).
    NotApplicable,
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

/// The key state table: what `state` means for `op`, as AWS KMS answers.
///
/// Transcribed from the table in the AWS KMS Developer Guide, "Key states of AWS KMS keys"
/// (key-state.html), and from the error lists of the KMS API model for operations newer than that
/// table. The multi-Region columns (`PendingReplicaDeletion`, `Creating`, `Updating`) follow
/// the API reference's words where the table is not at hand: a replica being created can be
/// managed but not used in cryptographic operations; keys whose primary Region is changing can be
/// used but not enabled, disabled, rotated, replicated or scheduled for deletion; a primary
/// waiting for its replicas' deletion is treated as pending deletion (CancelKeyDeletion works).
///
/// How the table reads, per state:
/// - **Disabled.** Only operations that use or extend the use of the key material are refused
///   with `DisabledException`: the cryptographic operations, `CreateGrant`, `ReplicateKey`,
///   `UpdatePrimaryRegion`, `EnableKeyRotation`, `DisableKeyRotation` and `RotateKeyOnDemand`.
///   Reading the key, `EnableKey`, `DisableKey` (which changes nothing), `ScheduleKeyDeletion`,
///   tags, aliases, the key policy, `RetireGrant`, `RevokeGrant`, `GetKeyRotationStatus`,
///   `ListKeyRotations` and the import operations all work.
/// - **PendingDeletion.** `CancelKeyDeletion` works only here; elsewhere it is refused with
///   `KMSInvalidStateException` "… is not pending deletion.". Reads, `PutKeyPolicy`,
///   `DeleteAlias`, `RetireGrant`, `RevokeGrant`, `GetKeyRotationStatus`, `ListKeyRotations` and
///   `DeleteImportedKeyMaterial` still work. Everything else, `EnableKey`, `DisableKey`,
///   `TagResource`, `UntagResource`, `CreateAlias`, `UpdateKeyDescription` and a second
///   `ScheduleKeyDeletion` included, is refused with `KMSInvalidStateException` "… is pending
///   deletion.". For the cryptographic operations AWS documents either that or a
///   `DisabledException` with the same message; Trent answers `KMSInvalidStateException`.
///   `UpdateAlias` is checked against the key the alias moves to: the key it leaves may be
///   pending deletion.
/// - **PendingImport.** `GetParametersForImport`, `ImportKeyMaterial` and
///   `DeleteImportedKeyMaterial` (no effect) work, as they do on an enabled or disabled key with
///   `EXTERNAL` origin. The cryptographic operations, `CreateGrant`, `EnableKey`, `DisableKey`,
///   `RotateKeyOnDemand`, `ReplicateKey` and `UpdatePrimaryRegion` are refused with
///   `KMSInvalidStateException` "… is pending import.". Automatic rotation and
///   `GetKeyRotationStatus` answer `UnsupportedOperationException` (origin `EXTERNAL`).
/// - **Unavailable** (custom key store disconnected). The key can be viewed and managed:
///   `EnableKey` and `DisableKey` succeed (the state follows once the store reconnects),
///   `CreateGrant` and `ScheduleKeyDeletion` work. The cryptographic operations are refused with
///   `KMSInvalidStateException` "… is unavailable." — not `KeyUnavailableException`, which is
///   AWS's retryable server fault (HTTP 500) for a key it transiently cannot reach. Rotation and
///   import answer `UnsupportedOperationException`, as for any key in a custom key store.
///
/// `UnsupportedOperation` cells are key-kind answers seen through the state: AWS gives them to
/// a key with imported material or in a custom key store in any state (its table reads `[1] or
/// [7]` for a disabled key), so the operation's own kind check (`check_rotatable`, the origin
/// check of the import operations) should run before `check_state` to match AWS exactly.
///
/// Cells AWS marks "not applicable" because no key of the operation's kind could be in that
/// state when the table was written (`Sign`, `Verify`, `GenerateMac`, `VerifyMac` and
/// `GetPublicKey` in PendingImport and Unavailable; `DeleteImportedKeyMaterial`, `ReplicateKey`
/// and `UpdatePrimaryRegion` in Unavailable) hold the answer of the operation's family, so that a
/// key that does reach the state (asymmetric and HMAC keys can now have imported material) is
/// refused. `DeriveSharedSecret`, `Encapsulate` and `Decapsulate` follow the cryptographic rows;
/// `RotateKeyOnDemand` follows `EnableKeyRotation` except in PendingImport, where imported keys
/// may rotate on demand once they have material; `ListKeyRotations` also works in PendingImport
/// (AWS sends callers there to find the material still to import); `GetKeyLastUsage`, whose
/// API model lists no state error, works in every state.
///
/// `NotApplicable` marks the operations that take no existing key: `CreateKey`, `ListKeys`,
/// `GenerateRandom`, `ListRetirableGrants` (it takes a principal) and the custom key store
/// operations. `ListAliases` takes an optional key and works in every state.
pub fn state_rule(op: Operation, state: KeyState) -> StateRule {
    use Operation::*;
    use StateRule::{
        Allowed as A, Disabled as D, InvalidState as I, NotApplicable as N,
        UnsupportedOperation as U,
    };
    // Columns in `KeyState` order: Enabled, Disabled, PendingDeletion, PendingImport, Unavailable,
    // PendingReplicaDeletion, Creating, Updating.
    let row: [StateRule; 8] = match op {
        CreateKey
        | ListKeys
        | GenerateRandom
        | ListRetirableGrants
        | ConnectCustomKeyStore
        | CreateCustomKeyStore
        | DeleteCustomKeyStore
        | DescribeCustomKeyStores
        | DisconnectCustomKeyStore
        | UpdateCustomKeyStore => [N; 8],
        // Reading the key, its policy, and taking aliases and grants away: any state.
        DescribeKey | GetKeyPolicy | ListKeyPolicies | ListResourceTags | ListGrants
        | ListAliases | GetKeyLastUsage | PutKeyPolicy | DeleteAlias | RetireGrant
        | RevokeGrant => [A; 8],
        // Other management changes stop while the key waits for deletion.
        CreateAlias | UpdateAlias | TagResource | UntagResource | UpdateKeyDescription => {
            [A, A, I, A, A, I, A, A]
        }
        ScheduleKeyDeletion => [A, A, I, A, A, I, A, I],
        EnableKey | DisableKey => [A, A, I, I, A, I, I, I],
        CancelKeyDeletion => [I, I, A, I, I, A, I, I],
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
        | GetPublicKey => [A, D, I, I, I, I, I, A],
        CreateGrant => [A, D, I, I, A, I, A, A],
        ReplicateKey | UpdatePrimaryRegion => [A, D, I, I, U, I, I, I],
        EnableKeyRotation | DisableKeyRotation => [A, D, I, U, U, I, I, I],
        RotateKeyOnDemand => [A, D, I, I, U, I, I, I],
        GetKeyRotationStatus => [A, A, A, U, U, A, A, A],
        ListKeyRotations => [A, A, A, A, U, A, A, A],
        GetParametersForImport | ImportKeyMaterial => [A, A, I, A, U, I, A, I],
        DeleteImportedKeyMaterial => [A, A, A, A, U, A, A, A],
    };
    let [enabled, disabled, pending_deletion, pending_import, unavailable, pending_replica_deletion, creating, updating] =
        row;
    match state {
        KeyState::Enabled => enabled,
        KeyState::Disabled => disabled,
        KeyState::PendingDeletion => pending_deletion,
        KeyState::PendingImport => pending_import,
        KeyState::Unavailable => unavailable,
        KeyState::PendingReplicaDeletion => pending_replica_deletion,
        KeyState::Creating => creating,
        KeyState::Updating => updating,
    }
}

/// Check `op` against the key's state, with AWS's error and message when refused.
pub fn check_state(op: Operation, key: &KeySnapshot) -> Result<(), RuleError> {
    match state_rule(op, key.state) {
        StateRule::Allowed | StateRule::NotApplicable => Ok(()),
        StateRule::Disabled => Err(RuleError::Disabled { arn: key.arn() }),
        StateRule::InvalidState => Err(RuleError::InvalidState {
            arn: key.arn(),
            state_words: if op == Operation::CancelKeyDeletion {
                "not pending deletion"
            } else {
                match key.state {
                    KeyState::PendingDeletion => "pending deletion",
                    KeyState::PendingImport => "pending import",
                    KeyState::Unavailable => "unavailable",
                    KeyState::Disabled => "disabled",
                    KeyState::Enabled => "enabled",
                    KeyState::PendingReplicaDeletion => "pending replica deletion",
                    KeyState::Creating => "creating",
                    KeyState::Updating => "updating",
                }
            },
        }),
        StateRule::UnsupportedOperation => Err(RuleError::UnsupportedOperation {
            arn: key.arn(),
            reason: match key.state {
                // AWS's documented message for keys waiting for imported material.
                KeyState::PendingImport => {
                    "origin is EXTERNAL which is not valid for this operation."
                }
                // Trent's words: AWS documents the error, not its message.
                _ => "is in a custom key store, which is not valid for this operation.",
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
    use Operation::*;

    const A: StateRule = StateRule::Allowed;
    const D: StateRule = StateRule::Disabled;
    const I: StateRule = StateRule::InvalidState;
    const U: StateRule = StateRule::UnsupportedOperation;
    const N: StateRule = StateRule::NotApplicable;

    /// The columns of `TABLE`, in order.
    const STATES: [KeyState; 5] = [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::PendingImport,
        KeyState::Unavailable,
    ];

    /// AWS's key state table, written out row by row from the developer guide (cells AWS marks
    /// "not applicable" for a key kind hold Trent's documented answer, flagged `n/a`).
    /// Columns: Enabled, Disabled, PendingDeletion, PendingImport, Unavailable.
    const TABLE: &[(Operation, [StateRule; 5])] = &[
        (CancelKeyDeletion, [I, I, A, I, I]),
        (ConnectCustomKeyStore, [N, N, N, N, N]),
        (CreateAlias, [A, A, I, A, A]),
        (CreateCustomKeyStore, [N, N, N, N, N]),
        (CreateGrant, [A, D, I, I, A]),
        (CreateKey, [N, N, N, N, N]),
        (Decapsulate, [A, D, I, I, I]), // newer than the table: as the cryptographic rows
        (Decrypt, [A, D, I, I, I]),
        (DeleteAlias, [A, A, A, A, A]),
        (DeleteCustomKeyStore, [N, N, N, N, N]),
        (DeleteImportedKeyMaterial, [A, A, A, A, U]), // Unavailable: n/a
        (DeriveSharedSecret, [A, D, I, I, I]),        // newer than the table
        (DescribeCustomKeyStores, [N, N, N, N, N]),
        (DescribeKey, [A, A, A, A, A]),
        (DisableKey, [A, A, I, I, A]),
        (DisableKeyRotation, [A, D, I, U, U]),
        (DisconnectCustomKeyStore, [N, N, N, N, N]),
        (EnableKey, [A, A, I, I, A]),
        (EnableKeyRotation, [A, D, I, U, U]),
        (Encapsulate, [A, D, I, I, I]), // newer than the table
        (Encrypt, [A, D, I, I, I]),
        (GenerateDataKey, [A, D, I, I, I]),
        (GenerateDataKeyPair, [A, D, I, I, I]),
        (GenerateDataKeyPairWithoutPlaintext, [A, D, I, I, I]),
        (GenerateDataKeyWithoutPlaintext, [A, D, I, I, I]),
        (GenerateMac, [A, D, I, I, I]), // PendingImport, Unavailable: n/a
        (GenerateRandom, [N, N, N, N, N]),
        (GetKeyLastUsage, [A, A, A, A, A]), // newer than the table: no state errors
        (GetKeyPolicy, [A, A, A, A, A]),
        (GetKeyRotationStatus, [A, A, A, U, U]),
        (GetParametersForImport, [A, A, I, A, U]),
        (GetPublicKey, [A, D, I, I, I]), // PendingImport, Unavailable: n/a
        (ImportKeyMaterial, [A, A, I, A, U]),
        (ListAliases, [A, A, A, A, A]),
        (ListGrants, [A, A, A, A, A]),
        (ListKeyPolicies, [A, A, A, A, A]),
        (ListKeyRotations, [A, A, A, A, U]), // newer than the table
        (ListKeys, [N, N, N, N, N]),
        (ListResourceTags, [A, A, A, A, A]),
        (ListRetirableGrants, [N, N, N, N, N]),
        (PutKeyPolicy, [A, A, A, A, A]),
        (ReEncrypt, [A, D, I, I, I]),
        (ReplicateKey, [A, D, I, I, U]), // Unavailable: n/a
        (RetireGrant, [A, A, A, A, A]),
        (RevokeGrant, [A, A, A, A, A]),
        (RotateKeyOnDemand, [A, D, I, I, U]), // newer than the table
        (ScheduleKeyDeletion, [A, A, I, A, A]),
        (Sign, [A, D, I, I, I]), // PendingImport, Unavailable: n/a
        (TagResource, [A, A, I, A, A]),
        (UntagResource, [A, A, I, A, A]),
        (UpdateAlias, [A, A, I, A, A]),
        (UpdateCustomKeyStore, [N, N, N, N, N]),
        (UpdateKeyDescription, [A, A, I, A, A]),
        (UpdatePrimaryRegion, [A, D, I, I, U]), // Unavailable: n/a
        (Verify, [A, D, I, I, I]),              // PendingImport, Unavailable: n/a
        (VerifyMac, [A, D, I, I, I]),           // PendingImport, Unavailable: n/a
    ];

    #[test]
    fn the_table_has_one_row_per_operation() {
        assert_eq!(TABLE.len(), Operation::ALL.len());
        for op in Operation::ALL {
            let rows = TABLE.iter().filter(|(o, _)| *o == op).count();
            assert_eq!(rows, 1, "{op:?} has {rows} rows");
        }
    }

    #[test]
    fn the_state_table_answers_as_aws() {
        let mut wrong = Vec::new();
        for (op, cells) in TABLE {
            for (state, expected) in STATES.into_iter().zip(cells) {
                let got = state_rule(*op, state);
                if got != *expected {
                    wrong.push(format!("{op:?} in {state:?}: {got:?}, AWS: {expected:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn multi_region_states_follow_the_api_reference() {
        let states = [
            KeyState::PendingReplicaDeletion,
            KeyState::Creating,
            KeyState::Updating,
        ];
        // Columns: PendingReplicaDeletion, Creating, Updating.
        let rows = [
            (Encrypt, [I, I, A]), // a new replica cannot be used yet; an updating key can
            (Decrypt, [I, I, A]),
            (DescribeKey, [A, A, A]),
            (TagResource, [I, A, A]), // a new replica can be managed
            (PutKeyPolicy, [A, A, A]),
            (EnableKey, [I, I, I]),
            (DisableKey, [I, I, I]),
            (CancelKeyDeletion, [A, I, I]),
            (ScheduleKeyDeletion, [I, A, I]),
            (ReplicateKey, [I, I, I]),
            (UpdatePrimaryRegion, [I, I, I]),
            (RotateKeyOnDemand, [I, I, I]),
            (CreateGrant, [I, A, A]),
        ];
        for (op, cells) in rows {
            for (state, expected) in states.into_iter().zip(cells) {
                assert_eq!(state_rule(op, state), expected, "{op:?} in {state:?}");
            }
        }
        let mut key = key_in(KeyState::PendingReplicaDeletion);
        assert_eq!(
            check_state(Encrypt, &key).unwrap_err().to_string(),
            format!("{} is pending replica deletion.", key.arn())
        );
        key.state = KeyState::Creating;
        assert_eq!(
            check_state(Encrypt, &key).unwrap_err().to_string(),
            format!("{} is creating.", key.arn())
        );
    }

    fn key_in(state: KeyState) -> KeySnapshot {
        let mut key = KeySnapshot::probe("111122223333", "us-east-2");
        key.key_id = "1234abcd-12ab-34cd-56ef-1234567890ab".into();
        key.state = state;
        key
    }

    /// The AWS error code a refusal becomes.
    fn aws_type(e: &RuleError) -> &'static str {
        match e {
            RuleError::Disabled { .. } => "DisabledException",
            RuleError::InvalidState { .. } => "KMSInvalidStateException",
            RuleError::UnsupportedOperation { .. } => "UnsupportedOperationException",
            RuleError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
        }
    }

    #[test]
    fn refusals_carry_aws_messages() {
        let arn = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        // (operation, state, None when allowed, or Some((AWS error code, message after the ARN)))
        let rows = [
            (Encrypt, KeyState::Enabled, None),
            (CreateKey, KeyState::PendingDeletion, None),
            (DescribeKey, KeyState::PendingDeletion, None),
            (
                Encrypt,
                KeyState::Disabled,
                Some(("DisabledException", " is disabled.")),
            ),
            (
                Decrypt,
                KeyState::PendingDeletion,
                Some(("KMSInvalidStateException", " is pending deletion.")),
            ),
            (
                Sign,
                KeyState::PendingImport,
                Some(("KMSInvalidStateException", " is pending import.")),
            ),
            (
                GenerateDataKey,
                KeyState::Unavailable,
                Some(("KMSInvalidStateException", " is unavailable.")),
            ),
            (
                CancelKeyDeletion,
                KeyState::Enabled,
                Some(("KMSInvalidStateException", " is not pending deletion.")),
            ),
            (
                CancelKeyDeletion,
                KeyState::Disabled,
                Some(("KMSInvalidStateException", " is not pending deletion.")),
            ),
            (
                EnableKeyRotation,
                KeyState::PendingImport,
                Some((
                    "UnsupportedOperationException",
                    " origin is EXTERNAL which is not valid for this operation.",
                )),
            ),
            (
                ImportKeyMaterial,
                KeyState::Unavailable,
                Some((
                    "UnsupportedOperationException",
                    " is in a custom key store, which is not valid for this operation.",
                )),
            ),
        ];
        for (op, state, expected) in rows {
            let got = check_state(op, &key_in(state))
                .err()
                .map(|e| (aws_type(&e), e.to_string()));
            let expected = expected.map(|(code, words)| (code, format!("{arn}{words}")));
            assert_eq!(got, expected, "{op:?} in {state:?}");
        }
    }
}
