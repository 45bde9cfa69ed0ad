//! Identities: accounts, their root users, IAM users and roles, access keys, identity policies and
//! trust policies, loaded from a TOML file (`docs/identities.md`) or the built-in development
//! identity. Role sessions (STS temporary credentials) are not stored here: a session's principal
//! is rebuilt per request from its sealed token and the role defined here.
//!
//! Secrets are held in zeroizing strings and only handed to the SigV4 verifier; nothing here prints
//! them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::protocol::wire::set;
use aws_lc_rs::digest;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use trent_policy::{CompiledPolicy, PolicyKind};
use zeroize::Zeroizing;

/// The development account used when no identity file is given.
pub const DEV_ACCOUNT_ID: &str = "111122223333";
/// The development root user's access key id (AWS's documentation example).
pub const DEV_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// The development root user's secret access key (AWS's documentation example).
pub const DEV_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Errors loading an identity file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be read.
    #[error("cannot read identity file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("identity file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The content breaks a rule (duplicate key, bad account id, malformed policy...).
    #[error("identity file: {0}")]
    Invalid(String),
}

/// What kind of principal signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user.
    Root,
    /// An IAM user.
    IamUser,
    /// A session of an IAM role (temporary credentials from STS `AssumeRole`).
    AssumedRole,
    /// A service principal of this deployment (`backup.example.com`): a service that calls Trent
    /// on behalf of its own resources, authorised by key policies and grants that name it.
    Service,
}

/// The role and session behind an assumed-role principal.
#[derive(Debug, Clone)]
pub struct RoleSession {
    /// The role's ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
    pub role_arn: String,
    /// The role's name.
    pub role_name: String,
    /// The role's unique id (`AROA...`).
    pub role_id: String,
    /// The session name the caller chose.
    pub session_name: String,
    /// When STS issued the credentials.
    pub issued_at: DateTime<Utc>,
    /// When they stop working.
    pub expires_at: DateTime<Utc>,
}

/// An IAM role: who may assume it (trust policy) and what its sessions may do (identity policies).
#[derive(Debug, Clone)]
pub struct Role {
    /// The owning account.
    pub account: String,
    /// The role name.
    pub name: String,
    /// The role ARN.
    pub arn: String,
    /// The unique id AWS calls RoleId (`AROA...`).
    pub role_id: String,
    /// The trust policy, compiled once at load.
    pub trust_policy: Arc<CompiledPolicy>,
    /// Identity policies attached to the role.
    pub policies: Vec<IdentityPolicy>,
    /// Role tags (`aws:PrincipalTag/...` in its sessions).
    pub tags: BTreeMap<String, String>,
    /// The longest session `AssumeRole` may grant, in seconds (3,600 to 43,200).
    pub max_session_duration: u32,
}

/// An identity policy attached to a user: its text and its compiled form.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    /// The policy name.
    pub name: String,
    /// The JSON policy document.
    pub document: String,
    /// The document compiled once, at load.
    pub compiled: Arc<CompiledPolicy>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's account id.
    pub account: String,
    /// The caller's ARN (`arn:aws:iam::ACCOUNT:root` or `arn:aws:iam::ACCOUNT:user/PATH/NAME`).
    pub arn: String,
    /// Root, IAM user or role session.
    pub kind: PrincipalKind,
    /// The IAM user name (None for root).
    pub user_name: Option<String>,
    /// The unique id AWS calls principalId / aws:userid.
    pub principal_id: String,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// Principal tags (`aws:PrincipalTag/...`).
    pub tags: BTreeMap<String, String>,
    /// Identity policies attached to the principal (for a session, the role's).
    pub policies: Vec<IdentityPolicy>,
    /// For a role session, the role and session.
    pub session: Option<RoleSession>,
    /// For temporary credentials (a role session or GetSessionToken), when STS issued them.
    pub token_issued_at: Option<DateTime<Utc>>,
    /// The principal as policies see it, made on first use (`authorize::policy_principal`) and
    /// then shared by every call of this principal.
    pub policy_view: std::sync::OnceLock<Arc<trent_policy::Principal>>,
}

impl Principal {
    /// The compiled identity policies attached to the principal, as authorization takes them.
    pub fn compiled_policies(&self) -> Vec<Arc<CompiledPolicy>> {
        self.policies.iter().map(|p| p.compiled.clone()).collect()
    }

    /// The CloudTrail `userIdentity` element for this principal.
    pub fn user_identity(&self) -> serde_json::Value {
        // CloudTrail names a call a service makes by the service (`AWSService`, `invokedBy`).
        if self.kind == PrincipalKind::Service {
            return serde_json::json!({ "type": "AWSService", "invokedBy": self.arn });
        }
        let mut v = serde_json::json!({
            "type": match self.kind {
                PrincipalKind::Root => "Root",
                PrincipalKind::IamUser => "IAMUser",
                PrincipalKind::AssumedRole => "AssumedRole",
                PrincipalKind::Service => "AWSService",
            },
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.access_key_id,
        });
        if let Some(name) = &self.user_name {
            set(&mut v, "userName", serde_json::Value::String(name.clone()));
        }
        if let (None, Some(issued)) = (&self.session, self.token_issued_at) {
            set(
                &mut v,
                "sessionContext",
                serde_json::json!({
                    "attributes": {
                        "creationDate": crate::clock::cloudtrail_time(issued),
                        "mfaAuthenticated": "false",
                    },
                }),
            );
        }
        if let Some(s) = &self.session {
            set(
                &mut v,
                "sessionContext",
                serde_json::json!({
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": s.role_id,
                        "arn": s.role_arn,
                        "accountId": self.account,
                        "userName": s.role_name,
                    },
                    "attributes": {
                        "creationDate": crate::clock::cloudtrail_time(s.issued_at),
                        "mfaAuthenticated": "false",
                    },
                }),
            );
        }
        v
    }
}

struct Credential {
    /// Shared with every call it signs (a call clones the pointer, not the principal).
    principal: Arc<Principal>,
    /// The principal's `userIdentity`, made once.
    user_identity: Arc<serde_json::Value>,
    secret: Zeroizing<String>,
}

impl Credential {
    fn new(principal: Principal, secret: Zeroizing<String>) -> Self {
        Self {
            user_identity: Arc::new(principal.user_identity()),
            principal: Arc::new(principal),
            secret,
        }
    }
}

/// Every principal that can sign requests, by access key id.
pub struct Identities {
    by_access_key: HashMap<String, Credential>,
    development: bool,
    accounts: BTreeSet<String>,
    users: BTreeSet<String>,
    roles: HashMap<String, Role>,
    services: BTreeSet<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("access_keys", &self.by_access_key.len())
            .field("development", &self.development)
            .finish()
    }
}

/// Identities as an identity file is read, account by account.
#[derive(Default)]
struct Loader {
    by_access_key: HashMap<String, Credential>,
    accounts: BTreeSet<String>,
    users: BTreeSet<String>,
    roles: HashMap<String, Role>,
    services: BTreeSet<String>,
}

impl Loader {
    /// One access key: its secret long enough, its id not taken.
    fn credential(
        &mut self,
        principal: Principal,
        secret: Zeroizing<String>,
    ) -> Result<(), IdentityError> {
        if secret.len() < 16 {
            return Err(IdentityError::Invalid(format!(
                "the secret of access key {} is shorter than 16 characters",
                principal.access_key_id
            )));
        }
        let id = principal.access_key_id.clone();
        if self
            .by_access_key
            .insert(id.clone(), Credential::new(principal, secret))
            .is_some()
        {
            return Err(IdentityError::Invalid(format!(
                "access key {id} is defined twice"
            )));
        }
        Ok(())
    }

    /// One account: its root user's keys, its users and its roles.
    fn account(&mut self, account: FileAccount) -> Result<(), IdentityError> {
        self.accounts.insert(account.id.clone());
        if account.id.len() != 12 || !account.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::Invalid(format!(
                "account id '{}' is not 12 digits",
                account.id
            )));
        }
        for key in account.root_access_keys {
            let principal = Principal {
                account: account.id.clone(),
                arn: format!("arn:aws:iam::{}:root", account.id),
                kind: PrincipalKind::Root,
                user_name: None,
                principal_id: account.id.clone(),
                access_key_id: key.access_key_id,
                tags: BTreeMap::new(),
                policies: Vec::new(),
                session: None,
                token_issued_at: None,
                policy_view: Default::default(),
            };
            self.credential(principal, key.secret_access_key)?;
        }
        for user in account.users {
            self.user(&account.id, user)?;
        }
        for service in account.service_principals {
            self.service(&account.id, service)?;
        }
        let mut role_names = BTreeSet::new();
        for role in account.roles {
            let role = load_role(&account.id, role)?;
            // Names are unique per account whatever the path, ignoring case, as in IAM: a
            // session ARN names the role without its path.
            if !role_names.insert(role.name.to_lowercase()) {
                return Err(IdentityError::Invalid(format!(
                    "role {} of account {} is defined twice",
                    role.name, account.id
                )));
            }
            self.roles.insert(role.arn.clone(), role);
        }
        Ok(())
    }

    /// One service principal of `account` and its access keys.
    fn service(&mut self, account: &str, service: FileService) -> Result<(), IdentityError> {
        if !is_service_principal_name(&service.name) {
            return Err(IdentityError::Invalid(format!(
                "service principal '{}': a name is two or more dot-separated labels of letters, \
                 digits and '-', such as backup.example.com",
                service.name
            )));
        }
        if !self.services.insert(service.name.clone()) {
            return Err(IdentityError::Invalid(format!(
                "service principal {} is defined twice",
                service.name
            )));
        }
        for key in service.access_keys {
            let principal = Principal {
                account: account.to_string(),
                arn: service.name.clone(),
                kind: PrincipalKind::Service,
                user_name: None,
                principal_id: service.name.clone(),
                access_key_id: key.access_key_id,
                tags: BTreeMap::new(),
                policies: Vec::new(),
                session: None,
                token_issued_at: None,
                policy_view: Default::default(),
            };
            self.credential(principal, key.secret_access_key)?;
        }
        Ok(())
    }

    /// One IAM user of `account` and its access keys.
    fn user(&mut self, account: &str, user: FileUser) -> Result<(), IdentityError> {
        if !user.path.starts_with('/') || !user.path.ends_with('/') {
            return Err(IdentityError::Invalid(format!(
                "user {}: path must begin and end with '/'",
                user.name
            )));
        }
        let arn = format!("arn:aws:iam::{account}:user{}{}", user.path, user.name);
        let policies = identity_policies(user.policies, &format!("user {}", user.name))?;
        self.users.insert(arn.clone());
        for key in user.access_keys {
            let principal = Principal {
                account: account.to_string(),
                arn: arn.clone(),
                kind: PrincipalKind::IamUser,
                user_name: Some(user.name.clone()),
                principal_id: unique_id("AIDA", &arn),
                access_key_id: key.access_key_id,
                tags: user.tags.clone(),
                policies: policies.clone(),
                session: None,
                token_issued_at: None,
                policy_view: Default::default(),
            };
            self.credential(principal, key.secret_access_key)?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    #[serde(default)]
    accounts: Vec<FileAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    id: String,
    #[serde(default)]
    root_access_keys: Vec<FileAccessKey>,
    #[serde(default)]
    users: Vec<FileUser>,
    #[serde(default)]
    roles: Vec<FileRole>,
    #[serde(default)]
    service_principals: Vec<FileService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileService {
    name: String,
    #[serde(default)]
    access_keys: Vec<FileAccessKey>,
}

/// Whether `name` has the form of a service principal (the API model's ServicePrincipalType:
/// two or more dot-separated labels of letters, digits and `-`, at most 128 characters).
pub fn is_service_principal_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 128
        && labels.len() >= 3
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRole {
    name: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    trust_policy: String,
    #[serde(default)]
    policies: Vec<FilePolicy>,
    #[serde(default = "default_max_session_duration")]
    max_session_duration: u32,
}

fn default_max_session_duration() -> u32 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    access_keys: Vec<FileAccessKey>,
    #[serde(default)]
    policies: Vec<FilePolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccessKey {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for FileAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileAccessKey({})", self.access_key_id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    name: String,
    document: String,
}

fn default_path() -> String {
    "/".to_string()
}

/// Compile the identity policies of `owner` (a user or role, for messages).
fn identity_policies(
    files: Vec<FilePolicy>,
    owner: &str,
) -> Result<Vec<IdentityPolicy>, IdentityError> {
    files
        .into_iter()
        .map(|p| {
            let compiled = CompiledPolicy::from_text(&p.document, PolicyKind::Identity, &p.name)
                .map_err(|e| IdentityError::Invalid(format!("{owner} policy {}: {e}", p.name)))?;
            Ok(IdentityPolicy {
                name: p.name,
                document: p.document,
                compiled: Arc::new(compiled),
            })
        })
        .collect()
}

/// Check and compile a role of `account`.
fn load_role(account: &str, role: FileRole) -> Result<Role, IdentityError> {
    let owner = format!("role {}", role.name);
    if !role.path.starts_with('/') || !role.path.ends_with('/') {
        return Err(IdentityError::Invalid(format!(
            "{owner}: path must begin and end with '/'"
        )));
    }
    let name_ok = (1..=64).contains(&role.name.len())
        && role
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !name_ok {
        return Err(IdentityError::Invalid(format!(
            "{owner}: a role name is 1 to 64 letters, digits and +=,.@_-"
        )));
    }
    if !(3600..=43200).contains(&role.max_session_duration) {
        return Err(IdentityError::Invalid(format!(
            "{owner}: max_session_duration must be between 3600 and 43200 seconds"
        )));
    }
    let trust_policy =
        CompiledPolicy::from_text(&role.trust_policy, PolicyKind::TrustPolicy, "trust-policy")
            .map_err(|e| IdentityError::Invalid(format!("{owner} trust policy: {e}")))?;
    let arn = format!("arn:aws:iam::{account}:role{}{}", role.path, role.name);
    Ok(Role {
        account: account.to_string(),
        role_id: unique_id("AROA", &arn),
        policies: identity_policies(role.policies, &owner)?,
        name: role.name,
        arn,
        trust_policy: Arc::new(trust_policy),
        tags: role.tags,
        max_session_duration: role.max_session_duration,
    })
}

/// AWS-style unique id for a user: a prefix and 17 characters derived from the ARN.
fn unique_id(prefix: &str, arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let d = digest::digest(&digest::SHA256, arn.as_bytes());
    let tail: String = d
        .as_ref()
        .iter()
        .take(17)
        .filter_map(|b| ALPHABET.get(usize::from(*b) % 32).map(|c| *c as char))
        .collect();
    format!("{prefix}{tail}")
}

impl Identities {
    /// The development identity: the root user of `account` with AWS's example access key.
    pub fn development(account: &str) -> Self {
        let principal = Principal {
            account: account.to_string(),
            arn: format!("arn:aws:iam::{account}:root"),
            kind: PrincipalKind::Root,
            user_name: None,
            principal_id: account.to_string(),
            access_key_id: DEV_ACCESS_KEY_ID.to_string(),
            tags: BTreeMap::new(),
            policies: Vec::new(),
            session: None,
            token_issued_at: None,
            policy_view: Default::default(),
        };
        let mut by_access_key = HashMap::new();
        by_access_key.insert(
            DEV_ACCESS_KEY_ID.to_string(),
            Credential::new(principal, Zeroizing::new(DEV_SECRET_ACCESS_KEY.to_string())),
        );
        Self {
            by_access_key,
            development: true,
            accounts: BTreeSet::from([account.to_string()]),
            users: BTreeSet::new(),
            roles: HashMap::new(),
            services: BTreeSet::new(),
        }
    }

    /// Load identities from a TOML file.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            IdentityError::Parse { message, .. } => IdentityError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parse identities from TOML text.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let root: FileRoot = toml::from_str(text).map_err(|e| IdentityError::Parse {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut loader = Loader::default();
        for account in root.accounts {
            loader.account(account)?;
        }
        let identities = Self {
            by_access_key: loader.by_access_key,
            development: false,
            accounts: loader.accounts,
            users: loader.users,
            roles: loader.roles,
            services: loader.services,
        };
        identities.check_trust_principals()?;
        Ok(identities)
    }

    /// Every principal a role's trust policy names exists.
    fn check_trust_principals(&self) -> Result<(), IdentityError> {
        for role in self.roles.values() {
            if let Some(missing) = role
                .trust_policy
                .principals()
                .iter()
                .find(|p| !self.principal_exists(p))
            {
                return Err(IdentityError::Invalid(format!(
                    "role {}: the trust policy names principal {missing}, which does not exist",
                    role.arn
                )));
            }
        }
        Ok(())
    }

    /// Whether a principal named in a policy exists: an account (bare id or `:root` ARN), a user or
    /// a role of this deployment, a session of such a role
    /// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), `*`, an AWS service principal, or a
    /// service principal of this deployment.
    pub fn principal_exists(&self, principal: &str) -> bool {
        if principal == "*" || principal.ends_with(".amazonaws.com") {
            return true;
        }
        if self.services.contains(principal) {
            return true;
        }
        if self.accounts.contains(principal) {
            return true;
        }
        if let Some(rest) = principal.strip_prefix("arn:aws:iam::") {
            if let Some((account, resource)) = rest.split_once(':') {
                return match resource {
                    "root" => self.accounts.contains(account),
                    r if r.starts_with("role/") => self.roles.contains_key(principal),
                    _ => self.users.contains(principal),
                };
            }
        }
        if let Some(rest) = principal.strip_prefix("arn:aws:sts::") {
            let session = rest
                .split_once(":assumed-role/")
                .and_then(|(account, r)| Some((account, r.split_once('/')?)));
            if let Some((account, (role, name))) = session {
                return !name.is_empty()
                    && !name.contains('/')
                    && self
                        .roles
                        .values()
                        .any(|r| r.account == account && r.name == role);
            }
        }
        false
    }

    /// A role by ARN.
    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.roles.get(arn)
    }

    /// The principal of a session of role `role_arn` (None when the role no longer exists).
    pub fn session_principal(
        &self,
        role_arn: &str,
        session_name: &str,
        access_key_id: &str,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Option<Principal> {
        let role = self.roles.get(role_arn)?;
        Some(Principal {
            account: role.account.clone(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session_name}",
                role.account, role.name
            ),
            kind: PrincipalKind::AssumedRole,
            user_name: None,
            principal_id: format!("{}:{session_name}", role.role_id),
            access_key_id: access_key_id.to_string(),
            tags: role.tags.clone(),
            policies: role.policies.clone(),
            token_issued_at: Some(issued_at),
            policy_view: Default::default(),
            session: Some(RoleSession {
                role_arn: role.arn.clone(),
                role_name: role.name.clone(),
                role_id: role.role_id.clone(),
                session_name: session_name.to_string(),
                issued_at,
                expires_at,
            }),
        })
    }

    /// Whether `account` is an account of this deployment.
    pub fn account_exists(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }

    /// Whether these are the built-in development credentials.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// The secret access key of an access key id, for the SigV4 verifier.
    pub fn secret_for(&self, access_key_id: &str) -> Option<Zeroizing<String>> {
        self.by_access_key
            .get(access_key_id)
            .map(|c| c.secret.clone())
    }

    /// A user or root user by ARN (the first access key's view of it).
    fn permanent_by_arn(&self, arn: &str) -> Option<&Principal> {
        self.by_access_key
            .values()
            .map(|c| &*c.principal)
            .filter(|p| p.arn == arn)
            .min_by(|a, b| a.access_key_id.cmp(&b.access_key_id))
    }

    /// The principal of GetSessionToken credentials of the user (or root user) `arn` (None when
    /// it no longer exists).
    pub fn user_session_principal(
        &self,
        arn: &str,
        access_key_id: &str,
        issued_at: DateTime<Utc>,
    ) -> Option<Principal> {
        let mut p = self.permanent_by_arn(arn)?.clone();
        p.access_key_id = access_key_id.to_string();
        p.token_issued_at = Some(issued_at);
        p.policy_view = Default::default();
        Some(p)
    }

    /// A principal by ARN, for policy simulation: a user or root user (the first access key's view
    /// of it), a role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), or a role (as a
    /// session named `simulation`).
    pub fn principal_by_arn(&self, arn: &str) -> Option<Principal> {
        if let Some(p) = self.permanent_by_arn(arn) {
            return Some(p.clone());
        }
        let now = Utc::now();
        if self.roles.contains_key(arn) {
            return self.session_principal(arn, "simulation", "", now, now);
        }
        let (account, rest) = arn
            .strip_prefix("arn:aws:sts::")?
            .split_once(":assumed-role/")?;
        let (name, session) = rest.split_once('/')?;
        let role = self
            .roles
            .values()
            .find(|r| r.account == account && r.name == name)?;
        self.session_principal(&role.arn, session, "", now, now)
    }

    /// Every principal a simulation can ask about, by ARN, in order: each account's root user
    /// (when it has access keys), its IAM users and its roles.
    pub fn known_principals(&self) -> Vec<String> {
        let mut arns: Vec<String> = self
            .accounts
            .iter()
            .map(|a| format!("arn:aws:iam::{a}:root"))
            .filter(|arn| self.permanent_by_arn(arn).is_some())
            .collect();
        arns.extend(self.users.iter().cloned());
        let mut roles: Vec<String> = self.roles.keys().cloned().collect();
        roles.sort();
        arns.extend(roles);
        arns
    }

    /// Who signs with a permanent access key: its principal and that principal's `userIdentity`
    /// (made when the identity file was loaded), both shared.
    pub fn signer(&self, access_key_id: &str) -> Option<(Arc<Principal>, Arc<serde_json::Value>)> {
        self.by_access_key
            .get(access_key_id)
            .map(|c| (c.principal.clone(), c.user_identity.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[accounts]]
id = "444455556666"

[[accounts.root_access_keys]]
access_key_id = "AKIAROOT000000000001"
secret_access_key = "root-secret-0123456789"

[[accounts.users]]
name = "alice"
path = "/team/"
tags = { team = "payments" }
access_keys = [{ access_key_id = "AKIAALICE00000000001", secret_access_key = "alice-secret-0123456789" }]
policies = [{ name = "kms", document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}' }]
"#;

    #[test]
    fn file_defines_root_and_users() {
        let ids = Identities::parse(FILE).unwrap();
        let (root, root_identity) = ids.signer("AKIAROOT000000000001").unwrap();
        assert_eq!(root.arn, "arn:aws:iam::444455556666:root");
        // The userIdentity made at load is the principal's.
        assert_eq!(*root_identity, root.user_identity());
        assert_eq!(root_identity["type"], "Root");
        assert_eq!(root.kind, PrincipalKind::Root);
        let (alice, alice_identity) = ids.signer("AKIAALICE00000000001").unwrap();
        assert_eq!(*alice_identity, alice.user_identity());
        assert_eq!(alice_identity["userName"], "alice");
        assert_eq!(alice.arn, "arn:aws:iam::444455556666:user/team/alice");
        assert_eq!(alice.tags.get("team").map(String::as_str), Some("payments"));
        assert_eq!(alice.policies.len(), 1);
        assert!(alice.principal_id.starts_with("AIDA") && alice.principal_id.len() == 21);
        assert_eq!(
            ids.secret_for("AKIAALICE00000000001")
                .as_deref()
                .map(String::as_str),
            Some("alice-secret-0123456789")
        );
        assert!(ids.signer("AKIAOTHER").is_none());
        assert!(!ids.is_development());
    }

    #[test]
    fn bad_files_are_refused() {
        let dup = FILE.replace("AKIAALICE00000000001", "AKIAROOT000000000001");
        assert!(matches!(
            Identities::parse(&dup),
            Err(IdentityError::Invalid(_))
        ));
        let bad_account = FILE.replace("444455556666", "1234");
        assert!(matches!(
            Identities::parse(&bad_account),
            Err(IdentityError::Invalid(_))
        ));
        let bad_policy = FILE.replace(r#""Effect":"Allow""#, r#""Effect":"Maybe""#);
        assert!(matches!(
            Identities::parse(&bad_policy),
            Err(IdentityError::Invalid(_))
        ));
        assert!(matches!(
            Identities::parse("accounts = 3"),
            Err(IdentityError::Parse { .. })
        ));
    }

    #[test]
    fn principals_named_in_policies_must_exist() {
        let ids = Identities::parse(FILE).unwrap();
        for ok in [
            "*",
            "444455556666",
            "arn:aws:iam::444455556666:root",
            "arn:aws:iam::444455556666:user/team/alice",
            "kms.amazonaws.com",
        ] {
            assert!(ids.principal_exists(ok), "{ok}");
        }
        for missing in [
            "999988887777",
            "arn:aws:iam::999988887777:root",
            "arn:aws:iam::444455556666:user/mallory",
            "arn:aws:iam::444455556666:role/r",
        ] {
            assert!(!ids.principal_exists(missing), "{missing}");
        }
    }

    const ROLE: &str = r#"
[[accounts.roles]]
name = "deployer"
path = "/ci/"
tags = { team = "platform" }
max_session_duration = 7200
trust_policy = '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/team/alice"},"Action":"sts:AssumeRole"}]}'
policies = [{ name = "kms", document = '{"Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}' }]
"#;

    #[test]
    fn roles_have_trust_policies_and_sessions() {
        let ids = Identities::parse(&format!("{FILE}{ROLE}")).unwrap();
        let arn = "arn:aws:iam::444455556666:role/ci/deployer";
        let role = ids.role(arn).unwrap();
        assert!(role.role_id.starts_with("AROA") && role.role_id.len() == 21);
        assert_eq!(role.max_session_duration, 7200);
        assert_eq!(role.policies.len(), 1);
        assert!(ids.principal_exists(arn));
        assert!(ids.principal_exists("arn:aws:sts::444455556666:assumed-role/deployer/any-session"));
        assert!(!ids.principal_exists("arn:aws:sts::444455556666:assumed-role/nobody/any-session"));
        assert!(
            !ids.principal_exists("arn:aws:sts::111122223333:assumed-role/deployer/any-session")
        );
        let now = chrono::Utc::now();
        let p = ids
            .session_principal(arn, "build-7", "ASIAEXAMPLE", now, now)
            .unwrap();
        assert_eq!(
            p.arn,
            "arn:aws:sts::444455556666:assumed-role/deployer/build-7"
        );
        assert_eq!(p.kind, PrincipalKind::AssumedRole);
        assert_eq!(p.principal_id, format!("{}:build-7", role.role_id));
        assert_eq!(p.tags.get("team").map(String::as_str), Some("platform"));
        let identity = p.user_identity();
        assert_eq!(identity["type"], "AssumedRole");
        assert_eq!(identity["sessionContext"]["sessionIssuer"]["arn"], arn);
        assert!(ids
            .session_principal("arn:aws:iam::444455556666:role/gone", "s", "ASIA", now, now)
            .is_none());
    }

    #[test]
    fn a_role_name_is_unique_in_its_account_whatever_the_path() {
        let twice = ROLE.replace("/ci/", "/cd/").replace("deployer", "Deployer");
        let text = format!("{FILE}{ROLE}{twice}");
        assert!(matches!(
            Identities::parse(&text),
            Err(IdentityError::Invalid(m)) if m.contains("defined twice")
        ));
    }

    #[test]
    fn bad_roles_are_refused() {
        for (from, to) in [
            ("user/team/alice", "user/mallory"),
            ("max_session_duration = 7200", "max_session_duration = 60"),
            ("name = \"deployer\"", "name = \"has space\""),
            ("\"Principal\":{\"AWS\"", "\"NotPrincipal\":{\"AWS\""),
            (
                "\"Action\":\"sts:AssumeRole\"",
                "\"Action\":\"sts:AssumeRole\",\"Resource\":\"*\"",
            ),
        ] {
            let text = format!("{FILE}{}", ROLE.replace(from, to));
            assert!(
                matches!(Identities::parse(&text), Err(IdentityError::Invalid(_))),
                "{to}"
            );
        }
    }

    #[test]
    fn development_identity_is_the_documented_one() {
        let ids = Identities::development(DEV_ACCOUNT_ID);
        assert!(ids.is_development());
        let (p, _) = ids.signer(DEV_ACCESS_KEY_ID).unwrap();
        assert_eq!(p.arn, "arn:aws:iam::111122223333:root");
    }
}
