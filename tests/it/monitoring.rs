//! Monitoring, end to end: the alert rules pass `promtool check rules`; a real Prometheus server on
//! loopback scrapes a running Trent under a small load; every dashboard panel's and every alert's
//! PromQL names only metrics and labels that exist and returns series; and the alert on use of a
//! key pending deletion fires after such a use. Prometheus comes from Debian's `prometheus` package,
//! which the harness installs when it is missing (this needs root, as CI runs).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use common::{free_port, StoreKind, TestServer};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool` and `prometheus`, installing Debian's package if needed (once per test process:
/// two tests running apt-get at once would fight over dpkg's lock). Panics (never skips).
fn prometheus_tools() -> (PathBuf, PathBuf) {
    static TOOLS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    TOOLS.get_or_init(install_prometheus_tools).clone()
}

fn install_prometheus_tools() -> (PathBuf, PathBuf) {
    let find = |name: &str| {
        ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
    };
    if find("promtool").is_none() || find("prometheus").is_none() {
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "prometheus"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get runs (the monitoring test installs Debian's prometheus package)");
        if !status.success() {
            let _ = Command::new("apt-get").arg("update").status();
            let status = Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "prometheus"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .expect("apt-get runs");
            assert!(
                status.success(),
                "installing Debian's prometheus package failed"
            );
        }
    }
    (
        find("promtool").expect("promtool installed"),
        find("prometheus").expect("prometheus installed"),
    )
}

const RULES: &str = "dashboards/prometheus/trent-alerts.yml";

#[test]
fn alert_rules_pass_promtool() {
    let (promtool, _) = prometheus_tools();
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(repo().join(RULES))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(binary: &Path, admin_port: u16) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: trent\n    static_configs:\n      - targets: ['127.0.0.1:{admin_port}']\n",
            repo().join(RULES).display()
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

async fn api(prom: &Prometheus, path: &str, query: &[(&str, &str)]) -> Value {
    let r = common::http()
        .get(format!("{}{path}", prom.url))
        .query(query)
        .send()
        .await;
    match r {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn until<F, Fut>(what: &str, seconds: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every PromQL expression of the dashboards and the alert rules, with where it comes from.
fn shipped_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("dashboards/grafana")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                out.push((
                    format!(
                        "{} / {}",
                        path.file_name().unwrap().to_string_lossy(),
                        panel["title"]
                    ),
                    target["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    let rules = std::fs::read_to_string(repo().join(RULES)).unwrap();
    for line in rules.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr: ") {
            out.push(("alert rule".into(), expr.to_string()));
        }
    }
    assert!(out.len() >= 15, "found only {} queries", out.len());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_trent_and_every_shipped_query_has_series() {
    let (_, prometheus) = prometheus_tools();
    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let identities = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(identities.path(), IDENTITIES).unwrap();
    let config = identities.path().display().to_string();
    let server = TestServer::start_with(
        StoreKind::Sqlite,
        &["--admin-listen", &admin, "--config", &config],
    );
    let client = server.client();

    // The admin listener answers health and readiness.
    let health = common::http()
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    let ready = common::http()
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert!(ready.status().is_success());

    // A small load: keys, encryptions, an error, and the use of a key pending deletion.
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    for _ in 0..20 {
        client
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap();
    }
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    mixed_outcomes(&server, &key_arn).await;
    imported_key_expiring_in_three_days(&server).await;
    let doomed = client.create_key().send().await.unwrap();
    let doomed_id = doomed.key_metadata().unwrap().key_id().to_string();
    client
        .schedule_key_deletion()
        .key_id(&doomed_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    let prom = start_prometheus(&prometheus, admin_port);
    until("Prometheus to scrape Trent", 60, || async {
        let r = api(&prom, "/api/v1/query", &[("query", "up{job=\"trent\"}")]).await;
        r["data"]["result"][0]["value"][1] == "1"
    })
    .await;
    // The use of the key pending deletion comes after the first scrape, so `increase` sees it.
    let err = client
        .encrypt()
        .key_id(&doomed_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error()
            .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e)),
        Some("KMSInvalidStateException")
    );

    until(
        "the alert on use of a key pending deletion to fire",
        60,
        || async {
            let r = api(&prom, "/api/v1/alerts", &[]).await;
            r["data"]["alerts"].as_array().is_some_and(|alerts| {
                alerts.iter().any(|a| {
                    a["labels"]["alertname"] == "TrentKeyPendingDeletionUsed"
                        && a["state"] == "firing"
                })
            })
        },
    )
    .await;

    // Every metric each query names exists, and every query returns series.
    let names = api(&prom, "/api/v1/label/__name__/values", &[]).await;
    let names: Vec<String> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let metric = regex_lite_metric_names;
    let mut failures = Vec::new();
    for (origin, expr) in shipped_queries() {
        for name in metric(&expr) {
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            if !names.iter().any(|n| n == &name || n.starts_with(base)) {
                failures.push(format!("{origin}: metric {name} does not exist"));
            }
        }
        // An alert's condition is empty while it does not hold: evaluate what it compares.
        let evaluated = strip_threshold(&expr);
        let r = api(&prom, "/api/v1/query", &[("query", evaluated)]).await;
        if r["status"] != "success" {
            failures.push(format!("{origin}: query failed: {expr}: {r}"));
        } else if r["data"]["result"].as_array().is_none_or(|a| a.is_empty()) {
            failures.push(format!("{origin}: no series: {expr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const IDENTITIES: &str = r#"
[[accounts]]
id = "111122223333"
root_access_keys = [{ access_key_id = "AKIAIOSFODNN7EXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }]

[[accounts]]
id = "444455556666"
root_access_keys = [{ access_key_id = "AKIAOTHERACCOUNT0001", secret_access_key = "other-account-secret-0001" }]
"#;

/// A call of each outcome the dashboards chart: not found, access denied (another account), an
/// authentication failure, and STS credentials.
async fn mixed_outcomes(server: &TestServer, key_arn: &str) {
    let err = server
        .client()
        .describe_key()
        .key_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error()
            .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e)),
        Some("NotFoundException")
    );
    let other = server.client_as(
        "AKIAOTHERACCOUNT0001",
        "other-account-secret-0001",
        common::REGION,
    );
    let err = other
        .describe_key()
        .key_id(key_arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error()
            .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e)),
        Some("AccessDeniedException")
    );
    let bad = server.client_as(
        "AKIAOTHERACCOUNT0001",
        "not-the-right-secret-000",
        common::REGION,
    );
    assert!(bad.list_keys().send().await.is_err());
    // STS: a root user asks for its own temporary credentials (the STS panel).
    let (status, body) = common::sts::call(
        &server.endpoint(),
        &[("Action", "GetSessionToken"), ("Version", "2011-06-15")],
        (common::ACCESS_KEY, common::SECRET_KEY, None),
        common::REGION,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// An imported key whose material expires in three days (for the expiry gauge and its alert):
/// 32 bytes wrapped by the openssl command line with the wrapping key Trent hands out.
async fn imported_key_expiring_in_three_days(server: &TestServer) {
    use aws_sdk_kms::types::{AlgorithmSpec, ExpirationModelType, OriginType, WrappingKeySpec};
    let client = server.client();
    let key = client
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let params = client
        .get_parameters_for_import()
        .key_id(&key_id)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(file("pub.der"), params.public_key().unwrap().as_ref()).unwrap();
    std::fs::write(file("material"), [7u8; 32]).unwrap();
    for args in [
        vec![
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            &file("pub.der"),
            "-out",
            &file("pub.pem"),
        ],
        vec![
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &file("pub.pem"),
            "-in",
            &file("material"),
            "-out",
            &file("wrapped"),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let valid_to = std::time::SystemTime::now() + Duration::from_secs(3 * 86_400);
    client
        .import_key_material()
        .key_id(&key_id)
        .import_token(params.import_token().unwrap().clone())
        .encrypted_key_material(Blob::new(std::fs::read(file("wrapped")).unwrap()))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .valid_to(aws_sdk_kms::primitives::DateTime::from(valid_to))
        .send()
        .await
        .expect("import");
}

/// The expression an alert rule compares against its threshold (`expr > 0.05` -> `expr`).
fn strip_threshold(expr: &str) -> &str {
    match expr.rsplit_once(" > ").or_else(|| expr.rsplit_once(" < ")) {
        Some((left, right)) if right.trim().parse::<f64>().is_ok() => left,
        _ => expr,
    }
}

/// The `trent_*` metric names in a PromQL expression.
fn regex_lite_metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("trent_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}
