//! `trent xks check`: can Trent use this XKS proxy and these external keys? Calls the proxy as a
//! KMS would (SigV4 under `kms-xks-proxy`, the spec's 250 ms budget): GetHealthStatus, then for each
//! key GetKeyMetadata and an Encrypt/Decrypt round trip of random bytes. Prints a JSON report;
//! exits non-zero when anything fails. The credential's secret is read from the environment,
//! never from the command line, and never printed.

use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use trent_service::crypto::secret::SecretBytes;
use trent_service::protocol::wire::set;
use trent_service::xks::{
    ProxyCredential, ProxyEndpoint, RequestMetadata, XksClient, CALL_TIMEOUT,
};

/// The options of `trent xks check`.
#[derive(Debug, Args)]
pub struct XksCheckArgs {
    /// The proxy's URI endpoint (`https://host[:port]`; `http://` only with --allow-http).
    #[arg(long)]
    uri_endpoint: String,
    /// The proxy's URI path (AWS's XksProxyUriPath): an optional prefix and `/kms/xks/v1`.
    #[arg(long, default_value = "/kms/xks/v1")]
    uri_path: String,
    /// The access key id of the proxy authentication credential.
    #[arg(long)]
    access_key_id: String,
    /// The secret of the proxy authentication credential (from the environment only).
    #[arg(
        long = "secret-from-env",
        env = "TRENT_XKS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    secret: String,
    /// The region the requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// External key ids to check (each must be AES_256, ENCRYPT and DECRYPT, enabled).
    #[arg(long = "key-id")]
    key_ids: Vec<String>,
    /// Accept a plain-HTTP endpoint (for tests; AWS requires HTTPS).
    #[arg(long)]
    allow_http: bool,
    /// The PEM bundle of certificate authorities the proxy's certificate must chain to (default:
    /// the system's bundle).
    #[arg(long)]
    ca_bundle: Option<std::path::PathBuf>,
    /// Milliseconds each call may take (the XKS specification's 250 by default).
    #[arg(long, default_value_t = CALL_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
}

/// The system's CA bundle (Debian's path), the default for verifying XKS proxies.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS settings for XKS proxies: from `ca_bundle`, or the system's bundle when it exists
/// (None: no bundle, so HTTPS proxies cannot be verified and are refused).
pub fn xks_tls(
    ca_bundle: Option<&std::path::Path>,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
    let path = match ca_bundle {
        Some(p) => p.to_path_buf(),
        None if std::path::Path::new(SYSTEM_CA_BUNDLE).exists() => SYSTEM_CA_BUNDLE.into(),
        None => return Ok(None),
    };
    trent_service::xks::tls_config(&path)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("XKS CA bundle {e}"))
}

/// Run the check; the report goes to stdout.
pub async fn check(args: XksCheckArgs) -> anyhow::Result<ExitCode> {
    let Some(prefix) = args.uri_path.strip_suffix("/kms/xks/v1") else {
        anyhow::bail!("--uri-path must end with /kms/xks/v1");
    };
    if !args.uri_endpoint.starts_with("https://") && !args.allow_http {
        anyhow::bail!("--uri-endpoint must be https:// (or pass --allow-http for a test proxy)");
    }
    let client = XksClient::new(
        ProxyEndpoint {
            uri_endpoint: args.uri_endpoint.clone(),
            path_prefix: prefix.to_string(),
        },
        ProxyCredential {
            access_key_id: args.access_key_id.clone(),
            secret: Zeroizing::new(args.secret.clone()),
        },
        &args.region,
        std::time::Duration::from_millis(args.timeout_ms),
        xks_tls(args.ca_bundle.as_deref())?,
    )?;
    // The proxy requires a principal and a key ARN on key calls (its authorization may test
    // them): the check names itself.
    let metadata = |operation: &str| RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::000000000000:user/trent-xks-check".into()),
        kms_key_arn: Some(format!(
            "arn:aws:kms:{}:000000000000:key/trent-xks-check",
            args.region
        )),
        kms_operation: operation.to_string(),
        kms_request_id: uuid::Uuid::new_v4().to_string(),
    };
    let mut ok = true;
    let health = match client.health(&metadata("ConnectCustomKeyStore")).await {
        Ok(h) => {
            ok &= h.is_active();
            json!({
                "ok": h.is_active(),
                "xksProxyVendor": h.xks_proxy_vendor,
                "xksProxyModel": h.xks_proxy_model,
                "ekmVendor": h.ekm_vendor,
                "ekmFleetDetails": h.ekm_fleet_details.iter().map(|e| json!({
                    "id": e.id, "model": e.model, "healthStatus": e.health_status,
                })).collect::<Vec<_>>(),
            })
        }
        Err(e) => {
            ok = false;
            json!({ "ok": false, "error": e.to_string() })
        }
    };
    let mut keys = Vec::new();
    for key_id in &args.key_ids {
        let report = check_key(&client, key_id, &metadata).await;
        ok &= report.get("ok").and_then(Value::as_bool) == Some(true);
        keys.push(report);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "ok": ok, "health": health, "keys": keys }))?
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One key's metadata and an encryption round trip.
async fn check_key(
    client: &XksClient,
    key_id: &str,
    metadata: &dyn Fn(&str) -> RequestMetadata,
) -> Value {
    let meta = match client.key_metadata(key_id, &metadata("CreateKey")).await {
        Ok(m) => m,
        Err(e) => return json!({ "keyId": key_id, "ok": false, "error": e.to_string() }),
    };
    let usable = meta.usable_by_kms();
    let mut report = json!({
        "keyId": key_id,
        "keySpec": meta.key_spec,
        "keyUsage": meta.key_usage,
        "keyStatus": meta.key_status,
        "usableByKms": usable,
    });
    let probe = match trent_service::crypto::random_secret(32) {
        Ok(p) => p,
        Err(e) => {
            set(&mut report, "ok", json!(false));
            set(&mut report, "error", json!(e.to_string()));
            return report;
        }
    };
    let aad = b"trent xks check";
    let round_trip = async {
        let sealed = client
            .encrypt(key_id, &probe, aad, &metadata("Encrypt"))
            .await?;
        let opened: SecretBytes = client
            .decrypt(key_id, &sealed, aad, &metadata("Decrypt"))
            .await?;
        Ok::<bool, trent_service::xks::XksError>(opened.as_slice() == probe.as_slice())
    };
    match round_trip.await {
        Ok(same) => {
            set(&mut report, "roundTrip", json!(same));
            set(&mut report, "ok", json!(usable && same));
        }
        Err(e) => {
            set(&mut report, "roundTrip", json!(false));
            set(&mut report, "ok", json!(false));
            set(&mut report, "error", json!(e.to_string()));
        }
    }
    report
}
