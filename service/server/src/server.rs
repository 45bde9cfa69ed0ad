//! The HTTP server (actix-web): the API listener's one route reads the body (bounded) and hands the
//! request, as a framework-free `edge::Request`, to the pipeline of its protocol (KMS, CloudTrail,
//! STS or the policy simulator: `edge`), then writes the `edge::Response`; `/console/` serves the
//! web console's embedded files (`console`); the admin listener serves metrics, health,
//! readiness and policy simulation. Only this module and `cli` know the HTTP framework.

use std::net::SocketAddr;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use actix_web::http::StatusCode;

use trent_service::edge::{Request, Response};
use trent_service::protocol::KmsError;
use trent_service::state::AppState;

/// Largest request body accepted (the largest KMS input, a 128 KiB policy, fits with room).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How often a server reads events that other processes sharing its database wrote.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Build the actix-web application for `state`.
pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .route("/", web::post().to(kms_endpoint))
            .route("/health", web::get().to(health))
            .configure(crate::console::configure);
        if state.test_clock.is_some() {
            cfg.route(
                "/_trent/test/clock/advance",
                web::post().to(test_advance_clock),
            )
            .route(
                "/_trent/test/scheduler/tick",
                web::post().to(test_scheduler_tick),
            )
            .route(
                "/_trent/test/warm-up/release",
                web::post().to(test_release_warm_up),
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
            HttpResponse::Ok().json(serde_json::json!({ "now": trent_service::audit::record::cloudtrail_time(state.clock.now()) }))
        }
        None => HttpResponse::NotFound().finish(),
    }
}

/// Test endpoint (only with `--test-clock`): run one scheduler tick now and report what it did.
async fn test_scheduler_tick(state: web::Data<AppState>) -> HttpResponse {
    match trent_service::scheduler::tick(&state).await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(e) => {
            HttpResponse::InternalServerError().json(serde_json::json!({ "error": e.to_string() }))
        }
    }
}

/// Test endpoint (only with `--test-clock`): let a warm-up held by `--test-hold-warm-up` go on,
/// and answer once the full read model is in place.
async fn test_release_warm_up(state: web::Data<AppState>) -> HttpResponse {
    state.warm_up.release();
    match state.warm_up.wait().await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
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
    // The gauges count every key: they wait for the full model.
    if state.warm_up.wait().await.is_err() {
        return HttpResponse::ServiceUnavailable().finish();
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
    input: web::Json<trent_service::simulate::SimulationInput>,
) -> HttpResponse {
    if !admin_authorized(&req) {
        return admin_unauthorized();
    }
    if state.warm_up.wait().await.is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let model = match state.read_model() {
        Ok(m) => m,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    match trent_service::simulate::simulate(&model, &state.identities, &input) {
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
    let error =
        KmsError::UnknownOperation("Requests are POSTed to / with an X-Amz-Target header.".into());
    http_response(trent_service::edge::kms::json_response(
        Err(&error.into()),
        &uuid::Uuid::new_v4().to_string(),
    ))
}

/// The actix-web response of a pipeline's answer.
fn http_response(mut answer: Response) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = WipedBody(std::mem::take(&mut answer.body).into_bytes());
    let mut resp = HttpResponse::build(status)
        .content_type(answer.content_type)
        .body(actix_web::web::Bytes::from_owner(body));
    insert_request_id(&mut resp, &answer.request_id);
    resp
}

/// A response body handed to actix-web, overwritten when actix-web drops the last reference to it
/// (it may hold a plaintext, a data key or session credentials). Copies actix-web makes into its
/// own write buffer are reused for later responses, not wiped.
struct WipedBody(Vec<u8>);

impl AsRef<[u8]> for WipedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBody {
    fn drop(&mut self) {
        trent_service::crypto::secret::wipe_bytes(&mut self.0);
    }
}

/// The pipeline's view of an actix-web request (the body is added once read).
fn edge_request(req: &HttpRequest) -> Request {
    Request {
        method: req.method().as_str().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
        peer_ip: req.peer_addr().map(|a| a.ip()),
    }
}

fn insert_request_id(resp: &mut HttpResponse, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
}

/// The API route: read the body (bounded), hand the request to the pipeline of its protocol, and
/// write the answer.
async fn kms_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let mut request = edge_request(&req);
    let declared = crate::body::declared_length(&req);
    let handled = match crate::body::read_body(declared, MAX_BODY_BYTES, payload).await {
        Ok(body) => {
            request.body = body;
            trent_service::listener::handle(&state, &request).await
        }
        Err(crate::body::BodyError::Unreadable(e)) => {
            let err = KmsError::Serialization(format!("The request body could not be read: {e}"));
            trent_service::listener::refuse_unread(&state, &request, err.into()).await
        }
        Err(crate::body::BodyError::TooLarge) => {
            let err = KmsError::RequestEntityTooLarge(format!(
                "The request body is larger than {MAX_BODY_BYTES} bytes."
            ));
            trent_service::listener::refuse_unread(&state, &request, err.into()).await
        }
    };
    observe(&state, &handled.operation, &handled.outcome, started);
    http_response(handled.response)
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

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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

/// Load the full read model behind the warming one while the listeners serve. If it does not
/// load (an error, or a panic), every call waiting for it is refused, both listeners stop, and
/// `serve` fails, as start-up failed when it loaded the model before listening.
fn spawn_warm_up(
    state: web::Data<AppState>,
    api: actix_web::dev::ServerHandle,
    admin: actix_web::dev::ServerHandle,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if state.warm_up.is_complete() {
            return;
        }
        let loading = state.clone();
        let done = tokio::spawn(async move {
            trent_service::warm_up::complete(
                &loading.store,
                &loading.root_key,
                &loading.model,
                &loading.warm_up,
                &loading.snapshots,
            )
            .await
        })
        .await;
        let why = match done {
            Ok(Ok(done)) => {
                tracing::info!(
                    keys = done.keys,
                    snapshot = done.snapshot,
                    events = done.events_applied,
                    seconds = done.seconds,
                    "read model loaded"
                );
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the loading task failed: {e}"),
        };
        tracing::error!(error = %why, "the read model does not load: stopping");
        state.warm_up.fail();
        api.stop(true).await;
        admin.stop(true).await;
    })
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
    let scheduler = trent_service::scheduler::spawn(
        state.clone().into_inner(),
        scheduler_interval,
        stopped.clone(),
    );
    let follower = trent_service::scheduler::spawn_follower(
        state.clone().into_inner(),
        FOLLOW_INTERVAL,
        stopped,
    );
    // The admin listener is bound first, so that once the API listener accepts connections
    // the health, readiness and metrics endpoints do too (orchestrators and tests rely on it).
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
    tracing::info!(%listen, %admin_listen, https = state.secure_transport, "trent is serving");
    let warm_up = spawn_warm_up(state.clone(), server.handle(), admin.handle());
    let served = tokio::try_join!(server, admin).map(|_| ());
    // Stopped before the full model was in place (a shutdown signal): nothing more to load.
    warm_up.abort();
    let _ = warm_up.await;
    let served = if state.warm_up.has_failed() {
        served.and(Err(std::io::Error::other(
            "the read model does not load (see the log)",
        )))
    } else {
        served
    };
    let _ = stop.send(true);
    if scheduler.await.is_err() || follower.await.is_err() {
        tracing::error!("a background task panicked");
    }
    served
}
