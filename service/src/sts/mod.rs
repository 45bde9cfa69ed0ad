//! STS on the KMS listener: the query protocol (form-encoded `POST /`, XML answers) for
//! `AssumeRole`, `GetSessionToken` and `GetCallerIdentity`, so that `aws sts assume-role
//! --endpoint-url ...` hands out role sessions (and `get-session-token` a user's own temporary
//! credentials) that every Trent API accepts.
//!
//! `AssumeRole` is authorised with the same evaluation as KMS calls: the role's trust policy in the
//! place of the key policy and the caller's identity policies (explicit deny wins; a trust policy
//! that trusts the caller's account delegates to its IAM; cross-account needs both sides). The
//! credentials are issued by `auth::session` and leave only after the call's audit record
//! (`eventSource` `sts.amazonaws.com`) is durable: the call goes through the listener's one
//! pipeline (`edge::pipeline`) as a `Protocol`. Other STS operations answer
//! `UnsupportedOperationException`.

pub mod error;
mod xml;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use trent_policy::ContextValue;

use crate::audit::record::cloudtrail_time;
use crate::auth::identity::PrincipalKind;
use crate::auth::session::{IssuedCredentials, SessionKind};
use crate::auth::sigv4::SigV4Error;
use crate::edge::caller::Caller;
use crate::edge::pipeline::{Executed, Protocol, RecordFacts, Refusal, Routed, Run};
use crate::edge::{Request, Response};
use crate::protocol::wire::set;
use crate::protocol::AwsError;
use crate::quota::QuotaClass;
use crate::state::AppState;
use error::StsError;

/// The API version STS's query protocol names.
const API_VERSION: &str = "2011-06-15";
/// The default session length, in seconds.
const DEFAULT_DURATION: i64 = 3600;
/// The longest session a role session may request for another role (role chaining).
const CHAINED_MAX_DURATION: i64 = 3600;
/// STS operations of the API that Trent does not implement.
const UNSUPPORTED_ACTIONS: &[&str] = &[
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetDelegatedAccessToken",
    "GetFederationToken",
    "GetWebIdentityToken",
];
/// AssumeRole parameters Trent does not implement (by name or list prefix).
const UNSUPPORTED_PARAMETERS: &[&str] = &[
    "Policy",
    "PolicyArns",
    "Tags",
    "TransitiveTagKeys",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts",
];

/// What the audit record of an STS call says beyond the request itself.
#[derive(Default)]
struct StsCall {
    request_parameters: Value,
    response_elements: Value,
    resources: Vec<String>,
}

/// STS's query protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sts;

#[async_trait(?Send)]
impl Protocol for Sts {
    /// The form parameters (with `Action`).
    type Call = BTreeMap<String, String>;
    /// Nothing more is decoded after authentication.
    type Input = ();

    fn service(&self) -> &'static str {
        "sts"
    }

    fn event_source(&self) -> &'static str {
        "sts.amazonaws.com"
    }

    fn route(&self, req: &Request) -> Routed<Self::Call> {
        let params: BTreeMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        Routed {
            event_name: params.get("Action").cloned().unwrap_or_default(),
            call: Ok(params),
        }
    }

    fn read_only(&self, params: Option<&Self::Call>) -> bool {
        params.and_then(|p| p.get("Action")).map(String::as_str) == Some("GetCallerIdentity")
    }

    fn quota_class(&self, _params: &Self::Call) -> QuotaClass {
        QuotaClass::Sts
    }

    fn auth_error(&self, e: SigV4Error) -> AwsError {
        StsError::Auth(e).into()
    }

    fn throttled(&self) -> AwsError {
        StsError::Throttling("Rate exceeded".into()).into()
    }

    fn not_durable(&self) -> AwsError {
        StsError::Internal("The request could not be recorded durably.".into()).into()
    }

    fn prepare(
        &self,
        _state: &AppState,
        _req: &Request,
        _caller: &Caller,
        params: &Self::Call,
        _facts: &mut RecordFacts,
    ) -> Result<(), AwsError> {
        let action = params.get("Action").map_or("", String::as_str);
        match params.get("Version").filter(|v| *v != API_VERSION) {
            Some(version) => Err(StsError::InvalidAction(format!(
                "Could not find operation {action} for version {version}"
            ))
            .into()),
            None => Ok(()),
        }
    }

    async fn execute(&self, run: Run<'_, Self::Call, ()>) -> Result<Executed, Refusal> {
        let mut call = StsCall::default();
        let result = process(
            run.state,
            run.req,
            run.caller,
            run.call,
            run.request_id,
            run.event_time,
            &mut call,
        );
        run.facts.request_parameters = call.request_parameters;
        run.facts.resources = call.resources;
        Ok(Executed {
            body: result.map_err(AwsError::from)?,
            response_elements: call.response_elements,
            ..Executed::default()
        })
    }

    fn render(&self, result: Result<String, &AwsError>, request_id: &str) -> Response {
        let (status, body) = match result {
            Ok(document) => (200, document),
            Err(e) => (e.status, xml::error(e, request_id)),
        };
        Response {
            status,
            content_type: "text/xml",
            request_id: request_id.to_string(),
            body,
        }
    }
}

/// Dispatch and run the action of an authenticated caller; the XML document of the answer.
fn process(
    state: &AppState,
    req: &Request,
    caller: &Caller,
    params: &BTreeMap<String, String>,
    request_id: &str,
    now: DateTime<Utc>,
    call: &mut StsCall,
) -> Result<String, StsError> {
    let action = params.get("Action").map_or("", String::as_str);
    let result = match action {
        "GetCallerIdentity" => get_caller_identity(caller),
        "AssumeRole" => assume_role(state, caller, params, req, now, call)?,
        "GetSessionToken" => get_session_token(state, caller, params, now, call)?,
        a if UNSUPPORTED_ACTIONS.contains(&a) => {
            return Err(StsError::Unsupported(format!(
                "Trent's STS endpoint implements AssumeRole, GetSessionToken and GetCallerIdentity; {a} is not supported."
            )))
        }
        a => {
            return Err(StsError::InvalidAction(format!(
                "Could not find operation {a} for version {API_VERSION}"
            )))
        }
    };
    Ok(xml::response(action, &result, request_id))
}

/// `GetCallerIdentity`: who signed the request. Needs no permission (AWS answers it even under an
/// explicit deny).
fn get_caller_identity(caller: &Caller) -> Vec<String> {
    let p = &caller.principal;
    vec![
        xml::element("UserId", &p.principal_id),
        xml::element("Account", &p.account),
        xml::element("Arn", &p.arn),
    ]
}

/// The `Credentials` element of issued credentials.
fn credentials_xml(issued: &IssuedCredentials) -> String {
    xml::parent(
        "Credentials",
        &[
            xml::element("AccessKeyId", &issued.access_key_id),
            xml::element("SecretAccessKey", &issued.secret_access_key),
            xml::element("SessionToken", &issued.session_token),
            xml::element("Expiration", &cloudtrail_time(issued.expiration)),
        ],
    )
}

/// `DurationSeconds` within `(min, max)`, or `default` when absent; recorded in `parameters`.
fn duration_param(
    text: Option<&String>,
    (min, max): (i64, i64),
    default: i64,
    parameters: &mut Value,
    problems: &mut Vec<String>,
) -> i64 {
    let Some(text) = text else { return default };
    let Ok(d) = text.parse::<i64>() else {
        problems.push(constraint(
            Some(text),
            "durationSeconds",
            "must be an integer",
        ));
        return default;
    };
    parameters["durationSeconds"] = json!(d);
    if d < min {
        problems.push(constraint(
            Some(text),
            "durationSeconds",
            &format!("must have value greater than or equal to {min}"),
        ));
    }
    if d > max {
        problems.push(constraint(
            Some(text),
            "durationSeconds",
            &format!("must have value less than or equal to {max}"),
        ));
    }
    d
}

/// `ValidationError` listing every failed constraint, if any.
fn validation(problems: Vec<String>) -> Result<(), StsError> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    Err(StsError::Validation(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        problems.join("; ")
    )))
}

/// `GetSessionToken`: temporary credentials of the calling user (or root user) itself, usable
/// wherever its own keys are; no permission is needed, as in AWS. Session credentials cannot get
/// more (AWS refuses it too), and MFA parameters are not supported.
fn get_session_token(
    state: &AppState,
    caller: &Caller,
    params: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    call: &mut StsCall,
) -> Result<Vec<String>, StsError> {
    if let Some(name) = ["SerialNumber", "TokenCode"]
        .into_iter()
        .find(|p| params.contains_key(*p))
    {
        return Err(StsError::Unsupported(format!(
            "Trent's GetSessionToken does not support the {name} parameter (MFA is not implemented)."
        )));
    }
    let principal = &caller.principal;
    if principal.token_issued_at.is_some() {
        return Err(StsError::AccessDenied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    // Root users get at most an hour, as in AWS; users up to 36 hours (default 12).
    let (max, default) = match principal.kind {
        PrincipalKind::Root => (3600, 3600),
        _ => (129_600, 43_200),
    };
    let mut parameters = json!({});
    let mut problems = Vec::new();
    let duration = duration_param(
        params.get("DurationSeconds"),
        (900, max),
        default,
        &mut parameters,
        &mut problems,
    );
    call.request_parameters = parameters;
    validation(problems)?;
    let issued = crate::auth::session::issue(
        &state.root_key,
        SessionKind::UserSession,
        &principal.arn,
        "",
        &principal.arn,
        now,
        duration,
    )
    .map_err(|_| StsError::Internal("The session credentials could not be issued.".into()))?;
    call.response_elements = json!({
        "credentials": {
            "accessKeyId": issued.access_key_id,
            "expiration": cloudtrail_time(issued.expiration),
        },
    });
    Ok(vec![credentials_xml(&issued)])
}

/// One failed constraint, worded as AWS's validation errors are.
fn constraint(value: Option<&str>, member: &str, rule: &str) -> String {
    let value = value.map_or("null".to_string(), |v| format!("'{v}'"));
    format!("Value {value} at '{member}' failed to satisfy constraint: Member {rule}")
}

/// Length and pattern checks of one string parameter.
fn check_string(
    problems: &mut Vec<String>,
    value: Option<&String>,
    member: &str,
    (min, max): (usize, usize),
    allowed: fn(char) -> bool,
    pattern: &str,
    required: bool,
) {
    let Some(v) = value else {
        if required {
            problems.push(constraint(None, member, "must not be null"));
        }
        return;
    };
    let len = v.chars().count();
    if len < min {
        problems.push(constraint(
            Some(v),
            member,
            &format!("must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        problems.push(constraint(
            Some(v),
            member,
            &format!("must have length less than or equal to {max}"),
        ));
    }
    if !v.chars().all(allowed) {
        problems.push(constraint(
            Some(v),
            member,
            &format!("must satisfy regular expression pattern: {pattern}"),
        ));
    }
}

fn word_or(extra: &'static str) -> impl Fn(char) -> bool {
    move |c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c)
}

fn session_name_char(c: char) -> bool {
    word_or("+=,.@-")(c)
}

fn external_id_char(c: char) -> bool {
    word_or("+=,.@:/-")(c)
}

fn arn_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// AssumeRole's parameters, checked.
struct AssumeRoleParams<'a> {
    role_arn: &'a String,
    session_name: &'a String,
    external_id: Option<&'a String>,
    duration: i64,
}

/// Read and check AssumeRole's parameters (all problems at once, in STS's words), recording the
/// ones the audit record shows.
fn assume_role_params<'a>(
    params: &'a BTreeMap<String, String>,
    call: &mut StsCall,
) -> Result<AssumeRoleParams<'a>, StsError> {
    if let Some(name) = params.keys().find(|k| {
        UNSUPPORTED_PARAMETERS
            .iter()
            .any(|p| *k == p || k.starts_with(&format!("{p}.")))
    }) {
        return Err(StsError::Unsupported(format!(
            "Trent's AssumeRole does not support the {name} parameter (session policies, session \
             tags, MFA, source identity and provided contexts are not implemented)."
        )));
    }
    let role_arn = params.get("RoleArn");
    let session_name = params.get("RoleSessionName");
    let external_id = params.get("ExternalId");
    let duration = params.get("DurationSeconds");
    let mut parameters = json!({});
    if let Some(v) = role_arn {
        set(&mut parameters, "roleArn", json!(v));
    }
    if let Some(v) = session_name {
        set(&mut parameters, "roleSessionName", json!(v));
    }
    if let Some(v) = external_id {
        set(&mut parameters, "externalId", json!(v));
    }
    let mut problems = Vec::new();
    check_string(&mut problems, role_arn, "roleArn", (20, 2048), arn_char, "[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+", true);
    check_string(
        &mut problems,
        session_name,
        "roleSessionName",
        (2, 64),
        session_name_char,
        "[\\w+=,.@-]*",
        true,
    );
    check_string(
        &mut problems,
        external_id,
        "externalId",
        (2, 1224),
        external_id_char,
        "[\\w+=,.@:\\/-]*",
        false,
    );
    let duration = duration_param(
        duration,
        (900, 43200),
        DEFAULT_DURATION,
        &mut parameters,
        &mut problems,
    );
    call.request_parameters = parameters;
    validation(problems)?;
    let (Some(role_arn), Some(session_name)) = (role_arn, session_name) else {
        return Err(StsError::Validation(
            "RoleArn and RoleSessionName are required.".into(),
        ));
    };
    Ok(AssumeRoleParams {
        role_arn,
        session_name,
        external_id,
        duration,
    })
}

/// Decide whether the caller may assume the role: its trust policy and the caller's IAM
/// policies, with `sts:RoleSessionName` and `sts:ExternalId`. An unknown role and a refusal look
/// the same to the caller.
fn authorize_assume_role<'s>(
    state: &'s AppState,
    caller: &Caller,
    req: &Request,
    now: DateTime<Utc>,
    p: &AssumeRoleParams<'_>,
    call: &mut StsCall,
) -> Result<&'s crate::auth::identity::Role, StsError> {
    let (role_arn, session_name, external_id) = (p.role_arn, p.session_name, p.external_id);
    let principal = &caller.principal;
    if principal.kind == PrincipalKind::Root {
        return Err(StsError::AccessDenied(
            "Roles may not be assumed by root accounts.".into(),
        ));
    }
    let denied = || {
        StsError::AccessDenied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            principal.arn
        ))
    };
    let mut request_keys = vec![(
        "sts:RoleSessionName".to_string(),
        vec![ContextValue::from(session_name.as_str())],
    )];
    if let Some(id) = external_id {
        request_keys.push((
            "sts:ExternalId".to_string(),
            vec![ContextValue::from(id.as_str())],
        ));
    }
    let origin = crate::authorize::Origin {
        now,
        ..crate::edge::caller::origin_of(req, state, &caller.signature.region)
    };
    let request =
        crate::authorize::assume_role_request(principal, role_arn, &origin, &request_keys);
    // The same answer and the same record whether the role exists or not, and whatever the
    // reason: a caller learns nothing about another account's roles from a refusal.
    call.resources = vec![role_arn.clone()];
    let Some(role) = state.identities.role(role_arn) else {
        state
            .metrics
            .authorization_decisions
            .with_label_values(&["implicitDeny"])
            .inc();
        return Err(denied());
    };
    let identity: Vec<_> = principal
        .policies
        .iter()
        .map(|p| p.compiled.clone())
        .collect();
    let trust = crate::authorize::SharedPolicy(role.trust_policy.clone());
    let evaluation =
        crate::authorize::evaluate_assume_role(&request, principal, role, &trust, &identity);
    let (decision, verdict) = crate::authorize::verdict(&request, &evaluation);
    state
        .metrics
        .authorization_decisions
        .with_label_values(&[decision])
        .inc();
    if verdict.is_err() {
        return Err(denied());
    }
    Ok(role)
}

/// The session length against the role's maximum and the role-chaining limit.
fn check_session_duration(
    role: &crate::auth::identity::Role,
    caller_kind: PrincipalKind,
    duration: i64,
) -> Result<(), StsError> {
    if duration > i64::from(role.max_session_duration) {
        return Err(StsError::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    if caller_kind == PrincipalKind::AssumedRole && duration > CHAINED_MAX_DURATION {
        return Err(StsError::Validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                .into(),
        ));
    }
    Ok(())
}

/// `AssumeRole`: check the parameters, authorise against the trust policy and the caller's IAM
/// policies, and issue a session.
fn assume_role(
    state: &AppState,
    caller: &Caller,
    params: &BTreeMap<String, String>,
    req: &Request,
    now: DateTime<Utc>,
    call: &mut StsCall,
) -> Result<Vec<String>, StsError> {
    let checked = assume_role_params(params, call)?;
    let role = authorize_assume_role(state, caller, req, now, &checked, call)?;
    let principal = &caller.principal;
    let (session_name, duration) = (checked.session_name, checked.duration);
    check_session_duration(role, principal.kind, duration)?;
    let issued = crate::auth::session::issue(
        &state.root_key,
        SessionKind::AssumedRole,
        &role.arn,
        session_name,
        &principal.arn,
        now,
        duration,
    )
    .map_err(|_| StsError::Internal("The session credentials could not be issued.".into()))?;
    let assumed_id = format!("{}:{session_name}", role.role_id);
    let assumed_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session_name}",
        role.account, role.name
    );
    let expiration = cloudtrail_time(issued.expiration);
    call.response_elements = json!({
        "credentials": {"accessKeyId": issued.access_key_id, "expiration": expiration},
        "assumedRoleUser": {"assumedRoleId": assumed_id, "arn": assumed_arn},
    });
    Ok(vec![
        credentials_xml(&issued),
        xml::parent(
            "AssumedRoleUser",
            &[
                xml::element("AssumedRoleId", &assumed_id),
                xml::element("Arn", &assumed_arn),
            ],
        ),
    ])
}
