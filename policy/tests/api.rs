//! The public interface beyond single decisions: compile errors, the explanation a simulation
//! returns (missing context keys, deciding statements with their Sid), and AWS's access-denied
//! messages end to end.

use trent_policy::{
    authorize, AccessRequest, CompiledPolicy, Decision, PolicyKind, Principal, Resource,
};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn key_policy(statements: &str) -> Result<CompiledPolicy, String> {
    CompiledPolicy::from_text(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        PolicyKind::KeyPolicy,
        "key",
    )
    .map_err(|e| e.to_string())
}

#[test]
fn unsupported_or_malformed_constructs_are_compile_errors() {
    let cases = [
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualsFoo":{"a":"b"}}}"#,
            "Statement[0].Condition.StringEqualsFoo: 'StringEqualsFoo' is not a condition operator",
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"kms:RotationPeriodInDays":"soon"}}}"#,
            "Statement[0].Condition.NumericLessThan.kms:RotationPeriodInDays: 'soon' is not a number",
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}"#,
            "'10.0.0.0/40' is not an IP address or CIDR block",
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}"#,
            "Statement[0].Principal.AWS: 'arn:aws:iam::111122223333:user/*' has a wildcard",
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}"#,
            "'bob' is not a valid principal",
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"k":"${aws:username"}}}"#,
            "unterminated policy variable",
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}"#,
            "Null takes neither IfExists nor a set qualifier",
        ),
    ];
    for (statement, expected) in cases {
        let err = key_policy(statement).unwrap_err();
        assert!(err.contains(expected), "got '{err}', expected '{expected}'");
    }
}

#[test]
fn simulation_reports_missing_keys_and_sids() {
    let kp = key_policy(
        r#"{"Sid":"TeamOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*",
            "Condition":{"StringEquals":{"kms:EncryptionContext:Team":"${aws:PrincipalTag/team}"},"Bool":{"aws:SecureTransport":"true"}}}"#,
    )
    .unwrap();
    let req = AccessRequest::builder(
        Principal::user("111122223333", "bob"),
        "kms:Decrypt",
        Resource::from_arn(KEY),
    )
    .context("aws:securetransport", true)
    .build();
    let e = authorize(&req, &kp, [], None);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(
        e.missing_context_keys,
        vec!["kms:EncryptionContext:Team", "aws:PrincipalTag/team"]
    );
    let req = AccessRequest::builder(
        Principal::user("111122223333", "bob").with_tag("team", "red"),
        "kms:Decrypt",
        Resource::from_arn(KEY),
    )
    .context("aws:SecureTransport", true)
    .encryption_context([("team", "red")])
    .build();
    let e = authorize(&req, &kp, [], None);
    assert_eq!(e.decision, Decision::Allow);
    assert!(e.missing_context_keys.is_empty());
    assert_eq!(e.statements[0].sid.as_deref(), Some("TeamOnly"));
    assert_eq!(e.statements[0].index, 0);
    assert_eq!(e.decision.simulator_name(), "allowed");
}

#[test]
fn access_denied_messages() {
    let kp = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
           {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}"#,
    )
    .unwrap();
    let carol_iam = CompiledPolicy::from_text(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
        PolicyKind::Identity,
        "carol-inline",
    )
    .unwrap();
    let ask = |p: Principal, ids: &[&CompiledPolicy]| {
        let req = AccessRequest::builder(p, "kms:Decrypt", Resource::from_arn(KEY)).build();
        let e = authorize(&req, &kp, ids.iter().copied(), None);
        (e.decision, e.access_denied_message(&req))
    };
    let (d, m) = ask(Principal::user("111122223333", "bob"), &[]);
    assert_eq!(d, Decision::ImplicitDeny);
    assert_eq!(
        m.unwrap(),
        format!("User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:Decrypt on resource: {KEY} because no identity-based policy allows the kms:Decrypt action")
    );
    let (d, m) = ask(Principal::user("111122223333", "alice"), &[]);
    assert_eq!(d, Decision::ExplicitDeny);
    assert_eq!(
        m.unwrap(),
        format!("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: {KEY} with an explicit deny in a resource-based policy")
    );
    let (d, m) = ask(Principal::user("444455556666", "carol"), &[&carol_iam]);
    assert_eq!(d, Decision::ImplicitDeny);
    assert!(m
        .unwrap()
        .ends_with("because no resource-based policy allows the kms:Decrypt action"));
    let (d, m) = ask(Principal::root("111122223333"), &[]);
    assert_eq!((d, m), (Decision::Allow, None));
}

#[test]
fn cedar_text_guards_every_context_access() {
    let kp = key_policy(
        r#"{"Sid":"S","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericGreaterThan":{"kms:RotationPeriodInDays":"365"},"StringNotEquals":{"kms:ViaService":"s3.amazonaws.com"}}}"#,
    )
    .unwrap();
    let text = kp.cedar_text();
    assert!(text.contains("forbid"), "{text}");
    assert!(
        text.contains("(context.n has \"kms:rotationperiodindays\") && "),
        "{text}"
    );
    assert!(
        text.contains("(!(context.s has \"kms:viaservice\") || "),
        "{text}"
    );
    // A deny whose keys are absent evaluates without error (and does not apply: the numeric
    // operator is false on an absent key).
    let ask = |rotation: Option<i64>| {
        let mut b = AccessRequest::builder(
            Principal::user("111122223333", "bob"),
            "kms:Decrypt",
            Resource::from_arn(KEY),
        );
        if let Some(days) = rotation {
            b = b.context("kms:RotationPeriodInDays", days);
        }
        let e = authorize(&b.build(), &kp, [], None);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        e.decision
    };
    assert_eq!(ask(None), Decision::ImplicitDeny);
    assert_eq!(ask(Some(400)), Decision::ExplicitDeny);
    assert_eq!(ask(Some(300)), Decision::ImplicitDeny);
}

/// A grant to a service principal with a SourceArn constraint allows the service only for that
/// source (never without one), and lets it retire the grant whatever the source.
#[test]
fn a_source_arn_grant_allows_its_service_for_that_source_only() {
    use trent_policy::{Grant, GrantConstraints, GrantIndex, GrantOperation};
    let source = "arn:aws:logs:us-east-1:111122223333:log-group:app";
    let grants = GrantIndex::from_grants([Grant {
        grant_id: "g1".into(),
        grantee_principal: "logs.amazonaws.com".into(),
        operations: vec![GrantOperation::Encrypt, GrantOperation::RetireGrant],
        constraints: Some(GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: None,
            source_arn: Some(source.into()),
        }),
    }])
    .unwrap();
    let nobody = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#,
    )
    .unwrap();
    let ask = |who: Principal, action: &str, source_arn: Option<&str>| {
        let mut b = AccessRequest::builder(who, action, Resource::from_arn(KEY));
        if let Some(s) = source_arn {
            b = b.context("aws:SourceArn", s);
        }
        authorize(&b.build(), &nobody, [], Some(&grants)).decision
    };
    let logs = || Principal::service("logs.amazonaws.com");
    assert_eq!(ask(logs(), "kms:Encrypt", Some(source)), Decision::Allow);
    assert_eq!(
        ask(
            logs(),
            "kms:Encrypt",
            Some("arn:aws:logs:us-east-1:111122223333:x")
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(ask(logs(), "kms:Encrypt", None), Decision::ImplicitDeny);
    assert_eq!(ask(logs(), "kms:RetireGrant", None), Decision::Allow);
    assert_eq!(
        ask(logs(), "kms:Decrypt", Some(source)),
        Decision::ImplicitDeny
    );
    let other = Principal::service("events.amazonaws.com");
    assert_eq!(
        ask(other, "kms:Encrypt", Some(source)),
        Decision::ImplicitDeny
    );
}
