//! CloudTrail's `LookupEvents` on the KMS listener (AWS JSON 1.1, `X-Amz-Target`
//! `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`, SigV4 service
//! `cloudtrail`), authorised by the caller's identity policies (`cloudtrail:LookupEvents`; an
//! account's root user always may) and answering only the caller's account's records.
//!
//! Like every call, each lookup is itself audited (`eventSource` `cloudtrail.amazonaws.com`,
//! `readOnly`), and the answer leaves only once that record is durable: the call goes through the
//! listener's one pipeline (`edge::pipeline`) as a `Protocol`. Other CloudTrail operations answer
//! `UnsupportedOperationException`.

use async_trait::async_trait;
use serde_json::Value;

use crate::auth::sigv4::SigV4Error;
use crate::edge::caller::Caller;
use crate::edge::pipeline::{Executed, Protocol, RecordFacts, Refusal, Routed, Run};
use crate::edge::{Request, Response};
use crate::lookup::LookupError;
use crate::protocol::{AwsError, KmsError};
use crate::quota::QuotaClass;
use crate::state::AppState;

/// The `X-Amz-Target` prefix of CloudTrail's JSON API.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// Why a CloudTrail call failed, one variant per CloudTrail error code Trent answers with.
#[derive(Debug, thiserror::Error)]
pub enum CloudTrailError {
    /// The operation is not LookupEvents.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// The body is not JSON, or not a LookupEvents request.
    #[error("{0}")]
    Serialization(String),
    /// The caller may not look up events.
    #[error("{0}")]
    AccessDenied(String),
    /// The lookup itself failed.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The caller is over its LookupEvents quota.
    #[error("{0}")]
    Throttling(String),
    /// A failure inside the service.
    #[error("{0}")]
    Internal(String),
}

impl From<CloudTrailError> for AwsError {
    fn from(e: CloudTrailError) -> Self {
        let message = e.to_string();
        let (code, status) = match &e {
            CloudTrailError::UnsupportedOperation(_) => ("UnsupportedOperationException", 400),
            CloudTrailError::Serialization(_) => ("SerializationException", 400),
            CloudTrailError::AccessDenied(_) => ("AccessDeniedException", 400),
            CloudTrailError::Lookup(LookupError::InvalidLookupAttributes(_)) => {
                ("InvalidLookupAttributesException", 400)
            }
            CloudTrailError::Lookup(LookupError::InvalidTimeRange(_)) => {
                ("InvalidTimeRangeException", 400)
            }
            CloudTrailError::Lookup(LookupError::InvalidMaxResults(_)) => {
                ("InvalidMaxResultsException", 400)
            }
            CloudTrailError::Lookup(LookupError::InvalidNextToken(_)) => {
                ("InvalidNextTokenException", 400)
            }
            CloudTrailError::Lookup(LookupError::Store(_)) => ("CloudTrailInternalException", 500),
            CloudTrailError::Throttling(_) => ("ThrottlingException", 400),
            CloudTrailError::Internal(_) => ("InternalFailure", 500),
        };
        AwsError::new(code, status, message)
    }
}

/// CloudTrail's LookupEvents protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudTrail;

#[async_trait(?Send)]
impl Protocol for CloudTrail {
    /// The operation name.
    type Call = String;
    /// The request body.
    type Input = Value;

    fn service(&self) -> &'static str {
        "cloudtrail"
    }

    fn event_source(&self) -> &'static str {
        "cloudtrail.amazonaws.com"
    }

    fn route(&self, req: &Request) -> Routed<String> {
        let target = req.header("x-amz-target").unwrap_or_default();
        let operation = target.trim_start_matches(TARGET_PREFIX).to_string();
        Routed {
            event_name: operation.clone(),
            call: Ok(operation),
        }
    }

    fn read_only(&self, _call: Option<&String>) -> bool {
        true
    }

    fn quota_class(&self, _call: &String) -> QuotaClass {
        QuotaClass::CloudTrail
    }

    fn auth_error(&self, e: SigV4Error) -> AwsError {
        KmsError::from(e).into()
    }

    fn throttled(&self) -> AwsError {
        CloudTrailError::Throttling("Rate exceeded".into()).into()
    }

    fn not_durable(&self) -> AwsError {
        CloudTrailError::Internal("The request could not be recorded durably.".into()).into()
    }

    fn prepare(
        &self,
        _state: &AppState,
        req: &Request,
        _caller: &Caller,
        operation: &String,
        facts: &mut RecordFacts,
    ) -> Result<Value, AwsError> {
        if operation != "LookupEvents" {
            return Err(CloudTrailError::UnsupportedOperation(format!(
                "This server answers only CloudTrail's LookupEvents, not {operation}."
            ))
            .into());
        }
        let body: &[u8] = if req.body.is_empty() {
            b"{}"
        } else {
            &req.body
        };
        let parsed: Value = serde_json::from_slice(body)
            .map_err(|e| CloudTrailError::Serialization(e.to_string()))?;
        facts.request_parameters = parsed.clone();
        Ok(parsed)
    }

    async fn execute(&self, run: Run<'_, String, Value>) -> Result<Executed, Refusal> {
        let answer = lookup(run.state, run.req, run.caller, run.input).await?;
        Ok(Executed {
            body: answer.to_string(),
            ..Executed::default()
        })
    }

    fn render(&self, result: Result<String, &AwsError>, request_id: &str) -> Response {
        crate::edge::kms::json_response(result, request_id)
    }
}

/// Authorise and run the lookup.
async fn lookup(
    state: &AppState,
    req: &Request,
    caller: &Caller,
    parsed: &Value,
) -> Result<Value, AwsError> {
    let principal = &caller.principal;
    let policy = state.account_policy(&principal.account)?;
    let request = crate::authorize::request_for(
        principal,
        "cloudtrail:LookupEvents",
        trent_policy::Resource::from_arn("*"),
        &crate::edge::caller::origin_of(req, state, &caller.signature.region),
    )
    .without_encryption_context()
    .build();
    let identity = principal.compiled_policies();
    let (decision, allowed) = crate::authorize::decide(&request, &policy, &identity, None);
    state
        .metrics
        .authorization_decisions
        .with_label_values(&[decision])
        .inc();
    allowed.map_err(|e| CloudTrailError::AccessDenied(e.message()))?;
    let request = <crate::lookup::LookupRequest as serde::Deserialize>::deserialize(parsed)
        .map_err(|e| CloudTrailError::Serialization(e.to_string()))?;
    let region = &caller.signature.region;
    let answer = crate::lookup::lookup_events(&state.store, &principal.account, region, &request)
        .await
        .map_err(CloudTrailError::from)?;
    Ok(answer)
}
