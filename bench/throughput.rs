//! Throughput benchmark: requests/s with p50/p99 latency for Encrypt (4 KiB, on one key and spread
//! over `BENCH_KEYS` keys, default 10,000), Decrypt,
//! GenerateDataKey, Sign (ECC P-256), DescribeKey and the no-op `/health` endpoint, on both stores,
//! at several concurrencies, interleaved (each concurrency runs every workload on each store in
//! turn, so a noisy moment hits all of them). Also the share of calls the server answered
//! within 5 ms by its own clock (`srv<5ms`, from its request-duration histogram: the load
//! generator's p99 adds the HTTP exchange and its own wait for a CPU on the cores it shares
//! with the server), the audit writer's mean batch size, commit
//! time and sync time (the fsync or WAL flush that makes a batch durable) per workload, the
//! server's CPU time per call (user + system, from /proc: steadier than req/s on a shared
//! machine, and what an optimisation should lower), the load generator's own CPU time per call
//! (`gen us`: what it takes from the cores it shares with the server), the Encrypt/no-op ratio
//! (from the table's figures, and again from the two alternated in one-second slices,
//! `BENCH_RATIO_ROUNDS` of each, default 5, 0 for none), and each server's RSS before and after.
//!
//! The load generator is not the bottleneck it would be with an SDK: every request is signed once
//! with AWS's own SigV4 signer (aws-sigv4) before a run, rendered once to its HTTP/1.1 bytes, and
//! those bytes are written again and again over keep-alive connections, one per task (SigV4
//! allows the replay within its 5-minute window; KMS has no replay guard either; see
//! `replay.rs`). Run with `cargo bench --bench throughput`.
//!
//! Environment: `BENCH_SECONDS` (per figure, default 5), `BENCH_CONCURRENCY` (comma-separated,
//! default `8,32,128`), `BENCH_STORES` (`sqlite,postgres` by default), `BENCH_WORKLOADS` (names
//! to run, default all), `BENCH_RSS_CALLS` (when set, e.g. `1000000`: after the table, each
//! server's RSS after 10,000 more Encrypt calls and after that many more), `BENCH_REPLICAS`
//! (when set, e.g. `1,2,3`: Encrypt spread over that many servers sharing the PostgreSQL
//! database, their combined req/s, then `trent trail verify` on the chain they wrote together),
//! `BENCH_PG_FSYNC` (`on` by default: the throwaway PostgreSQL syncs its WAL at commit as a
//! deployment does, where the test suite runs it with `fsync=off`), `TRENT_BIN` (the server
//! binary to measure instead of the one this build made: to compare two builds, run the bench
//! alternately with each).

#[path = "../tests/it/common/mod.rs"]
mod common;
mod process;
mod replay;

use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use common::{StoreKind, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use process::{cpu_seconds, rss_mib};
use serde_json::{json, Value};

/// The `host:port` of an `http://` endpoint.
fn address(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://")
}

/// One request to replay: its bytes, signed once.
#[derive(Clone)]
struct Replay(replay::Raw);

impl Replay {
    /// A KMS call signed now.
    fn kms(endpoint: &str, operation: &str, body: &Value) -> Replay {
        let body = serde_json::to_vec(body).expect("json");
        let url = format!("{endpoint}/");
        let addr = address(endpoint);
        let mut headers = vec![
            ("host".to_string(), addr.to_string()),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                format!("TrentService.{operation}"),
            ),
        ];
        let signature = common::sign_headers(
            &url,
            &headers,
            &body,
            (ACCESS_KEY, SECRET_KEY, None),
            REGION,
            "kms",
            SystemTime::now(),
        );
        headers.extend(signature);
        Replay(replay::Raw::new(addr, "POST", "/", &headers, &body))
    }

    /// The no-op endpoint.
    fn health(endpoint: &str) -> Replay {
        Replay(replay::Raw::new(
            address(endpoint),
            "GET",
            "/health",
            &[],
            &[],
        ))
    }

    /// Send the request on `connections` (one of the task's own) and read the answer's body.
    async fn send(&self, connections: &mut replay::Connections) -> Result<Vec<u8>, String> {
        let answer = connections.send(&self.0).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer.body)
        } else {
            Err(format!(
                "{}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ))
        }
    }
}

/// What one run measured.
struct Figures {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Replay `requests` (in turn) from `concurrency` tasks for `seconds`.
async fn drive(requests: &[Replay], concurrency: usize, seconds: u64) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let requests = std::sync::Arc::new(requests.to_vec());
    for task in 0..concurrency {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut connections = replay::Connections::default();
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            let mut next = task;
            while Instant::now() < deadline {
                let t = Instant::now();
                let request = &requests[next % requests.len()];
                next += concurrency;
                match request.send(&mut connections).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut figures = Figures {
        requests: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (latencies, errors, first_error) = t.await.expect("bench task");
        figures.latencies.extend(latencies);
        figures.errors += errors;
        if figures.first_error.is_none() {
            figures.first_error = first_error;
        }
    }
    figures.elapsed = started.elapsed();
    figures.requests = figures.latencies.len();
    figures.latencies.sort();
    figures
}

/// Replay `request` from `concurrency` tasks until `total` calls succeeded.
async fn drive_count(request: &Replay, concurrency: usize, total: usize) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (request, done) = (request.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut connections = replay::Connections::default();
            while done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                request.send(&mut connections).await.expect("call succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
}

/// Send each of `requests` once, from `concurrency` tasks (a warm-up pass).
async fn send_each(requests: &[Replay], concurrency: usize) {
    let requests = std::sync::Arc::new(requests.to_vec());
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut connections = replay::Connections::default();
            for request in requests.iter().skip(task).step_by(concurrency) {
                request
                    .send(&mut connections)
                    .await
                    .expect("warm-up call succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
}

/// One metric's value from Prometheus text (summed over its series).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(' ') || l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// What the server's metrics count, read before and after a run: the audit writer's work and,
/// for the workload's operation, how many calls it answered and how many within 5 ms.
struct Counters {
    commits: f64,
    units: f64,
    commit_seconds: f64,
    syncs: f64,
    sync_seconds: f64,
    answered: f64,
    within_5ms: f64,
}

/// The server's counters now; `operation` is the KMS operation the workload calls, if any.
async fn counters(admin: &str, operation: Option<&str>) -> Counters {
    let text = reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let (answered, within_5ms) = match operation {
        Some(op) => (
            metric(
                &text,
                &format!("trent_request_duration_seconds_count{{operation=\"{op}\"}}"),
            ),
            metric(
                &text,
                &format!(
                    "trent_request_duration_seconds_bucket{{operation=\"{op}\",le=\"0.005\"}}"
                ),
            ),
        ),
        None => (0.0, 0.0),
    };
    Counters {
        commits: metric(&text, "trent_audit_commit_duration_seconds_count"),
        units: metric(&text, "trent_audit_batch_size_sum"),
        commit_seconds: metric(&text, "trent_audit_commit_duration_seconds_sum"),
        syncs: metric(&text, "trent_audit_sync_duration_seconds_count"),
        sync_seconds: metric(&text, "trent_audit_sync_duration_seconds_sum"),
        answered,
        within_5ms,
    }
}

/// The share of a run's calls the server answered within 5 ms, by its own clock (from reading
/// the request to the response ready, commit and fsync included); the load generator's latency
/// adds the HTTP exchange and, on a machine it shares with the server, its wait for a CPU.
fn served_within_5ms(before: &Counters, after: &Counters) -> String {
    let answered = after.answered - before.answered;
    if answered < 1.0 {
        return "-".into();
    }
    format!(
        "{:.1}%",
        100.0 * (after.within_5ms - before.within_5ms) / answered
    )
}

/// A server with the keys and ciphertext the workloads use.
struct Target {
    store: StoreKind,
    server: TestServer,
    admin: String,
    encrypt_key: String,
    /// Keys for the many-keys workload (the first is `encrypt_key`).
    many_keys: Vec<String>,
    sign_key: String,
    ciphertext: String,
    rss_start: f64,
}

async fn kms_call(endpoint: &str, operation: &str, body: Value) -> Value {
    static CONNECTIONS: std::sync::OnceLock<tokio::sync::Mutex<replay::Connections>> =
        std::sync::OnceLock::new();
    let mut connections = CONNECTIONS.get_or_init(Default::default).lock().await;
    let bytes = Replay::kms(endpoint, operation, &body)
        .send(&mut connections)
        .await
        .unwrap_or_else(|e| panic!("{operation}: {e}"));
    serde_json::from_slice(&bytes).expect("json answer")
}

async fn prepare(store: StoreKind) -> Target {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(store, &["--admin-listen", &admin]);
    let endpoint = server.endpoint();
    let created = kms_call(&endpoint, "CreateKey", json!({})).await;
    let encrypt_key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string();
    let signing = json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"});
    let created = kms_call(&endpoint, "CreateKey", signing).await;
    let sign_key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string();
    let plaintext = base64::engine::general_purpose::STANDARD.encode(vec![0x5a; 4096]);
    let encrypted = kms_call(
        &endpoint,
        "Encrypt",
        json!({"KeyId": encrypt_key, "Plaintext": plaintext}),
    )
    .await;
    let ciphertext = encrypted["CiphertextBlob"]
        .as_str()
        .expect("blob")
        .to_string();
    let mut many_keys = vec![encrypt_key.clone()];
    let wanted = many_keys_wanted();
    while many_keys.len() < wanted {
        let created = kms_call(&endpoint, "CreateKey", json!({})).await;
        let id = created["KeyMetadata"]["KeyId"].as_str().expect("key id");
        many_keys.push(id.to_string());
    }
    let rss_start = rss_mib(server.pid());
    Target {
        store,
        server,
        admin,
        encrypt_key,
        many_keys,
        sign_key,
        ciphertext,
        rss_start,
    }
}

/// How many keys the many-keys workload spreads Encrypt over (`BENCH_KEYS`, default 10,000;
/// only created when that workload runs).
fn many_keys_wanted() -> usize {
    let wanted = env_list("BENCH_WORKLOADS", &WORKLOADS.join(","));
    if !wanted.iter().any(|w| w == MANY_KEYS) {
        return 1;
    }
    std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

const MANY_KEYS: &str = "Encrypt many keys";

/// The requests a workload replays against `target`.
fn workload_requests(name: &str, target: &Target) -> Vec<Replay> {
    if name != MANY_KEYS {
        return vec![workload(name, target)];
    }
    let endpoint = target.server.endpoint();
    let plaintext = base64::engine::general_purpose::STANDARD.encode(vec![0x5a; 4096]);
    target
        .many_keys
        .iter()
        .map(|k| {
            Replay::kms(
                &endpoint,
                "Encrypt",
                &json!({"KeyId": k, "Plaintext": plaintext}),
            )
        })
        .collect()
}

/// The KMS operation a workload calls (None for the no-op endpoint).
fn operation_of(name: &str) -> Option<&'static str> {
    match name {
        "Encrypt 4 KiB" | MANY_KEYS => Some("Encrypt"),
        "Decrypt" => Some("Decrypt"),
        "GenerateDataKey" => Some("GenerateDataKey"),
        "Sign P-256" => Some("Sign"),
        "DescribeKey" => Some("DescribeKey"),
        _ => None,
    }
}

/// The request a workload replays against `target`.
fn workload(name: &str, target: &Target) -> Replay {
    let endpoint = target.server.endpoint();
    let plaintext = base64::engine::general_purpose::STANDARD.encode(vec![0x5a; 4096]);
    match name {
        "Encrypt 4 KiB" => Replay::kms(
            &endpoint,
            "Encrypt",
            &json!({"KeyId": target.encrypt_key, "Plaintext": plaintext}),
        ),
        "Decrypt" => Replay::kms(
            &endpoint,
            "Decrypt",
            &json!({"CiphertextBlob": target.ciphertext}),
        ),
        "GenerateDataKey" => Replay::kms(
            &endpoint,
            "GenerateDataKey",
            &json!({"KeyId": target.encrypt_key, "KeySpec": "AES_256"}),
        ),
        "Sign P-256" => Replay::kms(
            &endpoint,
            "Sign",
            &json!({"KeyId": target.sign_key, "Message": "aGVsbG8=",
                    "SigningAlgorithm": "ECDSA_SHA_256"}),
        ),
        "DescribeKey" => Replay::kms(
            &endpoint,
            "DescribeKey",
            &json!({"KeyId": target.encrypt_key}),
        ),
        _ => Replay::health(&endpoint),
    }
}

/// Encrypt 4 KiB and the no-op alternated in one-second slices, `rounds` of each, at
/// `concurrency`: the ratio of their summed rates. Steadier on a shared machine than the ratio of
/// two 5-s figures taken seconds apart, since a noisy moment falls on both about equally.
async fn alternating_ratio(target: &Target, concurrency: usize, rounds: usize) -> f64 {
    let encrypt = [workload("Encrypt 4 KiB", target)];
    let noop = [workload("no-op /health", target)];
    let (mut encrypted, mut nothing) = (0.0, 0.0);
    for _ in 0..rounds {
        encrypted += drive(&encrypt, concurrency, 1).await.rate();
        nothing += drive(&noop, concurrency, 1).await.rate();
    }
    encrypted / nothing
}

const WORKLOADS: [&str; 7] = [
    "Encrypt 4 KiB",
    MANY_KEYS,
    "Decrypt",
    "GenerateDataKey",
    "Sign P-256",
    "DescribeKey",
    "no-op /health",
];

/// Encrypt 4 KiB spread evenly over 1, 2, 3... servers sharing `target`'s PostgreSQL database:
/// their combined req/s at each concurrency (the total over all servers), then a check that the
/// hash chain the servers wrote together still verifies.
async fn replicas_on_one_database(
    target: &Target,
    counts: &[usize],
    concurrencies: &[usize],
    seconds: u64,
) {
    let most = counts.iter().copied().max().unwrap_or(1);
    let mut others = Vec::new();
    for _ in 1..most {
        let admin = format!("127.0.0.1:{}", common::free_port());
        others.push(
            target
                .server
                .another_on_same_store_with(&["--admin-listen", &admin]),
        );
    }
    let plaintext = base64::engine::general_purpose::STANDARD.encode(vec![0x5a; 4096]);
    let body = json!({"KeyId": target.encrypt_key, "Plaintext": plaintext});
    let endpoints: Vec<String> = std::iter::once(target.server.endpoint())
        .chain(others.iter().map(TestServer::endpoint))
        .collect();
    println!("PostgreSQL replicas on one database, Encrypt 4 KiB spread evenly over them:");
    println!(
        "{:>8} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "replicas", "c", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for &c in concurrencies {
        for &n in counts {
            let requests: Vec<Replay> = endpoints[..n.min(endpoints.len())]
                .iter()
                .map(|e| Replay::kms(e, "Encrypt", &body))
                .collect();
            let figures = drive(&requests, c, seconds).await;
            println!(
                "{:>8} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                requests.len(),
                c,
                figures.rate(),
                figures.percentile_ms(0.50),
                figures.percentile_ms(0.99),
                figures.errors
            );
            if let Some(e) = &figures.first_error {
                println!("          first error: {e}");
            }
        }
    }
    let (verified, out) = target.server.trent(&["trail", "verify"]);
    println!(
        "chain written by {} servers together: {}",
        endpoints.len(),
        if verified { "verifies" } else { "BROKEN" }
    );
    if !verified {
        println!("{out}");
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    // reqwest's rustls (enabled by trent-service) takes the process-wide provider: aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // PostgreSQL syncs its WAL at commit, as deployed (the test harness turns fsync off for
    // speed; a benchmark with it off would compare a durable SQLite with a volatile PostgreSQL).
    // BENCH_PG_FSYNC=off measures without it.
    let pg_fsync = std::env::var("BENCH_PG_FSYNC").unwrap_or_else(|_| "on".into());
    std::env::set_var(common::pg::FSYNC_ENV, &pg_fsync);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let concurrencies: Vec<usize> = env_list("BENCH_CONCURRENCY", "8,32,128")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let stores: Vec<StoreKind> = env_list("BENCH_STORES", "sqlite,postgres")
        .iter()
        .map(|s| match s.as_str() {
            "postgres" => StoreKind::Postgres,
            _ => StoreKind::Sqlite,
        })
        .collect();
    let wanted = env_list("BENCH_WORKLOADS", &WORKLOADS.join(","));
    let workloads: Vec<&str> = WORKLOADS
        .iter()
        .copied()
        .filter(|w| wanted.iter().any(|x| x == w))
        .collect();
    let ratio_rounds: usize = std::env::var("BENCH_RATIO_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut targets = Vec::new();
        for store in stores {
            targets.push(prepare(store).await);
        }
        println!(
            "trent throughput: {seconds} s per figure, pre-signed requests over keep-alive, \
             release build, PostgreSQL fsync={pg_fsync}"
        );
        println!(
            "{:<9} {:<16} {:>5} {:>10} {:>9} {:>9} {:>9} {:>7} {:>10} {:>8} {:>9} {:>7} {:>7}",
            "store",
            "workload",
            "c",
            "req/s",
            "p50 ms",
            "p99 ms",
            "srv<5ms",
            "batch",
            "commit ms",
            "sync ms",
            "cpu us",
            "gen us",
            "errors"
        );
        if workloads.contains(&MANY_KEYS) {
            // Steady state, not a cold start: every key has been used once.
            for target in &targets {
                send_each(&workload_requests(MANY_KEYS, target), 32).await;
            }
        }
        for &c in &concurrencies {
            let mut rates = std::collections::HashMap::new();
            for name in &workloads {
                for target in &targets {
                    let requests = workload_requests(name, target);
                    let operation = operation_of(name);
                    let before = counters(&target.admin, operation).await;
                    let cpu_before = cpu_seconds(target.server.pid());
                    let generator_before = cpu_seconds(std::process::id());
                    let figures = drive(&requests, c, seconds).await;
                    let cpu = cpu_seconds(target.server.pid()) - cpu_before;
                    let generator = cpu_seconds(std::process::id()) - generator_before;
                    let after = counters(&target.admin, operation).await;
                    let commits = (after.commits - before.commits).max(1.0);
                    let syncs = (after.syncs - before.syncs).max(1.0);
                    println!(
                        "{:<9} {:<16} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>7.1} {:>10.3} {:>8.3} {:>9.0} {:>7.0} {:>7}",
                        format!("{:?}", target.store),
                        name,
                        c,
                        figures.rate(),
                        figures.percentile_ms(0.50),
                        figures.percentile_ms(0.99),
                        served_within_5ms(&before, &after),
                        (after.units - before.units) / commits,
                        1000.0 * (after.commit_seconds - before.commit_seconds) / commits,
                        1000.0 * (after.sync_seconds - before.sync_seconds) / syncs,
                        1e6 * cpu / (figures.requests.max(1) as f64),
                        1e6 * generator / (figures.requests.max(1) as f64),
                        figures.errors
                    );
                    if let Some(e) = &figures.first_error {
                        println!("          first error: {e}");
                    }
                    rates.insert((format!("{:?}", target.store), *name), figures.rate());
                }
            }
            for target in &targets {
                let store = format!("{:?}", target.store);
                if let (Some(enc), Some(noop)) = (
                    rates.get(&(store.clone(), "Encrypt 4 KiB")),
                    rates.get(&(store.clone(), "no-op /health")),
                ) {
                    println!("{store:<9} Encrypt/no-op ratio at c={c}: {:.3}", enc / noop);
                    if ratio_rounds > 0 {
                        let ratio = alternating_ratio(target, c, ratio_rounds).await;
                        println!(
                            "{store:<9} Encrypt/no-op ratio at c={c}, alternating 1-s slices \
                             x{ratio_rounds}: {ratio:.3}"
                        );
                    }
                }
                if let (Some(one), Some(many)) = (
                    rates.get(&(store.clone(), "Encrypt 4 KiB")),
                    rates.get(&(store.clone(), MANY_KEYS)),
                ) {
                    println!(
                        "{store:<9} Encrypt over {} keys / over one key at c={c}: {:.3}",
                        target.many_keys.len(),
                        many / one
                    );
                }
            }
        }
        if let Some(total) = std::env::var("BENCH_RSS_CALLS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        {
            for target in &targets {
                let request = workload("Encrypt 4 KiB", target);
                let pid = target.server.pid();
                drive_count(&request, 32, 10_000).await;
                let after_10k = rss_mib(pid);
                let started = Instant::now();
                let mut done = 10_000;
                while done < total {
                    // Re-signed every 100,000 calls, inside SigV4's 5-minute window.
                    let request = workload("Encrypt 4 KiB", target);
                    let step = (total - done).min(100_000);
                    drive_count(&request, 32, step).await;
                    done += step;
                }
                println!(
                    "{:<9} RSS {:.1} MiB after 10,000 Encrypt calls, {:.1} MiB after {} more ({:.0} s)",
                    format!("{:?}", target.store),
                    after_10k,
                    rss_mib(pid),
                    total - 10_000,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let replicas: Vec<usize> = env_list("BENCH_REPLICAS", "")
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        if let Some(target) = targets.iter().find(|t| matches!(t.store, StoreKind::Postgres)) {
            if !replicas.is_empty() {
                replicas_on_one_database(target, &replicas, &concurrencies, seconds).await;
            }
        }
        for target in &targets {
            println!(
                "{:<9} RSS {:.1} MiB before the runs, {:.1} MiB after",
                format!("{:?}", target.store),
                target.rss_start,
                rss_mib(target.server.pid())
            );
        }
    });
}
