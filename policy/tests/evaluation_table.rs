//! The evaluation table: one row per case (key policy, identity policies, grants, request,
//! expected decision, expected deciding statements and grants). Expected values are written by
//! hand from AWS's documented rules, never computed by the code under test.
//!
//! Ids: `key#N` is statement N of the key policy (`key#N@account` when it matched through an
//! account principal), `idI#N` statement N of the I-th identity policy, `grant:ID` a grant.

use trent_policy::{
    authorize, AccessRequest, CompiledPolicy, ContextValue, Decision, Grant, GrantConstraints,
    GrantIndex, GrantOperation, PolicyKind, Principal, Resource,
};

use Decision::{Allow, ExplicitDeny as Deny, ImplicitDeny as Implicit};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/ffff0000-0000-0000-0000-000000000000";

#[derive(Clone, Copy)]
enum Who {
    Bob,
    Alice,
    Root,
    Carol,
    Session,
    Svc,
}

#[derive(Clone, Copy)]
enum V {
    S(&'static str),
    L(i64),
    B(bool),
    Ip(&'static str),
    Date(i64),
    Many(&'static [&'static str]),
    Nums(&'static [i64]),
}

#[derive(Clone, Copy)]
enum Kp {
    /// A key policy with one statement (index 0): Allow bob `kms:Decrypt` on `*` with this
    /// Condition.
    Cond(&'static str),
    /// Like `Cond`, without `Version` (2008-10-17: no policy variables).
    Cond2008(&'static str),
    /// One statement (index 0) for bob on kms:Decrypt with this Action/Resource/Principal JSON
    /// fragment replacing the defaults.
    Stmt(&'static str),
    /// The full text.
    Raw(&'static str),
}

struct G {
    id: &'static str,
    grantee: &'static str,
    ops: &'static [&'static str],
    eq: Option<&'static [(&'static str, &'static str)]>,
    sub: Option<&'static [(&'static str, &'static str)]>,
}

struct Case {
    name: &'static str,
    kp: Kp,
    identity: &'static [&'static str],
    grants: &'static [G],
    who: Who,
    action: &'static str,
    resource: &'static str,
    ctx: &'static [(&'static str, V)],
    ec: &'static [(&'static str, &'static str)],
    expect: Decision,
    deciding: &'static [&'static str],
}

const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const ROOT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"EnableIAM","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
const ALLOW_DECRYPT_ANY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt","kms:DescribeKey"],"Resource":"*"}]}"#;
const NOTHING: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:DescribeKey","Resource":"*"}]}"#;

fn key_policy_text(kp: Kp) -> String {
    match kp {
        Kp::Cond(c) => format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Bob","Effect":"Allow","Principal":{{"AWS":"{BOB}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{c}}}]}}"#
        ),
        Kp::Cond2008(c) => format!(
            r#"{{"Statement":[{{"Sid":"Bob","Effect":"Allow","Principal":{{"AWS":"{BOB}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{c}}}]}}"#
        ),
        Kp::Stmt(fragment) => format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"S","Effect":"Allow",{fragment}}}]}}"#
        ),
        Kp::Raw(t) => t.to_string(),
    }
}

fn principal(who: Who) -> Principal {
    match who {
        Who::Bob => Principal::user("111122223333", "bob")
            .with_userid("AIDABOBEXAMPLE")
            .with_tag("team", "blue"),
        Who::Alice => Principal::user("111122223333", "alice"),
        Who::Root => Principal::root("111122223333"),
        Who::Carol => Principal::user("444455556666", "carol"),
        Who::Session => Principal::assumed_role("111122223333", "auditor", "s1"),
        Who::Svc => Principal::service("logs.amazonaws.com"),
    }
}

fn value(v: V) -> Vec<ContextValue> {
    match v {
        V::S(s) => vec![s.into()],
        V::L(n) => vec![n.into()],
        V::B(b) => vec![b.into()],
        V::Ip(s) => vec![ContextValue::Ip(s.parse().unwrap())],
        V::Date(ms) => vec![ContextValue::Date(ms)],
        V::Many(list) => list.iter().map(|s| (*s).into()).collect(),
        V::Nums(list) => list.iter().map(|n| (*n).into()).collect(),
    }
}

fn pairs(p: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// 2024-01-31T12:00:00Z
const NOON: i64 = 1_706_702_400_000;

fn run(c: &Case) -> Result<(), String> {
    let kp = CompiledPolicy::from_text(&key_policy_text(c.kp), PolicyKind::KeyPolicy, "key")
        .map_err(|e| format!("key policy: {e}"))?;
    let ids: Vec<CompiledPolicy> = c
        .identity
        .iter()
        .enumerate()
        .map(|(i, t)| CompiledPolicy::from_text(t, PolicyKind::Identity, &format!("id{i}")))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("identity policy: {e}"))?;
    let grants = GrantIndex::from_grants(c.grants.iter().map(|g| {
        Grant {
            grant_id: g.id.to_string(),
            grantee_principal: g.grantee.to_string(),
            operations: g
                .ops
                .iter()
                .map(|o| GrantOperation::parse(o).unwrap())
                .collect(),
            constraints: (g.eq.is_some() || g.sub.is_some()).then(|| GrantConstraints {
                encryption_context_equals: g.eq.map(pairs),
                encryption_context_subset: g.sub.map(pairs),
                source_arn: None,
            }),
        }
    }))
    .map_err(|e| format!("grants: {e}"))?;
    let mut b = AccessRequest::builder(principal(c.who), c.action, Resource::from_arn(c.resource))
        .encryption_context(c.ec.iter().copied());
    for (k, v) in c.ctx {
        b = b.context_values(k, value(*v));
    }
    let req = b.build();
    let e = authorize(&req, &kp, &ids, Some(&grants));
    let mut got: Vec<String> = e
        .statements
        .iter()
        .map(|s| s.policy_id.clone())
        .chain(e.grants.iter().map(|g| format!("grant:{g}")))
        .collect();
    got.sort();
    let mut want: Vec<String> = c.deciding.iter().map(|s| s.to_string()).collect();
    want.sort();
    if e.decision != c.expect || got != want || !e.errors.is_empty() {
        return Err(format!(
            "expected {:?} {:?}, got {:?} {:?} (basis {:?}, errors {:?})",
            c.expect, want, e.decision, got, e.basis, e.errors
        ));
    }
    Ok(())
}

macro_rules! case {
    ($name:expr, $kp:expr, $who:ident $action:literal, ctx: $ctx:expr, ec: $ec:expr => $expect:ident $deciding:expr) => {
        Case {
            name: $name,
            kp: $kp,
            identity: &[],
            grants: &[],
            who: Who::$who,
            action: $action,
            resource: KEY,
            ctx: $ctx,
            ec: $ec,
            expect: $expect,
            deciding: $deciding,
        }
    };
}

const A: &[&str] = &["key#0"];
const NONE: &[&str] = &[];
const NC: &[(&str, V)] = &[];
const NE: &[(&str, &str)] = &[];

fn condition_cases() -> Vec<Case> {
    use Kp::Cond;
    use V::*;
    let blue: &[(&str, &str)] = &[("team", "blue")];
    let red: &[(&str, &str)] = &[("team", "red")];
    let rot = |n: i64| -> &'static [(&'static str, V)] {
        Box::leak(Box::new([("kms:RotationPeriodInDays", L(n))]))
    };
    let now: &[(&str, V)] = &[("aws:CurrentTime", Date(NOON))];
    let tls = |b: bool| -> &'static [(&'static str, V)] {
        Box::leak(Box::new([("aws:SecureTransport", B(b))]))
    };
    let ip = |s: &'static str| -> &'static [(&'static str, V)] {
        Box::leak(Box::new([("aws:SourceIp", Ip(s))]))
    };
    let tags = |l: &'static [&'static str]| -> &'static [(&'static str, V)] {
        Box::leak(Box::new([("aws:TagKeys", Many(l))]))
    };
    vec![
        // String
        case!("StringEquals matches", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringEquals differs", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: red => Implicit NONE),
        case!("StringEquals values are OR", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":["red","blue"]}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringEquals is case-sensitive", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"Blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("StringEquals on a missing key is false", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("StringEqualsIfExists on a missing key is true", Cond(r#"{"StringEqualsIfExists":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("StringEqualsIfExists present and different", Cond(r#"{"StringEqualsIfExists":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: red => Implicit NONE),
        case!("StringNotEquals differs", Cond(r#"{"StringNotEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: red => Allow A),
        case!("StringNotEquals equal", Cond(r#"{"StringNotEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("StringNotEquals on a missing key is true", Cond(r#"{"StringNotEquals":{"kms:EncryptionContext:team":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("StringNotEquals values are NOR", Cond(r#"{"StringNotEquals":{"kms:EncryptionContext:team":["red","blue"]}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("StringEqualsIgnoreCase", Cond(r#"{"StringEqualsIgnoreCase":{"kms:EncryptionContext:team":"BLUE"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringNotEqualsIgnoreCase", Cond(r#"{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:team":"BLUE"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("StringLike star", Cond(r#"{"StringLike":{"kms:EncryptionContext:team":"bl*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringLike question mark", Cond(r#"{"StringLike":{"kms:EncryptionContext:team":"b?ue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringLike question mark is one char", Cond(r#"{"StringLike":{"kms:EncryptionContext:team":"b?e"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("StringNotLike", Cond(r#"{"StringNotLike":{"kms:EncryptionContext:team":"r*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("StringNotLike on a missing key is true", Cond(r#"{"StringNotLike":{"kms:EncryptionContext:team":"r*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("StringLike on a missing key is false", Cond(r#"{"StringLike":{"kms:EncryptionContext:team":"*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        // ARN
        case!("ArnLike", Cond(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("ArnEquals", Cond(r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/bob"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("ArnNotLike", Cond(r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("ArnLike with ? and a wildcard account", Cond(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/b?b"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("ArnLike other account", Cond(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("ArnNotEquals other user", Cond(r#"{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        // Numeric
        case!("NumericEquals", Cond(r#"{"NumericEquals":{"kms:RotationPeriodInDays":"365"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Allow A),
        case!("NumericNotEquals", Cond(r#"{"NumericNotEquals":{"kms:RotationPeriodInDays":"365"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Implicit NONE),
        case!("NumericLessThan", Cond(r#"{"NumericLessThan":{"kms:RotationPeriodInDays":"400"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Allow A),
        case!("NumericLessThanEquals at the bound", Cond(r#"{"NumericLessThanEquals":{"kms:RotationPeriodInDays":"365"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Allow A),
        case!("NumericGreaterThan at the bound", Cond(r#"{"NumericGreaterThan":{"kms:RotationPeriodInDays":"365"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Implicit NONE),
        case!("NumericGreaterThanEquals", Cond(r#"{"NumericGreaterThanEquals":{"kms:RotationPeriodInDays":90}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Allow A),
        case!("NumericLessThan on a missing key", Cond(r#"{"NumericLessThan":{"kms:RotationPeriodInDays":"400"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("NumericLessThanIfExists on a missing key", Cond(r#"{"NumericLessThanIfExists":{"kms:RotationPeriodInDays":"400"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("NumericLessThan with a decimal bound", Cond(r#"{"NumericLessThan":{"kms:RotationPeriodInDays":"365.5"}}"#), Bob "kms:Decrypt", ctx: rot(365), ec: NE => Allow A),
        case!("NumericLessThan with a numeric string value", Cond(r#"{"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"90"}}"#), Bob "kms:Decrypt", ctx: &[("kms:ScheduleKeyDeletionPendingWindowInDays", S("30"))], ec: NE => Allow A),
        // Date
        case!("DateLessThan", Cond(r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Allow A),
        case!("DateGreaterThan", Cond(r#"{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Implicit NONE),
        case!("DateEquals with epoch seconds", Cond(r#"{"DateEquals":{"aws:CurrentTime":"1706702400"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Allow A),
        case!("DateNotEquals", Cond(r#"{"DateNotEquals":{"aws:CurrentTime":"2024-01-31T12:00:00Z"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Implicit NONE),
        case!("DateLessThanEquals at the bound", Cond(r#"{"DateLessThanEquals":{"aws:CurrentTime":"2024-01-31T14:00:00+02:00"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Allow A),
        case!("DateGreaterThanEquals a day", Cond(r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-01-31"}}"#), Bob "kms:Decrypt", ctx: now, ec: NE => Allow A),
        case!("Date on a missing key", Cond(r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        // Bool and binary
        case!("Bool true", Cond(r#"{"Bool":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: tls(true), ec: NE => Allow A),
        case!("Bool false request", Cond(r#"{"Bool":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: tls(false), ec: NE => Implicit NONE),
        case!("Bool on a missing key", Cond(r#"{"Bool":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("BoolIfExists on a missing key", Cond(r#"{"BoolIfExists":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Bool JSON literal and string request", Cond(r#"{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":false}}"#), Bob "kms:Decrypt", ctx: &[("kms:BypassPolicyLockoutSafetyCheck", S("False"))], ec: NE => Allow A),
        case!("BinaryEquals", Cond(r#"{"BinaryEquals":{"kms:Blob":"QmluYXJ5"}}"#), Bob "kms:Decrypt", ctx: &[("kms:Blob", S("QmluYXJ5"))], ec: NE => Allow A),
        case!("BinaryEquals differs", Cond(r#"{"BinaryEquals":{"kms:Blob":"QmluYXJ5"}}"#), Bob "kms:Decrypt", ctx: &[("kms:Blob", S("QmluYXJ6"))], ec: NE => Implicit NONE),
        // IP
        case!("IpAddress in range", Cond(r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#), Bob "kms:Decrypt", ctx: ip("10.1.2.3"), ec: NE => Allow A),
        case!("IpAddress out of range", Cond(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","172.16.0.0/12"]}}"#), Bob "kms:Decrypt", ctx: ip("192.168.1.1"), ec: NE => Implicit NONE),
        case!("NotIpAddress", Cond(r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#), Bob "kms:Decrypt", ctx: ip("192.168.1.1"), ec: NE => Allow A),
        case!("IpAddress IPv6", Cond(r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#), Bob "kms:Decrypt", ctx: ip("2001:db8::1"), ec: NE => Allow A),
        case!("IpAddress IPv6 range, IPv4 caller", Cond(r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#), Bob "kms:Decrypt", ctx: ip("10.1.2.3"), ec: NE => Implicit NONE),
        case!("NotIpAddress on a missing key", Cond(r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("IpAddress single address", Cond(r#"{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}"#), Bob "kms:Decrypt", ctx: &[("aws:SourceIp", S("203.0.113.7"))], ec: NE => Allow A),
        // Null
        case!("Null true, key absent", Cond(r#"{"Null":{"kms:EncryptionContext:team":"true"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Null true, key present", Cond(r#"{"Null":{"kms:EncryptionContext:team":"true"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("Null false, key present", Cond(r#"{"Null":{"kms:EncryptionContext:team":"false"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("Null false, key absent", Cond(r#"{"Null":{"kms:EncryptionContext:team":false}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        // Set qualifiers
        case!("ForAnyValue one matches", Cond(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"b"}}"#), Bob "kms:Decrypt", ctx: tags(&["a", "b"]), ec: NE => Allow A),
        case!("ForAnyValue on a missing key", Cond(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"b"}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("ForAnyValue on an empty key", Cond(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"b"}}"#), Bob "kms:Decrypt", ctx: tags(&[]), ec: NE => Implicit NONE),
        case!("ForAllValues all in the set", Cond(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b","c"]}}"#), Bob "kms:Decrypt", ctx: tags(&["a", "b"]), ec: NE => Allow A),
        case!("ForAllValues one outside", Cond(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#), Bob "kms:Decrypt", ctx: tags(&["a", "z"]), ec: NE => Implicit NONE),
        case!("ForAllValues on a missing key", Cond(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}"#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("ForAllValues on an empty key", Cond(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}"#), Bob "kms:Decrypt", ctx: tags(&[]), ec: NE => Allow A),
        case!("ForAllValues:StringLike", Cond(r#"{"ForAllValues:StringLike":{"aws:TagKeys":"Created*"}}"#), Bob "kms:Decrypt", ctx: tags(&["CreatedBy", "CreatedAt"]), ec: NE => Allow A),
        case!("ForAnyValue:StringLike with ?", Cond(r#"{"ForAnyValue:StringLike":{"aws:TagKeys":"Created?y"}}"#), Bob "kms:Decrypt", ctx: tags(&["x", "CreatedBy"]), ec: NE => Allow A),
        case!("ForAnyValue:StringNotEquals all listed", Cond(r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#), Bob "kms:Decrypt", ctx: tags(&["a", "b"]), ec: NE => Implicit NONE),
        case!("ForAllValues:StringNotEquals none listed", Cond(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"a"}}"#), Bob "kms:Decrypt", ctx: tags(&["x", "y"]), ec: NE => Allow A),
        case!("ForAnyValue:NumericGreaterThan", Cond(r#"{"ForAnyValue:NumericGreaterThan":{"test:Sizes":"10"}}"#), Bob "kms:Decrypt", ctx: &[("test:Sizes", Nums(&[1, 50]))], ec: NE => Allow A),
        case!("ForAllValues:NumericGreaterThan", Cond(r#"{"ForAllValues:NumericGreaterThan":{"test:Sizes":"10"}}"#), Bob "kms:Decrypt", ctx: &[("test:Sizes", Nums(&[1, 50]))], ec: NE => Implicit NONE),
        case!("EncryptionContextKeys ForAllValues", Cond(r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["team","project"]}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("team", "blue"), ("owner", "bob")] => Implicit NONE),
        // AND across operators and keys
        case!("two operators, both true", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue"},"Bool":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: tls(true), ec: blue => Allow A),
        case!("two operators, one false", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue"},"Bool":{"aws:SecureTransport":"true"}}"#), Bob "kms:Decrypt", ctx: tls(false), ec: blue => Implicit NONE),
        case!("two keys, one false", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"blue","kms:EncryptionContext:owner":"bob"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("team", "blue"), ("owner", "eve")] => Implicit NONE),
        // Key names are case-insensitive
        case!("upper-case condition key", Cond(r#"{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:TEAM":"blue"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("lower-case global key", Cond(r#"{"Bool":{"aws:securetransport":"true"}}"#), Bob "kms:Decrypt", ctx: tls(true), ec: NE => Allow A),
        case!("request key in odd case", Cond(r#"{"StringEquals":{"aws:RequestTag/Env":"prod"}}"#), Bob "kms:Decrypt", ctx: &[("AWS:requesttag/env", S("prod"))], ec: NE => Allow A),
        // Policy variables
        case!("variable aws:username", Cond(r#"{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("owner", "bob")] => Allow A),
        case!("variable aws:username differs", Cond(r#"{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("owner", "alice")] => Implicit NONE),
        case!("variable principal tag", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"${aws:PrincipalTag/team}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Allow A),
        case!("variable with no value", Cond(r#"{"StringEquals":{"kms:EncryptionContext:team":"${aws:PrincipalTag/dept}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: blue => Implicit NONE),
        case!("variable default value", Cond(r#"{"StringEquals":{"kms:EncryptionContext:dept":"${aws:PrincipalTag/dept, 'none'}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("dept", "none")] => Allow A),
        case!("variable aws:PrincipalAccount in StringLike", Cond(r#"{"StringLike":{"kms:EncryptionContext:path":"${aws:PrincipalAccount}/*"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("path", "111122223333/data")] => Allow A),
        case!("escape ${*} is a literal star", Cond(r#"{"StringLike":{"kms:EncryptionContext:v":"literal${*}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("v", "literal*")] => Allow A),
        case!("escape ${*} does not match anything", Cond(r#"{"StringLike":{"kms:EncryptionContext:v":"literal${*}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("v", "literalX")] => Implicit NONE),
        case!("2008-10-17: variables are literal text", Kp::Cond2008(r#"{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}}"#), Bob "kms:Decrypt", ctx: NC, ec: &[("owner", "bob")] => Implicit NONE),
    ]
}

fn element_cases() -> Vec<Case> {
    use Kp::Stmt;
    const P_BOB: &str = r#""Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"}"#;
    let s = |rest: &str| -> Kp { Stmt(Box::leak(format!("{P_BOB},{rest}").into_boxed_str())) };
    vec![
        case!("Action with ?", s(r#""Action":"kms:?ecrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Action with ? does not match another", s(r#""Action":"kms:?ecrypt","Resource":"*""#), Bob "kms:Encrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("Action is case-insensitive", s(r#""Action":"KMS:DECRYPT","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Action prefix wildcard", s(r#""Action":"kms:De*","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Action prefix wildcard elsewhere", s(r#""Action":"kms:De*","Resource":"*""#), Bob "kms:Encrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("NotAction excludes another", s(r#""NotAction":"kms:Encrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("NotAction excludes this one", s(r#""NotAction":["kms:Decrypt","kms:Sign"],"Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("unknown action matches nothing", s(r#""Action":"kms:Frobnicate","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("Resource the key", s(&format!(r#""Action":"kms:*","Resource":"{KEY}""#)), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Resource another key", s(&format!(r#""Action":"kms:*","Resource":"{OTHER_KEY}""#)), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("NotResource another key", s(&format!(r#""Action":"kms:*","NotResource":"{OTHER_KEY}""#)), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Resource wildcard region", s(r#""Action":"kms:*","Resource":"arn:aws:kms:*:111122223333:key/*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Resource wildcard key id", s(r#""Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Resource with ?", s(r#""Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-????-*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Resource wildcard other account", s(r#""Action":"kms:*","Resource":"arn:aws:kms:*:444455556666:key/*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("Principal star", Stmt(r#""Principal":"*","Action":"kms:Decrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Principal AWS star", Stmt(r#""Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*""#), Alice "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Principal another user", Stmt(r#""Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("Principal role matches its session", Stmt(r#""Principal":{"AWS":"arn:aws:iam::111122223333:role/auditor"},"Action":"kms:Decrypt","Resource":"*""#), Session "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Principal session ARN", Stmt(r#""Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/auditor/s1"},"Action":"kms:Decrypt","Resource":"*""#), Session "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Principal other session", Stmt(r#""Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/auditor/s2"},"Action":"kms:Decrypt","Resource":"*""#), Session "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
        case!("Principal bare account delegates", Stmt(r#""Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit &["key#0@account"]),
        case!("Principal service", Stmt(r#""Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*""#), Svc "kms:Decrypt", ctx: NC, ec: NE => Allow A),
        case!("Principal service, user caller", Stmt(r#""Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*""#), Bob "kms:Decrypt", ctx: NC, ec: NE => Implicit NONE),
    ]
}

const NOT_PRINCIPAL_BOB_AND_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/bob","arn:aws:iam::111122223333:root"]},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const NOT_PRINCIPAL_BOB_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const NOT_PRINCIPAL_ROLE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/auditor","arn:aws:iam::111122223333:root"]},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const NOT_PRINCIPAL_SESSION: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::111122223333:assumed-role/auditor/s1","arn:aws:iam::111122223333:role/auditor","arn:aws:iam::111122223333:root"]},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const BOB_AND_DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"},
 {"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#;
const BOB_AND_DENY_WITHOUT_TLS: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
const DENY_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const MIXED_PRINCIPALS: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/bob"]},"Action":"kms:*","Resource":"*"}]}"#;
const CROSS_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}"#;
const CAROL_DIRECT: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/carol"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
const ID_DENY_DECRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
const ID_OTHER_KEY_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/ffff0000-0000-0000-0000-000000000000"}]}"#;
const ID_OWN_PREFIX: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}}}]}"#;

fn combination_cases() -> Vec<Case> {
    let full = |name, kp, identity: &'static [&'static str], who, action, expect, deciding| Case {
        name,
        kp: Kp::Raw(kp),
        identity,
        grants: &[],
        who,
        action,
        resource: KEY,
        ctx: NC,
        ec: NE,
        expect,
        deciding,
    };
    vec![
        full(
            "NotPrincipal lists user and account",
            NOT_PRINCIPAL_BOB_AND_ACCOUNT,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "NotPrincipal lists the user only",
            NOT_PRINCIPAL_BOB_ONLY,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Deny,
            &["key#1"],
        ),
        full(
            "NotPrincipal, someone else",
            NOT_PRINCIPAL_BOB_AND_ACCOUNT,
            &[],
            Who::Alice,
            "kms:Decrypt",
            Deny,
            &["key#1"],
        ),
        full(
            "NotPrincipal, another action",
            NOT_PRINCIPAL_BOB_AND_ACCOUNT,
            &[],
            Who::Alice,
            "kms:Encrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "NotPrincipal, session without its ARN",
            NOT_PRINCIPAL_ROLE,
            &[],
            Who::Session,
            "kms:Decrypt",
            Deny,
            &["key#1"],
        ),
        full(
            "NotPrincipal, session with its ARN",
            NOT_PRINCIPAL_SESSION,
            &[],
            Who::Session,
            "kms:Decrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "Deny wins over Allow",
            BOB_AND_DENY_ALL,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Deny,
            &["key#1"],
        ),
        full(
            "Deny elsewhere, Allow here",
            BOB_AND_DENY_ALL,
            &[],
            Who::Bob,
            "kms:Encrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "Deny in an identity policy",
            BOB_AND_DENY_WITHOUT_TLS,
            &[ID_DENY_DECRYPT],
            Who::Bob,
            "kms:Decrypt",
            Deny,
            &["id0#0"],
        ),
        full(
            "Deny whose condition key is absent does not apply",
            BOB_AND_DENY_WITHOUT_TLS,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "Deny naming the account covers its users",
            DENY_ACCOUNT,
            &[],
            Who::Alice,
            "kms:Decrypt",
            Deny,
            &["key#1"],
        ),
        full(
            "Deny naming the account, another account",
            DENY_ACCOUNT,
            &[],
            Who::Carol,
            "kms:Decrypt",
            Implicit,
            &["key#0"],
        ),
        full(
            "delegation: IAM allows",
            ROOT_POLICY,
            &[ALLOW_DECRYPT_ANY],
            Who::Alice,
            "kms:Decrypt",
            Allow,
            &["key#0@account", "id0#0"],
        ),
        full(
            "delegation: no IAM policy",
            ROOT_POLICY,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Implicit,
            &["key#0@account"],
        ),
        full(
            "delegation: IAM for another key",
            ROOT_POLICY,
            &[ID_OTHER_KEY_ONLY],
            Who::Bob,
            "kms:Decrypt",
            Implicit,
            &["key#0@account"],
        ),
        full(
            "IAM alone is not enough",
            NOTHING,
            &[ALLOW_DECRYPT_ANY],
            Who::Bob,
            "kms:Decrypt",
            Implicit,
            &["id0#0"],
        ),
        full(
            "root user needs no IAM policy",
            ROOT_POLICY,
            &[],
            Who::Root,
            "kms:ScheduleKeyDeletion",
            Allow,
            &["key#0@account"],
        ),
        full(
            "mixed principals: bob directly",
            MIXED_PRINCIPALS,
            &[],
            Who::Bob,
            "kms:Decrypt",
            Allow,
            &["key#0"],
        ),
        full(
            "mixed principals: alice through the account",
            MIXED_PRINCIPALS,
            &[],
            Who::Alice,
            "kms:Decrypt",
            Implicit,
            &["key#0@account"],
        ),
        full(
            "cross-account: both allow",
            CROSS_ACCOUNT,
            &[ALLOW_DECRYPT_ANY],
            Who::Carol,
            "kms:Decrypt",
            Allow,
            &["key#1@account", "id0#0"],
        ),
        full(
            "cross-account: key policy only",
            CROSS_ACCOUNT,
            &[],
            Who::Carol,
            "kms:Decrypt",
            Implicit,
            &["key#1@account"],
        ),
        full(
            "cross-account: IAM only",
            CROSS_ACCOUNT,
            &[ALLOW_DECRYPT_ANY],
            Who::Carol,
            "kms:Encrypt",
            Implicit,
            &["id0#0"],
        ),
        full(
            "cross-account: user named directly",
            CAROL_DIRECT,
            &[ALLOW_DECRYPT_ANY],
            Who::Carol,
            "kms:Decrypt",
            Allow,
            &["key#0", "id0#0"],
        ),
        full(
            "cross-account: user named, no IAM",
            CAROL_DIRECT,
            &[],
            Who::Carol,
            "kms:Decrypt",
            Implicit,
            &["key#0"],
        ),
        full(
            "cross-account: the key's account root is not the caller's",
            ROOT_POLICY,
            &[ALLOW_DECRYPT_ANY],
            Who::Carol,
            "kms:Decrypt",
            Implicit,
            &["id0#0"],
        ),
    ]
}

fn identity_variable_cases() -> Vec<Case> {
    vec![
        Case {
            name: "identity policy with a variable, own context",
            kp: Kp::Raw(ROOT_POLICY),
            identity: &[ID_OWN_PREFIX],
            grants: &[],
            who: Who::Bob,
            action: "kms:Decrypt",
            resource: KEY,
            ctx: NC,
            ec: &[("owner", "bob")],
            expect: Allow,
            deciding: &["key#0@account", "id0#0"],
        },
        Case {
            name: "identity policy with a variable, someone else's context",
            kp: Kp::Raw(ROOT_POLICY),
            identity: &[ID_OWN_PREFIX],
            grants: &[],
            who: Who::Bob,
            action: "kms:Decrypt",
            resource: KEY,
            ctx: NC,
            ec: &[("owner", "alice")],
            expect: Implicit,
            deciding: &["key#0@account"],
        },
    ]
}

fn grant_cases() -> Vec<Case> {
    let g = |name,
             grants: &'static [G],
             who,
             action,
             ec: &'static [(&'static str, &'static str)],
             kp,
             expect,
             deciding| Case {
        name,
        kp: Kp::Raw(kp),
        identity: &[],
        grants,
        who,
        action,
        resource: KEY,
        ctx: NC,
        ec,
        expect,
        deciding,
    };
    const PLAIN: &[G] = &[G {
        id: "g1",
        grantee: BOB,
        ops: &["Decrypt", "Encrypt"],
        eq: None,
        sub: None,
    }];
    const EQ: &[G] = &[G {
        id: "g2",
        grantee: BOB,
        ops: &["Decrypt", "DescribeKey"],
        eq: Some(&[("team", "blue")]),
        sub: None,
    }];
    const SUB: &[G] = &[G {
        id: "g3",
        grantee: BOB,
        ops: &["Decrypt"],
        eq: None,
        sub: Some(&[("team", "blue")]),
    }];
    const ROLE: &[G] = &[G {
        id: "g4",
        grantee: "arn:aws:iam::111122223333:role/auditor",
        ops: &["Decrypt"],
        eq: None,
        sub: None,
    }];
    const CAROL: &[G] = &[G {
        id: "g5",
        grantee: "arn:aws:iam::444455556666:user/carol",
        ops: &["Decrypt"],
        eq: None,
        sub: None,
    }];
    const REENC: &[G] = &[G {
        id: "g6",
        grantee: BOB,
        ops: &["ReEncryptFrom", "ReEncryptTo"],
        eq: None,
        sub: None,
    }];
    const TWO: &[G] = &[
        G {
            id: "g7",
            grantee: BOB,
            ops: &["Decrypt"],
            eq: None,
            sub: Some(&[("team", "red")]),
        },
        G {
            id: "g8",
            grantee: BOB,
            ops: &["Decrypt"],
            eq: None,
            sub: Some(&[("team", "blue")]),
        },
    ];
    let blue: &'static [(&'static str, &'static str)] = &[("team", "blue")];
    vec![
        g(
            "grant without constraints",
            PLAIN,
            Who::Bob,
            "kms:Decrypt",
            NE,
            NOTHING,
            Allow,
            &["grant:g1"],
        ),
        g(
            "grant without the operation",
            PLAIN,
            Who::Bob,
            "kms:Sign",
            NE,
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "grant for someone else",
            PLAIN,
            Who::Alice,
            "kms:Decrypt",
            NE,
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "EncryptionContextEquals holds",
            EQ,
            Who::Bob,
            "kms:Decrypt",
            blue,
            NOTHING,
            Allow,
            &["grant:g2"],
        ),
        g(
            "EncryptionContextEquals with an extra pair",
            EQ,
            Who::Bob,
            "kms:Decrypt",
            &[("team", "blue"), ("x", "y")],
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "EncryptionContextEquals, key case differs",
            EQ,
            Who::Bob,
            "kms:Decrypt",
            &[("Team", "blue")],
            NOTHING,
            Allow,
            &["grant:g2"],
        ),
        g(
            "EncryptionContextEquals, value case differs",
            EQ,
            Who::Bob,
            "kms:Decrypt",
            &[("team", "Blue")],
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "EncryptionContextEquals, no context",
            EQ,
            Who::Bob,
            "kms:Decrypt",
            NE,
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "constraints do not apply to DescribeKey",
            EQ,
            Who::Bob,
            "kms:DescribeKey",
            NE,
            NOTHING,
            Allow,
            &["grant:g2"],
        ),
        g(
            "EncryptionContextSubset holds",
            SUB,
            Who::Bob,
            "kms:Decrypt",
            &[("team", "blue"), ("x", "y")],
            NOTHING,
            Allow,
            &["grant:g3"],
        ),
        g(
            "EncryptionContextSubset missing the pair",
            SUB,
            Who::Bob,
            "kms:Decrypt",
            &[("x", "y")],
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "grant to a role covers its sessions",
            ROLE,
            Who::Session,
            "kms:Decrypt",
            NE,
            NOTHING,
            Allow,
            &["grant:g4"],
        ),
        g(
            "grant across accounts",
            CAROL,
            Who::Carol,
            "kms:Decrypt",
            NE,
            NOTHING,
            Allow,
            &["grant:g5"],
        ),
        g(
            "grant does not beat a Deny",
            PLAIN,
            Who::Bob,
            "kms:Decrypt",
            NE,
            BOB_AND_DENY_ALL,
            Deny,
            &["key#1"],
        ),
        g(
            "grant for ReEncryptFrom",
            REENC,
            Who::Bob,
            "kms:ReEncryptFrom",
            NE,
            NOTHING,
            Allow,
            &["grant:g6"],
        ),
        g(
            "grant ops are not IAM wildcards",
            REENC,
            Who::Bob,
            "kms:ReEncrypt",
            NE,
            NOTHING,
            Implicit,
            NONE,
        ),
        g(
            "of two grants the one that holds",
            TWO,
            Who::Bob,
            "kms:Decrypt",
            blue,
            NOTHING,
            Allow,
            &["grant:g8"],
        ),
    ]
}

#[test]
fn evaluation_table() {
    let cases: Vec<Case> = [
        condition_cases(),
        element_cases(),
        combination_cases(),
        identity_variable_cases(),
        grant_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    println!(
        "{} evaluation cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
