//! Compiling a policy document to Cedar, once per change of the document.
//!
//! One statement becomes one Cedar policy with an explicit id `SOURCE#INDEX` (and an `@sid`
//! annotation). The one exception: an `Allow` in a resource policy whose `Principal` mixes account
//! principals with specific ones is split in two, `SOURCE#INDEX` (the specific principals) and
//! `SOURCE#INDEX@account` (the accounts), because AWS treats the two differently (an account
//! principal delegates to the account's IAM policies). Both ids map back to the same statement.
//!
//! What Cedar cannot say directly becomes a predicate: the compiler registers it under a
//! process-unique name `pN`, emits `context.checks.pN == true`, and the evaluator computes it
//! natively per request. Nothing is dropped: anything not understood is a compile error.
//!
//! Each Cedar policy is also kept as a [`Unit`] for the evaluator's fast path: its `when`
//! condition parsed once as a Cedar expression, what it reads from the context ([`Reads`]), its
//! predicates, and two guards that are exact restatements of its first conjuncts (principal, then
//! action), which never raise an error: when a guard is false the policy is false, so the
//! evaluator need not build its part of the context nor run it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::str::FromStr;

use cedar_policy::{Expression, Policy, PolicyId, PolicySet};
use serde_json::Value;

use crate::cedar::{self, Reads};
use crate::condition::Condition;
use crate::document::{Effect, PolicyDocument, PolicyError, PolicyKind, Statement};
use crate::pattern::{
    arn_match, glob_chars, glob_str, has_variables, pieces, variable_names, Piece,
};
use crate::request::AccessRequest;

/// Where a deciding Cedar policy came from: the source, the statement, and its Sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The source's name, as given to [`CompiledPolicy::compile`] (e.g. `key-policy`).
    pub source: String,
    /// The Cedar policy id (`key-policy#2`, `key-policy#2@account`).
    pub policy_id: String,
    /// The statement's `Sid`, if any.
    pub sid: Option<String>,
    /// The statement's index in the document.
    pub index: usize,
    /// The statement's effect.
    pub effect: Effect,
}

/// Something decided natively per request, referenced from Cedar as `context.checks.NAME`.
#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    Condition(Condition),
    /// Action patterns with `?` (matched case-insensitively).
    Action(Vec<String>),
    /// Resource patterns with `?`, wildcards before the last ARN part, or policy variables.
    Resource {
        patterns: Vec<String>,
        variables: bool,
    },
}

impl Predicate {
    /// The predicate's name in `context.checks`: a 128-bit digest of what it tests, so the same
    /// policy compiles to the same Cedar text every time (replays compare compiled policies), and
    /// the predicates of all policies of one evaluation share one record without clashing (two
    /// predicates with one name test the same thing, so they always agree).
    pub(crate) fn name(&self) -> String {
        let text = format!("{self:?}");
        let half = |seed: u8| {
            let mut h = DefaultHasher::new();
            seed.hash(&mut h);
            text.hash(&mut h);
            h.finish()
        };
        format!("p{:016x}{:016x}", half(0), half(1))
    }

    /// Evaluate natively.
    pub(crate) fn holds(&self, req: &AccessRequest) -> bool {
        match self {
            Self::Condition(c) => c.holds(req),
            Self::Action(patterns) => patterns.iter().any(|p| glob_str(p, &req.action, true)),
            Self::Resource {
                patterns,
                variables,
            } => {
                let lookup = |n: &str| req.variable(n);
                patterns.iter().any(|p| {
                    pieces(p, *variables, &lookup)
                        .is_some_and(|pc| arn_match(&pc, &req.resource.arn))
                })
            }
        }
    }
}

/// A necessary condition on the caller for a policy to apply: exactly the atoms of its principal
/// test (`context.p.arn == X`, `... || context.p.role == X`, `context.p.account == X`; a service
/// atom also tests the ARN), checked natively.
#[derive(Debug, Clone)]
pub(crate) enum PrincipalGuard {
    /// Any caller may match (`*`, `NotPrincipal`, or no `Principal` at all).
    Any,
    /// Only a caller matching one of these (none: the policy never applies).
    OneOf(Vec<PrincipalKey>),
}

/// Principal tests as Cedar expressions, each with its guard atom (`None`: any caller).
type Atoms = Vec<(String, Option<PrincipalKey>)>;

/// One atom of a principal test.
#[derive(Debug, Clone)]
pub(crate) enum PrincipalKey {
    /// `context.p.arn == X`.
    Arn(String),
    /// `context.p.arn == X || context.p.role == X`.
    ArnOrRole(String),
    /// `context.p.account == X`.
    Account(String),
}

impl PrincipalGuard {
    /// Whether [`Self::admits`] is exactly the principal test (no service atom, no `NotPrincipal`).
    fn exact(&self, atoms: &[Option<PrincipalKey>], service: bool) -> bool {
        matches!(self, Self::OneOf(_)) && !service && atoms.iter().all(Option::is_some)
    }

    fn from_atoms(atoms: &[Option<PrincipalKey>]) -> Self {
        match atoms.iter().cloned().collect::<Option<Vec<_>>>() {
            Some(keys) => Self::OneOf(keys),
            None => Self::Any,
        }
    }

    /// Whether a caller with this ARN, role ARN (`""` when none) and account may match.
    pub(crate) fn admits(&self, arn: &str, role: &str, account: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(keys) => keys.iter().any(|k| match k {
                PrincipalKey::Arn(x) => x == arn,
                PrincipalKey::ArnOrRole(x) => x == arn || x == role,
                PrincipalKey::Account(x) => x == account,
            }),
        }
    }
}

/// The actions a statement's `Action`/`NotAction` test matches, restated natively from the same
/// patterns: exact names (`action in [...]`), `*` patterns (`context.action like ...`), both on the
/// lower-cased action, and `?` patterns (the same native test as their predicate).
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionGuard {
    any: bool,
    exact: Vec<String>,
    like: Vec<Vec<Piece>>,
    native: Vec<String>,
    negated: bool,
}

impl ActionGuard {
    fn every() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Whether the action test holds: `lower` is the lower-cased action, `chars` its characters,
    /// `action` the action as requested.
    pub(crate) fn admits(&self, lower: &str, chars: &[char], action: &str) -> bool {
        let matched = self.any
            || self.exact.iter().any(|e| e == lower)
            || self.like.iter().any(|p| glob_chars(p, chars))
            || self.native.iter().any(|p| glob_str(p, action, true));
        matched != self.negated
    }
}

/// One Cedar policy of a compiled set, prepared for the evaluator's fast path.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// The Cedar policy id (a key of `statements`).
    pub id: String,
    /// The policy's `when` condition (its scope is unconstrained) without the conjuncts its
    /// guards decide exactly, parsed once; `None` when nothing is left (the policy holds).
    pub expr: Option<Expression>,
    /// The principal guard (the first conjunct).
    pub principal: PrincipalGuard,
    /// The action guard (the second conjunct, when the statement has an action element).
    pub action: ActionGuard,
    /// What the condition reads from the context.
    pub reads: Reads,
    /// The statement's predicates (indices into `predicates`).
    pub predicates: Range<usize>,
}

/// A policy document compiled to a Cedar policy set, with the map back to its statements.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    source: String,
    kind: PolicyKind,
    pub(crate) set: PolicySet,
    pub(crate) statements: HashMap<String, (StatementRef, bool)>,
    pub(crate) predicates: Vec<(String, Predicate)>,
    pub(crate) context_keys: Vec<(String, String)>,
    pub(crate) units: Vec<Unit>,
    principals: Vec<String>,
    cedar_text: String,
}

impl CompiledPolicy {
    /// Parse (with the rules of `kind`) and compile a policy text.
    pub fn from_text(text: &str, kind: PolicyKind, source: &str) -> Result<Self, PolicyError> {
        let doc = PolicyDocument::parse_kind(text, kind)?;
        Self::compile(&doc, kind, source)
    }

    /// Compile a parsed document. `source` names it in decisions (e.g. `key-policy`, or an IAM
    /// policy's name); it must not contain `#`.
    pub fn compile(
        doc: &PolicyDocument,
        kind: PolicyKind,
        source: &str,
    ) -> Result<Self, PolicyError> {
        let mut c = Self {
            source: source.to_string(),
            kind,
            set: PolicySet::new(),
            statements: HashMap::new(),
            predicates: Vec::new(),
            context_keys: Vec::new(),
            units: Vec::new(),
            principals: Vec::new(),
            cedar_text: String::new(),
        };
        let variables = doc.version.as_deref() == Some("2012-10-17");
        for (i, st) in doc.statements.iter().enumerate() {
            c.statement(i, st, variables)?;
        }
        Ok(c)
    }

    /// The source name given at compile time.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The kind of document compiled.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The generated Cedar text (for inspection and simulation output).
    pub fn cedar_text(&self) -> &str {
        &self.cedar_text
    }

    /// The principal ARNs and account ids the policy names (so the service can refuse principals
    /// that do not exist, as AWS does).
    pub fn principals(&self) -> &[String] {
        &self.principals
    }

    /// The condition keys the policy references (conditions and policy variables), as written.
    pub fn context_keys(&self) -> impl Iterator<Item = &str> {
        self.context_keys.iter().map(|(_, w)| w.as_str())
    }

    fn predicate(&mut self, p: Predicate) -> String {
        let name = p.name();
        self.predicates.push((name.clone(), p));
        format!("(context.checks.{name} == true)")
    }

    fn note_key(&mut self, written: &str) {
        let lower = written.to_lowercase();
        if !self.context_keys.iter().any(|(l, _)| *l == lower) {
            self.context_keys.push((lower, written.to_string()));
        }
    }

    fn statement(&mut self, i: usize, st: &Statement, variables: bool) -> Result<(), PolicyError> {
        let loc = format!("Statement[{i}]");
        let first_predicate = self.predicates.len();
        let mut parts = Vec::new();
        let (action, action_guard) = self.action_part(st);
        parts.extend(action);
        match (&st.resource, &st.not_resource) {
            (Some(r), _) => parts.push(self.resources(&r.0, variables, &loc)?),
            (_, Some(nr)) => parts.push(format!("!{}", self.resources(&nr.0, variables, &loc)?)),
            _ => {}
        }
        let tracked = self.condition_parts(st, &loc, variables, &mut parts)?;
        let predicates = first_predicate..self.predicates.len();
        let principal_forms = self.principal_forms(st, &loc)?;
        // The conjuncts left for the fast path: without the action test (its guard is exact) and
        // without literal `true`s.
        let action_parts = usize::from(st.action.is_some() || st.not_action.is_some());
        let rest: Vec<&String> = parts
            .iter()
            .skip(action_parts)
            .filter(|p| *p != "true")
            .collect();
        for form in principal_forms {
            let compiled = CompiledStatement {
                index: i,
                st,
                loc: &loc,
                parts: &parts,
                rest: &rest,
                action_guard: &action_guard,
                tracked: &tracked,
                predicates: predicates.clone(),
            };
            self.add_unit(compiled, form)?;
        }
        Ok(())
    }

    /// The statement's action test (`Action`, or `NotAction` negated; none without either) and
    /// its guard.
    fn action_part(&mut self, st: &Statement) -> (Option<String>, ActionGuard) {
        match (&st.action, &st.not_action) {
            (Some(a), _) => {
                let (expr, guard) = self.actions(&a.0);
                (Some(expr), guard)
            }
            (_, Some(na)) => {
                let (expr, guard) = self.actions(&na.0);
                let guard = ActionGuard {
                    negated: true,
                    ..guard
                };
                (Some(format!("!{expr}")), guard)
            }
            _ => (None, ActionGuard::every()),
        }
    }

    /// One conjunct per condition (Cedar where it can say it, else a predicate), pushed onto
    /// `parts`; the context attributes the Cedar ones read.
    fn condition_parts(
        &mut self,
        st: &Statement,
        loc: &str,
        variables: bool,
        parts: &mut Vec<String>,
    ) -> Result<Vec<(usize, String)>, PolicyError> {
        let mut tracked = Vec::new();
        let Some(ops) = &st.condition else {
            return Ok(tracked);
        };
        for (op, keys) in ops {
            let Value::Object(keys) = keys else { continue };
            for (key, values) in keys {
                let at = format!("{loc}.Condition.{op}.{key}");
                let cond = Condition::new(op, key, values, variables).map_err(|e| {
                    PolicyError::Invalid {
                        location: at.clone(),
                        problem: e,
                    }
                })?;
                self.note_key(key);
                for v in cond.variable_keys() {
                    self.note_key(&v);
                }
                let expr = match cond.cedar() {
                    Some(e) => {
                        tracked.extend(cond.cedar_reads());
                        e
                    }
                    None => self.predicate(Predicate::Condition(cond)),
                };
                parts.push(expr);
            }
        }
        Ok(tracked)
    }

    /// The statement's principal forms: an Allow in a resource policy whose principals include
    /// accounts is split into a direct form and an `@account` (delegating) form.
    fn principal_forms(
        &mut self,
        st: &Statement,
        loc: &str,
    ) -> Result<Vec<PrincipalForm>, PolicyError> {
        let mut forms: Vec<PrincipalForm> = Vec::new();
        if let Some(p) = &st.principal {
            let (direct, accounts) = self.principal_entries(p, &format!("{loc}.Principal"))?;
            let exprs = |atoms: &[(String, Option<PrincipalKey>)]| -> Vec<String> {
                atoms.iter().map(|(e, _)| e.clone()).collect()
            };
            let guard = |atoms: &[(String, Option<PrincipalKey>)]| {
                let keys: Vec<Option<PrincipalKey>> =
                    atoms.iter().map(|(_, k)| k.clone()).collect();
                let g = PrincipalGuard::from_atoms(&keys);
                let service = atoms.iter().any(|(e, _)| e.contains("context.p.type"));
                let exact = g.exact(&keys, service);
                (g, exact)
            };
            let direct_expr = or(&exprs(&direct));
            let account_expr = or(&exprs(&accounts));
            let split = st.effect == Effect::Allow && self.kind != PolicyKind::Identity;
            match (split, direct.is_empty(), accounts.is_empty()) {
                (true, false, false) => {
                    forms.push(("", direct_expr, false, guard(&direct)));
                    forms.push(("@account", account_expr, true, guard(&accounts)));
                }
                (true, true, false) => {
                    forms.push(("@account", account_expr, true, guard(&accounts)))
                }
                _ => {
                    let all = [direct, accounts].concat();
                    forms.push(("", or(&exprs(&all)), false, guard(&all)))
                }
            }
        } else if let Some(np) = &st.not_principal {
            let expr = self.not_principal(np, &format!("{loc}.NotPrincipal"))?;
            forms.push(("", expr, false, (PrincipalGuard::Any, false)));
        } else {
            forms.push(("", "true".into(), false, (PrincipalGuard::Any, false)));
        }
        Ok(forms)
    }

    /// Compile one principal form of a statement into a Cedar policy and its fast-path unit.
    fn add_unit(
        &mut self,
        c: CompiledStatement<'_>,
        (suffix, principal, via_account, (principal_guard, exact)): PrincipalForm,
    ) -> Result<(), PolicyError> {
        let (i, st, loc) = (c.index, c.st, c.loc);
        let err = |at: String, problem: String| PolicyError::Invalid {
            location: at,
            problem,
        };
        let effect = match st.effect {
            Effect::Allow => "permit",
            Effect::Deny => "forbid",
        };
        let id = format!("{}#{i}{suffix}", self.source);
        let mut fast: Vec<&str> = Vec::new();
        if !exact && principal != "true" {
            fast.push(&principal);
        }
        fast.extend(c.rest.iter().map(|s| s.as_str()));
        let fast = fast.join("\n  && ");
        let mut conj = vec![principal.clone()];
        conj.extend(c.parts.iter().cloned());
        let sid = st.sid.as_deref().unwrap_or("");
        let body = conj.join("\n  && ");
        let text = format!(
            "@sid({})\n@statement(\"{i}\")\n{effect} (principal, action, resource)\nwhen {{\n  {body}\n}};\n",
            cedar::string(sid),
        );
        let bug = |e: String| {
            err(
                loc.to_string(),
                format!("could not be compiled to Cedar ({e}); this is a bug in Trent"),
            )
        };
        let policy =
            Policy::parse(Some(PolicyId::new(&id)), &text).map_err(|e| bug(e.to_string()))?;
        let expr = if fast.is_empty() {
            None
        } else {
            Some(Expression::from_str(&fast).map_err(|e| bug(e.to_string()))?)
        };
        self.units.push(Unit {
            id: id.clone(),
            expr,
            principal: principal_guard,
            action: c.action_guard.clone(),
            reads: Reads::scan(&fast, c.tracked),
            predicates: c.predicates,
        });
        self.set.add(policy).map_err(|e| {
            err(
                loc.to_string(),
                format!("could not be added to the set: {e}"),
            )
        })?;
        self.cedar_text.push_str(&text);
        self.statements.insert(
            id.clone(),
            (
                StatementRef {
                    source: self.source.clone(),
                    policy_id: id,
                    sid: st.sid.clone(),
                    index: i,
                    effect: st.effect,
                },
                via_account,
            ),
        );
        Ok(())
    }

    /// The action test and its native restatement.
    fn actions(&mut self, patterns: &[String]) -> (String, ActionGuard) {
        if patterns.iter().any(|p| p == "*") {
            return ("true".into(), ActionGuard::every());
        }
        let mut guard = ActionGuard::default();
        let mut alts = Vec::new();
        let mut exact = Vec::new();
        let mut native = Vec::new();
        for p in patterns {
            let lower = p.to_lowercase();
            if lower.contains('?') {
                native.push(lower);
            } else if lower.contains('*') {
                let pc = pieces(&lower, false, &|_| None).unwrap_or_default();
                alts.push(format!("context.action like {}", cedar::like(&pc)));
                guard.like.push(pc);
            } else {
                exact.push(format!("Action::{}", cedar::string(&lower)));
                guard.exact.push(lower);
            }
        }
        if !exact.is_empty() {
            alts.push(format!("action in [{}]", exact.join(", ")));
        }
        if !native.is_empty() {
            guard.native.clone_from(&native);
            alts.push(self.predicate(Predicate::Action(native)));
        }
        (format!("({})", alts.join(" || ")), guard)
    }

    fn resources(
        &mut self,
        patterns: &[String],
        variables: bool,
        loc: &str,
    ) -> Result<String, PolicyError> {
        if patterns.iter().any(|p| p == "*") {
            return Ok("true".into());
        }
        let mut alts = Vec::new();
        let mut exact = Vec::new();
        let mut native = Vec::new();
        for p in patterns {
            let vars = variables && has_variables(p);
            if vars {
                let names = variable_names(p).map_err(|e| PolicyError::Invalid {
                    location: format!("{loc}.Resource"),
                    problem: e,
                })?;
                for n in names {
                    self.note_key(&n);
                }
            }
            let segments: Vec<&str> = p.splitn(6, ':').collect();
            let head_has_wildcard =
                segments.len() < 6 || segments[..5].iter().any(|s| s.contains('*'));
            if vars || p.contains('?') || (p.contains('*') && head_has_wildcard) {
                native.push(p.clone());
            } else if p.contains('*') {
                let pc: Vec<Piece> = pieces(p, false, &|_| None).unwrap_or_default();
                alts.push(format!("context.r.arn like {}", cedar::like(&pc)));
            } else {
                exact.push(format!("Resource::{}", cedar::string(p)));
            }
        }
        if !exact.is_empty() {
            alts.push(format!("resource in [{}]", exact.join(", ")));
        }
        if !native.is_empty() {
            alts.push(self.predicate(Predicate::Resource {
                patterns: native,
                variables,
            }));
        }
        Ok(format!("({})", alts.join(" || ")))
    }

    /// Split a `Principal` into (specific principals, account principals) as Cedar expressions,
    /// each with its guard atom (`None`: any caller).
    fn principal_entries(&mut self, v: &Value, loc: &str) -> Result<(Atoms, Atoms), PolicyError> {
        let mut direct = Vec::new();
        let mut accounts = Vec::new();
        for entry in principal_list(v, loc)? {
            match entry {
                PrincipalEntry::Any => direct.push(("true".to_string(), None)),
                PrincipalEntry::Account(a) => {
                    accounts.push((
                        format!("context.p.account == {}", cedar::string(&a)),
                        Some(PrincipalKey::Account(a.clone())),
                    ));
                    self.principals.push(a);
                }
                PrincipalEntry::Arn(a) => {
                    direct.push((
                        format!("context.p.arn == {}", cedar::string(&a)),
                        Some(PrincipalKey::Arn(a.clone())),
                    ));
                    self.principals.push(a);
                }
                PrincipalEntry::Role(a) => {
                    let s = cedar::string(&a);
                    direct.push((
                        format!("(context.p.arn == {s} || context.p.role == {s})"),
                        Some(PrincipalKey::ArnOrRole(a.clone())),
                    ));
                    self.principals.push(a);
                }
                PrincipalEntry::Service(s) => direct.push((
                    format!(
                        "(context.p.type == \"Service\" && context.p.arn == {})",
                        cedar::string(&s)
                    ),
                    Some(PrincipalKey::Arn(s)),
                )),
            }
        }
        Ok((direct, accounts))
    }

    /// `NotPrincipal`: the statement applies unless every identity of the caller is listed (the
    /// account, the user or role, and for a session also the session), as AWS evaluates it.
    fn not_principal(&mut self, v: &Value, loc: &str) -> Result<String, PolicyError> {
        let mut accounts = Vec::new();
        let mut arns = Vec::new();
        for entry in principal_list(v, loc)? {
            match entry {
                PrincipalEntry::Any => return Ok("false".into()),
                PrincipalEntry::Account(a) => accounts.push(a),
                PrincipalEntry::Arn(a) | PrincipalEntry::Role(a) | PrincipalEntry::Service(a) => {
                    arns.push(a)
                }
            }
        }
        self.principals.extend(accounts.iter().cloned());
        self.principals.extend(arns.iter().cloned());
        let a = cedar::string_set(accounts.iter().map(String::as_str));
        let l = cedar::string_set(arns.iter().map(String::as_str));
        Ok(format!(
            "!((context.p.type == \"Service\" && {l}.contains(context.p.arn)) || \
             ({a}.contains(context.p.account) \
             && (context.p.type == \"Account\" || {l}.contains(context.p.arn)) \
             && (context.p.type != \"AssumedRole\" || {l}.contains(context.p.role))))"
        ))
    }
}

fn or(alts: &[String]) -> String {
    if alts.is_empty() {
        "false".into()
    } else {
        format!("({})", alts.join(" || "))
    }
}

enum PrincipalEntry {
    Any,
    Account(String),
    Arn(String),
    Role(String),
    Service(String),
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Classify every value of a `Principal`/`NotPrincipal`; refuses what AWS refuses (partial
/// wildcards, values that are not principals).
fn principal_list(v: &Value, loc: &str) -> Result<Vec<PrincipalEntry>, PolicyError> {
    let bad = |at: &str, s: &str, why: &str| PolicyError::Invalid {
        location: at.to_string(),
        problem: format!("'{s}' {why}"),
    };
    let mut out = Vec::new();
    let map = match v {
        Value::String(s) if s == "*" => return Ok(vec![PrincipalEntry::Any]),
        Value::Object(m) => m,
        _ => return Err(bad(loc, &v.to_string(), "is not a principal")),
    };
    for (ptype, values) in map {
        let at = format!("{loc}.{ptype}");
        let list: Vec<&str> = match values {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for s in list {
            if s == "*" {
                out.push(PrincipalEntry::Any);
                continue;
            }
            if s.contains('*') || s.contains('?') {
                return Err(bad(&at, s, "has a wildcard; only \"*\" alone is allowed"));
            }
            match ptype.as_str() {
                "AWS" => {
                    if is_account(s) {
                        out.push(PrincipalEntry::Account(s.to_string()));
                        continue;
                    }
                    let parts: Vec<&str> = s.splitn(6, ':').collect();
                    let ok = parts.len() == 6
                        && parts[0] == "arn"
                        && parts[1].starts_with("aws")
                        && is_account(parts[4]);
                    if !ok {
                        return Err(bad(
                            &at,
                            s,
                            "is not a valid principal (an account id or an IAM/STS ARN)",
                        ));
                    }
                    let account = parts[4].to_string();
                    let rest = parts[5];
                    out.push(match (parts[2], rest) {
                        ("iam", "root") => PrincipalEntry::Account(account),
                        ("iam", r) if r.starts_with("user/") => PrincipalEntry::Arn(s.into()),
                        ("iam", r) if r.starts_with("role/") => PrincipalEntry::Role(s.into()),
                        ("sts", r)
                            if r.starts_with("assumed-role/") || r.starts_with("federated-user/") =>
                        {
                            PrincipalEntry::Arn(s.into())
                        }
                        _ => return Err(bad(&at, s, "is not a valid principal (root, user, role, assumed-role or federated-user ARN)")),
                    });
                }
                "Service" => {
                    if !s.contains('.') {
                        return Err(bad(
                            &at,
                            s,
                            "is not a service principal (like logs.amazonaws.com)",
                        ));
                    }
                    out.push(PrincipalEntry::Service(s.to_string()));
                }
                _ => out.push(PrincipalEntry::Arn(s.to_string())),
            }
        }
    }
    Ok(out)
}

/// One principal form of a statement: (policy id suffix, expression, via account, (guard, guard
/// is exact)).
type PrincipalForm = (&'static str, String, bool, (PrincipalGuard, bool));

/// What every principal form of one statement shares.
struct CompiledStatement<'a> {
    index: usize,
    st: &'a Statement,
    loc: &'a str,
    /// Every conjunct but the principal's.
    parts: &'a [String],
    /// The conjuncts of the fast path.
    rest: &'a [&'a String],
    action_guard: &'a ActionGuard,
    tracked: &'a [(usize, String)],
    predicates: std::ops::Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_policy_compiles_to_the_same_cedar_text() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*",
             "Condition":{"StringLike":{"kms:EncryptionContext:app":"web-*"},
                          "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/a*"}}},
            {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt?","Resource":"*",
             "Condition":{"StringLike":{"kms:EncryptionContext:app":"web-*"}}}]}"#;
        let a = CompiledPolicy::from_text(text, PolicyKind::KeyPolicy, "key-policy").unwrap();
        let b = CompiledPolicy::from_text(text, PolicyKind::KeyPolicy, "key-policy").unwrap();
        assert!(a.cedar_text().contains("context.checks.p"));
        assert_eq!(a.cedar_text(), b.cedar_text());
        let other = text.replace("web-*", "api-*");
        let c = CompiledPolicy::from_text(&other, PolicyKind::KeyPolicy, "key-policy").unwrap();
        assert_ne!(
            a.cedar_text(),
            c.cedar_text(),
            "other conditions, other names"
        );
    }
}
