//! Per-request evaluation: build one Cedar context from the request (plus the native predicates
//! of the compiled sources), run each applicable source's policy set through Cedar, and combine
//! the answers with [`decide`]. Nothing is compiled here.
//!
//! Context layout (keys of the `s`, `b`, `n`, `d`, `ip` records are lower-cased condition keys):
//! `s` every present key's values as a set of strings; `b` values that read as booleans;
//! `n`, `d`, `ip` single-valued keys that read as an integer, a date (epoch ms), an IP address;
//! `p` the principal (`arn`, `account`, `type`, `role`); `r` the resource (`arn`, `account`);
//! `action` the lower-cased action; `ec` the encryption context (lower-cased keys);
//! `ec_applies`; `checks` the predicates.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression as Rx,
};

use crate::compile::{CompiledPolicy, StatementRef};
use crate::decision::{access_denied_message, decide, Basis, Decision, SourceAnswers};
use crate::document::Effect;
use crate::grant::{lower_keys, GrantIndex};
use crate::request::{AccessRequest, PrincipalType};

static AUTHORIZER: LazyLock<Authorizer> = LazyLock::new(Authorizer::new);
static ENTITIES: LazyLock<Entities> = LazyLock::new(Entities::empty);
static TYPES: LazyLock<[EntityTypeName; 3]> = LazyLock::new(|| {
    ["Principal", "Action", "Resource"].map(|t| EntityTypeName::from_str(t).expect("type name"))
});

/// The result of an authorization: the decision, why, and what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Allow, explicit deny or implicit deny.
    pub decision: Decision,
    /// Which rule decided.
    pub basis: Basis,
    /// The statements that decided (for a deny, the Deny statements; for an implicit deny, any
    /// Allow statements that matched without being enough).
    pub statements: Vec<StatementRef>,
    /// The grants that allowed.
    pub grants: Vec<String>,
    /// Condition keys the policies reference that the request did not carry, as written.
    pub missing_context_keys: Vec<String>,
    /// Cedar evaluation errors (never expected; any error denies).
    pub errors: Vec<String>,
}

impl Evaluation {
    /// The `AccessDeniedException` message for this request, or `None` when allowed.
    pub fn access_denied_message(&self, req: &AccessRequest) -> Option<String> {
        access_denied_message(
            &req.principal.arn,
            &req.action,
            &req.resource.arn,
            self.basis,
        )
    }
}

#[derive(Default)]
struct SetAnswer {
    allow_direct: Vec<StatementRef>,
    allow_account: Vec<StatementRef>,
    deny: Vec<StatementRef>,
    errors: Vec<String>,
}

/// Authorize `req` against the key policy, the caller's IAM policies and the key's grants.
///
/// The same function serves other resource policies (a role's trust policy for `sts:AssumeRole`:
/// pass it as `key_policy` and no grants).
pub fn authorize<'a>(
    req: &AccessRequest,
    key_policy: &CompiledPolicy,
    identity_policies: impl IntoIterator<Item = &'a CompiledPolicy>,
    grants: Option<&GrantIndex>,
) -> Evaluation {
    let identity: Vec<&CompiledPolicy> = identity_policies.into_iter().collect();
    let sources: Vec<&CompiledPolicy> = std::iter::once(key_policy)
        .chain(identity.iter().copied())
        .collect();
    let cedar_req = match cedar_request(req, &sources) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let key = run(&key_policy.set, Some(key_policy), &cedar_req);
    let mut ids = SetAnswer::default();
    for p in &identity {
        let a = run(&p.set, Some(p), &cedar_req);
        ids.allow_direct.extend(a.allow_direct);
        ids.allow_direct.extend(a.allow_account);
        ids.deny.extend(a.deny);
        ids.errors.extend(a.errors);
    }
    let mut grant_ids = Vec::new();
    let mut errors: Vec<String> = key.errors.iter().chain(&ids.errors).cloned().collect();
    if let Some(index) = grants {
        let p = &req.principal;
        let grantees = std::iter::once(p.arn.as_str()).chain(p.role_arn.as_deref());
        for g in grantees {
            if let Some(set) = index.by_grantee.get(g) {
                let resp = AUTHORIZER.is_authorized(&cedar_req, set, &ENTITIES);
                errors.extend(resp.diagnostics().errors().map(|e| e.to_string()));
                if resp.decision() == CedarDecision::Allow {
                    grant_ids.extend(resp.diagnostics().reason().map(|id| {
                        id.to_string()
                            .strip_prefix("grant:")
                            .unwrap_or_default()
                            .to_string()
                    }));
                }
            }
        }
        grant_ids.sort();
    }
    let p = &req.principal;
    let answers = SourceAnswers {
        same_account: p.account == req.resource.account || p.kind == PrincipalType::Service,
        resource_deny: !key.deny.is_empty(),
        resource_allows_principal: !key.allow_direct.is_empty(),
        resource_allows_account: !key.allow_account.is_empty(),
        identity_deny: !ids.deny.is_empty(),
        identity_allow: !ids.allow_direct.is_empty() || p.kind == PrincipalType::Root,
        grant_allow: !grant_ids.is_empty(),
        error: !errors.is_empty(),
    };
    let (decision, basis) = decide(&answers);
    let statements = match basis {
        Basis::ExplicitDeny(_) => [key.deny, ids.deny].concat(),
        Basis::KeyPolicy => key.allow_direct,
        Basis::IdentityDelegation => [key.allow_account, ids.allow_direct].concat(),
        Basis::CrossAccount => [key.allow_direct, key.allow_account, ids.allow_direct].concat(),
        Basis::Grant | Basis::EvaluationError => Vec::new(),
        Basis::NoAllow(_) => [key.allow_direct, key.allow_account, ids.allow_direct].concat(),
    };
    let grants = if basis == Basis::Grant {
        grant_ids
    } else {
        Vec::new()
    };
    Evaluation {
        decision,
        basis,
        statements,
        grants,
        missing_context_keys: missing_keys(req, &sources),
        errors,
    }
}

fn failed(e: String) -> Evaluation {
    Evaluation {
        decision: Decision::ExplicitDeny,
        basis: Basis::EvaluationError,
        statements: Vec::new(),
        grants: Vec::new(),
        missing_context_keys: Vec::new(),
        errors: vec![e],
    }
}

fn missing_keys(req: &AccessRequest, sources: &[&CompiledPolicy]) -> Vec<String> {
    let present: Vec<&str> = req.present_keys().collect();
    let mut out: Vec<String> = Vec::new();
    for s in sources {
        for (lower, written) in &s.context_keys {
            if !present.contains(&lower.as_str())
                && !out.iter().any(|o| o.eq_ignore_ascii_case(written))
            {
                out.push(written.clone());
            }
        }
    }
    out
}

fn run(set: &PolicySet, meta: Option<&CompiledPolicy>, req: &Request) -> SetAnswer {
    let resp = AUTHORIZER.is_authorized(req, set, &ENTITIES);
    let mut a = SetAnswer {
        errors: resp.diagnostics().errors().map(|e| e.to_string()).collect(),
        ..SetAnswer::default()
    };
    let Some(meta) = meta else { return a };
    let mut reasons: Vec<&(StatementRef, bool)> = resp
        .diagnostics()
        .reason()
        .filter_map(|id| meta.statements.get(AsRef::<str>::as_ref(id)))
        .collect();
    reasons.sort_by(|x, y| x.0.policy_id.cmp(&y.0.policy_id));
    for (st, via_account) in reasons {
        match (st.effect, via_account) {
            (Effect::Deny, _) => a.deny.push(st.clone()),
            (Effect::Allow, false) => a.allow_direct.push(st.clone()),
            (Effect::Allow, true) => a.allow_account.push(st.clone()),
        }
    }
    a
}

fn uid(kind: usize, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(TYPES[kind].clone(), EntityId::new(id))
}

fn string(s: &str) -> Rx {
    Rx::new_string(s.to_string())
}

fn record(fields: Vec<(String, Rx)>) -> Result<Rx, String> {
    Rx::new_record(fields).map_err(|e| e.to_string())
}

/// Build the Cedar request: the context, with every predicate of `sources` evaluated.
fn cedar_request(req: &AccessRequest, sources: &[&CompiledPolicy]) -> Result<Request, String> {
    let mut s = Vec::new();
    let mut b = Vec::new();
    let mut n = Vec::new();
    let mut d = Vec::new();
    let mut ip = Vec::new();
    for (key, entry) in &req.context {
        let vals = &entry.values;
        s.push((
            key.clone(),
            Rx::new_set(vals.iter().map(|v| Rx::new_string(v.as_text()))),
        ));
        let bools: Vec<Rx> = vals
            .iter()
            .filter_map(|v| v.as_bool())
            .map(|x| string(if x { "true" } else { "false" }))
            .collect();
        if !bools.is_empty() {
            b.push((key.clone(), Rx::new_set(bools)));
        }
        if let [one] = &vals[..] {
            if let Some(x) = one.as_long() {
                n.push((key.clone(), Rx::new_long(x)));
            }
            if let Some(x) = one.as_date() {
                d.push((key.clone(), Rx::new_long(x)));
            }
            if let Some(x) = one.as_ip() {
                ip.push((key.clone(), Rx::new_ip(x.to_string())));
            }
        }
    }
    let p = &req.principal;
    let principal = record(vec![
        ("arn".into(), string(&p.arn)),
        ("account".into(), string(&p.account)),
        ("type".into(), string(p.kind.as_str())),
        ("role".into(), string(p.role_arn.as_deref().unwrap_or(""))),
    ])?;
    let resource = record(vec![
        ("arn".into(), string(&req.resource.arn)),
        ("account".into(), string(&req.resource.account)),
    ])?;
    let ec: BTreeMap<String, String> = lower_keys(&req.encryption_context);
    let ec = record(
        ec.into_iter()
            .map(|(k, v)| (k, Rx::new_string(v)))
            .collect(),
    )?;
    let checks: Vec<(String, Rx)> = sources
        .iter()
        .flat_map(|src| src.predicates.iter())
        .map(|(name, pred)| (name.clone(), Rx::new_bool(pred.holds(req))))
        .collect();
    let action = req.action.to_lowercase();
    let context = Context::from_pairs([
        ("s".to_string(), record(s)?),
        ("b".to_string(), record(b)?),
        ("n".to_string(), record(n)?),
        ("d".to_string(), record(d)?),
        ("ip".to_string(), record(ip)?),
        ("p".to_string(), principal),
        ("r".to_string(), resource),
        ("action".to_string(), string(&action)),
        ("ec".to_string(), ec),
        (
            "ec_applies".to_string(),
            Rx::new_bool(req.encryption_context_applies),
        ),
        ("checks".to_string(), record(checks)?),
    ])
    .map_err(|e| e.to_string())?;
    Request::new(
        uid(0, &p.arn),
        uid(1, &action),
        uid(2, &req.resource.arn),
        context,
        None,
    )
    .map_err(|e| e.to_string())
}
