//! The policy document model and its parser/validator.

use serde_json::{Map, Value};

/// Largest key policy AWS KMS accepts, in bytes.
pub const MAX_KEY_POLICY_BYTES: usize = 32 * 1024;

/// Which kind of document is parsed (the rules on `Principal` differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A resource policy attached to a KMS key: every statement names a principal.
    KeyPolicy,
    /// An identity policy attached to a user or role: no statement names a principal.
    Identity,
    /// A role's trust policy (who may assume it): every statement names a principal, none names a
    /// resource (the role is the resource).
    TrustPolicy,
}

/// Why a document is malformed; the message says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not valid JSON.
    #[error("the policy is not valid JSON: {0}")]
    Json(String),
    /// The document is larger than the limit.
    #[error("the policy is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// The document's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An element is missing, unknown, or has the wrong form.
    #[error("{location}: {problem}")]
    Invalid {
        /// Where, for example `Statement[2].Effect`.
        location: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(location: impl Into<String>, problem: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        location: location.into(),
        problem: problem.into(),
    }
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement allows.
    Allow,
    /// The statement denies.
    Deny,
}

/// A value that AWS accepts as one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrList(pub Vec<String>);

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The statement id, if any.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Principal` as written (`"*"` or an object of principal types to values).
    pub principal: Option<Value>,
    /// `NotPrincipal` as written.
    pub not_principal: Option<Value>,
    /// `Action` patterns.
    pub action: Option<StringOrList>,
    /// `NotAction` patterns.
    pub not_action: Option<StringOrList>,
    /// `Resource` patterns.
    pub resource: Option<StringOrList>,
    /// `NotResource` patterns.
    pub not_resource: Option<StringOrList>,
    /// `Condition` as written: operator -> condition key -> value(s).
    pub condition: Option<Map<String, Value>>,
}

/// A parsed, structurally valid policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// `Version`, if given.
    pub version: Option<String>,
    /// `Id`, if given.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parse a document with the rules common to both kinds.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::parse_as(text, None)
    }

    /// Parse a document with the rules of `kind` (key policies: principal required, 32 KiB limit).
    pub fn parse_kind(text: &str, kind: PolicyKind) -> Result<Self, PolicyError> {
        Self::parse_as(text, Some(kind))
    }

    fn parse_as(text: &str, kind: Option<PolicyKind>) -> Result<Self, PolicyError> {
        if kind == Some(PolicyKind::KeyPolicy) && text.len() > MAX_KEY_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                limit: MAX_KEY_POLICY_BYTES,
            });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(root) = value else {
            return Err(invalid("policy", "must be a JSON object"));
        };
        let mut version = None;
        let mut id = None;
        let mut statements = None;
        for (name, v) in &root {
            match name.as_str() {
                "Version" => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| invalid("Version", "must be a string"))?;
                    if s != "2012-10-17" && s != "2008-10-17" {
                        return Err(invalid(
                            "Version",
                            format!(
                                "'{s}' is not a policy language version (2012-10-17 or 2008-10-17)"
                            ),
                        ));
                    }
                    version = Some(s.to_string());
                }
                "Id" => {
                    id = Some(
                        v.as_str()
                            .ok_or_else(|| invalid("Id", "must be a string"))?
                            .to_string(),
                    )
                }
                "Statement" => statements = Some(parse_statements(v, kind)?),
                other => return Err(invalid(other, "is not a policy element")),
            }
        }
        let statements = statements.ok_or_else(|| invalid("policy", "has no Statement"))?;
        Ok(Self {
            version,
            id,
            statements,
        })
    }
}

fn parse_statements(v: &Value, kind: Option<PolicyKind>) -> Result<Vec<Statement>, PolicyError> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => {
            return Err(invalid(
                "Statement",
                "must be an object or an array of objects",
            ))
        }
    };
    if items.is_empty() {
        return Err(invalid("Statement", "must not be empty"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, s)| parse_statement(s, &format!("Statement[{i}]"), kind))
        .collect()
}

fn string_or_list(v: &Value, location: &str) -> Result<StringOrList, PolicyError> {
    match v {
        Value::String(s) => Ok(StringOrList(vec![s.clone()])),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(location, "must hold only strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StringOrList),
        _ => Err(invalid(
            location,
            "must be a string or a non-empty array of strings",
        )),
    }
}

fn check_principal(v: &Value, location: &str) -> Result<(), PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(()),
        Value::Object(map) if !map.is_empty() => {
            for (ptype, values) in map {
                if !matches!(
                    ptype.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err(invalid(
                        format!("{location}.{ptype}"),
                        "is not a principal type (AWS, Service, Federated, CanonicalUser)",
                    ));
                }
                string_or_list(values, &format!("{location}.{ptype}"))?;
            }
            Ok(())
        }
        _ => Err(invalid(
            location,
            "must be \"*\" or an object of principal types",
        )),
    }
}

fn parse_statement(
    v: &Value,
    loc: &str,
    kind: Option<PolicyKind>,
) -> Result<Statement, PolicyError> {
    let Value::Object(map) = v else {
        return Err(invalid(loc, "must be an object"));
    };
    let mut st = Statement {
        sid: None,
        effect: Effect::Allow,
        principal: None,
        not_principal: None,
        action: None,
        not_action: None,
        resource: None,
        not_resource: None,
        condition: None,
    };
    let mut effect = None;
    for (name, value) in map {
        let at = format!("{loc}.{name}");
        match name.as_str() {
            "Sid" => {
                st.sid = Some(
                    value
                        .as_str()
                        .ok_or_else(|| invalid(&at, "must be a string"))?
                        .to_string(),
                )
            }
            "Effect" => {
                effect = Some(match value.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err(invalid(&at, "must be \"Allow\" or \"Deny\"")),
                })
            }
            "Principal" => {
                check_principal(value, &at)?;
                st.principal = Some(value.clone());
            }
            "NotPrincipal" => {
                check_principal(value, &at)?;
                st.not_principal = Some(value.clone());
            }
            "Action" => st.action = Some(string_or_list(value, &at)?),
            "NotAction" => st.not_action = Some(string_or_list(value, &at)?),
            "Resource" => st.resource = Some(string_or_list(value, &at)?),
            "NotResource" => st.not_resource = Some(string_or_list(value, &at)?),
            "Condition" => st.condition = Some(condition_block(value, &at)?),
            other => {
                return Err(invalid(
                    format!("{loc}.{other}"),
                    "is not a statement element",
                ))
            }
        }
    }
    st.effect = effect.ok_or_else(|| invalid(loc, "has no Effect"))?;
    check_elements(&st, loc)?;
    if let Some(kind) = kind {
        check_for_kind(&st, loc, kind)?;
    }
    Ok(st)
}

/// A `Condition` element: an object of known operators, each an object of keys whose values are
/// scalars or arrays of scalars.
fn condition_block(value: &Value, at: &str) -> Result<serde_json::Map<String, Value>, PolicyError> {
    let Value::Object(ops) = value else {
        return Err(invalid(at, "must be an object of condition operators"));
    };
    for (op, keys) in ops {
        crate::condition::parse_operator(op).map_err(|e| invalid(format!("{at}.{op}"), e))?;
        let Value::Object(keys) = keys else {
            return Err(invalid(
                format!("{at}.{op}"),
                "must be an object of condition keys",
            ));
        };
        for (key, values) in keys {
            let ok = match values {
                Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
                Value::Object(_) => false,
                _ => true,
            };
            if !ok {
                return Err(invalid(
                    format!("{at}.{op}.{key}"),
                    "must be a value or an array of values",
                ));
            }
        }
    }
    Ok(ops.clone())
}

/// The elements of a statement that exclude each other.
fn check_elements(st: &Statement, loc: &str) -> Result<(), PolicyError> {
    if st.action.is_some() == st.not_action.is_some() {
        return Err(invalid(
            loc,
            "must have exactly one of Action and NotAction",
        ));
    }
    if st.resource.is_some() && st.not_resource.is_some() {
        return Err(invalid(loc, "must not have both Resource and NotResource"));
    }
    if st.principal.is_some() && st.not_principal.is_some() {
        return Err(invalid(
            loc,
            "must not have both Principal and NotPrincipal",
        ));
    }
    Ok(())
}

/// What a statement must and must not have in a policy of `kind`.
fn check_for_kind(st: &Statement, loc: &str, kind: PolicyKind) -> Result<(), PolicyError> {
    match kind {
        PolicyKind::KeyPolicy => {
            if st.principal.is_none() && st.not_principal.is_none() {
                return Err(invalid(
                    loc,
                    "must have a Principal or NotPrincipal in a key policy",
                ));
            }
            if st.resource.is_none() && st.not_resource.is_none() {
                return Err(invalid(loc, "must have a Resource or NotResource"));
            }
        }
        PolicyKind::Identity => {
            if st.principal.is_some() || st.not_principal.is_some() {
                return Err(invalid(loc, "an identity policy must not name a Principal"));
            }
            if st.resource.is_none() && st.not_resource.is_none() {
                return Err(invalid(loc, "must have a Resource or NotResource"));
            }
        }
        PolicyKind::TrustPolicy => {
            if st.not_principal.is_some() {
                return Err(invalid(
                    loc,
                    "must not use NotPrincipal in a trust policy (AWS forbids it there)",
                ));
            }
            if st.principal.is_none() {
                return Err(invalid(loc, "must have a Principal in a trust policy"));
            }
            if st.resource.is_some() || st.not_resource.is_some() {
                return Err(invalid(
                    loc,
                    "has a prohibited field Resource (a trust policy's resource is its role)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_POLICY: &str = r#"{"Version":"2012-10-17","Id":"k","Statement":[
        {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Effect":"Deny","Principal":"*","Action":["kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:a":["x","y"]}}}]}"#;

    #[test]
    fn valid_key_policy_parses() {
        let doc = PolicyDocument::parse_kind(KEY_POLICY, PolicyKind::KeyPolicy).unwrap();
        assert_eq!(doc.statements.len(), 2);
        assert_eq!(doc.statements[0].sid.as_deref(), Some("root"));
        assert_eq!(doc.statements[1].effect, Effect::Deny);
        assert_eq!(
            doc.statements[1].action,
            Some(StringOrList(vec!["kms:Decrypt".into()]))
        );
    }

    #[test]
    fn single_statement_object_is_accepted() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(doc.statements.len(), 1);
    }

    #[test]
    fn malformed_documents_say_what_and_where() {
        let cases: &[(&str, PolicyKind, &str)] = &[
            (
                "not json",
                PolicyKind::KeyPolicy,
                "the policy is not valid JSON",
            ),
            ("[]", PolicyKind::KeyPolicy, "policy: must be a JSON object"),
            (
                r#"{"Version":"2012-10-17"}"#,
                PolicyKind::KeyPolicy,
                "policy: has no Statement",
            ),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                PolicyKind::KeyPolicy,
                "Version: '2020-01-01'",
            ),
            (
                r#"{"Statement":[]}"#,
                PolicyKind::KeyPolicy,
                "Statement: must not be empty",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
                PolicyKind::KeyPolicy,
                "Statement[0].Effect: must be",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
                PolicyKind::KeyPolicy,
                "Statement[0]: must have a Principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}"#,
                PolicyKind::KeyPolicy,
                "exactly one of Action and NotAction",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"kms:*","Resource":"*"}]}"#,
                PolicyKind::KeyPolicy,
                "Statement[0].Principal.Bogus",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Extra":1}]}"#,
                PolicyKind::KeyPolicy,
                "Statement[0].Extra: is not a statement element",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
                PolicyKind::Identity,
                "must not name a Principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEquals":"x"}}]}"#,
                PolicyKind::Identity,
                "Condition.StringEquals: must be an object",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}"#,
                PolicyKind::Identity,
                "Statement[0].Condition.StringEqualz: 'StringEqualz' is not a condition operator",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}"#,
                PolicyKind::TrustPolicy,
                "Statement[0]: has a prohibited field Resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
                PolicyKind::TrustPolicy,
                "Statement[0]: must have a Principal in a trust policy",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#,
                PolicyKind::TrustPolicy,
                "Statement[0]: must not use NotPrincipal in a trust policy",
            ),
        ];
        for (text, kind, expected) in cases {
            let err = PolicyDocument::parse_kind(text, *kind)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{text}: got '{err}', expected '{expected}'"
            );
        }
    }

    #[test]
    fn key_policies_are_limited_to_32_kib() {
        let padding = "x".repeat(MAX_KEY_POLICY_BYTES);
        let text = format!(
            r#"{{"Id":"{padding}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}]}}"#
        );
        assert!(matches!(
            PolicyDocument::parse_kind(&text, PolicyKind::KeyPolicy),
            Err(PolicyError::TooLarge { .. })
        ));
    }
}
