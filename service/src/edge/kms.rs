//! The KMS API as a `Protocol`: AWS JSON 1.1 with `X-Amz-Target: TrentService.<Operation>`,
//! bodies validated against AWS's model, run by `handlers::dispatch`.

use async_trait::async_trait;
use serde_json::Value;

use super::pipeline::{
    Completed, Executed, Protocol, RecordFacts, Refusal, Routed, Run, CONFLICT_RETRIES,
};
use super::request::{Request, Response};
use crate::audit::record::request_parameters;
use crate::auth::sigv4::SigV4Error;
use crate::edge::caller::Caller;
use crate::handlers::{self, blob_members, CallContext};
use crate::protocol::model::Model;
use crate::protocol::wire::{json_text, wipe_strings, RequestJson};
use crate::protocol::{AwsError, KmsError, Operation};
use crate::quota::QuotaClass;
use crate::state::AppState;
use crate::store::KeyUse;

/// The content type of every AWS JSON 1.1 response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The KMS protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kms;

/// The body of a JSON-protocol answer: the success body (empty for null), or the error's.
pub fn json_response(result: Result<String, &AwsError>, request_id: &str) -> Response {
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => (e.status, e.json_body().to_string()),
    };
    Response {
        status,
        content_type: CONTENT_TYPE,
        request_id: request_id.to_string(),
        body,
    }
}

#[async_trait(?Send)]
impl Protocol for Kms {
    type Call = Operation;
    type Input = RequestJson;

    fn service(&self) -> &'static str {
        "kms"
    }

    fn event_source(&self) -> &'static str {
        "kms.amazonaws.com"
    }

    fn route(&self, req: &Request) -> Routed<Operation> {
        let target = req.header("x-amz-target").unwrap_or_default();
        let event_name = target
            .rsplit_once('.')
            .map_or(target, |(_, op)| op)
            .to_string();
        let call = if req.header_count("x-amz-target") > 1 {
            Err(KmsError::UnknownOperation(
                "The request has more than one X-Amz-Target header.".into(),
            ))
        } else {
            Operation::from_target(target).ok_or_else(|| {
                KmsError::UnknownOperation(format!(
                    "The operation '{target}' is not a KMS operation."
                ))
            })
        };
        Routed {
            event_name,
            call: call.map_err(AwsError::from),
        }
    }

    fn metric_label(&self, _event_name: &str, call: Option<&Operation>) -> String {
        call.map_or("Unknown", |op| op.name()).to_string()
    }

    fn read_only(&self, call: Option<&Operation>) -> bool {
        call.is_some_and(|op| op.is_read_only())
    }

    fn quota_class(&self, op: &Operation) -> QuotaClass {
        QuotaClass::of(*op)
    }

    fn auth_error(&self, e: SigV4Error) -> AwsError {
        KmsError::from(e).into()
    }

    fn throttled(&self) -> AwsError {
        KmsError::Throttling("Rate exceeded".into()).into()
    }

    fn not_durable(&self) -> AwsError {
        KmsError::KmsInternal("The request could not be recorded durably.".into()).into()
    }

    fn prepare(
        &self,
        state: &AppState,
        req: &Request,
        _caller: &Caller,
        op: &Operation,
        facts: &mut RecordFacts,
    ) -> Result<RequestJson, AwsError> {
        let json = RequestJson(if req.body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&req.body).map_err(|e| {
                KmsError::Serialization(format!("The request body is not valid JSON: {e}"))
            })?
        });
        if !json.is_object() {
            return Err(
                KmsError::Serialization("The request body must be a JSON object.".into()).into(),
            );
        }
        facts.request_parameters = request_parameters(&json, blob_members(*op));
        let checked = plain_http_proxy_as_https(state, *op, &json);
        let valid = Model::get().validate(*op, &checked);
        if let std::borrow::Cow::Owned(mut copy) = checked {
            // A copy of a body that carries the proxy's secret access key.
            wipe_strings(&mut copy);
        }
        valid?;
        Ok(json)
    }

    async fn execute(&self, run: Run<'_, Operation, RequestJson>) -> Result<Executed, Refusal> {
        let op = *run.call;
        let new_context = || {
            let region = run.caller.signature.region.clone();
            CallContext {
                op,
                principal: run.caller.principal.clone(),
                origin: crate::edge::caller::origin_of(run.req, run.state, &region),
                region,
                resources: Default::default(),
                metrics: run.state.metrics.clone(),
                request_alias: Default::default(),
                condition_keys: std::sync::Mutex::new(crate::condition_keys::from_request(
                    op, run.input,
                )),
                request_id: run.request_id.to_string(),
                external_key_store: Default::default(),
            }
        };
        let mut ctx = new_context();
        let mut result = match crate::warm_up::prepare(run.state, &ctx, run.input).await {
            Ok(()) => handlers::dispatch(run.state, &ctx, run.input).await,
            Err(e) => Err(e),
        };
        // The warming model held what `prepare` loaded, but the call went further (another
        // replica retargeted an alias meanwhile, or a policy now tests the key's aliases): run
        // it again, from a fresh context, on the full model. The calls that may run while
        // warming change nothing before they resolve their keys and authorize.
        if matches!(result, Err(KmsError::NeedsFullModel)) {
            result = match run.state.warm_up.wait().await {
                Ok(()) => {
                    ctx = new_context();
                    handlers::dispatch(run.state, &ctx, run.input).await
                }
                Err(e) => Err(e),
            };
        }
        if let Ok(r) = ctx.resources.lock() {
            run.facts.resources.extend(r.iter().cloned());
        }
        if let Some(used) = ctx.external_key_store.lock().ok().and_then(|u| u.clone()) {
            run.facts.additional_event_data = used;
        }
        match result {
            Ok(mut outcome) => Ok(Executed {
                body: if outcome.body.is_null() {
                    String::new()
                } else {
                    let text = json_text(&outcome.body);
                    // The body may hold a plaintext or a data key; the text goes on to the client.
                    wipe_strings(&mut outcome.body);
                    text
                },
                unit: outcome.unit,
                response_elements: outcome.response_elements.unwrap_or(Value::Null),
            }),
            // A key or alias another process sharing the store has just created is not in this
            // process's read model until it follows (every second): catch up once and run again,
            // so a client sees its own writes whichever replica answers.
            Err(e) => Err(Refusal {
                retry_after_catch_up: matches!(e, KmsError::NotFound(_)),
                error: e.into(),
            }),
        }
    }

    /// Another writer changed the key between our read and our append: nothing of the failed
    /// attempt was written (materials included) and nothing entered a cache. The command runs
    /// again on the new state, unless it was a rotation that another rotation beat: AWS answers
    /// that with ConflictException.
    fn on_conflict(
        &self,
        state: &AppState,
        op: &Operation,
        attempted: &[(String, i32)],
        facts: &RecordFacts,
        attempt: usize,
    ) -> Option<AwsError> {
        if *op == Operation::RotateKeyOnDemand && versions_taken(state, attempted) {
            return Some(
                KmsError::Conflict(format!(
                    "A rotation of {} is in progress. Try again later.",
                    facts.resources.first().map_or("the key", String::as_str)
                ))
                .into(),
            );
        }
        if attempt >= CONFLICT_RETRIES {
            return Some(
                KmsError::Throttling(
                    "The key was changed by concurrent requests while this request ran. \
                     Retry the request."
                        .into(),
                )
                .into(),
            );
        }
        None
    }

    fn key_uses(&self, done: Completed<'_, Operation>) -> Vec<KeyUse> {
        if !done.succeeded || !crate::usage::is_tracked(*done.call) {
            return Vec::new();
        }
        done.facts
            .resources
            .iter()
            .map(|arn| KeyUse {
                key_arn: arn.clone(),
                operation: done.call.name().to_string(),
                used_at: done.event_time,
                event_id: done.event_id.to_string(),
                request_id: done.request_id.to_string(),
            })
            .collect()
    }

    fn render(&self, result: Result<String, &AwsError>, request_id: &str) -> Response {
        json_response(result, request_id)
    }
}

/// The body to validate against the model: with `--xks-allow-http`, a plain-HTTP proxy endpoint
/// (which the model's `https://host` pattern refuses) is checked as if it were HTTPS; the handler
/// checks its own form.
fn plain_http_proxy_as_https<'b>(
    state: &AppState,
    op: Operation,
    body: &'b Value,
) -> std::borrow::Cow<'b, Value> {
    let takes_endpoint = matches!(
        op,
        Operation::CreateCustomKeyStore | Operation::UpdateCustomKeyStore
    );
    // Plain HTTP, or HTTPS with an explicit port: both only for tests.
    let plain = body
        .get("XksProxyUriEndpoint")
        .and_then(Value::as_str)
        .is_some_and(|e| {
            e.starts_with("http://") || e.strip_prefix("https://").is_some_and(|r| r.contains(':'))
        });
    if !(state.xks_allow_http && takes_endpoint && plain) {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut checked = body.clone();
    if let Some(obj) = checked.as_object_mut() {
        obj.insert(
            "XksProxyUriEndpoint".into(),
            Value::String("https://xks-proxy.test".into()),
        );
    }
    std::borrow::Cow::Owned(checked)
}

/// Whether another writer has committed any of these (key id, material version) pairs: the
/// material a call meant to add was made by a concurrent rotation first.
fn versions_taken(state: &AppState, attempted: &[(String, i32)]) -> bool {
    let Ok(model) = state.read_model() else {
        return false;
    };
    attempted.iter().any(|(key_id, version)| {
        model
            .material_holder(key_id)
            .and_then(|k| k.current_material())
            .is_some_and(|m| m.version >= *version)
    })
}
