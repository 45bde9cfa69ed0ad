//! Grants as an allow path: each grant is one small Cedar policy `grant:ID`, kept in a policy set
//! per grantee so that a request only evaluates the grants of its caller (and, for a role session,
//! of its role).
//!
//! AWS rules kept here: a grant allows only its operations; its constraints apply only to
//! operations that take an encryption context (and only when the key does), with keys compared
//! case-insensitively and values case-sensitively; `EncryptionContextEquals` needs the request's
//! context to equal the listed pairs exactly, `EncryptionContextSubset` to contain them all.
//!
//! Each grant is also kept as a [`GrantUnit`] for the evaluator's fast path: its operations as
//! lower-cased action names (the scope's `action in [...]`, checked natively), and its
//! constraint test parsed as a Cedar expression (the grantee test holds by construction: the
//! evaluator looks grants up by the caller's ARN and role), with what it reads from the context.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use cedar_policy::{Expression, Policy, PolicyId, PolicySet};

use crate::cedar::{self, Reads};
use crate::document::PolicyError;

/// An operation a grant can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantOperation {
    /// `Decrypt`.
    Decrypt,
    /// `Encrypt`.
    Encrypt,
    /// `GenerateDataKey`.
    GenerateDataKey,
    /// `GenerateDataKeyWithoutPlaintext`.
    GenerateDataKeyWithoutPlaintext,
    /// `ReEncryptFrom` (ReEncrypt on the source key).
    ReEncryptFrom,
    /// `ReEncryptTo` (ReEncrypt on the destination key).
    ReEncryptTo,
    /// `Sign`.
    Sign,
    /// `Verify`.
    Verify,
    /// `GetPublicKey`.
    GetPublicKey,
    /// `CreateGrant`.
    CreateGrant,
    /// `RetireGrant`.
    RetireGrant,
    /// `DescribeKey`.
    DescribeKey,
    /// `GenerateDataKeyPair`.
    GenerateDataKeyPair,
    /// `GenerateDataKeyPairWithoutPlaintext`.
    GenerateDataKeyPairWithoutPlaintext,
    /// `GenerateMac`.
    GenerateMac,
    /// `VerifyMac`.
    VerifyMac,
    /// `DeriveSharedSecret`.
    DeriveSharedSecret,
}

impl GrantOperation {
    /// Every grant operation, in AWS's documentation order.
    pub const ALL: [GrantOperation; 17] = [
        Self::Decrypt,
        Self::Encrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::ReEncryptFrom,
        Self::ReEncryptTo,
        Self::Sign,
        Self::Verify,
        Self::GetPublicKey,
        Self::CreateGrant,
        Self::RetireGrant,
        Self::DescribeKey,
        Self::GenerateDataKeyPair,
        Self::GenerateDataKeyPairWithoutPlaintext,
        Self::GenerateMac,
        Self::VerifyMac,
        Self::DeriveSharedSecret,
    ];

    /// The operation's name as the API writes it (`ReEncryptFrom`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Decrypt => "Decrypt",
            Self::Encrypt => "Encrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::ReEncryptFrom => "ReEncryptFrom",
            Self::ReEncryptTo => "ReEncryptTo",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
            Self::GetPublicKey => "GetPublicKey",
            Self::CreateGrant => "CreateGrant",
            Self::RetireGrant => "RetireGrant",
            Self::DescribeKey => "DescribeKey",
            Self::GenerateDataKeyPair => "GenerateDataKeyPair",
            Self::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Self::GenerateMac => "GenerateMac",
            Self::VerifyMac => "VerifyMac",
            Self::DeriveSharedSecret => "DeriveSharedSecret",
        }
    }

    /// Parse an API name (exact case, as the API requires).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// The IAM action this operation is authorised as (`kms:ReEncryptFrom`).
    pub fn action(&self) -> String {
        format!("kms:{}", self.as_str())
    }

    /// Whether the operation takes an encryption context (so grant constraints apply to it).
    pub fn takes_encryption_context(&self) -> bool {
        matches!(
            self,
            Self::Decrypt
                | Self::Encrypt
                | Self::GenerateDataKey
                | Self::GenerateDataKeyWithoutPlaintext
                | Self::ReEncryptFrom
                | Self::ReEncryptTo
                | Self::GenerateDataKeyPair
                | Self::GenerateDataKeyPairWithoutPlaintext
        )
    }
}

/// A grant's constraints on the encryption context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantConstraints {
    /// The request's encryption context must be exactly these pairs.
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// The request's encryption context must include these pairs.
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    /// The request must be made on behalf of this resource (`aws:SourceArn`, exactly); it does
    /// not apply to RetireGrant.
    pub source_arn: Option<String>,
}

/// The condition key a SourceArn constraint tests, as the context's `s` record names it.
const SOURCE_ARN: &str = "aws:sourcearn";

/// The part of a grant that authorization needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The grant id.
    pub grant_id: String,
    /// The grantee principal's ARN (a role ARN also covers the role's sessions).
    pub grantee_principal: String,
    /// The operations the grant allows.
    pub operations: Vec<GrantOperation>,
    /// Constraints, if any.
    pub constraints: Option<GrantConstraints>,
}

impl Grant {
    /// The policy text, and the part of its condition that the grantee and the action leave open
    /// (empty when none).
    fn cedar(&self) -> (String, String) {
        let ops: Vec<String> = self
            .operations
            .iter()
            .map(|op| format!("Action::{}", cedar::string(&op.action().to_lowercase())))
            .collect();
        let g = cedar::string(&self.grantee_principal);
        let mut when = vec![format!("(context.p.arn == {g} || context.p.role == {g})")];
        // Every constraint goes into one clause: the fast path evaluates exactly that one.
        let mut constraint = Vec::new();
        if let Some(source) = self
            .constraints
            .as_ref()
            .and_then(|c| c.source_arn.as_ref())
        {
            let retire = GrantOperation::RetireGrant.action().to_lowercase();
            constraint.push(format!(
                "(action == Action::{} || ({} && {}.contains({})))",
                cedar::string(&retire),
                cedar::has("context.s", SOURCE_ARN),
                cedar::get("context.s", SOURCE_ARN),
                cedar::string(source)
            ));
        }
        if let Some(c) = &self.constraints {
            let mut checks = Vec::new();
            if let Some(eq) = &c.encryption_context_equals {
                let fields: Vec<String> = lower_keys(eq)
                    .iter()
                    .map(|(k, v)| format!("{}: {}", cedar::string(k), cedar::string(v)))
                    .collect();
                checks.push(format!("context.ec == {{{}}}", fields.join(", ")));
            }
            if let Some(sub) = &c.encryption_context_subset {
                for (k, v) in lower_keys(sub) {
                    checks.push(format!(
                        "({} && {} == {})",
                        cedar::has("context.ec", &k),
                        cedar::get("context.ec", &k),
                        cedar::string(&v)
                    ));
                }
            }
            if !checks.is_empty() {
                let exempt: Vec<String> = self
                    .operations
                    .iter()
                    .filter(|op| !op.takes_encryption_context())
                    .map(|op| format!("Action::{}", cedar::string(&op.action().to_lowercase())))
                    .collect();
                let mut alts = vec!["!context.ec_applies".to_string()];
                if !exempt.is_empty() {
                    alts.push(format!("action in [{}]", exempt.join(", ")));
                }
                alts.push(format!("({})", checks.join(" && ")));
                constraint.push(format!("({})", alts.join(" || ")));
            }
        }
        if !constraint.is_empty() {
            when.push(format!("({})", constraint.join(" && ")));
        }
        let text = format!(
            "@grant({})\npermit (principal, action in [{}], resource)\nwhen {{ {} }};\n",
            cedar::string(&self.grant_id),
            ops.join(", "),
            when.join(" && ")
        );
        // The fast path selects a grant by grantee and action, which decides the scope and the
        // grantee test exactly; the constraint test is what is left.
        let condition = when.get(1).cloned().unwrap_or_default();
        (text, condition)
    }
}

/// One grant prepared for the evaluator's fast path.
#[derive(Debug, Clone)]
pub(crate) struct GrantUnit {
    /// The grant id.
    pub grant_id: String,
    /// The lower-cased actions of its operations (its scope).
    pub actions: Vec<String>,
    /// What the grantee and the action leave open (the constraints), parsed once; `None`: the
    /// grant allows.
    pub expr: Option<Expression>,
    /// What the condition reads from the context.
    pub reads: Reads,
}

/// Encryption context keys lower-cased, as grant constraints and the request's `context.ec` use.
pub(crate) fn lower_keys(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.to_lowercase(), v.clone()))
        .collect()
}

/// The grants of one key, compiled, indexed by grantee.
#[derive(Debug, Clone, Default)]
pub struct GrantIndex {
    pub(crate) by_grantee: HashMap<String, PolicySet>,
    pub(crate) units: HashMap<String, Vec<GrantUnit>>,
    grants: HashMap<String, Grant>,
}

impl GrantIndex {
    /// An index with no grants.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build an index from grants.
    pub fn from_grants(grants: impl IntoIterator<Item = Grant>) -> Result<Self, PolicyError> {
        let mut index = Self::new();
        for g in grants {
            index.insert(g)?;
        }
        Ok(index)
    }

    /// The Cedar policy id of a grant (`grant:ID`).
    pub fn policy_id(grant_id: &str) -> String {
        format!("grant:{grant_id}")
    }

    /// Add (or replace) a grant.
    pub fn insert(&mut self, grant: Grant) -> Result<(), PolicyError> {
        self.remove(&grant.grant_id);
        let invalid = |problem: String| PolicyError::Invalid {
            location: format!("grant {}", grant.grant_id),
            problem,
        };
        if grant.operations.is_empty() {
            return Err(invalid("lists no operations".into()));
        }
        let (text, condition) = grant.cedar();
        let policy = Policy::parse(Some(PolicyId::new(Self::policy_id(&grant.grant_id))), text)
            .map_err(|e| invalid(format!("could not be compiled to Cedar ({e})")))?;
        let expr = if condition.is_empty() {
            None
        } else {
            Some(
                Expression::from_str(&condition)
                    .map_err(|e| invalid(format!("could not be compiled to Cedar ({e})")))?,
            )
        };
        let unit = GrantUnit {
            grant_id: grant.grant_id.clone(),
            actions: grant
                .operations
                .iter()
                .map(|op| op.action().to_lowercase())
                .collect(),
            expr,
            reads: Reads::scan(&condition, &[(0, SOURCE_ARN.to_string())]),
        };
        self.by_grantee
            .entry(grant.grantee_principal.clone())
            .or_default()
            .add(policy)
            .map_err(|e| invalid(e.to_string()))?;
        self.units
            .entry(grant.grantee_principal.clone())
            .or_default()
            .push(unit);
        self.grants.insert(grant.grant_id.clone(), grant);
        Ok(())
    }

    /// Remove a grant (retired or revoked); returns it if it was there.
    pub fn remove(&mut self, grant_id: &str) -> Option<Grant> {
        let grant = self.grants.remove(grant_id)?;
        if let Some(set) = self.by_grantee.get_mut(&grant.grantee_principal) {
            let _ = set.remove_static(PolicyId::new(Self::policy_id(grant_id)));
            if set.is_empty() {
                self.by_grantee.remove(&grant.grantee_principal);
            }
        }
        if let Some(units) = self.units.get_mut(&grant.grantee_principal) {
            units.retain(|u| u.grant_id != grant_id);
            if units.is_empty() {
                self.units.remove(&grant.grantee_principal);
            }
        }
        Some(grant)
    }

    /// A grant by id.
    pub fn get(&self, grant_id: &str) -> Option<&Grant> {
        self.grants.get(grant_id)
    }

    /// How many grants the index holds.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether the index holds no grants.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}
