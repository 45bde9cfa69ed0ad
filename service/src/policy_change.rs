//! "What changes" for a candidate key policy, over SigV4 on the API listener: Trent's own JSON
//! operation `SimulateKeyPolicyChange` (`X-Amz-Target: TrentPolicySimulator_20261201.
//! SimulateKeyPolicyChange`, signed for service `kms`), which the console calls before it saves a
//! key policy. For every principal the identity file defines and every action a key policy
//! governs, it runs the simulator (`crate::simulate`, the evaluation live calls use) under the
//! key's current policy and under the candidate, and answers the pairs whose decision differs,
//! with whether the caller would keep `kms:PutKeyPolicy` (the lockout check PutKeyPolicy makes).
//!
//! The answer tells who may do what on the key, so the caller must be allowed both
//! `kms:GetKeyPolicy` and `kms:PutKeyPolicy` on it; like every call it is audited (event source
//! `kms.amazonaws.com`, read-only) and goes through the listener's one pipeline. It changes nothing.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::sigv4::SigV4Error;
use crate::edge::caller::Caller;
use crate::edge::pipeline::{Executed, Protocol, RecordFacts, Refusal, Routed, Run};
use crate::edge::{Request, Response};
use crate::handlers::{authorize_as, resolve_key, CallContext};
use crate::protocol::{AwsError, KmsError, Operation};
use crate::quota::QuotaClass;
use crate::simulate::{simulate_with, SimulationInput};
use crate::state::AppState;

/// The `X-Amz-Target` prefix of the simulator's JSON API.
pub const TARGET_PREFIX: &str = "TrentPolicySimulator_20261201.";

/// The one operation.
pub const OPERATION: &str = "SimulateKeyPolicyChange";

/// The actions every key's policy governs, whatever its usage.
const MANAGEMENT_ACTIONS: &[&str] = &[
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:UpdateKeyDescription",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

/// The cryptographic actions of a key usage.
fn usage_actions(key_usage: &str) -> &'static [&'static str] {
    match key_usage {
        "ENCRYPT_DECRYPT" => &[
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
        ],
        "SIGN_VERIFY" => &["kms:Sign", "kms:Verify", "kms:GetPublicKey"],
        "GENERATE_VERIFY_MAC" => &["kms:GenerateMac", "kms:VerifyMac"],
        "KEY_AGREEMENT" => &["kms:DeriveSharedSecret", "kms:GetPublicKey"],
        "KEY_ENCAPSULATION" => &["kms:Decapsulate", "kms:GetPublicKey"],
        _ => &[],
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ChangeRequest {
    key_id: String,
    policy: String,
}

/// The simulator's protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySimulator;

#[async_trait(?Send)]
impl Protocol for PolicySimulator {
    type Call = String;
    type Input = Value;

    fn service(&self) -> &'static str {
        "kms"
    }

    fn event_source(&self) -> &'static str {
        "kms.amazonaws.com"
    }

    fn route(&self, req: &Request) -> Routed<String> {
        let target = req.header("x-amz-target").unwrap_or_default();
        let operation = target.trim_start_matches(TARGET_PREFIX).to_string();
        let call = if operation == OPERATION {
            Ok(operation.clone())
        } else {
            Err(KmsError::UnknownOperation(format!(
                "The policy simulator has no operation '{operation}'."
            ))
            .into())
        };
        Routed {
            event_name: operation,
            call,
        }
    }

    fn metric_label(&self, _event_name: &str, call: Option<&String>) -> String {
        call.map_or("Unknown", |_| OPERATION).to_string()
    }

    fn read_only(&self, _call: Option<&String>) -> bool {
        true
    }

    fn quota_class(&self, _call: &String) -> QuotaClass {
        QuotaClass::of(Operation::GetKeyPolicy)
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
        _state: &AppState,
        req: &Request,
        _caller: &Caller,
        _call: &String,
        facts: &mut RecordFacts,
    ) -> Result<Value, AwsError> {
        let parsed: Value = serde_json::from_slice(&req.body).map_err(|e| {
            KmsError::Serialization(format!("The request body is not valid JSON: {e}"))
        })?;
        // The candidate policy is the caller's draft: the record keeps which key, not the text.
        facts.request_parameters = json!({ "keyId": parsed.get("KeyId") });
        Ok(parsed)
    }

    async fn execute(&self, run: Run<'_, String, Value>) -> Result<Executed, Refusal> {
        // The simulation reads the key's aliases and grants as the full model holds them.
        if let Err(e) = run.state.warm_up.wait().await {
            return Err(Refusal {
                retry_after_catch_up: false,
                error: e.into(),
            });
        }
        let region = run.caller.signature.region.clone();
        let ctx = CallContext {
            op: Operation::GetKeyPolicy,
            principal: run.caller.principal.clone(),
            origin: crate::edge::caller::origin_of(run.req, run.state, &region),
            region,
            resources: Default::default(),
            metrics: run.state.metrics.clone(),
            request_alias: Default::default(),
            condition_keys: Default::default(),
            request_id: run.request_id.to_string(),
            external_key_store: Default::default(),
        };
        let result = changes(run.state, &ctx, run.input);
        if let Ok(r) = ctx.resources.lock() {
            run.facts.resources.extend(r.iter().cloned());
        }
        match result {
            Ok(body) => Ok(Executed {
                body: body.to_string(),
                ..Executed::default()
            }),
            Err(e) => Err(Refusal {
                retry_after_catch_up: matches!(e, KmsError::NotFound(_)),
                error: e.into(),
            }),
        }
    }

    fn render(&self, result: Result<String, &AwsError>, request_id: &str) -> Response {
        crate::edge::kms::json_response(result, request_id)
    }
}

/// Authorise the caller, then compare every known principal's decisions under both policies.
fn changes(state: &AppState, ctx: &CallContext, input: &Value) -> Result<Value, KmsError> {
    let request: ChangeRequest = serde_json::from_value(input.clone())
        .map_err(|e| KmsError::Validation(format!("Invalid request: {e}")))?;
    let key = resolve_key(state, ctx, &request.key_id)?;
    authorize_as(state, ctx, &key, "kms:GetKeyPolicy", None, None)?;
    authorize_as(state, ctx, &key, "kms:PutKeyPolicy", None, None)?;
    let candidate = crate::authorize::compile_key_policy(&request.policy)?;
    let model = state.read_model()?;
    let actions: Vec<&str> = usage_actions(&key.key_usage)
        .iter()
        .chain(MANAGEMENT_ACTIONS)
        .copied()
        .collect();
    let principals = state.identities.known_principals();
    let mut changes = Vec::new();
    for principal in &principals {
        for action in &actions {
            let question = SimulationInput {
                principal: principal.clone(),
                action: (*action).to_string(),
                key: Some(key.arn()),
                role: None,
                trust_policy: None,
                region: Some(key.region.clone()),
                encryption_context: None,
                encryption_algorithm: None,
                source_ip: ctx.origin.source_ip,
                secure_transport: ctx.origin.secure_transport,
                context: Default::default(),
                key_policy: None,
                identity_policies: None,
            };
            let simulated = |policy| {
                simulate_with(&model, &state.identities, &question, policy)
                    .map_err(|e| KmsError::KmsInternal(format!("The simulation failed: {e}")))
            };
            let before = simulated(None)?;
            let after = simulated(Some(&candidate))?;
            if before.decision != after.decision {
                changes.push(json!({
                    "Principal": principal,
                    "Action": action,
                    "Before": before.decision,
                    "After": after.decision,
                    "DecidingStatements": after.matched_statements.iter()
                        .map(|s| s.sid.clone().unwrap_or_else(|| format!("#{}", s.index)))
                        .collect::<Vec<_>>(),
                }));
            }
        }
    }
    let keeps = crate::handlers::keys::may_put_key_policy(ctx, &key, &candidate);
    Ok(json!({
        "KeyArn": key.arn(),
        "Principals": principals,
        "Actions": actions,
        "Changes": changes,
        "CallerKeepsPutKeyPolicy": keeps,
    }))
}
