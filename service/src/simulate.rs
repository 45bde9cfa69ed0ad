//! Policy simulation: would this principal be allowed this action on this key, with this request
//! context, under the current policies or proposed ones, and which statements and grants decide?
//! It builds the request and evaluates it with `authorize::key_request` and `authorize::evaluate`,
//! the same functions live calls use; nothing here re-implements a rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use trent_policy::{CompiledPolicy, ContextValue, PolicyKind};

use crate::auth::identity::Identities;
use crate::authorize::{
    assume_role_request, compile_key_policy, evaluate, evaluate_assume_role, key_request, verdict,
    CallFacts, SharedPolicy,
};
use crate::domain::read_model::ReadModel;

/// A simulation question.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationInput {
    /// The caller's ARN (a principal of the identity file).
    pub principal: String,
    /// The action, e.g. `kms:Decrypt`.
    pub action: String,
    /// The key: key ARN, or key id with `region` (give a key or a role).
    #[serde(default)]
    pub key: Option<String>,
    /// A role, for `sts:AssumeRole` against its trust policy (give a key or a role).
    #[serde(default)]
    pub role: Option<String>,
    /// A candidate trust policy to evaluate instead of the role's current one.
    #[serde(default)]
    pub trust_policy: Option<String>,
    /// The region, when `key` is a bare key id.
    #[serde(default)]
    pub region: Option<String>,
    /// The request's encryption context (cryptographic operations).
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
    /// The encryption algorithm requested.
    #[serde(default)]
    pub encryption_algorithm: Option<String>,
    /// The client's address (`aws:SourceIp`).
    #[serde(default)]
    pub source_ip: Option<std::net::IpAddr>,
    /// Whether the request would come over HTTPS (`aws:SecureTransport`; default false).
    #[serde(default)]
    pub secure_transport: bool,
    /// Further condition keys of the request (`kms:GrantOperations`, `aws:RequestTag/team`, ...),
    /// each with one or more values.
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
    /// A candidate key policy to evaluate instead of the key's current one.
    #[serde(default)]
    pub key_policy: Option<String>,
    /// Candidate identity policies to evaluate instead of the principal's current ones.
    #[serde(default)]
    pub identity_policies: Option<Vec<String>>,
}

/// One statement that matched.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MatchedStatement {
    /// `key-policy`, or the identity policy's name.
    pub source: String,
    /// The statement's Sid, if any.
    pub sid: Option<String>,
    /// The statement's index in its document.
    pub index: usize,
    /// `Allow` or `Deny`.
    pub effect: String,
}

/// The answer, in IAM's policy simulator's terms.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SimulationResult {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: String,
    /// The statements that decided.
    pub matched_statements: Vec<MatchedStatement>,
    /// The grants that allowed.
    pub matched_grants: Vec<String>,
    /// Condition keys the policies use that the request did not carry.
    pub missing_context_keys: Vec<String>,
    /// The AccessDeniedException message a live call would get, for a denial.
    pub denial_message: Option<String>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// The principal is not in the identities.
    #[error("no principal {0} in the identities")]
    UnknownPrincipal(String),
    /// The key does not exist.
    #[error("no key {0}")]
    UnknownKey(String),
    /// The role does not exist.
    #[error("no role {0} in the identities")]
    UnknownRole(String),
    /// Neither or both of a key and a role.
    #[error("give exactly one of a key and a role")]
    KeyOrRole,
    /// A role is the resource of sts:AssumeRole only.
    #[error("with a role, the action is sts:AssumeRole")]
    RoleAction,
    /// A candidate policy does not compile.
    #[error("{0}")]
    MalformedPolicy(String),
}

/// Run one simulation against the read model and identities.
pub fn simulate(
    model: &ReadModel,
    identities: &Identities,
    input: &SimulationInput,
) -> Result<SimulationResult, SimulationError> {
    simulate_with(model, identities, input, None)
}

/// Run one simulation with an already compiled candidate key policy (which wins over
/// `input.key_policy`), so that many questions about one candidate compile it once.
pub fn simulate_with(
    model: &ReadModel,
    identities: &Identities,
    input: &SimulationInput,
    candidate: Option<&SharedPolicy>,
) -> Result<SimulationResult, SimulationError> {
    let principal = identities
        .principal_by_arn(&input.principal)
        .ok_or_else(|| SimulationError::UnknownPrincipal(input.principal.clone()))?;
    let identity = identity_policies(input, &principal)?;
    let request_keys: Vec<crate::condition_keys::ConditionKey> = input
        .context
        .iter()
        .map(|(k, v)| {
            let values = v.iter().map(|s| ContextValue::from(s.as_str())).collect();
            (k.clone(), values)
        })
        .collect();
    let origin = |region: &str| crate::authorize::Origin {
        source_arn: None,
        source_account: None,
        source_ip: input.source_ip,
        secure_transport: input.secure_transport,
        region: region.to_string(),
        user_agent: None,
        now: chrono::Utc::now(),
    };
    let input_key = match (&input.key, &input.role) {
        (Some(key), None) => key,
        (None, Some(role_arn)) => {
            if !input.action.eq_ignore_ascii_case("sts:AssumeRole") {
                return Err(SimulationError::RoleAction);
            }
            // The same request and evaluation as a live AssumeRole.
            let role = identities
                .role(role_arn)
                .ok_or_else(|| SimulationError::UnknownRole(role_arn.clone()))?;
            let trust = match &input.trust_policy {
                Some(text) => SharedPolicy(Arc::new(
                    CompiledPolicy::from_text(text, PolicyKind::TrustPolicy, "trust-policy")
                        .map_err(|e| SimulationError::MalformedPolicy(e.to_string()))?,
                )),
                None => SharedPolicy(role.trust_policy.clone()),
            };
            let region = input.region.as_deref().unwrap_or("us-east-1");
            let request = assume_role_request(&principal, role_arn, &origin(region), &request_keys);
            let evaluation = evaluate_assume_role(&request, &principal, role, &trust, &identity);
            return Ok(answer(&request, &evaluation));
        }
        _ => return Err(SimulationError::KeyOrRole),
    };
    // The Region comes from the input, or from the key ARN (a multi-Region key id alone names a
    // key in every Region of its primary and replicas).
    let (arn_region, key_id) = match input_key.rsplit_once(":key/") {
        Some((prefix, id)) => (prefix.split(':').nth(3), id.to_string()),
        None => (None, input_key.clone()),
    };
    let key = match input.region.as_deref().or(arn_region) {
        Some(region) => model.live_key(region, &key_id),
        None => model.key(&key_id).filter(|k| k.is_live()),
    }
    .ok_or_else(|| SimulationError::UnknownKey(input_key.clone()))?;
    let key_policy = match (candidate, &input.key_policy) {
        (Some(compiled), _) => compiled.clone(),
        (None, Some(text)) => {
            compile_key_policy(text).map_err(|e| SimulationError::MalformedPolicy(e.to_string()))?
        }
        (None, None) => key.compiled_policy.clone().ok_or_else(|| {
            SimulationError::MalformedPolicy("the stored key policy does not compile".into())
        })?,
    };
    let facts = CallFacts {
        origin: origin(&key.region),
        encryption_context: input.encryption_context.as_ref(),
        encryption_algorithm: input.encryption_algorithm.as_deref(),
        request_alias: None,
        resource_aliases: model.aliases_of(key).map(|a| a.name.clone()).collect(),
        request_keys,
    };
    let request = key_request(&principal, &input.action, key, &facts);
    let grants = key.compiled_grants.as_ref().map(|g| g.0.as_ref());
    let evaluation = evaluate(&request, &key_policy, &identity, grants);
    Ok(answer(&request, &evaluation))
}

/// The identity policies to evaluate: the candidates given, or the principal's own.
fn identity_policies(
    input: &SimulationInput,
    principal: &crate::auth::identity::Principal,
) -> Result<Vec<Arc<CompiledPolicy>>, SimulationError> {
    Ok(match &input.identity_policies {
        Some(texts) => texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                CompiledPolicy::from_text(t, PolicyKind::Identity, &format!("candidate-{i}"))
                    .map(Arc::new)
                    .map_err(|e| SimulationError::MalformedPolicy(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        None => principal
            .policies
            .iter()
            .map(|p| p.compiled.clone())
            .collect(),
    })
}

/// The answer, in the simulator's terms.
fn answer(
    request: &trent_policy::AccessRequest,
    evaluation: &trent_policy::Evaluation,
) -> SimulationResult {
    let (decision, result) = verdict(request, evaluation);
    SimulationResult {
        decision: decision.to_string(),
        matched_statements: evaluation
            .statements
            .iter()
            .map(|s| MatchedStatement {
                source: s.source.clone(),
                sid: s.sid.clone(),
                index: s.index,
                effect: format!("{:?}", s.effect),
            })
            .collect(),
        matched_grants: evaluation.grants.clone(),
        missing_context_keys: evaluation.missing_context_keys.clone(),
        denial_message: result.err().map(|e| e.message()),
    }
}
