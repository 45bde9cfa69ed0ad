//! CloudTrail's `LookupEvents` on the KMS listener (AWS JSON 1.1, `X-Amz-Target`
//! `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`, SigV4 service
//! `cloudtrail`), authorised by the caller's identity policies (`cloudtrail:LookupEvents`; an
//! account's root user always may) and answering only the caller's account's records.
//!
//! Like every call, each lookup is itself audited (`eventSource` `cloudtrail.amazonaws.com`,
//! `readOnly`), and the answer leaves only once that record is durable. Other CloudTrail operations
//! answer `UnsupportedOperationException`.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::audit::record::CallRecord;
use crate::caller::{authenticate, client_of};
use crate::state::AppState;

/// The `X-Amz-Target` prefix of CloudTrail's JSON API.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// The content type of CloudTrail's JSON answers.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A failed CloudTrail call: its `__type` and message.
struct ApiError {
    aws_type: &'static str,
    message: String,
}

fn error(aws_type: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        aws_type,
        message: message.into(),
    }
}

/// Whether a request on the listener is a CloudTrail call.
pub fn is_cloudtrail_request(req: &HttpRequest) -> bool {
    req.headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(TARGET_PREFIX))
}

/// What the record of a lookup says about its caller.
struct Who {
    region: String,
    user_identity: Value,
    account: Option<String>,
}

/// Answer one CloudTrail call: its operation name (for metrics), outcome label and response.
pub async fn handle(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> (String, String, HttpResponse) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let event_time = state.clock.now();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.trim_start_matches(TARGET_PREFIX).to_string();
    let mut who = Who {
        region: state.regions.default_region(),
        user_identity: json!({"type": "Unknown"}),
        account: None,
    };
    let mut parameters = Value::Null;
    let mut result = lookup(state, req, body, &operation, &mut who, &mut parameters).await;
    let client = client_of(req);
    let record = CallRecord {
        event_id: uuid::Uuid::new_v4().to_string(),
        event_time,
        event_name: operation.clone(),
        event_source: "cloudtrail.amazonaws.com",
        read_only: true,
        region: who.region,
        user_identity: who.user_identity,
        recipient_account: who.account,
        source_ip: client.source_ip,
        user_agent: client.user_agent,
        request_parameters: parameters,
        response_elements: Value::Null,
        request_id: request_id.clone(),
        resources: Vec::new(),
        error_code: result.as_ref().err().map(|e| e.aws_type.to_string()),
        error_message: result.as_ref().err().map(|e| e.message.clone()),
    };
    if !state.record_call(&record).await {
        result = Err(error(
            "InternalFailure",
            "The request could not be recorded durably.",
        ));
    }
    let (outcome, response) = match result {
        Ok(answer) => (
            "success".to_string(),
            HttpResponse::Ok()
                .content_type(CONTENT_TYPE)
                .insert_header(("x-amzn-RequestId", request_id))
                .body(answer.to_string()),
        ),
        Err(e) => {
            let mut builder = if e.aws_type == "InternalFailure" {
                HttpResponse::InternalServerError()
            } else {
                HttpResponse::BadRequest()
            };
            (
                e.aws_type.to_string(),
                builder
                    .content_type(CONTENT_TYPE)
                    .insert_header(("x-amzn-RequestId", request_id))
                    .body(json!({"__type": e.aws_type, "message": e.message}).to_string()),
            )
        }
    };
    let name = if operation.is_empty() {
        "Unknown".to_string()
    } else {
        operation
    };
    (name, outcome, response)
}

/// Authenticate, authorise and run the lookup.
async fn lookup(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    operation: &str,
    who: &mut Who,
    parameters: &mut Value,
) -> Result<Value, ApiError> {
    let caller = authenticate(state, req, body, "cloudtrail").map_err(|e| {
        let e = crate::protocol::KmsError::from(e);
        error(e.aws_type(), e.message())
    })?;
    let principal = &caller.principal;
    who.region = caller.signature.region.clone();
    who.user_identity = principal.user_identity();
    who.account = Some(principal.account.clone());
    if operation != "LookupEvents" {
        return Err(error(
            "UnsupportedOperationException",
            format!("This server answers only CloudTrail's LookupEvents, not {operation}."),
        ));
    }
    let parsed: Value = serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
        .map_err(|e| error("SerializationException", e.to_string()))?;
    *parameters = parsed.clone();
    let policy = state
        .account_policy(&principal.account)
        .map_err(|e| error(e.aws_type(), e.message()))?;
    let request = crate::authorize::request_for(
        principal,
        "cloudtrail:LookupEvents",
        trent_policy::Resource::from_arn("*"),
        &crate::caller::origin_of(req, state, &caller.signature.region),
    )
    .without_encryption_context()
    .build();
    let identity: Vec<_> = principal
        .policies
        .iter()
        .map(|p| p.compiled.clone())
        .collect();
    let (decision, allowed) = crate::authorize::decide(&request, &policy, &identity, None);
    state
        .metrics
        .authorization_decisions
        .with_label_values(&[decision])
        .inc();
    allowed.map_err(|e| error("AccessDeniedException", e.message()))?;
    let request: crate::lookup::LookupRequest = serde_json::from_value(parsed)
        .map_err(|e| error("SerializationException", e.to_string()))?;
    crate::lookup::lookup_events(
        &state.audit_index,
        &state.store,
        &principal.account,
        &request,
    )
    .await
    .map_err(|e| error(e.aws_type(), e.to_string()))
}
