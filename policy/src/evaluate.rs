//! Per-request evaluation: build one Cedar context from the request (plus the native predicates
//! of the compiled sources), run each applicable source's policies through Cedar, and combine the
//! answers with [`decide`]. Nothing is compiled here.
//!
//! Context layout (keys of the `s`, `b`, `n`, `d`, `ip` records are lower-cased condition keys):
//! `s` a present key's values as a set of strings; `b` values that read as booleans;
//! `n`, `d`, `ip` single-valued keys that read as an integer, a date (epoch ms), an IP address;
//! `p` the principal (`arn`, `account`, `type`, `role`); `r` the resource (`arn`, `account`);
//! `action` the lower-cased action; `ec` the encryption context (lower-cased keys);
//! `ec_applies`; `checks` the predicates.
//!
//! Fast path (every request): a policy whose principal or action guard is false is false without
//! error, so it is not run. The context holds only what the remaining policies read (the
//! top-level attributes and keyed-record keys recorded at compile time, the predicates of their
//! statements), with the values the reference layout gives them; each remaining policy's
//! condition is evaluated with `eval_expression`; per set, the satisfied forbids (or, if none, the
//! satisfied permits) are the reasons, as Cedar's authorizer reports them. Any evaluation error,
//! or a request whose reference context Cedar would refuse, falls back to the reference path:
//! the full context above, every policy set through `Authorizer::is_authorized`. The decision,
//! statements, grants and errors are therefore always those of the reference path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    eval_expression, Authorizer, Context, Decision as CedarDecision, Entities, EntityId,
    EntityTypeName, EntityUid, EvalResult, Expression, PolicySet, Request,
    RestrictedExpression as Rx,
};

use crate::cedar::{Reads, KEYED, TOP};
use crate::compile::{CompiledPolicy, Predicate, StatementRef, Unit};
use crate::decision::{access_denied_message, decide, Basis, Decision, SourceAnswers};
use crate::document::Effect;
use crate::grant::{lower_keys, GrantIndex, GrantUnit};
use crate::request::{AccessRequest, PrincipalType};
use crate::value::ContextValue;

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
    fast(req, key_policy, &identity, grants)
        .unwrap_or_else(|| reference(req, key_policy, &identity, grants))
}

/// The reference path: the full context, every policy set through Cedar's authorizer.
fn reference(
    req: &AccessRequest,
    key_policy: &CompiledPolicy,
    identity: &[&CompiledPolicy],
    grants: Option<&GrantIndex>,
) -> Evaluation {
    let sources: Vec<&CompiledPolicy> = std::iter::once(key_policy)
        .chain(identity.iter().copied())
        .collect();
    let cedar_req = match cedar_request(req, &sources) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let key = run(&key_policy.set, Some(key_policy), &cedar_req);
    let mut ids = SetAnswer::default();
    for p in identity {
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
    conclude(req, key, ids, grant_ids, errors, &sources)
}

/// Combine the sets' answers into the evaluation (both paths).
fn conclude(
    req: &AccessRequest,
    key: SetAnswer,
    ids: SetAnswer,
    grant_ids: Vec<String>,
    errors: Vec<String>,
    sources: &[&CompiledPolicy],
) -> Evaluation {
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
        missing_context_keys: missing_keys(req, sources),
        errors,
    }
}

/// What the selected policies read: the union of their [`Reads`] and their predicates.
#[derive(Default)]
struct Needs<'a> {
    top: u16,
    all_keys: u16,
    keys: Vec<(usize, &'a str)>,
    predicates: Vec<&'a (String, Predicate)>,
}

impl<'a> Needs<'a> {
    fn add(&mut self, reads: &'a Reads) {
        self.top |= reads.top;
        self.all_keys |= reads.all_keys;
        for (rec, key) in &reads.keys {
            if !self.keys.iter().any(|(r, k)| r == rec && k == key) {
                self.keys.push((*rec, key));
            }
        }
    }

    fn add_unit(&mut self, source: &'a CompiledPolicy, unit: &'a Unit) {
        self.add(&unit.reads);
        for pred in source
            .predicates
            .get(unit.predicates.clone())
            .unwrap_or(&[])
        {
            if !self.predicates.iter().any(|p| p.0 == pred.0) {
                self.predicates.push(pred);
            }
        }
    }

    fn reads(&self, top: usize) -> bool {
        self.top & (1 << top) != 0
    }
}

/// The policies of `source` whose guards admit the request.
fn select<'a>(
    source: &'a CompiledPolicy,
    req: &AccessRequest,
    action: &str,
    chars: &[char],
    needs: &mut Needs<'a>,
) -> Vec<&'a Unit> {
    let p = &req.principal;
    let role = p.role_arn.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for unit in &source.units {
        if unit.principal.admits(&p.arn, role, &p.account)
            && unit.action.admits(action, chars, &req.action)
        {
            needs.add_unit(source, unit);
            out.push(unit);
        }
    }
    out
}

/// Evaluate one condition (none: it holds); `None` on an error or a non-boolean (the reference
/// path then decides).
fn holds(req: &Request, expr: Option<&Expression>) -> Option<bool> {
    let Some(expr) = expr else { return Some(true) };
    match eval_expression(req, &ENTITIES, expr) {
        Ok(EvalResult::Bool(b)) => Some(b),
        _ => None,
    }
}

/// The answer of one source's set, from its selected policies.
fn run_units(req: &Request, meta: &CompiledPolicy, units: &[&Unit]) -> Option<SetAnswer> {
    let mut permits: Vec<&(StatementRef, bool)> = Vec::new();
    let mut forbids: Vec<&(StatementRef, bool)> = Vec::new();
    for unit in units {
        if holds(req, unit.expr.as_ref())? {
            let st = meta.statements.get(&unit.id)?;
            match st.0.effect {
                Effect::Allow => permits.push(st),
                Effect::Deny => forbids.push(st),
            }
        }
    }
    // Cedar's reasons: the satisfied forbids if any, otherwise the satisfied permits.
    let mut reasons = if forbids.is_empty() { permits } else { forbids };
    reasons.sort_by(|x, y| x.0.policy_id.cmp(&y.0.policy_id));
    let mut a = SetAnswer::default();
    for (st, via_account) in reasons {
        match (st.effect, via_account) {
            (Effect::Deny, _) => a.deny.push(st.clone()),
            (Effect::Allow, false) => a.allow_direct.push(st.clone()),
            (Effect::Allow, true) => a.allow_account.push(st.clone()),
        }
    }
    Some(a)
}

/// The fast path; `None` when the reference path must answer.
fn fast(
    req: &AccessRequest,
    key_policy: &CompiledPolicy,
    identity: &[&CompiledPolicy],
    grants: Option<&GrantIndex>,
) -> Option<Evaluation> {
    if reference_context_fails(req) {
        return None;
    }
    let action = req.action.to_lowercase();
    let chars: Vec<char> = action.chars().collect();
    let mut needs = Needs::default();
    let key_units = select(key_policy, req, &action, &chars, &mut needs);
    let identity_units: Vec<Vec<&Unit>> = identity
        .iter()
        .map(|p| select(p, req, &action, &chars, &mut needs))
        .collect();
    let p = &req.principal;
    let mut grant_units: Vec<&GrantUnit> = Vec::new();
    if let Some(index) = grants {
        let grantees = std::iter::once(p.arn.as_str()).chain(p.role_arn.as_deref());
        for g in grantees {
            for unit in index.units.get(g).map(Vec::as_slice).unwrap_or(&[]) {
                if unit.actions.contains(&action) {
                    needs.add(&unit.reads);
                    grant_units.push(unit);
                }
            }
        }
    }
    let cedar_req = fast_request(req, &needs, &action)?;
    let key = run_units(&cedar_req, key_policy, &key_units)?;
    let mut ids = SetAnswer::default();
    for (policy, units) in identity.iter().zip(&identity_units) {
        let a = run_units(&cedar_req, policy, units)?;
        ids.allow_direct.extend(a.allow_direct);
        ids.allow_direct.extend(a.allow_account);
        ids.deny.extend(a.deny);
    }
    let mut grant_ids = Vec::new();
    for unit in grant_units {
        if holds(&cedar_req, unit.expr.as_ref())? {
            grant_ids.push(unit.grant_id.clone());
        }
    }
    grant_ids.sort();
    let sources: Vec<&CompiledPolicy> = std::iter::once(key_policy)
        .chain(identity.iter().copied())
        .collect();
    Some(conclude(req, key, ids, grant_ids, Vec::new(), &sources))
}

/// Whether Cedar would refuse the reference context: its `ip` record holds every single-valued
/// key that reads as an IP address, and Cedar's `ip()` refuses an IPv4 address written inside an
/// IPv6 one (`::ffff:10.0.0.1`) and over-long text. Over-approximated; only IPv6 text can fail.
fn reference_context_fails(req: &AccessRequest) -> bool {
    req.context.values().any(|entry| match &entry.values[..] {
        [one @ ContextValue::Ip(_)] => refused_ip(one),
        [one @ ContextValue::String(s)] if s.contains(':') => refused_ip(one),
        _ => false,
    })
}

fn refused_ip(v: &ContextValue) -> bool {
    match v.as_ip() {
        Some(IpAddr::V6(ip)) => {
            let text = ip.to_string();
            text.len() > 43 || text.contains('.')
        }
        _ => false,
    }
}

/// The context that `needs` describes (values as in [`cedar_request`]), and the Cedar request.
fn fast_request(req: &AccessRequest, needs: &Needs<'_>, action: &str) -> Option<Request> {
    let mut pairs: Vec<(String, Rx)> = Vec::with_capacity(TOP.len());
    for (rec, name) in TOP.iter().enumerate().take(KEYED) {
        if !needs.reads(rec) {
            continue;
        }
        let mut fields = Vec::new();
        if needs.all_keys & (1 << rec) != 0 {
            for (key, entry) in &req.context {
                if let Some(x) = typed(rec, &entry.values) {
                    fields.push((key.clone(), x));
                }
            }
        } else {
            for (r, key) in &needs.keys {
                if *r != rec {
                    continue;
                }
                if let Some(x) = req.context.get(*key).and_then(|e| typed(rec, &e.values)) {
                    fields.push((key.to_string(), x));
                }
            }
        }
        pairs.push((name.to_string(), record(fields).ok()?));
    }
    let p = &req.principal;
    for (i, name) in TOP.iter().enumerate().skip(KEYED) {
        if !needs.reads(i) {
            continue;
        }
        let value = match *name {
            "p" => principal_record(req).ok()?,
            "r" => resource_record(req).ok()?,
            "action" => string(action),
            "ec" => ec_record(req).ok()?,
            "ec_applies" => Rx::new_bool(req.encryption_context_applies),
            _ => record(
                needs
                    .predicates
                    .iter()
                    .map(|(name, pred)| (name.clone(), Rx::new_bool(pred.holds(req))))
                    .collect(),
            )
            .ok()?,
        };
        pairs.push((name.to_string(), value));
    }
    let context = Context::from_pairs(pairs).ok()?;
    Request::new(
        uid(0, &p.arn),
        uid(1, action),
        uid(2, &req.resource.arn),
        context,
        None,
    )
    .ok()
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

/// A key's entry in keyed record `rec` (`s`, `b`, `n`, `d`, `ip`), if it has one.
fn typed(rec: usize, vals: &[ContextValue]) -> Option<Rx> {
    match rec {
        0 => Some(Rx::new_set(
            vals.iter().map(|v| Rx::new_string(v.as_text())),
        )),
        1 => {
            let bools: Vec<Rx> = vals
                .iter()
                .filter_map(|v| v.as_bool())
                .map(|x| string(if x { "true" } else { "false" }))
                .collect();
            (!bools.is_empty()).then(|| Rx::new_set(bools))
        }
        _ => {
            let [one] = vals else { return None };
            match rec {
                2 => one.as_long().map(Rx::new_long),
                3 => one.as_date().map(Rx::new_long),
                _ => one.as_ip().map(|x| Rx::new_ip(x.to_string())),
            }
        }
    }
}

fn principal_record(req: &AccessRequest) -> Result<Rx, String> {
    let p = &req.principal;
    record(vec![
        ("arn".into(), string(&p.arn)),
        ("account".into(), string(&p.account)),
        ("type".into(), string(p.kind.as_str())),
        ("role".into(), string(p.role_arn.as_deref().unwrap_or(""))),
    ])
}

fn resource_record(req: &AccessRequest) -> Result<Rx, String> {
    record(vec![
        ("arn".into(), string(&req.resource.arn)),
        ("account".into(), string(&req.resource.account)),
    ])
}

fn ec_record(req: &AccessRequest) -> Result<Rx, String> {
    let ec: BTreeMap<String, String> = lower_keys(&req.encryption_context);
    record(
        ec.into_iter()
            .map(|(k, v)| (k, Rx::new_string(v)))
            .collect(),
    )
}

/// Build the reference Cedar request: the whole context, with every predicate of `sources`
/// evaluated.
fn cedar_request(req: &AccessRequest, sources: &[&CompiledPolicy]) -> Result<Request, String> {
    let mut keyed: [Vec<(String, Rx)>; KEYED] = Default::default();
    for (key, entry) in &req.context {
        for (rec, fields) in keyed.iter_mut().enumerate() {
            if let Some(x) = typed(rec, &entry.values) {
                fields.push((key.clone(), x));
            }
        }
    }
    let [s, b, n, d, ip] = keyed;
    let p = &req.principal;
    let principal = principal_record(req)?;
    let resource = resource_record(req)?;
    let ec = ec_record(req)?;
    // Predicates are named by what they test: one that several policies share is evaluated once.
    let mut checks: Vec<(String, Rx)> = Vec::new();
    for (name, pred) in sources.iter().flat_map(|src| src.predicates.iter()) {
        if !checks.iter().any(|(n, _)| n == name) {
            checks.push((name.clone(), Rx::new_bool(pred.holds(req))));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::PolicyKind;
    use crate::grant::{Grant, GrantConstraints, GrantOperation};
    use crate::request::{Principal, Resource};

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    const STATEMENTS: &[&str] = &[
        r#"{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/bob"]},"Action":["kms:Decrypt","kms:Describe*"],"Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":["kms:Create*","kms:?cheduleKeyDeletion"],"Resource":"*","Condition":{"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":"14"}}}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:partner":"444455556666"}}}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"NotAction":["kms:ScheduleKeyDeletion"],"Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:path":"${aws:username}/?*"},"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["team","path"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#,
        r#"{"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Encrypt","Resource":"*","Condition":{"ArnLike":{"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:*:111122223333:*"}}}"#,
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/bob","111122223333"]},"Action":"kms:*","Resource":"*","Condition":{"Null":{"kms:GrantIsForAWSResource":"false"}}}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"arn:aws:kms:*:111122223333:key/*","Condition":{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"},"ForAnyValue:StringLike":{"kms:GrantOperations":["Decrypt","Encrypt*"]}}}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"},"BoolIfExists":{"kms:GrantIsForAWSResource":"true"}}}"#,
    ];

    const IDENTITY: &[&str] = &[
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt","kms:CreateGrant"],"Resource":"arn:aws:kms:*:111122223333:key/*"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":"kms:Describe*","Resource":"*","Condition":{"NumericLessThan":{"kms:RotationPeriodInDays":"90"}}},{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    ];

    fn grants() -> GrantIndex {
        let g =
            |id: &str, who: &str, ops: Vec<GrantOperation>, c: Option<GrantConstraints>| Grant {
                grant_id: id.into(),
                grantee_principal: who.into(),
                operations: ops,
                constraints: c,
            };
        GrantIndex::from_grants([
            g(
                "g1",
                "arn:aws:iam::111122223333:user/alice",
                vec![GrantOperation::Decrypt],
                None,
            ),
            g(
                "g2",
                "arn:aws:iam::111122223333:role/admin",
                vec![GrantOperation::Encrypt, GrantOperation::DescribeKey],
                Some(GrantConstraints {
                    encryption_context_equals: Some(
                        [("Team".to_string(), "blue".to_string())].into(),
                    ),
                    encryption_context_subset: None,
                    source_arn: None,
                }),
            ),
            g(
                "g3",
                "arn:aws:iam::111122223333:user/alice",
                vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
                Some(GrantConstraints {
                    encryption_context_equals: None,
                    encryption_context_subset: Some(
                        [("team".to_string(), "blue".to_string())].into(),
                    ),
                    source_arn: None,
                }),
            ),
            g(
                "g4",
                "logs.amazonaws.com",
                vec![
                    GrantOperation::Encrypt,
                    GrantOperation::Decrypt,
                    GrantOperation::RetireGrant,
                ],
                Some(GrantConstraints {
                    encryption_context_equals: None,
                    encryption_context_subset: Some(
                        [("team".to_string(), "blue".to_string())].into(),
                    ),
                    source_arn: Some(SOURCE.to_string()),
                }),
            ),
        ])
        .unwrap()
    }

    const SOURCE: &str = "arn:aws:logs:us-east-1:111122223333:log-group:app";

    fn requests() -> Vec<AccessRequest> {
        let principals = [
            Principal::user("111122223333", "bob").with_tag("team", "blue"),
            Principal::user("111122223333", "alice"),
            Principal::root("111122223333"),
            Principal::root("444455556666"),
            Principal::assumed_role("111122223333", "admin", "s1"),
            Principal::service("logs.amazonaws.com"),
        ];
        let actions = [
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:DescribeKey",
            "kms:ScheduleKeyDeletion",
            "kms:CreateGrant",
            "KMS:decrypt",
            "kms:RetireGrant",
        ];
        let mut out = Vec::new();
        for (i, p) in principals.iter().enumerate() {
            for (j, a) in actions.iter().enumerate() {
                for variant in 0..8usize {
                    let mut b = AccessRequest::builder(p.clone(), a, Resource::from_arn(KEY));
                    if variant & 1 == 0 {
                        b = b.context("aws:SecureTransport", (i + j) % 3 != 0);
                    }
                    b = match (variant + i) % 4 {
                        0 => b.context("aws:SourceIp", "10.1.2.3"),
                        1 => b.context("aws:SourceIp", "192.0.2.1"),
                        2 => b.context("aws:SourceIp", "2001:db8::5"),
                        _ => b,
                    };
                    if variant & 2 == 0 {
                        b = b.encryption_context([("team", "blue"), ("path", "bob/x")]);
                    } else {
                        b = b.encryption_context([("partner", "444455556666"), ("Team", "blue")]);
                    }
                    if variant & 4 == 0 {
                        b = b
                            .context("kms:ScheduleKeyDeletionPendingWindowInDays", (j * 7) as i64)
                            .context_values("kms:GrantOperations", ["Decrypt", "EncryptFoo"])
                            .context("kms:GrantIsForAWSResource", variant % 3 == 0)
                            .context("kms:RotationPeriodInDays", (i * 40) as i64);
                    } else {
                        b = b
                            .context("aws:CurrentTime", ContextValue::Date(1_900_000_000_000))
                            .context("kms:ViaService", "ec2.us-east-1.amazonaws.com");
                    }
                    if (i + j + variant) % 5 == 0 {
                        b = b.without_encryption_context();
                    }
                    b = match (i + j + variant) % 3 {
                        0 => b.context("aws:SourceArn", SOURCE),
                        1 => {
                            b.context("aws:SourceArn", "arn:aws:logs:us-east-1:111122223333:other")
                        }
                        _ => b,
                    };
                    out.push(b.build());
                }
            }
        }
        out
    }

    /// The fast path answers every request as the reference path does (and does answer).
    #[test]
    fn fast_path_equals_reference() {
        let statements: Vec<String> = STATEMENTS.iter().map(|s| s.to_string()).collect();
        let mut key_policies = vec![format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )];
        for st in STATEMENTS {
            key_policies.push(format!(r#"{{"Version":"2012-10-17","Statement":[{st}]}}"#));
        }
        let identity: Vec<CompiledPolicy> = IDENTITY
            .iter()
            .enumerate()
            .map(|(i, t)| {
                CompiledPolicy::from_text(t, PolicyKind::Identity, &format!("id{i}")).unwrap()
            })
            .collect();
        let grants = grants();
        let requests = requests();
        let (mut answered, mut allowed) = (0, 0);
        for text in &key_policies {
            let kp = CompiledPolicy::from_text(text, PolicyKind::KeyPolicy, "key").unwrap();
            for req in &requests {
                for ids in [&identity[..0], &identity[..]] {
                    let ids: Vec<&CompiledPolicy> = ids.iter().collect();
                    for g in [None, Some(&grants)] {
                        let want = reference(req, &kp, &ids, g);
                        assert!(want.errors.is_empty(), "{:?}", want.errors);
                        let got = fast(req, &kp, &ids, g).expect("the fast path answers");
                        assert_eq!(got, want, "{req:?}\n{text}");
                        answered += 1;
                        allowed += usize::from(want.decision == Decision::Allow);
                    }
                }
            }
        }
        assert!(
            allowed > 100 && allowed < answered - 100,
            "{allowed} of {answered}"
        );
    }

    /// Cedar refuses an IPv4 address written in an IPv6 one: the reference path answers.
    #[test]
    fn refused_context_falls_back() {
        let kp = CompiledPolicy::from_text(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
            PolicyKind::KeyPolicy,
            "key",
        )
        .unwrap();
        let req = AccessRequest::builder(
            Principal::user("111122223333", "bob"),
            "kms:Decrypt",
            Resource::from_arn(KEY),
        )
        .context("aws:SourceIp", "::ffff:10.0.0.1")
        .build();
        assert!(fast(&req, &kp, &[], None).is_none());
        let e = authorize(&req, &kp, [], None);
        assert_eq!(e.basis, Basis::EvaluationError);
        assert_eq!(e, reference(&req, &kp, &[], None));
    }
}
