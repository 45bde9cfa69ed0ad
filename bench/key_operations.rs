//! Throughput of the asymmetric, HMAC and ML-KEM operations through the full request path
//! (aws-sdk-kms, SigV4, authorization, audit record durable before each response), on the
//! embedded store: Sign and Verify for RSA_2048, ECC_NIST_P256 and ML_DSA_65, Encapsulate for
//! ML_KEM_768, GenerateMac for HMAC_256. Run with `cargo bench --bench key_operations`;
//! `BENCH_SECONDS` (default 5) and `BENCH_CONCURRENCY` (default 16) tune it. The bare aws-lc-rs
//! figures for the same operations come from
//! `cargo test --release -p trent-service crypto::keys::bench -- --ignored --nocapture`.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    EncapsulationAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec,
};
use common::{StoreKind, TestServer};

async fn run<F, Fut>(label: &str, seconds: u64, concurrency: usize, call: F)
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
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                call().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    lat.sort();
    let p =
        |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{label:<32} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        lat.len() as f64 / started.elapsed().as_secs_f64(),
        p(0.5),
        p(0.99)
    );
}

async fn key(client: &aws_sdk_kms::Client, spec: KeySpec, usage: KeyUsageType) -> String {
    client
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .expect("create")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

fn main() {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let concurrency = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "trent key operations: {seconds} s per figure, {concurrency} concurrent clients, SQLite"
    );
    rt.block_on(async {
        let server = TestServer::start(StoreKind::Sqlite);
        let client = server.client();
        let message = Blob::new(vec![0x42; 256]);
        for (label, spec, alg) in [
            (
                "RSA_2048 RSASSA_PSS_SHA_256",
                KeySpec::Rsa2048,
                SigningAlgorithmSpec::RsassaPssSha256,
            ),
            (
                "ECC_NIST_P256 ECDSA_SHA_256",
                KeySpec::EccNistP256,
                SigningAlgorithmSpec::EcdsaSha256,
            ),
            (
                "ML_DSA_65 ML_DSA_SHAKE_256",
                KeySpec::MlDsa65,
                SigningAlgorithmSpec::MlDsaShake256,
            ),
        ] {
            let id = key(&client, spec, KeyUsageType::SignVerify).await;
            let sig = client
                .sign()
                .key_id(&id)
                .message(message.clone())
                .signing_algorithm(alg.clone())
                .send()
                .await
                .expect("sign")
                .signature()
                .unwrap()
                .clone();
            let (c, k, m, a) = (client.clone(), id.clone(), message.clone(), alg.clone());
            run(&format!("Sign {label}"), seconds, concurrency, move || {
                let (c, k, m, a) = (c.clone(), k.clone(), m.clone(), a.clone());
                async move {
                    c.sign()
                        .key_id(k)
                        .message(m)
                        .signing_algorithm(a)
                        .send()
                        .await
                        .expect("sign");
                }
            })
            .await;
            let (c, k, m, a, s) = (
                client.clone(),
                id.clone(),
                message.clone(),
                alg.clone(),
                sig.clone(),
            );
            run(
                &format!("Verify {label}"),
                seconds,
                concurrency,
                move || {
                    let (c, k, m, a, s) = (c.clone(), k.clone(), m.clone(), a.clone(), s.clone());
                    async move {
                        c.verify()
                            .key_id(k)
                            .message(m)
                            .signature(s)
                            .signing_algorithm(a)
                            .send()
                            .await
                            .expect("verify");
                    }
                },
            )
            .await;
        }
        let kem = key(
            &client,
            KeySpec::MlKem768,
            KeyUsageType::EncapsulateDecapsulate,
        )
        .await;
        let c = client.clone();
        run("Encapsulate ML_KEM_768", seconds, concurrency, move || {
            let (c, k) = (c.clone(), kem.clone());
            async move {
                c.encapsulate()
                    .key_id(k)
                    .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
                    .send()
                    .await
                    .expect("encapsulate");
            }
        })
        .await;
        let mac = key(&client, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
        let c = client.clone();
        run("GenerateMac HMAC_256", seconds, concurrency, move || {
            let (c, k, m) = (c.clone(), mac.clone(), message.clone());
            async move {
                c.generate_mac()
                    .key_id(k)
                    .message(m)
                    .mac_algorithm(MacAlgorithmSpec::HmacSha256)
                    .send()
                    .await
                    .expect("mac");
            }
        })
        .await;
    });
}
