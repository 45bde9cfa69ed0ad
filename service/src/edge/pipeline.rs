//! The one request pipeline of the listener, shared by the three protocols (KMS, CloudTrail, STS):
//! request id, routing, authentication (once per request), quota, decoding, execution (retried on
//! a lost optimistic-concurrency race or after catching up with other replicas, never
//! re-authenticated), the commit of the call's changes together with its one audit record, and the
//! response. A `Protocol` supplies what differs: how a request names its operation and is decoded,
//! what it does, and how answers and errors are written.
//!
//! Unauthenticated refusals take a bounded lane: at most a few of their records are in the
//! writer's queue at a time (`Quotas::unauthenticated_lane`), so a flood of unsigned or badly
//! signed requests waits for its own turn instead of taking the writer from signed callers.
//! Every call still has its record, durable before its answer leaves.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::{Arc, LazyLock};

use super::request::{Request, Response};
use crate::audit::record::CallRecord;
use crate::auth::sigv4::SigV4Error;
use crate::edge::caller::Caller;
use crate::protocol::AwsError;
use crate::quota::QuotaClass;
use crate::state::AppState;
use crate::store::{CommitUnit, KeyUse, StoreError};

/// What the record of a call says about its request, filled by the protocol as it learns it.
#[derive(Debug, Default)]
pub struct RecordFacts {
    /// `requestParameters` (stripped of every secret), or null.
    pub request_parameters: Value,
    /// The ARNs of the resources the call touched (`resources`).
    pub resources: Vec<String>,
    /// `additionalEventData` (an external key store the call used), or null.
    pub additional_event_data: Value,
}

/// What one successful execution produced. Its body may hold a plaintext (Decrypt,
/// GenerateDataKey): `Debug` shows only its length.
#[derive(Default)]
pub struct Executed {
    /// The response body, rendered by the protocol.
    pub body: String,
    /// Events and materials to commit with the record (empty for calls that change nothing).
    pub unit: CommitUnit,
    /// `responseElements`, or null.
    pub response_elements: Value,
}

impl std::fmt::Debug for Executed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed")
            .field("body_len", &self.body.len())
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

/// Why one execution failed.
#[derive(Debug)]
pub struct Refusal {
    /// The error the client sees.
    pub error: AwsError,
    /// The call named something this process may not have seen yet (a key another replica just
    /// created): catch up with the store once and run the call again.
    pub retry_after_catch_up: bool,
}

impl From<AwsError> for Refusal {
    fn from(error: AwsError) -> Self {
        Self {
            error,
            retry_after_catch_up: false,
        }
    }
}

/// How a request named its operation.
#[derive(Debug)]
pub struct Routed<C> {
    /// The record's `eventName` and the metrics' operation label (as sent, when unknown).
    pub event_name: String,
    /// The call, or the error that refuses it before authentication.
    pub call: Result<C, AwsError>,
}

/// How a finished request went, for the request metrics.
#[derive(Debug)]
pub struct Handled {
    /// The operation label (`Unknown` when the request named none).
    pub operation: String,
    /// `success` or the error code.
    pub outcome: String,
    /// The answer.
    pub response: Response,
}

/// One protocol on the listener.
#[async_trait(?Send)]
pub trait Protocol {
    /// What the protocol knows of a call before authentication.
    type Call;
    /// The decoded request of an authenticated call.
    type Input;

    /// The SigV4 service name requests are signed for.
    fn service(&self) -> &'static str;
    /// The record's `eventSource`.
    fn event_source(&self) -> &'static str;
    /// Name the operation and decode what needs no caller.
    fn route(&self, req: &Request) -> Routed<Self::Call>;
    /// The operation label of the request metrics (a bounded set of names).
    fn metric_label(&self, event_name: &str, _call: Option<&Self::Call>) -> String {
        if event_name.is_empty() {
            "Unknown".to_string()
        } else {
            event_name.to_string()
        }
    }
    /// Whether the call only reads (`readOnly`); `None` when it named no known operation.
    fn read_only(&self, call: Option<&Self::Call>) -> bool;
    /// The quota bucket the call draws on.
    fn quota_class(&self, call: &Self::Call) -> QuotaClass;
    /// A failed authentication as this protocol answers it.
    fn auth_error(&self, e: SigV4Error) -> AwsError;
    /// The answer to a caller over quota.
    fn throttled(&self) -> AwsError;
    /// The answer to a call whose record could not be made durable (fail closed).
    fn not_durable(&self) -> AwsError;
    /// Decode the request of an authenticated caller (once per request).
    fn prepare(
        &self,
        state: &AppState,
        req: &Request,
        caller: &Caller,
        call: &Self::Call,
        facts: &mut RecordFacts,
    ) -> Result<Self::Input, AwsError>;
    /// Run the call once.
    async fn execute(&self, run: Run<'_, Self::Call, Self::Input>) -> Result<Executed, Refusal>;
    /// An execution whose commit lost a version race to another writer, after catching up
    /// (`attempted`: the key id and version of each material it meant to add): `None` runs it
    /// again; an error ends the call with it.
    fn on_conflict(
        &self,
        _state: &AppState,
        _call: &Self::Call,
        _attempted: &[(String, i32)],
        _facts: &RecordFacts,
        _attempt: usize,
    ) -> Option<AwsError> {
        Some(self.not_durable())
    }
    /// The keys a finished call used (GetKeyLastUsage), committed with its record.
    fn key_uses(&self, _done: Completed<'_, Self::Call>) -> Vec<KeyUse> {
        Vec::new()
    }
    /// Write the answer: the success body or the error.
    fn render(&self, result: Result<String, &AwsError>, request_id: &str) -> Response;
}

/// One execution of an authenticated call.
pub struct Run<'a, C, I> {
    /// What requests share.
    pub state: &'a AppState,
    /// The request.
    pub req: &'a Request,
    /// Who is calling.
    pub caller: &'a Caller,
    /// The routed call.
    pub call: &'a C,
    /// The decoded request.
    pub input: &'a I,
    /// The request id.
    pub request_id: &'a str,
    /// When this execution started (the record's `eventTime`).
    pub event_time: DateTime<Utc>,
    /// The record's facts, filled while running.
    pub facts: &'a mut RecordFacts,
}

/// A call that ran and is about to be committed, for `Protocol::key_uses`.
pub struct Completed<'a, C> {
    /// The call.
    pub call: &'a C,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// Its record's facts.
    pub facts: &'a RecordFacts,
    /// The record's `eventTime`.
    pub event_time: DateTime<Utc>,
    /// The record's `eventID`.
    pub event_id: &'a str,
    /// The request id.
    pub request_id: &'a str,
}

/// What the record says about the caller (unknown until authentication succeeds).
struct Who {
    region: String,
    user_identity: Arc<Value>,
    account: Option<String>,
}

/// The `userIdentity` of a caller not known, made once.
static UNKNOWN_IDENTITY: LazyLock<Arc<Value>> =
    LazyLock::new(|| Arc::new(serde_json::json!({"type": "Unknown"})));

impl Who {
    fn unknown(state: &AppState) -> Self {
        Self {
            region: state.regions.default_region(),
            user_identity: UNKNOWN_IDENTITY.clone(),
            account: None,
        }
    }

    fn of(caller: &Caller) -> Self {
        Self {
            region: caller.signature.region.clone(),
            user_identity: caller.user_identity.clone(),
            account: Some(caller.principal.account.clone()),
        }
    }
}

/// How many times a call whose commit lost an optimistic-concurrency race may run again (the
/// protocol decides what to answer after that). A batch commits one change per key, so of N
/// concurrent changes to one key the last runs up to N - 1 more times (about one commit each):
/// the bound is for starvation under endless contention, not for ordinary bursts.
pub const CONFLICT_RETRIES: usize = 64;

/// Handle one request with `protocol`.
pub async fn handle<P: Protocol>(protocol: &P, state: &AppState, req: &Request) -> Handled {
    let request_id = uuid::Uuid::new_v4().to_string();
    let Routed { event_name, call } = protocol.route(req);
    let mut record = Draft::new(
        protocol,
        state,
        req,
        &request_id,
        &event_name,
        call.as_ref().ok(),
    );
    let call = match call {
        Ok(call) => call,
        Err(e) => return record.refuse_unauthenticated(e).await,
    };
    let caller = match crate::edge::caller::authenticate(state, req, protocol.service()) {
        Ok(caller) => caller,
        Err(e) => return record.refuse_unauthenticated(protocol.auth_error(e)).await,
    };
    record.who = Who::of(&caller);
    let mut facts = RecordFacts::default();
    let class = protocol.quota_class(&call);
    if !state
        .quotas
        .admit(&caller.principal.account, &caller.signature.region, class)
    {
        state
            .metrics
            .throttled
            .with_label_values(&[class.as_str()])
            .inc();
        return record.refuse(protocol.throttled(), &facts).await;
    }
    let input = match protocol.prepare(state, req, &caller, &call, &mut facts) {
        Ok(input) => input,
        Err(e) => return record.refuse(e, &facts).await,
    };
    run_and_commit(&record, &caller, &call, &input, &mut facts).await
}

/// Execute an authenticated call and commit it with its record, running it again after a lost
/// version race (as the protocol decides) or after catching up once with other replicas.
async fn run_and_commit<P: Protocol>(
    record: &Draft<'_, P>,
    caller: &Caller,
    call: &P::Call,
    input: &P::Input,
    facts: &mut RecordFacts,
) -> Handled {
    let (protocol, state, req, request_id) =
        (record.protocol, record.state, record.req, record.request_id);
    let mut attempt = 0;
    let mut caught_up = false;
    loop {
        let event_time = state.clock.now();
        facts.resources.clear();
        let run = Run {
            state,
            req,
            caller,
            call,
            input,
            request_id,
            event_time,
            facts,
        };
        let (result, unit, response_elements) = match protocol.execute(run).await {
            // The body may hold a plaintext: wiped on every path that does not send it.
            Ok(done) => (
                Ok(trent_crypto::secret::WipedText::new(done.body)),
                done.unit,
                done.response_elements,
            ),
            Err(refusal) => {
                if refusal.retry_after_catch_up && !caught_up {
                    caught_up = true;
                    if caught_up_with_news(state).await {
                        continue;
                    }
                }
                (Err(refusal.error), CommitUnit::default(), Value::Null)
            }
        };
        let made = record.build(event_time, facts, response_elements, result.as_ref().err());
        let mut unit = unit;
        unit.key_uses = protocol.key_uses(Completed {
            call,
            succeeded: result.is_ok(),
            facts,
            event_time,
            event_id: &made.event_id,
            request_id,
        });
        match record.commit(made, unit).await {
            Ok(()) => return record.answer(result.map(|mut body| body.take())),
            Err(Failed::Conflict(attempted)) => {
                state
                    .metrics
                    .commit_conflicts
                    .with_label_values(&[&protocol.metric_label(record.event_name, Some(call))])
                    .inc();
                if let Err(e) = crate::scheduler::catch_up(state).await {
                    tracing::warn!(error = %e, "catching up after a conflict failed");
                }
                match protocol.on_conflict(state, call, &attempted, facts, attempt) {
                    None => attempt += 1,
                    Some(refusal) => return record.refuse_at(refusal, facts, event_time).await,
                }
            }
            Err(Failed::NotDurable) => return record.answer(Err(protocol.not_durable())),
        }
    }
}

/// Catch up with events other processes appended; whether anything new arrived.
async fn caught_up_with_news(state: &AppState) -> bool {
    let before = state.read_model().map(|m| m.last_sequence()).ok();
    crate::scheduler::catch_up(state).await.is_ok()
        && state.read_model().map(|m| m.last_sequence()).ok() != before
}

/// Why a commit did not land.
enum Failed {
    /// Another writer changed a stream first; nothing was written. The (key id, version) of the
    /// materials the unit meant to add come back.
    Conflict(Vec<(String, i32)>),
    /// The store failed: the call fails closed.
    NotDurable,
}

/// The audit record of the request being handled, and the answer that waits for it.
struct Draft<'a, P: Protocol> {
    protocol: &'a P,
    state: &'a AppState,
    req: &'a Request,
    request_id: &'a str,
    event_name: &'a str,
    who: Who,
    read_only: bool,
    label: String,
}

impl<'a, P: Protocol> Draft<'a, P> {
    /// The draft of a routed request, its caller not known yet.
    fn new(
        protocol: &'a P,
        state: &'a AppState,
        req: &'a Request,
        request_id: &'a str,
        event_name: &'a str,
        call: Option<&P::Call>,
    ) -> Self {
        Draft {
            protocol,
            state,
            req,
            request_id,
            event_name,
            who: Who::unknown(state),
            read_only: protocol.read_only(call),
            label: protocol.metric_label(event_name, call),
        }
    }

    /// The call's record.
    fn build(
        &self,
        event_time: DateTime<Utc>,
        facts: &RecordFacts,
        response_elements: Value,
        error: Option<&AwsError>,
    ) -> CallRecord {
        CallRecord {
            event_id: crate::audit::record::new_event_id(event_time),
            event_time,
            event_name: self.event_name.to_string(),
            event_source: self.protocol.event_source(),
            read_only: self.read_only,
            region: self.who.region.clone(),
            user_identity: self.who.user_identity.clone(),
            recipient_account: self.who.account.clone(),
            source_ip: self.req.source_ip(),
            user_agent: self.req.user_agent(),
            request_parameters: facts.request_parameters.clone(),
            response_elements: if error.is_none() {
                response_elements
            } else {
                Value::Null
            },
            request_id: self.request_id.to_string(),
            resources: facts.resources.clone(),
            additional_event_data: facts.additional_event_data.clone(),
            error_code: error.map(|e| e.code.to_string()),
            error_message: error.and_then(|e| e.message.clone()),
        }
    }

    /// Commit `record` (with its copies for the other accounts it concerns) and `unit`.
    async fn commit(&self, record: CallRecord, mut unit: CommitUnit) -> Result<(), Failed> {
        let (audit, copies) =
            record.stored(&|account| self.state.identities.account_exists(account));
        unit.audit = Some(audit);
        unit.audit_copies = copies;
        let attempted = unit
            .materials
            .iter()
            .map(|m| (m.key_id.clone(), m.version))
            .collect();
        match self.state.writer.commit(unit).await {
            Ok(_) => Ok(()),
            Err(StoreError::VersionConflict { .. }) => Err(Failed::Conflict(attempted)),
            Err(e) => {
                tracing::error!(error = %e, request_id = %self.request_id, event = %self.event_name, "call not committed; failing closed");
                self.state
                    .metrics
                    .store_errors
                    .with_label_values(&["call"])
                    .inc();
                Err(Failed::NotDurable)
            }
        }
    }

    /// Refuse an authenticated call with `error`, recorded now.
    async fn refuse(&self, error: AwsError, facts: &RecordFacts) -> Handled {
        self.refuse_at(error, facts, self.state.clock.now()).await
    }

    /// Refuse a call with `error`, recorded with `event_time`.
    async fn refuse_at(
        &self,
        error: AwsError,
        facts: &RecordFacts,
        event_time: DateTime<Utc>,
    ) -> Handled {
        let made = self.build(event_time, facts, Value::Null, Some(&error));
        match self.commit(made, CommitUnit::default()).await {
            Ok(()) => self.answer(Err(error)),
            Err(_) => self.answer(Err(self.protocol.not_durable())),
        }
    }

    /// Refuse a call whose caller is not known, through the bounded lane.
    async fn refuse_unauthenticated(&self, error: AwsError) -> Handled {
        let _turn = self.state.quotas.unauthenticated_lane().acquire().await;
        self.refuse(error, &RecordFacts::default()).await
    }

    /// The answer, once its record is durable.
    fn answer(&self, result: Result<String, AwsError>) -> Handled {
        let operation = self.label.clone();
        let outcome = match &result {
            Ok(_) => "success".to_string(),
            Err(e) => e.code.to_string(),
        };
        let response = match result {
            Ok(body) => self.protocol.render(Ok(body), self.request_id),
            Err(e) => self.protocol.render(Err(&e), self.request_id),
        };
        Handled {
            operation,
            outcome,
            response,
        }
    }
}

/// Refuse a request whose body could not be read (too large, or broken off) with `error`: its
/// signature cannot be checked without the body, so the record names no caller, but the call is
/// audited and answered in its protocol's shape like any refused call.
pub async fn refuse_unread<P: Protocol>(
    protocol: &P,
    state: &AppState,
    req: &Request,
    error: AwsError,
) -> Handled {
    let request_id = uuid::Uuid::new_v4().to_string();
    let routed = protocol.route(req);
    let call = routed.call.as_ref().ok();
    Draft::new(protocol, state, req, &request_id, &routed.event_name, call)
        .refuse_unauthenticated(error)
        .await
}
