//! The `trent` command line: `serve`, `migrate`, `replay --verify` and `trail verify`, each with
//! the same store flags (every flag has a `TRENT_*` environment equivalent).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use trent_service::audit::chain::ChainVerifier;
use trent_service::audit::writer::CommitWriter;
use trent_service::auth::identity::{Identities, DEV_ACCOUNT_ID};
use trent_service::clock::{ManualClock, SystemClock};
use trent_service::crypto::keyring::RootKeyring;
use trent_service::domain::read_model::ReadModel;
use trent_service::state::{AppState, MaterialCache, RegionSet};
use trent_service::store::postgres::PostgresStore;
use trent_service::store::sqlite::SqliteStore;
use trent_service::store::SharedStore;

/// Trent: a self-hosted key management service that speaks the AWS KMS API.
#[derive(Debug, Parser)]
#[command(name = "trent", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies migrations first).
    Serve(ServeArgs),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Rebuild the read model from the events alone and check it against the keystore.
    Replay(ReplayArgs),
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Audit trail tools.
    Trail {
        #[command(subcommand)]
        command: TrailCommand,
    },
    /// Root key tools (rotation while servers keep serving).
    RootKey {
        #[command(subcommand)]
        command: RootKeyCommand,
    },
    /// External key store tools.
    Xks {
        #[command(subcommand)]
        command: XksCommand,
    },
}

#[derive(Debug, Subcommand)]
enum XksCommand {
    /// Check an XKS proxy as KMS would use it: its health, and for each --key-id the key's
    /// metadata and an Encrypt/Decrypt round trip. Prints a JSON report.
    Check(crate::xks_check::XksCheckArgs),
}

#[derive(Debug, Subcommand)]
enum RootKeyCommand {
    /// Generate a new root key (written to --new-key-file), make it the store's active key,
    /// re-seal every sealed material row under it while servers keep serving, and (with
    /// --retire) retire the old key. Servers pick the new key up within seconds.
    Rotate(RotateArgs),
    /// Retire an old root key once no material is sealed under it.
    Retire(RetireArgs),
}

#[derive(Debug, Args)]
struct RotateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where to write the new root key (must not exist). Back it up, and start servers with it
    /// (--root-key-file) once the old key is retired.
    #[arg(long)]
    new_key_file: PathBuf,
    /// Retire the old root key at the end. Session and import tokens sealed under it stop
    /// working; without it, run `trent root-key retire` later (after the longest session, 36 h).
    #[arg(long)]
    retire: bool,
    /// Seconds to wait after binding the new key before re-sealing, for servers to switch to it.
    #[arg(long, default_value_t = 3)]
    settle_seconds: u64,
}

#[derive(Debug, Args)]
struct RetireArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The id of the root key to retire (as `trent root-key rotate` printed it).
    #[arg(long)]
    id: String,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Would PRINCIPAL be allowed ACTION on KEY? Prints the decision (allowed, explicitDeny,
    /// implicitDeny), the deciding statements and grants, and the context keys the policies
    /// needed but the request lacked, as JSON. Uses the same evaluation as live calls.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Identity file (the server's --config); without it, the development identity.
    #[arg(long, env = "TRENT_CONFIG")]
    config: Option<PathBuf>,
    /// Account of the development identity.
    #[arg(long, env = "TRENT_ACCOUNT_ID", default_value = DEV_ACCOUNT_ID)]
    account_id: String,
    /// The caller's ARN.
    #[arg(long)]
    principal: String,
    /// The action, e.g. kms:Decrypt.
    #[arg(long)]
    action: String,
    /// The key ARN (or key id).
    #[arg(long, required_unless_present = "role", conflicts_with = "role")]
    key: Option<String>,
    /// A role ARN: simulate sts:AssumeRole against its trust policy instead of a key.
    #[arg(long)]
    role: Option<String>,
    /// A candidate trust policy (file) instead of the role's current one.
    #[arg(long, requires = "role")]
    trust_policy_file: Option<PathBuf>,
    /// Encryption context pairs, KEY=VALUE (repeatable).
    #[arg(long = "encryption-context", value_parser = parse_pair)]
    encryption_context: Vec<(String, String)>,
    /// The client address for aws:SourceIp.
    #[arg(long)]
    source_ip: Option<std::net::IpAddr>,
    /// Simulate a request over HTTPS (aws:SecureTransport true).
    #[arg(long)]
    secure_transport: bool,
    /// Further condition keys, KEY=VALUE (repeatable; a key given twice has two values), e.g.
    /// kms:GrantOperations=Decrypt.
    #[arg(long = "context", value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// A candidate key policy (file) instead of the key's current one.
    #[arg(long)]
    key_policy_file: Option<PathBuf>,
    /// Candidate identity policies (files) instead of the principal's current ones.
    #[arg(long = "identity-policy-file")]
    identity_policy_files: Vec<PathBuf>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

#[derive(Debug, Subcommand)]
enum TrailCommand {
    /// Walk the audit hash chain and name the first broken link.
    Verify(StoreArgs),
    /// Write the audit records not yet exported as CloudTrail log files with signed digests.
    Export(TrailExportArgs),
    /// Check an export directory: digest signatures and chains, log file hashes, missing and
    /// added files (needs no store).
    Validate(TrailValidateArgs),
    /// Who used a key, with which operations, when first and last, per day (from the records).
    Usage(TrailUsageArgs),
}

#[derive(Debug, Args)]
struct TrailUsageArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The key: key id or key ARN.
    key: String,
    /// Output format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    format: String,
}

#[derive(Debug, Args)]
struct TrailExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The export directory (CloudTrail's bucket layout; the resume point is kept in it).
    #[arg(long)]
    out: PathBuf,
    /// The private digest key (PKCS#8 DER, created 0600 on first export); by default
    /// `DATA_DIR/trail-digest.key`.
    #[arg(long, env = "TRENT_DIGEST_KEY_FILE")]
    digest_key_file: Option<PathBuf>,
    /// The trail name used in digest file names.
    #[arg(long, default_value = "trent")]
    trail_name: String,
    /// At most this many records per log file (a file never spans two 5-minute slices either).
    #[arg(long, default_value_t = 1000)]
    max_records_per_file: usize,
}

#[derive(Debug, Args)]
struct TrailValidateArgs {
    /// The export directory.
    dir: PathBuf,
    /// Trust only this public key (PEM or DER), instead of those published in the directory.
    #[arg(long)]
    public_key: Option<PathBuf>,
}

/// Where the events, audit records and sealed key material live.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite store and the generated root key (used when no
    /// database URL is given).
    #[arg(long, env = "TRENT_DATA_DIR", default_value = "trent-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:port/db); events, audit and keystore live there.
    #[arg(long, env = "TRENT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File holding the base64 root key (created 0600 if missing). `TRENT_ROOT_KEY` (the base64
    /// key itself) takes precedence; by default the key is `DATA_DIR/root.key`.
    #[arg(long, env = "TRENT_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// How long (MiB) the SQLite store's write-ahead log grows under load before it is started
    /// over: each restart holds up commits for a few milliseconds, so a longer log means fewer
    /// such pauses and more disk (the file may keep up to twice this).
    #[arg(
        long,
        env = "TRENT_SQLITE_WAL_MIB",
        default_value_t = trent_service::store::sqlite::WAL_RESTART_BYTES / MIB,
        value_parser = clap::value_parser!(u64).range(1..=65536)
    )]
    pub sqlite_wal_mib: u64,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "TRENT_LISTEN", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// Identity file (TOML: accounts, users, access keys, policies). Without it, the development
    /// identity is used, which only a loopback listener accepts.
    #[arg(long, env = "TRENT_CONFIG")]
    config: Option<PathBuf>,
    /// Serve only these regions (comma-separated); by default every well-formed region name.
    #[arg(long, env = "TRENT_REGIONS", value_delimiter = ',')]
    regions: Option<Vec<String>>,
    /// Account of the development identity.
    #[arg(long, env = "TRENT_ACCOUNT_ID", default_value = DEV_ACCOUNT_ID)]
    account_id: String,
    /// PEM certificate chain (leaf first): serve the API over HTTPS (with --tls-key).
    #[arg(long, env = "TRENT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TRENT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address of the admin listener: Prometheus `/metrics`, `/healthz`, `/readyz`, `/simulate`.
    #[arg(long, env = "TRENT_ADMIN_LISTEN", default_value = "127.0.0.1:9599")]
    admin_listen: SocketAddr,
    /// Bearer token that `/metrics` and `/simulate` on the admin listener require
    /// (`Authorization: Bearer TOKEN`); needed for an admin listener off loopback.
    #[arg(long, env = "TRENT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Allow plain HTTP on a non-loopback API address (for a TLS-terminating proxy in front);
    /// logged as a warning at start.
    #[arg(long, env = "TRENT_INSECURE_HTTP")]
    insecure_http: bool,
    /// Cryptographic requests per second per account and region (0: unlimited; AWS's default
    /// shared quota for symmetric keys starts at 5,500).
    #[arg(long, env = "TRENT_QUOTA_CRYPTOGRAPHIC", default_value_t = 0)]
    quota_cryptographic: u32,
    /// GenerateRandom requests per second per account and region (0: unlimited).
    #[arg(long, env = "TRENT_QUOTA_GENERATE_RANDOM", default_value_t = 0)]
    quota_generate_random: u32,
    /// Other requests per second per account and region (0: unlimited).
    #[arg(long, env = "TRENT_QUOTA_MANAGEMENT", default_value_t = 0)]
    quota_management: u32,
    /// STS requests per second per account and region (0: unlimited).
    #[arg(long, env = "TRENT_QUOTA_STS", default_value_t = 0)]
    quota_sts: u32,
    /// CloudTrail LookupEvents requests per second per account and region (0: unlimited; AWS
    /// allows 2).
    #[arg(long, env = "TRENT_QUOTA_CLOUDTRAIL", default_value_t = 0)]
    quota_cloudtrail: u32,
    /// How many refusals of unauthenticated requests may wait for the audit writer at once (the
    /// others queue behind them, so a flood of bad signatures cannot take the writer from signed
    /// callers).
    #[arg(long, env = "TRENT_UNAUTHENTICATED_IN_FLIGHT", default_value_t = 8)]
    unauthenticated_in_flight: usize,
    /// Let external key stores name a plain-HTTP proxy endpoint, with a port (`http://host:port`).
    /// For tests only: AWS requires HTTPS, and the proxy credential would cross the network in
    /// the clear.
    #[arg(long, env = "TRENT_XKS_ALLOW_HTTP")]
    xks_allow_http: bool,
    /// The PEM bundle of certificate authorities an XKS proxy's HTTPS certificate must chain to
    /// (default: the system's bundle, /etc/ssl/certs/ca-certificates.crt, when it exists).
    #[arg(long, env = "TRENT_XKS_CA_BUNDLE")]
    xks_ca_bundle: Option<PathBuf>,
    /// Seconds between scheduler passes (scheduled deletions, automatic rotations).
    #[arg(long, env = "TRENT_SCHEDULER_INTERVAL", default_value_t = 60)]
    scheduler_interval: u64,
    /// Export the audit trail as CloudTrail log files and signed digests into this directory,
    /// every `--trail-export-interval` seconds and once more at shutdown.
    #[arg(long, env = "TRENT_TRAIL_EXPORT_DIR")]
    trail_export_dir: Option<PathBuf>,
    /// Seconds between periodic trail exports.
    #[arg(long, env = "TRENT_TRAIL_EXPORT_INTERVAL", default_value_t = 300)]
    trail_export_interval: u64,
    /// Events between two read-model snapshots (taken by the scheduler, and once more at
    /// shutdown); start-up loads the newest snapshot and replays only the events after it.
    #[arg(
        long,
        env = "TRENT_SNAPSHOT_EVERY",
        default_value_t = trent_service::snapshots::DEFAULT_SNAPSHOT_EVERY,
        value_parser = clap::value_parser!(i64).range(1..)
    )]
    snapshot_every: i64,
    /// Testing only: a movable clock and the /_trent/test/ endpoints (loopback only).
    #[arg(long, env = "TRENT_TEST_CLOCK", hide = true)]
    test_clock: bool,
    /// Testing only (with --test-clock): serve with the read model warming up until
    /// POST /_trent/test/warm-up/release.
    #[arg(long, hide = true, requires = "test_clock")]
    test_hold_warm_up: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Compare the rebuilt model with the keystore and report any difference.
    #[arg(long)]
    verify: bool,
}

/// Run the command line; the exit code says whether it succeeded.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for every TLS client and server of the process: aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: log files and pipes get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await.map(|_| ExitCode::SUCCESS),
        Command::Migrate(store) => {
            let store = open_store(&store, Create::Yes).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => replay(args).await,
        Command::Policy {
            command: PolicyCommand::Simulate(args),
        } => simulate(args).await,
        Command::Trail {
            command: TrailCommand::Usage(args),
        } => {
            let store = open_store(&args.store, Create::No).await?;
            let report = trent_service::trail::usage::key_usage(&store, &args.key).await?;
            if args.format == "json" {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Trail {
            command: TrailCommand::Verify(store),
        } => trail_verify(store).await,
        Command::Trail {
            command: TrailCommand::Export(args),
        } => trail_export(args).await,
        Command::Trail {
            command: TrailCommand::Validate(args),
        } => trail_validate(args),
        Command::RootKey {
            command: RootKeyCommand::Rotate(args),
        } => root_key_rotate(args).await,
        Command::RootKey {
            command: RootKeyCommand::Retire(args),
        } => {
            let store = open_store(&args.store, Create::No).await?;
            let ring = load_root_key(&store, &args.store, false).await?;
            trent_service::root_rotation::retire_key(&store, &ring, &args.id).await?;
            println!("root key {} retired", args.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Xks {
            command: XksCommand::Check(args),
        } => crate::xks_check::check(args).await,
    }
}

/// Whether a command may create the embedded store (only `serve` and `migrate` do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Create the data directory and database if missing.
    Yes,
    /// Refuse, saying where the store was looked for.
    No,
}

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// Open the configured backend.
pub async fn open_store(args: &StoreArgs, create: Create) -> anyhow::Result<SharedStore> {
    Ok(match &args.database_url {
        Some(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .with_context(|| format!("cannot connect to {}", store_name(args)))?,
        ),
        None => {
            let db = match create {
                Create::Yes => trent_service::data_dir::create(&args.data_dir)?,
                Create::No => trent_service::data_dir::existing(&args.data_dir)?,
            };
            Arc::new(
                SqliteStore::open_with_wal_restart(&db, args.sqlite_wal_mib * MIB)
                    .with_context(|| format!("cannot open the SQLite store {}", db.display()))?,
            )
        }
    })
}

/// The store's root key (see `root_binding`); generated only when `may_generate` and the store
/// holds nothing, and then announced once with where it is and that it must be backed up.
async fn load_root_key(
    store: &SharedStore,
    args: &StoreArgs,
    may_generate: bool,
) -> anyhow::Result<RootKeyring> {
    let path = args
        .root_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("root.key"));
    let environment = std::env::var("TRENT_ROOT_KEY").ok();
    if environment.is_none() {
        warn_if_readable_by_others(&path);
    }
    let bound = trent_service::root_binding::bind(
        store,
        &store_name(args),
        environment,
        &path,
        may_generate,
    )
    .await?;
    if let Some(path) = &bound.generated {
        tracing::warn!(
            path = %path.display(),
            root_key_id = bound.ring.ids().first().map(String::as_str).unwrap_or_default(),
            "generated a new root key for this empty store: back this file up now; without it no \
             key material in the store can ever be opened"
        );
    }
    Ok(bound.ring)
}

/// Warn when the root key file can be read by users other than its owner.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:03o}"),
                    "the root key file is readable by other users; chmod 600 it"
                );
            }
        }
    }
}

/// The store as an operator would name it (never with a password).
fn store_name(args: &StoreArgs) -> String {
    match &args.database_url {
        Some(url) => match url.parse::<tokio_postgres::Config>() {
            Ok(config) => format!("the PostgreSQL database {}", describe_pg(&config)),
            Err(_) => "the PostgreSQL database".to_string(),
        },
        None => format!("the store at {}", args.data_dir.join("trent.db").display()),
    }
}

/// `host:port/dbname` of a PostgreSQL configuration.
fn describe_pg(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default database)");
    format!("{host}:{port}/{db}")
}

/// Project every stored event into a fresh read model (no snapshot).
pub async fn rebuild_read_model(store: &SharedStore) -> anyhow::Result<ReadModel> {
    Ok(trent_service::snapshots::replay_all(store).await?)
}

/// Refuse listeners that would expose secrets or decisions: plain HTTP off loopback (plaintexts
/// and data keys would cross the network in the clear) unless `--insecure-http`, and an admin
/// listener off loopback without `--admin-token` (`/simulate` reveals policy decisions).
fn check_listeners(args: &ServeArgs, tls: bool) -> anyhow::Result<()> {
    if !tls && !args.listen.ip().is_loopback() {
        if !args.insecure_http {
            bail!(
                "refusing plain HTTP on {} (not a loopback address): plaintexts and data keys \
                 would cross the network in the clear. Give --tls-cert and --tls-key, or pass \
                 --insecure-http if something else (a TLS-terminating proxy) protects the traffic",
                args.listen
            );
        }
        tracing::warn!(
            listen = %args.listen,
            "--insecure-http: serving the KMS API over plain HTTP on a non-loopback address"
        );
    }
    if !args.admin_listen.ip().is_loopback() && args.admin_token.is_none() {
        bail!(
            "refusing an unprotected admin listener on {} (not a loopback address): /simulate \
             reveals policy decisions and /metrics the deployment. Give --admin-token (or \
             TRENT_ADMIN_TOKEN), or listen on a loopback address",
            args.admin_listen
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let identities = match &args.config {
        Some(path) => Identities::load(path)?,
        None => Identities::development(&args.account_id),
    };
    if identities.is_development() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve the development identity (well-known credentials) on {}: listen on a loopback address or give --config",
            args.listen
        );
    }
    if args.test_clock && !args.listen.ip().is_loopback() {
        bail!("--test-clock is only allowed on a loopback address");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    check_listeners(&args, tls.is_some())?;
    // The embedded store serves one process: hold its data directory for as long as we serve.
    let _data_dir_lock = match &args.store.database_url {
        None => {
            trent_service::data_dir::create(&args.store.data_dir)?;
            Some(trent_service::data_dir::lock(&args.store.data_dir)?)
        }
        Some(_) => None,
    };
    let store = open_store(&args.store, Create::Yes).await?;
    store.migrate().await?;
    let root_key = load_root_key(&store, &args.store, true).await?;
    let (state, writer_task) =
        build_state(&args, identities, store, root_key, tls.is_some()).await?;
    let interval = std::time::Duration::from_secs(args.scheduler_interval.max(1));
    let (stop_export, export_stopped) = tokio::sync::watch::channel(false);
    let exporter = args
        .trail_export_dir
        .clone()
        .map(|out| spawn_exporter(&args, &state, out, export_stopped));
    let listeners = crate::server::Listeners {
        api: args.listen,
        tls,
        admin: args.admin_listen,
        admin_token: args.admin_token.clone(),
    };
    let snapshots = state.snapshots.clone();
    crate::server::serve(state, listeners, interval).await?;
    let _ = stop_export.send(true);
    if let Some(task) = exporter {
        task.await.context("the trail exporter failed")?;
    }
    writer_task.await.context("the audit writer failed")?;
    // Everything is applied now: the next start replays nothing this process wrote.
    if let Err(e) = snapshots.take().await {
        tracing::warn!(error = %e, "the read-model snapshot at shutdown failed");
    }
    tracing::info!("stopped; every acknowledged call is durable");
    Ok(())
}

/// The state a server shares between requests: a warming read model positioned after the
/// store's newest event (the full one loads once serving, `trent_service::warm_up`), and the
/// audit writer started (its task is returned).
async fn build_state(
    args: &ServeArgs,
    identities: Identities,
    store: SharedStore,
    root_key: RootKeyring,
    https: bool,
) -> anyhow::Result<(AppState, tokio::task::JoinHandle<()>)> {
    let root_key = Arc::new(root_key);
    // Serving starts with a warming model (keys load on first use) while the full one loads
    // behind it (`trent_service::warm_up`); start-up reads nothing per key.
    let head = store.last_event_sequence().await?;
    let model = Arc::new(RwLock::new(ReadModel::warming(head)));
    let snapshots = Arc::new(trent_service::snapshots::Snapshotter::new(
        store.clone(),
        root_key.clone(),
        model.clone(),
        args.snapshot_every,
        0,
    ));
    let metrics = Arc::new(trent_service::metrics::Metrics::new());
    let materials = Arc::new(MaterialCache::default());
    let (writer, writer_task) = CommitWriter::start(
        store.clone(),
        model.clone(),
        metrics.clone(),
        materials.clone(),
    )
    .context("cannot start the audit writer")?;
    let test_clock = args.test_clock.then(|| Arc::new(ManualClock::new()));
    let state = AppState {
        store,
        writer,
        model,
        identities,
        clock: match &test_clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        },
        wall_clock: Arc::new(SystemClock),
        test_clock,
        metrics,
        regions: RegionSet::new(args.regions.clone()),
        secure_transport: https,
        xks_allow_http: args.xks_allow_http,
        xks_tls: crate::xks_check::xks_tls(args.xks_ca_bundle.as_deref())?,
        root_key,
        materials,
        account_policies: Default::default(),
        quotas: trent_service::quota::Quotas::new(trent_service::quota::QuotaLimits {
            cryptographic: args.quota_cryptographic,
            generate_random: args.quota_generate_random,
            management: args.quota_management,
            sts: args.quota_sts,
            cloudtrail: args.quota_cloudtrail,
            unauthenticated_in_flight: args.unauthenticated_in_flight,
        }),
        snapshots,
        warm_up: Arc::new(trent_service::warm_up::WarmUp::new(false)),
    };
    if args.test_hold_warm_up {
        state.warm_up.hold();
    }
    Ok((state, writer_task))
}

/// Export the trail into `out` periodically until `stopped` (`--trail-export-dir`).
fn spawn_exporter(
    args: &ServeArgs,
    state: &AppState,
    out: PathBuf,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let opts = trent_service::trail::export::ExportOptions {
        key_file: args.store.data_dir.join("trail-digest.key"),
        out,
        trail_name: "trent".into(),
        max_records_per_file: 1000,
    };
    let every = std::time::Duration::from_secs(args.trail_export_interval.max(1));
    tokio::spawn(periodic_export(state.store.clone(), opts, every, stopped))
}

/// Export the trail every `every`, and once more when `stop` turns true.
async fn periodic_export(
    store: SharedStore,
    opts: trent_service::trail::export::ExportOptions,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.changed() => true,
        };
        match trent_service::trail::export::export(&store, &opts, chrono::Utc::now()).await {
            Ok(r) if r.records > 0 => {
                tracing::info!(records = r.records, files = r.log_files, "trail exported")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "trail export failed"),
        }
        if stopping {
            return;
        }
    }
}

async fn root_key_rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.store, Create::No).await?;
    let ring = load_root_key(&store, &args.store, false).await?;
    let report = trent_service::root_rotation::rotate(
        &store,
        &ring,
        &args.new_key_file,
        std::time::Duration::from_secs(args.settle_seconds),
        args.retire,
    )
    .await?;
    println!(
        "root key rotated: new root key {} (written to {}); {} sealed rows re-sealed in {} \
         pass(es), {:.1} s",
        report.new_id,
        args.new_key_file.display(),
        report.resealed,
        report.passes,
        report.reseal_time.as_secs_f64()
    );
    if report.retired {
        println!(
            "retired {}: start servers with --root-key-file {} from now on",
            report.old_ids.join(", "),
            args.new_key_file.display()
        );
    } else {
        println!(
            "the old root key ({}) still opens material and tokens; retire it with `trent \
             root-key retire --id ID` once its tokens have expired",
            report.old_ids.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.store, Create::No).await?;
    let model = rebuild_read_model(&store).await?;
    println!(
        "replayed {} events into {} keys",
        model.last_sequence(),
        model.key_count()
    );
    if !args.verify {
        return Ok(ExitCode::SUCCESS);
    }
    let again = rebuild_read_model(&store).await?;
    let mut problems = Vec::new();
    if again != model {
        problems.push("two replays of the same events disagree".to_string());
    }
    let root_key = load_root_key(&store, &args.store, false).await?;
    problems.extend(verify_snapshots(&store, &root_key, &model).await?);
    for key in model.all_keys() {
        // A multi-Region key's material is under its id, or for imported material its Region's.
        let owner = key.material_owner();
        for m in &key.materials {
            let stored = store.get_material(&owner, m.version).await?;
            // Whether the events say this version's sealed material must (not) be in the keystore.
            let expected = if key.materials_destroyed {
                Some(false)
            } else if let Some(imported) = &key.imported {
                imported.versions.get(&m.version).map(|v| v.present)
            } else if key.is_live() {
                Some(true)
            } else {
                None
            };
            match (stored, expected) {
                (Some(_), Some(false)) => problems.push(format!(
                    "key {} material {}: still in the keystore after it was destroyed",
                    key.key_id, m.version
                )),
                (None, Some(true)) => problems.push(format!(
                    "key {} material {}: missing from the keystore",
                    key.key_id, m.version
                )),
                (Some(sealed), _) if root_key.open(&owner, m.version, &sealed.sealed).is_err() => {
                    problems.push(format!(
                        "key {} material {}: sealed material does not open under the root key",
                        key.key_id, m.version
                    ))
                }
                _ => {}
            }
        }
    }
    for cks in model.all_custom_key_stores() {
        let owner = cks.credential_owner();
        match store.get_material(&owner, cks.credential_version).await? {
            None => problems.push(format!(
                "custom key store {}: its proxy credential is missing from the keystore",
                cks.id
            )),
            Some(sealed)
                if root_key
                    .open(&owner, cks.credential_version, &sealed.sealed)
                    .is_err() =>
            {
                problems.push(format!(
                    "custom key store {}: its sealed proxy credential does not open",
                    cks.id
                ))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        println!("verify: the read model and the keystore agree");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("verify: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Check every kept read-model snapshot: it opens under the root key, and it plus the events
/// after it equals `full` (a replay of every event). Returns the problems found.
async fn verify_snapshots(
    store: &SharedStore,
    root_key: &RootKeyring,
    full: &ReadModel,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for snapshot in store.latest_snapshots().await? {
        let mut model = match trent_service::snapshots::open(root_key, &snapshot) {
            Ok(model) => model,
            Err(why) => {
                problems.push(format!(
                    "snapshot at sequence {} does not load: {why}",
                    snapshot.sequence
                ));
                continue;
            }
        };
        let later = trent_service::snapshots::catch_up_from_store(store, &mut model).await?;
        if &model == full {
            println!(
                "verify: snapshot at sequence {} plus {later} later events equals the full replay",
                snapshot.sequence
            );
        } else {
            problems.push(format!(
                "snapshot at sequence {} plus {later} later events differs from the full replay",
                snapshot.sequence
            ));
        }
    }
    Ok(problems)
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let identities = match &args.config {
        Some(path) => Identities::load(path)?,
        None => Identities::development(&args.account_id),
    };
    let store = open_store(&args.store, Create::No).await?;
    let model = rebuild_read_model(&store).await?;
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let input = trent_service::simulate::SimulationInput {
        principal: args.principal,
        action: args.action,
        key: args.key,
        role: args.role,
        trust_policy: args.trust_policy_file.as_ref().map(read).transpose()?,
        region: None,
        encryption_context: (!args.encryption_context.is_empty())
            .then(|| args.encryption_context.into_iter().collect()),
        encryption_algorithm: None,
        source_ip: args.source_ip,
        secure_transport: args.secure_transport,
        context: args.context.into_iter().fold(
            std::collections::BTreeMap::new(),
            |mut all, (k, v)| {
                all.entry(k).or_insert_with(Vec::new).push(v);
                all
            },
        ),
        key_policy: args.key_policy_file.as_ref().map(read).transpose()?,
        identity_policies: if args.identity_policy_files.is_empty() {
            None
        } else {
            Some(
                args.identity_policy_files
                    .iter()
                    .map(read)
                    .collect::<Result<_, _>>()?,
            )
        },
    };
    let result = trent_service::simulate::simulate(&model, &identities, &input)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(if result.decision == "allowed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn trail_verify(args: StoreArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args, Create::No).await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let records = store.read_audit(after, 1000).await?;
        if records.is_empty() {
            break;
        }
        for r in &records {
            if let Err(broken) = verifier.check(r) {
                println!(
                    "trail verify: BROKEN at audit record {}: {broken}",
                    r.sequence
                );
                return Ok(ExitCode::FAILURE);
            }
            after = r.sequence;
        }
    }
    println!(
        "trail verify: {} records, hash chain intact",
        verifier.verified()
    );
    Ok(ExitCode::SUCCESS)
}

async fn trail_export(args: TrailExportArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.store, Create::No).await?;
    let opts = trent_service::trail::export::ExportOptions {
        key_file: args
            .digest_key_file
            .unwrap_or_else(|| args.store.data_dir.join("trail-digest.key")),
        out: args.out,
        trail_name: args.trail_name,
        max_records_per_file: args.max_records_per_file,
    };
    let started = std::time::Instant::now();
    let report = trent_service::trail::export::export(&store, &opts, chrono::Utc::now()).await?;
    if report.finished_interrupted_run {
        println!("trail export: finished the digests of an interrupted run");
    }
    println!(
        "trail export: {} records in {} log files, {} digest files, up to audit record {}, digest key {} ({:.0} records/s)",
        report.records,
        report.log_files,
        report.digests,
        report.last_sequence,
        report.key_fingerprint,
        report.records as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn trail_validate(args: TrailValidateArgs) -> anyhow::Result<ExitCode> {
    let report = trent_service::trail::validate::validate(&args.dir, args.public_key.as_deref())
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    println!("{report}");
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
