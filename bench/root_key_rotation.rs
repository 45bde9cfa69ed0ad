//! Root key rotation under load: create `BENCH_KEYS` keys (default 100,000) through the API, then
//! run `trent root-key rotate --retire` while `BENCH_CONCURRENCY` clients (default 8) keep calling
//! Encrypt and Decrypt, and print how long the rotation took, how many calls were served meanwhile
//! and how many failed. `BENCH_STORES` picks `sqlite`, `postgres` or both (default both). Run with
//! `cargo bench --bench root_key_rotation`.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_kms::primitives::Blob;
use common::{StoreKind, TestServer};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench_store(store: StoreKind, keys: usize, concurrency: usize) {
    let server = TestServer::start(store);
    let client = server.client();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for _ in 0..32 {
        let (client, next) = (client.clone(), next.clone());
        creators.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < keys {
                client.create_key().send().await.expect("CreateKey");
            }
        }));
    }
    for c in creators {
        c.await.expect("creator");
    }
    println!(
        "{store:?}: created {keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let key = client
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..concurrency {
        let (client, key, stop) = (client.clone(), key.clone(), stop.clone());
        let (served, failed) = (served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = match client
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(vec![7u8; 512]))
                    .send()
                    .await
                {
                    Ok(out) => client
                        .decrypt()
                        .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
                        .send()
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                let counter = if ok { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "root-key".to_string(),
        "rotate".into(),
        "--new-key-file".into(),
        dir.path().join("next.key").display().to_string(),
        "--retire".into(),
    ];
    args.extend(server.store_args());
    let rotation = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::trent_bin())
            .args(&args)
            .env("TRENT_LOG", "warn")
            .output()
            .expect("trent runs")
    })
    .await
    .unwrap();
    let took = rotation.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load");
    }
    assert!(
        out.status.success(),
        "rotation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{store:?}: {}", String::from_utf8_lossy(&out.stdout));
    println!(
        "{store:?}: rotation of {} keys took {:.1} s (3 s of it waiting for servers to switch); \
         {} Encrypt+Decrypt pairs served meanwhile ({:.0}/s), {} failed",
        keys + 1,
        took.as_secs_f64(),
        served.load(Ordering::Relaxed),
        served.load(Ordering::Relaxed) as f64 / took.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let keys = env_usize("BENCH_KEYS", 100_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 8);
    let stores = std::env::var("BENCH_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for name in stores.split(',') {
        let store = match name.trim() {
            "sqlite" => StoreKind::Sqlite,
            "postgres" => StoreKind::Postgres,
            other => panic!("unknown store {other}"),
        };
        rt.block_on(bench_store(store, keys, concurrency));
    }
}
