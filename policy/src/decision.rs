//! AWS KMS's decision logic over the answers of each policy source, as a small pure function, and
//! the `AccessDeniedException` message AWS writes for a denial.
//!
//! The rules (AWS KMS key access): an explicit Deny in the key policy or the caller's IAM policies
//! wins (grants cannot deny). In the key's account, the key policy allowing the caller directly
//! allows; the key policy allowing the account (its root, or the bare account id) delegates to the
//! caller's IAM policies, which must allow too. From another account, the key policy must allow
//! the caller's account or the caller AND the caller's IAM policies must allow. A grant for the
//! caller that covers the operation and whose constraints hold allows, from any account.

/// The outcome, with the IAM policy simulator's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `allowed`.
    Allow,
    /// `explicitDeny`: a Deny statement matched.
    ExplicitDeny,
    /// `implicitDeny`: nothing allowed.
    ImplicitDeny,
}

impl Decision {
    /// The IAM simulator's name for the decision.
    pub fn simulator_name(&self) -> &'static str {
        match self {
            Self::Allow => "allowed",
            Self::ExplicitDeny => "explicitDeny",
            Self::ImplicitDeny => "implicitDeny",
        }
    }
}

/// The kind of policy an access-denied message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// The key policy (a resource-based policy).
    ResourceBased,
    /// The caller's IAM policies.
    IdentityBased,
}

impl PolicyType {
    fn phrase(&self) -> &'static str {
        match self {
            Self::ResourceBased => "resource-based",
            Self::IdentityBased => "identity-based",
        }
    }
}

/// Why the decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The key policy allows the caller directly (same account).
    KeyPolicy,
    /// The key policy allows the key's account and the caller's IAM policies allow.
    IdentityDelegation,
    /// Another account: the key policy and the caller's IAM policies both allow.
    CrossAccount,
    /// A grant allows.
    Grant,
    /// A Deny statement in this kind of policy matched.
    ExplicitDeny(PolicyType),
    /// No statement of this kind of policy allowed.
    NoAllow(PolicyType),
    /// A Cedar evaluation error: refused, fail closed (a bug; never expected).
    EvaluationError,
}

/// What each source answered for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceAnswers {
    /// The caller is in the key's account (or is a service principal).
    pub same_account: bool,
    /// A Deny in the key policy matched.
    pub resource_deny: bool,
    /// An Allow in the key policy matched the caller directly (`*`, its ARN, its role).
    pub resource_allows_principal: bool,
    /// An Allow in the key policy matched the caller's account (root ARN or account id).
    pub resource_allows_account: bool,
    /// A Deny in the caller's IAM policies matched.
    pub identity_deny: bool,
    /// The caller's IAM policies allow (always true for an account's root user).
    pub identity_allow: bool,
    /// A grant allows.
    pub grant_allow: bool,
    /// Some evaluation raised an error.
    pub error: bool,
}

/// Combine the answers as AWS KMS does.
pub fn decide(a: &SourceAnswers) -> (Decision, Basis) {
    if a.error {
        return (Decision::ExplicitDeny, Basis::EvaluationError);
    }
    if a.resource_deny {
        return (
            Decision::ExplicitDeny,
            Basis::ExplicitDeny(PolicyType::ResourceBased),
        );
    }
    if a.identity_deny {
        return (
            Decision::ExplicitDeny,
            Basis::ExplicitDeny(PolicyType::IdentityBased),
        );
    }
    let resource_any = a.resource_allows_principal || a.resource_allows_account;
    if a.same_account {
        if a.resource_allows_principal {
            return (Decision::Allow, Basis::KeyPolicy);
        }
        if a.resource_allows_account && a.identity_allow {
            return (Decision::Allow, Basis::IdentityDelegation);
        }
    } else if resource_any && a.identity_allow {
        return (Decision::Allow, Basis::CrossAccount);
    }
    if a.grant_allow {
        return (Decision::Allow, Basis::Grant);
    }
    let missing = if resource_any {
        PolicyType::IdentityBased
    } else {
        PolicyType::ResourceBased
    };
    (Decision::ImplicitDeny, Basis::NoAllow(missing))
}

/// AWS's `AccessDeniedException` message for a denial, or `None` for an allow.
pub fn access_denied_message(
    principal_arn: &str,
    action: &str,
    resource_arn: &str,
    basis: Basis,
) -> Option<String> {
    let head = format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: {resource_arn}"
    );
    match basis {
        Basis::ExplicitDeny(t) => Some(format!(
            "{head} with an explicit deny in {} {} policy",
            article(t),
            t.phrase()
        )),
        Basis::EvaluationError => Some(format!(
            "{head} with an explicit deny in a resource-based policy"
        )),
        Basis::NoAllow(t) => Some(format!(
            "{head} because no {} policy allows the {action} action",
            t.phrase()
        )),
        Basis::KeyPolicy | Basis::IdentityDelegation | Basis::CrossAccount | Basis::Grant => None,
    }
}

fn article(t: PolicyType) -> &'static str {
    match t {
        PolicyType::ResourceBased => "a",
        PolicyType::IdentityBased => "an",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the boolean inputs, checked against the rules written independently
    /// as a truth table of named cases.
    #[test]
    fn decision_table() {
        // (same, rdeny, rprin, racct, ideny, iallow, grant) -> decision
        use Decision::*;
        type Inputs = (bool, bool, bool, bool, bool, bool, bool);
        let rows: &[(Inputs, Decision, Basis)] = &[
            (
                (true, false, true, false, false, false, false),
                Allow,
                Basis::KeyPolicy,
            ),
            (
                (true, false, false, true, false, true, false),
                Allow,
                Basis::IdentityDelegation,
            ),
            (
                (true, false, false, true, false, false, false),
                ImplicitDeny,
                Basis::NoAllow(PolicyType::IdentityBased),
            ),
            (
                (true, false, false, false, false, true, false),
                ImplicitDeny,
                Basis::NoAllow(PolicyType::ResourceBased),
            ),
            (
                (false, false, true, false, false, true, false),
                Allow,
                Basis::CrossAccount,
            ),
            (
                (false, false, false, true, false, true, false),
                Allow,
                Basis::CrossAccount,
            ),
            (
                (false, false, true, false, false, false, false),
                ImplicitDeny,
                Basis::NoAllow(PolicyType::IdentityBased),
            ),
            (
                (false, false, false, false, false, true, false),
                ImplicitDeny,
                Basis::NoAllow(PolicyType::ResourceBased),
            ),
            (
                (false, false, false, false, false, false, true),
                Allow,
                Basis::Grant,
            ),
            (
                (true, true, true, false, false, true, true),
                ExplicitDeny,
                Basis::ExplicitDeny(PolicyType::ResourceBased),
            ),
            (
                (true, false, true, false, true, true, true),
                ExplicitDeny,
                Basis::ExplicitDeny(PolicyType::IdentityBased),
            ),
        ];
        for ((same, rd, rp, ra, id, ia, g), want, basis) in rows {
            let a = SourceAnswers {
                same_account: *same,
                resource_deny: *rd,
                resource_allows_principal: *rp,
                resource_allows_account: *ra,
                identity_deny: *id,
                identity_allow: *ia,
                grant_allow: *g,
                error: false,
            };
            assert_eq!(decide(&a), (*want, *basis), "{a:?}");
        }
        let err = SourceAnswers {
            error: true,
            resource_allows_principal: true,
            same_account: true,
            ..Default::default()
        };
        assert_eq!(decide(&err).0, ExplicitDeny);
    }

    #[test]
    fn messages_follow_aws_wording() {
        let m = |b| {
            access_denied_message(
                "arn:aws:iam::111122223333:user/bob",
                "kms:Decrypt",
                "arn:aws:kms:us-east-1:111122223333:key/k",
                b,
            )
        };
        assert_eq!(
            m(Basis::NoAllow(PolicyType::ResourceBased)).unwrap(),
            "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:Decrypt \
             on resource: arn:aws:kms:us-east-1:111122223333:key/k because no resource-based \
             policy allows the kms:Decrypt action"
        );
        assert!(m(Basis::ExplicitDeny(PolicyType::IdentityBased))
            .unwrap()
            .ends_with("with an explicit deny in an identity-based policy"));
        assert!(m(Basis::ExplicitDeny(PolicyType::ResourceBased))
            .unwrap()
            .ends_with("with an explicit deny in a resource-based policy"));
        assert!(m(Basis::Grant).is_none());
    }
}
