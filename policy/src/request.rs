//! The request model: who asks (`Principal`), for what (`action`), on which key (`Resource`), and the
//! request context (condition keys, case-insensitive names, one or more values each).
//!
//! The service fills an [`AccessRequest`] per call through [`AccessRequestBuilder`] without knowing
//! anything about Cedar; the evaluator turns it into a Cedar request.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::value::ContextValue;

/// The kind of principal, as `aws:PrincipalType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// An account's root user (`arn:aws:iam::ACCOUNT:root`), `aws:PrincipalType` = `Account`.
    Root,
    /// An IAM user.
    User,
    /// A role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    AssumedRole,
    /// An AWS service principal (`logs.amazonaws.com`).
    Service,
    /// A federated user (`arn:aws:sts::ACCOUNT:federated-user/NAME`).
    FederatedUser,
}

impl PrincipalType {
    /// The value of `aws:PrincipalType`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Root => "Account",
            Self::User => "User",
            Self::AssumedRole => "AssumedRole",
            Self::Service => "Service",
            Self::FederatedUser => "FederatedUser",
        }
    }
}

/// The caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The caller's ARN (for a session, the session ARN; for a service, its name).
    pub arn: String,
    /// The caller's account (empty for a service principal).
    pub account: String,
    /// What kind of principal it is.
    pub kind: PrincipalType,
    /// `aws:username` (IAM users only).
    pub username: Option<String>,
    /// `aws:userid` (user id, `ROLEID:session`, or the account id for root).
    pub userid: Option<String>,
    /// Principal tags (`aws:PrincipalTag/KEY`).
    pub tags: BTreeMap<String, String>,
    /// For a role session, the role's ARN (`arn:aws:iam::ACCOUNT:role/NAME`).
    pub role_arn: Option<String>,
}

impl Principal {
    fn new(arn: String, account: &str, kind: PrincipalType) -> Self {
        Self {
            arn,
            account: account.to_string(),
            kind,
            username: None,
            userid: None,
            tags: BTreeMap::new(),
            role_arn: None,
        }
    }

    /// The root user of `account`.
    pub fn root(account: &str) -> Self {
        let mut p = Self::new(
            format!("arn:aws:iam::{account}:root"),
            account,
            PrincipalType::Root,
        );
        p.userid = Some(account.to_string());
        p
    }

    /// IAM user `name` (path `/`) in `account`.
    pub fn user(account: &str, name: &str) -> Self {
        let mut p = Self::new(
            format!("arn:aws:iam::{account}:user/{name}"),
            account,
            PrincipalType::User,
        );
        p.username = Some(name.to_string());
        p
    }

    /// A session `session` of role `role` in `account`.
    pub fn assumed_role(account: &str, role: &str, session: &str) -> Self {
        let mut p = Self::new(
            format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            account,
            PrincipalType::AssumedRole,
        );
        p.role_arn = Some(format!("arn:aws:iam::{account}:role/{role}"));
        p
    }

    /// An AWS service principal such as `logs.amazonaws.com`.
    pub fn service(name: &str) -> Self {
        Self::new(name.to_string(), "", PrincipalType::Service)
    }

    /// Set `aws:userid`.
    pub fn with_userid(mut self, userid: &str) -> Self {
        self.userid = Some(userid.to_string());
        self
    }

    /// Add a principal tag.
    pub fn with_tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }

    /// The value of `aws:PrincipalArn` (a session's role ARN, otherwise the ARN).
    pub fn principal_arn(&self) -> &str {
        self.role_arn.as_deref().unwrap_or(&self.arn)
    }
}

/// The resource acted on: a key (or alias) ARN and the account that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The resource ARN, e.g. `arn:aws:kms:us-east-1:111122223333:key/1234...`.
    pub arn: String,
    /// The owning account.
    pub account: String,
}

impl Resource {
    /// A resource with its ARN; the account is read from the ARN's fifth part.
    pub fn from_arn(arn: &str) -> Self {
        let account = arn.split(':').nth(4).unwrap_or_default().to_string();
        Self {
            arn: arn.to_string(),
            account,
        }
    }
}

/// A context key's values (the key itself is the map's, lower-cased).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContextEntry {
    pub values: Vec<ContextValue>,
}

/// One authorization question: principal, action, resource, and request context.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequest {
    /// The caller (shared: a credential's principal is made once and used by each of its calls).
    pub principal: std::sync::Arc<Principal>,
    /// The action as AWS names it, e.g. `kms:Decrypt`.
    pub action: String,
    /// The resource.
    pub resource: Resource,
    /// Condition keys, by lower-cased name (AWS compares key names case-insensitively).
    pub(crate) context: BTreeMap<String, ContextEntry>,
    /// The request's encryption context (for grant constraints).
    pub(crate) encryption_context: BTreeMap<String, String>,
    /// Whether the operation and key accept an encryption context (grant constraints apply).
    pub(crate) encryption_context_applies: bool,
}

impl AccessRequest {
    /// Start building a request.
    pub fn builder(
        principal: impl Into<std::sync::Arc<Principal>>,
        action: &str,
        resource: Resource,
    ) -> AccessRequestBuilder {
        AccessRequestBuilder {
            request: AccessRequest {
                principal: principal.into(),
                action: action.to_string(),
                resource,
                context: BTreeMap::new(),
                encryption_context: BTreeMap::new(),
                encryption_context_applies: true,
            },
        }
    }

    /// The values of a condition key (any case), if the request carries it with at least one value.
    pub fn context_values(&self, key: &str) -> Option<&[ContextValue]> {
        let found = if is_lower_ascii(key) {
            self.context.get(key)
        } else {
            self.context.get(&lower_name(key))
        };
        found.map(|e| &e.values[..]).filter(|v| !v.is_empty())
    }

    /// The single value of a key as text, for policy variables (multi-valued keys never resolve).
    pub(crate) fn variable(&self, key: &str) -> Option<String> {
        match self.context_values(key)? {
            [one] => Some(one.as_text()),
            _ => None,
        }
    }

    /// The context key names present, lower-cased.
    pub(crate) fn present_keys(&self) -> impl Iterator<Item = &str> {
        self.context
            .iter()
            .filter(|(_, e)| !e.values.is_empty())
            .map(|(k, _)| k.as_str())
    }
}

/// Fills an [`AccessRequest`]; principal keys (`aws:PrincipalArn`, `aws:username`, tags,
/// `kms:CallerAccount`, ...) are derived from the principal unless set explicitly.
#[derive(Debug, Clone)]
pub struct AccessRequestBuilder {
    request: AccessRequest,
}

impl AccessRequestBuilder {
    /// Add one value to a condition key (keys with several values are multi-valued).
    pub fn context(mut self, key: &str, value: impl Into<ContextValue>) -> Self {
        self.entry(key).values.push(value.into());
        self
    }

    /// Set a multi-valued key (an empty list is the same as an absent key).
    pub fn context_values<V: Into<ContextValue>>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let e = self.entry(key);
        e.values = values.into_iter().map(Into::into).collect();
        self
    }

    /// Set the encryption context: it feeds grant constraints, `kms:EncryptionContext:KEY` and
    /// `kms:EncryptionContextKeys`.
    pub fn encryption_context<'a>(
        mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (k, v) in pairs {
            self.request
                .encryption_context
                .insert(k.to_string(), v.to_string());
        }
        self
    }

    /// Mark that the operation or key takes no encryption context (asymmetric and HMAC keys,
    /// management operations): grant constraints then do not apply, as in AWS.
    pub fn without_encryption_context(mut self) -> Self {
        self.request.encryption_context_applies = false;
        self
    }

    /// Set `aws:CurrentTime` and `aws:EpochTime` from a clock reading.
    pub fn now(self, now: SystemTime) -> Self {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.context("aws:CurrentTime", ContextValue::Date(ms))
            .context("aws:EpochTime", ms / 1000)
    }

    fn entry(&mut self, key: &str) -> &mut ContextEntry {
        entry(&mut self.request.context, key)
    }

    /// Finish the request.
    pub fn build(mut self) -> AccessRequest {
        let AccessRequest {
            principal: p,
            context,
            encryption_context: ec,
            ..
        } = &mut self.request;
        if p.kind != PrincipalType::Service {
            default_value(context, "aws:PrincipalArn", p.principal_arn().into());
            default_value(context, "aws:PrincipalAccount", p.account.as_str().into());
            default_value(context, "kms:CallerAccount", p.account.as_str().into());
        }
        default_value(context, "aws:PrincipalType", p.kind.as_str().into());
        if let Some(u) = &p.username {
            default_value(context, "aws:username", u.as_str().into());
        }
        if let Some(u) = &p.userid {
            default_value(context, "aws:userid", u.as_str().into());
        }
        for (k, v) in &p.tags {
            default_value(context, &format!("aws:PrincipalTag/{k}"), v.as_str().into());
        }
        for (k, v) in ec.iter() {
            default_value(
                context,
                &format!("kms:EncryptionContext:{k}"),
                v.as_str().into(),
            );
        }
        if !ec.is_empty() {
            let e = entry(context, "kms:EncryptionContextKeys");
            if e.values.is_empty() {
                e.values = ec.keys().map(|k| ContextValue::from(k.as_str())).collect();
            }
        }
        context.retain(|_, e| !e.values.is_empty());
        self.request
    }
}

/// The entry of condition key `key` (any case) in `context`, added empty when absent.
fn entry<'c>(context: &'c mut BTreeMap<String, ContextEntry>, key: &str) -> &'c mut ContextEntry {
    context
        .entry(lower_name(key))
        .or_insert_with(|| ContextEntry { values: Vec::new() })
}

/// A condition key's name in lower case (names compare case-insensitively): an ASCII name (nearly
/// all) without Unicode's tables.
fn lower_name(key: &str) -> String {
    if key.is_ascii() {
        key.to_ascii_lowercase()
    } else {
        key.to_lowercase()
    }
}

/// Whether `key` is its own lower-case name (looked up without making one).
fn is_lower_ascii(key: &str) -> bool {
    key.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase())
}

/// Give condition key `key` the value `value` unless it has one.
fn default_value(context: &mut BTreeMap<String, ContextEntry>, key: &str, value: ContextValue) {
    let e = entry(context, key);
    if e.values.is_empty() {
        e.values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_keys_are_found_in_any_case_and_spellings_share_one_key() {
        let req = AccessRequest::builder(
            Principal::root("111122223333"),
            "kms:Encrypt",
            Resource::from_arn("arn:aws:kms:us-east-1:111122223333:key/k"),
        )
        .context("aws:RequestTag/Env", "prod")
        .context("aws:requesttag/env", "dev")
        .context("kms:CallerAccount", "444455556666")
        .build();
        let texts = |key: &str| -> Vec<String> {
            req.context_values(key)
                .map(|values| values.iter().map(ContextValue::as_text).collect())
                .unwrap_or_default()
        };
        for spelling in [
            "aws:RequestTag/Env",
            "aws:requesttag/env",
            "AWS:REQUESTTAG/ENV",
        ] {
            assert_eq!(texts(spelling), ["prod", "dev"], "{spelling}");
        }
        // Set explicitly, so the principal's default does not replace it.
        assert_eq!(texts("kms:calleraccount"), ["444455556666"]);
        assert_eq!(texts("kms:CallerAccount"), ["444455556666"]);
        // Defaults from the principal, found by a lower-case name too.
        assert_eq!(texts("aws:principaltype"), ["Account"]);
        assert!(req.context_values("aws:sourceip").is_none());
    }
}
