//! The HTTP edge: one actix-web route for the AWS JSON 1.1 protocol (KMS, and CloudTrail's
//! LookupEvents), which also hands STS's query-protocol calls to `sts`. For each KMS request it
//! decodes the operation, verifies SigV4, validates the body against the model, runs the handler,
//! and commits the call's events together with exactly one audit record before answering.

use std::net::SocketAddr;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

use crate::audit::record::{request_parameters, CallRecord};
use crate::handlers::{self, blob_members, CallContext, Outcome};
use crate::protocol::model::Model;
use crate::protocol::{KmsError, Operation};
use crate::state::AppState;
use crate::store::{NewAuditRecord, StoreError};

/// Largest request body accepted (the largest KMS input, a 128 KiB policy, fits with room).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How many times a command whose append lost an optimistic-concurrency race is retried.
const CONFLICT_RETRIES: usize = 5;

/// How often a server reads events that other processes sharing its database wrote.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The content type of every AWS JSON 1.1 response.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What the edge learned about a call, for its audit record.
struct Call {
    request_id: String,
    event_name: String,
    operation: Option<Operation>,
    region: String,
    user_identity: Value,
    account: Option<String>,
    request_parameters: Value,
}

/// Build the actix-web application for `state`.
pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .route("/", web::post().to(kms_endpoint))
            .route("/health", web::get().to(health));
        if state.test_clock.is_some() {
            cfg.route(
                "/_trent/test/clock/advance",
                web::post().to(test_advance_clock),
            )
            .route(
                "/_trent/test/scheduler/tick",
                web::post().to(test_scheduler_tick),
            );
        }
        cfg.default_service(web::to(not_found));
    }
}

#[derive(serde::Deserialize)]
struct AdvanceQuery {
    seconds: i64,
}

/// Test endpoint (only with `--test-clock`): move the domain clock forward.
async fn test_advance_clock(
    query: web::Query<AdvanceQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match &state.test_clock {
        Some(clock) => {
            clock.advance(chrono::Duration::seconds(query.seconds));
            HttpResponse::Ok().json(serde_json::json!({ "now": crate::audit::record::cloudtrail_time(state.clock.now()) }))
        }
        None => HttpResponse::NotFound().finish(),
    }
}

/// Test endpoint (only with `--test-clock`): run one scheduler tick now and report what it did.
async fn test_scheduler_tick(state: web::Data<AppState>) -> HttpResponse {
    match crate::scheduler::tick(&state).await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(e) => {
            HttpResponse::InternalServerError().json(serde_json::json!({ "error": e.to_string() }))
        }
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Give every API response a request id, also those no handler of ours wrote (actix-web's own
/// refusals), so a client can always quote one.
fn ensure_request_id<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let answered = srv.call(req);
    async move {
        let mut res = answered.await?;
        let name = HeaderName::from_static("x-amzn-requestid");
        if !res.headers().contains_key(&name) {
            if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                res.headers_mut().insert(name, v);
            }
        }
        Ok(res)
    }
}

/// Prometheus text exposition (admin listener; needs the admin token when one is set).
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !admin_authorized(&req) {
        return admin_unauthorized();
    }
    let text = match state.read_model() {
        Ok(model) => state.metrics.render(&model, state.clock.now()),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}

/// Policy simulation (admin listener; needs the admin token when one is set): the JSON body is a
/// `simulate::SimulationInput`.
async fn simulate_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    input: web::Json<crate::simulate::SimulationInput>,
) -> HttpResponse {
    if !admin_authorized(&req) {
        return admin_unauthorized();
    }
    let model = match state.read_model() {
        Ok(m) => m,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    match crate::simulate::simulate(&model, &state.identities, &input) {
        Ok(result) => HttpResponse::Ok().json(result),
        Err(e) => HttpResponse::BadRequest().json(serde_json::json!({ "error": e.to_string() })),
    }
}

/// Ready when the store answers, the audit writer takes units, and the store takes writes: after
/// a batch failed to commit (a full disk, say) the check writes a probe row, and stays unready
/// until that succeeds (admin listener).
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let store_ok = state.store.read_events(i64::MAX, 1).await.is_ok();
    let writer_ok = state.writer.is_running();
    let mut writes_ok = state.writer.last_batch_ok();
    if !writes_ok {
        writes_ok = state.store.probe_write().await.is_ok();
        if writes_ok {
            state.writer.mark_store_writable();
        }
    }
    let body = serde_json::json!({
        "store": store_ok,
        "auditWriter": writer_ok,
        "commits": writes_ok,
    });
    if store_ok && writer_ok && writes_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn not_found() -> HttpResponse {
    error_response(
        &uuid::Uuid::new_v4().to_string(),
        &KmsError::UnknownOperation("Requests are POSTed to / with an X-Amz-Target header.".into()),
    )
}

fn error_response(request_id: &str, err: &KmsError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(err.http_status())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(err.body().to_string());
    insert_request_id(&mut resp, request_id);
    resp
}

fn insert_request_id(resp: &mut HttpResponse, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
}

async fn kms_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let body = match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            let err = KmsError::Serialization(format!("The request body could not be read: {e}"));
            return refuse_unread(&req, &state, err, started).await;
        }
        Err(_) => {
            let err = KmsError::RequestEntityTooLarge(format!(
                "The request body is larger than {MAX_BODY_BYTES} bytes."
            ));
            return refuse_unread(&req, &state, err, started).await;
        }
    };
    if crate::cloudtrail::is_cloudtrail_request(&req) {
        let (operation, outcome, response) = crate::cloudtrail::handle(&req, &body, &state).await;
        observe(&state, &operation, &outcome, started);
        return response;
    }
    if crate::sts::is_sts_request(&req) {
        let (action, outcome, response) = crate::sts::handle(&req, &body, &state).await;
        observe(&state, &action, &outcome, started);
        return response;
    }
    let (operation, outcome, response) = handle_kms_call(&req, &body, &state).await;
    observe(
        &state,
        operation.map(Operation::name).unwrap_or("Unknown"),
        &outcome,
        started,
    );
    response
}

/// Refuse a request whose body could not be read (too large, or broken off): its signature
/// cannot be checked without the body, so the record names no caller, but the call is audited
/// and answered like any refused call, with a request id.
async fn refuse_unread(
    req: &HttpRequest,
    state: &AppState,
    err: KmsError,
    started: std::time::Instant,
) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = header(req, "x-amz-target").unwrap_or_default();
    let operation = Operation::from_target(&target);
    let call = Call {
        request_id: request_id.clone(),
        event_name: target
            .rsplit_once('.')
            .map(|(_, op)| op.to_string())
            .unwrap_or(target.clone()),
        operation,
        region: state.regions.default_region(),
        user_identity: serde_json::json!({"type": "Unknown"}),
        account: None,
        request_parameters: Value::Null,
    };
    let failed = FailedCall {
        call: &call,
        event_time: state.clock.now(),
        resources: Vec::new(),
    };
    let err = if commit_refusal(state, req, failed, &err).await {
        err
    } else {
        not_durable(state)
    };
    observe(
        state,
        operation.map(Operation::name).unwrap_or("Unknown"),
        err.aws_type(),
        started,
    );
    error_response(&request_id, &err)
}

/// Record a finished call in the request metrics.
fn observe(state: &AppState, op: &str, outcome: &str, started: std::time::Instant) {
    state
        .metrics
        .requests
        .with_label_values(&[op, outcome])
        .inc();
    state
        .metrics
        .request_duration
        .with_label_values(&[op])
        .observe(started.elapsed().as_secs_f64());
}

/// One call: returns its operation (when known), its outcome label and the response.
async fn handle_kms_call(
    req: &HttpRequest,
    body: &web::Bytes,
    state: &web::Data<AppState>,
) -> (Option<Operation>, String, HttpResponse) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut attempt = 0;
    let mut caught_up_on_miss = false;
    let mut quota_charged = false;
    loop {
        let event_time = state.clock.now();
        let mut call = Call {
            request_id: request_id.clone(),
            event_name: String::new(),
            operation: None,
            region: state.regions.default_region(),
            user_identity: serde_json::json!({"type": "Unknown"}),
            account: None,
            request_parameters: Value::Null,
        };
        let mut resources = Vec::new();
        let result = process(
            state,
            req,
            body,
            &mut call,
            &mut resources,
            &mut quota_charged,
        )
        .await;
        // A key or alias another process sharing the store has just created is not in this
        // process's read model until it follows (every second): catch up once and run again, so a
        // client sees its own writes whichever replica answers.
        if !caught_up_on_miss && matches!(result, Err(KmsError::NotFound(_))) {
            caught_up_on_miss = true;
            let before = state.read_model().map(|m| m.last_sequence()).ok();
            if crate::scheduler::catch_up(state).await.is_ok()
                && state.read_model().map(|m| m.last_sequence()).ok() != before
            {
                continue;
            }
        }
        let (error, outcome) = match result {
            Ok(outcome) => (None, outcome),
            Err(e) => (Some(e), Outcome::default()),
        };
        let (record, copies) = audit_record(
            state,
            req,
            &call,
            event_time,
            resources.clone(),
            &outcome,
            error.as_ref(),
        );
        let event_id = record.event_id.clone();
        let mut unit = outcome.unit;
        let new_material_versions: Vec<(String, i32)> = unit
            .materials
            .iter()
            .map(|m| (m.key_id.clone(), m.version))
            .collect();
        unit.audit = Some(record);
        unit.audit_copies = copies;
        match state.writer.commit(unit).await {
            Ok(_) => {
                state.key_usage.start_tracking(event_time);
                if let (None, Some(op)) = (&error, call.operation) {
                    if crate::usage::is_tracked(op) {
                        for arn in &resources {
                            state.key_usage.record(
                                arn,
                                crate::usage::LastUse {
                                    operation: op.name().to_string(),
                                    at: event_time,
                                    event_id: event_id.clone(),
                                    request_id: request_id.clone(),
                                },
                            );
                        }
                    }
                }
                return match error {
                    None => {
                        let text = if outcome.body.is_null() {
                            String::new()
                        } else {
                            outcome.body.to_string()
                        };
                        let mut resp = HttpResponse::Ok().content_type(CONTENT_TYPE).body(text);
                        insert_request_id(&mut resp, &request_id);
                        (call.operation, "success".to_string(), resp)
                    }
                    Some(e) => (
                        call.operation,
                        e.aws_type().to_string(),
                        error_response(&request_id, &e),
                    ),
                };
            }
            // Another writer changed the key between our read and our append: nothing of the
            // failed attempt was written (materials included) and nothing entered a cache. Run
            // the command again on the new state, unless it was a rotation that another rotation
            // beat: AWS answers that with ConflictException.
            Err(StoreError::VersionConflict { .. }) => {
                if let Err(e) = crate::scheduler::catch_up(state).await {
                    tracing::warn!(error = %e, "catching up after a conflict failed");
                }
                let rotated_meanwhile = call.operation == Some(Operation::RotateKeyOnDemand)
                    && versions_taken(state, &new_material_versions);
                let refusal = if rotated_meanwhile {
                    KmsError::Conflict(format!(
                        "A rotation of {} is in progress. Try again later.",
                        resources.first().map(String::as_str).unwrap_or("the key")
                    ))
                } else if attempt >= CONFLICT_RETRIES {
                    KmsError::Throttling(
                        "The key was changed by concurrent requests while this request ran. \
                         Retry the request."
                            .into(),
                    )
                } else {
                    attempt += 1;
                    continue;
                };
                let failed = FailedCall {
                    call: &call,
                    event_time,
                    resources,
                };
                if !commit_refusal(state, req, failed, &refusal).await {
                    let err = not_durable(state);
                    return (
                        call.operation,
                        err.aws_type().to_string(),
                        error_response(&request_id, &err),
                    );
                }
                return (
                    call.operation,
                    refusal.aws_type().to_string(),
                    error_response(&request_id, &refusal),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, %request_id, "call not committed; failing closed");
                let err = not_durable(state);
                return (
                    call.operation,
                    err.aws_type().to_string(),
                    error_response(&request_id, &err),
                );
            }
        }
    }
}

/// Whether another writer has committed any of these (key id, material version) pairs: the
/// material a call meant to add was made by a concurrent rotation first.
fn versions_taken(state: &AppState, attempted: &[(String, i32)]) -> bool {
    let Ok(model) = state.read_model() else {
        return false;
    };
    attempted.iter().any(|(key_id, version)| {
        model
            .key(key_id)
            .and_then(|k| k.current_material())
            .is_some_and(|m| m.version >= *version)
    })
}

/// A call that will not run again, with what its audit record needs.
struct FailedCall<'a> {
    call: &'a Call,
    event_time: chrono::DateTime<chrono::Utc>,
    resources: Vec<String>,
}

/// Commit the audit record of a call refused with `err` after its first attempt; false when the
/// record could not be made durable.
async fn commit_refusal(
    state: &AppState,
    req: &HttpRequest,
    failed: FailedCall<'_>,
    err: &KmsError,
) -> bool {
    let (record, audit_copies) = audit_record(
        state,
        req,
        failed.call,
        failed.event_time,
        failed.resources,
        &Outcome::default(),
        Some(err),
    );
    let unit = crate::store::CommitUnit {
        audit: Some(record),
        audit_copies,
        ..Default::default()
    };
    match state.writer.commit(unit).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, request_id = %failed.call.request_id, "audit record of a refused call not written");
            false
        }
    }
}

/// The answer to a call whose commit failed (fail closed), counted as a store error.
fn not_durable(state: &AppState) -> KmsError {
    state
        .metrics
        .store_errors
        .with_label_values(&["call"])
        .inc();
    KmsError::KmsInternal("The request could not be recorded durably.".into())
}

/// The call's audit record, and its copies for the other accounts owning the keys it touched.
fn audit_record(
    state: &AppState,
    req: &HttpRequest,
    call: &Call,
    event_time: chrono::DateTime<chrono::Utc>,
    resources: Vec<String>,
    outcome: &Outcome,
    error: Option<&KmsError>,
) -> (NewAuditRecord, Vec<NewAuditRecord>) {
    let record = CallRecord {
        event_id: uuid::Uuid::new_v4().to_string(),
        event_time,
        event_name: call.event_name.clone(),
        event_source: "kms.amazonaws.com",
        read_only: call.operation.is_some_and(Operation::is_read_only),
        region: call.region.clone(),
        user_identity: call.user_identity.clone(),
        recipient_account: call.account.clone(),
        source_ip: req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
        user_agent: header(req, "user-agent").unwrap_or_default(),
        request_parameters: call.request_parameters.clone(),
        response_elements: match error {
            None => outcome.response_elements.clone().unwrap_or(Value::Null),
            Some(_) => Value::Null,
        },
        request_id: call.request_id.clone(),
        resources,
        error_code: error.map(|e| e.aws_type().to_string()),
        error_message: error.map(KmsError::message),
    };
    record.stored(&|account| state.identities.account_exists(account))
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Everything before the commit: decode, authenticate, validate, run the handler.
async fn process(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    call: &mut Call,
    resources: &mut Vec<String>,
    quota_charged: &mut bool,
) -> Result<Outcome, KmsError> {
    if req.headers().get_all("x-amz-target").count() > 1 {
        return Err(KmsError::UnknownOperation(
            "The request has more than one X-Amz-Target header.".into(),
        ));
    }
    let target = header(req, "x-amz-target").unwrap_or_default();
    call.event_name = target
        .rsplit_once('.')
        .map(|(_, op)| op.to_string())
        .unwrap_or_else(|| target.clone());
    let op = Operation::from_target(&target).ok_or_else(|| {
        KmsError::UnknownOperation(format!("The operation '{target}' is not a KMS operation."))
    })?;
    call.operation = Some(op);

    let crate::caller::Caller {
        signature: verified,
        principal,
    } = crate::caller::authenticate(state, req, body, "kms")?;
    call.region = verified.region.clone();
    call.user_identity = principal.user_identity();
    call.account = Some(principal.account.clone());
    // A call run again (after a conflict or a catch-up) is still one request for the quota.
    let admitted = *quota_charged || state.quotas.admit(&principal.account, &verified.region, op);
    *quota_charged = true;
    if !admitted {
        state
            .metrics
            .throttled
            .with_label_values(&[crate::quota::QuotaClass::of(op).as_str()])
            .inc();
        return Err(KmsError::Throttling("Rate exceeded".into()));
    }

    let json: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            KmsError::Serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    if !json.is_object() {
        return Err(KmsError::Serialization(
            "The request body must be a JSON object.".into(),
        ));
    }
    call.request_parameters = request_parameters(&json, blob_members(op));
    Model::get().validate(op, &json)?;

    let ctx = CallContext {
        op,
        principal,
        origin: crate::caller::origin_of(req, state, &verified.region),
        region: verified.region,
        resources: Default::default(),
        metrics: state.metrics.clone(),
        request_alias: Default::default(),
        condition_keys: std::sync::Mutex::new(crate::condition_keys::from_request(op, &json)),
    };
    let result = handlers::dispatch(state, &ctx, &json).await;
    if let Ok(r) = ctx.resources.lock() {
        resources.extend(r.iter().cloned());
    }
    result
}

/// A bind error that says which address and which listener.
fn cannot_listen(e: std::io::Error, addr: SocketAddr, which: &str) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({which}): {e}"))
}

/// Where and how the server listens.
pub struct Listeners {
    /// The API listener's address.
    pub api: SocketAddr,
    /// TLS for the API listener (HTTPS), if configured.
    pub tls: Option<rustls::ServerConfig>,
    /// The admin listener's address.
    pub admin: SocketAddr,
    /// The bearer token `/metrics` and `/simulate` require, if configured.
    pub admin_token: Option<String>,
}

/// The admin listener's bearer token (None: the listener is loopback-only and open).
#[derive(Clone)]
struct AdminToken(Option<String>);

/// Whether an admin request carries the configured bearer token (compared in constant time).
fn admin_authorized(req: &HttpRequest) -> bool {
    let Some(AdminToken(Some(expected))) = req.app_data::<AdminToken>() else {
        return true;
    };
    let presented = header(req, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
        .unwrap_or_default();
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected.as_bytes())
        .is_ok()
}

/// The answer to an admin request without the token.
fn admin_unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("www-authenticate", "Bearer"))
        .json(serde_json::json!({ "error": "this endpoint needs the admin token (Authorization: Bearer ...)" }))
}

/// Serve until a shutdown signal; in-flight requests finish, the scheduler stops, and then the
/// writer drains (the caller awaits it once the state is dropped).
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    scheduler_interval: std::time::Duration,
) -> std::io::Result<()> {
    let Listeners {
        api: listen,
        tls,
        admin: admin_listen,
        admin_token,
    } = listeners;
    let state = web::Data::new(state);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = crate::scheduler::spawn(state.clone(), scheduler_interval, stopped.clone());
    let follower = crate::scheduler::spawn_follower(state.clone(), FOLLOW_INTERVAL, stopped);
    let configure = configure(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap_fn(ensure_request_id)
            .configure(configure.clone())
    });
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(listen, config),
        None => server.bind(listen),
    }
    .map_err(|e| cannot_listen(e, listen, "the API listener, --listen"))?
    .shutdown_timeout(30)
    .run();
    let admin_state = state.clone();
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(admin_state.clone())
            .app_data(AdminToken(admin_token.clone()))
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(health))
            .route("/readyz", web::get().to(ready))
            .route("/simulate", web::post().to(simulate_endpoint))
    })
    .workers(1)
    .bind(admin_listen)
    .map_err(|e| cannot_listen(e, admin_listen, "the admin listener, --admin-listen"))?
    .shutdown_timeout(5)
    .run();
    tracing::info!(%listen, %admin_listen, https = state.secure_transport, "trent is serving");
    let served = tokio::try_join!(server, admin).map(|_| ());
    let _ = stop.send(true);
    if scheduler.await.is_err() || follower.await.is_err() {
        tracing::error!("a background task panicked");
    }
    served
}
