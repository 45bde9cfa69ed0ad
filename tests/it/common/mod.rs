//! The black-box harness: a real `trent` process on a free port, against either store, and the
//! clients that drive it (aws-sdk-kms, raw SigV4-signed HTTP signed by AWS's own signer crate).
#![allow(dead_code)]

pub mod awscli;
pub mod browser;
pub mod db;
pub mod pg;
pub mod sts;
pub mod venv;
pub mod xks;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};

/// Define each listed async test function twice, in modules `sqlite` and `postgres`, each calling
/// `$name(StoreKind::...)` (the test file must have the function and `StoreKind` in scope).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::StoreKind::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::StoreKind::Postgres).await })*
        }
    };
}

/// Create a symmetric key with the defaults; its id.
pub async fn new_key(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .send()
        .await
        .expect("CreateKey")
        .key_metadata()
        .expect("key metadata")
        .key_id()
        .to_string()
}

/// An HTTP client for the tests. reqwest's TLS (rustls without a bundled provider, which
/// trent-service enables for XKS proxies) needs a process-wide crypto provider: aws-lc-rs,
/// installed once here.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// Install aws-lc-rs as rustls's process-wide provider (once; later calls change nothing).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The AWS error code of a failed SDK call (`<no service error>` when it failed before a response).
pub fn code<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("<no service error>")
        .to_string()
}

/// The AWS error code and message of a failed SDK call (panics when it failed before a response).
pub fn code_and_message<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    let e = err.as_service_error().expect("a service error");
    (
        e.code().unwrap_or_default().to_string(),
        e.message().unwrap_or_default().to_string(),
    )
}

/// The development identity's access key.
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The development identity's secret.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The development account.
pub const ACCOUNT: &str = "111122223333";
/// The region the tests use unless they say otherwise.
pub const REGION: &str = "us-east-1";

/// Which backend a server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite store in the data directory.
    Sqlite,
    /// A fresh database on the harness's PostgreSQL server.
    Postgres,
}

/// A running `trent serve`, killed when dropped.
pub struct TestServer {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its data directory (SQLite store, root key).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The PostgreSQL URL when it uses PostgreSQL.
    pub database_url: Option<String>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

/// A free loopback port.
/// Run a tool the harness needs (a package install, a build); panics with its output when it
/// cannot run or fails. Returns its standard output.
pub fn run_tool(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The path of the `trent` binary Cargo built for these tests, or `TRENT_BIN` when set (the
/// benchmarks use it to compare two builds in one run of the load generator).
pub fn trent_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("TRENT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_trent").to_string())
    })
}

impl TestServer {
    /// Start a server on `store` (a fresh data directory, and a fresh database for PostgreSQL).
    pub fn start(store: StoreKind) -> Self {
        Self::start_with(store, &[])
    }

    /// Start a server with extra `serve` arguments.
    pub fn start_with(store: StoreKind, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let database_url = match store {
            StoreKind::Sqlite => None,
            StoreKind::Postgres => Some(pg::require_database_url()),
        };
        let mut server = TestServer {
            child: None,
            port: free_port(),
            data_dir: tmp.path().join("data"),
            _tmp: Some(tmp),
            database_url,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        };
        // A port free when picked may be taken before trent binds it (by another test's server
        // or a client's ephemeral port): the first start tries fresh ports a few times.
        for _ in 0..3 {
            if server.try_spawn().is_ok() {
                return server;
            }
            server.port = free_port();
        }
        server.spawn();
        server
    }

    /// The store flags this server uses, for `trent` subcommands.
    pub fn store_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
        ];
        if let Some(url) = &self.database_url {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    fn spawn(&mut self) {
        if let Err(status) = self.try_spawn() {
            panic!("trent exited before it was ready: {status}");
        }
    }

    /// Start the process and wait until it listens; Err(exit status) if it exits first.
    fn try_spawn(&mut self) -> Result<(), std::process::ExitStatus> {
        let mut cmd = Command::new(trent_bin());
        cmd.arg("serve");
        if !self.extra_args.iter().any(|a| a == "--admin-listen") {
            cmd.arg("--admin-listen")
                .arg(format!("127.0.0.1:{}", free_port()));
        }
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(self.store_args())
            .args(&self.extra_args)
            .env_remove("TRENT_ROOT_KEY")
            .env_remove("TRENT_ADMIN_LISTEN")
            .env_remove("TRENT_DATABASE_URL")
            .env("TRENT_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("trent starts");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        // Generous: the start-up benchmark starts servers on stores of a million records.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(status);
                }
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "trent did not listen within 120 s"
            );
            // Fine enough for the start-up benchmark to time a start of a few milliseconds.
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An aws-sdk-kms client with the development credentials in `REGION`.
    pub fn client(&self) -> aws_sdk_kms::Client {
        self.client_as(ACCESS_KEY, SECRET_KEY, REGION)
    }

    /// As `client`, without the SDK's retries: each call's own answer is what a test judges.
    pub fn client_without_retries(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(
            self.client()
                .config()
                .to_builder()
                .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
                .build(),
        )
    }

    /// An aws-sdk-kms client with the given credentials and region.
    pub fn client_as(&self, access_key: &str, secret: &str, region: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// The server process's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kill the server with SIGKILL (no graceful shutdown).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop with SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().expect("trent exits")
    }

    /// Start a server with the movable test clock and the /_trent/test/ endpoints.
    pub fn start_with_test_clock(store: StoreKind) -> Self {
        Self::start_with(store, &["--test-clock", "--scheduler-interval", "3600"])
    }

    /// A second server process on the same store (same data directory or database and root key).
    pub fn another_on_same_store(&self) -> Self {
        let extra: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        self.another_on_same_store_with(&extra)
    }

    /// A second server process on the same store, started with other extra arguments.
    pub fn another_on_same_store_with(&self, extra_args: &[&str]) -> Self {
        let mut other = TestServer {
            child: None,
            port: free_port(),
            data_dir: self.data_dir.clone(),
            _tmp: None,
            database_url: self.database_url.clone(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            env: self.env.clone(),
        };
        other.spawn();
        other
    }

    /// Set an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Start again (after `kill9`, or after the process died by itself).
    pub fn start_again(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn();
    }

    /// Wait for the process to exit by itself (for crash hooks); returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").wait().expect("wait")
    }

    /// Move the server's domain clock forward (test clock only).
    pub async fn advance_clock(&self, seconds: i64) {
        let url = format!(
            "{}/_trent/test/clock/advance?seconds={seconds}",
            self.endpoint()
        );
        let r = http().post(url).send().await.expect("advance");
        assert!(
            r.status().is_success(),
            "advancing the clock failed: {}",
            r.status()
        );
    }

    /// Run one scheduler pass now; returns its report ({deleted, shredded, rotated}).
    pub async fn scheduler_tick(&self) -> serde_json::Value {
        let url = format!("{}/_trent/test/scheduler/tick", self.endpoint());
        let r = http().post(url).send().await.expect("tick");
        assert!(
            r.status().is_success(),
            "scheduler tick failed: {}",
            r.status()
        );
        r.json().await.expect("tick report")
    }

    /// Start the server again on the same store and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Run a `trent` subcommand against this server's store; returns (success, stdout).
    pub fn trent(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(trent_bin())
            .args(args)
            .args(self.store_args())
            .env("TRENT_LOG", "warn")
            .output()
            .expect("trent runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// What a `trent` process printed before it exited by itself (or was killed at a deadline).
pub struct Exited {
    /// Its exit status; None when it was still running at the deadline (and was killed).
    pub status: Option<std::process::ExitStatus>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Run `trent ARGS` with `env` until it exits, at most 20 s (a command expected to refuse).
pub fn run_trent_until_exit(args: &[String], env: &[(&str, &str)]) -> Exited {
    let mut child = Command::new(trent_bin())
        .args(args)
        .env_remove("TRENT_ROOT_KEY")
        .env("TRENT_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trent starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    Exited { status, stderr }
}

impl TestServer {
    /// `trent serve` on this server's store with other flags (fresh ports), run until it exits.
    pub fn serve_until_exit(&self, store_args: &[String], env: &[(&str, &str)]) -> Exited {
        let mut args = vec![
            "serve".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--admin-listen".into(),
            format!("127.0.0.1:{}", free_port()),
        ];
        args.extend(store_args.iter().cloned());
        run_trent_until_exit(&args, env)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// x-amzn-RequestId header.
    pub request_id: Option<String>,
    /// Body parsed as JSON (Null when empty).
    pub body: serde_json::Value,
}

impl RawResponse {
    /// The `__type` of an error body.
    pub fn error_type(&self) -> &str {
        self.body["__type"].as_str().unwrap_or("")
    }
}

/// Who signs a raw request: access key id, secret, and the session token of STS credentials.
pub type Signer<'a> = (&'a str, &'a str, Option<&'a str>);

/// POST `body` to `endpoint`/ with `headers` (the host is added here), signed for `service` with
/// AWS's own SigV4 signer (aws-sigv4) when `signer` is given, as if at `signing_time`.
pub async fn signed_post(
    endpoint: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
    signer: Option<Signer<'_>>,
    region: &str,
    service: &str,
    signing_time: SystemTime,
) -> reqwest::Response {
    let request = SignedPost {
        endpoint,
        body,
        signer,
        region,
        service,
        signing_time,
    };
    signed_post_with_unsigned(request, headers, Vec::new()).await
}

/// A POST for `signed_post_with_unsigned`: where, what, and who signs it for which scope.
pub struct SignedPost<'a> {
    /// The endpoint URL.
    pub endpoint: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// Who signs (None: unsigned).
    pub signer: Option<Signer<'a>>,
    /// The signing region.
    pub region: &'a str,
    /// The signing service.
    pub service: &'a str,
    /// The signing time.
    pub signing_time: SystemTime,
}

/// As `signed_post`, then add `unsigned` headers that the signature does not cover.
pub async fn signed_post_with_unsigned(
    post: SignedPost<'_>,
    mut headers: Vec<(String, String)>,
    unsigned: Vec<(String, String)>,
) -> reqwest::Response {
    let SignedPost {
        endpoint,
        body,
        signer,
        region,
        service,
        signing_time,
    } = post;
    let url = format!("{endpoint}/");
    let host = endpoint.trim_start_matches("http://").to_string();
    headers.insert(0, ("host".to_string(), host));
    if let Some(signer) = signer {
        let signature = sign_headers(&url, &headers, body, signer, region, service, signing_time);
        headers.extend(signature);
    }
    headers.extend(unsigned);
    let mut req = http().post(&url).body(body.to_vec());
    for (k, v) in &headers {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    req.send().await.expect("request sent")
}

/// The headers AWS's own SigV4 signer (aws-sigv4) adds to a POST of `body` to `url` with
/// `headers` (which must include `host`), for `service` in `region` as if at `signing_time`.
pub fn sign_headers(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    (ak, sk, token): Signer<'_>,
    region: &str,
    service: &str,
    signing_time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity =
        aws_credential_types::Credentials::new(ak, sk, token.map(str::to_string), None, "test")
            .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(signing_time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Send a POST / with the given target and body, signed with AWS's own SigV4 signer (aws-sigv4)
/// unless `credentials` is None.
pub async fn raw_call(
    endpoint: &str,
    target: &str,
    body: &[u8],
    credentials: Option<(&str, &str)>,
    region: &str,
) -> RawResponse {
    raw_call_at(
        endpoint,
        target,
        body,
        credentials,
        region,
        SystemTime::now(),
    )
    .await
}

/// As `raw_call`, signing as if the time were `signing_time`.
pub async fn raw_call_at(
    endpoint: &str,
    target: &str,
    body: &[u8],
    credentials: Option<(&str, &str)>,
    region: &str,
    signing_time: SystemTime,
) -> RawResponse {
    let headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    let signer = credentials.map(|(ak, sk)| (ak, sk, None));
    let resp = signed_post(endpoint, headers, body, signer, region, "kms", signing_time).await;
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    };
    RawResponse {
        status,
        request_id,
        body,
    }
}

/// Read every audit record of a SQLite data directory, in chain order (raw SQL, independent of
/// the server's code).
pub fn sqlite_audit_records(data_dir: &Path) -> Vec<serde_json::Value> {
    let conn = rusqlite::Connection::open(data_dir.join("trent.db")).expect("open db");
    let mut stmt = conn
        .prepare("SELECT record FROM audit_records ORDER BY sequence")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| serde_json::from_str(&r.expect("row")).expect("record is JSON"))
        .collect();
    rows
}
