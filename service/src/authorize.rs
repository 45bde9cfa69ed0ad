//! The authorize step: turns a call into a `trent_policy::AccessRequest` (principal, action, key,
//! condition keys) and evaluates the key's compiled policy together with the caller's compiled
//! identity policies, with AWS KMS's logic (explicit deny wins; the key policy allows directly or
//! delegates to the account's IAM; cross-account needs both sides). Nothing is compiled here: key
//! policies are compiled when their event is applied, identity policies when identities load.

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_policy::{AccessRequest, CompiledPolicy, Decision, Resource};

use crate::auth::identity::{Principal, PrincipalKind};
use crate::domain::key::KeySnapshot;
pub use crate::domain::policy::{account_delegation, compile_key_policy, SharedPolicy};
use crate::protocol::{KmsError, Operation};

/// The IAM action an operation is authorised as (`kms:Encrypt`...).
pub fn action_of(op: Operation) -> String {
    format!("kms:{}", op.name())
}

/// The policy-language view of an authenticated caller.
pub fn policy_principal(p: &Principal) -> trent_policy::Principal {
    let mut out = match (p.kind, p.user_name.as_deref(), &p.session) {
        (PrincipalKind::IamUser, Some(name), _) => trent_policy::Principal::user(&p.account, name),
        (PrincipalKind::Service, _, _) => trent_policy::Principal::service(&p.arn),
        (PrincipalKind::AssumedRole, _, Some(s)) => {
            let mut session =
                trent_policy::Principal::assumed_role(&p.account, &s.role_name, &s.session_name);
            // A role with a path: its ARN keeps the path, the session ARN does not.
            session.role_arn = Some(s.role_arn.clone());
            session
        }
        _ => trent_policy::Principal::root(&p.account),
    };
    out.arn = p.arn.clone();
    out = out.with_userid(&p.principal_id);
    for (k, v) in &p.tags {
        out = out.with_tag(k, v);
    }
    out
}

/// What a call knows that policies may test, beyond who and what.
#[derive(Debug, Default, Clone)]
pub struct CallFacts<'a> {
    /// Where and when the call comes from.
    pub origin: Origin,
    /// The encryption context of a cryptographic operation.
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    /// The encryption algorithm requested (`kms:EncryptionAlgorithm`).
    pub encryption_algorithm: Option<&'a str>,
    /// The alias the caller named the key by (`kms:RequestAlias`).
    pub request_alias: Option<&'a str>,
    /// Aliases of the key (`kms:ResourceAliases`).
    pub resource_aliases: Vec<String>,
    /// The request's own condition keys (`condition_keys::from_request`).
    pub request_keys: Vec<crate::condition_keys::ConditionKey>,
}

/// Where and when a request comes from: the global condition keys every request carries.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The client's address (`aws:SourceIp`).
    pub source_ip: Option<std::net::IpAddr>,
    /// Whether the call came over HTTPS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// The region the request is for (`aws:RequestedRegion`); empty when unknown.
    pub region: String,
    /// The client's `User-Agent` (`aws:UserAgent`).
    pub user_agent: Option<String>,
    /// When the request arrived, by the domain clock (`aws:CurrentTime`, `aws:EpochTime`).
    pub now: chrono::DateTime<chrono::Utc>,
    /// The resource a service principal calls on behalf of (`aws:SourceArn`), from its signed
    /// `X-Amz-Source-Arn` header; never set for other callers.
    pub source_arn: Option<String>,
    /// The account of that resource (`aws:SourceAccount`), from `X-Amz-Source-Account`.
    pub source_account: Option<String>,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            source_ip: None,
            secure_transport: false,
            region: String::new(),
            user_agent: None,
            now: chrono::Utc::now(),
            source_arn: None,
            source_account: None,
        }
    }
}

/// Start the request for `action` by `principal` on `resource` with what every request carries:
/// the principal's keys, the origin's global keys (`aws:SecureTransport`, `aws:SourceIp`,
/// `aws:RequestedRegion`, `aws:UserAgent`, `aws:CurrentTime`, `aws:EpochTime`),
/// `aws:PrincipalIsAWSService` (true for a service principal) and `aws:ViaAWSService` (false: no
/// service calls Trent on a user's behalf), for a service principal `aws:SourceArn` and
/// `aws:SourceAccount` when it names them, and for temporary credentials `aws:TokenIssueTime` and
/// `aws:MultiFactorAuthPresent` (false).
pub fn request_for(
    principal: &Principal,
    action: &str,
    resource: Resource,
    origin: &Origin,
) -> trent_policy::AccessRequestBuilder {
    let seen_by_policies = principal
        .policy_view
        .get_or_init(|| Arc::new(policy_principal(principal)))
        .clone();
    let mut b = AccessRequest::builder(seen_by_policies, action, resource)
        .context("aws:SecureTransport", origin.secure_transport)
        .context(
            "aws:PrincipalIsAWSService",
            principal.kind == PrincipalKind::Service,
        )
        .context("aws:ViaAWSService", false)
        .now(origin.now.into());
    if principal.kind == PrincipalKind::Service {
        if let Some(arn) = &origin.source_arn {
            b = b.context("aws:SourceArn", arn.as_str());
        }
        if let Some(account) = &origin.source_account {
            b = b.context("aws:SourceAccount", account.as_str());
        }
    }
    if let Some(ip) = origin.source_ip {
        b = b.context("aws:SourceIp", ip);
    }
    if !origin.region.is_empty() {
        b = b.context("aws:RequestedRegion", origin.region.as_str());
    }
    if let Some(agent) = &origin.user_agent {
        b = b.context("aws:UserAgent", agent.as_str());
    }
    if let Some(issued_at) = principal.token_issued_at {
        b = b
            .context(
                "aws:TokenIssueTime",
                trent_policy::ContextValue::Date(issued_at.timestamp_millis()),
            )
            // STS issues sessions without MFA (SerialNumber/TokenCode are not supported).
            .context("aws:MultiFactorAuthPresent", false);
    }
    b
}

/// Add the request's own condition keys. Values are appended, not set: AWS compares key names
/// case-insensitively, so `aws:RequestTag/env` and `aws:RequestTag/Env` are one key with both values
/// (a Deny on one spelling cannot be slipped past with the other).
pub fn with_request_keys(
    mut b: trent_policy::AccessRequestBuilder,
    keys: &[crate::condition_keys::ConditionKey],
) -> trent_policy::AccessRequestBuilder {
    for (name, values) in keys {
        for value in values {
            b = b.context(name, value.clone());
        }
    }
    b
}

/// The `sts:AssumeRole` question for `principal` on `role_arn`, with the request's own keys
/// (`sts:RoleSessionName`, `sts:ExternalId`): the request live calls and simulation share.
pub fn assume_role_request(
    principal: &Principal,
    role_arn: &str,
    origin: &Origin,
    request_keys: &[crate::condition_keys::ConditionKey],
) -> AccessRequest {
    let b = request_for(
        principal,
        "sts:AssumeRole",
        Resource::from_arn(role_arn),
        origin,
    );
    with_request_keys(b, request_keys)
        .without_encryption_context()
        .build()
}

/// Evaluate AssumeRole as AWS does: the role's trust policy in the resource policy's place and the
/// caller's identity policies; and a session may assume its own role again only when the trust
/// policy names the role itself (AWS's rule since 2023), not through the account's delegation.
pub fn evaluate_assume_role(
    request: &AccessRequest,
    principal: &Principal,
    role: &crate::auth::identity::Role,
    trust_policy: &SharedPolicy,
    identity_policies: &[Arc<CompiledPolicy>],
) -> trent_policy::Evaluation {
    let mut evaluation = evaluate(request, trust_policy, identity_policies, None);
    let same_role = principal
        .session
        .as_ref()
        .is_some_and(|s| s.role_arn == role.arn);
    if same_role
        && evaluation.decision == Decision::Allow
        && evaluation.basis != trent_policy::Basis::KeyPolicy
    {
        evaluation.decision = Decision::ImplicitDeny;
        evaluation.basis = trent_policy::Basis::NoAllow(trent_policy::PolicyType::ResourceBased);
    }
    evaluation
}

/// Build the request for `action` by `principal` on `key`.
pub fn key_request(
    principal: &Principal,
    action: &str,
    key: &KeySnapshot,
    facts: &CallFacts<'_>,
) -> AccessRequest {
    let mut b = request_for(
        principal,
        action,
        Resource::from_arn(&key.arn()),
        &facts.origin,
    )
    .context("kms:KeySpec", key.key_spec.as_str())
    .context("kms:KeyUsage", key.key_usage.as_str())
    .context("kms:KeyOrigin", key.origin.as_str())
    .context("kms:MultiRegion", key.multi_region);
    if key.multi_region {
        let kind = if key.is_replica() {
            "REPLICA"
        } else {
            "PRIMARY"
        };
        b = b.context("kms:MultiRegionKeyType", kind);
    }
    if let Some(alg) = facts.encryption_algorithm {
        b = b.context("kms:EncryptionAlgorithm", alg);
    }
    if let Some(alias) = facts.request_alias {
        b = b.context("kms:RequestAlias", alias);
    }
    if !facts.resource_aliases.is_empty() {
        b = b.context_values(
            "kms:ResourceAliases",
            facts.resource_aliases.iter().map(String::as_str),
        );
    }
    for tag in &key.tags {
        b = b.context(&format!("aws:ResourceTag/{}", tag.key), tag.value.as_str());
    }
    b = with_request_keys(b, &facts.request_keys);
    b = match facts.encryption_context {
        Some(ec) => b.encryption_context(ec.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        None => b.without_encryption_context(),
    };
    b.build()
}

/// Evaluate `request` against the key policy, the caller's identity policies and the key's grants:
/// the one evaluation that live calls and `trent policy simulate` share.
pub fn evaluate(
    request: &AccessRequest,
    key_policy: &SharedPolicy,
    identity_policies: &[Arc<CompiledPolicy>],
    grants: Option<&trent_policy::GrantIndex>,
) -> trent_policy::Evaluation {
    trent_policy::authorize(
        request,
        &key_policy.0,
        identity_policies.iter().map(|p| p.as_ref()),
        grants,
    )
}

/// `Ok` for an allow, otherwise AWS's `AccessDeniedException`; with the decision's simulator name.
pub fn verdict(
    request: &AccessRequest,
    evaluation: &trent_policy::Evaluation,
) -> (&'static str, Result<(), KmsError>) {
    let name = evaluation.decision.simulator_name();
    if evaluation.decision == Decision::Allow {
        return (name, Ok(()));
    }
    if !evaluation.errors.is_empty() {
        tracing::warn!(errors = ?evaluation.errors, "policy evaluation errors (denied)");
    }
    let message = evaluation
        .access_denied_message(request)
        .unwrap_or_else(|| {
            format!(
                "User: {} is not authorized to perform: {} on resource: {}",
                request.principal.arn, request.action, request.resource.arn
            )
        });
    (name, Err(KmsError::AccessDenied(message)))
}

/// Evaluate and judge in one step (the request path).
pub fn decide(
    request: &AccessRequest,
    key_policy: &SharedPolicy,
    identity_policies: &[Arc<CompiledPolicy>],
    grants: Option<&trent_policy::GrantIndex>,
) -> (&'static str, Result<(), KmsError>) {
    verdict(
        request,
        &evaluate(request, key_policy, identity_policies, grants),
    )
}
