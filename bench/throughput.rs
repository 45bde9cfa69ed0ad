//! Throughput benchmark: Encrypt requests/s with p50/p99 latency (4 KiB plaintext, SigV4-signed by
//! aws-sdk-kms, audit record durable before each response), and the same server's throughput on
//! its no-op `/health` endpoint, for both stores. Run with `cargo bench --bench throughput`.
//! `BENCH_SECONDS` (default 10) and `BENCH_CONCURRENCY` (default 32) tune the run.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use common::{StoreKind, TestServer};

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self, label: &str) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
            self.latencies[i].as_secs_f64() * 1000.0
        };
        println!(
            "{label:<28} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests in {:.1} s)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.requests,
            self.elapsed.as_secs_f64()
        );
    }
}

async fn run<F, Fut>(seconds: u64, concurrency: usize, call: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                call().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("bench task"));
    }
    Figures {
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
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

async fn bench_store(store: StoreKind, seconds: u64, concurrency: usize) {
    let admin = format!("127.0.0.1:{}", common::free_port());
    let server = TestServer::start_with(store, &["--admin-listen", &admin]);
    let client = server.client();
    let key = client.create_key().send().await.expect("create key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let plaintext = Blob::new(vec![0x5a; 4096]);

    let c = client.clone();
    let k = key_id.clone();
    let p = plaintext.clone();
    // Warm up connections and caches.
    for _ in 0..50 {
        c.encrypt()
            .key_id(&k)
            .plaintext(p.clone())
            .send()
            .await
            .expect("encrypt");
    }
    let mut enc = run(seconds, concurrency, move || {
        let c = c.clone();
        let k = k.clone();
        let p = p.clone();
        async move {
            c.encrypt()
                .key_id(k)
                .plaintext(p)
                .send()
                .await
                .expect("encrypt");
        }
    })
    .await;
    enc.print(&format!("{store:?} Encrypt 4 KiB"));
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let commits = metric(&text, "trent_audit_commit_duration_seconds_count");
    println!(
        "{:<28} {:>9.2} ms mean group commit, {:.1} calls per commit ({} commits)",
        format!("{store:?} audit writer"),
        1000.0 * metric(&text, "trent_audit_commit_duration_seconds_sum") / commits.max(1.0),
        metric(&text, "trent_audit_batch_size_sum") / commits.max(1.0),
        commits
    );

    let http = reqwest::Client::new();
    let url = format!("{}/health", server.endpoint());
    let mut noop = run(seconds, concurrency, move || {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(url).send().await.expect("health");
            assert!(r.status().is_success());
        }
    })
    .await;
    noop.print(&format!("{store:?} no-op /health"));
}

fn main() {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let concurrency = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("trent throughput: {seconds} s per figure, {concurrency} concurrent clients");
    rt.block_on(async {
        bench_store(StoreKind::Sqlite, seconds, concurrency).await;
        bench_store(StoreKind::Postgres, seconds, concurrency).await;
    });
}
