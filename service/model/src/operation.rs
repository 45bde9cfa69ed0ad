//! The 56 operations of the AWS KMS API, decoded from the `X-Amz-Target` header.

/// The prefix of every KMS `X-Amz-Target` value.
pub const TARGET_PREFIX: &str = "TrentService.";

/// One KMS API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The `CancelKeyDeletion` operation.
    CancelKeyDeletion,
    /// The `ConnectCustomKeyStore` operation.
    ConnectCustomKeyStore,
    /// The `CreateAlias` operation.
    CreateAlias,
    /// The `CreateCustomKeyStore` operation.
    CreateCustomKeyStore,
    /// The `CreateGrant` operation.
    CreateGrant,
    /// The `CreateKey` operation.
    CreateKey,
    /// The `Decapsulate` operation.
    Decapsulate,
    /// The `Decrypt` operation.
    Decrypt,
    /// The `DeleteAlias` operation.
    DeleteAlias,
    /// The `DeleteCustomKeyStore` operation.
    DeleteCustomKeyStore,
    /// The `DeleteImportedKeyMaterial` operation.
    DeleteImportedKeyMaterial,
    /// The `DeriveSharedSecret` operation.
    DeriveSharedSecret,
    /// The `DescribeCustomKeyStores` operation.
    DescribeCustomKeyStores,
    /// The `DescribeKey` operation.
    DescribeKey,
    /// The `DisableKey` operation.
    DisableKey,
    /// The `DisableKeyRotation` operation.
    DisableKeyRotation,
    /// The `DisconnectCustomKeyStore` operation.
    DisconnectCustomKeyStore,
    /// The `EnableKey` operation.
    EnableKey,
    /// The `EnableKeyRotation` operation.
    EnableKeyRotation,
    /// The `Encapsulate` operation.
    Encapsulate,
    /// The `Encrypt` operation.
    Encrypt,
    /// The `GenerateDataKey` operation.
    GenerateDataKey,
    /// The `GenerateDataKeyPair` operation.
    GenerateDataKeyPair,
    /// The `GenerateDataKeyPairWithoutPlaintext` operation.
    GenerateDataKeyPairWithoutPlaintext,
    /// The `GenerateDataKeyWithoutPlaintext` operation.
    GenerateDataKeyWithoutPlaintext,
    /// The `GenerateMac` operation.
    GenerateMac,
    /// The `GenerateRandom` operation.
    GenerateRandom,
    /// The `GetKeyLastUsage` operation.
    GetKeyLastUsage,
    /// The `GetKeyPolicy` operation.
    GetKeyPolicy,
    /// The `GetKeyRotationStatus` operation.
    GetKeyRotationStatus,
    /// The `GetParametersForImport` operation.
    GetParametersForImport,
    /// The `GetPublicKey` operation.
    GetPublicKey,
    /// The `ImportKeyMaterial` operation.
    ImportKeyMaterial,
    /// The `ListAliases` operation.
    ListAliases,
    /// The `ListGrants` operation.
    ListGrants,
    /// The `ListKeyPolicies` operation.
    ListKeyPolicies,
    /// The `ListKeyRotations` operation.
    ListKeyRotations,
    /// The `ListKeys` operation.
    ListKeys,
    /// The `ListResourceTags` operation.
    ListResourceTags,
    /// The `ListRetirableGrants` operation.
    ListRetirableGrants,
    /// The `PutKeyPolicy` operation.
    PutKeyPolicy,
    /// The `ReEncrypt` operation.
    ReEncrypt,
    /// The `ReplicateKey` operation.
    ReplicateKey,
    /// The `RetireGrant` operation.
    RetireGrant,
    /// The `RevokeGrant` operation.
    RevokeGrant,
    /// The `RotateKeyOnDemand` operation.
    RotateKeyOnDemand,
    /// The `ScheduleKeyDeletion` operation.
    ScheduleKeyDeletion,
    /// The `Sign` operation.
    Sign,
    /// The `TagResource` operation.
    TagResource,
    /// The `UntagResource` operation.
    UntagResource,
    /// The `UpdateAlias` operation.
    UpdateAlias,
    /// The `UpdateCustomKeyStore` operation.
    UpdateCustomKeyStore,
    /// The `UpdateKeyDescription` operation.
    UpdateKeyDescription,
    /// The `UpdatePrimaryRegion` operation.
    UpdatePrimaryRegion,
    /// The `Verify` operation.
    Verify,
    /// The `VerifyMac` operation.
    VerifyMac,
}

impl Operation {
    /// Every operation, in the model's (alphabetical) order.
    pub const ALL: [Operation; 56] = [
        Self::CancelKeyDeletion,
        Self::ConnectCustomKeyStore,
        Self::CreateAlias,
        Self::CreateCustomKeyStore,
        Self::CreateGrant,
        Self::CreateKey,
        Self::Decapsulate,
        Self::Decrypt,
        Self::DeleteAlias,
        Self::DeleteCustomKeyStore,
        Self::DeleteImportedKeyMaterial,
        Self::DeriveSharedSecret,
        Self::DescribeCustomKeyStores,
        Self::DescribeKey,
        Self::DisableKey,
        Self::DisableKeyRotation,
        Self::DisconnectCustomKeyStore,
        Self::EnableKey,
        Self::EnableKeyRotation,
        Self::Encapsulate,
        Self::Encrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyPair,
        Self::GenerateDataKeyPairWithoutPlaintext,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::GenerateMac,
        Self::GenerateRandom,
        Self::GetKeyLastUsage,
        Self::GetKeyPolicy,
        Self::GetKeyRotationStatus,
        Self::GetParametersForImport,
        Self::GetPublicKey,
        Self::ImportKeyMaterial,
        Self::ListAliases,
        Self::ListGrants,
        Self::ListKeyPolicies,
        Self::ListKeyRotations,
        Self::ListKeys,
        Self::ListResourceTags,
        Self::ListRetirableGrants,
        Self::PutKeyPolicy,
        Self::ReEncrypt,
        Self::ReplicateKey,
        Self::RetireGrant,
        Self::RevokeGrant,
        Self::RotateKeyOnDemand,
        Self::ScheduleKeyDeletion,
        Self::Sign,
        Self::TagResource,
        Self::UntagResource,
        Self::UpdateAlias,
        Self::UpdateCustomKeyStore,
        Self::UpdateKeyDescription,
        Self::UpdatePrimaryRegion,
        Self::Verify,
        Self::VerifyMac,
    ];

    /// Decode an `X-Amz-Target` value such as `TrentService.Encrypt`.
    pub fn from_target(target: &str) -> Option<Self> {
        Self::from_name(target.strip_prefix(TARGET_PREFIX)?)
    }

    /// Decode an operation name such as `Encrypt`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "CancelKeyDeletion" => Self::CancelKeyDeletion,
            "ConnectCustomKeyStore" => Self::ConnectCustomKeyStore,
            "CreateAlias" => Self::CreateAlias,
            "CreateCustomKeyStore" => Self::CreateCustomKeyStore,
            "CreateGrant" => Self::CreateGrant,
            "CreateKey" => Self::CreateKey,
            "Decapsulate" => Self::Decapsulate,
            "Decrypt" => Self::Decrypt,
            "DeleteAlias" => Self::DeleteAlias,
            "DeleteCustomKeyStore" => Self::DeleteCustomKeyStore,
            "DeleteImportedKeyMaterial" => Self::DeleteImportedKeyMaterial,
            "DeriveSharedSecret" => Self::DeriveSharedSecret,
            "DescribeCustomKeyStores" => Self::DescribeCustomKeyStores,
            "DescribeKey" => Self::DescribeKey,
            "DisableKey" => Self::DisableKey,
            "DisableKeyRotation" => Self::DisableKeyRotation,
            "DisconnectCustomKeyStore" => Self::DisconnectCustomKeyStore,
            "EnableKey" => Self::EnableKey,
            "EnableKeyRotation" => Self::EnableKeyRotation,
            "Encapsulate" => Self::Encapsulate,
            "Encrypt" => Self::Encrypt,
            "GenerateDataKey" => Self::GenerateDataKey,
            "GenerateDataKeyPair" => Self::GenerateDataKeyPair,
            "GenerateDataKeyPairWithoutPlaintext" => Self::GenerateDataKeyPairWithoutPlaintext,
            "GenerateDataKeyWithoutPlaintext" => Self::GenerateDataKeyWithoutPlaintext,
            "GenerateMac" => Self::GenerateMac,
            "GenerateRandom" => Self::GenerateRandom,
            "GetKeyLastUsage" => Self::GetKeyLastUsage,
            "GetKeyPolicy" => Self::GetKeyPolicy,
            "GetKeyRotationStatus" => Self::GetKeyRotationStatus,
            "GetParametersForImport" => Self::GetParametersForImport,
            "GetPublicKey" => Self::GetPublicKey,
            "ImportKeyMaterial" => Self::ImportKeyMaterial,
            "ListAliases" => Self::ListAliases,
            "ListGrants" => Self::ListGrants,
            "ListKeyPolicies" => Self::ListKeyPolicies,
            "ListKeyRotations" => Self::ListKeyRotations,
            "ListKeys" => Self::ListKeys,
            "ListResourceTags" => Self::ListResourceTags,
            "ListRetirableGrants" => Self::ListRetirableGrants,
            "PutKeyPolicy" => Self::PutKeyPolicy,
            "ReEncrypt" => Self::ReEncrypt,
            "ReplicateKey" => Self::ReplicateKey,
            "RetireGrant" => Self::RetireGrant,
            "RevokeGrant" => Self::RevokeGrant,
            "RotateKeyOnDemand" => Self::RotateKeyOnDemand,
            "ScheduleKeyDeletion" => Self::ScheduleKeyDeletion,
            "Sign" => Self::Sign,
            "TagResource" => Self::TagResource,
            "UntagResource" => Self::UntagResource,
            "UpdateAlias" => Self::UpdateAlias,
            "UpdateCustomKeyStore" => Self::UpdateCustomKeyStore,
            "UpdateKeyDescription" => Self::UpdateKeyDescription,
            "UpdatePrimaryRegion" => Self::UpdatePrimaryRegion,
            "Verify" => Self::Verify,
            "VerifyMac" => Self::VerifyMac,
            _ => return None,
        })
    }

    /// The operation's name as the API model spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CancelKeyDeletion => "CancelKeyDeletion",
            Self::ConnectCustomKeyStore => "ConnectCustomKeyStore",
            Self::CreateAlias => "CreateAlias",
            Self::CreateCustomKeyStore => "CreateCustomKeyStore",
            Self::CreateGrant => "CreateGrant",
            Self::CreateKey => "CreateKey",
            Self::Decapsulate => "Decapsulate",
            Self::Decrypt => "Decrypt",
            Self::DeleteAlias => "DeleteAlias",
            Self::DeleteCustomKeyStore => "DeleteCustomKeyStore",
            Self::DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
            Self::DeriveSharedSecret => "DeriveSharedSecret",
            Self::DescribeCustomKeyStores => "DescribeCustomKeyStores",
            Self::DescribeKey => "DescribeKey",
            Self::DisableKey => "DisableKey",
            Self::DisableKeyRotation => "DisableKeyRotation",
            Self::DisconnectCustomKeyStore => "DisconnectCustomKeyStore",
            Self::EnableKey => "EnableKey",
            Self::EnableKeyRotation => "EnableKeyRotation",
            Self::Encapsulate => "Encapsulate",
            Self::Encrypt => "Encrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyPair => "GenerateDataKeyPair",
            Self::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::GenerateMac => "GenerateMac",
            Self::GenerateRandom => "GenerateRandom",
            Self::GetKeyLastUsage => "GetKeyLastUsage",
            Self::GetKeyPolicy => "GetKeyPolicy",
            Self::GetKeyRotationStatus => "GetKeyRotationStatus",
            Self::GetParametersForImport => "GetParametersForImport",
            Self::GetPublicKey => "GetPublicKey",
            Self::ImportKeyMaterial => "ImportKeyMaterial",
            Self::ListAliases => "ListAliases",
            Self::ListGrants => "ListGrants",
            Self::ListKeyPolicies => "ListKeyPolicies",
            Self::ListKeyRotations => "ListKeyRotations",
            Self::ListKeys => "ListKeys",
            Self::ListResourceTags => "ListResourceTags",
            Self::ListRetirableGrants => "ListRetirableGrants",
            Self::PutKeyPolicy => "PutKeyPolicy",
            Self::ReEncrypt => "ReEncrypt",
            Self::ReplicateKey => "ReplicateKey",
            Self::RetireGrant => "RetireGrant",
            Self::RevokeGrant => "RevokeGrant",
            Self::RotateKeyOnDemand => "RotateKeyOnDemand",
            Self::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Self::Sign => "Sign",
            Self::TagResource => "TagResource",
            Self::UntagResource => "UntagResource",
            Self::UpdateAlias => "UpdateAlias",
            Self::UpdateCustomKeyStore => "UpdateCustomKeyStore",
            Self::UpdateKeyDescription => "UpdateKeyDescription",
            Self::UpdatePrimaryRegion => "UpdatePrimaryRegion",
            Self::Verify => "Verify",
            Self::VerifyMac => "VerifyMac",
        }
    }

    /// Whether CloudTrail marks the operation read-only (`readOnly` in the audit record).
    pub fn is_read_only(self) -> bool {
        let name = self.name();
        name.starts_with("Describe")
            || name.starts_with("Get")
            || name.starts_with("List")
            || matches!(
                self,
                Self::Decrypt
                    | Self::Encrypt
                    | Self::GenerateDataKey
                    | Self::GenerateDataKeyWithoutPlaintext
                    | Self::GenerateDataKeyPair
                    | Self::GenerateDataKeyPairWithoutPlaintext
                    | Self::GenerateMac
                    | Self::GenerateRandom
                    | Self::ReEncrypt
                    | Self::Sign
                    | Self::Verify
                    | Self::VerifyMac
                    | Self::DeriveSharedSecret
                    | Self::Encapsulate
                    | Self::Decapsulate
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_through_its_target() {
        for op in Operation::ALL {
            let target = format!("{TARGET_PREFIX}{}", op.name());
            assert_eq!(Operation::from_target(&target), Some(op));
        }
    }

    #[test]
    fn unknown_targets_are_refused() {
        assert_eq!(Operation::from_target("TrentService.Nope"), None);
        assert_eq!(Operation::from_target("Encrypt"), None);
        assert_eq!(Operation::from_target("Kms.Encrypt"), None);
    }

    #[test]
    fn the_model_and_the_enum_agree() {
        let model = crate::model::Model::get();
        assert_eq!(model.operation_names().count(), Operation::ALL.len());
        for name in model.operation_names() {
            assert!(Operation::from_name(name).is_some(), "{name} not routed");
        }
    }
}
